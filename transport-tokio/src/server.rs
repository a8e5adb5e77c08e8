//! The chat server on tokio.
//!
//! ```no_run
//! use chat_proto::ServerConfig;
//! use transport_tokio::Server;
//!
//! # async fn run() -> std::io::Result<()> {
//! let server = Server::bind("127.0.0.1:7878", ServerConfig::default()).await?;
//! println!("listening on {}", server.local_addr()?);
//! server.serve_with_shutdown(async { tokio::signal::ctrl_c().await.ok(); }).await
//! # }
//! ```

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use chat_proto::ServerConfig;
use tokio::net::{TcpListener, TcpSocket, ToSocketAddrs, lookup_host};
use transport_common::{LISTEN_BACKLOG, ServerOptions, check_config, serve};

use crate::runtime::{TokioListener, TokioRuntime};

/// A bound chat server, ready to serve.
///
/// One task owns the hub; each connection has a task of its own that reads
/// and writes without blocking the others.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    config: ServerConfig,
    options: ServerOptions,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) with a listen backlog of
    /// 1024. Fails with `InvalidInput` if `config` cannot work.
    pub async fn bind(addr: impl ToSocketAddrs, config: ServerConfig) -> io::Result<Server> {
        check_config(&config)?;
        let mut last_error = None;
        for addr in lookup_host(addr).await? {
            match listen(addr) {
                Ok(listener) => {
                    return Ok(Server {
                        listener,
                        config,
                        options: ServerOptions::default(),
                    });
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind")))
    }

    /// Replaces the transport options (shutdown grace, close linger, ...).
    pub fn with_options(mut self, options: ServerOptions) -> Self {
        self.options = options;
        self
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the task is dropped.
    pub async fn serve(self) -> io::Result<()> {
        self.serve_with_shutdown(std::future::pending()).await
    }

    /// Serves until `signal` completes, then shuts down gracefully: every
    /// client is sent `bye:server shutting down`, and the server returns once
    /// all have been flushed and closed, or the grace period is over.
    pub async fn serve_with_shutdown<F>(self, signal: F) -> io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let local = self.listener.local_addr()?;
        tracing::info!(%local, "serving");
        let listener = TokioListener(self.listener);
        serve(TokioRuntime, listener, self.config, self.options, signal).await
    }
}

fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}
