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
//! `writev` is the point of the write path.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use transport_async::{Address, BoxFuture, LISTEN_BACKLOG, Listener, Runtime, Stream};

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

/// A tokio TCP stream with `futures-io` traits, vectored writes included.
#[derive(Debug)]
pub struct TokioStream(pub TcpStream);

impl TokioStream {
    /// Wraps `stream`, setting `TCP_NODELAY` (chat frames are small and
    /// must not wait for Nagle's algorithm).
    pub fn new(stream: TcpStream) -> Self {
        // Only fails on a socket that is already broken; reads will say so.
        let _ = stream.set_nodelay(true);
        TokioStream(stream)
    }
}

impl futures_io::AsyncRead for TokioStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut buf = ReadBuf::new(buf);
        ready!(Pin::new(&mut self.0).poll_read(cx, &mut buf))?;
        Poll::Ready(Ok(buf.filled().len()))
    }
}

impl futures_io::AsyncWrite for TokioStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// A listening socket for the shared server loop.
#[derive(Debug)]
pub struct TokioListener(pub TcpListener);

impl Listener for TokioListener {
    fn poll_accept(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Box<dyn Stream>, SocketAddr)>> {
        self.0
            .poll_accept(cx)
            .map_ok(|(stream, peer)| (Box::new(TokioStream::new(stream)) as Box<dyn Stream>, peer))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}
