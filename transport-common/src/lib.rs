//! The glue every chat transport shares.
//!
//! `chat-proto` decides everything about the protocol; a transport only
//! moves bytes and time between sockets and the core. Most of that moving is
//! the same whatever the runtime, so it lives here, written once:
//!
//! * [`HubDriver`]: owns the [`Hub`](chat_proto::Hub), applies what
//!   connections send ([`HubMsg`]), drains every `poll_*` after every input,
//!   routes output to each connection's [`Outbox`], and logs accepts, logins
//!   and closes with `tracing`;
//! * [`Outbox`] and [`WriteQueue`]: output waiting for a connection's
//!   writer, written with vectored writes and reported back as written;
//! * [`AcceptBackoff`]: pausing, not spinning, when `accept` runs out of file
//!   descriptors;
//! * [`ClientShared`]: a client's state between the application and the
//!   I/O, for async tasks and blocking threads alike;
//! * [`serve`] and [`connect`]: the whole server loop and the whole client
//!   I/O of the async transports, over `futures-io` streams and a small
//!   [`Runtime`] trait (time, sleep, spawn) that each async transport
//!   implements for its runtime.
//!
//! The blocking `transport-std` uses the driver, outbox, write queue,
//! accept backoff and client state with threads instead of the async loops.

mod accept;
mod client_io;
mod client_shared;
mod conn_io;
mod hub_driver;
mod outbox;
pub mod read;
mod runtime;
mod server;
mod write_queue;

pub use accept::{AcceptBackoff, is_resource_exhaustion};
pub use client_io::{AsyncClient, CLOSE_LINGER, ClientOptions, ConnectError, connect};
pub use client_shared::{ClientShared, TimedOut};
pub use hub_driver::{HubDriver, HubMsg};
pub use outbox::{Outbox, Taken};
pub use runtime::{BoxFuture, Connector, Listener, Runtime, Stream};
pub use server::{LISTEN_BACKLOG, ServerOptions, check_config, serve};
pub use write_queue::{MAX_SLICES, WriteQueue};
