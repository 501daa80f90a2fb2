//! Group commit: concurrent appends share a transaction.
//!
//! Every append goes through one queue. A flush takes what is queued (up to [`MAX_BATCH`]) and
//! appends it in one transaction with one commit and one statement per table. At most a few
//! flushes run at once. A lone writer's append is flushed alone, at once; under load the
//! appends that arrive while the flushes are busy go together in the next one, so they share
//! its costs.
//!
//! Each append in a batch still succeeds or fails on its own. A batch goes to the append
//! function, `homeward_append_commands`, which writes all of it or nothing, with the read-model
//! rows as typed arrays in the binary format; a batch of everyday edits only (`only_edits`) to
//! `homeward_append_edits`, which does the same with less to take. When nothing is written the
//! function says which appends stopped it (a conflict, a repeated command, a taken idempotency
//! key); those get their answer and the rest go again together; so do the others when a
//! repeated command fails a call on its event id. Appends to one stream, or claiming one key, go in successive calls, in the order
//! they came. If a call fails as a whole otherwise (a race on a key, a broken connection), its
//! appends go one at a time, so that one bad append fails alone.
//!
//! Each flush runs on a connection of its own, held by its slot rather than taken from the
//! pool: sqlx sends a round trip on every connection given back to the pool (and, unless it was
//! used within the last second, before handing one out), which would cost a group-commit
//! transaction more than its commit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, PgPool};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use homeward_store::{Append, Appended, ExpectedVersion, Metadata};

use crate::store::command_result;
use homeward_store::projection::{
    DigestRow, OrganisationRow, PartyRow, PersonRow, PlanRow, ProjectionChange, StepRef, StepRow,
    TimerRow,
};
use homeward_store::StoreError;

/// How many batches may be in flight at once (each holds a connection while it runs). Fewer
/// flushes make larger batches, which share a commit and the statements' fixed costs; more let
/// small batches go at once. On a 2-core machine, at 16 writers, two and three measured within
/// the noise of four, and eight lost (BENCHMARKS.md, "Appends and commands").
/// `HOMEWARD_APPEND_FLUSHES` sets it.
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

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("open", &self.connection.is_some())
            .finish()
    }
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

/// Group commit's dispatch: what queues while every slot is busy goes out together (up to `max`)
/// on the next free slot, at most `slots` at once. `work` gets the slot and gives it back when
/// its transaction is done.
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
    let results = append_all(db, appends).await;
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

/// Every append's result, in order. Each call of the append function takes the appends still
/// waiting that are the first of their stream and of their key; one that is refused gets its
/// answer, and the others go again.
async fn append_all(
    db: &mut PgConnection,
    appends: &[Append],
) -> Vec<Result<Appended, StoreError>> {
    let mut results: Vec<Option<Result<Appended, StoreError>>> = std::iter::repeat_with(|| None)
        .take(appends.len())
        .collect();
    let mut waiting: Vec<usize> = (0..appends.len()).collect();
    // After a call failed as a whole, one append per call, so that a bad one fails alone.
    let mut alone = false;
    while !waiting.is_empty() {
        let (call, later) = next_call(appends, &waiting, alone);
        let sent: Vec<&Append> = call.iter().map(|&i| &appends[i]).collect();
        match append_function(db, &sent).await {
            Ok(Outcome::Written(done)) => {
                for (i, done) in call.into_iter().zip(done) {
                    results[i] = Some(Ok(done));
                }
                waiting = later;
            }
            Ok(Outcome::Refused(refusals)) => {
                let mut again = Vec::new();
                for (i, refusal) in call.into_iter().zip(refusals) {
                    match refusal {
                        None => again.push(i),
                        Some(refusal) => results[i] = Some(answer(db, &appends[i], refusal).await),
                    }
                }
                again.extend(later);
                again.sort_unstable();
                waiting = again;
            }
            // Some command of the call was appended before (a retry): those get their first
            // result, and the others go again together.
            Err(e) if call.len() > 1 && unique_violation(&e, "events_event_id_key") => {
                let mut again = Vec::new();
                for i in call {
                    match command_result(&mut *db, appends[i].command_id).await {
                        Ok(Some(first)) => results[i] = Some(Ok(first)),
                        Ok(None) => again.push(i),
                        Err(e) => results[i] = Some(Err(e)),
                    }
                }
                if again.len() == sent.len() {
                    // None was: a race with another writer; one at a time from here.
                    alone = true;
                }
                again.extend(later);
                again.sort_unstable();
                waiting = again;
            }
            Err(e) if call.len() > 1 => {
                tracing::warn!(error = %e, appends = call.len(), "batch failed; appending one by one");
                alone = true;
            }
            Err(e) => {
                results[call[0]] = Some(single_failure(db, &appends[call[0]], e).await);
                waiting = later;
            }
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(StoreError::Unexpected("append left unanswered".into()))))
        .collect()
}

/// The appends of the next call: of those waiting (in order), the first of each stream and of
/// each idempotency key, or only the first of all when `alone`; and the rest.
fn next_call(appends: &[Append], waiting: &[usize], alone: bool) -> (Vec<usize>, Vec<usize>) {
    let mut streams = std::collections::HashSet::new();
    let mut keys = std::collections::HashSet::new();
    let (mut call, mut later) = (Vec::new(), Vec::new());
    for &i in waiting {
        let append = &appends[i];
        let key = append
            .idempotency_key
            .as_ref()
            .map(|k| (k.record.party, k.record.key_hash.as_slice()));
        let free = (call.is_empty() || !alone)
            && !streams.contains(append.stream_id.as_str())
            && key.is_none_or(|k| !keys.contains(&k));
        if free {
            streams.insert(append.stream_id.as_str());
            keys.extend(key);
            call.push(i);
        } else {
            later.push(i);
        }
    }
    (call, later)
}

/// Why the append function would not write an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Its stream is at `head`, not the expected version.
    Conflict { head: u64 },
    /// Its idempotency key is taken.
    KeyTaken,
}

/// What one call of the append function did.
enum Outcome {
    /// Everything: each append's result.
    Written(Vec<Appended>),
    /// Nothing: for each append, what stopped it, if anything did.
    Refused(Vec<Option<Refusal>>),
}

/// The answer to an append the function refused: its first result if its command was appended
/// before (a retry, which finds its stream moved on or its key taken by itself), or else the
/// refusal.
async fn answer(
    db: &mut PgConnection,
    append: &Append,
    refusal: Refusal,
) -> Result<Appended, StoreError> {
    if let Some(first) = command_result(&mut *db, append.command_id).await? {
        return Ok(first);
    }
    match refusal {
        Refusal::Conflict { head } => Err(StoreError::Conflict {
            stream_id: append.stream_id.clone(),
            expected: append.expected_version.as_sql().unwrap_or_default() as u64,
            actual: head,
        }),
        Refusal::KeyTaken => Err(StoreError::KeyTaken),
    }
}

/// The answer to an append whose call, alone, failed: another writer took its event ids or its
/// key between the function's checks and its inserts, or the database failed.
async fn single_failure(
    db: &mut PgConnection,
    append: &Append,
    e: sqlx::Error,
) -> Result<Appended, StoreError> {
    if unique_violation(&e, "events_event_id_key") {
        earlier_result(db, append.command_id).await
    } else if unique_violation(&e, "idempotency_keys_pkey") {
        Err(StoreError::KeyTaken)
    } else if matches!(&e, sqlx::Error::Database(db) if db.code().as_deref() == Some(MASTER_KEY_CHANGED))
    {
        Err(StoreError::MasterKeyChanged)
    } else {
        Err(e.into())
    }
}

/// The SQLSTATE `homeward_append_commands` raises for a new person key wrapped under a master key
/// that is not the database's.
const MASTER_KEY_CHANGED: &str = "HWK01";

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

/// A call's appends as the column arrays the append function takes: per append and per event.
struct BatchArrays<'a> {
    stream_ids: Vec<&'a str>,
    stream_types: Vec<&'static str>,
    expected: Vec<Option<i64>>,
    /// For each event, the 1-based index of its append and its 1-based place in it.
    event_appends: Vec<i32>,
    event_places: Vec<i32>,
    event_streams: Vec<&'a str>,
    event_ids: Vec<Uuid>,
    event_command_ids: Vec<Uuid>,
    event_types: Vec<&'a str>,
    schema_versions: Vec<i16>,
    payloads: Vec<&'a serde_json::Value>,
    event_metadata: Vec<sqlx::types::Json<&'a Metadata>>,
    event_occurred_at: Vec<chrono::DateTime<chrono::Utc>>,
    /// For each append, its idempotency key, if it claims one.
    key_parties: Vec<Option<Uuid>>,
    key_hashes: Vec<Option<&'a [u8]>>,
    key_operations: Vec<Option<&'a str>>,
    key_targets: Vec<Option<&'a str>>,
    key_prints: Vec<Option<&'a [u8]>>,
    key_commands: Vec<Option<Uuid>>,
    key_created_at: Vec<Option<chrono::DateTime<chrono::Utc>>>,
    key_not_before: Vec<Option<chrono::DateTime<chrono::Utc>>>,
    /// The new data keys of the persons whose streams these appends open.
    person_keys: Vec<Uuid>,
    person_keys_wrapped: Vec<&'a [u8]>,
    person_keys_checks: Vec<&'a [u8]>,
    person_orgs: Vec<Option<Uuid>>,
    person_terms: Vec<Option<String>>,
    indexed: Vec<Uuid>,
    indexed_orgs: Vec<Uuid>,
    indexed_terms: Vec<String>,
}

impl<'a> BatchArrays<'a> {
    fn of(appends: &[&'a Append]) -> Self {
        let events: usize = appends.iter().map(|a| a.events.len()).sum();
        let mut arrays = Self {
            stream_ids: appends.iter().map(|a| a.stream_id.as_str()).collect(),
            stream_types: appends.iter().map(|a| a.stream_type).collect(),
            expected: appends
                .iter()
                .map(|a| a.expected_version.as_sql())
                .collect(),
            event_appends: Vec::with_capacity(events),
            event_places: Vec::with_capacity(events),
            event_streams: Vec::with_capacity(events),
            event_ids: Vec::with_capacity(events),
            event_command_ids: Vec::with_capacity(events),
            event_types: Vec::with_capacity(events),
            schema_versions: Vec::with_capacity(events),
            payloads: Vec::with_capacity(events),
            event_metadata: Vec::with_capacity(events),
            event_occurred_at: Vec::with_capacity(events),
            key_parties: Vec::with_capacity(appends.len()),
            key_hashes: Vec::with_capacity(appends.len()),
            key_operations: Vec::with_capacity(appends.len()),
            key_targets: Vec::with_capacity(appends.len()),
            key_prints: Vec::with_capacity(appends.len()),
            key_commands: Vec::with_capacity(appends.len()),
            key_created_at: Vec::with_capacity(appends.len()),
            key_not_before: Vec::with_capacity(appends.len()),
            person_keys: Vec::new(),
            person_keys_wrapped: Vec::new(),
            person_keys_checks: Vec::new(),
            person_orgs: Vec::new(),
            person_terms: Vec::new(),
            indexed: Vec::new(),
            indexed_orgs: Vec::new(),
            indexed_terms: Vec::new(),
        };
        for (i, append) in appends.iter().enumerate() {
            for (k, event) in append.events.iter().enumerate() {
                arrays.event_appends.push(i as i32 + 1);
                arrays.event_places.push(k as i32 + 1);
                arrays.event_streams.push(&append.stream_id);
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
            let claim = append.idempotency_key.as_ref();
            let key = claim.map(|c| &c.record);
            arrays.key_parties.push(key.map(|k| k.party));
            arrays.key_hashes.push(key.map(|k| k.key_hash.as_slice()));
            arrays
                .key_operations
                .push(key.map(|k| k.operation.as_str()));
            arrays
                .key_targets
                .push(key.and_then(|k| k.target.as_deref()));
            arrays
                .key_prints
                .push(key.map(|k| k.fingerprint.as_slice()));
            arrays.key_commands.push(key.map(|k| k.command_id));
            arrays.key_created_at.push(key.map(|k| k.created_at));
            arrays.key_not_before.push(claim.map(|c| c.not_before));
            // A new person's terms go into the row of her new key; others' replace their own.
            let mut search = append.search_terms.as_ref();
            if let Some(key) = &append.new_person_key {
                arrays.person_keys.push(key.person);
                arrays.person_keys_wrapped.push(&key.wrapped);
                arrays.person_keys_checks.push(&key.master_check);
                let hers = search.filter(|s| s.person == key.person);
                arrays.person_orgs.push(hers.map(|s| s.organisation));
                arrays.person_terms.push(hers.map(|s| joined_hex(&s.terms)));
                if hers.is_some() {
                    search = None;
                }
            }
            if let Some(search) = search {
                arrays.indexed.push(search.person);
                arrays.indexed_orgs.push(search.organisation);
                arrays.indexed_terms.push(joined_hex(&search.terms));
            }
        }
        arrays
    }
}

/// Bytes in lower-case hex: how blind-index terms are stored and asked for.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(char::from(DIGITS[usize::from(b >> 4)]));
        text.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    text
}

/// A person's terms as the append function takes them: hex, separated by spaces.
fn joined_hex(terms: &[Vec<u8>]) -> String {
    terms.iter().map(|t| hex(t)).collect::<Vec<_>>().join(" ")
}

/// The read-model rows of a call's appends (distinct streams), gathered as one change:
/// borrowed, not copied.
#[derive(Debug, Default)]
struct MergedRows<'a> {
    plans: Vec<&'a PlanRow>,
    steps_delete: Vec<&'a StepRef>,
    steps_upsert: Vec<&'a StepRow>,
    timers_cancel: Vec<&'a Uuid>,
    timers_arm: Vec<&'a TimerRow>,
    parties: Vec<&'a PartyRow>,
    digests_delete: Vec<&'a Uuid>,
    digests_upsert: Vec<&'a DigestRow>,
    organisations: Vec<&'a OrganisationRow>,
    persons: Vec<&'a PersonRow>,
}

impl<'a> MergedRows<'a> {
    fn of(appends: &[&'a Append]) -> Self {
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
                organisations,
                persons,
            } = &append.projection;
            rows.plans.extend(plans);
            rows.steps_delete.extend(steps_delete);
            rows.steps_upsert.extend(steps_upsert);
            rows.timers_cancel.extend(timers_cancel);
            rows.timers_arm.extend(timers_arm);
            rows.parties.extend(parties);
            rows.digests_delete.extend(digests_delete);
            rows.digests_upsert.extend(digests_upsert);
            rows.organisations.extend(organisations);
            rows.persons.extend(persons);
        }
        rows
    }
}

/// What `homeward_append_commands` answers: per append, the version its stream was at and,
/// when nothing was written, what refused it (NULL for those it did not refuse).
#[derive(sqlx::Type)]
#[sqlx(type_name = "homeward_append_answer")]
struct AppendAnswer {
    refusals: Option<Vec<Option<String>>>,
    heads: Vec<i64>,
}

/// One call of the append function (`homeward_append_edits` when it takes them, else
/// `homeward_append_commands`): `appends` (distinct streams and keys) all written,
/// or none and what stopped them.
async fn append_function(
    db: &mut PgConnection,
    appends: &[&Append],
) -> Result<Outcome, sqlx::Error> {
    let arrays = BatchArrays::of(appends);
    let rows = MergedRows::of(appends);
    let answer = if only_edits(appends) {
        // NULL when written: every stream was at its expected version, which is its head.
        let heads = edits_function(db, &arrays, &rows).await?;
        let refusals = heads.as_ref().map(|heads| {
            heads
                .iter()
                .zip(&arrays.expected)
                .map(|(head, expected)| (Some(*head) != *expected).then(|| "conflict".to_owned()))
                .collect()
        });
        let heads = heads.unwrap_or_else(|| arrays.expected.iter().flatten().copied().collect());
        AppendAnswer { refusals, heads }
    } else {
        commands_function(db, appends, &arrays, &rows).await?
    };
    let AppendAnswer { refusals, heads } = answer;
    let answered = |n: usize| n == appends.len();
    if !answered(heads.len()) || !refusals.as_ref().is_none_or(|r| answered(r.len())) {
        return Err(sqlx::Error::Protocol(format!(
            "{} heads and {:?} refusals answered to {} appends",
            heads.len(),
            refusals.as_ref().map(Vec::len),
            appends.len()
        )));
    }
    let Some(refusals) = refusals else {
        return Ok(Outcome::Written(
            appends
                .iter()
                .zip(heads)
                .map(|(append, head)| Appended {
                    stream_id: append.stream_id.clone(),
                    first_version: head as u64 + 1,
                    last_version: head as u64 + append.events.len() as u64,
                    duplicate: false,
                })
                .collect(),
        ));
    };
    refusals
        .into_iter()
        .zip(heads)
        .map(|(refusal, head)| {
            Ok(match refusal.as_deref() {
                None => None,
                Some("conflict") => Some(Refusal::Conflict { head: head as u64 }),
                Some("key") => Some(Refusal::KeyTaken),
                Some(other) => {
                    return Err(sqlx::Error::Protocol(format!("append refused for {other}")))
                }
            })
        })
        .collect::<Result<_, _>>()
        .map(Outcome::Refused)
}

/// One call of `homeward_append_commands`, which takes any appends.
async fn commands_function(
    db: &mut PgConnection,
    appends: &[&Append],
    arrays: &BatchArrays<'_>,
    rows: &MergedRows<'_>,
) -> Result<AppendAnswer, sqlx::Error> {
    let keyed = appends.iter().any(|a| a.idempotency_key.is_some());
    sqlx::query_scalar(
        "SELECT homeward_append_commands(\
             $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
             $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, \
             $35, $36, $37, $38, $39)",
    )
    .bind(&arrays.stream_ids)
    .bind(&arrays.stream_types)
    .bind(&arrays.expected)
    .bind(&arrays.event_appends)
    .bind(&arrays.event_places)
    .bind(&arrays.event_streams)
    .bind(&arrays.event_ids)
    .bind(&arrays.event_command_ids)
    .bind(&arrays.event_types)
    .bind(&arrays.schema_versions)
    .bind(&arrays.payloads)
    .bind(&arrays.event_metadata)
    .bind(&arrays.event_occurred_at)
    // No keys at all: NULL arrays, and the function skips the keys' statements.
    .bind(keyed.then_some(&arrays.key_parties))
    .bind(keyed.then_some(&arrays.key_hashes))
    .bind(keyed.then_some(&arrays.key_operations))
    .bind(keyed.then_some(&arrays.key_targets))
    .bind(keyed.then_some(&arrays.key_prints))
    .bind(keyed.then_some(&arrays.key_commands))
    .bind(keyed.then_some(&arrays.key_created_at))
    .bind(keyed.then_some(&arrays.key_not_before))
    .bind(&rows.plans)
    .bind(&rows.steps_delete)
    .bind(&rows.steps_upsert)
    .bind(&rows.timers_cancel)
    .bind(&rows.timers_arm)
    .bind(&rows.parties)
    .bind(&rows.digests_delete)
    .bind(&rows.digests_upsert)
    .bind(&rows.organisations)
    // No new person keys: NULL arrays, and the function skips their statements.
    .bind((!arrays.person_keys.is_empty()).then_some(&arrays.person_keys))
    .bind((!arrays.person_keys.is_empty()).then_some(&arrays.person_keys_wrapped))
    .bind((!arrays.person_keys.is_empty()).then_some(&arrays.person_keys_checks))
    .bind(&arrays.person_orgs)
    .bind(&arrays.person_terms)
    .bind(&rows.persons)
    // No blind-index terms replaced: NULL arrays, and the function skips their statement.
    .bind((!arrays.indexed.is_empty()).then_some(&arrays.indexed))
    .bind(&arrays.indexed_orgs)
    .bind(&arrays.indexed_terms)
    .fetch_one(db)
    .await
}

/// Whether a call's appends are all everyday edits, which `homeward_append_edits` takes: events
/// for streams that exist, each at an exact expected version, with no idempotency key, no
/// person's key or search terms, and no rows but plans', steps' and timers'.
fn only_edits(appends: &[&Append]) -> bool {
    appends.iter().all(|a| {
        let ProjectionChange {
            plans: _,
            steps_delete: _,
            steps_upsert: _,
            timers_cancel: _,
            timers_arm: _,
            parties,
            digests_delete,
            digests_upsert,
            organisations,
            persons,
        } = &a.projection;
        matches!(a.expected_version, ExpectedVersion::Exact(v) if v > 0)
            && a.idempotency_key.is_none()
            && a.new_person_key.is_none()
            && a.search_terms.is_none()
            && parties.is_empty()
            && digests_delete.is_empty()
            && digests_upsert.is_empty()
            && organisations.is_empty()
            && persons.is_empty()
    })
}

/// One call of `homeward_append_edits` for appends that are [`only_edits`]: `None` when all were
/// written, or else (nothing written) the version each stream was at.
async fn edits_function(
    db: &mut PgConnection,
    arrays: &BatchArrays<'_>,
    rows: &MergedRows<'_>,
) -> Result<Option<Vec<i64>>, sqlx::Error> {
    let event_versions: Vec<i64> = arrays
        .event_appends
        .iter()
        .zip(&arrays.event_places)
        .map(|(&a, &n)| arrays.expected[a as usize - 1].unwrap_or_default() + i64::from(n))
        .collect();
    sqlx::query_scalar(
        "SELECT homeward_append_edits(\
             $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(&arrays.stream_ids)
    .bind(&arrays.expected)
    .bind(&arrays.event_streams)
    .bind(&event_versions)
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
    .fetch_one(db)
    .await
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use homeward_workflows::PartyId;

    use super::*;
    use homeward_store::projection::{
        DigestRow, OrganisationRow, PartyRow, PersonRow, PlanRow, StepRef, StepRow, TimerRow,
    };
    use homeward_store::{ExpectedVersion, NewEvent};

    #[test]
    fn terms_are_written_in_lower_case_hex_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff, 0x10]), "000fa5ff10");
        assert_eq!(hex(&[]), "");
        assert_eq!(joined_hex(&[vec![0xab], vec![0x01, 0x02]]), "ab 0102");
    }

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
                organisation: id,
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
                organisation: id,
                country: "NG".into(),
                language: "en".into(),
                time_zone: "Africa/Lagos".into(),
                supervisor: None,
                active: true,
            }],
            digests_delete: vec![Uuid::from_u128(n + 300)],
            digests_upsert: vec![DigestRow {
                party_id: id,
                due_at: now,
            }],
            organisations: vec![OrganisationRow {
                organisation_id: id,
                version: 1,
                name: "Org".into(),
                kind: "programme".into(),
                country: "FR".into(),
                works_with: vec![],
                retention_months: 60,
            }],
            persons: vec![PersonRow {
                person_id: id,
                version: 2,
                organisation: id,
                erased_at: None,
                held_since: Some(now),
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
                partner_link: None,
            },
            occurred_at: Utc::now(),
            events: Vec::new(),
            projection,
            idempotency_key: None,
            new_person_key: None,
            search_terms: None,
        }
    }

    #[test]
    fn merged_rows_are_every_part_of_every_appends_change() {
        let appends = [append_with(every_part(1)), append_with(every_part(2))];
        let sent: Vec<&Append> = appends.iter().collect();
        let rows = MergedRows::of(&sent);
        let MergedRows {
            plans,
            steps_delete,
            steps_upsert,
            timers_cancel,
            timers_arm,
            parties,
            digests_delete,
            digests_upsert,
            organisations,
            persons,
        } = &rows;
        let counts = [
            plans.len(),
            steps_delete.len(),
            steps_upsert.len(),
            timers_cancel.len(),
            timers_arm.len(),
            parties.len(),
            digests_delete.len(),
            digests_upsert.len(),
            organisations.len(),
            persons.len(),
        ];
        assert_eq!(counts, [2; 10]);
        assert_eq!(plans[1].plan_id, Uuid::from_u128(2));
        assert_eq!(*timers_cancel[0], Uuid::from_u128(101));
    }

    #[test]
    fn each_event_names_its_append_and_its_place_in_it() {
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
        let sent: Vec<&Append> = appends.iter().collect();
        let arrays = BatchArrays::of(&sent);
        assert_eq!(arrays.event_appends, [1, 1, 1, 2, 3, 3]);
        assert_eq!(arrays.event_places, [1, 2, 3, 1, 1, 2]);
        assert_eq!(arrays.expected, [Some(7), Some(0), None]);
        let streams: Vec<&str> = appends.iter().map(|a| a.stream_id.as_str()).collect();
        assert_eq!(
            arrays.event_streams,
            [streams[0], streams[0], streams[0], streams[1], streams[2], streams[2]]
        );
        assert_eq!(arrays.event_command_ids[2], appends[0].command_id);
        assert_eq!(arrays.event_command_ids[3], appends[1].command_id);
    }

    #[test]
    fn a_call_takes_the_first_append_of_each_stream_and_each_key() {
        let key = |n: u8| homeward_store::idempotency::KeyClaim {
            record: homeward_store::idempotency::KeyRecord {
                party: Uuid::nil(),
                key_hash: vec![n],
                operation: "op".into(),
                target: None,
                fingerprint: vec![],
                command_id: Uuid::new_v4(),
                created_at: Utc::now(),
            },
            not_before: Utc::now(),
        };
        let mut appends: Vec<Append> = (0..5)
            .map(|_| append_with(ProjectionChange::default()))
            .collect();
        appends[2].stream_id = appends[0].stream_id.clone();
        appends[1].idempotency_key = Some(key(1));
        appends[3].idempotency_key = Some(key(1));
        appends[4].idempotency_key = Some(key(2));
        let waiting = [0, 1, 2, 3, 4];
        assert_eq!(
            next_call(&appends, &waiting, false),
            (vec![0, 1, 4], vec![2, 3])
        );
        assert_eq!(next_call(&appends, &[2, 3], false), (vec![2, 3], vec![]));
        assert_eq!(
            next_call(&appends, &waiting, true),
            (vec![0], vec![1, 2, 3, 4])
        );
    }
}
