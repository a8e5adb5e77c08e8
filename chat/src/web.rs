//! `chat serve --http ADDR`: the HTTP side of the server (the page, `/ws`,
//! `/metrics`, `/healthz`, from the `chat-web` crate), wired to the chat
//! server whatever runtime serves it.
//!
//! The HTTP side runs on tokio. With `--runtime tokio` it shares the
//! server's runtime; with `--runtime async-std` it gets a one-thread tokio
//! runtime on a thread of its own, and WebSockets still reach the server
//! (a pipe in memory needs no particular runtime). The blocking server
//! (`--runtime std`) takes no streams but its own sockets, so `--http`
//! with it is refused at startup.

use std::time::Duration;

use chat_proto::ServerConfig;
use chat_web::{AllowedOrigins, WebConfig, WebServer};
use clap::Args;
use transport_tokio::{Attacher, ServerHandle};

/// Flags of `chat serve` for the HTTP side.
#[derive(Debug, Args)]
pub(crate) struct WebArgs {
    /// Also serve HTTP on this address: the chat page at /, a WebSocket
    /// into the same room at /ws, /metrics (Prometheus) and /healthz.
    #[arg(long, value_name = "ADDR")]
    pub(crate) http: Option<String>,
    /// A web origin allowed to open /ws, such as https://chat.example.com
    /// (repeatable). Default: pages served by the same host and port.
    #[arg(long = "http-origin", value_name = "ORIGIN")]
    http_origins: Vec<String>,
    /// Most HTTP connections at once (a WebSocket counts until upgraded).
    #[arg(long, value_name = "N", default_value_t = 256)]
    http_max_connections: usize,
    /// Seconds a client has to send a request's headers.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    http_header_timeout: f64,
}

impl WebArgs {
    /// The HTTP side's configuration for a server configured with `config`.
    pub(crate) fn config(&self, config: &ServerConfig) -> Result<WebConfig, String> {
        let mut web = WebConfig::for_server(config);
        web.origins = AllowedOrigins::from_list(&self.http_origins)
            .map_err(|e| format!("--http-origin: {e}"))?;
        web.max_connections = self.http_max_connections;
        web.header_timeout = Duration::try_from_secs_f64(self.http_header_timeout)
            .map_err(|e| format!("--http-header-timeout: {e}"))?;
        if web.max_connections == 0 || web.header_timeout.is_zero() {
            return Err("--http-max-connections and --http-header-timeout must be above 0".into());
        }
        Ok(web)
    }
}

/// Binds the HTTP side on `addr` for the server of `attacher` and `handle`,
/// and logs where.
pub(crate) async fn bind(
    addr: &str,
    attacher: Attacher,
    handle: ServerHandle,
    config: WebConfig,
) -> Result<WebServer, String> {
    let web = WebServer::bind(addr, attacher, handle, config)
        .await
        .map_err(|e| format!("cannot listen for http on {addr}: {e}"))?;
    let local = web.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%local, "http on {local}: the page at /, WebSocket /ws, /metrics, /healthz");
    Ok(web)
}

/// The HTTP side served by a task of the chat server's own tokio runtime;
/// [`WebTask::stop`] ends it once the chat server has stopped.
pub(crate) struct WebTask {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl WebTask {
    /// As [`WebThread::stop`], for the task.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Binds `addr` and serves the HTTP side from a task of the current tokio
/// runtime.
pub(crate) async fn spawn_task(
    addr: &str,
    attacher: Attacher,
    handle: ServerHandle,
    config: WebConfig,
) -> Result<WebTask, String> {
    let web = bind(addr, attacher, handle, config).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let signal = async {
        let _ = stopped.await;
    };
    let task = tokio::spawn(web.serve_with_shutdown(signal));
    Ok(WebTask { stop, task })
}

/// The HTTP side served from a thread of its own; [`WebThread::stop`]
/// ends it once the chat server has stopped.
pub(crate) struct WebThread {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl WebThread {
    /// Stops accepting, lets every WebSocket pass on its last frames
    /// (the chat server's `bye:`) and waits for the thread, at most the
    /// server's `--shutdown-grace` (`WebConfig::shutdown_grace`).
    pub(crate) fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

/// Serves the HTTP side from a thread of its own with a one-thread tokio
/// runtime, for a server on another runtime. Returns once it is bound (or
/// could not be).
pub(crate) fn spawn_thread(
    addr: String,
    attacher: Attacher,
    handle: ServerHandle,
    config: WebConfig,
) -> Result<WebThread, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the http runtime: {e}"))?;
    let (bound_tx, bound_rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("chat-http".into())
        .spawn(move || {
            runtime.block_on(async move {
                match bind(&addr, attacher, handle, config).await {
                    Ok(web) => {
                        let _ = bound_tx.send(Ok(()));
                        let signal = async {
                            let _ = stopped.await;
                        };
                        if let Err(e) = web.serve_with_shutdown(signal).await {
                            tracing::error!(error = %e, "http side stopped");
                        }
                    }
                    Err(e) => {
                        let _ = bound_tx.send(Err(e));
                    }
                }
            })
        })
        .map_err(|e| format!("cannot start the http thread: {e}"))?;
    bound_rx
        .recv()
        .map_err(|_| "the http thread ended before binding".to_owned())??;
    Ok(WebThread { stop, thread })
}
