//! The server of the async transports, written once.
//!
//! [`Server`] binds through its [`Runtime`] and serves: one future owns the
//! [`HubDriver`], accepts connections and spawns a [`ConnIo`] for each,
//! feeds the driver what the connections send, and ends each batch with
//! [`HubDriver::end_batch`], which applies the application's actions, runs
//! the hub's timers, wakes the writers and says when to wake next. On the
//! shutdown signal (or [`ServerHandle::shutdown`]) the hub says `bye:` to
//! everyone and the loop returns once every socket is closed or the grace
//! period is over. What is this loop's own is the waiting: on the
//! connections' channel, the listeners, the signal and one timer.
//!
//! A server may listen on several addresses, each plain or (feature `tls`)
//! TLS, all feeding the same hub: `chat serve` serves TLS on its public
//! address and plain text on a loopback one. A TLS connection is accepted
//! into the hub at once and does its handshake in its own task (see
//! [`tls_io`](crate::tls_io)); a [`HandshakeGate`] bounds how many do at once
//! ([`ServerOptions::max_handshakes`]): with every slot taken, TLS
//! listeners wait, and everything else goes on.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use chat_proto::history::HistoryStore;
use chat_proto::{MAX_DURATION, ServerConfig, after};
use futures_channel::mpsc;
use futures_core::Stream as _;
use tracing::Instrument as _;
use transport_common::{
    AcceptBackoff, Address, DynStore, HandshakeGate, HubDriver, HubMsg, Next, ServerHandle,
    ServerOptions, check_config,
};

use crate::attach::{ATTACH_QUEUE, Attach, Attacher};
use crate::conn_io::ConnIo;
use crate::runtime::{Accepted, BoxFuture, Listener, Runtime, Stream};
use crate::tls_io::Accepting;

/// Most messages handled before the loop yields to other tasks.
const BUDGET: usize = 512;

/// A bound chat server, ready to serve, on the runtime it was bound with.
///
/// One task owns the hub; each connection has a task of its own that reads
/// and writes without blocking the others. The application reaches the
/// running server through its [`handle`](Server::handle).
#[derive(Debug)]
pub struct Server {
    /// At least one.
    listeners: Vec<Listening>,
    driver: HubDriver,
    options: ServerOptions,
    rt: Arc<dyn Runtime>,
    /// Streams handed over by [`Attacher`]s.
    attached: (mpsc::Sender<Attach>, mpsc::Receiver<Attach>),
}

/// A listening socket and what to do with its connections.
#[derive(Debug)]
struct Listening {
    listener: Box<dyn Listener>,
    accepting: Accepting,
}

impl Server {
    /// Binds `addr` (`"host:port"` or a `SocketAddr`; port 0 picks a free
    /// port) with a listen backlog of 1024, on runtime `rt`. Fails with
    /// `InvalidInput` if `config` cannot work.
    pub async fn bind_on(
        rt: impl Runtime,
        addr: impl Into<Address>,
        config: ServerConfig,
    ) -> io::Result<Server> {
        Self::bind_accepting(Arc::new(rt), addr.into(), config, Accepting::Plain).await
    }

    /// [`bind_on`](Self::bind_on), serving TLS with `tls`'s certificate.
    #[cfg(feature = "tls")]
    pub async fn bind_tls_on(
        rt: impl Runtime,
        addr: impl Into<Address>,
        config: ServerConfig,
        tls: &transport_common::tls::ServerTls,
    ) -> io::Result<Server> {
        Self::bind_accepting(Arc::new(rt), addr.into(), config, Accepting::tls(tls)).await
    }

    async fn bind_accepting(
        rt: Arc<dyn Runtime>,
        addr: Address,
        config: ServerConfig,
        accepting: Accepting,
    ) -> io::Result<Server> {
        check_config(&config)?;
        let options = ServerOptions::default();
        let driver = HubDriver::new(config, options.timer_slack)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let listener = listen(&*rt, addr).await?;
        Ok(Server {
            listeners: vec![Listening {
                listener,
                accepting,
            }],
            driver,
            options,
            rt,
            attached: mpsc::channel(ATTACH_QUEUE),
        })
    }

    /// Listens on `addr` too (plain text), for the same hub; returns the
    /// address bound.
    pub async fn add_listener(&mut self, addr: impl Into<Address>) -> io::Result<SocketAddr> {
        self.add(addr.into(), Accepting::Plain).await
    }

    /// Listens on `addr` too, serving TLS with `tls`'s certificate, for
    /// the same hub; returns the address bound.
    #[cfg(feature = "tls")]
    pub async fn add_tls_listener(
        &mut self,
        addr: impl Into<Address>,
        tls: &transport_common::tls::ServerTls,
    ) -> io::Result<SocketAddr> {
        self.add(addr.into(), Accepting::tls(tls)).await
    }

    async fn add(&mut self, addr: Address, accepting: Accepting) -> io::Result<SocketAddr> {
        let listener = listen(&*self.rt, addr).await?;
        let local = listener.local_addr()?;
        self.listeners.push(Listening {
            listener,
            accepting,
        });
        Ok(local)
    }

    /// Replaces the transport options (accept pause, channel capacity,
    /// timer slack, bound on TLS handshakes).
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
        self.listeners[0].listener.local_addr()
    }

    /// Every address the server listens on, in the order they were bound.
    pub fn local_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.listeners
            .iter()
            .map(|l| l.listener.local_addr())
            .collect()
    }

    /// Hands this server streams that did not come from its listener (a
    /// WebSocket bridged to bytes, a TLS stream, a pipe): see [`Attacher`].
    /// `via` names where they come from, in the logs. Take it before
    /// serving; it works from any task or thread.
    pub fn attacher(&self, via: &'static str) -> Attacher {
        Attacher::new(self.attached.0.clone(), via)
    }

    /// The application's handle on this server: decide logins, see
    /// events, kick, send notices, read who is logged in, shut down. Take
    /// it before serving; it works from any task or thread.
    pub fn handle(&self) -> ServerHandle {
        self.driver.server_handle()
    }

    /// Serves until the future is dropped, or until
    /// [`ServerHandle::shutdown`] and the graceful shutdown that follows.
    pub async fn serve(self) -> io::Result<()> {
        self.serve_with_shutdown(std::future::pending()).await
    }

    /// Serves until `signal` completes (or [`ServerHandle::shutdown`] is
    /// called), then shuts down gracefully: every client is sent
    /// `bye:server shutting down`, and this returns once all have been
    /// flushed and closed, or the grace period
    /// (`ServerConfig::shutdown_grace`) is over.
    pub async fn serve_with_shutdown<F>(self, signal: F) -> io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let local = self.local_addr()?;
        let span = tracing::info_span!("chat_server", %local);
        let (tx, rx) = mpsc::channel(self.options.channel_capacity);
        let mut state = ServerLoop {
            accept_backoff: AcceptBackoff::new(self.options.accept_pause),
            handshakes: HandshakeGate::new(self.options.max_handshakes),
            rt: self.rt,
            listeners: self.listeners,
            attached: self.attached.1,
            driver: self.driver,
            tx,
            rx,
            shutdown: Box::pin(signal),
            signalled: false,
            accept_paused: None,
            timer: None,
        };
        let serving = async move {
            tracing::info!("serving");
            std::future::poll_fn(|cx| state.poll(cx)).await;
            state.driver.outcome()
        };
        serving.instrument(span).await
    }
}

/// Binds the first address `addr` resolves to that works.
async fn listen(rt: &dyn Runtime, addr: Address) -> io::Result<Box<dyn Listener>> {
    let mut last_error = None;
    for addr in rt.resolve(addr).await? {
        match rt.listen(addr) {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind")))
}

struct ServerLoop {
    rt: Arc<dyn Runtime>,
    listeners: Vec<Listening>,
    /// Bounds the TLS handshakes in progress.
    handshakes: HandshakeGate,
    attached: mpsc::Receiver<Attach>,
    driver: HubDriver,
    tx: mpsc::Sender<HubMsg>,
    rx: mpsc::Receiver<HubMsg>,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// Set once the shutdown signal came (it is not polled again).
    signalled: bool,
    accept_backoff: AcceptBackoff,
    /// Accepting is paused until this sleep completes.
    accept_paused: Option<BoxFuture<()>>,
    /// A sleep until the given instant: the hub's deadline plus the slack.
    timer: Option<(Instant, BoxFuture<()>)>,
}

impl ServerLoop {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // Actions queued through the handle wake this task.
        self.driver.register_waker(cx.waker());
        let mut budget = BUDGET;
        loop {
            let mut progress = false;
            let now = self.rt.now();

            if !self.signalled && self.shutdown.as_mut().poll(cx).is_ready() {
                self.signalled = true;
                self.driver.shutdown(now);
                progress = true;
            }

            while budget > 0 {
                match Pin::new(&mut self.rx).poll_next(cx) {
                    Poll::Ready(Some(msg)) => {
                        self.driver.handle(msg, now);
                        budget -= 1;
                        progress = true;
                    }
                    // We hold a sender, so the channel never ends.
                    Poll::Ready(None) | Poll::Pending => break,
                }
            }

            if self.poll_accept(cx, now) {
                budget = budget.saturating_sub(1);
                progress = true;
            }
            if self.poll_attached(cx, now) {
                budget = budget.saturating_sub(1);
                progress = true;
            }

            let wake_at = match self.driver.end_batch(now) {
                Next::Finished => return Poll::Ready(()),
                Next::Wait(at) => at,
            };
            if budget == 0 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if !progress && !self.poll_timer(cx, wake_at) {
                return Poll::Pending;
            }
        }
    }

    /// Accepts at most one connection per listener; returns whether
    /// anything happened.
    fn poll_accept(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        // Accepting goes on during shutdown: the hub answers a late arrival
        // with `bye:` and closes it, as PROTOCOL.md says.
        if let Some(pause) = &mut self.accept_paused {
            if pause.as_mut().poll(cx).is_pending() {
                return false;
            }
            self.accept_paused = None;
        }
        let mut progress = false;
        for index in 0..self.listeners.len() {
            progress |= self.poll_listener(index, cx, now);
            if self.accept_paused.is_some() {
                break;
            }
        }
        progress
    }

    /// Accepts one connection on listener `index` if one is waiting.
    fn poll_listener(&mut self, index: usize, cx: &mut Context<'_>, now: Instant) -> bool {
        let listening = &mut self.listeners[index];
        // A TLS connection is accepted only with a handshake slot; without
        // one, the gate wakes this task when one comes back.
        let slot = match listening.accepting.is_tls() {
            true => match self.handshakes.poll_enter(cx) {
                Poll::Ready(slot) => Some(slot),
                Poll::Pending => return false,
            },
            false => None,
        };
        match listening.listener.poll_accept(cx) {
            Poll::Ready(Ok(Accepted {
                stream,
                writer,
                peer,
            })) => {
                self.accept_backoff.succeeded();
                let (id, outbox, stream): (_, _, Box<dyn Stream>) =
                    match (&listening.accepting, slot) {
                        // Bytes written to a TLS connection go through its
                        // session, so its writer task writes them all: no
                        // write-through from the hub's task.
                        #[cfg(feature = "tls")]
                        (Accepting::Tls(acceptor), Some(slot)) => {
                            let (id, outbox) = self.driver.accept_tls(now, peer);
                            let stream = crate::tls_io::LazyTls::new(acceptor, stream, slot);
                            (id, outbox, Box::new(stream))
                        }
                        _ => {
                            let (id, outbox) = self.driver.accept(now, peer);
                            if let Some(writer) = writer {
                                self.driver.set_writer(id, writer);
                            }
                            (id, outbox, stream)
                        }
                    };
                // Debug level: at the default `info` no span exists, so an
                // idle connection pays nothing for it.
                let span = tracing::debug_span!("conn", %id, %peer);
                let io = ConnIo::new(id, stream, outbox, self.tx.clone());
                self.rt.spawn(Box::pin(io.instrument(span)));
                true
            }
            Poll::Ready(Err(e)) => {
                if let Some(pause) = self.accept_backoff.failed(&e) {
                    let until = after(now, pause.min(MAX_DURATION));
                    self.accept_paused = Some(self.rt.sleep_until(until));
                }
                true
            }
            Poll::Pending => false,
        }
    }

    /// Accepts one attached stream if one is waiting; returns whether
    /// anything happened.
    fn poll_attached(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        // Every attacher gone: `Ready(None)`, nothing to do.
        let Poll::Ready(Some(attach)) = Pin::new(&mut self.attached).poll_next(cx) else {
            return false;
        };
        let (id, outbox) = self.driver.accept_from(now, attach.peer, attach.via);
        let span = tracing::debug_span!("conn", %id, via = attach.via);
        let io = ConnIo::new(id, attach.stream, outbox, self.tx.clone());
        self.rt.spawn(Box::pin(io.instrument(span)));
        true
    }

    /// Sleeps until `wake_at`; returns whether that moment has already
    /// come.
    fn poll_timer(&mut self, cx: &mut Context<'_>, wake_at: Option<Instant>) -> bool {
        let Some(next) = wake_at else {
            self.timer = None;
            return false;
        };
        if self.timer.as_ref().is_none_or(|(at, _)| *at != next) {
            self.timer = Some((next, self.rt.sleep_until(next)));
        }
        let (_, sleep) = self.timer.as_mut().expect("set above");
        if sleep.as_mut().poll(cx).is_ready() {
            // A completed sleep must not be polled again; a new one is made
            // if the deadline is still ahead.
            self.timer = None;
            true
        } else {
            false
        }
    }
}

impl Drop for ServerLoop {
    fn drop(&mut self) {
        // Dropped before a graceful end (or after it): make sure no
        // connection task outlives the server.
        self.driver.abort_all();
        self.handshakes.close();
    }
}
