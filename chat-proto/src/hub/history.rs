//! History and resume: where a joining member starts reading a room, what
//! a `resume:` is answered, and the hub's side of durable history (records
//! to store, messages held until stored, rooms restored at startup).
//!
//! A room's history is the tail of its room-form log ([`Retention`]), so a
//! replay is nothing but a member whose cursor starts in the past: it is
//! handed the history through the same windows as live traffic, the live
//! messages follow on from the same log with no gap and no duplicate at the
//! boundary, and the `room:ROOM:EPOCH:NEXT` frame sent before tells the
//! client where history ends (offsets below `NEXT`) and live traffic
//! begins.

use std::time::Instant;

use super::Hub;
use super::conns::{Phase, caps};
use super::room_log::Retention;
use super::rooms::{Form, RoomId};
use crate::error::{ErrorCode, UsageError};
use crate::history::{RoomHistory, StoreRecord, StoredMessage};
use crate::names::NameKey;
use crate::text::{Name, Text};

/// Where a joining member starts reading a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    /// Live, after the last `history.on_join` messages.
    Join,
    /// Where a `resume:` asked: from offset `next` of log `epoch`.
    Resume { epoch: u64, next: u64 },
}

/// A `resume:` received before login, applied when the login completes.
#[derive(Debug, Clone)]
pub(super) struct PendingResume {
    room: Box<str>,
    epoch: u64,
    next: u64,
}

impl Hub {
    /// What a room-form log keeps as history.
    pub(super) fn retention(&self) -> Retention {
        let h = &self.config.history;
        if !h.is_kept() {
            return Retention::default();
        }
        Retention {
            messages: h.messages as u64,
            bytes: h.bytes as u64,
        }
    }

    /// Creates the room `name` with a new epoch.
    pub(super) fn create_room(&mut self, name: &str, persistent: bool, now: Instant) -> RoomId {
        let epoch = self.next_epoch();
        let retention = self.retention();
        let id = self.rooms.create(name, epoch, persistent, retention);
        self.rooms.slot(id.index).last_active = Some(now);
        id
    }

    /// `resume:ROOM:EPOCH:NEXT`: before login, kept for the login; after,
    /// a join from that point.
    pub(super) fn on_resume(
        &mut self,
        index: u32,
        now: Instant,
        room: Name<'_>,
        epoch: u64,
        next: u64,
    ) {
        let c = self.conns.slot(index);
        if c.caps & caps::HISTORY == 0 {
            let text = "resume: needs the history capability (send cap:rooms,history first)";
            return self.reply(index, now, ErrorCode::BadFrame, text);
        }
        if c.phase == Phase::Member {
            return self.join(index, now, &room, Start::Resume { epoch, next });
        }
        let key = NameKey::of(&room);
        let limit = self.config.rooms_per_user + 1;
        if let Some(p) = c.resumes.iter_mut().find(|p| NameKey::of(&p.room) == key) {
            (p.epoch, p.next) = (epoch, next);
        } else if c.resumes.len() < limit {
            c.resumes.push(PendingResume {
                room: room.as_str().into(),
                epoch,
                next,
            });
        } else {
            let text = format!("at most {limit} rooms to resume");
            self.reply(index, now, ErrorCode::TooManyRooms, &text);
        }
    }

    /// Joins the rooms `index` asked to resume before it logged in, the
    /// default room first (resumed, or from the history on join).
    pub(super) fn join_at_login(&mut self, index: u32, now: Instant) {
        let pending = std::mem::take(&mut self.conns.slot(index).resumes);
        let default = self.default_room;
        let start = pending
            .iter()
            .find(|p| self.rooms.find(&p.room) == Some(default))
            .map_or(Start::Join, |p| Start::Resume {
                epoch: p.epoch,
                next: p.next,
            });
        self.join_room(index, now, default, start);
        for p in pending {
            if !self.conns.slot(index).is_active() {
                return;
            }
            if self.rooms.find(&p.room) == Some(default) {
                continue;
            }
            let start = Start::Resume {
                epoch: p.epoch,
                next: p.next,
            };
            self.join(index, now, &Name::trusted(&p.room), start);
        }
    }

    /// The offset `index`, reading `room` in `form`, starts at, and the
    /// text of the `history-gap` error to answer, if any. Only connections
    /// with the `history` capability get history.
    pub(super) fn start_of(
        &mut self,
        index: u32,
        room: RoomId,
        form: Form,
        start: Start,
    ) -> (Option<u64>, Option<String>) {
        let with_history = self.conns.slot(index).caps & caps::HISTORY != 0;
        let durable = self.config.history.durable;
        let Some(r) = self.rooms.get(room) else {
            return (None, None);
        };
        let log = &r.logs[Form::Room as usize];
        // Where live traffic starts: with durable history, at what is
        // stored, so that a crash before the rest is stored leaves no
        // member told of an offset the restarted server never had.
        let head = r.live(durable);
        if form == Form::Plain || !with_history {
            return (durable.then_some(head), None);
        }
        let first = if log.retains() { log.first() } else { head };
        let h = &self.config.history;
        match start {
            Start::Join => (Some(head.saturating_sub(h.on_join as u64).max(first)), None),
            Start::Resume { epoch, next } => {
                self.stats.resumes += 1;
                let oldest = first.max(head.saturating_sub(h.max_replay as u64));
                let name = &r.name;
                let (from, gap) = if epoch != r.epoch {
                    let text = format!(
                        "{name}:?:log {epoch:x} is gone, the room's log is now {:x}; \
                         what it holds follows",
                        r.epoch
                    );
                    (oldest, Some(text))
                } else if next > head {
                    let text = format!("{name}:?:offset {next} is past the next one, {head}");
                    (head, Some(text))
                } else if next < oldest {
                    let text = format!(
                        "{name}:{}:messages {next} to {} are no longer kept",
                        oldest - next,
                        oldest - 1
                    );
                    (oldest, Some(text))
                } else {
                    (next, None)
                };
                if gap.is_some() {
                    self.stats.history_gaps += 1;
                }
                (Some(from), gap)
            }
        }
    }

    /// Makes room for a new room by forgetting the room idle the longest
    /// (empty, not persistent); false if there is none.
    pub(super) fn evict_idle_room(&mut self) -> bool {
        let idle = self
            .rooms
            .iter()
            .filter(|(id, r)| r.members.is_empty() && !r.persistent && *id != self.default_room)
            .min_by_key(|(_, r)| r.last_active)
            .map(|(id, _)| id);
        let Some(id) = idle else {
            return false;
        };
        self.forget_room(id);
        true
    }

    /// Removes an empty room; a store is told to forget its history.
    pub(super) fn forget_room(&mut self, id: RoomId) {
        if self.config.history.durable
            && let Some(r) = self.rooms.get(id)
        {
            self.stores.push_back(StoreRecord::Forget {
                room: r.name.to_string(),
                epoch: r.epoch,
            });
        }
        self.rooms.remove(id);
    }

    /// With durable history: the record that stores the message just
    /// appended to `room` at `offset`.
    pub(super) fn store_message(&mut self, room: RoomId, offset: u64, from: &str, text: &str) {
        if !self.config.history.durable {
            return;
        }
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        self.stores.push_back(StoreRecord::Append {
            room: r.name.to_string(),
            epoch: r.epoch,
            message: StoredMessage {
                offset,
                from: from.to_string(),
                text: text.to_string(),
            },
        });
    }

    /// The messages of the room named `room` (log `epoch`) before offset
    /// `next` are stored: with durable history
    /// ([`History::durable`](crate::History::durable)), they may now be
    /// handed out. Reports for another epoch (a room since forgotten) or
    /// for less than was reported before are ignored.
    pub fn stored(&mut self, now: Instant, room: &str, epoch: u64, next: u64) {
        self.settle(now);
        let Some(id) = self.rooms.find(room) else {
            return;
        };
        let r = self.rooms.slot(id.index);
        if r.epoch != epoch || next <= r.durable {
            return;
        }
        r.durable = next.min(r.next_offset);
        let members: Vec<u32> = r.members.iter().map(|m| m.conn.index).collect();
        let window = self.config.send_window;
        for index in members {
            let id = self.conns.id(index);
            let c = self.conns.slot(index);
            if !c.out.ready && c.out.has_queued() && c.out.in_flight < window {
                c.out.ready = true;
                self.ready.push(id);
            }
        }
    }

    /// Gives the hub a room's history from a store, before it serves
    /// anyone: the room (the default room included) takes the stored epoch
    /// and offsets, so clients resume across a restart, and keeps the
    /// messages as its history (as far as `history` allows).
    ///
    /// Fails, changing nothing, if a connection was accepted already, if the
    /// history is malformed (a bad name or text, offsets that do not run up
    /// to `next`), if the room exists with messages, or if the server holds
    /// `max_rooms` rooms.
    pub fn restore(&mut self, history: &RoomHistory) -> Result<(), UsageError> {
        let refuse = |why| Err(UsageError::NotRestorable(why));
        if self.stats.accepted > 0 {
            return refuse("connections were accepted already");
        }
        let name = Name::new(&history.room)?;
        let Some(first) = history.next.checked_sub(history.messages.len() as u64) else {
            return refuse("more messages than offsets");
        };
        for (i, m) in history.messages.iter().enumerate() {
            Name::new(&m.from)?;
            Text::new(&m.text)?;
            if m.offset != first + i as u64 {
                return refuse("offsets must run up to next, one by one");
            }
        }
        let id = match self.rooms.find(&name) {
            Some(id) if self.rooms.get(id).is_some_and(|r| r.next_offset > 0) => {
                return refuse("the room has messages");
            }
            Some(id) => id,
            None if self.rooms.len() >= self.config.max_rooms => {
                return refuse("the server holds max_rooms rooms");
            }
            None => {
                let retention = self.retention();
                self.rooms.create(&name, history.epoch, false, retention)
            }
        };
        let max = self.config.max_frame_len;
        let r = self.rooms.slot(id.index);
        r.epoch = history.epoch;
        r.next_offset = history.next;
        r.durable = history.next;
        r.logs[Form::Plain as usize].restart(history.next);
        let log = &mut r.logs[Form::Room as usize];
        log.restart(first);
        for m in &history.messages {
            let said = crate::frame::ServerFrame::Said {
                room: name.clone(),
                offset: m.offset,
                from: Name::trusted(&m.from),
                text: Text::trusted(&m.text),
            };
            if said.encoded_len() <= max {
                log.append(m.offset, &said);
            } else {
                log.restart(m.offset + 1);
            }
        }
        log.freeze();
        Ok(())
    }
}
