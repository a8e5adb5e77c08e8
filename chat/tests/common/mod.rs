//! What the tests of the `chat` program share: a `chat serve` child
//! process.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `chat serve` in a child process, killed when dropped.
pub(crate) struct Serve {
    child: Child,
    /// The address it listens on.
    pub(crate) addr: SocketAddr,
}

impl Serve {
    /// Starts `chat serve --addr 127.0.0.1:0 EXTRA...` and waits for its
    /// address.
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
        let deadline = Instant::now() + Duration::from_secs(10);
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

    /// Sends SIGINT and waits for the exit.
    #[allow(dead_code)] // Not every test file stops a server this way.
    pub(crate) fn interrupt_and_wait(self) -> std::process::ExitStatus {
        self.signal_and_wait("INT")
    }

    /// Sends `signal` (a name `kill` knows: `INT`, `TERM`, `HUP`) and waits
    /// for the exit.
    pub(crate) fn signal_and_wait(mut self, signal: &str) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
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
