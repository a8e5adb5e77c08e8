//! `chat`: the chat server and an interactive client.
//!
//! ```text
//! chat serve   [--addr 127.0.0.1:7878] [--tls-cert CERT.pem --tls-key KEY.pem]
//!              [--plain-addr ADDR] [--max-frame BYTES] [--keepalive-idle SECS] ...
//!              [--http 127.0.0.1:7880] [--http-origin ORIGIN]...
//! chat connect --name NAME [--addr 127.0.0.1:7878] [--tls] [--ca CA.pem]
//!              [--password | --password-stdin] [--send-grace SECS]
//! chat account add|passwd|remove NAME --accounts FILE
//! ```
//!
//! `chat connect` runs full-screen (see [`tui`]) when stdin and stdout are
//! terminals, and line by line otherwise.
//!
//! Logs go to stderr, filtered by `RUST_LOG` (default `info`).

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod account;
mod address_flags;
mod commands;
mod connect;
mod room_flags;
mod serve;
mod signals;
mod tui;
mod web;

use clap::{Parser, Subcommand};

/// Chat over TCP: a server, and a client to talk to it.
#[derive(Debug, Parser)]
#[command(name = "chat", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the chat server.
    Serve(Box<serve::ServeArgs>),
    /// Chat interactively: typed lines are messages for the current room;
    /// `/join ROOM`, `/part [ROOM]`, `/rooms`, `/who [ROOM]`, `/msg NAME
    /// TEXT`, `/quit` (`/help` lists them). Full-screen on a terminal; line
    /// by line with stdin or stdout piped.
    Connect(connect::ConnectArgs),
    /// Manage the accounts file of `chat serve --accounts FILE`: add an
    /// account, change its password, remove it.
    Account(account::AccountArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(cli.default_log()));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    if matches!(cli.command, Command::Connect(_)) && tui::available() {
        // Full-screen: logs go to the scrollback, never under the screen.
        logs.with_writer(tui::LogWriter).with_ansi(false).init();
    } else {
        logs.with_writer(std::io::stderr).init();
    }
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Connect(args) => connect::run(args),
        Command::Account(args) => account::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

impl Cli {
    /// The server logs connections; the interactive client stays quiet.
    fn default_log(&self) -> &'static str {
        match self.command {
            Command::Serve(_) => "info",
            Command::Connect(_) | Command::Account(_) => "warn",
        }
    }
}
