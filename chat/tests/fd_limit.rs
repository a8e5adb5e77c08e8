//! Every server survives running out of file descriptors.
//!
//! `chat serve --runtime X` runs under `ulimit -n 64`, and the test opens
//! far more connections than it can accept. The server must log the
//! exhaustion once, keep serving the clients it already has, not spin on
//! `accept`, and accept again once descriptors are free. (A child process,
//! so the low limit touches no other test.)

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chat_conformance::wire::RawConn;

const LIMIT: u32 = 64;
const EXTRA: usize = 150;

struct Server {
    child: Child,
    log: mpsc::Receiver<String>,
}

impl Server {
    fn start(runtime: &str) -> (Server, SocketAddr) {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -n {LIMIT} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_chat"))
            .args(["serve", "--addr", "127.0.0.1:0", "--runtime", runtime])
            .env("RUST_LOG", "warn,chat=info")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn chat serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let server = Server { child, log };
        // Warnings (the std server lowering max_connections to fit its
        // threads) may come before the address.
        let addr = loop {
            let line = server
                .log
                .recv_timeout(Duration::from_secs(10))
                .expect("a log line");
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest
                    .split(';')
                    .next()
                    .expect("address")
                    .parse()
                    .expect("address");
            }
        };
        (server, addr)
    }

    fn cpu_ticks(&self) -> u64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).expect("stat");
        // After the command name: utime and stime are the 12th and 13th.
        let fields: Vec<&str> = stat[stat.rfind(')').expect("comm") + 2..]
            .split(' ')
            .collect();
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
    }

    fn log_within(&self, patience: Duration) -> Vec<String> {
        let deadline = Instant::now() + patience;
        let mut lines = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.log.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(_) => break,
            }
        }
        lines
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn survives_running_out_of_descriptors(runtime: &str) {
    if !cfg!(target_os = "linux") {
        return; // reads /proc
    }
    let (server, addr) = Server::start(runtime);
    let mut anchor = RawConn::login(addr, "anchor");
    let extra: Vec<RawConn> = (0..EXTRA)
        .map(|i| {
            let mut conn = RawConn::connect(addr);
            conn.send(format!("iam:extra{i}\n").as_bytes());
            conn
        })
        .collect();

    // It ran out of descriptors and said so once.
    let log = server.log_within(Duration::from_secs(2));
    let warnings = log
        .iter()
        .filter(|l| l.contains("accept failed for lack of resources"))
        .count();
    assert_eq!(warnings, 1, "{log:?}");

    // It keeps serving the clients it has.
    anchor.send(b"msg:still served\n");
    let mut skipped = anchor.skip_to("msg:anchor:still served");
    skipped.retain(|l| !l.starts_with("join:"));
    assert!(skipped.is_empty(), "{skipped:?}");

    // It is not spinning on accept while descriptors stay exhausted.
    let before = server.cpu_ticks();
    std::thread::sleep(Duration::from_secs(1));
    let used = server.cpu_ticks() - before;
    assert!(
        used < 30,
        "{runtime}: {used} ticks of CPU in 1 s while exhausted"
    );

    // Freeing descriptors lets it accept again.
    drop(extra);
    let log = server.log_within(Duration::from_secs(3));
    assert!(
        log.iter()
            .any(|l| l.contains("accepting connections again")),
        "{log:?}"
    );
    let _late = RawConn::login(addr, "late");
    anchor.send(b"msg:all good\n");
    anchor.skip_to("msg:anchor:all good");
}

#[test]
fn tokio_survives_running_out_of_descriptors() {
    survives_running_out_of_descriptors("tokio");
}

#[test]
fn async_std_survives_running_out_of_descriptors() {
    survives_running_out_of_descriptors("async-std");
}

#[test]
fn std_survives_running_out_of_descriptors() {
    survives_running_out_of_descriptors("std");
}
