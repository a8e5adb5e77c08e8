//! The client side of one connection, as a state machine.
//!
//! [`Client`] turns application commands (`login`, `say`, `who`, `close`)
//! into bytes to send, and received bytes into [`Event`]s. It runs keepalive
//! on its own: it pings a silent server and reports it dead when it does not
//! answer, and it answers the server's pings. It never reads a clock; every
//! input carries the current time.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::config::ClientConfig;
use crate::decode::Decoder;
use crate::error::{ConfigError, ErrorCode, PeerError, UsageError};
use crate::frame::{ClientFrame, ServerFrame};
use crate::keepalive::{Due, Liveness, after};
use crate::text::{Code, Name, Text, Token};

/// Something that happened on a client connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The server accepted the login (`ok:NAME`).
    LoggedIn {
        /// The name now in use.
        name: String,
    },
    /// Someone in the room, this client included, said something.
    Message {
        /// Who said it.
        from: String,
        /// What they said.
        text: String,
    },
    /// Someone logged in (only while the room is under its presence limit).
    Joined {
        /// Their name.
        name: String,
    },
    /// Someone left (only while the room is under its presence limit).
    Left {
        /// Their name.
        name: String,
    },
    /// The complete answer to one `who()`.
    Users {
        /// The logged-in users, this client included.
        names: Vec<String>,
    },
    /// The server sent `err:CODE:TEXT`. A refused login (`name-taken`,
    /// `bad-name`) returns the client to [`ClientState::Connected`], so it
    /// can try another name. A fatal code is followed by
    /// [`Event::Closed`].
    Error {
        /// The error code; compare it with [`ErrorCode`].
        code: Code<'static>,
        /// The server's explanation.
        text: String,
    },
    /// The server itself said something (`notice:TEXT`): its operator or
    /// application, not a user.
    Notice {
        /// What it said.
        text: String,
    },
    /// The server sent a frame this client could not decode or did not
    /// expect. It was skipped; the connection goes on.
    BadFrame {
        /// What was wrong with it.
        error: PeerError,
    },
    /// The connection is over; nothing follows this event. The adapter
    /// writes what `poll_transmit` still yields, then closes the socket.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

/// Why a client connection closed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The application called [`Client::close`], and the server answered
    /// `bye:`, closed the connection, or did neither within
    /// `keepalive.timeout`.
    Local,
    /// The server sent `bye:REASON`.
    Bye {
        /// The server's reason.
        reason: String,
    },
    /// The server sent a fatal error (`slow-consumer`, `timeout`,
    /// `server-full`).
    Fatal {
        /// The code.
        code: ErrorCode,
    },
    /// Keepalive: nothing arrived within the timeout after a ping.
    Timeout,
    /// The transport reported the connection lost
    /// ([`Client::disconnected`]).
    Disconnected,
}

/// Where a client connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientState {
    /// Connected, not logged in.
    Connected,
    /// `iam:` sent, waiting for `ok:` or an error.
    LoggingIn,
    /// Logged in: may `say` and `who`.
    LoggedIn,
    /// `bye:` sent; answers to earlier frames still arrive until the server
    /// answers `bye:` or closes.
    Closing,
    /// Closed; no more input is accepted.
    Closed,
}

/// The client side of a connection: a sans-IO state machine.
///
/// Its methods come in four groups, after quinn-proto:
///
/// * getters: [`state`](Client::state), [`name`](Client::name),
///   [`is_closed`](Client::is_closed);
/// * commands: [`login`](Client::login), [`say`](Client::say),
///   [`who`](Client::who), [`close`](Client::close);
/// * inputs: [`handle_input`](Client::handle_input),
///   [`handle_timeout`](Client::handle_timeout),
///   [`disconnected`](Client::disconnected);
/// * outputs: [`poll_transmit`](Client::poll_transmit),
///   [`poll_event`](Client::poll_event),
///   [`poll_timeout`](Client::poll_timeout).
///
/// **Drain contract:** after every command or `handle_*` call, drain every
/// `poll_*` method until it returns `None`: write what `poll_transmit`
/// yields, act on every event, and arm a timer for `poll_timeout`. A pong
/// must go out even when nobody is reading events. Time must not go
/// backwards between calls.
///
/// ```
/// use std::time::Instant;
/// use chat_proto::{Client, ClientConfig, Event};
///
/// let now = Instant::now();
/// let mut client = Client::new(ClientConfig::default(), now)?;
/// client.login("zhangsan")?;
/// assert_eq!(&client.poll_transmit().unwrap()[..], b"iam:zhangsan\n");
///
/// client.handle_input(now, b"ok:zhangsan\nmsg:lisi:did you have dinner\n");
/// assert_eq!(client.poll_event(), Some(Event::LoggedIn { name: "zhangsan".into() }));
/// assert_eq!(
///     client.poll_event(),
///     Some(Event::Message { from: "lisi".into(), text: "did you have dinner".into() })
/// );
/// assert_eq!(client.poll_event(), None);
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
    name: Option<String>,
    liveness: Liveness,
    out: BytesMut,
    events: VecDeque<Event>,
    /// Names gathered from `users:` frames until the empty one ends them.
    users: Vec<String>,
    pings_sent: u64,
    /// The latest time seen, to date a `close()`.
    now: Instant,
    /// While closing: when to stop waiting for the server's answer.
    closing_until: Option<Instant>,
}

impl Client {
    /// A new connection, just established at `now`.
    pub fn new(config: ClientConfig, now: Instant) -> Result<Client, ConfigError> {
        config.validate()?;
        Ok(Client {
            decoder: Decoder::new(config.max_frame_len),
            inner: Inner {
                config,
                state: ClientState::Connected,
                name: None,
                liveness: Liveness::new(now),
                out: BytesMut::new(),
                events: VecDeque::new(),
                users: Vec::new(),
                pings_sent: 0,
                now,
                closing_until: None,
            },
        })
    }

    /// Where the connection stands.
    pub fn state(&self) -> ClientState {
        self.inner.state
    }

    /// The name logged in with, or being logged in with.
    pub fn name(&self) -> Option<&str> {
        self.inner.name.as_deref()
    }

    /// Whether the connection is closed.
    pub fn is_closed(&self) -> bool {
        self.inner.state == ClientState::Closed
    }

    /// The configuration in force.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Sends `iam:NAME`. The answer arrives as [`Event::LoggedIn`] or
    /// [`Event::Error`].
    pub fn login(&mut self, name: &str) -> Result<(), UsageError> {
        let inner = &mut self.inner;
        match inner.state {
            ClientState::Connected => {}
            ClientState::Closed | ClientState::Closing => return Err(UsageError::Closed),
            _ => return Err(UsageError::AlreadyLoggedIn),
        }
        let name = Name::new(name)?;
        inner.queue(&ClientFrame::Iam(name.clone()))?;
        inner.state = ClientState::LoggingIn;
        inner.name = Some(name.into_string());
        Ok(())
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
        inner.queue(&ClientFrame::Msg(text))
    }

    /// Sends `who:`. The answer arrives as one [`Event::Users`].
    pub fn who(&mut self) -> Result<(), UsageError> {
        self.inner.require_login()?;
        self.inner.queue(&ClientFrame::Who)
    }

    /// Sends `bye:REASON` and starts closing: no command is accepted any
    /// more, but what the server still sends (answers to earlier frames) is
    /// reported until it answers `bye:` or closes the connection; then
    /// [`Event::Closed`] with [`CloseReason::Local`] follows. A server that
    /// does neither within `keepalive.timeout` is not waited for longer.
    pub fn close(&mut self, reason: &str) -> Result<(), UsageError> {
        let inner = &mut self.inner;
        if matches!(inner.state, ClientState::Closed | ClientState::Closing) {
            return Err(UsageError::Closed);
        }
        inner.queue(&ClientFrame::Bye(Text::new(reason)?))?;
        inner.state = ClientState::Closing;
        inner.closing_until = Some(after(inner.now, inner.config.keepalive.timeout));
        Ok(())
    }

    /// Feeds bytes received from the server, in any chunking.
    pub fn handle_input(&mut self, now: Instant, input: &[u8]) {
        if self.inner.state == ClientState::Closed || input.is_empty() {
            return;
        }
        self.inner.now = self.inner.now.max(now);
        // The client computes its deadline afresh each time; no timer to
        // move.
        let _ = self.inner.liveness.received(now);
        let inner = &mut self.inner;
        self.decoder.decode(input, |frame| {
            if inner.state == ClientState::Closed {
                return;
            }
            match frame.and_then(ServerFrame::parse) {
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
        if inner.state == ClientState::Closed {
            return;
        }
        inner.now = inner.now.max(now);
        if inner.closing_until.is_some_and(|until| now >= until) {
            return inner.closed(CloseReason::Local);
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
            Due::Dead => inner.closed(inner.ending(CloseReason::Timeout)),
        }
    }

    /// Tells the client the transport lost the connection (EOF or an I/O
    /// error). Emits [`Event::Closed`] unless already closed.
    pub fn disconnected(&mut self, _now: Instant) {
        let inner = &mut self.inner;
        if inner.state != ClientState::Closed {
            inner.closed(inner.ending(CloseReason::Disconnected));
        }
    }

    /// Bytes to write to the server, all that is queued, in order.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        let out = &mut self.inner.out;
        (!out.is_empty()).then(|| out.split().freeze())
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.inner.events.pop_front()
    }

    /// When [`handle_timeout`](Client::handle_timeout) must next be called;
    /// `None` once closed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let inner = &self.inner;
        if inner.state == ClientState::Closed {
            return None;
        }
        let keepalive = inner.liveness.deadline(&inner.config.keepalive);
        Some(
            inner
                .closing_until
                .map_or(keepalive, |until| until.min(keepalive)),
        )
    }
}

impl Inner {
    fn require_login(&self) -> Result<(), UsageError> {
        match self.state {
            ClientState::LoggedIn => Ok(()),
            ClientState::Closed | ClientState::Closing => Err(UsageError::Closed),
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

    fn queue(&mut self, frame: &ClientFrame<'_>) -> Result<(), UsageError> {
        let len = frame.encoded_len();
        let limit = self.config.max_frame_len;
        if len > limit {
            return Err(UsageError::TooLong { len, limit });
        }
        frame.encode(&mut self.out);
        Ok(())
    }

    fn closed(&mut self, reason: CloseReason) {
        self.state = ClientState::Closed;
        self.closing_until = None;
        self.users = Vec::new();
        self.events.push_back(Event::Closed { reason });
    }

    fn unexpected(&mut self, tag: &'static str) {
        self.events.push_back(Event::BadFrame {
            error: PeerError::Unexpected { tag },
        });
    }

    fn on_frame(&mut self, frame: ServerFrame<'_>) {
        match frame {
            ServerFrame::Ok(name) => {
                if self.state != ClientState::LoggingIn {
                    return self.unexpected("ok");
                }
                self.state = ClientState::LoggedIn;
                let name = name.into_string();
                self.name = Some(name.clone());
                self.events.push_back(Event::LoggedIn { name });
            }
            ServerFrame::Msg { from, text } => self.events.push_back(Event::Message {
                from: from.into_string(),
                text: text.into_string(),
            }),
            ServerFrame::Join(name) => self.events.push_back(Event::Joined {
                name: name.into_string(),
            }),
            ServerFrame::Left(name) => self.events.push_back(Event::Left {
                name: name.into_string(),
            }),
            ServerFrame::Users(list) if list.is_end() => {
                let names = std::mem::take(&mut self.users);
                self.events.push_back(Event::Users { names });
            }
            ServerFrame::Users(list) => self.users.extend(list.names().map(String::from)),
            ServerFrame::Err { code, text } => self.on_error(code.into_owned(), text),
            ServerFrame::Ping(token) => {
                // An echoed token is no longer than the ping that carried it.
                let _ = self.queue(&ClientFrame::Pong(token));
            }
            ServerFrame::Pong(_) => {}
            ServerFrame::Notice(text) => self.events.push_back(Event::Notice {
                text: text.into_string(),
            }),
            ServerFrame::Bye(reason) => {
                let reason = CloseReason::Bye {
                    reason: reason.into_string(),
                };
                self.closed(self.ending(reason));
            }
        }
    }

    fn on_error(&mut self, code: Code<'static>, text: Text<'_>) {
        let known = code.known();
        if self.state == ClientState::LoggingIn
            && matches!(known, Some(ErrorCode::NameTaken | ErrorCode::BadName))
        {
            self.state = ClientState::Connected;
            self.name = None;
        }
        self.events.push_back(Event::Error {
            code,
            text: text.into_string(),
        });
        if let Some(code) = known.filter(|c| c.is_fatal()) {
            self.closed(self.ending(CloseReason::Fatal { code }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const S: Duration = Duration::from_secs(1);

    fn drain(c: &mut Client) -> (String, Vec<Event>) {
        let mut out = Vec::new();
        while let Some(b) = c.poll_transmit() {
            out.extend_from_slice(&b);
        }
        let events = std::iter::from_fn(|| c.poll_event()).collect();
        (String::from_utf8(out).unwrap(), events)
    }

    fn logged_in(now: Instant) -> Client {
        let mut c = Client::new(ClientConfig::default(), now).unwrap();
        c.login("zhangsan").unwrap();
        c.handle_input(now, b"ok:zhangsan\n");
        drain(&mut c);
        c
    }

    #[test]
    fn commands_need_the_right_state() {
        let now = Instant::now();
        let mut c = Client::new(ClientConfig::default(), now).unwrap();
        assert_eq!(c.say("hi"), Err(UsageError::NotLoggedIn));
        assert_eq!(c.who(), Err(UsageError::NotLoggedIn));
        assert!(matches!(c.login("a b"), Err(UsageError::InvalidName(_))));
        c.login("zhangsan").unwrap();
        assert_eq!(c.state(), ClientState::LoggingIn);
        assert_eq!(c.login("x"), Err(UsageError::AlreadyLoggedIn));
        assert_eq!(c.say("hi"), Err(UsageError::NotLoggedIn));
        c.handle_input(now, b"ok:zhangsan\n");
        assert_eq!(c.state(), ClientState::LoggedIn);
        assert!(matches!(c.say("a\nb"), Err(UsageError::InvalidText(_))));
        c.say("hi").unwrap();
        c.who().unwrap();
        let (out, _) = drain(&mut c);
        assert_eq!(out, "iam:zhangsan\nmsg:hi\nwho:\n");
        c.close("done").unwrap();
        assert_eq!(c.state(), ClientState::Closing);
        assert_eq!(c.say("x"), Err(UsageError::Closed));
        assert_eq!(c.close("x"), Err(UsageError::Closed));
        let (out, events) = drain(&mut c);
        assert_eq!(out, "bye:done\n");
        assert_eq!(events, []);
        // Answers to earlier frames still arrive, then the server's bye.
        c.handle_input(now, b"users:zhangsan\nusers:\nbye:done\nmsg:a:late\n");
        let (_, events) = drain(&mut c);
        assert_eq!(
            events,
            [
                Event::Users {
                    names: vec!["zhangsan".into()]
                },
                Event::Closed {
                    reason: CloseReason::Local
                }
            ]
        );
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn say_refuses_text_whose_relay_would_be_too_long() {
        let now = Instant::now();
        let mut c = logged_in(now);
        // msg:zhangsan:TEXT\n must fit 4096 bytes.
        let fits = "x".repeat(4096 - "msg:zhangsan:\n".len());
        c.say(&fits).unwrap();
        let over = format!("{fits}x");
        assert_eq!(
            c.say(&over),
            Err(UsageError::TooLong {
                len: 4097,
                limit: 4096
            })
        );
    }

    #[test]
    fn refused_login_can_be_retried() {
        let now = Instant::now();
        let mut c = Client::new(ClientConfig::default(), now).unwrap();
        c.login("lisi").unwrap();
        c.handle_input(now, b"err:name-taken:lisi is taken\n");
        let (_, events) = drain(&mut c);
        assert!(
            matches!(&events[..], [Event::Error { code, .. }] if *code == ErrorCode::NameTaken)
        );
        assert_eq!(c.state(), ClientState::Connected);
        assert_eq!(c.name(), None);
        c.login("lisi2").unwrap();
    }

    #[test]
    fn users_frames_are_gathered_into_one_event() {
        let now = Instant::now();
        let mut c = logged_in(now);
        c.handle_input(now, b"users:a,b\nusers:c\nusers:\nusers:\n");
        let (_, events) = drain(&mut c);
        assert_eq!(
            events,
            [
                Event::Users {
                    names: vec!["a".into(), "b".into(), "c".into()]
                },
                Event::Users { names: vec![] }
            ]
        );
    }

    #[test]
    fn answers_pings_and_reports_bad_frames() {
        let now = Instant::now();
        let mut c = logged_in(now);
        c.handle_input(now, b"ping:7f\nwhat:ever\nok:again\njoin:lisi\nleft:lisi\n");
        let (out, events) = drain(&mut c);
        assert_eq!(out, "pong:7f\n");
        assert_eq!(
            events,
            [
                Event::BadFrame {
                    error: PeerError::UnknownTag { tag: "what".into() }
                },
                Event::BadFrame {
                    error: PeerError::Unexpected { tag: "ok" }
                },
                Event::Joined {
                    name: "lisi".into()
                },
                Event::Left {
                    name: "lisi".into()
                },
            ]
        );
    }

    #[test]
    fn keepalive_pings_a_silent_server_then_gives_up() {
        let t0 = Instant::now();
        let mut c = logged_in(t0);
        assert_eq!(c.poll_timeout(), Some(t0 + 30 * S));
        c.handle_timeout(t0 + 10 * S);
        assert_eq!(drain(&mut c), (String::new(), vec![]));
        c.handle_timeout(t0 + 30 * S);
        assert_eq!(drain(&mut c).0, "ping:1\n");
        assert_eq!(c.poll_timeout(), Some(t0 + 45 * S));
        // An answer keeps it alive.
        c.handle_input(t0 + 31 * S, b"pong:1\n");
        assert_eq!(c.poll_timeout(), Some(t0 + 61 * S));
        c.handle_timeout(t0 + 61 * S);
        assert_eq!(drain(&mut c).0, "ping:2\n");
        c.handle_timeout(t0 + 76 * S);
        let (out, events) = drain(&mut c);
        assert_eq!(out, "");
        assert_eq!(
            events,
            [Event::Closed {
                reason: CloseReason::Timeout
            }]
        );
        assert!(c.is_closed());
        // Nothing is emitted after close.
        c.handle_input(t0 + 77 * S, b"msg:a:b\n");
        c.handle_timeout(t0 + 200 * S);
        c.disconnected(t0 + 201 * S);
        assert_eq!(drain(&mut c), (String::new(), vec![]));
    }

    #[test]
    fn a_close_the_server_never_answers_ends_after_the_keepalive_timeout() {
        let t0 = Instant::now();
        let mut c = logged_in(t0);
        c.handle_timeout(t0 + 5 * S);
        c.close("").unwrap();
        assert_eq!(c.poll_timeout(), Some(t0 + 20 * S));
        c.handle_timeout(t0 + 19 * S);
        assert!(!c.is_closed());
        c.handle_timeout(t0 + 20 * S);
        assert_eq!(
            drain(&mut c).1,
            [Event::Closed {
                reason: CloseReason::Local
            }]
        );
        // A disconnect while closing is the end of that close, too.
        let mut c = logged_in(t0);
        c.close("").unwrap();
        c.disconnected(t0);
        assert_eq!(
            drain(&mut c).1,
            [Event::Closed {
                reason: CloseReason::Local
            }]
        );
    }

    #[test]
    fn fatal_errors_and_bye_close() {
        let now = Instant::now();
        let mut c = logged_in(now);
        c.handle_input(now, b"err:slow-consumer:read faster\nmsg:a:ignored\n");
        let (_, events) = drain(&mut c);
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[1],
            Event::Closed {
                reason: CloseReason::Fatal {
                    code: ErrorCode::SlowConsumer
                }
            }
        );
        let mut c = logged_in(now);
        c.handle_input(now, b"bye:server shutting down\n");
        let (_, events) = drain(&mut c);
        assert_eq!(
            events,
            [Event::Closed {
                reason: CloseReason::Bye {
                    reason: "server shutting down".into()
                }
            }]
        );
        let mut c = logged_in(now);
        c.disconnected(now);
        assert_eq!(
            drain(&mut c).1,
            [Event::Closed {
                reason: CloseReason::Disconnected
            }]
        );
    }
}
