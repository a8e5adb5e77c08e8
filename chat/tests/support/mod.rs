//! A `chat serve` child process for the integration tests: started on a
//! free loopback port (read back from its log), signalled with `kill`, and
//! killed if a test ends without stopping it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to start, or to stop after a signal.
const PATIENCE: Duration = Duration::from_secs(10);

pub(crate) struct Serve {
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl Serve {
    /// Starts `chat serve --addr 127.0.0.1:0 EXTRA...` and waits for its
    /// "listening on" line.
    pub(crate) fn start(extra: &[&str]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chat"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chat serve");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let deadline = Instant::now() + PATIENCE;
        let addr = loop {
            assert!(Instant::now() < deadline, "no 'listening on' line");
            let mut line = String::new();
            if stderr.read_line(&mut line).expect("read stderr") == 0 {
                panic!("chat serve exited early");
            }
            if let Some(rest) = line.split("listening on ").nth(1) {
                let addr = rest.split(|c: char| c == ';' || c.is_whitespace()).next();
                break addr.expect("address").parse().expect("parse address");
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in stderr.lines() {});
        Serve { child, addr }
    }

    /// Sends the server `signal` (a name `kill` knows: `INT`, `TERM`,
    /// `HUP`) and waits for it to exit.
    pub(crate) fn signal_and_wait(mut self, signal: &str) -> ExitStatus {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "chat serve did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
