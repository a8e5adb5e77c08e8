//! History and resume on every transport, in raw frames: the `history`
//! capability, history on join up to the `room:` frame, resume after a
//! reconnect with no gap and no duplicate, `err:history-gap` with what is
//! missing, resume refused without the capability; and durable history
//! through the transport's store worker: a message is echoed only once the
//! store has it, and a server restarted on the same store keeps each
//! room's epoch, so clients resume across the restart.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chat_proto::ServerConfig;
use chat_proto::history::{HistoryStore, MemoryStore, RoomHistory, StoreRecord};
use transport_common::DynStore;

use crate::wire::{PATIENCE, RawConn};
use crate::{Start, StartStored};

fn unlimited() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.rate_limit = None;
    config
}

/// A plain (seed) client named `speaker`.
fn speaker(server: &crate::TestServer) -> RawConn {
    RawConn::login(server.addr(), "speaker")
}

/// The speaker says `m{i}` for each `i`, and waits for its own echoes, so
/// that the server has handled them all.
pub(crate) fn say(speaker: &mut RawConn, texts: std::ops::Range<u64>) {
    let mut frames = String::new();
    for i in texts.clone() {
        frames.push_str(&format!("msg:m{i}\n"));
    }
    speaker.send(frames.as_bytes());
    for i in texts {
        speaker.skip_to(&format!("msg:speaker:m{i}"));
    }
}

/// A room's position from a `room:ROOM:EPOCH:NEXT` line: the epoch as sent
/// (hex) and the next offset.
fn position(line: &str, room: &str) -> (String, u64) {
    let rest = line
        .strip_prefix(&format!("room:{room}:"))
        .unwrap_or_else(|| panic!("expected room:{room}:EPOCH:NEXT, got {line:?}"));
    let (epoch, next) = rest.split_once(':').expect("room:ROOM:EPOCH:NEXT");
    (epoch.to_owned(), next.parse().expect("NEXT is a number"))
}

/// Connects with the history capability, sends `before_login` (resumes),
/// logs in as `name`, and reads up to the lobby's `room:` frame; returns
/// the connection and the lobby's epoch and next offset.
fn history_login(
    addr: std::net::SocketAddr,
    name: &str,
    before_login: &str,
) -> (RawConn, String, u64) {
    let mut conn = RawConn::connect(addr);
    conn.send(format!("cap:rooms,history\n{before_login}iam:{name}\n").as_bytes());
    conn.expect("cap:rooms,history");
    let mut lines = Vec::new();
    loop {
        let line = conn.line();
        if line.starts_with("room:lobby:") {
            assert_eq!(
                lines,
                [format!("ok:{name}"), format!("joined:lobby:{name}")],
                "before the room: frame"
            );
            let (epoch, next) = position(&line, "lobby");
            return (conn, epoch, next);
        }
        lines.push(line);
    }
}

/// A `said:lobby:OFFSET:speaker:TEXT` line as (offset, text).
fn said(line: &str) -> Option<(u64, String)> {
    let rest = line.strip_prefix("said:lobby:")?;
    let (offset, rest) = rest.split_once(':')?;
    let (_, text) = rest.split_once(':')?;
    Some((offset.parse().ok()?, text.to_owned()))
}

/// Reads until `said:lobby:LAST:...`; returns the messages, and the other
/// lines that are not presence (`joined:`, `left:`).
fn read_to(conn: &mut RawConn, last: u64) -> (Vec<(u64, String)>, Vec<String>) {
    let (mut messages, mut others) = (Vec::new(), Vec::new());
    loop {
        let line = conn.line();
        match said(&line) {
            Some(m) => {
                let done = m.0 == last;
                messages.push(m);
                if done {
                    return (messages, others);
                }
            }
            None if line.starts_with("joined:") || line.starts_with("left:") => {}
            None => others.push(line),
        }
    }
}

fn messages(range: std::ops::Range<u64>) -> Vec<(u64, String)> {
    range.map(|i| (i, format!("m{i}"))).collect()
}

/// Closes `conn` and waits until `witness` (a plain client) sees it leave,
/// so that its name is free again.
fn leave(conn: RawConn, name: &str, witness: &mut RawConn) {
    conn.close();
    witness.skip_to(&format!("left:{name}"));
}

/// `cap:rooms,history` is answered in kind; a plain client next to it still
/// sees the seed's frames, and the history client sees the same message
/// with its offset.
pub fn history_capability_is_answered(start: Start<'_>) {
    let server = start(unlimited());
    let (mut ann, _, next) = history_login(server.addr(), "ann", "");
    assert_eq!(next, 0);
    let mut plain = RawConn::login(server.addr(), "plain");
    plain.send(b"msg:hi\n");
    plain.expect("msg:plain:hi");
    let (seen, others) = read_to(&mut ann, 0);
    assert_eq!(seen, [(0, "hi".to_owned())]);
    assert!(others.is_empty(), "{others:?}");
}

/// A client with the capability gets the last `on_join` messages before
/// the `room:` frame's offset, then live traffic; a plain client none.
pub fn history_on_join_is_marked_by_room(start: Start<'_>) {
    let mut config = unlimited();
    config.history.on_join = 5;
    let server = start(config);
    let mut s = speaker(&server);
    say(&mut s, 0..10);
    let (mut ann, _, next) = history_login(server.addr(), "ann", "");
    assert_eq!(next, 10, "history ends before offset 10; live begins there");
    let replay: Vec<_> = (0..5).map(|_| said(&ann.line()).expect("said:")).collect();
    assert_eq!(replay, messages(5..10));
    let mut plain = RawConn::login(server.addr(), "plain");
    say(&mut s, 10..11);
    assert_eq!(read_to(&mut ann, 10).0, messages(10..11));
    plain.expect("msg:speaker:m10");
}

/// A client that comes back with `resume:lobby:EPOCH:NEXT` before its login
/// gets exactly what it missed, then live traffic: no gap, no duplicate.
pub fn resume_after_reconnect_has_no_gap_and_no_duplicate(start: Start<'_>) {
    let server = start(unlimited());
    let mut s = speaker(&server);
    let (mut ann, epoch, next) = history_login(server.addr(), "ann", "");
    say(&mut s, next..5);
    assert_eq!(read_to(&mut ann, 4).0, messages(0..5));
    leave(ann, "ann", &mut s);
    say(&mut s, 5..10);
    let resume = format!("resume:lobby:{epoch}:5\n");
    let (mut ann, again, next) = history_login(server.addr(), "ann", &resume);
    assert_eq!((again, next), (epoch, 10));
    say(&mut s, 10..12);
    let (seen, others) = read_to(&mut ann, 11);
    assert_eq!(seen, messages(5..12));
    assert!(others.is_empty(), "{others:?}");
}

/// A resume from further back than the history reaches is answered
/// `err:history-gap` with the count missing, then what is kept; from
/// another epoch, with `?`.
pub fn history_gap_says_how_many_are_missing(start: Start<'_>) {
    let mut config = unlimited();
    config.history.messages = 10;
    let server = start(config);
    let mut s = speaker(&server);
    let (ann, epoch, _) = history_login(server.addr(), "ann", "");
    leave(ann, "ann", &mut s);
    say(&mut s, 0..50);
    let resume = format!("resume:lobby:{epoch}:0\n");
    let (mut ann, _, next) = history_login(server.addr(), "ann", &resume);
    assert_eq!(next, 50);
    let (seen, others) = read_to(&mut ann, 49);
    assert_eq!(
        others,
        ["err:history-gap:lobby:40:messages 0 to 39 are no longer kept"]
    );
    assert_eq!(seen, messages(40..50));
    let other_epoch = if epoch == "1" { "2" } else { "1" };
    let resume = format!("resume:lobby:{other_epoch}:3\n");
    let (mut bob, _, _) = history_login(server.addr(), "bob", &resume);
    let (seen, others) = read_to(&mut bob, 49);
    assert_eq!(others.len(), 1, "{others:?}");
    assert!(
        others[0].starts_with("err:history-gap:lobby:?:"),
        "{others:?}"
    );
    assert_eq!(seen, messages(40..50));
}

/// `resume:` without the capability is refused (non-fatal).
pub fn resume_without_the_capability_is_refused(start: Start<'_>) {
    let server = start(unlimited());
    let mut c = RawConn::connect(server.addr());
    c.send(b"resume:lobby:0:0\n");
    c.expect("err:bad-frame:resume: needs the history capability (send cap:rooms,history first)");
    c.send(b"iam:c\nmsg:hi\n");
    c.expect("ok:c");
    c.expect("msg:c:hi");
}

/// A [`MemoryStore`] shared between servers (so that a restarted server
/// finds what the last one stored), whose `apply` can be held at a gate.
#[derive(Clone, Default)]
pub struct SharedStore {
    inner: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Default)]
struct GateState {
    store: MemoryStore,
    closed: bool,
    /// `apply` calls waiting at the closed gate.
    waiting: usize,
}

impl std::fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedStore")
    }
}

impl SharedStore {
    /// An empty store, keeping up to 1,000 messages a room.
    pub fn new() -> SharedStore {
        let store = SharedStore::default();
        store.lock().store = MemoryStore::new(1000, usize::MAX);
        store
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds (true) or lets through (false) every `apply`.
    pub fn set_closed(&self, closed: bool) {
        self.lock().closed = closed;
        self.inner.changed.notify_all();
    }

    /// Waits (within the suite's patience) until an `apply` waits at the
    /// closed gate.
    pub fn wait_held(&self) {
        let deadline = Instant::now() + PATIENCE;
        let mut state = self.lock();
        while state.waiting == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the store was given nothing to apply");
            state = self
                .inner
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// What the store holds.
    pub fn rooms(&self) -> Vec<RoomHistory> {
        let Ok(rooms) = self.lock().store.load(usize::MAX);
        rooms
    }
}

impl HistoryStore for SharedStore {
    type Error = std::convert::Infallible;

    fn apply(&mut self, records: &[StoreRecord]) -> Result<(), Self::Error> {
        let mut state = self.lock();
        state.waiting += 1;
        self.inner.changed.notify_all();
        // Held at most a generous bound, so that a failing test ends.
        let deadline = Instant::now() + 6 * PATIENCE;
        while state.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .inner
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.waiting -= 1;
        state.store.apply(records)
    }

    fn load(&mut self, limit: usize) -> Result<Vec<RoomHistory>, Self::Error> {
        self.lock().store.load(limit)
    }
}

fn durable(seed: u64) -> ServerConfig {
    let mut config = unlimited();
    config.history.durable = true;
    config.seed = seed;
    config
}

/// With a store, a message is echoed (to its sender too) only once the
/// store has applied it.
pub fn durable_message_is_echoed_only_once_stored(start: StartStored<'_>) {
    let store = SharedStore::new();
    let server = start(durable(1), DynStore::new(store.clone()));
    let mut a = RawConn::login(server.addr(), "a");
    store.set_closed(true);
    a.send(b"msg:kept\n");
    store.wait_held();
    assert!(store.rooms().is_empty());
    a.expect_silence(Duration::from_millis(300));
    store.set_closed(false);
    a.expect("msg:a:kept");
    let rooms = store.rooms();
    assert_eq!(rooms[0].messages[0].text, "kept");
}

/// A server restarted on the same store keeps the lobby's epoch and
/// offsets: a client resumes across the restart without a gap, and a new
/// one gets the stored history on join.
pub fn durable_restart_resumes_with_the_same_epoch(start: StartStored<'_>) {
    let store = SharedStore::new();
    let server = start(durable(1), DynStore::new(store.clone()));
    let mut s = speaker(&server);
    let (mut ann, epoch, _) = history_login(server.addr(), "ann", "");
    say(&mut s, 0..5);
    assert_eq!(read_to(&mut ann, 4).0, messages(0..5));
    server.shutdown();
    assert_eq!(ann.expect_eof(), ["bye:server shutting down"]);
    assert_eq!(store.rooms()[0].next, 5);

    // Another seed: without the store the lobby's epoch would differ.
    let fresh = start(durable(2), DynStore::new(SharedStore::new()));
    let (_, fresh_epoch, _) = history_login(fresh.addr(), "x", "");
    assert_ne!(fresh_epoch, epoch);
    drop(fresh);

    let server = start(durable(2), DynStore::new(store.clone()));
    let mut s = speaker(&server);
    let resume = format!("resume:lobby:{epoch}:5\n");
    let (mut ann, again, next) = history_login(server.addr(), "ann", &resume);
    assert_eq!((&again, next), (&epoch, 5));
    say(&mut s, 5..7);
    let (seen, others) = read_to(&mut ann, 6);
    assert_eq!(seen, messages(5..7));
    assert!(others.is_empty(), "no gap: {others:?}");
    let (mut bob, bob_epoch, next) = history_login(server.addr(), "bob", "");
    assert_eq!((bob_epoch, next), (epoch, 7));
    let replay: Vec<_> = (0..7).map(|_| said(&bob.line()).expect("said:")).collect();
    assert_eq!(replay, messages(0..7));
}
