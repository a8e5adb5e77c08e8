//! The chat protocol on blocking `std::net` threads: no async runtime.
//!
//! * [`Server`]: `bind`, then `serve` on the calling thread; its
//!   [`ServerHandle`] decides logins, sees events, kicks, sends notices and
//!   stops it gracefully, from any thread.
//! * [`Client`]: `connect`, `say`, `who`, `next_event`,
//!   `next_event_timeout`, `close`, the same words as the async clients;
//!   keepalive runs on a background thread.
//!
//! Every protocol decision is made by `chat-proto`, re-exported as
//! [`proto`] (with the types this API uses at the root, so this crate is
//! the only dependency a program needs); the hub driver, the outboxes and
//! the client state are shared with the async transports through
//! `transport-common`, which compiles no async code: nothing here depends
//! on a futures crate. What is this crate's own is the threading:
//! the hub on one thread, a reader and a writer thread per connection, and
//! read timeouts at the core's deadlines.
//!
//! With feature `tls`, `Server::bind_tls`, `Server::add_tls_listener` and
//! `Client::connect_tls` speak TLS with rustls's own connection types,
//! shared by a connection's two threads; the settings (certificates,
//! roots) are `transport-common`'s, the same as the async transports'.

mod client;
mod conn;
mod reports;
mod server;
mod socket;
#[cfg(feature = "tls")]
mod tls;

pub use chat_proto as proto;
pub use chat_proto::{
    ClientConfig, CloseReason, ConnId, ErrorCode, Event, HubCloseReason, HubEvent, HubStats,
    Keepalive, LoginMode, RateLimit, ReconnectPolicy, ServerConfig, UsageError,
};
pub use client::Client;
pub use server::Server;
#[cfg(feature = "tls")]
pub use transport_common::tls::{ClientTls, ServerTls, TlsError};
pub use transport_common::{
    Address, ClientOptions, ConnectError, DynStore, Events, Login, RoomListing, ServerHandle,
    ServerOptions, ServerSnapshot, TimedOut,
};
