//! The fan-out scenario: K clients each send M messages to their room and
//! every client checks and times every delivery.
//!
//! Phases, each with its own deadline:
//!
//! 1. **login**: K connections log in concurrently (`load0`, `load1`, ...),
//!    each into its room ([`wire::log_in`]).
//! 2. **run** (measured): every client has a writer task and a reader task
//!    on its socket's two halves. The writer sends its M messages, either
//!    in bursts (batches of up to `batch` frames per write, at most `window`
//!    of its own messages not yet seen by its witness) or paced at R
//!    messages per second (the clients' schedules staggered over one
//!    interval). The reader decodes what it reads from one 64 KiB buffer
//!    ([`wire::Listener`]: `chat_proto::Decoder` and `ServerFrame::parse`,
//!    or IRC lines), records each delivery's sequence number and latency
//!    (receipt minus send timestamp, one clock read per `read`), and
//!    answers pings through its writer. The phase ends when every reader
//!    has its deliveries, or when nothing has arrived for `stall_timeout`
//!    after every message was sent (losses), or at `run_timeout`.
//!
//! Who hears whom is the [`Topology`]: by default one room where every
//! client receives every message, its own included (K×M×K deliveries).
//! With rooms, each message reaches the members of its sender's room. Over
//! IRC nobody receives their own messages, so each message is delivered
//! once fewer (K×M×(K−1) in one channel), and a sender's window is fed by
//! its witness, the next member of its room, instead of its own echo.
//!
//! The server's and the generator's CPU are sampled around the run phase.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;

use crate::accounting::SeqTracker;
use crate::histogram::Histogram;
use crate::message::{self, Stamp};
use crate::net;
use crate::report::{Meter, Status};
use crate::topology::Topology;
use crate::wire::{self, Heard, Listener, Protocol, Speech};
use crate::{LoadError, irc};

pub use crate::fanout_report::FanoutReport;

/// Bytes read from a socket at once.
const READ_BUF: usize = 64 * 1024;
/// Error messages kept for the summary.
const ERROR_SAMPLES: usize = 5;

/// How the clients send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// As fast as possible, with at most `window` of a client's own
    /// messages sent and not yet received back (0: no limit).
    Burst {
        /// Messages in flight per client; 0 for no limit.
        window: u32,
    },
    /// Each client sends this many messages per second.
    Rate(f64),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct FanoutConfig {
    /// The server, in 127.0.0.0/8.
    pub target: SocketAddr,
    /// K: clients, each a sender and a receiver.
    pub clients: usize,
    /// M: messages per client.
    pub messages: u32,
    /// S: bytes per message frame, `msg:` and LF included; the text is
    /// S − 5 bytes in every protocol and form (see [`message::text_len`]).
    pub size: usize,
    /// What the clients speak. Default: chat.
    pub protocol: Protocol,
    /// Rooms to spread the clients over; `None` (the default): all in one
    /// room, the server's default room (or one IRC channel).
    pub rooms: Option<usize>,
    /// Burst or paced.
    pub pacing: Pacing,
    /// Burst mode: most frames per write.
    pub batch: u32,
    /// Client names are this prefix and the client's index.
    pub name_prefix: String,
    /// Source addresses to spread the clients over, 127.0.0.1 upwards.
    pub sources: u8,
    /// The server's pid, for its CPU and memory.
    pub server_pid: Option<u32>,
    /// Deadline for all logins.
    pub login_timeout: Duration,
    /// Deadline for the run phase.
    pub run_timeout: Duration,
    /// After the last message is sent: give up waiting for deliveries after
    /// this long without one.
    pub stall_timeout: Duration,
    /// Generator runtime threads, for the report only.
    pub gen_threads: usize,
}

impl FanoutConfig {
    /// A burst run of `clients` × `messages` frames of `size` bytes against
    /// `target`, with the default window, batch and timeouts.
    pub fn new(target: SocketAddr, clients: usize, messages: u32, size: usize) -> Self {
        FanoutConfig {
            target,
            clients,
            messages,
            size,
            protocol: Protocol::Chat,
            rooms: None,
            pacing: Pacing::Burst { window: 100 },
            batch: 64,
            name_prefix: "load".into(),
            sources: 1,
            server_pid: None,
            login_timeout: Duration::from_secs(30),
            run_timeout: Duration::from_secs(120),
            stall_timeout: Duration::from_secs(5),
            gen_threads: 1,
        }
    }

    /// Who hears whom.
    pub fn topology(&self) -> Topology {
        Topology::new(self.clients, self.rooms, self.protocol.echo())
    }

    /// Deliveries expected: every message reaches its audience (K×M×K in
    /// one chat room, K×M×(K−1) in one IRC channel).
    pub fn expected(&self) -> u64 {
        self.topology().expected(self.messages)
    }

    /// Checks the configuration can work.
    pub fn validate(&self) -> Result<(), LoadError> {
        net::check_loopback(self.target.ip(), "target address")?;
        let bad = |m: String| Err(LoadError::Config(m));
        if self.clients == 0 || self.messages == 0 {
            return bad("--clients and --messages must be at least 1".into());
        }
        if self.clients > 10_000 {
            return bad("--clients is at most 10000 (every client receives everything)".into());
        }
        let min = message::min_size(self.clients, self.messages);
        if self.size < min {
            return bad(format!(
                "--size {} cannot hold sender, sequence and timestamp: at least {min}",
                self.size
            ));
        }
        if self.size > 60_000 {
            return bad("--size is at most 60000".into());
        }
        if let Pacing::Rate(r) = self.pacing
            && !(r > 0.0 && r <= 1_000_000.0)
        {
            return bad(format!("--rate {r} must be above 0 and at most 1000000"));
        }
        if self.batch == 0 {
            return bad("--batch must be at least 1".into());
        }
        let topology = self.topology();
        topology.validate().map_err(LoadError::Config)?;
        if self.protocol == Protocol::Irc {
            // RFC 2812: 512 bytes a line, CR LF included.
            let last = self.clients - 1;
            let head = format!("PRIVMSG {} :", topology.channel(topology.room_of(last)));
            if head.len() + message::text_len(self.size) + 2 > 512 {
                return bad(format!(
                    "--size {} makes IRC lines longer than 512 bytes",
                    self.size
                ));
            }
            if !irc::valid_nick(&self.name(0)) || !irc::valid_nick(&self.name(last)) {
                return bad(format!(
                    "--name-prefix {:?} does not make IRC nicknames (a letter, then letters, digits or -)",
                    self.name_prefix
                ));
            }
        }
        let longest = self.name_prefix.chars().count() + message::digits(self.clients as u64);
        if longest > chat_proto::MAX_NAME_CHARS || chat_proto::Name::new(self.name(0)).is_err() {
            return bad(format!(
                "--name-prefix {:?} does not make valid names",
                self.name_prefix
            ));
        }
        Ok(())
    }

    /// The name of client `i`.
    pub fn name(&self, i: usize) -> String {
        format!("{}{i}", self.name_prefix)
    }
}

/// Progress shared by the tasks and watched by the run loop.
#[derive(Debug, Default)]
struct Progress {
    delivered: AtomicU64,
    senders_done: AtomicUsize,
    readers_done: AtomicUsize,
}

/// How far a client's own messages have come back to it (over IRC: to its
/// witness), for the window.
#[derive(Debug, Default)]
struct Echo {
    next: AtomicU32,
    notify: Notify,
}

/// What one reader saw.
#[derive(Debug)]
pub(crate) struct ReaderOutcome {
    pub(crate) tracker: SeqTracker,
    pub(crate) latency: Histogram,
    pub(crate) received: u64,
    pub(crate) errors: u64,
    pub(crate) error_samples: Vec<String>,
    /// Why it stopped before its K×M deliveries, if it did.
    pub(crate) ended: Option<String>,
    /// When the last delivery arrived, ns since the epoch.
    pub(crate) last_ns: u64,
}

/// Everything a reader needs besides its socket.
struct ReaderCtx {
    me: usize,
    /// The sender whose window this reader feeds (itself over chat).
    watched: usize,
    topology: Topology,
    messages: u32,
    names: Arc<[String]>,
    epoch: Instant,
    /// The watched sender's progress.
    echo: Arc<Echo>,
    progress: Arc<Progress>,
    /// Encoded pongs, for the writer to send.
    pongs: mpsc::UnboundedSender<Bytes>,
    /// Set once this reader has every delivery it expects.
    complete: Arc<AtomicBool>,
    stop: watch::Receiver<bool>,
}

async fn reader(
    mut rd: OwnedReadHalf,
    mut listener: Listener,
    mut ctx: ReaderCtx,
) -> ReaderOutcome {
    let expected = u64::from(ctx.messages) * ctx.topology.audience(ctx.me) as u64;
    let mut buf = vec![0u8; READ_BUF];
    let mut pongs = BytesMut::new();
    let mut out = ReaderOutcome {
        tracker: SeqTracker::new(ctx.names.len()),
        latency: Histogram::new(),
        received: 0,
        errors: 0,
        error_samples: Vec::new(),
        ended: None,
        last_ns: 0,
    };
    let name = ctx.names[ctx.me].clone();
    while out.received < expected && out.ended.is_none() {
        let read = tokio::select! {
            biased;
            r = rd.read(&mut buf) => r,
            _ = ctx.stop.changed() => {
                out.ended = Some(format!("{name}: stopped waiting"));
                break;
            }
        };
        let n = match read {
            Ok(0) => {
                out.ended = Some(format!("{name}: the server closed the connection"));
                break;
            }
            Ok(n) => n,
            Err(e) => {
                out.ended = Some(format!("{name}: read failed: {e}"));
                break;
            }
        };
        let now_ns = ctx.epoch.elapsed().as_nanos() as u64;
        let before = out.received;
        let mut own = None;
        let ReaderOutcome {
            tracker,
            latency,
            received,
            errors,
            error_samples,
            ended,
            ..
        } = &mut out;
        let mut error = |m: String| {
            *errors += 1;
            if error_samples.len() < ERROR_SAMPLES {
                error_samples.push(format!("{name}: {m}"));
            }
        };
        listener.feed(&buf[..n], &mut pongs, |heard| match heard {
            Heard::Said { from, text } => match message::parse(text) {
                Some(Stamp { sender, seq, t_ns })
                    if ctx.topology.hears(ctx.me, sender as usize)
                        && seq < ctx.messages
                        && ctx.names[sender as usize] == from =>
                {
                    tracker.record(sender as usize, seq);
                    latency.record(now_ns.saturating_sub(t_ns));
                    *received += 1;
                    if sender as usize == ctx.watched {
                        own = Some(seq);
                    }
                }
                _ => error(format!("unexpected msg from {from}: {:.40}", text)),
            },
            Heard::Unexpected(m) => error(m),
            Heard::End(why) => *ended = Some(format!("{name}: {why}")),
            Heard::Nothing => {}
        });
        if !pongs.is_empty() {
            let _ = ctx.pongs.send(pongs.split().freeze());
        }
        if let Some(seq) = own {
            ctx.echo.next.store(seq + 1, Ordering::Release);
            ctx.echo.notify.notify_one();
        }
        if out.received > before {
            ctx.progress
                .delivered
                .fetch_add(out.received - before, Ordering::Relaxed);
            out.last_ns = now_ns;
        }
    }
    if out.received >= expected && out.ended.is_none() {
        // Before the pong channel closes (when `ctx` drops), so the writer
        // knows to go on without its reader.
        ctx.complete.store(true, Ordering::Release);
    }
    ctx.progress.readers_done.fetch_add(1, Ordering::Release);
    out
}

/// Everything a writer needs besides its socket.
struct WriterCtx {
    me: usize,
    clients: usize,
    messages: u32,
    size: usize,
    speech: Speech,
    pacing: Pacing,
    batch: u32,
    epoch: Instant,
    start: Instant,
    echo: Arc<Echo>,
    progress: Arc<Progress>,
}

/// The pongs a reader encodes for its writer, and whether that reader has
/// every delivery it expects.
struct PongQueue {
    rx: mpsc::UnboundedReceiver<Bytes>,
    reader_complete: Arc<AtomicBool>,
}

impl PongQueue {
    /// The next pongs to send. `None` once the reader has stopped short (its
    /// connection is lost, or the run is abandoned): the writer stops too.
    /// A reader with every delivery it expects may finish before its writer
    /// has sent everything (over IRC it never hears its own messages): then
    /// this waits forever, and the writer goes on alone.
    async fn next(&mut self) -> Option<Bytes> {
        match self.rx.recv().await {
            Some(p) => Some(p),
            None if self.reader_complete.load(Ordering::Acquire) => {
                std::future::pending::<()>().await;
                None
            }
            None => None,
        }
    }
}

/// Sends pongs the reader encoded; `Ok(false)` if the reader is gone
/// (channel closed).
async fn pong(wr: &mut OwnedWriteHalf, pongs: Option<Bytes>) -> std::io::Result<bool> {
    match pongs {
        Some(p) => wr.write_all(&p).await.map(|()| true),
        None => Ok(false),
    }
}

async fn writer(
    mut wr: OwnedWriteHalf,
    ctx: WriterCtx,
    mut pongs: PongQueue,
) -> std::io::Result<()> {
    let sent = send_all(&mut wr, &ctx, &mut pongs).await;
    ctx.progress.senders_done.fetch_add(1, Ordering::Release);
    if !sent? {
        return Ok(());
    }
    // Dropping the write half would shut the socket's sending side, and the
    // server would close the connection: keep it (answering pings) until
    // the reader is done and drops its end of the pong channel.
    while let Some(token) = pongs.rx.recv().await {
        pong(&mut wr, Some(token)).await?;
    }
    if pongs.reader_complete.load(Ordering::Acquire) {
        // Over IRC a client never hears its own messages, so its reader may
        // be done before the server has read them all, and a server may
        // drop what it has not read when the client shuts its side (ngircd
        // does): keep the socket until the witness has every message. Over
        // chat the reader, done, has them all already.
        delivered(&ctx.echo, ctx.messages).await;
    }
    Ok(())
}

/// Waits until the witness of a sender has seen its `messages` messages.
async fn delivered(echo: &Echo, messages: u32) {
    loop {
        let notified = echo.notify.notified();
        if echo.next.load(Ordering::Acquire) >= messages {
            return;
        }
        notified.await;
    }
}

/// Sends the client's messages; `Ok(false)` if its reader stopped short
/// first.
async fn send_all(
    wr: &mut OwnedWriteHalf,
    ctx: &WriterCtx,
    pongs: &mut PongQueue,
) -> std::io::Result<bool> {
    let frames_per_write = match ctx.pacing {
        Pacing::Burst { .. } => ctx.batch as usize,
        Pacing::Rate(_) => 1,
    };
    let mut buf = Vec::with_capacity(frames_per_write * ctx.size + 64);
    let stamp = |seq| Stamp {
        sender: ctx.me as u32,
        seq,
        t_ns: ctx.epoch.elapsed().as_nanos() as u64,
    };
    let mut seq = 0;
    while seq < ctx.messages {
        let end = match ctx.pacing {
            Pacing::Burst { window } => {
                let mut end = ctx.messages.min(seq + ctx.batch);
                if window > 0 {
                    loop {
                        let notified = ctx.echo.notify.notified();
                        let echoed = ctx.echo.next.load(Ordering::Acquire);
                        if seq < echoed + window {
                            end = end.min(echoed + window);
                            break;
                        }
                        tokio::select! {
                            _ = notified => {}
                            token = pongs.next() => if !pong(wr, token).await? {
                                return Ok(false);
                            },
                        }
                    }
                }
                end
            }
            Pacing::Rate(rate) => {
                let interval = 1.0 / rate;
                let offset = interval * ctx.me as f64 / ctx.clients as f64;
                let at = ctx.start + Duration::from_secs_f64(offset + interval * f64::from(seq));
                let at = tokio::time::Instant::from_std(at);
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => break,
                        token = pongs.next() => if !pong(wr, token).await? {
                            return Ok(false);
                        },
                    }
                }
                seq + 1
            }
        };
        buf.clear();
        for s in seq..end {
            ctx.speech.encode(&mut buf, stamp(s));
        }
        wr.write_all(&buf).await?;
        seq = end;
        while let Ok(token) = pongs.rx.try_recv() {
            pong(wr, Some(token)).await?;
        }
    }
    Ok(true)
}

/// Logs every client in, each into its room; returns their sockets and
/// listeners in index order.
async fn login_all(
    cfg: &FanoutConfig,
) -> Result<Vec<(tokio::net::TcpStream, Listener)>, LoadError> {
    let done = Arc::new(AtomicUsize::new(0));
    let topology = cfg.topology();
    let mut set = JoinSet::new();
    for i in 0..cfg.clients {
        let (target, source, name, protocol, done) = (
            cfg.target,
            net::source_addr(i, cfg.sources),
            cfg.name(i),
            cfg.protocol,
            done.clone(),
        );
        set.spawn(async move {
            let mut stream = net::connect(target, source, false).await?;
            let listener = wire::log_in(&mut stream, protocol, &topology, i, &name).await?;
            done.fetch_add(1, Ordering::Relaxed);
            Ok::<_, LoadError>((i, stream, listener))
        });
    }
    let mut clients: Vec<Option<(tokio::net::TcpStream, Listener)>> =
        (0..cfg.clients).map(|_| None).collect();
    let collect = async {
        while let Some(joined) = set.join_next().await {
            let (i, stream, listener) =
                joined.map_err(|e| LoadError::Io(format!("login task failed: {e}")))??;
            clients[i] = Some((stream, listener));
        }
        Ok::<_, LoadError>(())
    };
    match tokio::time::timeout(cfg.login_timeout, collect).await {
        Ok(result) => result?,
        Err(_) => {
            return Err(LoadError::Timeout {
                phase: "login",
                limit: cfg.login_timeout,
                detail: format!(
                    "{} of {} clients logged in",
                    done.load(Ordering::Relaxed),
                    cfg.clients
                ),
            });
        }
    }
    Ok(clients.into_iter().flatten().collect())
}

/// Runs the scenario. Setup failures (bad configuration, refused logins,
/// login timeout) are errors; a run phase that ends badly still gives a
/// report, whose [`status`](FanoutReport::status) says what went wrong.
pub async fn run(cfg: &FanoutConfig) -> Result<FanoutReport, LoadError> {
    cfg.validate()?;
    let epoch = Instant::now();
    let mem_before = cfg.server_pid.and_then(|p| crate::procfs::memory(Some(p)));
    let login_started = Instant::now();
    let clients = login_all(cfg).await?;
    let login_s = login_started.elapsed().as_secs_f64();

    let names: Arc<[String]> = (0..cfg.clients).map(|i| cfg.name(i)).collect();
    let topology = cfg.topology();
    let echoes: Vec<Arc<Echo>> = (0..cfg.clients).map(|_| Arc::default()).collect();
    let progress = Arc::new(Progress::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut readers = JoinSet::new();
    let mut writers = JoinSet::new();
    let meter = Meter::start(cfg.server_pid);
    let start = Instant::now();
    for (me, (stream, listener)) in clients.into_iter().enumerate() {
        let (rd, wr) = stream.into_split();
        let watched = topology.watched(me);
        let (pong_tx, pong_rx) = mpsc::unbounded_channel();
        let complete = Arc::new(AtomicBool::new(false));
        let pongs = PongQueue {
            rx: pong_rx,
            reader_complete: complete.clone(),
        };
        let rctx = ReaderCtx {
            me,
            watched,
            topology,
            messages: cfg.messages,
            names: names.clone(),
            epoch,
            echo: echoes[watched].clone(),
            progress: progress.clone(),
            pongs: pong_tx,
            complete,
            stop: stop_rx.clone(),
        };
        let wctx = WriterCtx {
            me,
            clients: cfg.clients,
            messages: cfg.messages,
            size: cfg.size,
            speech: Speech::new(cfg.protocol, &topology, me, cfg.size),
            pacing: cfg.pacing,
            batch: cfg.batch,
            epoch,
            start,
            echo: echoes[me].clone(),
            progress: progress.clone(),
        };
        readers.spawn(reader(rd, listener, rctx));
        writers.spawn(writer(wr, wctx, pongs));
    }

    let status = watch_run(cfg, &progress, start).await;
    let _ = stop_tx.send(true);
    let mut outcomes = Vec::with_capacity(cfg.clients);
    while let Some(joined) = readers.join_next().await {
        outcomes.push(joined.map_err(|e| LoadError::Io(format!("reader task failed: {e}")))?);
    }
    let mut write_errors = Vec::new();
    while let Some(Ok(Err(e))) = writers.try_join_next() {
        write_errors.push(e.to_string());
    }
    writers.abort_all();
    let last_ns = outcomes.iter().map(|o| o.last_ns).max().unwrap_or(0);
    let start_ns = start.duration_since(epoch).as_nanos() as u64;
    let cpu = meter.stop_at(start + Duration::from_nanos(last_ns.saturating_sub(start_ns)));
    let mem_end = meter.server_memory();
    Ok(FanoutReport::new(
        cfg.clone(),
        login_s,
        outcomes,
        write_errors,
        status,
        cpu,
        mem_before,
        mem_end,
    ))
}

/// Watches the run phase until every reader is done, deliveries stall, or
/// time runs out. Returns `Ok`, or the status explaining why it stopped
/// early (the report adds losses and errors to an `Ok`).
async fn watch_run(cfg: &FanoutConfig, progress: &Progress, start: Instant) -> Status {
    let deadline = start + cfg.run_timeout;
    let mut last = (0, Instant::now());
    loop {
        if progress.readers_done.load(Ordering::Acquire) == cfg.clients {
            return Status::Ok;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = Instant::now();
        let delivered = progress.delivered.load(Ordering::Relaxed);
        if delivered != last.0 {
            last = (delivered, now);
        }
        let sent_all = progress.senders_done.load(Ordering::Acquire) == cfg.clients;
        if sent_all && now.duration_since(last.1) >= cfg.stall_timeout {
            return Status::Fail(format!(
                "no delivery for {:.1} s after every message was sent ({delivered} of {} received)",
                cfg.stall_timeout.as_secs_f64(),
                cfg.expected()
            ));
        }
        if now >= deadline {
            return Status::Timeout(format!(
                "the run phase did not finish within {:.1} s ({delivered} of {} deliveries received)",
                cfg.run_timeout.as_secs_f64(),
                cfg.expected()
            ));
        }
    }
}
