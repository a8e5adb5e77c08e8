//! What the hub tells the application: events, close reasons, counters.
//!
//! Events ([`HubEvent`]) are the hub's decisions and requests in the order
//! it made them: a login that waits for the application's answer, a login,
//! a relayed message (when asked for), a closed connection. Counters
//! ([`HubStats`]) are plain numbers the hub keeps up to date as it works, for
//! metrics: reading them costs nothing and keeping them costs an addition.

use super::conns::ConnId;

/// Something the application may want to log, store or act on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HubEvent {
    /// A connection asks to log in, and the login mode is
    /// [`LoginMode::Application`](crate::LoginMode::Application): answer
    /// with [`Hub::approve_login`](crate::Hub::approve_login) or
    /// [`Hub::refuse_login`](crate::Hub::refuse_login), now or later. The
    /// name is valid and free, and held for this connection meanwhile; its
    /// input waits (later frames are answered after the decision); the
    /// login timeout still runs.
    LoginRequested {
        /// The connection.
        conn: ConnId,
        /// The name asked for, as typed.
        name: String,
        /// The secret (a password, a token) the client sent with the name,
        /// if it sent one.
        secret: Option<String>,
    },
    /// A connection logged in.
    LoggedIn {
        /// The connection.
        conn: ConnId,
        /// Its name.
        name: String,
    },
    /// A message was relayed to a room (only with
    /// [`ServerConfig::activity_events`](crate::ServerConfig::activity_events)).
    Message {
        /// The sender's connection.
        conn: ConnId,
        /// The sender's name.
        from: String,
        /// The room.
        room: String,
        /// The message's offset in the room's log: 0 for the first message
        /// the room relayed, then 1, 2, ...
        offset: u64,
        /// What was said.
        text: String,
    },
    /// A private message was relayed (only with
    /// [`ServerConfig::activity_events`](crate::ServerConfig::activity_events)).
    PrivateMessage {
        /// The sender's connection.
        conn: ConnId,
        /// The sender's name.
        from: String,
        /// The recipient's name.
        to: String,
        /// What was said.
        text: String,
    },
    /// A logged-in connection joined a room (the default room at login
    /// included; only with
    /// [`ServerConfig::activity_events`](crate::ServerConfig::activity_events)).
    Joined {
        /// The connection.
        conn: ConnId,
        /// Its name.
        name: String,
        /// The room.
        room: String,
    },
    /// A connection left a room (by `part:`, or by leaving the server; only
    /// with
    /// [`ServerConfig::activity_events`](crate::ServerConfig::activity_events)).
    Parted {
        /// The connection.
        conn: ConnId,
        /// Its name.
        name: String,
        /// The room.
        room: String,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HubCloseReason {
    /// The client sent `bye:`.
    Bye,
    /// The client ended its side of the stream
    /// ([`Hub::handle_eof`](crate::Hub::handle_eof)); what it was owed was
    /// sent first.
    PeerClosed,
    /// The adapter reported the socket gone
    /// ([`Hub::disconnected`](crate::Hub::disconnected)).
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
    /// Accepted beyond its address's limits (`err:too-many-connections`,
    /// `err:connection-rate`).
    AddressLimit,
    /// The application ended it with [`Hub::kick`](crate::Hub::kick)
    /// (`err:kicked`).
    Kicked,
    /// [`Hub::shutdown`](crate::Hub::shutdown) (`bye:`).
    Shutdown,
}

impl HubCloseReason {
    /// Every reason, in declaration order.
    pub const ALL: [HubCloseReason; 10] = [
        HubCloseReason::Bye,
        HubCloseReason::PeerClosed,
        HubCloseReason::Disconnected,
        HubCloseReason::LoginTimeout,
        HubCloseReason::KeepaliveTimeout,
        HubCloseReason::SlowConsumer,
        HubCloseReason::ServerFull,
        HubCloseReason::AddressLimit,
        HubCloseReason::Kicked,
        HubCloseReason::Shutdown,
    ];

    /// A short kebab-case name, for logs and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            HubCloseReason::Bye => "bye",
            HubCloseReason::PeerClosed => "peer-closed",
            HubCloseReason::Disconnected => "disconnected",
            HubCloseReason::LoginTimeout => "login-timeout",
            HubCloseReason::KeepaliveTimeout => "keepalive-timeout",
            HubCloseReason::SlowConsumer => "slow-consumer",
            HubCloseReason::ServerFull => "server-full",
            HubCloseReason::AddressLimit => "address-limit",
            HubCloseReason::Kicked => "kicked",
            HubCloseReason::Shutdown => "shutdown",
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// Counters the hub keeps as it works, from its creation on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubStats {
    /// Connections accepted (those refused as `server-full` included).
    pub accepted: u64,
    /// Successful logins.
    pub logins: u64,
    /// Messages relayed to the room.
    pub messages: u64,
    /// Message deliveries: each relayed message counts once per member it
    /// was queued for.
    pub deliveries: u64,
    /// Bytes the adapter reported written, over all connections.
    pub bytes_written: u64,
    /// Bytes received, over all connections.
    pub bytes_received: u64,
    /// Pings the hub sent.
    pub pings: u64,
    /// Times a connection's input was paused to slow it down: its room's
    /// backlog, its own backlog or the rate limit.
    pub input_pauses: u64,
    /// Private messages relayed.
    pub private_messages: u64,
    /// Logins the application refused.
    pub logins_refused: u64,
    /// Login attempts held back for a while (failed logins before them, or
    /// the address's login allowance).
    pub logins_held: u64,
    /// Login attempts answered `err:retry-later`.
    pub logins_deferred: u64,
    /// `resume:` requests served.
    pub resumes: u64,
    /// Resumes that could not be served whole (`err:history-gap`).
    pub history_gaps: u64,
    closes: [u64; HubCloseReason::ALL.len()],
}

impl HubStats {
    /// Connections ended for `reason`.
    pub fn closes(&self, reason: HubCloseReason) -> u64 {
        self.closes[reason.slot()]
    }

    pub(super) fn closed(&mut self, reason: HubCloseReason) {
        self.closes[reason.slot()] += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_have_distinct_names_and_counters() {
        let mut stats = HubStats::default();
        for (i, reason) in HubCloseReason::ALL.into_iter().enumerate() {
            assert_eq!(reason.slot(), i);
            for _ in 0..=i {
                stats.closed(reason);
            }
        }
        for (i, reason) in HubCloseReason::ALL.into_iter().enumerate() {
            assert_eq!(stats.closes(reason), i as u64 + 1);
        }
        let names: std::collections::HashSet<_> =
            HubCloseReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), HubCloseReason::ALL.len());
    }
}
