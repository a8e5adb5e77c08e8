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
//! * [`FrameCodec`]: the framing behind the codec traits of tokio-util and
//!   asynchronous-codec;
//! * [`bind_listener`]: a listening socket with a backlog of 1024;
//! * [`Server`] and [`Client`]: the whole server and client of the async
//!   transports, over `futures-io` streams and a small [`Transport`] trait
//!   (time, sleep, spawn, listen, connect) that each async transport
//!   implements for its runtime.
//!
//! The blocking `transport-std` uses the driver, outbox, write queue,
//! accept backoff and client state with threads instead of the async loops.

mod accept;
mod client_io;
mod client_shared;
mod codec;
mod conn_io;
mod hub_driver;
mod listen;
mod outbox;
pub mod read;
mod reconnect;
mod runtime;
mod server;
mod write_queue;

pub use accept::{AcceptBackoff, is_resource_exhaustion};
pub use client_io::{AsyncClient, CLOSE_LINGER, Client, ClientOptions, ConnectError};
pub use client_shared::{ClientShared, TimedOut};
pub use codec::{FrameCodec, Inbound, Outbound};
pub use hub_driver::{HubDriver, HubMsg};
pub use listen::bind_listener;
pub use outbox::{Outbox, Taken};
pub use reconnect::{Reconnector, login_outcome};
pub use runtime::{Address, BoxFuture, Connector, Listener, Runtime, Stream, Transport};
pub use server::{LISTEN_BACKLOG, Server, ServerOptions, check_config};
pub use write_queue::{MAX_SLICES, WriteQueue};
