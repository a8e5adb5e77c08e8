//! The `resume` scenario: N clients that were away while M messages were
//! said come back at once and resume.
//!
//! 1. A probe logs in with the history capability and reads where the
//!    server's default room stands (`room:ROOM:EPOCH:NEXT`), then leaves:
//!    that is where every client of the scenario was when it went away.
//! 2. A writer (a plain client) says M messages of S bytes and waits for
//!    its own last echo, so that all are in the room's history.
//! 3. N clients connect at once, each sending
//!    `cap:rooms,history`, `resume:ROOM:EPOCH:NEXT` and `iam:NAME` in one
//!    write, and read until they have the M messages. Each checks that the
//!    offsets run from NEXT one by one (no gap, no duplicate) and that no
//!    error comes. Reported: when each client had everything (p50, p99,
//!    max from the start of the phase), the phase's wall time, messages
//!    delivered per second, and the server's CPU.
//!
//! The server must keep M messages of history and replay them all: run it
//! with `--rate-limit off --history M --history-bytes B --max-replay M`
//! (B at least M times the `said:` frame, about S + 30 bytes).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use chat_proto::{CapList, ClientFrame, Decoder, Name, ServerFrame, Text};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::histogram::Histogram;
use crate::net::{self, Incoming};
use crate::report::{Meter, PhaseCpu, ResultLine, Status};
use crate::stream::Stream;
use crate::{DECODER_MAX_FRAME, LoadError};

/// What a `resume` run does.
#[derive(Debug, Clone)]
pub struct ResumeConfig {
    /// The server.
    pub target: SocketAddr,
    /// N: clients that resume at once.
    pub clients: usize,
    /// M: messages said while they were away.
    pub missed: u32,
    /// S: bytes of each `msg:` frame, LF included.
    pub size: usize,
    /// Source addresses to spread the clients over.
    pub sources: u8,
    /// Names are this prefix and an index (`w` for the writer, `p` for the
    /// probe).
    pub name_prefix: String,
    /// The server's pid, for its CPU time.
    pub server_pid: Option<u32>,
    /// The bound on each phase.
    pub timeout: Duration,
}

impl ResumeConfig {
    /// N clients resuming M messages of S bytes from `target`.
    pub fn new(target: SocketAddr, clients: usize, missed: u32, size: usize) -> Self {
        ResumeConfig {
            target,
            clients,
            missed,
            size,
            sources: 1,
            name_prefix: "r".into(),
            server_pid: None,
            timeout: Duration::from_secs(120),
        }
    }
}

/// What a run measured.
#[derive(Debug)]
pub struct ResumeReport {
    /// The configuration.
    pub config: ResumeConfig,
    /// How it ended.
    pub status: Status,
    /// Clients that had every message.
    pub complete: usize,
    /// Messages delivered in the resume phase, all clients together.
    pub delivered: u64,
    /// When each complete client had everything, from the phase's start
    /// (ns).
    pub done: Histogram,
    /// The writer's phase.
    pub write: PhaseCpu,
    /// The resume phase.
    pub resume: PhaseCpu,
}

impl ResumeReport {
    /// A few lines for a person.
    pub fn summary(&self) -> String {
        let c = &self.config;
        let ms = |ns: u64| ns as f64 / 1e6;
        format!(
            "resume: {} clients, {} missed messages of {} bytes each\n\
             write: {} messages in {:.2} s\n\
             resume: {}/{} clients complete, {} messages in {:.2} s ({:.0}/s); \
             complete after p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; server CPU {}\n\
             status: {}",
            c.clients,
            c.missed,
            c.size,
            c.missed,
            self.write.wall_s,
            self.complete,
            c.clients,
            self.delivered,
            self.resume.wall_s,
            self.rate(),
            ms(self.done.quantile(0.5)),
            ms(self.done.quantile(0.99)),
            ms(self.done.max()),
            crate::report::or_na(self.resume.server_s, 2),
            self.status,
        )
    }

    fn rate(&self) -> f64 {
        self.delivered as f64 / self.resume.wall_s.max(1e-9)
    }

    /// The `RESULT` line.
    pub fn result_line(&self) -> String {
        let c = &self.config;
        let ms = |ns: u64| ns as f64 / 1e6;
        let mut line = ResultLine::new("resume");
        line.put("status", self.status.word())
            .put("clients", c.clients)
            .put("missed", c.missed)
            .put("size", c.size)
            .put("complete", self.complete)
            .put("delivered", self.delivered)
            .float("write_s", self.write.wall_s, 3)
            .float("resume_s", self.resume.wall_s, 3)
            .float("msgs_per_s", self.rate(), 0)
            .float("done_p50_ms", ms(self.done.quantile(0.5)), 1)
            .float("done_p99_ms", ms(self.done.quantile(0.99)), 1)
            .float("done_max_ms", ms(self.done.max()), 1)
            .opt_float("server_cpu_s", self.resume.server_s, 3)
            .float("gen_cpu_s", self.resume.gen_s, 3);
        line.finish()
    }
}

fn io(who: &str) -> impl Fn(std::io::Error) -> LoadError + '_ {
    move |e| LoadError::Io(format!("{who}: {e}"))
}

/// Runs the scenario.
pub async fn run(c: &ResumeConfig) -> Result<ResumeReport, LoadError> {
    if c.clients == 0 || c.missed == 0 {
        return Err(LoadError::Config(
            "--clients and --missed must be > 0".into(),
        ));
    }
    let text_len = c.size.checked_sub(5).filter(|n| *n >= 10).ok_or_else(|| {
        LoadError::Config(format!("--size {} is too small (at least 15)", c.size))
    })?;
    let bounded = |phase: &'static str, detail: &str| LoadError::Timeout {
        phase,
        limit: c.timeout,
        detail: detail.to_owned(),
    };
    let (room, epoch, next) = tokio::time::timeout(c.timeout, position(c))
        .await
        .map_err(|_| bounded("probe", "no room: frame"))??;
    let meter = Meter::start(c.server_pid);
    tokio::time::timeout(c.timeout, write(c, text_len))
        .await
        .map_err(|_| bounded("write", "the writer's last echo did not come"))??;
    let write = meter.stop();

    let meter = Meter::start(c.server_pid);
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(0));
    let tasks: Vec<_> = (0..c.clients)
        .map(|i| {
            let (c, room, epoch, gate) = (c.clone(), room.clone(), epoch, gate.clone());
            tokio::spawn(async move {
                let _go = gate.acquire().await;
                let run = resume_one(&c, i, &room, epoch, next);
                match tokio::time::timeout(c.timeout, run).await {
                    Ok(result) => result,
                    Err(_) => Err(format!("r{i}: not complete within {:?}", c.timeout)),
                }
            })
        })
        .collect();
    // All at once: every task starts when the gate opens.
    gate.add_permits(c.clients);
    let mut done = Histogram::new();
    let (mut complete, mut delivered, mut failures) = (0, 0u64, Vec::new());
    for task in tasks {
        match task.await {
            Ok(Ok((at, got))) => {
                complete += 1;
                delivered += got;
                done.record(at.saturating_duration_since(started).as_nanos() as u64);
            }
            Ok(Err(why)) => failures.push(why),
            Err(e) => failures.push(format!("task: {e}")),
        }
    }
    let resume = meter.stop();
    let status = match failures.first() {
        None => Status::Ok,
        Some(first) => Status::Fail(format!("{} clients failed; first: {first}", failures.len())),
    };
    Ok(ResumeReport {
        config: c.clone(),
        status,
        complete,
        delivered,
        done,
        write,
        resume,
    })
}

/// Reads the server's default room and where it stands, as a history
/// client logging in sees it.
async fn position(c: &ResumeConfig) -> Result<(String, u64, u64), LoadError> {
    let who = format!("{}p", c.name_prefix);
    let mut stream = Stream::Plain(net::connect(c.target, net::source_addr(0, 1), true).await?);
    let mut out = BytesMut::new();
    ClientFrame::Cap(CapList::new("rooms,history").expect("valid")).encode(&mut out);
    ClientFrame::Iam(Name::new(&who).map_err(|e| LoadError::Config(e.to_string()))?)
        .encode(&mut out);
    stream.write_all(&out).await.map_err(io(&who))?;
    let (mut decoder, mut buf) = (Decoder::new(DECODER_MAX_FRAME), vec![0u8; 64 << 10]);
    let mut found = None;
    while found.is_none() {
        let n = stream.read(&mut buf).await.map_err(io(&who))?;
        if n == 0 {
            return Err(LoadError::Io(format!("{who}: closed before room:")));
        }
        decoder.decode(&buf[..n], |frame| {
            if let Ok(ServerFrame::Room { room, epoch, next }) = frame.and_then(ServerFrame::parse)
            {
                found.get_or_insert((room.to_string(), epoch, next));
            }
        });
    }
    Ok(found.expect("set above"))
}

/// The writer says `missed` messages (`msg:`, at most 100 unechoed) and
/// waits for its last echo.
async fn write(c: &ResumeConfig, text_len: usize) -> Result<(), LoadError> {
    let who = format!("{}w", c.name_prefix);
    let mut stream = Stream::Plain(net::connect(c.target, net::source_addr(0, 1), true).await?);
    let (mut decoder, mut buf) = (Decoder::new(DECODER_MAX_FRAME), vec![0u8; 64 << 10]);
    net::login(&mut stream, &mut decoder, &mut buf, &who).await?;
    let (mut sent, mut echoed) = (0u32, 0u32);
    let mut out = BytesMut::new();
    while echoed < c.missed {
        out.clear();
        while sent < c.missed && sent < echoed + 100 {
            let text = format!("{sent:0text_len$}");
            ClientFrame::Msg(Text::new(&text).expect("digits")).encode(&mut out);
            sent += 1;
        }
        stream.write_all(&out).await.map_err(io(&who))?;
        let n = stream.read(&mut buf).await.map_err(io(&who))?;
        if n == 0 {
            return Err(LoadError::Io(format!(
                "{who}: closed after {echoed} echoes"
            )));
        }
        let mut pongs = Vec::new();
        decoder.decode(&buf[..n], |frame| {
            net::classify(frame, |incoming| match incoming {
                Incoming::Msg { from, .. } if from == who => echoed += 1,
                Incoming::Ping(token) => pongs.push(token.into_owned()),
                _ => {}
            })
        });
        net::write_pongs(&mut stream, &pongs)
            .await
            .map_err(io(&who))?;
    }
    Ok(())
}

/// One client resumes from `next` and reads the missed messages; returns
/// when it had them all and how many it got.
async fn resume_one(
    c: &ResumeConfig,
    i: usize,
    room: &str,
    epoch: u64,
    next: u64,
) -> Result<(Instant, u64), String> {
    let who = format!("{}{i}", c.name_prefix);
    let fail = |e: LoadError| e.to_string();
    let mut stream = net::connect(c.target, net::source_addr(i, c.sources), true)
        .await
        .map(Stream::Plain)
        .map_err(fail)?;
    let mut out = BytesMut::new();
    let frames = [
        ClientFrame::Cap(CapList::new("rooms,history").expect("valid")),
        ClientFrame::Resume {
            room: Name::new(room).map_err(|e| e.to_string())?,
            epoch,
            next,
        },
        ClientFrame::Iam(Name::new(&who).map_err(|e| e.to_string())?),
    ];
    for frame in frames {
        frame.encode(&mut out);
    }
    stream
        .write_all(&out)
        .await
        .map_err(|e| format!("{who}: {e}"))?;
    let (mut decoder, mut buf) = (Decoder::new(DECODER_MAX_FRAME), vec![0u8; 64 << 10]);
    let (end, mut expected) = (next + u64::from(c.missed), next);
    while expected < end {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("{who}: {e}"))?;
        if n == 0 {
            return Err(format!("{who}: closed at offset {expected}"));
        }
        let (mut pongs, mut wrong) = (Vec::new(), None);
        decoder.decode(&buf[..n], |frame| {
            match frame.and_then(ServerFrame::parse) {
                Ok(ServerFrame::Said {
                    room: r, offset, ..
                }) if r.as_str() == room => {
                    if offset != expected && wrong.is_none() {
                        wrong = Some(format!("{who}: offset {offset} where {expected} was due"));
                    }
                    expected = offset + 1;
                }
                Ok(ServerFrame::Ping(token)) => pongs.push(token.into_owned()),
                Ok(ServerFrame::Err { code, text }) if wrong.is_none() => {
                    wrong = Some(format!("{who}: err:{code}:{text}"));
                }
                Ok(ServerFrame::Bye(reason)) if wrong.is_none() => {
                    wrong = Some(format!("{who}: bye:{reason}"));
                }
                Err(e) if wrong.is_none() => wrong = Some(format!("{who}: {e}")),
                _ => {}
            }
        });
        if let Some(why) = wrong {
            return Err(why);
        }
        net::write_pongs(&mut stream, &pongs)
            .await
            .map_err(|e| format!("{who}: {e}"))?;
    }
    Ok((Instant::now(), end - next))
}
