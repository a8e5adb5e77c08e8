//! `chat-load`: drives a chat server over loopback and reports.
//!
//! ```text
//! chat-load fanout --addr 127.0.0.1:7878 --clients 50 --messages 1000 --size 64 [--rate 100] --server-pid PID
//! chat-load fanout --rooms 10 ...                  # K clients over 10 rooms, say:/said:
//! chat-load fanout --protocol irc --addr 127.0.0.1:6667 ...   # an IRC server (ngircd)
//! chat-load scale  --addr 127.0.0.1:7878 --connections 19500 --hold 20 [--rooms 100] --server-pid PID
//! chat-load fanout --tls-ca ca.pem --addr 127.0.0.1:7443 ...   # over TLS
//! chat-load resume --addr 127.0.0.1:7878 --clients 1000 --missed 10000 --size 64 --server-pid PID
//! ```
//!
//! Prints a summary, then one `RESULT key=value ...` line. Exit code: 0 ok,
//! 1 failed (losses, reorders, lost connections, refused logins), 2 a phase
//! timed out, 3 bad arguments.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::time::Duration;

use chat_load::fanout::{self, FanoutConfig, Pacing};
use chat_load::report::ResultLine;
use chat_load::resume::{self, ResumeConfig};
use chat_load::scale::{self, ScaleConfig};
use chat_load::stream::TlsClient;
use chat_load::wire::Protocol;
use chat_load::{LoadError, net};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Load generator for the chat servers (loopback only).
#[derive(Debug, Parser)]
#[command(name = "chat-load", version, about)]
struct Cli {
    /// Generator runtime threads; 1 (the default) runs everything on one
    /// thread, leaving the other core to the server.
    #[arg(long, global = true, default_value_t = 1, value_name = "N")]
    threads: usize,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// K clients each send M messages; every client checks and times every
    /// delivery. Burst by default; `--rate` paces it (the latency test).
    Fanout(FanoutArgs),
    /// N idle logged-in connections held for T seconds, answering pings.
    Scale(ScaleArgs),
    /// N clients that missed M messages resume at once; each checks it gets
    /// every one, in order, with no gap. The server must keep and replay M
    /// messages: `--rate-limit off --history M --history-bytes B
    /// --max-replay M`.
    Resume(ResumeArgs),
}

/// Flags every scenario takes.
#[derive(Debug, Args)]
struct Target {
    /// The server (IP:PORT in 127.0.0.0/8).
    #[arg(long, default_value = "127.0.0.1:7878")]
    addr: String,
    /// The server's pid: adds its CPU time and memory to the report.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
    /// Client names are this prefix and an index.
    #[arg(long, value_name = "PREFIX")]
    name_prefix: Option<String>,
}

/// Flags fanout and scale take.
#[derive(Debug, Args)]
struct Common {
    #[command(flatten)]
    target: Target,
    /// Seconds allowed for all logins.
    #[arg(long, value_name = "SECS")]
    login_timeout: Option<f64>,
    /// Speak TLS, trusting the CA certificate(s) in this PEM file (the
    /// server's own certificate, if self-signed).
    #[arg(long, value_name = "CA.pem")]
    tls_ca: Option<String>,
    /// With --tls-ca: the name the server's certificate must carry
    /// [default: the IP address of --addr].
    #[arg(long, value_name = "NAME", requires = "tls_ca")]
    tls_name: Option<String>,
}

impl Common {
    /// The TLS settings, with --tls-ca.
    fn tls(&self, target: std::net::SocketAddr) -> Result<Option<TlsClient>, LoadError> {
        self.tls_ca
            .as_deref()
            .map(|ca| TlsClient::new(ca, self.tls_name.as_deref(), target))
            .transpose()
    }
}

/// `--protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProtocolArg {
    /// This project's protocol.
    Chat,
    /// IRC: NICK/USER, JOIN #bench, PRIVMSG #bench (nobody receives their
    /// own messages, so K-1 deliveries per message).
    Irc,
}

#[derive(Debug, Args)]
struct FanoutArgs {
    #[command(flatten)]
    common: Common,
    /// K: clients.
    #[arg(long, short = 'k', default_value_t = 50)]
    clients: usize,
    /// M: messages per client.
    #[arg(long, short = 'm', default_value_t = 1000)]
    messages: u32,
    /// S: bytes per message frame, `msg:` and LF included (the text, S-5
    /// bytes, is the same in say: and IRC's PRIVMSG).
    #[arg(long, short = 's', default_value_t = 64)]
    size: usize,
    /// What the clients speak.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Chat)]
    protocol: ProtocolArg,
    /// R: spread the clients over R rooms (client i in room bench<i mod R>,
    /// #bench<i mod R> over IRC), each sending to its own room; without it
    /// everyone is in the server's default room (IRC: #bench).
    #[arg(long, value_name = "R")]
    rooms: Option<usize>,
    /// R: messages per second per client (paced); without it, burst.
    #[arg(long, value_name = "R")]
    rate: Option<f64>,
    /// Burst: most of a client's own messages in flight (sent, not yet
    /// received back); 0 for no limit.
    #[arg(long, default_value_t = 100)]
    window: u32,
    /// Burst: most frames per write.
    #[arg(long, default_value_t = 64)]
    batch: u32,
    /// Source addresses to spread clients over (127.0.0.1 upwards).
    #[arg(long, default_value_t = 1)]
    sources: u8,
    /// Seconds allowed for the run phase [default: 120, plus M/R if paced].
    #[arg(long, value_name = "SECS")]
    run_timeout: Option<f64>,
    /// Seconds without a delivery, once everything is sent, before giving up
    /// on the missing ones.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    stall_timeout: f64,
}

#[derive(Debug, Args)]
struct ScaleArgs {
    #[command(flatten)]
    common: Common,
    /// N: connections.
    #[arg(long, short = 'n', default_value_t = 19_500)]
    connections: usize,
    /// T: seconds to hold them idle once all are logged in.
    #[arg(long, value_name = "SECS", default_value_t = 20.0)]
    hold: f64,
    /// Source addresses to spread connections over (127.0.0.1 upwards).
    #[arg(long, default_value_t = 4)]
    sources: u8,
    /// Most connections connecting or logging in at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// R: each connection also joins one of R rooms (bench<i mod R>) as
    /// part of its login, with the rooms capability.
    #[arg(long, value_name = "R")]
    rooms: Option<usize>,
}

#[derive(Debug, Args)]
struct ResumeArgs {
    #[command(flatten)]
    target: Target,
    /// N: clients resuming at once.
    #[arg(long, short = 'n', default_value_t = 1000)]
    clients: usize,
    /// M: messages said while they were away.
    #[arg(long, short = 'm', default_value_t = 10_000)]
    missed: u32,
    /// S: bytes per message frame, `msg:` and LF included.
    #[arg(long, short = 's', default_value_t = 64)]
    size: usize,
    /// Source addresses to spread the clients over (127.0.0.1 upwards).
    #[arg(long, default_value_t = 4)]
    sources: u8,
    /// Seconds allowed for each phase.
    #[arg(long, value_name = "SECS", default_value_t = 120.0)]
    timeout: f64,
}

fn resume_config(a: &ResumeArgs) -> Result<ResumeConfig, LoadError> {
    let target = net::parse_target(&a.target.addr)?;
    let mut c = ResumeConfig::new(target, a.clients, a.missed, a.size);
    c.sources = a.sources;
    c.server_pid = a.target.server_pid;
    if let Some(p) = &a.target.name_prefix {
        c.name_prefix = p.clone();
    }
    c.timeout = seconds("timeout", a.timeout)?;
    Ok(c)
}

fn seconds(flag: &str, s: f64) -> Result<Duration, LoadError> {
    Duration::try_from_secs_f64(s).map_err(|e| LoadError::Config(format!("--{flag}: {e}")))
}

fn fanout_config(a: &FanoutArgs, threads: usize) -> Result<FanoutConfig, LoadError> {
    let target = net::parse_target(&a.common.target.addr)?;
    let mut c = FanoutConfig::new(target, a.clients, a.messages, a.size);
    c.protocol = match a.protocol {
        ProtocolArg::Chat => Protocol::Chat,
        ProtocolArg::Irc => Protocol::Irc,
    };
    c.rooms = a.rooms;
    c.pacing = match a.rate {
        Some(r) => Pacing::Rate(r),
        None => Pacing::Burst { window: a.window },
    };
    c.batch = a.batch;
    c.sources = a.sources;
    c.server_pid = a.common.target.server_pid;
    c.gen_threads = threads;
    c.tls = a.common.tls(target)?;
    if let Some(p) = &a.common.target.name_prefix {
        c.name_prefix = p.clone();
    }
    if let Some(s) = a.common.login_timeout {
        c.login_timeout = seconds("login-timeout", s)?;
    }
    let paced = a.rate.map_or(0.0, |r| f64::from(a.messages) / r.max(1e-9));
    c.run_timeout = seconds("run-timeout", a.run_timeout.unwrap_or(120.0 + paced))?;
    c.stall_timeout = seconds("stall-timeout", a.stall_timeout)?;
    Ok(c)
}

fn scale_config(a: &ScaleArgs, threads: usize) -> Result<ScaleConfig, LoadError> {
    let target = net::parse_target(&a.common.target.addr)?;
    let mut c = ScaleConfig::new(target, a.connections, seconds("hold", a.hold)?);
    c.sources = a.sources;
    c.concurrency = a.concurrency;
    c.rooms = a.rooms;
    c.server_pid = a.common.target.server_pid;
    c.gen_threads = threads;
    c.tls = a.common.tls(target)?;
    if let Some(p) = &a.common.target.name_prefix {
        c.name_prefix = p.clone();
    }
    if let Some(s) = a.common.login_timeout {
        c.login_timeout = seconds("login-timeout", s)?;
    }
    Ok(c)
}

/// Runs the chosen scenario; `(summary, result line, exit code)`.
async fn run(scenario: &Scenario, threads: usize) -> Result<(String, String, u8), LoadError> {
    match scenario {
        Scenario::Fanout(a) => {
            let report = fanout::run(&fanout_config(a, threads)?).await?;
            Ok((
                report.summary(),
                report.result_line(),
                report.status.exit_code(),
            ))
        }
        Scenario::Scale(a) => {
            let report = scale::run(&scale_config(a, threads)?).await?;
            Ok((
                report.summary(),
                report.result_line(),
                report.status.exit_code(),
            ))
        }
        Scenario::Resume(a) => {
            let report = resume::run(&resume_config(a)?).await?;
            Ok((
                report.summary(),
                report.result_line(),
                report.status.exit_code(),
            ))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mode = match cli.scenario {
        Scenario::Fanout(_) => "fanout",
        Scenario::Scale(_) => "scale",
        Scenario::Resume(_) => "resume",
    };
    let runtime = match cli.threads {
        0 | 1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chat-load: cannot start the runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(run(&cli.scenario, cli.threads.max(1))) {
        Ok((summary, line, code)) => {
            println!("{summary}");
            println!("{line}");
            ExitCode::from(code)
        }
        Err(e) => {
            eprintln!("chat-load: {e}");
            let (status, code) = match e {
                LoadError::Config(_) => ("error", 3),
                LoadError::Timeout { .. } => ("timeout", 2),
                LoadError::Io(_) => ("fail", 1),
            };
            let mut line = ResultLine::new(mode);
            line.put("status", status).put("reason", e);
            println!("{}", line.finish());
            ExitCode::from(code)
        }
    }
}
