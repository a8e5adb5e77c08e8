//! The embedder's handle on a running server: decide logins, see events,
//! act, and read who is where, from any task or thread.
//!
//! A [`ServerHandle`] comes from a transport's `Server::handle()` before
//! serving, and is cheap to clone. Its actions do not touch the hub: they
//! are queued as commands and the server's loop, woken for them, applies
//! them at the end of its current batch, in the order they were made
//! (through the hub's own methods: [`Hub::kick`](chat_proto::Hub::kick),
//! [`Hub::approve_login`](chat_proto::Hub::approve_login), ...). What can
//! be checked without the hub (the text of a notice, a kick's reason, a
//! refusal's frame length) is checked at once, and a bad value is an
//! error of the call. Reads ([`logged_in`](ServerHandle::logged_in),
//! [`stats`](ServerHandle::stats)) are snapshots the loop keeps up to date,
//! so they cost no round trip and never wait for the hub;
//! [`measure`](ServerHandle::measure) and [`rooms`](ServerHandle::rooms)
//! ask the loop, for what it would cost the hub to keep up to date (the
//! levels of a [`ServerSnapshot`]; every room's members, as
//! [`RoomListing`]s).
//!
//! Every transport's server uses this one type; the hub driver is its other
//! end.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::Duration;

use chat_proto::{Code, ConnId, ErrorCode, HubStats, Name, ServerFrame, Text, UsageError};

use crate::client_shared::TimedOut;
use crate::events::{Events, Queue};
use crate::snapshot::{Answers, RoomListing, ServerSnapshot};

/// An action for the hub, made through a [`ServerHandle`].
#[derive(Debug)]
pub(crate) enum Command {
    Approve(ConnId),
    Refuse(ConnId, Code<'static>, String),
    Kick(ConnId, String),
    Notice(ConnId, String),
    NoticeAll(String),
    /// A notice to the members of a room: the room, the text.
    NoticeRoom(String, String),
    /// Take a connection out of a room.
    RemoveFromRoom(ConnId, String),
    /// Answer every measurement request up to this ticket.
    Measure(u64),
    /// Answer every room listing request up to this ticket.
    ListRooms(u64),
    Shutdown,
    /// From the store worker: per room and log, messages before this
    /// offset are stored.
    Stored(Vec<(String, u64, u64)>),
    /// From the store worker: the store failed, with this error.
    StoreFailed(String),
}

#[derive(Debug, Default)]
struct Commands {
    queue: VecDeque<Command>,
    /// Wakes the server's loop; set by the loop.
    waker: Option<Waker>,
    /// The server stopped: commands are dropped.
    finished: bool,
}

/// What the handles and the hub driver share.
#[derive(Debug)]
pub(crate) struct Shared {
    max_frame_len: usize,
    commands: Mutex<Commands>,
    /// Logged-in connections by `ConnId::index`.
    logged_in: Mutex<Vec<Option<(ConnId, String)>>>,
    stats: Mutex<HubStats>,
    measurements: Answers<ServerSnapshot>,
    room_listings: Answers<Vec<RoomListing>>,
    subscribers: Mutex<Vec<Arc<Queue>>>,
    /// How many subscriptions were made; the driver skips copying events
    /// while it is zero.
    subscriptions: AtomicUsize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the data whole, so a panic elsewhere
    // poisons nothing that matters.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A cloneable, thread-safe handle on a server, for the application that
/// embeds it.
///
/// Actions are queued and applied by the server's loop, which they wake,
/// in the order they were made; what can be checked without the hub (text,
/// frame length) is checked at once and a bad value is an error of the
/// call. Reads ([`logged_in`](Self::logged_in), [`stats`](Self::stats))
/// are snapshots the loop keeps up to date: no round trip, no waiting;
/// [`measure`](Self::measure) and [`rooms`](Self::rooms) are answered by
/// the loop at the end of its current batch (async, or blocking with a
/// timeout: [`measure_timeout`](Self::measure_timeout),
/// [`rooms_timeout`](Self::rooms_timeout)).
///
/// Rooms: [`notice_room`](Self::notice_room) speaks to a room's members,
/// [`remove_from_room`](Self::remove_from_room) takes a member out, and
/// [`rooms`](Self::rooms) lists every room with its members. With
/// `ServerConfig::activity_events`, the events say who joins and leaves
/// which room, and what is said there.
///
/// With `ServerConfig::login` set to `LoginMode::Application`, every login
/// waits for [`approve_login`](Self::approve_login) or
/// [`refuse_login`](Self::refuse_login), after a `HubEvent::LoginRequested`
/// read from [`events`](Self::events). Actions on a connection that has
/// gone meanwhile are ignored, as the hub ignores them; once the server has
/// stopped, every action is.
#[derive(Debug, Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
}

impl ServerHandle {
    /// A handle for a server whose frames are at most `max_frame_len`
    /// bytes.
    pub(crate) fn new(max_frame_len: usize) -> Self {
        ServerHandle {
            shared: Arc::new(Shared {
                max_frame_len,
                commands: Mutex::default(),
                logged_in: Mutex::default(),
                stats: Mutex::default(),
                measurements: Answers::default(),
                room_listings: Answers::default(),
                subscribers: Mutex::default(),
                subscriptions: AtomicUsize::new(0),
            }),
        }
    }

    /// Subscribes to the hub's events from now on: login requests, logins,
    /// relayed messages (with `ServerConfig::message_events`), closes.
    /// Each subscription gets every event; read it, or drop it.
    pub fn events(&self) -> Events {
        let queue = Arc::new(Queue::default());
        if lock(&self.shared.commands).finished {
            queue.finish();
        }
        lock(&self.shared.subscribers).push(queue.clone());
        self.shared.subscriptions.fetch_add(1, Ordering::Release);
        Events::new(queue)
    }

    /// Accepts the login `conn` asked for: it is answered `ok:NAME` and
    /// joins the room.
    pub fn approve_login(&self, conn: ConnId) {
        self.push(Command::Approve(conn));
    }

    /// Refuses the login `conn` asked for with `err:CODE:TEXT` (non-fatal;
    /// `ErrorCode::LoginRefused` fits most refusals); the name is free
    /// again and the connection may try another. Fails, sending nothing, if
    /// `text` is not valid text or the frame would be too long.
    pub fn refuse_login(
        &self,
        conn: ConnId,
        code: impl Into<Code<'static>>,
        text: &str,
    ) -> Result<(), UsageError> {
        let code = code.into();
        self.check(&ServerFrame::Err {
            code: code.clone(),
            text: Text::new(text)?,
        })?;
        self.push(Command::Refuse(conn, code, text.to_owned()));
        Ok(())
    }

    /// Ends `conn` with `err:kicked:REASON`: it leaves the room (others see
    /// `left:`) and is closed once the frame is flushed. Fails, doing
    /// nothing, if `reason` is not valid text or the frame would be too
    /// long.
    pub fn kick(&self, conn: ConnId, reason: &str) -> Result<(), UsageError> {
        self.check(&ServerFrame::Err {
            code: ErrorCode::Kicked.into(),
            text: Text::new(reason)?,
        })?;
        self.push(Command::Kick(conn, reason.to_owned()));
        Ok(())
    }

    /// Sends `notice:TEXT` to one connection, logged in or not. Fails,
    /// sending nothing, if `text` is not valid text or the frame would be
    /// too long.
    pub fn notice(&self, conn: ConnId, text: &str) -> Result<(), UsageError> {
        self.check(&ServerFrame::Notice(Text::new(text)?))?;
        self.push(Command::Notice(conn, text.to_owned()));
        Ok(())
    }

    /// Sends `notice:TEXT` to every logged-in connection. Fails, sending
    /// nothing, if `text` is not valid text or the frame would be too long.
    pub fn notice_all(&self, text: &str) -> Result<(), UsageError> {
        self.check(&ServerFrame::Notice(Text::new(text)?))?;
        self.push(Command::NoticeAll(text.to_owned()));
        Ok(())
    }

    /// Sends a notice to the members of `room` (a name the hub compares by
    /// its key, as it does `join:`): `room-notice:ROOM:TEXT`, or
    /// `notice:TEXT` for a member that reads the default room in the seed's
    /// form (PROTOCOL.md, section 5, "Notices"). Nobody else hears it. A
    /// room that does not exist when the loop applies it is noted in the
    /// log at `debug` and sends nothing. Fails, sending nothing, if `room`
    /// is not a valid room name, `text` is not valid text or the frame
    /// would be too long.
    ///
    /// ```no_run
    /// # fn example(handle: &transport_common::ServerHandle) -> Result<(), chat_proto::UsageError> {
    /// handle.notice_room("rust", "the meetup starts at 7")?;
    /// # Ok(()) }
    /// ```
    pub fn notice_room(&self, room: &str, text: &str) -> Result<(), UsageError> {
        self.check(&ServerFrame::RoomNotice {
            room: Name::new(room)?,
            text: Text::new(text)?,
        })?;
        self.push(Command::NoticeRoom(room.to_owned(), text.to_owned()));
        Ok(())
    }

    /// Takes `conn` out of `room`, as if it had sent `part:ROOM`: it is
    /// told `parted:ROOM:NAME`, and the other members see it leave
    /// (`parted:` or `left:` in their form, under the presence limit). It
    /// stays connected and may join again. The default room is a room like
    /// any other: a connection taken out of it gets `err:not-in-room` for
    /// `msg:` until it joins again. Ignored, with a note in the log at
    /// `debug`, if `conn` is gone or not in the room when the loop applies
    /// it. Fails, doing nothing, if `room` is not a valid room name.
    ///
    /// ```no_run
    /// # fn example(handle: &transport_common::ServerHandle) -> Result<(), chat_proto::UsageError> {
    /// for (conn, name) in handle.logged_in() {
    ///     if name.starts_with("spam") {
    ///         handle.remove_from_room(conn, "rust")?;
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn remove_from_room(&self, conn: ConnId, room: &str) -> Result<(), UsageError> {
        Name::new(room)?;
        self.push(Command::RemoveFromRoom(conn, room.to_owned()));
        Ok(())
    }

    /// Starts a graceful shutdown, as the server's shutdown signal does:
    /// every client is sent `bye:` and flushed within the grace period,
    /// then the server's `serve` returns. Calling it again does nothing.
    pub fn shutdown(&self) {
        self.push(Command::Shutdown);
    }

    /// Who is logged in, by connection, in connection order. A snapshot the
    /// server keeps up to date as logins and closes happen: a connection
    /// that has just read its `ok:` is already in it.
    pub fn logged_in(&self) -> Vec<(ConnId, String)> {
        lock(&self.shared.logged_in)
            .iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// The hub's counters, as the server last copied them: whenever the
    /// hub's output is passed on to the connections, and at the end of every
    /// batch of work. An answer a client has read is already counted.
    pub fn stats(&self) -> HubStats {
        lock(&self.shared.stats).clone()
    }

    /// Measures the server: its loop answers at the end of its current
    /// batch with the hub's counters and levels of one moment (see
    /// [`ServerSnapshot`]), taken after this call. `None` if the server has
    /// stopped. Costs the loop one walk over the open connections and the
    /// rooms per batch that has requests, however many; nothing otherwise.
    pub async fn measure(&self) -> Option<ServerSnapshot> {
        self.read(&self.shared.measurements, Command::Measure).await
    }

    /// [`measure`](Self::measure) from a thread, blocking up to `timeout`;
    /// `Ok(None)` if the server has stopped.
    pub fn measure_timeout(&self, timeout: Duration) -> Result<Option<ServerSnapshot>, TimedOut> {
        self.read_timeout(&self.shared.measurements, Command::Measure, timeout)
    }

    /// Every room and its members, as the server's loop lists them at the
    /// end of its current batch, after this call (the same way as
    /// [`measure`](Self::measure)): rooms in the hub's order (not sorted),
    /// members in room order. `None` if the server has stopped. Costs the
    /// loop one copy of every membership's name per batch that has
    /// requests, however many; nothing otherwise. The rooms of one
    /// connection are those whose members include it.
    ///
    /// ```no_run
    /// # async fn example(handle: transport_common::ServerHandle) {
    /// if let Some(rooms) = handle.rooms().await {
    ///     for room in rooms {
    ///         let names: Vec<&str> = room.members.iter().map(|(_, n)| n.as_str()).collect();
    ///         println!("{}: {}", room.name, names.join(", "));
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn rooms(&self) -> Option<Vec<RoomListing>> {
        self.read(&self.shared.room_listings, Command::ListRooms)
            .await
    }

    /// [`rooms`](Self::rooms) from a thread, blocking up to `timeout`;
    /// `Ok(None)` if the server has stopped.
    ///
    /// ```no_run
    /// # fn example(handle: &transport_common::ServerHandle) {
    /// use std::time::Duration;
    /// if let Ok(Some(rooms)) = handle.rooms_timeout(Duration::from_secs(1)) {
    ///     let rust = rooms.iter().find(|r| r.name == "rust");
    ///     println!("rust: {:?}", rust.map(|r| r.members.len()));
    /// }
    /// # }
    /// ```
    pub fn rooms_timeout(&self, timeout: Duration) -> Result<Option<Vec<RoomListing>>, TimedOut> {
        self.read_timeout(&self.shared.room_listings, Command::ListRooms, timeout)
    }

    /// Asks the loop for a read (`command` with a ticket of `answers`) and
    /// waits for its answer; `None` if the server has stopped.
    async fn read<T: Clone>(&self, answers: &Answers<T>, command: fn(u64) -> Command) -> Option<T> {
        let ticket = answers.ask()?;
        self.push(command(ticket));
        std::future::poll_fn(|cx| answers.poll(ticket, cx)).await
    }

    /// [`read`](Self::read), blocking up to `timeout`.
    fn read_timeout<T: Clone>(
        &self,
        answers: &Answers<T>,
        command: fn(u64) -> Command,
        timeout: Duration,
    ) -> Result<Option<T>, TimedOut> {
        let Some(ticket) = answers.ask() else {
            return Ok(None);
        };
        self.push(command(ticket));
        answers.wait(ticket, timeout)
    }

    fn check(&self, frame: &ServerFrame<'_>) -> Result<(), UsageError> {
        let (len, limit) = (frame.encoded_len(), self.shared.max_frame_len);
        if len > limit {
            return Err(UsageError::TooLong { len, limit });
        }
        Ok(())
    }

    /// Queues `command` and wakes the loop (the store worker's reports
    /// come this way too).
    pub(crate) fn push(&self, command: Command) {
        let mut commands = lock(&self.shared.commands);
        if commands.finished {
            return;
        }
        let was_empty = commands.queue.is_empty();
        commands.queue.push_back(command);
        // One wake-up for a run of commands: the loop takes them all.
        let waker = if was_empty {
            commands.waker.clone()
        } else {
            None
        };
        drop(commands);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    // ---- the hub driver's side -------------------------------------------

    /// Sets what wakes the server's loop when a command is queued.
    pub(crate) fn register_waker(&self, waker: &Waker) {
        let mut commands = lock(&self.shared.commands);
        if !commands.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            commands.waker = Some(waker.clone());
        }
    }

    /// Takes the queued commands, oldest first.
    pub(crate) fn take_commands(&self) -> VecDeque<Command> {
        std::mem::take(&mut lock(&self.shared.commands).queue)
    }

    /// Copies `event` to every live subscription.
    pub(crate) fn publish(&self, event: &chat_proto::HubEvent) {
        if self.shared.subscriptions.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut subscribers = lock(&self.shared.subscribers);
        subscribers.retain(|queue| queue.push(event.clone()));
        if subscribers.is_empty() {
            self.shared.subscriptions.store(0, Ordering::Release);
        }
    }

    pub(crate) fn logged_in_as(&self, conn: ConnId, name: &str) {
        let mut logged_in = lock(&self.shared.logged_in);
        let index = conn.index();
        if logged_in.len() <= index {
            logged_in.resize_with(index + 1, || None);
        }
        logged_in[index] = Some((conn, name.to_owned()));
    }

    pub(crate) fn closed(&self, conn: ConnId) {
        let mut logged_in = lock(&self.shared.logged_in);
        if let Some(slot) = logged_in.get_mut(conn.index())
            && slot.as_ref().is_some_and(|(id, _)| *id == conn)
        {
            *slot = None;
        }
    }

    pub(crate) fn set_stats(&self, stats: &HubStats) {
        lock(&self.shared.stats).clone_from(stats);
    }

    /// Answers the measurement requests up to `ticket`.
    pub(crate) fn measured(&self, ticket: u64, snapshot: ServerSnapshot) {
        self.shared.measurements.answer(ticket, snapshot);
    }

    /// Answers the room listing requests up to `ticket`.
    pub(crate) fn listed_rooms(&self, ticket: u64, rooms: Vec<RoomListing>) {
        self.shared.room_listings.answer(ticket, rooms);
    }

    /// The server stopped: subscriptions end, commands are dropped.
    pub(crate) fn finish(&self) {
        let mut commands = lock(&self.shared.commands);
        commands.finished = true;
        commands.queue.clear();
        commands.waker = None;
        drop(commands);
        for queue in lock(&self.shared.subscribers).drain(..) {
            queue.finish();
        }
        lock(&self.shared.logged_in).clear();
        self.shared.measurements.finish();
        self.shared.room_listings.finish();
    }
}
