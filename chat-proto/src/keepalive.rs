//! Keepalive: when to ping, and when the peer is dead.
//!
//! One [`Liveness`] per connection, on either side. It remembers when
//! anything was last received and whether a ping is outstanding; the owner
//! asks it for the next deadline and tells it when that deadline passes. Both
//! [`Client`](crate::Client) and [`Hub`](crate::Hub) use it, so the two sides
//! follow the same rule (PROTOCOL.md, "Keepalive"):
//!
//! * after `idle` without receiving anything, send `ping:TOKEN`;
//! * anything received (not only the pong) proves the peer alive;
//! * nothing received within `timeout` of the ping: the peer is dead.

use std::time::{Duration, Instant};

use crate::config::Keepalive;

/// What the owner must do now that a keepalive deadline has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// Nothing yet: the deadline has not been reached.
    Nothing,
    /// Send a ping now.
    Ping,
    /// The peer is dead: close the connection.
    Dead,
}

/// Keepalive state of one connection: 32 bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Liveness {
    last_received: Instant,
    ping_sent: Option<Instant>,
}

impl Liveness {
    pub(crate) fn new(now: Instant) -> Self {
        Liveness {
            last_received: now,
            ping_sent: None,
        }
    }

    /// Records that bytes arrived from the peer. Returns whether a ping was
    /// outstanding: then the deadline may have moved earlier (from
    /// `ping + timeout` to `now + idle`), which a lazy timer must be told.
    pub(crate) fn received(&mut self, now: Instant) -> bool {
        self.last_received = self.last_received.max(now);
        self.ping_sent.take().is_some()
    }

    /// When something must happen next.
    pub(crate) fn deadline(&self, config: &Keepalive) -> Instant {
        match self.ping_sent {
            Some(sent) => after(sent, config.timeout),
            None => after(self.last_received, config.idle),
        }
    }

    /// Advances to `now`: says whether to ping or give up. Calling it before
    /// the deadline, or twice, does nothing.
    pub(crate) fn poll(&mut self, now: Instant, config: &Keepalive) -> Due {
        if now < self.deadline(config) {
            return Due::Nothing;
        }
        if self.ping_sent.is_some() {
            Due::Dead
        } else {
            self.ping_sent = Some(now);
            Due::Ping
        }
    }
}

/// `t + d`, or `t` itself in the absurd case that the sum overflows
/// `Instant` (the timer then fires at once instead of panicking). Adapters
/// use it too, wherever they add a duration to an instant.
///
/// ```
/// use std::time::{Duration, Instant};
/// let now = Instant::now();
/// assert_eq!(chat_proto::after(now, Duration::from_secs(1)), now + Duration::from_secs(1));
/// assert_eq!(chat_proto::after(now, Duration::MAX), now);
/// ```
pub fn after(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn pings_after_idle_then_declares_dead_after_timeout() {
        let cfg = Keepalive::new(30 * S, 15 * S);
        let t0 = Instant::now();
        let mut k = Liveness::new(t0);
        assert_eq!(k.deadline(&cfg), t0 + 30 * S);
        assert_eq!(k.poll(t0 + 29 * S, &cfg), Due::Nothing);
        assert_eq!(k.poll(t0 + 30 * S, &cfg), Due::Ping);
        assert_eq!(k.deadline(&cfg), t0 + 45 * S);
        assert_eq!(k.poll(t0 + 44 * S, &cfg), Due::Nothing);
        assert_eq!(k.poll(t0 + 45 * S, &cfg), Due::Dead);
    }

    #[test]
    fn anything_received_resets_the_idle_timer() {
        let cfg = Keepalive::new(30 * S, 15 * S);
        let t0 = Instant::now();
        let mut k = Liveness::new(t0);
        k.received(t0 + 20 * S);
        assert_eq!(k.poll(t0 + 30 * S, &cfg), Due::Nothing);
        assert_eq!(k.poll(t0 + 50 * S, &cfg), Due::Ping);
        assert!(k.received(t0 + 51 * S));
        assert_eq!(k.deadline(&cfg), t0 + 81 * S);
        assert!(!k.received(t0 + 52 * S));
        // Time going backwards is tolerated: the later instant wins.
        k.received(t0);
        assert_eq!(k.deadline(&cfg), t0 + 82 * S);
    }
}
