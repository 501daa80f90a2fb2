//! `homeward projections rebuild`: recompute every read model from the log.
//!
//! Runs in one transaction: the projection tables are truncated (which waits for appends in
//! flight and holds new ones until the rebuild commits), every stream is folded from its events
//! in version order, and the final rows, computed by the same [`ProjectionChange`] code commands
//! use, are written in batches by the function appends write them with. Readers see the old rows
//! until the commit. Reading and
//! decoding (on a second connection), folding and writing run as overlapping stages.

use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::mpsc;

use homeward_store::rebuild::{DecodedEvent, Streams};
use homeward_store::{ProjectionChange, RebuildReport, RecordedEvent, StoreError};

use crate::store::event_columns;

const READ_PAGE: i64 = 10_000;
const WRITE_BATCH: usize = 5_000;

pub async fn rebuild(pool: &PgPool) -> Result<RebuildReport, StoreError> {
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    // From here appends wait for the rebuild before writing their projection rows, so they
    // cannot commit: the reader sees exactly the events committed before this point.
    sqlx::query(
        "TRUNCATE plan_view, step_view, party_view, organisation_view, person_view, timers, \
         digests",
    )
    .execute(&mut *tx)
    .await?;

    // Three stages that overlap: read and decode (a task, on a connection of its own), fold
    // (here), write (a task that owns the transaction).
    let (pages, mut received) = mpsc::channel::<Vec<DecodedEvent>>(2);
    let reader = tokio::spawn(read_pages(pool.clone(), pages));
    let (batches, to_write) = mpsc::channel::<ProjectionChange>(2);
    let writer = tokio::spawn(write_batches(tx, to_write));

    let mut report = RebuildReport {
        events: 0,
        streams: 0,
        rows: 0,
        elapsed: Duration::ZERO,
    };
    let mut batch = ProjectionChange::default();
    let mut streams = Streams::default();
    while let Some(page) = received.recv().await {
        for event in page {
            report.events += 1;
            streams.push(event, &mut batch);
        }
        if batch.len() >= WRITE_BATCH && batches.send(std::mem::take(&mut batch)).await.is_err() {
            break; // the writer failed: its error is reported below
        }
    }
    streams.finish(&mut batch);
    report.streams = streams.count;
    let _ = batches.send(batch).await;
    drop(batches);
    let stopped = |e: tokio::task::JoinError| StoreError::Unexpected(format!("rebuild task: {e}"));
    let (tx, rows) = writer.await.map_err(stopped)??;
    reader.await.map_err(stopped)??;
    report.rows = rows;
    tx.commit().await?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Reads every event, stream by stream in version order, in pages, and decodes it.
async fn read_pages(
    pool: PgPool,
    pages: mpsc::Sender<Vec<DecodedEvent>>,
) -> Result<(), StoreError> {
    let mut after: (String, i64) = (String::new(), 0);
    loop {
        let rows: Vec<RecordedEvent> = sqlx::query_as(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE (stream_id, stream_version) > ($1, $2) \
             ORDER BY stream_id, stream_version LIMIT $3"
        ))
        .bind(&after.0)
        .bind(after.1)
        .bind(READ_PAGE)
        .fetch_all(&pool)
        .await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = (last.stream_id.clone(), last.stream_version as i64);
        let page = rows
            .into_iter()
            .map(DecodedEvent::decode)
            .collect::<Result<Vec<_>, _>>()?;
        if pages.send(page).await.is_err() {
            // The rebuild stopped (and rolls back); nothing more to read for.
            return Ok(());
        }
    }
}

/// Writes batches of rows in the rebuild's transaction through `homeward_project_rows`, the
/// function and the typed rows appends use (the tables were truncated, and each stream's rows
/// come once); hands the transaction back at the end. Measured against `COPY` in text format,
/// alternating three rounds of 60,000 events (`--phases rebuild`): 0.68 of a plain `SELECT` of
/// the same events against 0.64 with `COPY`, so one encoding of rows serves both.
async fn write_batches(
    mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
    mut batches: mpsc::Receiver<ProjectionChange>,
) -> Result<(sqlx::Transaction<'static, sqlx::Postgres>, u64), StoreError> {
    let mut rows = 0;
    while let Some(change) = batches.recv().await {
        rows += change.len() as u64;
        sqlx::query("SELECT homeward_project_rows($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
            .bind(&change.plans)
            .bind(&change.steps_delete)
            .bind(&change.steps_upsert)
            .bind(&change.timers_cancel)
            .bind(&change.timers_arm)
            .bind(&change.parties)
            .bind(&change.digests_delete)
            .bind(&change.digests_upsert)
            .bind(&change.organisations)
            .bind(&change.persons)
            .execute(&mut *tx)
            .await?;
    }
    Ok((tx, rows))
}
