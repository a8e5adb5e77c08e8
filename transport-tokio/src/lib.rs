//! The chat protocol on tokio.
//!
//! * [`Server`]: binds, serves, shuts down gracefully (every client is sent
//!   `bye:` and flushed within a grace period).
//! * [`Client`]: connects, logs in, sends and receives; keepalive runs
//!   inside, and an optional reconnect policy brings a lost connection back.
//! * [`ChatCodec`]: the framing as a tokio-util `Decoder`/`Encoder`, for
//!   `Framed`.
//!
//! This crate is glue only: every protocol decision (framing, login,
//! routing, keepalive timing, limits) is made by `chat-proto`, and the loops
//! that move bytes and time are shared with the other transports through
//! `transport-common`. What is tokio's here is the runtime binding in
//! [`runtime`]: tokio's clock (so tests may pause it), its timers, `spawn`,
//! and its sockets with `TCP_NODELAY` and vectored writes.
//!
//! ```no_run
//! use chat_proto::{ClientConfig, Event, ServerConfig};
//! use transport_tokio::{Client, Server};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await?;
//!     let addr = server.local_addr()?;
//!     tokio::spawn(server.serve());
//!
//!     let client = Client::connect(addr, "zhangsan", ClientConfig::default()).await?;
//!     client.say("did you have dinner")?;
//!     assert!(matches!(client.next_event().await, Some(Event::Message { .. })));
//!     Ok(())
//! }
//! ```

mod client;
mod codec;
pub mod runtime;
mod server;

pub use client::Client;
pub use codec::{ChatCodec, Inbound};
pub use server::Server;
pub use transport_common::{AsyncClient, ClientOptions, ConnectError, ServerOptions};
