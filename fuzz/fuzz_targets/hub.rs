//! Fuzzes the `Hub` with arbitrary sequences of operations, after the
//! `streams` target of quinn-proto: accept, input on a connection (raw bytes,
//! valid client frames, logins from a small pool of names, floods of one
//! frame), rooms (`cap:`, `join:`, `part:`, `say:`, `who:ROOM`, `rooms:`,
//! `pm:`, `resume:` with epochs the hub gave out, bursts into a room, from
//! small pools of look-alike room and user names), partial writes,
//! connections that stop reading, half-closes, time passing, timeouts,
//! disconnects, the application's answers and actions (approve or refuse a
//! login, kick, notices, room notices, removal from a room, reports of
//! stored history) and shutdown, on a small configuration so every limit is
//! hit (windows and room backlogs of a few frames pause input, rooms per
//! user and per server, members per room, histories of a few messages,
//! durable or not). Every output is drained after every operation; reading
//! connections then report all they were handed as written, and a
//! connection the hub closed is disconnected once flushed. Checks that:
//!
//! * nothing panics;
//! * `unflushed(conn)` never exceeds `outbound_limit`; after a drain
//!   `in_flight(conn)` is exactly what was handed out and not reported
//!   written (more may be owed, held back by the window), and once the
//!   connections that read have written all they were handed, they are
//!   owed nothing (without durable history: with it, what follows a
//!   message not yet stored waits);
//! * every byte sent to a connection decodes, with a decoder of the same
//!   maximum frame length, as whole, valid `ServerFrame`s, and nothing
//!   follows a `bye:` or a fatal `err:` (which is followed by the close);
//! * outputs only name sockets the adapter holds; nothing is transmitted to
//!   a connection after its `Close`; `Close` comes once; pauses and resumes
//!   alternate; an id is never reused while its socket is held;
//! * `HubEvent::Closed` comes once per accepted connection (checked after a
//!   final shutdown whose grace period runs out), `LoggedIn` never after
//!   it, and the hub is then finished;
//! * the logged-in names are unique (by their look-alike key), none mixes
//!   scripts, and they are exactly those the events say; `connections()` never exceeds
//!   `max_connections`;
//! * after `handle_timeout(t)`, `poll_timeout()` is `None` or later than `t`;
//! * the rooms agree with themselves (see `rooms::check_rooms`): counts,
//!   members logged in and listing the room, limits of rooms per user, per
//!   server and members per room, room names unique by look-alike key;
//! * each connection reads a room's messages only after a `room:` frame for
//!   it, from no later than its `NEXT`, one offset after the other;
//! * `Output::Store` comes only with durable history.

#![no_main]

#[path = "hub/rooms.rs"]
mod rooms;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use bytes::BytesMut;
use chat_proto::{
    ClientFrame, ConnId, Decoder, ErrorCode, Hub, HubEvent, Keepalive, LoginMode, NameKey, Output,
    RateLimit, ServerConfig, ServerFrame, history::StoreRecord, is_mixed_script,
};
use libfuzzer_sys::fuzz_target;

const MAX_FRAME_LEN: usize = 256;

/// Names for logins, so that names collide, look-alikes of them (which
/// must collide by key), mixed-script ones (refused); the last two are the
/// longest names there are, in characters and in bytes.
const NAMES: [&str; 12] = [
    "zhangsan",
    "lisi",
    "张三",
    "a",
    "ZhangSan",
    "\u{FF5A}hangsan",
    "\u{430}",
    "\u{430}dmin",
    "\u{212A}",
    "k",
    "abcdefghijklmnopqrstuvwxyz012345",
    "张张张张张张张张张张张张张张张张张张张张张张张张张张张张张张张张",
];

#[derive(Debug, Arbitrary)]
enum Op<'a> {
    /// A new connection; with `login`, it sends `cap:` (if any asked for)
    /// and `iam:` with that name from [`NAMES`] at once.
    Accept {
        login: Option<u8>,
        cap_rooms: bool,
        cap_history: bool,
    },
    /// Raw bytes on a connection.
    Input {
        conn: u8,
        bytes: &'a [u8],
    },
    /// Valid client frames, delivered in two reads cut at `cut`.
    Frames {
        conn: u8,
        frames: Vec<ClientFrame<'a>>,
        cut: u16,
    },
    /// `iam:` with a name from [`NAMES`].
    Iam {
        conn: u8,
        name: u8,
    },
    /// One frame many times in one read.
    Flood {
        conn: u8,
        frame: ClientFrame<'a>,
        times: u8,
    },
    /// The socket of a connection that stopped reading drains a little.
    Written {
        conn: u8,
        n: u16,
    },
    /// A connection stops or resumes reading.
    Reading {
        conn: u8,
        reading: bool,
    },
    /// Time passes, at most two minutes a step.
    Advance(u32),
    /// `handle_timeout` at the current time.
    HandleTimeout,
    /// Time jumps to the hub's deadline, which is then handled.
    AtDeadline,
    Disconnected {
        conn: u8,
    },
    /// The peer ends its side of the stream.
    Eof {
        conn: u8,
    },
    /// The application answers a pending login.
    Decide {
        conn: u8,
        approve: bool,
    },
    Kick {
        conn: u8,
    },
    Notice {
        conn: u8,
        all: bool,
    },
    /// `cap:` with these capabilities (and an unknown one).
    Cap {
        conn: u8,
        rooms: bool,
        history: bool,
        unknown: bool,
    },
    /// A room frame built from the pools of `rooms`.
    Room {
        conn: u8,
        verb: rooms::RoomVerb,
        room: u8,
        name: u8,
        text: u8,
    },
    /// `say:` into a room many times in one read: backlogs, paused input.
    Burst {
        conn: u8,
        room: u8,
        text: u8,
        times: u8,
    },
    /// `resume:` with an epoch the hub gave out (`Some`, picked from those
    /// seen), or 0.
    Resume {
        conn: u8,
        room: u8,
        epoch: Option<u8>,
        next: u16,
    },
    /// The application's room actions.
    NoticeRoom {
        room: u8,
    },
    RemoveFromRoom {
        conn: u8,
        room: u8,
    },
    /// The history store reports stored what the hub asked it to store.
    Stored,
    Shutdown,
}

#[derive(Debug)]
struct Setup(ServerConfig);

impl<'a> Arbitrary<'a> for Setup {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let ms =
            |u: &mut Unstructured<'a>, max: u64| u.int_in_range(1..=max).map(Duration::from_millis);
        let mut config = ServerConfig::default();
        config.max_frame_len = MAX_FRAME_LEN;
        // At least `max_frame_len` plus the 256 bytes kept for a closing frame.
        config.outbound_limit = u.int_in_range(2 * MAX_FRAME_LEN..=2048)?;
        config.max_connections = u.int_in_range(1..=8)?;
        config.presence_limit = u.int_in_range(0..=4)?;
        config.login_timeout = ms(u, 20_000)?;
        config.keepalive = Keepalive::new(ms(u, 30_000)?, ms(u, 15_000)?);
        config.login = if u.arbitrary()? {
            LoginMode::Application
        } else {
            LoginMode::Open
        };
        config.close_linger = ms(u, 5_000)?;
        config.shutdown_grace = ms(u, 10_000)?;
        config.activity_events = u.arbitrary()?;
        config.rate_limit = if u.arbitrary()? {
            Some(RateLimit {
                per_second: u.int_in_range(1..=5)?,
                burst: u.int_in_range(1..=5)?,
            })
        } else {
            None
        };
        rooms::configure(u, &mut config)?;
        Ok(Setup(config))
    }
}

/// The harness's side of one socket: what an adapter keeps.
struct Peer {
    id: ConnId,
    /// Decodes everything the hub hands out for this connection.
    decoder: Decoder,
    /// Bytes handed out and not yet reported written.
    outstanding: usize,
    reading: bool,
    /// The hub sent `bye:` or a fatal `err:`: nothing may follow.
    ended: bool,
    /// The hub asked for the close: flush, then disconnect.
    closing: bool,
    /// The hub paused this connection's input.
    paused: bool,
    /// What it read of its rooms.
    reads: rooms::RoomReads,
}

struct Harness {
    hub: Hub,
    limit: usize,
    max_connections: usize,
    now: Instant,
    /// Sockets held: accepted and not yet reported disconnected.
    open: Vec<Peer>,
    /// Every id ever accepted.
    accepted: Vec<ConnId>,
    /// Logged in, according to the events.
    members: BTreeMap<ConnId, String>,
    /// Waiting for the application's decision, according to the events.
    pending: BTreeSet<ConnId>,
    /// Connections a `HubEvent::Closed` was seen for.
    closed_events: BTreeSet<ConnId>,
    /// Room epochs the hub gave out (`room:` frames), for `resume:`.
    epochs: Vec<u64>,
    /// Store records not yet reported stored.
    unstored: Vec<StoreRecord>,
    durable: bool,
}

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    setup: Setup,
    ops: Vec<Op<'a>>,
}

fuzz_target!(|input: Input<'_>| {
    let Input {
        setup: Setup(config),
        ops,
    } = input;
    let grace = config.shutdown_grace;
    let durable = config.history.durable;
    let mut h = Harness {
        limit: config.outbound_limit,
        max_connections: config.max_connections,
        hub: Hub::new(config).expect("valid config"),
        now: Instant::now(),
        open: Vec::new(),
        accepted: Vec::new(),
        members: BTreeMap::new(),
        pending: BTreeSet::new(),
        closed_events: BTreeSet::new(),
        epochs: Vec::new(),
        unstored: Vec::new(),
        durable,
    };
    for op in ops {
        h.apply(op);
        h.check_bound();
        h.drain();
    }
    // Every connection ends, each with exactly one Closed event, at the
    // latest when the grace period is over.
    h.hub.shutdown(h.now);
    h.drain();
    h.now += grace;
    h.handle_timeout();
    h.drain();
    assert!(h.open.is_empty(), "open after shutdown: {}", h.open.len());
    assert!(h.hub.is_finished());
    assert_eq!(h.hub.connections(), 0);
    assert_eq!(h.hub.members(), 0);
    let accepted: BTreeSet<ConnId> = h.accepted.iter().copied().collect();
    assert_eq!(h.closed_events, accepted);
});

impl Harness {
    /// The connection a selector names: usually an open one, sometimes any
    /// id ever accepted (stale ids must be ignored).
    fn pick(&self, selector: u8) -> Option<ConnId> {
        if selector >= 0xe0 && !self.accepted.is_empty() {
            return Some(self.accepted[usize::from(selector) % self.accepted.len()]);
        }
        if self.open.is_empty() {
            return None;
        }
        Some(self.open[usize::from(selector) % self.open.len()].id)
    }

    fn peer(&mut self, id: ConnId) -> Option<&mut Peer> {
        self.open.iter_mut().find(|p| p.id == id)
    }

    fn apply(&mut self, op: Op<'_>) {
        match op {
            Op::Accept {
                login,
                cap_rooms,
                cap_history,
            } => {
                let id = self.hub.accept(self.now, None);
                assert!(
                    !self.open.iter().any(|p| p.id.index() == id.index()),
                    "{id}: index of a held socket reused"
                );
                assert!(!self.accepted.contains(&id), "{id} reused");
                self.accepted.push(id);
                self.open.push(Peer {
                    id,
                    decoder: Decoder::new(MAX_FRAME_LEN),
                    outstanding: 0,
                    reading: true,
                    ended: false,
                    closing: false,
                    paused: false,
                    reads: rooms::RoomReads::default(),
                });
                if let Some(name) = login {
                    let line = rooms::login_line(name, cap_rooms, cap_history);
                    self.hub.handle_input(id, self.now, line.as_bytes());
                }
            }
            Op::Input { conn, bytes } => {
                if let Some(id) = self.pick(conn) {
                    self.hub.handle_input(id, self.now, bytes);
                }
            }
            Op::Frames { conn, frames, cut } => {
                let Some(id) = self.pick(conn) else { return };
                let mut bytes = BytesMut::new();
                for frame in &frames {
                    frame.encode(&mut bytes);
                }
                let cut = usize::from(cut) % (bytes.len() + 1);
                self.hub.handle_input(id, self.now, &bytes[..cut]);
                self.check_bound();
                self.drain();
                self.hub.handle_input(id, self.now, &bytes[cut..]);
            }
            Op::Iam { conn, name } => {
                if let Some(id) = self.pick(conn) {
                    let line = format!("iam:{}\n", NAMES[usize::from(name) % NAMES.len()]);
                    self.hub.handle_input(id, self.now, line.as_bytes());
                }
            }
            Op::Flood { conn, frame, times } => {
                let Some(id) = self.pick(conn) else { return };
                let mut bytes = BytesMut::new();
                for _ in 0..=times % 64 {
                    frame.encode(&mut bytes);
                }
                self.hub.handle_input(id, self.now, &bytes);
            }
            Op::Written { conn, n } => {
                let Some(id) = self.pick(conn) else { return };
                let now = self.now;
                if let Some(peer) = self.peer(id) {
                    let n = usize::from(n).min(peer.outstanding);
                    peer.outstanding -= n;
                    self.hub.written(id, now, n);
                } else {
                    self.hub.written(id, now, usize::from(n));
                }
            }
            Op::Reading { conn, reading } => {
                let Some(id) = self.pick(conn) else { return };
                if let Some(peer) = self.peer(id) {
                    peer.reading = reading;
                }
            }
            Op::Advance(ms) => self.now += Duration::from_millis(u64::from(ms % 120_001)),
            Op::HandleTimeout => self.handle_timeout(),
            Op::AtDeadline => {
                if let Some(deadline) = self.hub.poll_timeout() {
                    self.now = self.now.max(deadline);
                }
                self.handle_timeout();
            }
            Op::Disconnected { conn } => {
                let Some(id) = self.pick(conn) else { return };
                self.disconnect(id);
            }
            Op::Eof { conn } => {
                if let Some(id) = self.pick(conn) {
                    self.hub.handle_eof(id, self.now);
                }
            }
            Op::Decide { conn, approve } => {
                let Some(id) = self.pick(conn) else { return };
                if approve {
                    self.hub.approve_login(id, self.now);
                } else {
                    self.hub
                        .refuse_login(id, self.now, ErrorCode::LoginRefused, "no")
                        .expect("valid refusal");
                    // A refused connection may ask again (no event says
                    // the request is over).
                    self.pending.remove(&id);
                }
            }
            Op::Kick { conn } => {
                if let Some(id) = self.pick(conn) {
                    self.hub.kick(id, self.now, "out").expect("valid reason");
                }
            }
            Op::Notice { conn, all } => {
                if all {
                    self.hub.notice_all(self.now, "hear ye").expect("valid");
                } else if let Some(id) = self.pick(conn) {
                    self.hub.notice(id, self.now, "psst").expect("valid");
                }
            }
            Op::Cap {
                conn,
                rooms,
                history,
                unknown,
            } => self.line(conn, &rooms::cap_line(rooms, history, unknown)),
            Op::Room {
                conn,
                verb,
                room,
                name,
                text,
            } => self.line(conn, &rooms::room_line(&verb, room, name, text)),
            Op::Burst {
                conn,
                room,
                text,
                times,
            } => {
                let line = rooms::room_line(&rooms::RoomVerb::Say, room, 0, text);
                self.line(conn, &line.repeat(usize::from(times % 64) + 1));
            }
            Op::Resume {
                conn,
                room,
                epoch,
                next,
            } => self.resume(conn, room, epoch, next),
            Op::NoticeRoom { room } => {
                let room = rooms::room_name(room);
                self.hub
                    .notice_room(room, self.now, "room notice")
                    .expect("valid");
            }
            Op::RemoveFromRoom { conn, room } => {
                let Some(id) = self.pick(conn) else { return };
                let room = rooms::room_name(room);
                self.hub.remove_from_room(id, room, self.now);
            }
            Op::Stored => self.stored(),
            Op::Shutdown => self.hub.shutdown(self.now),
        }
    }

    fn disconnect(&mut self, id: ConnId) {
        self.hub.disconnected(id, self.now);
        self.open.retain(|p| p.id != id);
    }

    fn handle_timeout(&mut self) {
        self.hub.handle_timeout(self.now);
        if let Some(next) = self.hub.poll_timeout() {
            assert!(
                next > self.now,
                "deadline {next:?} not after {:?}",
                self.now
            );
        }
    }

    /// The outbound bound is absolute: it holds between any two calls.
    fn check_bound(&self) {
        for peer in &self.open {
            if let Some(unflushed) = self.hub.unflushed(peer.id) {
                assert!(
                    unflushed <= self.limit,
                    "{}: {unflushed} bytes unflushed, limit {}",
                    peer.id,
                    self.limit
                );
            }
        }
    }

    /// Drains every output, checking it, then lets the reading connections
    /// report what they were handed as written and closes the sockets of
    /// flushed closing connections; repeats until quiet.
    fn drain(&mut self) {
        loop {
            self.drain_once();
            let mut moved = false;
            let now = self.now;
            for peer in self.open.iter_mut().filter(|p| p.reading) {
                if peer.outstanding > 0 {
                    self.hub.written(peer.id, now, peer.outstanding);
                    peer.outstanding = 0;
                    moved = true;
                }
            }
            let flushed: Vec<ConnId> = self
                .open
                .iter()
                .filter(|p| p.closing && p.outstanding == 0)
                .map(|p| p.id)
                .collect();
            for id in flushed {
                self.disconnect(id);
                moved = true;
            }
            if !moved {
                // Quiet: a connection that reads has been handed, and has
                // written, everything it was owed (with durable history,
                // what comes after a message not yet stored waits).
                for peer in self.open.iter().filter(|p| p.reading && !self.durable) {
                    assert_eq!(self.hub.unflushed(peer.id), Some(0), "{}", peer.id);
                }
                return;
            }
        }
    }

    fn drain_once(&mut self) {
        while let Some(output) = self.hub.poll_output() {
            match output {
                Output::Transmit(t) => self.transmit(t.conn, &t.data),
                Output::Close(id) => {
                    let Some(peer) = self.peer(id) else {
                        panic!("close of {id}, whose socket is not held");
                    };
                    assert!(!peer.closing, "{id} closed twice");
                    peer.closing = true;
                }
                Output::Abort(id) => {
                    assert!(self.peer(id).is_some(), "abort of {id}, not held");
                    self.disconnect(id);
                }
                Output::PauseInput(id) => {
                    let peer = self.peer(id).expect("pause of a held socket");
                    assert!(!peer.paused, "{id} paused twice");
                    peer.paused = true;
                }
                Output::ResumeInput(id) => {
                    let peer = self.peer(id).expect("resume of a held socket");
                    assert!(peer.paused, "{id} resumed while flowing");
                    peer.paused = false;
                }
                Output::Event(event) => self.event(event),
                Output::Store(record) => {
                    assert!(self.durable, "a store record without durable history");
                    self.unstored.push(record);
                }
                other => panic!("unknown output {other:?}"),
            }
        }
        self.check_state();
    }

    fn transmit(&mut self, conn: ConnId, data: &[bytes::Bytes]) {
        let len: usize = data.iter().map(|b| b.len()).sum();
        assert!(len > 0, "empty transmit for {conn}");
        let Some(peer) = self.peer(conn) else {
            panic!("transmit for {conn}, whose socket is not held");
        };
        assert!(!peer.closing, "transmit for {conn} after its close");
        let mut epochs = Vec::new();
        for bytes in data {
            let ended = &mut peer.ended;
            let reads = &mut peer.reads;
            peer.decoder.decode(bytes, |raw| {
                let frame = raw
                    .and_then(ServerFrame::parse)
                    .unwrap_or_else(|e| panic!("hub sent {conn} a bad frame: {e}"));
                assert!(!*ended, "{conn} was sent {frame:?} after its last frame");
                epochs.extend(reads.read(conn, &frame));
                *ended = match &frame {
                    ServerFrame::Bye(_) => true,
                    ServerFrame::Err { code, .. } => code.known().is_some_and(ErrorCode::is_fatal),
                    _ => false,
                };
            });
        }
        assert_eq!(peer.decoder.buffered(), 0, "partial frame sent to {conn}");
        peer.outstanding += len;
        for epoch in epochs {
            if !self.epochs.contains(&epoch) && self.epochs.len() < 16 {
                self.epochs.push(epoch);
            }
        }
    }

    fn event(&mut self, event: HubEvent) {
        match event {
            HubEvent::LoginRequested { conn, name, .. } => {
                assert!(!self.closed_events.contains(&conn));
                assert!(self.pending.insert(conn), "{conn} asked twice");
                assert!(
                    !self
                        .members
                        .values()
                        .any(|n| NameKey::of(n) == NameKey::of(&name)),
                    "{name} asked for while logged in"
                );
            }
            HubEvent::LoggedIn { conn, name } => {
                self.pending.remove(&conn);
                assert!(
                    !self.closed_events.contains(&conn),
                    "{conn} logged in as {name} after it closed"
                );
                assert!(
                    !self
                        .members
                        .values()
                        .any(|n| NameKey::of(n) == NameKey::of(&name)),
                    "{name} logged in twice"
                );
                assert!(!is_mixed_script(&name), "{name} mixes scripts");
                assert!(self.members.insert(conn, name).is_none());
            }
            HubEvent::Closed { conn, .. } => {
                assert!(self.closed_events.insert(conn), "{conn} closed twice");
                self.members.remove(&conn);
                self.pending.remove(&conn);
            }
            _ => {}
        }
    }

    /// What must hold once everything is drained.
    fn check_state(&self) {
        for peer in &self.open {
            if !peer.closing {
                assert!(
                    !peer.ended,
                    "{} was sent its last frame but is not closing",
                    peer.id
                );
            }
            // Handed out and not written: exactly what the harness holds;
            // more may be owed, held back by the connection's window.
            let unflushed = self.hub.unflushed(peer.id).expect("held");
            assert_eq!(
                self.hub.in_flight(peer.id),
                Some(peer.outstanding),
                "{}",
                peer.id
            );
            assert!(unflushed >= peer.outstanding, "{}", peer.id);
            assert!(unflushed <= self.limit);
        }
        let active = self.open.iter().filter(|p| !p.closing).count();
        assert!(self.hub.connections() <= active);
        assert_eq!(self.hub.sockets(), self.open.len());
        assert!(self.hub.connections() <= self.max_connections);
        let logged_in: BTreeMap<ConnId, String> = self
            .hub
            .logged_in()
            .map(|(id, name)| (id, name.to_owned()))
            .collect();
        assert_eq!(logged_in.len(), self.hub.members());
        assert_eq!(logged_in, self.members);
        let keys: BTreeSet<NameKey> = logged_in.values().map(|n| NameKey::of(n)).collect();
        assert_eq!(keys.len(), logged_in.len(), "look-alike names");
        for (id, name) in &logged_in {
            assert_eq!(self.hub.name(*id), Some(name.as_str()));
        }
        rooms::check_rooms(&self.hub);
    }
}
