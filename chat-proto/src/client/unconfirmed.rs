//! Messages this session said that have not come back yet, so that a
//! connection lost at the wrong moment loses none of them silently.
//!
//! The server echoes every message to its sender, in room order. Until the
//! echo arrives a message is *unconfirmed*: it may be in the socket's
//! buffer, on the wire, or in the server's log with its echo lost with the
//! connection. After a reconnect with the `history` capability the session
//! resumes each room (see [`resume`](super::resume)); once the replay has
//! reached the live boundary of the `room:` frame, every message the server
//! took from the old connection has been replayed, echo included, so what
//! is still unconfirmed never reached the server and is sent again. Where
//! the session cannot know (no `history`, or a gap in the replay) it gives
//! the message to the application as [`Event::Unconfirmed`] instead of
//! guessing: sent twice or lost, either would be a lie.
//!
//! An echo settles the message and every earlier unconfirmed one of the same
//! room: the server answers in order, so those were refused (and the
//! application saw the error).

use std::collections::VecDeque;

use super::{Event, Inner};
use crate::frame::ClientFrame;
use crate::text::{Name, Text};

/// At most this many messages are tracked; beyond, new ones are not (a
/// session that says this much without an echo has bigger problems).
pub(super) const MAX_UNCONFIRMED: usize = 1024;

/// A message said and not yet echoed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Said {
    /// The room, as the echo will name it.
    room: String,
    /// Whether it went as `msg:` (the default room) rather than `say:`.
    default_room: bool,
    text: String,
}

/// The unconfirmed messages, and the rooms waiting for their replay to end
/// before theirs are sent again.
#[derive(Debug, Default)]
pub(super) struct Unconfirmed {
    said: VecDeque<Said>,
    /// Rooms replaying after a reconnect, with the offset live traffic
    /// starts at.
    catching_up: Vec<(String, u64)>,
}

impl Inner {
    /// The room name an echo in the default room carries.
    fn default_room_label(&self) -> String {
        self.default_room.clone().unwrap_or_default()
    }

    /// Notes a message just queued: `room` is `None` for the default room.
    pub(super) fn note_said(&mut self, room: Option<&str>, text: &str) {
        if self.unconfirmed.said.len() >= MAX_UNCONFIRMED {
            return;
        }
        let said = Said {
            room: room.map_or_else(|| self.default_room_label(), str::to_owned),
            default_room: room.is_none(),
            text: text.to_owned(),
        };
        self.unconfirmed.said.push_back(said);
    }

    /// A message of this session came back in `room`.
    pub(super) fn confirm(&mut self, room: &str, text: &str) {
        let said = &mut self.unconfirmed.said;
        let Some(i) = said.iter().position(|s| s.room == room && s.text == text) else {
            return;
        };
        let mut seen = 0;
        said.retain(|s| {
            let earlier = seen <= i;
            seen += 1;
            !(earlier && s.room == room)
        });
    }

    /// `room:ROOM:EPOCH:LIVE` after a resume: once the session has every
    /// message below `LIVE`, its unconfirmed ones in the room are sent
    /// again.
    pub(super) fn await_replay(&mut self, room: &str, live: u64, have: u64) {
        if !self.unconfirmed.said.iter().any(|s| s.room == room) {
            return;
        }
        if have >= live {
            self.send_again(room);
        } else {
            self.unconfirmed.catching_up.retain(|(r, _)| r != room);
            self.unconfirmed.catching_up.push((room.to_owned(), live));
        }
    }

    /// A message at `offset` of `room` was passed on: the replay may be
    /// over.
    pub(super) fn replayed(&mut self, room: &str, offset: u64) {
        let c = &mut self.unconfirmed.catching_up;
        if let Some(i) = c
            .iter()
            .position(|(r, live)| r == room && offset + 1 >= *live)
        {
            c.swap_remove(i);
            self.send_again(room);
        }
    }

    /// Sends the unconfirmed messages of `room` again (they stay
    /// unconfirmed until echoed).
    fn send_again(&mut self, room: &str) {
        let again: Vec<Said> = self
            .unconfirmed
            .said
            .iter()
            .filter(|s| s.room == room)
            .cloned()
            .collect();
        for s in again {
            let text = Text::trusted(&s.text);
            let frame = if s.default_room {
                ClientFrame::Msg(text)
            } else {
                ClientFrame::Say {
                    room: Name::trusted(&s.room),
                    text,
                }
            };
            // It fitted when first sent, on the same session.
            let _ = self.queue(&frame);
        }
    }

    /// The session cannot tell whether the unconfirmed messages of `room`
    /// (of every room, if `None`) reached anyone: they go to the
    /// application.
    pub(super) fn give_up(&mut self, room: Option<&str>) {
        let mut kept = VecDeque::new();
        for s in std::mem::take(&mut self.unconfirmed.said) {
            if room.is_none_or(|r| r == s.room) {
                self.events.push_back(Event::Unconfirmed {
                    room: s.room,
                    text: s.text,
                });
            } else {
                kept.push_back(s);
            }
        }
        self.unconfirmed.said = kept;
        self.unconfirmed
            .catching_up
            .retain(|(r, _)| room.is_some_and(|room| room != r));
    }

    /// After a login on a new connection: rooms the session did not resume
    /// cannot be checked.
    pub(super) fn give_up_unresumed(&mut self, resumed: &[String]) {
        let rooms: Vec<String> = self
            .unconfirmed
            .said
            .iter()
            .filter(|s| !self.history_cap || !resumed.contains(&s.room))
            .map(|s| s.room.clone())
            .collect();
        for room in rooms {
            self.give_up(Some(&room));
        }
    }
}
