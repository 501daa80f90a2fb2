//! Moving a whole database to another, of either kind: `homeward export` and `homeward import`.
//!
//! What moves is what cannot be recomputed: the log as stored (every event with its ids and
//! times, personal fields still sealed), and beside it the survivors' wrapped data keys, the
//! blind index, the access audit, the idempotency records and the server-wide secrets (the
//! keys that sign partner links and hash idempotency keys, and the check values of the master
//! and search keys). The read models are rebuilt from the log after an import. Tokens, invitations
//! and sessions do not move: parties sign in again.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::access_log::AccessEntry;
use crate::idempotency::KeyRecord;
use crate::{Cursor, RecordedEvent, StoreError};

/// A person's data key as kept: wrapped by the master key, or erased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptPersonKey {
    pub person: Uuid,
    /// None once erased.
    pub wrapped: Option<Vec<u8>>,
    pub created_at: DateTime<Utc>,
    pub erased_at: Option<DateTime<Utc>>,
    /// The organisation her blind-index terms are under.
    pub organisation: Option<Uuid>,
    /// Her blind-index terms (keyed hashes).
    pub terms: Vec<Vec<u8>>,
}

/// Everything a database keeps besides its events, that a rebuild cannot recompute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kept {
    /// Each stream and its type.
    pub streams: Vec<(String, String)>,
    pub person_keys: Vec<KeptPersonKey>,
    pub access_log: Vec<AccessEntry>,
    pub idempotency_keys: Vec<KeyRecord>,
    /// Server-wide secrets by name.
    pub secrets: Vec<(String, Vec<u8>)>,
}

/// A backend's side of export and import.
#[async_trait]
pub trait Archive: Send + Sync + 'static {
    /// Up to `limit` events after `after` in commit order, as [`crate::EventStore::read_all`]
    /// gives them.
    async fn export_events(
        &self,
        after: Cursor,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Everything kept besides the events.
    async fn export_kept(&self) -> Result<Kept, StoreError>;

    /// True when the database holds no event, no key and no party: what an import needs.
    async fn is_empty(&self) -> Result<bool, StoreError>;

    /// Writes events as they were stored elsewhere (their ids, versions and times), in the
    /// commit order they are given in, after those imported before; nothing is projected.
    async fn import_events(&self, events: &[RecordedEvent]) -> Result<(), StoreError>;

    /// Writes what [`Archive::export_kept`] gave, in one transaction.
    async fn import_kept(&self, kept: &Kept) -> Result<(), StoreError>;
}
