//! The event log on PostgreSQL.
//!
//! Appends go through the group-commit queue (`batch`): one call of an append function per
//! transaction (`homeward_append_commands`, or `homeward_append_edits` for a batch of everyday
//! edits) takes every stream's advisory lock before its first write, then finds what would stop
//! an append (a repeated command id, a stream not at the expected version, a taken idempotency
//! key) and writes nothing if anything does, or else inserts the events, records the keys and
//! applies the projection changes. See `migrations/functions/postgres.sql` for the SQL and
//! `read_all` for how catch-up readers stay in commit order.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use tokio::sync::mpsc;
use uuid::Uuid;

use homeward_store::person_keys::PersonKey;
use homeward_store::{
    Append, Appended, Cursor, EventStore, ReadUntil, RecordedEvent, StoreError, StreamsAndKeys,
};

use crate::batch::{Batcher, DEFAULT_FLUSHES_IN_FLIGHT};
use crate::lane::Lane;

/// The migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// The SQL functions, one current body each, applied after the migrations at every start.
pub const FUNCTIONS: &str = include_str!("../../../migrations/functions/postgres.sql");

/// The advisory lock a start holds while it migrates and applies the functions, so replicas
/// starting together do it one after another.
const SCHEMA_LOCK: i64 = 0x686f_6d65_7761_7264; // "homeward"

/// The channel readers LISTEN on. A coalesced hint only: readers also poll.
pub const NOTIFY_CHANNEL: &str = "homeward_events";

/// The columns of [`RecordedEvent`]. The transaction id (`xid8`, which has no binary decoding in
/// sqlx) is read as a number under another name: an output column called `tx_id` would make
/// `ORDER BY tx_id` sort the output column instead of the stored one.
macro_rules! event_columns {
    () => {
        "global_position, tx_id::text::bigint AS tx_number, stream_id, stream_version, event_id, \
         command_id, event_type, schema_version, payload::text AS payload, metadata, \
         occurred_at, recorded_at"
    };
}
pub(crate) use event_columns;

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Where a read runs again when the pooled connection it was given had been ended by the
    /// server: a few connections, each checked (one round trip) before it is handed out.
    checked: PgPool,
    batcher: Batcher,
    /// Where token checks run (see `lane`).
    pub(crate) tokens: Lane,
    /// The access audit's connection: one writer commits its batches, one at a time, without
    /// the round trip the pool sends when a connection is given back (see `access_log`).
    pub(crate) audit: Arc<tokio::sync::Mutex<crate::batch::Slot>>,
}

/// A pooled connection unused for longer than this is checked (one round trip) before it is
/// handed out. One used more recently is handed out as it is: sqlx would otherwise check every
/// connection it hands out, a round trip before every statement. A connection the server ended
/// within this time fails the one statement sent on it, and the pool then drops it: a read runs
/// again on a checked connection ([`PgStore::read`]), and so does a transaction that failed at
/// its `BEGIN` ([`PgStore::begin`]); an append is retried by the group commit, which holds
/// connections of its own.
pub const CHECK_POOLED_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Connections of the pool a read runs again on when its pooled connection was gone (see
/// [`PgStore::read`]).
const READ_AGAIN_CONNECTIONS: u32 = 2;

/// How the store's pool is made: at most `max_connections`, each checked before use only when
/// it was idle for [`CHECK_POOLED_AFTER_IDLE`].
pub fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(30))
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for > CHECK_POOLED_AFTER_IDLE {
                    sqlx::Connection::ping(connection).await?;
                }
                Ok(true)
            })
        })
}

impl PgStore {
    /// Connects a pool of `max_connections`, plus a connection for each group-commit flush in
    /// flight ([`DEFAULT_FLUSHES_IN_FLIGHT`]), opened when first needed.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        Self::connect_with_flushes(url, max_connections, DEFAULT_FLUSHES_IN_FLIGHT).await
    }

    /// Connects a pool of `max_connections`, with at most `flushes_in_flight` group-commit
    /// transactions running at once, each on a connection of its own (fewer make larger
    /// batches; the benchmark compares them).
    pub async fn connect_with_flushes(
        url: &str,
        max_connections: u32,
        flushes_in_flight: usize,
    ) -> Result<Self, StoreError> {
        let pool = pool_options(max_connections).connect(url).await?;
        Ok(Self::from_pool_with_flushes(pool, flushes_in_flight))
    }

    /// Wraps an existing pool. Must be called inside a Tokio runtime: it starts the task that
    /// sends coalesced wake-up notifications after commits.
    pub fn from_pool(pool: PgPool) -> Self {
        Self::from_pool_with_flushes(pool, DEFAULT_FLUSHES_IN_FLIGHT)
    }

    fn from_pool_with_flushes(pool: PgPool, flushes_in_flight: usize) -> Self {
        // Capacity 1: any number of commits while a NOTIFY is pending collapse into one.
        let (wake, mut pending) = mpsc::channel::<()>(1);
        let notify_pool = pool.clone();
        tokio::spawn(async move {
            while pending.recv().await.is_some() {
                let sent = sqlx::query("SELECT pg_notify($1, '')")
                    .bind(NOTIFY_CHANNEL)
                    .execute(&notify_pool)
                    .await;
                if let Err(e) = sent {
                    tracing::debug!(error = %e, "wake-up notification not sent; readers poll");
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let batcher = Batcher::start(pool.clone(), flushes_in_flight, wake);
        let tokens = Lane::new(&pool);
        let audit = Arc::new(tokio::sync::Mutex::new(crate::batch::Slot::new(&pool)));
        let checked = PgPoolOptions::new()
            .max_connections(READ_AGAIN_CONNECTIONS)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(30))
            .idle_timeout(Duration::from_secs(60))
            .test_before_acquire(true)
            .connect_lazy_with((*pool.connect_options()).clone());
        Self {
            pool,
            checked,
            batcher,
            tokens,
            audit,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs `read` on the pool; if the connection it was given turned out to be gone, once
    /// more on a connection checked first. The pool hands out a connection used within
    /// [`CHECK_POOLED_AFTER_IDLE`] unchecked, so after PostgreSQL ended its connections (a
    /// restart, a failover) each such connection fails the one statement sent on it; the pool
    /// then drops it, and the read is answered all the same. Only for statements that change
    /// nothing: a statement whose connection broke may have run.
    pub(crate) async fn read<'p, T, Fut>(
        &'p self,
        read: impl Fn(&'p PgPool) -> Fut,
    ) -> Result<T, sqlx::Error>
    where
        Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
    {
        match read(&self.pool).await {
            Err(e) if crate::lane::broken(&e) => {
                tracing::debug!(error = %e, "a pooled connection was gone; reading again");
                read(&self.checked).await
            }
            result => result,
        }
    }

    /// The events of `stream_id` after version `after`, up to `until` when given: through a
    /// function, planned once per connection (sent as a statement, a generic plan could not know
    /// how few events follow, and the read was planned afresh at every call; see
    /// migrations/functions/postgres.sql).
    async fn read_stream_between(
        &self,
        stream_id: &str,
        after: u64,
        until: Option<u64>,
    ) -> Result<Vec<RecordedEvent>, sqlx::Error> {
        self.read(|pool| {
            sqlx::query_as("SELECT * FROM homeward_read_stream($1, $2, $3)")
                .bind(stream_id)
                .bind(after as i64)
                .bind(until.map(|v| v as i64))
                .fetch_all(pool)
        })
        .await
    }

    /// Starts a transaction on the pool; if the connection it was given turned out to be gone
    /// (ended by the server: a restart, a failover), on a connection checked first. Nothing
    /// ran on a connection that failed at `BEGIN`, so starting again is always safe; a
    /// transaction whose connection breaks after `BEGIN` fails, and nothing of it is committed.
    pub(crate) async fn begin(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        match self.pool.begin().await {
            Err(e) if crate::lane::broken(&e) => {
                tracing::debug!(error = %e, "a pooled connection was gone; beginning again");
                self.checked.begin().await
            }
            result => result,
        }
    }

    /// A write that leaves the same as one run when it runs twice (a time moved forward):
    /// run once more, as [`PgStore::read`] runs a read, when its pooled connection was gone.
    pub(crate) async fn rerunnable_write<'p, T, Fut>(
        &'p self,
        write: impl Fn(&'p PgPool) -> Fut,
    ) -> Result<T, sqlx::Error>
    where
        Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
    {
        self.read(write).await
    }

    /// Appends these in one transaction, as one batch, as group commit does under load, but
    /// with a known shape. Each append still succeeds or fails on its own. For tests.
    #[doc(hidden)]
    pub async fn append_together(&self, appends: &[Append]) -> Vec<Result<Appended, StoreError>> {
        self.batcher.append_together(appends).await
    }

    /// How many transactions group commit has sent so far, and how many appends they carried.
    pub fn group_commit_stats(&self) -> crate::GroupCommitStats {
        self.batcher.stats()
    }

    /// Applies the embedded migrations, then the SQL functions' current bodies, one start at a
    /// time.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        apply_schema(&self.pool).await
    }

    /// A server-wide secret shared by every replica (e.g. the key that signs partner links):
    /// created at random the first time it is asked for, the same ever after.
    pub async fn server_secret(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        let mut fresh = Vec::with_capacity(32);
        fresh.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        fresh.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        self.remember(name, &fresh).await
    }

    /// The value kept under `name`: `value` if there was none.
    async fn remember(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        sqlx::query(
            "INSERT INTO server_secrets (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT secret FROM server_secrets WHERE name = $1")
                .bind(name)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// The position after the last event a catch-up reader can see now: where a follower that
    /// only wants new events starts.
    pub async fn head(&self) -> Result<Cursor, StoreError> {
        let row: Option<(String, i64)> = self
            .read(|pool| {
                sqlx::query_as(
                    "SELECT tx_id::text, global_position FROM events \
                     WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot()) \
                     ORDER BY tx_id DESC, global_position DESC LIMIT 1",
                )
                .fetch_optional(pool)
            })
            .await?;
        match row {
            None => Ok(Cursor::START),
            Some((tx, position)) => Ok(Cursor {
                tx_id: tx
                    .parse()
                    .map_err(|_| StoreError::Unexpected(format!("transaction id {tx}")))?,
                position,
            }),
        }
    }

    /// Follows the global stream from `from`, woken by notifications and polling as a backup.
    pub async fn subscribe(
        &self,
        from: Cursor,
    ) -> Result<homeward_store::Subscription, StoreError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        Ok(homeward_store::Subscription::new(
            Arc::new(self.clone()),
            Some(Box::new(Notifications(listener))),
            from,
        ))
    }
}

/// The migrations, then the functions, under the schema lock (released with the session if
/// this fails).
async fn apply_schema(pool: &PgPool) -> Result<(), StoreError> {
    let mut connection = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(SCHEMA_LOCK)
        .execute(&mut *connection)
        .await?;
    // What was already there ("relation ... already exists, skipping", "function ... does not
    // exist, skipping") is said at every start as a notice: not worth a log line.
    sqlx::query("SET client_min_messages = warning")
        .execute(&mut *connection)
        .await?;
    let mut applied = MIGRATOR
        .run_direct(&mut *connection)
        .await
        .map_err(StoreError::from);
    if applied.is_ok() {
        // Several statements: sent as one simple query.
        applied = sqlx::Executor::execute(&mut *connection, FUNCTIONS)
            .await
            .map(|_| ())
            .map_err(StoreError::from);
    }
    let _ = sqlx::query("RESET client_min_messages")
        .execute(&mut *connection)
        .await;
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(SCHEMA_LOCK)
        .execute(&mut *connection)
        .await;
    applied
}

/// `LISTEN/NOTIFY` as a follower's wake-up: appends notify, coalesced, after they commit.
#[derive(Debug)]
struct Notifications(PgListener);

#[async_trait]
impl homeward_store::WakeUp for Notifications {
    async fn wait(&mut self) -> Result<(), StoreError> {
        // The listener reconnects on its next recv after a failure.
        self.0.recv().await?;
        Ok(())
    }
}

#[async_trait]
impl homeward_store::Backend for PgStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        PgStore::migrate(self).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn head(&self) -> Result<Cursor, StoreError> {
        PgStore::head(self).await
    }

    async fn subscribe(&self, from: Cursor) -> Result<homeward_store::Subscription, StoreError> {
        PgStore::subscribe(self, from).await
    }

    async fn rebuild_projections(&self) -> Result<homeward_store::RebuildReport, StoreError> {
        crate::rebuild(&self.pool).await
    }

    async fn server_secret(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        PgStore::server_secret(self, name).await
    }

    async fn master_key_check(&self, offered: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.remember("master_key_check", offered).await
    }

    async fn search_key_check(&self, offered: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.remember("search_key_check", offered).await
    }

    fn connections(&self) -> homeward_store::Connections {
        let open = self.pool.size();
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        homeward_store::Connections {
            in_use: open.saturating_sub(idle),
            idle,
            max: self.pool.options().get_max_connections(),
        }
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl EventStore for PgStore {
    async fn append(&self, append: Append) -> Result<Appended, StoreError> {
        self.batcher.append(append).await
    }

    async fn command_result(&self, command_id: Uuid) -> Result<Option<Appended>, StoreError> {
        command_result(&self.pool, command_id).await
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        until: ReadUntil,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = match until {
            ReadUntil::End => return self.read_stream_after(stream_id, 0).await,
            ReadUntil::Version(v) => self.read_stream_between(stream_id, 0, Some(v)).await?,
            ReadUntil::Time(t) => {
                self.read(|pool| {
                    sqlx::query_as(concat!(
                        "SELECT ",
                        event_columns!(),
                        " FROM events WHERE stream_id = $1 AND stream_version < coalesce( \
                       (SELECT min(stream_version) FROM events \
                        WHERE stream_id = $1 AND occurred_at > $2), 9223372036854775807) \
                     ORDER BY stream_version"
                    ))
                    .bind(stream_id)
                    .bind(t)
                    .fetch_all(pool)
                })
                .await?
            }
        };
        Ok(rows)
    }

    async fn read_stream_after(
        &self,
        stream_id: &str,
        after: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(self.read_stream_between(stream_id, after, None).await?)
    }

    async fn read_streams_after(
        &self,
        streams: &[(String, u64)],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if streams.is_empty() {
            return Ok(Vec::new());
        }
        let (ids, afters): (Vec<&str>, Vec<i64>) =
            streams.iter().map(|(s, v)| (s.as_str(), *v as i64)).unzip();
        // A function, planned once per connection (see migrations/functions/postgres.sql).
        let rows: Vec<RecordedEvent> = self
            .read(|pool| {
                sqlx::query_as("SELECT * FROM homeward_read_streams_after($1, $2)")
                    .bind(&ids)
                    .bind(&afters)
                    .fetch_all(pool)
            })
            .await?;
        Ok(rows)
    }

    async fn read_streams_after_with_keys(
        &self,
        streams: &[(String, u64)],
        persons: &[Uuid],
    ) -> Result<StreamsAndKeys, StoreError> {
        use sqlx::{FromRow, Row};
        let (ids, afters): (Vec<&str>, Vec<i64>) =
            streams.iter().map(|(s, v)| (s.as_str(), *v as i64)).unzip();
        // One statement, two kinds of row: the events (no key columns), then the keys (no
        // event columns), told apart by `key_person`. A function, planned once per connection
        // (see migrations/functions/postgres.sql).
        let rows = self
            .read(|pool| {
                sqlx::query("SELECT * FROM homeward_read_streams_after_with_keys($1, $2, $3)")
                    .bind(&ids)
                    .bind(&afters)
                    .bind(persons)
                    .fetch_all(pool)
            })
            .await?;
        let mut read = StreamsAndKeys::default();
        for row in rows {
            match row.try_get::<Option<Uuid>, _>("key_person")? {
                Some(person) => read.keys.push((
                    person,
                    PersonKey::from_stored(row.try_get("wrapped_key")?, row.try_get("erased_at")?)?,
                )),
                None => read.events.push(RecordedEvent::from_row(&row)?),
            }
        }
        Ok(read)
    }

    async fn read_all(&self, after: Cursor, limit: i64) -> Result<Vec<RecordedEvent>, StoreError> {
        // Positions come from a sequence and become visible out of order when transactions
        // commit concurrently. Reading only below the oldest running transaction
        // (pg_snapshot_xmin) and ordering by (tx_id, position) means nothing can later appear
        // behind the cursor. The row-value comparison uses the (tx_id, global_position) index.
        let rows: Vec<RecordedEvent> = self
            .read(|pool| {
                sqlx::query_as(concat!(
                    "SELECT ",
                    event_columns!(),
                    " FROM events \
             WHERE (tx_id, global_position) > ($1::text::xid8, $2) \
               AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY tx_id, global_position LIMIT $3"
                ))
                .bind(after.tx_id.to_string())
                .bind(after.position)
                .bind(limit)
                .fetch_all(pool)
            })
            .await?;
        Ok(rows)
    }
}

/// The result of a command appended before: found by the id of its first event.
pub(crate) async fn command_result(
    db: impl sqlx::PgExecutor<'_>,
    command_id: Uuid,
) -> Result<Option<Appended>, StoreError> {
    let row: Option<(String, i64, i64)> = sqlx::query_as(
        "SELECT e.stream_id, e.stream_version, \
           (SELECT max(l.stream_version) FROM events l \
             WHERE l.stream_id = e.stream_id AND l.command_id = e.command_id) \
         FROM events e WHERE e.event_id = $1",
    )
    .bind(Append::event_id(command_id, 0))
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(stream_id, first, last)| Appended {
        stream_id,
        first_version: first as u64,
        last_version: last as u64,
        duplicate: true,
    }))
}
