//! The full-screen client's state, and what changes it: typed lines, the
//! session's events, the outcomes of commands (and keys, in
//! [`keys`](super::keys)). No I/O here.
//!
//! [`App`] holds the scrollback, the input line, the user lists and the
//! connection state, and the typed lines that wait for the server. Typed
//! lines are read by [`Input::parse`], the same as in line mode: local
//! commands (`/help`, `/quit`, mistakes) are answered at once, the rest go
//! into an outbox, in order. The I/O loop ([`session`](super::session))
//! takes them with [`App::next_command`] only while logged in, hands each to
//! the client and reports back with [`App::done`]: a line refused for want
//! of a connection goes back to the front of the outbox, to be sent after
//! the next login, and the scrollback says so; a line refused for any other
//! reason is reported there. Nothing typed is dropped without a word.

use std::collections::VecDeque;
use std::time::Instant;

use chat_proto::{Event, UsageError};

use super::editor::Editor;
use super::keys::KEYS;
use super::scrollback::{Entry, Scrollback};
use super::status::{Link, Status};
use super::users::Users;
use crate::commands::{HELP, Input, View};

/// The time, as the state needs it: an instant for countdowns, and the
/// time of day for the scrollback.
#[derive(Debug, Clone)]
pub(crate) struct Now {
    pub(crate) instant: Instant,
    /// `HH:MM`, local time.
    pub(crate) time: String,
}

impl Now {
    /// The time now, local.
    pub(crate) fn read() -> Now {
        Now {
            instant: Instant::now(),
            time: chrono::Local::now().format("%H:%M").to_string(),
        }
    }
}

/// What the client is asked to do for a typed line, resolved against the
/// current room when its turn comes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// Say `text` in `room` (`None`: the default room).
    Say { room: Option<String>, text: String },
    /// A private message.
    Msg { to: String, text: String },
    /// Join a room not joined yet.
    Join(String),
    /// Leave a room.
    Part(String),
    /// Ask who is in a room (`None`: the default room).
    Who(Option<String>),
    /// Ask which rooms exist.
    Rooms,
}

/// A command on its way, and the typed line it came from (`None` for the
/// client's own quiet `who`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outgoing {
    pub(crate) line: Option<String>,
    pub(crate) command: Command,
}

/// The whole state of the full-screen client.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) view: View,
    pub(crate) scrollback: Scrollback,
    pub(crate) editor: Editor,
    pub(crate) users: Users,
    pub(crate) status: Status,
    /// Typed lines for the server, oldest first.
    outbox: VecDeque<String>,
    /// Quiet `who` questions to ask (`None`: the default room).
    asks: VecDeque<Option<String>>,
    /// A line was refused for want of a connection: nothing more is sent
    /// until the next login.
    held: bool,
    /// The session ended for good: nothing will be sent any more.
    over: bool,
    /// The person asked to leave, with this reason for the server.
    pub(super) quit: Option<&'static str>,
    /// The screen should be cleared and drawn anew (Ctrl-L).
    pub(crate) clear: bool,
}

impl App {
    /// A client about to connect to `addr` as `name`.
    pub(crate) fn new(name: &str, addr: &str) -> App {
        App {
            view: View {
                me: name.to_owned(),
                ..View::default()
            },
            scrollback: Scrollback::default(),
            editor: Editor::default(),
            users: Users::default(),
            status: Status::new(addr),
            outbox: VecDeque::new(),
            asks: VecDeque::new(),
            held: false,
            over: false,
            quit: None,
            clear: false,
        }
    }

    /// Adds a line of the client's own to the scrollback.
    pub(crate) fn note(&mut self, now: &Now, text: String) {
        self.scrollback.push(Entry::plain(&now.time, text));
    }

    /// Typed lines not handed to the client yet.
    pub(crate) fn unsent(&self) -> impl Iterator<Item = &String> {
        self.outbox.iter()
    }

    /// The room typed lines go to, as its user list is filed.
    pub(crate) fn current_room_key(&self) -> String {
        self.view
            .current
            .clone()
            .or_else(|| self.view.default_room.clone())
            .unwrap_or_default()
    }

    /// Takes the person's request to leave, if any, with the reason to
    /// give the server.
    pub(crate) fn take_quit(&mut self) -> Option<&'static str> {
        self.quit.take()
    }

    /// A signal (SIGINT, SIGTERM, SIGHUP) asks the client to leave.
    pub(crate) fn quit_on_signal(&mut self) {
        self.quit = Some("interrupted");
    }

    /// Enter: the typed line is acted on.
    pub(super) fn submit(&mut self, now: &Now) {
        let line = self.editor.take();
        self.scrollback.bottom();
        match Input::parse(&line) {
            Input::Nothing => {}
            Input::Quit => self.quit = Some("bye"),
            Input::Help => {
                self.note(now, format!("* {HELP}"));
                self.note(now, format!("* {KEYS}"));
            }
            Input::Unknown(line) => {
                self.note(now, format!("! unknown command {line:?}; /help lists them"));
            }
            _ if self.over => {
                self.note(now, format!("! not sent (the session is over): {line}"));
            }
            _ => {
                self.outbox.push_back(line);
                if !self.status.is_connected() || self.held {
                    let n = self.outbox.len();
                    self.note(
                        now,
                        format!("* not connected: will send once logged in ({n} waiting)"),
                    );
                }
            }
        }
    }

    /// The next command for the client, if it may be sent now (logged in,
    /// nothing refused for want of a connection since). `joined` is the
    /// rooms the session is in besides the default one.
    pub(crate) fn next_command(&mut self, joined: &[String], now: &Now) -> Option<Outgoing> {
        if !self.status.is_connected() || self.held || self.over {
            return None;
        }
        if let Some(room) = self.asks.pop_front() {
            self.users.asked_quietly(room.as_deref());
            return Some(Outgoing {
                line: None,
                command: Command::Who(room),
            });
        }
        while let Some(line) = self.outbox.pop_front() {
            let current = self.view.current.clone();
            let command = match Input::parse(&line) {
                Input::Say(text) => Command::Say {
                    room: current,
                    text,
                },
                Input::Msg { to, text } => Command::Msg { to, text },
                Input::Join(room) => {
                    let is_default = self.view.default_room.as_deref() == Some(room.as_str());
                    if is_default || joined.contains(&room) {
                        self.switch_to(room, now);
                        continue;
                    }
                    Command::Join(room)
                }
                Input::Part(room) => match room.or(current) {
                    Some(room) => Command::Part(room),
                    None => {
                        let default = self.view.current_name();
                        self.note(
                            now,
                            format!("! /part ROOM: name the room (the default room is {default})"),
                        );
                        continue;
                    }
                },
                Input::Rooms => Command::Rooms,
                Input::Who(room) => Command::Who(room.or(current)),
                // Answered when typed; never in the outbox.
                Input::Nothing | Input::Quit | Input::Help | Input::Unknown(_) => continue,
            };
            return Some(Outgoing {
                line: Some(line),
                command,
            });
        }
        None
    }

    /// Typed lines go to `room` from now on.
    fn switch_to(&mut self, room: String, now: &Now) {
        let is_default = self.view.default_room.as_deref() == Some(room.as_str());
        self.view.current = (!is_default).then_some(room);
        let name = self.view.current_name();
        self.note(now, format!("* now speaking in {name}"));
    }

    /// What became of a command from [`next_command`](Self::next_command).
    pub(crate) fn done(&mut self, outgoing: Outgoing, result: Result<(), UsageError>, now: &Now) {
        let Some(line) = outgoing.line else {
            if result.is_err()
                && let Command::Who(room) = &outgoing.command
            {
                // A new login asks again.
                self.users.not_asked(room.as_deref());
            }
            return;
        };
        match result {
            Ok(()) => {
                if let Command::Join(room) = outgoing.command {
                    self.switch_to(room, now);
                }
            }
            Err(UsageError::NotConnected | UsageError::NotLoggedIn) => {
                self.outbox.push_front(line);
                self.held = true;
                let n = self.outbox.len();
                self.note(
                    now,
                    format!("* not connected: will send once logged in again ({n} waiting)"),
                );
            }
            Err(e) => self.note(now, format!("! not sent ({e}): {line}")),
        }
    }

    /// Acts on one of the session's events.
    pub(crate) fn on_event(&mut self, event: &Event, now: &Now) {
        self.view.update(event);
        self.status.update(event, now.instant);
        let me = self.view.me.clone();
        let shown = self
            .users
            .update(event, &me, self.view.default_room.as_deref());
        match event {
            Event::LoggedIn { .. } => {
                // Old lists and questions belong to the old connection.
                self.users.forget();
                self.asks.clear();
                self.asks.push_back(None);
                self.held = false;
            }
            Event::Joined { room, name }
                if *name == me && self.view.default_room.as_deref() != Some(room.as_str()) =>
            {
                self.asks.push_back(Some(room.clone()));
            }
            _ => {}
        }
        // The first reconnect is worth a line; the status bar counts down
        // the ones after it.
        let again = matches!(event, Event::Reconnecting { attempt, .. } if *attempt > 1);
        if shown
            && !again
            && let Some(pieces) = self.view.render_pieces(event)
        {
            self.scrollback.push(Entry::from_pieces(&now.time, pieces));
        }
        if let Event::LoggedIn { .. } = event
            && !self.outbox.is_empty()
        {
            let n = self.outbox.len();
            let lines = if n == 1 { "line" } else { "lines" };
            self.note(now, format!("* sending the {n} {lines} typed meanwhile"));
        }
    }

    /// The session ended for good (its events ended) without being asked
    /// to: what waits can never be sent, and is reported.
    pub(crate) fn session_over(&mut self, now: &Now) {
        self.over = true;
        if !matches!(self.status.link, Link::Closed { .. } | Link::Leaving) {
            self.status.link = Link::Closed {
                why: "the session is over".into(),
            };
        }
        let lines: Vec<String> = self.outbox.drain(..).collect();
        for line in lines {
            self.note(now, format!("! not sent (the session is over): {line}"));
        }
    }
}

/// Helpers for the tests of the state, here and in [`keys`](super::keys).
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    pub(crate) fn now() -> Now {
        Now {
            instant: Instant::now(),
            time: "12:34".into(),
        }
    }

    pub(crate) fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    pub(crate) fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    pub(crate) fn type_line(app: &mut App, text: &str) {
        for c in text.chars() {
            app.on_key(key(KeyCode::Char(c)), &now());
        }
    }

    pub(crate) fn enter(app: &mut App, text: &str) {
        type_line(app, text);
        app.on_key(key(KeyCode::Enter), &now());
    }

    pub(crate) fn lines(app: &App) -> Vec<String> {
        app.scrollback
            .visible()
            .iter()
            .map(|r| {
                r.segments
                    .iter()
                    .map(|(s, _)| s.as_str())
                    .collect::<String>()
            })
            .collect()
    }

    /// A client logged in as `me` in `lobby`, its first questions answered.
    pub(crate) fn logged_in() -> App {
        let mut app = App::new("me", "127.0.0.1:7878");
        app.scrollback.set_viewport(200, 50);
        let n = now();
        app.on_event(&Event::LoggedIn { name: "me".into() }, &n);
        app.on_event(
            &Event::Joined {
                room: "lobby".into(),
                name: "me".into(),
            },
            &n,
        );
        let ask = app.next_command(&[], &n).unwrap();
        assert_eq!(ask.command, Command::Who(None));
        app.done(ask, Ok(()), &n);
        app.on_event(
            &Event::Users {
                room: "lobby".into(),
                names: vec!["me".into(), "lisi".into()],
            },
            &n,
        );
        app
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use chat_proto::CloseReason;
    use std::time::Duration;

    #[test]
    fn typed_lines_go_out_in_order_against_the_current_room() {
        let mut app = logged_in();
        let n = now();
        enter(&mut app, "hi all");
        enter(&mut app, "/join rust");
        enter(&mut app, "hi rust");
        enter(&mut app, "/msg lisi psst");
        let said = app.next_command(&[], &n).unwrap();
        assert_eq!(
            said,
            Outgoing {
                line: Some("hi all".into()),
                command: Command::Say {
                    room: None,
                    text: "hi all".into()
                }
            }
        );
        app.done(said, Ok(()), &n);
        let join = app.next_command(&[], &n).unwrap();
        assert_eq!(join.command, Command::Join("rust".into()));
        app.done(join, Ok(()), &n);
        assert_eq!(app.view.current.as_deref(), Some("rust"));
        let said = app.next_command(&["rust".into()], &n).unwrap();
        assert_eq!(
            said.command,
            Command::Say {
                room: Some("rust".into()),
                text: "hi rust".into()
            }
        );
        app.done(said, Ok(()), &n);
        let pm = app.next_command(&[], &n).unwrap();
        assert_eq!(
            pm.command,
            Command::Msg {
                to: "lisi".into(),
                text: "psst".into()
            }
        );
        app.done(pm, Ok(()), &n);
        assert_eq!(app.next_command(&[], &n), None);
        // Joining the room makes the client ask who is there, quietly.
        app.on_event(
            &Event::Joined {
                room: "rust".into(),
                name: "me".into(),
            },
            &n,
        );
        let ask = app.next_command(&["rust".into()], &n).unwrap();
        assert_eq!(ask.command, Command::Who(Some("rust".into())));
        app.done(ask, Ok(()), &n);
        app.on_event(
            &Event::Users {
                room: "rust".into(),
                names: vec!["me".into(), "wangwu".into()],
            },
            &n,
        );
        assert_eq!(
            app.users.sorted(&app.current_room_key()).unwrap(),
            ["me", "wangwu"]
        );
        assert!(!lines(&app).iter().any(|l| l.contains("users:")));
        // A /join of a room already joined only switches, locally.
        enter(&mut app, "/join lobby");
        assert_eq!(app.next_command(&["rust".into()], &n), None);
        assert_eq!(app.view.current, None);
        assert_eq!(app.current_room_key(), "lobby");
        assert!(
            lines(&app)
                .last()
                .unwrap()
                .ends_with("* now speaking in lobby")
        );
    }

    #[test]
    fn lines_typed_while_disconnected_are_held_and_sent_after_login() {
        let mut app = logged_in();
        let n = now();
        app.on_event(
            &Event::Closed {
                reason: CloseReason::Disconnected,
            },
            &n,
        );
        app.on_event(
            &Event::Reconnecting {
                attempt: 1,
                delay: Duration::from_secs(2),
            },
            &n,
        );
        app.on_event(
            &Event::Reconnecting {
                attempt: 2,
                delay: Duration::from_secs(4),
            },
            &n,
        );
        enter(&mut app, "are you there");
        enter(&mut app, "/who");
        assert_eq!(app.next_command(&[], &n), None);
        assert!(
            lines(&app)
                .last()
                .unwrap()
                .contains("will send once logged in (2 waiting)")
        );
        assert_eq!(app.unsent().count(), 2);
        // Back: the quiet question first, then the lines, in order.
        app.on_event(&Event::LoggedIn { name: "me".into() }, &n);
        assert!(lines(&app).last().unwrap().contains("sending the 2 lines"));
        // Only the first reconnect had a line; the status counted down.
        let reconnects = lines(&app)
            .iter()
            .filter(|l| l.contains("reconnecting"))
            .count();
        assert_eq!(reconnects, 1);
        let ask = app.next_command(&[], &n).unwrap();
        assert_eq!(ask.line, None);
        app.done(ask, Ok(()), &n);
        let said = app.next_command(&[], &n).unwrap();
        assert_eq!(said.line.as_deref(), Some("are you there"));
        app.done(said, Ok(()), &n);
        let who = app.next_command(&[], &n).unwrap();
        assert_eq!(who.command, Command::Who(None));
        app.done(who, Ok(()), &n);
        assert_eq!(app.unsent().count(), 0);
    }

    #[test]
    fn a_line_refused_for_want_of_a_connection_waits_for_the_next_login() {
        let mut app = logged_in();
        let n = now();
        enter(&mut app, "one");
        enter(&mut app, "two");
        // The connection went away before its events were read.
        let one = app.next_command(&[], &n).unwrap();
        app.done(one, Err(UsageError::NotConnected), &n);
        assert!(lines(&app).last().unwrap().contains("once logged in again"));
        // Nothing more until a login, even though no event said so yet.
        assert_eq!(app.next_command(&[], &n), None);
        assert_eq!(app.unsent().collect::<Vec<_>>(), ["one", "two"]);
        app.on_event(&Event::LoggedIn { name: "me".into() }, &n);
        let ask = app.next_command(&[], &n).unwrap();
        app.done(ask, Ok(()), &n);
        assert_eq!(
            app.next_command(&[], &n).unwrap().line.as_deref(),
            Some("one")
        );
    }

    #[test]
    fn refused_lines_and_mistakes_are_reported() {
        let mut app = logged_in();
        let n = now();
        enter(&mut app, "x".repeat(5000).as_str());
        let long = app.next_command(&[], &n).unwrap();
        app.done(
            long,
            Err(UsageError::TooLong {
                len: 5010,
                limit: 4096,
            }),
            &n,
        );
        assert!(
            lines(&app)
                .iter()
                .any(|l| l.contains("! not sent (frame of 5010"))
        );
        app.on_event(
            &Event::Error {
                code: chat_proto::ErrorCode::RateLimited.into(),
                text: "slow down".into(),
            },
            &n,
        );
        assert!(
            lines(&app)
                .last()
                .unwrap()
                .ends_with("! rate-limited: slow down")
        );
        enter(&mut app, "/dance");
        assert!(
            lines(&app)
                .last()
                .unwrap()
                .contains("unknown command \"/dance\"")
        );
        enter(&mut app, "/part");
        assert_eq!(app.next_command(&[], &n), None);
        assert!(lines(&app).last().unwrap().contains("name the room"));
        enter(&mut app, "/help");
        assert!(lines(&app).last().unwrap().contains("Ctrl-D"));
        // After the session is over, nothing waits in silence.
        enter(&mut app, "/quit");
        assert_eq!(app.take_quit(), Some("bye"));
        app.status.link = Link::Reconnecting {
            attempt: 1,
            until: n.instant,
        };
        enter(&mut app, "late");
        app.session_over(&n);
        assert_eq!(app.unsent().count(), 0);
        assert!(
            lines(&app)
                .last()
                .unwrap()
                .ends_with("not sent (the session is over): late")
        );
        enter(&mut app, "later");
        assert!(
            lines(&app)
                .last()
                .unwrap()
                .ends_with("not sent (the session is over): later")
        );
    }

    #[test]
    fn the_user_list_follows_the_room() {
        let mut app = logged_in();
        let n = now();
        assert_eq!(app.users.sorted("lobby").unwrap(), ["lisi", "me"]);
        // The quiet answer left no line.
        assert!(!lines(&app).iter().any(|l| l.contains("users:")));
        app.on_event(
            &Event::Joined {
                room: "lobby".into(),
                name: "王五".into(),
            },
            &n,
        );
        app.on_event(
            &Event::Left {
                room: "lobby".into(),
                name: "lisi".into(),
            },
            &n,
        );
        assert_eq!(app.users.sorted("lobby").unwrap(), ["me", "王五"]);
        // A typed /who is answered in the scrollback too.
        enter(&mut app, "/who");
        let who = app.next_command(&[], &n).unwrap();
        app.done(who, Ok(()), &n);
        app.on_event(
            &Event::Users {
                room: "lobby".into(),
                names: vec!["me".into(), "王五".into()],
            },
            &n,
        );
        assert!(lines(&app).last().unwrap().ends_with("* users: me, 王五"));
        // A reconnect forgets the lists and asks again.
        app.on_event(&Event::LoggedIn { name: "me".into() }, &n);
        assert_eq!(app.users.sorted("lobby"), None);
        assert_eq!(
            app.next_command(&[], &n).unwrap().command,
            Command::Who(None)
        );
    }
}
