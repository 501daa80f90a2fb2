//! Idempotency keys on PostgreSQL. A key is recorded by the append that claims it
//! (`homeward_append_commands`); here it is looked up and purged.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use homeward_store::idempotency::{IdempotencyKeys, KeyRecord};
use homeward_store::StoreError;
use uuid::Uuid;

use crate::PgStore;

#[async_trait]
impl IdempotencyKeys for PgStore {
    async fn find_key(
        &self,
        party: Uuid,
        key_hash: &[u8],
        not_before: DateTime<Utc>,
    ) -> Result<Option<KeyRecord>, StoreError> {
        Ok(self
            .read(|pool| async move {
                sqlx::query_as(
            "SELECT party_id, key_hash, operation, target, fingerprint, command_id, created_at \
             FROM idempotency_keys \
             WHERE party_id = $1 AND key_hash = $2 AND created_at >= $3",
        )
        .bind(party)
        .bind(key_hash)
        .bind(not_before)
        .fetch_optional(pool).await
            })
            .await?)
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
