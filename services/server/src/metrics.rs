//! `/metrics` in Prometheus' text format. The libraries record through the `metrics` facade
//! (the store: appends and batch sizes; the engine: commands, timers, claims, emails; the API:
//! requests per root field, subscriptions and their lag); this installs the one recorder of
//! the process and adds, at each scrape, what is read rather than counted (the database pool,
//! the reminders due).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Seconds, from a fast in-memory answer to a slow mail server.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Appends per group-commit transaction; answers per batch of the access audit.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's recorder, installed on first use; `None` if another recorder was installed
/// first (then `/metrics` says so).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("homeward_append_batch_size".into()),
                        BATCH_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("homeward_access_audit_batch_size".into()),
                        BATCH_BUCKETS,
                    )
                });
            match builder.and_then(PrometheusBuilder::install_recorder) {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed; /metrics is empty");
                    None
                }
            }
        })
        .as_ref()
}

/// Reminders due and not yet sent, and how long the oldest has waited.
pub fn record_due_timers(
    due: homeward_store::timer_queue::DueTimers,
    now: chrono::DateTime<chrono::Utc>,
) {
    metrics::gauge!("homeward_timers_due").set(due.count as f64);
    let waited = due.oldest.map_or(0.0, |oldest| {
        (now - oldest).num_milliseconds().max(0) as f64 / 1000.0
    });
    metrics::gauge!("homeward_oldest_due_timer_age_seconds").set(waited);
}

/// The metrics as text, after reading the database connections' use.
pub fn render(connections: homeward_store::Connections) -> Option<String> {
    let handle = handle()?;
    metrics::gauge!("homeward_db_pool_connections", "state" => "idle")
        .set(f64::from(connections.idle));
    metrics::gauge!("homeward_db_pool_connections", "state" => "in_use")
        .set(f64::from(connections.in_use));
    metrics::gauge!("homeward_db_pool_max_connections").set(f64::from(connections.max));
    handle.run_upkeep();
    Some(handle.render())
}
