//! The hub's timer queue: one lazy min-heap entry per connection.
//!
//! A connection's deadline (login timeout, next ping, ping timeout) moves
//! later every time bytes arrive, which can be thousands of times a second.
//! Re-sorting a heap on every input would cost `O(log n)` per read; instead a
//! connection keeps at most one entry, and input never touches the heap.
//! When an entry comes due, the hub recomputes the connection's real
//! deadline: if it has moved on, the entry is pushed again for the new time.
//! A connection that chats all day thus costs one heap operation per idle
//! period, an idle one two per ping, and nothing ever scans the connections.
//!
//! Entries of closed connections are recognised by their generation and
//! dropped when they surface.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::conns::ConnId;

/// A min-heap of `(deadline, slot)`.
#[derive(Debug, Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, ConnId)>>,
}

impl Timers {
    /// Adds an entry; the caller records `at` as the slot's armed deadline.
    pub(super) fn push(&mut self, at: Instant, slot: ConnId) {
        self.heap.push(Reverse((at, slot)));
    }

    /// The earliest entry, which may be stale (then the wake-up is early,
    /// which is harmless).
    pub(super) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<(Instant, ConnId)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// Entries held, stale ones included.
    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_deadline_order_only_when_due() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut timers = Timers::default();
        let slot = |i| ConnId {
            index: i,
            generation: 0,
        };
        timers.push(t0 + 3 * s, slot(3));
        timers.push(t0 + s, slot(1));
        timers.push(t0 + 2 * s, slot(2));
        assert_eq!(timers.next(), Some(t0 + s));
        assert_eq!(timers.pop_due(t0), None);
        assert_eq!(timers.pop_due(t0 + 2 * s), Some((t0 + s, slot(1))));
        assert_eq!(timers.pop_due(t0 + 2 * s), Some((t0 + 2 * s, slot(2))));
        assert_eq!(timers.pop_due(t0 + 2 * s), None);
        assert_eq!(timers.len(), 1);
    }
}
