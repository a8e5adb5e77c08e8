//! The fan-out scenario's results: merged from every reader, judged, and
//! printed as a human summary and one `RESULT` line.
//!
//! Figures: deliveries expected (K×M×K in one chat room; see
//! [`Topology`](crate::topology::Topology) for rooms and IRC) and received, losses and reorders
//! (per sender in the summary), errors, wall time (first send to last
//! delivery), deliveries per second, latency p50/p99/max over every
//! delivery, and with the server's pid its CPU over the run, deliveries per
//! server CPU-second and its memory (VmRSS before and after, VmHWM peak).
//! The generator's own CPU is reported next to the server's so a run where
//! the generator is the bottleneck shows it.

use std::fmt::Write as _;

use crate::accounting::Totals;
use crate::fanout::{FanoutConfig, Pacing, ReaderOutcome};
use crate::histogram::Histogram;
use crate::procfs::Memory;
use crate::report::{PhaseCpu, ResultLine, Status, or_na, us};
use crate::wire::Protocol;

/// Senders listed in the summary when some have losses or reorders.
const OFFENDERS_SHOWN: usize = 10;
/// Notes (errors, early ends) listed in the summary.
const NOTES_SHOWN: usize = 8;

/// The results of a fan-out run.
#[derive(Debug, Clone)]
pub struct FanoutReport {
    /// What was run.
    pub config: FanoutConfig,
    /// Seconds for all logins.
    pub login_s: f64,
    /// Deliveries, losses and reorders per sender.
    pub totals: Totals,
    /// Latency of every delivery, nanoseconds.
    pub latency: Histogram,
    /// Frames that were not load messages from our clients, `err:` frames
    /// and undecodable frames.
    pub errors: u64,
    /// The first few error messages and early ends (connections the server
    /// closed, write failures).
    pub notes: Vec<String>,
    /// CPU over the run phase; its wall time ends at the last delivery.
    pub cpu: PhaseCpu,
    /// Server memory before the first connection.
    pub mem_before: Option<Memory>,
    /// Server memory at the end (VmHWM is the peak over its life).
    pub mem_end: Option<Memory>,
    /// How it went.
    pub status: Status,
}

impl FanoutReport {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        config: FanoutConfig,
        login_s: f64,
        outcomes: Vec<ReaderOutcome>,
        write_errors: Vec<String>,
        status: Status,
        cpu: PhaseCpu,
        mem_before: Option<Memory>,
        mem_end: Option<Memory>,
    ) -> Self {
        let topology = config.topology();
        let expected = (0..config.clients)
            .map(|s| u64::from(config.messages) * topology.audience(s) as u64)
            .collect();
        let mut totals = Totals::per_sender(expected);
        let mut latency = Histogram::new();
        let mut errors = 0;
        let mut notes = Vec::new();
        let stopped_by_us = status != Status::Ok;
        for o in &outcomes {
            totals.add(&o.tracker);
            latency.merge(&o.latency);
            errors += o.errors;
            notes.extend(o.error_samples.iter().cloned());
            if let Some(why) = &o.ended
                && !(stopped_by_us && why.ends_with("stopped waiting"))
            {
                notes.push(why.clone());
            }
        }
        notes.extend(
            write_errors
                .into_iter()
                .map(|e| format!("write failed: {e}")),
        );
        let status = match status {
            Status::Ok => judge(&totals, errors, &notes),
            other => other,
        };
        FanoutReport {
            config,
            login_s,
            totals,
            latency,
            errors,
            notes,
            cpu,
            mem_before,
            mem_end,
            status,
        }
    }

    /// Deliveries per second of wall time.
    pub fn deliveries_per_s(&self) -> f64 {
        self.totals.received_total() as f64 / self.cpu.wall_s.max(1e-9)
    }

    /// Deliveries per server CPU-second (from `/proc/PID/stat`).
    pub fn per_server_cpu_s(&self) -> Option<f64> {
        let cpu = self.cpu.server_s?;
        (cpu > 0.0).then(|| self.totals.received_total() as f64 / cpu)
    }

    fn pacing_words(&self) -> (String, String, String) {
        match self.config.pacing {
            Pacing::Burst { window } => ("burst".into(), "-".into(), window.to_string()),
            Pacing::Rate(r) => ("paced".into(), format!("{r}"), "-".into()),
        }
    }

    /// How the clients speak, if not in the server's default room over
    /// chat (the summary says nothing then, as it always did).
    fn speaking(&self) -> Option<String> {
        let c = &self.config;
        let t = c.topology();
        let rooms = match c.rooms {
            Some(r) if t.members(r - 1) == t.members(0) => {
                format!("{r} rooms of {} members", t.members(0))
            }
            Some(r) => format!(
                "{r} rooms of {} to {} members",
                t.members(r - 1),
                t.members(0)
            ),
            None => "one room".to_string(),
        };
        match c.protocol {
            Protocol::Chat if c.rooms.is_some() => Some(format!(
                "chat, cap:rooms, say:/said: in {rooms} (each also in the default room); \
                 a message reaches every member of its room, its sender included"
            )),
            Protocol::Chat => None,
            Protocol::Irc => Some(format!(
                "IRC, PRIVMSG in {rooms}; a message reaches every member but its sender \
                 (IRC servers do not echo), so a room of n delivers it n-1 times; \
                 windows are fed by the next member of the sender's room"
            )),
        }
    }

    /// The human-readable summary, several lines.
    pub fn summary(&self) -> String {
        let c = &self.config;
        let t = &self.totals;
        let mut s = String::new();
        let pacing = match c.pacing {
            Pacing::Burst { window: 0 } => {
                format!("burst, {} frames per write, no window", c.batch)
            }
            Pacing::Burst { window } => {
                format!("burst, {} frames per write, window {window}", c.batch)
            }
            Pacing::Rate(r) => format!("paced at {r} msg/s per client"),
        };
        let _ = writeln!(
            s,
            "fan-out: {} clients x {} messages x {} B, {pacing}, server {}",
            c.clients, c.messages, c.size, c.target
        );
        if let Some(speaking) = self.speaking() {
            let _ = writeln!(s, "  speaking     {speaking}");
        }
        let _ = writeln!(s, "  logins       {} in {:.3} s", c.clients, self.login_s);
        let _ = writeln!(
            s,
            "  deliveries   expected {}, received {}, lost {}, reordered {}, duplicated {}, errors {}",
            t.expected(),
            t.received_total(),
            t.losses_total(),
            t.reorders_total(),
            t.extra_total(),
            self.errors
        );
        for (sender, lost, reordered) in t.offenders(OFFENDERS_SHOWN) {
            let _ = writeln!(
                s,
                "    sender {}: lost {lost}, reordered {reordered}",
                c.name(sender)
            );
        }
        let _ = writeln!(
            s,
            "  wall time    {:.3} s (first send to last delivery), {:.0} deliveries/s",
            self.cpu.wall_s,
            self.deliveries_per_s()
        );
        let l = &self.latency;
        let _ = writeln!(
            s,
            "  latency      p50 {} us, p99 {} us, max {} us, mean {} us (all {} deliveries)",
            us(l.quantile(0.5)),
            us(l.quantile(0.99)),
            us(l.max()),
            us(l.mean()),
            l.count()
        );
        match self.cpu.server_s {
            Some(cpu) => {
                let _ = writeln!(
                    s,
                    "  server CPU   {cpu:.2} s (schedstat {:.3} s) = {:.0}% of a core; {} deliveries per server CPU-second",
                    self.cpu.server_sched_s.unwrap_or(0.0),
                    100.0 * cpu / self.cpu.wall_s.max(1e-9),
                    or_na(self.per_server_cpu_s(), 0)
                );
            }
            None => {
                let _ = writeln!(s, "  server CPU   n/a (pass --server-pid)");
            }
        }
        if let (Some(before), Some(end)) = (self.mem_before, self.mem_end) {
            let _ = writeln!(
                s,
                "  server RSS   {} kB before, {} kB after; peak (VmHWM) {} kB",
                before.rss_kb, end.rss_kb, end.hwm_kb
            );
        }
        let _ = writeln!(
            s,
            "  generator    CPU {:.2} s (schedstat {:.3} s) = {:.0}% of a core, {} runtime thread(s)",
            self.cpu.gen_s,
            self.cpu.gen_sched_s,
            100.0 * self.cpu.gen_sched_s / self.cpu.wall_s.max(1e-9),
            c.gen_threads
        );
        let _ = writeln!(
            s,
            "  CPU waits    server threads waited {} s for a CPU, generator {:.3} s (others were running)",
            or_na(self.cpu.server_wait_s, 3),
            self.cpu.gen_wait_s
        );
        for note in self.notes.iter().take(NOTES_SHOWN) {
            let _ = writeln!(s, "  note: {note}");
        }
        if self.notes.len() > NOTES_SHOWN {
            let _ = writeln!(s, "  note: ... and {} more", self.notes.len() - NOTES_SHOWN);
        }
        let _ = write!(s, "  status       {}", self.status);
        s
    }

    /// The machine-readable line.
    pub fn result_line(&self) -> String {
        let c = &self.config;
        let t = &self.totals;
        let l = &self.latency;
        let (pacing, rate, window) = self.pacing_words();
        let mut r = ResultLine::new("fanout");
        r.put("server", c.target);
        // Only runs that are not the default say so: the default line is
        // unchanged.
        if c.protocol != Protocol::Chat {
            r.put("protocol", c.protocol.word());
        }
        if let Some(rooms) = c.rooms {
            r.put("rooms", rooms);
        }
        r.put("clients", c.clients)
            .put("messages", c.messages)
            .put("size", c.size)
            .put("pacing", pacing)
            .put("rate", rate)
            .put("window", window)
            .put("batch", c.batch)
            .put("gen_threads", c.gen_threads)
            .float("login_s", self.login_s, 3)
            .put("expected", t.expected())
            .put("received", t.received_total())
            .put("lost", t.losses_total())
            .put("reordered", t.reorders_total())
            .put("duplicated", t.extra_total())
            .put("errors", self.errors)
            .float("wall_s", self.cpu.wall_s, 3)
            .float("deliveries_per_s", self.deliveries_per_s(), 0)
            .put("lat_p50_us", us(l.quantile(0.5)))
            .put("lat_p99_us", us(l.quantile(0.99)))
            .put("lat_max_us", us(l.max()))
            .put("lat_mean_us", us(l.mean()))
            .opt_float("server_cpu_s", self.cpu.server_s, 2)
            .opt_float("server_sched_s", self.cpu.server_sched_s, 3)
            .opt_float("deliveries_per_server_cpu_s", self.per_server_cpu_s(), 0)
            .opt("server_rss_before_kb", self.mem_before.map(|m| m.rss_kb))
            .opt("server_rss_end_kb", self.mem_end.map(|m| m.rss_kb))
            .opt("server_hwm_kb", self.mem_end.map(|m| m.hwm_kb))
            .float("gen_cpu_s", self.cpu.gen_s, 2)
            .float("gen_sched_s", self.cpu.gen_sched_s, 3)
            .opt_float("server_wait_s", self.cpu.server_wait_s, 3)
            .float("gen_wait_s", self.cpu.gen_wait_s, 3)
            .put("status", self.status.word());
        r.finish()
    }
}

/// `Ok` if everything arrived once and in order with no errors.
fn judge(totals: &Totals, errors: u64, notes: &[String]) -> Status {
    let mut problems = Vec::new();
    if totals.losses_total() > 0 {
        problems.push(format!("{} deliveries lost", totals.losses_total()));
    }
    if totals.reorders_total() > 0 {
        problems.push(format!("{} reorders", totals.reorders_total()));
    }
    if totals.extra_total() > 0 {
        problems.push(format!("{} duplicates", totals.extra_total()));
    }
    if errors > 0 {
        problems.push(format!("{errors} unexpected frames"));
    }
    if problems.is_empty() && !notes.is_empty() {
        problems.push(notes[0].clone());
    }
    if problems.is_empty() {
        Status::Ok
    } else {
        Status::Fail(problems.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounting::SeqTracker;

    fn outcome(clients: usize, messages: u32, skip: Option<(usize, u32)>) -> ReaderOutcome {
        let mut tracker = SeqTracker::new(clients);
        let mut latency = Histogram::new();
        let mut received = 0;
        for sender in 0..clients {
            for seq in 0..messages {
                if skip != Some((sender, seq)) {
                    tracker.record(sender, seq);
                    latency.record(1000 + u64::from(seq));
                    received += 1;
                }
            }
        }
        ReaderOutcome {
            tracker,
            latency,
            received,
            errors: 0,
            error_samples: Vec::new(),
            ended: None,
            last_ns: 0,
        }
    }

    fn report(outcomes: Vec<ReaderOutcome>) -> FanoutReport {
        let config = FanoutConfig::new("127.0.0.1:1".parse().unwrap(), 3, 10, 64);
        let cpu = PhaseCpu {
            wall_s: 0.5,
            server_s: Some(0.01),
            ..PhaseCpu::default()
        };
        FanoutReport::new(
            config,
            0.01,
            outcomes,
            Vec::new(),
            Status::Ok,
            cpu,
            None,
            None,
        )
    }

    #[test]
    fn a_clean_run_is_ok_and_counts_every_delivery() {
        let r = report((0..3).map(|_| outcome(3, 10, None)).collect());
        assert_eq!(r.status, Status::Ok);
        assert_eq!(r.totals.received_total(), 90);
        assert_eq!(r.per_server_cpu_s(), Some(9000.0));
        assert_eq!(r.deliveries_per_s(), 180.0);
        let line = r.result_line();
        assert!(line.starts_with("RESULT mode=fanout server=127.0.0.1:1 clients=3"));
        assert!(line.contains(" expected=90 received=90 lost=0 reordered=0 "));
        assert!(line.ends_with(" status=ok"), "{line}");
        assert!(!line.contains('\n'));
        assert!(r.summary().contains("status       ok"));
    }

    #[test]
    fn a_lost_delivery_fails_the_run_and_names_the_sender() {
        let mut outcomes: Vec<_> = (0..2).map(|_| outcome(3, 10, None)).collect();
        outcomes.push(outcome(3, 10, Some((1, 4))));
        let r = report(outcomes);
        assert_eq!(r.totals.losses_total(), 1);
        assert_eq!(r.totals.reorders_total(), 1);
        assert_eq!(r.status.word(), "fail");
        assert!(r.summary().contains("sender load1: lost 1, reordered 1"));
        assert!(r.result_line().contains(" lost=1 reordered=1 "));
    }
}
