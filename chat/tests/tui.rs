//! `chat connect` full-screen, driven as a person would: the real binary
//! in tmux panes (send-keys types, capture-pane reads the screen), against
//! a real `chat serve` on 127.0.0.1.
//!
//! Each test has its own tmux server on a private socket (`tmux -L NAME`),
//! killed when the test ends, pass or fail; each pane runs `sh`, in which
//! the client is started, so that leaving it shows whether the terminal
//! was given back (the shell's prompt, and a command line that works,
//! which needs the line discipline back). Every wait is bounded and shows
//! the screen when it gives up; no test measures how long anything took:
//! "leaves at once" is checked as the client ending while nothing else
//! could end it (the server away), within a generous bound. tmux is
//! required: without it the tests fail and say so (CI installs it).

use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};

mod common;
use common::{Serve, wait_for_said};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The longest any one thing may take to show on a screen: generous, so
/// that only a hang fails, never a slow machine.
const WAIT: Duration = Duration::from_secs(20);

/// The panes' size.
const WIDTH: usize = 100;
const HEIGHT: usize = 30;

/// A private tmux server, killed when dropped.
struct Tmux {
    socket: String,
    /// The socket's file, once the server runs: removed when dropped (tmux
    /// leaves it behind).
    path: std::cell::OnceCell<String>,
}

impl Tmux {
    fn new() -> Tmux {
        match Command::new("tmux").arg("-V").output() {
            Ok(output) if output.status.success() => {}
            other => panic!(
                "tmux is needed to test the full-screen client and could not be run ({other:?}): \
                 install it (apt-get install tmux; .ci/run does)"
            ),
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let socket = format!(
            "chat-tui-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        Tmux {
            socket,
            path: std::cell::OnceCell::new(),
        }
    }

    fn command(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            // No user configuration; UTF-8 whatever the locale.
            .args(["-L", &self.socket, "-f", "/dev/null", "-u"])
            .args(args)
            .env("LANG", "C.UTF-8")
            .env_remove("TMUX")
            .stdin(Stdio::null())
            .output()
            .expect("run tmux")
    }

    fn run(&self, args: &[&str]) -> String {
        let output = self.command(args);
        assert!(
            output.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("tmux speaks UTF-8")
    }

    /// A pane of WIDTH x HEIGHT running `sh` with the prompt `NAME$ `.
    fn shell<'a>(&'a self, name: &'a str) -> Pane<'a> {
        let (width, height) = (WIDTH.to_string(), HEIGHT.to_string());
        let shell = format!("env PS1='{name}$ ' sh");
        self.run(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            &width,
            "-y",
            &height,
            &shell,
        ]);
        self.path.get_or_init(|| {
            let path = self.run(&["display-message", "-p", "#{socket_path}"]);
            path.trim().to_owned()
        });
        let pane = Pane { tmux: self, name };
        pane.wait_for("the shell's prompt", |s| s.contains(&format!("{name}$")));
        pane
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command(&["kill-server"]);
        if let Some(path) = self.path.get() {
            let _ = std::fs::remove_file(path);
        }
    }
}

struct Pane<'a> {
    tmux: &'a Tmux,
    name: &'a str,
}

impl Pane<'_> {
    /// Types `text` as it is.
    fn type_text(&self, text: &str) {
        self.tmux.run(&["send-keys", "-t", self.name, "-l", text]);
    }

    /// Presses keys by tmux's names (`Enter`, `C-c`, ...).
    fn press(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.name];
        args.extend_from_slice(keys);
        self.tmux.run(&args);
    }

    /// Types `text` and presses Enter.
    fn enter(&self, text: &str) {
        self.type_text(text);
        self.press(&["Enter"]);
    }

    /// What the pane shows, one string per row, trailing blanks cut.
    fn screen(&self) -> Vec<String> {
        self.tmux
            .run(&["capture-pane", "-p", "-t", self.name])
            .lines()
            .map(|l| l.trim_end().to_owned())
            .collect()
    }

    /// Where the cursor is: column, row.
    fn cursor(&self) -> (usize, usize) {
        let out = self.tmux.run(&[
            "display-message",
            "-p",
            "-t",
            self.name,
            "#{cursor_x} #{cursor_y}",
        ]);
        let mut parts = out.split_whitespace().map(|n| n.parse().expect("a number"));
        (parts.next().expect("x"), parts.next().expect("y"))
    }

    /// Waits until the cursor stands at `at` (column, row).
    fn wait_for_cursor(&self, at: (usize, usize)) {
        let deadline = Instant::now() + WAIT;
        while self.cursor() != at {
            assert!(
                Instant::now() < deadline,
                "pane {}: the cursor is at {:?}, not {at:?}; the screen:\n{}",
                self.name,
                self.cursor(),
                self.screen().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the screen is as `ready` says; returns it.
    fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if ready(&screen.join("\n")) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!(
                    "pane {}: no {what} within {WAIT:?}; the screen:\n{}",
                    self.name,
                    screen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last row with anything on it.
    fn last_row(screen: &[String]) -> &str {
        screen
            .iter()
            .rev()
            .find(|l| !l.is_empty())
            .map_or("", String::as_str)
    }

    /// Starts `chat connect` in the pane's shell.
    fn connect(&self, name: &str, addr: SocketAddr) {
        self.enter(&format!(
            "{} connect --name {name} --addr {addr}",
            env!("CARGO_BIN_EXE_chat")
        ));
        self.wait_for("login", |s| s.contains(&format!("connected as {name} in")));
    }

    /// Waits for the client to exit: the shell's prompt on the last row;
    /// then checks that a command line works: the terminal was given back.
    fn wait_for_exit(&self) -> Vec<String> {
        let prompt = format!("{}$", self.name);
        let screen = self.wait_for("exit of chat connect (the shell's prompt back)", |s| {
            let rows: Vec<String> = s.lines().map(String::from).collect();
            Pane::last_row(&rows) == prompt
        });
        // In raw mode Enter would not end the line, nor would it echo.
        self.enter("echo restored-$((40+2))");
        self.wait_for("a working command line", |s| s.contains("\nrestored-42"));
        screen
    }
}

#[test]
fn two_clients_chat_typing_survives_traffic_and_resizes_and_quit_restores_the_terminal() {
    let tmux = Tmux::new();
    let server = Serve::start(&[]);
    let a = tmux.shell("a");
    let b = tmux.shell("b");
    a.connect("张三", server.addr);
    b.connect("lisi", server.addr);
    a.wait_for("lisi in the user list", |s| s.contains("│ lisi"));

    // Both ways, wide characters included.
    b.enter("did you have dinner");
    a.wait_for("lisi's message", |s| {
        s.contains("lisi: did you have dinner")
    });
    a.enter("吃了，你呢");
    b.wait_for("张三's answer", |s| s.contains("张三: 吃了，你呢"));

    // A message arrives while half a line is typed.
    a.type_text("half a line");
    a.wait_for("the typed text", |s| s.ends_with("lobby> half a line"));
    b.enter("interrupting you");
    let screen = a.wait_for("the message in the scrollback", |s| {
        s.contains("lisi: interrupting you")
    });
    assert_eq!(Pane::last_row(&screen), "lobby> half a line", "{screen:#?}");
    a.wait_for_cursor(("lobby> half a line".len(), HEIGHT - 1));
    // The rest of the line, and it goes out whole.
    a.enter(" and the rest");
    b.wait_for("the whole line", |s| {
        s.contains("张三: half a line and the rest")
    });
    // Sent, the input line is empty, and the line is back from the room.
    a.wait_for("the line sent", |s| {
        s.ends_with("lobby>") && s.contains("张三: half a line and the rest")
    });

    // Resizing redraws to the new size, keeping the lines and the input.
    a.type_text("still typing");
    a.wait_for("the typed text", |s| s.ends_with("lobby> still typing"));
    tmux.run(&["resize-window", "-t", "a", "-x", "60", "-y", "15"]);
    // tmux crops the old screen at once; the client's redraw puts the
    // user list's border back in, and the input line at the new bottom.
    let screen = a.wait_for("a redraw at 60x15", |s| {
        let rows: Vec<&str> = s.lines().collect();
        rows.len() == 15
            && rows[0].contains('│')
            && rows[14] == "lobby> still typing"
            && s.contains("lisi: interrupting you")
    });
    assert!(
        screen.iter().all(|l| l.chars().count() <= 60),
        "{screen:#?}"
    );
    assert_eq!(
        Pane::last_row(&screen),
        "lobby> still typing",
        "{screen:#?}"
    );
    assert!(
        screen
            .iter()
            .any(|l| l.contains("张三: half a line and the rest")),
        "{screen:#?}"
    );

    // /quit leaves at once, says bye, and gives the terminal back.
    a.press(&["C-u"]);
    a.enter("/quit");
    let screen = a.wait_for_exit();
    assert!(
        !screen.iter().any(|l| l.contains("connected as")),
        "the full screen is gone: {screen:#?}"
    );
    b.wait_for("张三 leaving", |s| s.contains("* 张三 left"));
    // Ctrl-D on an empty line leaves too.
    b.press(&["C-d"]);
    b.wait_for_exit();
}

#[test]
fn ctrl_c_while_reconnecting_leaves_at_once_and_lists_what_was_not_sent() {
    let tmux = Tmux::new();
    let server = Serve::start(&[]);
    let c = tmux.shell("c");
    c.connect("wangwu", server.addr);
    // The server goes away: the client counts down to its next attempt.
    drop(server);
    c.wait_for("the countdown", |s| s.contains("reconnecting"));
    c.enter("typed while away");
    c.wait_for("the line kept", |s| {
        s.contains("will send once logged in") && s.contains("1 waiting to be sent")
    });
    // The server stays away: nothing but Ctrl-C can end the client.
    c.press(&["C-c"]);
    let screen = c.wait_for_exit();
    assert!(
        screen
            .iter()
            .any(|l| l == "chat: not sent: typed while away"),
        "{screen:#?}"
    );
}

#[test]
fn a_line_typed_while_the_server_is_away_goes_out_after_it_restarts() {
    let tmux = Tmux::new();
    let server = Serve::start(&[]);
    let addr = server.addr;
    let d = tmux.shell("d");
    d.connect("zhaoliu", addr);
    drop(server);
    d.wait_for("the countdown", |s| s.contains("reconnecting"));
    d.enter("typed while away");
    d.wait_for("the line kept", |s| {
        s.contains("will send once logged in") && s.contains("1 waiting to be sent")
    });
    // Back on the same port: the client reconnects by itself and sends
    // the line, which another client sees.
    let server = Serve::start_at(addr, &[]);
    d.wait_for("the line sent and back from the room", |s| {
        s.contains("connected as zhaoliu in")
            && s.contains("zhaoliu: typed while away")
            && !s.contains("waiting to be sent")
    });
    wait_for_said(server.addr, "watcher", "zhaoliu:typed while away");
    d.enter("/quit");
    let screen = d.wait_for_exit();
    assert!(
        !screen.iter().any(|l| l.contains("not sent")),
        "{screen:#?}"
    );
}
