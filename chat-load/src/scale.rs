//! The connection-scale scenario: N idle logged-in connections.
//!
//! 1. **login**: N connections, at most `concurrency` connecting or logging
//!    in at once (the server's listen backlog is 1024), each bound to
//!    127.0.0.(1 + i mod `sources`) first so ephemeral ports do not run
//!    out. A connection counts once the server has answered `ok:NAME`. The
//!    login time runs from the first connect to the last `ok:`. With
//!    `rooms` (R), each connection logs in with the rooms capability and
//!    joins room `bench<i mod R>`, and counts once the server says it reads
//!    it (`room:ROOM:...`): the login time then includes the joins. Every
//!    connection is also in the server's default room, the room holding
//!    all of them.
//! 2. **hold** (measured): every connection stays idle for `hold`, answering
//!    the server's keepalive pings with pongs. Any connection the server
//!    closes fails the run.
//!
//! With the server's pid it reports the server's RSS per connection
//! ((VmRSS after all logins − VmRSS before the first connection) / N, and
//! the same with VmHWM) and its CPU while idle, as a percentage of one core
//! over the hold.
//!
//! At the end the connections are reset rather than closed (see
//! [`net::connect`]), so no `TIME_WAIT` is left to slow down the next run.
//!
//! An idle connection costs the generator its socket, a decoder (which
//! holds no buffer between frames) and a small task: reads go through one
//! scratch buffer per thread after the socket reports readable, so no
//! buffer is held per connection.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use chat_proto::{ClientFrame, Decoder};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::net::{self, Incoming, classify};
use crate::procfs::{self, Memory};
use crate::report::{Meter, PhaseCpu, ResultLine, Status, or_na};
use crate::topology::Topology;
use crate::{DECODER_MAX_FRAME, LoadError};

/// What to run.
#[derive(Debug, Clone)]
pub struct ScaleConfig {
    /// The server, in 127.0.0.0/8.
    pub target: SocketAddr,
    /// N: connections to open and log in.
    pub connections: usize,
    /// T: how long to hold them idle once all are logged in.
    pub hold: Duration,
    /// Source addresses to spread over, 127.0.0.1 upwards.
    pub sources: u8,
    /// Most connections connecting or logging in at once.
    pub concurrency: usize,
    /// R: rooms to spread the connections over, each joined at login
    /// (`None`, the default: the default room only).
    pub rooms: Option<usize>,
    /// Names are this prefix and the connection's index.
    pub name_prefix: String,
    /// The server's pid, for its CPU and memory.
    pub server_pid: Option<u32>,
    /// Deadline for all logins.
    pub login_timeout: Duration,
    /// Generator runtime threads, for the report only.
    pub gen_threads: usize,
}

impl ScaleConfig {
    /// `connections` held for `hold`, with the default spreading and
    /// timeouts.
    pub fn new(target: SocketAddr, connections: usize, hold: Duration) -> Self {
        ScaleConfig {
            target,
            connections,
            hold,
            sources: 4,
            concurrency: 256,
            rooms: None,
            name_prefix: "idle".into(),
            server_pid: None,
            login_timeout: Duration::from_secs(60),
            gen_threads: 1,
        }
    }

    /// Checks the configuration can work, including this process's limit on
    /// open files.
    pub fn validate(&self) -> Result<(), LoadError> {
        net::check_loopback(self.target.ip(), "target address")?;
        let bad = |m: String| Err(LoadError::Config(m));
        if self.connections == 0 || self.concurrency == 0 || self.sources == 0 {
            return bad("--connections, --concurrency and --sources must be at least 1".into());
        }
        if self.sources > 254 {
            return bad("--sources is at most 254 (127.0.0.1 to 127.0.0.254)".into());
        }
        if self.rooms.is_some_and(|r| r == 0 || r > self.connections) {
            return bad("--rooms must be at least 1 and at most --connections".into());
        }
        if self.hold > Duration::from_secs(24 * 3600) {
            return bad("--hold is at most a day".into());
        }
        if let Some(limit) = procfs::open_files_limit()
            && self.connections as u64 + 32 > limit
        {
            return bad(format!(
                "{} connections need more open files than this process may have ({limit}); \
                 raise `ulimit -n` (hard limit: `ulimit -Hn`) or ask for fewer",
                self.connections
            ));
        }
        let name = format!("{}{}", self.name_prefix, self.connections);
        if chat_proto::Name::new(name.as_str()).is_err() {
            return bad(format!(
                "--name-prefix {:?} does not make valid names",
                self.name_prefix
            ));
        }
        Ok(())
    }
}

/// Counters shared by the connection tasks.
#[derive(Debug, Default)]
struct Shared {
    logged_in: AtomicUsize,
    /// Connections that failed to log in or were closed afterwards.
    failed: AtomicUsize,
    pings: AtomicU64,
    /// When the last login was confirmed, ns after the start.
    all_logged_in_ns: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Shared {
    fn fail(&self, why: String) {
        self.failed.fetch_add(1, Ordering::Release);
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(why);
    }

    fn first_error(&self) -> String {
        let first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        first.clone().unwrap_or_default()
    }
}

thread_local! {
    /// The read buffer every idle connection of a thread shares.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; 16 * 1024]);
}

/// One connection: connect, log in, then answer pings until aborted.
async fn connection(
    i: usize,
    cfg: Arc<ScaleConfig>,
    shared: Arc<Shared>,
    gate: Arc<Semaphore>,
    start: Instant,
) {
    let name = format!("{}{i}", cfg.name_prefix);
    let logged_in = async {
        let _permit = gate
            .acquire()
            .await
            .map_err(|e| LoadError::Io(e.to_string()))?;
        let mut stream = net::connect(cfg.target, net::source_addr(i, cfg.sources), true).await?;
        let mut decoder = Decoder::new(DECODER_MAX_FRAME);
        // On the heap and freed after login, so idle tasks stay small.
        let mut buf = vec![0u8; 2048];
        match cfg.rooms {
            Some(rooms) => {
                let room = Topology::room_name(i % rooms);
                net::login_in_room(&mut stream, &mut decoder, &mut buf, &name, &room).await?;
            }
            None => net::login(&mut stream, &mut decoder, &mut buf, &name).await?,
        }
        Ok::<_, LoadError>((stream, decoder))
    };
    let (stream, decoder) = match logged_in.await {
        Ok(ok) => ok,
        Err(e) => return shared.fail(e.to_string()),
    };
    if shared.logged_in.fetch_add(1, Ordering::AcqRel) + 1 == cfg.connections {
        let ns = start.elapsed().as_nanos() as u64;
        shared.all_logged_in_ns.store(ns, Ordering::Release);
    }
    if let Err(why) = idle(stream, decoder, &shared).await {
        shared.fail(format!("{name}: {why}"));
    }
}

/// Reads until the connection ends, answering pings. Returns why it ended.
async fn idle(mut stream: TcpStream, mut decoder: Decoder, shared: &Shared) -> Result<(), String> {
    let mut out = BytesMut::new();
    loop {
        let mut pings = 0u64;
        stream.readable().await.map_err(|e| e.to_string())?;
        let mut ended = None;
        let read = SCRATCH.with(|scratch| {
            let mut buf = scratch.borrow_mut();
            let n = match stream.try_read(&mut buf) {
                Ok(0) => return Err("the server closed the connection".to_string()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e.to_string()),
            };
            decoder.decode(&buf[..n], |frame| {
                classify(frame, |incoming| match incoming {
                    Incoming::Ping(token) => {
                        ClientFrame::Pong(token).encode(&mut out);
                        pings += 1;
                    }
                    Incoming::Err(code, text) => {
                        ended.get_or_insert(format!("err:{code}:{text}"));
                    }
                    Incoming::Bye(reason) => {
                        ended.get_or_insert(format!("bye:{reason}"));
                    }
                    Incoming::Bad(e) => {
                        ended.get_or_insert(format!("undecodable frame: {e}"));
                    }
                    // Presence (join:) for the first logins; nothing else.
                    _ => {}
                })
            });
            Ok(())
        });
        read?;
        if !out.is_empty() {
            stream.write_all(&out).await.map_err(|e| e.to_string())?;
            out.clear();
            shared.pings.fetch_add(pings, Ordering::Relaxed);
        }
        if let Some(why) = ended {
            return Err(why);
        }
    }
}

/// The results of a scale run.
#[derive(Debug, Clone)]
pub struct ScaleReport {
    /// What was run.
    pub config: ScaleConfig,
    /// First connect to last `ok:`, seconds.
    pub login_s: f64,
    /// CPU over the login phase.
    pub login_cpu: PhaseCpu,
    /// CPU over the hold.
    pub hold_cpu: PhaseCpu,
    /// Pings answered during the hold.
    pub pings_in_hold: u64,
    /// Server memory before the first connection.
    pub mem_before: Option<Memory>,
    /// Server memory right after the last login.
    pub mem_logged_in: Option<Memory>,
    /// Server memory at the end of the hold.
    pub mem_end: Option<Memory>,
    /// How it went.
    pub status: Status,
}

impl ScaleReport {
    /// Server bytes per connection: (`after` − VmRSS before) / N.
    fn per_conn(&self, after: Option<u64>) -> Option<f64> {
        let before = self.mem_before?.rss_kb;
        Some((after? as f64 - before as f64) * 1024.0 / self.config.connections as f64)
    }

    /// Server RSS per connection after all logins, bytes.
    pub fn rss_per_conn(&self) -> Option<f64> {
        self.per_conn(self.mem_logged_in.map(|m| m.rss_kb))
    }

    /// Server peak RSS (VmHWM at the end) per connection, bytes.
    pub fn hwm_per_conn(&self) -> Option<f64> {
        self.per_conn(self.mem_end.map(|m| m.hwm_kb))
    }

    /// Server CPU while idle, percent of one core.
    pub fn idle_cpu_pct(&self) -> Option<f64> {
        Some(100.0 * self.hold_cpu.server_s? / self.hold_cpu.wall_s.max(1e-9))
    }

    /// The same from schedstat (finer than the 10 ms ticks).
    pub fn idle_sched_pct(&self) -> Option<f64> {
        Some(100.0 * self.hold_cpu.server_sched_s? / self.hold_cpu.wall_s.max(1e-9))
    }

    /// The human-readable summary.
    pub fn summary(&self) -> String {
        let c = &self.config;
        let n = c.connections;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "scale: {n} idle connections to {} from {} source address(es), {} logins at a time",
            c.target, c.sources, c.concurrency
        );
        if let Some(rooms) = c.rooms {
            let _ = writeln!(
                s,
                "  rooms        each logs in with cap:rooms and joins one of {rooms} rooms \
                 (bench0 to bench{}); all are also in the default room",
                rooms - 1
            );
        }
        let _ = writeln!(
            s,
            "  logins       {n} in {:.3} s ({:.0}/s); server CPU {} s, generator CPU {:.2} s",
            self.login_s,
            n as f64 / self.login_s.max(1e-9),
            or_na(self.login_cpu.server_s, 2),
            self.login_cpu.gen_s
        );
        let kb =
            |m: Option<Memory>, f: fn(Memory) -> u64| m.map_or("n/a".into(), |m| f(m).to_string());
        let _ = writeln!(
            s,
            "  server RSS   {} kB before, {} kB after the logins, {} kB at the end; peak (VmHWM) {} kB",
            kb(self.mem_before, |m| m.rss_kb),
            kb(self.mem_logged_in, |m| m.rss_kb),
            kb(self.mem_end, |m| m.rss_kb),
            kb(self.mem_end, |m| m.hwm_kb)
        );
        let _ = writeln!(
            s,
            "  per conn     {} B of RSS after the logins, {} B of peak RSS",
            or_na(self.rss_per_conn(), 0),
            or_na(self.hwm_per_conn(), 0)
        );
        let _ = writeln!(
            s,
            "  hold         {:.1} s: server CPU {}% of a core (schedstat {}%), {} pings answered, generator CPU {:.2}% of a core",
            self.hold_cpu.wall_s,
            or_na(self.idle_cpu_pct(), 2),
            or_na(self.idle_sched_pct(), 2),
            self.pings_in_hold,
            100.0 * self.hold_cpu.gen_sched_s / self.hold_cpu.wall_s.max(1e-9)
        );
        let _ = write!(s, "  status       {}", self.status);
        s
    }

    /// The machine-readable line.
    pub fn result_line(&self) -> String {
        let c = &self.config;
        let mut r = ResultLine::new("scale");
        r.put("server", c.target);
        // Only a run with rooms says so: the default line is unchanged.
        if let Some(rooms) = c.rooms {
            r.put("rooms", rooms);
        }
        r.put("connections", c.connections)
            .put("sources", c.sources)
            .put("concurrency", c.concurrency)
            .put("gen_threads", c.gen_threads)
            .float("login_s", self.login_s, 3)
            .opt_float("login_server_cpu_s", self.login_cpu.server_s, 2)
            .float("login_gen_cpu_s", self.login_cpu.gen_s, 2)
            .opt("server_rss_before_kb", self.mem_before.map(|m| m.rss_kb))
            .opt(
                "server_rss_logged_in_kb",
                self.mem_logged_in.map(|m| m.rss_kb),
            )
            .opt("server_rss_end_kb", self.mem_end.map(|m| m.rss_kb))
            .opt("server_hwm_kb", self.mem_end.map(|m| m.hwm_kb))
            .opt_float("rss_per_conn_b", self.rss_per_conn(), 0)
            .opt_float("hwm_per_conn_b", self.hwm_per_conn(), 0)
            .float("hold_s", self.hold_cpu.wall_s, 1)
            .opt_float("idle_server_cpu_s", self.hold_cpu.server_s, 2)
            .opt_float("idle_cpu_pct", self.idle_cpu_pct(), 2)
            .opt_float("idle_sched_pct", self.idle_sched_pct(), 3)
            .put("pings_answered", self.pings_in_hold)
            .opt_float("idle_server_wait_s", self.hold_cpu.server_wait_s, 3)
            .float(
                "gen_idle_cpu_pct",
                100.0 * self.hold_cpu.gen_sched_s / self.hold_cpu.wall_s.max(1e-9),
                2,
            )
            .put("status", self.status.word());
        r.finish()
    }
}

/// Runs the scenario. Setup failures (bad configuration, a refused or
/// failed login, the login deadline) are errors; a connection lost during
/// the hold gives a report with a failed status.
pub async fn run(cfg: &ScaleConfig) -> Result<ScaleReport, LoadError> {
    cfg.validate()?;
    let cfg = Arc::new(cfg.clone());
    let shared = Arc::new(Shared::default());
    let gate = Arc::new(Semaphore::new(cfg.concurrency));
    let mem_before = cfg.server_pid.and_then(|p| procfs::memory(Some(p)));
    let login_meter = Meter::start(cfg.server_pid);
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 0..cfg.connections {
        tasks.spawn(connection(
            i,
            cfg.clone(),
            shared.clone(),
            gate.clone(),
            start,
        ));
    }
    let deadline = start + cfg.login_timeout;
    loop {
        let logged = shared.logged_in.load(Ordering::Acquire);
        let failed = shared.failed.load(Ordering::Acquire);
        if failed > 0 {
            tasks.shutdown().await;
            return Err(LoadError::Io(format!(
                "{} ({logged} of {} logged in, {failed} failed)",
                shared.first_error(),
                cfg.connections
            )));
        }
        if logged == cfg.connections {
            break;
        }
        if Instant::now() >= deadline {
            tasks.shutdown().await;
            return Err(LoadError::Timeout {
                phase: "login",
                limit: cfg.login_timeout,
                detail: format!("{logged} of {} connections logged in", cfg.connections),
            });
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let all_in = start + Duration::from_nanos(shared.all_logged_in_ns.load(Ordering::Acquire));
    let login_cpu = login_meter.stop_at(all_in);
    let mem_logged_in = login_meter.server_memory();

    let hold_meter = Meter::start(cfg.server_pid);
    let pings_before = shared.pings.load(Ordering::Relaxed);
    let hold_end = Instant::now() + cfg.hold;
    let mut status = Status::Ok;
    while Instant::now() < hold_end {
        let left = hold_end.saturating_duration_since(Instant::now());
        tokio::time::sleep(left.min(Duration::from_millis(250))).await;
        let failed = shared.failed.load(Ordering::Acquire);
        if failed > 0 {
            status = Status::Fail(format!(
                "{failed} connection(s) lost during the hold, first: {}",
                shared.first_error()
            ));
            break;
        }
    }
    let hold_cpu = hold_meter.stop();
    let pings_in_hold = shared.pings.load(Ordering::Relaxed) - pings_before;
    let mem_end = hold_meter.server_memory();
    tasks.shutdown().await;
    Ok(ScaleReport {
        config: (*cfg).clone(),
        login_s: all_in.duration_since(start).as_secs_f64(),
        login_cpu,
        hold_cpu,
        pings_in_hold,
        mem_before,
        mem_logged_in,
        mem_end,
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(before: u64, logged_in: u64, hwm: u64) -> ScaleReport {
        let mem = |rss_kb, hwm_kb| Some(Memory { rss_kb, hwm_kb });
        ScaleReport {
            config: ScaleConfig::new(
                "127.0.0.1:1".parse().unwrap(),
                1000,
                Duration::from_secs(10),
            ),
            login_s: 2.0,
            login_cpu: PhaseCpu::default(),
            hold_cpu: PhaseCpu {
                wall_s: 10.0,
                server_s: Some(0.05),
                server_sched_s: Some(0.048),
                ..PhaseCpu::default()
            },
            pings_in_hold: 2000,
            mem_before: mem(before, before),
            mem_logged_in: mem(logged_in, logged_in),
            mem_end: mem(logged_in, hwm),
            status: Status::Ok,
        }
    }

    #[test]
    fn memory_per_connection_is_the_growth_over_n() {
        let r = report(4000, 6000, 7000);
        assert_eq!(r.rss_per_conn(), Some(2048.0));
        assert_eq!(r.hwm_per_conn(), Some(3072.0));
        assert_eq!(r.idle_cpu_pct(), Some(0.5));
        let line = r.result_line();
        assert!(line.starts_with("RESULT mode=scale server=127.0.0.1:1 connections=1000"));
        assert!(
            line.contains(" rss_per_conn_b=2048 hwm_per_conn_b=3072 "),
            "{line}"
        );
        assert!(line.contains(" idle_cpu_pct=0.50 "), "{line}");
        assert!(line.ends_with(" status=ok"));
        assert!(r.summary().contains("2000 pings answered"));
    }

    #[test]
    fn refuses_more_connections_than_open_files() {
        let mut c = ScaleConfig::new("127.0.0.1:1".parse().unwrap(), 10, Duration::from_secs(1));
        assert!(c.validate().is_ok());
        c.connections = 100_000_000;
        assert!(c.validate().unwrap_err().to_string().contains("ulimit -n"));
        c.connections = 10;
        c.target = "10.0.0.1:1".parse().unwrap();
        assert!(c.validate().is_err());
    }
}
