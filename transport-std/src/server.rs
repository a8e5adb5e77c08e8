//! The chat server on blocking threads.
//!
//! `serve` runs the hub on the calling thread: it waits on one channel for
//! what the acceptor thread and the connection threads send, with a timeout
//! at the hub's next deadline, and drives the shared [`HubDriver`]. Each
//! connection has a reader and a writer thread (see [`conn`](crate::conn)).
//! A [`ShutdownHandle`] stops it from any thread, gracefully.
//!
//! Two threads per connection is the price of blocking I/O without `poll`:
//! a machine's thread limits (`kernel.pid_max`, `vm.max_map_count`) bound
//! how many connections it can hold. `serve` reads them (on Linux) and
//! lowers `max_connections` to fit, so that connections beyond are refused
//! with `server-full` rather than crashing the process; with the common
//! `vm.max_map_count` of 65530 that is about 7,600 connections. The async
//! transports have no such bound.
//!
//! ```no_run
//! use chat_proto::ServerConfig;
//! use transport_std::Server;
//!
//! let server = Server::bind("127.0.0.1:7878", ServerConfig::default())?;
//! println!("listening on {}", server.local_addr()?);
//! let stop = server.shutdown_handle();
//! std::thread::spawn(move || {
//!     std::thread::sleep(std::time::Duration::from_secs(60));
//!     stop.shutdown();
//! });
//! server.serve()?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use chat_proto::{ConnId, ServerConfig};
use transport_common::{
    AcceptBackoff, HubDriver, HubMsg, ServerOptions, bind_listener, check_config,
};

use crate::conn::Conn;

/// Events handled before the writers are woken.
const EVENT_BATCH: usize = 64;

/// What reaches the hub thread.
#[derive(Debug)]
pub(crate) enum Event {
    /// From a connection's threads.
    Hub(HubMsg),
    /// From the acceptor.
    Accepted(TcpStream, SocketAddr),
    /// From a [`ShutdownHandle`].
    Shutdown,
}

/// A bound chat server, ready to serve on the calling thread.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    config: ServerConfig,
    options: ServerOptions,
    to_hub: SyncSender<Event>,
    inbox: mpsc::Receiver<Event>,
    stopping: Arc<AtomicBool>,
}

/// Stops a [`Server`] from another thread.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    to_hub: SyncSender<Event>,
}

impl ShutdownHandle {
    /// Starts a graceful shutdown: every client is sent `bye:` and flushed;
    /// `serve` returns once all are closed or the grace period is over.
    /// Connections arriving meanwhile are accepted and answered `bye:` too.
    /// Calling it again, or after `serve` returned, does nothing.
    pub fn shutdown(&self) {
        let _ = self.to_hub.send(Event::Shutdown);
    }
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) with a listen backlog of
    /// 1024. Fails with `InvalidInput` if `config` cannot work.
    pub fn bind(addr: impl ToSocketAddrs, config: ServerConfig) -> io::Result<Server> {
        check_config(&config)?;
        let options = ServerOptions::default();
        let (to_hub, inbox) = mpsc::sync_channel(options.channel_capacity);
        Ok(Server {
            listener: bind_listener(addr)?,
            config,
            options,
            to_hub,
            inbox,
            stopping: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Replaces the transport options (accept pause, timer slack). The channel to the hub thread was made by `bind`, with
    /// the default `channel_capacity`.
    pub fn with_options(mut self, options: ServerOptions) -> Self {
        self.options = options;
        self
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle that stops `serve` from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            to_hub: self.to_hub.clone(),
        }
    }

    /// Serves on the calling thread until a [`ShutdownHandle`] stops it,
    /// then shuts down gracefully.
    pub fn serve(self) -> io::Result<()> {
        let Server {
            listener,
            config,
            options,
            to_hub,
            inbox,
            stopping,
        } = self;
        // Write reports take a channel of their own, emptied before every
        // event: behind queued input they would arrive late.
        let (written_tx, written) = mpsc::channel::<(ConnId, usize)>();
        let local = listener.local_addr()?;
        let mut config = config;
        if let Some(budget) = connection_budget()
            && config.max_connections > budget
        {
            tracing::warn!(
                requested = config.max_connections,
                budget,
                "max_connections lowered: this machine's thread limits \
                 (vm.max_map_count, kernel.pid_max) allow about {budget} connections \
                 at two threads each; more are refused with server-full"
            );
            config.max_connections = budget;
        }
        let mut driver =
            HubDriver::new(config).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let acceptor = {
            let to_hub = to_hub.clone();
            let stopping = stopping.clone();
            let pause = options.accept_pause;
            std::thread::Builder::new()
                .name("chat-accept".into())
                .spawn(move || accept_loop(&listener, &to_hub, &stopping, pause))?
        };
        let _span = tracing::info_span!("chat_server", %local).entered();
        tracing::info!("serving");
        let mut shutting_down = false;
        loop {
            let now = Instant::now();
            take_reports(&written, &mut driver, now);
            driver.handle_timeout(now);
            driver.flush();
            // The hub ends the grace period itself, aborting what is left.
            if shutting_down && driver.is_finished() {
                tracing::info!("shutdown complete");
                break;
            }
            // Timers may run `timer_slack` late, so one wake-up serves many.
            let next = driver.poll_timeout().map(|t| t + options.timer_slack);
            let event = match next {
                Some(at) => {
                    let wait = at
                        .saturating_duration_since(now)
                        .max(Duration::from_millis(1));
                    inbox.recv_timeout(wait)
                }
                None => inbox.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            let event = match event {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => continue,
                // We hold a sender, so the channel cannot close.
                Err(RecvTimeoutError::Disconnected) => break,
            };
            // This event and what else is already waiting, then one wake-up
            // per writer for all of their output.
            for event in batch(event, &inbox, EVENT_BATCH) {
                let now = Instant::now();
                take_reports(&written, &mut driver, now);
                match event {
                    Event::Hub(msg) => driver.handle(msg, now),
                    // During shutdown too: the hub answers a late arrival
                    // with `bye:` and closes it.
                    Event::Accepted(stream, peer) => {
                        let (id, outbox) = driver.accept(now, peer);
                        let (to_hub, written) = (to_hub.clone(), written_tx.clone());
                        if let Err(e) = Conn::spawn(id, peer, stream, outbox, to_hub, written) {
                            tracing::warn!(conn = %id, error = %e, "cannot start connection threads");
                            driver.handle(HubMsg::Closed(id), now);
                        }
                    }
                    Event::Shutdown => {
                        if !shutting_down {
                            driver.shutdown(now);
                            shutting_down = true;
                        }
                    }
                }
            }
            driver.flush();
        }
        stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&local, Duration::from_secs(1));
        let _ = acceptor.join();
        Ok(())
    }
}

/// Hands the hub every write report that has arrived, so that whatever it
/// decides next (on input or on a timer) sees what is really unflushed.
/// Reports change nothing else in the hub, so they need no wake-up of
/// their own.
fn take_reports(written: &mpsc::Receiver<(ConnId, usize)>, driver: &mut HubDriver, now: Instant) {
    for (id, n) in written.try_iter() {
        driver.handle(HubMsg::Written(id, n), now);
    }
}

/// The event just received and what else is already waiting, at most `max`
/// in all; what is left stays queued for the next batch.
fn batch<T>(first: T, inbox: &mpsc::Receiver<T>, max: usize) -> impl Iterator<Item = T> + '_ {
    std::iter::once(first).chain(inbox.try_iter()).take(max)
}

/// How many connections this machine can give two threads each, if it can
/// tell. Past the limit a thread fails to start its guard pages and the
/// process aborts, which no error handling can catch, so the server refuses
/// connections before that (as `server-full`).
///
/// Each thread takes about four memory mappings (stack, guard page, signal
/// stack, guard page) and one process id; some of both are kept for the
/// rest of the process and the system.
fn connection_budget() -> Option<usize> {
    let read =
        |path: &str| -> Option<usize> { std::fs::read_to_string(path).ok()?.trim().parse().ok() };
    let maps = read("/proc/sys/vm/max_map_count")?;
    let pids = read("/proc/sys/kernel/pid_max")?;
    let threads = (maps.saturating_sub(4096) / 4).min(pids.saturating_sub(4096));
    Some(threads / 2)
}

fn accept_loop(
    listener: &TcpListener,
    to_hub: &SyncSender<Event>,
    stopping: &AtomicBool,
    pause: Duration,
) {
    let mut backoff = AcceptBackoff::new(pause);
    while !stopping.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, peer)) => {
                backoff.succeeded();
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                // Chat frames are small and must not wait for Nagle.
                let _ = stream.set_nodelay(true);
                if to_hub.send(Event::Accepted(stream, peer)).is_err() {
                    return;
                }
            }
            Err(e) => {
                if let Some(pause) = backoff.failed(&e) {
                    std::thread::sleep(pause);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_stops_at_its_size_and_leaves_the_rest_queued() {
        let (tx, rx) = mpsc::channel();
        for i in 1..100 {
            tx.send(i).unwrap();
        }
        let first: Vec<i32> = batch(0, &rx, 64).collect();
        assert_eq!(first, (0..64).collect::<Vec<_>>());
        // Nothing was taken and dropped at the batch's end.
        assert_eq!(
            rx.try_iter().collect::<Vec<_>>(),
            (64..100).collect::<Vec<_>>()
        );
        let (tx, rx) = mpsc::channel();
        tx.send(1).unwrap();
        assert_eq!(batch(0, &rx, 64).collect::<Vec<_>>(), [0, 1]);
    }
}
