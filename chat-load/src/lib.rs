//! `chat-load`: a load generator for the chat servers, over loopback only.
//!
//! Three scenarios, each a library function so tests can run them against an
//! in-process server and the `chat-load` binary is only argument parsing:
//!
//! * [`fanout::run`]: K clients log in, then each sends M messages of S
//!   bytes, either in bursts (at most a window of its own messages in
//!   flight) or paced at R messages per second. Every message carries its
//!   sender, a sequence number and a send timestamp, so every delivery is
//!   checked for loss and order and timed. With the server's pid it adds the
//!   server's CPU time and memory. Throughput and latency both use it. The
//!   clients share the server's default room, or are spread over R rooms
//!   ([`topology`]), and speak chat or IRC ([`wire`], [`irc`]), so an IRC
//!   server such as ngircd is measured by the same generator.
//! * [`scale::run`]: N connections log in and stay idle, answering the
//!   server's keepalive pings, for T seconds; it reports the login time, the
//!   server's memory per connection and its CPU while idle. With rooms, each
//!   connection also joins one of R rooms as part of its login.
//! * [`resume::run`]: N clients that missed M messages come back at once
//!   with `resume:`; each checks it gets all M, in order, with no gap; it
//!   reports when they had them all and the server's CPU.
//!
//! All refuse any address outside 127.0.0.0/8 ([`net::check_loopback`]) and
//! every phase has a deadline: a run that misses one ends with
//! [`LoadError::Timeout`] rather than hanging.
//!
//! `chat-load/bench.sh` runs the benchmark scenarios against one of our
//! servers (`SCENARIOS="fanout-rooms scale-rooms"` for the rooms), and
//! `chat-load/bench-irc.sh` runs them against ours and ngircd in one go,
//! with their ratios; BENCHMARKS.md has the commands and figures.
//!
//! The building blocks are public for tests and reuse: [`message`] (the
//! payload format), [`accounting`] (loss and reorder bookkeeping),
//! [`histogram`] (latency percentiles), [`procfs`] (server CPU and memory)
//! and [`report`] (the human summary and the `RESULT` line).

pub mod accounting;
pub mod fanout;
mod fanout_report;
pub mod histogram;
pub mod irc;
pub mod message;
pub mod net;
pub mod procfs;
pub mod report;
pub mod resume;
pub mod scale;
pub mod stream;
pub mod topology;
pub mod wire;

use std::fmt;
use std::time::Duration;

/// Why a run could not produce a complete report.
#[derive(Debug)]
pub enum LoadError {
    /// The arguments cannot work (bad address, size too small, ...).
    Config(String),
    /// A phase did not finish in time. The message says which and how far
    /// it got.
    Timeout {
        /// The phase: `login`, `run`, `hold`.
        phase: &'static str,
        /// How long it was given.
        limit: Duration,
        /// What was done when time ran out.
        detail: String,
    },
    /// A socket failed or the server refused us.
    Io(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Config(m) => write!(f, "bad configuration: {m}"),
            LoadError::Timeout {
                phase,
                limit,
                detail,
            } => write!(
                f,
                "timeout: the {phase} phase did not finish within {:.1} s ({detail})",
                limit.as_secs_f64()
            ),
            LoadError::Io(m) => write!(f, "connection failure: {m}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// The frame limit the generator's decoders enforce: far above anything a
/// server sends in these scenarios, so a server with a raised `--max-frame`
/// is still read correctly.
pub const DECODER_MAX_FRAME: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_what_happened() {
        let e = LoadError::Timeout {
            phase: "login",
            limit: Duration::from_secs(30),
            detail: "12 of 50 logged in".into(),
        };
        assert_eq!(
            e.to_string(),
            "timeout: the login phase did not finish within 30.0 s (12 of 50 logged in)"
        );
        assert!(
            LoadError::Config("x".into())
                .to_string()
                .starts_with("bad configuration")
        );
    }
}
