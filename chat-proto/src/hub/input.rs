//! What the hub does with the frames a connection sends.
//!
//! Input is decoded frame by frame; each frame is handled before the next
//! is looked at, so a frame that pauses the connection's input (an `iam:`
//! the application must decide, a frame over the rate limit, a message
//! into a room that is full of backlog) stops the decoding right there, and
//! the rest waits, undecoded, until input resumes. Nothing is lost or
//! answered out of order.

use std::ops::ControlFlow;
use std::time::Instant;

use super::addresses::Gate;
use super::conns::{Phase, caps, pause};
use super::history::Start;
use super::rooms::{RoomId, listing};
use super::{Hub, HubEvent, Peer};
use crate::config::LoginMode;
use crate::decode::Decoder;
use crate::error::{ErrorCode, PeerError};
use crate::frame::{ClientFrame, ServerFrame};
use crate::names::{NameKey, is_mixed_script};
use crate::text::{CapList, Name, Text};

/// The capabilities this server knows, as answered to `cap:`.
const KNOWN_CAPS: [(&str, u8); 2] = [("rooms", caps::ROOMS), ("history", caps::HISTORY)];

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
            let flow = match frame.and_then(ClientFrame::parse) {
                Ok(frame) => self.on_frame(index, now, frame),
                Err(error) => {
                    self.reply_error(index, now, &error);
                    ControlFlow::Continue(())
                }
            };
            if flow.is_continue() {
                self.check_own_backlog(index);
            }
            flow
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

    /// Handles one frame; `Break` when the frame must wait (rate limit) and
    /// is not consumed.
    fn on_frame(&mut self, index: u32, now: Instant, frame: ClientFrame<'_>) -> ControlFlow<()> {
        match frame {
            ClientFrame::Iam(name) => return self.login(index, now, name, None),
            ClientFrame::IamSecret { name, secret } => {
                return self.login(index, now, name, Some(secret));
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
            ClientFrame::Cap(list) => self.capabilities(index, now, &list),
            ClientFrame::Resume { room, epoch, next } => {
                self.on_resume(index, now, room, epoch, next);
            }
            frame => {
                if !self.logged_in_or_reply(index, now) {
                    return ControlFlow::Continue(());
                }
                self.rate_limit(index, now)?;
                self.member_frame(index, now, frame);
            }
        }
        ControlFlow::Continue(())
    }

    /// A frame only a logged-in connection may send.
    fn member_frame(&mut self, index: u32, now: Instant, frame: ClientFrame<'_>) {
        match frame {
            ClientFrame::Msg(text) => {
                let room = self.default_room;
                if self.membership(index, room).is_none() {
                    let text = format!(
                        "not in {}: join:{} first",
                        self.config.default_room, self.config.default_room
                    );
                    return self.reply(index, now, ErrorCode::NotInRoom, &text);
                }
                self.relay(index, now, room, text);
            }
            ClientFrame::Say { room, text } => {
                if let Some(room) = self.member_room(index, now, &room) {
                    self.relay(index, now, room, text);
                }
            }
            ClientFrame::Who => {
                let room = self.default_room;
                let plain = self.conns.slot(index).caps & caps::ROOMS == 0;
                self.list_members(index, now, room, plain);
            }
            ClientFrame::WhoIn(room) => match self.rooms.find(&room) {
                Some(room) => self.list_members(index, now, room, false),
                None => self.no_such_room(index, now, &room),
            },
            ClientFrame::Join(room) => self.join(index, now, &room, Start::Join),
            ClientFrame::Part(room) => {
                if let Some(rid) = self.member_room(index, now, &room)
                    && let Some(slot) = self.membership(index, rid)
                {
                    self.leave_room(index, now, slot, true, true);
                }
            }
            ClientFrame::Rooms => {
                let entries: Vec<String> = self
                    .rooms
                    .iter()
                    .map(|(_, r)| format!("{}={}", r.name, r.members.len()))
                    .collect();
                let span = listing(
                    "rooms",
                    "",
                    entries.iter().map(String::as_str),
                    self.config.max_frame_len,
                    &mut self.log,
                );
                self.send(index, now, span);
            }
            ClientFrame::Pm { to, text } => match self.users.holder(&NameKey::of(&to)) {
                Some(id) if self.conns.get(id).is_some_and(|c| c.phase == Phase::Member) => {
                    self.relay_private(index, now, id.index, text);
                }
                _ => {
                    let text = format!("nobody is logged in as {to}");
                    self.reply(index, now, ErrorCode::NoSuchUser, &text);
                }
            },
            // Handled before.
            ClientFrame::Iam(_)
            | ClientFrame::IamSecret { .. }
            | ClientFrame::Ping(_)
            | ClientFrame::Pong(_)
            | ClientFrame::Bye(_)
            | ClientFrame::Cap(_)
            | ClientFrame::Resume { .. } => {}
        }
    }

    fn capabilities(&mut self, index: u32, now: Instant, list: &CapList<'_>) {
        let c = self.conns.slot(index);
        if c.phase != Phase::Anonymous {
            return self.reply(
                index,
                now,
                ErrorCode::BadFrame,
                "cap: must come before iam:",
            );
        }
        let mut enabled = Vec::new();
        let history = self.config.history.is_kept();
        for (cap, bit) in KNOWN_CAPS {
            // History comes with rooms, and only from a server keeping it.
            let available = bit != caps::HISTORY || (history && list.contains("rooms"));
            if available && list.contains(cap) {
                c.caps |= bit;
                enabled.push(cap);
            }
        }
        let joined = enabled.join(",");
        let answer = self.encode(&ServerFrame::Cap(
            CapList::new(joined.as_str()).expect("known caps"),
        ));
        self.send(index, now, answer);
    }

    /// Joins `index` to `room` (created if need be), reading from `start`.
    pub(super) fn join(&mut self, index: u32, now: Instant, room: &Name<'_>, start: Start) {
        let existing = self.rooms.find(room);
        if let Some(existing) = existing
            && self.membership(index, existing).is_some()
        {
            let text = format!("already in {room}");
            return self.reply(index, now, ErrorCode::AlreadyInRoom, &text);
        }
        if self.conns.slot(index).rooms.len() >= self.config.rooms_per_user {
            let text = format!(
                "in {} rooms already, the most allowed",
                self.config.rooms_per_user
            );
            return self.reply(index, now, ErrorCode::TooManyRooms, &text);
        }
        let rid = match existing {
            Some(rid) => {
                let size = self.rooms.get(rid).map_or(0, |r| r.members.len());
                if rid != self.default_room && size >= self.config.room_members {
                    let text = format!("{room} holds {size} members, the most allowed");
                    return self.reply(index, now, ErrorCode::RoomFull, &text);
                }
                rid
            }
            None => {
                if room.len() > self.config.max_room_name_len() {
                    let text = format!(
                        "a room name may have at most {} bytes here",
                        self.config.max_room_name_len()
                    );
                    return self.reply(index, now, ErrorCode::BadName, &text);
                }
                if self.rooms.len() >= self.config.max_rooms && !self.evict_idle_room() {
                    let text = format!(
                        "the server holds {} rooms, the most allowed",
                        self.config.max_rooms
                    );
                    return self.reply(index, now, ErrorCode::TooManyRooms, &text);
                }
                self.create_room(room, false, now)
            }
        };
        self.join_room(index, now, rid, start);
    }

    /// The room `room` names if `index` is in it; answers the error if not.
    fn member_room(&mut self, index: u32, now: Instant, room: &Name<'_>) -> Option<RoomId> {
        match self.rooms.find(room) {
            Some(rid) if self.membership(index, rid).is_some() => Some(rid),
            Some(_) => {
                let text = format!("not in {room}: join:{room} first");
                self.reply(index, now, ErrorCode::NotInRoom, &text);
                None
            }
            None => {
                self.no_such_room(index, now, room);
                None
            }
        }
    }

    fn no_such_room(&mut self, index: u32, now: Instant, room: &str) {
        let text = format!("there is no room {room}");
        self.reply(index, now, ErrorCode::NoSuchRoom, &text);
    }

    /// Answers `who:` (plain, `users:` frames) or `who:ROOM` (`members:`).
    fn list_members(&mut self, index: u32, now: Instant, room: RoomId, plain: bool) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        let prefix = if plain {
            String::new()
        } else {
            format!("{}:", r.name)
        };
        let span = listing(
            if plain { "users" } else { "members" },
            &prefix,
            r.members.iter().map(|m| &*m.name),
            self.config.max_frame_len,
            &mut self.log,
        );
        self.send(index, now, span);
    }

    /// `iam:NAME` or `iam:NAME:SECRET`; `Break` when the attempt is held
    /// back for a while (failed logins before it) and waits, unconsumed.
    fn login(
        &mut self,
        index: u32,
        now: Instant,
        name: Name<'_>,
        secret: Option<Text<'_>>,
    ) -> ControlFlow<()> {
        let c = self.conns.slot(index);
        if c.phase == Phase::Member {
            let text = format!(
                "already logged in as {}",
                c.name.as_deref().unwrap_or_default()
            );
            self.reply(index, now, ErrorCode::AlreadyLoggedIn, &text);
            return ControlFlow::Continue(());
        }
        let peer = Peer {
            addr: c.peer,
            secure: c.secure,
        };
        if secret.is_some() {
            if self.config.login == LoginMode::Open {
                let text = "this server has no accounts: log in with iam:NAME";
                self.reply(index, now, ErrorCode::LoginRefused, text);
                return ControlFlow::Continue(());
            }
            if !peer.may_send_secrets() && !self.config.secrets_in_clear {
                let text = "a secret needs an encrypted connection (TLS); it was not looked at";
                self.reply(index, now, ErrorCode::Insecure, text);
                return ControlFlow::Continue(());
            }
        }
        if is_mixed_script(&name) {
            let text = "name mixes scripts that look alike (see PROTOCOL.md, names)";
            self.reply(index, now, ErrorCode::BadName, text);
            return ControlFlow::Continue(());
        }
        let key = NameKey::of(&name);
        let gate = self.guard.login(
            &self.config.addresses,
            &self.config.failed_logins,
            peer.addr,
            &key,
            now,
        );
        match gate {
            Gate::Go => {}
            Gate::Hold(wait) => {
                self.stats.logins_held += 1;
                self.conns.slot(index).rate_until = Some(crate::keepalive::after(now, wait));
                self.pause(index, pause::RATE);
                self.arm_timer(index);
                return ControlFlow::Break(());
            }
            Gate::Later(wait) => {
                self.stats.logins_deferred += 1;
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let text = format!("{secs}:too many login attempts; retry in {secs} s");
                self.reply(index, now, ErrorCode::RetryLater, &text);
                return ControlFlow::Continue(());
            }
        }
        if self.users.holder(&key).is_some() {
            let text = format!("{name} is taken");
            self.reply(index, now, ErrorCode::NameTaken, &text);
            return ControlFlow::Continue(());
        }
        let id = self.conns.id(index);
        self.users.claim(key, id);
        let c = self.conns.slot(index);
        c.name = Some(name.as_str().into());
        match self.config.login {
            LoginMode::Open => self.complete_login(index, now),
            LoginMode::Application => {
                c.phase = Phase::LoggingIn;
                c.login_secret = secret.is_some();
                self.pause(index, pause::LOGIN);
                self.events.push_back(HubEvent::LoginRequested {
                    conn: id,
                    name: name.into_string(),
                    secret: secret.map(Text::into_string),
                });
            }
        }
        ControlFlow::Continue(())
    }

    /// Logs `index` in under the name it holds: `ok:`, then the default
    /// room.
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
        let c = self.conns.slot(index);
        c.phase = Phase::Member;
        let peer = c.peer;
        self.guard.succeeded(peer, &NameKey::of(&name));
        self.logged_in += 1;
        self.stats.logins += 1;
        let id = self.conns.id(index);
        self.events.push_back(HubEvent::LoggedIn {
            conn: id,
            name: name.to_string(),
        });
        self.join_at_login(index, now);
    }

    /// Whether `index` is logged in; answers `not-logged-in` if not.
    fn logged_in_or_reply(&mut self, index: u32, now: Instant) -> bool {
        if self.conns.slot(index).phase == Phase::Member {
            return true;
        }
        self.reply(
            index,
            now,
            ErrorCode::NotLoggedIn,
            "log in with iam:NAME first",
        );
        false
    }

    /// Takes a token for a frame from `index`, or pauses its input until
    /// the next token is due (`Break`: the frame waits).
    fn rate_limit(&mut self, index: u32, now: Instant) -> ControlFlow<()> {
        let Some(limit) = self.config.rate_limit else {
            return ControlFlow::Continue(());
        };
        let c = self.conns.slot(index);
        let Some(bucket) = &mut c.bucket else {
            return ControlFlow::Continue(());
        };
        if bucket.take(&limit, now) {
            return ControlFlow::Continue(());
        }
        let wait = bucket.wait(&limit, now);
        c.rate_until = Some(crate::keepalive::after(now, wait));
        self.pause(index, pause::RATE);
        self.arm_timer(index);
        ControlFlow::Break(())
    }

    fn reply_error(&mut self, index: u32, now: Instant, error: &PeerError) {
        self.reply(index, now, error.code(), &error.to_string());
    }
}

/// A room notice in the form each member reads.
pub(super) fn notice_frames<'a>(
    room: &'a str,
    text: &Text<'a>,
) -> (ServerFrame<'a>, ServerFrame<'a>) {
    (
        ServerFrame::Notice(text.clone()),
        ServerFrame::RoomNotice {
            room: Name::trusted(room),
            text: text.clone(),
        },
    )
}
