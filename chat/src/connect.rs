//! `chat connect`: a line-oriented client for people and scripts, used
//! when stdin or stdout is not a terminal (on a terminal, `chat connect`
//! runs full-screen: [`tui`](crate::tui)).
//!
//! A typed line is a message for the current room; slash commands join and
//! leave rooms, list them, ask who is there and send private messages (see
//! [`commands`](crate::commands)); `/quit`, the end of stdin, or Ctrl-C says
//! bye and leaves. What the rooms say is printed as it comes, with the room
//! named when it is not the current one. A lost connection is reopened with
//! backoff (the core session decides when); lines typed meanwhile are kept
//! and sent once logged in again.
//!
//! `--password` asks for the account's password on the terminal, without
//! echo; `--password-stdin` takes the first line of stdin as the password
//! (the lines after it are messages, as usual). Either logs in with
//! `iam:NAME:PASSWORD`, which a server takes only over TLS or on loopback.

use std::collections::VecDeque;
use std::time::Duration;

use chat_proto::{ClientConfig, Event, Keepalive, ReconnectPolicy, UsageError};
use clap::Args;
use tokio::io::{AsyncBufReadExt, BufReader};
use transport_tokio::{Client, ClientOptions, Login};

use crate::commands::{HELP, Input, View};

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
    /// Do not reconnect when the connection is lost.
    #[arg(long)]
    pub(crate) no_reconnect: bool,
    /// Log in to an account: ask for its password (without echo).
    #[arg(long, conflicts_with = "password_stdin")]
    pub(crate) password: bool,
    /// Log in to an account whose password is the first line of stdin.
    #[arg(long)]
    pub(crate) password_stdin: bool,
}

impl ConnectArgs {
    /// The session's configuration from the flags.
    pub(crate) fn config(&self) -> Result<ClientConfig, String> {
        let seconds = |flag: &str, secs: f64| {
            Duration::try_from_secs_f64(secs).map_err(|e| format!("--{flag}: {e}"))
        };
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

pub(crate) fn run(args: ConnectArgs) -> Result<(), String> {
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
    let client = Client::connect_with(&args.addr, login, config, ClientOptions::default())
        .await
        .map_err(|e| format!("{}: {e}", args.addr))?;
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
    // Lines typed while disconnected, sent once logged in again.
    let mut held: VecDeque<String> = VecDeque::new();
    loop {
        tokio::select! {
            // Ctrl-C leaves politely; a second one quits at once.
            _ = tokio::signal::ctrl_c() => {
                if interrupted {
                    return Ok(());
                }
                interrupted = true;
                typing = false;
                let _ = client.close("interrupted");
            },
            line = stdin.next_line(), if typing => match line {
                Ok(Some(line)) => {
                    if let Outcome::Quit = typed(&client, &mut view, &mut held, &line).await {
                        typing = false;
                    }
                }
                // End of input: leave once what was typed is sent.
                Ok(None) | Err(_) => {
                    typing = false;
                    if held.is_empty() {
                        let _ = client.close("bye");
                    }
                }
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
                    if matches!(event, Event::LoggedIn { .. }) {
                        while let Some(line) = held.pop_front() {
                            typed(&client, &mut view, &mut held, &line).await;
                        }
                        if !typing && held.is_empty() {
                            let _ = client.close("bye");
                        }
                    }
                }
                None => return Ok(()),
            },
        }
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
        Err(UsageError::NotConnected) => {
            held.push_back(line.to_owned());
            println!("* not connected: will send once logged in again");
        }
        Err(e) => println!("! not sent: {e}"),
    }
    Outcome::Continue
}
