//! The private-output log: every frame the hub sends to particular
//! connections (answers, presence, pongs, notices), encoded once, in one
//! buffer.
//!
//! A presence frame for 1,000 members must not cost 1,000 encodings, nor
//! 1,000 copies. Every frame is appended once to the log and each recipient
//! records a [`Span`] of it; a recipient that receives consecutive frames
//! just extends its last span. When the adapter drains the hub, the log is
//! frozen into one `Bytes` and each connection's spans become slices of it,
//! sharing the same allocation. (Room messages have logs of their own, see
//! [`room_log`](super::room_log).)

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::Token;

    #[test]
    fn slices_share_one_buffer() {
        let mut log = Log::default();
        let a = log.encode(&ServerFrame::Ping(Token::new("1").unwrap()));
        let b = log.encode(&ServerFrame::Ping(Token::new("2").unwrap()));
        let c = log.encode(&ServerFrame::Ping(Token::new("3").unwrap()));
        assert_eq!((a.end, b.start), (7, 7));
        let both = Span {
            start: a.start,
            end: b.end,
        };
        let frozen = log.freeze();
        assert!(log.is_empty());
        assert_eq!(&frozen.slice(both)[..], b"ping:1\nping:2\n");
        assert_eq!(&frozen.slice(c)[..], b"ping:3\n");
        // After a freeze, offsets start again from zero.
        let d = log.encode(&ServerFrame::Ping(Token::new("4").unwrap()));
        assert_eq!(d, Span { start: 0, end: 7 });
    }
}
