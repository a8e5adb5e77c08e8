//! What the transports are configured with, and how connecting fails.
//!
//! The protocol's settings live in the core ([`ServerConfig`],
//! [`ClientConfig`](chat_proto::ClientConfig)); these are the transports'
//! own: [`ServerOptions`] and [`ClientOptions`], where to bind or connect
//! ([`Address`]), and [`ConnectError`], the one error a client's `connect`
//! returns on every transport.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use chat_proto::{CloseReason, Code, ConfigError, ServerConfig, UsageError};

/// The listen backlog every transport asks for.
pub const LISTEN_BACKLOG: u32 = 1024;

/// Transport settings of a server; the protocol's are in [`ServerConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerOptions {
    /// How long to stop accepting after running out of file descriptors.
    /// Default 100 ms.
    pub accept_pause: Duration,
    /// Messages from connections that may wait for the hub beyond one per
    /// connection. Default 256.
    pub channel_capacity: usize,
    /// How late the server may wake for the hub's timers, so that one
    /// wake-up serves every connection due in that window (with 20,000
    /// connections, pings fall due hundreds of times a second). The hub
    /// still decides what is due; pings and timeouts just happen up to this
    /// much later. Default 50 ms.
    pub timer_slack: Duration,
    /// TLS handshakes in progress at once, on all TLS listeners together;
    /// beyond it TLS listeners stop accepting until one ends (see
    /// [`HandshakeGate`](crate::HandshakeGate)). How long one may take is
    /// the hub's login timeout. Default 256.
    pub max_handshakes: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            accept_pause: Duration::from_millis(100),
            channel_capacity: 256,
            timer_slack: Duration::from_millis(50),
            max_handshakes: 256,
        }
    }
}

/// Checks `config` and turns a refusal into an `io::Error`, for `bind`.
pub fn check_config(config: &ServerConfig) -> io::Result<()> {
    config
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// Transport settings of a client; the protocol's are in
/// [`ClientConfig`](chat_proto::ClientConfig) (reconnecting, which the core
/// session decides, included).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientOptions {
    /// How long to wait for each address to accept the TCP connection
    /// before trying the next one (at `connect`, and at every reconnect).
    /// Default 10 s.
    pub connect_timeout: Duration,
    /// Events the application has not taken yet beyond which the client
    /// stops reading its socket (the server then slows down). Default
    /// 10,000.
    pub max_pending_events: usize,
    /// Bytes said and not yet written to the socket beyond which `say`
    /// waits (and `try_say` refuses). Default 256 KiB.
    pub max_unsent: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(10),
            max_pending_events: 10_000,
            max_unsent: 256 << 10,
        }
    }
}

/// A seed for a client's reconnect jitter that differs between clients
/// and runs (the core reads no entropy source, so transports give it one).
pub fn jitter_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(std::time::Instant::now())
}

/// Why a client's `connect` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The socket could not be opened.
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// The configuration cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The name is not valid.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The server refused the login (`name-taken`, `bad-name`, ...).
    #[error("login refused: {code}: {text}")]
    Rejected {
        /// The server's error code.
        code: Code<'static>,
        /// The server's explanation.
        text: String,
    },
    /// The connection closed before the login completed.
    #[error("connection closed during login: {0:?}")]
    Closed(CloseReason),
    /// The TLS settings cannot work for this address (feature `tls`).
    #[cfg(feature = "tls")]
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// Where to bind or connect: a socket address, a list of them to try in
/// order, or `host:port` to resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Address {
    /// A resolved address.
    Socket(SocketAddr),
    /// Resolved addresses, tried in order.
    List(Vec<SocketAddr>),
    /// `host:port`, resolved by the transport.
    Host(String),
}

impl From<Vec<SocketAddr>> for Address {
    fn from(addrs: Vec<SocketAddr>) -> Self {
        Address::List(addrs)
    }
}

impl From<&[SocketAddr]> for Address {
    fn from(addrs: &[SocketAddr]) -> Self {
        Address::List(addrs.to_vec())
    }
}

impl From<SocketAddr> for Address {
    fn from(addr: SocketAddr) -> Self {
        Address::Socket(addr)
    }
}

impl From<&str> for Address {
    fn from(addr: &str) -> Self {
        Address::Host(addr.to_owned())
    }
}

impl From<String> for Address {
    fn from(addr: String) -> Self {
        Address::Host(addr)
    }
}

impl From<&String> for Address {
    fn from(addr: &String) -> Self {
        Address::Host(addr.clone())
    }
}

impl Address {
    /// The addresses, if no name needs resolving.
    pub fn resolved(&self) -> Option<Vec<SocketAddr>> {
        match self {
            Address::Socket(addr) => Some(vec![*addr]),
            Address::List(addrs) => Some(addrs.clone()),
            Address::Host(_) => None,
        }
    }

    /// The host name to resolve, if there is one.
    pub fn host(&self) -> Option<&str> {
        match self {
            Address::Host(host) => Some(host),
            _ => None,
        }
    }

    /// Resolves with the system resolver, which may block for a host name.
    pub fn resolve_blocking(&self) -> io::Result<Vec<SocketAddr>> {
        use std::net::ToSocketAddrs;
        match self {
            Address::Host(host) => Ok(host.to_socket_addrs()?.collect()),
            other => Ok(other.resolved().unwrap_or_default()),
        }
    }
}
