//! What the hub owes each connection, and how it is handed to the adapter.
//!
//! Output is queued as spans of the hub's [`Log`](super::log::Log) (a
//! broadcast is encoded once and each recipient records where it is) and
//! handed out per connection as slices of one shared buffer, so the adapter
//! writes each batch in as few system calls and iovecs as possible.
//!
//! Every byte queued or handed out counts against the connection's
//! `outbound_limit` until the adapter reports it written. Ordinary frames
//! may fill the limit only up to [`CLOSE_RESERVE`] below it; the reserve
//! is kept for the frame that explains a close, so the limit itself is never
//! passed.

use std::collections::VecDeque;

use bytes::Bytes;

use super::conns::ConnId;
use super::log::{Frozen, Span, push_span};

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

/// Room kept free under each connection's outbound limit for the frame that
/// explains a close (`err:slow-consumer`, `err:timeout`, ...): ordinary
/// frames may fill the limit only up to this much below it.
pub(super) const CLOSE_RESERVE: usize = 256;

/// The output queue would pass the connection's bound.
#[derive(Debug)]
pub(super) struct Overflow;

/// One connection's output: queued, handed out, not yet written.
#[derive(Debug, Default)]
pub(super) struct Outbound {
    /// Bytes queued or handed out and not yet reported written.
    pub(super) unflushed: usize,
    /// Queued output in the unfrozen log, not yet handed out.
    spans: Vec<Span>,
    /// Queued output already sliced from a frozen log, not yet handed out.
    pending: Vec<Bytes>,
}

impl Outbound {
    /// Whether anything waits to be handed out.
    pub(super) fn has_queued(&self) -> bool {
        !self.spans.is_empty() || !self.pending.is_empty()
    }

    /// Queues `span` unless that would pass `limit` less the
    /// [`CLOSE_RESERVE`]. `Ok(true)` when the queue was empty before (the
    /// connection must then be marked ready).
    pub(super) fn push(&mut self, span: Span, limit: usize) -> Result<bool, Overflow> {
        if self.unflushed + span.len() + CLOSE_RESERVE > limit {
            return Err(Overflow);
        }
        Ok(self.push_unchecked(span))
    }

    /// Queues the last frame before a close (`bye:`, `err:`), which may use
    /// the reserve. If it does not fit the bound even so, the output not yet
    /// handed out is dropped to make room (the peer is not reading it
    /// anyway); if it still does not fit, it is dropped too. The bound is
    /// never passed. Returns whether the queue was empty before.
    pub(super) fn push_last(&mut self, span: Span, limit: usize) -> bool {
        if self.unflushed + span.len() > limit {
            let dropped: usize = self.spans.drain(..).map(Span::len).sum::<usize>()
                + self.pending.drain(..).map(|b| b.len()).sum::<usize>();
            self.unflushed -= dropped;
        }
        if self.unflushed + span.len() <= limit {
            self.push_unchecked(span)
        } else {
            false
        }
    }

    fn push_unchecked(&mut self, span: Span) -> bool {
        let was_empty = !self.has_queued();
        self.unflushed += span.len();
        push_span(&mut self.spans, span);
        was_empty
    }

    /// The log was frozen: turns every queued span into a slice of it.
    pub(super) fn freeze(&mut self, frozen: &Frozen) {
        let slices = self.spans.drain(..).map(|span| frozen.slice(span));
        self.pending.extend(slices);
    }

    /// Takes what is queued, to hand it out (call [`freeze`](Self::freeze)
    /// first).
    pub(super) fn take(&mut self) -> Vec<Bytes> {
        debug_assert!(self.spans.is_empty());
        std::mem::take(&mut self.pending)
    }

    /// The adapter wrote `n` more bytes of what was handed out.
    pub(super) fn written(&mut self, n: usize) {
        self.unflushed = self.unflushed.saturating_sub(n);
    }

    /// Drops everything queued (the connection is gone).
    pub(super) fn clear(&mut self) {
        *self = Outbound::default();
    }
}

/// Connections with output queued, in the order they got it.
#[derive(Debug, Default)]
pub(super) struct Ready {
    order: VecDeque<ConnId>,
}

impl Ready {
    pub(super) fn push(&mut self, id: ConnId) {
        self.order.push_back(id);
    }

    pub(super) fn pop(&mut self) -> Option<ConnId> {
        self.order.pop_front()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &ConnId> {
        self.order.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::super::log::Log;
    use super::*;

    fn raw(log: &mut Log, text: &str) -> Span {
        log.append(text.len(), |buf| buf.extend_from_slice(text.as_bytes()))
    }

    fn take(out: &mut Outbound, log: &mut Log) -> Vec<u8> {
        out.freeze(&log.freeze());
        out.take().concat()
    }

    #[test]
    fn output_is_batched_and_bounded() {
        let mut log = Log::default();
        let mut out = Outbound::default();
        let limit = 20 + CLOSE_RESERVE;
        assert!(out.push(raw(&mut log, "msg:x:1\n"), limit).unwrap());
        assert!(!out.push(raw(&mut log, "msg:x:2\n"), limit).unwrap());
        assert!(out.push(raw(&mut log, "msg:x:3\n"), limit).is_err());
        out.freeze(&log.freeze());
        // Two frames adjacent in the log: one slice.
        let data = out.take();
        assert_eq!(data.len(), 1);
        assert_eq!(data.concat(), b"msg:x:1\nmsg:x:2\n");
        assert_eq!(out.unflushed, 16);
        out.written(10);
        assert_eq!(out.unflushed, 6);
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
        assert_eq!(out.unflushed, 30);
        assert_eq!(
            take(&mut out, &mut log),
            b"msg:x:y\nmsg:x:y\nerr:timeout:x\n"
        );
        // Beyond the reserve, output not handed out makes room; handed-out
        // bytes cannot be taken back.
        out.push(raw(&mut log, "msg:x:y\n"), 1000).unwrap();
        let big = "x".repeat(limit - 30);
        out.push_last(raw(&mut log, &big), limit);
        assert_eq!(out.unflushed, limit);
        assert_eq!(take(&mut out, &mut log), big.as_bytes());
        out.push_last(raw(&mut log, "bye:0123\n"), limit);
        assert_eq!(out.unflushed, limit);
        assert!(!out.has_queued());
    }
}
