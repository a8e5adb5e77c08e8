//! The hub's side of a server: the [`Hub`] plus the table of connections,
//! driven by messages from the connections.
//!
//! Every transport has one place that owns the hub: a task for the async
//! ones, a thread for the blocking one. That place feeds the hub the
//! [`HubMsg`]s of the connections, plus accepts, timeouts and shutdown,
//! through a [`HubDriver`]. After every input the driver drains the hub's
//! outputs, as the core's contract requires: transmits, closes, aborts and
//! input pauses go to each connection's [`Outbox`], and events become
//! tracing events and reach the application's [`ServerHandle`].
//!
//! Both server loops (the async one in `transport-async`, the blocking one
//! in `transport-std`) work in batches, and what a batch is lives here,
//! written once: the loop feeds the driver what arrived (at most a batch of
//! it), then calls [`HubDriver::end_batch`], which applies the commands
//! queued through the [`ServerHandle`], runs the hub's timers, refreshes
//! the handle's snapshots, writes each connection's output of the batch
//! to its socket from the hub's own task where the socket takes it at once
//! (see [`Outbox::flush_through`]), wakes the writer of every connection
//! with output left, once, and says what the loop does next: wait until the hub's next
//! deadline plus the timer slack (so that one wake-up serves every timer
//! due in that window), or stop, because the shutdown is complete. What is
//! left to each loop is its runtime's way of waiting.
//!
//! The driver makes no protocol decision; it only routes what the hub
//! decided.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chat_proto::history::{HistoryStore as _, StoreRecord};
use chat_proto::{
    ConfigError, ConnId, Hub, HubEvent, MAX_DURATION, Output, Peer, ServerConfig, after,
};

use crate::outbox::{Flushed, Outbox, TryWrite};
use crate::server_handle::ServerHandle;
use crate::store_worker::{DynStore, StoreWorker};

mod commands;

/// The most bytes queued for one connection that the hub's task writes
/// through itself; more is left to the connection's writer (a burst's
/// copy into the kernel is better spread over the writers' tasks).
const THROUGH_MAX: usize = 64 << 10;

/// How many times a batch's end writes through what writes through made
/// the hub hand out (a window that opened); then the writers take over.
const THROUGH_ROUNDS: usize = 4;

/// What a connection tells the hub.
#[derive(Debug)]
pub enum HubMsg {
    /// Bytes arrived.
    Input(ConnId, Bytes),
    /// The peer ended its side of the stream; the connection goes on
    /// writing until the hub closes it.
    Eof(ConnId),
    /// Bytes the hub handed out were written to the socket.
    Written(ConnId, usize),
    /// The connection's socket is closed and its task or threads are done.
    Closed(ConnId),
}

#[derive(Debug)]
struct Entry {
    id: ConnId,
    outbox: Arc<Outbox>,
    /// The socket, for writing through; `None` if the transport gave none.
    writer: Option<Arc<dyn TryWrite>>,
}

/// What a server loop does after a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wait for more input, and no later than this instant, if any (the
    /// hub's next deadline, plus the timer slack), then run a batch.
    Wait(Option<Instant>),
    /// The shutdown is complete: every socket is closed. Stop.
    Finished,
}

/// The hub and the connections it talks to.
#[derive(Debug)]
pub struct HubDriver {
    hub: Hub,
    /// Connections whose socket is open, by `ConnId::index` (the hub does
    /// not reuse an index before the socket is reported closed).
    open: Vec<Option<Entry>>,
    /// Connections whose outbox was given data since the last batch ended.
    to_wake: Vec<ConnId>,
    /// An empty list, kept to swap with `to_wake`.
    spare: Vec<ConnId>,
    /// Connections whose reading was paused in the middle of a batch,
    /// before the hub's word on it was drained.
    paused_early: Vec<ConnId>,
    /// The application's end.
    handle: ServerHandle,
    /// How late timers may run, so that one wake-up serves many.
    timer_slack: Duration,
    /// The outputs of one drain that are not events, kept for the next.
    routes: Vec<Output>,
    /// Durable history: the thread that owns the store.
    store: Option<StoreWorker>,
    /// Store records of this batch, for the store at its end.
    unstored: Vec<StoreRecord>,
    /// Why the store failed, if it did (the server then stops).
    store_failure: Option<String>,
}

impl HubDriver {
    /// A driver for a new hub, whose timers may run up to `timer_slack`
    /// late.
    pub fn new(config: ServerConfig, timer_slack: Duration) -> Result<Self, ConfigError> {
        let handle = ServerHandle::new(config.max_frame_len);
        Ok(HubDriver {
            hub: Hub::new(config)?,
            open: Vec::new(),
            to_wake: Vec::new(),
            spare: Vec::new(),
            paused_early: Vec::new(),
            handle,
            timer_slack,
            routes: Vec::new(),
            store: None,
            unstored: Vec::new(),
            store_failure: None,
        })
    }

    /// Gives the server durable history: restores every room the store
    /// holds into the hub (same epochs and offsets, so clients resume
    /// across a restart), then starts the thread that applies the hub's
    /// store records from now on. Returns how many rooms were restored.
    ///
    /// Call it before accepting anyone. Fails, attaching nothing, if the
    /// configuration's `history.durable` is off, if a store is attached
    /// already, if the store cannot be read, or if the hub refuses a room
    /// (see [`Hub::restore`]: a connection was accepted already, the store
    /// holds more than `max_rooms` rooms, a malformed history).
    pub fn attach_store(&mut self, mut store: DynStore) -> io::Result<usize> {
        let history = self.hub.config().history;
        if !history.durable {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a history store needs durable history (ServerConfig::history.durable)",
            ));
        }
        if self.store.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a history store is attached already",
            ));
        }
        let rooms = store
            .load(history.messages)
            .map_err(|e| io::Error::other(format!("cannot read the history store: {e}")))?;
        for room in &rooms {
            self.hub
                .restore(room)
                .map_err(|e| io::Error::other(format!("cannot restore room {}: {e}", room.room)))?;
        }
        tracing::info!(rooms = rooms.len(), "history restored from the store");
        self.store = Some(StoreWorker::start(store, self.handle.clone())?);
        Ok(rooms.len())
    }

    /// Why the history store failed, if it did: the server then shuts down,
    /// and its `serve` returns this as an error.
    pub fn store_failure(&self) -> Option<&str> {
        self.store_failure.as_deref()
    }

    /// What a server's `serve` returns once the loop has finished: `Ok`,
    /// or the history store's failure that stopped it.
    pub fn outcome(&self) -> io::Result<()> {
        match &self.store_failure {
            None => Ok(()),
            Some(e) => Err(io::Error::other(format!("the history store failed: {e}"))),
        }
    }

    /// The handle the application uses to act on this server and see what
    /// happens in it.
    pub fn server_handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Sets how late timers may run.
    pub fn set_timer_slack(&mut self, timer_slack: Duration) {
        self.timer_slack = timer_slack;
    }

    /// Sets what wakes the loop when the application queues an action
    /// through the [`ServerHandle`]: an async loop registers its task's
    /// waker on every poll (a repeat costs a comparison); a blocking loop
    /// registers one that sends itself a message, once.
    pub fn register_waker(&self, waker: &Waker) {
        self.handle.register_waker(waker);
    }

    /// The hub, to inspect.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Sockets still held: open connections and closing ones still flushing.
    pub fn sockets(&self) -> usize {
        self.hub.sockets()
    }

    /// Ends a batch of inputs: routes what the hub said about them,
    /// applies the application's actions, runs the hub's timers, writes
    /// each connection's output of the batch in one write, from this task
    /// where its socket takes it at once and through its writer otherwise
    /// (woken once), and refreshes the handle's counters. Then says what
    /// the loop does next.
    pub fn end_batch(&mut self, now: Instant) -> Next {
        self.drain();
        // Paused and resumed within the batch: the hub had nothing to say.
        for id in std::mem::take(&mut self.paused_early) {
            if !self.hub.is_input_paused(id)
                && let Some(outbox) = self.outbox(id)
            {
                outbox.resume_input();
            }
        }
        let reads = self.apply_commands(now);
        self.hub.handle_timeout(now);
        self.drain();
        // The batch's new messages go to the store before anything is
        // written: without a store they count as stored at once, and are
        // handed out in this batch's writes.
        self.flush_store(now);
        self.flush(now);
        self.handle.set_stats(self.hub.stats());
        self.answer(reads);
        // The hub ends the grace period itself, aborting what is left.
        if self.hub.is_shutting_down() && self.hub.is_finished() {
            tracing::info!("shutdown complete");
            return Next::Finished;
        }
        Next::Wait(self.wake_at())
    }

    /// Writes through what the batch queued for each connection, reports
    /// it written, and wakes the writers of what is left.
    fn flush(&mut self, now: Instant) {
        for _ in 0..THROUGH_ROUNDS {
            if self.to_wake.is_empty() {
                return;
            }
            let mut pending = std::mem::replace(&mut self.to_wake, std::mem::take(&mut self.spare));
            for id in pending.drain(..) {
                let Some(entry) = self.entry(id) else {
                    continue;
                };
                let flushed = match &entry.writer {
                    Some(socket) => entry.outbox.flush_through(socket.as_ref(), THROUGH_MAX),
                    None => Flushed {
                        wake: true,
                        ..Flushed::default()
                    },
                };
                if flushed.wake {
                    entry.outbox.wake();
                }
                if let Some(spare) = flushed.spare {
                    self.hub.recycle(spare);
                }
                if flushed.written > 0 {
                    // The window has room again: the hub may hand out more,
                    // for the next round.
                    self.hub.written(id, now, flushed.written);
                    self.drain();
                }
            }
            self.spare = pending;
        }
        for id in std::mem::take(&mut self.to_wake) {
            if let Some(entry) = self.entry(id) {
                entry.outbox.wake();
            }
        }
    }

    /// When the loop must next run a batch even if nothing arrives: the
    /// hub's next deadline plus the timer slack.
    pub fn wake_at(&self) -> Option<Instant> {
        let slack = self.timer_slack.min(MAX_DURATION);
        self.hub.poll_timeout().map(|t| after(t, slack))
    }

    /// Hands the batch's store records to the store's thread. Without a
    /// store (durable history configured, none attached) they count as
    /// stored at once: the history is in memory only.
    fn flush_store(&mut self, now: Instant) {
        if self.unstored.is_empty() {
            return;
        }
        let records = std::mem::take(&mut self.unstored);
        match &self.store {
            Some(worker) => worker.send(records),
            None => {
                for (room, epoch, next) in crate::store_worker::stored_heads(&records) {
                    self.hub.stored(now, &room, epoch, next);
                }
                self.drain();
            }
        }
    }

    /// Registers a connection accepted at `now` by the server's listener,
    /// from `peer` (a plain-text TCP connection). The caller starts its
    /// reader and writer with the returned id and outbox. A connection over
    /// a limit is already told so (`err:server-full`, ...) and closed
    /// through its outbox; its writer flushes that and exits.
    pub fn accept(&mut self, now: Instant, peer: SocketAddr) -> (ConnId, Arc<Outbox>) {
        let id = self.hub.accept(now, Some(peer.ip()));
        tracing::info!(conn = %id, %peer, "accepted");
        self.register(id)
    }

    /// [`accept`](Self::accept) for an encrypted (TLS) connection: the hub
    /// takes a secret (`iam:NAME:SECRET`) over it. It is accepted before
    /// its handshake is done, so that the login timeout covers the
    /// handshake; what the hub queues for it waits until the handshake
    /// ends.
    pub fn accept_tls(&mut self, now: Instant, peer: SocketAddr) -> (ConnId, Arc<Outbox>) {
        self.accept_from(now, Peer::secure(Some(peer.ip())), "tls")
    }

    /// Registers a connection that came some other way than the server's
    /// listener (a WebSocket, a stream in memory, ...), as
    /// [`accept`](Self::accept) does: `peer` is what is known of its other
    /// end, `via` says how it came, for the logs.
    pub fn accept_from(&mut self, now: Instant, peer: Peer, via: &str) -> (ConnId, Arc<Outbox>) {
        let id = self.hub.accept_from(now, peer);
        match peer.addr {
            Some(addr) => {
                tracing::info!(conn = %id, peer = %addr, secure = peer.secure, via, "accepted")
            }
            None => tracing::info!(conn = %id, secure = peer.secure, via, "accepted"),
        }
        self.register(id)
    }

    fn register(&mut self, id: ConnId) -> (ConnId, Arc<Outbox>) {
        let outbox = Arc::new(Outbox::new());
        let index = id.index();
        if self.open.len() <= index {
            self.open.resize_with(index + 1, || None);
        }
        debug_assert!(self.open[index].is_none());
        self.open[index] = Some(Entry {
            id,
            outbox: outbox.clone(),
            writer: None,
        });
        self.drain();
        (id, outbox)
    }

    /// Gives the hub's task `socket`, the socket of connection `id`, to
    /// write through (see [`Outbox::flush_through`]). Without it, every
    /// write is the connection's writer's.
    pub fn set_writer(&mut self, id: ConnId, socket: Arc<dyn TryWrite>) {
        if let Some(Some(entry)) = self.open.get_mut(id.index())
            && entry.id == id
        {
            entry.writer = Some(socket);
        }
    }

    /// Applies a message from a connection. What the hub has to say about
    /// it is routed when the batch ends ([`end_batch`](Self::end_batch)),
    /// with what it says about the batch's other messages: the core allows
    /// a batch of inputs that arrived together to be drained once, and a
    /// member of a busy room is then handed the batch's messages as one
    /// slice of the room's log rather than one per message.
    pub fn handle(&mut self, msg: HubMsg, now: Instant) {
        match msg {
            HubMsg::Input(id, bytes) => {
                self.hub.handle_input(id, now, &bytes);
                // A connection the hub takes no more input from stops being
                // read now, not when the batch ends: what it sends meanwhile
                // would wait in the hub.
                if self.hub.is_input_paused(id)
                    && let Some(outbox) = self.outbox(id)
                    && !outbox.input_paused()
                {
                    outbox.pause_input();
                    self.paused_early.push(id);
                }
            }
            HubMsg::Eof(id) => self.hub.handle_eof(id, now),
            HubMsg::Written(id, n) => self.hub.written(id, now, n),
            HubMsg::Closed(id) => {
                self.hub.disconnected(id, now);
                self.remove_open(id);
            }
        }
    }

    /// Starts a graceful shutdown: every connection is sent `bye:` and
    /// closed by its writer once flushed; connections accepted from now on
    /// are answered `bye:` too. [`end_batch`](Self::end_batch) says when it
    /// is complete. Calling it again does nothing.
    pub fn shutdown(&mut self, now: Instant) {
        if self.hub.is_shutting_down() {
            return;
        }
        tracing::info!(connections = self.hub.connections(), "shutting down");
        self.hub.shutdown(now);
        self.drain();
    }

    /// Whether a shutdown has started.
    pub fn is_shutting_down(&self) -> bool {
        self.hub.is_shutting_down()
    }

    /// Tells every remaining writer to stop at once (the server is going
    /// away).
    pub fn abort_all(&mut self) {
        for entry in self.open.iter().flatten() {
            entry.outbox.abort();
        }
    }

    /// Whether the hub's shutdown is complete: every socket closed.
    pub fn is_finished(&self) -> bool {
        self.hub.is_finished()
    }

    fn remove_open(&mut self, id: ConnId) -> Option<Entry> {
        let slot = self.open.get_mut(id.index())?;
        if slot.as_ref().is_some_and(|e| e.id == id) {
            slot.take()
        } else {
            None
        }
    }

    fn entry(&self, id: ConnId) -> Option<&Entry> {
        match self.open.get(id.index()) {
            Some(Some(entry)) if entry.id == id => Some(entry),
            _ => None,
        }
    }

    fn outbox(&self, id: ConnId) -> Option<&Arc<Outbox>> {
        self.entry(id).map(|e| &e.outbox)
    }

    /// Routes everything the hub has to say.
    ///
    /// Events are taken first and what the connections must do second, so
    /// that the handle's snapshots (who is logged in, the counters) are up
    /// to date before any writer can pass on the bytes that follow from the
    /// same decisions: a client that has read `ok:` is already listed, and
    /// the counters already count it.
    fn drain(&mut self) {
        let mut routes = std::mem::take(&mut self.routes);
        while let Some(output) = self.hub.poll_output() {
            match output {
                Output::Event(event) => {
                    self.note_event(&event);
                    self.handle.publish(&event);
                }
                Output::Store(record) => self.unstored.push(record),
                other => routes.push(other),
            }
        }
        if routes.is_empty() {
            self.routes = routes;
            return;
        }
        self.handle.set_stats(self.hub.stats());
        for output in routes.drain(..) {
            match output {
                Output::Transmit(mut t) => {
                    if let Some(outbox) = self.outbox(t.conn)
                        && outbox.push(&mut t.data)
                    {
                        self.to_wake.push(t.conn);
                    }
                    self.hub.recycle(t.data);
                }
                Output::Close(id) => {
                    if let Some(outbox) = self.outbox(id) {
                        outbox.close();
                    }
                }
                Output::Abort(id) => {
                    if let Some(outbox) = self.outbox(id) {
                        outbox.abort();
                    }
                }
                Output::PauseInput(id) => {
                    if let Some(outbox) = self.outbox(id) {
                        outbox.pause_input();
                    }
                }
                Output::ResumeInput(id) => {
                    if let Some(outbox) = self.outbox(id) {
                        outbox.resume_input();
                    }
                }
                other => tracing::debug!(?other, "hub output"),
            }
        }
        self.routes = routes;
    }

    /// Logs `event` and keeps the handle's list of who is logged in.
    fn note_event(&self, event: &HubEvent) {
        match event {
            HubEvent::LoggedIn { conn, name } => {
                tracing::info!(%conn, %name, "logged in");
                self.handle.logged_in_as(*conn, name);
            }
            HubEvent::Closed { conn, reason } => {
                tracing::info!(%conn, reason = reason.as_str(), "closed");
                self.handle.closed(*conn);
            }
            other => tracing::debug!(?other, "hub event"),
        }
    }
}

impl Drop for HubDriver {
    fn drop(&mut self) {
        // The store takes what is left (records of the last batch, if it
        // did not end) and its thread ends.
        if let Some(worker) = &self.store
            && !self.unstored.is_empty()
        {
            worker.send(std::mem::take(&mut self.unstored));
        }
        drop(self.store.take());
        // Subscriptions end; actions from now on are dropped.
        self.handle.finish();
    }
}

#[cfg(test)]
mod tests;
