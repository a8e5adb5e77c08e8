//! Configuration of clients and hubs, with defaults and validation.
//!
//! Every limit of the protocol has a default here, a field to change it, and
//! a check that refuses values that cannot work. [`Client::new`] and
//! [`Hub::new`] validate their config, so an invalid one never runs.
//!
//! ```
//! use std::time::Duration;
//! use chat_proto::{ConfigError, ServerConfig};
//!
//! let mut config = ServerConfig::default();
//! config.max_connections = 20_000;
//! config.keepalive.idle = Duration::from_secs(60);
//! assert!(config.validate().is_ok());
//!
//! config.keepalive.timeout = Duration::ZERO;
//! assert!(matches!(config.validate(), Err(ConfigError::ZeroDuration { .. })));
//! ```
//!
//! [`Client::new`]: crate::Client::new
//! [`Hub::new`]: crate::Hub::new

use std::time::Duration;

use crate::error::ConfigError;
use crate::reconnect::ReconnectPolicy;

/// The default maximum frame length in bytes, LF included.
pub const DEFAULT_MAX_FRAME_LEN: usize = 4096;
/// The smallest maximum frame length accepted: room for any frame whose
/// payload is a name of 32 characters of 4 bytes each. (Room names are
/// checked against the limit when a room is created: see
/// [`ServerConfig::max_room_name_len`].)
pub const MIN_MAX_FRAME_LEN: usize = 256;
/// Bytes kept free under a connection's `outbound_limit` for the frame that
/// explains a close (`err:slow-consumer`, `err:timeout`).
pub(crate) const CLOSE_RESERVE: usize = 256;
/// The largest maximum frame length accepted.
pub const MAX_MAX_FRAME_LEN: usize = 16 << 20;
/// The longest duration any timer may be set to.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// Keepalive timing, the same on both sides.
///
/// After `idle` without receiving anything, a side sends `ping:TOKEN`; if
/// nothing at all arrives within `timeout` of that ping, the peer is declared
/// dead. A silent peer is thus detected after `idle + timeout`; a live one is
/// never dropped, because the two phases follow one another (there is no
/// interval that could exceed a timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Silence after which a ping is sent. Default 30 s.
    pub idle: Duration,
    /// How long to wait for anything after a ping. Default 15 s.
    pub timeout: Duration,
}

impl Keepalive {
    /// Keepalive with the given idle time and ping timeout.
    pub const fn new(idle: Duration, timeout: Duration) -> Self {
        Keepalive { idle, timeout }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        check_duration("keepalive.idle", self.idle)?;
        check_duration("keepalive.timeout", self.timeout)
    }
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive::new(Duration::from_secs(30), Duration::from_secs(15))
    }
}

/// A per-connection limit on `msg:` and `who:` frames: a token bucket that
/// holds `burst` frames and refills at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained frames per second.
    pub per_second: u32,
    /// Frames that may be sent at once after a quiet spell.
    pub burst: u32,
}

impl RateLimit {
    /// A limit of `per_second` with a burst of the same size.
    pub const fn per_second(per_second: u32) -> Self {
        RateLimit {
            per_second,
            burst: per_second,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.per_second == 0 {
            return Err(ConfigError::Zero {
                field: "rate_limit.per_second",
            });
        }
        if self.burst == 0 {
            return Err(ConfigError::Zero {
                field: "rate_limit.burst",
            });
        }
        Ok(())
    }
}

/// Who decides whether a login is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LoginMode {
    /// The hub accepts any valid, free name at once (the default).
    #[default]
    Open,
    /// The hub holds the name and asks the application
    /// ([`HubEvent::LoginRequested`](crate::HubEvent::LoginRequested)),
    /// which answers with [`Hub::approve_login`](crate::Hub::approve_login)
    /// or [`Hub::refuse_login`](crate::Hub::refuse_login) when it has
    /// decided (after checking a password off the event loop, say). The
    /// hub does not block meanwhile, and the login timeout still applies.
    Application,
}

/// Configuration of a [`Client`](crate::Client).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Maximum frame length, LF included, for frames sent and received.
    /// Default 4096.
    pub max_frame_len: usize,
    /// Keepalive timing. Default: ping after 30 s idle, dead 15 s later.
    pub keepalive: Keepalive,
    /// Reconnect after losing a connection, and how; `None` never does.
    /// Default: never.
    pub reconnect: Option<ReconnectPolicy>,
    /// Seeds the reconnect jitter, so that clients that lost the same
    /// server at once do not all come back at once. The core reads no
    /// entropy source: transports set it at random. Default 0.
    pub jitter_seed: u64,
    /// How long the driver may take to flush and close a socket the client
    /// is done with before the client asks to drop it. Default 1 s.
    pub close_linger: Duration,
    /// The most names one `who:` answer may hold; a longer listing (a
    /// server gone wrong or hostile) is dropped and reported as a bad
    /// frame. Default 100,000.
    pub max_listing: usize,
    /// Ask the server for the `rooms` capability before logging in, so
    /// that the default room is reported like every other room, with its
    /// name and message offsets. A server that does not know capabilities
    /// is then spoken to in the seed's form. Default: on.
    pub rooms: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            keepalive: Keepalive::default(),
            reconnect: None,
            jitter_seed: 0,
            close_linger: Duration::from_secs(1),
            max_listing: 100_000,
            rooms: true,
        }
    }
}

impl ClientConfig {
    /// The default configuration, without the `rooms` capability: the
    /// client speaks exactly the seed's protocol (`iam:`, `msg:`, `who:`).
    pub fn plain() -> Self {
        ClientConfig {
            rooms: false,
            ..ClientConfig::default()
        }
    }

    /// Checks that the configuration can work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_frame_len(self.max_frame_len)?;
        self.keepalive.validate()?;
        check_duration("close_linger", self.close_linger)?;
        if self.max_listing == 0 {
            return Err(ConfigError::Zero {
                field: "max_listing",
            });
        }
        if let Some(policy) = &self.reconnect {
            check_duration("reconnect.initial", policy.initial)?;
            check_duration("reconnect.max", policy.max)?;
        }
        Ok(())
    }
}

/// Configuration of a [`Hub`](crate::Hub), the server side.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Maximum frame length, LF included, for frames sent and received.
    /// Default 4096.
    pub max_frame_len: usize,
    /// Keepalive timing. Default: ping after 30 s idle, dead 15 s later.
    pub keepalive: Keepalive,
    /// A connection that has not logged in this long after it was accepted
    /// is sent `err:timeout` and closed. Default 10 s.
    pub login_timeout: Duration,
    /// Connections beyond this many are sent `err:server-full` and closed.
    /// Default 10,000.
    pub max_connections: usize,
    /// Bytes queued for a connection and not yet reported written, beyond
    /// which it is sent `err:slow-consumer` and closed. Default 1 MiB.
    pub outbound_limit: usize,
    /// `join:` and `left:` are broadcast only while the room holds at most
    /// this many clients. Default 1,000.
    pub presence_limit: usize,
    /// Limit on the frames of each connection that make the server work
    /// for others (`msg:`, `say:`, `pm:`, `who:`, `join:`, `part:`,
    /// `rooms:`). Beyond it the connection's input pauses until the next
    /// frame is due: the sender is slowed, nothing is refused. `None` turns
    /// it off. Default: 20 a second, in bursts of up to 200.
    pub rate_limit: Option<RateLimit>,
    /// Who decides logins. Default: [`LoginMode::Open`].
    pub login: LoginMode,
    /// How long a connection the hub ended may take to flush its last
    /// frames before the hub asks the adapter to drop it
    /// ([`Output::Abort`](crate::Output::Abort)). Default 2 s.
    pub close_linger: Duration,
    /// After [`Hub::shutdown`](crate::Hub::shutdown), how long connections
    /// may take to flush `bye:` before the hub asks for every remaining
    /// socket to be dropped. Default 5 s.
    pub shutdown_grace: Duration,
    /// Report every relayed message as
    /// [`HubEvent::Message`](crate::HubEvent::Message) (private ones as
    /// [`HubEvent::PrivateMessage`](crate::HubEvent::PrivateMessage)) and
    /// every join and part of a room as
    /// [`HubEvent::Joined`](crate::HubEvent::Joined) and
    /// [`HubEvent::Parted`](crate::HubEvent::Parted), for applications that
    /// store, moderate or answer them. Default: off (each event copies names
    /// and text).
    pub activity_events: bool,
    /// The room every connection joins when it logs in (PROTOCOL.md: the
    /// seed's room). It always exists. Default `lobby`.
    pub default_room: String,
    /// Most rooms on the server, the default room included. Default 1,000.
    pub max_rooms: usize,
    /// Most rooms one connection may be in, the default room included.
    /// Default 20.
    pub rooms_per_user: usize,
    /// Most members of one room other than the default room (which holds
    /// everyone logged in, up to `max_connections`). Default 10,000.
    pub room_members: usize,
    /// Keep rooms that empty (with their message offsets) instead of
    /// removing them. Default: off.
    pub persistent_rooms: bool,
    /// Seeds the epochs of room logs, so that a restarted server's rooms
    /// are told apart from the last run's. The core reads no entropy source:
    /// servers set it at random. Default 0.
    pub seed: u64,
    /// Most bytes handed out to a connection and not yet reported written;
    /// the rest waits in the hub (room messages in the room, shared by every
    /// member). Default 256 KiB.
    pub send_window: usize,
    /// Most bytes a room holds for its slowest member (counted once,
    /// however many members share them). Past it, connections sending to
    /// the room have their input paused until it drains to half; a member
    /// that holds the room past it for `write_timeout` is closed as a slow
    /// consumer. Default 16 MiB.
    pub room_backlog: usize,
    /// Past this many bytes of private output owed to a connection (answers
    /// to its `who:`, its pongs), its input pauses until half is written: a
    /// pipelining client is slowed, never dropped. Default 256 KiB.
    pub pause_backlog: usize,
    /// A connection with output pending whose socket takes nothing for this
    /// long is closed as a slow consumer. Default 10 s.
    pub write_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            keepalive: Keepalive::default(),
            login_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            outbound_limit: 1 << 20,
            presence_limit: 1000,
            rate_limit: Some(RateLimit {
                per_second: 20,
                burst: 200,
            }),
            login: LoginMode::Open,
            close_linger: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(5),
            activity_events: false,
            default_room: "lobby".into(),
            max_rooms: 1000,
            rooms_per_user: 20,
            room_members: 10_000,
            persistent_rooms: false,
            seed: 0,
            send_window: 256 << 10,
            room_backlog: 16 << 20,
            pause_backlog: 256 << 10,
            write_timeout: Duration::from_secs(10),
        }
    }
}

impl ServerConfig {
    /// The longest room name (in bytes) this configuration takes: one whose
    /// frames with the longest user name (such as `members:ROOM:NAME`)
    /// still fit `max_frame_len`. With the default 4096 every room name
    /// fits; with 256, names of up to 118 bytes do.
    pub fn max_room_name_len(&self) -> usize {
        self.max_frame_len - 138
    }

    /// Checks that the configuration can work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_frame_len(self.max_frame_len)?;
        self.keepalive.validate()?;
        check_duration("login_timeout", self.login_timeout)?;
        check_duration("close_linger", self.close_linger)?;
        check_duration("shutdown_grace", self.shutdown_grace)?;
        if self.max_connections == 0 {
            return Err(ConfigError::Zero {
                field: "max_connections",
            });
        }
        if self.max_connections > u32::MAX as usize / 2 {
            return Err(ConfigError::Zero {
                field: "max_connections (too large)",
            });
        }
        if self.outbound_limit < self.max_frame_len + CLOSE_RESERVE {
            return Err(ConfigError::OutboundLimit {
                value: self.outbound_limit,
                max_frame_len: self.max_frame_len,
            });
        }
        if let Some(rate) = &self.rate_limit {
            rate.validate()?;
        }
        if crate::text::Name::new(self.default_room.as_str()).is_err()
            || self.default_room.len() > self.max_room_name_len()
        {
            return Err(ConfigError::BadRoomName {
                name: self.default_room.clone(),
            });
        }
        for (field, value) in [
            ("max_rooms", self.max_rooms),
            ("rooms_per_user", self.rooms_per_user),
            ("room_members", self.room_members),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero { field });
            }
        }
        for (field, value) in [
            ("send_window", self.send_window),
            ("room_backlog", self.room_backlog),
            ("pause_backlog", self.pause_backlog),
        ] {
            if value < self.max_frame_len {
                return Err(ConfigError::BelowFrameLen {
                    field,
                    value,
                    max_frame_len: self.max_frame_len,
                });
            }
        }
        check_duration("write_timeout", self.write_timeout)?;
        Ok(())
    }
}

fn check_frame_len(value: usize) -> Result<(), ConfigError> {
    if !(MIN_MAX_FRAME_LEN..=MAX_MAX_FRAME_LEN).contains(&value) {
        return Err(ConfigError::MaxFrameLen {
            value,
            min: MIN_MAX_FRAME_LEN,
            max: MAX_MAX_FRAME_LEN,
        });
    }
    Ok(())
}

fn check_duration(field: &'static str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() {
        return Err(ConfigError::ZeroDuration { field });
    }
    if value > MAX_DURATION {
        return Err(ConfigError::DurationTooLong {
            field,
            max: MAX_DURATION,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let s = ServerConfig::default();
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.max_frame_len, 4096);
        assert_eq!(s.keepalive.idle, Duration::from_secs(30));
        assert_eq!(s.keepalive.timeout, Duration::from_secs(15));
        assert_eq!(s.login_timeout, Duration::from_secs(10));
        assert_eq!(s.outbound_limit, 1 << 20);
        assert_eq!(s.presence_limit, 1000);
        assert_eq!(
            s.rate_limit,
            Some(RateLimit {
                per_second: 20,
                burst: 200
            })
        );
        assert_eq!(s.login, LoginMode::Open);
        assert_eq!(s.default_room, "lobby");
        assert_eq!(
            (s.max_rooms, s.rooms_per_user, s.room_members),
            (1000, 20, 10_000)
        );
        assert_eq!(
            (s.send_window, s.room_backlog, s.pause_backlog),
            (256 << 10, 16 << 20, 256 << 10)
        );
        assert_eq!(s.write_timeout, Duration::from_secs(10));
        assert_eq!(s.close_linger, Duration::from_secs(2));
        assert_eq!(s.shutdown_grace, Duration::from_secs(5));
        assert!(!s.activity_events);
        assert_eq!(ClientConfig::default().validate(), Ok(()));
    }

    #[test]
    fn invalid_values_are_refused() {
        let mut c = ClientConfig::default();
        c.keepalive.timeout = Duration::ZERO;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::ZeroDuration {
                field: "keepalive.timeout"
            })
        ));
        let mut c = ClientConfig::default();
        c.keepalive.idle = Duration::from_secs(2 * 24 * 3600);
        assert!(matches!(
            c.validate(),
            Err(ConfigError::DurationTooLong { .. })
        ));
        let c = ClientConfig {
            max_frame_len: 100,
            ..ClientConfig::default()
        };
        assert!(matches!(c.validate(), Err(ConfigError::MaxFrameLen { .. })));

        let bad: [fn(&mut ServerConfig); 14] = [
            |s| s.default_room = "no room".into(),
            |s| s.max_rooms = 0,
            |s| s.rooms_per_user = 0,
            |s| s.room_members = 0,
            |s| s.send_window = 100,
            |s| s.write_timeout = Duration::ZERO,
            |s| s.login_timeout = Duration::ZERO,
            |s| s.close_linger = Duration::ZERO,
            |s| s.shutdown_grace = Duration::ZERO,
            |s| s.max_connections = 0,
            |s| s.outbound_limit = 100,
            |s| s.rate_limit = Some(RateLimit::per_second(0)),
            |s| {
                s.rate_limit = Some(RateLimit {
                    per_second: 1,
                    burst: 0,
                })
            },
            |s| s.max_frame_len = MAX_MAX_FRAME_LEN + 1,
        ];
        for change in bad {
            let mut s = ServerConfig::default();
            change(&mut s);
            assert!(s.validate().is_err(), "{s:?}");
        }
    }
}
