//! What a client tells its application and its driver: events, close
//! reasons, states, and the outputs a driver acts on.

use std::time::Duration;

use bytes::Bytes;

use crate::error::{ErrorCode, PeerError};
use crate::text::Code;

/// Something that happened on a client session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The server accepted the login (`ok:NAME`). After a reconnect, it
    /// comes again.
    LoggedIn {
        /// The name now in use.
        name: String,
    },
    /// Someone in a room this client is in, this client included, said
    /// something.
    Message {
        /// The room (see [`Event::room`] about the default room's name).
        room: String,
        /// Who said it.
        from: String,
        /// What they said.
        text: String,
        /// The message's offset in the room's log, when the server says it
        /// (the room form; not for the seed's `msg:` frames).
        offset: Option<u64>,
        /// Replayed from the room's history: said before this client joined
        /// (history on join) or while it was away (a resume), not live. A bot
        /// answers only live messages.
        history: bool,
    },
    /// Someone joined a room (only while the room is under its presence
    /// limit), or this client did (always).
    Joined {
        /// The room.
        room: String,
        /// Their name.
        name: String,
    },
    /// Someone left a room (only while the room is under its presence
    /// limit), or this client did (always, after [`Client::part`]).
    ///
    /// [`Client::part`]: crate::Client::part
    Left {
        /// The room.
        room: String,
        /// Their name.
        name: String,
    },
    /// The complete answer to one `who()` or `who_in()`.
    Users {
        /// The room.
        room: String,
        /// Its members, this client included if it is one.
        names: Vec<String>,
    },
    /// The complete answer to one `rooms()`.
    Rooms {
        /// Every room and its number of members.
        rooms: Vec<(String, u64)>,
    },
    /// A private message, sent to this client or by it (the server echoes
    /// it to the sender).
    Private {
        /// The sender.
        from: String,
        /// The recipient.
        to: String,
        /// What was said.
        text: String,
    },
    /// The server itself said something (`notice:TEXT`, or
    /// `room-notice:ROOM:TEXT` to a room): its operator or application, not
    /// a user.
    Notice {
        /// The room it was said in, if any.
        room: Option<String>,
        /// What it said.
        text: String,
    },
    /// Messages of a room were lost between two connections: the server's
    /// history no longer reached back to where this session was
    /// (`err:history-gap`). What it still held was passed on after this
    /// event, then live traffic.
    Gap {
        /// The room.
        room: String,
        /// How many messages were lost; `None` when nobody can tell (the
        /// room's log was replaced, e.g. by a server restart without a
        /// store).
        missing: Option<u64>,
    },
    /// A message this session said may not have been delivered: its
    /// connection ended before the server's echo came back, and the session
    /// could not find out (the server keeps no history for it, or the
    /// replay after the reconnect had a gap; or the session ended). With
    /// history, a message the server never took is sent again by itself
    /// and this event does not come. Show it to the person; send it again
    /// if it matters.
    Unconfirmed {
        /// The room it was said in.
        room: String,
        /// What was said.
        text: String,
    },
    /// The server sent `err:CODE:TEXT`. A refused login (`name-taken`,
    /// `bad-name`, `login-refused`) returns the client to
    /// [`ClientState::Connected`], so it can try another name. A fatal code
    /// is followed by [`Event::Closed`].
    Error {
        /// The error code; compare it with [`ErrorCode`].
        code: Code<'static>,
        /// The server's explanation.
        text: String,
    },
    /// The server sent a frame this client could not decode or did not
    /// expect. It was skipped; the connection goes on.
    BadFrame {
        /// What was wrong with it.
        error: PeerError,
    },
    /// The connection is over. If the session reconnects,
    /// [`Event::Reconnecting`] follows at once; otherwise this is the
    /// session's last event.
    Closed {
        /// Why.
        reason: CloseReason,
    },
    /// The session will open a new connection after `delay` and log in
    /// again under the same name (see
    /// [`ClientConfig::reconnect`](crate::ClientConfig::reconnect)).
    Reconnecting {
        /// Attempts made since the last successful login, this one
        /// included.
        attempt: u32,
        /// How long until the attempt.
        delay: Duration,
    },
}

impl Event {
    /// The room an event belongs to, if it belongs to one.
    ///
    /// Frames about the server's default room carry no room name when the
    /// server speaks the seed's form (a server without rooms, or a client
    /// that did not ask for the `rooms` capability); the client then names
    /// that room with the name it learned, or the empty string if it never
    /// learned one.
    pub fn room(&self) -> Option<&str> {
        match self {
            Event::Message { room, .. }
            | Event::Joined { room, .. }
            | Event::Left { room, .. }
            | Event::Users { room, .. }
            | Event::Gap { room, .. }
            | Event::Unconfirmed { room, .. } => Some(room),
            Event::Notice { room, .. } => room.as_deref(),
            _ => None,
        }
    }
}

/// Why a client connection closed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The application called [`Client::close`](crate::Client::close), and
    /// the server answered `bye:`, closed the connection, or did neither
    /// within `keepalive.timeout`.
    Local,
    /// The server sent `bye:REASON`.
    Bye {
        /// The server's reason.
        reason: String,
    },
    /// The server sent a fatal error (`slow-consumer`, `timeout`,
    /// `server-full`, `kicked`).
    Fatal {
        /// The code.
        code: ErrorCode,
    },
    /// Keepalive: nothing arrived within the timeout after a ping.
    Timeout,
    /// The transport reported the connection lost
    /// ([`Client::disconnected`](crate::Client::disconnected)).
    Disconnected,
    /// After a reconnect, the server still held this session's name (the
    /// old connection had not timed out there yet); the session tries again
    /// later.
    NameStillHeld,
    /// Every reconnection attempt the policy allows failed.
    ReconnectFailed,
}

/// Where a client session stands.
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
    /// Between two connections: waiting to reconnect, or connecting.
    Disconnected,
    /// Closed for good; no more input is accepted.
    Closed,
}

/// What a client asks of its driver, one item at a time from
/// [`Client::poll_output`](crate::Client::poll_output).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientOutput {
    /// Write these bytes to the socket, after those handed out before.
    Transmit(Bytes),
    /// Something the application wants to know.
    Event(Event),
    /// The connection is over: close the socket once what was transmitted
    /// is written, then call
    /// [`Client::disconnected`](crate::Client::disconnected). If that takes
    /// longer than `close_linger`, [`ClientOutput::Abort`] follows.
    Disconnect,
    /// Drop the socket now, without flushing, then call
    /// [`Client::disconnected`](crate::Client::disconnected).
    Abort,
    /// Open a new connection to the server, then call
    /// [`Client::connected`](crate::Client::connected) or
    /// [`Client::connect_failed`](crate::Client::connect_failed).
    Connect,
}
