//! The store's port: the Homeward event log and its read models, as the engine, the API and
//! the server see them, whatever database holds them.
//!
//! [`EventStore`] is the log: append a command's events to one stream with an expected
//! version, read a stream (whole, or as it stood at a version or time), and read the global
//! stream in commit order from a checkpoint. [`Backend`] is everything a server needs of its
//! database. A backend (the PostgreSQL one is `homeward-store-postgres`) implements the traits
//! and passes [`conformance`].
//!
//! Projections (plans, steps as tasks, parties, timers) are written in the same transaction as
//! the events that change them, so reads never lag writes; a rebuild recomputes them from the
//! log and must arrive at the same rows. [`projection`] computes, backend-neutrally, which rows
//! a change of state writes.
#![forbid(unsafe_code)]

pub mod access_log;
pub mod archive;
pub mod conformance;
mod error;
pub mod idempotency;
mod model;
pub mod person_keys;
pub mod projection;
pub mod reads;
pub mod rebuild;
pub mod sessions;
mod subscription;
pub mod timer_queue;

pub use error::StoreError;
pub use model::{
    Append, Appended, Cursor, ExpectedVersion, Metadata, NewEvent, NewPersonKey, ReadUntil,
    RecordedEvent, SearchTerms,
};
pub use projection::ProjectionChange;
pub use subscription::{Subscription, WakeUp};

/// What a rebuild of the read models did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    pub events: u64,
    pub streams: u64,
    pub rows: u64,
    pub elapsed: std::time::Duration,
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
    + person_keys::PersonKeys
    + access_log::AccessLog
    + reads::ReadModels
    + sessions::ConsoleSessions
    + archive::Archive
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

    /// The check value of the master key the survivors' data is sealed under: `offered` the
    /// first time (an empty database), the stored one ever after. A start-up with another key
    /// finds them different.
    async fn master_key_check(&self, offered: &[u8]) -> Result<Vec<u8>, StoreError>;

    /// The check value of the search key the blind index was built with: `offered` when the
    /// database had none yet (it is kept), or the one kept.
    async fn search_key_check(&self, offered: &[u8]) -> Result<Vec<u8>, StoreError>;

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

    /// The tails of several streams at once (each after its own version), each stream's events
    /// in version order (the streams in any order): how a page of plans is loaded in one round
    /// trip.
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

    /// The tails of several streams (as [`EventStore::read_streams_after`]) and what is kept of
    /// some persons' keys (as [`person_keys::PersonKeys::person_keys`]), read together: a plan
    /// is shown with her person in one round trip where a database allows it, not three.
    async fn read_streams_after_with_keys(
        &self,
        streams: &[(String, u64)],
        persons: &[uuid::Uuid],
    ) -> Result<StreamsAndKeys, StoreError>;
}

/// What [`EventStore::read_streams_after_with_keys`] read: the streams' tails (each stream's
/// events in version order, the streams in any order), and the keys kept of the persons who
/// ever had one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamsAndKeys {
    pub events: Vec<RecordedEvent>,
    pub keys: Vec<(uuid::Uuid, person_keys::PersonKey)>,
}
