//! What the tests of the `chat` program share: `chat serve` as a child
//! process, started on a free loopback port (read from its log) or again
//! on the port of one that stopped, stopped by a signal; `chat connect` in
//! line mode as a child process whose output a test waits for line by
//! line; and a bounded wait for a process to exit.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The longest a process may take to exit once it should, or a line to
/// come: generous, so that only a hang fails, never a slow machine.
#[allow(dead_code)]
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// Sends `signal` (`-INT`, `-9`, ...) to `child`.
#[allow(dead_code)]
fn send_signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Waits (at most [`PATIENCE`]) for `child` to exit; kills it and fails,
/// saying `what` did not end, otherwise.
#[allow(dead_code)]
pub(crate) fn wait_for_exit(child: &mut Child, what: &str) -> ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `chat serve`; dropping it kills it.
#[allow(dead_code)] // Not every test file uses it.
pub(crate) struct Serve {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
}

impl Serve {
    /// Starts `chat serve --addr 127.0.0.1:0 EXTRA...` and waits for its
    /// "listening on" line (at most 10 s).
    #[allow(dead_code)]
    pub(crate) fn start(extra: &[&str]) -> Serve {
        Self::try_start(extra).unwrap_or_else(|log| panic!("chat serve exited early: {log}"))
    }

    /// [`start`](Self::start) on `addr`: the address of a server that
    /// stopped, for clients that come back to it.
    #[allow(dead_code)]
    pub(crate) fn start_at(addr: SocketAddr, extra: &[&str]) -> Serve {
        Self::try_start_at(&addr.to_string(), extra)
            .unwrap_or_else(|log| panic!("chat serve exited early: {log}"))
    }

    /// [`start`](Self::start), or what the server logged if it exited
    /// before listening.
    #[allow(dead_code)]
    pub(crate) fn try_start(extra: &[&str]) -> Result<Serve, String> {
        Self::try_start_at("127.0.0.1:0", extra)
    }

    fn try_start_at(addr: &str, extra: &[&str]) -> Result<Serve, String> {
        let mut listening = None;
        let args = [&["serve", "--addr", addr][..], extra].concat();
        let child = spawn_serve(&args, |line| {
            listening = address_after(line, "listening on ");
            listening.is_some()
        })?;
        Ok(Serve {
            child,
            addr: listening.expect("seen"),
        })
    }

    /// Sends `signal` (`-INT`, `-9`, ...) to the server.
    #[allow(dead_code)] // Not every test file signals.
    pub(crate) fn signal(&self, signal: &str) {
        send_signal(&self.child, signal);
    }

    /// Waits (at most [`PATIENCE`]) for the server to exit.
    #[allow(dead_code)]
    pub(crate) fn wait(mut self) -> ExitStatus {
        wait_for_exit(&mut self.child, "chat serve")
    }

    /// Interrupts the server (SIGINT) and waits for it to exit.
    #[allow(dead_code)]
    pub(crate) fn interrupt_and_wait(self) -> ExitStatus {
        self.signal_and_wait("INT")
    }

    /// Sends `signal` (a name `kill` knows: `INT`, `TERM`, `HUP`) and waits
    /// for the exit.
    #[allow(dead_code)]
    pub(crate) fn signal_and_wait(self, signal: &str) -> ExitStatus {
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

/// Logs in to the server at `addr` as `name` with the history capability
/// and waits (at most [`PATIENCE`]) until a `said:` of the lobby ends with
/// `:FROM:TEXT` (`from_and_text`), whether it comes live or as history on
/// join: what another client sees of a line, whenever it was sent.
#[allow(dead_code)]
pub(crate) fn wait_for_said(addr: SocketAddr, name: &str, from_and_text: &str) {
    let mut conn = chat_conformance::wire::RawConn::connect(addr);
    conn.send(format!("cap:rooms,history\niam:{name}\n").as_bytes());
    let suffix = format!(":{from_and_text}");
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let line = conn.line();
        if line.starts_with("said:lobby:") && line.ends_with(&suffix) {
            return;
        }
        seen.push(line);
    }
    panic!("{name} saw no {from_and_text:?} within {PATIENCE:?}: {seen:#?}");
}

/// `chat connect` in line mode (stdin and stdout piped): a test types
/// lines, waits for what it prints, and waits for it to exit. Its stdout is
/// read line by line as it comes, its stderr kept whole.
#[allow(dead_code)]
pub(crate) struct LineClient {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Every stdout line so far, for failure messages.
    stdout: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

/// How a [`LineClient`] ended.
#[allow(dead_code)]
pub(crate) struct Ended {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

#[allow(dead_code)]
impl Ended {
    /// Asserts a clean end: exit status 0, nothing listed as not sent.
    pub(crate) fn assert_all_sent(&self) {
        assert!(
            self.status.success() && !self.stderr.contains("not sent"),
            "{:?}: {}",
            self.status,
            self.stderr
        );
    }

    /// Asserts the end of a client that could not send everything: exit
    /// status 1, and stderr listing it as `listing` says.
    pub(crate) fn assert_not_sent(&self, listing: &str) {
        assert!(
            self.status.code() == Some(1) && self.stderr.contains(listing),
            "{:?}, no {listing:?} in:\n{}",
            self.status,
            self.stderr
        );
    }

    /// Asserts that stdout has `text`.
    pub(crate) fn assert_printed(&self, text: &str) {
        assert!(
            self.stdout.contains(text),
            "no {text:?} in:\n{}",
            self.stdout
        );
    }
}

#[allow(dead_code)]
impl LineClient {
    /// Starts `chat connect --name NAME --addr ADDR EXTRA...` and waits for
    /// its login.
    pub(crate) fn start(name: &str, addr: SocketAddr, extra: &[&str]) -> LineClient {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chat"))
            .args(["connect", "--name", name, "--addr", &addr.to_string()])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chat connect");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr");
        let kept = stderr.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            kept.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push_str(&text);
        });
        let mut client = LineClient {
            stdin: child.stdin.take(),
            child,
            lines,
            stdout: Vec::new(),
            stderr,
        };
        client.wait_for_line("the login", |l| l.starts_with("* logged in as"));
        client
    }

    /// Types `line` and Enter.
    pub(crate) fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .expect("type");
        stdin.flush().expect("type");
    }

    /// Ends stdin.
    pub(crate) fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Sends `signal` (`-INT`, ...) to the client.
    pub(crate) fn signal(&self, signal: &str) {
        send_signal(&self.child, signal);
    }

    /// Waits (at most [`PATIENCE`]) for a stdout line that `ready` accepts,
    /// skipping others; returns it.
    pub(crate) fn wait_for_line(&mut self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.stdout.push(line.clone());
                    if ready(&line) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "chat connect printed no {what} ({}); its output:\n{}\nstderr:\n{}",
                    match e {
                        RecvTimeoutError::Timeout => format!("within {PATIENCE:?}"),
                        RecvTimeoutError::Disconnected => "before its output ended".into(),
                    },
                    self.stdout.join("\n"),
                    self.stderr()
                ),
            }
        }
    }

    fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits (at most [`PATIENCE`]) for the client to exit, and for the
    /// rest of its output.
    pub(crate) fn wait_for_exit(mut self) -> Ended {
        let status = wait_for_exit(&mut self.child, "chat connect");
        // The pipes end with the process; what is left is read to the end.
        while let Ok(line) = self.lines.recv_timeout(PATIENCE) {
            self.stdout.push(line);
        }
        let deadline = Instant::now() + PATIENCE;
        while Arc::strong_count(&self.stderr) > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        Ended {
            status,
            stdout: self.stdout.join("\n"),
            stderr: self.stderr(),
        }
    }
}

impl Drop for LineClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `chat` with `args` (`serve ...`), its log piped, and reads the
/// log (at most 10 s) until `seen` has what it looks for in a line. The
/// log is drained from then on, so the server never blocks on a full
/// pipe. `Err` holds what it logged if it exited first.
#[allow(dead_code)]
pub(crate) fn spawn_serve(
    args: &[&str],
    mut seen: impl FnMut(&str) -> bool,
) -> Result<Child, String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat"))
        .args(args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chat serve");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut log = String::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "chat serve logged no address: {log}"
        );
        let mut line = String::new();
        if stderr.read_line(&mut line).expect("read stderr") == 0 {
            let _ = child.wait();
            return Err(log);
        }
        log.push_str(&line);
        if seen(&line) {
            break;
        }
    }
    std::thread::spawn(move || for _ in stderr.lines() {});
    Ok(child)
}

/// The address logged after `marker` in `line` (`listening on ADDR;`,
/// `http on ADDR`), if it is there.
#[allow(dead_code)]
pub(crate) fn address_after(line: &str, marker: &str) -> Option<SocketAddr> {
    let rest = line.split(marker).nth(1)?;
    let word = rest.split(|c: char| c == ';' || c.is_whitespace()).next()?;
    word.trim_end_matches(':').parse().ok()
}
