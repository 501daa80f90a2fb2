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
use sqlx::{Connection, SqliteConnection};
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
                    let (tx_number, results) = write(&mut writer, &appends).await;
                    if results
                        .iter()
                        .any(|r| r.as_ref().is_ok_and(|a| !a.duplicate))
                    {
                        store.appended.send_replace(tx_number);
                    }
                    results
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

/// Writes `appends` in one transaction: its number, and each append's result, in order. If the
/// commit fails, none was written and each says so.
///
/// The number is the last one in the file plus one, read under the write lock: a command-line
/// tool writing beside the server (`homeward bootstrap`) numbers its transactions after the
/// server's, so that a follower's cursor never passes an event still to come.
pub(crate) async fn write(
    db: &mut SqliteConnection,
    appends: &[Append],
) -> (u64, Vec<Result<Appended, StoreError>>) {
    let mut tx = match db.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(e) => return (0, failed(appends, &e)),
    };
    let tx_number =
        match sqlx::query_scalar::<_, i64>("SELECT coalesce(max(tx_number), 0) + 1 FROM events")
            .fetch_one(&mut *tx)
            .await
        {
            Ok(n) => n as u64,
            Err(e) => {
                let _ = tx.rollback().await;
                return (0, failed(appends, &e));
            }
        };
    // Times to the microsecond, as PostgreSQL keeps them: an export moves them unchanged.
    let recorded_at = crate::stored(Utc::now());
    let mut results = Vec::with_capacity(appends.len());
    for append in appends {
        // A nested transaction is a savepoint.
        let result = match tx.begin().await {
            Ok(mut savepoint) => {
                match append_one(&mut savepoint, tx_number, recorded_at, append).await {
                    Ok(done) => match savepoint.commit().await {
                        Ok(()) => Ok(done),
                        Err(e) => Err(e.into()),
                    },
                    Err(e) => {
                        let _ = savepoint.rollback().await;
                        Err(e)
                    }
                }
            }
            Err(e) => Err(e.into()),
        };
        results.push(result);
    }
    if results.iter().all(Result::is_err) {
        let _ = tx.rollback().await;
        return (tx_number, results);
    }
    match tx.commit().await {
        Ok(()) => (tx_number, results),
        Err(e) => (tx_number, failed(appends, &e)),
    }
}

fn failed(appends: &[Append], e: &sqlx::Error) -> Vec<Result<Appended, StoreError>> {
    let message = e.to_string();
    appends
        .iter()
        .map(|_| Err(StoreError::Unexpected(message.clone())))
        .collect()
}

/// One append, inside the batch's transaction: checks, then writes.
async fn append_one(
    db: &mut SqliteConnection,
    tx_number: u64,
    recorded_at: DateTime<Utc>,
    append: &Append,
) -> Result<Appended, StoreError> {
    // A command appended before gets its first result, whatever else changed since.
    if let Some(first) = command_result(&mut *db, append.command_id).await? {
        return Ok(first);
    }
    let head: i64 = sqlx::query_scalar(
        "SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = ?",
    )
    .bind(&append.stream_id)
    .fetch_one(&mut *db)
    .await?;
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

/// Writes a change's read-model rows: the one place that does, for appends and rebuilds.
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
    for p in plans {
        sqlx::query(
            "INSERT OR REPLACE INTO plan_view (plan_id, version, person_id, template_name, \
               template_version, case_worker, organisation, origin_country, status, suspended, \
               opened_at, departed_at, arrived_at, closed_at, close_reason, next_due_at, \
               steps_total, steps_open, steps_done, steps_blocked) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(p.plan_id)
        .bind(p.version)
        .bind(p.person_id)
        .bind(&p.template_name)
        .bind(p.template_version)
        .bind(p.case_worker)
        .bind(p.organisation)
        .bind(&p.origin_country)
        .bind(&p.status)
        .bind(p.suspended)
        .bind(p.opened_at)
        .bind(p.departed_at)
        .bind(p.arrived_at)
        .bind(p.closed_at)
        .bind(&p.close_reason)
        .bind(p.next_due_at)
        .bind(p.steps_total)
        .bind(p.steps_open)
        .bind(p.steps_done)
        .bind(p.steps_blocked)
        .execute(&mut *db)
        .await?;
    }
    for s in steps_delete {
        sqlx::query("DELETE FROM step_view WHERE plan_id = ? AND step_key = ?")
            .bind(s.plan_id)
            .bind(&s.step_key)
            .execute(&mut *db)
            .await?;
    }
    for s in steps_upsert {
        sqlx::query(
            "INSERT OR REPLACE INTO step_view (plan_id, step_key, position, kind, title, status, \
               assignee, candidate_group, priority, due_at, follow_up_on, document_status, \
               status_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(s.plan_id)
        .bind(&s.step_key)
        .bind(s.position)
        .bind(&s.kind)
        .bind(&s.title)
        .bind(&s.status)
        .bind(s.assignee)
        .bind(&s.candidate_group)
        .bind(s.priority)
        .bind(s.due_at)
        .bind(s.follow_up_on)
        .bind(&s.document_status)
        .bind(&s.status_reason)
        .execute(&mut *db)
        .await?;
    }
    for id in timers_cancel {
        sqlx::query("DELETE FROM timers WHERE timer_id = ?")
            .bind(id)
            .execute(&mut *db)
            .await?;
    }
    // A timer armed again keeps its claim: the claim columns are the scheduler's.
    for t in timers_arm {
        sqlx::query(
            "INSERT INTO timers (timer_id, plan_id, step_key, kind, fire_at, recipient_party, \
               recipient_role) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (timer_id) DO NOTHING",
        )
        .bind(t.timer_id)
        .bind(t.plan_id)
        .bind(&t.step_key)
        .bind(&t.kind)
        .bind(t.fire_at)
        .bind(t.recipient_party)
        .bind(&t.recipient_role)
        .execute(&mut *db)
        .await?;
    }
    for p in parties {
        sqlx::query(
            "INSERT OR REPLACE INTO party_view (party_id, version, display_name, email, role, \
               organisation, country, language, time_zone, supervisor, active) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(p.party_id)
        .bind(p.version)
        .bind(&p.display_name)
        .bind(&p.email)
        .bind(&p.role)
        .bind(p.organisation)
        .bind(&p.country)
        .bind(&p.language)
        .bind(&p.time_zone)
        .bind(p.supervisor)
        .bind(p.active)
        .execute(&mut *db)
        .await?;
    }
    for id in digests_delete {
        sqlx::query("DELETE FROM digests WHERE party_id = ?")
            .bind(id)
            .execute(&mut *db)
            .await?;
    }
    // A new occurrence is a new piece of work: its claim and attempts start afresh.
    for d in digests_upsert {
        sqlx::query(
            "INSERT INTO digests (party_id, due_at) VALUES (?, ?) \
             ON CONFLICT (party_id) DO UPDATE SET due_at = excluded.due_at, \
               claimed_by = NULL, lease_until = NULL, attempts = NULL \
             WHERE digests.due_at IS NOT excluded.due_at",
        )
        .bind(d.party_id)
        .bind(d.due_at)
        .execute(&mut *db)
        .await?;
    }
    for o in organisations {
        sqlx::query(
            "INSERT OR REPLACE INTO organisation_view (organisation_id, version, name, kind, \
               country, works_with, retention_months) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(o.organisation_id)
        .bind(o.version)
        .bind(&o.name)
        .bind(&o.kind)
        .bind(&o.country)
        .bind(sqlx::types::Json(&o.works_with))
        .bind(o.retention_months)
        .execute(&mut *db)
        .await?;
    }
    for p in persons {
        sqlx::query(
            "INSERT OR REPLACE INTO person_view (person_id, version, organisation, erased_at, \
               held_since) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(p.person_id)
        .bind(p.version)
        .bind(p.organisation)
        .bind(p.erased_at)
        .bind(p.held_since)
        .execute(&mut *db)
        .await?;
    }
    Ok(())
}
