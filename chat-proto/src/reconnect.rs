//! When a client should try to reconnect: exponential backoff with jitter.
//!
//! Transports that reconnect a lost client ask a [`Backoff`] how long to
//! wait before each attempt; the policy lives here so that every transport
//! waits the same way. The delay doubles from `initial` up to `max`, and each
//! delay is drawn at random from its upper half ("equal jitter"), so clients
//! that lost the same server at the same moment do not all come back at once.
//! The randomness is a small xorshift generator seeded by the caller: the
//! core reads no clock and no entropy source.
//!
//! ```
//! use std::time::Duration;
//! use chat_proto::{Backoff, ReconnectPolicy};
//!
//! let policy = ReconnectPolicy {
//!     initial: Duration::from_millis(100),
//!     max: Duration::from_secs(2),
//!     max_attempts: Some(6),
//! };
//! let mut backoff = Backoff::new(policy, 42);
//! let delays: Vec<Duration> = std::iter::from_fn(|| backoff.next_delay()).collect();
//! assert_eq!(delays.len(), 6);
//! assert!(delays[0] >= Duration::from_millis(50) && delays[0] <= Duration::from_millis(100));
//! assert!(delays[5] >= Duration::from_secs(1) && delays[5] <= Duration::from_secs(2));
//! backoff.reset();
//! assert!(backoff.next_delay().unwrap() <= Duration::from_millis(100));
//! ```

use std::time::Duration;

/// How a client reconnects after losing its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// The first delay's upper bound. Default 100 ms.
    pub initial: Duration,
    /// The largest delay. Default 30 s.
    pub max: Duration,
    /// Attempts before giving up; `None` never gives up. Default `None`.
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            max_attempts: None,
        }
    }
}

/// The delays before successive reconnection attempts.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: ReconnectPolicy,
    attempt: u32,
    state: u64,
}

impl Backoff {
    /// A backoff following `policy`, with jitter drawn from `seed`.
    pub fn new(policy: ReconnectPolicy, seed: u64) -> Self {
        Backoff {
            policy,
            attempt: 0,
            // Scramble the seed (splitmix64) so that nearby seeds give
            // unrelated sequences; xorshift must not start at zero.
            state: splitmix64(seed) | 1,
        }
    }

    /// Attempts made since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The delay before the next attempt, or `None` once `max_attempts`
    /// have been made.
    pub fn next_delay(&mut self) -> Option<Duration> {
        if self
            .policy
            .max_attempts
            .is_some_and(|max| self.attempt >= max)
        {
            return None;
        }
        let doubling = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        let ceiling = self
            .policy
            .initial
            .saturating_mul(doubling)
            .min(self.policy.max);
        self.attempt += 1;
        let half = ceiling / 2;
        let fraction = (self.next_random() >> 11) as f64 / (1u64 << 53) as f64;
        Some(half + half.mul_f64(fraction))
    }

    /// Starts over after a successful connection.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    fn next_random(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        x
    }
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_maximum_within_their_jitter() {
        let policy = ReconnectPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            max_attempts: None,
        };
        let mut backoff = Backoff::new(policy, 7);
        let ceilings = [100, 200, 400, 800, 1000, 1000, 1000];
        for ms in ceilings {
            let d = backoff.next_delay().unwrap();
            let ceiling = Duration::from_millis(ms);
            assert!(d >= ceiling / 2 && d <= ceiling, "{d:?} vs {ceiling:?}");
        }
        // Far along it neither overflows nor passes the maximum.
        for _ in 0..100 {
            assert!(backoff.next_delay().unwrap() <= Duration::from_secs(1));
        }
    }

    #[test]
    fn seeds_spread_the_delays() {
        let policy = ReconnectPolicy::default();
        let firsts: std::collections::HashSet<Duration> = (0..20)
            .map(|seed| Backoff::new(policy, seed).next_delay().unwrap())
            .collect();
        assert!(firsts.len() > 10);
    }

    #[test]
    fn gives_up_after_max_attempts() {
        let policy = ReconnectPolicy {
            max_attempts: Some(2),
            ..ReconnectPolicy::default()
        };
        let mut backoff = Backoff::new(policy, 1);
        assert!(backoff.next_delay().is_some());
        assert!(backoff.next_delay().is_some());
        assert_eq!(backoff.next_delay(), None);
        assert_eq!(backoff.attempts(), 2);
        backoff.reset();
        assert!(backoff.next_delay().is_some());
    }
}
