//! The Homeward event log and its read models.
//!
//! [`EventStore`] is the port the engine uses: append a command's events to one stream with an
//! expected version, read a stream (whole, or as it stood at a version or time), and read the
//! global stream in commit order from a checkpoint. [`PgStore`] implements it on PostgreSQL; the
//! SQLite backend will implement the same trait and pass the same conformance tests.
//!
//! Projections (plans, steps as tasks, parties, timers) are written in the same transaction as
//! the events that change them, so reads never lag writes; [`rebuild`] recomputes them from the
//! log and must arrive at the same rows.
#![forbid(unsafe_code)]

mod batch;
pub mod conformance;
mod error;
pub mod idempotency;
mod model;
mod postgres;
pub mod projection;
pub mod reads;
mod rebuild;
mod subscription;
pub mod timer_queue;

pub use batch::{GroupCommitStats, DEFAULT_FLUSHES_IN_FLIGHT};
pub use error::StoreError;
pub use model::{
    Append, Appended, Cursor, ExpectedVersion, Metadata, NewEvent, ReadUntil, RecordedEvent,
};
pub use postgres::{PgStore, FUNCTIONS, MIGRATOR};
pub use projection::ProjectionChange;
pub use rebuild::{rebuild, RebuildReport};
pub use subscription::{Subscription, WakeUp};

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

use async_trait::async_trait;

/// Everything Homeward keeps, behind one port: the event log, the read models and the API's
/// reads, the timer queue, idempotency keys, and what a server needs to start and follow the
/// log. A backend implements it and passes [`conformance`]; the server, the command line and
/// the tests use a backend through it.
#[async_trait]
pub trait Backend:
    EventStore
    + timer_queue::TimerQueue
    + idempotency::IdempotencyKeys
    + reads::ReadModels
    + std::fmt::Debug
{
    /// Brings the schema up to date; safe to call from replicas starting together.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Whether the database answers (readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    /// The position after the last event a catch-up reader can see now: where a follower that
    /// only wants new events starts.
    async fn head(&self) -> Result<Cursor, StoreError>;

    /// Follows the global stream from `from`, in commit order.
    async fn subscribe(&self, from: Cursor) -> Result<Subscription, StoreError>;

    /// Recomputes every read model from the log.
    async fn rebuild_projections(&self) -> Result<RebuildReport, StoreError>;

    /// A server-wide secret shared by every replica: random the first time it is asked for,
    /// the same ever after.
    async fn server_secret(&self, name: &str) -> Result<Vec<u8>, StoreError>;

    /// The connections open to the database now, and how many may be (for metrics).
    fn connections(&self) -> Connections;

    /// Closes the connections once the work in flight is done (a stopping server).
    async fn close(&self);
}

/// A backend's connections to its database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connections {
    pub in_use: u32,
    pub idle: u32,
    pub max: u32,
}

/// The event log as the engine sees it. Implemented by [`PgStore`] (and later by SQLite).
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends one command's events to one stream, atomically with their projection change.
    /// A stream not at the expected version gives [`StoreError::Conflict`] and writes nothing; a
    /// command id seen before returns its first result and writes nothing.
    async fn append(&self, append: Append) -> Result<Appended, StoreError>;

    /// The result of a command id appended before, if any.
    async fn command_result(&self, command_id: uuid::Uuid) -> Result<Option<Appended>, StoreError>;

    /// The events of one stream in version order, up to a version or an instant if asked.
    async fn read_stream(
        &self,
        stream_id: &str,
        until: ReadUntil,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The events of one stream after version `after`, in version order: the tail a cached state
    /// needs to catch up.
    async fn read_stream_after(
        &self,
        stream_id: &str,
        after: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Up to `limit` events of the global stream after `after`, in commit order. Never skips an
    /// event that commits later with a lower position: only events below the oldest running
    /// transaction are returned.
    async fn read_all(&self, after: Cursor, limit: i64) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The tails of several streams at once (each after its own version), ordered by stream and
    /// version: how a page of plans is loaded in one round trip.
    async fn read_streams_after(
        &self,
        streams: &[(String, u64)],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut all = Vec::new();
        for (stream, after) in streams {
            all.extend(self.read_stream_after(stream, *after).await?);
        }
        Ok(all)
    }
}
