//! What a client does with the frames the server sends.
//!
//! Each server frame becomes an [`Event`] for the application, a pong, or a
//! change of state: a login answered, a listing gathered from its `users:`
//! frames (bounded by [`ClientConfig::max_listing`], so a hostile server
//! cannot make it grow without end), the connection ended by `bye:` or a
//! fatal error. A refused login after a reconnect means the server still
//! holds the name of the lost connection: the session drops this
//! connection and tries again later, without troubling the application.
//!
//! [`ClientConfig::max_listing`]: crate::ClientConfig::max_listing

use super::{ClientState, CloseReason, Event, Inner};
use crate::error::{ErrorCode, PeerError};
use crate::frame::{ClientFrame, ServerFrame};
use crate::text::{Code, Name, NameList, Text};

impl Inner {
    fn unexpected(&mut self, tag: &'static str) {
        self.events.push_back(Event::BadFrame {
            error: PeerError::Unexpected { tag },
        });
    }

    /// The name to give the default room in events.
    fn default_room_name(&self) -> String {
        self.default_room.clone().unwrap_or_default()
    }

    /// Whether `name` is this client's.
    fn is_me(&self, name: &str) -> bool {
        self.name.as_deref() == Some(name)
    }

    pub(super) fn on_frame(&mut self, frame: ServerFrame<'_>) {
        match frame {
            ServerFrame::Ok(name) => {
                if self.state != ClientState::LoggingIn {
                    return self.unexpected("ok");
                }
                self.state = ClientState::LoggedIn;
                let name = name.into_string();
                self.name = Some(name.clone());
                self.session_name = Some(name.clone());
                let again = self.logins > 0;
                self.logins += 1;
                if let Some(backoff) = &mut self.backoff {
                    backoff.reset();
                }
                self.events.push_back(Event::LoggedIn { name });
                if again {
                    // Back in the rooms the session was in: those resumed
                    // before `iam:` are rejoined by the server.
                    let resumed = std::mem::take(&mut self.resumed);
                    self.give_up_unresumed(&resumed);
                    for room in self.joined_rooms.clone() {
                        if !(self.history_cap && resumed.contains(&room)) {
                            let _ = self.queue(&ClientFrame::Join(Name::trusted(&room)));
                        }
                    }
                }
            }
            ServerFrame::Cap(list) => {
                self.caps_pending = false;
                self.rooms_cap = list.contains("rooms");
                self.history_cap = list.contains("history");
                self.had_history = self.history_cap;
            }
            ServerFrame::Msg { from, text } => {
                let room = self.default_room_name();
                if self.is_me(&from) {
                    self.confirm(&room, &text);
                }
                self.events.push_back(Event::Message {
                    room,
                    from: from.into_string(),
                    text: text.into_string(),
                    offset: None,
                    history: false,
                });
            }
            ServerFrame::Said {
                room,
                offset,
                from,
                text,
            } => {
                if let Some(history) = self.is_new(&room, offset) {
                    if self.is_me(&from) {
                        self.confirm(&room, &text);
                    }
                    self.replayed(&room, offset);
                    self.events.push_back(Event::Message {
                        room: room.into_string(),
                        from: from.into_string(),
                        text: text.into_string(),
                        offset: Some(offset),
                        history,
                    });
                }
            }
            ServerFrame::Join(name) => self.events.push_back(Event::Joined {
                room: self.default_room_name(),
                name: name.into_string(),
            }),
            ServerFrame::Left(name) => self.events.push_back(Event::Left {
                room: self.default_room_name(),
                name: name.into_string(),
            }),
            ServerFrame::Joined { room, name } => {
                if self.is_me(&name) {
                    if self.default_room.is_none() && self.joined_rooms.is_empty() {
                        // The first room a session is put in is the default.
                        self.default_room = Some(room.to_string());
                    } else if self.default_room.as_deref() != Some(&*room)
                        && !self.joined_rooms.iter().any(|r| **r == *room)
                    {
                        self.joined_rooms.push(room.to_string());
                    }
                }
                self.events.push_back(Event::Joined {
                    room: room.into_string(),
                    name: name.into_string(),
                });
            }
            ServerFrame::Parted { room, name } => {
                if self.is_me(&name) {
                    self.joined_rooms.retain(|r| **r != *room);
                    self.forget_position(&room);
                }
                self.events.push_back(Event::Left {
                    room: room.into_string(),
                    name: name.into_string(),
                });
            }
            ServerFrame::Users(list) => {
                let room = self.default_room_name();
                self.gather(room, &list);
            }
            ServerFrame::Members { room, names } => self.gather(room.into_string(), &names),
            ServerFrame::Rooms(list) if list.is_end() => {
                let rooms = std::mem::take(&mut self.room_list);
                self.events.push_back(Event::Rooms { rooms });
            }
            ServerFrame::Rooms(list) => {
                for (room, count) in list.entries() {
                    if self.room_list.len() < self.config.max_listing {
                        self.room_list.push((room.to_owned(), count));
                    }
                }
            }
            ServerFrame::Room { room, epoch, next } => {
                if self.history_cap {
                    // Where the session stood before this answer.
                    let have = self.position_next(&room).unwrap_or(next);
                    if self.on_room_state(&room, epoch, next) {
                        self.await_replay(&room, next, have);
                    } else {
                        // A new log: whether the old one had them, nobody
                        // can tell.
                        self.give_up(Some(&room));
                    }
                }
            }
            ServerFrame::Pm { from, to, text } => self.events.push_back(Event::Private {
                from: from.into_string(),
                to: to.into_string(),
                text: text.into_string(),
            }),
            ServerFrame::Err { code, text } => self.on_error(code.into_owned(), text),
            ServerFrame::Ping(token) => {
                // An echoed token is no longer than the ping that carried it.
                let _ = self.queue(&ClientFrame::Pong(token));
            }
            ServerFrame::Pong(_) => {}
            ServerFrame::Notice(text) => self.events.push_back(Event::Notice {
                room: None,
                text: text.into_string(),
            }),
            ServerFrame::RoomNotice { room, text } => self.events.push_back(Event::Notice {
                room: Some(room.into_string()),
                text: text.into_string(),
            }),
            ServerFrame::Bye(reason) => self.end_connection(CloseReason::Bye {
                reason: reason.into_string(),
            }),
        }
    }

    /// Gathers one frame of a listing of `room`; the empty one ends it.
    fn gather(&mut self, room: String, list: &NameList<'_>) {
        if list.is_end() {
            let names = std::mem::take(&mut self.users);
            if std::mem::take(&mut self.users_overflow) {
                self.events.push_back(Event::BadFrame {
                    error: PeerError::TooManyNames {
                        limit: self.config.max_listing,
                    },
                });
            } else {
                self.events.push_back(Event::Users { room, names });
            }
            return;
        }
        self.users_room = room;
        for name in list.names() {
            if self.users.len() >= self.config.max_listing {
                self.users_overflow = true;
                self.users = Vec::new();
            }
            if !self.users_overflow {
                self.users.push(name.to_owned());
            }
        }
    }

    fn on_error(&mut self, code: Code<'static>, text: Text<'_>) {
        let known = code.known();
        if self.caps_pending && known == Some(ErrorCode::UnknownTag) {
            // A server without capabilities answered our `cap:`: speak the
            // seed's form to it.
            self.caps_pending = false;
            self.rooms_cap = false;
            self.had_history = false;
            return;
        }
        if self.state == ClientState::LoggingIn {
            if known == Some(ErrorCode::NameTaken) && self.logins > 0 {
                // Logging in again after a reconnect: our lost connection
                // still holds the name there. Try later.
                return self.end_connection(CloseReason::NameStillHeld);
            }
            if matches!(
                known,
                Some(ErrorCode::NameTaken | ErrorCode::BadName | ErrorCode::LoginRefused)
            ) {
                self.state = ClientState::Connected;
                self.name = None;
            }
        }
        if known == Some(ErrorCode::HistoryGap)
            && let Some((room, missing)) = Inner::parse_gap(&text)
        {
            self.events.push_back(Event::Gap {
                room: room.clone(),
                missing,
            });
            // Some of its unconfirmed messages may have been in the gap.
            return self.give_up(Some(&room));
        }
        self.events.push_back(Event::Error {
            code,
            text: text.into_string(),
        });
        if let Some(code) = known.filter(|c| c.is_fatal()) {
            self.end_connection(CloseReason::Fatal { code });
        }
    }
}
