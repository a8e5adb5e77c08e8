//! What to do when `accept` fails.
//!
//! Most accept errors concern one connection that died in the backlog
//! (`ECONNABORTED`): the next accept simply goes on. Running out of file
//! descriptors or kernel memory (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`) is
//! different: the pending connection stays in the backlog, so accepting again
//! at once fails again and a naive loop spins at 100% CPU. The server then
//! pauses accepting for a moment (connections wait in the backlog, everyone
//! already connected keeps being served) and tries again. It logs the first
//! such failure of a run and the recovery, not every retry.

use std::io;
use std::time::Duration;

/// Error numbers that mean "out of descriptors or memory".
#[cfg(target_os = "linux")]
const EXHAUSTED: [i32; 4] = [
    24,  /* EMFILE */
    23,  /* ENFILE */
    105, /* ENOBUFS */
    12,  /* ENOMEM */
];
#[cfg(not(target_os = "linux"))]
const EXHAUSTED: [i32; 4] = [
    24, /* EMFILE */
    23, /* ENFILE */
    55, /* ENOBUFS */
    12, /* ENOMEM */
];

/// Whether an accept error means the process or system is out of
/// descriptors or memory.
pub fn is_resource_exhaustion(err: &io::Error) -> bool {
    err.raw_os_error()
        .is_some_and(|code| EXHAUSTED.contains(&code))
}

/// Tracks accept failures and decides when to pause.
#[derive(Debug)]
pub struct AcceptBackoff {
    pause: Duration,
    exhausted: bool,
}

impl AcceptBackoff {
    /// Pauses of `pause` after resource exhaustion.
    pub fn new(pause: Duration) -> Self {
        AcceptBackoff {
            pause,
            exhausted: false,
        }
    }

    /// An accept failed: returns how long to stop accepting, if at all.
    pub fn failed(&mut self, err: &io::Error) -> Option<Duration> {
        if is_resource_exhaustion(err) {
            if !self.exhausted {
                tracing::warn!(
                    error = %err,
                    pause = ?self.pause,
                    "accept failed for lack of resources; pausing accepts, serving existing connections"
                );
                self.exhausted = true;
            }
            Some(self.pause)
        } else {
            tracing::debug!(error = %err, "accept failed; continuing");
            None
        }
    }

    /// An accept succeeded.
    pub fn succeeded(&mut self) {
        if self.exhausted {
            tracing::warn!("accepting connections again");
            self.exhausted = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_only_for_exhaustion() {
        let mut backoff = AcceptBackoff::new(Duration::from_millis(100));
        let emfile = io::Error::from_raw_os_error(24);
        let aborted = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert!(is_resource_exhaustion(&emfile));
        assert_eq!(backoff.failed(&emfile), Some(Duration::from_millis(100)));
        assert_eq!(backoff.failed(&emfile), Some(Duration::from_millis(100)));
        assert_eq!(backoff.failed(&aborted), None);
        backoff.succeeded();
        assert!(!backoff.exhausted);
    }
}
