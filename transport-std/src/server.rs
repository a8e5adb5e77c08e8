//! The chat server on blocking threads.
//!
//! `serve` runs the hub on the calling thread: it waits on one channel for
//! what the acceptor thread and the connection threads send, with a timeout
//! at the hub's next deadline (plus the timer slack), feeds the shared
//! [`HubDriver`] a batch of it, and ends the batch with
//! [`HubDriver::end_batch`], which does everything that is not waiting.
//! Each connection has a reader and a writer thread (see
//! [`conn`](crate::conn)). The [`ServerHandle`] from [`Server::handle`]
//! acts on the running server from any thread, and stops it gracefully.
//!
//! Two threads per connection is the price of blocking I/O without `poll`:
//! a machine's thread limits (`kernel.pid_max`, `vm.max_map_count`) bound
//! how many connections it can hold. `bind` reads them (on Linux) and
//! lowers `max_connections` to fit, so that connections beyond are refused
//! with `server-full` rather than crashing the process; with the common
//! `vm.max_map_count` of 65530 that is about 7,600 connections. The async
//! transports have no such bound.
//!
//! A server may listen on several addresses, each plain or (feature `tls`)
//! TLS, with an acceptor thread each, all feeding the same hub. A TLS
//! connection is handed to the hub at once and does its handshake on its
//! own reader thread (see the `tls` module); the acceptor of a TLS
//! listener first waits for a handshake slot
//! ([`ServerOptions::max_handshakes`]), so that no more than that many are
//! in progress.
//!
//! ```no_run
//! use transport_std::{Server, ServerConfig};
//!
//! let server = Server::bind("127.0.0.1:7878", ServerConfig::default())?;
//! println!("listening on {}", server.local_addr()?);
//! let handle = server.handle();
//! std::thread::spawn(move || {
//!     std::thread::sleep(std::time::Duration::from_secs(60));
//!     handle.notice_all("closing in a moment").ok();
//!     handle.shutdown();
//! });
//! server.serve()?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use chat_proto::ServerConfig;
use chat_proto::history::HistoryStore;
use transport_common::{
    AcceptBackoff, DynStore, HandshakeGate, HandshakeSlot, HubDriver, HubMsg, Next, ServerHandle,
    ServerOptions, bind_listener, check_config,
};

use crate::conn::Conn;
use crate::reports;
use crate::socket::Socket;

/// Events handled before the batch ends and the writers are woken.
const EVENT_BATCH: usize = 64;

/// What reaches the hub thread.
#[derive(Debug)]
pub(crate) enum Event {
    /// From a connection's threads.
    Hub(HubMsg),
    /// From an acceptor, with a handshake slot for a TLS connection.
    Accepted(TcpStream, SocketAddr, Listening, Option<HandshakeSlot>),
    /// The application queued an action through a [`ServerHandle`], or
    /// a writer reported bytes written: end a batch.
    Wake,
}

/// Wakes the hub thread for the handle's actions.
struct LoopWaker(SyncSender<Event>);

impl Wake for LoopWaker {
    fn wake(self: Arc<Self>) {
        // A full channel means the loop is busy: it ends a batch, and so
        // applies the actions, soon anyway.
        let _ = self.0.try_send(Event::Wake);
    }
}

/// What a listener does with its connections.
#[derive(Debug, Clone)]
pub(crate) enum Listening {
    /// Serves them as they are.
    Plain,
    /// Serves them over TLS.
    #[cfg(feature = "tls")]
    Tls(Arc<rustls::ServerConfig>),
}

/// A bound chat server, ready to serve on the calling thread.
#[derive(Debug)]
pub struct Server {
    /// At least one.
    listeners: Vec<(TcpListener, Listening)>,
    driver: HubDriver,
    options: ServerOptions,
    to_hub: SyncSender<Event>,
    inbox: mpsc::Receiver<Event>,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) with a listen backlog of
    /// 1024. Fails with `InvalidInput` if `config` cannot work.
    pub fn bind(addr: impl ToSocketAddrs, config: ServerConfig) -> io::Result<Server> {
        Self::bind_listening(addr, config, Listening::Plain)
    }

    /// [`bind`](Self::bind), serving TLS with `tls`'s certificate. A
    /// connection is handed to the hub as soon as it is accepted; its
    /// handshake must end within the login timeout, and at most
    /// [`ServerOptions::max_handshakes`] are in progress at once.
    #[cfg(feature = "tls")]
    pub fn bind_tls(
        addr: impl ToSocketAddrs,
        config: ServerConfig,
        tls: &transport_common::tls::ServerTls,
    ) -> io::Result<Server> {
        Self::bind_listening(addr, config, Listening::Tls(tls.config().clone()))
    }

    /// Listens on `addr` too (plain text), for the same hub; returns the
    /// address bound.
    pub fn add_listener(&mut self, addr: impl ToSocketAddrs) -> io::Result<SocketAddr> {
        self.add(addr, Listening::Plain)
    }

    /// Listens on `addr` too, serving TLS with `tls`'s certificate, for
    /// the same hub; returns the address bound.
    #[cfg(feature = "tls")]
    pub fn add_tls_listener(
        &mut self,
        addr: impl ToSocketAddrs,
        tls: &transport_common::tls::ServerTls,
    ) -> io::Result<SocketAddr> {
        self.add(addr, Listening::Tls(tls.config().clone()))
    }

    fn add(&mut self, addr: impl ToSocketAddrs, listening: Listening) -> io::Result<SocketAddr> {
        let listener = bind_listener(addr)?;
        let bound = listener.local_addr()?;
        self.listeners.push((listener, listening));
        Ok(bound)
    }

    fn bind_listening(
        addr: impl ToSocketAddrs,
        config: ServerConfig,
        listening: Listening,
    ) -> io::Result<Server> {
        check_config(&config)?;
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
        let options = ServerOptions::default();
        let driver = HubDriver::new(config, options.timer_slack)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let (to_hub, inbox) = mpsc::sync_channel(options.channel_capacity);
        Ok(Server {
            listeners: vec![(bind_listener(addr)?, listening)],
            driver,
            options,
            to_hub,
            inbox,
        })
    }

    /// Replaces the transport options (accept pause, timer slack, bound on
    /// TLS handshakes). The
    /// channel to the hub thread was made by `bind`, with the default
    /// `channel_capacity`.
    pub fn with_options(mut self, options: ServerOptions) -> Self {
        self.driver.set_timer_slack(options.timer_slack);
        self.options = options;
        self
    }

    /// Gives the server durable history from `store` (any
    /// [`HistoryStore`](chat_proto::history::HistoryStore)): the rooms it
    /// holds are restored now, before anyone is accepted, and from then on
    /// a message is handed out only once the store has it, applied on a
    /// thread of its own (see [`HubDriver::attach_store`]). Needs
    /// `ServerConfig::history.durable`; fails with `InvalidInput` without
    /// it, and with `Other` if the store cannot be read or restored. If the
    /// store fails later, the server shuts down gracefully and `serve`
    /// returns the error.
    pub fn with_history_store<S>(mut self, store: S) -> io::Result<Self>
    where
        S: HistoryStore + Send + 'static,
    {
        self.driver.attach_store(DynStore::new(store))?;
        Ok(self)
    }

    /// The address the server listens on (the first one, bound by
    /// `bind`).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listeners[0].0.local_addr()
    }

    /// Every address the server listens on, in the order they were bound.
    pub fn local_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.listeners.iter().map(|(l, _)| l.local_addr()).collect()
    }

    /// The application's handle on this server: decide logins, see
    /// events, kick, send notices, read who is logged in, and shut down
    /// gracefully. Take it before `serve`; it works from any thread.
    pub fn handle(&self) -> ServerHandle {
        self.driver.server_handle()
    }

    /// Serves on the calling thread until [`ServerHandle::shutdown`], then
    /// shuts down gracefully: every client is sent `bye:` and flushed;
    /// this returns once all are closed or the grace period is over.
    /// Connections arriving meanwhile are accepted and answered `bye:` too.
    pub fn serve(self) -> io::Result<()> {
        let Server {
            listeners,
            mut driver,
            options,
            to_hub,
            inbox,
        } = self;
        // Write reports take a channel of their own, emptied before every
        // event: behind queued input they would arrive late.
        let (written_tx, written) = reports::channel(to_hub.clone());
        let locals = listeners
            .iter()
            .map(|(l, _)| l.local_addr())
            .collect::<io::Result<Vec<_>>>()?;
        let local = locals[0];
        driver.register_waker(&Waker::from(Arc::new(LoopWaker(to_hub.clone()))));
        let stopping = Arc::new(AtomicBool::new(false));
        let gate = HandshakeGate::new(options.max_handshakes);
        let mut acceptors = Vec::new();
        for (listener, listening) in listeners {
            let acceptor = Acceptor {
                listener,
                listening,
                gate: gate.clone(),
                to_hub: to_hub.clone(),
                stopping: stopping.clone(),
                pause: options.accept_pause,
            };
            acceptors.push(
                std::thread::Builder::new()
                    .name("chat-accept".into())
                    .spawn(move || acceptor.run())?,
            );
        }
        let _span = tracing::info_span!("chat_server", %local).entered();
        tracing::info!("serving");
        loop {
            let now = Instant::now();
            written.take(&mut driver, now);
            let event = match driver.end_batch(now) {
                Next::Finished => break,
                Next::Wait(Some(at)) => {
                    let wait = at
                        .saturating_duration_since(now)
                        .max(Duration::from_millis(1));
                    inbox.recv_timeout(wait)
                }
                Next::Wait(None) => inbox.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            let event = match event {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => continue,
                // We hold a sender, so the channel cannot close.
                Err(RecvTimeoutError::Disconnected) => break,
            };
            // This event and what else is already waiting, then one end of
            // batch (one wake-up per writer) for all of their output.
            for event in batch(event, &inbox, EVENT_BATCH) {
                let now = Instant::now();
                written.take(&mut driver, now);
                match event {
                    Event::Hub(msg) => driver.handle(msg, now),
                    // During shutdown too: the hub answers a late arrival
                    // with `bye:` and closes it.
                    Event::Accepted(stream, peer, listening, slot) => {
                        let (id, outbox, socket) = match (listening, slot) {
                            #[cfg(feature = "tls")]
                            (Listening::Tls(config), Some(slot)) => {
                                let (id, outbox) = driver.accept_tls(now, peer);
                                let socket = crate::tls::TlsSocket::accept(stream, config, slot);
                                (id, outbox, socket.map(|s| Socket::Tls(Box::new(s))))
                            }
                            _ => {
                                let (id, outbox) = driver.accept(now, peer);
                                (id, outbox, Ok(Socket::Plain(stream)))
                            }
                        };
                        let (to_hub, written) = (to_hub.clone(), written_tx.clone());
                        let spawned = socket.and_then(|socket| {
                            Conn::spawn(id, peer, socket, outbox, to_hub, written)
                        });
                        match spawned {
                            #[cfg(unix)]
                            Ok(conn) if conn.is_plain() => driver.set_writer(id, conn),
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(conn = %id, error = %e, "cannot start connection threads");
                                driver.handle(HubMsg::Closed(id), now);
                            }
                        }
                    }
                    // The batch's end applies the handle's actions.
                    Event::Wake => {}
                }
            }
        }
        stopping.store(true, Ordering::SeqCst);
        gate.close();
        for local in locals {
            let _ = TcpStream::connect_timeout(&local, Duration::from_secs(1));
        }
        for acceptor in acceptors {
            let _ = acceptor.join();
        }
        driver.outcome()
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

/// One listener's acceptor thread.
struct Acceptor {
    listener: TcpListener,
    listening: Listening,
    gate: HandshakeGate,
    to_hub: SyncSender<Event>,
    stopping: Arc<AtomicBool>,
    pause: Duration,
}

impl Acceptor {
    fn run(self) {
        let mut backoff = AcceptBackoff::new(self.pause);
        while !self.stopping.load(Ordering::SeqCst) {
            // A TLS connection is accepted only with a handshake slot.
            let slot = match self.listening {
                Listening::Plain => None,
                #[allow(unreachable_patterns)]
                _ => match self.gate.enter_blocking() {
                    Some(slot) => Some(slot),
                    None => return,
                },
            };
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    backoff.succeeded();
                    if self.stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    // Chat frames are small and must not wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    let accepted = Event::Accepted(stream, peer, self.listening.clone(), slot);
                    if self.to_hub.send(accepted).is_err() {
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
