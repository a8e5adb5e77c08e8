//! The application's answers and actions: deciding logins, kicking,
//! notices, and acting on rooms.
//!
//! Each is a method of [`Hub`] taking the current time, like every input;
//! after it, the adapter drains the outputs as usual. Text given by the
//! application is checked like text from a peer: an action with text that is
//! not valid, or a frame that would be too long, fails with a
//! [`UsageError`] and changes nothing. An action on a connection that is
//! gone (or no longer waiting, for a login decision) does nothing.

use std::time::Instant;

use super::ConnId;
use super::conns::{Phase, pause};
use super::input::notice_frames;
use super::rooms::Form;
use super::{Hub, HubCloseReason};
use crate::error::{ErrorCode, UsageError};
use crate::frame::ServerFrame;
use crate::names::NameKey;
use crate::text::{Code, Text};

impl Hub {
    /// Accepts the login `conn` asked for
    /// ([`HubEvent::LoginRequested`](crate::HubEvent::LoginRequested)): it
    /// is answered `ok:NAME` and joins the default room, and its input
    /// resumes. Ignored unless `conn` is waiting for this decision (it may
    /// have gone, or timed out, meanwhile).
    pub fn approve_login(&mut self, conn: ConnId, now: Instant) {
        self.settle(now);
        if self
            .conns
            .get(conn)
            .is_none_or(|c| c.phase != Phase::LoggingIn)
        {
            return;
        }
        self.complete_login(conn.index, now);
        self.unpause(conn.index, now, pause::LOGIN);
    }

    /// Refuses the login `conn` asked for: it is answered `err:CODE:TEXT`
    /// (non-fatal; [`ErrorCode::LoginRefused`] fits most refusals), the name
    /// is free again, and the connection may try again. If the login
    /// carried a secret and the code is not `retry-later`, the refusal
    /// counts as a failed login for the name and the source address: their
    /// next attempts wait (see [`FailedLogins`](crate::FailedLogins)). Ignored unless
    /// `conn` is waiting for this decision.
    pub fn refuse_login(
        &mut self,
        conn: ConnId,
        now: Instant,
        code: impl Into<Code<'static>>,
        text: &str,
    ) -> Result<(), UsageError> {
        self.settle(now);
        let code = code.into();
        let frame = self.checked_error(&code, text)?;
        let Some(c) = self.conns.get_mut(conn) else {
            return Ok(());
        };
        if c.phase != Phase::LoggingIn {
            return Ok(());
        }
        c.phase = Phase::Anonymous;
        let peer = c.peer;
        // A wrong secret is a failed login; a guest turned away, or an
        // application too busy to check (`retry-later`), is not.
        let failed =
            std::mem::take(&mut c.login_secret) && code.as_str() != ErrorCode::RetryLater.as_str();
        if let Some(name) = c.name.take() {
            let key = NameKey::of(&name);
            if failed {
                let config = &self.config;
                self.guard
                    .failed(&config.addresses, &config.failed_logins, peer, &key, now);
            }
            self.users.release(&key, conn);
        }
        self.stats.logins_refused += 1;
        let err = self.encode(&frame);
        self.send(conn.index, now, err);
        self.unpause(conn.index, now, pause::LOGIN);
        Ok(())
    }

    /// Ends `conn` with `err:kicked:REASON` (fatal): it leaves its rooms
    /// (others see it leave, under the presence limit) and is closed once
    /// the frame is flushed. Ignored if `conn` is gone or already closing.
    pub fn kick(&mut self, conn: ConnId, now: Instant, reason: &str) -> Result<(), UsageError> {
        self.settle(now);
        let frame = self.checked_error(&ErrorCode::Kicked.into(), reason)?;
        if self.conns.get(conn).is_some_and(|c| c.is_active()) {
            let err = self.encode(&frame);
            self.close(conn.index, now, HubCloseReason::Kicked, Some(err));
        }
        Ok(())
    }

    /// Sends `notice:TEXT` to one connection, logged in or not. Ignored if
    /// `conn` is gone or closing.
    pub fn notice(&mut self, conn: ConnId, now: Instant, text: &str) -> Result<(), UsageError> {
        self.settle(now);
        let frame = self.checked(ServerFrame::Notice(Text::new(text)?))?;
        if self.conns.get(conn).is_some_and(|c| c.is_active()) {
            let span = self.encode(&frame);
            self.send(conn.index, now, span);
        }
        Ok(())
    }

    /// Sends `notice:TEXT` to every logged-in connection, encoded once.
    pub fn notice_all(&mut self, now: Instant, text: &str) -> Result<(), UsageError> {
        self.settle(now);
        let frame = self.checked(ServerFrame::Notice(Text::new(text)?))?;
        let span = self.encode(&frame);
        let members: Vec<u32> = self
            .conns
            .iter()
            .filter(|(_, c)| c.phase == Phase::Member)
            .map(|(id, _)| id.index)
            .collect();
        for index in members {
            if self.conns.slot(index).is_active() && self.enqueue(index, now, span).is_err() {
                self.overflowed.push(index);
            }
        }
        self.close_overflowed(now);
        Ok(())
    }

    /// Sends a notice to the members of `room`: `room-notice:ROOM:TEXT`,
    /// or `notice:TEXT` for plain clients of the default room (the only
    /// room they know). Returns false if there is no such room.
    pub fn notice_room(
        &mut self,
        room: &str,
        now: Instant,
        text: &str,
    ) -> Result<bool, UsageError> {
        self.settle(now);
        let Some(rid) = self.rooms.find(room) else {
            Text::new(text)?;
            return Ok(false);
        };
        let name = self.rooms.get(rid).expect("found").name.clone();
        let text = Text::new(text)?;
        let (plain, in_room) = notice_frames(&name, &text);
        let (plain, in_room) = (self.checked(plain)?, self.checked(in_room)?);
        let plain = self.encode(&plain);
        let in_room = self.encode(&in_room);
        let targets: Vec<(u32, Form)> = self
            .rooms
            .get(rid)
            .expect("found")
            .members
            .iter()
            .map(|m| (m.conn.index, m.form))
            .collect();
        for (index, form) in targets {
            let span = if form == Form::Plain { plain } else { in_room };
            if self.conns.slot(index).is_active() && self.enqueue(index, now, span).is_err() {
                self.overflowed.push(index);
            }
        }
        self.close_overflowed(now);
        Ok(true)
    }

    /// Takes `conn` out of `room`: it is told `parted:ROOM:NAME`, the others
    /// see it leave (under the presence limit). Returns whether it was in
    /// the room.
    pub fn remove_from_room(&mut self, conn: ConnId, room: &str, now: Instant) -> bool {
        self.settle(now);
        let (Some(rid), true) = (
            self.rooms.find(room),
            self.conns.get(conn).is_some_and(|c| c.is_active()),
        ) else {
            return false;
        };
        match self.membership(conn.index, rid) {
            Some(slot) => {
                self.leave_room(conn.index, now, slot, true, true);
                true
            }
            None => false,
        }
    }
}
