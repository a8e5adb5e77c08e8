//! Flow control: a burst slows senders down; it never costs a reader that
//! keeps reading its place.
//!
//! * **Windows.** Each connection is handed at most `send_window` bytes
//!   not yet reported written. The rest waits: room messages in the room's
//!   log (held once for all members), private frames in the connection's
//!   queue.
//! * **Room backlog.** A room holds, once, what its slowest member has not
//!   yet been handed. When a message takes it past `room_backlog`, the
//!   sender's input is paused (the adapter stops reading its socket, so TCP
//!   slows it); every sender paused for the room resumes once the backlog is
//!   back under half.
//! * **Stalls.** A room whose senders stay paused for `write_timeout` is
//!   held up by members that do not keep up: those still more than half the
//!   backlog behind are closed as slow consumers, and the room moves on. A
//!   member that keeps reading is never dropped by a burst.
//! * **Write timeout.** A connection with output pending whose socket takes
//!   nothing for `write_timeout` is closed as a slow consumer.
//! * **Own backlog.** A connection owed more than `pause_backlog` of
//!   private output (answers to its `who:`, its pongs) has its input paused
//!   until half of it is handed out: a pipelining client is slowed, never
//!   dropped.
//! * **Rate limit.** A frame over the connection's rate waits, its input
//!   paused, until the next token is due (see [`rate`](super::rate)).
//!
//! Input paused for any of these reasons does not count against keepalive.

use std::time::Instant;

use super::conns::{Phase, pause};
use super::output::Segment;
use super::rooms::RoomId;
use super::timers::TimerKey;
use super::{Hub, HubCloseReason, Transmit};
use crate::error::ErrorCode;
use crate::keepalive::after;

impl Hub {
    /// The next transmit: what the first ready connection may be handed
    /// within its window.
    pub(super) fn hand_out(&mut self) -> Option<Transmit> {
        let window = self.config.send_window;
        let bound = self.config.outbound_limit - super::output::CLOSE_RESERVE;
        let durable = self.config.history.durable;
        let max_frame = self.config.max_frame_len;
        while let Some(id) = self.ready.pop() {
            let Some(c) = self.conns.get_mut(id) else {
                continue;
            };
            c.out.ready = false;
            let mut data = self.spare.pop().unwrap_or_default();
            // A closing connection's last frames go out whatever its
            // window: the outbound bound still holds them.
            while c.out.in_flight < window || c.close_pending {
                match c.out.front() {
                    None => break,
                    Some(Segment::Bytes(_)) => {
                        let bytes = c.out.pop_bytes().expect("a frozen segment first");
                        data.push(bytes);
                    }
                    // Frozen before any hand-out; nothing to hand yet.
                    Some(Segment::Span(_)) => break,
                    Some(&Segment::Room { room, to }) => {
                        let Some(&mut (rid, position)) =
                            c.rooms.iter_mut().find(|(r, _)| r.index == room)
                        else {
                            // Left meanwhile (its messages became private).
                            c.out.pop_room();
                            continue;
                        };
                        let r = self.rooms.slot(room);
                        let member = &mut r.members[position as usize];
                        // Whole frames within the window and the bound. The
                        // private frames counted in the bound wait behind
                        // this segment: with nothing in flight no write
                        // would ever make room, so one frame goes anyway.
                        let mut budget =
                            (window - c.out.in_flight).min(bound.saturating_sub(c.out.unflushed()));
                        if c.out.in_flight == 0 {
                            budget = budget.max(max_frame);
                        }
                        // With durable history, only what is stored goes.
                        let upto = if durable { to.min(r.durable) } else { to };
                        let (cursor, n) = r.logs[member.form as usize].read(
                            member.cursor,
                            upto,
                            budget,
                            &mut data,
                        );
                        member.cursor = cursor;
                        c.out.in_flight += n;
                        if !r.paused_senders.is_empty() && !self.to_settle.contains(&rid) {
                            self.to_settle.push(rid);
                        }
                        if cursor >= to {
                            c.out.pop_room();
                        } else if n == 0 {
                            break;
                        }
                    }
                }
            }
            if c.close_pending && !c.out.has_queued() {
                c.close_pending = false;
                self.closes.push_back(id);
            }
            if !data.is_empty() {
                return Some(Transmit { conn: id, data });
            }
            if data.capacity() > 0 {
                self.spare.push(data);
            }
        }
        None
    }

    /// Output was queued for `index`, which had nothing pending before if
    /// `was_pending` is false: its write timeout starts, and it is ready to
    /// be handed output if its window has room.
    pub(super) fn became_pending(&mut self, index: u32, now: Instant, was_pending: bool) {
        let window = self.config.send_window;
        let write_timeout = self.config.write_timeout;
        let id = self.conns.id(index);
        let c = self.conns.slot(index);
        if !was_pending {
            c.progress_at = now;
            if c.write_timer_at.is_none() {
                let at = after(now, write_timeout);
                c.write_timer_at = Some(at);
                self.timers.push(at, TimerKey::Write(id));
            }
        }
        if !c.out.ready && c.out.has_queued() && c.out.in_flight < window {
            c.out.ready = true;
            self.ready.push(id);
        }
    }

    /// The adapter reported writes for `index`: it may be handed more, and
    /// input paused for its own backlog may resume.
    pub(super) fn after_written(&mut self, index: u32, now: Instant) {
        let window = self.config.send_window;
        let resume_below = self.config.pause_backlog / 2;
        let id = self.conns.id(index);
        let c = self.conns.slot(index);
        if !c.out.ready && c.out.has_queued() && c.out.in_flight < window {
            c.out.ready = true;
            self.ready.push(id);
        }
        if c.input.paused & pause::OWN != 0 && c.out.private_queued() <= resume_below {
            self.unpause(index, now, pause::OWN);
        }
    }

    /// After a frame from `index` was handled: if what it is owed privately
    /// passed `pause_backlog`, its input pauses.
    pub(super) fn check_own_backlog(&mut self, index: u32) {
        let c = self.conns.slot(index);
        if c.is_active() && c.out.private_queued() > self.config.pause_backlog {
            self.pause(index, pause::OWN);
        }
    }

    /// A message from `index` went into room `room`: past the room's
    /// backlog bound, the sender waits.
    pub(super) fn check_room_backlog(&mut self, room: RoomId, index: u32, now: Instant) {
        let limit = self.config.room_backlog as u64;
        let write_timeout = self.config.write_timeout;
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if r.backlog() < limit {
            return;
        }
        let id = self.conns.id(index);
        if !r.paused_senders.contains(&id) {
            r.paused_senders.push(id);
        }
        let since = *r.stalled_since.get_or_insert(now);
        let at = after(since, write_timeout);
        if r.timer_at.is_none_or(|armed| at < armed) {
            r.timer_at = Some(at);
            self.timers.push(at, TimerKey::Room(room));
        }
        let c = self.conns.slot(index);
        if !c.paused_by.contains(&room) {
            c.paused_by.push(room);
        }
        self.pause(index, pause::ROOM);
    }

    /// Looks at the rooms read from in the last drain: those back under
    /// half their bound let their senders go on. Called first thing by every
    /// input, which is when a drain's hand-outs have become writes.
    pub(super) fn settle(&mut self, now: Instant) {
        if self.to_settle.is_empty() {
            return;
        }
        let rooms = std::mem::take(&mut self.to_settle);
        for room in rooms {
            self.resume_room(room, now, false);
        }
    }

    /// Resumes the senders paused for `room` once its backlog is under
    /// half the bound (or at once when `force`d).
    fn resume_room(&mut self, room: RoomId, now: Instant, force: bool) {
        let half = self.config.room_backlog as u64 / 2;
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if r.paused_senders.is_empty() || (!force && r.backlog() > half) {
            return;
        }
        r.stalled_since = None;
        let senders = std::mem::take(&mut r.paused_senders);
        for id in senders {
            let Some(c) = self.conns.get_mut(id) else {
                continue;
            };
            c.paused_by.retain(|&r| r != room);
            if c.paused_by.is_empty() {
                self.unpause(id.index, now, pause::ROOM);
            }
        }
    }

    /// A connection goes away: the rooms it was paused for forget it. (The
    /// rooms it held up are looked at again as it leaves them.)
    pub(super) fn release_pauses(&mut self, index: u32) {
        let id = self.conns.id(index);
        let paused_by = std::mem::take(&mut self.conns.slot(index).paused_by);
        for room in paused_by {
            if let Some(r) = self.rooms.get_mut(room) {
                r.paused_senders.retain(|&s| s != id);
            }
        }
    }

    /// A member left `room`: its senders may go on if it was the one
    /// holding them.
    pub(super) fn member_left(&mut self, room: RoomId, now: Instant) {
        self.resume_room(room, now, false);
    }

    /// The write timeout of `id` may have come: output pending and no
    /// progress since `write_timeout` ago closes it.
    pub(super) fn write_timeout(&mut self, id: super::ConnId, at: Instant, now: Instant) {
        let write_timeout = self.config.write_timeout;
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        if c.write_timer_at != Some(at) {
            return;
        }
        c.write_timer_at = None;
        if !c.is_active() || !c.out.is_pending() {
            return;
        }
        let deadline = after(c.progress_at, write_timeout);
        if now >= deadline {
            let text = format!(
                "no output taken for {} s",
                write_timeout.as_secs_f64().round()
            );
            let err = self.error_frame(ErrorCode::SlowConsumer, &text);
            self.close(id.index, now, HubCloseReason::SlowConsumer, Some(err));
        } else {
            c.write_timer_at = Some(deadline);
            self.timers.push(deadline, TimerKey::Write(id));
        }
    }

    /// `room` has held its senders paused for `write_timeout`: its members
    /// still more than half the bound behind are closed as slow consumers,
    /// and the senders go on.
    pub(super) fn room_timeout(&mut self, room: RoomId, at: Instant, now: Instant) {
        let write_timeout = self.config.write_timeout;
        let half = self.config.room_backlog as u64 / 2;
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if r.timer_at != Some(at) {
            return;
        }
        r.timer_at = None;
        let Some(since) = r.stalled_since else {
            return;
        };
        let deadline = after(since, write_timeout);
        if now < deadline {
            r.timer_at = Some(deadline);
            self.timers.push(deadline, TimerKey::Room(room));
            return;
        }
        let laggards: Vec<u32> = r
            .members
            .iter()
            .filter(|m| r.behind(m) > half)
            .map(|m| m.conn.index)
            .collect();
        let name = r.name.clone();
        for index in laggards {
            if self.conns.slot(index).is_active() && self.conns.slot(index).phase == Phase::Member {
                let text = format!(
                    "fell more than {half} bytes behind in {name} for {} s",
                    write_timeout.as_secs_f64().round()
                );
                let err = self.error_frame(ErrorCode::SlowConsumer, &text);
                self.close(index, now, HubCloseReason::SlowConsumer, Some(err));
            }
        }
        self.resume_room(room, now, true);
    }
}
