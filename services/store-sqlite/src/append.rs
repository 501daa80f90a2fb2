//! Appends on SQLite, with group commit: appends queue for the one writing connection, and each
//! transaction takes every append waiting (up to [`MAX_BATCH`]), so that one `fsync` acknowledges
//! them all. Each append runs under a savepoint of its own: one that is refused or fails writes
//! nothing and leaves the others of its transaction standing.
//!
//! The checks PostgreSQL makes under advisory locks (a repeated command, the stream's head, an
//! idempotency key in force, the database's master key) are made here before the first write
//! of each append; nobody else writes meanwhile, so they hold until the commit.

use std::sync::Weak;

use chrono::{DateTime, Utc};
use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use homeward_store::projection::ProjectionChange;
use homeward_store::{Append, Appended, StoreError};

use crate::Inner;

/// The most appends one transaction carries.
const MAX_BATCH: usize = 512;

struct Pending {
    append: Append,
    reply: oneshot::Sender<Result<Appended, StoreError>>,
}

/// The queue in front of the writer.
#[derive(Debug)]
pub(crate) struct Queue {
    sender: mpsc::UnboundedSender<Pending>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("stream", &self.append.stream_id)
            .finish_non_exhaustive()
    }
}

impl Queue {
    /// Starts the task that writes what is queued.
    pub(crate) fn start(store: Weak<Inner>) -> Self {
        let (sender, mut queued) = mpsc::unbounded_channel::<Pending>();
        tokio::spawn(async move {
            while let Some(first) = queued.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match queued.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let Some(store) = store.upgrade() else {
                    return;
                };
                let (appends, replies): (Vec<Append>, Vec<_>) =
                    batch.into_iter().map(|p| (p.append, p.reply)).unzip();
                let results = {
                    let mut writer = store.writer.lock().await;
                    let written = write(&mut writer, &appends).await;
                    if written.broken {
                        crate::reopen(&store.path, &mut writer).await;
                    }
                    if written
                        .results
                        .iter()
                        .any(|r| r.as_ref().is_ok_and(|a| !a.duplicate))
                    {
                        store.appended.send_replace(written.tx_number);
                    }
                    written.results
                };
                let appended: u64 = results
                    .iter()
                    .filter_map(|r| r.as_ref().ok().filter(|a| !a.duplicate))
                    .map(|a| a.last_version + 1 - a.first_version)
                    .sum();
                metrics::histogram!("homeward_append_batch_size").record(appends.len() as f64);
                metrics::counter!("homeward_events_appended_total").increment(appended);
                for (reply, result) in replies.into_iter().zip(results) {
                    // A caller that went away no longer needs its answer; the append stands.
                    let _ = reply.send(result);
                }
            }
        });
        Self { sender }
    }

    pub(crate) async fn append(&self, append: Append) -> Result<Appended, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Pending { append, reply })
            .map_err(|_| StoreError::Unexpected("the store is closed".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unexpected("the writer stopped before answering".into()))?
    }
}

/// What one transaction of appends did.
pub(crate) struct Written {
    /// The transaction's number.
    pub(crate) tx_number: u64,
    /// Each append's result, in order.
    pub(crate) results: Vec<Result<Appended, StoreError>>,
    /// The connection failed in a way that may leave it unusable (a savepoint or the
    /// transaction could not be ended): it is to be replaced.
    pub(crate) broken: bool,
}

/// Writes `appends` in one transaction. If the commit fails, none was written and each says
/// so; if the database fails in the middle (a full disk, an I/O error), none is written either.
///
/// The number is the last one in the file plus one, read under the write lock: a command-line
/// tool writing beside the server (`homeward bootstrap`) numbers its transactions after the
/// server's, so that a follower's cursor never passes an event still to come.
pub(crate) async fn write(db: &mut SqliteConnection, appends: &[Append]) -> Written {
    let broken = |e: &sqlx::Error| Written {
        tx_number: 0,
        results: failed(appends, e),
        broken: true,
    };
    let mut tx = match db.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(e) => return broken(&e),
    };
    // Numbered by the first append's checks (one statement fewer per transaction).
    let mut tx_number = None;
    // Times to the microsecond, as PostgreSQL keeps them: an export moves them unchanged.
    let recorded_at = crate::stored(Utc::now());
    let mut results = Vec::with_capacity(appends.len());
    if let [append] = appends {
        // Alone, an append needs no savepoint: a refusal is found before anything is written,
        // and a failure rolls back the transaction, which holds nothing else.
        match append_one(&mut tx, &mut tx_number, recorded_at, append).await {
            Ok(done) => results.push(Ok(done)),
            Err(refused) => {
                let ended = tx.rollback().await;
                return Written {
                    tx_number: 0,
                    results: vec![Err(refused)],
                    broken: ended.is_err(),
                };
            }
        }
    } else {
        for append in appends {
            // A nested transaction is a savepoint: a refused append leaves the others standing.
            // (A transaction dropped unfinished is rolled back.)
            let mut savepoint = match tx.begin().await {
                Ok(savepoint) => savepoint,
                Err(e) => return broken(&e),
            };
            let ended = match append_one(&mut savepoint, &mut tx_number, recorded_at, append).await
            {
                Ok(done) => savepoint.commit().await.map(|()| Ok(done)),
                Err(refused) => savepoint.rollback().await.map(|()| Err(refused)),
            };
            match ended {
                Ok(result) => results.push(result),
                Err(e) => {
                    // SQLite may have ended the whole transaction itself: nothing of it stands.
                    let _ = tx.rollback().await;
                    return broken(&e);
                }
            }
        }
    }
    let tx_number = tx_number.unwrap_or_default();
    if results.iter().all(Result::is_err) {
        let ended = tx.rollback().await;
        return Written {
            tx_number,
            results,
            broken: ended.is_err(),
        };
    }
    match tx.commit().await {
        Ok(()) => Written {
            tx_number,
            results,
            broken: false,
        },
        Err(e) => broken(&e),
    }
}

fn failed(appends: &[Append], e: &sqlx::Error) -> Vec<Result<Appended, StoreError>> {
    let message = e.to_string();
    appends
        .iter()
        .map(|_| Err(StoreError::Unexpected(message.clone())))
        .collect()
}

/// One append, inside the batch's transaction: checks, then writes. The first append of a
/// transaction finds its number (`tx_number`: the file's last plus one).
async fn append_one(
    db: &mut SqliteConnection,
    tx_number: &mut Option<u64>,
    recorded_at: DateTime<Utc>,
    append: &Append,
) -> Result<Appended, StoreError> {
    // One statement: the stream's head, an earlier result of this command (by the id of its
    // first event), and the next transaction number.
    let (head, earlier_stream, earlier_first, earlier_last, next_tx): (
        i64,
        Option<String>,
        Option<i64>,
        Option<i64>,
        i64,
    ) = sqlx::query_as(
        "SELECT (SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = ?1), \
           e.stream_id, e.stream_version, \
           (SELECT max(l.stream_version) FROM events l \
             WHERE l.stream_id = e.stream_id AND l.command_id = e.command_id), \
           (SELECT coalesce(max(tx_number), 0) + 1 FROM events) \
         FROM (SELECT 1) LEFT JOIN events e ON e.event_id = ?2",
    )
    .bind(&append.stream_id)
    .bind(Append::event_id(append.command_id, 0))
    .fetch_one(&mut *db)
    .await?;
    let tx_number = *tx_number.get_or_insert(next_tx as u64);
    // A command appended before gets its first result, whatever else changed since.
    if let (Some(stream_id), Some(first), Some(last)) =
        (earlier_stream, earlier_first, earlier_last)
    {
        return Ok(Appended {
            stream_id,
            first_version: first as u64,
            last_version: last as u64,
            duplicate: true,
        });
    }
    if let Some(expected) = append.expected_version.as_sql() {
        if expected != head {
            return Err(StoreError::Conflict {
                stream_id: append.stream_id.clone(),
                expected: expected as u64,
                actual: head as u64,
            });
        }
    }
    if let Some(claim) = &append.idempotency_key {
        let key = &claim.record;
        let used_at: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT created_at FROM idempotency_keys WHERE party_id = ? AND key_hash = ?",
        )
        .bind(key.party)
        .bind(&key.key_hash)
        .fetch_optional(&mut *db)
        .await?;
        match used_at {
            Some(at) if at >= claim.not_before => return Err(StoreError::KeyTaken),
            // An expired record of the key makes way for its new use.
            Some(_) => {
                sqlx::query("DELETE FROM idempotency_keys WHERE party_id = ? AND key_hash = ?")
                    .bind(key.party)
                    .bind(&key.key_hash)
                    .execute(&mut *db)
                    .await?;
            }
            None => {}
        }
    }
    if let Some(key) = &append.new_person_key {
        // Only under the database's master key (the first key stored fixes it).
        let kept = crate::store::remember(&mut *db, "master_key_check", &key.master_check).await?;
        if kept != key.master_check {
            return Err(StoreError::MasterKeyChanged);
        }
    }

    for (index, event) in append.events.iter().enumerate() {
        sqlx::query(
            "INSERT INTO events (tx_number, stream_id, stream_version, event_id, command_id, \
               event_type, schema_version, payload, metadata, occurred_at, recorded_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(tx_number as i64)
        .bind(&append.stream_id)
        .bind(head + 1 + index as i64)
        .bind(Append::event_id(append.command_id, index))
        .bind(append.command_id)
        .bind(&event.event_type)
        .bind(event.schema_version)
        .bind(sqlx::types::Json(&event.payload))
        .bind(sqlx::types::Json(&append.metadata))
        .bind(crate::stored(append.occurred_at))
        .bind(recorded_at)
        .execute(&mut *db)
        .await?;
    }
    if head == 0 && !append.events.is_empty() {
        sqlx::query("INSERT INTO streams (stream_id, stream_type, created_at) VALUES (?, ?, ?)")
            .bind(&append.stream_id)
            .bind(append.stream_type)
            .bind(recorded_at)
            .execute(&mut *db)
            .await?;
    }
    if let Some(claim) = &append.idempotency_key {
        let key = &claim.record;
        sqlx::query(
            "INSERT INTO idempotency_keys (party_id, key_hash, operation, target, fingerprint, \
               command_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(key.party)
        .bind(&key.key_hash)
        .bind(&key.operation)
        .bind(&key.target)
        .bind(&key.fingerprint)
        .bind(key.command_id)
        .bind(crate::stored(key.created_at))
        .execute(&mut *db)
        .await?;
    }
    if let Some(key) = &append.new_person_key {
        sqlx::query(
            "INSERT INTO person_keys (person_id, wrapped_key, created_at) VALUES (?, ?, ?)",
        )
        .bind(key.person)
        .bind(&key.wrapped)
        .bind(recorded_at)
        .execute(&mut *db)
        .await?;
    }
    if let Some(search) = &append.search_terms {
        crate::person_keys::replace_terms(&mut *db, search).await?;
    }
    project(&mut *db, &append.projection).await?;

    Ok(Appended {
        stream_id: append.stream_id.clone(),
        first_version: head as u64 + 1,
        last_version: head as u64 + append.events.len() as u64,
        duplicate: false,
    })
}

/// The result of a command appended before: found by the id of its first event.
pub(crate) async fn command_result(
    db: &mut SqliteConnection,
    command_id: Uuid,
) -> Result<Option<Appended>, StoreError> {
    let row: Option<(String, i64, i64)> = sqlx::query_as(
        "SELECT e.stream_id, e.stream_version, \
           (SELECT max(l.stream_version) FROM events l \
             WHERE l.stream_id = e.stream_id AND l.command_id = e.command_id) \
         FROM events e WHERE e.event_id = ?",
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

/// Rows per statement: SQLite takes at most 32,766 bound values in one.
const ROWS_PER_STATEMENT: usize = 500;

/// Writes a change's read-model rows: the one place that does, for appends and rebuilds. One
/// statement per kind of row (and per [`ROWS_PER_STATEMENT`]), each a round trip to the
/// database's thread.
pub(crate) async fn project(
    db: &mut SqliteConnection,
    change: &ProjectionChange,
) -> Result<(), StoreError> {
    // Every part by name: a part added to ProjectionChange does not compile until it is
    // written here too.
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
    } = change;
    for rows in plans.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT OR REPLACE INTO plan_view (plan_id, version, person_id, template_name, \
               template_version, case_worker, organisation, origin_country, status, suspended, \
               opened_at, departed_at, arrived_at, closed_at, close_reason, next_due_at, \
               steps_total, steps_open, steps_done, steps_blocked) ",
        );
        q.push_values(rows, |mut b, p| {
            b.push_bind(p.plan_id)
                .push_bind(p.version)
                .push_bind(p.person_id)
                .push_bind(&p.template_name)
                .push_bind(p.template_version)
                .push_bind(p.case_worker)
                .push_bind(p.organisation)
                .push_bind(&p.origin_country)
                .push_bind(&p.status)
                .push_bind(p.suspended)
                .push_bind(p.opened_at)
                .push_bind(p.departed_at)
                .push_bind(p.arrived_at)
                .push_bind(p.closed_at)
                .push_bind(&p.close_reason)
                .push_bind(p.next_due_at)
                .push_bind(p.steps_total)
                .push_bind(p.steps_open)
                .push_bind(p.steps_done)
                .push_bind(p.steps_blocked);
        });
        q.build().execute(&mut *db).await?;
    }
    for rows in steps_delete.chunks(ROWS_PER_STATEMENT) {
        let mut q =
            QueryBuilder::<Sqlite>::new("DELETE FROM step_view WHERE (plan_id, step_key) IN (");
        let mut list = q.separated(", ");
        for s in rows {
            list.push("(")
                .push_bind_unseparated(s.plan_id)
                .push_unseparated(", ")
                .push_bind_unseparated(&s.step_key)
                .push_unseparated(")");
        }
        q.push(")");
        q.build().execute(&mut *db).await?;
    }
    for rows in steps_upsert.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT OR REPLACE INTO step_view (plan_id, step_key, position, kind, title, status, \
               assignee, candidate_group, priority, due_at, follow_up_on, document_status, \
               status_reason) ",
        );
        q.push_values(rows, |mut b, s| {
            b.push_bind(s.plan_id)
                .push_bind(&s.step_key)
                .push_bind(s.position)
                .push_bind(&s.kind)
                .push_bind(&s.title)
                .push_bind(&s.status)
                .push_bind(s.assignee)
                .push_bind(&s.candidate_group)
                .push_bind(s.priority)
                .push_bind(s.due_at)
                .push_bind(s.follow_up_on)
                .push_bind(&s.document_status)
                .push_bind(&s.status_reason);
        });
        q.build().execute(&mut *db).await?;
    }
    for ids in timers_cancel.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new("DELETE FROM timers WHERE timer_id IN (");
        let mut list = q.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        q.push(")");
        q.build().execute(&mut *db).await?;
    }
    // A timer armed again keeps its claim: the claim columns are the scheduler's.
    for rows in timers_arm.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO timers (timer_id, plan_id, step_key, kind, fire_at, recipient_party, \
               recipient_role) ",
        );
        q.push_values(rows, |mut b, t| {
            b.push_bind(t.timer_id)
                .push_bind(t.plan_id)
                .push_bind(&t.step_key)
                .push_bind(&t.kind)
                .push_bind(t.fire_at)
                .push_bind(t.recipient_party)
                .push_bind(&t.recipient_role);
        });
        q.push(" ON CONFLICT (timer_id) DO NOTHING");
        q.build().execute(&mut *db).await?;
    }
    for rows in parties.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT OR REPLACE INTO party_view (party_id, version, display_name, email, role, \
               organisation, country, language, time_zone, supervisor, active) ",
        );
        q.push_values(rows, |mut b, p| {
            b.push_bind(p.party_id)
                .push_bind(p.version)
                .push_bind(&p.display_name)
                .push_bind(&p.email)
                .push_bind(&p.role)
                .push_bind(p.organisation)
                .push_bind(&p.country)
                .push_bind(&p.language)
                .push_bind(&p.time_zone)
                .push_bind(p.supervisor)
                .push_bind(p.active);
        });
        q.build().execute(&mut *db).await?;
    }
    for ids in digests_delete.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new("DELETE FROM digests WHERE party_id IN (");
        let mut list = q.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        q.push(")");
        q.build().execute(&mut *db).await?;
    }
    // A new occurrence is a new piece of work: its claim and attempts start afresh.
    for rows in digests_upsert.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO digests (party_id, due_at) ");
        q.push_values(rows, |mut b, d| {
            b.push_bind(d.party_id).push_bind(d.due_at);
        });
        q.push(
            " ON CONFLICT (party_id) DO UPDATE SET due_at = excluded.due_at, \
               claimed_by = NULL, lease_until = NULL, attempts = NULL \
             WHERE digests.due_at IS NOT excluded.due_at",
        );
        q.build().execute(&mut *db).await?;
    }
    for rows in organisations.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT OR REPLACE INTO organisation_view (organisation_id, version, name, kind, \
               country, works_with, retention_months) ",
        );
        q.push_values(rows, |mut b, o| {
            b.push_bind(o.organisation_id)
                .push_bind(o.version)
                .push_bind(&o.name)
                .push_bind(&o.kind)
                .push_bind(&o.country)
                .push_bind(sqlx::types::Json(&o.works_with))
                .push_bind(o.retention_months);
        });
        q.build().execute(&mut *db).await?;
    }
    for rows in persons.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT OR REPLACE INTO person_view (person_id, version, organisation, erased_at, \
               held_since) ",
        );
        q.push_values(rows, |mut b, p| {
            b.push_bind(p.person_id)
                .push_bind(p.version)
                .push_bind(p.organisation)
                .push_bind(p.erased_at)
                .push_bind(p.held_since);
        });
        q.build().execute(&mut *db).await?;
    }
    Ok(())
}
