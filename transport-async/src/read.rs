//! Reading without a buffer per connection.
//!
//! An idle connection must not hold a read buffer: 20,000 connections with
//! 8 KiB each would be 160 MB doing nothing. Instead each thread has one
//! scratch buffer; a read lands there and only the bytes actually read are
//! copied out, into a `Bytes` of exactly their size, which goes to the hub.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_io::AsyncRead;

/// The most bytes taken from a socket in one read.
pub const READ_SIZE: usize = 32 * 1024;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_SIZE]);
}

/// Reads what is available into a new `Bytes`; an empty one means EOF.
pub fn poll_read_bytes<S: AsyncRead + Unpin>(
    stream: &mut S,
    cx: &mut Context<'_>,
) -> Poll<io::Result<Bytes>> {
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut buf) => read_into(stream, cx, &mut buf),
        // Only a reentrant read could get here; it pays for its own buffer.
        Err(_) => read_into(stream, cx, &mut vec![0; READ_SIZE]),
    })
}

fn read_into<S: AsyncRead + Unpin>(
    stream: &mut S,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<Bytes>> {
    Pin::new(stream)
        .poll_read(cx, buf)
        .map_ok(|n| Bytes::copy_from_slice(&buf[..n]))
}
