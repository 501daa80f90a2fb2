//! The store port's conformance suite (`homeward_store::conformance`) against the PostgreSQL
//! backend, each check on a fresh database; and against a broken double of the log, which it
//! must catch.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use async_trait::async_trait;
use homeward_store::conformance;
use homeward_store::{
    Append, Appended, Cursor, EventStore, ReadUntil, RecordedEvent, StoreError, StreamsAndKeys,
};
use homeward_store_postgres::PgStore;
use homeward_tests::TestDb;
use uuid::Uuid;

async fn fresh() -> PgStore {
    (*TestDb::new().await.store).clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_backend_passes_the_conformance_suite() {
    let failures = conformance::run(fresh).await;
    assert!(
        failures.is_empty(),
        "conformance failures:\n{}",
        failures
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_backend_passes_the_conformance_suite() {
    // Each check's folder lives until the suite ends.
    let folders = std::sync::Mutex::new(Vec::new());
    let failures = conformance::run(|| async {
        let db = homeward_tests::TestSqlite::new().await;
        let store = (*db.store).clone();
        folders.lock().unwrap().push(db);
        store
    })
    .await;
    assert!(
        failures.is_empty(),
        "conformance failures:\n{}",
        failures
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A command-line tool appending to the file a server serves (two stores on one file, as two
/// processes have): the global stream stays in commit order, and a follower of one store sees
/// what the other appended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_sqlite_file_keep_one_commit_order() {
    use homeward_store::{Backend as _, ExpectedVersion};
    let db = homeward_tests::TestSqlite::new().await;
    let other = homeward_store_sqlite::SqliteStore::open(&db.path(), 2)
        .await
        .unwrap();
    let append = |stream: &str, version: u64| {
        let expected = match version {
            0 => ExpectedVersion::NoStream,
            v => ExpectedVersion::Exact(v),
        };
        conformance::append(stream, expected, 1, chrono::Utc::now())
    };
    let server = db.store.clone();
    server.append(append("a", 0)).await.unwrap();
    let mut following = server
        .subscribe(server.head().await.unwrap())
        .await
        .unwrap();
    // The server appends more often than the tool, which opened the file first: each of the
    // tool's transactions still comes after the server's before it.
    let mut a = 1;
    for round in 0..3u64 {
        for _ in 0..2 {
            server.append(append("a", a)).await.unwrap();
            a += 1;
        }
        other.append(append("b", round)).await.unwrap();
    }
    let mut seen = Vec::new();
    while seen.len() < 9 {
        let event = tokio::time::timeout(std::time::Duration::from_secs(10), following.next())
            .await
            .expect("the follower gets every event within 10 s")
            .unwrap();
        seen.push((
            event.stream_id.clone(),
            event.stream_version,
            event.cursor(),
        ));
    }
    let streams: Vec<&str> = seen.iter().map(|(s, _, _)| s.as_str()).collect();
    assert_eq!(streams, ["a", "a", "b", "a", "a", "b", "a", "a", "b"]);
    assert!(seen.windows(2).all(|w| w[0].2 < w[1].2), "{seen:?}");
}

/// The PostgreSQL log with its global stream broken on the way to followers: each page of
/// `read_all` passes through `page`.
struct Broken {
    log: PgStore,
    page: fn(Vec<RecordedEvent>) -> Vec<RecordedEvent>,
}

/// Loses events: every fifth one is skipped.
fn drops(mut page: Vec<RecordedEvent>) -> Vec<RecordedEvent> {
    page.retain(|e| e.global_position % 5 != 0);
    page
}

/// Reorders: each page reversed. The page's own last cursor stays the resume point, so
/// nothing is skipped, only reordered.
fn reorders(mut page: Vec<RecordedEvent>) -> Vec<RecordedEvent> {
    let last = page.pop();
    page.reverse();
    page.extend(last);
    page
}

#[async_trait]
impl EventStore for Broken {
    async fn append(&self, append: Append) -> Result<Appended, StoreError> {
        self.log.append(append).await
    }

    async fn command_result(&self, command_id: Uuid) -> Result<Option<Appended>, StoreError> {
        self.log.command_result(command_id).await
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        until: ReadUntil,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.log.read_stream(stream_id, until).await
    }

    async fn read_stream_after(
        &self,
        stream_id: &str,
        after: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.log.read_stream_after(stream_id, after).await
    }

    async fn read_all(&self, after: Cursor, limit: i64) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok((self.page)(self.log.read_all(after, limit).await?))
    }

    async fn read_streams_after_with_keys(
        &self,
        streams: &[(String, u64)],
        persons: &[Uuid],
    ) -> Result<StreamsAndKeys, StoreError> {
        self.log
            .read_streams_after_with_keys(streams, persons)
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_drops_or_reorders_events_fails_the_suite() {
    const GLOBAL: &str = "the global stream has every event once, in commit order";
    let dropping = conformance::event_log(|| async {
        Arc::new(Broken {
            log: fresh().await,
            page: drops,
        }) as Arc<dyn EventStore>
    })
    .await;
    assert!(
        dropping.iter().any(|f| f.check == GLOBAL),
        "a log that drops events passed: {dropping:?}"
    );
    let reordering = conformance::event_log(|| async {
        Arc::new(Broken {
            log: fresh().await,
            page: reorders,
        }) as Arc<dyn EventStore>
    })
    .await;
    assert!(
        reordering.iter().any(|f| f.check == GLOBAL),
        "a log that reorders events passed: {reordering:?}"
    );
    // Each double breaks only the global stream; the other checks of the log still hold.
    assert!(dropping
        .iter()
        .chain(&reordering)
        .all(|f| f.check == GLOBAL));
}
