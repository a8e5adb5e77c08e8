//! tokio's side of the shared server and client: time, sleeping, spawning,
//! listening, resolving, and sockets seen through `futures-io`.
//!
//! Time is tokio's (`tokio::time::Instant`), converted to `std` at the edge,
//! so tests can run on a paused clock (`start_paused = true`). The loops
//! compare `now >= deadline` themselves rather than trust a timer's
//! readiness.
//!
//! [`TokioStream`] exists because tokio-util's `compat` wrapper does not
//! forward vectored writes, and batching a connection's frames into one
//! `writev` is the point of the write path; and because the server loop
//! writes small output through a second handle on the same socket.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use tokio::io::Interest;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use transport_async::{
    Accepted, Address, BoxFuture, LISTEN_BACKLOG, Listener, Runtime, Stream, TryWrite,
};

/// The tokio runtime, as the shared loops need it. Must be used from within
/// a tokio runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioRuntime;

impl Runtime for TokioRuntime {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        Box::pin(tokio::time::sleep_until(tokio::time::Instant::from_std(
            deadline,
        )))
    }

    fn spawn(&self, future: BoxFuture<()>) {
        tokio::spawn(future);
    }

    fn listen(&self, addr: SocketAddr) -> io::Result<Box<dyn Listener>> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(LISTEN_BACKLOG)?;
        Ok(Box::new(TokioListener(listener)))
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<io::Result<Box<dyn Stream>>> {
        Box::pin(async move {
            let stream = TcpStream::connect(addr).await?;
            Ok(Box::new(TokioStream::new(stream)) as Box<dyn Stream>)
        })
    }

    /// Resolves host names on tokio's blocking pool.
    fn resolve(&self, addr: Address) -> BoxFuture<io::Result<Vec<SocketAddr>>> {
        Box::pin(async move {
            match addr.host() {
                Some(host) => Ok(tokio::net::lookup_host(host).await?.collect()),
                None => Ok(addr.resolved().unwrap_or_default()),
            }
        })
    }
}

/// A tokio TCP stream with `futures-io` traits, vectored writes included,
/// that the server loop may also write to (see [`TokioStream::writer`]).
///
/// Every operation goes through tokio's readiness-checked `&self` calls
/// (`poll_read_ready` then `try_read`, and so on), so the socket can be
/// shared: the connection's task reads and writes it, and the server loop
/// writes small output to it directly while the task has nothing to write.
#[derive(Debug, Clone)]
pub struct TokioStream(Arc<SharedTcp>);

/// The socket both handles share: one allocation per connection, which is
/// also the server loop's writer.
#[derive(Debug)]
struct SharedTcp(TcpStream);

impl std::ops::Deref for SharedTcp {
    type Target = TcpStream;

    fn deref(&self) -> &TcpStream {
        &self.0
    }
}

impl TokioStream {
    /// Wraps `stream`, setting `TCP_NODELAY` (chat frames are small and
    /// must not wait for Nagle's algorithm).
    pub fn new(stream: TcpStream) -> Self {
        // Only fails on a socket that is already broken; reads will say so.
        let _ = stream.set_nodelay(true);
        TokioStream(Arc::new(SharedTcp(stream)))
    }

    /// The socket.
    pub fn tcp(&self) -> &TcpStream {
        &self.0
    }

    /// The same socket, for writing without waiting.
    pub fn writer(&self) -> Arc<dyn TryWrite> {
        self.0.clone()
    }
}

impl TryWrite for SharedTcp {
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }
}

impl futures_io::AsyncRead for TokioStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_read_ready(cx))?;
            // A short read drained the socket: like tokio's own reads, clear
            // the readiness seen before the read (an event that came after
            // it is kept), so the next read waits for the reactor instead of
            // making a system call that would block. (On Unix, whose
            // selectors tokio drives edge-triggered.)
            let mut short = None;
            let len = buf.len();
            let read = self.0.try_io(Interest::READABLE, || {
                let n = self.0.try_read(buf)?;
                if cfg!(unix) && 0 < n && n < len {
                    short = Some(n);
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(n)
            });
            match (read, short) {
                (_, Some(n)) => return Poll::Ready(Ok(n)),
                // The readiness was stale: tokio cleared it; wait again.
                (Err(e), None) if e.kind() == io::ErrorKind::WouldBlock => {}
                (done, None) => return Poll::Ready(done),
            }
        }
    }
}

impl futures_io::AsyncWrite for TokioStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return Poll::Ready(done),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Nothing is buffered here.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Closing a TCP stream means sending FIN: shut the writing half.
        Poll::Ready(socket2::SockRef::from(self.tcp()).shutdown(std::net::Shutdown::Write))
    }
}

/// A listening socket for the shared server loop.
#[derive(Debug)]
pub struct TokioListener(pub TcpListener);

impl Listener for TokioListener {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Accepted>> {
        self.0.poll_accept(cx).map_ok(|(stream, peer)| {
            let stream = TokioStream::new(stream);
            Accepted {
                writer: Some(stream.writer()),
                stream: Box::new(stream),
                peer,
            }
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use std::time::Duration;

    async fn read(stream: &mut TokioStream, buf: &mut [u8]) -> io::Result<usize> {
        use futures_io::AsyncRead;
        poll_fn(|cx| Pin::new(&mut *stream).poll_read(cx, buf)).await
    }

    async fn write_through(writer: &Arc<dyn TryWrite>, bytes: &[u8]) {
        // The writer never waits: retry until the socket takes it all.
        let mut sent = 0;
        while sent < bytes.len() {
            match writer.try_write_vectored(&[IoSlice::new(&bytes[sent..])]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// After a short read (which clears the readiness it saw), what arrives
    /// next is still read: no wake-up is lost. Bytes written through the
    /// second handle arrive in order with those of the stream.
    #[tokio::test]
    async fn reads_what_arrives_after_a_short_read_and_writes_through_a_second_handle() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let mut server = TokioStream::new(server);
        let client = TokioStream::new(client);
        let writer = client.writer();
        let mut buf = [0u8; 64];
        for round in 0..3u8 {
            let msg = [b'a' + round; 5];
            write_through(&writer, &msg).await;
            let mut got = Vec::new();
            while got.len() < msg.len() {
                let n = tokio::time::timeout(Duration::from_secs(5), read(&mut server, &mut buf))
                    .await
                    .expect("a read after a short one was never woken")
                    .unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(got, msg);
        }
        drop(writer);
        drop(client);
        assert_eq!(read(&mut server, &mut buf).await.unwrap(), 0);
    }
}
