//! The store itself: two tables in one SQLite file, written one
//! transaction per batch of the hub's records.
//!
//! `rooms (room, epoch, next)` holds each room's log and the offset its
//! next message gets; `messages (room, offset, sender, text)` its kept
//! tail, keyed by room and offset (a clustered key, so a room's tail is one
//! range of the B-tree and pruning is a range delete). The store keeps a
//! copy of the `rooms` table in memory, so that checking whether a message
//! continues its room's log costs no query.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chat_proto::history::{HistoryStore, RoomHistory, StoreRecord, StoredMessage};
use rusqlite::{Connection, ErrorCode, TransactionBehavior, params};

/// The schema version this crate writes (SQLite's `user_version`).
const SCHEMA: i64 = 1;

const CREATE: &str = "
    CREATE TABLE IF NOT EXISTS rooms (
        room  TEXT PRIMARY KEY,
        epoch INTEGER NOT NULL,
        next  INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS messages (
        room   TEXT NOT NULL,
        offset INTEGER NOT NULL,
        sender TEXT NOT NULL,
        text   TEXT NOT NULL,
        PRIMARY KEY (room, offset)
    ) WITHOUT ROWID;";

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The folder could not be created.
    #[error("cannot create {path}: {source}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another process (another server) has the database open.
    #[error("{path} is in use by another process (is another server running on this folder?)")]
    InUse {
        /// The database file.
        path: PathBuf,
    },
    /// The database was written by a newer version of this crate.
    #[error("{path} has schema version {found}; this server knows version {SCHEMA} only")]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
    },
    /// SQLite failed (a full disk, an I/O error, a corrupt file, ...).
    #[error("history database: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// Where a room's log stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    epoch: u64,
    next: u64,
}

/// Chat history in a SQLite database, `history.sqlite3` in a folder of its
/// own: per room the epoch, the next offset and the last `keep` messages.
/// See the [crate docs](crate) for the sync policy.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    keep: u64,
    /// The `rooms` table, as committed.
    heads: HashMap<String, Head>,
}

/// SQLite integers are signed: `u64`s are stored bit for bit.
fn to_sql(n: u64) -> i64 {
    n as i64
}

fn from_sql(n: i64) -> u64 {
    n as u64
}

impl SqliteStore {
    /// The database's file name in its folder.
    pub const FILE: &'static str = "history.sqlite3";

    /// Opens (or creates) the store in folder `dir` (created if need be),
    /// keeping `keep` messages per room. Fails with
    /// [`StoreError::InUse`] if another process has it open.
    pub fn open(dir: impl AsRef<Path>, keep: usize) -> Result<SqliteStore, StoreError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Folder {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(Self::FILE);
        let in_use = |e: rusqlite::Error, path: &Path| match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::InUse {
                path: path.to_owned(),
            },
            _ => StoreError::Sqlite(e),
        };
        let conn = Connection::open(&path)?;
        // The file is this process's alone: a lock held by another one is
        // refused at once, not waited for (rusqlite waits 5 s by default).
        conn.busy_timeout(std::time::Duration::ZERO)?;
        // Exclusive: the first write takes the lock and keeps it until the
        // connection closes; WAL with a sync of the log at every commit.
        conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE;")
            .map_err(|e| in_use(e, &path))?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
            .map_err(|e| in_use(e, &path))?;
        conn.execute_batch("PRAGMA synchronous = FULL;")
            .map_err(|e| in_use(e, &path))?;
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(|e| in_use(e, &path))?;
        if found > SCHEMA {
            return Err(StoreError::NewerSchema { path, found });
        }
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {CREATE} PRAGMA user_version = {SCHEMA}; COMMIT;"
        ))
        .map_err(|e| in_use(e, &path))?;
        let mut store = SqliteStore {
            conn,
            path,
            keep: keep as u64,
            heads: HashMap::new(),
        };
        store.read_heads()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Messages kept per room.
    pub fn keep(&self) -> usize {
        usize::try_from(self.keep).unwrap_or(usize::MAX)
    }

    /// Reads the `rooms` table into `heads`.
    fn read_heads(&mut self) -> Result<(), StoreError> {
        let mut rows = self.conn.prepare("SELECT room, epoch, next FROM rooms")?;
        let heads = rows
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    Head {
                        epoch: from_sql(row.get(1)?),
                        next: from_sql(row.get(2)?),
                    },
                ))
            })?
            .collect::<Result<HashMap<_, _>, _>>()?;
        drop(rows);
        self.heads = heads;
        Ok(())
    }

    /// Applies `records` in one transaction; returns the rooms it changed
    /// (`None`: deleted), for `heads` once committed.
    fn write(
        &mut self,
        records: &[StoreRecord],
    ) -> Result<HashMap<String, Option<Head>>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut changed: HashMap<String, Option<Head>> = HashMap::new();
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO messages (room, offset, sender, text) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut clear = tx.prepare_cached("DELETE FROM messages WHERE room = ?1")?;
            for record in records {
                match record {
                    StoreRecord::Append {
                        room,
                        epoch,
                        message,
                    } => {
                        let head = match changed.get(room) {
                            Some(head) => *head,
                            None => self.heads.get(room).copied(),
                        };
                        let continues = head
                            == Some(Head {
                                epoch: *epoch,
                                next: message.offset,
                            });
                        if head.is_some() && !continues {
                            // A new log, or a hole: what is kept no longer
                            // leads up to this message.
                            clear.execute([room])?;
                        }
                        insert.execute(params![
                            room,
                            to_sql(message.offset),
                            message.from,
                            message.text
                        ])?;
                        let next = message.offset.saturating_add(1);
                        changed.insert(
                            room.clone(),
                            Some(Head {
                                epoch: *epoch,
                                next,
                            }),
                        );
                    }
                    StoreRecord::Forget { room, epoch } => {
                        let head = match changed.get(room) {
                            Some(head) => *head,
                            None => self.heads.get(room).copied(),
                        };
                        if head.is_some_and(|h| h.epoch == *epoch) {
                            clear.execute([room])?;
                            changed.insert(room.clone(), None);
                        }
                    }
                    // A record this store does not know: nothing to keep.
                    _ => {}
                }
            }
            let mut upsert = tx.prepare_cached(
                "INSERT OR REPLACE INTO rooms (room, epoch, next) VALUES (?1, ?2, ?3)",
            )?;
            let mut prune =
                tx.prepare_cached("DELETE FROM messages WHERE room = ?1 AND offset < ?2")?;
            let mut remove = tx.prepare_cached("DELETE FROM rooms WHERE room = ?1")?;
            for (room, head) in &changed {
                match head {
                    Some(head) => {
                        upsert.execute(params![room, to_sql(head.epoch), to_sql(head.next)])?;
                        let first = head.next.saturating_sub(self.keep);
                        if first > 0 {
                            prune.execute(params![room, to_sql(first)])?;
                        }
                    }
                    None => {
                        remove.execute([room])?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    /// The kept messages of `room` from offset `first` on, in order.
    fn tail(&self, room: &str, first: u64) -> Result<Vec<StoredMessage>, StoreError> {
        let mut rows = self.conn.prepare_cached(
            "SELECT offset, sender, text FROM messages WHERE room = ?1 AND offset >= ?2 ORDER BY offset",
        )?;
        let messages = rows
            .query_map(params![room, to_sql(first)], |row| {
                Ok(StoredMessage {
                    offset: from_sql(row.get(0)?),
                    from: row.get(1)?,
                    text: row.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(messages)
    }
}

impl HistoryStore for SqliteStore {
    type Error = StoreError;

    /// Applies `records` in one transaction, synced to disk before this
    /// returns. On an error nothing of them is applied.
    fn apply(&mut self, records: &[StoreRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let changed = self.write(records)?;
        for (room, head) in changed {
            match head {
                Some(head) => self.heads.insert(room, head),
                None => self.heads.remove(&room),
            };
        }
        Ok(())
    }

    /// Every room, in name order, with its last `limit` messages at most:
    /// the ones that lead up to its next offset without a hole.
    fn load(&mut self, limit: usize) -> Result<Vec<RoomHistory>, StoreError> {
        let mut rooms: Vec<(&String, &Head)> = self.heads.iter().collect();
        rooms.sort_by_key(|(room, _)| room.as_str());
        let mut histories = Vec::with_capacity(rooms.len());
        for (room, head) in rooms {
            let wanted = self.keep.min(limit as u64);
            let mut messages = self.tail(room, head.next.saturating_sub(wanted))?;
            // Only messages that run up to `next` one by one are history:
            // the store never leaves a hole, but a file is not to be
            // trusted blindly.
            let run = messages
                .iter()
                .rev()
                .zip((0..head.next).rev())
                .take_while(|(m, offset)| m.offset == *offset)
                .count();
            messages.drain(..messages.len() - run);
            histories.push(RoomHistory {
                room: room.clone(),
                epoch: head.epoch,
                next: head.next,
                messages,
            });
        }
        Ok(histories)
    }
}
