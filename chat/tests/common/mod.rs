//! What the tests of the `chat` program share: `chat serve` as a child
//! process, started on a free loopback port (read from its log), stopped by
//! a signal.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `chat serve`; dropping it kills it.
pub(crate) struct Serve {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
}

impl Serve {
    /// Starts `chat serve --addr 127.0.0.1:0 EXTRA...` and waits for its
    /// "listening on" line (at most 10 s).
    pub(crate) fn start(extra: &[&str]) -> Serve {
        Self::try_start(extra).unwrap_or_else(|log| panic!("chat serve exited early: {log}"))
    }

    /// [`start`](Self::start), or what the server logged if it exited
    /// before listening.
    #[allow(dead_code)]
    pub(crate) fn try_start(extra: &[&str]) -> Result<Serve, String> {
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
        let mut log = String::new();
        let addr = loop {
            assert!(Instant::now() < deadline, "no 'listening on' line");
            let mut line = String::new();
            if stderr.read_line(&mut line).expect("read stderr") == 0 {
                let _ = child.wait();
                return Err(log);
            }
            log.push_str(&line);
            if let Some(rest) = line.split("listening on ").nth(1) {
                let addr = rest.split(|c: char| c == ';' || c.is_whitespace()).next();
                break addr.expect("address").parse().expect("parse address");
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in stderr.lines() {});
        Ok(Serve { child, addr })
    }

    /// Sends `signal` (`-INT`, `-9`, ...) to the server.
    #[allow(dead_code)] // Not every test file signals.
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits (at most 10 s) for the server to exit.
    #[allow(dead_code)]
    pub(crate) fn wait(mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "chat serve did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Interrupts the server (SIGINT) and waits for it to exit.
    #[allow(dead_code)]
    pub(crate) fn interrupt_and_wait(self) -> std::process::ExitStatus {
        self.signal_and_wait("INT")
    }

    /// Sends `signal` (a name `kill` knows: `INT`, `TERM`, `HUP`) and waits
    /// for the exit.
    #[allow(dead_code)]
    pub(crate) fn signal_and_wait(self, signal: &str) -> std::process::ExitStatus {
        self.signal(&format!("-{signal}"));
        self.wait()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
