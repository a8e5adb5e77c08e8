//! A connection's bytes waiting to be written, and the vectored writes that
//! send them.
//!
//! The hub hands out broadcast frames as shared `Bytes`, one per frame, so a
//! busy connection can have hundreds queued. Writing them one `write` at a
//! time would cost a syscall per frame; [`WriteQueue::io_slices`] lines up
//! to [`MAX_SLICES`] of them for one vectored write, and
//! [`WriteQueue::advance`] drops what the kernel took, partial chunks
//! included.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes};

/// The most chunks offered to one vectored write (Linux's `IOV_MAX`).
pub const MAX_SLICES: usize = 1024;

/// Bytes queued for one connection.
#[derive(Debug, Default)]
pub struct WriteQueue {
    chunks: VecDeque<Bytes>,
    len: usize,
}

impl WriteQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends chunks, in order.
    pub fn extend(&mut self, data: impl IntoIterator<Item = Bytes>) {
        for chunk in data {
            if !chunk.is_empty() {
                self.len += chunk.len();
                self.chunks.push_back(chunk);
            }
        }
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The queued chunks as slices for a vectored write, at most
    /// [`MAX_SLICES`] of them.
    pub fn io_slices(&self) -> Vec<IoSlice<'_>> {
        self.chunks
            .iter()
            .take(MAX_SLICES)
            .map(|c| IoSlice::new(c))
            .collect()
    }

    /// Drops the first `n` bytes, which were written.
    pub fn advance(&mut self, mut n: usize) {
        debug_assert!(n <= self.len);
        self.len -= n.min(self.len);
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                return;
            };
            if n < front.len() {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.chunks.pop_front();
        }
        if self.chunks.is_empty() {
            // Do not keep a large ring buffer for an idle connection.
            self.chunks = VecDeque::new();
        }
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        *self = WriteQueue::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_writes_advance_through_chunks() {
        let mut q = WriteQueue::new();
        q.extend([
            Bytes::from_static(b"abc"),
            Bytes::new(),
            Bytes::from_static(b"de"),
            Bytes::from_static(b"f"),
        ]);
        assert_eq!(q.len(), 6);
        assert_eq!(q.io_slices().len(), 3);
        q.advance(4);
        let rest: Vec<u8> = q.io_slices().iter().flat_map(|s| s.to_vec()).collect();
        assert_eq!(rest, b"ef");
        q.advance(2);
        assert!(q.is_empty());
        assert!(q.io_slices().is_empty());
    }

    #[test]
    fn slices_are_capped() {
        let mut q = WriteQueue::new();
        q.extend((0..MAX_SLICES + 10).map(|_| Bytes::from_static(b"x")));
        assert_eq!(q.io_slices().len(), MAX_SLICES);
        assert_eq!(q.len(), MAX_SLICES + 10);
    }
}
