//! The chat protocol on blocking `std::net` threads: no async runtime.
//!
//! * [`Server`]: `bind`, then `serve` on the calling thread; a
//!   [`ShutdownHandle`] stops it from another thread, gracefully.
//! * [`Client`]: `connect`, `send`, `recv`, `recv_timeout`, `close`;
//!   keepalive runs on a background thread.
//!
//! Every protocol decision is made by `chat-proto`; the hub driver, the
//! outboxes and the client state are shared with the async transports
//! through `transport-common`. What is this crate's own is the threading:
//! the hub on one thread, a reader and a writer thread per connection, and
//! read timeouts at the core's deadlines.

mod client;
mod conn;
mod server;

pub use client::Client;
pub use server::{Server, ShutdownHandle};
pub use transport_common::{ClientOptions, ConnectError, ServerOptions, TimedOut};
