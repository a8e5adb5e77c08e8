//! The async transport: the chat server and client, written once over
//! `futures-io`, for every async runtime.
//!
//! * [`Server`]: binds, accepts, runs one task per connection and one loop
//!   around the hub driver, shuts down gracefully; an [`Attacher`] hands
//!   it streams from elsewhere than its listener (a WebSocket, a pipe).
//! * [`Client`]: connects, logs in, runs keepalive and reconnect in a
//!   background task.
//! * [`FrameCodec`]: the framing behind the codec traits of tokio-util
//!   (feature `tokio-codec`) and asynchronous-codec (feature
//!   `futures-codec`).
//! * [`Runtime`]: what a runtime provides (time, sleep, spawn, listen,
//!   connect, resolve); `transport-tokio` and `transport-async-std`
//!   implement it.
//!
//! * Feature `tls` (off by default): TLS listeners
//!   (`Server::bind_tls_on`, `Server::add_tls_listener`) and clients
//!   (`Client::connect_tls_on`), with futures-rustls over the runtime's
//!   streams, one piece of code for every runtime. A TLS connection is
//!   handed to the hub at once and does its handshake in its own task, so
//!   the login timeout covers it; a gate bounds the handshakes in progress
//!   ([`ServerOptions::max_handshakes`]). The settings are
//!   `transport-common`'s (`tls` module, re-exported here as `tls`).
//!
//! The runtime-free pieces (hub driver, outboxes, client state) come from
//! `transport-common`; every protocol decision from `chat-proto`,
//! re-exported here as [`proto`], with the types this crate's API uses at
//! its root.
//!
//! # No type parameters
//!
//! [`Server`] and [`Client`] are plain types holding an `Arc<dyn Runtime>`,
//! as quinn's `Endpoint` does: [`Runtime`] is object-safe (boxed sleeps and
//! connects, boxed listeners and streams), so a user never names a runtime
//! type in a type, and code that stores a server or a client does not
//! become generic. They take their runtime as an argument:
//! [`Server::bind_on`] and [`Client::connect_on`].
//!
//! # How a runtime crate gets its `Server` and `Client`
//!
//! A runtime crate calls [`runtime_api!`] once with its runtime. The macro
//! writes `Server` and `Client` newtypes whose `bind` and `connect` use that
//! runtime, with every other method (`serve`, `say`, `next_event`, ...)
//! inherent, documented, and forwarding here. The alternatives were worse
//! for the reader: a `Deref` to this crate's types hides the methods from
//! the type's page and from method lookup by name; re-exporting this
//! crate's types as they are leaves the runtime to pass at every `bind`;
//! and copying the forwarding into each runtime crate makes two copies to
//! keep in step. With the macro the forwarding exists once, and each
//! runtime crate's docs show a complete, plain API.
//!
//! ```ignore
//! // In a runtime crate's lib.rs:
//! transport_async::runtime_api!(runtime: crate::runtime::TokioRuntime, name: "tokio");
//! ```

mod attach;
mod bindings;
mod client_io;
mod codec;
mod conn_io;
pub mod read;
mod runtime;
mod server;
mod tls_io;

pub use attach::{Attacher, ServerGone};
pub use chat_proto as proto;
pub use chat_proto::{
    ClientConfig, CloseReason, ConnId, ErrorCode, Event, HubCloseReason, HubEvent, HubStats,
    Keepalive, LoginMode, Peer, RateLimit, ReconnectPolicy, ServerConfig, UsageError,
};
pub use client_io::Client;
pub use codec::{FrameCodec, Inbound, Outbound};
pub use runtime::{Accepted, BoxFuture, Listener, Runtime, Stream};
pub use server::Server;
#[cfg(feature = "tls")]
pub use transport_common::tls::{self, ClientTls, ServerTls, TlsError};
pub use transport_common::{
    Address, ClientOptions, ConnectError, DynStore, Events, LISTEN_BACKLOG, Login, RoomListing,
    ServerHandle, ServerOptions, ServerSnapshot, TimedOut, TryWrite, check_config,
};
