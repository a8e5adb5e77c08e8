//! The client side: one chat session, across connections, as a state
//! machine.
//!
//! [`Client`] turns application commands (`login`, `say`, `who`, `close`)
//! into bytes to send, and received bytes into [`Event`]s. It runs keepalive
//! on its own: it pings a silent server and reports it dead when it does not
//! answer, and it answers the server's pings. It also owns what happens
//! when a connection ends: whether to reconnect, when (exponential backoff
//! with jitter, see [`Backoff`]), logging in again under the same name, and
//! waiting when the server still holds that name from the lost connection.
//! The driver only opens and closes sockets when told
//! ([`ClientOutput::Connect`], [`ClientOutput::Disconnect`]). It never reads
//! a clock; every input carries the current time.

mod frames;
mod resume;
mod types;
mod unconfirmed;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::Instant;

use bytes::BytesMut;

pub use self::types::{ClientOutput, ClientState, CloseReason, Event};
use crate::config::ClientConfig;
use crate::decode::Decoder;
use crate::error::{ConfigError, ErrorCode, UsageError};
use crate::frame::ClientFrame;
use crate::keepalive::{Due, Liveness, after};
use crate::reconnect::Backoff;
use crate::text::{Name, Text, Token};

/// The socket of the current connection, as the client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Socket {
    /// Open: bytes flow.
    Open,
    /// The client asked the driver to close it ([`ClientOutput::Disconnect`]),
    /// by `until`.
    Closing { until: Instant, aborted: bool },
    /// Gone: the driver said so.
    Gone,
}

/// A client session: a sans-IO state machine.
///
/// Its methods come in four groups, after quinn-proto:
///
/// * getters: [`state`](Client::state), [`name`](Client::name),
///   [`is_closed`](Client::is_closed);
/// * commands: [`login`](Client::login), [`say`](Client::say),
///   [`who`](Client::who), [`close`](Client::close);
/// * inputs: [`handle_input`](Client::handle_input),
///   [`handle_timeout`](Client::handle_timeout),
///   [`disconnected`](Client::disconnected),
///   [`connected`](Client::connected),
///   [`connect_failed`](Client::connect_failed);
/// * outputs: [`poll_output`](Client::poll_output),
///   [`poll_timeout`](Client::poll_timeout).
///
/// **Drain contract:** after every command or input, call
/// [`poll_output`](Client::poll_output) until it returns `None`: write what
/// it transmits, hand its events to the application, and open or close the
/// socket when it says; then arm a timer for
/// [`poll_timeout`](Client::poll_timeout). A pong must go out even when
/// nobody is reading events. Time must not go backwards between calls.
///
/// A client is made for a connection that is already open
/// ([`Client::new`]). With a [`ReconnectPolicy`](crate::ReconnectPolicy) in
/// [`ClientConfig::reconnect`], a connection that ends for any reason but a
/// local [`close`](Client::close) or a kick, after a first successful
/// login, is followed by [`Event::Reconnecting`] and, after the delay, by
/// [`ClientOutput::Connect`]; once connected the client logs in again by
/// itself.
///
/// ```
/// use std::time::Instant;
/// use chat_proto::{Client, ClientConfig, ClientOutput, Event};
///
/// let now = Instant::now();
/// let mut client = Client::new(ClientConfig::default(), now)?;
/// client.login("zhangsan")?;
/// // It asks for rooms in the room form and their history, then logs in.
/// assert_eq!(
///     client.poll_output(),
///     Some(ClientOutput::Transmit("cap:rooms,history\niam:zhangsan\n".into()))
/// );
///
/// client.handle_input(
///     now,
///     b"cap:rooms,history\nok:zhangsan\njoined:lobby:zhangsan\nroom:lobby:5e:7\n\
///       said:lobby:7:lisi:did you have dinner\n",
/// );
/// let events: Vec<Event> = std::iter::from_fn(|| client.poll_event()).collect();
/// assert_eq!(
///     events,
///     [
///         Event::LoggedIn { name: "zhangsan".into() },
///         Event::Joined { room: "lobby".into(), name: "zhangsan".into() },
///         Event::Message {
///             room: "lobby".into(),
///             from: "lisi".into(),
///             text: "did you have dinner".into(),
///             offset: Some(7),
///             history: false,
///         },
///     ]
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Client {
    decoder: Decoder,
    inner: Inner,
}

#[derive(Debug)]
struct Inner {
    config: ClientConfig,
    state: ClientState,
    /// The name logged in with, or being logged in with.
    name: Option<String>,
    /// The name the server last accepted: the session's name, for logging
    /// in again after a reconnect.
    session_name: Option<String>,
    /// The secret logged in with, if any, for logging in again after a
    /// reconnect.
    secret: Option<String>,
    liveness: Liveness,
    socket: Socket,
    /// Bytes queued for the current connection.
    out: BytesMut,
    /// Socket commands for the driver, in order.
    commands: VecDeque<ClientOutput>,
    events: VecDeque<Event>,
    /// Names gathered from `users:` or `members:` frames until the empty
    /// one ends them, and the room they list.
    users: Vec<String>,
    users_room: String,
    /// The listing being gathered passed `max_listing`: it is dropped.
    users_overflow: bool,
    /// Rooms gathered from `rooms:` frames until the empty one ends them.
    room_list: Vec<(String, u64)>,
    /// `cap:rooms` was sent on this connection and not answered yet.
    caps_pending: bool,
    /// The server enabled the `rooms` capability on this connection.
    rooms_cap: bool,
    /// The server enabled the `history` capability on this connection.
    history_cap: bool,
    /// The last connection on which the server answered `cap:` had the
    /// `history` capability: the next one resumes. A connection lost
    /// before that answer leaves it as it was.
    had_history: bool,
    /// The session's place in each room (with history).
    positions: Vec<resume::Position>,
    /// Rooms asked for with `resume:` before `iam:` on this connection.
    resumed: Vec<String>,
    /// Messages said and not yet echoed.
    unconfirmed: unconfirmed::Unconfirmed,
    /// The server's default room, once it said its name.
    default_room: Option<String>,
    /// Rooms joined besides the default one, to join again after a
    /// reconnect.
    joined_rooms: Vec<String>,
    pings_sent: u64,
    /// The latest time seen, to date a `close()`.
    now: Instant,
    /// While closing: when to stop waiting for the server's answer.
    closing_until: Option<Instant>,
    /// The backoff of a session that reconnects.
    backoff: Option<Backoff>,
    /// When to ask for the next connection.
    reconnect_at: Option<Instant>,
    /// A [`ClientOutput::Connect`] is out, not yet answered.
    connecting: bool,
    /// The application closed the session: never reconnect.
    stopped: bool,
    /// Logins the server accepted, over all connections.
    logins: u64,
}

impl Client {
    /// A new session on a connection just established at `now`.
    pub fn new(config: ClientConfig, now: Instant) -> Result<Client, ConfigError> {
        config.validate()?;
        let backoff = config
            .reconnect
            .map(|policy| Backoff::new(policy, config.jitter_seed));
        Ok(Client {
            decoder: Decoder::new(config.max_frame_len),
            inner: Inner {
                config,
                state: ClientState::Connected,
                name: None,
                session_name: None,
                secret: None,
                liveness: Liveness::new(now),
                socket: Socket::Open,
                out: BytesMut::new(),
                commands: VecDeque::new(),
                events: VecDeque::new(),
                users: Vec::new(),
                users_room: String::new(),
                users_overflow: false,
                room_list: Vec::new(),
                caps_pending: false,
                rooms_cap: false,
                history_cap: false,
                had_history: false,
                positions: Vec::new(),
                resumed: Vec::new(),
                unconfirmed: unconfirmed::Unconfirmed::default(),
                default_room: None,
                joined_rooms: Vec::new(),
                pings_sent: 0,
                now,
                closing_until: None,
                backoff,
                reconnect_at: None,
                connecting: false,
                stopped: false,
                logins: 0,
            },
        })
    }

    /// Where the session stands.
    pub fn state(&self) -> ClientState {
        self.inner.state
    }

    /// The name logged in with, or being logged in with.
    pub fn name(&self) -> Option<&str> {
        self.inner.name.as_deref()
    }

    /// Whether the session is closed for good (no reconnect follows). The
    /// driver may still have a socket to close: it is done once this is
    /// true and `poll_output` returns `None`.
    pub fn is_closed(&self) -> bool {
        self.inner.state == ClientState::Closed
    }

    /// Whether the session is over and its socket closed: the driver may
    /// stop.
    pub fn is_finished(&self) -> bool {
        self.is_closed() && self.inner.socket == Socket::Gone && !self.inner.connecting
    }

    /// The configuration in force.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Sends `iam:NAME`. The answer arrives as [`Event::LoggedIn`] or
    /// [`Event::Error`].
    pub fn login(&mut self, name: &str) -> Result<(), UsageError> {
        self.start_login(name, None)
    }

    /// Sends `iam:NAME:SECRET`, logging in to an account. The answer
    /// arrives as [`Event::LoggedIn`] or [`Event::Error`]: `login-refused`
    /// for a wrong secret, `retry-later` after too many failures,
    /// `insecure` if the connection is plain text to a server that is not
    /// on loopback. The session keeps the secret to log in again after a
    /// reconnect. Send it over TLS only.
    ///
    /// ```
    /// use std::time::Instant;
    /// use chat_proto::{Client, ClientConfig};
    ///
    /// let mut client = Client::new(ClientConfig::plain(), Instant::now())?;
    /// client.login_with_secret("zhangsan", "correct horse")?;
    /// assert_eq!(client.poll_transmit().as_deref(), Some(&b"iam:zhangsan:correct horse\n"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn login_with_secret(&mut self, name: &str, secret: &str) -> Result<(), UsageError> {
        if secret.is_empty() {
            return Err(crate::error::InvalidText::Empty.into());
        }
        Text::new(secret)?;
        self.start_login(name, Some(secret))
    }

    fn start_login(&mut self, name: &str, secret: Option<&str>) -> Result<(), UsageError> {
        let inner = &mut self.inner;
        match inner.state {
            ClientState::Connected => {}
            ClientState::Closed | ClientState::Closing => return Err(UsageError::Closed),
            ClientState::Disconnected => return Err(UsageError::NotConnected),
            _ => return Err(UsageError::AlreadyLoggedIn),
        }
        let name = Name::new(name)?;
        inner.secret = secret.map(str::to_owned);
        inner.queue_login(&name)?;
        inner.state = ClientState::LoggingIn;
        inner.name = Some(name.into_string());
        Ok(())
    }

    /// The rooms this client joined besides the default one.
    pub fn joined_rooms(&self) -> &[String] {
        &self.inner.joined_rooms
    }

    /// The server's default room, once the server said its name (with the
    /// `rooms` capability).
    pub fn default_room(&self) -> Option<&str> {
        self.inner.default_room.as_deref()
    }

    /// Sends `join:ROOM`. The answer is [`Event::Joined`] with this
    /// client's name (then the room's messages), or [`Event::Error`]. After
    /// a reconnect the session joins its rooms again by itself.
    pub fn join(&mut self, room: &str) -> Result<(), UsageError> {
        self.inner.require_login()?;
        self.inner.queue(&ClientFrame::Join(Name::new(room)?))
    }

    /// Sends `part:ROOM`. The answer is [`Event::Left`] with this client's
    /// name, or [`Event::Error`].
    pub fn part(&mut self, room: &str) -> Result<(), UsageError> {
        self.inner.require_login()?;
        self.inner.queue(&ClientFrame::Part(Name::new(room)?))
    }

    /// Sends `say:ROOM:TEXT`: says `text` in `room`, which this client must
    /// have joined. Refused when the relayed frame could be too long.
    pub fn say_in(&mut self, room: &str, text: &str) -> Result<(), UsageError> {
        let inner = &mut self.inner;
        inner.require_login()?;
        let room = Name::new(room)?;
        let text = Text::new(text)?;
        let name_len = inner.name.as_ref().map_or(0, String::len);
        // `said:ROOM:OFFSET:FROM:TEXT`, with the longest offset.
        let relayed = "said:".len() + room.len() + 1 + 20 + 1 + name_len + 1 + text.len() + 1;
        let limit = inner.config.max_frame_len;
        if relayed > limit {
            return Err(UsageError::TooLong {
                len: relayed,
                limit,
            });
        }
        inner.queue(&ClientFrame::Say {
            room: room.clone(),
            text: text.clone(),
        })?;
        inner.note_said(Some(&room), &text);
        Ok(())
    }

    /// Sends `who:ROOM`. The answer arrives as one [`Event::Users`].
    pub fn who_in(&mut self, room: &str) -> Result<(), UsageError> {
        self.inner.require_login()?;
        self.inner.queue(&ClientFrame::WhoIn(Name::new(room)?))
    }

    /// Sends `rooms:`. The answer arrives as one [`Event::Rooms`].
    pub fn rooms(&mut self) -> Result<(), UsageError> {
        self.inner.require_login()?;
        self.inner.queue(&ClientFrame::Rooms)
    }

    /// Sends `pm:NAME:TEXT`: says `text` to the user `to` only. The server
    /// echoes it as [`Event::Private`].
    pub fn pm(&mut self, to: &str, text: &str) -> Result<(), UsageError> {
        let inner = &mut self.inner;
        inner.require_login()?;
        let to = Name::new(to)?;
        let text = Text::new(text)?;
        let name_len = inner.name.as_ref().map_or(0, String::len);
        // `pm:FROM:TO:TEXT`.
        let relayed = "pm:".len() + name_len + 1 + to.len() + 1 + text.len() + 1;
        let limit = inner.config.max_frame_len;
        if relayed > limit {
            return Err(UsageError::TooLong {
                len: relayed,
                limit,
            });
        }
        inner.queue(&ClientFrame::Pm { to, text })
    }

    /// Sends `msg:TEXT`. Refused when not logged in, when the text is not
    /// valid, or when the frame the server relays (`msg:NAME:TEXT`) would
    /// exceed the maximum frame length.
    pub fn say(&mut self, text: &str) -> Result<(), UsageError> {
        let inner = &mut self.inner;
        inner.require_login()?;
        let text = Text::new(text)?;
        let name_len = inner.name.as_ref().map_or(0, String::len);
        let relayed = "msg:".len() + name_len + 1 + text.len() + 1;
        let limit = inner.config.max_frame_len;
        if relayed > limit {
            return Err(UsageError::TooLong {
                len: relayed,
                limit,
            });
        }
        inner.queue(&ClientFrame::Msg(text.clone()))?;
        inner.note_said(None, &text);
        Ok(())
    }

    /// Sends `who:`. The answer arrives as one [`Event::Users`].
    pub fn who(&mut self) -> Result<(), UsageError> {
        self.inner.require_login()?;
        self.inner.queue(&ClientFrame::Who)
    }

    /// Closes the session for good. On an open connection it sends
    /// `bye:REASON` and starts closing: no command is accepted any more, but
    /// what the server still sends (answers to earlier frames) is reported
    /// until it answers `bye:` or closes the connection; then
    /// [`Event::Closed`] with [`CloseReason::Local`] follows. A server that
    /// does neither within `keepalive.timeout` is not waited for longer.
    /// Between connections it closes at once, and no reconnect follows.
    pub fn close(&mut self, reason: &str) -> Result<(), UsageError> {
        let inner = &mut self.inner;
        match inner.state {
            ClientState::Closed | ClientState::Closing => return Err(UsageError::Closed),
            ClientState::Disconnected => {
                inner.stopped = true;
                inner.reconnect_at = None;
                inner.state = ClientState::Closed;
                inner.give_up(None);
                inner.events.push_back(Event::Closed {
                    reason: CloseReason::Local,
                });
                return Ok(());
            }
            _ => {}
        }
        inner.queue(&ClientFrame::Bye(Text::new(reason)?))?;
        inner.stopped = true;
        inner.state = ClientState::Closing;
        inner.closing_until = Some(after(inner.now, inner.config.keepalive.timeout));
        Ok(())
    }

    /// Feeds bytes received from the server, in any chunking.
    pub fn handle_input(&mut self, now: Instant, input: &[u8]) {
        if self.inner.socket != Socket::Open || !self.inner.connection_live() || input.is_empty() {
            return;
        }
        self.inner.now = self.inner.now.max(now);
        // The client computes its deadline afresh each time; no timer to
        // move.
        let _ = self.inner.liveness.received(now);
        let inner = &mut self.inner;
        self.decoder.decode(input, |frame| {
            if !inner.connection_live() {
                return;
            }
            match frame.and_then(crate::frame::ServerFrame::parse) {
                Ok(frame) => inner.on_frame(frame),
                Err(error) => inner.events.push_back(Event::BadFrame { error }),
            }
        });
    }

    /// Tells the client the time is `now`; call it at or after
    /// [`poll_timeout`](Client::poll_timeout). Early or repeated calls do
    /// nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let inner = &mut self.inner;
        inner.now = inner.now.max(now);
        if let Socket::Closing { until, aborted } = &mut inner.socket
            && !*aborted
            && now >= *until
        {
            *aborted = true;
            inner.commands.push_back(ClientOutput::Abort);
        }
        if inner.state == ClientState::Disconnected {
            if inner.reconnect_at.is_some_and(|at| now >= at) && !inner.connecting {
                inner.reconnect_at = None;
                inner.connecting = true;
                inner.commands.push_back(ClientOutput::Connect);
            }
            return;
        }
        if inner.socket != Socket::Open || !inner.connection_live() {
            return;
        }
        if inner.closing_until.is_some_and(|until| now >= until) {
            return inner.end_connection(CloseReason::Local);
        }
        match inner.liveness.poll(now, &inner.config.keepalive) {
            Due::Nothing => {}
            // A closing client sends nothing but pongs (PROTOCOL.md, section
            // 6); `closing_until` bounds the wait for the server instead.
            Due::Ping if inner.state == ClientState::Closing => {}
            Due::Ping => {
                inner.pings_sent += 1;
                let token = Token::from_counter(inner.pings_sent);
                // A ping is a few bytes; it always fits.
                let _ = inner.queue(&ClientFrame::Ping(token));
            }
            Due::Dead => inner.end_connection(CloseReason::Timeout),
        }
    }

    /// Tells the client its socket is gone: the connection was lost (EOF or
    /// an I/O error), or the driver closed it after a
    /// [`ClientOutput::Disconnect`] or [`ClientOutput::Abort`]. A lost
    /// connection is reported with [`Event::Closed`]; a session that
    /// reconnects then schedules the next attempt.
    pub fn disconnected(&mut self, now: Instant) {
        let inner = &mut self.inner;
        inner.now = inner.now.max(now);
        let was = inner.socket;
        if was == Socket::Gone {
            return;
        }
        inner.socket = Socket::Gone;
        // Orders about the socket that is gone are moot.
        inner
            .commands
            .retain(|c| !matches!(c, ClientOutput::Disconnect | ClientOutput::Abort));
        if was == Socket::Open && inner.connection_live() {
            inner.end_connection(CloseReason::Disconnected);
        }
        inner.out.clear();
        self.decoder = Decoder::new(inner.config.max_frame_len);
        if inner.state == ClientState::Disconnected {
            inner.schedule_reconnect(now);
        }
    }

    /// A new connection is open, as asked by [`ClientOutput::Connect`]:
    /// the client logs in again under the session's name.
    pub fn connected(&mut self, now: Instant) {
        let inner = &mut self.inner;
        inner.now = inner.now.max(now);
        if !inner.connecting {
            return;
        }
        inner.connecting = false;
        inner.socket = Socket::Open;
        if inner.state != ClientState::Disconnected {
            // Closed meanwhile: this socket is not wanted.
            inner.close_socket();
            return;
        }
        inner.liveness = Liveness::new(now);
        inner.pings_sent = 0;
        inner.state = ClientState::Connected;
        inner.caps_pending = false;
        inner.rooms_cap = false;
        inner.history_cap = false;
        if let Some(name) = inner.session_name.clone() {
            // The name was accepted before, so it is valid and fits.
            let _ = inner.queue_login(&Name::trusted(&name));
            inner.state = ClientState::LoggingIn;
            inner.name = Some(name);
        }
    }

    /// Opening the connection asked by [`ClientOutput::Connect`] failed:
    /// the next attempt is scheduled, or the session gives up.
    pub fn connect_failed(&mut self, now: Instant) {
        let inner = &mut self.inner;
        inner.now = inner.now.max(now);
        if !inner.connecting {
            return;
        }
        inner.connecting = false;
        if inner.state == ClientState::Disconnected {
            inner.schedule_reconnect(now);
        }
    }

    /// The next thing the driver must do; `None` once everything is done.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<ClientOutput> {
        let out = &mut self.inner.out;
        if !out.is_empty() {
            return Some(ClientOutput::Transmit(out.split().freeze()));
        }
        if let Some(command) = self.inner.commands.pop_front() {
            return Some(command);
        }
        self.inner.events.pop_front().map(ClientOutput::Event)
    }

    /// The next event, skipping nothing else: for callers that handle the
    /// socket side elsewhere (tests and simple loops). Prefer
    /// [`poll_output`](Client::poll_output).
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.inner.events.pop_front()
    }

    /// The bytes to write, if any, leaving events and socket commands
    /// queued: for callers that handle those elsewhere. Prefer
    /// [`poll_output`](Client::poll_output).
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<bytes::Bytes> {
        let out = &mut self.inner.out;
        (!out.is_empty()).then(|| out.split().freeze())
    }

    /// When [`handle_timeout`](Client::handle_timeout) must next be called;
    /// `None` when nothing is due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let inner = &self.inner;
        let socket = match inner.socket {
            Socket::Closing {
                until,
                aborted: false,
            } => Some(until),
            _ => None,
        };
        let session = if inner.state == ClientState::Disconnected {
            inner.reconnect_at.filter(|_| !inner.connecting)
        } else if inner.socket == Socket::Open && inner.connection_live() {
            let keepalive = inner.liveness.deadline(&inner.config.keepalive);
            Some(
                inner
                    .closing_until
                    .map_or(keepalive, |until| until.min(keepalive)),
            )
        } else {
            None
        };
        match (socket, session) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl Inner {
    /// Whether the current connection is in use: open for the protocol.
    fn connection_live(&self) -> bool {
        matches!(
            self.state,
            ClientState::Connected
                | ClientState::LoggingIn
                | ClientState::LoggedIn
                | ClientState::Closing
        )
    }

    fn require_login(&self) -> Result<(), UsageError> {
        match self.state {
            ClientState::LoggedIn => Ok(()),
            ClientState::Closed | ClientState::Closing => Err(UsageError::Closed),
            ClientState::Disconnected => Err(UsageError::NotConnected),
            _ => Err(UsageError::NotLoggedIn),
        }
    }

    /// How the connection ends for `reason`: any end of a close the
    /// application asked for is that close.
    fn ending(&self, reason: CloseReason) -> CloseReason {
        if self.state == ClientState::Closing {
            CloseReason::Local
        } else {
            reason
        }
    }

    /// Queues a login: `cap:rooms,history` first if the client asks for
    /// rooms, and after a reconnect the `resume:` frames.
    fn queue_login(&mut self, name: &Name<'_>) -> Result<(), UsageError> {
        if self.config.rooms && !self.caps_pending && !self.rooms_cap {
            let caps = crate::text::CapList::new("rooms,history").expect("a valid list");
            self.queue(&ClientFrame::Cap(caps))?;
            self.caps_pending = true;
        }
        self.resumed = self.queue_resumes();
        let frame = match &self.secret {
            Some(secret) => ClientFrame::IamSecret {
                name: name.clone(),
                secret: Text::trusted(secret),
            },
            None => ClientFrame::Iam(name.clone()),
        };
        queue_frame(&mut self.out, self.config.max_frame_len, &frame)
    }

    fn queue(&mut self, frame: &ClientFrame<'_>) -> Result<(), UsageError> {
        queue_frame(&mut self.out, self.config.max_frame_len, frame)
    }

    /// Whether a connection that ended for `reason` is followed by another.
    fn reconnects_after(&self, reason: &CloseReason) -> bool {
        self.backoff.is_some()
            && !self.stopped
            && self.session_name.is_some()
            && !matches!(
                reason,
                CloseReason::Local
                    | CloseReason::Fatal {
                        code: ErrorCode::Kicked
                    }
            )
    }

    /// The current connection is over (`reason`): reported, its socket to
    /// be closed, and the session goes on to a reconnect or ends.
    fn end_connection(&mut self, reason: CloseReason) {
        let reason = self.ending(reason);
        self.closing_until = None;
        self.users = Vec::new();
        self.users_overflow = false;
        self.room_list = Vec::new();
        self.state = if self.reconnects_after(&reason) {
            ClientState::Disconnected
        } else {
            ClientState::Closed
        };
        // The session ends: what it cannot confirm is said before its last
        // event.
        if self.state == ClientState::Closed {
            self.give_up(None);
        }
        self.events.push_back(Event::Closed { reason });
        if self.socket == Socket::Open {
            self.close_socket();
        }
    }

    /// Asks the driver to close the open socket, within `close_linger`.
    fn close_socket(&mut self) {
        self.socket = Socket::Closing {
            until: after(self.now, self.config.close_linger),
            aborted: false,
        };
        self.commands.push_back(ClientOutput::Disconnect);
    }

    /// Between connections: the next attempt after the backoff, or the end.
    fn schedule_reconnect(&mut self, now: Instant) {
        let delay = self.backoff.as_mut().and_then(Backoff::next_delay);
        match delay {
            Some(delay) => {
                self.reconnect_at = Some(after(now, delay));
                let attempt = self.backoff.as_ref().map_or(0, Backoff::attempts);
                self.events
                    .push_back(Event::Reconnecting { attempt, delay });
            }
            None => {
                self.state = ClientState::Closed;
                self.give_up(None);
                self.events.push_back(Event::Closed {
                    reason: CloseReason::ReconnectFailed,
                });
            }
        }
    }
}

/// Encodes `frame` onto `out` if it fits in `limit` bytes.
fn queue_frame(
    out: &mut BytesMut,
    limit: usize,
    frame: &ClientFrame<'_>,
) -> Result<(), UsageError> {
    let len = frame.encoded_len();
    if len > limit {
        return Err(UsageError::TooLong { len, limit });
    }
    frame.encode(out);
    Ok(())
}
