//! Measuring a phase and printing the results.
//!
//! [`Meter`] samples the CPU time of the server (if its pid is known) and of
//! the generator itself at the start and end of a phase. [`ResultLine`]
//! builds the machine-readable line every run ends with:
//!
//! ```text
//! RESULT mode=fanout clients=50 messages=1000 ... status=ok
//! ```
//!
//! one line, space-separated `key=value` pairs, values without spaces, keys
//! in a fixed order per mode, so scripts can `grep '^RESULT'` and build
//! tables. Absent figures (no `--server-pid`) are written as `-`.

use std::fmt::{self, Display, Write as _};
use std::time::Instant;

use crate::procfs::{self, CpuSample, Memory};

/// CPU use of the server and the generator over one phase.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PhaseCpu {
    /// Wall time of the phase, seconds.
    pub wall_s: f64,
    /// Server CPU seconds from `/proc/PID/stat`.
    pub server_s: Option<f64>,
    /// Server CPU seconds from the threads' schedstat (finer grained).
    pub server_sched_s: Option<f64>,
    /// Generator CPU seconds from `/proc/self/stat`.
    pub gen_s: f64,
    /// Generator CPU seconds from schedstat.
    pub gen_sched_s: f64,
    /// Seconds the server's threads waited for a CPU (run queue).
    pub server_wait_s: Option<f64>,
    /// Seconds the generator's threads waited for a CPU.
    pub gen_wait_s: f64,
}

/// Samples CPU time at the start of a phase; [`Meter::stop`] gives the
/// difference.
#[derive(Debug, Clone)]
pub struct Meter {
    pid: Option<u32>,
    started: Instant,
    server: Option<CpuSample>,
    generator: CpuSample,
}

impl Meter {
    /// Starts measuring; `pid` is the server's, if known.
    pub fn start(pid: Option<u32>) -> Self {
        Meter {
            pid,
            started: Instant::now(),
            server: pid.and_then(|p| procfs::cpu(Some(p))),
            generator: procfs::cpu(None).unwrap_or_default(),
        }
    }

    /// The CPU used since [`start`](Meter::start), ending now.
    pub fn stop(&self) -> PhaseCpu {
        self.stop_at(Instant::now())
    }

    /// The CPU used since [`start`](Meter::start); the wall time ends at
    /// `end` (the CPU samples are taken now).
    pub fn stop_at(&self, end: Instant) -> PhaseCpu {
        let server_now = self.pid.and_then(|p| procfs::cpu(Some(p)));
        let gen_now = procfs::cpu(None).unwrap_or_default();
        let both = self.server.zip(server_now);
        PhaseCpu {
            wall_s: end.saturating_duration_since(self.started).as_secs_f64(),
            server_s: both.map(|(a, b)| procfs::cpu_secs(a, b)),
            server_sched_s: both.map(|(a, b)| procfs::sched_secs(a, b)),
            gen_s: procfs::cpu_secs(self.generator, gen_now),
            gen_sched_s: procfs::sched_secs(self.generator, gen_now),
            server_wait_s: both.map(|(a, b)| procfs::wait_secs(a, b)),
            gen_wait_s: procfs::wait_secs(self.generator, gen_now),
        }
    }

    /// The server's memory now, if its pid is known.
    pub fn server_memory(&self) -> Option<Memory> {
        self.pid.and_then(|p| procfs::memory(Some(p)))
    }
}

/// How a run ended, for the `status=` field and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Everything expected happened.
    Ok,
    /// The run finished but something is wrong (losses, reorders, errors,
    /// connections closed by the server).
    Fail(String),
    /// A phase ran out of time.
    Timeout(String),
}

impl Status {
    /// The word used in `status=`.
    pub fn word(&self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Fail(_) => "fail",
            Status::Timeout(_) => "timeout",
        }
    }

    /// The process exit code: 0, 1 (fail) or 2 (timeout).
    pub fn exit_code(&self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Fail(_) => 1,
            Status::Timeout(_) => 2,
        }
    }
}

impl Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Ok => f.write_str("ok"),
            Status::Fail(why) => write!(f, "FAIL: {why}"),
            Status::Timeout(why) => write!(f, "TIMEOUT: {why}"),
        }
    }
}

/// The `RESULT key=value ...` line.
#[derive(Debug, Clone)]
pub struct ResultLine {
    line: String,
}

impl ResultLine {
    /// A line for `mode` (`fanout`, `scale`).
    pub fn new(mode: &str) -> Self {
        ResultLine {
            line: format!("RESULT mode={mode}"),
        }
    }

    /// Appends `key=value`; spaces in the value become `_`.
    pub fn put(&mut self, key: &str, value: impl Display) -> &mut Self {
        let value = value.to_string().replace(char::is_whitespace, "_");
        let _ = write!(self.line, " {key}={value}");
        self
    }

    /// Appends a float with `decimals` places.
    pub fn float(&mut self, key: &str, value: f64, decimals: usize) -> &mut Self {
        let _ = write!(self.line, " {key}={value:.decimals$}");
        self
    }

    /// Appends an optional value, `-` if absent.
    pub fn opt(&mut self, key: &str, value: Option<impl Display>) -> &mut Self {
        match value {
            Some(v) => self.put(key, v),
            None => self.put(key, "-"),
        }
    }

    /// Appends an optional float, `-` if absent.
    pub fn opt_float(&mut self, key: &str, value: Option<f64>, decimals: usize) -> &mut Self {
        match value {
            Some(v) => self.float(key, v, decimals),
            None => self.put(key, "-"),
        }
    }

    /// The finished line.
    pub fn finish(&self) -> String {
        self.line.clone()
    }
}

/// Formats an optional float for the summary, `n/a` if absent.
pub fn or_na(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "n/a".to_string(), |v| format!("{v:.decimals$}"))
}

/// Nanoseconds as microseconds with one decimal.
pub fn us(ns: u64) -> f64 {
    (ns as f64 / 100.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_are_one_line_of_key_values() {
        let mut r = ResultLine::new("fanout");
        r.put("clients", 50)
            .float("wall_s", 1.23456, 3)
            .opt("server_cpu_s", None::<f64>)
            .opt_float("hwm_kb", Some(12.0), 0)
            .put("status", "two words");
        assert_eq!(
            r.finish(),
            "RESULT mode=fanout clients=50 wall_s=1.235 server_cpu_s=- hwm_kb=12 status=two_words"
        );
    }

    #[test]
    fn statuses_map_to_exit_codes() {
        assert_eq!(Status::Ok.exit_code(), 0);
        assert_eq!(Status::Fail("x".into()).exit_code(), 1);
        assert_eq!(Status::Timeout("y".into()).word(), "timeout");
        assert_eq!(Status::Fail("3 lost".into()).to_string(), "FAIL: 3 lost");
    }

    #[test]
    fn meters_measure_this_process() {
        let meter = Meter::start(Some(std::process::id()));
        let cpu = meter.stop();
        assert!(cpu.server_s.is_some() && cpu.wall_s >= 0.0);
        assert!(meter.server_memory().is_some_and(|m| m.rss_kb > 0));
        assert_eq!(us(1_234_567), 1234.6);
        assert_eq!(or_na(None, 2), "n/a");
    }
}
