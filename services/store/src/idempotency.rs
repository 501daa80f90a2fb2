//! Idempotency keys of API requests: what a key was first used for.
//!
//! A keyed request's append claims its key ([`KeyClaim`], carried by the append): the key is
//! recorded in the append's own transaction, so a request that writes costs no round trip for its
//! key, and a key is recorded exactly when its request's events are. An append whose key was used
//! within the retention is refused ([`crate::StoreError::KeyTaken`]) and writes nothing; an
//! older record of the key makes way. A request that is refused, or that changes nothing,
//! records nothing, and its key stays free. The first result is not stored here: it is the
//! command's own events, found by its command id. Keys and fingerprints arrive already hashed
//! (keyed): the store never sees what a client sent.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::StoreError;

/// A key as first used.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct KeyRecord {
    #[sqlx(rename = "party_id")]
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

/// A key an append claims for its request: recorded with its events unless the party used the
/// key at or after `not_before`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyClaim {
    pub record: KeyRecord,
    pub not_before: DateTime<Utc>,
}

#[async_trait]
pub trait IdempotencyKeys: Send + Sync + 'static {
    /// The record of a key the party used at or after `not_before`, if any.
    async fn find_key(
        &self,
        party: Uuid,
        key_hash: &[u8],
        not_before: DateTime<Utc>,
    ) -> Result<Option<KeyRecord>, StoreError>;

    /// Deletes the records of keys first used before `before`; returns how many.
    async fn purge_keys(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}
