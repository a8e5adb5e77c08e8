//! What a transport must provide: time, sleep, spawn, listen and connect.
//!
//! The server and client loops of this crate are written once, against
//! `futures-io` streams and these traits; each transport implements them for
//! its runtime in a few lines (tokio; async-io for async-std and smol). The
//! blocking transport uses the pieces that do not need a runtime.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};
use transport_common::Address;

/// A future that is boxed and `Send`.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Time and tasks.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// The future [`sleep_until`](Runtime::sleep_until) returns.
    type Sleep: Future<Output = ()> + Send + 'static;

    /// The current time, as the runtime sees it (tokio's may be paused in
    /// tests).
    fn now(&self) -> Instant;

    /// A future that completes at `deadline`.
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep;

    /// Runs `future` to completion in the background.
    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static;
}

/// A byte stream the loops can read and write.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// A listening socket.
pub trait Listener: Send + 'static {
    /// An accepted connection, with `TCP_NODELAY` already set.
    type Stream: Stream;

    /// Accepts the next connection.
    fn poll_accept(&mut self, cx: &mut Context<'_>)
    -> Poll<io::Result<(Self::Stream, SocketAddr)>>;
}

/// Opens connections for clients.
pub trait Connector: Send + Sync + 'static {
    /// A connected stream, with `TCP_NODELAY` already set.
    type Stream: Stream;

    /// Connects to `addr`.
    fn connect(&self, addr: SocketAddr) -> BoxFuture<io::Result<Self::Stream>>;
}

/// Everything an async transport provides: a [`Runtime`], listening,
/// connecting and resolving. [`Server`](crate::Server) and
/// [`Client`](crate::Client) are generic over it.
pub trait Transport: Runtime + Default {
    /// The listening socket.
    type Listener: Listener;
    /// Opens client connections.
    type Connector: Connector + Default;

    /// Binds `addr` with a listen backlog of
    /// [`LISTEN_BACKLOG`](transport_common::LISTEN_BACKLOG), within the runtime.
    fn listen(&self, addr: SocketAddr) -> io::Result<Self::Listener>;

    /// The address a listener is bound to.
    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr>;

    /// Resolves `addr`. The default uses the system resolver on the calling
    /// thread.
    fn resolve(&self, addr: Address) -> BoxFuture<io::Result<Vec<SocketAddr>>> {
        Box::pin(async move { addr.resolve_blocking() })
    }
}
