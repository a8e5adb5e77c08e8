//! The server side: the whole room as one state machine over connection ids.
//!
//! The [`Hub`] owns every protocol decision a server makes: login and names,
//! the room and its order, presence, `who:`, pings and pongs, the login
//! timeout, keepalive per connection, the outbound bound per connection, the
//! connection limit and the rate limit. An adapter only moves bytes and time
//! in and out (see the drain contract on [`Hub`]).

mod conns;
mod log;
mod rate;
mod room;
mod timers;

use std::collections::VecDeque;
use std::time::Instant;

pub use self::conns::{ConnId, Transmit};
use self::conns::{Conns, Phase};
use self::log::{Log, Span};
use self::rate::Bucket;
use self::room::Room;
use self::timers::Timers;
use crate::config::ServerConfig;
use crate::decode::Decoder;
use crate::error::{ConfigError, ErrorCode, PeerError};
use crate::frame::{ClientFrame, ServerFrame};
use crate::keepalive::{Due, after};
use crate::text::{Name, Text, Token};

/// The reason the hub sends with `bye:` when it shuts down.
pub const SHUTDOWN_REASON: &str = "server shutting down";

/// Something the adapter may want to log or act on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HubEvent {
    /// A connection logged in.
    LoggedIn {
        /// The connection.
        conn: ConnId,
        /// Its name.
        name: String,
    },
    /// A connection ended. Emitted once per accepted connection.
    Closed {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: HubCloseReason,
    },
}

/// Why the hub ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HubCloseReason {
    /// The client sent `bye:`.
    Bye,
    /// The adapter reported the connection lost ([`Hub::disconnected`]).
    Disconnected,
    /// Not logged in within the login timeout (`err:timeout`).
    LoginTimeout,
    /// Keepalive: nothing arrived within the timeout after a ping
    /// (`err:timeout`).
    KeepaliveTimeout,
    /// Its unflushed output passed the outbound limit (`err:slow-consumer`).
    SlowConsumer,
    /// Accepted beyond the connection limit (`err:server-full`).
    ServerFull,
    /// [`Hub::shutdown`] (`bye:`).
    Shutdown,
}

/// The server: every connection and the room, as one sans-IO state machine.
///
/// Its methods come in four groups, after quinn-proto:
///
/// * getters: [`connections`](Hub::connections), [`members`](Hub::members),
///   [`name`](Hub::name), [`unflushed`](Hub::unflushed), ...;
/// * inputs: [`accept`](Hub::accept), [`handle_input`](Hub::handle_input),
///   [`written`](Hub::written), [`disconnected`](Hub::disconnected),
///   [`handle_timeout`](Hub::handle_timeout), [`shutdown`](Hub::shutdown);
/// * outputs: [`poll_transmit`](Hub::poll_transmit),
///   [`poll_close`](Hub::poll_close), [`poll_event`](Hub::poll_event),
///   [`poll_timeout`](Hub::poll_timeout).
///
/// **Drain contract:** after every input call, drain every `poll_*` method
/// until it returns `None`, `poll_transmit` before `poll_close`: write each
/// [`Transmit`], then close each connection `poll_close` names (after
/// flushing what it was sent: its last frame is the `bye:` or `err:` that
/// explains the close), log or ignore each event, and arm a timer for
/// `poll_timeout`. Report bytes as they are flushed with
/// [`written`](Hub::written), or the outbound bound will close the
/// connection as a slow consumer. Time must not go backwards between calls.
///
/// An id is valid from `accept` until `poll_close` yields it or
/// `disconnected` is called with it; calls with a stale id are ignored.
///
/// ```
/// use std::time::Instant;
/// use chat_proto::{Hub, ServerConfig};
///
/// let now = Instant::now();
/// let mut hub = Hub::new(ServerConfig::default())?;
/// let conn = hub.accept(now);
/// hub.handle_input(conn, now, b"iam:zhangsan\nmsg:hello\n");
/// let t = hub.poll_transmit().unwrap();
/// assert_eq!(t.conn, conn);
/// assert_eq!(t.data.concat(), b"ok:zhangsan\nmsg:zhangsan:hello\n");
/// assert!(hub.poll_transmit().is_none());
/// assert!(hub.poll_close().is_none());
/// # Ok::<(), chat_proto::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct Hub {
    config: ServerConfig,
    conns: Conns,
    room: Room,
    timers: Timers,
    closes: VecDeque<ConnId>,
    events: VecDeque<HubEvent>,
    /// Connections that overflowed during a broadcast, closed after it.
    overflowed: Vec<u32>,
    /// Every frame sent since the last drain, encoded once.
    log: Log,
    pings_sent: u64,
    shutting_down: bool,
}

impl Hub {
    /// A hub with no connections.
    pub fn new(config: ServerConfig) -> Result<Hub, ConfigError> {
        config.validate()?;
        Ok(Hub {
            config,
            conns: Conns::default(),
            room: Room::default(),
            timers: Timers::default(),
            closes: VecDeque::new(),
            events: VecDeque::new(),
            overflowed: Vec::new(),
            log: Log::default(),
            pings_sent: 0,
            shutting_down: false,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Connections accepted and not yet closing.
    pub fn connections(&self) -> usize {
        self.conns.active()
    }

    /// Logged-in connections.
    pub fn members(&self) -> usize {
        self.room.len()
    }

    /// The logged-in connections and their names, in room order.
    pub fn logged_in(&self) -> impl Iterator<Item = (ConnId, &str)> {
        self.room.members().iter().map(|m| (m.id, &*m.name))
    }

    /// The name `conn` is logged in with.
    pub fn name(&self, conn: ConnId) -> Option<&str> {
        let c = self.conns.get(conn)?;
        (c.phase == Phase::Member).then(|| self.room.name(c.member_index))
    }

    /// Bytes queued for or handed out to `conn` and not yet reported
    /// written; never more than `outbound_limit`. (When the frame that
    /// explains a close, such as `err:slow-consumer`, does not fit, the
    /// frames not yet handed out are dropped to make room, and if that is not
    /// enough the explanation is dropped.)
    pub fn unflushed(&self, conn: ConnId) -> Option<usize> {
        self.conns.get(conn).map(|c| c.unflushed)
    }

    /// Bytes of a partial frame buffered for `conn`.
    pub fn buffered(&self, conn: ConnId) -> Option<usize> {
        self.conns.get(conn).map(|c| c.decoder.buffered())
    }

    /// Whether [`shutdown`](Hub::shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// Entries in the timer queue, stale ones included (for tests and
    /// metrics: it stays near one per connection).
    pub fn timer_entries(&self) -> usize {
        self.timers.len()
    }

    /// A new connection, accepted by the adapter at `now`. Beyond the
    /// connection limit, or after shutdown, it is answered with
    /// `err:server-full` or `bye:` and closed at once.
    pub fn accept(&mut self, now: Instant) -> ConnId {
        let full = self.conns.active() >= self.config.max_connections;
        let bucket = self.config.rate_limit.map(|r| Bucket::new(&r, now));
        let id = self.conns.alloc(now, self.config.max_frame_len, bucket);
        if self.shutting_down {
            let bye = self.encode(&ServerFrame::Bye(Text::trusted(SHUTDOWN_REASON)));
            self.close(id.index, HubCloseReason::Shutdown, Some(bye));
        } else if full {
            let text = format!("at most {} connections", self.config.max_connections);
            let err = self.error_frame(ErrorCode::ServerFull, &text);
            self.close(id.index, HubCloseReason::ServerFull, Some(err));
        } else {
            self.arm_timer(id.index);
        }
        id
    }

    /// Bytes received on `conn`, in any chunking.
    pub fn handle_input(&mut self, conn: ConnId, now: Instant, input: &[u8]) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if !c.is_active() || input.is_empty() {
            return;
        }
        if c.liveness.received(now) {
            // A pong (or anything) after a ping: the next ping is due
            // `idle` from now, which may be before the armed timer.
            self.arm_timer(conn.index);
        }
        let c = self.conns.slot(conn.index);
        let max = c.decoder.max_frame_len();
        let mut decoder = std::mem::replace(&mut c.decoder, Decoder::new(max));
        decoder.decode(input, |frame| {
            if !self.conns.slot(conn.index).is_active() {
                return;
            }
            match frame.and_then(ClientFrame::parse) {
                Ok(frame) => self.on_frame(conn.index, now, frame),
                Err(error) => self.reply_error(conn.index, &error),
            }
        });
        let c = self.conns.slot(conn.index);
        if c.is_active() {
            c.decoder = decoder;
        }
    }

    /// The adapter flushed `n` more bytes of what was handed out for `conn`
    /// (never more than was handed out).
    pub fn written(&mut self, conn: ConnId, n: usize) {
        if let Some(c) = self.conns.get_mut(conn) {
            // More than was handed out is an adapter bug; a release build
            // saturates rather than panics.
            debug_assert!(
                n <= c.unflushed,
                "{conn}: {n} written, {} handed out",
                c.unflushed
            );
            c.unflushed = c.unflushed.saturating_sub(n);
        }
    }

    /// The connection is gone (EOF, reset, write error). Its id is invalid
    /// from now on; the adapter need not wait for `poll_close`.
    pub fn disconnected(&mut self, conn: ConnId, _now: Instant) {
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        if c.is_active() {
            self.close(conn.index, HubCloseReason::Disconnected, None);
        }
        self.conns.free(conn.index);
    }

    /// Tells the hub the time is `now`: sends due pings, closes connections
    /// past their login or keepalive timeout. Call it at or after
    /// [`poll_timeout`](Hub::poll_timeout); early or repeated calls are
    /// harmless. It only looks at connections whose deadline has come.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, id)) = self.timers.pop_due(now) {
            let Some(c) = self.conns.get_mut(id) else {
                continue;
            };
            if !c.is_active() || c.timer_at != Some(at) {
                continue;
            }
            c.timer_at = None;
            let login_deadline = after(c.accepted, self.config.login_timeout);
            if c.phase == Phase::Anonymous && now >= login_deadline {
                let err = self.error_frame(ErrorCode::Timeout, "no login in time");
                self.close(id.index, HubCloseReason::LoginTimeout, Some(err));
                continue;
            }
            match c.liveness.poll(now, &self.config.keepalive) {
                Due::Nothing => {}
                Due::Ping => {
                    self.pings_sent += 1;
                    let ping =
                        self.encode(&ServerFrame::Ping(Token::from_counter(self.pings_sent)));
                    self.send(id.index, ping);
                }
                Due::Dead => {
                    let err = self.error_frame(ErrorCode::Timeout, "no answer to ping");
                    self.close(id.index, HubCloseReason::KeepaliveTimeout, Some(err));
                }
            }
            if self.conns.slot(id.index).is_active() {
                self.arm_timer(id.index);
            }
        }
    }

    /// Starts a graceful shutdown: every connection is sent
    /// `bye:server shutting down` and closed (no `left:` frames), and later
    /// connections are refused the same way. The adapter flushes and closes
    /// what `poll_transmit` and `poll_close` yield.
    pub fn shutdown(&mut self, _now: Instant) {
        self.shutting_down = true;
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
            self.close(index, HubCloseReason::Shutdown, Some(bye));
        }
    }

    /// The next bytes to write, all that is queued for one connection.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if !self.log.is_empty() {
            let frozen = self.log.freeze();
            self.conns.freeze_spans(&frozen);
        }
        self.conns.poll_transmit()
    }

    /// The next connection to close, once what `poll_transmit` handed out
    /// for it is flushed. Its id is invalid from now on.
    #[must_use]
    pub fn poll_close(&mut self) -> Option<ConnId> {
        while let Some(id) = self.closes.pop_front() {
            if self
                .conns
                .get(id)
                .is_some_and(|c| c.phase == Phase::Closing)
            {
                self.conns.free(id.index);
                return Some(id);
            }
        }
        None
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<HubEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Hub::handle_timeout) must next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    // ---- frame handling ------------------------------------------------

    fn on_frame(&mut self, index: u32, now: Instant, frame: ClientFrame<'_>) {
        match frame {
            ClientFrame::Iam(name) => self.login(index, name),
            ClientFrame::Msg(text) => {
                if self.admit(index, now) {
                    self.say(index, text);
                }
            }
            ClientFrame::Who => {
                if self.admit(index, now) {
                    let frames = self
                        .room
                        .users_frames(self.config.max_frame_len, &mut self.log);
                    self.send(index, frames);
                }
            }
            ClientFrame::Ping(token) => {
                let pong = self.encode(&ServerFrame::Pong(token));
                self.send(index, pong);
            }
            ClientFrame::Pong(_) => {}
            ClientFrame::Bye(reason) => {
                let bye = self.encode(&ServerFrame::Bye(reason));
                self.close(index, HubCloseReason::Bye, Some(bye));
            }
        }
    }

    fn login(&mut self, index: u32, name: Name<'_>) {
        let c = self.conns.slot(index);
        if c.phase == Phase::Member {
            let text = format!("already logged in as {}", self.room.name(c.member_index));
            return self.reply(index, ErrorCode::AlreadyLoggedIn, &text);
        }
        if self.room.is_taken(&name) {
            let text = format!("{name} is taken");
            return self.reply(index, ErrorCode::NameTaken, &text);
        }
        let ok = self.encode(&ServerFrame::Ok(name.clone()));
        self.send(index, ok);
        if !self.conns.slot(index).is_active() {
            // Its `ok:` made it a slow consumer: closed, it never joined.
            return;
        }
        let id = self.conns.id(index);
        let member_index = self.room.join(id, &name);
        let c = self.conns.slot(index);
        c.phase = Phase::Member;
        c.member_index = member_index;
        if self.room.len() <= self.config.presence_limit {
            let join = self.encode(&ServerFrame::Join(name.clone()));
            self.broadcast(join, Some(index));
        }
        self.events.push_back(HubEvent::LoggedIn {
            conn: id,
            name: name.into_string(),
        });
    }

    /// Whether a `msg:` or `who:` from `index` may proceed: it must be
    /// logged in and within its rate limit. Answers the error if not.
    fn admit(&mut self, index: u32, now: Instant) -> bool {
        let c = self.conns.slot(index);
        if c.phase != Phase::Member {
            self.reply(index, ErrorCode::NotLoggedIn, "log in with iam:NAME first");
            return false;
        }
        if let (Some(bucket), Some(limit)) = (&mut c.bucket, self.config.rate_limit)
            && !bucket.take(&limit, now)
        {
            let text = format!("at most {} frames per second", limit.per_second);
            self.reply(index, ErrorCode::RateLimited, &text);
            return false;
        }
        true
    }

    fn say(&mut self, index: u32, text: Text<'_>) {
        let from = Name::trusted(self.room.name(self.conns.slot(index).member_index));
        let frame = ServerFrame::Msg { from, text };
        let len = frame.encoded_len();
        if len > self.config.max_frame_len {
            let text = format!(
                "relayed as msg:NAME:TEXT the frame would be {len} bytes, more than {}",
                self.config.max_frame_len
            );
            return self.reply(index, ErrorCode::TooLong, &text);
        }
        let bytes = self.log.encode(&frame);
        self.broadcast(bytes, None);
    }

    // ---- output --------------------------------------------------------

    fn encode(&mut self, frame: &ServerFrame<'_>) -> Span {
        self.log.encode(frame)
    }

    fn error_frame(&mut self, code: ErrorCode, text: &str) -> Span {
        let text = Text::new(text).unwrap_or_else(|_| Text::trusted(""));
        self.encode(&ServerFrame::Err {
            code: code.into(),
            text,
        })
    }

    fn reply(&mut self, index: u32, code: ErrorCode, text: &str) {
        let err = self.error_frame(code, text);
        self.send(index, err);
    }

    fn reply_error(&mut self, index: u32, error: &PeerError) {
        self.reply(index, error.code(), &error.to_string());
    }

    /// Queues `bytes` for one connection; a slow consumer is closed. A
    /// connection closed on the way (say, in the middle of a `who:` answer)
    /// gets nothing more: the frame that explained the close stays its last.
    fn send(&mut self, index: u32, bytes: Span) {
        if !self.conns.slot(index).is_active() {
            return;
        }
        if self
            .conns
            .enqueue(index, bytes, self.config.outbound_limit)
            .is_err()
        {
            self.overflowed.push(index);
            self.close_overflowed();
        }
    }

    /// Queues `bytes` for every member but `except`, then closes the slow
    /// consumers found on the way (whose `left:` may find more).
    fn broadcast(&mut self, bytes: Span, except: Option<u32>) {
        let limit = self.config.outbound_limit;
        for member in self.room.members() {
            let index = member.id.index;
            if Some(index) != except && self.conns.enqueue(index, bytes, limit).is_err() {
                self.overflowed.push(index);
            }
        }
        self.close_overflowed();
    }

    fn close_overflowed(&mut self) {
        while let Some(index) = self.overflowed.pop() {
            if self.conns.slot(index).is_active() {
                let text = format!("more than {} bytes unread", self.config.outbound_limit);
                let err = self.error_frame(ErrorCode::SlowConsumer, &text);
                self.close(index, HubCloseReason::SlowConsumer, Some(err));
            }
        }
    }

    /// Ends an active connection: leaves the room (telling the others while
    /// presence is on), queues its last frame, and asks the adapter to close
    /// it (unless it is already gone).
    fn close(&mut self, index: u32, reason: HubCloseReason, last: Option<Span>) {
        let c = self.conns.slot(index);
        debug_assert!(c.is_active());
        let was_member = c.phase == Phase::Member;
        let member_index = c.member_index;
        // Closing before the `left:` broadcast, which may close other slow
        // consumers: a connection on its way out must not be closed twice.
        self.conns.set_closing(index);
        if was_member {
            let presence = !self.shutting_down && self.room.len() <= self.config.presence_limit;
            let (member, moved) = self.room.leave(member_index);
            if let Some(moved) = moved {
                self.conns.slot(moved.index).member_index = member_index;
            }
            if presence {
                let name = Name::trusted(&member.name);
                let left = self.log.encode(&ServerFrame::Left(name));
                self.broadcast(left, None);
            }
        }
        if let Some(last) = last {
            self.conns
                .enqueue_last(index, last, self.config.outbound_limit);
        }
        let id = self.conns.id(index);
        if reason != HubCloseReason::Disconnected {
            self.closes.push_back(id);
        }
        self.events.push_back(HubEvent::Closed { conn: id, reason });
    }

    /// Makes sure the timer heap holds an entry no later than the
    /// connection's next deadline.
    fn arm_timer(&mut self, index: u32) {
        let c = self.conns.slot(index);
        let mut at = c.liveness.deadline(&self.config.keepalive);
        if c.phase == Phase::Anonymous {
            at = at.min(after(c.accepted, self.config.login_timeout));
        }
        if c.timer_at.is_none_or(|armed| at < armed) {
            c.timer_at = Some(at);
            let id = self.conns.id(index);
            self.timers.push(at, id);
        }
    }
}
