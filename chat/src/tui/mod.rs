//! `chat connect` full-screen, when stdin and stdout are both terminals.
//!
//! The screen holds a scrollback (PageUp/PageDown or the mouse wheel page
//! through it; each line has its time, `HH:MM`, and each name its own
//! colour), the current room's user list, a status bar (connecting,
//! connected as NAME in ROOM, reconnecting in N s, closed; lines waiting
//! to be sent), and an input line that incoming traffic never touches, with
//! editing keys and a history of sent lines (Up/Down). Typed lines and
//! slash commands are those of line mode ([`commands`](crate::commands)),
//! and so are the lines events render as. A line typed while the session
//! is not logged in is kept and sent after the next login, and the
//! scrollback says so; a refused one is reported there.
//!
//! The parts, each a file:
//!
//! * [`app`]: the state and everything that changes it (events, typed
//!   lines, commands' outcomes); pure, and unit-tested; [`keys`]: what
//!   each key does to it.
//! * [`editor`], [`scrollback`], [`users`], [`status`]: the input line, the
//!   lines so far and paging, the user lists and name colours, the
//!   connection state; pure.
//! * [`draw`]: the state onto the screen with ratatui.
//! * [`session`]: the I/O loop (keys, the session, timers, signals).
//! * [`terminal`]: taking the terminal and giving it back on every way
//!   out, a panic included; log lines kept off the screen.
//!
//! Why ratatui and crossterm: ratatui is the maintained immediate-mode
//! library (redraw the whole state each frame, diffed into minimal output),
//! which keeps the state pure and the drawing one function, and crossterm
//! is its default backend, with an async key stream for tokio; cursive
//! owns the event loop and its own widget state (a poor fit beside an
//! async session), and termion is Unix-only with no async input.

pub(crate) mod app;
pub(crate) mod draw;
pub(crate) mod editor;
pub(crate) mod keys;
pub(crate) mod scrollback;
pub(crate) mod session;
pub(crate) mod status;
pub(crate) mod terminal;
pub(crate) mod users;

use std::io::IsTerminal;

use crate::connect::ConnectArgs;
pub(crate) use terminal::LogWriter;

/// Whether `chat connect` runs full-screen: stdin and stdout are both
/// terminals. With a pipe on either side it keeps to line mode.
pub(crate) fn available() -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// Runs `chat connect` full-screen until the person leaves. The terminal
/// is given back before this returns, whatever happened; lines typed but
/// never sent are then listed on stderr.
pub(crate) fn run(args: ConnectArgs, login: transport_tokio::Login) -> Result<(), String> {
    let config = args.config()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (mut screen, logs) =
        terminal::Screen::enter().map_err(|e| format!("cannot use the terminal: {e}"))?;
    let exit = runtime.block_on(session::run(&args, &login, config, &mut screen, logs));
    drop(screen);
    runtime.shutdown_background();
    for line in &exit.unsent {
        eprintln!("chat: not sent: {line}");
    }
    exit.result
}
