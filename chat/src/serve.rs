//! `chat serve`: the server, configured from flags, stopped by Ctrl-C or
//! SIGTERM with a graceful shutdown.

use std::time::Duration;

use chat_proto::{Keepalive, RateLimit, ServerConfig};
use clap::Args;
use transport_tokio::{Server, ServerOptions};

/// Flags of `chat serve`; each limit defaults to the protocol's default.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7878")]
    addr: String,
    /// Maximum frame length in bytes, LF included.
    #[arg(long, value_name = "BYTES", default_value_t = ServerConfig::default().max_frame_len)]
    max_frame: usize,
    /// Seconds of silence before a ping.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    keepalive_idle: f64,
    /// Seconds to wait for anything after a ping.
    #[arg(long, value_name = "SECS", default_value_t = 15.0)]
    keepalive_timeout: f64,
    /// Seconds a new connection has to log in.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    login_timeout: f64,
    /// Most connections at once.
    #[arg(long, value_name = "N", default_value_t = ServerConfig::default().max_connections)]
    max_connections: usize,
    /// Unflushed bytes per connection before it is dropped as a slow consumer.
    #[arg(long, value_name = "BYTES", default_value_t = ServerConfig::default().outbound_limit)]
    outbound_limit: usize,
    /// Room size up to which join: and left: are broadcast.
    #[arg(long, value_name = "N", default_value_t = ServerConfig::default().presence_limit)]
    presence_limit: usize,
    /// Per-connection limit on msg: and who: frames per second (burst: the
    /// same number). Off by default.
    #[arg(long, value_name = "MSGS_PER_SEC")]
    rate_limit: Option<u32>,
    /// Seconds to flush bye: to everyone on shutdown.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    shutdown_grace: f64,
    /// Runtime worker threads; 1 runs everything on one thread.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

fn seconds(flag: &str, secs: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(secs).map_err(|e| format!("--{flag}: {e}"))
}

impl ServeArgs {
    fn config(&self) -> Result<ServerConfig, String> {
        let mut config = ServerConfig::default();
        config.max_frame_len = self.max_frame;
        config.keepalive = Keepalive::new(
            seconds("keepalive-idle", self.keepalive_idle)?,
            seconds("keepalive-timeout", self.keepalive_timeout)?,
        );
        config.login_timeout = seconds("login-timeout", self.login_timeout)?;
        config.max_connections = self.max_connections;
        config.outbound_limit = self.outbound_limit;
        config.presence_limit = self.presence_limit;
        config.rate_limit = self.rate_limit.map(RateLimit::per_second);
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }
}

pub(crate) fn run(args: ServeArgs) -> Result<(), String> {
    let config = args.config()?;
    let mut options = ServerOptions::default();
    options.shutdown_grace = seconds("shutdown-grace", args.shutdown_grace)?;
    let runtime = match args.threads {
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n.max(1))
            .enable_all()
            .build(),
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    }
    .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let server = Server::bind(&args.addr, config)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
        let addr = server.local_addr().map_err(|e| e.to_string())?;
        tracing::info!(%addr, "listening on {addr}; Ctrl-C to stop");
        server
            .with_options(options)
            .serve_with_shutdown(stop_signal())
            .await
            .map_err(|e| e.to_string())
    })
}

/// Ctrl-C, or SIGTERM on Unix.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("stop signal received");
}
