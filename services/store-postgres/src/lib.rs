//! Homeward's store on PostgreSQL: the adapter behind the `homeward-store` port. Appends go
//! through a group-commit queue into SQL functions (`migrations/functions/postgres.sql`), read
//! models are written in the same transaction (and rebuilt) as typed rows, followers are woken by
//! `LISTEN/NOTIFY`, and the timer queue claims with `FOR UPDATE SKIP LOCKED` and leases.
#![forbid(unsafe_code)]

mod access_log;
mod archive;
mod batch;
mod idempotency;
mod lane;
mod person_keys;
mod reads;
mod rebuild;
mod sessions;
mod store;
mod timer_queue;

pub use batch::{GroupCommitStats, DEFAULT_FLUSHES_IN_FLIGHT};
pub use reads::{plans_query, tasks_query};
pub use rebuild::rebuild;
pub use store::{pool_options, PgStore, CHECK_POOLED_AFTER_IDLE, FUNCTIONS, MIGRATOR};

/// Replaces the database name in a PostgreSQL URL.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}
