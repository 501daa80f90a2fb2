//! `homeward projections rebuild`: recompute every read model from the log.
//!
//! Runs in one transaction: the projection tables are truncated (which waits for appends in
//! flight and holds new ones until the rebuild commits), every stream is folded from its events
//! in version order, and the final rows are written in batches through the same
//! [`ProjectionChange`] path commands use. Readers see the old rows until the commit. The events
//! are read on a second connection, so reading overlaps with folding and writing.

use std::time::{Duration, Instant};

use homeward_workflows::party::Party;
use homeward_workflows::plan::Plan;
use homeward_workflows::Aggregate;
use sqlx::PgPool;
use tokio::sync::mpsc;

use crate::postgres::{event_columns, recorded_event};
use crate::projection::ProjectionChange;
use crate::{RecordedEvent, StoreError};

const READ_PAGE: i64 = 10_000;
const WRITE_BATCH: usize = 5_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    pub events: u64,
    pub streams: u64,
    pub rows: u64,
    pub elapsed: Duration,
}

/// The state of the stream being folded.
enum Folding {
    Plan(Option<Plan>),
    Party(Option<Party>),
    /// Streams without read models (persons).
    Other,
}

impl Folding {
    fn for_stream(stream_id: &str) -> Self {
        if stream_id.starts_with("plan-") {
            Self::Plan(None)
        } else if stream_id.starts_with("party-") {
            Self::Party(None)
        } else {
            Self::Other
        }
    }

    fn apply(&mut self, event: &RecordedEvent) -> Result<(), StoreError> {
        match self {
            Self::Plan(state) => *state = Plan::apply(state.take(), &event.decode()?),
            Self::Party(state) => *state = Party::apply(state.take(), &event.decode()?),
            Self::Other => {}
        }
        Ok(())
    }

    fn rows(&self) -> ProjectionChange {
        match self {
            Self::Plan(Some(plan)) => ProjectionChange::for_plan(None, plan),
            Self::Party(Some(party)) => ProjectionChange::for_party(party),
            _ => ProjectionChange::default(),
        }
    }
}

pub async fn rebuild(pool: &PgPool) -> Result<RebuildReport, StoreError> {
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    // From here appends wait for the rebuild before writing their projection rows, so they
    // cannot commit: the reader sees exactly the events committed before this point.
    sqlx::query("TRUNCATE plan_view, step_view, party_view, timers")
        .execute(&mut *tx)
        .await?;

    // Reading (on a connection of its own) overlaps with folding and writing.
    let (pages, mut received) = mpsc::channel::<Vec<RecordedEvent>>(2);
    let reader = tokio::spawn(read_pages(pool.clone(), pages));

    let mut report = RebuildReport {
        events: 0,
        streams: 0,
        rows: 0,
        elapsed: Duration::ZERO,
    };
    let mut batch = ProjectionChange::default();
    let mut current: Option<(String, Folding)> = None;
    while let Some(page) = received.recv().await {
        for event in &page {
            report.events += 1;
            if current
                .as_ref()
                .is_none_or(|(id, _)| *id != event.stream_id)
            {
                if let Some((_, done)) = current.take() {
                    batch.extend(done.rows());
                }
                report.streams += 1;
                current = Some((
                    event.stream_id.clone(),
                    Folding::for_stream(&event.stream_id),
                ));
            }
            if let Some((_, folding)) = current.as_mut() {
                folding.apply(event)?;
            }
        }
        if batch.len() >= WRITE_BATCH {
            report.rows += write(&mut tx, std::mem::take(&mut batch)).await?;
        }
    }
    reader
        .await
        .map_err(|e| StoreError::Unexpected(format!("rebuild reader stopped: {e}")))??;
    if let Some((_, done)) = current.take() {
        batch.extend(done.rows());
    }
    report.rows += write(&mut tx, batch).await?;
    tx.commit().await?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Reads every event, stream by stream in version order, in pages.
async fn read_pages(
    pool: PgPool,
    pages: mpsc::Sender<Vec<RecordedEvent>>,
) -> Result<(), StoreError> {
    let mut after: (String, i64) = (String::new(), 0);
    loop {
        let rows = sqlx::query(concat!(
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
        let page = rows
            .iter()
            .map(recorded_event)
            .collect::<Result<Vec<_>, _>>()?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = (last.stream_id.clone(), last.stream_version as i64);
        if pages.send(page).await.is_err() {
            // The rebuild stopped (and rolls back); nothing more to read for.
            return Ok(());
        }
    }
}

async fn write(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    change: ProjectionChange,
) -> Result<u64, StoreError> {
    let rows = change.len() as u64;
    if let Some(json) = change.to_json() {
        sqlx::query("SELECT homeward_project($1)")
            .bind(json)
            .execute(&mut **tx)
            .await?;
    }
    Ok(rows)
}
