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

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use crate::{PgStore, StoreError};

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

#[async_trait]
impl IdempotencyKeys for PgStore {
    async fn reserve_key(
        &self,
        record: &KeyRecord,
        not_before: DateTime<Utc>,
    ) -> Result<Reservation, StoreError> {
        // One statement: insert, or take over an expired record, or return the live one.
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys AS k (party_id, key_hash, operation, target, \
                 fingerprint, command_id, created_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7 \
             FROM (SELECT set_config('synchronous_commit', 'off', true)) no_flush \
             ON CONFLICT (party_id, key_hash) DO UPDATE SET \
                 operation = excluded.operation, target = excluded.target, \
                 fingerprint = excluded.fingerprint, command_id = excluded.command_id, \
                 created_at = excluded.created_at \
             WHERE k.created_at < $8 \
             RETURNING 1",
        )
        .bind(record.party)
        .bind(&record.key_hash)
        .bind(&record.operation)
        .bind(&record.target)
        .bind(&record.fingerprint)
        .bind(record.command_id)
        .bind(record.created_at)
        .bind(not_before)
        .fetch_optional(self.pool())
        .await?;
        if inserted.is_some() {
            return Ok(Reservation::Reserved);
        }
        let row = sqlx::query(
            "SELECT operation, target, fingerprint, command_id, created_at \
             FROM idempotency_keys WHERE party_id = $1 AND key_hash = $2",
        )
        .bind(record.party)
        .bind(&record.key_hash)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            // Forgotten between the two statements: the request may go ahead as the first.
            return self.reserve_key(record, not_before).await;
        };
        Ok(Reservation::Known(KeyRecord {
            party: record.party,
            key_hash: record.key_hash.clone(),
            operation: row.try_get("operation")?,
            target: row.try_get("target")?,
            fingerprint: row.try_get("fingerprint")?,
            command_id: row.try_get("command_id")?,
            created_at: row.try_get("created_at")?,
        }))
    }

    async fn forget_key(&self, party: Uuid, key_hash: &[u8]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM idempotency_keys WHERE party_id = $1 AND key_hash = $2")
            .bind(party)
            .bind(key_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn purge_keys(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                .bind(before)
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }
}
