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
    AcceptBackoff, DynStore, HubDriver, HubMsg, Next, ServerHandle, ServerOptions, bind_listener,
    check_config,
};

use crate::conn::Conn;
use crate::reports;

/// Events handled before the batch ends and the writers are woken.
const EVENT_BATCH: usize = 64;

/// What reaches the hub thread.
#[derive(Debug)]
pub(crate) enum Event {
    /// From a connection's threads.
    Hub(HubMsg),
    /// From the acceptor.
    Accepted(TcpStream, SocketAddr),
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

/// A bound chat server, ready to serve on the calling thread.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    driver: HubDriver,
    options: ServerOptions,
    to_hub: SyncSender<Event>,
    inbox: mpsc::Receiver<Event>,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) with a listen backlog of
    /// 1024. Fails with `InvalidInput` if `config` cannot work.
    pub fn bind(addr: impl ToSocketAddrs, config: ServerConfig) -> io::Result<Server> {
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
            listener: bind_listener(addr)?,
            driver,
            options,
            to_hub,
            inbox,
        })
    }

    /// Replaces the transport options (accept pause, timer slack). The
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

    /// The address the server listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
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
            listener,
            mut driver,
            options,
            to_hub,
            inbox,
        } = self;
        // Write reports take a channel of their own, emptied before every
        // event: behind queued input they would arrive late.
        let (written_tx, written) = reports::channel(to_hub.clone());
        let local = listener.local_addr()?;
        driver.register_waker(&Waker::from(Arc::new(LoopWaker(to_hub.clone()))));
        let stopping = Arc::new(AtomicBool::new(false));
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
                    Event::Accepted(stream, peer) => {
                        let (id, outbox) = driver.accept(now, peer);
                        let (to_hub, written) = (to_hub.clone(), written_tx.clone());
                        match Conn::spawn(id, peer, stream, outbox, to_hub, written) {
                            #[cfg(unix)]
                            Ok(conn) => driver.set_writer(id, conn),
                            #[cfg(not(unix))]
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
        let _ = TcpStream::connect_timeout(&local, Duration::from_secs(1));
        let _ = acceptor.join();
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
