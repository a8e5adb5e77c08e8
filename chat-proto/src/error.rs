//! Error codes and error types.
//!
//! Three kinds of failure are kept apart, after h11:
//!
//! * [`PeerError`]: the peer sent something the protocol does not allow. The
//!   core answers it on the wire (a server sends `err:CODE:TEXT`) or reports
//!   it as an event (a client); the connection goes on unless the code is
//!   fatal.
//! * [`UsageError`]: the local caller asked for something impossible, such as
//!   saying a message before logging in or passing a name that is not valid.
//!   Nothing is sent.
//! * [`ConfigError`]: a configuration that cannot work, refused when a
//!   [`Client`](crate::Client) or [`Hub`](crate::Hub) is built.

use std::fmt;
use std::time::Duration;

/// The error codes of the wire protocol, as sent in `err:CODE:TEXT`.
///
/// PROTOCOL.md lists when each is sent. [`ErrorCode::is_fatal`] tells which
/// codes end the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub enum ErrorCode {
    /// `name-taken`: another client is logged in with that name.
    NameTaken,
    /// `bad-name`: the name in `iam:` is not a valid name.
    BadName,
    /// `not-logged-in`: the frame needs a login first.
    NotLoggedIn,
    /// `already-logged-in`: `iam:` on a connection that is logged in.
    AlreadyLoggedIn,
    /// `too-long`: the frame is longer than the maximum frame length.
    TooLong,
    /// `bad-utf8`: the frame is not valid UTF-8.
    BadUtf8,
    /// `bad-frame`: the frame breaks the grammar (no tag, a control
    /// character, a malformed payload).
    BadFrame,
    /// `unknown-tag`: the tag is well formed but not known.
    UnknownTag,
    /// `slow-consumer`: the client stopped reading; fatal.
    SlowConsumer,
    /// `timeout`: keepalive or login timeout; fatal.
    Timeout,
    /// `server-full`: the server is at its connection limit; fatal.
    ServerFull,
    /// `rate-limited`: the client sends faster than the rate limit allows.
    RateLimited,
    /// `kicked`: the server's operator ended the connection; fatal.
    Kicked,
    /// `login-refused`: the server's application refused the login (a
    /// wrong password, a banned name).
    LoginRefused,
    /// `no-such-room`: the frame names a room that does not exist.
    NoSuchRoom,
    /// `not-in-room`: the frame needs membership of a room the connection
    /// is not in.
    NotInRoom,
    /// `already-in-room`: `join:` of a room the connection is in.
    AlreadyInRoom,
    /// `no-such-user`: `pm:` to a name nobody is logged in with.
    NoSuchUser,
    /// `too-many-rooms`: the connection is in as many rooms as it may be,
    /// or the server holds as many rooms as it may.
    TooManyRooms,
    /// `room-full`: the room holds as many members as it may.
    RoomFull,
    /// `too-many-connections`: the connection's source address has as many
    /// connections open as it may; fatal.
    TooManyConnections,
    /// `connection-rate`: the source address opened connections faster
    /// than it may; fatal.
    ConnectionRate,
    /// `retry-later`: too many login attempts (or failed logins) from this
    /// address or for this name; the text says when to retry.
    RetryLater,
    /// `insecure`: a secret sent over a connection that is neither
    /// encrypted nor from loopback; it was not looked at.
    Insecure,
    /// `history-gap`: a `resume:` could not be served whole; the text
    /// starts `ROOM:MISSING:`, where `MISSING` is how many messages are lost
    /// (`?` when the room's log changed and nobody can tell). What is still
    /// there follows, then live traffic.
    HistoryGap,
}

impl ErrorCode {
    /// Every known code, in the order PROTOCOL.md lists them.
    pub const ALL: [ErrorCode; 25] = [
        ErrorCode::NameTaken,
        ErrorCode::BadName,
        ErrorCode::NotLoggedIn,
        ErrorCode::AlreadyLoggedIn,
        ErrorCode::TooLong,
        ErrorCode::BadUtf8,
        ErrorCode::BadFrame,
        ErrorCode::UnknownTag,
        ErrorCode::SlowConsumer,
        ErrorCode::Timeout,
        ErrorCode::ServerFull,
        ErrorCode::RateLimited,
        ErrorCode::Kicked,
        ErrorCode::LoginRefused,
        ErrorCode::NoSuchRoom,
        ErrorCode::NotInRoom,
        ErrorCode::AlreadyInRoom,
        ErrorCode::NoSuchUser,
        ErrorCode::TooManyRooms,
        ErrorCode::RoomFull,
        ErrorCode::TooManyConnections,
        ErrorCode::ConnectionRate,
        ErrorCode::RetryLater,
        ErrorCode::Insecure,
        ErrorCode::HistoryGap,
    ];

    /// The code as it appears on the wire, e.g. `"name-taken"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NameTaken => "name-taken",
            ErrorCode::BadName => "bad-name",
            ErrorCode::NotLoggedIn => "not-logged-in",
            ErrorCode::AlreadyLoggedIn => "already-logged-in",
            ErrorCode::TooLong => "too-long",
            ErrorCode::BadUtf8 => "bad-utf8",
            ErrorCode::BadFrame => "bad-frame",
            ErrorCode::UnknownTag => "unknown-tag",
            ErrorCode::SlowConsumer => "slow-consumer",
            ErrorCode::Timeout => "timeout",
            ErrorCode::ServerFull => "server-full",
            ErrorCode::RateLimited => "rate-limited",
            ErrorCode::Kicked => "kicked",
            ErrorCode::LoginRefused => "login-refused",
            ErrorCode::NoSuchRoom => "no-such-room",
            ErrorCode::NotInRoom => "not-in-room",
            ErrorCode::AlreadyInRoom => "already-in-room",
            ErrorCode::NoSuchUser => "no-such-user",
            ErrorCode::TooManyRooms => "too-many-rooms",
            ErrorCode::RoomFull => "room-full",
            ErrorCode::TooManyConnections => "too-many-connections",
            ErrorCode::ConnectionRate => "connection-rate",
            ErrorCode::RetryLater => "retry-later",
            ErrorCode::Insecure => "insecure",
            ErrorCode::HistoryGap => "history-gap",
        }
    }

    /// Looks up a code by its wire form; `None` for a code this version does
    /// not know (a newer server may send codes an older client does not).
    pub fn from_wire(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == code)
    }

    /// Whether the server closes the connection after sending this code.
    pub const fn is_fatal(self) -> bool {
        matches!(
            self,
            ErrorCode::SlowConsumer
                | ErrorCode::Timeout
                | ErrorCode::ServerFull
                | ErrorCode::Kicked
                | ErrorCode::TooManyConnections
                | ErrorCode::ConnectionRate
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The peer broke the protocol.
///
/// A server answers each of these with `err:CODE:TEXT`, where `CODE` is
/// [`PeerError::code`] and `TEXT` is the error's `Display`; a client reports
/// it as [`Event::BadFrame`](crate::Event::BadFrame). None of them is fatal:
/// the offending frame is skipped and decoding resumes at the next line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// A frame longer than the maximum frame length (which counts the
    /// terminating LF, and the CR before it if any). It is skipped up to the
    /// next LF.
    #[error("frame longer than {limit} bytes")]
    TooLong {
        /// The maximum frame length in force.
        limit: usize,
    },
    /// The frame is not valid UTF-8.
    #[error("frame is not valid UTF-8")]
    BadUtf8,
    /// The frame holds a control character other than TAB (or a CR that
    /// does not stand just before the LF).
    #[error("control character in frame")]
    ControlChar,
    /// The frame does not start with `tag:`, where a tag is 1 to 16 of
    /// `a-z`, `0-9` and `-`.
    #[error("frame does not start with tag:")]
    MissingTag,
    /// The tag is well formed but not one this side knows.
    #[error("unknown tag {tag:?}")]
    UnknownTag {
        /// The tag as received.
        tag: String,
    },
    /// The payload does not fit the grammar of its tag.
    #[error("malformed {tag} frame: {reason}")]
    BadPayload {
        /// The frame's tag.
        tag: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `iam:` carried a name that is not valid.
    #[error("{0}")]
    BadName(#[from] InvalidName),
    /// A well-formed frame that makes no sense in the current state, such as
    /// `ok:` when no login is pending.
    #[error("unexpected {tag} frame")]
    Unexpected {
        /// The frame's tag.
        tag: &'static str,
    },
    /// A listing (the answer to `who:`) held more names than the receiver
    /// takes; it was dropped.
    #[error("listing longer than {limit} names")]
    TooManyNames {
        /// The most names the receiver takes.
        limit: usize,
    },
}

impl PeerError {
    /// The wire error code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            PeerError::TooLong { .. } => ErrorCode::TooLong,
            PeerError::BadUtf8 => ErrorCode::BadUtf8,
            PeerError::ControlChar
            | PeerError::MissingTag
            | PeerError::BadPayload { .. }
            | PeerError::Unexpected { .. }
            | PeerError::TooManyNames { .. } => ErrorCode::BadFrame,
            PeerError::UnknownTag { .. } => ErrorCode::UnknownTag,
            PeerError::BadName(_) => ErrorCode::BadName,
        }
    }
}

/// Why a string is not a valid name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidName {
    /// The name is empty.
    #[error("name is empty")]
    Empty,
    /// The name has more than 32 characters.
    #[error("name longer than 32 characters")]
    TooLong,
    /// The name holds a character that is not a letter, a digit, `_`, `-`
    /// or `.`.
    #[error("name may hold only letters, digits, '_', '-' and '.'")]
    BadChar,
}

/// Why a string is not valid text (a message, a reason or an error text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidText {
    /// The text holds a control character other than TAB; LF and CR are
    /// control characters, so text is always a single line.
    #[error("text holds a control character")]
    ControlChar,
    /// Empty where it must not be (a secret).
    #[error("text is empty")]
    Empty,
}

/// Why a string is not a valid ping token or error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidToken {
    /// Longer than the grammar allows.
    #[error("token too long")]
    TooLong,
    /// A character outside the grammar.
    #[error("token holds a character outside its grammar")]
    BadChar,
    /// Empty where the grammar needs at least one character.
    #[error("token is empty")]
    Empty,
}

/// The local caller asked for something the protocol state does not allow.
///
/// Nothing was queued or sent; the connection is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// The operation needs a completed login.
    #[error("not logged in")]
    NotLoggedIn,
    /// `login` while a login is pending or done.
    #[error("already logged in or logging in")]
    AlreadyLoggedIn,
    /// The connection is closed.
    #[error("connection is closed")]
    Closed,
    /// Between connections: the session waits to reconnect.
    #[error("not connected (reconnecting)")]
    NotConnected,
    /// The transport's outgoing buffer is full (the server reads slower
    /// than the application sends): wait and try again.
    #[error("outgoing buffer full; try again once it drains")]
    WouldBlock,
    /// The name is not valid.
    #[error("invalid name: {0}")]
    InvalidName(#[from] InvalidName),
    /// The text is not valid.
    #[error("invalid text: {0}")]
    InvalidText(#[from] InvalidText),
    /// [`Hub::restore`](crate::Hub::restore) cannot take this history now.
    #[error("cannot restore the room: {0}")]
    NotRestorable(&'static str),
    /// The frame would be longer than the maximum frame length.
    #[error("frame of {len} bytes exceeds the maximum of {limit}")]
    TooLong {
        /// The encoded length of the frame, LF included.
        len: usize,
        /// The maximum frame length in force.
        limit: usize,
    },
}

/// A configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A duration that must be positive is zero.
    #[error("{field} must be greater than zero")]
    ZeroDuration {
        /// The field's name.
        field: &'static str,
    },
    /// A duration longer than the core accepts (one day).
    #[error("{field} must be at most {max:?}")]
    DurationTooLong {
        /// The field's name.
        field: &'static str,
        /// The largest accepted value.
        max: Duration,
    },
    /// `max_frame_len` outside the accepted range.
    #[error("max_frame_len must be between {min} and {max} bytes, not {value}")]
    MaxFrameLen {
        /// The value given.
        value: usize,
        /// The smallest accepted value.
        min: usize,
        /// The largest accepted value.
        max: usize,
    },
    /// `outbound_limit` too small for one frame of `max_frame_len` plus the
    /// 256 bytes kept for the frame that explains a close.
    #[error("outbound_limit ({value}) must be at least max_frame_len ({max_frame_len}) + 256")]
    OutboundLimit {
        /// The value given.
        value: usize,
        /// The maximum frame length in the same config.
        max_frame_len: usize,
    },
    /// A count that must be positive is zero.
    #[error("{field} must be greater than zero")]
    Zero {
        /// The field's name.
        field: &'static str,
    },
    /// A room name that is not valid (room names follow the rules of user
    /// names).
    #[error("{name:?} is not a valid room name")]
    BadRoomName {
        /// The name given.
        name: String,
    },
    /// History bytes above half the room backlog: a resume could pause the
    /// room's senders.
    #[error("history.bytes ({value}) must be at most half of room_backlog ({room_backlog})")]
    HistoryBytes {
        /// The value given.
        value: usize,
        /// The room backlog in the same config.
        room_backlog: usize,
    },
    /// A byte bound smaller than one frame.
    #[error("{field} ({value}) must be at least max_frame_len ({max_frame_len})")]
    BelowFrameLen {
        /// The field's name.
        field: &'static str,
        /// The value given.
        value: usize,
        /// The maximum frame length in the same config.
        max_frame_len: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_their_wire_form() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_wire(code.as_str()), Some(code));
            assert_eq!(code.to_string(), code.as_str());
        }
        assert_eq!(ErrorCode::from_wire("no-such-code"), None);
    }

    #[test]
    fn exactly_six_codes_are_fatal() {
        let fatal: Vec<_> = ErrorCode::ALL
            .into_iter()
            .filter(|c| c.is_fatal())
            .collect();
        assert_eq!(
            fatal,
            [
                ErrorCode::SlowConsumer,
                ErrorCode::Timeout,
                ErrorCode::ServerFull,
                ErrorCode::Kicked,
                ErrorCode::TooManyConnections,
                ErrorCode::ConnectionRate
            ]
        );
    }

    #[test]
    fn peer_errors_map_to_codes() {
        assert_eq!(PeerError::TooLong { limit: 9 }.code(), ErrorCode::TooLong);
        assert_eq!(PeerError::BadUtf8.code(), ErrorCode::BadUtf8);
        assert_eq!(PeerError::ControlChar.code(), ErrorCode::BadFrame);
        assert_eq!(PeerError::MissingTag.code(), ErrorCode::BadFrame);
        assert_eq!(
            PeerError::UnknownTag { tag: "x".into() }.code(),
            ErrorCode::UnknownTag
        );
        assert_eq!(
            PeerError::BadName(InvalidName::Empty).code(),
            ErrorCode::BadName
        );
        assert_eq!(
            PeerError::TooLong { limit: 4096 }.to_string(),
            "frame longer than 4096 bytes"
        );
    }
}
