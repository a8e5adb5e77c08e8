//! The runtime-free glue every chat transport shares.
//!
//! `chat-proto` decides everything about the protocol; a transport only
//! moves bytes and time between sockets and the core. Much of that moving is
//! the same whatever the runtime, async or blocking, so it lives here,
//! written once, with no async runtime and no futures crate:
//!
//! * [`HubDriver`]: owns the [`Hub`](chat_proto::Hub), applies what
//!   connections send ([`HubMsg`]), drains every output after every input,
//!   routes output to each connection's [`Outbox`], logs accepts, logins
//!   and closes with `tracing`, and ends each batch of a server loop the
//!   same way for every transport ([`HubDriver::end_batch`]);
//! * [`ServerHandle`] and [`Events`]: the embedding application's side of
//!   a server: decide logins, see events, kick, send notices (to one, to
//!   all, to a room), take a member out of a room, read who is logged in
//!   and the hub's counters, measure the server ([`ServerSnapshot`]) and
//!   list its rooms with their members ([`RoomListing`]), from any task or
//!   thread;
//! * [`Outbox`] and [`WriteQueue`]: output waiting for a connection's
//!   writer, written with vectored writes and reported back as written;
//! * [`AcceptBackoff`]: pausing, not spinning, when `accept` runs out of file
//!   descriptors;
//! * [`ClientShared`]: a client session (the core's, which decides
//!   reconnects) between the application and the I/O, with bounded queues,
//!   for async tasks and blocking threads alike;
//! * [`Login`]: how a client logs in, as a guest or to an account;
//! * [`DynStore`]: durable history: any
//!   [`HistoryStore`](chat_proto::history::HistoryStore), driven by the
//!   hub driver on a thread of its own, so that no loop waits on a disk
//!   sync ([`HubDriver::attach_store`]);
//! * [`bind_listener`]: a listening socket with a backlog of 1024;
//! * [`HandshakeGate`]: a bound on TLS handshakes in progress;
//! * `tls` (feature `tls`): TLS settings for every transport, from PEM
//!   files: `tls::ServerTls`, `tls::ClientTls`, `tls::TlsError`,
//!   and why rustls with ring and the system's roots;
//! * [`ServerOptions`], [`ClientOptions`], [`Address`], [`ConnectError`]:
//!   what every transport is configured with, and how connecting fails.
//!
//! The async server and client are in `transport-async`; the blocking ones
//! in `transport-std`. Both are built on these pieces.

mod accept;
mod blocking;
mod client_shared;
mod events;
mod handshakes;
mod hub_driver;
mod listen;
mod login;
mod options;
mod outbox;
mod server_handle;
mod snapshot;
mod store_worker;
#[cfg(feature = "tls")]
pub mod tls;
mod write_queue;

pub use accept::{AcceptBackoff, is_resource_exhaustion};
pub use client_shared::{ClientShared, SocketOrder, TimedOut, login_outcome};
pub use events::Events;
pub use handshakes::{HandshakeGate, HandshakeSlot};
pub use hub_driver::{HubDriver, HubMsg, Next};
pub use listen::bind_listener;
pub use login::Login;
pub use options::{
    Address, ClientOptions, ConnectError, LISTEN_BACKLOG, ServerOptions, check_config, jitter_seed,
};
pub use outbox::{Flushed, Outbox, Taken, TryWrite};
pub use server_handle::ServerHandle;
pub use snapshot::{RoomListing, ServerSnapshot};
pub use store_worker::{DynStore, DynStoreError};
pub use write_queue::{MAX_SLICES, WriteQueue};
