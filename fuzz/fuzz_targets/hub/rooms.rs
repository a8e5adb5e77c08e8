//! The rooms half of the `hub` target: operations that speak rooms,
//! capabilities, private messages and `resume:` with names drawn from small
//! pools (so that rooms, look-alikes and users collide), the configuration
//! of rooms, flow control and history, and the checks on the rooms the hub
//! reports and the room frames each connection reads.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use chat_proto::history::StoreRecord;
use chat_proto::{ConnId, History, Hub, NameKey, ServerConfig, ServerFrame};

use super::{Harness, MAX_FRAME_LEN, NAMES};

/// Room names: look-alikes of one another and of the default room, one
/// of 30 three-byte characters (90 bytes, within the 118 a 256-byte frame
/// allows a room name) and one of 30 four-byte characters (120 bytes,
/// refused).
pub(crate) const ROOMS: [&str; 9] = [
    "lobby",
    "Lobby",
    "rust",
    "RUST",
    "ｒｕｓｔ",
    "go",
    "a.b",
    "房房房房房房房房房房房房房房房房房房房房房房房房房房房房房房",
    "\u{20000}\u{20000}\u{20000}\u{20000}\u{20000}\u{20000}\u{20000}\u{20000}\u{20000}\u{20000}\u{20000}\u{20000}\u{20000}\u{20000}\u{20000}\u{20000}\u{20000}\u{20000}\u{20000}\u{20000}\u{20000}\u{20000}\u{20000}\u{20000}\u{20000}\u{20000}\u{20000}\u{20000}\u{20000}\u{20000}",
];

/// Texts: empty, short with a colon, and long enough that its relayed
/// form (`said:ROOM:OFFSET:FROM:TEXT`, `pm:FROM:TO:TEXT`) may pass the
/// 256-byte frame limit while what was sent fits.
const TEXTS: [&str; 4] = [
    "",
    "hi: there",
    "你好",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
];

/// A frame about rooms, written as a person at `nc` would.
#[derive(Debug, Arbitrary)]
pub(crate) enum RoomVerb {
    Join,
    Part,
    Say,
    Who,
    /// `msg:` to the default room.
    Msg,
    Pm,
    Rooms,
}

/// The room name `room` picks from the pool.
pub(crate) fn room_name(room: u8) -> &'static str {
    ROOMS[usize::from(room) % ROOMS.len()]
}

/// `cap:` if any capability is asked for, then `iam:` with a name from the
/// pool.
pub(crate) fn login_line(name: u8, rooms: bool, history: bool) -> String {
    let caps = if rooms || history {
        cap_line(rooms, history, false)
    } else {
        String::new()
    };
    format!("{caps}iam:{}\n", NAMES[usize::from(name) % NAMES.len()])
}

impl Harness {
    /// Sends one or more lines on a connection.
    pub(crate) fn line(&mut self, conn: u8, line: &str) {
        if let Some(id) = self.pick(conn) {
            self.hub.handle_input(id, self.now, line.as_bytes());
        }
    }

    /// `resume:` with an epoch the hub gave out (`Some`, picked from those
    /// seen), or 0.
    pub(crate) fn resume(&mut self, conn: u8, room: u8, epoch: Option<u8>, next: u16) {
        let epoch = match epoch {
            Some(i) if !self.epochs.is_empty() => self.epochs[usize::from(i) % self.epochs.len()],
            _ => 0,
        };
        self.line(conn, &resume_line(room, epoch, next));
    }

    /// Reports every message the hub asked to store as stored, each room's
    /// log up to its last message appended.
    pub(crate) fn stored(&mut self) {
        let mut upto: BTreeMap<(String, u64), u64> = BTreeMap::new();
        for record in self.unstored.drain(..) {
            if let StoreRecord::Append {
                room,
                epoch,
                message,
            } = record
            {
                let next = upto.entry((room, epoch)).or_default();
                *next = (*next).max(message.offset + 1);
            }
        }
        for ((room, epoch), next) in upto {
            self.hub.stored(self.now, &room, epoch, next);
        }
    }
}

/// Builds the line for `verb` from the pools.
pub(crate) fn room_line(verb: &RoomVerb, room: u8, name: u8, text: u8) -> String {
    let room = room_name(room);
    let text = TEXTS[usize::from(text) % TEXTS.len()];
    // One past the pool: a name nobody holds.
    let name = NAMES
        .get(usize::from(name) % (NAMES.len() + 1))
        .unwrap_or(&"nobody");
    match verb {
        RoomVerb::Join => format!("join:{room}\n"),
        RoomVerb::Part => format!("part:{room}\n"),
        RoomVerb::Say => format!("say:{room}:{text}\n"),
        RoomVerb::Who => format!("who:{room}\n"),
        RoomVerb::Msg => format!("msg:{text}\n"),
        RoomVerb::Pm => format!("pm:{name}:{text}\n"),
        RoomVerb::Rooms => "rooms:\n".to_owned(),
    }
}

/// `cap:` with the capabilities chosen, and one nobody knows.
pub(crate) fn cap_line(rooms: bool, history: bool, unknown: bool) -> String {
    let caps: Vec<&str> = [
        (rooms, "rooms"),
        (history, "history"),
        (unknown, "x-unknown"),
    ]
    .into_iter()
    .filter_map(|(on, cap)| on.then_some(cap))
    .collect();
    format!("cap:{}\n", caps.join(","))
}

/// `resume:ROOM:EPOCH:NEXT`, with an epoch the hub gave out (`Some`) or
/// any.
pub(crate) fn resume_line(room: u8, epoch: u64, next: u16) -> String {
    let room = room_name(room);
    format!("resume:{room}:{epoch:x}:{next}\n")
}

/// Rooms, flow control and history, small enough that every limit is hit:
/// windows of one to a few frames, room backlogs of a few frames, a few
/// rooms of a few members, histories of a handful of messages, durable or
/// not.
pub(crate) fn configure(
    u: &mut Unstructured<'_>,
    config: &mut ServerConfig,
) -> arbitrary::Result<()> {
    config.send_window = u.int_in_range(MAX_FRAME_LEN..=4 * MAX_FRAME_LEN)?;
    config.room_backlog = u.int_in_range(2 * MAX_FRAME_LEN..=16 * MAX_FRAME_LEN)?;
    config.pause_backlog = u.int_in_range(MAX_FRAME_LEN..=8 * MAX_FRAME_LEN)?;
    config.write_timeout = Duration::from_millis(u.int_in_range(1..=20_000)?);
    config.rooms_per_user = u.int_in_range(1..=4)?;
    config.max_rooms = u.int_in_range(1..=6)?;
    config.room_members = u.int_in_range(1..=4)?;
    config.persistent_rooms = u.arbitrary()?;
    config.seed = u.arbitrary()?;
    config.history = if u.arbitrary()? {
        History::none()
    } else {
        let mut h = History::default();
        h.messages = u.int_in_range(1..=16)?;
        h.bytes = u.int_in_range(MAX_FRAME_LEN..=config.room_backlog / 2)?;
        h.on_join = u.int_in_range(0..=8)?;
        h.max_replay = u.int_in_range(1..=16)?;
        h.durable = u.arbitrary()?;
        h
    };
    Ok(())
}

/// What one connection read of its rooms: for each room, where its last
/// `room:` frame said live reading starts, and the last offset read.
#[derive(Debug, Default)]
pub(crate) struct RoomReads {
    rooms: BTreeMap<String, (u64, Option<u64>)>,
}

impl RoomReads {
    /// Checks a frame sent to `conn`: a room's messages come only after a
    /// `room:` frame for it, from no later than its `NEXT`, then one by one
    /// without a gap or a repeat (history first, then live, from one log).
    /// Returns the epoch of a `room:` frame, for `resume:` to use.
    pub(crate) fn read(&mut self, conn: ConnId, frame: &ServerFrame<'_>) -> Option<u64> {
        match frame {
            ServerFrame::Room { room, epoch, next } => {
                self.rooms.insert(room.as_str().to_owned(), (*next, None));
                Some(*epoch)
            }
            ServerFrame::Said { room, offset, .. } => {
                let Some((next, last)) = self.rooms.get_mut(room.as_str()) else {
                    panic!("{conn}: said:{room}:{offset} before any room:{room}");
                };
                match last {
                    None => assert!(
                        *offset <= *next,
                        "{conn}: {room} starts at {offset}, after the live boundary {next}"
                    ),
                    Some(last) => assert_eq!(
                        *offset,
                        *last + 1,
                        "{conn}: {room} went from {last} to {offset}"
                    ),
                }
                *last = Some(*offset);
                None
            }
            _ => None,
        }
    }
}

/// What must hold between the hub's room getters once everything is
/// drained: every room's count is its member list; members are logged in
/// under the names listed and list the room among theirs; nobody is in more
/// rooms than allowed, no room but the default one holds more members than
/// allowed, there are no more rooms than allowed, and room names are
/// unique by their look-alike key.
pub(crate) fn check_rooms(hub: &Hub) {
    let config = hub.config();
    let rooms: Vec<(String, usize)> = hub.rooms().map(|(r, n)| (r.to_owned(), n)).collect();
    assert!(rooms.len() <= config.max_rooms, "{} rooms", rooms.len());
    let keys: BTreeSet<NameKey> = rooms.iter().map(|(r, _)| NameKey::of(r)).collect();
    assert_eq!(keys.len(), rooms.len(), "look-alike rooms: {rooms:?}");
    assert!(
        keys.contains(&NameKey::of(hub.default_room())),
        "no default room"
    );
    let mut member_of: BTreeMap<ConnId, BTreeSet<String>> = BTreeMap::new();
    for (room, count) in &rooms {
        let members: Vec<(ConnId, String)> = hub
            .room_members(room)
            .expect("a listed room")
            .map(|(c, n)| (c, n.to_owned()))
            .collect();
        assert_eq!(members.len(), *count, "{room}");
        if NameKey::of(room) != NameKey::of(hub.default_room()) {
            assert!(*count <= config.room_members, "{room} holds {count}");
        }
        for (conn, name) in members {
            assert_eq!(hub.name(conn), Some(name.as_str()), "{room}: {conn}");
            assert!(
                member_of.entry(conn).or_default().insert(room.clone()),
                "{conn} twice in {room}"
            );
        }
    }
    for (conn, _) in hub.logged_in() {
        let own: BTreeSet<String> = hub.rooms_of(conn).map(str::to_owned).collect();
        assert!(own.len() <= config.rooms_per_user, "{conn} in {own:?}");
        assert_eq!(
            own,
            member_of.remove(&conn).unwrap_or_default(),
            "{conn}: its rooms and the rooms' members"
        );
    }
    assert!(member_of.is_empty(), "members not logged in: {member_of:?}");
}
