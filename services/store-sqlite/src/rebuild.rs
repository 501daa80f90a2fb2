//! `homeward projections rebuild` on SQLite: every read model recomputed from the log, in one
//! write transaction (appends wait for it; readers see the old rows until it commits).

use std::time::{Duration, Instant};

use homeward_store::rebuild::{DecodedEvent, Folding};
use homeward_store::{ProjectionChange, RebuildReport, RecordedEvent, StoreError};

use crate::store::event_columns;
use crate::{write_transaction, SqliteStore};

const READ_PAGE: i64 = 10_000;

pub(crate) async fn rebuild(store: &SqliteStore) -> Result<RebuildReport, StoreError> {
    let started = Instant::now();
    let mut report = RebuildReport {
        events: 0,
        streams: 0,
        rows: 0,
        elapsed: Duration::ZERO,
    };
    write_transaction!(store, |tx| {
        for table in [
            "plan_view",
            "step_view",
            "party_view",
            "organisation_view",
            "person_view",
            "timers",
            "digests",
        ] {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut *tx)
                .await?;
        }
        // Read on the writer's own transaction: the log as this transaction sees it.
        let mut after: (String, i64) = (String::new(), 0);
        let mut current: Option<(String, Folding)> = None;
        loop {
            let rows: Vec<RecordedEvent> = sqlx::query_as(concat!(
                "SELECT ",
                event_columns!(),
                " FROM events WHERE (stream_id, stream_version) > (?, ?) \
                 ORDER BY stream_id, stream_version LIMIT ?"
            ))
            .bind(&after.0)
            .bind(after.1)
            .bind(READ_PAGE)
            .fetch_all(&mut *tx)
            .await?;
            let Some(last) = rows.last() else {
                break;
            };
            after = (last.stream_id.clone(), last.stream_version as i64);
            let mut batch = ProjectionChange::default();
            for recorded in rows {
                let event = DecodedEvent::decode(recorded)?;
                report.events += 1;
                if current
                    .as_ref()
                    .is_none_or(|(id, _)| *id != event.stream_id)
                {
                    if let Some((_, done)) = current.take() {
                        batch.extend(done.rows());
                    }
                    report.streams += 1;
                    current = Some((event.stream_id, Folding::Other));
                }
                if let Some((_, folding)) = current.as_mut() {
                    folding.apply(event.event);
                }
            }
            report.rows += batch.len() as u64;
            crate::append::project(&mut tx, &batch).await?;
        }
        if let Some((_, done)) = current.take() {
            let rows = done.rows();
            report.rows += rows.len() as u64;
            crate::append::project(&mut tx, &rows).await?;
        }
        Ok(())
    })?;
    report.elapsed = started.elapsed();
    Ok(report)
}
