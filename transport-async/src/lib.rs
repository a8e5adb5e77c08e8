//! The async transport: the chat server and client, written once over
//! `futures-io`, for every async runtime.
//!
//! * [`Server`]: binds through a [`Transport`], accepts, runs one task per
//!   connection ([`ConnIo`]) and one loop around the hub driver, shuts down
//!   gracefully.
//! * [`Client`]: connects, logs in, runs keepalive and reconnect in a
//!   background task.
//! * [`FrameCodec`]: the framing behind the codec traits of tokio-util
//!   (feature `tokio-codec`) and asynchronous-codec (feature
//!   `futures-codec`).
//!
//! A runtime crate (`transport-tokio`, `transport-async-std`) implements
//! [`Transport`] for its runtime: time, sleep, spawn, listen and connect.
//! The runtime-free pieces (hub driver, outboxes, client state) come from
//! `transport-common`.

mod client_io;
mod codec;
mod conn_io;
pub mod read;
mod runtime;
mod server;

pub use client_io::{AsyncClient, CLOSE_LINGER, Client};
pub use codec::{FrameCodec, Inbound, Outbound};
pub use runtime::{BoxFuture, Connector, Listener, Runtime, Stream, Transport};
pub use server::Server;
pub use transport_common::{
    Address, ClientOptions, ConnectError, LISTEN_BACKLOG, ServerOptions, check_config,
};
