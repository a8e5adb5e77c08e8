//! `chat serve`: the server, configured from flags, stopped by Ctrl-C or
//! SIGTERM with a graceful shutdown, on the transport of your choice
//! (`--runtime tokio`, the default; `async-std`; `std`).

use std::time::Duration;

use chat_proto::{Keepalive, RateLimit, ServerConfig};
use clap::{Args, ValueEnum};
use transport_tokio::ServerOptions;

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
    /// Seconds a connection with output pending may go without its socket
    /// taking any before it is closed as a slow consumer; also how long a
    /// room may hold its senders paused for a member that does not keep up.
    #[arg(long, value_name = "SECS",
          default_value_t = ServerConfig::default().write_timeout.as_secs_f64())]
    write_timeout: f64,
    /// MiB a room may hold for its slowest member (once, however many
    /// members share them); past it, senders to the room are paused until
    /// it drains to half.
    #[arg(long, value_name = "MIB", default_value_t = ServerConfig::default().room_backlog >> 20)]
    room_backlog: usize,
    /// Bytes handed to a connection's socket and not yet written, at most;
    /// the rest waits in the hub (room messages in the room).
    #[arg(long, value_name = "BYTES", default_value_t = ServerConfig::default().send_window)]
    send_window: usize,
    /// Bytes of private output (answers to its who:, pongs) owed to a
    /// connection past which its input pauses until half is written.
    #[arg(long, value_name = "BYTES", default_value_t = ServerConfig::default().pause_backlog)]
    pause_backlog: usize,
    /// Room size up to which join: and left: are broadcast.
    #[arg(long, value_name = "N", default_value_t = ServerConfig::default().presence_limit)]
    presence_limit: usize,
    /// Per-connection limit on frames per second once logged in (burst:
    /// the same number), or `off`. When not given, the core's default: 20 a
    /// second with bursts of 200. Over it, input is paused, not refused.
    #[arg(long, value_name = "MSGS_PER_SEC|off", value_parser = rate_limit_arg)]
    rate_limit: Option<RateArg>,
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
}

/// The value of `--rate-limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RateArg {
    Off,
    PerSecond(u32),
}

fn rate_limit_arg(value: &str) -> Result<RateArg, String> {
    if value.eq_ignore_ascii_case("off") {
        return Ok(RateArg::Off);
    }
    value
        .parse()
        .map(RateArg::PerSecond)
        .map_err(|_| format!("{value:?} is neither a number of messages per second nor `off`"))
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
        config.write_timeout = seconds("write-timeout", self.write_timeout)?;
        config.room_backlog = self
            .room_backlog
            .checked_mul(1 << 20)
            .ok_or_else(|| format!("--room-backlog: {} MiB is too large", self.room_backlog))?;
        config.send_window = self.send_window;
        config.pause_backlog = self.pause_backlog;
        config.rate_limit = match self.rate_limit {
            None => config.rate_limit,
            Some(RateArg::Off) => None,
            Some(RateArg::PerSecond(n)) => Some(RateLimit::per_second(n)),
        };
        config.shutdown_grace = seconds("shutdown-grace", self.shutdown_grace)?;
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }
}

pub(crate) fn run(args: ServeArgs) -> Result<(), String> {
    let config = args.config()?;
    let options = ServerOptions::default();
    match args.runtime {
        Runtime::Tokio => serve_tokio(&args, config, options),
        Runtime::AsyncStd => serve_async_std(&args, config, options),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `chat serve` and its flags, parsed.
    #[derive(Debug, clap::Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn config(flags: &[&str]) -> Result<ServerConfig, String> {
        use clap::Parser;
        let args = Serve::try_parse_from(std::iter::once("serve").chain(flags.iter().copied()))
            .map_err(|e| e.to_string())?;
        args.args.config()
    }

    #[test]
    fn without_flags_every_limit_is_the_cores_default() {
        assert_eq!(config(&[]), Ok(ServerConfig::default()));
    }

    #[test]
    fn the_flow_limits_have_flags() {
        let c = config(&[
            "--write-timeout",
            "2.5",
            "--room-backlog",
            "4",
            "--send-window",
            "65536",
            "--pause-backlog",
            "131072",
        ])
        .unwrap();
        assert_eq!(c.write_timeout, Duration::from_millis(2500));
        assert_eq!(c.room_backlog, 4 << 20);
        assert_eq!((c.send_window, c.pause_backlog), (65536, 131072));
        // Values the core cannot work with are refused with its reason.
        for (bad, field) in [
            (["--write-timeout", "0"], "write_timeout"),
            (["--room-backlog", "0"], "room_backlog"),
            (["--send-window", "100"], "send_window"),
            (["--pause-backlog", "100"], "pause_backlog"),
        ] {
            let err = config(&bad).unwrap_err();
            assert!(err.contains(field), "{bad:?}: {err}");
        }
        assert!(config(&["--room-backlog", &usize::MAX.to_string()]).is_err());
    }

    #[test]
    fn the_rate_limit_is_a_number_or_off() {
        assert_eq!(rate_limit_arg("off"), Ok(RateArg::Off));
        assert_eq!(rate_limit_arg("OFF"), Ok(RateArg::Off));
        assert_eq!(rate_limit_arg("20"), Ok(RateArg::PerSecond(20)));
        assert!(rate_limit_arg("fast").is_err());
        assert!(rate_limit_arg("-1").is_err());
    }
}
