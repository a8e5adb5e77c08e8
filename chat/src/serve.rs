//! `chat serve`: the server, configured from flags, stopped by Ctrl-C,
//! SIGTERM or SIGHUP (the terminal it ran in closed) with a graceful
//! shutdown, on the transport of your choice (`--runtime tokio`, the
//! default; `async-std`; `std`), with the HTTP side (`--http`, see
//! [`crate::web`]) on the first two. With `--accounts FILE`, logins are
//! decided by the accounts service ([`chat::accounts::service`]); with
//! `--data-dir`, room history survives restarts (chat-store's SQLite store,
//! driven by the transport's store worker); both the same on every
//! transport. With `--tls-cert` and `--tls-key` it serves TLS on `--addr`;
//! `--plain-addr` adds a plain-text listener (for tools on loopback) to the
//! same server.

use std::path::PathBuf;
use std::time::Duration;

use chat::accounts::{AccountsSource, LoginOptions, LoginService, file::permission_warning};
use chat_proto::{History, Keepalive, LoginMode, RateLimit, ServerConfig};
use chat_store::SqliteStore;
use clap::{Args, ValueEnum};
use transport_tokio::{ServerHandle, ServerOptions, ServerTls};

use crate::address_flags::AddressArgs;
use crate::room_flags::RoomArgs;

use crate::signals::{StopSignal, spawn_signal_thread};
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
    /// Address to listen on (with TLS if --tls-cert is given).
    #[arg(long, default_value = "127.0.0.1:7878")]
    addr: String,
    /// Serve TLS on --addr with this certificate chain (PEM: the server's
    /// certificate first, then intermediates); needs --tls-key.
    #[arg(long, value_name = "CERT.pem", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "KEY.pem", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Also listen here in plain text, for the same server (say
    /// 127.0.0.1:7879, for tools on loopback next to TLS on --addr).
    #[arg(long, value_name = "ADDR")]
    plain_addr: Option<String>,
    /// Most TLS handshakes in progress at once; beyond it TLS connections
    /// wait to be accepted. Each must finish within --login-timeout.
    #[arg(long, value_name = "N", default_value_t = ServerOptions::default().max_handshakes)]
    max_handshakes: usize,
    /// The TLS settings --tls-cert and --tls-key make, loaded once by `run`.
    #[arg(skip)]
    tls_settings: Option<ServerTls>,
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
    /// Per-address limits.
    #[command(flatten)]
    addresses: AddressArgs,
    /// Rooms: the default room and the room limits.
    #[command(flatten)]
    rooms: RoomArgs,
    /// Seconds to flush bye: to everyone on shutdown.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    shutdown_grace: f64,
    /// The transport that serves.
    #[arg(long, value_enum, default_value_t = Runtime::Tokio)]
    runtime: Runtime,
    /// Accounts file (made with `chat account add`): each registered name
    /// needs its password (`iam:NAME:PASSWORD`); other names stay free for
    /// guests. Read again whenever it changes.
    #[arg(long, value_name = "FILE")]
    accounts: Option<PathBuf>,
    /// Refuse guests: only accounts may log in.
    #[arg(long, requires = "accounts")]
    require_account: bool,
    /// Threads checking passwords (each check takes 19 MiB while it runs).
    #[arg(long, value_name = "N", default_value_t = LoginOptions::default().verify_threads)]
    verify_threads: usize,
    /// Password checks running or waiting beyond which a login with a
    /// password is answered `err:retry-later`.
    #[arg(long, value_name = "N", default_value_t = LoginOptions::default().max_pending)]
    max_pending_logins: usize,
    /// Take passwords over plain text from addresses other than loopback.
    /// Only for a server behind something that encrypts (a TLS proxy, a
    /// VPN): a password sent in clear can be read on the way.
    #[arg(long)]
    secrets_in_clear: bool,
    /// Keep room history on disk in this folder (created if need be), in
    /// SQLite: every message is stored (synced) before anyone is handed
    /// it, and a restart on the same folder keeps each room's history and
    /// epoch, so clients resume across it.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// Messages of history kept per room; 0 keeps none (no history on
    /// join, no resume).
    #[arg(long, value_name = "N", default_value_t = History::default().messages)]
    history: usize,
    /// Bytes of history kept per room (the said: frames), at most half of
    /// the room backlog.
    #[arg(long, value_name = "BYTES", default_value_t = History::default().bytes)]
    history_bytes: usize,
    /// Messages of history a client with the history capability is sent
    /// when it joins a room without resuming.
    #[arg(long, value_name = "N", default_value_t = History::default().on_join)]
    history_on_join: usize,
    /// Most messages replayed for one resume; older ones are reported
    /// missing (err:history-gap).
    #[arg(long, value_name = "N", default_value_t = History::default().max_replay)]
    max_replay: usize,
    /// tokio worker threads. The default, 1, runs everything on one thread:
    /// the hub is one state machine, and on small machines extra workers
    /// mostly add cross-thread wake-ups (see BENCHMARKS.md). Raise it where
    /// many cores can share the socket I/O.
    #[arg(long, value_name = "N", default_value_t = 1)]
    threads: usize,
    #[command(flatten)]
    web: WebArgs,
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
    /// The server's configuration from the flags, checked by the core.
    pub(crate) fn config(&self) -> Result<ServerConfig, String> {
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
        self.addresses.apply(&mut config.addresses);
        self.rooms.apply(&mut config);
        config.secrets_in_clear = self.secrets_in_clear;
        if self.accounts.is_some() {
            config.login = LoginMode::Application;
        }
        config.history.messages = self.history;
        config.history.bytes = self.history_bytes;
        config.history.on_join = if self.history == 0 {
            0
        } else {
            self.history_on_join
        };
        config.history.max_replay = self.max_replay;
        config.history.durable = self.data_dir.is_some();
        // Each run's new rooms get new epochs, so that a client never takes
        // a room of this run for the log it read before a restart (rooms
        // restored from --data-dir keep their stored epochs).
        config.seed = random_seed();
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    /// The history store, if `--data-dir` asks for one.
    fn store(&self, config: &ServerConfig) -> Result<Option<SqliteStore>, String> {
        let Some(dir) = &self.data_dir else {
            return Ok(None);
        };
        let store = SqliteStore::open(dir, config.history.messages)
            .map_err(|e| format!("--data-dir {}: {e}", dir.display()))?;
        tracing::info!(path = %store.path().display(), "durable history");
        Ok(Some(store))
    }

    /// The accounts, read before anything listens, if `--accounts`.
    fn accounts(&self) -> Result<Option<Logins>, String> {
        let Some(path) = &self.accounts else {
            return Ok(None);
        };
        let options = self.login_options()?;
        let source = AccountsSource::open(path, self.require_account).map_err(|e| e.to_string())?;
        if let Some(warning) = permission_warning(path) {
            tracing::warn!("{warning}");
        }
        tracing::info!(
            path = %path.display(),
            "{} accounts; {}",
            source.len(),
            if self.require_account {
                "only accounts may log in"
            } else {
                "guests may use the other names"
            }
        );
        Ok(Some(Logins { source, options }))
    }

    fn login_options(&self) -> Result<LoginOptions, String> {
        let mut options = LoginOptions::default();
        options.verify_threads = at_least_one("verify-threads", self.verify_threads)?;
        options.max_pending = at_least_one("max-pending-logins", self.max_pending_logins)?;
        Ok(options)
    }
}

fn at_least_one(flag: &str, n: usize) -> Result<usize, String> {
    if n == 0 {
        return Err(format!("--{flag} must be at least 1"));
    }
    Ok(n)
}

/// What the accounts service is started with, once the server's handle
/// exists.
struct Logins {
    source: AccountsSource,
    options: LoginOptions,
}

/// Starts the accounts service on `handle`, if there are accounts. It
/// ends by itself when the server stops.
fn start_logins(handle: &ServerHandle, logins: Option<Logins>) -> Result<(), String> {
    if let Some(Logins { source, options }) = logins {
        LoginService::start(handle, source, options)
            .map_err(|e| format!("cannot start the accounts service: {e}"))?;
    }
    Ok(())
}

impl ServeArgs {
    /// The TLS settings, if --tls-cert and --tls-key are given.
    fn load_tls(&self) -> Result<Option<ServerTls>, String> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => ServerTls::from_pem_files(cert, key)
                .map(Some)
                .map_err(|e| format!("--tls-cert/--tls-key: {e}")),
            _ => Ok(None),
        }
    }
}

/// A seed that differs between runs.
fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    let now = std::time::SystemTime::now();
    std::collections::hash_map::RandomState::new().hash_one((now, std::process::id()))
}

pub(crate) fn run(mut args: ServeArgs) -> Result<(), String> {
    let config = args.config()?;
    // A certificate or key that cannot serve is said before anything binds.
    args.tls_settings = args.load_tls()?;
    // Checked before anything is bound.
    let web_config = args.web.config(&config)?;
    if args.web.http.is_some() && args.runtime == Runtime::Std {
        return Err(
            "--http needs --runtime tokio or async-std: the blocking server takes \
                    no connections but its own sockets"
                .into(),
        );
    }
    let logins = args.accounts()?;
    let store = args.store(&config)?;
    let mut options = ServerOptions::default();
    options.max_handshakes = args.max_handshakes;
    match args.runtime {
        Runtime::Tokio => serve_tokio(&args, config, web_config, options, logins, store),
        Runtime::AsyncStd => serve_async_std(&args, config, web_config, options, logins, store),
        Runtime::Std => serve_std(&args, config, options, logins, store),
    }
}

/// Gives `server` the store, if there is one (`with_history_store` of each
/// transport).
fn with_store<S>(
    server: S,
    store: Option<SqliteStore>,
    attach: impl FnOnce(S, SqliteStore) -> std::io::Result<S>,
) -> Result<S, String> {
    match store {
        None => Ok(server),
        Some(store) => attach(server, store).map_err(|e| format!("--data-dir: {e}")),
    }
}

/// Logs where the server listens: `addrs` are --addr, then --plain-addr.
fn listening(
    addrs: std::io::Result<Vec<std::net::SocketAddr>>,
    runtime: Runtime,
    tls: bool,
) -> Result<(), String> {
    let addrs = addrs.map_err(|e| e.to_string())?;
    // Tools read the address between "listening on " and ';'.
    tracing::info!(addr = %addrs[0], ?runtime, tls, "listening on {}; Ctrl-C to stop", addrs[0]);
    if let Some(plain) = addrs.get(1) {
        tracing::info!(addr = %plain, tls = false, "also listening on {plain}; plain text");
    }
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
    logins: Option<Logins>,
    store: Option<SqliteStore>,
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
        let stop = StopSignal::install();
        let mut server = match &args.tls_settings {
            Some(tls) => transport_tokio::Server::bind_tls(&args.addr, config, tls).await,
            None => transport_tokio::Server::bind(&args.addr, config).await,
        }
        .map_err(cannot_listen(&args.addr))?;
        if let Some(plain) = &args.plain_addr {
            let added = server.add_listener(plain).await;
            added.map_err(cannot_listen(plain))?;
        }
        let server = with_store(server, store, transport_tokio::Server::with_history_store)?;
        start_logins(&server.handle(), logins)?;
        let tls = args.tls_settings.is_some();
        listening(server.local_addrs(), Runtime::Tokio, tls)?;
        let mut web_side = None;
        if let Some(addr) = &args.web.http {
            let (attacher, handle) = (server.attacher("websocket"), server.handle());
            web_side = Some(web::spawn_task(addr, attacher, handle, web_config).await?);
        }
        let served = server
            .with_options(options)
            .serve_with_shutdown(stop.recv())
            .await
            .map_err(|e| e.to_string());
        if let Some(web) = web_side {
            web.stop().await; // the WebSockets pass on the last frames
        }
        served
    })
}

fn serve_async_std(
    args: &ServeArgs,
    config: ServerConfig,
    web_config: chat_web::WebConfig,
    options: ServerOptions,
    logins: Option<Logins>,
    store: Option<SqliteStore>,
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
        let addr = &*args.addr;
        let mut server = match &args.tls_settings {
            Some(tls) => transport_async_std::Server::bind_tls_on(rt, addr, config, tls).await,
            None => transport_async_std::Server::bind_on(rt, addr, config).await,
        }
        .map_err(cannot_listen(&args.addr))?;
        if let Some(plain) = &args.plain_addr {
            let added = server.add_listener(plain).await;
            added.map_err(cannot_listen(plain))?;
        }
        let server = with_store(
            server,
            store,
            transport_async_std::Server::with_history_store,
        )?;
        start_logins(&server.handle(), logins)?;
        let tls = args.tls_settings.is_some();
        listening(server.local_addrs(), Runtime::AsyncStd, tls)?;
        let mut web_side = None;
        if let Some(addr) = &args.web.http {
            let (attacher, handle) = (server.attacher("websocket"), server.handle());
            web_side = Some(web::spawn_thread(
                addr.clone(),
                attacher,
                handle,
                web_config,
            )?);
        }
        let served = server
            .with_options(options)
            .serve_with_shutdown(stopped)
            .await
            .map_err(|e| e.to_string());
        if let Some(web) = web_side {
            web.stop(); // the WebSockets pass on the last frames
        }
        served
    })
}

fn serve_std(
    args: &ServeArgs,
    config: ServerConfig,
    options: ServerOptions,
    logins: Option<Logins>,
    store: Option<SqliteStore>,
) -> Result<(), String> {
    let mut server = match &args.tls_settings {
        Some(tls) => transport_std::Server::bind_tls(&*args.addr, config, tls),
        None => transport_std::Server::bind(&*args.addr, config),
    }
    .map_err(cannot_listen(&args.addr))?
    .with_options(options);
    if let Some(plain) = &args.plain_addr {
        server
            .add_listener(&**plain)
            .map_err(cannot_listen(plain))?;
    }
    let server = with_store(server, store, transport_std::Server::with_history_store)?;
    start_logins(&server.handle(), logins)?;
    let stop = server.handle();
    spawn_signal_thread(move || stop.shutdown())?;
    let tls = args.tls_settings.is_some();
    listening(server.local_addrs(), Runtime::Std, tls)?;
    server.serve().map_err(|e| e.to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    /// The configuration `chat serve FLAGS...` serves with, or why not.
    pub(crate) fn config(flags: &[&str]) -> Result<ServerConfig, String> {
        let args = std::iter::once("serve").chain(flags.iter().copied());
        Cli::try_parse_from(args)
            .map_err(|e| e.to_string())?
            .serve
            .config()
    }

    #[test]
    fn history_flags_reach_the_config_and_every_run_has_its_own_seed() {
        let default = config(&[]).unwrap();
        assert_eq!(default.history, History::default());
        assert_ne!(default.seed, config(&[]).unwrap().seed);
        let none = config(&["--history", "0"]).unwrap().history;
        assert_eq!((none.messages, none.on_join, none.is_kept()), (0, 0, false));
        let set = config(&[
            "--history",
            "50",
            "--history-bytes",
            "4096",
            "--history-on-join",
            "5",
            "--max-replay",
            "7",
            "--data-dir",
            "/nowhere",
        ])
        .unwrap()
        .history;
        assert_eq!(
            (
                set.messages,
                set.bytes,
                set.on_join,
                set.max_replay,
                set.durable
            ),
            (50, 4096, 5, 7, true)
        );
        // History bytes above half the room backlog cannot work.
        assert!(config(&["--history-bytes", "16777216"]).is_err());
    }

    #[test]
    fn without_flags_every_limit_is_the_cores_default() {
        // The seed is drawn per run (see the history test); the rest is
        // the core's default.
        let mut c = config(&[]).unwrap();
        c.seed = ServerConfig::default().seed;
        assert_eq!(c, ServerConfig::default());
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
