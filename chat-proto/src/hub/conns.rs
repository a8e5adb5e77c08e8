//! The hub's connections: a slab of small records, addressed by [`ConnId`].
//!
//! Connection ids are slab indices with a generation. A slot is taken by
//! [`Hub::accept`](crate::Hub::accept) and given back only when the adapter
//! says the socket is gone ([`Hub::disconnected`](crate::Hub::disconnected)),
//! never earlier: while the adapter still flushes a connection the hub has
//! closed, its index is not handed to anyone else, so an adapter may keep its
//! own per-connection state in a `Vec` indexed by [`ConnId::index`] without a
//! second table. A stale id (an older generation of a slot) reaches nothing.
//!
//! Per connection the hub keeps about 250 bytes and no buffer while idle:
//! the decoder allocates only while a partial frame is pending, the output
//! queue only while frames wait for the adapter (see
//! [`output`](super::output)), and the input stash only while input is
//! paused.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;

use super::history::PendingResume;
use super::output::Outbound;
use super::rate::Bucket;
use super::rooms::RoomId;
use crate::decode::Decoder;
use crate::keepalive::Liveness;

/// Identifies one connection of a [`Hub`](crate::Hub).
///
/// [`index`](ConnId::index) is small and dense (a slab position, reused only
/// after the adapter reported the socket gone), so an adapter can keep its
/// own per-connection state in a `Vec` indexed by it;
/// [`generation`](ConnId::generation) tells successive users of one index
/// apart.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl ConnId {
    /// The slab position, below the number of sockets ever open at once.
    pub fn index(self) -> usize {
        self.index as usize
    }

    /// How many earlier connections used the same index.
    pub fn generation(self) -> u32 {
        self.generation
    }
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}.{}", self.index, self.generation)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// The slot is unused.
    Free,
    /// Accepted, not logged in.
    Anonymous,
    /// `iam:` received; the application decides (login mode
    /// `Application`). The name is reserved meanwhile.
    LoggingIn,
    /// Logged in: in the room.
    Member,
    /// The hub ended the connection; the socket is still open until the
    /// adapter reports it gone.
    Closing,
}

/// Why a connection's input is paused: a set of reasons, each a bit. Input
/// flows again once none is left.
pub(super) mod pause {
    /// A login waits for the application's decision.
    pub(crate) const LOGIN: u8 = 1;
    /// The rate limit: the next frame waits for a token.
    pub(crate) const RATE: u8 = 2;
    /// What the hub owes this connection privately (answers to its own
    /// requests) is above `pause_backlog`.
    pub(crate) const OWN: u8 = 4;
    /// A room this connection sent to holds more than `room_backlog` for
    /// its slowest readers.
    pub(crate) const ROOM: u8 = 8;
}

/// Capabilities a connection asked for, each a bit.
pub(super) mod caps {
    /// `rooms`: the default room in the room form, like any other room.
    pub(crate) const ROOMS: u8 = 1;
    /// `history`: history on join, and `resume:` (with `rooms`).
    pub(crate) const HISTORY: u8 = 2;
}

/// A connection's input side.
#[derive(Debug, Default)]
pub(super) struct Input {
    /// Reasons input is paused (see [`pause`]); zero when it flows.
    pub(super) paused: u8,
    /// Whether the adapter was last told to pause (so that a change of
    /// reasons does not repeat the order).
    pub(super) reported_paused: bool,
    /// Whether a change of `paused` waits to be reported.
    pub(super) toggle_queued: bool,
    /// Bytes received and not yet decoded: what arrived while input was
    /// paused. Empty and unallocated otherwise.
    pub(super) stash: BytesMut,
    /// The peer ended its side of the stream (EOF): nothing more comes.
    pub(super) eof: bool,
}

/// A connection the hub ended, whose socket the adapter still holds.
#[derive(Debug, Clone, Copy)]
pub(super) struct Closing {
    /// When the adapter should be done flushing; past it the hub asks for
    /// an abort.
    pub(super) deadline: Instant,
    /// Whether the abort was asked for.
    pub(super) aborted: bool,
}

/// One connection's state.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) generation: u32,
    pub(super) phase: Phase,
    pub(super) decoder: Decoder,
    pub(super) liveness: Liveness,
    pub(super) accepted: Instant,
    /// The peer's address, if the adapter gave one.
    pub(super) peer: Option<IpAddr>,
    /// Whether the connection is encrypted (the adapter said so).
    pub(super) secure: bool,
    /// Whether it counts against its address's connection limit.
    pub(super) counted: bool,
    /// Whether the login the application is deciding carried a secret.
    pub(super) login_secret: bool,
    /// The deadline of this connection's entry in the timer heap.
    pub(super) timer_at: Option<Instant>,
    /// The name it logs in (or logged in) with, while `LoggingIn` or
    /// `Member`.
    pub(super) name: Option<Arc<str>>,
    /// The rooms it is in, each with its position in the room's member
    /// list.
    pub(super) rooms: Vec<(RoomId, u32)>,
    /// Capabilities asked for (see [`caps`]).
    pub(super) caps: u8,
    /// `resume:` frames received before login, applied at login.
    pub(super) resumes: Vec<PendingResume>,
    pub(super) out: Outbound,
    pub(super) input: Input,
    pub(super) bucket: Option<Bucket>,
    /// While paused by the rate limit: when the next token is due.
    pub(super) rate_until: Option<Instant>,
    /// The rooms whose backlog paused its input.
    pub(super) paused_by: Vec<RoomId>,
    /// When its output last made progress (or became pending).
    pub(super) progress_at: Instant,
    /// The deadline of its write-timeout entry in the timer heap.
    pub(super) write_timer_at: Option<Instant>,
    /// Set once the hub ended the connection.
    pub(super) closing: Option<Closing>,
    /// Ended, and its `Close` waits for the queued output to be handed
    /// out.
    pub(super) close_pending: bool,
}

impl Conn {
    /// Whether the connection is open for the protocol: accepted, not
    /// ended by the hub.
    pub(super) fn is_active(&self) -> bool {
        matches!(
            self.phase,
            Phase::Anonymous | Phase::LoggingIn | Phase::Member
        )
    }
}

/// The slab of connections.
#[derive(Debug, Default)]
pub(super) struct Conns {
    slots: Vec<Conn>,
    free: Vec<u32>,
    /// Connections in `Anonymous`, `LoggingIn` or `Member`.
    active: usize,
    /// Slots in use: active, or closing with the socket still open.
    in_use: usize,
}

impl Conns {
    /// Takes a free slot (or a new one) for a connection accepted at `now`.
    pub(super) fn alloc(
        &mut self,
        now: Instant,
        peer: super::Peer,
        max_frame_len: usize,
        bucket: Option<Bucket>,
    ) -> ConnId {
        let fresh = |generation| Conn {
            generation,
            phase: Phase::Anonymous,
            decoder: Decoder::new(max_frame_len),
            liveness: Liveness::new(now),
            accepted: now,
            peer: peer.addr,
            secure: peer.secure,
            counted: false,
            login_secret: false,
            timer_at: None,
            name: None,
            rooms: Vec::new(),
            caps: 0,
            resumes: Vec::new(),
            out: Outbound::default(),
            input: Input::default(),
            bucket,
            rate_until: None,
            paused_by: Vec::new(),
            progress_at: now,
            write_timer_at: None,
            closing: None,
            close_pending: false,
        };
        self.active += 1;
        self.in_use += 1;
        match self.free.pop() {
            Some(index) => {
                let slot = &mut self.slots[index as usize];
                *slot = fresh(slot.generation.wrapping_add(1));
                ConnId {
                    index,
                    generation: slot.generation,
                }
            }
            None => {
                let index = u32::try_from(self.slots.len()).expect("fewer than 2^32 connections");
                self.slots.push(fresh(0));
                ConnId {
                    index,
                    generation: 0,
                }
            }
        }
    }

    /// The connection `id` names, unless its slot was given back.
    pub(super) fn get(&self, id: ConnId) -> Option<&Conn> {
        self.slots
            .get(id.index as usize)
            .filter(|c| c.generation == id.generation && c.phase != Phase::Free)
    }

    /// The connection `id` names, unless its slot was given back.
    pub(super) fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.slots
            .get_mut(id.index as usize)
            .filter(|c| c.generation == id.generation && c.phase != Phase::Free)
    }

    /// The connection in slot `index`; the caller knows it is in use.
    pub(super) fn slot(&mut self, index: u32) -> &mut Conn {
        &mut self.slots[index as usize]
    }

    /// The id of the connection in slot `index`.
    pub(super) fn id(&self, index: u32) -> ConnId {
        ConnId {
            index,
            generation: self.slots[index as usize].generation,
        }
    }

    /// Connections accepted and not ended by the hub.
    pub(super) fn active(&self) -> usize {
        self.active
    }

    /// Slots in use: connections whose socket the adapter still holds.
    pub(super) fn in_use(&self) -> usize {
        self.in_use
    }

    /// Every slot in use, with its id.
    pub(super) fn iter(&self) -> impl Iterator<Item = (ConnId, &Conn)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, c)| c.phase != Phase::Free)
            .map(|(i, c)| {
                let index = i as u32;
                (
                    ConnId {
                        index,
                        generation: c.generation,
                    },
                    c,
                )
            })
    }

    /// Marks slot `index` as ended by the hub, its socket to be closed by
    /// `deadline`. Input is over: the decoder and stash are dropped.
    pub(super) fn set_closing(&mut self, index: u32, deadline: Instant) {
        let conn = &mut self.slots[index as usize];
        debug_assert!(conn.is_active());
        conn.phase = Phase::Closing;
        conn.name = None;
        conn.decoder = Decoder::new(conn.decoder.max_frame_len());
        conn.input.stash = BytesMut::new();
        conn.rate_until = None;
        conn.closing = Some(Closing {
            deadline,
            aborted: false,
        });
        self.active -= 1;
    }

    /// Gives slot `index` back: the socket is gone. Drops anything queued.
    pub(super) fn free(&mut self, index: u32) {
        let conn = &mut self.slots[index as usize];
        debug_assert!(conn.phase != Phase::Free);
        if conn.is_active() {
            self.active -= 1;
        }
        self.in_use -= 1;
        let max_frame_len = conn.decoder.max_frame_len();
        let generation = conn.generation;
        let accepted = conn.accepted;
        *conn = Conn {
            generation,
            phase: Phase::Free,
            decoder: Decoder::new(max_frame_len),
            liveness: Liveness::new(accepted),
            accepted,
            peer: None,
            secure: false,
            counted: false,
            login_secret: false,
            timer_at: None,
            name: None,
            rooms: Vec::new(),
            caps: 0,
            resumes: Vec::new(),
            out: Outbound::default(),
            input: Input::default(),
            bucket: None,
            rate_until: None,
            paused_by: Vec::new(),
            progress_at: accepted,
            write_timer_at: None,
            closing: None,
            close_pending: false,
        };
        self.free.push(index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_slot_is_reused_only_after_it_is_freed_and_stale_ids_miss() {
        let now = Instant::now();
        let mut conns = Conns::default();
        let a = conns.alloc(now, crate::Peer::default(), 4096, None);
        let b = conns.alloc(now, crate::Peer::default(), 4096, None);
        assert_eq!((a.index(), b.index()), (0, 1));
        assert_eq!((conns.active(), conns.in_use()), (2, 2));
        // Ended by the hub: no longer active, but the slot is still held.
        conns.set_closing(a.index, now + Duration::from_secs(2));
        assert_eq!((conns.active(), conns.in_use()), (1, 2));
        assert!(conns.get(a).is_some());
        let c = conns.alloc(now, crate::Peer::default(), 4096, None);
        assert_eq!(c.index(), 2, "a closing slot is not reused");
        // The socket is gone: now the slot may serve another connection.
        conns.free(a.index);
        assert!(conns.get(a).is_none());
        let d = conns.alloc(now, crate::Peer::default(), 4096, None);
        assert_eq!(d.index(), 0);
        assert_eq!(d.generation(), 1);
        assert!(conns.get(a).is_none());
        assert!(conns.get(d).is_some());
        assert_eq!(format!("{d}"), "conn#0.1");
        assert_eq!(conns.iter().count(), 3);
    }
}
