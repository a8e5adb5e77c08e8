//! Durable history against a crash: `chat serve --data-dir` under load
//! from a few clients, killed with SIGKILL mid-stream, restarted on the
//! same folder. Every message whose echo reached its sender must be in the
//! history, in order, under the same epoch; and every client must resume
//! from where it was without a gap. Loopback only; every wait is bounded.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

mod common;
use common::Serve;

const CLIENTS: usize = 5;
/// Messages a client may have sent and not yet seen echoed.
const IN_FLIGHT: u64 = 32;
/// How long the load runs before the kill.
const LOAD: Duration = Duration::from_millis(1500);
/// The bound on any one phase of the test.
const PATIENCE: Duration = Duration::from_secs(20);

/// Flags for a history that holds everything this test sends.
const HISTORY: [&str; 8] = [
    "--rate-limit",
    "off",
    "--history",
    "1000000",
    "--history-bytes",
    "8388608",
    "--max-replay",
    "1000000",
];

/// A line-reading connection that never panics on a dead server.
struct Line {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    partial: String,
}

impl Line {
    fn connect(addr: SocketAddr, hello: &str) -> Line {
        let stream = TcpStream::connect_timeout(&addr, PATIENCE).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut line = Line {
            stream,
            reader,
            partial: String::new(),
        };
        assert!(line.send(hello), "send the login");
        line
    }

    /// Writes `text`; false if the server is gone.
    fn send(&mut self, text: &str) -> bool {
        self.stream.write_all(text.as_bytes()).is_ok()
    }

    /// The next line within `wait`: `Ok(None)` on a timeout, `Err` once the
    /// connection is over.
    fn next(&mut self, wait: Duration) -> Result<Option<String>, ()> {
        self.stream
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .expect("timeout");
        match self.reader.read_line(&mut self.partial) {
            Ok(0) => Err(()),
            Ok(_) if self.partial.ends_with('\n') => {
                let line = self.partial.trim_end_matches('\n').to_owned();
                self.partial.clear();
                Ok(Some(line))
            }
            Ok(_) => Ok(None),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(None),
            Err(_) => Err(()),
        }
    }

    /// The next line, which must come within [`PATIENCE`].
    fn line(&mut self) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no line within {PATIENCE:?}");
            if let Some(line) = self.next(left).expect("the connection is open") {
                return line;
            }
        }
    }
}

/// `said:lobby:OFFSET:FROM:TEXT` as (offset, from, text).
fn said(line: &str) -> Option<(u64, String, String)> {
    let rest = line.strip_prefix("said:lobby:")?;
    let (offset, rest) = rest.split_once(':')?;
    let (from, text) = rest.split_once(':')?;
    Some((offset.parse().ok()?, from.to_owned(), text.to_owned()))
}

/// `room:lobby:EPOCH:NEXT` as (epoch, next).
fn room(line: &str) -> Option<(String, u64)> {
    let (epoch, next) = line.strip_prefix("room:lobby:")?.split_once(':')?;
    Some((epoch.to_owned(), next.parse().ok()?))
}

/// What one client saw before the kill.
#[derive(Debug, Default)]
struct Seen {
    epoch: String,
    /// Its own messages whose echo it read: (offset, text).
    echoed: Vec<(u64, String)>,
    /// The last offset it read, of anyone's message.
    last: Option<u64>,
}

/// Sends `say:lobby:NAME-K` for K = 0, 1, ... (at most `IN_FLIGHT`
/// unechoed) until the server dies or the time is up.
fn load(addr: SocketAddr, name: String) -> Seen {
    let mut conn = Line::connect(addr, &format!("cap:rooms,history\niam:{name}\n"));
    let mut seen = Seen::default();
    let (mut sent, deadline) = (0u64, Instant::now() + PATIENCE);
    while Instant::now() < deadline {
        let echoed = seen.echoed.len() as u64;
        if !seen.epoch.is_empty() && sent < echoed + IN_FLIGHT {
            let burst: String = (sent..echoed + IN_FLIGHT)
                .map(|k| format!("say:lobby:{name}-{k}\n"))
                .collect();
            if !conn.send(&burst) {
                break;
            }
            sent = echoed + IN_FLIGHT;
        }
        match conn.next(Duration::from_millis(20)) {
            Err(()) => break,
            Ok(None) => {}
            Ok(Some(line)) => {
                if let Some((epoch, _)) = room(&line) {
                    seen.epoch = epoch;
                } else if let Some((offset, from, text)) = said(&line) {
                    seen.last = Some(offset);
                    if from == name {
                        seen.echoed.push((offset, text));
                    }
                }
            }
        }
    }
    seen
}

/// Connects with `resume:lobby:EPOCH:NEXT`, checks that no gap is
/// reported and that the epoch is `epoch`, and reads everything up to the
/// room's head: (offset, from, text).
fn resume(addr: SocketAddr, name: &str, epoch: &str, next: u64) -> Vec<(u64, String, String)> {
    let hello = format!("cap:rooms,history\nresume:lobby:{epoch}:{next}\niam:{name}\n");
    let mut conn = Line::connect(addr, &hello);
    let head = loop {
        let line = conn.line();
        assert!(!line.starts_with("err:"), "{name} resuming: {line}");
        if let Some((again, head)) = room(&line) {
            assert_eq!(again, epoch, "the epoch survives the restart");
            break head;
        }
    };
    let mut messages = Vec::new();
    while messages.len() as u64 + next < head {
        let line = conn.line();
        assert!(!line.starts_with("err:"), "{name} resuming: {line}");
        if let Some(m) = said(&line) {
            messages.push(m);
        }
    }
    messages
}

#[test]
fn sigkill_under_load_loses_no_echoed_message_and_clients_resume_without_a_gap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("a UTF-8 path");
    let mut flags = vec!["--data-dir", data];
    flags.extend(HISTORY);
    let server = Serve::start(&flags);
    let addr = server.addr;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| std::thread::spawn(move || load(addr, format!("c{i}"))))
        .collect();
    std::thread::sleep(LOAD);
    server.signal("-9");
    let status = server.wait();
    assert!(!status.success(), "killed: {status}");
    let seen: Vec<Seen> = clients
        .into_iter()
        .map(|c| c.join().expect("client"))
        .collect();
    let epoch = seen[0].epoch.clone();
    let echoed: usize = seen.iter().map(|s| s.echoed.len()).sum();
    assert!(echoed > 0, "the load ran: {seen:?}");
    assert!(seen.iter().all(|s| s.epoch == epoch));

    let server = Serve::start(&flags);
    // Everything from offset 0: every echoed message is there, at its
    // offset, and each sender's messages are in the order sent.
    let history = resume(server.addr, "checker", &epoch, 0);
    for (offset, m) in history.iter().enumerate() {
        assert_eq!(m.0, offset as u64, "offsets run one by one");
    }
    for (i, s) in seen.iter().enumerate() {
        let name = format!("c{i}");
        for (offset, text) in &s.echoed {
            let kept = &history[*offset as usize];
            assert_eq!((&kept.1, &kept.2), (&name, text), "offset {offset}");
        }
        let own: Vec<&str> = history
            .iter()
            .filter(|m| m.1 == name)
            .map(|m| m.2.as_str())
            .collect();
        let in_order: Vec<String> = (0..own.len()).map(|k| format!("{name}-{k}")).collect();
        assert_eq!(own, in_order, "{name}'s messages, in the order sent");
    }
    // Each client resumes from where it was, without a gap: it gets the
    // rest of the history, exactly.
    for (i, s) in seen.iter().enumerate() {
        let from = s.last.map_or(0, |last| last + 1);
        let rest = resume(server.addr, &format!("c{i}"), &epoch, from);
        assert_eq!(rest, history[from as usize..], "c{i} resuming from {from}");
    }
    assert!(
        history.len() >= echoed,
        "{} kept, {echoed} echoed",
        history.len()
    );
}

#[test]
fn a_second_server_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("a UTF-8 path");
    let _first = Serve::start(&["--data-dir", data]);
    let log = match Serve::try_start(&["--data-dir", data]) {
        Ok(_) => panic!("a second server started on the same folder"),
        Err(log) => log,
    };
    assert!(log.contains("in use by another process"), "{log}");
}
