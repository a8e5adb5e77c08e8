//! The runtime binding: async-io for sockets and timers, and an executor to
//! spawn connection tasks on.
//!
//! Sockets ([`Async<TcpStream>`](async_io::Async), read through
//! [`TcpStream`](crate::TcpStream)) and timers
//! ([`async_io::Timer`]) come from async-io, which works under any
//! executor: async-std runs on it, and so does smol. Only spawning needs an
//! executor: `AsyncStdRuntime` (feature `async-std`, the default) spawns
//! on async-std's, `SmolRuntime` (feature `smol`) on smol's.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use async_io::{Async, Timer};
use transport_async::{BoxFuture, Connector, Listener, Runtime, Transport};
use transport_common::bind_listener;

/// A sleep on async-io's timer.
#[derive(Debug)]
pub struct Sleep(Timer);

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

macro_rules! runtime {
    ($(#[$doc:meta])* $name:ident, $feature:literal, |$future:ident| $spawn:expr) => {
        $(#[$doc])*
        #[cfg(feature = $feature)]
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

        #[cfg(feature = $feature)]
        impl Runtime for $name {
            type Sleep = Sleep;

            fn now(&self) -> Instant {
                Instant::now()
            }

            fn sleep_until(&self, deadline: Instant) -> Sleep {
                Sleep(Timer::at(deadline))
            }

            fn spawn<F>(&self, $future: F)
            where
                F: Future<Output = ()> + Send + 'static,
            {
                $spawn;
            }
        }

        /// Resolves host names with the system resolver, which may block.
        #[cfg(feature = $feature)]
        impl Transport for $name {
            type Listener = AsyncListener;
            type Connector = AsyncConnector;

            fn listen(&self, addr: SocketAddr) -> io::Result<AsyncListener> {
                Ok(AsyncListener(Async::new(bind_listener(addr)?)?))
            }

            fn local_addr(listener: &AsyncListener) -> io::Result<SocketAddr> {
                listener.0.get_ref().local_addr()
            }
        }
    };
}

runtime!(
    /// async-io for I/O and time, async-std's executor for tasks.
    AsyncStdRuntime,
    "async-std",
    |future| drop(async_std::task::spawn(future))
);

runtime!(
    /// async-io for I/O and time, smol's executor for tasks.
    SmolRuntime,
    "smol",
    |future| smol::spawn(future).detach()
);

/// The runtime `Server::bind` and `Client::connect` use: async-std's when
/// its feature is on, else smol's.
#[cfg(feature = "async-std")]
pub type DefaultRuntime = AsyncStdRuntime;
/// The runtime `Server::bind` and `Client::connect` use: async-std's when
/// its feature is on, else smol's.
#[cfg(all(feature = "smol", not(feature = "async-std")))]
pub type DefaultRuntime = SmolRuntime;
#[cfg(not(any(feature = "async-std", feature = "smol")))]
compile_error!("transport-async-std needs the `async-std` or the `smol` feature");

fn nodelay(stream: TcpStream) -> io::Result<crate::TcpStream> {
    // Chat frames are small and must not wait for Nagle's algorithm.
    stream.set_nodelay(true)?;
    Async::new(stream).map(crate::TcpStream::new)
}

/// A listening socket for the shared server loop.
#[derive(Debug)]
pub struct AsyncListener(pub Async<TcpListener>);

impl Listener for AsyncListener {
    type Stream = crate::TcpStream;

    fn poll_accept(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(crate::TcpStream, SocketAddr)>> {
        loop {
            match self.0.get_ref().accept() {
                Ok((stream, peer)) => return Poll::Ready(nodelay(stream).map(|s| (s, peer))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.0.poll_readable(cx))?;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// Opens client connections.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncConnector;

impl Connector for AsyncConnector {
    type Stream = crate::TcpStream;

    fn connect(&self, addr: SocketAddr) -> BoxFuture<io::Result<crate::TcpStream>> {
        Box::pin(async move {
            let stream = Async::<TcpStream>::connect(addr).await?;
            stream.get_ref().set_nodelay(true)?;
            Ok(crate::TcpStream::new(stream))
        })
    }
}
