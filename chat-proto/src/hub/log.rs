//! The output log: every frame the hub sends, encoded once, in one buffer.
//!
//! A broadcast to 10,000 connections must not cost 10,000 encodings, nor
//! 10,000 queued handles. Every frame is appended once to the log and each
//! recipient records a [`Span`] of it; a recipient that receives consecutive
//! frames (the common case: a room's messages) just extends its last span.
//! When the adapter drains the hub, the log is frozen into one `Bytes` and
//! each connection's spans become slices of it: a connection that got 500
//! broadcasts since the last drain gets one slice, written with one iovec,
//! and every recipient shares the same allocation.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use crate::frame::ServerFrame;

/// How much the log grows at a time.
const BLOCK: usize = 64 * 1024;

/// A frame (or a run of consecutive frames) in the log, by byte offsets
/// from the start of the unfrozen part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    pub(super) start: usize,
    pub(super) end: usize,
}

impl Span {
    pub(super) fn len(self) -> usize {
        self.end - self.start
    }

    fn range(self) -> Range<usize> {
        self.start..self.end
    }
}

/// Frames encoded since the last drain.
#[derive(Debug, Default)]
pub(super) struct Log {
    buf: BytesMut,
}

impl Log {
    /// Appends one encoded frame.
    pub(super) fn encode(&mut self, frame: &ServerFrame<'_>) -> Span {
        let len = frame.encoded_len();
        let span = self.append(len, |buf| frame.encode(buf));
        debug_assert_eq!(span.len(), len);
        span
    }

    /// Appends what `write` writes, about `len` bytes (room for them is
    /// reserved first).
    pub(super) fn append(&mut self, len: usize, write: impl FnOnce(&mut BytesMut)) -> Span {
        if self.buf.capacity() - self.buf.len() < len {
            self.buf.reserve(len.max(BLOCK));
        }
        let start = self.buf.len();
        write(&mut self.buf);
        Span {
            start,
            end: self.buf.len(),
        }
    }

    /// Whether nothing was appended since the last freeze.
    pub(super) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Everything appended since the last freeze, as one shared buffer that
    /// spans are sliced from; the log starts over (in the same allocation
    /// while it has room).
    pub(super) fn freeze(&mut self) -> Frozen {
        Frozen(self.buf.split().freeze())
    }
}

/// The log as frozen at a drain.
#[derive(Debug)]
pub(super) struct Frozen(Bytes);

impl Frozen {
    /// The bytes of `span`, sharing the frozen buffer.
    pub(super) fn slice(&self, span: Span) -> Bytes {
        self.0.slice(span.range())
    }
}

/// Adds `span` to a connection's spans, extending the last one when the two
/// are adjacent in the log.
pub(super) fn push_span(spans: &mut Vec<Span>, span: Span) {
    match spans.last_mut() {
        Some(last) if last.end == span.start => last.end = span.end,
        _ => spans.push(span),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::Token;

    #[test]
    fn adjacent_spans_merge_and_slices_share_one_buffer() {
        let mut log = Log::default();
        let a = log.encode(&ServerFrame::Ping(Token::new("1").unwrap()));
        let b = log.encode(&ServerFrame::Ping(Token::new("2").unwrap()));
        let c = log.encode(&ServerFrame::Ping(Token::new("3").unwrap()));
        let mut spans = Vec::new();
        push_span(&mut spans, a);
        push_span(&mut spans, b);
        assert_eq!(spans, [Span { start: 0, end: 14 }]);
        let mut other = Vec::new();
        push_span(&mut other, a);
        push_span(&mut other, c);
        assert_eq!(other.len(), 2);
        let frozen = log.freeze();
        assert!(log.is_empty());
        assert_eq!(&frozen.slice(spans[0])[..], b"ping:1\nping:2\n");
        assert_eq!(&frozen.slice(other[1])[..], b"ping:3\n");
        // After a freeze, offsets start again from zero.
        let d = log.encode(&ServerFrame::Ping(Token::new("4").unwrap()));
        assert_eq!(d, Span { start: 0, end: 7 });
    }
}
