//! The hub's connections: a slab of small records, and their output queues.
//!
//! Connection ids are slab indices with a generation, so an id the adapter
//! still holds after its connection closed can never reach the connection
//! that later reuses the slot: every call with a stale id is ignored.
//!
//! Per connection the hub keeps about 200 bytes and no buffer: the decoder
//! allocates only while a partial frame is pending, and the output queue only
//! while frames wait to be handed to the adapter. Output is queued as spans
//! of the hub's [`Log`](super::log::Log) (a broadcast is encoded once and
//! each recipient records where it is) and handed out per connection as
//! slices of one shared buffer, so the adapter writes each batch in as few
//! syscalls and iovecs as possible.

use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

use bytes::Bytes;

use super::log::{Frozen, Span, push_span};
use super::rate::Bucket;
use crate::decode::Decoder;
use crate::keepalive::Liveness;

/// Identifies one connection of a [`Hub`](crate::Hub).
///
/// [`index`](ConnId::index) is small and dense (a slab position, reused once
/// the connection is gone), so an adapter can keep its own per-connection
/// state in a `Vec` indexed by it; [`generation`](ConnId::generation) tells
/// successive users of one index apart.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl ConnId {
    /// The slab position, below the number of connections ever open at once.
    pub fn index(self) -> usize {
        self.index as usize
    }

    /// How many earlier connections used the same index.
    pub fn generation(self) -> u32 {
        self.generation
    }
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}.{}", self.index, self.generation)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Bytes the hub wants written to one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The connection to write to.
    pub conn: ConnId,
    /// The bytes, as chunks to be written in order (for example with one
    /// vectored write). Whole frames only; never empty.
    pub data: Vec<Bytes>,
}

impl Transmit {
    /// Total bytes in `data`.
    pub fn len(&self) -> usize {
        self.data.iter().map(Bytes::len).sum()
    }

    /// Whether `data` holds no bytes (never true for a transmit the hub
    /// hands out).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// The slot is unused.
    Free,
    /// Accepted, not logged in.
    Anonymous,
    /// Logged in: in the room.
    Member,
    /// The hub asked for the close; waiting for the adapter to take it.
    Closing,
}

/// One connection's state.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) generation: u32,
    pub(super) phase: Phase,
    pub(super) decoder: Decoder,
    pub(super) liveness: Liveness,
    pub(super) accepted: Instant,
    /// The deadline of this connection's entry in the timer heap.
    pub(super) timer_at: Option<Instant>,
    /// Position in the room's member list, while `phase` is `Member`.
    pub(super) member_index: u32,
    /// Bytes queued or handed out and not yet reported written.
    pub(super) unflushed: usize,
    /// Queued output in the unfrozen log, not yet handed out.
    pub(super) spans: Vec<Span>,
    /// Queued output already sliced from a frozen log, not yet handed out.
    pub(super) pending: Vec<Bytes>,
    pub(super) bucket: Option<Bucket>,
}

impl Conn {
    pub(super) fn is_active(&self) -> bool {
        matches!(self.phase, Phase::Anonymous | Phase::Member)
    }
}

/// Room kept free under each connection's outbound limit for the frame that
/// explains a close (`err:slow-consumer`, `err:timeout`, ...): ordinary
/// frames may fill the limit only up to this much below it.
pub(super) const CLOSE_RESERVE: usize = 256;

/// The output queue would pass the connection's bound.
#[derive(Debug)]
pub(super) struct Overflow;

/// The slab of connections.
#[derive(Debug, Default)]
pub(super) struct Conns {
    slots: Vec<Conn>,
    free: Vec<u32>,
    /// Slots whose `pending` became non-empty, in that order.
    dirty: VecDeque<u32>,
    /// Connections in `Anonymous` or `Member`.
    active: usize,
}

impl Conns {
    /// Takes a free slot (or a new one) for a connection accepted at `now`.
    pub(super) fn alloc(
        &mut self,
        now: Instant,
        max_frame_len: usize,
        bucket: Option<Bucket>,
    ) -> ConnId {
        let fresh = |generation| Conn {
            generation,
            phase: Phase::Anonymous,
            decoder: Decoder::new(max_frame_len),
            liveness: Liveness::new(now),
            accepted: now,
            timer_at: None,
            member_index: 0,
            unflushed: 0,
            spans: Vec::new(),
            pending: Vec::new(),
            bucket,
        };
        self.active += 1;
        match self.free.pop() {
            Some(index) => {
                let slot = &mut self.slots[index as usize];
                *slot = fresh(slot.generation.wrapping_add(1));
                ConnId {
                    index,
                    generation: slot.generation,
                }
            }
            None => {
                let index = u32::try_from(self.slots.len()).expect("fewer than 2^32 connections");
                self.slots.push(fresh(0));
                ConnId {
                    index,
                    generation: 0,
                }
            }
        }
    }

    /// The connection `id` names, unless it is gone.
    pub(super) fn get(&self, id: ConnId) -> Option<&Conn> {
        self.slots
            .get(id.index as usize)
            .filter(|c| c.generation == id.generation && c.phase != Phase::Free)
    }

    /// The connection `id` names, unless it is gone.
    pub(super) fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.slots
            .get_mut(id.index as usize)
            .filter(|c| c.generation == id.generation && c.phase != Phase::Free)
    }

    /// The connection in slot `index`; the caller knows it is in use.
    pub(super) fn slot(&mut self, index: u32) -> &mut Conn {
        &mut self.slots[index as usize]
    }

    /// The id of the connection in slot `index`.
    pub(super) fn id(&self, index: u32) -> ConnId {
        ConnId {
            index,
            generation: self.slots[index as usize].generation,
        }
    }

    /// Connections accepted and not closing.
    pub(super) fn active(&self) -> usize {
        self.active
    }

    /// Every connection in use, with its id.
    pub(super) fn iter(&self) -> impl Iterator<Item = (ConnId, &Conn)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, c)| c.phase != Phase::Free)
            .map(|(i, c)| {
                let index = i as u32;
                (
                    ConnId {
                        index,
                        generation: c.generation,
                    },
                    c,
                )
            })
    }

    /// Queues `span` for slot `index`, unless that would pass `limit`
    /// unflushed bytes, less the [`CLOSE_RESERVE`].
    pub(super) fn enqueue(&mut self, index: u32, span: Span, limit: usize) -> Result<(), Overflow> {
        let conn = &mut self.slots[index as usize];
        if conn.unflushed + span.len() + CLOSE_RESERVE > limit {
            return Err(Overflow);
        }
        self.push(index, span);
        Ok(())
    }

    /// Queues the last frame before a close (`bye:`, `err:`), which may use
    /// the reserve. If it does not fit the bound even so, the output not yet
    /// handed out is dropped to make room (the peer is not reading it
    /// anyway); if it still does not fit, it is dropped too. The bound is
    /// never passed.
    pub(super) fn enqueue_last(&mut self, index: u32, span: Span, limit: usize) {
        let conn = &mut self.slots[index as usize];
        if conn.unflushed + span.len() > limit {
            let dropped: usize = conn.spans.drain(..).map(Span::len).sum::<usize>()
                + conn.pending.drain(..).map(|b| b.len()).sum::<usize>();
            conn.unflushed -= dropped;
        }
        if conn.unflushed + span.len() <= limit {
            self.push(index, span);
        }
    }

    fn push(&mut self, index: u32, span: Span) {
        let conn = &mut self.slots[index as usize];
        conn.unflushed += span.len();
        if conn.spans.is_empty() && conn.pending.is_empty() {
            self.dirty.push_back(index);
        }
        push_span(&mut conn.spans, span);
    }

    /// The log was frozen: turn every queued span into a slice of it.
    pub(super) fn freeze_spans(&mut self, frozen: &Frozen) {
        for &index in &self.dirty {
            let conn = &mut self.slots[index as usize];
            let slices = conn.spans.drain(..).map(|span| frozen.slice(span));
            conn.pending.extend(slices);
        }
    }

    /// Marks slot `index` as closing.
    pub(super) fn set_closing(&mut self, index: u32) {
        let conn = &mut self.slots[index as usize];
        debug_assert!(conn.is_active());
        conn.phase = Phase::Closing;
        conn.decoder = Decoder::new(conn.decoder.max_frame_len());
        self.active -= 1;
    }

    /// Returns slot `index` to the free list, dropping anything queued.
    pub(super) fn free(&mut self, index: u32) {
        let conn = &mut self.slots[index as usize];
        if conn.is_active() {
            self.active -= 1;
        }
        conn.phase = Phase::Free;
        conn.spans = Vec::new();
        conn.pending = Vec::new();
        conn.decoder = Decoder::new(conn.decoder.max_frame_len());
        conn.unflushed = 0;
        conn.timer_at = None;
        self.free.push(index);
    }

    /// The next connection's queued bytes; call
    /// [`freeze_spans`](Self::freeze_spans) first.
    pub(super) fn poll_transmit(&mut self) -> Option<Transmit> {
        while let Some(index) = self.dirty.pop_front() {
            let conn = &mut self.slots[index as usize];
            if conn.pending.is_empty() {
                continue;
            }
            return Some(Transmit {
                conn: ConnId {
                    index,
                    generation: conn.generation,
                },
                data: std::mem::take(&mut conn.pending),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::log::Log;
    use super::*;

    #[test]
    fn stale_ids_do_not_reach_a_reused_slot() {
        let now = Instant::now();
        let mut conns = Conns::default();
        let a = conns.alloc(now, 4096, None);
        let b = conns.alloc(now, 4096, None);
        assert_eq!((a.index(), b.index()), (0, 1));
        assert_eq!(conns.active(), 2);
        conns.free(a.index);
        assert!(conns.get(a).is_none());
        let c = conns.alloc(now, 4096, None);
        assert_eq!(c.index(), 0);
        assert_eq!(c.generation(), 1);
        assert!(conns.get(a).is_none());
        assert!(conns.get(c).is_some());
        assert_eq!(format!("{c}"), "conn#0.1");
    }

    fn raw(log: &mut Log, text: &str) -> Span {
        log.append(text.len(), |buf| buf.extend_from_slice(text.as_bytes()))
    }

    fn transmit(conns: &mut Conns, log: &mut Log) -> Option<Transmit> {
        if !log.is_empty() {
            conns.freeze_spans(&log.freeze());
        }
        conns.poll_transmit()
    }

    #[test]
    fn output_is_batched_per_connection_and_bounded() {
        let now = Instant::now();
        let mut conns = Conns::default();
        let mut log = Log::default();
        let a = conns.alloc(now, 4096, None);
        let b = conns.alloc(now, 4096, None);
        let limit = 20 + CLOSE_RESERVE;
        let first = raw(&mut log, "msg:x:1\n");
        conns.enqueue(a.index, first, limit).unwrap();
        conns.enqueue(b.index, first, limit).unwrap();
        let second = raw(&mut log, "msg:x:2\n");
        conns.enqueue(a.index, second, limit).unwrap();
        assert!(
            conns
                .enqueue(a.index, raw(&mut log, "msg:x:3\n"), limit)
                .is_err()
        );
        // a's two frames are adjacent in the log: one slice.
        let t = transmit(&mut conns, &mut log).unwrap();
        assert_eq!((t.conn, t.data.len(), t.len()), (a, 1, 16));
        assert_eq!(t.data.concat(), b"msg:x:1\nmsg:x:2\n");
        let t = transmit(&mut conns, &mut log).unwrap();
        assert_eq!((t.conn, t.data.concat()), (b, b"msg:x:1\n".to_vec()));
        assert!(transmit(&mut conns, &mut log).is_none());
        assert_eq!(conns.get(a).unwrap().unflushed, 16);
    }

    #[test]
    fn the_last_frame_never_passes_the_bound() {
        let now = Instant::now();
        let mut conns = Conns::default();
        let mut log = Log::default();
        let a = conns.alloc(now, 4096, None);
        let limit = 20 + CLOSE_RESERVE;
        let frame = raw(&mut log, "msg:x:y\n");
        conns.enqueue(a.index, frame, limit).unwrap();
        conns.enqueue(a.index, frame, limit).unwrap();
        // The reserve holds the last frame.
        conns.enqueue_last(a.index, raw(&mut log, "err:timeout:x\n"), limit);
        assert_eq!(conns.get(a).unwrap().unflushed, 30);
        let t = transmit(&mut conns, &mut log).unwrap();
        assert_eq!(t.data.concat(), b"msg:x:y\nmsg:x:y\nerr:timeout:x\n");
        // Beyond the reserve, output not handed out makes room; handed-out
        // bytes cannot be taken back.
        conns
            .enqueue(a.index, raw(&mut log, "msg:x:y\n"), 1000)
            .unwrap();
        let big = "x".repeat(limit - 30);
        conns.enqueue_last(a.index, raw(&mut log, &big), limit);
        assert_eq!(conns.get(a).unwrap().unflushed, limit);
        assert_eq!(
            transmit(&mut conns, &mut log).unwrap().data.concat(),
            big.as_bytes()
        );
        conns.enqueue_last(a.index, raw(&mut log, "bye:0123\n"), limit);
        assert_eq!(conns.get(a).unwrap().unflushed, limit);
        assert!(transmit(&mut conns, &mut log).is_none());
    }
}
