//! `chat serve`: the server, configured from flags, stopped by Ctrl-C or
//! SIGTERM with a graceful shutdown, on the transport of your choice
//! (`--runtime tokio`, the default; `async-std`; `std`), with the HTTP
//! side (`--http`, see [`crate::web`]) on the first two.

use std::time::Duration;

use chat_proto::{Keepalive, RateLimit, ServerConfig};
use clap::{Args, ValueEnum};
use transport_tokio::ServerOptions;

use crate::web::{self, WebArgs};

/// Which transport serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Runtime {
    /// transport-tokio.
    Tokio,
    /// transport-async-std (async-io sockets, async-std executor).
    AsyncStd,
    /// transport-std (blocking threads).
    Std,
}

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
    /// The transport that serves.
    #[arg(long, value_enum, default_value_t = Runtime::Tokio)]
    runtime: Runtime,
    /// tokio worker threads. The default, 1, runs everything on one thread:
    /// the hub is one state machine, and on small machines extra workers
    /// mostly add cross-thread wake-ups (see BENCHMARKS.md). Raise it where
    /// many cores can share the socket I/O.
    #[arg(long, value_name = "N", default_value_t = 1)]
    threads: usize,
    #[command(flatten)]
    web: WebArgs,
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
        config.shutdown_grace = seconds("shutdown-grace", self.shutdown_grace)?;
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }
}

pub(crate) fn run(args: ServeArgs) -> Result<(), String> {
    let config = args.config()?;
    // Checked before anything is bound.
    let web_config = args.web.config(&config)?;
    if args.web.http.is_some() && args.runtime == Runtime::Std {
        return Err(
            "--http needs --runtime tokio or async-std: the blocking server takes \
                    no connections but its own sockets"
                .into(),
        );
    }
    let options = ServerOptions::default();
    match args.runtime {
        Runtime::Tokio => serve_tokio(&args, config, web_config, options),
        Runtime::AsyncStd => serve_async_std(&args, config, web_config, options),
        Runtime::Std => serve_std(&args, config, options),
    }
}

fn listening(addr: std::io::Result<std::net::SocketAddr>, runtime: Runtime) -> Result<(), String> {
    let addr = addr.map_err(|e| e.to_string())?;
    tracing::info!(%addr, ?runtime, "listening on {addr}; Ctrl-C to stop");
    Ok(())
}

fn cannot_listen(addr: &str) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("cannot listen on {addr}: {e}")
}

fn serve_tokio(
    args: &ServeArgs,
    config: ServerConfig,
    web_config: chat_web::WebConfig,
    options: ServerOptions,
) -> Result<(), String> {
    let runtime = match args.threads {
        0 | 1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    }
    .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let server = transport_tokio::Server::bind(&args.addr, config)
            .await
            .map_err(cannot_listen(&args.addr))?;
        listening(server.local_addr(), Runtime::Tokio)?;
        if let Some(addr) = &args.web.http {
            let (attacher, handle) = (server.attacher("websocket"), server.handle());
            let web = web::bind(addr, attacher, handle, web_config).await?;
            // It stops with the runtime, once the chat server has.
            tokio::spawn(web.serve());
        }
        server
            .with_options(options)
            .serve_with_shutdown(stop_signal())
            .await
            .map_err(|e| e.to_string())
    })
}

fn serve_async_std(
    args: &ServeArgs,
    config: ServerConfig,
    web_config: chat_web::WebConfig,
    options: ServerOptions,
) -> Result<(), String> {
    // The stop signal comes from tokio's signal handling, on a thread of its
    // own; the server itself runs on async-std.
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let stopped = async_std::task::spawn_blocking(move || {
        let _ = stop_rx.recv();
    });
    spawn_signal_thread(move || {
        let _ = stop_tx.send(());
    })?;
    async_std::task::block_on(async {
        let rt = transport_async_std::runtime::AsyncStdRuntime;
        let server = transport_async_std::Server::bind_on(rt, &*args.addr, config)
            .await
            .map_err(cannot_listen(&args.addr))?;
        listening(server.local_addr(), Runtime::AsyncStd)?;
        if let Some(addr) = &args.web.http {
            let (attacher, handle) = (server.attacher("websocket"), server.handle());
            // It stops with the process, once the chat server has.
            web::spawn_thread(addr.clone(), attacher, handle, web_config)?;
        }
        server
            .with_options(options)
            .serve_with_shutdown(stopped)
            .await
            .map_err(|e| e.to_string())
    })
}

fn serve_std(args: &ServeArgs, config: ServerConfig, options: ServerOptions) -> Result<(), String> {
    let server = transport_std::Server::bind(&*args.addr, config)
        .map_err(cannot_listen(&args.addr))?
        .with_options(options);
    listening(server.local_addr(), Runtime::Std)?;
    let stop = server.handle();
    spawn_signal_thread(move || stop.shutdown())?;
    server.serve().map_err(|e| e.to_string())
}

/// Runs `on_signal` on Ctrl-C or SIGTERM, from a thread with a small tokio
/// runtime for the signal handling.
fn spawn_signal_thread(on_signal: impl FnOnce() + Send + 'static) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    std::thread::Builder::new()
        .name("chat-signals".into())
        .spawn(move || {
            runtime.block_on(stop_signal());
            on_signal();
        })
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    Ok(())
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
