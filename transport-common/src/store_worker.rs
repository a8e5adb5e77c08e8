//! Durable history for every transport: the hub's store records applied
//! on a thread of their own, and reported back to the hub once stored.
//!
//! With `History::durable`, the hub emits a
//! [`StoreRecord`] for every message and hands a message out only once the
//! application reports it stored. The [`HubDriver`](crate::HubDriver)
//! collects the records of a batch and hands them, at the batch's end, to
//! a [`StoreWorker`]: a thread that owns the store, so that the event loop
//! never waits on a disk sync. The worker takes every batch that queued up
//! while it was busy and applies them in one call (group commit: one sync
//! for all of them), then reports, per room, the offset up to which
//! messages are stored, through the server handle's command queue, as the
//! application's own actions reach the hub. The loop applies the report
//! (`Hub::stored`) at its next batch's end, and the messages go out.
//!
//! Any [`HistoryStore`] fits: [`DynStore`] erases its type and error, so
//! servers take one type whatever the store.
//!
//! # When the store fails
//!
//! The server stops, gracefully: every client is sent `bye:`, and `serve`
//! returns the error. Messages the store did not take are never handed out,
//! so the promise that every message a sender saw echoed is stored still
//! holds, and clients that come back to a restarted server resume from the
//! store without a gap. Serving on from memory would break that promise
//! silently; retrying would be no safer: after a failed `fsync` the kernel
//! may have dropped the dirty pages, and a retry that succeeds proves
//! nothing (PostgreSQL learnt this in 2018 and now stops in the same
//! case). Stopping is loud, and a supervisor restarts the server on what
//! the store really holds.

use std::fmt;
use std::sync::mpsc;
use std::thread::JoinHandle;

use chat_proto::history::{HistoryStore, RoomHistory, StoreRecord};

use crate::server_handle::{Command, ServerHandle};

/// The error of a [`DynStore`]: the store's own, type-erased.
#[derive(Debug)]
pub struct DynStoreError(Box<dyn std::error::Error + Send + Sync>);

impl DynStoreError {
    /// Wraps `error`.
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        DynStoreError(error.into())
    }

    /// The store's error.
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl fmt::Display for DynStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for DynStoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Any [`HistoryStore`] that can move to the store's thread, with its type
/// and error erased: what servers take
/// ([`HubDriver::attach_store`](crate::HubDriver::attach_store), and the
/// transports' `with_history_store`).
///
/// ```
/// use chat_proto::history::{HistoryStore, MemoryStore};
/// use transport_common::DynStore;
///
/// let mut store = DynStore::new(MemoryStore::new(100, 1 << 20));
/// assert!(store.load(100)?.is_empty());
/// # Ok::<(), transport_common::DynStoreError>(())
/// ```
pub struct DynStore(Box<dyn HistoryStore<Error = DynStoreError> + Send>);

impl fmt::Debug for DynStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DynStore")
    }
}

/// A store whose error is erased.
struct Erased<S>(S);

impl<S: HistoryStore> HistoryStore for Erased<S> {
    type Error = DynStoreError;

    fn apply(&mut self, records: &[StoreRecord]) -> Result<(), DynStoreError> {
        self.0.apply(records).map_err(DynStoreError::new)
    }

    fn load(&mut self, limit: usize) -> Result<Vec<RoomHistory>, DynStoreError> {
        self.0.load(limit).map_err(DynStoreError::new)
    }
}

impl DynStore {
    /// Erases `store`'s type.
    pub fn new<S: HistoryStore + Send + 'static>(store: S) -> DynStore {
        DynStore(Box::new(Erased(store)))
    }
}

impl HistoryStore for DynStore {
    type Error = DynStoreError;

    fn apply(&mut self, records: &[StoreRecord]) -> Result<(), DynStoreError> {
        self.0.apply(records)
    }

    fn load(&mut self, limit: usize) -> Result<Vec<RoomHistory>, DynStoreError> {
        self.0.load(limit)
    }
}

/// Per room (and log), the offset up to which `records` store its
/// messages: what to report with `Hub::stored`.
pub(crate) fn stored_heads(records: &[StoreRecord]) -> Vec<(String, u64, u64)> {
    let mut heads: Vec<(String, u64, u64)> = Vec::new();
    for record in records {
        if let StoreRecord::Append {
            room,
            epoch,
            message,
        } = record
        {
            let next = message.offset.saturating_add(1);
            match heads.iter_mut().find(|(r, e, _)| r == room && e == epoch) {
                Some(head) => head.2 = head.2.max(next),
                None => heads.push((room.clone(), *epoch, next)),
            }
        }
    }
    heads
}

/// The thread that owns the store.
#[derive(Debug)]
pub(crate) struct StoreWorker {
    to_worker: Option<mpsc::Sender<Vec<StoreRecord>>>,
    thread: Option<JoinHandle<()>>,
}

impl StoreWorker {
    /// Starts the thread; it reports through `handle`.
    pub(crate) fn start(store: DynStore, handle: ServerHandle) -> std::io::Result<StoreWorker> {
        let (to_worker, batches) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("chat-store".into())
            .spawn(move || run(store, &batches, &handle))?;
        Ok(StoreWorker {
            to_worker: Some(to_worker),
            thread: Some(thread),
        })
    }

    /// Queues a batch of records. After a failure the worker is gone and
    /// they are dropped: the server is stopping, and nobody will be handed
    /// their messages.
    pub(crate) fn send(&self, records: Vec<StoreRecord>) {
        if let Some(to_worker) = &self.to_worker {
            let _ = to_worker.send(records);
        }
    }
}

impl Drop for StoreWorker {
    fn drop(&mut self) {
        // The worker applies what is queued, then ends: a server that stops
        // has stored everything it was given.
        drop(self.to_worker.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(mut store: DynStore, batches: &mpsc::Receiver<Vec<StoreRecord>>, handle: &ServerHandle) {
    while let Ok(mut records) = batches.recv() {
        // Group commit: whatever queued meanwhile goes in the same call.
        for more in batches.try_iter() {
            records.extend(more);
        }
        let started = std::time::Instant::now();
        match store.apply(&records) {
            Ok(()) => {
                tracing::debug!(records = records.len(), took = ?started.elapsed(), "stored");
                let heads = stored_heads(&records);
                if !heads.is_empty() {
                    handle.push(Command::Stored(heads));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "the history store failed; the server stops");
                handle.push(Command::StoreFailed(e.to_string()));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HubDriver, HubMsg};
    use bytes::Bytes;
    use chat_proto::history::{MemoryStore, StoredMessage};
    use chat_proto::{ConnId, ServerConfig};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    fn durable() -> ServerConfig {
        let mut config = ServerConfig::default();
        config.history.durable = true;
        config
    }

    fn peer() -> std::net::SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    /// Ends batches for up to `patience`, taking what `outbox` (of `conn`)
    /// is given as its writer would, until a line starts with `prefix`;
    /// returns everything it was given.
    fn batches_for(
        driver: &mut HubDriver,
        (conn, outbox): (ConnId, &crate::Outbox),
        prefix: &str,
        patience: Duration,
    ) -> String {
        let deadline = Instant::now() + patience;
        let mut text = String::new();
        while Instant::now() < deadline {
            driver.end_batch(Instant::now());
            let taken = outbox
                .take_blocking(Some(Duration::from_millis(5)))
                .unwrap_or_default();
            let bytes = taken.data.concat();
            driver.handle(HubMsg::Written(conn, bytes.len()), Instant::now());
            text.push_str(&String::from_utf8(bytes).unwrap());
            if text.lines().any(|l| l.starts_with(prefix)) {
                break;
            }
        }
        text
    }

    /// [`batches_for`] up to 10 s, which must see `prefix`.
    fn batches_until(
        driver: &mut HubDriver,
        (conn, outbox): (ConnId, &crate::Outbox),
        prefix: &str,
    ) -> String {
        let text = batches_for(driver, (conn, outbox), prefix, Duration::from_secs(10));
        assert!(
            text.lines().any(|l| l.starts_with(prefix)),
            "no {prefix:?} within 10 s; got {text:?}"
        );
        text
    }

    /// A store that holds every `apply` until the test lets it through.
    struct Gated {
        inner: Arc<Mutex<MemoryStore>>,
        gate: std::sync::mpsc::Receiver<()>,
        entered: std::sync::mpsc::Sender<usize>,
    }

    impl HistoryStore for Gated {
        type Error = std::convert::Infallible;
        fn apply(&mut self, records: &[StoreRecord]) -> Result<(), Self::Error> {
            let _ = self.entered.send(records.len());
            let _ = self.gate.recv_timeout(Duration::from_secs(10));
            self.inner.lock().unwrap().apply(records)
        }
        fn load(&mut self, limit: usize) -> Result<Vec<RoomHistory>, Self::Error> {
            self.inner.lock().unwrap().load(limit)
        }
    }

    #[test]
    fn a_message_goes_out_once_the_store_has_applied_it() {
        let now = Instant::now();
        let memory = Arc::new(Mutex::new(MemoryStore::new(100, 1 << 20)));
        let (open, gate) = std::sync::mpsc::channel();
        let (entered, applying) = std::sync::mpsc::channel();
        let store = Gated {
            inner: memory.clone(),
            gate,
            entered,
        };
        let mut driver = HubDriver::new(durable(), Duration::ZERO).unwrap();
        assert_eq!(driver.attach_store(DynStore::new(store)).unwrap(), 0);
        let (a, out) = driver.accept(now, peer());
        driver.handle(
            HubMsg::Input(a, Bytes::from_static(b"iam:a\nmsg:hi\n")),
            now,
        );
        batches_until(&mut driver, (a, &out), "ok:a");
        // The store has the record and holds it: nothing goes out, however
        // many batches run.
        assert_eq!(applying.recv_timeout(Duration::from_secs(10)), Ok(1));
        let text = batches_for(&mut driver, (a, &out), "msg:", Duration::from_millis(200));
        assert_eq!(text, "");
        assert!(memory.lock().unwrap().load(10).unwrap().is_empty());
        open.send(()).unwrap();
        batches_until(&mut driver, (a, &out), "msg:a:hi");
        let rooms = memory.lock().unwrap().load(10).unwrap();
        assert_eq!(rooms[0].messages[0].text, "hi");
        assert!(driver.outcome().is_ok());
    }

    #[test]
    fn a_failing_store_stops_the_server_and_its_message_never_goes_out() {
        struct Broken;
        impl HistoryStore for Broken {
            type Error = std::io::Error;
            fn apply(&mut self, _: &[StoreRecord]) -> Result<(), Self::Error> {
                Err(std::io::Error::other("fsync failed"))
            }
            fn load(&mut self, _: usize) -> Result<Vec<RoomHistory>, Self::Error> {
                Ok(Vec::new())
            }
        }
        let now = Instant::now();
        let mut driver = HubDriver::new(durable(), Duration::ZERO).unwrap();
        driver.attach_store(DynStore::new(Broken)).unwrap();
        let (a, out) = driver.accept(now, peer());
        driver.handle(
            HubMsg::Input(a, Bytes::from_static(b"iam:a\nmsg:hi\n")),
            now,
        );
        let text = batches_until(&mut driver, (a, &out), "bye:");
        assert!(!text.contains("msg:a:hi"), "{text:?}");
        assert!(driver.is_shutting_down());
        assert_eq!(driver.store_failure(), Some("fsync failed"));
        let err = driver.outcome().unwrap_err();
        assert_eq!(err.to_string(), "the history store failed: fsync failed");
    }

    #[test]
    fn a_store_needs_durable_history_and_restores_rooms_before_anyone_comes() {
        let mut memory = MemoryStore::new(100, 1 << 20);
        let said = |offset| StoreRecord::Append {
            room: "lobby".into(),
            epoch: 0xabc,
            message: StoredMessage {
                offset,
                from: "ann".into(),
                text: format!("m{offset}"),
            },
        };
        memory.apply(&[said(0), said(1)]).unwrap();
        let mut plain = HubDriver::new(ServerConfig::default(), Duration::ZERO).unwrap();
        let err = plain
            .attach_store(DynStore::new(MemoryStore::default()))
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        let mut driver = HubDriver::new(durable(), Duration::ZERO).unwrap();
        assert_eq!(driver.attach_store(DynStore::new(memory)).unwrap(), 1);
        let again = driver.attach_store(DynStore::new(MemoryStore::default()));
        assert!(again.is_err());
        let now = Instant::now();
        let (a, out) = driver.accept(now, peer());
        driver.handle(
            HubMsg::Input(
                a,
                Bytes::from_static(b"cap:rooms,history\nresume:lobby:abc:1\niam:bob\n"),
            ),
            now,
        );
        let text = batches_until(&mut driver, (a, &out), "said:lobby:1:");
        assert!(
            text.ends_with("room:lobby:abc:2\nsaid:lobby:1:ann:m1\n"),
            "{text:?}"
        );
    }

    #[test]
    fn durable_history_without_a_store_is_in_memory_only() {
        let now = Instant::now();
        let mut driver = HubDriver::new(durable(), Duration::ZERO).unwrap();
        let (a, out) = driver.accept(now, peer());
        driver.handle(
            HubMsg::Input(a, Bytes::from_static(b"iam:a\nmsg:hi\n")),
            now,
        );
        batches_until(&mut driver, (a, &out), "msg:a:hi");
    }

    fn append(room: &str, epoch: u64, offset: u64) -> StoreRecord {
        StoreRecord::Append {
            room: room.into(),
            epoch,
            message: StoredMessage {
                offset,
                from: "a".into(),
                text: "t".into(),
            },
        }
    }

    #[test]
    fn heads_are_per_room_and_log_and_skip_forgets() {
        let records = [
            append("a", 1, 4),
            append("b", 1, 0),
            append("a", 1, 5),
            StoreRecord::Forget {
                room: "b".into(),
                epoch: 1,
            },
            append("b", 2, 0),
        ];
        assert_eq!(
            stored_heads(&records),
            [
                ("a".to_owned(), 1, 6),
                ("b".to_owned(), 1, 1),
                ("b".to_owned(), 2, 1)
            ]
        );
    }

    #[derive(Debug, thiserror::Error)]
    #[error("disk on fire")]
    struct Fire;

    struct Failing;

    impl HistoryStore for Failing {
        type Error = Fire;
        fn apply(&mut self, _: &[StoreRecord]) -> Result<(), Fire> {
            Err(Fire)
        }
        fn load(&mut self, _: usize) -> Result<Vec<RoomHistory>, Fire> {
            Err(Fire)
        }
    }

    #[test]
    fn a_store_error_keeps_its_text_through_the_erasure() {
        let mut store = DynStore::new(Failing);
        let err = store.apply(&[]).unwrap_err();
        assert_eq!(err.to_string(), "disk on fire");
        assert!(err.get_ref().is::<Fire>());
    }
}
