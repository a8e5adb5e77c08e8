//! The chat server's HTTP side: a page and a WebSocket endpoint into the
//! same hub as the TCP listener, Prometheus metrics, and a health check.
//!
//! ```text
//! GET /         the page: log in, chat, who is there (HTML, CSS, plain JS, built in)
//! GET /ws       a WebSocket: one protocol frame per text message, into the hub
//! GET /metrics  the server's counters and levels, Prometheus text format
//! GET /healthz  "ok" while the server's loop answers
//! ```
//!
//! A browser user and an `nc` user share the room: a WebSocket is bridged
//! to a byte stream and handed to the running server with an
//! [`Attacher`], so the hub accepts it like a socket, with the peer's
//! address, and applies the same limits, keepalive and error codes. This
//! crate decides nothing about the protocol; the one mapping it makes is
//! that a WebSocket text message is one frame (PROTOCOL.md, "Over a
//! WebSocket").
//!
//! It is its own crate so that users of the transports do not inherit
//! HTTP dependencies; the `chat` program depends on it for `chat serve
//! --http`.
//!
//! ```no_run
//! use chat_web::{WebConfig, WebServer};
//! use transport_tokio::{Server, ServerConfig};
//!
//! # async fn demo() -> std::io::Result<()> {
//! let config = ServerConfig::default();
//! let web_config = WebConfig::for_server(&config);
//! let server = Server::bind("127.0.0.1:7878", config).await?;
//! let web = WebServer::bind(
//!     "127.0.0.1:7880",
//!     server.attacher("websocket"),
//!     server.handle(),
//!     web_config,
//! )
//! .await?;
//! tokio::spawn(web.serve());
//! server.serve().await
//! # }
//! ```
//!
//! # Choices
//!
//! **axum, on hyper and hyper-util, rather than hyper with
//! tokio-tungstenite by hand.** Both end up on the same crates (axum's
//! WebSocket is tokio-tungstenite over a hyper upgrade), and both are
//! kept by the tokio project. Directly on hyper, this crate would write the
//! upgrade handshake itself (checking `Upgrade`, `Connection` and
//! `Sec-WebSocket-Version`, computing `Sec-WebSocket-Accept`, answering
//! the failures) and route paths by hand; axum's `WebSocketUpgrade` does
//! that, sets tungstenite's message and frame size limits, and answers a
//! malformed handshake properly. What axum does not give, a bounded accept
//! loop with header timeouts, comes from hyper's own HTTP/1 builder (see
//! [`WebConfig`]), so the price of axum is its router and extractors: a few
//! small crates (matchit, tower's traits), no extra runtime.
//!
//! **prometheus-client rather than metrics with metrics-exporter-prometheus.**
//! Our figures are already counted by the hub and read as one snapshot per
//! scrape. prometheus-client has exactly that: a `Collector` called at
//! each scrape, encoding constant values into the Prometheus text format,
//! with no global state. `metrics` is a facade built around a global
//! recorder that the code updates as events happen (`counter!(..)
//! .increment(1)`); feeding it snapshots means setting absolute values
//! into a recorder between scrapes, and its exporter brings its own HTTP
//! listener or a render handle, plus a larger dependency tree
//! (metrics-util, quanta, hashing crates). prometheus-client is the
//! Prometheus project's own Rust client.

mod bridge;
mod http;
mod metrics;
mod origin;
mod page;
mod router;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, ToSocketAddrs};
use tracing::Instrument as _;
use transport_async::{Attacher, ServerConfig, ServerHandle};

pub use metrics::{CONTENT_TYPE as METRICS_CONTENT_TYPE, encode as encode_metrics};
pub use origin::{AllowedOrigins, BadOrigin};

/// How the HTTP side is configured; [`for_server`](WebConfig::for_server)
/// gives the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebConfig {
    /// The pages allowed to open the WebSocket. Default: pages of the same
    /// host and port (see [`AllowedOrigins`]).
    pub origins: AllowedOrigins,
    /// The longest WebSocket message taken, in bytes; a longer one closes
    /// the WebSocket with 1009 before it is decoded. Default: the server's
    /// `max_frame_len` less one (the LF a message does not carry), so every
    /// frame the hub would take fits and nothing longer is buffered.
    pub max_message_len: usize,
    /// HTTP connections at once; one more is answered 503. A WebSocket
    /// counts until it is upgraded (then the hub's own limits count it).
    /// Default 256.
    pub max_connections: usize,
    /// How long a client has to send a request's headers, the next one's on
    /// a kept-alive connection included. Default 10 s.
    pub header_timeout: Duration,
    /// How long `/metrics` and `/healthz` wait for the server's loop to
    /// answer before answering 503. Default 5 s.
    pub measure_timeout: Duration,
    /// How long [`WebServer::serve_with_shutdown`], once stopped, waits for
    /// the WebSockets to pass on the chat server's last frames (`bye:`) to
    /// browsers that are slow to read them. Default: the server's
    /// `shutdown_grace`, the time it gives its own clients.
    pub shutdown_grace: Duration,
}

impl WebConfig {
    /// The defaults, for a chat server configured with `config`.
    pub fn for_server(config: &ServerConfig) -> WebConfig {
        WebConfig {
            origins: AllowedOrigins::SameHost,
            max_message_len: config.max_frame_len.saturating_sub(1).max(1),
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
            measure_timeout: Duration::from_secs(5),
            shutdown_grace: config.shutdown_grace,
        }
    }

    fn check(&self) -> io::Result<()> {
        let invalid = |what: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, what));
        if self.max_message_len == 0 {
            return invalid("max_message_len must be at least 1");
        }
        if self.max_connections == 0 {
            return invalid("max_connections must be at least 1");
        }
        if self.header_timeout.is_zero() || self.measure_timeout.is_zero() {
            return invalid("timeouts must be longer than zero");
        }
        Ok(())
    }
}

/// The HTTP side of a chat server, bound and ready to serve: the page,
/// `/ws`, `/metrics` and `/healthz`.
#[derive(Debug)]
pub struct WebServer {
    listener: TcpListener,
    router: axum::Router,
    config: WebConfig,
    bridges: tokio_util::task::TaskTracker,
}

impl WebServer {
    /// Binds `addr` for the chat server that `attacher` and `handle` were
    /// taken from (`Server::attacher`, `Server::handle`). Fails with
    /// `InvalidInput` if `config` cannot work.
    pub async fn bind(
        addr: impl ToSocketAddrs,
        attacher: Attacher,
        handle: ServerHandle,
        config: WebConfig,
    ) -> io::Result<WebServer> {
        config.check()?;
        // Resolved without blocking, then bound as the chat server binds
        // (a backlog of 1024, SO_REUSEADDR for a quick restart).
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(addr).await?.collect();
        let listener = transport_common::bind_listener(&addrs[..])?;
        listener.set_nonblocking(true)?;
        let bridges = tokio_util::task::TaskTracker::new();
        Ok(WebServer {
            listener: TcpListener::from_std(listener)?,
            router: router::routes(attacher, handle, bridges.clone(), &config),
            config,
            bridges,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the future is dropped.
    pub async fn serve(self) -> io::Result<()> {
        self.serve_with_shutdown(std::future::pending()).await
    }

    /// Serves until `signal` completes, then stops accepting and tells
    /// every HTTP connection to finish its request in flight and close.
    /// WebSockets are chat connections by then: the chat server's own
    /// shutdown says `bye:` to them and closes them. Returns once every
    /// WebSocket has passed on its last frames and closed, or after
    /// [`WebConfig::shutdown_grace`] at most: complete `signal` after the
    /// chat server has stopped, and wait for this before the process exits, so that
    /// a browser gets its `bye:` and a clean close.
    pub async fn serve_with_shutdown(
        self,
        signal: impl std::future::Future<Output = ()>,
    ) -> io::Result<()> {
        let local = self.local_addr()?;
        let served = http::serve(self.listener, self.router, &self.config, signal)
            .instrument(tracing::info_span!("chat_web", %local))
            .await;
        self.bridges.close();
        if tokio::time::timeout(self.config.shutdown_grace, self.bridges.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.bridges.len(),
                "websockets still open at shutdown"
            );
        }
        served
    }
}
