//! The thread that writes appends, rebuilds and the server's secrets, on a connection of its own.
//!
//! sqlx runs each SQLite connection on a thread of its own, and every statement is a round trip
//! to it: an append is several statements, and a command's read-model rows several more. Here a
//! whole transaction runs on the thread that holds the connection (rusqlite, on the same SQLite
//! library as sqlx), its statements prepared once: one round trip per transaction, as a single
//! raw insert has. The thread holds the store's writer lock while it writes, so that it and the
//! other writes (sessions, timers, keys: on the sqlx writer) take turns as one writer.
//!
//! Appends queue for the thread and share its transactions (group commit: every append waiting,
//! up to [`MAX_BATCH`], in one transaction and one `fsync`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{mpsc, Weak};

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;
use uuid::Uuid;

use homeward_store::{Append, Appended, StoreError};

use crate::{Inner, BUSY_TIMEOUT};

/// The most appends one transaction carries.
const MAX_BATCH: usize = 512;

/// What the thread is asked to do.
enum Job {
    Append(Box<Pending>),
    Run(Box<dyn FnOnce(&mut Connection) + Send>),
}

struct Pending {
    append: Append,
    reply: oneshot::Sender<Result<Appended, StoreError>>,
}

/// A write on the writer's thread ends refused by a check, or failed in the database.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    #[error(transparent)]
    Refused(#[from] StoreError),
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
}

impl From<WriteError> for StoreError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Refused(e) => e,
            WriteError::Database(e) => StoreError::Unexpected(format!("database error: {e}")),
        }
    }
}

/// The way to the writer's thread.
#[derive(Debug)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

/// The jobs sent to a writer, until its thread is started.
pub(crate) struct Jobs(mpsc::Receiver<Job>);

impl Writer {
    pub(crate) fn new() -> (Self, Jobs) {
        let (jobs, queued) = mpsc::channel();
        (Self { jobs }, Jobs(queued))
    }

    /// Appends, in the next transaction of the thread.
    pub(crate) async fn append(&self, append: Append) -> Result<Appended, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Append(Box::new(Pending { append, reply })))?;
        answer
            .await
            .map_err(|_| StoreError::Unexpected("the writer stopped before answering".into()))?
    }

    /// Runs `work` on the writer's connection, holding the writer lock. A transaction `work`
    /// leaves open is rolled back.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, WriteError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Run(Box::new(move |db| {
            let _ = reply.send(work(db).map_err(StoreError::from));
        })))?;
        answer
            .await
            .map_err(|_| StoreError::Unexpected("the writer stopped before answering".into()))?
    }

    fn send(&self, job: Job) -> Result<(), StoreError> {
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Unexpected("the store is closed".into()))
    }
}

impl Jobs {
    /// Starts the thread on `db`; it ends when the store is dropped.
    pub(crate) fn start(
        self,
        path: &Path,
        db: Connection,
        store: Weak<Inner>,
    ) -> Result<(), StoreError> {
        let path = path.to_owned();
        std::thread::Builder::new()
            .name("homeward-sqlite-writer".into())
            .spawn(move || serve(&path, db, &store, &self.0))
            .map(|_| ())
            .map_err(|e| StoreError::Unexpected(format!("the writing thread did not start: {e}")))
    }
}

fn serve(path: &Path, mut db: Connection, store: &Weak<Inner>, jobs: &mpsc::Receiver<Job>) {
    let mut next = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match jobs.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        let Some(store) = store.upgrade() else {
            return;
        };
        let mut batch = match job {
            Job::Run(work) => {
                let _writer = store.writer.blocking_lock();
                // A job that panics answers nothing (its caller hears that the writer stopped
                // before answering); the thread goes on with the next.
                if catch_unwind(AssertUnwindSafe(|| work(&mut db))).is_err() {
                    tracing::error!("a write on the SQLite writer's thread panicked");
                }
                settle(path, &mut db);
                continue;
            }
            Job::Append(first) => vec![*first],
        };
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(Job::Append(pending)) => batch.push(*pending),
                Ok(other) => {
                    next = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        let (appends, replies): (Vec<Append>, Vec<_>) =
            batch.into_iter().map(|p| (p.append, p.reply)).unzip();
        let written = {
            let _writer = store.writer.blocking_lock();
            let written = catch_unwind(AssertUnwindSafe(|| crate::append::write(&db, &appends)))
                .unwrap_or_else(|_| {
                    tracing::error!("appends on the SQLite writer's thread panicked");
                    crate::append::Written {
                        tx_number: 0,
                        results: appends
                            .iter()
                            .map(|_| Err(StoreError::Unexpected("the append failed".into())))
                            .collect(),
                    }
                });
            settle(path, &mut db);
            written
        };
        let appended: u64 = written
            .results
            .iter()
            .filter_map(|r| r.as_ref().ok().filter(|a| !a.duplicate))
            .map(|a| a.last_version + 1 - a.first_version)
            .sum();
        if appended > 0 {
            store.appended.send_replace(written.tx_number);
        }
        metrics::histogram!("homeward_append_batch_size").record(appends.len() as f64);
        metrics::counter!("homeward_events_appended_total").increment(appended);
        for (reply, result) in replies.into_iter().zip(written.results) {
            // A caller that went away no longer needs its answer; the append stands.
            let _ = reply.send(result);
        }
    }
}

/// Opens the writer's connection on an existing database: `synchronous=FULL` (a commit is on
/// disk before it is acknowledged), foreign writers waited for, deleted content overwritten
/// (the file is already in WAL mode: the sqlx writer made it so).
pub(crate) fn open(path: &Path) -> rusqlite::Result<Connection> {
    let db = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    db.busy_timeout(BUSY_TIMEOUT)?;
    db.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA secure_delete = ON; \
         PRAGMA foreign_keys = OFF",
    )?;
    db.set_prepared_statement_cache_capacity(128);
    Ok(db)
}

/// After a job: a transaction left open (SQLite may end one by itself on a full disk or an I/O
/// error, or a statement may fail before its end) is rolled back; a connection that cannot
/// roll back is replaced, so that the next job starts afresh. If the file cannot be opened,
/// the old connection stays, and writes go on failing until it can.
fn settle(path: &Path, db: &mut Connection) {
    if db.is_autocommit() {
        return;
    }
    let _ = db.execute_batch("ROLLBACK");
    if db.is_autocommit() {
        return;
    }
    match open(path) {
        Ok(fresh) => {
            tracing::warn!("the SQLite writing connection failed; a new one replaces it");
            *db = fresh;
        }
        Err(e) => {
            tracing::warn!(error = %e, "the SQLite writing connection failed and cannot be reopened")
        }
    }
}

/// A value as sqlx's SQLite driver stores it, so that what one writes the other reads: ids as
/// 16-byte blobs, times as RFC 3339 text (`+00:00`, as many fraction digits as needed), dates as
/// `YYYY-MM-DD`, booleans as 0 and 1.
pub(crate) trait Sql {
    fn sql(&self) -> Value;
}

impl Sql for Uuid {
    fn sql(&self) -> Value {
        Value::Blob(self.as_bytes().to_vec())
    }
}

impl Sql for str {
    fn sql(&self) -> Value {
        Value::Text(self.to_owned())
    }
}

impl Sql for String {
    fn sql(&self) -> Value {
        self.as_str().sql()
    }
}

impl Sql for [u8] {
    fn sql(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}

impl Sql for Vec<u8> {
    fn sql(&self) -> Value {
        self.as_slice().sql()
    }
}

impl Sql for i64 {
    fn sql(&self) -> Value {
        Value::Integer(*self)
    }
}

impl Sql for i32 {
    fn sql(&self) -> Value {
        Value::Integer(i64::from(*self))
    }
}

impl Sql for i16 {
    fn sql(&self) -> Value {
        Value::Integer(i64::from(*self))
    }
}

impl Sql for bool {
    fn sql(&self) -> Value {
        Value::Integer(i64::from(*self))
    }
}

impl Sql for DateTime<Utc> {
    fn sql(&self) -> Value {
        Value::Text(self.to_rfc3339_opts(SecondsFormat::AutoSi, false))
    }
}

impl Sql for NaiveDate {
    fn sql(&self) -> Value {
        Value::Text(self.format("%F").to_string())
    }
}

impl<T: Sql> Sql for Option<T> {
    fn sql(&self) -> Value {
        self.as_ref().map_or(Value::Null, Sql::sql)
    }
}

/// A value as JSON text.
pub(crate) fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Value, StoreError> {
    serde_json::to_string(value)
        .map(Value::Text)
        .map_err(|e| StoreError::Unexpected(format!("a value could not be written as JSON: {e}")))
}

/// A time as stored (see [`Sql`]).
pub(crate) fn time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Unexpected(format!("a stored time ({text}) is not RFC 3339: {e}")))
}

/// An id as stored (see [`Sql`]).
pub(crate) fn id(bytes: &[u8]) -> Result<Uuid, StoreError> {
    Uuid::from_slice(bytes)
        .map_err(|e| StoreError::Unexpected(format!("a stored id is not 16 bytes: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use homeward_store::{Backend as _, EventStore as _, ExpectedVersion};

    /// A write that panics on the writer's thread fails alone: the thread goes on, and the next
    /// append is written.
    #[tokio::test]
    async fn a_panic_on_the_writer_thread_fails_that_write_only() {
        let folder = tempfile::tempdir().unwrap();
        let store = crate::SqliteStore::open(&folder.path().join("homeward.db"), 1)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let failed = store
            .inner
            .writer_thread
            .run(|_| -> Result<(), WriteError> { panic!("a bug") })
            .await;
        assert!(failed.is_err());
        let appended = store
            .append(homeward_store::conformance::append(
                "plan-1",
                ExpectedVersion::NoStream,
                1,
                Utc::now(),
            ))
            .await
            .unwrap();
        assert_eq!(appended.last_version, 1);
    }
    use sqlx::{Connection as _, SqliteConnection};

    /// What the writer's thread writes is what sqlx writes, byte for byte: times compare as text
    /// (a read "as of" an instant, a lease that ran out), ids are looked up as blobs.
    #[tokio::test]
    async fn the_writer_thread_stores_values_as_sqlx_does() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("values.db");
        let mut sqlx_db =
            SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
                .await
                .unwrap();
        sqlx::query("CREATE TABLE v (name TEXT, written_by TEXT, value ANY)")
            .execute(&mut sqlx_db)
            .await
            .unwrap();
        let thread_db = open(&path).unwrap();
        let id = Uuid::new_v4();
        let whole = DateTime::parse_from_rfc3339("2026-12-06T09:00:00Z")
            .unwrap()
            .to_utc();
        let millis = DateTime::parse_from_rfc3339("2026-12-06T09:00:00.120Z")
            .unwrap()
            .to_utc();
        let micros = crate::stored(Utc::now());
        let date = NaiveDate::from_ymd_opt(2027, 1, 31).unwrap();
        macro_rules! both {
            ($name:expr, $value:expr) => {
                sqlx::query("INSERT INTO v VALUES (?, 'sqlx', ?)")
                    .bind($name)
                    .bind($value)
                    .execute(&mut sqlx_db)
                    .await
                    .unwrap();
                thread_db
                    .execute(
                        "INSERT INTO v VALUES (?, 'thread', ?)",
                        [$name.sql(), $value.sql()],
                    )
                    .unwrap();
            };
        }
        both!("id", id);
        both!("no id", None::<Uuid>);
        both!("whole second", whole);
        both!("milliseconds", millis);
        both!("microseconds", micros);
        both!("date", date);
        both!("true", true);
        both!("small", 7_i16);
        both!("text", "Ngozi Okafor".to_owned());
        both!("bytes", vec![0_u8, 255]);
        let differing: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT a.name, quote(a.value), quote(b.value) FROM v a JOIN v b ON a.name = b.name \
             WHERE a.written_by = 'sqlx' AND b.written_by = 'thread' \
               AND (a.value IS NOT b.value OR typeof(a.value) <> typeof(b.value))",
        )
        .fetch_all(&mut sqlx_db)
        .await
        .unwrap();
        assert_eq!(
            differing,
            vec![],
            "(name, as sqlx stores it, as the thread does)"
        );
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM v")
            .fetch_one(&mut sqlx_db)
            .await
            .unwrap();
        assert_eq!(rows, 20);
        // And what sqlx wrote, the thread reads back.
        let read: (Vec<u8>, String) = thread_db
            .query_row(
                "SELECT (SELECT value FROM v WHERE name = 'id' AND written_by = 'sqlx'), \
                        (SELECT value FROM v WHERE name = 'microseconds' AND written_by = 'sqlx')",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!(super::id(&read.0).unwrap(), id);
        assert_eq!(time(&read.1).unwrap(), micros);
    }
}
