//! Idempotency keys of API requests: what a key was first used for and what came of it.
//!
//! The API reserves a key before it carries out a request, under the request's command id, and
//! forgets it when the request was refused without writing anything, so that the key can be used
//! again. The first result is not stored here: it is the command's own events, found by its
//! command id. Keys and fingerprints arrive already hashed (keyed): the store never sees what a
//! client sent.
//!
//! A reservation is committed without waiting for the disk (`synchronous_commit = off`): it costs
//! a round trip, not a flush. A crash can lose the last few hundred milliseconds of reservations;
//! a request repeated after that is still carried out once (its command id, derived from the key
//! and the request, finds the first run's events), and only a *different* request with the same
//! key in that window would go through instead of being refused.
//!
//! Reservations are committed together, as appends are: concurrent requests' keys go in one
//! statement and one commit ([`KeyBatcher`]), on connections of its own, so that a keyed request
//! costs a share of a transaction rather than a transaction and a pool checkout of its own.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::StoreError;

/// A key as first used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub party: Uuid,
    pub key_hash: Vec<u8>,
    /// The API operation, e.g. `prioritiseStep`.
    pub operation: String,
    /// The stream the request was about (`plan-<id>`), or none for one that creates.
    pub target: Option<String>,
    /// A keyed hash of the whole request: operation, target and arguments.
    pub fingerprint: Vec<u8>,
    pub command_id: Uuid,
    pub created_at: DateTime<Utc>,
}

/// What reserving a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// The key is new (or its record expired): this request is the first.
    Reserved,
    /// The key was used before, within the retention.
    Known(KeyRecord),
}

#[async_trait]
pub trait IdempotencyKeys: Send + Sync + 'static {
    /// Records `record` unless the party already used the key after
    /// `not_before`; an older record of the key is replaced.
    async fn reserve_key(
        &self,
        record: &KeyRecord,
        not_before: DateTime<Utc>,
    ) -> Result<Reservation, StoreError>;

    /// Forgets a reserved key whose request wrote nothing (it was refused), so that it can be
    /// used again.
    async fn forget_key(&self, party: Uuid, key_hash: &[u8]) -> Result<(), StoreError>;

    /// Deletes the records of keys first used before `before`; returns how many.
    async fn purge_keys(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}
