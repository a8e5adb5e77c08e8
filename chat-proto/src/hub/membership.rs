//! Being in rooms: joining, leaving, presence, and relaying a message.
//!
//! A message goes into its room's log once per wire form that has readers
//! (`msg:` for plain clients of the default room, `said:` for everyone
//! else), and each member's output queue is told "room R up to offset O":
//! `O(1)` per member, no copy, no encoding per member. Presence (`join:` /
//! `left:` for plain clients, `joined:` / `parted:` in the room form) is
//! sent to the others only while the room holds at most `presence_limit`
//! members, so N logins cost O(N) frames rather than O(N²). Leaving a room
//! costs `O(rooms of that user)`: the member list swaps its last member into
//! the gap and the moved member's record is updated.

use std::sync::Arc;
use std::time::Instant;

use super::conns::{Phase, caps};
use super::history::Start;
use super::log::Span;
use super::output::Overflow;
use super::rooms::{Form, RoomId};
use super::{Hub, HubEvent};
use crate::error::ErrorCode;
use crate::frame::ServerFrame;
use crate::text::{Name, Text};

/// The encodings of one presence change, made only for the forms that
/// have readers.
#[derive(Clone, Copy)]
struct Presence {
    plain: Option<Span>,
    room: Option<Span>,
}

impl Hub {
    /// The form `index` reads `room` in.
    pub(super) fn form_for(&mut self, index: u32, room: RoomId) -> Form {
        let c = self.conns.slot(index);
        if room == self.default_room && c.caps & caps::ROOMS == 0 {
            Form::Plain
        } else {
            Form::Room
        }
    }

    /// Puts `index` (logged in) into `room`: the others hear of it under the
    /// presence limit; a member reading the room form is told it joined and
    /// from which offset on it reads the room live, then is handed the
    /// history `start` asks for (see [`Start`]).
    pub(super) fn join_room(&mut self, index: u32, now: Instant, room: RoomId, start: Start) {
        let form = self.form_for(index, room);
        let c = self.conns.slot(index);
        let Some(name) = c.name.clone() else {
            return;
        };
        let id = self.conns.id(index);
        let (from, gap) = self.start_of(index, room, form, start);
        let position = self.rooms.join(room, id, name.clone(), form, from);
        self.rooms.slot(room.index).last_active = Some(now);
        self.conns.slot(index).rooms.push((room, position));
        let r = self.rooms.get(room).expect("just joined");
        let (room_name, epoch, size) = (r.name.clone(), r.epoch, r.members.len());
        let (next, head) = (r.live(self.config.history.durable), r.next_offset);
        let cursor = r.members[position as usize].cursor;
        if size <= self.config.presence_limit {
            let presence = self.encode_presence(room, &room_name, &name, true);
            self.tell_room(room, now, presence, Some(index));
        }
        if form == Form::Room {
            let joined = self.encode(&ServerFrame::Joined {
                room: Name::trusted(&room_name),
                name: Name::trusted(&name),
            });
            self.send(index, now, joined);
            let state = self.encode(&ServerFrame::Room {
                room: Name::trusted(&room_name),
                epoch,
                next,
            });
            self.send(index, now, state);
            if let Some(gap) = gap {
                self.reply(index, now, ErrorCode::HistoryGap, &gap);
            }
        }
        // History to replay, or (durable history) messages said before it
        // joined and not yet stored: owed up to the head.
        if cursor < head && self.conns.slot(index).is_active() {
            let c = self.conns.slot(index);
            let was_pending = c.out.is_pending();
            c.out.push_room(room.index, head);
            self.became_pending(index, now, was_pending);
        }
        if self.config.activity_events {
            self.events.push_back(HubEvent::Joined {
                conn: id,
                name: name.to_string(),
                room: room_name.to_string(),
            });
        }
    }

    /// Takes `index` out of the room at `slot` of its room list. What it is
    /// owed from the room is kept in its queue, in order; `confirm` tells it
    /// it left (`parted:`); `presence` tells the others (under the presence
    /// limit). An emptied room goes, unless it is persistent.
    pub(super) fn leave_room(
        &mut self,
        index: u32,
        now: Instant,
        slot: usize,
        confirm: bool,
        presence: bool,
    ) {
        let c = self.conns.slot(index);
        let (room, position) = c.rooms.swap_remove(slot);
        let r = self.rooms.slot(room.index);
        let size_before = r.members.len();
        let room_name = r.name.clone();
        // What this member is owed from the room becomes private output, in
        // its place in the queue.
        let member = &r.members[position as usize];
        let (form, mut cursor) = (member.form, member.cursor);
        // With durable history, what is not stored yet is not handed out.
        let stored = if self.config.history.durable {
            r.durable
        } else {
            u64::MAX
        };
        r.last_active = Some(now);
        let log = &mut r.logs[form as usize];
        let c = self.conns.slot(index);
        c.out.take_room(room.index, |to| {
            let mut owed = Vec::new();
            let to = to.min(stored);
            if to > cursor {
                log.take_range(cursor, to, &mut owed);
                cursor = to;
            }
            owed
        });
        let (member, moved) = self.rooms.leave(room, position);
        if let Some(moved) = moved
            && let Some(mc) = self.conns.get_mut(moved)
            && let Some(entry) = mc.rooms.iter_mut().find(|(r, _)| *r == room)
        {
            entry.1 = position;
        }
        let name = member.name;
        if confirm {
            let parted = self.encode(&ServerFrame::Parted {
                room: Name::trusted(&room_name),
                name: Name::trusted(&name),
            });
            self.send(index, now, parted);
        }
        if presence && size_before <= self.config.presence_limit {
            let p = self.encode_presence(room, &room_name, &name, false);
            self.tell_room(room, now, p, None);
        }
        if self.config.activity_events {
            let conn = self.conns.id(index);
            self.events.push_back(HubEvent::Parted {
                conn,
                name: name.to_string(),
                room: room_name.to_string(),
            });
        }
        self.member_left(room, now);
        let r = self.rooms.slot(room.index);
        // A room with history stays, for those who come back to resume,
        // until its place is needed (see `evict_idle_room`).
        let has_history = self.config.history.is_kept() && r.next_offset > 0;
        if r.members.is_empty() && !r.persistent && !self.config.persistent_rooms && !has_history {
            self.forget_room(room);
        }
    }

    /// Takes `index` out of every room it is in (it leaves the server).
    pub(super) fn leave_all(&mut self, index: u32, now: Instant, presence: bool) {
        while !self.conns.slot(index).rooms.is_empty() {
            let last = self.conns.slot(index).rooms.len() - 1;
            self.leave_room(index, now, last, false, presence);
        }
    }

    /// Which slot of `index`'s room list holds `room`.
    pub(super) fn membership(&mut self, index: u32, room: RoomId) -> Option<usize> {
        self.conns
            .slot(index)
            .rooms
            .iter()
            .position(|(r, _)| *r == room)
    }

    fn encode_presence(
        &mut self,
        room: RoomId,
        room_name: &str,
        name: &str,
        joined: bool,
    ) -> Presence {
        let r = self.rooms.get(room).expect("a room in use");
        let (plain, with_form) = (r.logs[0].readers() > 0, r.logs[1].readers() > 0);
        let plain = plain.then(|| {
            let name = Name::trusted(name);
            self.encode(&if joined {
                ServerFrame::Join(name)
            } else {
                ServerFrame::Left(name)
            })
        });
        let room = with_form.then(|| {
            let (room, name) = (Name::trusted(room_name), Name::trusted(name));
            self.encode(&if joined {
                ServerFrame::Joined { room, name }
            } else {
                ServerFrame::Parted { room, name }
            })
        });
        Presence { plain, room }
    }

    /// Queues a presence frame for every member of `room` but `except`,
    /// then closes the slow consumers found on the way.
    fn tell_room(&mut self, room: RoomId, now: Instant, presence: Presence, except: Option<u32>) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        let targets: Vec<(u32, Form)> = r
            .members
            .iter()
            .filter(|m| Some(m.conn.index) != except)
            .map(|m| (m.conn.index, m.form))
            .collect();
        for (index, form) in targets {
            let span = match form {
                Form::Plain => presence.plain,
                Form::Room => presence.room,
            };
            if let Some(span) = span
                && self.conns.slot(index).is_active()
                && let Err(Overflow) = self.enqueue(index, now, span)
            {
                self.overflowed.push(index);
            }
        }
        self.close_overflowed(now);
    }

    /// Relays `text` from `index` to `room`, which it is a member of: one
    /// encoding per form with readers, a range of the log per member.
    pub(super) fn relay(&mut self, index: u32, now: Instant, room: RoomId, text: Text<'_>) {
        let Some(from) = self.conns.slot(index).name.clone() else {
            return;
        };
        let r = self.rooms.get(room).expect("a room the sender is in");
        let offset = r.next_offset;
        let room_name: Arc<str> = r.name.clone();
        let (plain_readers, room_readers) = (r.logs[0].readers() > 0, r.logs[1].readers() > 0);
        let history = r.logs[1].retains();
        let plain = ServerFrame::Msg {
            from: Name::trusted(&from),
            text: text.clone(),
        };
        let said = ServerFrame::Said {
            room: Name::trusted(&room_name),
            offset,
            from: Name::trusted(&from),
            text: text.clone(),
        };
        let max = self.config.max_frame_len;
        for (readers, frame, form) in [
            (plain_readers, &plain, "msg:NAME:TEXT"),
            (room_readers, &said, "said:ROOM:OFFSET:NAME:TEXT"),
        ] {
            let len = frame.encoded_len();
            if readers && len > max {
                let text =
                    format!("relayed as {form} the frame would be {len} bytes, more than {max}");
                return self.reply(index, now, ErrorCode::TooLong, &text);
            }
        }
        let r = self.rooms.slot(room.index);
        r.next_offset += 1;
        r.last_active = Some(now);
        if plain_readers {
            r.logs[0].append(offset, &plain);
        }
        if room_readers {
            r.logs[1].append(offset, &said);
        } else if history {
            if said.encoded_len() <= max {
                r.logs[1].append(offset, &said);
            } else {
                // Too long to keep in the room form: the history starts
                // over after it (a resume from before reports the gap).
                r.logs[1].restart(offset + 1);
            }
        }
        let count = r.members.len();
        self.store_message(room, offset, &from, &text);
        self.rooms.touch(room);
        for i in 0..count {
            let member = self.rooms.slot(room.index).members[i].conn.index;
            let c = self.conns.slot(member);
            let was_pending = c.out.is_pending();
            c.out.push_room(room.index, offset + 1);
            self.became_pending(member, now, was_pending);
        }
        self.stats.messages += 1;
        self.stats.deliveries += count as u64;
        if self.config.activity_events {
            let conn = self.conns.id(index);
            self.events.push_back(HubEvent::Message {
                conn,
                from: from.to_string(),
                room: room_name.to_string(),
                offset,
                text: text.into_string(),
            });
        }
        self.check_room_backlog(room, index, now);
    }

    /// Relays a private message from `index` to the logged-in `to`: one
    /// encoding, queued for both.
    pub(super) fn relay_private(&mut self, index: u32, now: Instant, to: u32, text: Text<'_>) {
        let (Some(from), Some(to_name)) = (
            self.conns.slot(index).name.clone(),
            self.conns.slot(to).name.clone(),
        ) else {
            return;
        };
        let frame = ServerFrame::Pm {
            from: Name::trusted(&from),
            to: Name::trusted(&to_name),
            text,
        };
        let len = frame.encoded_len();
        let max = self.config.max_frame_len;
        if len > max {
            let text = format!(
                "relayed as pm:FROM:TO:TEXT the frame would be {len} bytes, more than {max}"
            );
            return self.reply(index, now, ErrorCode::TooLong, &text);
        }
        let span = self.encode(&frame);
        if self.conns.slot(to).phase == Phase::Member {
            self.send(to, now, span);
        }
        if to != index {
            self.send(index, now, span);
        }
        self.stats.private_messages += 1;
        if self.config.activity_events {
            let ServerFrame::Pm { text, .. } = frame else {
                unreachable!("built above")
            };
            let conn = self.conns.id(index);
            self.events.push_back(HubEvent::PrivateMessage {
                conn,
                from: from.to_string(),
                to: to_name.to_string(),
                text: text.into_string(),
            });
        }
    }
}
