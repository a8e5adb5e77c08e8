//! What a runtime provides: time, sleep, spawn, listen, connect and resolve.
//!
//! The server and client loops of this crate are written once, against
//! `futures-io` streams and the [`Runtime`] trait; each runtime crate
//! implements it in a few lines (tokio; async-io for async-std and smol).
//!
//! The trait is object-safe, as quinn's is: sleeps and connects come back
//! as boxed futures, listeners and streams as boxed trait objects, and the
//! server and client hold an `Arc<dyn Runtime>`. So they are plain types,
//! with no type parameter for the user to name; the price is one allocation
//! per sleep armed and per connection, and a virtual call per read or write,
//! which are nothing next to the system calls behind them.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};
use transport_common::{Address, TryWrite};

/// A future that is boxed and `Send`.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Time, tasks and sockets, as the server and client loops need them.
pub trait Runtime: fmt::Debug + Send + Sync + 'static {
    /// The current time, as the runtime sees it (tokio's may be paused in
    /// tests).
    fn now(&self) -> Instant;

    /// A future that completes at `deadline`. The loops compare
    /// `now >= deadline` themselves too, so a sleep that wakes early or is
    /// polled late does no harm.
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()>;

    /// Runs `future` to completion in the background.
    fn spawn(&self, future: BoxFuture<()>);

    /// Binds `addr` with a listen backlog of
    /// [`LISTEN_BACKLOG`](crate::LISTEN_BACKLOG), within the runtime.
    fn listen(&self, addr: SocketAddr) -> io::Result<Box<dyn Listener>>;

    /// Connects to `addr`; the stream has `TCP_NODELAY` set.
    fn connect(&self, addr: SocketAddr) -> BoxFuture<io::Result<Box<dyn Stream>>>;

    /// Resolves `addr`, without blocking the executor's threads: a host
    /// name goes to the system resolver, which may block, so it must run
    /// on a thread meant for blocking calls.
    fn resolve(&self, addr: Address) -> BoxFuture<io::Result<Vec<SocketAddr>>>;
}

/// A byte stream the loops can read and write.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// A connection a [`Listener`] accepted.
pub struct Accepted {
    /// The socket, read and written by the connection's task.
    pub stream: Box<dyn Stream>,
    /// The same socket, for the server loop to write small output to
    /// directly when it takes it at once, without waking the connection's
    /// task (see [`TryWrite`]); `None` if the runtime cannot share it.
    pub writer: Option<Arc<dyn TryWrite>>,
    /// The other end's address.
    pub peer: SocketAddr,
}

impl fmt::Debug for Accepted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accepted")
            .field("writer", &self.writer)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

/// A listening socket.
pub trait Listener: fmt::Debug + Send + 'static {
    /// Accepts the next connection, with `TCP_NODELAY` already set.
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Accepted>>;

    /// The address it is bound to.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}
