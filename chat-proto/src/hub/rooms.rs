//! The rooms: who is in which, in which order, and each room's log.
//!
//! Rooms live in a slab and are found by the look-alike key of their name
//! (the same rule as user names). Computing a key is the dearest step of a
//! `join:` (Unicode folding and the confusable skeleton), so a name spelled
//! exactly as the room's own is found without it. Each room has a member list, which gives
//! broadcasts and `who:ROOM` their order, and a log per wire form
//! ([`FormLog`]). A member records its position in the list and its cursor
//! in the log; a connection records, for each of its rooms, the room and its
//! position there. Joining and leaving are `O(1)` in the room (a leaving
//! member's place is taken by the last one, and the caller is told who
//! moved) and `O(rooms of that user)` for the user: nothing ever scans all
//! connections or all rooms.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::BufMut;

use super::conns::ConnId;
use super::log::{Log, Span};
use super::room_log::{FormLog, Retention};
use crate::names::NameKey;

/// Which wire form a member reads a room in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    /// The seed's frames (`msg:FROM:TEXT`, `join:`, `left:`, `users:`): for
    /// clients that did not ask for the `rooms` capability, in the default
    /// room.
    Plain = 0,
    /// The room form (`said:ROOM:OFFSET:FROM:TEXT`, `joined:`, `parted:`,
    /// `members:`): everyone else.
    Room = 1,
}

/// Identifies a room; stale once the room is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct RoomId {
    pub(super) index: u32,
    pub(super) generation: u32,
}

/// One member of a room.
#[derive(Debug)]
pub(super) struct Member {
    pub(super) conn: ConnId,
    pub(super) name: Arc<str>,
    pub(super) form: Form,
    /// The offset of the next message to hand this member.
    pub(super) cursor: u64,
}

/// One room.
#[derive(Debug, Default)]
pub(super) struct Room {
    pub(super) generation: u32,
    pub(super) in_use: bool,
    pub(super) name: Arc<str>,
    pub(super) key: Option<NameKey>,
    pub(super) members: Vec<Member>,
    /// The offset the next message gets.
    pub(super) next_offset: u64,
    /// Names this room's log; a new room (or one whose history was lost)
    /// gets a new epoch.
    pub(super) epoch: u64,
    /// Never removed when it empties (the default room, or every room when
    /// rooms are persistent).
    pub(super) persistent: bool,
    /// The encoded messages, per form.
    pub(super) logs: [FormLog; 2],
    /// Appended to (or read from) since the last drain.
    pub(super) touched: bool,
    /// Messages before this offset are stored (with durable history); the
    /// others wait to be handed out.
    pub(super) durable: u64,
    /// When a message was last said, or a member last came or went.
    pub(super) last_active: Option<Instant>,
    /// Senders whose input is paused because this room's backlog is high.
    pub(super) paused_senders: Vec<ConnId>,
    /// Since when senders have been paused for this room.
    pub(super) stalled_since: Option<Instant>,
    /// The deadline of this room's entry in the timer heap.
    pub(super) timer_at: Option<Instant>,
}

impl Room {
    /// How far this room's slowest member is behind, in bytes, over both
    /// forms: the memory the room holds for its readers, counted once.
    pub(super) fn backlog(&self) -> u64 {
        self.logs[0].backlog() + self.logs[1].backlog()
    }

    /// The offset live traffic starts at for a member joining now: the
    /// head, or with durable history what is stored (the messages after it
    /// go out once stored, to everyone in the room by then).
    pub(super) fn live(&self, durable: bool) -> u64 {
        if durable {
            self.durable
        } else {
            self.next_offset
        }
    }

    /// How far `member` is behind, in bytes.
    pub(super) fn behind(&self, member: &Member) -> u64 {
        self.logs[member.form as usize].bytes_from(member.cursor)
    }
}

/// Every room.
#[derive(Debug, Default)]
pub(super) struct Rooms {
    slots: Vec<Room>,
    free: Vec<u32>,
    by_key: HashMap<NameKey, u32>,
    /// The rooms by their own spelling, so that the usual lookup (the name
    /// as the server spells it) needs no key.
    by_name: HashMap<Arc<str>, u32>,
    count: usize,
    /// Rooms touched since the last drain.
    touched: Vec<u32>,
}

impl Rooms {
    /// Rooms in use.
    pub(super) fn len(&self) -> usize {
        self.count
    }

    /// The room named `name` (or a look-alike).
    pub(super) fn find(&self, name: &str) -> Option<RoomId> {
        // Spelled as the room's own name: the same key by definition.
        if let Some(&index) = self.by_name.get(name) {
            return Some(self.id(index));
        }
        let index = *self.by_key.get(&NameKey::of(name))?;
        Some(self.id(index))
    }

    fn id(&self, index: u32) -> RoomId {
        RoomId {
            index,
            generation: self.slots[index as usize].generation,
        }
    }

    /// The room `id` names, unless it was removed.
    pub(super) fn get(&self, id: RoomId) -> Option<&Room> {
        self.slots
            .get(id.index as usize)
            .filter(|r| r.in_use && r.generation == id.generation)
    }

    /// The room `id` names, unless it was removed.
    pub(super) fn get_mut(&mut self, id: RoomId) -> Option<&mut Room> {
        self.slots
            .get_mut(id.index as usize)
            .filter(|r| r.in_use && r.generation == id.generation)
    }

    /// The room in slot `index`; the caller knows it is in use.
    pub(super) fn slot(&mut self, index: u32) -> &mut Room {
        &mut self.slots[index as usize]
    }

    /// Every room in use.
    pub(super) fn iter(&self) -> impl Iterator<Item = (RoomId, &Room)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, r)| r.in_use)
            .map(|(i, r)| {
                (
                    RoomId {
                        index: i as u32,
                        generation: r.generation,
                    },
                    r,
                )
            })
    }

    /// Creates the room `name`, with log `epoch`, keeping `history` of its
    /// room-form log.
    pub(super) fn create(
        &mut self,
        name: &str,
        epoch: u64,
        persistent: bool,
        history: Retention,
    ) -> RoomId {
        let key = NameKey::of(name);
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Room::default());
                (self.slots.len() - 1) as u32
            }
        };
        let room = &mut self.slots[index as usize];
        let generation = room.generation.wrapping_add(1);
        let name: Arc<str> = name.into();
        self.by_name.insert(name.clone(), index);
        *room = Room {
            generation,
            in_use: true,
            name,
            key: Some(key.clone()),
            epoch,
            persistent,
            ..Room::default()
        };
        room.logs[Form::Room as usize].set_retention(history);
        self.by_key.insert(key, index);
        self.count += 1;
        self.id(index)
    }

    /// Removes an empty room.
    pub(super) fn remove(&mut self, id: RoomId) {
        let Some(room) = self.get_mut(id) else {
            return;
        };
        debug_assert!(room.members.is_empty());
        room.in_use = false;
        room.members = Vec::new();
        room.logs = Default::default();
        room.paused_senders = Vec::new();
        let (key, name) = (room.key.take(), room.name.clone());
        if let Some(key) = key {
            self.by_key.remove(&key);
        }
        self.by_name.remove(&name);
        self.count -= 1;
        self.free.push(id.index);
    }

    /// Adds a member reading in `form` from the head, or from offset
    /// `start` (as near as the log holds); returns its position in the
    /// member list.
    pub(super) fn join(
        &mut self,
        id: RoomId,
        conn: ConnId,
        name: Arc<str>,
        form: Form,
        start: Option<u64>,
    ) -> u32 {
        let room = &mut self.slots[id.index as usize];
        let log = &mut room.logs[form as usize];
        if log.readers() == 0 && !log.retains() {
            log.restart(room.next_offset);
        }
        let cursor = match start {
            Some(offset) => log.add_reader_at(offset),
            None => log.add_reader(),
        };
        room.members.push(Member {
            conn,
            name,
            form,
            cursor,
        });
        (room.members.len() - 1) as u32
    }

    /// Removes the member at `position`. Returns its record, and the
    /// connection that moved into its place, if any.
    pub(super) fn leave(&mut self, id: RoomId, position: u32) -> (Member, Option<ConnId>) {
        let room = &mut self.slots[id.index as usize];
        let member = room.members.swap_remove(position as usize);
        room.logs[member.form as usize].remove_reader(member.cursor);
        let moved = room.members.get(position as usize).map(|m| m.conn);
        (member, moved)
    }

    /// Marks a room touched since the last drain.
    pub(super) fn touch(&mut self, id: RoomId) {
        let room = &mut self.slots[id.index as usize];
        if !room.touched {
            room.touched = true;
            self.touched.push(id.index);
        }
    }

    /// Freezes the logs of every room touched since the last drain.
    pub(super) fn freeze_touched(&mut self) {
        for index in self.touched.drain(..) {
            let room = &mut self.slots[index as usize];
            room.touched = false;
            for log in &mut room.logs {
                log.freeze();
            }
        }
    }

    /// Whether some room was touched since the last drain.
    pub(super) fn any_touched(&self) -> bool {
        !self.touched.is_empty()
    }
}

/// Appends a listing to `log` as one run: `TAG` frames of at most
/// `max_frame_len` bytes each (the payload after `prefix`), listing every
/// item once, then an empty one. `items` are the entries, already encoded
/// (`name` or `name=count`).
pub(super) fn listing<'a>(
    tag: &str,
    prefix: &str,
    items: impl Iterator<Item = &'a str> + Clone,
    max_frame_len: usize,
    log: &mut Log,
) -> Span {
    let head = tag.len() + 1 + prefix.len();
    let items_len: usize = items.clone().map(|i| i.len() + 1).sum();
    log.append(items_len + head + 1, |buf| {
        let mut items = items.peekable();
        let put_head = |buf: &mut bytes::BytesMut| {
            buf.put_slice(tag.as_bytes());
            buf.put_u8(b':');
            buf.put_slice(prefix.as_bytes());
        };
        while items.peek().is_some() {
            put_head(buf);
            let mut len = head + 1;
            let mut first = true;
            // Config validation guarantees room for one name of 128 bytes
            // (or a room entry) after the longest prefix.
            while let Some(item) = items.next_if(|i| first || len + i.len() < max_frame_len) {
                if !first {
                    buf.put_u8(b',');
                    len += 1;
                }
                buf.put_slice(item.as_bytes());
                len += item.len();
                first = false;
            }
            buf.put_u8(b'\n');
        }
        put_head(buf);
        buf.put_u8(b'\n');
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(index: u32) -> ConnId {
        ConnId {
            index,
            generation: 0,
        }
    }

    #[test]
    fn rooms_are_found_by_key_and_members_move_on_leave() {
        let mut rooms = Rooms::default();
        let none = Retention::default();
        let lobby = rooms.create("Lobby", 1, true, none);
        assert_eq!(rooms.find("lobby"), Some(lobby));
        assert_eq!(rooms.find("LOBBY"), Some(lobby));
        assert_eq!(rooms.join(lobby, conn(0), "a".into(), Form::Plain, None), 0);
        assert_eq!(rooms.join(lobby, conn(1), "b".into(), Form::Room, None), 1);
        assert_eq!(rooms.join(lobby, conn(2), "c".into(), Form::Room, None), 2);
        let (gone, moved) = rooms.leave(lobby, 0);
        assert_eq!(&*gone.name, "a");
        assert_eq!(moved, Some(conn(2)));
        assert_eq!(rooms.get(lobby).unwrap().members[0].conn, conn(2));
        // A removed room's id is stale; its name is free, in every spelling.
        let rust = rooms.create("rust", 2, false, none);
        assert_eq!(rooms.find("RUST"), Some(rust));
        rooms.remove(rust);
        assert!(rooms.get(rust).is_none());
        assert_eq!(rooms.find("rust"), None);
        assert_eq!(rooms.find("RUST"), None);
        let again = rooms.create("rust", 3, false, none);
        assert_eq!(again.index, rust.index);
        assert_ne!(again, rust);
        assert_eq!(rooms.len(), 2);
    }

    #[test]
    fn listings_fit_the_limit_and_end_empty() {
        let names: Vec<String> = (0..100).map(|i| format!("user{i:03}")).collect();
        let mut log = Log::default();
        let span = listing(
            "members",
            "rust:",
            names.iter().map(String::as_str),
            256,
            &mut log,
        );
        let all = log.freeze().slice(span);
        let frames: Vec<&[u8]> = all.split_inclusive(|&b| b == b'\n').collect();
        assert!(frames.len() > 2);
        let mut listed = Vec::new();
        for f in &frames {
            assert!(f.len() <= 256, "{} bytes", f.len());
            assert!(f.starts_with(b"members:rust:") && f.ends_with(b"\n"));
            let payload = std::str::from_utf8(&f[13..f.len() - 1]).unwrap();
            listed.extend(
                payload
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            );
        }
        assert_eq!(frames.last().unwrap(), b"members:rust:\n");
        assert_eq!(listed, names);
        // A frame is filled before the next begins.
        assert!(frames[0].len() > 256 - "user000,".len());
        let mut log = Log::default();
        let span = listing("users", "", std::iter::empty(), 4096, &mut log);
        assert_eq!(&log.freeze().slice(span)[..], b"users:\n");
    }
}
