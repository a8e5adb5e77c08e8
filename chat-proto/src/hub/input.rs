//! What the hub does with the frames a connection sends.
//!
//! Input is decoded frame by frame; each frame is handled before the next
//! is looked at, so a frame that pauses the connection's input (an `iam:`
//! the application must decide) stops the decoding right after it, and the
//! rest waits, undecoded, until input resumes. Nothing is lost or answered
//! out of order.

use std::ops::ControlFlow;
use std::time::Instant;

use super::conns::{Phase, pause};
use super::{Hub, HubEvent};
use crate::config::LoginMode;
use crate::decode::Decoder;
use crate::error::{ErrorCode, PeerError};
use crate::frame::{ClientFrame, ServerFrame};
use crate::names::{NameKey, is_mixed_script};
use crate::text::{Name, Text};

impl Hub {
    /// Decodes and handles `input` from `index`, until its input pauses;
    /// what is left is kept for when it resumes.
    pub(super) fn feed(&mut self, index: u32, now: Instant, input: &[u8]) {
        let c = self.conns.slot(index);
        let max = c.decoder.max_frame_len();
        let mut decoder = std::mem::replace(&mut c.decoder, Decoder::new(max));
        let consumed = decoder.decode_until(input, |frame| {
            let c = self.conns.slot(index);
            if !c.is_active() || c.input.paused != 0 {
                return ControlFlow::Break(());
            }
            match frame.and_then(ClientFrame::parse) {
                Ok(frame) => self.on_frame(index, now, frame),
                Err(error) => self.reply_error(index, now, &error),
            }
            ControlFlow::Continue(())
        });
        let c = self.conns.slot(index);
        if !c.is_active() {
            return;
        }
        c.decoder = decoder;
        if consumed < input.len() {
            self.stash(index, &input[consumed..]);
        }
    }

    fn on_frame(&mut self, index: u32, now: Instant, frame: ClientFrame<'_>) {
        match frame {
            ClientFrame::Iam(name) => self.login(index, now, name),
            ClientFrame::Msg(text) => {
                if self.admit(index, now) {
                    self.say(index, now, text);
                }
            }
            ClientFrame::Who => {
                if self.admit(index, now) {
                    let frames = self
                        .room
                        .users_frames(self.config.max_frame_len, &mut self.log);
                    self.send(index, now, frames);
                }
            }
            ClientFrame::Ping(token) => {
                let pong = self.encode(&ServerFrame::Pong(token));
                self.send(index, now, pong);
            }
            ClientFrame::Pong(_) => {}
            ClientFrame::Bye(reason) => {
                let bye = self.encode(&ServerFrame::Bye(reason));
                self.close(index, now, super::HubCloseReason::Bye, Some(bye));
            }
        }
    }

    fn login(&mut self, index: u32, now: Instant, name: Name<'_>) {
        let c = self.conns.slot(index);
        if c.phase == Phase::Member {
            let text = format!(
                "already logged in as {}",
                c.name.as_deref().unwrap_or_default()
            );
            return self.reply(index, now, ErrorCode::AlreadyLoggedIn, &text);
        }
        if is_mixed_script(&name) {
            let text = "name mixes scripts that look alike (see PROTOCOL.md, names)";
            return self.reply(index, now, ErrorCode::BadName, text);
        }
        let key = NameKey::of(&name);
        if self.users.holder(&key).is_some() {
            let text = format!("{name} is taken");
            return self.reply(index, now, ErrorCode::NameTaken, &text);
        }
        let id = self.conns.id(index);
        self.users.claim(key, id);
        let c = self.conns.slot(index);
        c.name = Some(name.as_str().into());
        match self.config.login {
            LoginMode::Open => self.complete_login(index, now),
            LoginMode::Application => {
                c.phase = Phase::LoggingIn;
                self.pause(index, pause::LOGIN);
                self.events.push_back(HubEvent::LoginRequested {
                    conn: id,
                    name: name.into_string(),
                    secret: None,
                });
            }
        }
    }

    /// Logs `index` in under the name it holds: `ok:`, the room, presence.
    pub(super) fn complete_login(&mut self, index: u32, now: Instant) {
        let c = self.conns.slot(index);
        let Some(name) = c.name.clone() else {
            return;
        };
        let ok = self.encode(&ServerFrame::Ok(Name::trusted(&name)));
        self.send(index, now, ok);
        if !self.conns.slot(index).is_active() {
            // Its `ok:` made it a slow consumer: closed, it never joined.
            return;
        }
        let id = self.conns.id(index);
        let member_index = self.room.join(id, name.clone());
        let c = self.conns.slot(index);
        c.phase = Phase::Member;
        c.member_index = member_index;
        if self.room.len() <= self.config.presence_limit {
            let join = self.encode(&ServerFrame::Join(Name::trusted(&name)));
            self.broadcast(join, now, Some(index));
        }
        self.stats.logins += 1;
        self.events.push_back(HubEvent::LoggedIn {
            conn: id,
            name: name.to_string(),
        });
    }

    /// Whether a `msg:` or `who:` from `index` may proceed: it must be
    /// logged in and within its rate limit. Answers the error if not.
    fn admit(&mut self, index: u32, now: Instant) -> bool {
        let c = self.conns.slot(index);
        if c.phase != Phase::Member {
            self.reply(
                index,
                now,
                ErrorCode::NotLoggedIn,
                "log in with iam:NAME first",
            );
            return false;
        }
        if let (Some(bucket), Some(limit)) = (&mut c.bucket, self.config.rate_limit)
            && !bucket.take(&limit, now)
        {
            let text = format!("at most {} frames per second", limit.per_second);
            self.reply(index, now, ErrorCode::RateLimited, &text);
            return false;
        }
        true
    }

    fn say(&mut self, index: u32, now: Instant, text: Text<'_>) {
        let c = self.conns.slot(index);
        let Some(from) = c.name.clone() else {
            return;
        };
        let frame = ServerFrame::Msg {
            from: Name::trusted(&from),
            text,
        };
        let len = frame.encoded_len();
        if len > self.config.max_frame_len {
            let text = format!(
                "relayed as msg:NAME:TEXT the frame would be {len} bytes, more than {}",
                self.config.max_frame_len
            );
            return self.reply(index, now, ErrorCode::TooLong, &text);
        }
        let bytes = self.log.encode(&frame);
        let position = self.next_position;
        self.next_position += 1;
        self.stats.messages += 1;
        if self.config.message_events {
            let ServerFrame::Msg { text, .. } = frame else {
                unreachable!("built above")
            };
            let conn = self.conns.id(index);
            self.events.push_back(HubEvent::Message {
                conn,
                from: from.to_string(),
                text: text.into_string(),
                position,
            });
        }
        let delivered = self.broadcast(bytes, now, None);
        self.stats.deliveries += delivered as u64;
    }

    fn reply(&mut self, index: u32, now: Instant, code: ErrorCode, text: &str) {
        let err = self.error_frame(code, text);
        self.send(index, now, err);
    }

    fn reply_error(&mut self, index: u32, now: Instant, error: &PeerError) {
        self.reply(index, now, error.code(), &error.to_string());
    }
}
