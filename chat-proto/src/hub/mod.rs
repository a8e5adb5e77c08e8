//! The server side: every connection and every room as one state machine
//! over connection ids.
//!
//! The [`Hub`] owns every protocol decision a server makes: login and names,
//! the rooms and their order, presence, listings, private messages, pings
//! and pongs, the login timeout, keepalive, flow control (windows, backlogs,
//! paused input, the write timeout), the connection limit, the rate limit,
//! how long a closing connection may take to flush, and the shutdown's
//! grace period. An adapter only moves bytes and time in and out (see the
//! drain contract on [`Hub`]); the application decides logins when it asks
//! to, sees what happens through [`HubEvent`]s, and acts with
//! [`Hub::kick`], [`Hub::notice`] and the other actions.

mod actions;
mod addresses;
mod conns;
mod events;
mod flow;
mod history;
mod input;
mod log;
mod membership;
mod output;
mod rate;
mod room_log;
mod rooms;
mod timers;
mod users;

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Instant;

use bytes::BytesMut;

use self::addresses::{Admission, Guard};
pub use self::conns::ConnId;
use self::conns::{Conns, Phase, pause};
pub use self::events::{HubCloseReason, HubEvent, HubStats};
use self::log::{Log, Span};
pub use self::output::Transmit;
use self::output::{Overflow, Ready};
use self::rate::Bucket;
use self::rooms::{RoomId, Rooms};
use self::timers::{TimerKey, Timers};
use self::users::Users;
use crate::config::ServerConfig;
use crate::error::{ConfigError, ErrorCode, UsageError};
use crate::frame::ServerFrame;
use crate::keepalive::{Due, after};
use crate::names::NameKey;
use crate::text::{Code, Text, Token};

/// Most emptied transmit buffers kept for reuse (see [`Hub::recycle`]):
/// enough for a batch of a paced room's transmits, few enough that an idle
/// server holds little (at most `MAX_SPARE * MAX_SPARE_CHUNKS` chunk slots
/// of 32 bytes, 512 KiB; in practice the size of the last few batches'
/// transmits).
const MAX_SPARE: usize = 256;

/// A buffer grown past this many chunks (a burst's) is dropped rather
/// than kept: the pool keeps the common size, not the largest.
const MAX_SPARE_CHUNKS: usize = 64;

/// The reason the hub sends with `bye:` when it shuts down.
pub const SHUTDOWN_REASON: &str = "server shutting down";

/// What the hub asks of the adapter, one item at a time from
/// [`Hub::poll_output`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Write these bytes to the connection's socket, after what was handed
    /// out before, and report them with [`Hub::written`] as they go out.
    Transmit(Transmit),
    /// The hub ended this connection: write what was handed out for it,
    /// then close the socket and call [`Hub::disconnected`]. Its last frame
    /// (a `bye:` or an `err:`) explains why. If the flush takes longer than
    /// `close_linger`, an [`Output::Abort`] follows.
    Close(ConnId),
    /// Drop this connection's socket now, without flushing, and call
    /// [`Hub::disconnected`]: a closing connection did not finish flushing
    /// in time, or the shutdown's grace period is over.
    Abort(ConnId),
    /// Stop reading from this connection's socket until
    /// [`Output::ResumeInput`]: the hub takes no more input from it for now
    /// (a login waits for the application, the rate limit, or a backlog
    /// that must drain first). What was already read may still be passed
    /// to [`Hub::handle_input`]; the hub keeps it.
    PauseInput(ConnId),
    /// Read from this connection's socket again.
    ResumeInput(ConnId),
    /// Something the application may want to know or act on.
    Event(HubEvent),
    /// With durable history only
    /// ([`History::durable`](crate::History::durable)): store this record
    /// (see [`history`](crate::history)), then report it with
    /// [`Hub::stored`]. The room's messages are handed out up to what was
    /// reported stored.
    Store(crate::history::StoreRecord),
}

/// What the adapter knows about a new connection's other end, for
/// [`Hub::accept_from`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Peer {
    /// Its address, if known: per-address limits count by it (see
    /// [`AddressLimits`](crate::AddressLimits)), and a loopback address may
    /// send a secret in clear.
    pub addr: Option<IpAddr>,
    /// Whether the connection is encrypted (TLS, or `wss:`), so that a
    /// secret (`iam:NAME:SECRET`) may be sent over it.
    pub secure: bool,
}

impl Peer {
    /// A plain-text connection from `addr`.
    pub const fn plain(addr: Option<IpAddr>) -> Peer {
        Peer {
            addr,
            secure: false,
        }
    }

    /// An encrypted connection from `addr`.
    pub const fn secure(addr: Option<IpAddr>) -> Peer {
        Peer { addr, secure: true }
    }

    /// Whether a secret may come over this connection: it is encrypted, or
    /// from loopback.
    pub fn may_send_secrets(&self) -> bool {
        self.secure || self.addr.is_some_and(is_loopback)
    }
}

/// Whether `ip` is a loopback address (an IPv4 one mapped into IPv6
/// included).
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
        IpAddr::V4(v4) => v4.is_loopback(),
    }
}

/// The shutdown, once started.
#[derive(Debug, Clone, Copy)]
struct Shutdown {
    grace_until: Instant,
    /// Whether the grace period's end was acted on.
    over: bool,
}

/// The server: every connection and every room, as one sans-IO state
/// machine.
///
/// Its methods come in four groups, after quinn-proto:
///
/// * getters: [`connections`](Hub::connections), [`members`](Hub::members),
///   [`logged_in`](Hub::logged_in), [`rooms`](Hub::rooms),
///   [`room_members`](Hub::room_members), [`name`](Hub::name),
///   [`stats`](Hub::stats), ...;
/// * inputs: [`accept`](Hub::accept), [`handle_input`](Hub::handle_input),
///   [`handle_eof`](Hub::handle_eof), [`written`](Hub::written),
///   [`disconnected`](Hub::disconnected),
///   [`handle_timeout`](Hub::handle_timeout), [`shutdown`](Hub::shutdown);
/// * the application's answers and actions:
///   [`approve_login`](Hub::approve_login),
///   [`refuse_login`](Hub::refuse_login), [`kick`](Hub::kick),
///   [`notice`](Hub::notice), [`notice_all`](Hub::notice_all),
///   [`notice_room`](Hub::notice_room),
///   [`remove_from_room`](Hub::remove_from_room);
/// * outputs: [`poll_output`](Hub::poll_output) and
///   [`poll_timeout`](Hub::poll_timeout).
///
/// **Drain contract:** after every input or action, call
/// [`poll_output`](Hub::poll_output) until it returns `None`, doing what
/// each [`Output`] says, then arm a timer for
/// [`poll_timeout`](Hub::poll_timeout). (Inputs in hand at once may be
/// applied together and drained once after them, before the adapter waits
/// for more: the outputs are the same.) There is one queue of outputs, in
/// the order they must be acted on, so a connection's bytes always come
/// before its close. Report bytes as they are flushed with
/// [`written`](Hub::written): what is handed out to a connection is bounded
/// by `send_window` until the adapter reports it written, and a connection
/// whose output makes no progress for `write_timeout` is closed as a slow
/// consumer. Time must not go backwards between calls.
///
/// **Connection ids** are valid from [`accept`](Hub::accept) until the
/// adapter calls [`disconnected`](Hub::disconnected), which it does exactly
/// once per connection, when the socket is gone: after the peer left, after
/// an [`Output::Close`] was flushed, or after an [`Output::Abort`]. Until
/// then the id's index is not given to another connection, so per-connection
/// state in a `Vec` indexed by [`ConnId::index`] is safe. Calls with a stale
/// id are ignored.
///
/// Why one output queue rather than a `poll_*` per kind: with separate
/// queues the adapter must drain them in the right order (transmits before
/// closes), and an adapter that got it wrong lost a connection's last
/// frames. One queue, as str0m's `poll_output`, makes that mistake
/// impossible.
///
/// ```
/// use std::time::Instant;
/// use chat_proto::{Hub, Output, ServerConfig};
///
/// let now = Instant::now();
/// let mut hub = Hub::new(ServerConfig::default())?;
/// let conn = hub.accept(now, None);
/// hub.handle_input(conn, now, b"iam:zhangsan\nmsg:hello\n");
/// let Some(Output::Transmit(t)) = hub.poll_output() else { panic!() };
/// assert_eq!(t.conn, conn);
/// assert_eq!(t.data.concat(), b"ok:zhangsan\nmsg:zhangsan:hello\n");
/// // The login is reported too.
/// assert!(matches!(hub.poll_output(), Some(Output::Event(_))));
/// assert_eq!(hub.poll_output(), None);
/// # Ok::<(), chat_proto::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct Hub {
    config: ServerConfig,
    conns: Conns,
    users: Users,
    rooms: Rooms,
    default_room: RoomId,
    timers: Timers,
    /// Per-address limits and failed logins.
    guard: Guard,
    /// Every private frame sent since the last drain, encoded once.
    log: Log,
    /// Connections with output to hand out.
    ready: Ready,
    closes: VecDeque<ConnId>,
    aborts: VecDeque<ConnId>,
    /// Connections whose input was paused or resumed since the last drain.
    toggles: VecDeque<ConnId>,
    events: VecDeque<HubEvent>,
    /// Records for the history store (durable history only).
    stores: VecDeque<crate::history::StoreRecord>,
    /// Connections that overflowed during a broadcast, closed after it.
    overflowed: Vec<u32>,
    /// Emptied transmit buffers given back by the adapter, to fill again.
    spare: Vec<Vec<bytes::Bytes>>,
    /// Rooms read from during the last drain whose paused senders may
    /// resume, looked at on the next input.
    to_settle: Vec<RoomId>,
    stats: HubStats,
    /// Logged-in connections.
    logged_in: usize,
    /// Rooms created so far, for their epochs.
    rooms_created: u64,
    shutdown: Option<Shutdown>,
}

impl Hub {
    /// A hub with no connections, and its default room.
    pub fn new(config: ServerConfig) -> Result<Hub, ConfigError> {
        config.validate()?;
        let mut hub = Hub {
            conns: Conns::default(),
            users: Users::default(),
            rooms: Rooms::default(),
            default_room: RoomId {
                index: 0,
                generation: 0,
            },
            timers: Timers::default(),
            guard: Guard::default(),
            log: Log::default(),
            ready: Ready::default(),
            closes: VecDeque::new(),
            aborts: VecDeque::new(),
            toggles: VecDeque::new(),
            events: VecDeque::new(),
            stores: VecDeque::new(),
            overflowed: Vec::new(),
            spare: Vec::new(),
            to_settle: Vec::new(),
            stats: HubStats::default(),
            logged_in: 0,
            rooms_created: 0,
            shutdown: None,
            config,
        };
        let epoch = hub.next_epoch();
        let name = hub.config.default_room.clone();
        let retention = hub.retention();
        hub.default_room = hub.rooms.create(&name, epoch, true, retention);
        Ok(hub)
    }

    // ---- getters ---------------------------------------------------------

    /// The configuration in force.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Connections accepted and not yet ended by the hub.
    pub fn connections(&self) -> usize {
        self.conns.active()
    }

    /// Sockets the adapter holds: connections not yet reported
    /// [`disconnected`](Hub::disconnected), closing ones included.
    pub fn sockets(&self) -> usize {
        self.conns.in_use()
    }

    /// Logged-in connections.
    pub fn members(&self) -> usize {
        self.logged_in
    }

    /// The logged-in connections and their names.
    pub fn logged_in(&self) -> impl Iterator<Item = (ConnId, &str)> {
        self.conns
            .iter()
            .filter(|(_, c)| c.phase == Phase::Member)
            .filter_map(|(id, c)| Some((id, c.name.as_deref()?)))
    }

    /// The name `conn` is logged in with.
    pub fn name(&self, conn: ConnId) -> Option<&str> {
        let c = self.conns.get(conn)?;
        (c.phase == Phase::Member)
            .then_some(c.name.as_deref())
            .flatten()
    }

    /// The connection logged in (or logging in) under `name`, or a name
    /// that looks the same.
    pub fn find(&self, name: &str) -> Option<ConnId> {
        self.users.holder(&NameKey::of(name))
    }

    /// The peer address the adapter gave for `conn`.
    pub fn peer(&self, conn: ConnId) -> Option<IpAddr> {
        self.conns.get(conn)?.peer
    }

    /// The rooms and how many members each has.
    pub fn rooms(&self) -> impl Iterator<Item = (&str, usize)> {
        self.rooms.iter().map(|(_, r)| (&*r.name, r.members.len()))
    }

    /// The name of the default room.
    pub fn default_room(&self) -> &str {
        &self.config.default_room
    }

    /// The members of the room named `room` (or a look-alike), in room
    /// order; `None` if there is no such room.
    pub fn room_members(&self, room: &str) -> Option<impl Iterator<Item = (ConnId, &str)>> {
        let room = self.rooms.get(self.rooms.find(room)?)?;
        Some(room.members.iter().map(|m| (m.conn, &*m.name)))
    }

    /// The rooms `conn` is in.
    pub fn rooms_of(&self, conn: ConnId) -> impl Iterator<Item = &str> {
        self.conns
            .get(conn)
            .into_iter()
            .flat_map(|c| c.rooms.iter())
            .filter_map(|(room, _)| self.rooms.get(*room).map(|r| &*r.name))
    }

    /// Bytes owed to `conn` privately or handed out and not yet reported
    /// written; never more than `outbound_limit`, but for one room message
    /// handed out when nothing was in flight and the private frames queued
    /// behind it filled the bound (so that the connection is never stuck
    /// with output owed and no write to wait for). Room messages waiting in
    /// a room are not counted: the room holds them once for all its
    /// members. (When the frame that explains a close, such as
    /// `err:slow-consumer`, does not fit, the frames not yet handed out are
    /// dropped to make room, and if that is not enough the explanation is
    /// dropped.)
    pub fn unflushed(&self, conn: ConnId) -> Option<usize> {
        self.conns.get(conn).map(|c| c.out.unflushed())
    }

    /// Bytes handed out to `conn` and not yet reported written. Room
    /// messages are handed out within `send_window`; private output goes out
    /// as queued, within `outbound_limit`.
    pub fn in_flight(&self, conn: ConnId) -> Option<usize> {
        self.conns.get(conn).map(|c| c.out.in_flight)
    }

    /// How many bytes the room named `room` holds for its slowest member.
    pub fn room_backlog(&self, room: &str) -> Option<u64> {
        Some(self.rooms.get(self.rooms.find(room)?)?.backlog())
    }

    /// Bytes of a partial frame buffered for `conn`.
    pub fn buffered(&self, conn: ConnId) -> Option<usize> {
        self.conns.get(conn).map(|c| c.decoder.buffered())
    }

    /// Whether the hub takes no input from `conn` for now (see
    /// [`Output::PauseInput`]).
    pub fn is_input_paused(&self, conn: ConnId) -> bool {
        self.conns.get(conn).is_some_and(|c| c.input.paused != 0)
    }

    /// Whether [`shutdown`](Hub::shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_some()
    }

    /// Whether a shutdown is complete: every socket reported
    /// [`disconnected`](Hub::disconnected). The adapter may stop then.
    pub fn is_finished(&self) -> bool {
        self.shutdown.is_some() && self.conns.in_use() == 0
    }

    /// Counters of what the hub did, for metrics.
    pub fn stats(&self) -> &HubStats {
        &self.stats
    }

    /// Source addresses and names the per-address limits and the
    /// failed-login delays remember now (bounded by their `tracked`).
    pub fn tracked(&self) -> (usize, usize) {
        (self.guard.addresses(), self.guard.names())
    }

    /// Entries in the timer queue, stale ones included (for tests and
    /// metrics: it stays near one or two per connection).
    pub fn timer_entries(&self) -> usize {
        self.timers.len()
    }

    // ---- inputs ----------------------------------------------------------

    /// A new plain-text connection, accepted by the adapter at `now` from
    /// `peer` (if the adapter knows it): [`accept_from`](Hub::accept_from)
    /// with [`Peer::plain`].
    pub fn accept(&mut self, now: Instant, peer: Option<IpAddr>) -> ConnId {
        self.accept_from(now, Peer::plain(peer))
    }

    /// A new connection, accepted by the adapter at `now`. Beyond the
    /// connection limit it is answered `err:server-full`, beyond its
    /// address's limits `err:too-many-connections` or
    /// `err:connection-rate`, after shutdown `bye:`, and closed at once.
    pub fn accept_from(&mut self, now: Instant, peer: Peer) -> ConnId {
        self.settle(now);
        let full = self.conns.active() >= self.config.max_connections;
        let bucket = self.config.rate_limit.map(|r| Bucket::new(&r, now));
        let id = self
            .conns
            .alloc(now, peer, self.config.max_frame_len, bucket);
        self.stats.accepted += 1;
        if self.shutdown.is_some() {
            let bye = self.encode(&ServerFrame::Bye(Text::trusted(SHUTDOWN_REASON)));
            self.close(id.index, now, HubCloseReason::Shutdown, Some(bye));
            return id;
        }
        if full {
            let text = format!("at most {} connections", self.config.max_connections);
            let err = self.error_frame(ErrorCode::ServerFull, &text);
            self.close(id.index, now, HubCloseReason::ServerFull, Some(err));
            return id;
        }
        let refusal = match self.guard.admit(&self.config.addresses, peer.addr, now) {
            Admission::Counted => {
                self.conns.slot(id.index).counted = true;
                None
            }
            Admission::Uncounted => None,
            Admission::TooMany => Some((
                ErrorCode::TooManyConnections,
                format!(
                    "at most {} connections from one address",
                    self.config.addresses.max_connections
                ),
            )),
            Admission::TooFast => Some((
                ErrorCode::ConnectionRate,
                format!(
                    "at most {} new connections from one address every {} s",
                    self.config.addresses.connects.count,
                    self.config.addresses.connects.per.as_secs()
                ),
            )),
        };
        match refusal {
            Some((code, text)) => {
                let err = self.error_frame(code, &text);
                self.close(id.index, now, HubCloseReason::AddressLimit, Some(err));
            }
            None => self.arm_timer(id.index),
        }
        id
    }

    /// Bytes received on `conn`, in any chunking. While its input is paused
    /// the hub keeps them, to decode once it resumes.
    pub fn handle_input(&mut self, conn: ConnId, now: Instant, input: &[u8]) {
        self.settle(now);
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if !c.is_active() || input.is_empty() || c.input.eof {
            return;
        }
        self.stats.bytes_received += input.len() as u64;
        if c.liveness.received(now) {
            // A pong (or anything) after a ping: the next ping is due
            // `idle` from now, which may be before the armed timer.
            self.arm_timer(conn.index);
        }
        let c = self.conns.slot(conn.index);
        if c.input.paused != 0 || !c.input.stash.is_empty() {
            c.input.stash.extend_from_slice(input);
            return;
        }
        self.feed(conn.index, now, input);
    }

    /// The peer ended its side of the stream (a read returned EOF): it will
    /// send nothing more, but may still be reading. The hub answers what it
    /// already received, then ends the connection once that is handed out
    /// ([`Output::Close`]); an unfinished last line is answered with
    /// `err:bad-frame`.
    pub fn handle_eof(&mut self, conn: ConnId, now: Instant) {
        self.settle(now);
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if !c.is_active() || c.input.eof {
            return;
        }
        c.input.eof = true;
        if c.input.paused == 0 && c.input.stash.is_empty() {
            self.finish_input(conn.index, now);
        }
    }

    /// The adapter flushed `n` more bytes of what was handed out for `conn`
    /// (never more than was handed out).
    pub fn written(&mut self, conn: ConnId, now: Instant, n: usize) {
        self.settle(now);
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        // More than was handed out is an adapter bug; a release build
        // saturates rather than panics.
        debug_assert!(
            n <= c.out.in_flight,
            "{conn}: {n} written, {} handed out",
            c.out.in_flight
        );
        c.out.written(n);
        self.stats.bytes_written += n as u64;
        if n > 0 {
            c.progress_at = now;
        }
        self.after_written(conn.index, now);
    }

    /// Gives back the `data` of a [`Transmit`] once its bytes are written
    /// (or copied elsewhere), so that a later transmit reuses its buffer
    /// rather than allocating one: a busy server hands out a transmit per
    /// member per batch. Optional; its contents are dropped. The hub keeps
    /// at most 256 such buffers, each of room for at most 64 chunks (a
    /// burst's larger ones are dropped), so an idle server holds little.
    pub fn recycle(&mut self, mut data: Vec<bytes::Bytes>) {
        data.clear();
        if (1..=MAX_SPARE_CHUNKS).contains(&data.capacity()) && self.spare.len() < MAX_SPARE {
            self.spare.push(data);
        }
    }

    /// The connection's socket is gone: the peer left, the connection
    /// failed, or the adapter closed it after an [`Output::Close`] or
    /// [`Output::Abort`]. Call it exactly once per connection. Its id is
    /// invalid from now on and its index free for a later connection.
    pub fn disconnected(&mut self, conn: ConnId, now: Instant) {
        self.settle(now);
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        if c.is_active() {
            self.close(conn.index, now, HubCloseReason::Disconnected, None);
        }
        self.release_pauses(conn.index);
        let c = self.conns.slot(conn.index);
        if c.counted
            && let Some(ip) = c.peer
        {
            self.guard.release(ip, now);
        }
        self.conns.free(conn.index);
    }

    /// Tells the hub the time is `now`: sends due pings, closes connections
    /// past their login, keepalive or write timeout, resumes input paused
    /// by the rate limit, deals with rooms held up by a slow member, asks
    /// to abort connections that took too long to close. Call it at or
    /// after [`poll_timeout`](Hub::poll_timeout); early or repeated calls
    /// are harmless. It only looks at what is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.settle(now);
        if let Some(shutdown) = &mut self.shutdown
            && !shutdown.over
            && now >= shutdown.grace_until
        {
            shutdown.over = true;
            let open: Vec<u32> = self.conns.iter().map(|(id, _)| id.index).collect();
            for index in open {
                self.abort(index);
            }
        }
        while let Some((at, key)) = self.timers.pop_due(now) {
            match key {
                TimerKey::Conn(id) => self.conn_timeout(id, at, now),
                TimerKey::Write(id) => self.write_timeout(id, at, now),
                TimerKey::Room(id) => self.room_timeout(id, at, now),
            }
        }
    }

    fn conn_timeout(&mut self, id: ConnId, at: Instant, now: Instant) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        if c.timer_at != Some(at) {
            return;
        }
        c.timer_at = None;
        if let Some(closing) = c.closing {
            if now >= closing.deadline {
                self.abort(id.index);
            } else {
                self.arm_timer(id.index);
            }
            return;
        }
        let login_deadline = after(c.accepted, self.config.login_timeout);
        if matches!(c.phase, Phase::Anonymous | Phase::LoggingIn) && now >= login_deadline {
            let err = self.error_frame(ErrorCode::Timeout, "no login in time");
            self.close(id.index, now, HubCloseReason::LoginTimeout, Some(err));
            return;
        }
        if c.rate_until.is_some_and(|until| now >= until) {
            c.rate_until = None;
            self.unpause(id.index, now, pause::RATE);
            if !self.conns.slot(id.index).is_active() {
                return;
            }
        }
        // While input is paused the peer cannot be heard: keepalive waits
        // (it starts afresh when input resumes).
        let c = self.conns.slot(id.index);
        let due = if c.input.paused == 0 {
            c.liveness.poll(now, &self.config.keepalive)
        } else {
            Due::Nothing
        };
        match due {
            Due::Nothing => {}
            Due::Ping => {
                self.stats.pings += 1;
                let ping = self.encode(&ServerFrame::Ping(Token::from_counter(self.stats.pings)));
                self.send(id.index, now, ping);
            }
            Due::Dead => {
                let err = self.error_frame(ErrorCode::Timeout, "no answer to ping");
                self.close(id.index, now, HubCloseReason::KeepaliveTimeout, Some(err));
            }
        }
        if self.conns.slot(id.index).is_active() {
            self.arm_timer(id.index);
        }
    }

    /// Starts a graceful shutdown: every connection is sent
    /// `bye:server shutting down` and closed (no `left:` frames), and later
    /// connections are refused the same way. Once the `shutdown_grace` is
    /// over, the hub asks for every remaining socket to be dropped
    /// ([`Output::Abort`]); [`is_finished`](Hub::is_finished) says when
    /// every socket is gone. Calling it again does nothing.
    pub fn shutdown(&mut self, now: Instant) {
        self.settle(now);
        if self.shutdown.is_some() {
            return;
        }
        self.shutdown = Some(Shutdown {
            grace_until: after(now, self.config.shutdown_grace),
            over: false,
        });
        let open: Vec<u32> = self
            .conns
            .iter()
            .filter(|(_, c)| c.is_active())
            .map(|(id, _)| id.index)
            .collect();
        if open.is_empty() {
            return;
        }
        let bye = self.encode(&ServerFrame::Bye(Text::trusted(SHUTDOWN_REASON)));
        for index in open {
            self.close(index, now, HubCloseReason::Shutdown, Some(bye));
        }
    }

    // ---- outputs ---------------------------------------------------------

    /// The next thing the adapter must do; `None` once everything is done.
    /// See the drain contract on [`Hub`].
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.freeze();
        if let Some(record) = self.stores.pop_front() {
            return Some(Output::Store(record));
        }
        if let Some(transmit) = self.hand_out() {
            return Some(Output::Transmit(transmit));
        }
        while let Some(id) = self.closes.pop_front() {
            if self
                .conns
                .get(id)
                .is_some_and(|c| c.closing.is_some_and(|cl| !cl.aborted))
            {
                return Some(Output::Close(id));
            }
        }
        while let Some(id) = self.aborts.pop_front() {
            if self.conns.get(id).is_some() {
                return Some(Output::Abort(id));
            }
        }
        while let Some(id) = self.toggles.pop_front() {
            let Some(c) = self.conns.get_mut(id) else {
                continue;
            };
            c.input.toggle_queued = false;
            let paused = c.input.paused != 0;
            if c.is_active() && paused != c.input.reported_paused {
                c.input.reported_paused = paused;
                return Some(if paused {
                    Output::PauseInput(id)
                } else {
                    Output::ResumeInput(id)
                });
            }
        }
        self.events.pop_front().map(Output::Event)
    }

    /// When [`handle_timeout`](Hub::handle_timeout) must next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let grace = self
            .shutdown
            .filter(|s| !s.over && self.conns.in_use() > 0)
            .map(|s| s.grace_until);
        match (self.timers.next(), grace) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Makes everything queued since the last drain sliceable: the private
    /// log, and the logs of the rooms written to.
    fn freeze(&mut self) {
        if !self.log.is_empty() {
            let frozen = self.log.freeze();
            for id in self.ready.take_spanned() {
                if let Some(c) = self.conns.get_mut(id) {
                    c.out.freeze(&frozen);
                }
            }
        }
        if self.rooms.any_touched() {
            self.rooms.freeze_touched();
        }
    }

    // ---- output ----------------------------------------------------------

    fn encode(&mut self, frame: &ServerFrame<'_>) -> Span {
        self.log.encode(frame)
    }

    /// `frame`, unless it is longer than the maximum frame length.
    fn checked<'a>(&self, frame: ServerFrame<'a>) -> Result<ServerFrame<'a>, UsageError> {
        let len = frame.encoded_len();
        let limit = self.config.max_frame_len;
        if len > limit {
            return Err(UsageError::TooLong { len, limit });
        }
        Ok(frame)
    }

    /// `err:CODE:TEXT` for an application's answer, checked.
    fn checked_error<'a>(
        &self,
        code: &Code<'a>,
        text: &'a str,
    ) -> Result<ServerFrame<'a>, UsageError> {
        self.checked(ServerFrame::Err {
            code: code.clone(),
            text: Text::new(text)?,
        })
    }

    fn error_frame(&mut self, code: ErrorCode, text: &str) -> Span {
        let text = Text::new(text).unwrap_or_else(|_| Text::trusted(""));
        self.encode(&ServerFrame::Err {
            code: code.into(),
            text,
        })
    }

    fn reply(&mut self, index: u32, now: Instant, code: ErrorCode, text: &str) {
        let err = self.error_frame(code, text);
        self.send(index, now, err);
    }

    /// Queues `bytes` for one connection; a slow consumer is closed. A
    /// connection closed on the way (say, in the middle of a `who:` answer)
    /// gets nothing more: the frame that explained the close stays its last.
    fn send(&mut self, index: u32, now: Instant, bytes: Span) {
        if !self.conns.slot(index).is_active() {
            return;
        }
        if self.enqueue(index, now, bytes).is_err() {
            self.overflowed.push(index);
            self.close_overflowed(now);
        }
    }

    /// Queues a private span for `index`, within its bound.
    fn enqueue(&mut self, index: u32, now: Instant, span: Span) -> Result<(), Overflow> {
        let limit = self.config.outbound_limit;
        let c = self.conns.slot(index);
        let was_pending = c.out.is_pending();
        c.out.push(span, limit)?;
        if !c.out.has_spans_noted() {
            c.out.note_spans();
            let id = self.conns.id(index);
            self.ready.spanned(id);
        }
        self.became_pending(index, now, was_pending);
        Ok(())
    }

    fn close_overflowed(&mut self, now: Instant) {
        while let Some(index) = self.overflowed.pop() {
            if self.conns.slot(index).is_active() {
                let text = format!("more than {} bytes unread", self.config.outbound_limit);
                let err = self.error_frame(ErrorCode::SlowConsumer, &text);
                self.close(index, now, HubCloseReason::SlowConsumer, Some(err));
            }
        }
    }

    // ---- closing ---------------------------------------------------------

    /// Ends an active connection: leaves its rooms (telling the others while
    /// presence is on), frees its name, queues its last frame, and asks the
    /// adapter to close it once that is handed out (unless the socket is
    /// already gone).
    fn close(&mut self, index: u32, now: Instant, reason: HubCloseReason, last: Option<Span>) {
        let c = self.conns.slot(index);
        debug_assert!(c.is_active());
        let was_member = c.phase == Phase::Member;
        let name = c.name.clone();
        // Closing before the `left:` broadcasts, which may close other slow
        // consumers: a connection on its way out must not be closed twice.
        let deadline = after(now, self.config.close_linger);
        self.conns.set_closing(index, deadline);
        let id = self.conns.id(index);
        if let Some(name) = &name {
            self.users.release(&NameKey::of(name), id);
        }
        if was_member {
            self.logged_in -= 1;
            let presence = self.shutdown.is_none();
            self.leave_all(index, now, presence);
        }
        self.release_pauses(index);
        if reason == HubCloseReason::SlowConsumer {
            // It is not reading: what it was not handed yet would never go.
            self.conns.slot(index).out.drop_queued();
        }
        if let Some(last) = last {
            let limit = self.config.outbound_limit;
            let c = self.conns.slot(index);
            c.out.push_last(last, limit);
            if !c.out.has_spans_noted() {
                c.out.note_spans();
                self.ready.spanned(id);
            }
            self.became_pending(index, now, true);
        }
        self.stats.closed(reason);
        if reason == HubCloseReason::Disconnected {
            self.conns.slot(index).out.clear();
        } else {
            let c = self.conns.slot(index);
            if c.out.has_queued() {
                c.close_pending = true;
            } else {
                self.closes.push_back(id);
            }
            self.arm_timer(index);
        }
        self.events.push_back(HubEvent::Closed { conn: id, reason });
    }

    /// Asks the adapter to drop a socket now (once per connection).
    fn abort(&mut self, index: u32) {
        let c = self.conns.slot(index);
        match &mut c.closing {
            Some(closing) if closing.aborted => return,
            Some(closing) => closing.aborted = true,
            None => {}
        }
        let id = self.conns.id(index);
        self.aborts.push_back(id);
    }

    // ---- timers ----------------------------------------------------------

    /// Makes sure the timer heap holds an entry no later than the
    /// connection's next deadline (login, keepalive, rate limit, close).
    fn arm_timer(&mut self, index: u32) {
        let c = self.conns.slot(index);
        let at = match c.closing {
            Some(closing) if closing.aborted => return,
            Some(closing) => closing.deadline,
            None => {
                let login = matches!(c.phase, Phase::Anonymous | Phase::LoggingIn)
                    .then(|| after(c.accepted, self.config.login_timeout));
                let keepalive =
                    (c.input.paused == 0).then(|| c.liveness.deadline(&self.config.keepalive));
                match [login, keepalive, c.rate_until].into_iter().flatten().min() {
                    Some(at) => at,
                    None => return,
                }
            }
        };
        if c.timer_at.is_none_or(|armed| at < armed) {
            c.timer_at = Some(at);
            let id = self.conns.id(index);
            self.timers.push(at, TimerKey::Conn(id));
        }
    }

    // ---- paused input ----------------------------------------------------

    /// Pauses `index`'s input for `reason`.
    fn pause(&mut self, index: u32, reason: u8) {
        let c = self.conns.slot(index);
        if c.input.paused & reason == 0 && reason != pause::LOGIN {
            self.stats.input_pauses += 1;
        }
        c.input.paused |= reason;
        self.queue_toggle(index);
    }

    /// Lifts `reason`; once nothing pauses the input, what arrived meanwhile
    /// is decoded, and keepalive starts afresh.
    fn unpause(&mut self, index: u32, now: Instant, reason: u8) {
        let c = self.conns.slot(index);
        if c.input.paused & reason == 0 {
            return;
        }
        c.input.paused &= !reason;
        if c.input.paused != 0 || !c.is_active() {
            return;
        }
        c.liveness.received(now);
        self.queue_toggle(index);
        self.arm_timer(index);
        let stash = std::mem::take(&mut self.conns.slot(index).input.stash);
        if !stash.is_empty() {
            self.feed(index, now, &stash);
        }
        let c = self.conns.slot(index);
        if c.is_active() && c.input.eof && c.input.paused == 0 && c.input.stash.is_empty() {
            self.finish_input(index, now);
        }
    }

    fn queue_toggle(&mut self, index: u32) {
        let c = self.conns.slot(index);
        if !c.input.toggle_queued {
            c.input.toggle_queued = true;
            let id = self.conns.id(index);
            self.toggles.push_back(id);
        }
    }

    /// Keeps `rest` as the input to decode once input resumes, before
    /// anything already kept (the stash is taken out while it is decoded,
    /// so there is nothing in practice).
    fn stash(&mut self, index: u32, rest: &[u8]) {
        let c = self.conns.slot(index);
        let mut stash = BytesMut::from(rest);
        stash.extend_from_slice(&c.input.stash);
        c.input.stash = stash;
    }

    /// The peer sent all it will send, and all of it was handled.
    fn finish_input(&mut self, index: u32, now: Instant) {
        if self.conns.slot(index).decoder.buffered() > 0 {
            let err = self.error_frame(
                ErrorCode::BadFrame,
                "the input ended inside a frame (no LF at its end)",
            );
            self.send(index, now, err);
        }
        if self.conns.slot(index).is_active() {
            self.close(index, now, HubCloseReason::PeerClosed, None);
        }
    }

    /// A new epoch for a room's log: different for every room and, with a
    /// random `seed`, every run.
    fn next_epoch(&mut self) -> u64 {
        self.rooms_created += 1;
        let mut z = self
            .config
            .seed
            .wrapping_add(self.rooms_created.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
