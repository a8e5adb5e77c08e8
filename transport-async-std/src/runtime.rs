//! The runtime binding: async-io for sockets and timers, an executor to
//! spawn tasks on, and a thread pool for name resolution.
//!
//! Sockets ([`Async<TcpStream>`](async_io::Async), read through
//! [`TcpStream`](crate::TcpStream)) and timers
//! ([`async_io::Timer`]) come from async-io, which works under any
//! executor: async-std runs on it, and so does smol. Only spawning needs an
//! executor: [`SmolRuntime`], the default, spawns on smol's global
//! executor, which runs on threads of its own and so works under any
//! `block_on`, async-std's included; [`AsyncStdRuntime`] (feature
//! `async-std`) spawns on async-std's, for programs that want every task
//! there. Host names are resolved with the system resolver on the
//! `blocking` crate's thread pool (`smol::unblock`), never on an executor
//! thread: a slow DNS answer must not stall every connection.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use async_io::{Async, Timer};
use transport_async::{Accepted, Address, BoxFuture, Listener, Runtime, Stream};
use transport_common::bind_listener;

/// Time, sockets and resolution, the same for both executors.
macro_rules! async_io_runtime {
    () => {
        fn now(&self) -> Instant {
            Instant::now()
        }

        fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
            Box::pin(async move {
                Timer::at(deadline).await;
            })
        }

        fn listen(&self, addr: SocketAddr) -> io::Result<Box<dyn Listener>> {
            Ok(Box::new(AsyncListener(Async::new(bind_listener(addr)?)?)))
        }

        fn connect(&self, addr: SocketAddr) -> BoxFuture<io::Result<Box<dyn Stream>>> {
            Box::pin(async move {
                let stream = Async::<TcpStream>::connect(addr).await?;
                stream.get_ref().set_nodelay(true)?;
                Ok(Box::new(crate::TcpStream::new(stream)) as Box<dyn Stream>)
            })
        }

        fn resolve(&self, addr: Address) -> BoxFuture<io::Result<Vec<SocketAddr>>> {
            resolve(addr)
        }
    };
}

/// async-io for I/O and time, smol's global executor for tasks. The
/// runtime of `Server::bind` and `Client::connect`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolRuntime;

impl Runtime for SmolRuntime {
    async_io_runtime!();

    fn spawn(&self, future: BoxFuture<()>) {
        smol::spawn(future).detach();
    }
}

/// async-io for I/O and time, async-std's executor for tasks. Pick it
/// explicitly: `Server::bind_on(AsyncStdRuntime, addr, config)`,
/// `Client::connect_on(AsyncStdRuntime, ...)`.
#[cfg(feature = "async-std")]
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStdRuntime;

#[cfg(feature = "async-std")]
impl Runtime for AsyncStdRuntime {
    async_io_runtime!();

    fn spawn(&self, future: BoxFuture<()>) {
        drop(async_std::task::spawn(future));
    }
}

/// Resolves `addr` off the executor: a socket address at once, a host name
/// on the blocking thread pool.
fn resolve(addr: Address) -> BoxFuture<io::Result<Vec<SocketAddr>>> {
    match addr.resolved() {
        Some(addrs) => Box::pin(std::future::ready(Ok(addrs))),
        None => Box::pin(off_executor(move || addr.resolve_blocking())),
    }
}

/// Runs `f` on the blocking thread pool.
fn off_executor<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> impl std::future::Future<Output = T> + Send {
    smol::unblock(f)
}

fn nodelay(stream: TcpStream) -> io::Result<crate::TcpStream> {
    // Chat frames are small and must not wait for Nagle's algorithm.
    stream.set_nodelay(true)?;
    Ok(crate::TcpStream::new(Async::new(stream)?))
}

/// A listening socket for the shared server loop.
#[derive(Debug)]
pub struct AsyncListener(pub Async<TcpListener>);

impl Listener for AsyncListener {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Accepted>> {
        loop {
            match self.0.get_ref().accept() {
                Ok((stream, peer)) => {
                    return Poll::Ready(nodelay(stream).map(|stream| Accepted {
                        writer: Some(stream.writer()),
                        stream: Box::new(stream),
                        peer,
                    }));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.0.poll_readable(cx))?;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_runs_off_the_calling_thread() {
        let caller = std::thread::current().id();
        let resolver = smol::block_on(off_executor(|| std::thread::current().id()));
        assert_ne!(resolver, caller);
        let addrs = smol::block_on(resolve(Address::from("localhost:7878"))).unwrap();
        assert!(
            addrs
                .iter()
                .all(|a| a.port() == 7878 && a.ip().is_loopback())
        );
        assert!(!addrs.is_empty());
    }
}
