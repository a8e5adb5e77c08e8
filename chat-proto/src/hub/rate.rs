//! The per-connection rate limit: a token bucket.
//!
//! A bucket holds up to `burst` tokens and gains `per_second` tokens a
//! second; each frame that makes the server work for others (`msg:`,
//! `say:`, `pm:`, `who:`, `join:`, `part:`, `rooms:`) takes one. A frame that
//! finds the bucket empty is not refused: the connection's input pauses
//! until the next token is due ([`Bucket::wait`]), so TCP slows the sender
//! down and nothing is lost. Time comes from the caller, as everywhere in
//! the core.

use std::time::{Duration, Instant};

use crate::config::{Allowance, RateLimit};

/// What a bucket holds and how fast it refills.
pub(super) trait Rate {
    /// Tokens a full bucket holds.
    fn capacity(&self) -> f64;
    /// Tokens gained a second.
    fn per_second(&self) -> f64;
}

impl Rate for RateLimit {
    fn capacity(&self) -> f64 {
        f64::from(self.burst)
    }
    fn per_second(&self) -> f64 {
        f64::from(self.per_second)
    }
}

impl Rate for Allowance {
    fn capacity(&self) -> f64 {
        f64::from(self.count)
    }
    fn per_second(&self) -> f64 {
        f64::from(self.count) / self.per.as_secs_f64()
    }
}

/// The state of one connection's bucket: 24 bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    /// A full bucket.
    pub(super) fn new(limit: &impl Rate, now: Instant) -> Self {
        Bucket {
            tokens: limit.capacity(),
            refilled: now,
        }
    }

    /// Takes a token if there is one.
    pub(super) fn take(&mut self, limit: &impl Rate, now: Instant) -> bool {
        self.refill(limit, now);
        // A hair below one counts: float steps must not lose a token that
        // `wait` promised.
        if self.tokens >= 1.0 - 1e-9 {
            self.tokens = (self.tokens - 1.0).max(0.0);
            true
        } else {
            false
        }
    }

    fn refill(&mut self, limit: &impl Rate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = self.refilled.max(now);
        self.tokens = (self.tokens + elapsed * limit.per_second()).min(limit.capacity());
    }

    /// How long from `now` until a token is there (zero if one is).
    pub(super) fn wait(&mut self, limit: &impl Rate, now: Instant) -> Duration {
        self.refill(limit, now);
        let missing = (1.0 - self.tokens).max(0.0);
        // Rounded up to the next millisecond, so that the token is surely
        // there when the timer fires.
        let ms = (missing * 1000.0 / limit.per_second()).ceil();
        Duration::from_millis(ms as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn allows_a_burst_then_the_sustained_rate() {
        let limit = RateLimit {
            per_second: 10,
            burst: 3,
        };
        let t0 = Instant::now();
        let mut bucket = Bucket::new(&limit, t0);
        assert!((0..3).all(|_| bucket.take(&limit, t0)));
        assert!(!bucket.take(&limit, t0));
        // 100 ms later one token has come back, and only one.
        let t1 = t0 + Duration::from_millis(100);
        assert!(bucket.take(&limit, t1));
        assert!(!bucket.take(&limit, t1));
        // A long quiet spell refills to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| bucket.take(&limit, t2)).count(), 3);
        // Time going backwards refills nothing.
        assert!(!bucket.take(&limit, t0));
        // Empty: the next token is 100 ms away, and there when waited for.
        let wait = bucket.wait(&limit, t2);
        assert_eq!(wait, Duration::from_millis(100));
        assert!(bucket.take(&limit, t2 + wait));
        assert!(!bucket.take(&limit, t2 + wait));
    }
}
