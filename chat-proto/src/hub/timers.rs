//! The hub's timer queue: a lazy min-heap with at most a few entries per
//! connection or room.
//!
//! A connection's deadline (login timeout, next ping, ping timeout) moves
//! later every time bytes arrive, which can be thousands of times a second.
//! Re-sorting a heap on every input would cost `O(log n)` per read; instead a
//! connection keeps at most one entry per kind of timer ([`TimerKey`]), and
//! input never touches the heap. When an entry comes due, the hub recomputes
//! the real deadline: if it has moved on, the entry is pushed again for the
//! new time. A connection that chats all day thus costs one heap operation
//! per idle period, an idle one two per ping, and nothing ever scans the
//! connections.
//!
//! Entries of closed connections and removed rooms are recognised by their
//! generation and dropped when they surface.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::conns::ConnId;
use super::rooms::RoomId;

/// What a timer entry is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum TimerKey {
    /// A connection's login, keepalive, rate-limit or close deadline.
    Conn(ConnId),
    /// A connection's write timeout: output pending and no progress.
    Write(ConnId),
    /// A room whose senders are paused: when its slowest readers have held
    /// it too long.
    Room(RoomId),
}

/// A min-heap of `(deadline, key)`.
#[derive(Debug, Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, TimerKey)>>,
}

impl Timers {
    /// Adds an entry; the caller records `at` as the armed deadline.
    pub(super) fn push(&mut self, at: Instant, key: TimerKey) {
        self.heap.push(Reverse((at, key)));
    }

    /// The earliest entry, which may be stale (then the wake-up is early,
    /// which is harmless).
    pub(super) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<(Instant, TimerKey)> {
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
        let slot = |i| {
            TimerKey::Conn(ConnId {
                index: i,
                generation: 0,
            })
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
