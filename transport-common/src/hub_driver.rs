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
use crate::server_handle::{Command, ServerHandle};
use crate::snapshot::ServerSnapshot;
use crate::store_worker::{DynStore, StoreWorker};

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
        let measure = self.apply_commands(now);
        self.hub.handle_timeout(now);
        self.drain();
        // The batch's new messages go to the store before anything is
        // written: without a store they count as stored at once, and are
        // handed out in this batch's writes.
        self.flush_store(now);
        self.flush(now);
        self.handle.set_stats(self.hub.stats());
        if let Some(ticket) = measure {
            self.handle.measured(ticket, self.snapshot());
        }
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

    /// The hub's counters and levels now. Walks the open connections and
    /// the rooms: taken only when the application asks
    /// ([`ServerHandle::measure`]).
    pub fn snapshot(&self) -> ServerSnapshot {
        let hub = &self.hub;
        let unflushed = self.open.iter().flatten();
        let unflushed = unflushed.filter_map(|entry| hub.unflushed(entry.id));
        let backlogs = hub.rooms().filter_map(|(name, _)| hub.room_backlog(name));
        ServerSnapshot {
            stats: hub.stats().clone(),
            connections: hub.connections(),
            sockets: hub.sockets(),
            members: hub.members(),
            rooms: hub.rooms().count(),
            unflushed_bytes: unflushed.map(|n| n as u64).sum(),
            room_backlog_bytes: backlogs.sum(),
        }
    }

    /// Applies the queued commands; returns the last measurement ticket
    /// among them, to be answered at the end of the batch.
    fn apply_commands(&mut self, now: Instant) -> Option<u64> {
        let mut measure = None;
        for command in self.handle.take_commands() {
            let result = match command {
                Command::Approve(conn) => {
                    self.hub.approve_login(conn, now);
                    Ok(())
                }
                Command::Refuse(conn, code, text) => self.hub.refuse_login(conn, now, code, &text),
                Command::Kick(conn, reason) => self.hub.kick(conn, now, &reason),
                Command::Notice(conn, text) => self.hub.notice(conn, now, &text),
                Command::NoticeAll(text) => self.hub.notice_all(now, &text),
                Command::Measure(ticket) => {
                    measure = Some(ticket);
                    Ok(())
                }
                Command::Shutdown => {
                    self.shutdown(now);
                    Ok(())
                }
                Command::Stored(heads) => {
                    for (room, epoch, next) in heads {
                        self.hub.stored(now, &room, epoch, next);
                    }
                    Ok(())
                }
                Command::StoreFailed(error) => {
                    self.store_failure.get_or_insert(error);
                    self.shutdown(now);
                    Ok(())
                }
            };
            if let Err(e) = result {
                // The handle checked what it could; the hub had the last word.
                tracing::warn!(error = %e, "the hub refused an action");
            }
            self.drain();
        }
        measure
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
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    fn take(outbox: &Outbox) -> crate::outbox::Taken {
        outbox
            .take_blocking(Some(std::time::Duration::ZERO))
            .unwrap_or_default()
    }

    #[test]
    fn routes_output_and_tracks_sockets_until_writers_finish() {
        let now = Instant::now();
        let mut driver = HubDriver::new(ServerConfig::default(), Duration::ZERO).unwrap();
        let (a, out_a) = driver.accept(now, peer());
        let (b, out_b) = driver.accept(now, peer());
        driver.handle(HubMsg::Input(a, Bytes::from_static(b"iam:a\n")), now);
        driver.handle(HubMsg::Input(b, Bytes::from_static(b"iam:b\n")), now);
        // Routed when the batch ends.
        assert_eq!(take(&out_a).data.concat(), b"");
        driver.end_batch(now);
        assert_eq!(take(&out_a).data.concat(), b"ok:a\njoin:b\n");
        assert_eq!(take(&out_b).data.concat(), b"ok:b\n");

        driver.handle(HubMsg::Input(b, Bytes::from_static(b"bye:x\n")), now);
        driver.end_batch(now);
        let last = take(&out_b);
        assert_eq!(
            (last.data.concat(), last.close),
            (b"bye:x\n".to_vec(), true)
        );
        assert_eq!(take(&out_a).data.concat(), b"left:b\n");
        // The writer of b is still flushing: its socket still counts, and
        // its index is not reused meanwhile.
        assert_eq!(driver.sockets(), 2);
        let (c, _out_c) = driver.accept(now, peer());
        assert_ne!(c.index(), b.index());
        driver.handle(HubMsg::Closed(b), now);
        assert_eq!(driver.sockets(), 2);
        assert_eq!(driver.hub().connections(), 2);
        driver.handle(HubMsg::Closed(a), now);
        assert_eq!(driver.sockets(), 1);
        assert_eq!(driver.hub().members(), 0);
    }

    /// A socket that takes `room` bytes, then would block.
    #[derive(Debug)]
    struct Socket {
        room: std::sync::Mutex<usize>,
        got: std::sync::Mutex<Vec<u8>>,
    }

    impl TryWrite for Socket {
        fn try_write_vectored(&self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
            let mut room = self.room.lock().unwrap();
            let mut got = self.got.lock().unwrap();
            let mut n = 0;
            for buf in bufs {
                let take = buf.len().min(*room - n);
                got.extend_from_slice(&buf[..take]);
                n += take;
            }
            *room -= n;
            if n == 0 {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            Ok(n)
        }
    }

    #[test]
    fn a_batch_is_written_through_where_the_socket_takes_it_and_reported() {
        let now = Instant::now();
        let mut driver = HubDriver::new(ServerConfig::default(), Duration::ZERO).unwrap();
        let (a, out_a) = driver.accept(now, peer());
        let (b, out_b) = driver.accept(now, peer());
        let roomy = Arc::new(Socket {
            room: std::sync::Mutex::new(1 << 20),
            got: Default::default(),
        });
        let tight = Arc::new(Socket {
            room: std::sync::Mutex::new(4),
            got: Default::default(),
        });
        driver.set_writer(a, roomy.clone());
        driver.set_writer(b, tight.clone());
        driver.handle(HubMsg::Input(a, Bytes::from_static(b"iam:a\n")), now);
        driver.handle(HubMsg::Input(b, Bytes::from_static(b"iam:b\n")), now);
        driver.handle(HubMsg::Input(a, Bytes::from_static(b"msg:hi\n")), now);
        driver.end_batch(now);
        // a's socket took the whole batch: nothing is left for its writer,
        // and the hub counts it written.
        assert_eq!(*roomy.got.lock().unwrap(), b"ok:a\njoin:b\nmsg:a:hi\n");
        assert_eq!(take(&out_a).data.concat(), b"");
        assert_eq!(driver.hub().in_flight(a), Some(0));
        // b's took 4 bytes; its writer gets the rest, in order.
        assert_eq!(*tight.got.lock().unwrap(), b"ok:b");
        assert_eq!(take(&out_b).data.concat(), b"\nmsg:a:hi\n");
        assert_eq!(driver.hub().in_flight(b), Some(10));
    }

    #[test]
    fn reading_pauses_within_the_batch_and_resumes_with_the_hub() {
        let now = Instant::now();
        let mut config = ServerConfig::default();
        config.rate_limit = Some(chat_proto::RateLimit {
            per_second: 1000,
            burst: 1,
        });
        let mut driver = HubDriver::new(config, Duration::ZERO).unwrap();
        let (a, out_a) = driver.accept(now, peer());
        driver.handle(HubMsg::Input(a, Bytes::from_static(b"iam:a\n")), now);
        driver.end_batch(now);
        // Over the rate: paused at once, before the batch ends.
        driver.handle(HubMsg::Input(a, Bytes::from_static(b"msg:1\nmsg:2\n")), now);
        assert!(out_a.input_paused());
        // The next token is due by the time the batch ends: reading
        // resumes, although the hub never said it paused.
        let later = now + Duration::from_millis(5);
        driver.handle(HubMsg::Written(a, 0), later);
        driver.end_batch(later);
        assert!(!driver.hub().is_input_paused(a));
        assert!(!out_a.input_paused());
    }

    #[test]
    fn a_secret_is_taken_over_tls_and_refused_in_clear_off_loopback() {
        let now = Instant::now();
        let mut config = ServerConfig::default();
        config.login = chat_proto::LoginMode::Application;
        let mut driver = HubDriver::new(config, Duration::ZERO).unwrap();
        let events = driver.server_handle().events();
        // A documentation address (RFC 5737): not loopback.
        let remote: SocketAddr = "192.0.2.7:40000".parse().unwrap();
        let (plain, out_plain) = driver.accept(now, remote);
        let (tls, out_tls) = driver.accept_tls(now, remote);
        driver.handle(HubMsg::Input(plain, Bytes::from_static(b"iam:a:pw\n")), now);
        // The batch's output is routed at its end.
        driver.end_batch(now);
        assert!(
            take(&out_plain).data.concat().starts_with(b"err:insecure:"),
            "a secret in clear from afar is refused"
        );
        driver.handle(HubMsg::Input(tls, Bytes::from_static(b"iam:b:pw\n")), now);
        driver.end_batch(now);
        let mut requested = None;
        while let Some(event) = events.try_next() {
            if let HubEvent::LoginRequested { conn, name, secret } = event {
                requested = Some((conn, name, secret));
            }
        }
        assert_eq!(
            requested,
            Some((tls, "b".to_owned(), Some("pw".to_owned())))
        );
        assert_eq!(take(&out_tls).data.concat(), b"");
    }

    #[test]
    fn shutdown_and_abort_reach_every_writer() {
        let now = Instant::now();
        let mut driver = HubDriver::new(ServerConfig::default(), Duration::ZERO).unwrap();
        let (_, out) = driver.accept(now, peer());
        driver.shutdown(now);
        let taken = take(&out);
        assert_eq!(taken.data.concat(), b"bye:server shutting down\n");
        assert!(taken.close);
        driver.abort_all();
        assert!(take(&out).abort);
    }

    #[test]
    fn a_batch_applies_the_handles_actions_and_ends_when_shutdown_completes() {
        let now = Instant::now();
        let mut config = ServerConfig::default();
        config.login = chat_proto::LoginMode::Application;
        let mut driver = HubDriver::new(config, Duration::from_millis(50)).unwrap();
        let handle = driver.server_handle();
        // Nobody listens yet: nothing is kept for later.
        let (a, out_a) = driver.accept(now, peer());
        driver.handle(HubMsg::Input(a, Bytes::from_static(b"iam:a\n")), now);
        driver.end_batch(now);
        let events = handle.events();
        assert_eq!(events.try_next(), None);
        assert_eq!(take(&out_a).data.concat(), b"");
        // A request is seen (when the batch ends), refused, then a second
        // one approved.
        let (b, out_b) = driver.accept(now, peer());
        driver.handle(HubMsg::Input(b, Bytes::from_static(b"iam:b\n")), now);
        assert_eq!(events.try_next(), None);
        driver.end_batch(now);
        let Some(HubEvent::LoginRequested { conn, name, .. }) = events.try_next() else {
            panic!("no login request")
        };
        assert_eq!((conn, name.as_str()), (b, "b"));
        handle
            .refuse_login(b, chat_proto::ErrorCode::LoginRefused, "not today")
            .unwrap();
        assert!(
            handle
                .refuse_login(b, chat_proto::ErrorCode::LoginRefused, "a\nb")
                .is_err()
        );
        driver.end_batch(now);
        assert_eq!(take(&out_b).data.concat(), b"err:login-refused:not today\n");
        handle.approve_login(a);
        handle.notice(a, "hello a").unwrap();
        handle.notice_all("hello all").unwrap();
        assert!(handle.notice_all(&"x".repeat(5000)).is_err());
        driver.end_batch(now);
        assert_eq!(
            take(&out_a).data.concat(),
            b"ok:a\nnotice:hello a\nnotice:hello all\n"
        );
        assert_eq!(handle.logged_in(), [(a, "a".to_owned())]);
        assert_eq!(handle.stats().logins, 1);
        handle.kick(a, "enough").unwrap();
        driver.end_batch(now);
        assert_eq!(take(&out_a).data.concat(), b"err:kicked:enough\n");
        assert!(handle.logged_in().is_empty());

        handle.shutdown();
        assert!(matches!(driver.end_batch(now), Next::Wait(_)));
        driver.handle(HubMsg::Closed(a), now);
        driver.handle(HubMsg::Closed(b), now);
        assert_eq!(driver.end_batch(now), Next::Finished);
        drop(driver);
        // The server is gone: the subscription ends after what it holds.
        while let Some(event) = events.try_next() {
            assert!(matches!(
                event,
                HubEvent::LoggedIn { .. } | HubEvent::Closed { .. }
            ));
        }
        assert_eq!(events.recv(), None);
    }

    #[test]
    fn a_measurement_is_taken_at_the_end_of_the_batch_after_the_request() {
        use std::pin::pin;
        use std::task::{Context, Poll, Waker};

        let now = Instant::now();
        let mut driver = HubDriver::new(ServerConfig::default(), Duration::ZERO).unwrap();
        let handle = driver.server_handle();
        let (a, out_a) = driver.accept(now, peer());
        // A connection that came another way, from a loopback address.
        let loopback = Peer::plain(Some([127, 0, 0, 2].into()));
        let (b, out_b) = driver.accept_from(now, loopback, "test");
        assert_eq!(driver.hub().peer(b), loopback.addr);
        driver.handle(HubMsg::Input(a, Bytes::from_static(b"iam:a\n")), now);
        driver.handle(HubMsg::Input(b, Bytes::from_static(b"iam:b\n")), now);
        driver.handle(HubMsg::Input(a, Bytes::from_static(b"msg:hi\n")), now);
        // The batch's output is routed at its end.
        driver.end_batch(now);
        let owed_a = take(&out_a).data.concat().len();
        let owed_b = take(&out_b).data.concat().len();
        // a reports its bytes written; b's are still owed.
        driver.handle(HubMsg::Written(a, owed_a), now);

        let mut cx = Context::from_waker(Waker::noop());
        let mut measuring = pin!(handle.measure());
        assert!(measuring.as_mut().poll(&mut cx).is_pending());
        driver.end_batch(now);
        let Poll::Ready(Some(snapshot)) = measuring.as_mut().poll(&mut cx) else {
            panic!("no measurement after the batch")
        };
        assert_eq!(
            (snapshot.connections, snapshot.sockets, snapshot.members),
            (2, 2, 2)
        );
        assert_eq!(snapshot.rooms, 1);
        assert_eq!(snapshot.unflushed_bytes, owed_b as u64);
        assert_eq!(snapshot.stats, *driver.hub().stats());
        assert_eq!((snapshot.stats.logins, snapshot.stats.messages), (2, 1));
        assert_eq!(snapshot.stats.deliveries, 2);

        // Once the server is gone, a request gets no answer, at once.
        drop(driver);
        let mut measuring = pin!(handle.measure());
        assert_eq!(measuring.as_mut().poll(&mut cx), Poll::Ready(None));
        assert_eq!(handle.measure_timeout(Duration::MAX), Ok(None));
    }

    #[test]
    fn a_huge_timer_slack_does_not_overflow() {
        let now = Instant::now();
        let mut driver = HubDriver::new(ServerConfig::default(), Duration::MAX).unwrap();
        let _ = driver.accept(now, peer());
        let at = driver.wake_at().expect("a login timeout is armed");
        assert!(at > now);
        assert!(matches!(driver.end_batch(now), Next::Wait(Some(_))));
    }
}
