//! The server side: the whole room as one state machine over connection ids.
//!
//! The [`Hub`] owns every protocol decision a server makes: login and names,
//! the room and its order, presence, `who:`, pings and pongs, the login
//! timeout, keepalive per connection, the outbound bound per connection, the
//! connection limit, the rate limit, how long a closing connection may take
//! to flush, and the shutdown's grace period. An adapter only moves bytes
//! and time in and out (see the drain contract on [`Hub`]); the application
//! decides logins when it asks to, sees what happens through
//! [`HubEvent`]s, and acts with [`Hub::kick`] and [`Hub::notice`].

mod conns;
mod events;
mod input;
mod log;
mod output;
mod rate;
mod room;
mod timers;
mod users;

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Instant;

use bytes::BytesMut;

pub use self::conns::ConnId;
use self::conns::{Conns, Phase, pause};
pub use self::events::{HubCloseReason, HubEvent, HubStats};
use self::log::{Log, Span};
pub use self::output::Transmit;
use self::output::{Overflow, Ready};
use self::rate::Bucket;
use self::room::Room;
use self::timers::Timers;
use self::users::Users;
use crate::config::ServerConfig;
use crate::error::{ConfigError, ErrorCode, UsageError};
use crate::frame::ServerFrame;
use crate::keepalive::{Due, after};
use crate::names::NameKey;
use crate::text::{Code, Name, Text, Token};

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
    /// [`Output::ResumeInput`]: the hub takes no more input from it for
    /// now (a login waits for the application). What was already read may
    /// still be passed to [`Hub::handle_input`]; the hub keeps it.
    PauseInput(ConnId),
    /// Read from this connection's socket again.
    ResumeInput(ConnId),
    /// Something the application may want to know or act on.
    Event(HubEvent),
}

/// The shutdown, once started.
#[derive(Debug, Clone, Copy)]
struct Shutdown {
    grace_until: Instant,
    /// Whether the grace period's end was acted on.
    over: bool,
}

/// The server: every connection and the room, as one sans-IO state machine.
///
/// Its methods come in four groups, after quinn-proto:
///
/// * getters: [`connections`](Hub::connections), [`members`](Hub::members),
///   [`logged_in`](Hub::logged_in), [`name`](Hub::name),
///   [`stats`](Hub::stats), ...;
/// * inputs: [`accept`](Hub::accept), [`handle_input`](Hub::handle_input),
///   [`handle_eof`](Hub::handle_eof), [`written`](Hub::written),
///   [`disconnected`](Hub::disconnected),
///   [`handle_timeout`](Hub::handle_timeout), [`shutdown`](Hub::shutdown);
/// * the application's answers and actions:
///   [`approve_login`](Hub::approve_login),
///   [`refuse_login`](Hub::refuse_login), [`kick`](Hub::kick),
///   [`notice`](Hub::notice), [`notice_all`](Hub::notice_all);
/// * outputs: [`poll_output`](Hub::poll_output) and
///   [`poll_timeout`](Hub::poll_timeout).
///
/// **Drain contract:** after every input or action, call
/// [`poll_output`](Hub::poll_output) until it returns `None`, doing what
/// each [`Output`] says, then arm a timer for
/// [`poll_timeout`](Hub::poll_timeout). There is one queue of outputs, in
/// the order they must be acted on, so a connection's bytes always come
/// before its close. Report bytes as they are flushed with
/// [`written`](Hub::written), or the outbound bound will close the
/// connection as a slow consumer. Time must not go backwards between calls.
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
    room: Room,
    timers: Timers,
    /// Every frame sent since the last drain, encoded once.
    log: Log,
    /// Connections with output queued.
    ready: Ready,
    closes: VecDeque<ConnId>,
    aborts: VecDeque<ConnId>,
    /// Connections whose input was paused or resumed since the last drain.
    toggles: VecDeque<ConnId>,
    events: VecDeque<HubEvent>,
    /// Connections that overflowed during a broadcast, closed after it.
    overflowed: Vec<u32>,
    stats: HubStats,
    /// The position the room's next message gets.
    next_position: u64,
    shutdown: Option<Shutdown>,
}

impl Hub {
    /// A hub with no connections.
    pub fn new(config: ServerConfig) -> Result<Hub, ConfigError> {
        config.validate()?;
        Ok(Hub {
            config,
            conns: Conns::default(),
            users: Users::default(),
            room: Room::default(),
            timers: Timers::default(),
            log: Log::default(),
            ready: Ready::default(),
            closes: VecDeque::new(),
            aborts: VecDeque::new(),
            toggles: VecDeque::new(),
            events: VecDeque::new(),
            overflowed: Vec::new(),
            stats: HubStats::default(),
            next_position: 0,
            shutdown: None,
        })
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
        self.room.len()
    }

    /// The logged-in connections and their names, in room order.
    pub fn logged_in(&self) -> impl Iterator<Item = (ConnId, &str)> {
        self.room.members().iter().map(|m| (m.id, &*m.name))
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

    /// Bytes queued for or handed out to `conn` and not yet reported
    /// written; never more than `outbound_limit`. (When the frame that
    /// explains a close, such as `err:slow-consumer`, does not fit, the
    /// frames not yet handed out are dropped to make room, and if that is not
    /// enough the explanation is dropped.)
    pub fn unflushed(&self, conn: ConnId) -> Option<usize> {
        self.conns.get(conn).map(|c| c.out.unflushed)
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

    /// Entries in the timer queue, stale ones included (for tests and
    /// metrics: it stays near one per connection).
    pub fn timer_entries(&self) -> usize {
        self.timers.len()
    }

    // ---- inputs ----------------------------------------------------------

    /// A new connection, accepted by the adapter at `now` from `peer` (if
    /// the adapter knows it). Beyond the connection limit, or after
    /// shutdown, it is answered with `err:server-full` or `bye:` and closed
    /// at once.
    pub fn accept(&mut self, now: Instant, peer: Option<IpAddr>) -> ConnId {
        let full = self.conns.active() >= self.config.max_connections;
        let bucket = self.config.rate_limit.map(|r| Bucket::new(&r, now));
        let id = self
            .conns
            .alloc(now, peer, self.config.max_frame_len, bucket);
        self.stats.accepted += 1;
        if self.shutdown.is_some() {
            let bye = self.encode(&ServerFrame::Bye(Text::trusted(SHUTDOWN_REASON)));
            self.close(id.index, now, HubCloseReason::Shutdown, Some(bye));
        } else if full {
            let text = format!("at most {} connections", self.config.max_connections);
            let err = self.error_frame(ErrorCode::ServerFull, &text);
            self.close(id.index, now, HubCloseReason::ServerFull, Some(err));
        } else {
            self.arm_timer(id.index);
        }
        id
    }

    /// Bytes received on `conn`, in any chunking. While its input is paused
    /// the hub keeps them, to decode once it resumes.
    pub fn handle_input(&mut self, conn: ConnId, now: Instant, input: &[u8]) {
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
    pub fn written(&mut self, conn: ConnId, _now: Instant, n: usize) {
        if let Some(c) = self.conns.get_mut(conn) {
            // More than was handed out is an adapter bug; a release build
            // saturates rather than panics.
            debug_assert!(
                n <= c.out.unflushed,
                "{conn}: {n} written, {} handed out",
                c.out.unflushed
            );
            c.out.written(n);
            self.stats.bytes_written += n as u64;
        }
    }

    /// The connection's socket is gone: the peer left, the connection
    /// failed, or the adapter closed it after an [`Output::Close`] or
    /// [`Output::Abort`]. Call it exactly once per connection. Its id is
    /// invalid from now on and its index free for a later connection.
    pub fn disconnected(&mut self, conn: ConnId, now: Instant) {
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        if c.is_active() {
            self.close(conn.index, now, HubCloseReason::Disconnected, None);
        }
        self.conns.free(conn.index);
    }

    /// Tells the hub the time is `now`: sends due pings, closes connections
    /// past their login or keepalive timeout, asks to abort connections
    /// that took too long to close. Call it at or after
    /// [`poll_timeout`](Hub::poll_timeout); early or repeated calls are
    /// harmless. It only looks at connections whose deadline has come.
    pub fn handle_timeout(&mut self, now: Instant) {
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
        while let Some((at, id)) = self.timers.pop_due(now) {
            let Some(c) = self.conns.get_mut(id) else {
                continue;
            };
            if c.timer_at != Some(at) {
                continue;
            }
            c.timer_at = None;
            if let Some(closing) = c.closing {
                if now >= closing.deadline {
                    self.abort(id.index);
                } else {
                    self.arm_timer(id.index);
                }
                continue;
            }
            let login_deadline = after(c.accepted, self.config.login_timeout);
            if matches!(c.phase, Phase::Anonymous | Phase::LoggingIn) && now >= login_deadline {
                let err = self.error_frame(ErrorCode::Timeout, "no login in time");
                self.close(id.index, now, HubCloseReason::LoginTimeout, Some(err));
                continue;
            }
            // While input is paused the peer cannot be heard: keepalive
            // waits (it starts afresh when input resumes).
            let due = if c.input.paused == 0 {
                c.liveness.poll(now, &self.config.keepalive)
            } else {
                Due::Nothing
            };
            match due {
                Due::Nothing => {}
                Due::Ping => {
                    self.stats.pings += 1;
                    let ping =
                        self.encode(&ServerFrame::Ping(Token::from_counter(self.stats.pings)));
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
    }

    /// Starts a graceful shutdown: every connection is sent
    /// `bye:server shutting down` and closed (no `left:` frames), and later
    /// connections are refused the same way. Once the `shutdown_grace` is
    /// over, the hub asks for every remaining socket to be dropped
    /// ([`Output::Abort`]); [`is_finished`](Hub::is_finished) says when
    /// every socket is gone. Calling it again does nothing.
    pub fn shutdown(&mut self, now: Instant) {
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

    // ---- the application's answers and actions --------------------------

    /// Accepts the login `conn` asked for
    /// ([`HubEvent::LoginRequested`]): it is answered `ok:NAME` and joins
    /// the room, and its input resumes. Ignored unless `conn` is waiting
    /// for this decision (it may have gone, or timed out, meanwhile).
    pub fn approve_login(&mut self, conn: ConnId, now: Instant) {
        if self
            .conns
            .get(conn)
            .is_none_or(|c| c.phase != Phase::LoggingIn)
        {
            return;
        }
        self.complete_login(conn.index, now);
        self.unpause(conn.index, now, pause::LOGIN);
    }

    /// Refuses the login `conn` asked for: it is answered `err:CODE:TEXT`
    /// (non-fatal; [`ErrorCode::LoginRefused`] fits most refusals), the name
    /// is free again, and the connection may try again. Ignored unless
    /// `conn` is waiting for this decision. Fails, changing nothing, if
    /// `text` is not valid text or the frame would be too long.
    pub fn refuse_login(
        &mut self,
        conn: ConnId,
        now: Instant,
        code: impl Into<Code<'static>>,
        text: &str,
    ) -> Result<(), UsageError> {
        let code = code.into();
        let frame = self.checked_error(&code, text)?;
        let Some(c) = self.conns.get_mut(conn) else {
            return Ok(());
        };
        if c.phase != Phase::LoggingIn {
            return Ok(());
        }
        c.phase = Phase::Anonymous;
        if let Some(name) = c.name.take() {
            self.users.release(&NameKey::of(&name), conn);
        }
        let err = self.encode(&frame);
        self.send(conn.index, now, err);
        self.unpause(conn.index, now, pause::LOGIN);
        Ok(())
    }

    /// Ends `conn` with `err:kicked:REASON` (fatal): it leaves the room
    /// (others see `left:` under the presence limit) and is closed once the
    /// frame is flushed. Ignored if `conn` is gone or already closing.
    /// Fails, changing nothing, if `reason` is not valid text or too long.
    pub fn kick(&mut self, conn: ConnId, now: Instant, reason: &str) -> Result<(), UsageError> {
        let frame = self.checked_error(&ErrorCode::Kicked.into(), reason)?;
        if self.conns.get(conn).is_some_and(|c| c.is_active()) {
            let err = self.encode(&frame);
            self.close(conn.index, now, HubCloseReason::Kicked, Some(err));
        }
        Ok(())
    }

    /// Sends `notice:TEXT` to one connection, logged in or not. Ignored if
    /// `conn` is gone or closing. Fails, changing nothing, if `text` is not
    /// valid text or the frame would be too long.
    pub fn notice(&mut self, conn: ConnId, now: Instant, text: &str) -> Result<(), UsageError> {
        let frame = self.checked(ServerFrame::Notice(Text::new(text)?))?;
        if self.conns.get(conn).is_some_and(|c| c.is_active()) {
            let span = self.encode(&frame);
            self.send(conn.index, now, span);
        }
        Ok(())
    }

    /// Sends `notice:TEXT` to every logged-in connection, encoded once.
    /// Fails, changing nothing, if `text` is not valid text or the frame
    /// would be too long.
    pub fn notice_all(&mut self, now: Instant, text: &str) -> Result<(), UsageError> {
        let frame = self.checked(ServerFrame::Notice(Text::new(text)?))?;
        let span = self.encode(&frame);
        self.broadcast(span, now, None);
        Ok(())
    }

    // ---- outputs ---------------------------------------------------------

    /// The next thing the adapter must do; `None` once everything is done.
    /// See the drain contract on [`Hub`].
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        if !self.log.is_empty() {
            let frozen = self.log.freeze();
            for &id in self.ready.iter() {
                if let Some(c) = self.conns.get_mut(id) {
                    c.out.freeze(&frozen);
                }
            }
        }
        while let Some(id) = self.ready.pop() {
            if let Some(c) = self.conns.get_mut(id)
                && c.out.has_queued()
            {
                return Some(Output::Transmit(Transmit {
                    conn: id,
                    data: c.out.take(),
                }));
            }
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

    /// Queues `bytes` for one connection; a slow consumer is closed. A
    /// connection closed on the way (say, in the middle of a `who:` answer)
    /// gets nothing more: the frame that explained the close stays its last.
    fn send(&mut self, index: u32, now: Instant, bytes: Span) {
        if !self.conns.slot(index).is_active() {
            return;
        }
        if self.enqueue(index, bytes).is_err() {
            self.overflowed.push(index);
            self.close_overflowed(now);
        }
    }

    fn enqueue(&mut self, index: u32, span: Span) -> Result<(), Overflow> {
        let limit = self.config.outbound_limit;
        let c = self.conns.slot(index);
        if c.out.push(span, limit)? {
            let id = self.conns.id(index);
            self.ready.push(id);
        }
        Ok(())
    }

    /// Queues `bytes` for every member but `except`, then closes the slow
    /// consumers found on the way (whose `left:` may find more). Returns how
    /// many members it was queued for.
    fn broadcast(&mut self, bytes: Span, now: Instant, except: Option<u32>) -> usize {
        let limit = self.config.outbound_limit;
        let mut queued = 0;
        for member in self.room.members() {
            let index = member.id.index;
            if Some(index) == except {
                continue;
            }
            let c = self.conns.slot(index);
            match c.out.push(bytes, limit) {
                Ok(true) => {
                    self.ready.push(member.id);
                    queued += 1;
                }
                Ok(false) => queued += 1,
                Err(Overflow) => self.overflowed.push(index),
            }
        }
        self.close_overflowed(now);
        queued
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

    /// Ends an active connection: leaves the room (telling the others while
    /// presence is on), frees its name, queues its last frame, and asks the
    /// adapter to close it once flushed (unless the socket is already gone).
    fn close(&mut self, index: u32, now: Instant, reason: HubCloseReason, last: Option<Span>) {
        let c = self.conns.slot(index);
        debug_assert!(c.is_active());
        let was_member = c.phase == Phase::Member;
        let member_index = c.member_index;
        let name = c.name.clone();
        // Closing before the `left:` broadcast, which may close other slow
        // consumers: a connection on its way out must not be closed twice.
        let deadline = after(now, self.config.close_linger);
        self.conns.set_closing(index, deadline);
        let id = self.conns.id(index);
        if let Some(name) = &name {
            self.users.release(&NameKey::of(name), id);
        }
        if was_member {
            let presence = self.shutdown.is_none() && self.room.len() <= self.config.presence_limit;
            let (member, moved) = self.room.leave(member_index);
            if let Some(moved) = moved {
                self.conns.slot(moved.index).member_index = member_index;
            }
            if presence {
                let left = self
                    .log
                    .encode(&ServerFrame::Left(Name::trusted(&member.name)));
                self.broadcast(left, now, None);
            }
        }
        if let Some(last) = last {
            let limit = self.config.outbound_limit;
            if self.conns.slot(index).out.push_last(last, limit) {
                self.ready.push(id);
            }
        }
        self.stats.closed(reason);
        if reason == HubCloseReason::Disconnected {
            self.conns.slot(index).out.clear();
        } else {
            self.closes.push_back(id);
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
    /// connection's next deadline.
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
                match (login, keepalive) {
                    (Some(a), Some(b)) => a.min(b),
                    (Some(a), None) | (None, Some(a)) => a,
                    (None, None) => return,
                }
            }
        };
        if c.timer_at.is_none_or(|armed| at < armed) {
            c.timer_at = Some(at);
            let id = self.conns.id(index);
            self.timers.push(at, id);
        }
    }

    // ---- paused input ----------------------------------------------------

    /// Pauses `index`'s input for `reason`.
    fn pause(&mut self, index: u32, reason: u8) {
        let c = self.conns.slot(index);
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
}
