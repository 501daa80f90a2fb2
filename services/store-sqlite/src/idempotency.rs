//! Idempotency keys on SQLite. A key is recorded by the append that claims it (`append`); here it
//! is looked up and purged.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use homeward_store::idempotency::{IdempotencyKeys, KeyRecord};
use homeward_store::StoreError;
use uuid::Uuid;

use crate::SqliteStore;

#[async_trait]
impl IdempotencyKeys for SqliteStore {
    async fn find_key(
        &self,
        party: Uuid,
        key_hash: &[u8],
        not_before: DateTime<Utc>,
    ) -> Result<Option<KeyRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT party_id, key_hash, operation, target, fingerprint, command_id, created_at \
             FROM idempotency_keys \
             WHERE party_id = ? AND key_hash = ? AND created_at >= ?",
        )
        .bind(party)
        .bind(key_hash)
        .bind(not_before)
        .fetch_optional(self.read_pool())
        .await?)
    }

    async fn purge_keys(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut writer = self.writer().await;
        Ok(
            sqlx::query("DELETE FROM idempotency_keys WHERE created_at < ?")
                .bind(before)
                .execute(&mut *writer)
                .await?
                .rows_affected(),
        )
    }
}
