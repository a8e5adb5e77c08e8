//! A TCP stream on async-io that reads only when the socket may hold data.
//!
//! async-io's own `AsyncRead` for `Async<TcpStream>` tries the `read`
//! system call first and turns to the reactor only when it fails. A
//! connection task is polled for many reasons (the hub queued output for it,
//! a write completed), and every such poll then costs a `recvfrom` that
//! returns `WouldBlock`: 24 times as many reads as tokio's in the fan-out
//! benchmark (BENCHMARKS.md). tokio avoids them by remembering readiness:
//! after a read that returned less than asked, the socket is drained, and the
//! next read waits for the reactor's next readable event. [`TcpStream`] does
//! the same on async-io.

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use async_io::Async;
use futures_io::{AsyncRead, AsyncWrite};
use transport_async::TryWrite;

/// A connected, non-blocking TCP stream (with `TCP_NODELAY` set by whoever
/// made it) that skips reads it knows would block. The server loop may
/// write to the same socket through [`TcpStream::writer`].
#[derive(Debug)]
pub struct TcpStream {
    io: Arc<Async<std::net::TcpStream>>,
    /// False once a read came back short (or would block): the socket was
    /// drained, and only a readable event from the reactor makes it worth
    /// reading again.
    maybe_readable: bool,
}

impl TcpStream {
    /// Wraps a registered socket.
    pub fn new(io: Async<std::net::TcpStream>) -> Self {
        TcpStream {
            io: Arc::new(io),
            maybe_readable: true,
        }
    }

    /// The socket.
    pub fn get_ref(&self) -> &std::net::TcpStream {
        self.io.get_ref()
    }

    /// The same socket, for writing without waiting.
    pub fn writer(&self) -> Arc<dyn TryWrite> {
        Arc::new(SocketWriter(self.io.clone()))
    }
}

/// A second handle on a [`TcpStream`]'s socket, which writes what the
/// socket takes at once (it is non-blocking) and never waits.
#[derive(Debug)]
struct SocketWriter(Arc<Async<std::net::TcpStream>>);

impl TryWrite for SocketWriter {
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.get_ref().write_vectored(bufs)
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            if !self.maybe_readable {
                // Registers interest and our waker; ready only after the
                // reactor saw the socket readable.
                ready!(self.io.poll_readable(cx))?;
                self.maybe_readable = true;
            }
            match self.io.get_ref().read(buf) {
                Ok(n) => {
                    // A short read drained the socket (an empty one is EOF,
                    // which the caller ends on).
                    self.maybe_readable = n == buf.len();
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.maybe_readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.io).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // async-io's close of an `Async<T>` only flushes; closing a TCP
        // stream means sending FIN, so shut the writing half down.
        Poll::Ready(self.io.get_ref().shutdown(Shutdown::Write))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::{AsyncReadExt, AsyncWriteExt, future};

    #[test]
    fn reads_what_arrives_after_the_socket_was_drained() {
        future::block_on(async {
            let listener = Async::<std::net::TcpListener>::bind(([127, 0, 0, 1], 0)).unwrap();
            let addr = listener.get_ref().local_addr().unwrap();
            let client = Async::<std::net::TcpStream>::connect(addr).await.unwrap();
            let (server, _) = listener.accept().await.unwrap();
            let mut server = TcpStream::new(server);
            let mut client = TcpStream::new(client);
            let mut buf = [0u8; 64];
            for round in 0..3u8 {
                let msg = [b'a' + round; 5];
                client.write_all(&msg).await.unwrap();
                let mut got = Vec::new();
                while got.len() < msg.len() {
                    let n = server.read(&mut buf).await.unwrap();
                    got.extend_from_slice(&buf[..n]);
                }
                assert_eq!(got, msg);
                // The last read came back short, so the next one waits for
                // the reactor rather than calling `read` at once.
                assert!(!server.maybe_readable);
            }
            client.close().await.unwrap();
            assert_eq!(server.read(&mut buf).await.unwrap(), 0);
        });
    }
}
