//! `chat connect`'s room commands end to end: two `chat connect` processes
//! with stdin and stdout piped (line mode) against a `chat serve`, typing
//! `/join`, `/msg` and `/who ROOM`, each printing what it should: lines of
//! its current room bare, lines of another room with a `[room]` prefix, a
//! private message to both ends and to no one else. A raw connection in
//! the same rooms orders the steps (it sees each join and message once the
//! server has taken it). Every wait is bounded.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use chat_conformance::wire::RawConn;
use common::Serve;

/// How long any one expected line or exit may take.
const PATIENCE: Duration = Duration::from_secs(10);

/// A running `chat connect` in line mode; dropping it kills it.
struct Connect {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    /// Its stdout, line by line, from a reader thread.
    lines: Receiver<String>,
    /// Every line read so far.
    printed: Vec<String>,
}

impl Connect {
    fn start(addr: SocketAddr, name: &'static str) -> Connect {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chat"))
            .args(["connect", "--name", name, "--addr", &addr.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start chat connect");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Connect {
            name,
            child,
            stdin,
            lines,
            printed: Vec::new(),
        }
    }

    /// Types `line` and Enter.
    fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").expect("type");
        stdin.flush().expect("flush");
    }

    /// Reads printed lines up to one equal to `expected`. Panics after
    /// `PATIENCE`, naming what was printed.
    fn expect(&mut self, expected: &str) {
        let deadline = Instant::now() + PATIENCE;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line == expected;
                    self.printed.push(line.clone());
                    if found {
                        return;
                    }
                    before.push(line);
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "{}: no {expected:?} within {PATIENCE:?}; printed {before:?}",
                        self.name
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "{}: exited before {expected:?}; printed {before:?}",
                        self.name
                    )
                }
            }
        }
    }

    /// Closes stdin (chat connect then says bye and exits) and waits, at
    /// most `PATIENCE`, for a successful exit; returns every line it
    /// printed.
    fn finish(mut self) -> Vec<String> {
        drop(self.stdin.take());
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "{}: did not exit", self.name);
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "{}: {status:?}", self.name);
        let mut printed = std::mem::take(&mut self.printed);
        // The reader thread ends at the end of stdout, after the exit.
        while let Ok(line) = self.lines.recv_timeout(PATIENCE) {
            printed.push(line);
        }
        printed
    }
}

impl Drop for Connect {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn two_chat_connects_join_a_room_and_send_a_private_message() {
    let server = Serve::start(&[]);
    // The watcher reads the lobby in the seed's form and rust in the room
    // form (as an nc user would).
    let mut watcher = RawConn::login(server.addr, "watcher");
    watcher.send(b"join:rust\n");
    watcher.expect("joined:rust:watcher");
    watcher.expect_prefix("room:rust:");

    let mut a = Connect::start(server.addr, "zhangsan");
    watcher.expect("join:zhangsan");
    // Its own arrival in the default room: from now on it knows that room.
    a.expect("* zhangsan joined");
    let mut b = Connect::start(server.addr, "lisi");
    watcher.expect("join:lisi");
    b.expect("* lisi joined");

    a.type_line("/join rust");
    a.expect("* now speaking in rust");
    watcher.expect("joined:rust:zhangsan");
    // b joins rust too, then goes back to speaking in the lobby, still in
    // rust.
    b.type_line("/join rust");
    b.expect("* now speaking in rust");
    watcher.expect("joined:rust:lisi");
    a.expect("* lisi joined");
    b.type_line("/join lobby");
    b.expect("* now speaking in lobby");

    a.type_line("hello rust");
    watcher.expect("said:rust:0:zhangsan:hello rust");
    // rust is a's current room (a bare line), not b's (prefixed).
    a.expect("zhangsan: hello rust");
    b.expect("[rust] zhangsan: hello rust");

    b.type_line("/msg zhangsan see you at 8");
    a.expect("[pm] lisi -> zhangsan: see you at 8");
    b.expect("[pm] lisi -> zhangsan: see you at 8");

    // The lobby is b's current room and not a's. The watcher's next line
    // is this one: the private message never reached it.
    b.type_line("back in the lobby");
    watcher.expect("msg:lisi:back in the lobby");
    b.expect("lisi: back in the lobby");
    a.expect("[lobby] lisi: back in the lobby");

    b.type_line("/who rust");
    b.expect("* users in rust: watcher, zhangsan, lisi");
    a.type_line("/who");
    a.expect("* users: watcher, zhangsan, lisi");

    // The end of stdin says bye: both leave cleanly, and the watcher sees
    // each leave the lobby.
    let printed_a = a.finish();
    watcher.skip_to("left:zhangsan");
    let printed_b = b.finish();
    watcher.skip_to("left:lisi");
    for printed in [printed_a, printed_b] {
        assert!(
            !printed.iter().any(|line| line.starts_with('!')),
            "an error was printed: {printed:?}"
        );
    }
}
