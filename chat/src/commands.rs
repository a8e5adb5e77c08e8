//! What a person types into `chat connect`, and how events read to them.
//!
//! [`Input::parse`] turns a typed line into a command: a message for the
//! current room, or a slash command (`/join ROOM`, `/part [ROOM]`,
//! `/rooms`, `/who [ROOM]`, `/msg NAME TEXT`, `/quit`, `/help`).
//! [`View`] keeps the little a display needs (the current room, the
//! session's name) and renders each [`Event`] as one line, naming the room
//! when it is not the current one; [`View::render_pieces`] gives the same
//! line with the names apart, for a display that colours them. The
//! line-mode client and the full-screen one share both.

use chat_proto::{CloseReason, Event};

/// One typed line, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Input {
    /// Nothing (an empty line).
    Nothing,
    /// Text for the current room.
    Say(String),
    /// `/join ROOM`: join it (if need be) and make it the current room.
    Join(String),
    /// `/part [ROOM]`: leave it (the current room by default).
    Part(Option<String>),
    /// `/rooms`.
    Rooms,
    /// `/who [ROOM]` (the current room by default).
    Who(Option<String>),
    /// `/msg NAME TEXT`.
    Msg { to: String, text: String },
    /// `/quit`.
    Quit,
    /// `/help`.
    Help,
    /// A slash command that is not one, or is missing its argument.
    Unknown(String),
}

/// The help text for `/help`.
pub(crate) const HELP: &str = "commands: /join ROOM, /part [ROOM], /rooms, /who [ROOM], \
/msg NAME TEXT, /quit; other lines are said in the current room (// says a line starting with /)";

impl Input {
    /// Reads one typed line.
    pub(crate) fn parse(line: &str) -> Input {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() {
            return Input::Nothing;
        }
        if let Some(text) = line.strip_prefix("//") {
            return Input::Say(format!("/{text}"));
        }
        let Some(command) = line.strip_prefix('/') else {
            return Input::Say(line.to_owned());
        };
        let mut words = command.splitn(2, char::is_whitespace);
        let verb = words.next().unwrap_or_default();
        let rest = words.next().map(str::trim).filter(|r| !r.is_empty());
        match (verb, rest) {
            ("join", Some(room)) => Input::Join(room.to_owned()),
            ("part" | "leave", room) => Input::Part(room.map(String::from)),
            ("rooms", None) => Input::Rooms,
            ("who", room) => Input::Who(room.map(String::from)),
            ("msg", Some(rest)) => match rest.split_once(char::is_whitespace) {
                Some((to, text)) => Input::Msg {
                    to: to.to_owned(),
                    text: text.trim_start().to_owned(),
                },
                None => Input::Unknown(line.to_owned()),
            },
            ("quit" | "exit", None) => Input::Quit,
            ("help", _) => Input::Help,
            _ => Input::Unknown(line.to_owned()),
        }
    }
}

/// What a display needs to render events: who we are and where we speak.
#[derive(Debug, Default, Clone)]
pub(crate) struct View {
    /// Our name.
    pub(crate) me: String,
    /// The server's default room, once known.
    pub(crate) default_room: Option<String>,
    /// Where typed lines go; `None` is the default room.
    pub(crate) current: Option<String>,
}

impl View {
    /// Whether `room` is the current room.
    pub(crate) fn is_current(&self, room: &str) -> bool {
        match &self.current {
            Some(current) => current == room,
            // The default room: named once known; an unnamed room in an
            // event is the default room of a server without room names.
            None => room.is_empty() || self.default_room.as_deref() == Some(room),
        }
    }

    /// `[room] ` unless `room` is the current room.
    fn tag(&self, room: &str) -> String {
        if self.is_current(room) {
            String::new()
        } else if room.is_empty() {
            "[main] ".into()
        } else {
            format!("[{room}] ")
        }
    }

    /// Notes what an event tells about the session (our default room, the
    /// current room after we left it).
    pub(crate) fn update(&mut self, event: &Event) {
        match event {
            Event::LoggedIn { name } => self.me = name.clone(),
            Event::Joined { room, name } if *name == self.me && self.default_room.is_none() => {
                self.default_room = Some(room.clone());
            }
            Event::Left { room, name }
                if *name == self.me && self.current.as_deref() == Some(room) =>
            {
                self.current = None;
            }
            _ => {}
        }
    }

    /// The room typed lines go to, by name, for the display.
    pub(crate) fn current_name(&self) -> String {
        self.current
            .clone()
            .or_else(|| self.default_room.clone())
            .unwrap_or_else(|| "main".into())
    }

    /// One line for a person, or `None` for events not worth a line.
    pub(crate) fn render(&self, event: &Event) -> Option<String> {
        self.render_pieces(event).map(|pieces| join(&pieces))
    }

    /// The line of [`render`](Self::render) in pieces, the names apart, so
    /// that a display can colour them.
    pub(crate) fn render_pieces(&self, event: &Event) -> Option<Vec<Piece>> {
        use Piece::{Name, Text};
        let name = |s: &str| Name(s.to_owned());
        Some(match event {
            Event::Message {
                room, from, text, ..
            } => vec![Text(self.tag(room)), name(from), Text(format!(": {text}"))],
            Event::Joined { room, name: who } => vec![
                Text(format!("* {}", self.tag(room))),
                name(who),
                Text(" joined".into()),
            ],
            Event::Left { room, name: who } => vec![
                Text(format!("* {}", self.tag(room))),
                name(who),
                Text(" left".into()),
            ],
            Event::Users { room, names } => {
                let head = if self.is_current(room) {
                    "* users: ".to_owned()
                } else {
                    let room = if room.is_empty() { "main" } else { room };
                    format!("* users in {room}: ")
                };
                let mut pieces = vec![Text(head)];
                for (i, who) in names.iter().enumerate() {
                    if i > 0 {
                        pieces.push(Text(", ".into()));
                    }
                    pieces.push(name(who));
                }
                pieces
            }
            Event::Private { from, to, text } => vec![
                Text("[pm] ".into()),
                name(from),
                Text(" -> ".into()),
                name(to),
                Text(format!(": {text}")),
            ],
            other => vec![Text(self.render_plain(other))],
        })
    }

    /// The line for an event that names nobody worth colouring.
    fn render_plain(&self, event: &Event) -> String {
        match event {
            Event::Rooms { rooms } => {
                let list: Vec<String> = rooms.iter().map(|(r, n)| format!("{r} ({n})")).collect();
                format!("* rooms: {}", list.join(", "))
            }
            Event::Notice { room: None, text } => format!("! notice: {text}"),
            Event::Notice {
                room: Some(room),
                text,
            } => format!("! {}notice: {text}", self.tag(room)),
            Event::Error { code, text } => format!("! {code}: {text}"),
            Event::BadFrame { error } => format!("! the server sent a bad frame: {error}"),
            Event::LoggedIn { name } => format!("* logged in as {name}"),
            Event::Reconnecting { attempt, delay } => format!(
                "* reconnecting in {:.1} s (attempt {attempt})",
                delay.as_secs_f64()
            ),
            Event::Closed { reason } => format!("* connection closed ({})", describe(reason)),
            Event::Unconfirmed { room, text } => format!(
                "! {}maybe not delivered (the connection was lost before the server answered): {text}",
                self.tag(room)
            ),
            Event::Gap {
                room,
                missing: Some(1),
            } => format!(
                "* {}1 message was said while you were away and is no longer kept",
                self.tag(room)
            ),
            Event::Gap {
                room,
                missing: Some(n),
            } => format!(
                "* {}{n} messages were said while you were away and are no longer kept",
                self.tag(room)
            ),
            Event::Gap {
                room,
                missing: None,
            } => format!(
                "* {}the room's history was lost (server restarted?): messages may be missing",
                self.tag(room)
            ),
            other => format!("* {other:?}"),
        }
    }
}

/// A piece of a rendered line: text, or a person's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Plain text.
    Text(String),
    /// A name, which a display may colour.
    Name(String),
}

/// The pieces of a line as one string.
pub(crate) fn join(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|piece| match piece {
            Piece::Text(s) | Piece::Name(s) => s.as_str(),
        })
        .collect()
}

/// Why a connection closed, for a person.
pub(crate) fn describe(reason: &CloseReason) -> String {
    match reason {
        CloseReason::Local => "you left".into(),
        CloseReason::Bye { reason } => format!("the server said bye: {reason}"),
        CloseReason::Fatal { code } => format!("the server closed it: {code}"),
        CloseReason::Timeout => "the server stopped answering".into(),
        CloseReason::Disconnected => "the connection was lost".into(),
        CloseReason::NameStillHeld => "the server still holds our name; trying again".into(),
        CloseReason::ReconnectFailed => "gave up reconnecting".into(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_lines_are_understood() {
        assert_eq!(Input::parse(""), Input::Nothing);
        assert_eq!(Input::parse("hi there"), Input::Say("hi there".into()));
        assert_eq!(Input::parse("//slash"), Input::Say("/slash".into()));
        assert_eq!(Input::parse("/join rust"), Input::Join("rust".into()));
        assert_eq!(Input::parse("/part"), Input::Part(None));
        assert_eq!(Input::parse("/part rust"), Input::Part(Some("rust".into())));
        assert_eq!(Input::parse("/who"), Input::Who(None));
        assert_eq!(Input::parse("/rooms"), Input::Rooms);
        assert_eq!(
            Input::parse("/msg lisi  see you: at 8"),
            Input::Msg {
                to: "lisi".into(),
                text: "see you: at 8".into()
            }
        );
        assert!(matches!(Input::parse("/msg lisi"), Input::Unknown(_)));
        assert!(matches!(Input::parse("/join"), Input::Unknown(_)));
        assert!(matches!(Input::parse("/dance"), Input::Unknown(_)));
        assert_eq!(Input::parse("/quit"), Input::Quit);
    }

    #[test]
    fn events_name_their_room_unless_it_is_the_current_one() {
        let mut view = View::default();
        view.update(&Event::LoggedIn { name: "me".into() });
        view.update(&Event::Joined {
            room: "lobby".into(),
            name: "me".into(),
        });
        let msg = |room: &str| Event::Message {
            room: room.into(),
            from: "lisi".into(),
            text: "hi".into(),
            offset: None,
            history: false,
        };
        assert_eq!(view.render(&msg("lobby")).unwrap(), "lisi: hi");
        assert_eq!(view.render(&msg("rust")).unwrap(), "[rust] lisi: hi");
        view.current = Some("rust".into());
        assert_eq!(view.render(&msg("rust")).unwrap(), "lisi: hi");
        assert_eq!(view.render(&msg("lobby")).unwrap(), "[lobby] lisi: hi");
        // Leaving the current room goes back to the default one.
        view.update(&Event::Left {
            room: "rust".into(),
            name: "me".into(),
        });
        assert_eq!(view.current, None);
        assert_eq!(view.current_name(), "lobby");
    }

    /// `me`'s view, speaking in the default room, `lobby`.
    fn in_the_lobby(me: &str) -> View {
        View {
            me: me.into(),
            default_room: Some("lobby".into()),
            current: None,
        }
    }

    #[test]
    fn a_gap_says_how_much_is_missing_and_where() {
        let view = in_the_lobby("me");
        let gap = |room: &str, missing| Event::Gap {
            room: room.into(),
            missing,
        };
        assert_eq!(
            view.render(&gap("lobby", Some(40))).unwrap(),
            "* 40 messages were said while you were away and are no longer kept"
        );
        assert_eq!(
            view.render(&gap("rust", Some(3))).unwrap(),
            "* [rust] 3 messages were said while you were away and are no longer kept"
        );
        assert_eq!(
            view.render(&gap("lobby", None)).unwrap(),
            "* the room's history was lost (server restarted?): messages may be missing"
        );
        assert_eq!(
            view.render(&gap("rust", None)).unwrap(),
            "* [rust] the room's history was lost (server restarted?): messages may be missing"
        );
        // A gap names nobody: one plain piece.
        assert_eq!(
            view.render_pieces(&gap("rust", Some(1))).unwrap(),
            [Piece::Text(
                "* [rust] 1 message was said while you were away and is no longer kept".into()
            )]
        );
    }

    #[test]
    fn pieces_keep_names_apart_and_join_to_the_line() {
        let view = in_the_lobby("我");
        let event = Event::Private {
            from: "张三".into(),
            to: "我".into(),
            text: "你好: hi".into(),
        };
        let pieces = view.render_pieces(&event).unwrap();
        let names: Vec<&Piece> = pieces
            .iter()
            .filter(|p| matches!(p, Piece::Name(_)))
            .collect();
        assert_eq!(
            names,
            [&Piece::Name("张三".into()), &Piece::Name("我".into())]
        );
        assert_eq!(join(&pieces), "[pm] 张三 -> 我: 你好: hi");
        let users = Event::Users {
            room: "lobby".into(),
            names: vec!["a".into(), "b".into()],
        };
        assert_eq!(view.render(&users).unwrap(), "* users: a, b");
        let elsewhere = Event::Users {
            room: "rust".into(),
            names: vec![],
        };
        assert_eq!(view.render(&elsewhere).unwrap(), "* users in rust: ");
    }
}
