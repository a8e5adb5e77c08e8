//! Durable chat history on disk: [`SqliteStore`], a
//! [`HistoryStore`](chat_proto::history::HistoryStore) in one SQLite file,
//! for `chat serve --data-dir DIR`.
//!
//! The hub keeps each room's recent history in memory; this store is what
//! makes it survive a restart, with the same epoch and offsets, so clients
//! resume across it without a gap. The transports drive it off their event
//! loop (`transport_common`'s store worker): every batch of records from
//! the hub is one call to `apply`, and the hub hands a message out only
//! after that call has returned.
//!
//! # Sync policy
//!
//! Group commit: every `apply` is one SQLite transaction, and it is on disk
//! (`fsync`ed) when `apply` returns. The database is in WAL mode with
//! `synchronous = FULL`, so a commit appends the batch to the write-ahead
//! log and syncs the log; checkpoints (copying the log into the database)
//! happen now and then, and are synced too. A batch is everything the hub
//! emitted while the store was busy with the previous one, so under load
//! one sync covers hundreds of messages, and when idle a message waits for
//! one sync only (a few milliseconds on an ordinary SSD). The WAL is
//! checkpointed into the database every 1,000 pages (SQLite's default),
//! on the same thread, so such a commit takes longer. Since the hub
//! echoes a message to its sender only once it is stored, every message a
//! sender saw echoed survives a crash of the process *and* of the machine
//! (the disk honouring its flushes); a message not yet committed was seen
//! by nobody and is simply lost.
//!
//! The file is opened in SQLite's exclusive locking mode: a second server
//! on the same folder is refused at startup ([`StoreError::InUse`]) rather
//! than interleaving its writes. The lock is the operating system's, so a
//! killed server leaves none behind.
//!
//! # What is kept
//!
//! Per room: its epoch, the offset its next message gets, and its last
//! `keep` messages (`History::messages`; older ones are deleted in the
//! same transaction that adds new ones). A room the hub forgets
//! (`StoreRecord::Forget`) is deleted with its messages. At startup,
//! [`load`](chat_proto::history::HistoryStore::load) gives every room's
//! tail, which the hub restores (further bounded by the history's bytes).
//! Epochs and offsets are `u64`s stored bit for bit in SQLite's signed
//! 64-bit integers.
//!
//! # Why SQLite
//!
//! Three well-kept embedded databases were compared on the work this store
//! does (batches of appends spread over rooms, a sync per batch, pruning
//! to 1,000 messages a room): redb 2.6 (pure Rust B-tree, copy-on-write
//! commits), fjall 2.11 (pure Rust LSM tree with a journal) and SQLite
//! (rusqlite 0.40, bundled: SQLite compiled from its C source). The
//! harness is `chat-store/compare`, outside the workspace; BENCHMARKS.md
//! has the command and the figures.
//!
//! * Throughput: with one message per batch all three are bound by the
//!   disk's sync. With the batches group commit makes under load (256
//!   messages), SQLite's WAL commit took 1.8 to 2 times as many messages a
//!   second as either other with a slow sync (27,000 against 15,000 for
//!   redb and 13,000 for fjall), and 3.7 to 6 times with a fast one
//!   (336,000 against 56,000 and 90,000). An LSM tree has no cheap range
//!   delete, so fjall's pruning reads the keys it deletes; redb copies the
//!   B-tree pages it changes at every commit.
//! * Crash safety: all three promise durable commits when asked to sync.
//!   SQLite's atomic commit is the most tested of any embedded database
//!   (crash and power-loss simulations in its own test suite, decades of
//!   use on phones), and its file format is stable and readable with the
//!   `sqlite3` shell, which helps an operator after an incident. redb and
//!   fjall are younger, and their current major versions (redb 3 and 4,
//!   fjall 3) need a newer Rust than this workspace's 1.88, so a store on
//!   them would start a major version behind (rusqlite's newest, 0.43,
//!   needs Rust 1.89 too, but SQLite's file format does not change with
//!   the binding's version).
//! * Weight: redb is the lightest (3 crates, +1.0 MiB of binary), SQLite
//!   next (10 crates, most of them `cc` and its helpers for building the C
//!   source; +2.0 MiB), fjall the heaviest (50 crates, +1.3 MiB). SQLite's
//!   C source is the longest build (under 5 minutes on a busy 2-core
//!   machine, against 1.5 for redb and 2.5 for fjall; once).
//!
//! SQLite wins on the two that matter at run time; its build cost is paid
//! once, and only by those who build `chat`: this crate is separate, and
//! no transport depends on it, so a library user of the transports never
//! compiles a database.
//!
//! ```
//! use chat_proto::history::{HistoryStore, StoreRecord, StoredMessage};
//! use chat_store::SqliteStore;
//!
//! let dir = tempfile::tempdir()?;
//! let say = |offset: u64, text: &str| StoreRecord::Append {
//!     room: "lobby".into(),
//!     epoch: 7,
//!     message: StoredMessage { offset, from: "ann".into(), text: text.into() },
//! };
//! {
//!     let mut store = SqliteStore::open(dir.path(), 2)?;
//!     store.apply(&[say(0, "a"), say(1, "b"), say(2, "c")])?;
//! }
//! // Another run of the server, on the same folder.
//! let mut store = SqliteStore::open(dir.path(), 2)?;
//! let rooms = store.load(10)?;
//! assert_eq!((rooms[0].epoch, rooms[0].next), (7, 3));
//! let texts: Vec<&str> = rooms[0].messages.iter().map(|m| m.text.as_str()).collect();
//! assert_eq!(texts, ["b", "c"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod sqlite;

pub use sqlite::{SqliteStore, StoreError};
