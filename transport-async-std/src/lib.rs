//! The chat protocol on `futures-io`: the same server and client as
//! `transport-tokio`, for async-std and smol.
//!
//! **async-std is discontinued upstream** (RUSTSEC-2025-0052, "use smol
//! instead"). This crate does not depend on its internals: sockets and
//! timers come from async-io, the loops are written against the
//! `futures-io` traits, and only spawning uses an executor, chosen by
//! feature: `async-std` (the default) or `smol`. Existing async-std
//! programs keep working; new ones should use
//! `default-features = false, features = ["smol"]`.
//!
//! * [`Server`]: binds, serves, shuts down gracefully.
//! * [`Client`]: connects, logs in, sends and receives; keepalive runs
//!   inside, and an optional reconnect policy brings a lost connection back.
//! * [`ChatCodec`]: the framing as an asynchronous-codec codec, for
//!   `Framed` over any futures-io stream.
//!
//! On smol, without async-std:
//!
//! ```
//! use transport_async_std::{ServerOn, runtime::SmolRuntime};
//!
//! smol::block_on(async {
//!     let server = ServerOn::<SmolRuntime>::bind("127.0.0.1:0", Default::default()).await?;
//!     assert_ne!(server.local_addr()?.port(), 0);
//!     Ok::<(), std::io::Error>(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The codec, over any futures-io stream:
//!
//! ```
//! use asynchronous_codec::Framed;
//! use chat_proto::{ClientFrame, Name};
//! use futures_lite::StreamExt;
//! use transport_async_std::ChatCodec;
//!
//! # futures_lite::future::block_on(async {
//! let wire = futures_lite::io::Cursor::new(b"iam:zhangsan\nmsg:hi\n".to_vec());
//! let mut server = Framed::new(wire, ChatCodec::server());
//! let first = server.next().await.unwrap().unwrap().unwrap();
//! assert_eq!(first, ClientFrame::Iam(Name::new("zhangsan").unwrap()));
//! # });
//! ```
//!
//! Every protocol decision is made by `chat-proto`; the loops that move
//! bytes and time are shared with the other transports through
//! `transport-common`; this crate is the binding in [`runtime`].
//!
//! ```no_run
//! use chat_proto::{ClientConfig, Event, ServerConfig};
//! use transport_async_std::{Client, Server};
//!
//! #[async_std::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await?;
//!     let addr = server.local_addr()?;
//!     async_std::task::spawn(server.serve());
//!
//!     let client = Client::connect(addr, "zhangsan", ClientConfig::default()).await?;
//!     client.say("did you have dinner")?;
//!     assert!(matches!(client.next_event().await, Some(Event::Message { .. })));
//!     Ok(())
//! }
//! ```

pub mod runtime;
mod stream;

use runtime::DefaultRuntime;
pub use stream::TcpStream;

/// The chat server on the default runtime (async-std's executor; smol's
/// with only the `smol` feature). See [`transport_async::Server`].
pub type Server = transport_async::Server<DefaultRuntime>;

/// The chat client on the default runtime. See [`transport_async::Client`].
pub type Client = transport_async::Client<DefaultRuntime>;

/// The server and client on a chosen runtime, e.g.
/// `ServerOn::<runtime::SmolRuntime>::bind(...)`.
pub use transport_async::{Client as ClientOn, Server as ServerOn};

/// The framing as an asynchronous-codec codec: `ChatCodec::server()` reads
/// client frames and writes server frames, `ChatCodec::client()` the other
/// way.
pub type ChatCodec<In> = transport_async::FrameCodec<In>;

pub use transport_async::{
    Address, AsyncClient, ClientOptions, ConnectError, Inbound, ServerOptions,
};
