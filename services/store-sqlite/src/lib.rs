//! Homeward's store on an embedded SQLite database, for a single server: the adapter behind the
//! `homeward-store` port that needs nothing installed.
//!
//! One process serves a database file (a lock file beside it refuses a second). One writer at a
//! time (the store's writer lock), so the checks PostgreSQL makes under locks are made in order:
//! appends, rebuilds and the server's secrets on the writer thread's connection ([`writer`]),
//! where appends queue and share transactions (group commit: one `fsync` for many appends); the
//! other writes on sqlx's writing connection. Reads use a pool of their own, which WAL mode lets
//! run while the writer writes. Followers and token revocations are woken in-process.
#![forbid(unsafe_code)]

mod access_log;
mod append;
mod archive;
mod idempotency;
mod lock;
mod person_keys;
mod reads;
mod rebuild;
mod sessions;
mod store;
mod timer_queue;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, SqliteConnection};
use tokio::sync::{broadcast, watch, Mutex, MutexGuard};

use homeward_store::StoreError;

pub use lock::{LockError, ServerLock};
pub use store::MIGRATOR;

/// How long a statement waits for another process's lock on the file (a command-line tool
/// beside the server) before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The store on one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    /// Connections that only read.
    read: SqlitePool,
    /// The connection for the writes made through sqlx; whoever writes holds it, the writer's
    /// thread too.
    writer: Mutex<SqliteConnection>,
    /// The thread that writes appends and rebuilds (see [`writer`]).
    writer_thread: writer::Writer,
    /// The number of the last transaction this store appended events in: followers wait for it
    /// to move.
    appended: watch::Sender<u64>,
    /// Tokens revoked, as they are.
    revoked: broadcast::Sender<uuid::Uuid>,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database at `path`, with `readers` connections that
    /// read. Does not migrate: see [`homeward_store::Backend::migrate`].
    pub async fn open(path: &Path, readers: u32) -> Result<Self, StoreError> {
        let options = connect_options(path);
        let mut writer = options.clone().connect().await?;
        // A file that is not a database fails here, before anything is written to it.
        sqlx::query("SELECT count(*) FROM sqlite_master")
            .execute(&mut writer)
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(readers.max(1))
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.create_if_missing(false))
            .await?;
        let last_tx = store::last_transaction(&mut writer).await?;
        let (appended, _) = watch::channel(last_tx);
        let (revoked, _) = broadcast::channel(256);
        let thread_db = writer::open(path)
            .map_err(|e| StoreError::Unexpected(format!("database error: {e}")))?;
        let (writer_thread, jobs) = writer::Writer::new();
        let inner = Arc::new(Inner {
            path: path.to_owned(),
            read,
            writer: Mutex::new(writer),
            writer_thread,
            appended,
            revoked,
        });
        jobs.start(path, thread_db, Arc::downgrade(&inner))?;
        Ok(Self { inner })
    }

    /// Opens the database named by a `sqlite://path` URL (or a bare path).
    pub async fn connect(url: &str, readers: u32) -> Result<Self, StoreError> {
        Self::open(&path_of(url), readers).await
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// How the connections that write keep the file: the journal mode, `synchronous` level (2
    /// is FULL) and whether deleted content is overwritten, each as the writer thread's
    /// connection (which commits every event) and sqlx's writing connection both have it, or
    /// an error naming the setting they differ on.
    pub async fn durability(&self) -> Result<(String, i64, bool), StoreError> {
        let thread = self
            .inner
            .writer_thread
            .run(|db| {
                let journal: String = db.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
                let synchronous: i64 = db.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
                let secure_delete: i64 = db.query_row("PRAGMA secure_delete", [], |r| r.get(0))?;
                Ok((journal, synchronous, secure_delete == 1))
            })
            .await?;
        let mut writer = self.writer().await;
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *writer)
            .await?;
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *writer)
            .await?;
        let secure_delete: i64 = sqlx::query_scalar("PRAGMA secure_delete")
            .fetch_one(&mut *writer)
            .await?;
        let sqlx_writer = (journal, synchronous, secure_delete == 1);
        if thread != sqlx_writer {
            return Err(StoreError::Unexpected(format!(
                "the writing connections keep the file differently: {thread:?} and {sqlx_writer:?}"
            )));
        }
        Ok(thread)
    }

    pub(crate) fn read_pool(&self) -> &SqlitePool {
        &self.inner.read
    }

    /// The writing connection, for one task at a time.
    pub(crate) async fn writer(&self) -> MutexGuard<'_, SqliteConnection> {
        self.inner.writer.lock().await
    }

    /// Wakes the followers after an import wrote events.
    pub(crate) async fn wake_followers(&self) -> Result<(), StoreError> {
        let mut writer = self.writer().await;
        let last = store::last_transaction(&mut writer).await?;
        self.inner.appended.send_replace(last);
        Ok(())
    }

    /// Announces a revoked token to every listener of this store.
    pub(crate) fn announce_revocation(&self, token: uuid::Uuid) {
        let _ = self.inner.revoked.send(token);
    }

    /// Copies the live database to `target` (which must not exist), consistent as of one
    /// moment, while the server keeps serving: SQLite's `VACUUM INTO`.
    pub async fn backup(&self, target: &Path) -> Result<(), StoreError> {
        let target = target
            .to_str()
            .ok_or_else(|| StoreError::Unexpected("the backup path is not valid UTF-8".into()))?;
        let mut reader = self.read_pool().acquire().await?;
        sqlx::query("VACUUM INTO ?")
            .bind(target)
            .execute(&mut *reader)
            .await?;
        // VACUUM INTO leaves the copy to the operating system's cache: on disk before it is
        // called a backup.
        let on_disk = |path: &Path| std::fs::File::open(path).and_then(|f| f.sync_all());
        on_disk(Path::new(target))
            .and_then(|()| match Path::new(target).parent() {
                Some(folder) if !folder.as_os_str().is_empty() => on_disk(folder),
                _ => on_disk(Path::new(".")),
            })
            .map_err(|e| StoreError::Unexpected(format!("the copy could not be synced: {e}")))?;
        Ok(())
    }
}

/// A time as it is kept: to the microsecond, as PostgreSQL keeps it, so that what one backend
/// exports the other imports unchanged.
pub(crate) fn stored(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    chrono::SubsecRound::trunc_subsecs(t, 6)
}

/// The file a `sqlite://` URL names (query parameters ignored).
pub fn path_of(url: &str) -> PathBuf {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    PathBuf::from(rest.split('?').next().unwrap_or(rest))
}

/// WAL (readers beside the writer), `synchronous=FULL` (a commit is on disk before it is
/// acknowledged, even if the machine loses power), foreign writers waited for, and deleted
/// content overwritten.
fn connect_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT)
        // An erased survivor's wrapped key is overwritten on disk, not left in a free page.
        .pragma("secure_delete", "ON")
        .foreign_keys(false)
        .statement_cache_capacity(256)
        .disable_statement_logging()
}

/// Runs `work` in one write transaction (`BEGIN IMMEDIATE`): committed if it succeeds, rolled
/// back if not. A transaction that cannot be ended replaces the writing connection (see
/// [`reopen`]).
macro_rules! write_transaction {
    ($store:expr, |$tx:ident| $work:expr) => {{
        let mut writer = $store.writer().await;
        let mut $tx = sqlx::Connection::begin_with(&mut *writer, "BEGIN IMMEDIATE").await?;
        let result: Result<_, homeward_store::StoreError> = async { $work }.await;
        let ended = match &result {
            Ok(_) => $tx.commit().await,
            Err(_) => $tx.rollback().await,
        };
        match (result, ended) {
            (Ok(value), Ok(())) => Ok(value),
            (Err(e), Ok(())) => Err(e),
            (Ok(_), Err(e)) | (Err(_), Err(e)) => {
                $crate::reopen($store.path(), &mut writer).await;
                Err(e.into())
            }
        }
    }};
}
pub(crate) use write_transaction;

/// Replaces the writing connection with a new one after a failure that may have left it
/// unusable (SQLite ended a transaction by itself on a full disk or an I/O error, and the
/// driver still counts it as open): the next write starts afresh. If the file cannot be
/// opened, the old connection stays, and writes go on failing until it can.
pub(crate) async fn reopen(path: &Path, writer: &mut SqliteConnection) {
    match connect_options(path).connect().await {
        Ok(fresh) => {
            tracing::warn!("the SQLite writing connection failed; a new one replaces it");
            let old = std::mem::replace(writer, fresh);
            let _ = old.close().await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "the SQLite writing connection failed and cannot be reopened")
        }
    }
}

/// Closes the readers and folds the write-ahead log into the file: used by
/// [`homeward_store::Backend::close`].
pub(crate) async fn close(store: &SqliteStore) {
    store.inner.read.close().await;
    let mut writer = store.writer().await;
    let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut *writer)
        .await;
}
