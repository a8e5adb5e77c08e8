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
use crate::text::{Code, Text};

impl Inner {
    fn unexpected(&mut self, tag: &'static str) {
        self.events.push_back(Event::BadFrame {
            error: PeerError::Unexpected { tag },
        });
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
                self.logins += 1;
                if let Some(backoff) = &mut self.backoff {
                    backoff.reset();
                }
                self.events.push_back(Event::LoggedIn { name });
            }
            ServerFrame::Msg { from, text } => self.events.push_back(Event::Message {
                from: from.into_string(),
                text: text.into_string(),
            }),
            ServerFrame::Join(name) => self.events.push_back(Event::Joined {
                name: name.into_string(),
            }),
            ServerFrame::Left(name) => self.events.push_back(Event::Left {
                name: name.into_string(),
            }),
            ServerFrame::Users(list) if list.is_end() => {
                let names = std::mem::take(&mut self.users);
                if std::mem::take(&mut self.users_overflow) {
                    self.events.push_back(Event::BadFrame {
                        error: PeerError::TooManyNames {
                            limit: self.config.max_listing,
                        },
                    });
                } else {
                    self.events.push_back(Event::Users { names });
                }
            }
            ServerFrame::Users(list) => {
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
            ServerFrame::Err { code, text } => self.on_error(code.into_owned(), text),
            ServerFrame::Ping(token) => {
                // An echoed token is no longer than the ping that carried it.
                let _ = self.queue(&ClientFrame::Pong(token));
            }
            ServerFrame::Pong(_) => {}
            ServerFrame::Notice(text) => self.events.push_back(Event::Notice {
                text: text.into_string(),
            }),
            ServerFrame::Bye(reason) => self.end_connection(CloseReason::Bye {
                reason: reason.into_string(),
            }),
        }
    }

    fn on_error(&mut self, code: Code<'static>, text: Text<'_>) {
        let known = code.known();
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
        self.events.push_back(Event::Error {
            code,
            text: text.into_string(),
        });
        if let Some(code) = known.filter(|c| c.is_fatal()) {
            self.end_connection(CloseReason::Fatal { code });
        }
    }
}
