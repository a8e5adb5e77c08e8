//! Flow control over real sockets, the same on every transport: a burst
//! slows its senders and costs no reader its place; a reader that does not
//! keep up is closed in bounded time, and never holds its room up for
//! longer than the write timeout; a flooder is slowed by the rate limit,
//! not answered with a flood of errors.
//!
//! The bounds checked are the ones the policy guarantees (PROTOCOL.md,
//! "Limits"), plus generous slack for a loaded machine running debug
//! builds: these cases check behaviour, never speed. Every wait is bounded,
//! and every thread a case starts ends by itself.

use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chat_proto::{HubCloseReason, HubEvent, ServerConfig};

use crate::server_cases::{conn_of, wait_event_within};
use crate::wire::{PATIENCE, RawConn};
use crate::{Start, TestServer};

/// Slack on top of a bound the policy guarantees.
const SLACK: Duration = Duration::from_secs(4);

/// The longest any reader thread of a case runs.
const CASE_LIMIT: Duration = Duration::from_secs(60);

/// Flow limits small enough to bite within a test: a room holds 256 KiB
/// for its slowest member, a connection is handed 16 KiB at a time. A
/// closed connection has 5 s to flush its explanation (time for a reader
/// that starts reading again to get it).
fn tight(write_timeout: Duration) -> ServerConfig {
    let mut config = ServerConfig::default();
    config.rate_limit = None;
    config.room_backlog = 256 << 10;
    config.history.bytes = 64 << 10;
    config.send_window = 16 << 10;
    config.write_timeout = write_timeout;
    config.close_linger = Duration::from_secs(5);
    config
}

/// `msg:SENDER-SEQ-xxx…`, `len` bytes with its LF: message `seq` of sender
/// `sender`.
fn frame(sender: usize, seq: usize, len: usize) -> String {
    let head = format!("msg:{sender}-{seq:06}-");
    let pad = len.saturating_sub(head.len() + 1);
    format!("{head}{}\n", "x".repeat(pad))
}

/// What one reader received.
#[derive(Debug)]
struct Tally {
    /// Messages from each sender; each was checked to be the one after the
    /// last.
    per_sender: Vec<usize>,
    /// Lines that were not messages, in order.
    other: Vec<String>,
    /// The longest wait between two messages.
    max_gap: Duration,
    /// The server ended the connection.
    eof: bool,
}

impl Tally {
    fn new(senders: usize) -> Tally {
        Tally {
            per_sender: vec![0; senders],
            other: Vec::new(),
            max_gap: Duration::ZERO,
            eof: false,
        }
    }

    fn messages(&self) -> usize {
        self.per_sender.iter().sum()
    }

    /// Counts `line`; panics if it is a message out of its sender's order.
    fn take(&mut self, who: &str, line: String) -> bool {
        let Some((_, text)) = line.strip_prefix("msg:").and_then(|r| r.split_once(':')) else {
            self.other.push(line);
            return false;
        };
        let mut parts = text.splitn(3, '-');
        let mut number = || -> usize {
            parts
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("{who}: a message not sent by the case: {line:?}"))
        };
        let (sender, seq) = (number(), number());
        assert_eq!(
            seq, self.per_sender[sender],
            "{who}: sender {sender}'s messages lost or out of order"
        );
        self.per_sender[sender] += 1;
        true
    }
}

/// How a reader reads: everything as it comes, or at most `bytes` every
/// `every` (a slow reader) until `hurry` is set.
#[derive(Clone)]
struct Pace {
    sip: Option<(usize, Duration)>,
    hurry: Arc<AtomicBool>,
}

impl Pace {
    fn full() -> Pace {
        Pace {
            sip: None,
            hurry: Arc::new(AtomicBool::new(true)),
        }
    }

    fn sip(bytes: usize, every: Duration) -> Pace {
        Pace {
            sip: Some((bytes, every)),
            hurry: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// Not known yet: read until told to stop.
const UNKNOWN: usize = usize::MAX;

/// What a reader thread does.
struct ReadPlan {
    who: String,
    /// Senders whose messages it counts (numbered from 0).
    senders: usize,
    /// Messages to read, once known ([`UNKNOWN`] until then).
    target: Arc<AtomicUsize>,
    /// Stop reading at once.
    stop: Arc<AtomicBool>,
    pace: Pace,
}

impl ReadPlan {
    /// Read `target` messages of `senders` at full speed.
    fn all(who: &str, senders: usize, target: &Arc<AtomicUsize>) -> ReadPlan {
        ReadPlan {
            who: who.to_owned(),
            senders,
            target: target.clone(),
            stop: Arc::new(AtomicBool::new(false)),
            pace: Pace::full(),
        }
    }
}

/// Reads `conn` on a thread until it has its target of messages, it is
/// told to stop, the server ends the connection, nothing comes for
/// [`PATIENCE`] once the target is known, or [`CASE_LIMIT`] passes.
/// Returns what it saw and the connection.
fn spawn_reader(mut conn: RawConn, plan: ReadPlan) -> JoinHandle<(Tally, RawConn)> {
    std::thread::spawn(move || {
        let limit = Instant::now() + CASE_LIMIT;
        let mut tally = Tally::new(plan.senders);
        let mut last: Option<Instant> = None;
        let mut next_sip = Instant::now();
        loop {
            if let Some(line) = conn.take_line() {
                if tally.take(&plan.who, line) {
                    let now = Instant::now();
                    if let Some(last) = last {
                        tally.max_gap = tally.max_gap.max(now - last);
                    }
                    last = Some(now);
                }
                continue;
            }
            let target = plan.target.load(Ordering::SeqCst);
            let done = tally.messages() >= target
                || plan.stop.load(Ordering::SeqCst)
                || Instant::now() >= limit;
            if done {
                break;
            }
            let chunk = match plan.pace.sip {
                Some((bytes, every)) if !plan.pace.hurry.load(Ordering::SeqCst) => {
                    std::thread::sleep(next_sip.saturating_duration_since(Instant::now()));
                    next_sip = Instant::now().max(next_sip) + every;
                    bytes
                }
                _ => 64 << 10,
            };
            // Until the target is known, short waits, to see it soon.
            let patience = if target == UNKNOWN {
                Duration::from_millis(200)
            } else {
                PATIENCE
            };
            if !conn.read_some(chunk, patience) {
                if conn.is_eof() {
                    tally.eof = true;
                    break;
                }
                if target != UNKNOWN {
                    // Nothing for a long while: the caller's checks say
                    // what is missing.
                    break;
                }
            }
        }
        (tally, conn)
    })
}

/// What a writer thread sends: messages `SENDER-0`, `SENDER-1`, … of `len`
/// bytes, `batch` per write, a write every `every` if given (else back to
/// back), until `max` went or `stop` is set.
struct WritePlan {
    sender: usize,
    len: usize,
    batch: usize,
    every: Option<Duration>,
    max: usize,
    stop: Arc<AtomicBool>,
}

/// Writes on a thread as `plan` says; returns how many messages went. A
/// write the server holds back for longer than a few [`PATIENCE`]s fails
/// the case.
fn spawn_writer(mut stream: TcpStream, plan: WritePlan) -> JoinHandle<usize> {
    std::thread::spawn(move || {
        stream
            .set_write_timeout(Some(3 * PATIENCE))
            .expect("set the write timeout");
        let mut next = Instant::now();
        let mut sent = 0;
        while sent < plan.max && !plan.stop.load(Ordering::SeqCst) {
            if let Some(every) = plan.every {
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
                next += every;
            }
            let n = plan.batch.min(plan.max - sent);
            let bytes: String = (sent..sent + n)
                .map(|seq| frame(plan.sender, seq, plan.len))
                .collect();
            stream
                .write_all(bytes.as_bytes())
                .expect("the server takes the sender's frames again in time");
            sent += n;
        }
        sent
    })
}

/// Writes `len`-byte messages as fast as the socket takes them until
/// `until`; returns how many whole frames went.
fn flood(mut stream: TcpStream, len: usize, until: Instant) -> usize {
    stream
        .set_write_timeout(Some(Duration::from_millis(50)))
        .expect("set the write timeout");
    let mut pending: Vec<u8> = Vec::new();
    let mut seq = 0;
    let mut written = 0;
    while Instant::now() < until {
        if pending.is_empty() {
            for _ in 0..64 {
                pending.extend_from_slice(frame(0, seq, len).as_bytes());
                seq += 1;
            }
        }
        match stream.write(&pending) {
            Ok(n) => {
                pending.drain(..n);
                written += n;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => panic!("the flooder's write failed: {e}"),
        }
    }
    written / len
}

/// `n` clients `{prefix}0` … logged in, each having seen every later one
/// join.
fn log_in_all(server: &TestServer, n: usize, prefix: &str) -> Vec<RawConn> {
    let mut conns: Vec<RawConn> = (0..n)
        .map(|i| RawConn::login(server.addr(), &format!("{prefix}{i}")))
        .collect();
    let last = format!("join:{prefix}{}", n - 1);
    for conn in &mut conns[..n - 1] {
        conn.skip_to(&last);
    }
    conns
}

/// K clients burst M messages each, all at once, while every client reads
/// at full speed. The room's bounds are small, so the senders are paused
/// and resumed many times: nobody is dropped, nothing is lost, and each
/// sender's messages arrive in order.
pub fn burst_while_all_read(start: Start<'_>) {
    const K: usize = 8;
    const M: usize = 2000;
    let server = start(tight(ServerConfig::default().write_timeout));
    let conns = log_in_all(&server, K, "c");
    let target = Arc::new(AtomicUsize::new(K * M));
    let never = Arc::new(AtomicBool::new(false));
    let streams: Vec<TcpStream> = conns.iter().map(RawConn::writer).collect();
    let readers: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, c)| spawn_reader(c, ReadPlan::all(&format!("c{i}"), K, &target)))
        .collect();
    let writers: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, stream)| {
            let plan = WritePlan {
                sender: i,
                len: 64,
                batch: M,
                every: None,
                max: M,
                stop: never.clone(),
            };
            spawn_writer(stream, plan)
        })
        .collect();
    for writer in writers {
        assert_eq!(writer.join().expect("writer"), M);
    }
    // Every connection stays open until all have read (one leaving early
    // would be a `left:` line for the others).
    let results: Vec<(Tally, RawConn)> = readers
        .into_iter()
        .map(|r| r.join().expect("reader"))
        .collect();
    for (i, (tally, _)) in results.iter().enumerate() {
        assert_eq!(tally.per_sender, vec![M; K], "c{i} did not get everything");
        assert!(tally.other.is_empty(), "c{i} got {:?}", tally.other);
    }
    let stats = server.handle().stats();
    assert_eq!(stats.closes(HubCloseReason::SlowConsumer), 0);
    assert_eq!(stats.messages, (K * M) as u64);
}

/// The most messages a talker writes while waiting for a victim's close:
/// more than the kernel can hold while the server has paused the talker's
/// input (its send buffer and the server's receive buffer, which Linux
/// grows up to `net.ipv4.tcp_wmem` and `tcp_rmem`'s maxima: 4 and 32 MiB
/// on the test machines), so that a talker that ran out of messages means
/// one that was never slowed down.
const TALK_LIMIT: usize = 60_000;

/// A room of three: a talker, a listener that reads everything at full
/// speed, and a victim (with a 4 KiB receive buffer) that does not keep up.
struct Room {
    server: TestServer,
    talker: RawConn,
    listener: RawConn,
    write_timeout: Duration,
}

impl Room {
    /// The room, and the victim's connection for the case to (not) read.
    fn new(start: Start<'_>, write_timeout: Duration) -> (Room, RawConn) {
        let server = start(tight(write_timeout));
        let mut victim = RawConn::connect_with_recv_buffer(server.addr(), 4096);
        victim.log_in("victim");
        let mut talker = RawConn::login(server.addr(), "talker");
        let listener = RawConn::login(server.addr(), "listener");
        talker.expect("join:listener");
        let room = Room {
            server,
            talker,
            listener,
            write_timeout,
        };
        (room, victim)
    }

    /// The talker writes 1,000-byte messages, `per_write` a write, one
    /// write every `every` (else back to back), until the victim is
    /// closed, which must happen within `bound`, as a slow consumer. The
    /// talker (reading its own) and the listener must get every message,
    /// never waiting longer than the write timeout (plus slack) for the
    /// next: the room is never held up longer than that. Returns the
    /// server, still running, and how long the close took.
    fn talk_until_victim_closed(
        self,
        every: Option<Duration>,
        per_write: usize,
        bound: Duration,
    ) -> (TestServer, Duration) {
        let Room {
            server,
            talker,
            listener,
            write_timeout,
        } = self;
        let victim = conn_of(&server, "victim");
        let events = server.handle().events();
        let stop = Arc::new(AtomicBool::new(false));
        let target = Arc::new(AtomicUsize::new(UNKNOWN));
        let plan = WritePlan {
            sender: 0,
            len: 1000,
            batch: per_write,
            every,
            max: TALK_LIMIT,
            stop: stop.clone(),
        };
        let started = Instant::now();
        let writer = spawn_writer(talker.writer(), plan);
        let readers: Vec<_> = [("talker", talker), ("listener", listener)]
            .into_iter()
            .map(|(who, c)| spawn_reader(c, ReadPlan::all(who, 1, &target)))
            .collect();
        let what = "the victim's close";
        let closed = wait_event_within(
            &events,
            what,
            bound,
            |e| matches!(e, HubEvent::Closed { conn, .. } if *conn == victim),
        );
        let took = started.elapsed();
        assert!(
            matches!(
                closed,
                HubEvent::Closed {
                    reason: HubCloseReason::SlowConsumer,
                    ..
                }
            ),
            "{closed:?}"
        );
        stop.store(true, Ordering::SeqCst);
        let sent = writer.join().expect("writer");
        assert!(sent < TALK_LIMIT, "the talker was never stopped");
        target.store(sent, Ordering::SeqCst);
        // Both stay connected until both have read everything.
        let results: Vec<(Tally, RawConn)> = readers
            .into_iter()
            .map(|r| r.join().expect("reader"))
            .collect();
        for (tally, _) in &results {
            assert_eq!(tally.messages(), sent, "a reader did not get everything");
            // The close may come after the last message.
            assert!(
                tally.other.iter().all(|l| l == "left:victim"),
                "{:?}",
                tally.other
            );
            assert!(
                tally.max_gap <= write_timeout + SLACK,
                "the room stalled for {:?}",
                tally.max_gap
            );
        }
        (server, took)
    }
}

/// A client that never reads (with a small receive buffer) is closed with
/// `err:slow-consumer` within the write timeout (plus slack: the time to
/// fill its buffers at full speed, on a loaded machine), while the talker
/// and a listener go on.
pub fn never_reading_client_is_closed(start: Start<'_>) {
    const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
    let (room, mut sloth) = Room::new(start, WRITE_TIMEOUT);
    let (_server, took) = room.talk_until_victim_closed(None, 16, WRITE_TIMEOUT + SLACK);
    // Read now, the sloth gets what was already handed to its socket, then
    // the explanation, then the end.
    let lines = sloth.expect_eof_within(PATIENCE);
    let last = lines.last().map(String::as_str).unwrap_or_default();
    assert!(
        last.starts_with("err:slow-consumer:"),
        "the sloth's last line: {last:?} (closed after {took:?})"
    );
    let odd: Vec<&String> = lines[..lines.len() - 1]
        .iter()
        .filter(|l| !l.starts_with("msg:talker:") && !l.starts_with("join:"))
        .collect();
    assert!(odd.is_empty(), "{odd:?}");
}

/// A client reading at about 10 KB/s in a room producing about 1 MB/s is
/// closed as a slow consumer in bounded time: once the kernel's buffers
/// for its socket (up to Linux's `tcp_wmem` maximum, 4 MiB by default) and
/// half the room's backlog are full, within the write timeout. The room is
/// never held up longer than the write timeout (plus slack). Told to hurry
/// once closed, the slow reader gets the explanation last.
pub fn slow_reader_in_a_busy_room_is_closed(start: Start<'_>) {
    const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
    const KERNEL_BUFFERS: u32 = 4 << 20;
    const RATE: u32 = 1_000_000;
    let room_backlog = u32::try_from(tight(WRITE_TIMEOUT).room_backlog).expect("small");
    let (room, slow) = Room::new(start, WRITE_TIMEOUT);
    // 1 KiB every 100 ms.
    let pace = Pace::sip(1024, Duration::from_millis(100));
    let hurry = pace.hurry.clone();
    let plan = ReadPlan {
        who: "slow".into(),
        senders: 1,
        target: Arc::new(AtomicUsize::new(UNKNOWN)),
        stop: Arc::new(AtomicBool::new(false)),
        pace,
    };
    let slow = spawn_reader(slow, plan);
    // 50 messages of 1,000 bytes every 50 ms: 1 MB/s. The time to fill the
    // buffers at that rate, then the write timeout, then slack.
    let fill = Duration::from_secs(1) * (KERNEL_BUFFERS + room_backlog) / RATE;
    let bound = fill + WRITE_TIMEOUT + SLACK;
    let (_server, _) = room.talk_until_victim_closed(Some(Duration::from_millis(50)), 50, bound);
    hurry.store(true, Ordering::SeqCst);
    let (tally, _) = slow.join().expect("slow reader");
    assert!(tally.eof, "the slow reader's connection did not end");
    let last = tally.other.last().map(String::as_str).unwrap_or_default();
    assert!(
        last.starts_with("err:slow-consumer:"),
        "the slow reader's last line: {last:?}"
    );
}

/// With the default settings, a client sending 200-byte messages as fast
/// as its socket takes them is slowed by the rate limit: a member reading
/// at about 100 KB/s in the same room is not dropped and gets every
/// message relayed, in order; the flooder gets at most one `err:` line;
/// and no more is relayed than the rate limit allows.
pub fn flooder_is_slowed_not_refused(start: Start<'_>) {
    const FLOOD: Duration = Duration::from_secs(3);
    const LEN: usize = 200;
    let server = start(ServerConfig::default());
    let rate = ServerConfig::default()
        .rate_limit
        .expect("the rate limit is on by default");
    let mut reader = RawConn::login(server.addr(), "reader");
    // The flooder's bucket fills from its connection on: no earlier than
    // now.
    let first_token = Instant::now();
    let flooder = RawConn::login(server.addr(), "flooder");
    reader.expect("join:flooder");
    let stop = Arc::new(AtomicBool::new(false));
    let unknown = Arc::new(AtomicUsize::new(UNKNOWN));
    let reading = spawn_reader(
        reader,
        ReadPlan {
            // 10 KiB every 100 ms.
            pace: Pace::sip(10 << 10, Duration::from_millis(100)),
            stop: stop.clone(),
            ..ReadPlan::all("reader", 1, &unknown)
        },
    );
    let stream = flooder.writer();
    let echoes = spawn_reader(
        flooder,
        ReadPlan {
            stop: stop.clone(),
            ..ReadPlan::all("flooder", 1, &unknown)
        },
    );
    let written = flood(stream, LEN, Instant::now() + FLOOD);
    let stats = server.handle().stats();
    let still_in = server
        .handle()
        .logged_in()
        .iter()
        .any(|(_, name)| name == "reader");
    stop.store(true, Ordering::SeqCst);
    let (reader, _) = reading.join().expect("reader");
    let (flooder, _) = echoes.join().expect("flooder's reader");
    // Everything the reader counted was relayed by now.
    let elapsed = first_token.elapsed();
    assert_eq!(stats.closes(HubCloseReason::SlowConsumer), 0);
    assert!(still_in && !reader.eof, "the reader was dropped");
    let errors: Vec<&String> = flooder
        .other
        .iter()
        .filter(|l| l.starts_with("err:"))
        .collect();
    assert!(errors.len() <= 1, "an error flood: {errors:?}");
    let relayed = reader.messages();
    let allowed = f64::from(rate.burst) + f64::from(rate.per_second) * elapsed.as_secs_f64();
    assert!(
        relayed >= 50,
        "only {relayed} messages relayed in {elapsed:?}"
    );
    assert!(
        relayed as f64 <= allowed + 1.0,
        "{relayed} relayed in {elapsed:?}: more than the rate limit allows ({allowed})"
    );
    assert!(
        written > relayed,
        "the flooder wrote {written} frames and was not slowed ({relayed} relayed)"
    );
}
