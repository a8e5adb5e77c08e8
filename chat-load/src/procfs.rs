//! CPU time and memory of a process, from `/proc` (Linux).
//!
//! * CPU: `utime + stime` from `/proc/PID/stat` (fields 14 and 15, in clock
//!   ticks; the sum over all the process's threads), divided by the tick
//!   rate, which is asked of `getconf CLK_TCK` once (100 if that fails).
//!   Ticks are 10 ms, so short phases are also measured with the threads'
//!   scheduler run time from `/proc/PID/task/*/schedstat` (nanoseconds),
//!   reported alongside as a cross-check. Its second field, the time the
//!   threads spent runnable but waiting for a CPU, shows when a process was
//!   held up by others (the machine is shared).
//! * Memory: `VmRSS` (now) and `VmHWM` (peak) from `/proc/PID/status`.
//!
//! The generator reads its own figures the same way (`PID` = `self`) to
//! show whether it, rather than the server, is the bottleneck.

use std::sync::OnceLock;

/// A process's CPU use at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuSample {
    /// User plus system time, in clock ticks.
    pub ticks: u64,
    /// Run time of the live threads, nanoseconds (0 if unavailable).
    pub sched_ns: u64,
    /// Time the live threads spent waiting on a run queue, nanoseconds.
    pub wait_ns: u64,
}

/// Clock ticks per second, from `getconf CLK_TCK` (asked once).
pub fn clk_tck() -> u64 {
    static TCK: OnceLock<u64> = OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// `utime + stime` from the text of `/proc/PID/stat`. The command name
/// (field 2) may hold spaces and parentheses, so fields are counted from
/// the last `)`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After ")": field 3 (state) is index 0, so utime (14) is index 11.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A `kB` value of `/proc/PID/status`, e.g. `VmRSS`.
pub fn parse_status_kb(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix(':')?;
        value.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// Which process: a pid, or `self`.
fn proc_dir(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("/proc/{pid}"),
        None => "/proc/self".to_string(),
    }
}

/// The CPU use of `pid` (`None`: this process), or `None` if it is gone.
pub fn cpu(pid: Option<u32>) -> Option<CpuSample> {
    let dir = proc_dir(pid);
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    let ticks = parse_stat_ticks(&stat)?;
    let (mut sched_ns, mut wait_ns) = (0, 0);
    if let Ok(tasks) = std::fs::read_dir(format!("{dir}/task")) {
        for task in tasks.flatten() {
            let path = task.path().join("schedstat");
            if let Ok(s) = std::fs::read_to_string(path) {
                let mut fields = s
                    .split_ascii_whitespace()
                    .map(|v| v.parse::<u64>().unwrap_or(0));
                sched_ns += fields.next().unwrap_or(0);
                wait_ns += fields.next().unwrap_or(0);
            }
        }
    }
    Some(CpuSample {
        ticks,
        sched_ns,
        wait_ns,
    })
}

/// CPU seconds between two samples, from the ticks.
pub fn cpu_secs(before: CpuSample, after: CpuSample) -> f64 {
    after.ticks.saturating_sub(before.ticks) as f64 / clk_tck() as f64
}

/// CPU seconds between two samples, from the scheduler's run time (threads
/// that exited in between are missed).
pub fn sched_secs(before: CpuSample, after: CpuSample) -> f64 {
    after.sched_ns.saturating_sub(before.sched_ns) as f64 / 1e9
}

/// Seconds the threads spent waiting for a CPU between two samples.
pub fn wait_secs(before: CpuSample, after: CpuSample) -> f64 {
    after.wait_ns.saturating_sub(before.wait_ns) as f64 / 1e9
}

/// `VmRSS` and `VmHWM` of `pid`, in kB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// Resident now.
    pub rss_kb: u64,
    /// Peak resident.
    pub hwm_kb: u64,
}

/// The memory of `pid` (`None`: this process), or `None` if it is gone.
pub fn memory(pid: Option<u32>) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("{}/status", proc_dir(pid))).ok()?;
    Some(Memory {
        rss_kb: parse_status_kb(&status, "VmRSS")?,
        hwm_kb: parse_status_kb(&status, "VmHWM")?,
    })
}

/// The soft limit on open files of this process, from `/proc/self/limits`.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                    1234 567 0 0 20 0 3 0 100 1000000 500 18446744073709551615";
        assert_eq!(parse_stat_ticks(stat), Some(1234 + 567));
        assert_eq!(parse_stat_ticks("garbage"), None);
        assert_eq!(parse_stat_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn status_values_are_read_in_kb() {
        let status = "Name:\tchat\nVmPeak:\t  123456 kB\nVmHWM:\t    9876 kB\nVmRSS:\t    5432 kB\nThreads:\t3\n";
        assert_eq!(parse_status_kb(status, "VmRSS"), Some(5432));
        assert_eq!(parse_status_kb(status, "VmHWM"), Some(9876));
        assert_eq!(parse_status_kb(status, "Threads"), None);
        assert_eq!(parse_status_kb(status, "VmSwap"), None);
    }

    #[test]
    fn this_process_can_be_measured() {
        let cpu_before = cpu(None).expect("/proc/self/stat");
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let cpu_after = cpu(None).unwrap();
        assert!(cpu_after.ticks >= cpu_before.ticks);
        // schedstat needs CONFIG_SCHED_INFO; where it exists it must move.
        if cpu_before.sched_ns > 0 {
            assert!(cpu_after.sched_ns > cpu_before.sched_ns);
        }
        let mem = memory(None).expect("/proc/self/status");
        assert!(mem.rss_kb > 0 && mem.hwm_kb >= mem.rss_kb);
        assert!(clk_tck() > 0);
        assert!(open_files_limit().unwrap_or(1) > 0);
    }
}
