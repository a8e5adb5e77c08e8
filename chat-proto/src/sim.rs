//! An in-memory network of [`Client`]s and one [`Hub`] with a simulated
//! clock, for tests, examples and fuzzing.
//!
//! [`Network`] plays the part of the adapters exactly as they must play it:
//! after every input it drains every output of the hub, it reports bytes as
//! written once the receiving client has read them, it stops passing a
//! client's bytes to the hub while the hub paused that connection's input,
//! it closes a connection the hub ended once its last bytes are read (or at
//! once, for an abort) and then tells the hub the socket is gone, and it
//! moves time only from one deadline to the next. A client can stop reading
//! ([`Network::set_reading`]) to play a slow consumer, end its side of the
//! stream ([`Network::half_close`]), and raw bytes can be sent in its name
//! ([`Network::send_raw`]) to play a hostile one. Nothing sleeps: time is a
//! number that jumps.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use chat_proto::{ClientConfig, Event, ServerConfig, sim::Network};
//!
//! let mut net = Network::new(ServerConfig::default(), Instant::now())?;
//! let zhangsan = net.connect(ClientConfig::default())?;
//! net.client(zhangsan).login("zhangsan")?;
//! net.run();
//! assert_eq!(
//!     net.take_events(zhangsan),
//!     [
//!         Event::LoggedIn { name: "zhangsan".into() },
//!         Event::Joined { room: "lobby".into(), name: "zhangsan".into() },
//!     ]
//! );
//!
//! // An hour of silence: pings and pongs keep the session alive.
//! net.advance(Duration::from_secs(3600));
//! assert!(net.is_connected(zhangsan));
//! assert!(net.take_events(zhangsan).is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::history::{HistoryStore, MemoryStore, StoreRecord};
use crate::{
    Client, ClientConfig, ClientOutput, ConfigError, ConnId, Event, Hub, HubEvent, Output,
    ServerConfig,
};

/// A client of a [`Network`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerId(usize);

/// Which way bytes went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From a client to the hub.
    ToServer,
    /// From the hub to a client.
    ToClient,
}

/// Bytes that crossed the simulated wire, as recorded by
/// [`Network::record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wire {
    /// When, in simulated time.
    pub at: Instant,
    /// The client's end.
    pub peer: PeerId,
    /// Which way.
    pub direction: Direction,
    /// The bytes.
    pub bytes: Bytes,
}

#[derive(Debug)]
struct Peer {
    client: Client,
    conn: ConnId,
    /// Bytes the hub handed out that the socket has not taken yet.
    inbox: VecDeque<Bytes>,
    /// Bytes the socket took (reported written) that the client has not
    /// read yet, at most the network's socket buffer.
    kernel: VecDeque<Bytes>,
    kernel_len: usize,
    /// Bytes the client sent that the hub has not taken yet (its input is
    /// paused), as in a socket's receive buffer.
    unsent: VecDeque<Bytes>,
    /// The hub paused this connection's input.
    paused: bool,
    /// The client ended its side of the stream.
    half_closed: bool,
    reading: bool,
    /// Reads at most this many bytes a second, if set.
    read_rate: Option<u64>,
    /// Bytes it may still read now, under its read rate.
    allowance: f64,
    /// The client's machine hangs: it neither reads, sends, nor keeps time.
    frozen: bool,
    connected: bool,
    /// The hub asked to close this connection.
    closing: bool,
    events: Vec<Event>,
}

impl Peer {
    /// The socket is gone: what was in flight is lost, and the client is
    /// told.
    fn cut(&mut self, now: Instant) {
        self.connected = false;
        self.inbox.clear();
        self.kernel.clear();
        self.kernel_len = 0;
        self.unsent.clear();
        self.client.disconnected(now);
        self.events
            .extend(std::iter::from_fn(|| self.client.poll_event()));
    }
}

/// Clients and a hub joined by in-memory pipes, with a simulated clock.
#[derive(Debug)]
pub struct Network {
    hub: Hub,
    peers: Vec<Peer>,
    by_conn: HashMap<ConnId, PeerId>,
    now: Instant,
    hub_events: Vec<HubEvent>,
    recording: bool,
    transcript: Vec<Wire>,
    /// Bytes a socket takes before its reader reads them.
    socket_buffer: usize,
    /// The history store, for durable history.
    store: MemoryStore,
    /// Records the hub emitted and the store has not applied yet.
    unstored: Vec<StoreRecord>,
    /// Whether records are applied at the end of every drain.
    auto_store: bool,
}

impl Network {
    /// A network with a hub and no clients; the clock starts at `now`.
    pub fn new(config: ServerConfig, now: Instant) -> Result<Network, ConfigError> {
        Ok(Network {
            hub: Hub::new(config)?,
            peers: Vec::new(),
            by_conn: HashMap::new(),
            now,
            hub_events: Vec::new(),
            recording: false,
            transcript: Vec::new(),
            socket_buffer: 64 << 10,
            store: MemoryStore::new(usize::MAX, usize::MAX),
            unstored: Vec::new(),
            auto_store: true,
        })
    }

    /// The history store (durable history): what the hub asked to store
    /// and the network applied.
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    /// Whether the network applies the hub's store records as they come
    /// (the default) or only on [`commit_store`](Self::commit_store).
    pub fn set_auto_store(&mut self, auto: bool) {
        self.auto_store = auto;
    }

    /// Applies the store records the hub emitted so far, reports them
    /// stored to the hub, and moves the bytes that follows.
    pub fn commit_store(&mut self) {
        self.apply_store();
        self.run();
    }

    fn apply_store(&mut self) {
        if self.unstored.is_empty() {
            return;
        }
        let records = std::mem::take(&mut self.unstored);
        let Ok(()) = self.store.apply(&records);
        let mut stored: Vec<(String, u64, u64)> = Vec::new();
        for record in &records {
            if let StoreRecord::Append {
                room,
                epoch,
                message,
            } = record
            {
                match stored.iter_mut().find(|(r, e, _)| r == room && e == epoch) {
                    Some(entry) => entry.2 = message.offset + 1,
                    None => stored.push((room.clone(), *epoch, message.offset + 1)),
                }
            }
        }
        for (room, epoch, next) in stored {
            self.hub.stored(self.now, &room, epoch, next);
        }
    }

    /// The server restarts: every connection is cut, the hub is replaced by
    /// a new one with `config`, restored from the store (the records not
    /// committed are lost, as in a crash). Clients that reconnect come back
    /// to the new hub.
    pub fn restart_hub(&mut self, config: ServerConfig) -> Result<(), ConfigError> {
        self.unstored.clear();
        let mut hub = Hub::new(config)?;
        let limit = hub.config().history.messages;
        let Ok(rooms) = self.store.load(limit);
        for room in &rooms {
            hub.restore(room).map_err(|_| ConfigError::Zero {
                field: "restorable history",
            })?;
        }
        for p in &mut self.peers {
            if p.connected {
                p.cut(self.now);
            }
        }
        self.by_conn.clear();
        self.hub = hub;
        self.run();
        Ok(())
    }

    /// The simulated time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The hub, to inspect.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Connects a new client; it is not logged in.
    pub fn connect(&mut self, config: ClientConfig) -> Result<PeerId, ConfigError> {
        self.connect_from(config, crate::Peer::default())
    }

    /// Connects a new client from the address (and over the kind of
    /// connection) `from` says; it is not logged in.
    pub fn connect_from(
        &mut self,
        config: ClientConfig,
        from: crate::Peer,
    ) -> Result<PeerId, ConfigError> {
        let client = Client::new(config, self.now)?;
        let conn = self.hub.accept_from(self.now, from);
        let id = PeerId(self.peers.len());
        self.peers.push(Peer {
            client,
            conn,
            inbox: VecDeque::new(),
            kernel: VecDeque::new(),
            kernel_len: 0,
            unsent: VecDeque::new(),
            paused: false,
            half_closed: false,
            reading: true,
            read_rate: None,
            allowance: 0.0,
            frozen: false,
            connected: true,
            closing: false,
            events: Vec::new(),
        });
        self.by_conn.insert(conn, id);
        self.drain_hub();
        Ok(id)
    }

    /// The client of `peer`, to call commands on; call [`run`](Self::run)
    /// afterwards to move the bytes.
    pub fn client(&mut self, peer: PeerId) -> &mut Client {
        &mut self.peers[peer.0].client
    }

    /// The hub's id for `peer`'s connection.
    pub fn conn(&self, peer: PeerId) -> ConnId {
        self.peers[peer.0].conn
    }

    /// Whether `peer`'s simulated socket is open (a reconnecting client is
    /// connected again once it opened a new one).
    pub fn is_connected(&self, peer: PeerId) -> bool {
        self.peers[peer.0].connected
    }

    /// Sets how many bytes a socket takes (and the hub sees written)
    /// before its client reads them, as a kernel's socket buffers would.
    /// Default 64 KiB.
    pub fn set_socket_buffer(&mut self, bytes: usize) {
        self.socket_buffer = bytes;
    }

    /// Makes `peer` stop (or resume) reading: bytes for it fill its socket
    /// buffer, then pile up unread and are not reported written, as with a
    /// client that stopped reading its socket.
    pub fn set_reading(&mut self, peer: PeerId, reading: bool) {
        self.peers[peer.0].reading = reading;
    }

    /// Makes `peer` read at most `bytes_per_second` (or without limit for
    /// `None`), as a client on a slow link would: bytes for it wait, and
    /// are reported written, as it reads them. Time then moves in steps of
    /// at most 10 ms in [`advance`](Self::advance).
    pub fn set_read_rate(&mut self, peer: PeerId, bytes_per_second: Option<u64>) {
        let p = &mut self.peers[peer.0];
        p.read_rate = bytes_per_second;
        p.allowance = 0.0;
    }

    /// Freezes `peer`'s machine: its client neither reads, sends, nor sees
    /// time pass, but its socket stays open, as with a host that hangs.
    pub fn freeze(&mut self, peer: PeerId) {
        self.peers[peer.0].frozen = true;
    }

    /// Sends raw bytes to the hub in `peer`'s name, bypassing its client,
    /// and moves bytes until nothing moves.
    pub fn send_raw(&mut self, peer: PeerId, bytes: &[u8]) {
        self.pass_to_hub(peer, Bytes::copy_from_slice(bytes));
        self.run();
    }

    /// Ends `peer`'s side of the stream, as `shutdown(SHUT_WR)` or `nc -N`
    /// would: it sends nothing more, but goes on reading.
    pub fn half_close(&mut self, peer: PeerId) {
        let p = &mut self.peers[peer.0];
        if !p.connected || p.half_closed {
            return;
        }
        p.half_closed = true;
        if p.unsent.is_empty() {
            self.hub.handle_eof(p.conn, self.now);
        }
        self.run();
    }

    /// Whether the hub has paused `peer`'s input.
    pub fn is_paused(&self, peer: PeerId) -> bool {
        self.peers[peer.0].paused
    }

    /// The hub, to act on as an application would ([`Hub::kick`],
    /// [`Hub::approve_login`], ...); call [`run`](Self::run) afterwards to
    /// move the bytes.
    pub fn hub_mut(&mut self) -> &mut Hub {
        &mut self.hub
    }

    /// Passes bytes from `peer` to the hub, or keeps them while the hub has
    /// paused its input.
    fn pass_to_hub(&mut self, peer: PeerId, bytes: Bytes) {
        let p = &mut self.peers[peer.0];
        // After its EOF a client sends nothing the hub would see.
        if !p.connected || p.half_closed {
            return;
        }
        if self.recording {
            self.transcript.push(Wire {
                at: self.now,
                peer,
                direction: Direction::ToServer,
                bytes: bytes.clone(),
            });
        }
        if p.paused || !p.unsent.is_empty() {
            p.unsent.push_back(bytes);
        } else {
            self.hub.handle_input(p.conn, self.now, &bytes);
        }
    }

    /// Drops `peer`'s socket, as a crash or a network failure would.
    pub fn disconnect(&mut self, peer: PeerId) {
        self.close_socket(peer);
        self.run();
    }

    /// Starts recording every byte that crosses the wire.
    pub fn record(&mut self) {
        self.recording = true;
    }

    /// What was recorded, in order.
    pub fn transcript(&self) -> &[Wire] {
        &self.transcript
    }

    /// Takes the events `peer`'s client emitted so far.
    pub fn take_events(&mut self, peer: PeerId) -> Vec<Event> {
        std::mem::take(&mut self.peers[peer.0].events)
    }

    /// What `peer` received since recording started
    /// ([`record`](Self::record)), as text (lossy if not UTF-8).
    pub fn received(&self, peer: PeerId) -> String {
        self.wire_text(peer, Direction::ToClient)
    }

    /// What `peer` sent since recording started, as text.
    pub fn sent(&self, peer: PeerId) -> String {
        self.wire_text(peer, Direction::ToServer)
    }

    fn wire_text(&self, peer: PeerId, direction: Direction) -> String {
        let bytes: Vec<u8> = self
            .transcript
            .iter()
            .filter(|w| w.peer == peer && w.direction == direction)
            .flat_map(|w| w.bytes.iter().copied())
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Takes the events the hub emitted so far.
    pub fn take_hub_events(&mut self) -> Vec<HubEvent> {
        std::mem::take(&mut self.hub_events)
    }

    /// Moves bytes both ways until nothing moves, at the current time.
    pub fn run(&mut self) {
        loop {
            let mut moved = false;
            for i in 0..self.peers.len() {
                moved |= self.flush_client(PeerId(i));
            }
            moved |= self.drain_hub();
            for i in 0..self.peers.len() {
                moved |= self.deliver(PeerId(i));
            }
            if !moved {
                return;
            }
        }
    }

    /// Lets `duration` pass, stopping at every deadline of the hub and the
    /// clients on the way, in order, and moving bytes after each.
    pub fn advance(&mut self, duration: Duration) {
        const STEP: Duration = Duration::from_millis(10);
        let target = self.now + duration;
        self.run();
        let rated = self.peers.iter().any(|p| p.read_rate.is_some());
        loop {
            let deadline = self.next_deadline().filter(|&t| t <= target);
            let next = match (deadline, rated) {
                (Some(d), true) => d.min(self.now + STEP),
                (Some(d), false) => d,
                (None, true) if self.now < target => (self.now + STEP).min(target),
                _ => break,
            };
            let next = next.max(self.now);
            let elapsed = next - self.now;
            self.now = next;
            for p in &mut self.peers {
                if let Some(rate) = p.read_rate {
                    let cap = (rate as f64 / 10.0).max(1.0);
                    p.allowance = (p.allowance + rate as f64 * elapsed.as_secs_f64()).min(cap);
                }
            }
            self.hub.handle_timeout(self.now);
            for p in self.peers.iter_mut().filter(|p| !p.frozen) {
                p.client.handle_timeout(self.now);
            }
            self.run();
            if rated && self.now >= target {
                break;
            }
        }
        self.now = target;
    }

    fn next_deadline(&self) -> Option<Instant> {
        let clients = self
            .peers
            .iter()
            .filter(|p| !p.frozen)
            .filter_map(|p| p.client.poll_timeout());
        clients.chain(self.hub.poll_timeout()).min()
    }

    /// Sends what `peer`'s client queued and collects its events.
    fn flush_client(&mut self, peer: PeerId) -> bool {
        let p = &mut self.peers[peer.0];
        let mut moved = false;
        if p.frozen {
            return false;
        }
        let mut sent = Vec::new();
        let (mut disconnect, mut connect) = (false, false);
        while let Some(output) = p.client.poll_output() {
            match output {
                ClientOutput::Transmit(bytes) if p.connected && !p.half_closed => {
                    sent.push(bytes);
                }
                ClientOutput::Transmit(_) => {}
                ClientOutput::Event(event) => p.events.push(event),
                // The client is done with this connection: its last bytes
                // go out, then the socket closes (an abort is the same here,
                // where writes never block).
                ClientOutput::Disconnect | ClientOutput::Abort => disconnect = true,
                ClientOutput::Connect => connect = true,
            }
        }
        for bytes in sent {
            self.pass_to_hub(peer, bytes);
            moved = true;
        }
        if disconnect && self.peers[peer.0].connected {
            self.close_socket(peer);
            moved = true;
        }
        if connect {
            self.reconnect(peer);
            moved = true;
        }
        moved
    }

    /// Opens a new connection for `peer`'s client, as its driver would.
    fn reconnect(&mut self, peer: PeerId) {
        let conn = self.hub.accept(self.now, None);
        let p = &mut self.peers[peer.0];
        p.conn = conn;
        p.connected = true;
        p.closing = false;
        p.paused = false;
        p.half_closed = false;
        p.inbox.clear();
        p.kernel.clear();
        p.kernel_len = 0;
        p.unsent.clear();
        p.client.connected(self.now);
        self.by_conn.insert(conn, peer);
        self.drain_hub();
    }

    /// Drains every output of the hub.
    fn drain_hub(&mut self) -> bool {
        let mut moved = false;
        let mut aborted = Vec::new();
        let mut resumed = Vec::new();
        while let Some(output) = self.hub.poll_output() {
            match output {
                Output::Transmit(t) => {
                    if let Some(&peer) = self.by_conn.get(&t.conn) {
                        self.peers[peer.0].inbox.extend(t.data);
                        moved = true;
                    }
                }
                Output::Close(conn) => {
                    if let Some(&peer) = self.by_conn.get(&conn) {
                        self.peers[peer.0].closing = true;
                        moved = true;
                    }
                }
                Output::Abort(conn) => {
                    if let Some(&peer) = self.by_conn.get(&conn) {
                        aborted.push(peer);
                    }
                }
                Output::PauseInput(conn) => {
                    if let Some(&peer) = self.by_conn.get(&conn) {
                        self.peers[peer.0].paused = true;
                    }
                }
                Output::ResumeInput(conn) => {
                    if let Some(&peer) = self.by_conn.get(&conn) {
                        self.peers[peer.0].paused = false;
                        resumed.push(peer);
                    }
                }
                Output::Event(event) => self.hub_events.push(event),
                Output::Store(record) => self.unstored.push(record),
            }
        }
        if self.auto_store && !self.unstored.is_empty() {
            self.apply_store();
            moved = true;
        }
        for peer in aborted {
            self.close_socket(peer);
            moved = true;
        }
        for peer in resumed {
            moved |= self.release_unsent(peer);
        }
        moved
    }

    /// Passes what `peer` sent while its input was paused, until it pauses
    /// again; then its EOF, if it half-closed.
    fn release_unsent(&mut self, peer: PeerId) -> bool {
        let mut moved = false;
        loop {
            let p = &mut self.peers[peer.0];
            if !p.connected || p.paused {
                return moved;
            }
            let Some(bytes) = p.unsent.pop_front() else {
                break;
            };
            let conn = p.conn;
            self.hub.handle_input(conn, self.now, &bytes);
            moved = true;
            self.drain_hub();
        }
        let p = &self.peers[peer.0];
        if p.half_closed && p.connected {
            let conn = p.conn;
            self.hub.handle_eof(conn, self.now);
            self.drain_hub();
            moved = true;
        }
        moved
    }

    /// Lets `peer`'s socket take what the hub sent, as far as its buffer
    /// goes (reported written at once), and its client read from it, if it
    /// reads (and as fast as its read rate allows).
    fn deliver(&mut self, peer: PeerId) -> bool {
        let buffer = self.socket_buffer;
        let p = &mut self.peers[peer.0];
        let mut moved = false;
        if !p.connected {
            return false;
        }
        loop {
            let mut step = false;
            // The kernel takes what fits.
            while let Some(mut bytes) = p.inbox.pop_front() {
                let room = buffer.saturating_sub(p.kernel_len);
                if room == 0 {
                    p.inbox.push_front(bytes);
                    break;
                }
                if bytes.len() > room {
                    let rest = bytes.split_off(room);
                    p.inbox.push_front(rest);
                }
                p.kernel_len += bytes.len();
                self.hub.written(p.conn, self.now, bytes.len());
                p.kernel.push_back(bytes);
                step = true;
            }
            // The client reads.
            if p.reading && !p.frozen {
                while let Some(mut bytes) = p.kernel.pop_front() {
                    if p.read_rate.is_some() {
                        let can = p.allowance as usize;
                        if can == 0 {
                            p.kernel.push_front(bytes);
                            break;
                        }
                        if bytes.len() > can {
                            let rest = bytes.split_off(can);
                            p.kernel.push_front(rest);
                        }
                        p.allowance -= bytes.len() as f64;
                    }
                    p.kernel_len -= bytes.len();
                    if self.recording {
                        self.transcript.push(Wire {
                            at: self.now,
                            peer,
                            direction: Direction::ToClient,
                            bytes: bytes.clone(),
                        });
                    }
                    p.client.handle_input(self.now, &bytes);
                    step = true;
                }
            }
            moved |= step;
            if !step {
                break;
            }
        }
        // A client the hub closed reads what it still can, then its socket
        // goes; one that stopped reading loses the rest.
        let stuck = !p.reading || p.frozen;
        let drained = p.inbox.is_empty() && p.kernel.is_empty();
        if p.closing && (drained || stuck) {
            p.inbox.clear();
            p.kernel.clear();
            p.kernel_len = 0;
            self.close_socket(peer);
            moved = true;
        }
        moved
    }

    /// Closes `peer`'s socket: both ends learn the connection is gone.
    fn close_socket(&mut self, peer: PeerId) {
        let p = &mut self.peers[peer.0];
        if !p.connected {
            return;
        }
        self.by_conn.remove(&p.conn);
        p.cut(self.now);
        self.hub.disconnected(p.conn, self.now);
        self.drain_hub();
    }
}
