//! Room history as stores see it: what the hub asks a store to keep, what a
//! store gives back to restore a hub, and the interface every store
//! implements.
//!
//! The hub keeps each room's recent history itself, in memory (see
//! [`History`](crate::History)): that is what `resume:` and history on join
//! read. A store is for surviving a restart. With
//! [`History::durable`](crate::History::durable) the hub emits a
//! [`StoreRecord`] for every message ([`Output::Store`](crate::Output::Store))
//! and hands a message out only once the application reports it stored
//! ([`Hub::stored`](crate::Hub::stored)); at startup the application loads
//! every room's history from the store and gives it to
//! [`Hub::restore`](crate::Hub::restore), so rooms keep their epoch and
//! offsets and clients resume across the restart.
//!
//! A position in a room is an epoch (which log) and an offset (which
//! message in it). Other stores map onto it: a Redis stream per room gives
//! the epoch (a random id stored with the stream, replaced when the stream
//! is lost) and keeps the offset as a field of each entry, the stream's own
//! ids staying internal; an SQL table keys rows by `(room, epoch, offset)`.
//!
//! [`MemoryStore`] implements [`HistoryStore`] in memory, bounded by count
//! and bytes per room: for tests, and for embedders that restart a hub in
//! the same process.

use std::collections::{BTreeMap, VecDeque};

/// One message as a store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its position in the room's log.
    pub offset: u64,
    /// Who said it.
    pub from: String,
    /// What was said.
    pub text: String,
}

/// What the hub asks a store to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreRecord {
    /// Keep `message`, the next of `room`'s log `epoch`. A new epoch for a
    /// room replaces what the store held for it.
    Append {
        /// The room.
        room: String,
        /// The room's log.
        epoch: u64,
        /// The message.
        message: StoredMessage,
    },
    /// The room is gone with its history (it was idle and room was needed
    /// for another): forget it.
    Forget {
        /// The room.
        room: String,
        /// The log that is gone.
        epoch: u64,
    },
}

/// A room's history as a store gives it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomHistory {
    /// The room's name.
    pub room: String,
    /// Its log.
    pub epoch: u64,
    /// The offset its next message gets.
    pub next: u64,
    /// Its most recent messages, in offset order, ending at `next - 1`
    /// (with no offset missing between them).
    pub messages: Vec<StoredMessage>,
}

/// A place that keeps room history across restarts.
///
/// The hub never calls a store: the application (or the transport) does,
/// with the hub's [`StoreRecord`]s, and reports back with
/// [`Hub::stored`](crate::Hub::stored). A store may batch: `apply` takes
/// every record of a drain at once, so one sync covers them all.
pub trait HistoryStore {
    /// Why an operation failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Applies `records` in order. When it returns `Ok`, they are stored as
    /// durably as the store promises (its sync policy).
    fn apply(&mut self, records: &[StoreRecord]) -> Result<(), Self::Error>;

    /// Every room's history, at most `limit` messages each (the most
    /// recent).
    fn load(&mut self, limit: usize) -> Result<Vec<RoomHistory>, Self::Error>;
}

/// A store in memory: per room, the last `messages` messages, at most
/// `bytes` of text and names.
///
/// ```
/// use chat_proto::history::{HistoryStore, MemoryStore, StoreRecord, StoredMessage};
///
/// let mut store = MemoryStore::new(2, 1 << 20);
/// let say = |offset: u64, text: &str| StoreRecord::Append {
///     room: "lobby".into(),
///     epoch: 7,
///     message: StoredMessage { offset, from: "ann".into(), text: text.into() },
/// };
/// store.apply(&[say(0, "a"), say(1, "b"), say(2, "c")])?;
/// let rooms = store.load(10)?;
/// assert_eq!((rooms[0].epoch, rooms[0].next), (7, 3));
/// let texts: Vec<&str> = rooms[0].messages.iter().map(|m| m.text.as_str()).collect();
/// assert_eq!(texts, ["b", "c"]);
/// # Ok::<(), std::convert::Infallible>(())
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    rooms: BTreeMap<String, Kept>,
    messages: usize,
    bytes: usize,
}

#[derive(Debug)]
struct Kept {
    epoch: u64,
    next: u64,
    messages: VecDeque<StoredMessage>,
    bytes: usize,
}

impl MemoryStore {
    /// A store keeping `messages` messages and `bytes` bytes per room.
    pub fn new(messages: usize, bytes: usize) -> MemoryStore {
        MemoryStore {
            rooms: BTreeMap::new(),
            messages,
            bytes,
        }
    }
}

fn size(m: &StoredMessage) -> usize {
    m.from.len() + m.text.len() + 8
}

impl HistoryStore for MemoryStore {
    type Error = std::convert::Infallible;

    fn apply(&mut self, records: &[StoreRecord]) -> Result<(), Self::Error> {
        for record in records {
            match record {
                StoreRecord::Append {
                    room,
                    epoch,
                    message,
                } => {
                    let kept = self.rooms.entry(room.clone()).or_insert(Kept {
                        epoch: *epoch,
                        next: message.offset,
                        messages: VecDeque::new(),
                        bytes: 0,
                    });
                    if kept.epoch != *epoch || kept.next != message.offset {
                        // A new log, or a hole: what was kept no longer
                        // leads up to this message.
                        kept.epoch = *epoch;
                        kept.messages.clear();
                        kept.bytes = 0;
                    }
                    kept.next = message.offset + 1;
                    kept.bytes += size(message);
                    kept.messages.push_back(message.clone());
                    while kept.messages.len() > self.messages || kept.bytes > self.bytes {
                        let Some(old) = kept.messages.pop_front() else {
                            break;
                        };
                        kept.bytes -= size(&old);
                    }
                }
                StoreRecord::Forget { room, epoch } => {
                    if self.rooms.get(room).is_some_and(|k| k.epoch == *epoch) {
                        self.rooms.remove(room);
                    }
                }
            }
        }
        Ok(())
    }

    fn load(&mut self, limit: usize) -> Result<Vec<RoomHistory>, Self::Error> {
        Ok(self
            .rooms
            .iter()
            .map(|(room, kept)| {
                let skip = kept.messages.len().saturating_sub(limit);
                RoomHistory {
                    room: room.clone(),
                    epoch: kept.epoch,
                    next: kept.next,
                    messages: kept.messages.iter().skip(skip).cloned().collect(),
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(room: &str, epoch: u64, offset: u64) -> StoreRecord {
        StoreRecord::Append {
            room: room.into(),
            epoch,
            message: StoredMessage {
                offset,
                from: "a".into(),
                text: format!("m{offset}"),
            },
        }
    }

    #[test]
    fn a_new_epoch_or_a_hole_starts_the_room_over_and_forget_drops_it() {
        let mut store = MemoryStore::new(100, 1 << 20);
        store
            .apply(&[append("r", 1, 0), append("r", 1, 1), append("s", 5, 9)])
            .unwrap();
        store.apply(&[append("r", 2, 0)]).unwrap();
        let rooms = store.load(100).unwrap();
        assert_eq!(rooms[0].room, "r");
        assert_eq!((rooms[0].epoch, rooms[0].messages.len()), (2, 1));
        assert_eq!((rooms[1].next, rooms[1].messages[0].offset), (10, 9));
        store.apply(&[append("s", 5, 12)]).unwrap();
        assert_eq!(store.load(100).unwrap()[1].messages.len(), 1);
        // Forgetting another epoch does nothing.
        store
            .apply(&[
                StoreRecord::Forget {
                    room: "r".into(),
                    epoch: 1,
                },
                StoreRecord::Forget {
                    room: "s".into(),
                    epoch: 5,
                },
            ])
            .unwrap();
        let rooms = store.load(100).unwrap();
        assert_eq!(rooms.len(), 1);
        assert_eq!(rooms[0].room, "r");
    }

    #[test]
    fn bytes_bound_the_room_too() {
        let mut store = MemoryStore::new(100, 30);
        let records: Vec<_> = (0..10).map(|o| append("r", 1, o)).collect();
        store.apply(&records).unwrap();
        let kept = &store.load(100).unwrap()[0];
        assert_eq!(kept.messages.len(), 2, "11 bytes each");
        assert_eq!(kept.messages[1].offset, 9);
        assert_eq!(store.load(1).unwrap()[0].messages.len(), 1);
    }
}
