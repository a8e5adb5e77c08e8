//! What the hub owes each connection, and how it is handed to the adapter.
//!
//! A connection's output is an ordered queue of segments: private frames
//! (its answers, pongs, presence, private messages, notices), queued as
//! spans of the hub's [`Log`](super::log::Log) and frozen into shared
//! slices at each drain, and ranges of a room's log ("room R up to offset
//! O"), which stay in the room until handed out. Room messages therefore
//! cost a member nothing until it is ready to take them, and a burst in a
//! busy room is held once, in the room, not once per member.
//!
//! Output is handed out within a window (`send_window`): at most that many
//! bytes may be handed out and not yet reported written. A connection whose
//! window is full is handed more only once the adapter reports writes, so
//! what sits in an adapter's buffers is bounded per connection, and a
//! reader that falls behind leaves its backlog in the room, where flow
//! control sees it.
//!
//! Private output is bounded per connection: queued private bytes plus
//! bytes in flight may fill `outbound_limit` only up to [`CLOSE_RESERVE`]
//! below it; the reserve is kept for the frame that explains a close, so the
//! limit itself is never passed.

use std::collections::VecDeque;

use bytes::Bytes;

use super::conns::ConnId;
use super::log::{Frozen, Span};
pub(super) use crate::config::CLOSE_RESERVE;

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

/// The private output would pass the connection's bound.
#[derive(Debug)]
pub(super) struct Overflow;

/// One piece of a connection's queued output.
#[derive(Debug)]
pub(super) enum Segment {
    /// Private frames in the unfrozen log.
    Span(Span),
    /// Private frames, frozen.
    Bytes(Bytes),
    /// The messages of room `room` (a slab index) from the member's cursor
    /// up to offset `to`.
    Room { room: u32, to: u64 },
}

/// One connection's output: queued, handed out, not yet written.
#[derive(Debug, Default)]
pub(super) struct Outbound {
    queue: VecDeque<Segment>,
    /// Bytes of private segments queued.
    private: usize,
    /// Bytes handed out and not yet reported written.
    pub(super) in_flight: usize,
    /// In the hub's ready list.
    pub(super) ready: bool,
    /// Holds spans of the current (unfrozen) log.
    has_spans: bool,
    /// Listed by the hub among the connections to freeze.
    noted: bool,
}

impl Outbound {
    /// Bytes owed privately or in flight: what `outbound_limit` bounds.
    pub(super) fn unflushed(&self) -> usize {
        self.private + self.in_flight
    }

    /// Bytes of private frames queued and not handed out.
    pub(super) fn private_queued(&self) -> usize {
        self.private
    }

    /// Whether anything waits to be handed out.
    pub(super) fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Whether anything is queued or in flight.
    pub(super) fn is_pending(&self) -> bool {
        self.has_queued() || self.in_flight > 0
    }

    /// Queues a private span unless that would pass `limit` less the
    /// [`CLOSE_RESERVE`].
    pub(super) fn push(&mut self, span: Span, limit: usize) -> Result<(), Overflow> {
        if self.unflushed() + span.len() + CLOSE_RESERVE > limit {
            return Err(Overflow);
        }
        self.push_span(span);
        Ok(())
    }

    fn push_span(&mut self, span: Span) {
        self.private += span.len();
        self.has_spans = true;
        if let Some(Segment::Span(last)) = self.queue.back_mut()
            && last.end == span.start
        {
            last.end = span.end;
        } else {
            self.queue.push_back(Segment::Span(span));
        }
    }

    /// Queues the last frame before a close (`bye:`, `err:`), which may use
    /// the reserve. If it does not fit the bound even so, the output not yet
    /// handed out is dropped to make room (the peer is not reading it
    /// anyway); if it still does not fit, it is dropped too. The bound is
    /// never passed.
    pub(super) fn push_last(&mut self, span: Span, limit: usize) {
        if self.unflushed() + span.len() > limit {
            self.drop_queued();
        }
        if self.unflushed() + span.len() <= limit {
            self.push_span(span);
        }
    }

    /// Drops everything not yet handed out.
    pub(super) fn drop_queued(&mut self) {
        self.queue.clear();
        self.private = 0;
    }

    /// Queues the messages of room `room` up to `to` after what is queued.
    pub(super) fn push_room(&mut self, room: u32, to: u64) {
        if let Some(Segment::Room { room: r, to: last }) = self.queue.back_mut()
            && *r == room
        {
            *last = to;
        } else {
            self.queue.push_back(Segment::Room { room, to });
        }
    }

    /// Whether the hub listed this connection among those to freeze.
    pub(super) fn has_spans_noted(&self) -> bool {
        self.noted
    }

    /// The hub listed this connection among those to freeze.
    pub(super) fn note_spans(&mut self) {
        self.noted = true;
    }

    /// Turns queued spans into slices of the frozen log.
    pub(super) fn freeze(&mut self, frozen: &Frozen) {
        self.noted = false;
        if !std::mem::take(&mut self.has_spans) {
            return;
        }
        for segment in &mut self.queue {
            if let Segment::Span(span) = segment {
                *segment = Segment::Bytes(frozen.slice(*span));
            }
        }
    }

    /// The room ranges queued for room `room`, removed from the queue (the
    /// connection leaves it); each is replaced by what `owed` gives for
    /// it, in place, so the order of the output is kept.
    pub(super) fn take_room(&mut self, room: u32, mut owed: impl FnMut(u64) -> Vec<Bytes>) {
        let mut queue = VecDeque::with_capacity(self.queue.len());
        for segment in self.queue.drain(..) {
            match segment {
                Segment::Room { room: r, to } if r == room => {
                    for b in owed(to) {
                        self.private += b.len();
                        queue.push_back(Segment::Bytes(b));
                    }
                }
                other => queue.push_back(other),
            }
        }
        self.queue = queue;
    }

    /// The first queued segment.
    pub(super) fn front(&self) -> Option<&Segment> {
        self.queue.front()
    }

    /// Takes the first segment, which is private and frozen, to hand out.
    pub(super) fn pop_bytes(&mut self) -> Option<Bytes> {
        match self.queue.front() {
            Some(Segment::Bytes(_)) => {}
            _ => return None,
        }
        let Some(Segment::Bytes(b)) = self.queue.pop_front() else {
            unreachable!("checked above")
        };
        self.private -= b.len();
        self.in_flight += b.len();
        Some(b)
    }

    /// The first segment, a room range, was handed out up to its end.
    pub(super) fn pop_room(&mut self) {
        debug_assert!(matches!(self.queue.front(), Some(Segment::Room { .. })));
        self.queue.pop_front();
    }

    /// The adapter wrote `n` more bytes of what was handed out. Once
    /// everything is written the queue gives its memory back: a burst (a
    /// room's presence frames at login, a `who:` answer) must not leave an
    /// idle connection holding a queue sized for it.
    pub(super) fn written(&mut self, n: usize) {
        self.in_flight = self.in_flight.saturating_sub(n);
        if self.in_flight == 0 && self.queue.is_empty() && self.queue.capacity() > 0 {
            self.queue = VecDeque::new();
        }
    }

    /// Drops everything (the socket is gone).
    pub(super) fn clear(&mut self) {
        *self = Outbound::default();
    }
}

/// Connections with output to hand out, in the order they got it.
#[derive(Debug, Default)]
pub(super) struct Ready {
    order: VecDeque<ConnId>,
    /// Connections whose queue holds spans of the unfrozen log.
    spanned: Vec<ConnId>,
}

impl Ready {
    pub(super) fn push(&mut self, id: ConnId) {
        self.order.push_back(id);
    }

    pub(super) fn pop(&mut self) -> Option<ConnId> {
        self.order.pop_front()
    }

    /// Notes that `id` holds spans of the unfrozen log.
    pub(super) fn spanned(&mut self, id: ConnId) {
        self.spanned.push(id);
    }

    /// The connections that hold spans, to freeze, emptied.
    pub(super) fn take_spanned(&mut self) -> Vec<ConnId> {
        std::mem::take(&mut self.spanned)
    }
}

#[cfg(test)]
mod tests {
    use super::super::log::Log;
    use super::*;

    fn raw(log: &mut Log, text: &str) -> Span {
        log.append(text.len(), |buf| buf.extend_from_slice(text.as_bytes()))
    }

    fn take_all(out: &mut Outbound, log: &mut Log) -> Vec<u8> {
        out.freeze(&log.freeze());
        let mut bytes = Vec::new();
        while let Some(b) = out.pop_bytes() {
            bytes.extend_from_slice(&b);
        }
        bytes
    }

    #[test]
    fn private_output_is_batched_and_bounded() {
        let mut log = Log::default();
        let mut out = Outbound::default();
        let limit = 20 + CLOSE_RESERVE;
        out.push(raw(&mut log, "msg:x:1\n"), limit).unwrap();
        out.push(raw(&mut log, "msg:x:2\n"), limit).unwrap();
        assert!(out.push(raw(&mut log, "msg:x:3\n"), limit).is_err());
        out.freeze(&log.freeze());
        // Two frames adjacent in the log: one slice.
        assert_eq!(&out.pop_bytes().unwrap()[..], b"msg:x:1\nmsg:x:2\n");
        assert!(out.pop_bytes().is_none());
        assert_eq!((out.unflushed(), out.in_flight), (16, 16));
        out.written(10);
        assert_eq!(out.unflushed(), 6);
    }

    #[test]
    fn an_idle_queue_holds_no_memory() {
        let mut log = Log::default();
        let mut out = Outbound::default();
        for i in 0..20 {
            // Separate spans, as frames from separate drains would be.
            out.push(raw(&mut log, &format!("join:{i}\n")), 1 << 20)
                .unwrap();
            out.push_room(i, 1);
        }
        assert!(out.queue.capacity() >= 40);
        out.freeze(&log.freeze());
        let mut n = 0;
        while let Some(front) = out.front() {
            match front {
                Segment::Room { .. } => out.pop_room(),
                _ => n += out.pop_bytes().unwrap().len(),
            }
        }
        // Handed out, not yet written: the queue is kept.
        out.written(n - 1);
        assert!(out.queue.capacity() > 0);
        out.written(1);
        assert_eq!((out.queue.capacity(), out.unflushed()), (0, 0));
        // And it works as before afterwards.
        out.push(raw(&mut log, "msg:x:y\n"), 1 << 20).unwrap();
        assert_eq!(take_all(&mut out, &mut log), b"msg:x:y\n");
    }

    #[test]
    fn the_last_frame_never_passes_the_bound() {
        let mut log = Log::default();
        let mut out = Outbound::default();
        let limit = 20 + CLOSE_RESERVE;
        let frame = raw(&mut log, "msg:x:y\n");
        out.push(frame, limit).unwrap();
        out.push(frame, limit).unwrap();
        // The reserve holds the last frame.
        out.push_last(raw(&mut log, "err:timeout:x\n"), limit);
        assert_eq!(out.unflushed(), 30);
        assert_eq!(
            take_all(&mut out, &mut log),
            b"msg:x:y\nmsg:x:y\nerr:timeout:x\n"
        );
        // Beyond the reserve, output not handed out makes room; handed-out
        // bytes cannot be taken back.
        out.push(raw(&mut log, "msg:x:y\n"), 1000).unwrap();
        let big = "x".repeat(limit - 30);
        out.push_last(raw(&mut log, &big), limit);
        assert_eq!(out.unflushed(), limit);
        assert_eq!(take_all(&mut out, &mut log), big.as_bytes());
        out.push_last(raw(&mut log, "bye:0123\n"), limit);
        assert_eq!(out.unflushed(), limit);
        assert!(!out.has_queued());
    }

    #[test]
    fn room_ranges_keep_their_place_among_private_frames() {
        let mut log = Log::default();
        let mut out = Outbound::default();
        out.push_room(3, 5);
        out.push_room(3, 7);
        out.push(raw(&mut log, "left:a\n"), 1 << 20).unwrap();
        out.push_room(3, 9);
        out.push_room(4, 1);
        // Leaving room 3: its ranges become what it is owed, in place.
        out.take_room(3, |to| vec![Bytes::from(format!("<{to}>"))]);
        out.freeze(&log.freeze());
        let mut order = Vec::new();
        while let Some(front) = out.front() {
            match front {
                Segment::Room { room, to } => {
                    order.push(format!("room{room}:{to}"));
                    out.pop_room();
                }
                _ => order.push(String::from_utf8(out.pop_bytes().unwrap().to_vec()).unwrap()),
            }
        }
        assert_eq!(order, ["<7>", "left:a\n", "<9>", "room4:1"]);
    }
}
