//! The full-screen client's I/O loop: the terminal's keys, the session's
//! events, commands on their way, the first connection, timers and
//! signals, all on one tokio thread.
//!
//! Each turn hands the client what the state says may be sent now
//! ([`App::next_command`]), leaves if the person asked to, draws, then
//! waits for the first of: a key (or paste, mouse, resize), an event from
//! the session, a command that was waiting for room in the outgoing buffer,
//! the first connection's outcome, the next second of a countdown, a log
//! line, or a signal. The state decides; this file only moves things
//! between it and the world.
//!
//! Keys come from crossterm's [`EventStream`] (feature `event-stream`)
//! rather than a reader thread of our own: it is a stream tokio's
//! `select!` waits on beside everything else, cancelling a wait loses no
//! key (they stay in crossterm's queue), and its helper thread stops when
//! the stream is dropped, so leaving never waits for a key press (a thread
//! blocked in a read would).
//!
//! Leaving (`/quit`, Ctrl-C, Ctrl-D, SIGINT, SIGTERM, SIGHUP) is prompt in
//! every state: while connected the session says bye and the loop waits
//! for the bye to be flushed, at most [`LEAVE_GRACE`]; while connecting,
//! waiting to reconnect, or after the end, it leaves at once. A second
//! request leaves at once too.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use chat_proto::{Backoff, ClientConfig, Event, UsageError};
use crossterm::event::EventStream;
use futures_core::Stream;
use tokio::sync::mpsc::UnboundedReceiver;
use transport_tokio::{Client, ConnectError, Login};

use super::app::{App, Command, Now, Outgoing};
use super::draw;
use super::status::Link;
use super::terminal::Screen;
use crate::connect::ConnectArgs;
use crate::signals::Signals;

/// How long leaving waits for the session's bye to go out.
const LEAVE_GRACE: Duration = Duration::from_secs(1);

/// At most this many waiting events are taken before the screen is drawn.
const EVENT_BATCH: usize = 256;

/// A command waiting for room in the client's outgoing buffer.
type Sending = Pin<Box<dyn Future<Output = (Outgoing, Result<(), UsageError>)>>>;

/// The first connection, being opened.
type Connecting = Pin<Box<dyn Future<Output = Result<Client, ConnectError>>>>;

/// How the loop ended, and what was typed but never sent.
pub(crate) struct Exit {
    pub(crate) result: Result<(), String>,
    pub(crate) unsent: Vec<String>,
}

/// Runs the full-screen client on the taken `screen` until the person
/// leaves, the terminal goes away, or the first connection is refused.
pub(crate) async fn run(
    args: &ConnectArgs,
    login: &Login,
    config: ClientConfig,
    screen: &mut Screen,
    mut logs: UnboundedReceiver<String>,
) -> Exit {
    let mut app = App::new(&args.name, &args.addr);
    let mut sending: Option<(Option<String>, Sending)> = None;
    let result = run_loop(
        args,
        login,
        config,
        screen,
        &mut logs,
        &mut app,
        &mut sending,
    )
    .await;
    let mut unsent: Vec<String> = sending.and_then(|(line, _)| line).into_iter().collect();
    unsent.extend(app.unsent().cloned());
    Exit { result, unsent }
}

async fn run_loop(
    args: &ConnectArgs,
    login: &Login,
    config: ClientConfig,
    screen: &mut Screen,
    logs: &mut UnboundedReceiver<String>,
    app: &mut App,
    sending: &mut Option<(Option<String>, Sending)>,
) -> Result<(), String> {
    let mut keys = EventStream::new();
    let mut signals = Signals::new().map_err(|e| format!("signals: {e}"))?;
    let mut backoff = Backoff::new(config.reconnect.unwrap_or_default(), seed());
    let mut connecting: Option<Connecting> = Some(connect(args, login, &config));
    let mut waiting: Option<Instant> = None;
    let mut client: Option<Arc<Client>> = None;
    let mut leaving: Option<Instant> = None;
    let now = Now::read();
    app.note(
        &now,
        format!(
            "* chat connect as {} to {} (/help lists the commands and keys, /quit leaves)",
            args.name, args.addr
        ),
    );
    loop {
        let now = Now::read();
        if let Some(client) = &client {
            pump(app, client, sending, &now);
        }
        if let Some(reason) = app.take_quit() {
            // Asked twice, or nothing to say bye on: leave now.
            let Some(c) = client.as_ref().filter(|_| leaving.is_none()) else {
                return Ok(());
            };
            if c.close(reason).is_err() {
                return Ok(());
            }
            leaving = Some(now.instant + LEAVE_GRACE);
            app.status.link = Link::Leaving;
        }
        if std::mem::take(&mut app.clear) {
            screen.terminal.clear().map_err(|e| e.to_string())?;
        }
        screen
            .terminal
            .draw(|f| draw::frame(f, app, now.instant))
            .map_err(|e| format!("drawing: {e}"))?;
        let wake = [app.status.next_change(now.instant), waiting, leaving]
            .into_iter()
            .flatten()
            .min();
        tokio::select! {
            key = next_key(&mut keys) => match key {
                Some(Ok(event)) => app.on_terminal(event, &Now::read()),
                Some(Err(e)) => return Err(format!("reading the terminal: {e}")),
                None => return Err("the terminal went away".into()),
            },
            event = async { client.as_ref()?.next_event().await }, if client.is_some() => {
                let live = client.clone();
                let mut event = event;
                for _ in 0..EVENT_BATCH {
                    let now = Now::read();
                    let Some(e) = event else {
                        // The session is over: after a bye, as asked; or
                        // for good without being asked (kicked, gave up).
                        if leaving.is_some() {
                            return Ok(());
                        }
                        client = None;
                        app.session_over(&now);
                        break;
                    };
                    app.on_event(&e, &now);
                    // Take what else is waiting before drawing.
                    let Some(c) = &live else { break };
                    match c.poll_event(&mut Context::from_waker(Waker::noop())) {
                        Poll::Ready(next) => event = next,
                        Poll::Pending => break,
                    }
                }
            },
            done = async { sending.as_mut().expect("polled only while Some").1.as_mut().await }, if sending.is_some() => {
                *sending = None;
                app.done(done.0, done.1, &Now::read());
            },
            outcome = async { connecting.as_mut().expect("polled only while Some").await }, if connecting.is_some() => {
                connecting = None;
                let now = Now::read();
                match outcome {
                    Ok(c) => {
                        let name = c.name().unwrap_or_else(|| args.name.clone());
                        client = Some(Arc::new(c));
                        app.on_event(&Event::LoggedIn { name }, &now);
                    }
                    Err(e) => {
                        let retry = matches!(e, ConnectError::Io(_) | ConnectError::Closed(_))
                            && !args.no_reconnect;
                        let Some(delay) = backoff.next_delay().filter(|_| retry) else {
                            return Err(format!("{}: {e}", args.addr));
                        };
                        let until = now.instant + delay;
                        waiting = Some(until);
                        let attempt = backoff.attempts();
                        app.status.link = Link::Waiting { attempt, until };
                        // The first failure is worth a line; the status bar
                        // counts down the next attempts.
                        if attempt == 1 {
                            app.note(&now, format!("! could not connect to {}: {e}", args.addr));
                        }
                    }
                }
            },
            () = sleep_until(wake) => {
                let now = Instant::now();
                if leaving.is_some_and(|t| now >= t) {
                    return Ok(());
                }
                if waiting.is_some_and(|t| now >= t) {
                    waiting = None;
                    connecting = Some(connect(args, login, &config));
                    app.status.link = Link::Connecting { attempt: backoff.attempts() + 1 };
                }
                // Otherwise a countdown moved on: the next turn draws it.
            },
            () = signals.recv() => app.quit_on_signal(),
            Some(line) = logs.recv() => app.note(&Now::read(), format!("! {line}")),
        }
    }
}

/// Hands the client every command that may go now; one that must wait
/// for room in the outgoing buffer waits in `sending`, and holds back the
/// ones after it.
fn pump(
    app: &mut App,
    client: &Arc<Client>,
    sending: &mut Option<(Option<String>, Sending)>,
    now: &Now,
) {
    while sending.is_none() {
        let Some(outgoing) = app.next_command(&client.joined_rooms(), now) else {
            return;
        };
        let result = match &outgoing.command {
            Command::Say { .. } | Command::Msg { .. } => {
                let c = client.clone();
                let line = outgoing.line.clone();
                let mut future: Sending = Box::pin(async move {
                    let result = match &outgoing.command {
                        Command::Say {
                            room: Some(room),
                            text,
                        } => c.say_in(room, text).await,
                        Command::Say { room: None, text } => c.say(text).await,
                        Command::Msg { to, text } => c.pm(to, text).await,
                        _ => unreachable!("only says and messages wait"),
                    };
                    (outgoing, result)
                });
                // Most of the time there is room at once.
                match future
                    .as_mut()
                    .poll(&mut Context::from_waker(Waker::noop()))
                {
                    Poll::Ready((outgoing, result)) => {
                        app.done(outgoing, result, now);
                        continue;
                    }
                    Poll::Pending => {
                        *sending = Some((line, future));
                        return;
                    }
                }
            }
            Command::Join(room) => client.join(room),
            Command::Part(room) => client.part(room),
            Command::Who(Some(room)) => client.who_in(room),
            Command::Who(None) => client.who(),
            Command::Rooms => client.rooms(),
        };
        app.done(outgoing, result, now);
    }
}

/// Opens the first connection and logs in.
fn connect(args: &ConnectArgs, login: &Login, config: &ClientConfig) -> Connecting {
    let addr = args.addr.clone();
    let login = login.clone();
    let config = config.clone();
    let tls = args.tls_settings.clone();
    Box::pin(crate::connect::open(addr, login, config, tls))
}

/// The next thing the terminal reports.
async fn next_key(keys: &mut EventStream) -> Option<std::io::Result<crossterm::event::Event>> {
    std::future::poll_fn(|cx| Pin::new(&mut *keys).poll_next(cx)).await
}

/// Sleeps until `wake`, or for ever.
async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// Jitter for the first connection's retries.
fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}
