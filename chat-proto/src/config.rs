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

use std::net::IpAddr;
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

/// So many events per interval: a token bucket that holds `count` and
/// refills `count` every `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    /// Events allowed at once, and per interval.
    pub count: u32,
    /// The interval.
    pub per: Duration,
}

impl Allowance {
    /// `count` events every `per`.
    pub const fn new(count: u32, per: Duration) -> Self {
        Allowance { count, per }
    }

    fn validate(&self, field: &'static str) -> Result<(), ConfigError> {
        if self.count == 0 {
            return Err(ConfigError::Zero { field });
        }
        check_duration(field, self.per)
    }
}

/// A range of addresses: an address and how many leading bits of it
/// matter (`127.0.0.0/8`, `::1/128`, `2001:db8::/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRange {
    /// The first address of the range.
    pub addr: IpAddr,
    /// Leading bits that must match: at most 32 for IPv4, 128 for IPv6.
    pub prefix: u8,
}

impl AddressRange {
    /// Whether `ip` is in the range (an IPv4 address mapped into IPv6 is
    /// compared as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(range), IpAddr::V4(ip)) => {
                let bits = u32::from(self.prefix.min(32));
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                u32::from(range) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(range), IpAddr::V6(ip)) => {
                let bits = u32::from(self.prefix.min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                u128::from(range) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }

    /// The loopback ranges, `127.0.0.0/8` and `::1/128`.
    pub fn loopback() -> Vec<AddressRange> {
        vec![
            AddressRange {
                addr: IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 0)),
                prefix: 8,
            },
            AddressRange {
                addr: IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
                prefix: 128,
            },
        ]
    }
}

impl std::str::FromStr for AddressRange {
    type Err = String;

    /// `ADDR/BITS`, or `ADDR` alone for one address.
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, bits)) => (addr, Some(bits)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|e| format!("{s}: {e}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(bits) => bits
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("{s}: the prefix must be 0 to {max}"))?,
            None => max,
        };
        Ok(AddressRange { addr, prefix })
    }
}

/// What one source address may do (IPv6 addresses are counted per /64,
/// the block one subscriber usually holds). Past a limit a connection is
/// refused (`err:too-many-connections`, `err:connection-rate`, both fatal)
/// or a login attempt is answered `err:retry-later` (not fatal). The
/// bookkeeping holds at most `tracked` addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AddressLimits {
    /// Connections open at once from one address. Default 16 (ergo's
    /// default; ngircd's is 5).
    pub max_connections: usize,
    /// New connections from one address. Default 30 a minute.
    pub connects: Allowance,
    /// Login attempts (`iam:`) from one address. Default 30 a minute.
    pub logins: Allowance,
    /// Addresses exempt from these limits. Default: loopback (so local
    /// tools and load tests are not limited).
    pub exempt: Vec<AddressRange>,
    /// Most addresses remembered (those with open connections always are;
    /// the others are forgotten, oldest first, beyond it). Default 65,536.
    pub tracked: usize,
}

impl Default for AddressLimits {
    fn default() -> Self {
        AddressLimits {
            max_connections: 16,
            connects: Allowance::new(30, Duration::from_secs(60)),
            logins: Allowance::new(30, Duration::from_secs(60)),
            exempt: AddressRange::loopback(),
            tracked: 65_536,
        }
    }
}

impl AddressLimits {
    /// Whether `ip` is exempt.
    pub fn is_exempt(&self, ip: IpAddr) -> bool {
        self.exempt.iter().any(|r| r.contains(ip))
    }
}

/// How failed logins slow the next ones down, per name and per address:
/// after the n-th failure in a row, the next attempt waits
/// `first_delay × 2^(n-1)`, at most `max_delay`. A wait up to `hold` is
/// served by holding the attempt (the connection's input pauses); a longer
/// one is answered `err:retry-later` with the time left. Success resets the
/// count; so does a quiet `forget_after`. The same applies whether or not a
/// name is registered, so neither the answer nor its timing tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailedLogins {
    /// The wait after one failure. Default 1 s.
    pub first_delay: Duration,
    /// The longest wait. Default 60 s.
    pub max_delay: Duration,
    /// Waits up to this long are served by holding the attempt. Default
    /// 5 s.
    pub hold: Duration,
    /// Failures older than this are forgotten. Default 15 minutes.
    pub forget_after: Duration,
    /// Most names remembered (oldest forgotten first). Default 65,536.
    pub tracked: usize,
}

impl Default for FailedLogins {
    fn default() -> Self {
        FailedLogins {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            hold: Duration::from_secs(5),
            forget_after: Duration::from_secs(15 * 60),
            tracked: 65_536,
        }
    }
}

/// How much of each room's past the hub keeps, for clients that resume
/// (`resume:`) or join with the `rooms` capability.
///
/// History is the tail of the room's log of `said:` frames, kept by count
/// and by bytes, whichever bound is hit first; a replay is read from it
/// through the same windows as live traffic, and its bytes stay under half
/// the room backlog, so a resume never pauses the room's senders. A room
/// with history stays when its last member leaves (so that members who come
/// back can resume) until `max_rooms` is reached, when the one idle the
/// longest goes. Memory: at most `max_rooms × bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct History {
    /// Messages kept per room; 0 keeps none (no history, no resume).
    /// Default 1,000.
    pub messages: usize,
    /// Bytes of `said:` frames kept per room; at most half of
    /// `room_backlog`. Default 256 KiB.
    pub bytes: usize,
    /// Messages replayed to a client that joins a room (or logs in) with
    /// the `rooms` capability and does not resume. Default 20: a screen of
    /// context for someone who arrives, cheap (a slice of the room's log)
    /// even when thousands join at once. 0 sends none.
    pub on_join: usize,
    /// Most messages replayed for one `resume:`; older ones are reported
    /// missing. Default 1,000.
    pub max_replay: usize,
    /// Whether messages wait to be stored before anyone is handed them:
    /// the hub emits [`Output::Store`](crate::Output::Store) for each, and
    /// hands out a room's messages up to what the application reports
    /// stored with [`Hub::stored`](crate::Hub::stored). So every message a
    /// sender saw echoed is in the store. Default: off.
    pub durable: bool,
}

impl Default for History {
    fn default() -> Self {
        History {
            messages: 1000,
            bytes: 256 << 10,
            on_join: 20,
            max_replay: 1000,
            durable: false,
        }
    }
}

impl History {
    /// No history: nothing kept, nothing replayed.
    pub fn none() -> History {
        History {
            messages: 0,
            on_join: 0,
            ..History::default()
        }
    }

    /// Whether any history is kept.
    pub fn is_kept(&self) -> bool {
        self.messages > 0
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
    /// What one source address may do.
    pub addresses: AddressLimits,
    /// How failed logins slow down the next attempts.
    pub failed_logins: FailedLogins,
    /// Take a secret (`iam:NAME:SECRET`) over a connection that is neither
    /// encrypted nor from loopback. Default: no (`err:insecure`).
    pub secrets_in_clear: bool,
    /// What the rooms remember of their past.
    pub history: History,
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
            addresses: AddressLimits::default(),
            failed_logins: FailedLogins::default(),
            secrets_in_clear: false,
            history: History::default(),
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
        let h = &self.history;
        if h.durable && !h.is_kept() {
            return Err(ConfigError::Zero {
                field: "history.messages (durable history keeps some)",
            });
        }
        if h.is_kept() && h.bytes > self.room_backlog / 2 {
            return Err(ConfigError::HistoryBytes {
                value: h.bytes,
                room_backlog: self.room_backlog,
            });
        }
        if h.is_kept() && h.bytes < self.max_frame_len {
            return Err(ConfigError::BelowFrameLen {
                field: "history.bytes",
                value: h.bytes,
                max_frame_len: self.max_frame_len,
            });
        }
        let a = &self.addresses;
        if a.max_connections == 0 {
            return Err(ConfigError::Zero {
                field: "addresses.max_connections",
            });
        }
        if a.tracked == 0 {
            return Err(ConfigError::Zero {
                field: "addresses.tracked",
            });
        }
        a.connects.validate("addresses.connects")?;
        a.logins.validate("addresses.logins")?;
        let f = &self.failed_logins;
        check_duration("failed_logins.first_delay", f.first_delay)?;
        check_duration("failed_logins.max_delay", f.max_delay)?;
        check_duration("failed_logins.forget_after", f.forget_after)?;
        if f.tracked == 0 {
            return Err(ConfigError::Zero {
                field: "failed_logins.tracked",
            });
        }
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
    fn address_ranges_contain_what_they_should() {
        let r: AddressRange = "10.1.0.0/16".parse().unwrap();
        assert!(r.contains("10.1.200.3".parse().unwrap()));
        assert!(!r.contains("10.2.0.1".parse().unwrap()));
        assert!(r.contains("::ffff:10.1.0.9".parse().unwrap()));
        let six: AddressRange = "2001:db8::/32".parse().unwrap();
        assert!(six.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!six.contains("2001:db9::5".parse().unwrap()));
        let one: AddressRange = "192.0.2.7".parse().unwrap();
        assert_eq!(one.prefix, 32);
        assert!("10.0.0.0/33".parse::<AddressRange>().is_err());
        assert!("nonsense".parse::<AddressRange>().is_err());
        let limits = AddressLimits::default();
        assert!(limits.is_exempt("127.0.0.3".parse().unwrap()));
        assert!(limits.is_exempt("::1".parse().unwrap()));
        assert!(!limits.is_exempt("192.0.2.1".parse().unwrap()));
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
