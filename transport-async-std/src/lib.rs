//! The chat protocol on `futures-io` and async-io: the same server and
//! client as `transport-tokio`, for async-std and smol programs.
//!
//! **async-std is discontinued upstream** (RUSTSEC-2025-0052, "use smol
//! instead"). This crate does not need it: sockets and timers come from
//! async-io, the loops are written against the `futures-io` traits, and
//! tasks are spawned on smol's global executor, which runs on threads of
//! its own and works under any executor's `block_on`, async-std's included.
//! The `async-std` feature (on by default) only *adds*
//! [`runtime::AsyncStdRuntime`], for programs that want their tasks on
//! async-std's executor; they ask for it by name with [`Server::bind_on`]
//! and [`Client::connect_on`]. Turning a feature on never changes what
//! `Server::bind` or `Client::connect` do.
//!
//! * [`Server`]: binds, serves, shuts down gracefully.
//! * [`Client`]: connects, logs in, sends and receives, in rooms too;
//!   keepalive runs inside, and with `ClientConfig::reconnect` the session
//!   brings a lost connection back.
//! * [`ChatCodec`]: the framing as an asynchronous-codec codec, for
//!   `Framed` over any futures-io stream.
//!
//! The core is re-exported as [`proto`], and the types this API uses at the
//! root: this crate is the only dependency a program needs.
//!
//! ```
//! use transport_async_std::{Client, ClientConfig, Event, Server, ServerConfig};
//!
//! smol::block_on(async {
//!     let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await?;
//!     let addr = server.local_addr()?;
//!     smol::spawn(server.serve()).detach();
//!     let client = Client::connect(addr, "zhangsan", ClientConfig::default()).await?;
//!     client.say("did you have dinner").await?;
//!     // Its own arrival in the default room, then its message.
//!     assert!(matches!(client.next_event().await, Some(Event::Joined { .. })));
//!     assert!(matches!(client.next_event().await, Some(Event::Message { .. })));
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! On async-std's executor, chosen explicitly:
//!
//! ```no_run
//! use transport_async_std::runtime::AsyncStdRuntime;
//! use transport_async_std::{Server, ServerConfig};
//!
//! #[async_std::main]
//! async fn main() -> std::io::Result<()> {
//!     let server = Server::bind_on(AsyncStdRuntime, "127.0.0.1:7878", ServerConfig::default()).await?;
//!     server.serve().await
//! }
//! ```
//!
//! The codec, over any futures-io stream:
//!
//! ```
//! use asynchronous_codec::Framed;
//! use futures_lite::StreamExt;
//! use transport_async_std::ChatCodec;
//! use transport_async_std::proto::{ClientFrame, Name};
//!
//! # futures_lite::future::block_on(async {
//! let wire = futures_lite::io::Cursor::new(b"iam:zhangsan\nmsg:hi\n".to_vec());
//! let mut server = Framed::new(wire, ChatCodec::server());
//! let first = server.next().await.unwrap().unwrap().unwrap();
//! assert_eq!(first, ClientFrame::Iam(Name::new("zhangsan").unwrap()));
//! # });
//! ```
//!
//! TLS (feature `tls`, off by default) adds `Server::bind_tls`,
//! `Server::add_tls_listener` and `Client::connect_tls`, as in
//! `transport-tokio` (whose docs have an example): rustls with the ring
//! provider, through futures-rustls, with the settings of
//! `transport-common`'s `tls` module.
//!
//! Every protocol decision is made by `chat-proto`; the loops that move
//! bytes and time are shared with `transport-tokio` through
//! `transport-async`; this crate is the binding in [`runtime`].

pub mod runtime;
mod stream;

pub use stream::TcpStream;

transport_async::runtime_api!(runtime: crate::runtime::SmolRuntime, name: "async-io, spawning on smol's global executor");

/// The framing as an asynchronous-codec codec: `ChatCodec::server()` reads
/// client frames and writes server frames, `ChatCodec::client()` the other
/// way.
pub type ChatCodec<In> = transport_async::FrameCodec<In>;

pub use transport_async::proto;
pub use transport_async::{
    Address, Attacher, ClientConfig, ClientOptions, CloseReason, ConnId, ConnectError, DynStore,
    ErrorCode, Event, Events, HubCloseReason, HubEvent, HubStats, Inbound, Keepalive, Login,
    LoginMode, Peer, RateLimit, ReconnectPolicy, RoomListing, ServerConfig, ServerGone,
    ServerHandle, ServerOptions, ServerSnapshot, Stream, TimedOut, UsageError,
};
#[cfg(feature = "tls")]
pub use transport_async::{ClientTls, ServerTls, TlsError, tls};
