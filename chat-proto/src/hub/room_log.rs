//! A room's messages as encoded bytes, addressed by offset: what live
//! delivery reads.
//!
//! A room is a log: every message gets the next offset, and every member
//! reads the log from its own cursor. A [`FormLog`] holds the encoded frames
//! of one wire form (the seed's `msg:FROM:TEXT` for plain clients of the
//! default room, `said:ROOM:OFFSET:FROM:TEXT` for everyone else), each
//! encoded once, in blocks of shared memory. Handing a member its next
//! messages is slicing those blocks, so a member 500 messages behind gets
//! one or two `Bytes`, and every member shares the same allocation.
//!
//! The log keeps frames from the slowest member's cursor on: how far the
//! slowest reader is behind is the room's backlog, counted once however
//! many members share it (see [`FormLog::bytes_from`]). Cursors are counted
//! in an ordered map, so the slowest one is known at once and moving a
//! cursor costs `O(log M)`. A log with a [`Retention`] also keeps its last
//! frames behind every reader, as the room's history: a reader may start
//! from any offset it holds ([`FormLog::add_reader_at`]), and is then
//! handed the history the same way as live frames.

use std::collections::{BTreeMap, VecDeque};

use bytes::{Bytes, BytesMut};

use crate::frame::ServerFrame;

/// How much a log's unfrozen tail grows at a time.
const BLOCK: usize = 16 * 1024;

/// How much a log keeps once every reader is past it: its last `messages`
/// frames, at most `bytes` of them. Zero keeps nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Retention {
    pub(super) messages: u64,
    pub(super) bytes: u64,
}

/// The encoded frames of one form of a room, from the slowest member's
/// cursor (or the start of its history) to the head.
#[derive(Debug, Default)]
pub(super) struct FormLog {
    /// Offset of the first frame held.
    first: u64,
    /// Byte position (from the log's beginning) where frame `first` starts.
    base: u64,
    /// End position of each frame held, in offset order.
    ends: VecDeque<u64>,
    /// Frozen bytes: each block with the position of its first byte.
    blocks: VecDeque<(u64, Bytes)>,
    /// Bytes appended since the last freeze, starting at `tail_start`.
    tail: BytesMut,
    tail_start: u64,
    /// How many readers stand at each cursor.
    cursors: BTreeMap<u64, u32>,
    /// What it keeps behind its readers.
    retain: Retention,
}

impl FormLog {
    /// The offset the next frame will have.
    pub(super) fn head(&self) -> u64 {
        self.first + self.ends.len() as u64
    }

    /// The offset of the oldest frame held (the head if none).
    pub(super) fn first(&self) -> u64 {
        self.first
    }

    /// Readers of this form.
    pub(super) fn readers(&self) -> u32 {
        self.cursors.values().sum()
    }

    /// Whether the log keeps history behind its readers (and so must be
    /// appended to even without readers).
    pub(super) fn retains(&self) -> bool {
        self.retain.messages > 0
    }

    /// Keeps `retain` behind the readers from now on.
    pub(super) fn set_retention(&mut self, retain: Retention) {
        self.retain = retain;
        self.trim();
    }

    /// Starts over, empty, with `next` as the next offset. For a form that
    /// had no reader: nobody needs what it held.
    pub(super) fn restart(&mut self, next: u64) {
        debug_assert!(self.cursors.is_empty());
        let end = self.end_pos();
        *self = FormLog {
            first: next,
            base: end,
            tail_start: end,
            retain: self.retain,
            ..FormLog::default()
        };
    }

    /// A new reader, whose cursor starts at the head.
    pub(super) fn add_reader(&mut self) -> u64 {
        self.add_reader_at(self.head())
    }

    /// A new reader whose cursor starts at `offset`, or as near as the log
    /// holds (between the oldest frame held and the head).
    pub(super) fn add_reader_at(&mut self, offset: u64) -> u64 {
        let cursor = offset.clamp(self.first, self.head());
        *self.cursors.entry(cursor).or_insert(0) += 1;
        cursor
    }

    /// A reader at `cursor` is gone.
    pub(super) fn remove_reader(&mut self, cursor: u64) {
        self.uncount(cursor);
        self.trim();
    }

    fn uncount(&mut self, cursor: u64) {
        if let Some(n) = self.cursors.get_mut(&cursor) {
            *n -= 1;
            if *n == 0 {
                self.cursors.remove(&cursor);
            }
        }
    }

    /// Appends the frame of the message at `offset`, the head.
    pub(super) fn append(&mut self, offset: u64, frame: &ServerFrame<'_>) {
        debug_assert_eq!(offset, self.head());
        let len = frame.encoded_len();
        if self.tail.capacity() - self.tail.len() < len {
            self.tail.reserve(len.max(BLOCK));
        }
        frame.encode(&mut self.tail);
        self.ends.push_back(self.end_pos());
        if self.retains() {
            self.trim();
        }
    }

    fn end_pos(&self) -> u64 {
        self.tail_start + self.tail.len() as u64
    }

    /// Where the frame at `offset` starts (`offset` in `first..=head`).
    fn pos(&self, offset: u64) -> u64 {
        if offset <= self.first {
            self.base
        } else {
            self.ends[(offset - self.first - 1) as usize]
        }
    }

    /// Makes everything appended so far sliceable.
    pub(super) fn freeze(&mut self) {
        if self.tail.is_empty() {
            return;
        }
        let start = self.tail_start;
        let bytes = self.tail.split().freeze();
        self.tail_start += bytes.len() as u64;
        self.blocks.push_back((start, bytes));
    }

    /// Bytes between the frame at `offset` and the head: how far a reader
    /// at `offset` is behind.
    pub(super) fn bytes_from(&self, offset: u64) -> u64 {
        self.end_pos() - self.pos(offset)
    }

    /// How far the slowest reader is behind, in bytes.
    pub(super) fn backlog(&self) -> u64 {
        self.cursors
            .keys()
            .next()
            .map_or(0, |&slowest| self.bytes_from(slowest))
    }

    /// Hands a reader at `cursor` its whole frames up to offset `to` (at
    /// most) that fit in `budget` bytes, as slices of the frozen blocks
    /// appended to `out`. Moves the reader's cursor and returns it with the
    /// number of bytes handed out (none if the next frame does not fit).
    pub(super) fn read(
        &mut self,
        cursor: u64,
        to: u64,
        budget: usize,
        out: &mut Vec<Bytes>,
    ) -> (u64, usize) {
        let frozen_head = match self.blocks.back() {
            Some((start, bytes)) => start + bytes.len() as u64,
            None => return (cursor, 0),
        };
        // The last frame (at most `to`) that ends within the limit. A reader
        // may be past `to`: one that joined at the head while messages
        // before it wait for the store (durable history).
        let to = to.min(self.head());
        if to <= cursor {
            return (cursor, 0);
        }
        let start = self.pos(cursor);
        let limit = start.saturating_add(budget as u64).min(frozen_head);
        let end_offset = {
            let from = (cursor - self.first) as usize;
            let upto = (to - self.first) as usize;
            let within = self
                .ends
                .range(from..upto)
                .take_while(|&&e| e <= limit)
                .count();
            cursor + within as u64
        };
        if end_offset == cursor {
            return (cursor, 0);
        }
        let end = self.pos(end_offset);
        self.slice(start, end, out);
        self.uncount(cursor);
        *self.cursors.entry(end_offset).or_insert(0) += 1;
        self.trim();
        (end_offset, (end - start) as usize)
    }

    /// The frames from `from` up to `to`, frozen first if need be, for a
    /// reader that leaves with them still owed (they become its private
    /// output). Does not move cursors.
    pub(super) fn take_range(&mut self, from: u64, to: u64, out: &mut Vec<Bytes>) -> usize {
        self.freeze();
        let to = to.min(self.head());
        if to <= from {
            return 0;
        }
        let (start, end) = (self.pos(from), self.pos(to));
        self.slice(start, end, out);
        (end - start) as usize
    }

    /// Appends slices of the frozen blocks covering `start..end` to `out`.
    fn slice(&self, start: u64, end: u64, out: &mut Vec<Bytes>) {
        let first = self
            .blocks
            .partition_point(|(block_start, bytes)| block_start + bytes.len() as u64 <= start);
        for (block_start, bytes) in self.blocks.iter().skip(first) {
            if *block_start >= end {
                break;
            }
            let from = start.saturating_sub(*block_start) as usize;
            let to = ((end - block_start) as usize).min(bytes.len());
            out.push(bytes.slice(from..to));
        }
    }

    /// Drops the frames every reader is past, but for the history kept.
    fn trim(&mut self) {
        let keep = self
            .cursors
            .keys()
            .next()
            .copied()
            .unwrap_or_else(|| self.head());
        let head = self.head();
        let end = self.end_pos();
        let retain = self.retain;
        while self.first < keep
            && !self.ends.is_empty()
            && (head - self.first > retain.messages || end - self.base > retain.bytes)
        {
            self.base = self.ends.pop_front().expect("not empty");
            self.first += 1;
        }
        while let Some((start, bytes)) = self.blocks.front() {
            if start + bytes.len() as u64 <= self.base {
                self.blocks.pop_front();
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::Token;

    fn ping(n: u64) -> ServerFrame<'static> {
        ServerFrame::Ping(Token::from_counter(n))
    }

    fn text(out: &[Bytes]) -> String {
        String::from_utf8(out.concat()).unwrap()
    }

    #[test]
    fn readers_get_their_frames_in_slices_and_the_slowest_holds_the_log() {
        let mut log = FormLog::default();
        let a = log.add_reader();
        let b = log.add_reader();
        for n in 0..4 {
            log.append(n, &ping(n));
        }
        assert_eq!(log.backlog(), 4 * 7);
        // Nothing is frozen yet: nothing to read.
        let mut out = Vec::new();
        assert_eq!(log.read(a, 4, 1000, &mut out), (0, 0));
        log.freeze();
        let (a, n) = log.read(a, 4, 1000, &mut out);
        assert_eq!((a, n), (4, 28));
        assert_eq!(out.len(), 1, "one slice of one block");
        assert_eq!(text(&out), "ping:0\nping:1\nping:2\nping:3\n");
        // b is still behind: the frames are held.
        assert_eq!(log.backlog(), 28);
        // A budget smaller than the next frame gives nothing.
        out.clear();
        assert_eq!(log.read(b, 4, 6, &mut out), (0, 0));
        let (b, n) = log.read(b, 4, 7, &mut out);
        assert_eq!((b, n, text(&out)), (1, 7, "ping:0\n".to_string()));
        out.clear();
        let (b, _) = log.read(b, 2, 1000, &mut out);
        assert_eq!((b, text(&out)), (2, "ping:1\n".to_string()));
        assert_eq!(log.backlog(), 14);
        log.append(4, &ping(4));
        log.freeze();
        out.clear();
        let (b, _) = log.read(b, 5, 1000, &mut out);
        assert_eq!(b, 5);
        assert_eq!(out.len(), 2, "across two blocks");
        assert_eq!(text(&out), "ping:2\nping:3\nping:4\n");
        assert_eq!(log.backlog(), 7, "a is at 4");
        log.remove_reader(a);
        assert_eq!(log.backlog(), 0);
        assert!(log.blocks.is_empty() && log.ends.is_empty());
        assert_eq!(log.readers(), 1);
    }

    #[test]
    fn history_is_kept_behind_the_readers_by_count_and_bytes() {
        let mut log = FormLog::default();
        log.set_retention(Retention {
            messages: 3,
            bytes: 1000,
        });
        // Appended without readers: the last three stay.
        for n in 0..5 {
            log.append(n, &ping(n));
        }
        assert_eq!((log.first(), log.head()), (2, 5));
        assert_eq!(log.backlog(), 0, "history is not backlog");
        log.freeze();
        // A reader may start in the history, and reads it like live frames.
        let r = log.add_reader_at(0);
        assert_eq!(r, 2, "clamped to the oldest frame held");
        assert_eq!(log.backlog(), 21);
        let mut out = Vec::new();
        let (r, _) = log.read(r, 5, 1000, &mut out);
        assert_eq!((r, text(&out)), (5, "ping:2\nping:3\nping:4\n".to_string()));
        // A reader holds frames beyond the history until it reads them.
        let slow = log.add_reader_at(2);
        for n in 5..10 {
            log.append(n, &ping(n));
        }
        assert_eq!(log.first(), 2);
        log.remove_reader(slow);
        assert_eq!(log.first(), 5, "the other reader is at 5");
        // Bytes bound too: 7 bytes a frame, 14 bytes keep two.
        log.set_retention(Retention {
            messages: 3,
            bytes: 14,
        });
        log.remove_reader(r);
        assert_eq!((log.first(), log.head()), (8, 10));
        assert_eq!(log.add_reader_at(99), 10, "clamped to the head");
    }

    #[test]
    fn a_leaving_reader_takes_what_it_is_owed() {
        let mut log = FormLog::default();
        let a = log.add_reader();
        log.append(0, &ping(0));
        log.append(1, &ping(1));
        let mut out = Vec::new();
        assert_eq!(log.take_range(a, 2, &mut out), 14);
        assert_eq!(text(&out), "ping:0\nping:1\n");
        log.remove_reader(a);
        assert_eq!(log.backlog(), 0);
        // A form without readers starts over at the room's head.
        log.restart(7);
        assert_eq!(log.head(), 7);
        let c = log.add_reader();
        assert_eq!(c, 7);
        log.append(7, &ping(7));
        log.freeze();
        out.clear();
        assert_eq!(log.read(c, 8, 100, &mut out), (8, 7));
        assert_eq!(text(&out), "ping:7\n");
    }
}
