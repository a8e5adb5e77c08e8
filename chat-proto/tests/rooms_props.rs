//! Property tests of rooms with the simulated network: random sequences of
//! `join:`, `part:`, `say:`, `msg:`, `pm:`, `who:ROOM`, `rooms:`, logins
//! with look-alike names and disconnects from four connections (some with
//! the rooms capability, some speaking the seed's protocol), on small
//! limits so that every room error comes up. After every operation:
//!
//! * names are unique by [`NameKey`], and a look-alike of a logged-in name
//!   is refused;
//! * every message said in a room (the hub's `HubEvent::Message`) reaches
//!   exactly the connections that were told they are members (`joined:`,
//!   `room:`, or a plain login), no one else, each in its form;
//! * each member reads a room's messages in offset order without a gap,
//!   from the `NEXT` of its `room:` frame on, so all members see one order;
//!   plain members read the default room in the same order;
//! * a `room:` frame gives the epoch and head of an existing room, or a new
//!   epoch and offset 0 for a new one;
//! * presence and messages of a room reach only its members;
//! * `Hub::rooms()`, `Hub::room_members()` and `Hub::rooms_of()` agree with
//!   what the clients were told, and `who:ROOM` and `rooms:` answer the
//!   same;
//! * a private message reaches its sender and its recipient only, or is
//!   answered `no-such-user`;
//! * no error is fatal: every connection stays open.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use chat_proto::sim::{Direction, Network, PeerId};
use chat_proto::{ClientConfig, Decoder, History, HubEvent, NameKey, ServerConfig, ServerFrame};
use proptest::prelude::*;

/// Connections at any time.
const SLOTS: usize = 4;
/// The name each slot logs in with, and a look-alike of it.
const NAMES: [(&str, &str); SLOTS] = [
    ("zhangsan", "ZHANGSAN"),
    ("lisi", "LISI"),
    ("wangwu", "ｗａｎｇｗｕ"),
    ("Zhao", "zhao"),
];
/// Room names, look-alikes among them (the default room too).
const ROOMS: [&str; 7] = ["red", "RED", "blue", "ｂｌｕｅ", "green", "lobby", "Lobby"];
const LOBBY: &str = "lobby";

#[derive(Debug, Clone)]
enum Op {
    Join {
        slot: usize,
        room: usize,
    },
    Part {
        slot: usize,
        room: usize,
    },
    Say {
        slot: usize,
        room: usize,
    },
    /// `say:` into one of the rooms the slot is in (`pick` among them),
    /// spelled at times as a look-alike from the pool.
    SayIn {
        slot: usize,
        pick: usize,
        spelling: usize,
    },
    Msg {
        slot: usize,
    },
    Pm {
        slot: usize,
        to: usize,
    },
    Who {
        slot: usize,
        room: usize,
    },
    Rooms {
        slot: usize,
    },
    /// A new connection asks for the look-alike of `of`'s name, then goes.
    LookAlike {
        of: usize,
    },
    /// The slot's socket drops; a new connection takes the slot, with the
    /// rooms capability or not.
    Reconnect {
        slot: usize,
        rooms: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    let room = 0..ROOMS.len();
    prop_oneof![
        4 => (slot.clone(), room.clone()).prop_map(|(slot, room)| Op::Join { slot, room }),
        2 => (slot.clone(), room.clone()).prop_map(|(slot, room)| Op::Part { slot, room }),
        2 => (slot.clone(), room.clone()).prop_map(|(slot, room)| Op::Say { slot, room }),
        8 => (slot.clone(), 0..8usize, 0..4usize)
            .prop_map(|(slot, pick, spelling)| Op::SayIn { slot, pick, spelling }),
        2 => slot.clone().prop_map(|slot| Op::Msg { slot }),
        2 => (slot.clone(), 0..SLOTS + 1).prop_map(|(slot, to)| Op::Pm { slot, to }),
        2 => (slot.clone(), room).prop_map(|(slot, room)| Op::Who { slot, room }),
        1 => slot.clone().prop_map(|slot| Op::Rooms { slot }),
        1 => (0..SLOTS).prop_map(|of| Op::LookAlike { of }),
        1 => (slot, any::<bool>()).prop_map(|(slot, rooms)| Op::Reconnect { slot, rooms }),
    ]
}

fn config() -> impl Strategy<Value = ServerConfig> {
    (
        2usize..=4,
        3usize..=6,
        1usize..=4,
        0usize..=4,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(rooms_per_user, max_rooms, room_members, presence_limit, persistent, history)| {
                let mut config = ServerConfig::default();
                config.rooms_per_user = rooms_per_user;
                config.max_rooms = max_rooms;
                config.room_members = room_members;
                config.presence_limit = presence_limit;
                config.persistent_rooms = persistent;
                config.activity_events = true;
                config.rate_limit = None;
                if !history {
                    config.history = History::none();
                }
                config
            },
        )
}

/// A room a connection was told it is in.
#[derive(Debug, Clone)]
struct Membership {
    /// The room's name as the server spells it.
    shown: String,
    /// Plain form (the seed's frames, default room only).
    plain: bool,
    /// The offset of the next message it must read (room form), or of the
    /// last one it read plus one (plain form, once it read one).
    next: Option<u64>,
}

/// One connection, as the test sees it.
#[derive(Debug)]
struct Slot {
    peer: PeerId,
    name: &'static str,
    rooms_cap: bool,
    decoder: Decoder,
    rooms: BTreeMap<NameKey, Membership>,
}

/// A room as the messages and `room:` frames told of it.
#[derive(Debug, Clone)]
struct RoomLog {
    epoch: String,
    head: u64,
}

struct World {
    net: Network,
    slots: Vec<Slot>,
    /// Rooms existing at the end of the last operation, by key.
    logs: HashMap<NameKey, RoomLog>,
    /// Every epoch ever given, per room key.
    epochs: HashMap<NameKey, BTreeSet<String>>,
    /// Transcript entries already read.
    read: usize,
    texts: u64,
}

impl World {
    fn new(config: ServerConfig, caps: [bool; SLOTS]) -> World {
        let mut net = Network::new(config, Instant::now()).expect("valid config");
        net.record();
        let mut world = World {
            net,
            slots: Vec::new(),
            logs: HashMap::new(),
            epochs: HashMap::new(),
            read: 0,
            texts: 0,
        };
        for (i, rooms_cap) in caps.into_iter().enumerate() {
            let slot = world.login(NAMES[i].0, rooms_cap);
            world.slots.push(slot);
            world.settle(None);
        }
        world
    }

    /// Connects and logs in as `name`.
    fn login(&mut self, name: &'static str, rooms_cap: bool) -> Slot {
        let peer = self.net.connect(ClientConfig::plain()).expect("connect");
        let caps = if rooms_cap { "cap:rooms\n" } else { "" };
        self.net
            .send_raw(peer, format!("{caps}iam:{name}\n").as_bytes());
        Slot {
            peer,
            name,
            rooms_cap,
            decoder: Decoder::new(self.net.hub().config().max_frame_len),
            rooms: BTreeMap::new(),
        }
    }

    fn text(&mut self) -> String {
        self.texts += 1;
        format!("m{}", self.texts)
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Join { slot, room } => {
                let line = format!("join:{}\n", ROOMS[room]);
                self.send(slot, &line);
                self.settle(Some((slot, room)));
            }
            Op::Part { slot, room } => {
                let line = format!("part:{}\n", ROOMS[room]);
                self.send(slot, &line);
                self.settle(None);
            }
            Op::Say { slot, room } => {
                let line = format!("say:{}:{}\n", ROOMS[room], self.text());
                self.send(slot, &line);
                self.settle(None);
            }
            Op::SayIn {
                slot,
                pick,
                spelling,
            } => {
                let shown: Vec<&str> = self.slots[slot]
                    .rooms
                    .values()
                    .map(|m| m.shown.as_str())
                    .collect();
                // The room as the server spells it, or a look-alike from
                // the pool; a slot in no room says into any.
                let room = match shown.get(pick % shown.len().max(1)) {
                    Some(&shown) if spelling > 0 => ROOMS
                        .iter()
                        .filter(|r| NameKey::of(r) == NameKey::of(shown))
                        .nth(spelling - 1)
                        .copied()
                        .unwrap_or(shown),
                    Some(&shown) => shown,
                    None => ROOMS[pick % ROOMS.len()],
                }
                .to_owned();
                let line = format!("say:{room}:{}\n", self.text());
                self.send(slot, &line);
                self.settle(None);
            }
            Op::Msg { slot } => {
                let line = format!("msg:{}\n", self.text());
                self.send(slot, &line);
                self.settle(None);
            }
            Op::Pm { slot, to } => self.pm(slot, to),
            Op::Who { slot, room } => self.who(slot, room),
            Op::Rooms { slot } => self.list_rooms(slot),
            Op::LookAlike { of } => {
                let peer = self.net.connect(ClientConfig::plain()).expect("connect");
                let mark = self.net.transcript().len();
                self.net
                    .send_raw(peer, format!("iam:{}\n", NAMES[of].1).as_bytes());
                let got = bytes_since(&self.net, peer, mark);
                assert!(
                    got.starts_with("err:name-taken:"),
                    "{} logged in beside {}: {got:?}",
                    NAMES[of].1,
                    NAMES[of].0
                );
                self.net.disconnect(peer);
                self.settle(None);
            }
            Op::Reconnect { slot, rooms } => {
                // The others hear of the leave and the new login in one
                // settle; the old connection's bytes are no one's now.
                let peer = self.slots[slot].peer;
                self.net.disconnect(peer);
                self.slots[slot] = self.login(NAMES[slot].0, rooms);
                self.settle(None);
            }
        }
    }

    fn send(&mut self, slot: usize, line: &str) {
        let peer = self.slots[slot].peer;
        self.net.send_raw(peer, line.as_bytes());
    }

    /// The frames each slot received since the last call.
    fn take_frames(&mut self) -> Vec<Vec<ServerFrame<'static>>> {
        let wires = self.net.transcript()[self.read..].to_vec();
        self.read = self.net.transcript().len();
        let mut frames = vec![Vec::new(); SLOTS];
        for wire in wires {
            if wire.direction != Direction::ToClient {
                continue;
            }
            let Some(i) = self.slots.iter().position(|s| s.peer == wire.peer) else {
                continue;
            };
            self.slots[i].decoder.decode(&wire.bytes, |raw| {
                let frame = raw
                    .and_then(ServerFrame::parse)
                    .unwrap_or_else(|e| panic!("a frame that does not parse: {e}"));
                frames[i].push(frame.into_owned());
            });
        }
        frames
    }

    /// Checks what the last operation made the hub say and do. `joining`
    /// is the slot and room of a `join:` (a plain client is not told that
    /// it joined the default room again, only that it failed to).
    fn settle(&mut self, joining: Option<(usize, usize)>) {
        let frames = self.take_frames();
        let events = self.net.take_hub_events();
        let name_of: Vec<&str> = self.slots.iter().map(|s| s.name).collect();
        // Messages first: they were relayed to the memberships as they
        // stood before this operation changed any.
        for event in &events {
            let HubEvent::Message {
                from,
                room,
                offset,
                text,
                ..
            } = event
            else {
                continue;
            };
            let key = NameKey::of(room);
            let log = self.logs.entry(key.clone()).or_insert_with(|| RoomLog {
                epoch: String::new(),
                head: 0,
            });
            assert_eq!(*offset, log.head, "{room}: offsets count up by one");
            log.head += 1;
            let plain_form = ServerFrame::Msg {
                from: chat_proto::Name::new(from.as_str()).unwrap(),
                text: chat_proto::Text::new(text.as_str()).unwrap(),
            };
            for (i, slot) in self.slots.iter_mut().enumerate() {
                let got_said = frames[i].iter().any(|f| {
                    matches!(f, ServerFrame::Said { room: r, offset: o, from: f, text: t }
                        if r.as_str() == room && o == offset && f.as_str() == from
                            && t.as_str() == text)
                });
                let got_plain = frames[i].contains(&plain_form);
                let member = slot.rooms.get_mut(&key);
                let form = member.as_ref().map(|m| m.plain);
                assert_eq!(
                    (got_said, got_plain),
                    (form == Some(false), form == Some(true)),
                    "{}: said {text:?} in {room}; member: {member:?}",
                    name_of[i]
                );
                if let Some(m) = member {
                    if let Some(next) = m.next {
                        assert_eq!(*offset, next, "{}: a gap or a repeat in {room}", name_of[i]);
                    }
                    m.next = Some(offset + 1);
                }
            }
        }
        for (i, frames) in frames.iter().enumerate().take(self.slots.len()) {
            let mut joined_now = false;
            for frame in frames {
                match frame {
                    ServerFrame::Ok(name) => assert_eq!(name.as_str(), self.slots[i].name),
                    ServerFrame::Joined { room, name } if name.as_str() == self.slots[i].name => {
                        let key = NameKey::of(room.as_str());
                        let before = self.slots[i].rooms.insert(
                            key,
                            Membership {
                                shown: room.as_str().into(),
                                plain: false,
                                next: None,
                            },
                        );
                        assert!(before.is_none(), "joined {room} twice");
                        joined_now = true;
                    }
                    ServerFrame::Room { room, epoch, next } => {
                        let key = NameKey::of(room.as_str());
                        let epoch = format!("{epoch:x}");
                        match self.logs.get(&key) {
                            Some(log) if !log.epoch.is_empty() => {
                                assert_eq!((&epoch, *next), (&log.epoch, log.head), "{room}");
                            }
                            Some(log) => assert_eq!(*next, log.head, "{room}"),
                            None => {
                                assert_eq!(*next, 0, "a new room starts at 0");
                                let seen = self.epochs.entry(key.clone()).or_default();
                                assert!(!seen.contains(&epoch), "{room}: epoch {epoch} again");
                            }
                        }
                        self.epochs
                            .entry(key.clone())
                            .or_default()
                            .insert(epoch.clone());
                        let log = self.logs.entry(key.clone()).or_insert(RoomLog {
                            epoch: String::new(),
                            head: 0,
                        });
                        log.epoch = epoch;
                        let m = self.slots[i]
                            .rooms
                            .get_mut(&key)
                            .unwrap_or_else(|| panic!("room:{room} without joined:"));
                        m.next = Some(*next);
                    }
                    ServerFrame::Parted { room, name } if name.as_str() == self.slots[i].name => {
                        let gone = self.slots[i].rooms.remove(&NameKey::of(room.as_str()));
                        assert!(gone.is_some(), "parted {room}, not in it");
                    }
                    ServerFrame::Joined { room, .. } | ServerFrame::Parted { room, .. } => {
                        assert!(
                            self.slots[i]
                                .rooms
                                .contains_key(&NameKey::of(room.as_str())),
                            "{}: presence of {room}, not in it",
                            self.slots[i].name
                        );
                    }
                    ServerFrame::Join(_) | ServerFrame::Left(_) => {
                        let lobby = self.slots[i].rooms.get(&NameKey::of(LOBBY));
                        assert!(
                            lobby.is_some_and(|m| m.plain),
                            "{frame:?} outside the lobby"
                        );
                    }
                    ServerFrame::Err { code, text } => {
                        assert!(
                            !code.known().is_some_and(chat_proto::ErrorCode::is_fatal),
                            "fatal: {code}:{text}"
                        );
                    }
                    _ => {}
                }
            }
            // A plain login is in the default room, told only by `ok:`.
            let slot = &mut self.slots[i];
            if !slot.rooms_cap && frames.iter().any(|f| matches!(f, ServerFrame::Ok(_))) {
                slot.rooms.insert(NameKey::of(LOBBY), plain_lobby());
            }
            // A plain client joining the default room again is told
            // nothing (only an error would say it failed).
            if let Some((s, room)) = joining
                && s == i
                && !slot.rooms_cap
                && NameKey::of(ROOMS[room]) == NameKey::of(LOBBY)
                && !joined_now
                && !frames.iter().any(|f| matches!(f, ServerFrame::Err { .. }))
            {
                slot.rooms.insert(NameKey::of(LOBBY), plain_lobby());
            }
        }
        self.check_hub();
    }

    /// The hub's view equals what the clients were told.
    fn check_hub(&mut self) {
        let hub = self.net.hub();
        let logged_in: Vec<(chat_proto::ConnId, String)> =
            hub.logged_in().map(|(c, n)| (c, n.to_owned())).collect();
        let keys: BTreeSet<NameKey> = logged_in.iter().map(|(_, n)| NameKey::of(n)).collect();
        assert_eq!(keys.len(), logged_in.len(), "names unique by key");
        assert_eq!(
            logged_in.len(),
            self.slots.len(),
            "every slot logged in, none closed"
        );
        let mut told: BTreeMap<NameKey, BTreeSet<&str>> = BTreeMap::new();
        for slot in &self.slots {
            assert!(self.net.is_connected(slot.peer), "{} dropped", slot.name);
            let conn = self.net.conn(slot.peer);
            let hub_rooms: BTreeSet<NameKey> = hub.rooms_of(conn).map(NameKey::of).collect();
            let own: BTreeSet<NameKey> = slot.rooms.keys().cloned().collect();
            assert_eq!(hub_rooms, own, "{}'s rooms", slot.name);
            for key in slot.rooms.keys() {
                told.entry(key.clone()).or_default().insert(slot.name);
            }
        }
        let rooms: BTreeMap<NameKey, (String, usize)> = hub
            .rooms()
            .map(|(name, n)| (NameKey::of(name), (name.to_owned(), n)))
            .collect();
        for (key, (name, count)) in &rooms {
            let members: BTreeSet<&str> = hub
                .room_members(name)
                .expect("a listed room")
                .map(|(_, n)| n)
                .collect();
            let expected = told.get(key).cloned().unwrap_or_default();
            assert_eq!(members, expected, "members of {name}");
            assert_eq!(*count, members.len());
            for slot in &self.slots {
                if let Some(m) = slot.rooms.get(key) {
                    assert_eq!(&m.shown, name, "the room's spelling");
                }
            }
        }
        for key in told.keys() {
            assert!(rooms.contains_key(key), "told of a room that is gone");
        }
        // Rooms that went are forgotten: joining again makes a new one.
        self.logs.retain(|key, _| rooms.contains_key(key));
        for (key, _) in rooms {
            self.logs.entry(key).or_insert(RoomLog {
                epoch: String::new(),
                head: 0,
            });
        }
    }

    fn pm(&mut self, slot: usize, to: usize) {
        let to_name = if to < SLOTS { NAMES[to].1 } else { "nobody" };
        let text = self.text();
        self.send(slot, &format!("pm:{to_name}:{text}\n"));
        let frames = self.take_frames_keep();
        let from = self.slots[slot].name;
        for (i, got) in frames.iter().enumerate() {
            let pms: Vec<&ServerFrame<'_>> = got
                .iter()
                .filter(|f| matches!(f, ServerFrame::Pm { .. }))
                .collect();
            let meant = i == slot || i == to;
            if to < SLOTS && meant {
                let expected = ServerFrame::Pm {
                    from: chat_proto::Name::new(from).unwrap(),
                    to: chat_proto::Name::new(NAMES[to].0).unwrap(),
                    text: chat_proto::Text::new(text.as_str()).unwrap(),
                };
                assert_eq!(pms, [&expected], "{}", self.slots[i].name);
            } else {
                assert!(pms.is_empty(), "{} got {pms:?}", self.slots[i].name);
            }
        }
        if to == SLOTS {
            assert!(frames[slot].iter().any(|f| matches!(f,
                ServerFrame::Err { code, .. } if code.as_str() == "no-such-user")));
        }
        self.check_hub();
    }

    fn who(&mut self, slot: usize, room: usize) {
        self.send(slot, &format!("who:{}\n", ROOMS[room]));
        let frames = self.take_frames_keep();
        let key = NameKey::of(ROOMS[room]);
        let expected: BTreeSet<&str> = self
            .slots
            .iter()
            .filter(|s| s.rooms.contains_key(&key))
            .map(|s| s.name)
            .collect();
        let exists = self.net.hub().rooms().any(|(n, _)| NameKey::of(n) == key);
        let mut listed = BTreeSet::new();
        let mut ended = false;
        for frame in &frames[slot] {
            match frame {
                ServerFrame::Members { room, names } => {
                    assert_eq!(NameKey::of(room.as_str()), key);
                    ended = names.is_end();
                    listed.extend(names.names().map(String::from));
                }
                ServerFrame::Err { code, .. } => {
                    assert_eq!(code.as_str(), "no-such-room");
                    assert!(!exists, "{} exists", ROOMS[room]);
                    return self.check_hub();
                }
                _ => {}
            }
        }
        assert!(ended && exists, "who:{} not answered", ROOMS[room]);
        let listed: BTreeSet<&str> = listed.iter().map(String::as_str).collect();
        assert_eq!(listed, expected);
        self.check_hub();
    }

    fn list_rooms(&mut self, slot: usize) {
        self.send(slot, "rooms:\n");
        let frames = self.take_frames_keep();
        let mut listed = BTreeMap::new();
        for frame in &frames[slot] {
            if let ServerFrame::Rooms(list) = frame {
                listed.extend(list.entries().map(|(r, n)| (r.to_owned(), n as usize)));
            }
        }
        let hub: BTreeMap<String, usize> = self
            .net
            .hub()
            .rooms()
            .map(|(r, n)| (r.to_owned(), n))
            .collect();
        assert_eq!(listed, hub);
        self.check_hub();
    }

    /// Frames of an operation that changes no membership and says nothing
    /// in a room (so the general checks have nothing to track).
    fn take_frames_keep(&mut self) -> Vec<Vec<ServerFrame<'static>>> {
        let frames = self.take_frames();
        let events = self.net.take_hub_events();
        assert!(
            !events.iter().any(|e| matches!(e, HubEvent::Message { .. })),
            "{events:?}"
        );
        frames
    }
}

fn plain_lobby() -> Membership {
    Membership {
        shown: LOBBY.into(),
        plain: true,
        next: None,
    }
}

/// What `peer` received after transcript entry `mark`, as text.
fn bytes_since(net: &Network, peer: PeerId, mark: usize) -> String {
    let bytes: Vec<u8> = net.transcript()[mark..]
        .iter()
        .filter(|w| w.peer == peer && w.direction == Direction::ToClient)
        .flat_map(|w| w.bytes.to_vec())
        .collect();
    String::from_utf8(bytes).expect("UTF-8")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn rooms_keep_their_members_and_their_order(
        config in config(),
        caps in any::<[bool; SLOTS]>(),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let mut world = World::new(config, caps);
        for op in &ops {
            world.apply(op);
        }
    }
}
