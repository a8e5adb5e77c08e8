//! The SQLite store against the in-memory one as a model: the same
//! records give the same histories, across reopening the file; plus what
//! only a file has (the lock, the schema version).

use chat_proto::history::{HistoryStore, MemoryStore, RoomHistory, StoreRecord, StoredMessage};
use chat_store::{SqliteStore, StoreError};
use proptest::prelude::*;

fn append(room: &str, epoch: u64, offset: u64, text: &str) -> StoreRecord {
    StoreRecord::Append {
        room: room.into(),
        epoch,
        message: StoredMessage {
            offset,
            from: "ann".into(),
            text: text.into(),
        },
    }
}

fn forget(room: &str, epoch: u64) -> StoreRecord {
    StoreRecord::Forget {
        room: room.into(),
        epoch,
    }
}

fn offsets(room: &RoomHistory) -> Vec<u64> {
    room.messages.iter().map(|m| m.offset).collect()
}

#[test]
fn keeps_the_last_messages_of_each_room_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = SqliteStore::open(dir.path(), 3).unwrap();
        let records: Vec<_> = (0..10)
            .flat_map(|o| [append("a", 1, o, "x"), append("b", u64::MAX, o + 100, "y")])
            .collect();
        store.apply(&records[..7]).unwrap();
        store.apply(&records[7..]).unwrap();
    }
    let mut store = SqliteStore::open(dir.path(), 3).unwrap();
    let rooms = store.load(100).unwrap();
    assert_eq!(rooms.len(), 2);
    assert_eq!(
        (rooms[0].room.as_str(), rooms[0].epoch, rooms[0].next),
        ("a", 1, 10)
    );
    assert_eq!(offsets(&rooms[0]), [7, 8, 9]);
    // Epochs are u64s, stored bit for bit.
    assert_eq!((rooms[1].epoch, rooms[1].next), (u64::MAX, 110));
    assert_eq!(offsets(&rooms[1]), [107, 108, 109]);
    // The limit of a load cuts further.
    assert_eq!(offsets(&store.load(2).unwrap()[0]), [8, 9]);
    assert!(store.load(0).unwrap()[0].messages.is_empty());
}

#[test]
fn a_new_epoch_or_a_hole_starts_a_room_over_and_forget_deletes_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path(), 100).unwrap();
    store
        .apply(&[
            append("r", 1, 0, "a"),
            append("r", 1, 1, "b"),
            append("s", 5, 9, "c"),
        ])
        .unwrap();
    store.apply(&[append("r", 2, 0, "new")]).unwrap();
    store.apply(&[append("s", 5, 12, "after a hole")]).unwrap();
    let rooms = store.load(100).unwrap();
    assert_eq!((rooms[0].epoch, offsets(&rooms[0])), (2, vec![0]));
    assert_eq!((rooms[1].next, offsets(&rooms[1])), (13, vec![12]));
    // Forgetting another epoch does nothing; forgetting the room's deletes
    // it, and it may come back in the same batch with a new log.
    store
        .apply(&[forget("r", 1), forget("s", 5), append("s", 6, 0, "again")])
        .unwrap();
    store.apply(&[forget("r", 2)]).unwrap();
    drop(store);
    let rooms = SqliteStore::open(dir.path(), 100)
        .unwrap()
        .load(100)
        .unwrap();
    assert_eq!(rooms.len(), 1);
    assert_eq!((rooms[0].room.as_str(), rooms[0].epoch), ("s", 6));
    assert_eq!(rooms[0].messages[0].text, "again");
}

#[test]
fn a_second_server_on_the_same_folder_is_refused_until_the_first_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let first = SqliteStore::open(dir.path(), 10).unwrap();
    match SqliteStore::open(dir.path(), 10) {
        Err(StoreError::InUse { path }) => assert_eq!(path, first.path()),
        other => panic!("expected InUse, got {other:?}"),
    }
    drop(first);
    SqliteStore::open(dir.path(), 10).unwrap();
}

#[test]
fn a_database_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path(), 10).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join(SqliteStore::FILE)).unwrap();
    conn.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(conn);
    let err = SqliteStore::open(dir.path(), 10).unwrap_err();
    assert!(
        matches!(err, StoreError::NewerSchema { found: 99, .. }),
        "{err}"
    );
}

#[test]
fn a_file_where_the_folder_should_be_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    let err = SqliteStore::open(&file, 10).unwrap_err();
    assert!(matches!(err, StoreError::Folder { .. }), "{err}");
}

/// One step of a random history: an append continuing a room's log, one
/// after a hole, one in a new epoch, a forget, or a commit of the batch.
#[derive(Debug, Clone)]
enum Step {
    Say(u8),
    Skip(u8),
    NewEpoch(u8),
    Forget(u8),
    Commit,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u8..3).prop_map(Step::Say),
        1 => (0u8..3).prop_map(Step::Skip),
        1 => (0u8..3).prop_map(Step::NewEpoch),
        1 => (0u8..3).prop_map(Step::Forget),
        2 => Just(Step::Commit),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any sequence of records, in any batches, leaves the same histories
    /// as the in-memory store (bounded by count only), read back from a
    /// reopened file.
    #[test]
    fn the_file_holds_what_the_memory_store_holds(
        steps in proptest::collection::vec(step(), 1..80),
        keep in 1usize..6,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut model = MemoryStore::new(keep, usize::MAX);
        let mut store = SqliteStore::open(dir.path(), keep).unwrap();
        let mut heads = [(1u64, 0u64); 3];
        let mut batch = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let record = match *step {
                Step::Say(r) | Step::Skip(r) | Step::NewEpoch(r) => {
                    let head = &mut heads[usize::from(r)];
                    match step {
                        Step::Skip(_) => head.1 += 2,
                        Step::NewEpoch(_) => *head = (head.0 + 10, 0),
                        _ => {}
                    }
                    head.1 += 1;
                    append(&format!("r{r}"), head.0, head.1 - 1, &format!("m{i}"))
                }
                Step::Forget(r) => forget(&format!("r{r}"), heads[usize::from(r)].0),
                Step::Commit => {
                    model.apply(&batch).unwrap();
                    store.apply(&batch).unwrap();
                    batch.clear();
                    continue;
                }
            };
            batch.push(record);
        }
        model.apply(&batch).unwrap();
        store.apply(&batch).unwrap();
        drop(store);
        let mut store = SqliteStore::open(dir.path(), keep).unwrap();
        prop_assert_eq!(store.load(usize::MAX).unwrap(), model.load(usize::MAX).unwrap());
        prop_assert_eq!(store.load(2).unwrap(), model.load(2).unwrap());
    }
}
