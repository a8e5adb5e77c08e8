//! `chat connect`: a line-oriented client for people and scripts, used
//! when stdin or stdout is not a terminal (on a terminal, `chat connect`
//! runs full-screen: [`tui`](crate::tui)).
//!
//! A typed line is a message for the current room; slash commands join and
//! leave rooms, list them, ask who is there and send private messages (see
//! [`commands`](crate::commands)); `/quit`, the end of stdin, or Ctrl-C
//! (SIGINT, SIGTERM, SIGHUP) says bye and leaves. What the rooms say is
//! printed as it comes, with the room named when it is not the current one.
//! A lost connection is reopened with backoff (the core session decides
//! when); lines typed meanwhile are held and sent once logged in again.
//!
//! No typed line is dropped without a word: whatever is still held when the
//! client leaves (asked to, or the session over for good) is listed on
//! stderr, `chat: not sent: LINE`, and the exit status is 1. Leaving is
//! prompt in every state: while connected, Ctrl-C says bye and waits for
//! the server's answer (a second Ctrl-C leaves at once); between
//! connections it leaves at once. The end of stdin while lines are held
//! waits at most `--send-grace` (default 10 s) for the connection to come
//! back and send them, then leaves; with nothing held it leaves at once.
//!
//! `--password` asks for the account's password on the terminal, without
//! echo; `--password-stdin` takes the first line of stdin as the password
//! (the lines after it are messages, as usual). Either logs in with
//! `iam:NAME:PASSWORD`, which a server takes only over TLS or on loopback.
//!
//! With `--tls` (or `--ca`) it speaks TLS and verifies the server's
//! certificate, against the system's roots or the CA given with `--ca`,
//! as the host name of `--addr` (sent as SNI too); the full-screen client
//! too. There is no way to skip the verification.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use chat_proto::{ClientConfig, Event, Keepalive, ReconnectPolicy, UsageError};
use clap::Args;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::Instant;
use transport_tokio::{Client, ClientOptions, ClientTls, ConnectError, Login};

use crate::commands::{HELP, Input, View};
use crate::signals::Signals;

/// Flags of `chat connect`.
#[derive(Debug, Args)]
pub(crate) struct ConnectArgs {
    /// The name to log in with.
    #[arg(long)]
    pub(crate) name: String,
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub(crate) addr: String,
    /// Seconds of silence from the server before a ping.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub(crate) keepalive_idle: f64,
    /// Seconds to wait for anything after a ping before the server counts
    /// as gone.
    #[arg(long, value_name = "SECS", default_value_t = 15.0)]
    pub(crate) keepalive_timeout: f64,
    /// Line mode: once stdin has ended while lines typed during a lost
    /// connection are held, seconds to wait for it to come back and send
    /// them; then they are listed on stderr as not sent (exit status 1).
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub(crate) send_grace: f64,
    /// Do not reconnect when the connection is lost.
    #[arg(long)]
    pub(crate) no_reconnect: bool,
    /// Log in to an account: ask for its password (without echo).
    #[arg(long, conflicts_with = "password_stdin")]
    pub(crate) password: bool,
    /// Log in to an account whose password is the first line of stdin.
    #[arg(long)]
    pub(crate) password_stdin: bool,
    /// Speak TLS, verifying the server's certificate against the system's
    /// root certificates (or --ca) as the host name of --addr.
    #[arg(long)]
    pub(crate) tls: bool,
    /// Verify the server against this CA certificate (PEM) instead of the
    /// system's roots: a private CA, or a self-signed server certificate.
    /// Implies --tls.
    #[arg(long, value_name = "CA.pem")]
    pub(crate) ca: Option<PathBuf>,
    /// The TLS settings --tls and --ca make, loaded once by `run`.
    #[arg(skip)]
    pub(crate) tls_settings: Option<ClientTls>,
}

impl ConnectArgs {
    /// The session's configuration from the flags.
    pub(crate) fn config(&self) -> Result<ClientConfig, String> {
        let mut config = ClientConfig::default();
        config.keepalive = Keepalive::new(
            seconds("keepalive-idle", self.keepalive_idle)?,
            seconds("keepalive-timeout", self.keepalive_timeout)?,
        );
        if !self.no_reconnect {
            config.reconnect = Some(ReconnectPolicy::default());
        }
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    /// How long the end of stdin waits to send held lines (`--send-grace`).
    fn send_grace(&self) -> Result<Duration, String> {
        seconds("send-grace", self.send_grace)
    }

    /// The TLS settings, if --tls or --ca asks for TLS.
    fn load_tls(&self) -> Result<Option<ClientTls>, String> {
        match (&self.ca, self.tls) {
            (Some(ca), _) => ClientTls::from_ca_file(ca).map(Some),
            (None, true) => ClientTls::system_roots().map(Some),
            (None, false) => Ok(None),
        }
        .map_err(|e| e.to_string())
    }

    /// How to log in: as a guest, or to an account with a password read
    /// from the terminal or from stdin.
    fn login(&self) -> Result<Login, String> {
        let password = if self.password {
            crate::account::prompt(&format!("password for {}: ", self.name))?
        } else if self.password_stdin {
            crate::account::stdin_line()?
        } else {
            return Ok(Login::guest(&self.name));
        };
        if password.is_empty() {
            return Err("the password is empty".into());
        }
        Ok(Login::with_secret(&self.name, password))
    }
}

/// A flag's seconds as a duration.
fn seconds(flag: &str, secs: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(secs).map_err(|e| format!("--{flag}: {e}"))
}

/// Connects to `addr` and logs in, over TLS with `tls`.
pub(crate) async fn open(
    addr: String,
    login: Login,
    config: ClientConfig,
    tls: Option<ClientTls>,
) -> Result<Client, ConnectError> {
    let options = ClientOptions::default();
    match tls {
        Some(tls) => Client::connect_tls(addr, login, config, options, &tls).await,
        None => Client::connect_with(addr, login, config, options).await,
    }
}

pub(crate) fn run(mut args: ConnectArgs) -> Result<(), String> {
    // A CA file that cannot serve is said before anything else happens.
    args.tls_settings = args.load_tls()?;
    // Before the session reads stdin (the password may be its first line:
    // std's stdin buffer, which tokio's stdin reads through, keeps the
    // lines after it), and before the full-screen client takes the
    // terminal (a password prompt needs it as it is).
    let login = args.login()?;
    if crate::tui::available() {
        return crate::tui::run(args, login);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let result = runtime.block_on(session(args, login));
    // Reading stdin holds a blocking thread that only a line would end: do
    // not wait for it.
    runtime.shutdown_background();
    result
}

/// What one typed line did.
enum Outcome {
    Continue,
    Quit,
}

async fn session(args: ConnectArgs, login: Login) -> Result<(), String> {
    let config = args.config()?;
    let grace = args.send_grace()?;
    let client = open(args.addr.clone(), login, config, args.tls_settings.clone())
        .await
        .map_err(|e| format!("{}: {e}", args.addr))?;
    // Only now: until here a signal ends the process the usual way, at once.
    let mut signals = Signals::new().map_err(|e| format!("signals: {e}"))?;
    println!(
        "* logged in as {} at {} (/help lists the commands, /quit leaves)",
        args.name, args.addr
    );
    let mut view = View {
        me: args.name.clone(),
        ..View::default()
    };
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut typing = true;
    let mut interrupted = false;
    // Logged in on the current connection: a bye has something to go out on.
    let mut online = true;
    // Lines typed while disconnected, sent once logged in again.
    let mut held: VecDeque<String> = VecDeque::new();
    // Once stdin ended with lines held: when to stop waiting to send them.
    let mut give_up: Option<Instant> = None;
    loop {
        tokio::select! {
            // A signal leaves politely; a second one, or one between
            // connections (no bye to wait for), at once.
            () = signals.recv() => {
                let _ = client.close("interrupted");
                if interrupted || !online {
                    break;
                }
                interrupted = true;
                typing = false;
            },
            line = stdin.next_line(), if typing => match line {
                Ok(Some(line)) => {
                    if let Outcome::Quit = typed(&client, &mut view, &mut held, &line).await {
                        typing = false;
                    }
                }
                // End of input: leave once what was typed is sent, or
                // after the grace.
                Ok(None) | Err(_) => {
                    typing = false;
                    if held.is_empty() {
                        let _ = client.close("bye");
                    } else {
                        println!(
                            "* input ended while disconnected: waiting up to {:.1} s to send {}",
                            grace.as_secs_f64(),
                            lines(held.len())
                        );
                        give_up = Some(Instant::now() + grace);
                    }
                }
            },
            () = sleep_until(give_up), if give_up.is_some() => {
                let _ = client.close("bye");
                break;
            },
            // After the last `Closed` the stream ends (`None`) once the
            // last bytes, such as our `bye:`, are flushed: only then is it
            // safe to exit.
            event = client.next_event() => match event {
                Some(event) => {
                    view.update(&event);
                    if let Some(line) = view.render(&event) {
                        println!("{line}");
                    }
                    match event {
                        Event::LoggedIn { .. } => {
                            online = true;
                            // Lines that cannot go now are held again.
                            for line in std::mem::take(&mut held) {
                                typed(&client, &mut view, &mut held, &line).await;
                            }
                            if !typing && held.is_empty() {
                                give_up = None;
                                let _ = client.close("bye");
                            }
                        }
                        Event::Closed { .. } => online = false,
                        _ => {}
                    }
                }
                None => break,
            },
        }
    }
    unsent(&held)
}

/// Lists the held lines on stderr, as not sent; an error if there are any.
fn unsent(held: &VecDeque<String>) -> Result<(), String> {
    if held.is_empty() {
        return Ok(());
    }
    for line in held {
        eprintln!("chat: not sent: {line}");
    }
    Err(format!(
        "{} not sent: the connection was down",
        lines(held.len())
    ))
}

/// `1 typed line`, `2 typed lines`.
fn lines(n: usize) -> String {
    format!("{n} typed line{}", if n == 1 { "" } else { "s" })
}

/// Sleeps until `at`, or for ever.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Acts on one typed line.
async fn typed(
    client: &Client,
    view: &mut View,
    held: &mut VecDeque<String>,
    line: &str,
) -> Outcome {
    let result = match Input::parse(line) {
        Input::Nothing => return Outcome::Continue,
        Input::Quit => {
            let _ = client.close("bye");
            return Outcome::Quit;
        }
        Input::Help => {
            println!("* {HELP}");
            return Outcome::Continue;
        }
        Input::Unknown(line) => {
            println!("! unknown command {line:?}; /help lists them");
            return Outcome::Continue;
        }
        Input::Say(text) => match &view.current {
            Some(room) => client.say_in(room, &text).await,
            None => client.say(&text).await,
        },
        Input::Join(room) => {
            let joined = client.joined_rooms().contains(&room)
                || view.default_room.as_deref() == Some(room.as_str());
            let result = if joined { Ok(()) } else { client.join(&room) };
            if result.is_ok() {
                view.current =
                    (view.default_room.as_deref() != Some(room.as_str())).then_some(room);
                println!("* now speaking in {}", view.current_name());
            }
            result
        }
        Input::Part(room) => match room.or_else(|| view.current.clone()) {
            Some(room) => client.part(&room),
            None => {
                println!(
                    "! /part ROOM: name the room (the default room is {})",
                    view.current_name()
                );
                return Outcome::Continue;
            }
        },
        Input::Rooms => client.rooms(),
        Input::Who(room) => match room.or_else(|| view.current.clone()) {
            Some(room) => client.who_in(&room),
            None => client.who(),
        },
        Input::Msg { to, text } => client.pm(&to, &text).await,
    };
    match result {
        Ok(()) => {}
        // Between connections, or logging in again after one.
        Err(UsageError::NotConnected | UsageError::NotLoggedIn) => {
            held.push_back(line.to_owned());
            println!("* not connected: will send once logged in again");
        }
        Err(e) => println!("! not sent: {e}"),
    }
    Outcome::Continue
}
