//! Appends on SQLite: checks, then writes, on the writer's thread (see [`crate::writer`]),
//! several to a transaction. Each append of a transaction of several runs under a savepoint of
//! its own: one that is refused or fails writes nothing and leaves the others standing.
//!
//! The checks PostgreSQL makes under advisory locks (a repeated command, the stream's head, an
//! idempotency key in force, the database's master key) are made here before the first write
//! of each append; nobody else writes meanwhile (`BEGIN IMMEDIATE`), so they hold until the
//! commit.

use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, OptionalExtension};
use sqlx::SqliteConnection;
use uuid::Uuid;

use homeward_store::projection::ProjectionChange;
use homeward_store::{Append, Appended, SearchTerms, StoreError};

use crate::writer::{json, Sql, WriteError};

/// What one transaction of appends did.
pub(crate) struct Written {
    /// The transaction's number.
    pub(crate) tx_number: u64,
    /// Each append's result, in order.
    pub(crate) results: Vec<Result<Appended, StoreError>>,
}

/// Runs one statement, prepared once per connection.
fn run(db: &Connection, sql: &str) -> rusqlite::Result<()> {
    db.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Writes `appends` in one transaction. If the commit fails, none was written and each says
/// so; if the database fails in the middle (a full disk, an I/O error), none is written either.
/// A transaction left open on a failure is the writer's to roll back.
///
/// The number is the last one in the file plus one, read under the write lock: a command-line
/// tool writing beside the server (`homeward bootstrap`) numbers its transactions after the
/// server's, so that a follower's cursor never passes an event still to come.
pub(crate) fn write(db: &Connection, appends: &[Append]) -> Written {
    let failed = |e: rusqlite::Error| {
        let _ = run(db, "ROLLBACK");
        let message = WriteError::from(e).to_string();
        Written {
            tx_number: 0,
            results: appends
                .iter()
                .map(|_| Err(StoreError::Unexpected(message.clone())))
                .collect(),
        }
    };
    if let Err(e) = run(db, "BEGIN IMMEDIATE") {
        return failed(e);
    }
    // Numbered by the first append's checks (one statement fewer per transaction).
    let mut tx_number = None;
    // Times to the microsecond, as PostgreSQL keeps them: an export moves them unchanged.
    let recorded_at = crate::stored(Utc::now());
    let mut results = Vec::with_capacity(appends.len());
    if let [append] = appends {
        // Alone, an append needs no savepoint: a refusal is found before anything is written,
        // and a failure rolls back the transaction, which holds nothing else.
        match append_one(db, &mut tx_number, recorded_at, append) {
            Ok(done) => results.push(Ok(done)),
            Err(refused) => {
                let _ = run(db, "ROLLBACK");
                return Written {
                    tx_number: 0,
                    results: vec![Err(refused.into())],
                };
            }
        }
    } else {
        for append in appends {
            if let Err(e) = run(db, "SAVEPOINT append") {
                return failed(e);
            }
            let ended = match append_one(db, &mut tx_number, recorded_at, append) {
                Ok(done) => run(db, "RELEASE append").map(|()| Ok(done)),
                Err(refused) => run(db, "ROLLBACK TO append")
                    .and_then(|()| run(db, "RELEASE append"))
                    .map(|()| Err(refused.into())),
            };
            match ended {
                Ok(result) => results.push(result),
                // SQLite may have ended the whole transaction itself: nothing of it stands.
                Err(e) => return failed(e),
            }
        }
    }
    let tx_number = tx_number.unwrap_or_default();
    if results.iter().all(Result::is_err) {
        let _ = run(db, "ROLLBACK");
        return Written { tx_number, results };
    }
    match run(db, "COMMIT") {
        Ok(()) => Written { tx_number, results },
        Err(e) => failed(e),
    }
}

/// One append, inside the batch's transaction: checks, then writes. The first append of a
/// transaction finds its number (`tx_number`: the file's last plus one).
fn append_one(
    db: &Connection,
    tx_number: &mut Option<u64>,
    recorded_at: DateTime<Utc>,
    append: &Append,
) -> Result<Appended, WriteError> {
    // One statement: the stream's head, an earlier result of this command (by the id of its
    // first event), and the next transaction number.
    let (head, earlier, next_tx) = db
        .prepare_cached(
            "SELECT (SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = ?1), \
               e.stream_id, e.stream_version, \
               (SELECT max(l.stream_version) FROM events l \
                 WHERE l.stream_id = e.stream_id AND l.command_id = e.command_id), \
               (SELECT coalesce(max(tx_number), 0) + 1 FROM events) \
             FROM (SELECT 1) LEFT JOIN events e ON e.event_id = ?2",
        )?
        .query_row(
            [
                append.stream_id.sql(),
                Append::event_id(append.command_id, 0).sql(),
            ],
            |row| {
                let earlier: Option<(String, i64, i64)> =
                    match (row.get(1)?, row.get(2)?, row.get(3)?) {
                        (Some(stream), Some(first), Some(last)) => Some((stream, first, last)),
                        _ => None,
                    };
                Ok((row.get::<_, i64>(0)?, earlier, row.get::<_, i64>(4)?))
            },
        )?;
    let tx_number = *tx_number.get_or_insert(next_tx as u64);
    // A command appended before gets its first result, whatever else changed since.
    if let Some((stream_id, first, last)) = earlier {
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
            }
            .into());
        }
    }
    if let Some(claim) = &append.idempotency_key {
        let key = &claim.record;
        let used_at: Option<String> = db
            .prepare_cached(
                "SELECT created_at FROM idempotency_keys WHERE party_id = ? AND key_hash = ?",
            )?
            .query_row([key.party.sql(), key.key_hash.sql()], |row| row.get(0))
            .optional()?;
        match used_at.as_deref().map(crate::writer::time).transpose()? {
            Some(at) if at >= claim.not_before => return Err(StoreError::KeyTaken.into()),
            // An expired record of the key makes way for its new use.
            Some(_) => {
                db.prepare_cached(
                    "DELETE FROM idempotency_keys WHERE party_id = ? AND key_hash = ?",
                )?
                .execute([key.party.sql(), key.key_hash.sql()])?;
            }
            None => {}
        }
    }
    if let Some(key) = &append.new_person_key {
        // Only under the database's master key (the first key stored fixes it).
        let kept = crate::store::remember(db, "master_key_check", &key.master_check)?;
        if kept != key.master_check {
            return Err(StoreError::MasterKeyChanged.into());
        }
    }

    let metadata = json(&append.metadata)?;
    for (index, event) in append.events.iter().enumerate() {
        db.prepare_cached(
            "INSERT INTO events (tx_number, stream_id, stream_version, event_id, command_id, \
               event_type, schema_version, payload, metadata, occurred_at, recorded_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )?
        .execute([
            (tx_number as i64).sql(),
            append.stream_id.sql(),
            (head + 1 + index as i64).sql(),
            Append::event_id(append.command_id, index).sql(),
            append.command_id.sql(),
            event.event_type.sql(),
            event.schema_version.sql(),
            json(&event.payload)?,
            metadata.clone(),
            crate::stored(append.occurred_at).sql(),
            recorded_at.sql(),
        ])?;
    }
    if head == 0 && !append.events.is_empty() {
        db.prepare_cached(
            "INSERT INTO streams (stream_id, stream_type, created_at) VALUES (?, ?, ?)",
        )?
        .execute([
            append.stream_id.sql(),
            append.stream_type.sql(),
            recorded_at.sql(),
        ])?;
    }
    if let Some(claim) = &append.idempotency_key {
        let key = &claim.record;
        db.prepare_cached(
            "INSERT INTO idempotency_keys (party_id, key_hash, operation, target, fingerprint, \
               command_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )?
        .execute([
            key.party.sql(),
            key.key_hash.sql(),
            key.operation.sql(),
            key.target.sql(),
            key.fingerprint.sql(),
            key.command_id.sql(),
            crate::stored(key.created_at).sql(),
        ])?;
    }
    if let Some(key) = &append.new_person_key {
        db.prepare_cached(
            "INSERT INTO person_keys (person_id, wrapped_key, created_at) VALUES (?, ?, ?)",
        )?
        .execute([key.person.sql(), key.wrapped.sql(), recorded_at.sql()])?;
    }
    if let Some(search) = &append.search_terms {
        replace_terms(db, search)?;
    }
    project(db, &append.projection)?;

    Ok(Appended {
        stream_id: append.stream_id.clone(),
        first_version: head as u64 + 1,
        last_version: head as u64 + append.events.len() as u64,
        duplicate: false,
    })
}

/// Replaces a person's blind-index terms (nothing is indexed for a person without a kept key).
fn replace_terms(db: &Connection, search: &SearchTerms) -> rusqlite::Result<()> {
    let kept = db
        .prepare_cached(
            "UPDATE person_keys SET organisation = ? \
             WHERE person_id = ? AND wrapped_key IS NOT NULL",
        )?
        .execute([search.organisation.sql(), search.person.sql()])?
        == 1;
    db.prepare_cached("DELETE FROM person_terms WHERE person_id = ?")?
        .execute([search.person.sql()])?;
    if kept {
        let mut insert = db.prepare_cached(
            "INSERT OR IGNORE INTO person_terms (organisation, term, person_id) VALUES (?, ?, ?)",
        )?;
        for term in &search.terms {
            insert.execute([search.organisation.sql(), term.sql(), search.person.sql()])?;
        }
    }
    Ok(())
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

/// Runs `prefix`, then one group of `width` placeholders per row (`(?, ?, …)`, or `?` alone),
/// then `suffix`: one statement per [`ROWS_PER_STATEMENT`] rows.
fn for_rows<T>(
    db: &Connection,
    (prefix, width, suffix): (&str, usize, &str),
    rows: &[T],
    values: impl Fn(&T, &mut Vec<Value>) -> Result<(), StoreError>,
) -> Result<(), WriteError> {
    let group = if width == 1 {
        "?".to_owned()
    } else {
        format!("({})", vec!["?"; width].join(", "))
    };
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "{prefix}{}{suffix}",
            vec![group.as_str(); chunk.len()].join(", ")
        );
        let mut bound = Vec::with_capacity(width * chunk.len());
        for row in chunk {
            values(row, &mut bound)?;
        }
        db.prepare_cached(&sql)?.execute(params_from_iter(&bound))?;
    }
    Ok(())
}

/// Writes a change's read-model rows: the one place that does, for appends and rebuilds. One
/// statement per kind of row (and per [`ROWS_PER_STATEMENT`]).
pub(crate) fn project(db: &Connection, change: &ProjectionChange) -> Result<(), WriteError> {
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
    for_rows(
        db,
        (
            "INSERT OR REPLACE INTO plan_view (plan_id, version, person_id, template_name, \
               template_version, case_worker, organisation, origin_country, status, suspended, \
               opened_at, departed_at, arrived_at, closed_at, close_reason, next_due_at, \
               steps_total, steps_open, steps_done, steps_blocked) VALUES ",
            20,
            "",
        ),
        plans,
        |p, v| {
            v.extend([
                p.plan_id.sql(),
                p.version.sql(),
                p.person_id.sql(),
                p.template_name.sql(),
                p.template_version.sql(),
                p.case_worker.sql(),
                p.organisation.sql(),
                p.origin_country.sql(),
                p.status.sql(),
                p.suspended.sql(),
                p.opened_at.sql(),
                p.departed_at.sql(),
                p.arrived_at.sql(),
                p.closed_at.sql(),
                p.close_reason.sql(),
                p.next_due_at.sql(),
                p.steps_total.sql(),
                p.steps_open.sql(),
                p.steps_done.sql(),
                p.steps_blocked.sql(),
            ]);
            Ok(())
        },
    )?;
    for_rows(
        db,
        (
            "DELETE FROM step_view WHERE (plan_id, step_key) IN (",
            2,
            ")",
        ),
        steps_delete,
        |s, v| {
            v.extend([s.plan_id.sql(), s.step_key.sql()]);
            Ok(())
        },
    )?;
    for_rows(
        db,
        (
            "INSERT OR REPLACE INTO step_view (plan_id, step_key, position, kind, title, status, \
               assignee, candidate_group, priority, due_at, follow_up_on, document_status, \
               status_reason) VALUES ",
            13,
            "",
        ),
        steps_upsert,
        |s, v| {
            v.extend([
                s.plan_id.sql(),
                s.step_key.sql(),
                s.position.sql(),
                s.kind.sql(),
                s.title.sql(),
                s.status.sql(),
                s.assignee.sql(),
                s.candidate_group.sql(),
                s.priority.sql(),
                s.due_at.sql(),
                s.follow_up_on.sql(),
                s.document_status.sql(),
                s.status_reason.sql(),
            ]);
            Ok(())
        },
    )?;
    for_rows(
        db,
        ("DELETE FROM timers WHERE timer_id IN (", 1, ")"),
        timers_cancel,
        |id, v| {
            v.push(id.sql());
            Ok(())
        },
    )?;
    // A timer armed again keeps its claim: the claim columns are the scheduler's.
    for_rows(
        db,
        (
            "INSERT INTO timers (timer_id, plan_id, step_key, kind, fire_at, recipient_party, \
               recipient_role) VALUES ",
            7,
            " ON CONFLICT (timer_id) DO NOTHING",
        ),
        timers_arm,
        |t, v| {
            v.extend([
                t.timer_id.sql(),
                t.plan_id.sql(),
                t.step_key.sql(),
                t.kind.sql(),
                t.fire_at.sql(),
                t.recipient_party.sql(),
                t.recipient_role.sql(),
            ]);
            Ok(())
        },
    )?;
    for_rows(
        db,
        (
            "INSERT OR REPLACE INTO party_view (party_id, version, display_name, email, role, \
               organisation, country, language, time_zone, supervisor, active) VALUES ",
            11,
            "",
        ),
        parties,
        |p, v| {
            v.extend([
                p.party_id.sql(),
                p.version.sql(),
                p.display_name.sql(),
                p.email.sql(),
                p.role.sql(),
                p.organisation.sql(),
                p.country.sql(),
                p.language.sql(),
                p.time_zone.sql(),
                p.supervisor.sql(),
                p.active.sql(),
            ]);
            Ok(())
        },
    )?;
    for_rows(
        db,
        ("DELETE FROM digests WHERE party_id IN (", 1, ")"),
        digests_delete,
        |id, v| {
            v.push(id.sql());
            Ok(())
        },
    )?;
    // A new occurrence is a new piece of work: its claim and attempts start afresh.
    for_rows(
        db,
        (
            "INSERT INTO digests (party_id, due_at) VALUES ",
            2,
            " ON CONFLICT (party_id) DO UPDATE SET due_at = excluded.due_at, \
               claimed_by = NULL, lease_until = NULL, attempts = NULL \
             WHERE digests.due_at IS NOT excluded.due_at",
        ),
        digests_upsert,
        |d, v| {
            v.extend([d.party_id.sql(), d.due_at.sql()]);
            Ok(())
        },
    )?;
    for_rows(
        db,
        (
            "INSERT OR REPLACE INTO organisation_view (organisation_id, version, name, kind, \
               country, works_with, retention_months) VALUES ",
            7,
            "",
        ),
        organisations,
        |o, v| {
            v.extend([
                o.organisation_id.sql(),
                o.version.sql(),
                o.name.sql(),
                o.kind.sql(),
                o.country.sql(),
                json(&o.works_with)?,
                o.retention_months.sql(),
            ]);
            Ok(())
        },
    )?;
    for_rows(
        db,
        (
            "INSERT OR REPLACE INTO person_view (person_id, version, organisation, erased_at, \
               held_since) VALUES ",
            5,
            "",
        ),
        persons,
        |p, v| {
            v.extend([
                p.person_id.sql(),
                p.version.sql(),
                p.organisation.sql(),
                p.erased_at.sql(),
                p.held_since.sql(),
            ]);
            Ok(())
        },
    )?;
    Ok(())
}
