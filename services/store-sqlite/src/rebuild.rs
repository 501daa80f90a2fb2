//! `homeward projections rebuild` on SQLite: every read model recomputed from the log, in one
//! write transaction on the writer's thread (appends wait for it; readers see the old rows
//! until it commits).

use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};

use homeward_store::rebuild::{DecodedEvent, Streams};
use homeward_store::{ProjectionChange, RebuildReport, RecordedEvent, StoreError};

use crate::store::event_columns;
use crate::writer::{id, time, Sql, WriteError};
use crate::SqliteStore;

const READ_PAGE: i64 = 10_000;

pub(crate) async fn rebuild(store: &SqliteStore) -> Result<RebuildReport, StoreError> {
    let started = Instant::now();
    let mut report = store.inner.writer_thread.run(rebuild_on).await?;
    report.elapsed = started.elapsed();
    Ok(report)
}

fn rebuild_on(db: &mut Connection) -> Result<RebuildReport, WriteError> {
    let mut report = RebuildReport {
        events: 0,
        streams: 0,
        rows: 0,
        elapsed: Duration::ZERO,
    };
    let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for table in [
        "plan_view",
        "step_view",
        "party_view",
        "organisation_view",
        "person_view",
        "timers",
        "digests",
    ] {
        tx.execute(&format!("DELETE FROM {table}"), [])?;
    }
    // Read on the writer's own transaction: the log as this transaction sees it.
    let mut after: (String, i64) = (String::new(), 0);
    let mut streams = Streams::default();
    loop {
        let rows = read_page(&tx, &after)?;
        let Some(last) = rows.last() else {
            break;
        };
        after = (last.stream_id.clone(), last.stream_version as i64);
        let mut batch = ProjectionChange::default();
        for recorded in rows {
            report.events += 1;
            streams.push(DecodedEvent::decode(recorded)?, &mut batch);
        }
        report.rows += batch.len() as u64;
        crate::append::project(&tx, &batch)?;
    }
    let mut rows = ProjectionChange::default();
    streams.finish(&mut rows);
    report.rows += rows.len() as u64;
    report.streams = streams.count;
    crate::append::project(&tx, &rows)?;
    tx.commit()?;
    Ok(report)
}

/// The next [`READ_PAGE`] events after `after`, by stream and version.
fn read_page(db: &Connection, after: &(String, i64)) -> Result<Vec<RecordedEvent>, WriteError> {
    let mut statement = db.prepare_cached(concat!(
        "SELECT ",
        event_columns!(),
        " FROM events WHERE (stream_id, stream_version) > (?, ?) \
         ORDER BY stream_id, stream_version LIMIT ?"
    ))?;
    let mut rows = statement.query([after.0.sql(), after.1.sql(), READ_PAGE.sql()])?;
    let mut events = Vec::new();
    while let Some(row) = rows.next()? {
        let metadata: String = row.get(9)?;
        events.push(RecordedEvent {
            global_position: row.get(0)?,
            tx_id: row.get::<_, i64>(1)? as u64,
            stream_id: row.get(2)?,
            stream_version: row.get::<_, i64>(3)? as u64,
            event_id: id(&row.get::<_, Vec<u8>>(4)?)?,
            command_id: id(&row.get::<_, Vec<u8>>(5)?)?,
            event_type: row.get(6)?,
            schema_version: row.get(7)?,
            payload: row.get(8)?,
            metadata: serde_json::from_str(&metadata).map_err(|e| {
                StoreError::Unexpected(format!("a stored event's metadata is not JSON: {e}"))
            })?,
            occurred_at: time(&row.get::<_, String>(10)?)?,
            recorded_at: time(&row.get::<_, String>(11)?)?,
        });
    }
    Ok(events)
}
