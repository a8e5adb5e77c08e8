//! The server survives running out of file descriptors.
//!
//! This test binary runs itself again as a server child under
//! `ulimit -n 64`, then opens far more connections than the child can
//! accept. The child must log the exhaustion once, keep serving the clients
//! it already has, not spin on `accept`, and accept again once descriptors
//! are free. (A separate process, so the low limit touches no other test.)

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chat_conformance::wire::RawConn;

const CHILD: &str = "CHAT_FD_LIMIT_CHILD";
const LIMIT: u32 = 64;
const EXTRA: usize = 150;

fn main() {
    if std::env::var_os(CHILD).is_some() {
        serve();
    } else if cfg!(target_os = "linux") {
        parent();
    } else {
        println!("fd_limit: skipped (reads /proc; Linux only)");
    }
}

/// The child: a server with warnings on stderr and its address on stdout.
fn serve() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter("warn")
        .with_ansi(false)
        .init();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let server = transport_tokio::Server::bind("127.0.0.1:0", Default::default())
            .await
            .expect("bind");
        println!("listening on {}", server.local_addr().expect("addr"));
        server.serve().await.expect("serve");
    });
}

struct Server {
    child: Child,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    fn cpu_ticks(&self) -> u64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).expect("stat");
        // Fields after the command name: state is field 3, utime 14, stime 15.
        let after = &stat[stat.rfind(')').expect("comm") + 2..];
        let fields: Vec<&str> = after.split(' ').collect();
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
    }

    fn warnings_within(&self, patience: Duration) -> Vec<String> {
        let deadline = Instant::now() + patience;
        let mut lines = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.stderr.recv_timeout(left) {
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

fn start_child() -> (Server, std::net::SocketAddr) {
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {LIMIT} && exec \"$0\""))
        .arg(exe)
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the server child");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("listening line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("address");
    let (tx, stderr) = mpsc::channel();
    let err = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            eprintln!("  child: {line}");
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (Server { child, stderr }, addr)
}

fn parent() {
    let (server, addr) = start_child();

    let mut anchor = RawConn::login(addr, "anchor");
    let mut extra = Vec::new();
    for i in 0..EXTRA {
        let mut conn = RawConn::connect(addr);
        conn.send(format!("iam:extra{i}\n").as_bytes());
        extra.push(conn);
    }
    // The child ran out of descriptors and said so once.
    let warnings = server.warnings_within(Duration::from_secs(2));
    let exhausted = warnings
        .iter()
        .filter(|l| l.contains("accept failed for lack of resources"))
        .count();
    assert_eq!(exhausted, 1, "expected one warning, got {warnings:?}");

    // It keeps serving the clients it has.
    anchor.send(b"msg:still served\n");
    let mut lines = anchor.skip_to("msg:anchor:still served");
    lines.retain(|l| !l.starts_with("join:"));
    assert!(lines.is_empty(), "{lines:?}");

    // It is not spinning on accept while descriptors stay exhausted.
    let before = server.cpu_ticks();
    std::thread::sleep(Duration::from_secs(1));
    let used = server.cpu_ticks() - before;
    assert!(
        used < 30,
        "server used {used} ticks of CPU in 1 s while paused"
    );

    // Freeing descriptors lets it accept again.
    drop(extra);
    let recovered = server.warnings_within(Duration::from_secs(3));
    assert!(
        recovered
            .iter()
            .any(|l| l.contains("accepting connections again")),
        "{recovered:?}"
    );
    let _late = RawConn::login(addr, "late");
    anchor.send(b"msg:all good\n");
    anchor.skip_to("msg:anchor:all good");
    println!("fd_limit: ok ({exhausted} warning, {used} CPU ticks while exhausted)");
}
