//! Compares three embedded databases as the home of chat history: redb,
//! fjall and SQLite (rusqlite, bundled), and measures chat-store's own
//! `SqliteStore` (the store `chat serve --data-dir` uses) on the same
//! work. Each gets the work chat-store does: batches of appended messages spread over rooms, one
//! transaction per batch, synced to disk before the batch counts as
//! stored, with each room pruned to its last `KEEP` messages in the same
//! transaction. Every room is filled to `KEEP` first, so pruning is always
//! on. Prints messages per second and the p50/p99 time of a batch commit.
//!
//! ```text
//! cargo run --release --manifest-path chat-store/compare/Cargo.toml -- [DIR]
//! cargo build --release --manifest-path chat-store/compare/Cargo.toml \
//!     --no-default-features --features redb   # one database, for build time
//! ```
//!
//! DIR (default: a folder under the system's temporary folder) must be on
//! the disk to measure: a tmpfs makes every sync free.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Messages kept per room.
const KEEP: u64 = 1000;
/// Rooms the messages are spread over.
const ROOMS: u64 = 10;

/// One message as the hub hands it to the store.
struct Msg {
    room: String,
    offset: u64,
    from: String,
    text: String,
}

/// What each database implements: one synced transaction per batch.
trait Backend {
    fn name(&self) -> &'static str;
    fn apply(&mut self, epoch: u64, batch: &[Msg]);
}

/// The message texts: about 60 bytes, like chat lines.
fn message(i: u64) -> Msg {
    Msg {
        room: format!("room{}", i % ROOMS),
        offset: i / ROOMS,
        from: format!("user{}", i % 97),
        text: format!("message number {i} with some words to make it chat sized"),
    }
}

/// Per room, the next offset after `batch` and the first offset to keep.
fn heads(batch: &[Msg]) -> Vec<(&str, u64, u64)> {
    let mut heads: Vec<(&str, u64, u64)> = Vec::new();
    for m in batch {
        let next = m.offset + 1;
        match heads.iter_mut().find(|(r, _, _)| *r == m.room) {
            Some(h) => h.1 = next,
            None => heads.push((&m.room, next, 0)),
        }
    }
    for h in &mut heads {
        h.2 = h.1.saturating_sub(KEEP);
    }
    heads
}

#[cfg(feature = "redb")]
mod with_redb {
    use redb::{Database, Durability, TableDefinition};

    const MESSAGES: TableDefinition<'_, (&str, u64), (&str, &str)> =
        TableDefinition::new("messages");
    const ROOMS: TableDefinition<'_, &str, (u64, u64)> = TableDefinition::new("rooms");

    pub(crate) struct Redb(Database);

    impl Redb {
        pub(crate) fn open(path: &std::path::Path) -> Redb {
            Redb(Database::create(path.join("history.redb")).expect("redb"))
        }
    }

    impl super::Backend for Redb {
        fn name(&self) -> &'static str {
            "redb"
        }

        fn apply(&mut self, epoch: u64, batch: &[super::Msg]) {
            let mut tx = self.0.begin_write().expect("begin");
            tx.set_durability(Durability::Immediate);
            {
                let mut messages = tx.open_table(MESSAGES).expect("table");
                let mut rooms = tx.open_table(ROOMS).expect("table");
                for m in batch {
                    messages
                        .insert((m.room.as_str(), m.offset), (m.from.as_str(), m.text.as_str()))
                        .expect("insert");
                }
                for (room, next, keep_from) in super::heads(batch) {
                    rooms.insert(room, (epoch, next)).expect("insert");
                    messages
                        .retain_in((room, 0)..(room, keep_from), |_, _| false)
                        .expect("prune");
                }
            }
            tx.commit().expect("commit");
        }
    }
}

#[cfg(feature = "fjall")]
mod with_fjall {
    use fjall::{Config, Keyspace, PartitionCreateOptions, PartitionHandle, PersistMode};

    pub(crate) struct Fjall {
        keyspace: Keyspace,
        messages: PartitionHandle,
        rooms: PartitionHandle,
    }

    impl Fjall {
        pub(crate) fn open(path: &std::path::Path) -> Fjall {
            let keyspace = Config::new(path.join("history.fjall")).open().expect("fjall");
            let messages = keyspace
                .open_partition("messages", PartitionCreateOptions::default())
                .expect("partition");
            let rooms = keyspace
                .open_partition("rooms", PartitionCreateOptions::default())
                .expect("partition");
            Fjall {
                keyspace,
                messages,
                rooms,
            }
        }
    }

    fn key(room: &str, offset: u64) -> Vec<u8> {
        let mut key = Vec::with_capacity(room.len() + 9);
        key.extend_from_slice(room.as_bytes());
        key.push(0);
        key.extend_from_slice(&offset.to_be_bytes());
        key
    }

    impl super::Backend for Fjall {
        fn name(&self) -> &'static str {
            "fjall"
        }

        fn apply(&mut self, epoch: u64, batch: &[super::Msg]) {
            let mut b = self
                .keyspace
                .batch()
                .durability(Some(PersistMode::SyncAll));
            for m in batch {
                let mut value = Vec::with_capacity(m.from.len() + m.text.len() + 1);
                value.extend_from_slice(m.from.as_bytes());
                value.push(0);
                value.extend_from_slice(m.text.as_bytes());
                b.insert(&self.messages, key(&m.room, m.offset), value);
            }
            for (room, next, keep_from) in super::heads(batch) {
                let mut head = epoch.to_be_bytes().to_vec();
                head.extend_from_slice(&next.to_be_bytes());
                b.insert(&self.rooms, room.as_bytes(), head);
                // An LSM tree has no cheap range delete: read the keys to
                // drop, then write a tombstone for each.
                for kv in self.messages.range(key(room, 0)..key(room, keep_from)) {
                    b.remove(&self.messages, kv.expect("key").0);
                }
            }
            b.commit().expect("commit");
        }
    }
}

#[cfg(feature = "sqlite")]
mod with_sqlite {
    use rusqlite::{Connection, params};

    pub(crate) struct Sqlite(Connection);

    impl Sqlite {
        pub(crate) fn open(path: &std::path::Path) -> Sqlite {
            let conn = Connection::open(path.join("history.sqlite")).expect("sqlite");
            conn.execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = FULL;
                 CREATE TABLE IF NOT EXISTS rooms (
                     room TEXT PRIMARY KEY, epoch INTEGER NOT NULL, next INTEGER NOT NULL);
                 CREATE TABLE IF NOT EXISTS messages (
                     room TEXT NOT NULL, offset INTEGER NOT NULL,
                     sender TEXT NOT NULL, text TEXT NOT NULL,
                     PRIMARY KEY (room, offset)) WITHOUT ROWID;",
            )
            .expect("schema");
            Sqlite(conn)
        }
    }

    impl super::Backend for Sqlite {
        fn name(&self) -> &'static str {
            "sqlite"
        }

        fn apply(&mut self, epoch: u64, batch: &[super::Msg]) {
            let tx = self.0.transaction().expect("begin");
            {
                let mut insert = tx
                    .prepare_cached("INSERT OR REPLACE INTO messages VALUES (?1, ?2, ?3, ?4)")
                    .expect("prepare");
                for m in batch {
                    insert
                        .execute(params![m.room, m.offset as i64, m.from, m.text])
                        .expect("insert");
                }
                let mut room = tx
                    .prepare_cached("INSERT OR REPLACE INTO rooms VALUES (?1, ?2, ?3)")
                    .expect("prepare");
                let mut prune = tx
                    .prepare_cached("DELETE FROM messages WHERE room = ?1 AND offset < ?2")
                    .expect("prepare");
                for (name, next, keep_from) in super::heads(batch) {
                    room.execute(params![name, epoch as i64, next as i64])
                        .expect("room");
                    prune.execute(params![name, keep_from as i64]).expect("prune");
                }
            }
            tx.commit().expect("commit");
        }
    }
}

#[cfg(feature = "chat-store")]
mod with_chat_store {
    use chat_proto::history::{HistoryStore, StoreRecord, StoredMessage};
    use chat_store::SqliteStore;

    pub(crate) struct ChatStore(SqliteStore);

    impl ChatStore {
        pub(crate) fn open(path: &std::path::Path) -> ChatStore {
            ChatStore(SqliteStore::open(path, super::KEEP as usize).expect("chat-store"))
        }
    }

    impl super::Backend for ChatStore {
        fn name(&self) -> &'static str {
            "chat-store"
        }

        fn apply(&mut self, epoch: u64, batch: &[super::Msg]) {
            let records: Vec<StoreRecord> = batch
                .iter()
                .map(|m| StoreRecord::Append {
                    room: m.room.clone(),
                    epoch,
                    message: StoredMessage {
                        offset: m.offset,
                        from: m.from.clone(),
                        text: m.text.clone(),
                    },
                })
                .collect();
            self.0.apply(&records).expect("apply");
        }
    }
}

/// Fills every room to `KEEP`, then times `batches` batches of `size`.
fn run(backend: &mut dyn Backend, size: usize, batches: usize) {
    let mut i = 0u64;
    let fill: Vec<Msg> = (0..ROOMS * KEEP)
        .map(|_| {
            i += 1;
            message(i - 1)
        })
        .collect();
    for chunk in fill.chunks(1000) {
        backend.apply(1, chunk);
    }
    let mut latencies = Vec::with_capacity(batches);
    let started = Instant::now();
    for _ in 0..batches {
        let batch: Vec<Msg> = (0..size)
            .map(|_| {
                i += 1;
                message(i - 1)
            })
            .collect();
        let t = Instant::now();
        backend.apply(1, &batch);
        latencies.push(t.elapsed());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    let rate = (size * batches) as f64 / elapsed.as_secs_f64();
    println!(
        "{:<7} batch {:>4}  {:>9.0} msg/s  commit p50 {:>7.2} ms  p99 {:>7.2} ms",
        backend.name(),
        size,
        rate,
        ms(at(0.5)),
        ms(at(0.99)),
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn fresh(base: &Path, name: &str) -> PathBuf {
    let dir = base.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the folder");
    dir
}

fn main() {
    let base = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("chat-store-compare"));
    for (size, batches) in [(1, 300), (16, 200), (256, 60), (1024, 20)] {
        #[cfg(feature = "redb")]
        run(
            &mut with_redb::Redb::open(&fresh(&base, "redb")),
            size,
            batches,
        );
        #[cfg(feature = "fjall")]
        run(
            &mut with_fjall::Fjall::open(&fresh(&base, "fjall")),
            size,
            batches,
        );
        #[cfg(feature = "sqlite")]
        run(
            &mut with_sqlite::Sqlite::open(&fresh(&base, "sqlite")),
            size,
            batches,
        );
        #[cfg(feature = "chat-store")]
        run(
            &mut with_chat_store::ChatStore::open(&fresh(&base, "chat-store")),
            size,
            batches,
        );
    }
    let _ = std::fs::remove_dir_all(&base);
}
