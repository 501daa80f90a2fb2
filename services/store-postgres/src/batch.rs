//! Group commit: concurrent appends share a transaction.
//!
//! Every append goes through one queue. A flush takes what is queued (up to [`MAX_BATCH`]) and
//! appends it in one transaction with one commit and one statement per table. At most a few
//! flushes run at once. A lone writer's append is flushed alone, at once; under load the
//! appends that arrive while the flushes are busy go together in the next one, so they share
//! its costs.
//!
//! Each append in a batch still succeeds or fails on its own. A batch whose appends all name
//! their version, each on its own stream (what the command handler sends), even a batch of one,
//! goes first through `homeward_append_exact`, which writes all or nothing in few statements,
//! with the read-model rows as typed arrays in the binary format; if one append conflicts or
//! was sent before, `homeward_append_batch` decides the appends one at a time in the same
//! single transaction. If a batch fails as a whole, its appends are retried one by one so that
//! one bad append fails alone.
//!
//! Each flush runs on a connection of its own, held by its slot rather than taken from the
//! pool: sqlx pings a pooled connection when it is acquired and again when it is released, two
//! round trips that would cost a group-commit transaction more than its commit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, PgPool, Row};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use homeward_store::{Append, Appended, Metadata};

use crate::store::command_result;
use homeward_store::projection::{
    DigestRow, PartyRow, PlanRow, ProjectionChange, StepRef, StepRow, TimerRow,
};
use homeward_store::StoreError;

/// How many batches may be in flight at once (each holds a connection while it runs). Fewer
/// flushes make larger batches, which share a commit and the statements' fixed costs; more let
/// small batches go at once. On a 2-core machine two and four measured alike at 16 writers and
/// four did better at 4 writers (BENCHMARKS.md, session 8). `HOMEWARD_APPEND_FLUSHES` sets it.
pub const DEFAULT_FLUSHES_IN_FLIGHT: usize = 4;
/// The most appends one transaction carries.
pub const MAX_BATCH: usize = 64;
/// A slot's connection unused for this long is checked (one round trip) before a flush, as
/// the pool checks its idle connections: the server or the network may have dropped it.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(10);

struct Pending {
    append: Append,
    reply: oneshot::Sender<Result<Appended, StoreError>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Batcher {
    queue: mpsc::UnboundedSender<Pending>,
    pool: PgPool,
    wake: mpsc::Sender<()>,
    counts: Arc<Counts>,
}

/// How many transactions group commit has sent, and how many appends they carried: the mean
/// batch size, which decides how far the commit and the statements' fixed costs are shared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupCommitStats {
    pub flushes: u64,
    pub appends: u64,
}

#[derive(Debug, Default)]
struct Counts {
    flushes: AtomicU64,
    appends: AtomicU64,
}

/// Where one flush runs: a connection of its own, opened when first needed and again after it
/// failed.
pub(crate) struct Slot {
    options: Arc<PgConnectOptions>,
    pub(crate) connection: Option<PgConnection>,
    last_used: Instant,
}

impl Slot {
    pub(crate) fn new(pool: &PgPool) -> Self {
        Self {
            options: pool.connect_options(),
            connection: None,
            last_used: Instant::now(),
        }
    }

    /// The slot's connection, checked first if it sat idle for a while; a new one if it has
    /// none or the check failed.
    pub(crate) async fn connection(&mut self) -> Result<&mut PgConnection, sqlx::Error> {
        let idle = self.last_used.elapsed();
        self.last_used = Instant::now();
        if let Some(mut stale) = self.connection.take() {
            if idle < CHECK_AFTER_IDLE || stale.ping().await.is_ok() {
                self.connection = Some(stale);
            }
        }
        match &mut self.connection {
            Some(connection) => Ok(connection),
            empty => Ok(empty.insert(PgConnection::connect_with(&self.options).await?)),
        }
    }
}

impl Batcher {
    /// Starts the flushing task. `wake` is signalled after every commit that appended.
    pub(crate) fn start(pool: PgPool, flushes_in_flight: usize, wake: mpsc::Sender<()>) -> Self {
        let (queue, queued) = mpsc::unbounded_channel::<Pending>();
        let counts = Arc::new(Counts::default());
        let this = Self {
            queue,
            pool: pool.clone(),
            wake: wake.clone(),
            counts: counts.clone(),
        };
        group_commit(
            pool,
            flushes_in_flight,
            MAX_BATCH,
            queued,
            move |mut slot, batch| {
                counts.flushes.fetch_add(1, Ordering::Relaxed);
                counts
                    .appends
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                let wake = wake.clone();
                async move {
                    flush(&mut slot, batch, &wake).await;
                    slot
                }
            },
        );
        this
    }

    pub(crate) fn stats(&self) -> GroupCommitStats {
        GroupCommitStats {
            flushes: self.counts.flushes.load(Ordering::Relaxed),
            appends: self.counts.appends.load(Ordering::Relaxed),
        }
    }

    pub(crate) async fn append(&self, append: Append) -> Result<Appended, StoreError> {
        if append.events.is_empty() {
            return Err(StoreError::Unexpected(
                "an append needs at least one event".into(),
            ));
        }
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { append, reply })
            .map_err(|_| StoreError::Unexpected("the append queue has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unexpected("the append was dropped unanswered".into()))?
    }

    /// Appends these in one transaction, as one batch, whatever else is queued: a batch of a
    /// known shape, for the tests that must reach each path of a batch.
    pub(crate) async fn append_together(
        &self,
        appends: &[Append],
    ) -> Vec<Result<Appended, StoreError>> {
        match self.pool.acquire().await {
            Ok(mut connection) => write(&mut connection, appends, &self.wake).await,
            Err(e) => unanswered(appends, &e),
        }
    }
}

/// Group commit's dispatch, for appends and for idempotency keys alike: what queues while every
/// slot is busy goes out together (up to `max`) on the next free slot, at most `slots` at once.
/// `work` gets the slot and gives it back when its transaction is done.
pub(crate) fn group_commit<T, F, Fut>(
    pool: PgPool,
    slots: usize,
    max: usize,
    mut queued: mpsc::UnboundedReceiver<T>,
    work: F,
) where
    T: Send + 'static,
    F: Fn(Slot, Vec<T>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Slot> + Send + 'static,
{
    let slots = slots.max(1);
    let (free, mut free_slots) = mpsc::channel::<Slot>(slots);
    for _ in 0..slots {
        let _ = free.try_send(Slot::new(&pool));
    }
    tokio::spawn(async move {
        while let Some(first) = queued.recv().await {
            let Some(slot) = free_slots.recv().await else {
                return;
            };
            // While this waited for a free slot, more may have queued.
            let mut batch = vec![first];
            while batch.len() < max {
                match queued.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            let (free, done) = (free.clone(), work(slot, batch));
            tokio::spawn(async move {
                let _ = free.send(done.await).await;
            });
        }
    });
}

async fn flush(slot: &mut Slot, batch: Vec<Pending>, wake: &mpsc::Sender<()>) {
    let (appends, replies): (Vec<Append>, Vec<_>) =
        batch.into_iter().map(|p| (p.append, p.reply)).unzip();
    let mut results = write_on(slot, &appends, wake).await;
    let broken: Vec<usize> = (0..results.len())
        .filter(|&i| connection_suspect(&results[i]))
        .collect();
    if !broken.is_empty() {
        // The connection may have been dropped (a server restart, a network failure) with the
        // appends or only with their answers: they go once more on a new connection. Appends
        // are idempotent by command id, so one that did commit gets its first result back.
        tracing::warn!(
            appends = broken.len(),
            "flush connection failed; appending again"
        );
        slot.connection = None;
        let again: Vec<Append> = broken.iter().map(|&i| appends[i].clone()).collect();
        let retried = write_on(slot, &again, wake).await;
        if retried.iter().any(connection_suspect) {
            slot.connection = None;
        }
        for (i, result) in broken.into_iter().zip(retried) {
            results[i] = result;
        }
    }
    for (reply, result) in replies.into_iter().zip(results) {
        // A caller that went away no longer needs its answer; the append stands.
        let _ = reply.send(result);
    }
}

/// Appends on the slot's connection (opened if it has none).
async fn write_on(
    slot: &mut Slot,
    appends: &[Append],
    wake: &mpsc::Sender<()>,
) -> Vec<Result<Appended, StoreError>> {
    match slot.connection().await {
        Ok(connection) => write(connection, appends, wake).await,
        Err(e) => unanswered(appends, &e),
    }
}

/// One failure per append, when the batch could not be sent at all.
fn unanswered(appends: &[Append], e: &sqlx::Error) -> Vec<Result<Appended, StoreError>> {
    let message = e.to_string();
    appends
        .iter()
        .map(|_| Err(StoreError::Unexpected(message.clone())))
        .collect()
}

/// An error that may have left the connection unusable: anything but a conflict or a statement
/// the database refused, and among those the connection failures and the sessions the server
/// ended (SQLSTATE classes 08 and 57, e.g. 57P01 when the server shuts down).
fn connection_suspect(result: &Result<Appended, StoreError>) -> bool {
    match result {
        Ok(_) | Err(StoreError::Conflict { .. }) => false,
        Err(StoreError::Database(sqlx::Error::Database(db))) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57")),
        Err(_) => true,
    }
}

/// Appends one transaction's worth and wakes the readers if anything was appended.
async fn write(
    db: &mut PgConnection,
    appends: &[Append],
    wake: &mpsc::Sender<()>,
) -> Vec<Result<Appended, StoreError>> {
    let results = match appends {
        // An append that does not name its version goes alone through the function that
        // finds it; every other batch, even of one, goes the typed exact way first.
        [one] if one.expected_version.as_sql().is_none() => vec![append_one(db, one).await],
        _ => append_many(db, appends).await,
    };
    let appended: u64 = results
        .iter()
        .filter_map(|r| r.as_ref().ok().filter(|a| !a.duplicate))
        .map(|a| a.last_version + 1 - a.first_version)
        .sum();
    metrics::histogram!("homeward_append_batch_size").record(appends.len() as f64);
    metrics::counter!("homeward_events_appended_total").increment(appended);
    if appended > 0 {
        let _ = wake.try_send(());
    }
    results
}

/// Appends in one transaction; one by one if the batch fails as a whole.
async fn append_many(
    db: &mut PgConnection,
    appends: &[Append],
) -> Vec<Result<Appended, StoreError>> {
    let arrays = BatchArrays::of(appends);
    let first_try = if arrays.exact_and_distinct() {
        // The common case, in few statements; refused as a whole if some append is not at its
        // version or was appended before, and then decided append by append.
        match append_exact(db, appends, &arrays).await {
            Err(e) if refused(&e) || unique_violation(&e, "events_event_id_key") => {
                append_batch(db, appends, &arrays, false).await
            }
            other => other,
        }
    } else {
        match append_batch(db, appends, &arrays, true).await {
            // Some append did not go through, so the merged projection does not apply.
            Err(e) if refused(&e) => append_batch(db, appends, &arrays, false).await,
            other => other,
        }
    };
    match first_try {
        Ok(results) => results,
        // Each append then fails (or succeeds) on its own, with its own error.
        Err(e) => {
            tracing::warn!(error = %e, appends = appends.len(), "batch failed; appending one by one");
            let mut results = Vec::with_capacity(appends.len());
            for append in appends {
                results.push(append_one(db, append).await);
            }
            results
        }
    }
}

/// One append on its own, by `homeward_append` (two statements before the projection): an
/// append that does not name its version, or one of a batch that failed as a whole.
async fn append_one(db: &mut PgConnection, append: &Append) -> Result<Appended, StoreError> {
    let n = append.events.len();
    let ids: Vec<Uuid> = (0..n)
        .map(|i| Append::event_id(append.command_id, i))
        .collect();
    let types: Vec<&str> = append
        .events
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    let versions: Vec<i16> = append.events.iter().map(|e| e.schema_version).collect();
    let payloads: Vec<&serde_json::Value> = append.events.iter().map(|e| &e.payload).collect();
    let result = sqlx::query(
        "SELECT first_version, last_version \
         FROM homeward_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&append.stream_id)
    .bind(append.stream_type)
    .bind(append.expected_version.as_sql())
    .bind(append.command_id)
    .bind(&ids)
    .bind(&types)
    .bind(&versions)
    .bind(&payloads)
    .bind(sqlx::types::Json(&append.metadata))
    .bind(append.occurred_at)
    .bind((!append.projection.is_empty()).then_some(sqlx::types::Json(&append.projection)))
    .fetch_one(&mut *db)
    .await;
    let written = match result {
        Ok(row) => (
            row.try_get::<Option<i64>, _>("first_version")?,
            row.try_get::<Option<i64>, _>("last_version")?,
        ),
        // The first event id exists: this command was appended before.
        Err(e) if unique_violation(&e, "events_event_id_key") => {
            return earlier_result(db, append.command_id).await;
        }
        // The stream moved past the expected version.
        Err(e) if unique_violation(&e, "events_stream_id_stream_version_key") => (None, None),
        Err(e) => return Err(e.into()),
    };
    match written {
        (Some(first), Some(last)) => Ok(Appended {
            stream_id: append.stream_id.clone(),
            first_version: first as u64,
            last_version: last as u64,
            duplicate: false,
        }),
        // Not at the expected version. A retry of a command that went through also lands
        // here (the stream moved on): then it gets its first result.
        _ => match command_result(&mut *db, append.command_id).await? {
            Some(done) => Ok(done),
            None => Err(StoreError::Conflict {
                actual: head_version(db, &append.stream_id).await?,
                stream_id: append.stream_id.clone(),
                expected: append.expected_version.as_sql().unwrap_or_default() as u64,
            }),
        },
    }
}

/// The version of a stream's last event (0 for a stream that does not exist).
async fn head_version(db: &mut PgConnection, stream_id: &str) -> Result<u64, StoreError> {
    let head: Option<i64> =
        sqlx::query_scalar("SELECT max(stream_version) FROM events WHERE stream_id = $1")
            .bind(stream_id)
            .fetch_one(db)
            .await?;
    Ok(head.unwrap_or(0) as u64)
}

async fn earlier_result(db: &mut PgConnection, command_id: Uuid) -> Result<Appended, StoreError> {
    command_result(db, command_id).await?.ok_or_else(|| {
        StoreError::Unexpected(format!(
            "command {command_id} is stored but cannot be found"
        ))
    })
}

fn unique_violation(e: &sqlx::Error, constraint: &str) -> bool {
    matches!(e, sqlx::Error::Database(db)
        if db.code().as_deref() == Some("23505") && db.constraint() == Some(constraint))
}

/// The batch was refused as a whole (SQLSTATE HW001) because some append did not go through:
/// the merged projection, or the exact-version path, does not apply.
fn refused(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("HW001"))
}

/// A batch's appends as the column arrays the batch functions take: per append, and per event.
struct BatchArrays<'a> {
    stream_ids: Vec<&'a str>,
    stream_types: Vec<&'static str>,
    expected: Vec<Option<i64>>,
    command_ids: Vec<Uuid>,
    metadata: Vec<sqlx::types::Json<&'a Metadata>>,
    occurred_at: Vec<chrono::DateTime<chrono::Utc>>,
    /// For each event, the 1-based index of its append.
    event_append: Vec<i32>,
    /// For each event, its append's stream, and its version if the append names its own: the
    /// expected version plus the event's place in the append (1-based).
    event_streams: Vec<&'a str>,
    event_versions: Vec<Option<i64>>,
    event_ids: Vec<Uuid>,
    event_command_ids: Vec<Uuid>,
    event_types: Vec<&'a str>,
    schema_versions: Vec<i16>,
    payloads: Vec<&'a serde_json::Value>,
    event_metadata: Vec<sqlx::types::Json<&'a Metadata>>,
    event_occurred_at: Vec<chrono::DateTime<chrono::Utc>>,
    distinct_streams: bool,
}

impl<'a> BatchArrays<'a> {
    fn of(appends: &'a [Append]) -> Self {
        let events: usize = appends.iter().map(|a| a.events.len()).sum();
        let mut arrays = Self {
            stream_ids: appends.iter().map(|a| a.stream_id.as_str()).collect(),
            stream_types: appends.iter().map(|a| a.stream_type).collect(),
            expected: appends
                .iter()
                .map(|a| a.expected_version.as_sql())
                .collect(),
            command_ids: appends.iter().map(|a| a.command_id).collect(),
            metadata: appends
                .iter()
                .map(|a| sqlx::types::Json(&a.metadata))
                .collect(),
            occurred_at: appends.iter().map(|a| a.occurred_at).collect(),
            event_append: Vec::with_capacity(events),
            event_streams: Vec::with_capacity(events),
            event_versions: Vec::with_capacity(events),
            event_ids: Vec::with_capacity(events),
            event_command_ids: Vec::with_capacity(events),
            event_types: Vec::with_capacity(events),
            schema_versions: Vec::with_capacity(events),
            payloads: Vec::with_capacity(events),
            event_metadata: Vec::with_capacity(events),
            event_occurred_at: Vec::with_capacity(events),
            distinct_streams: false,
        };
        for (i, append) in appends.iter().enumerate() {
            let expected = append.expected_version.as_sql();
            for (k, event) in append.events.iter().enumerate() {
                arrays.event_append.push(i as i32 + 1);
                arrays.event_streams.push(&append.stream_id);
                arrays
                    .event_versions
                    .push(expected.map(|v| v + k as i64 + 1));
                arrays
                    .event_ids
                    .push(Append::event_id(append.command_id, k));
                arrays.event_command_ids.push(append.command_id);
                arrays.event_types.push(event.event_type.as_str());
                arrays.schema_versions.push(event.schema_version);
                arrays.payloads.push(&event.payload);
                arrays
                    .event_metadata
                    .push(sqlx::types::Json(&append.metadata));
                arrays.event_occurred_at.push(append.occurred_at);
            }
        }
        let mut distinct = arrays.stream_ids.clone();
        distinct.sort_unstable();
        distinct.dedup();
        arrays.distinct_streams = distinct.len() == appends.len();
        arrays
    }

    /// Every append names its version and its own stream: `homeward_append_exact` applies.
    fn exact_and_distinct(&self) -> bool {
        self.distinct_streams && self.expected.iter().all(Option::is_some)
    }
}

/// The read-model rows of appends to distinct streams, gathered as one change: borrowed, not
/// copied. `homeward_append_exact` takes them as typed arrays; serialised, they are the JSON
/// form of a [`ProjectionChange`] that `homeward_append_batch` takes.
#[derive(Debug, Default, serde::Serialize)]
struct MergedRows<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    plans: Vec<&'a PlanRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    steps_delete: Vec<&'a StepRef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    steps_upsert: Vec<&'a StepRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    timers_cancel: Vec<&'a Uuid>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    timers_arm: Vec<&'a TimerRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    parties: Vec<&'a PartyRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    digests_delete: Vec<&'a Uuid>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    digests_upsert: Vec<&'a DigestRow>,
}

impl<'a> MergedRows<'a> {
    fn of(appends: &'a [Append]) -> Self {
        let mut rows = Self::default();
        for append in appends {
            // Every part by name: a part added to ProjectionChange does not compile until it
            // is gathered here too.
            let ProjectionChange {
                plans,
                steps_delete,
                steps_upsert,
                timers_cancel,
                timers_arm,
                parties,
                digests_delete,
                digests_upsert,
            } = &append.projection;
            rows.plans.extend(plans);
            rows.steps_delete.extend(steps_delete);
            rows.steps_upsert.extend(steps_upsert);
            rows.timers_cancel.extend(timers_cancel);
            rows.timers_arm.extend(timers_arm);
            rows.parties.extend(parties);
            rows.digests_delete.extend(digests_delete);
            rows.digests_upsert.extend(digests_upsert);
        }
        rows
    }

    /// As JSON for `homeward_append_batch`, or `None` when no append changes a read model.
    fn json(appends: &'a [Append]) -> Option<sqlx::types::Json<Self>> {
        (!appends.iter().all(|a| a.projection.is_empty()))
            .then(|| sqlx::types::Json(Self::of(appends)))
    }
}

/// All `appends` at their exact versions in one transaction, or none: HW001 when one is not at
/// its version, a unique violation on the event id when one was appended before.
async fn append_exact(
    db: &mut PgConnection,
    appends: &[Append],
    arrays: &BatchArrays<'_>,
) -> Result<Vec<Result<Appended, StoreError>>, sqlx::Error> {
    let rows = MergedRows::of(appends);
    sqlx::query(
        "SELECT homeward_append_exact($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
                                      $13, $14, $15, $16, $17, $18, $19, $20)",
    )
    .bind(&arrays.stream_ids)
    .bind(&arrays.stream_types)
    .bind(&arrays.expected)
    .bind(&arrays.event_streams)
    .bind(&arrays.event_versions)
    .bind(&arrays.event_ids)
    .bind(&arrays.event_command_ids)
    .bind(&arrays.event_types)
    .bind(&arrays.schema_versions)
    .bind(&arrays.payloads)
    .bind(&arrays.event_metadata)
    .bind(&arrays.event_occurred_at)
    .bind(&rows.plans)
    .bind(&rows.steps_delete)
    .bind(&rows.steps_upsert)
    .bind(&rows.timers_cancel)
    .bind(&rows.timers_arm)
    .bind(&rows.parties)
    .bind(&rows.digests_delete)
    .bind(&rows.digests_upsert)
    .execute(db)
    .await?;
    // All or nothing: each append is now at the versions after its expected one.
    Ok(appends
        .iter()
        .zip(&arrays.expected)
        .map(|(append, expected)| {
            let expected = expected.unwrap_or_default() as u64;
            Ok(Appended {
                stream_id: append.stream_id.clone(),
                first_version: expected + 1,
                last_version: expected + append.events.len() as u64,
                duplicate: false,
            })
        })
        .collect())
}

/// One transaction for all `appends`; one result per append, in order. With `merge`, the
/// projections of distinct streams go as one change (valid only if every append goes through).
async fn append_batch(
    db: &mut PgConnection,
    appends: &[Append],
    arrays: &BatchArrays<'_>,
    merge: bool,
) -> Result<Vec<Result<Appended, StoreError>>, sqlx::Error> {
    // The merged projection, for when every append goes through (streams must be distinct:
    // two changes of one plan must apply in order).
    let merge = merge && arrays.distinct_streams;
    let projections: Vec<Option<sqlx::types::Json<&ProjectionChange>>> = appends
        .iter()
        .map(|a| (!merge && !a.projection.is_empty()).then_some(sqlx::types::Json(&a.projection)))
        .collect();
    let merged = merge.then(|| MergedRows::json(appends)).flatten();

    let rows = sqlx::query(
        "SELECT append_index, outcome, first_version, last_version \
         FROM homeward_append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&arrays.stream_ids)
    .bind(&arrays.stream_types)
    .bind(&arrays.expected)
    .bind(&arrays.command_ids)
    .bind(&arrays.metadata)
    .bind(&arrays.occurred_at)
    .bind(&projections)
    .bind(&arrays.event_append)
    .bind(&arrays.event_ids)
    .bind(&arrays.event_types)
    .bind(&arrays.schema_versions)
    .bind(&arrays.payloads)
    .bind(merged)
    .fetch_all(db)
    .await?;

    let mut results: Vec<Option<Result<Appended, StoreError>>> = std::iter::repeat_with(|| None)
        .take(appends.len())
        .collect();
    for row in rows {
        let index = row.try_get::<i32, _>("append_index")? as usize - 1;
        let outcome: String = row.try_get("outcome")?;
        let first = row.try_get::<i64, _>("first_version")? as u64;
        let last = row.try_get::<i64, _>("last_version")? as u64;
        let append = &appends[index];
        results[index] = Some(match outcome.as_str() {
            "appended" | "duplicate" => Ok(Appended {
                stream_id: append.stream_id.clone(),
                first_version: first,
                last_version: last,
                duplicate: outcome == "duplicate",
            }),
            "conflict" => Err(StoreError::Conflict {
                stream_id: append.stream_id.clone(),
                expected: append.expected_version.as_sql().unwrap_or_default() as u64,
                actual: last,
            }),
            other => Err(StoreError::Unexpected(format!("append outcome {other}"))),
        });
    }
    Ok(results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(StoreError::Unexpected("append left unanswered".into()))))
        .collect())
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use homeward_workflows::PartyId;

    use super::*;
    use homeward_store::projection::{DigestRow, PartyRow, PlanRow, StepRef, StepRow, TimerRow};
    use homeward_store::{ExpectedVersion, NewEvent};

    /// A change with a row in every part.
    fn every_part(n: u128) -> ProjectionChange {
        let id = Uuid::from_u128(n);
        let now = Utc::now();
        ProjectionChange {
            plans: vec![PlanRow {
                plan_id: id,
                version: 3,
                person_id: id,
                template_name: "standard-avr".into(),
                template_version: 1,
                case_worker: id,
                organisation: "Org".into(),
                origin_country: "NG".into(),
                status: "active".into(),
                suspended: false,
                opened_at: now,
                departed_at: None,
                arrived_at: None,
                closed_at: None,
                close_reason: None,
                next_due_at: Some(now),
                steps_total: 1,
                steps_open: 1,
                steps_done: 0,
                steps_blocked: 0,
            }],
            steps_delete: vec![StepRef {
                plan_id: id,
                step_key: "old".into(),
            }],
            steps_upsert: vec![StepRow {
                plan_id: id,
                step_key: "passport".into(),
                position: 0,
                kind: "passport".into(),
                title: "Passport".into(),
                status: "ready".into(),
                assignee: None,
                candidate_group: None,
                priority: 1,
                due_at: None,
                follow_up_on: None,
                document_status: None,
                status_reason: None,
            }],
            timers_cancel: vec![Uuid::from_u128(n + 100)],
            timers_arm: vec![TimerRow {
                timer_id: Uuid::from_u128(n + 200),
                plan_id: id,
                step_key: "passport".into(),
                kind: "on_due".into(),
                fire_at: now,
                recipient_party: id,
                recipient_role: "assignee".into(),
            }],
            parties: vec![PartyRow {
                party_id: id,
                version: 1,
                display_name: "A".into(),
                email: "a@example.org".into(),
                role: "social_worker".into(),
                organisation: "Org".into(),
                country: "NG".into(),
                language: "en".into(),
                time_zone: "Africa/Lagos".into(),
                supervisor: None,
            }],
            digests_delete: vec![Uuid::from_u128(n + 300)],
            digests_upsert: vec![DigestRow {
                party_id: id,
                due_at: now,
            }],
        }
    }

    fn append_with(projection: ProjectionChange) -> Append {
        Append {
            stream_id: format!("test-{}", Uuid::new_v4()),
            stream_type: "test",
            expected_version: ExpectedVersion::NoStream,
            command_id: Uuid::new_v4(),
            metadata: Metadata {
                actor: PartyId::new(),
                correlation_id: Uuid::new_v4(),
            },
            occurred_at: Utc::now(),
            events: Vec::new(),
            projection,
        }
    }

    #[test]
    fn merged_rows_are_every_part_of_every_appends_change() {
        let changes = [every_part(1), every_part(2)];
        let appends: Vec<Append> = changes.iter().cloned().map(append_with).collect();
        let mut expected = ProjectionChange::default();
        for change in changes {
            expected.extend(change);
        }
        let merged = MergedRows::json(&appends).expect("changes to merge");
        assert_eq!(
            serde_json::to_value(merged).unwrap(),
            serde_json::to_value(&expected).unwrap()
        );

        let unchanged = [append_with(ProjectionChange::default())];
        assert!(MergedRows::json(&unchanged).is_none());
    }

    #[test]
    fn each_event_is_numbered_from_its_appends_expected_version() {
        let event = || NewEvent {
            event_type: "Noted".into(),
            schema_version: 1,
            payload: serde_json::json!({}),
        };
        let mut first = append_with(ProjectionChange::default());
        first.expected_version = ExpectedVersion::Exact(7);
        first.events = vec![event(), event(), event()];
        let mut second = append_with(ProjectionChange::default());
        second.events = vec![event()];
        let mut third = append_with(ProjectionChange::default());
        third.expected_version = ExpectedVersion::Any;
        third.events = vec![event(), event()];
        let appends = [first, second, third];
        let arrays = BatchArrays::of(&appends);
        assert_eq!(
            arrays.event_versions,
            [Some(8), Some(9), Some(10), Some(1), None, None]
        );
        assert_eq!(arrays.event_append, [1, 1, 1, 2, 3, 3]);
        let streams: Vec<&str> = appends.iter().map(|a| a.stream_id.as_str()).collect();
        assert_eq!(
            arrays.event_streams,
            [streams[0], streams[0], streams[0], streams[1], streams[2], streams[2]]
        );
        assert_eq!(arrays.event_command_ids[2], appends[0].command_id);
        assert_eq!(arrays.event_command_ids[3], appends[1].command_id);
    }
}
