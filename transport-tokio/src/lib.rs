//! The chat protocol on tokio.
//!
//! * [`Server`]: binds (backlog 1024), serves, shuts down gracefully (every
//!   client is sent `bye:` and flushed within a grace period).
//! * [`Client`]: connects, logs in, sends and receives; keepalive runs
//!   inside, and an optional reconnect policy brings a lost connection back.
//! * [`ChatCodec`]: the framing as a tokio-util `Decoder`/`Encoder`, for
//!   `Framed`.
//!
//! This crate is glue only: every protocol decision (framing, login,
//! routing, keepalive timing, limits) is made by `chat-proto`, re-exported
//! as [`proto`] (with the types this API uses at the root, so this crate is
//! the only dependency a program needs), and the server, client and codec
//! are written once for every async runtime in `transport-async`. What is
//! tokio's here is the binding in [`runtime`]: tokio's clock (so tests may
//! pause it), its timers and `spawn`, and its sockets with `TCP_NODELAY`
//! and vectored writes.
//!
//! ```no_run
//! use transport_tokio::{Client, ClientConfig, Event, Server, ServerConfig};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let server = Server::bind("127.0.0.1:0", ServerConfig::default()).await?;
//!     let addr = server.local_addr()?;
//!     tokio::spawn(server.serve_with_shutdown(async {
//!         let _ = tokio::signal::ctrl_c().await;
//!     }));
//!
//!     let client = Client::connect(addr, "zhangsan", ClientConfig::default()).await?;
//!     client.say("did you have dinner").await?;
//!     while let Some(event) = client.next_event().await {
//!         if let Event::Message { room, from, text, .. } = event {
//!             println!("[{room}] {from}: {text}");
//!         }
//!     }
//!     Ok(())
//! }
//! ```
//!
//! # TLS (feature `tls`)
//!
//! Off by default, so that a program that does not ask for it compiles no
//! rustls. With it, `Server::bind_tls` and `Server::add_tls_listener`
//! serve TLS, and `Client::connect_tls` speaks it, verifying the server's
//! certificate as the host connected to. A TLS connection reaches the hub
//! as soon as it is accepted: its handshake must end within the login
//! timeout, and at most `ServerOptions::max_handshakes` run at once. The
//! settings (`ServerTls`, `ClientTls`, from PEM files) and the choice of
//! rustls's ring provider and of the system's roots are explained in the
//! `tls` module (`transport_common::tls`, re-exported as `tls`).
//!
//! ```no_run
//! # #[cfg(feature = "tls")]
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! use transport_tokio::{Client, ClientConfig, ClientOptions, ClientTls};
//! use transport_tokio::{Server, ServerConfig, ServerTls};
//!
//! let certificate = ServerTls::from_pem_files("cert.pem", "key.pem")?;
//! let mut server = Server::bind_tls("0.0.0.0:7878", ServerConfig::default(), &certificate).await?;
//! // The same rooms in plain text, for tools on loopback.
//! server.add_listener("127.0.0.1:7879").await?;
//! tokio::spawn(server.serve());
//!
//! let roots = ClientTls::system_roots()?;
//! let client = Client::connect_tls(
//!     "chat.example.com:7878",
//!     "zhangsan",
//!     ClientConfig::default(),
//!     ClientOptions::default(),
//!     &roots,
//! )
//! .await?;
//! client.say("over TLS").await?;
//! # Ok(())
//! # }
//! ```
//!
//! The codec, for those who want `Framed` instead. A frame the peer got
//! wrong is an item, `Err(PeerError)`, and the stream goes on; only I/O
//! errors end it:
//!
//! ```
//! use futures_util::{SinkExt, StreamExt};
//! use tokio_util::codec::Framed;
//! use transport_tokio::ChatCodec;
//! use transport_tokio::proto::{ClientFrame, Name, ServerFrame};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let (a, b) = tokio::io::duplex(1024);
//! let mut client = Framed::new(a, ChatCodec::client());
//! let mut server = Framed::new(b, ChatCodec::server());
//!
//! client.send(ClientFrame::Iam(Name::new("zhangsan").unwrap())).await.unwrap();
//! let frame = server.next().await.unwrap().unwrap().unwrap();
//! assert_eq!(frame, ClientFrame::Iam(Name::new("zhangsan").unwrap()));
//!
//! server.send(ServerFrame::Ok(Name::new("zhangsan").unwrap())).await.unwrap();
//! assert_eq!(client.next().await.unwrap().unwrap().unwrap().tag(), "ok");
//! # }
//! ```

pub mod runtime;

transport_async::runtime_api!(runtime: crate::runtime::TokioRuntime, name: "tokio");

/// The framing as a tokio-util codec: `ChatCodec::server()` reads client
/// frames and writes server frames, `ChatCodec::client()` the other way.
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
