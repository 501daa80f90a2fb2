//! Survivors' wrapped data keys on PostgreSQL (`person_keys`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use homeward_store::person_keys::{PersonKey, PersonKeys};
use homeward_store::StoreError;
use uuid::Uuid;

use crate::PgStore;

fn kept(row: (Option<Vec<u8>>, Option<DateTime<Utc>>)) -> Result<PersonKey, StoreError> {
    match row {
        (Some(wrapped), None) => Ok(PersonKey::Wrapped(wrapped)),
        (None, Some(at)) => Ok(PersonKey::Erased { at }),
        _ => Err(StoreError::Unexpected(
            "a person key row is neither kept nor erased".into(),
        )),
    }
}

#[async_trait]
impl PersonKeys for PgStore {
    async fn store_person_key(
        &self,
        person: Uuid,
        wrapped: &[u8],
    ) -> Result<PersonKey, StoreError> {
        // One statement: the row inserted now, or the one that was there. A row another
        // transaction committed while this one waited is not in this statement's snapshot:
        // then a second look finds it.
        let row: Option<(Option<Vec<u8>>, Option<DateTime<Utc>>)> = sqlx::query_as(
            "WITH new AS ( \
                 INSERT INTO person_keys (person_id, wrapped_key) VALUES ($1, $2) \
                 ON CONFLICT (person_id) DO NOTHING RETURNING wrapped_key, erased_at) \
             SELECT wrapped_key, erased_at FROM new \
             UNION ALL \
             SELECT wrapped_key, erased_at FROM person_keys WHERE person_id = $1 \
             LIMIT 1",
        )
        .bind(person)
        .bind(wrapped)
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(row) => kept(row),
            None => self.person_key(person).await?.ok_or_else(|| {
                StoreError::Unexpected("a person key vanished as it was stored".into())
            }),
        }
    }

    async fn person_key(&self, person: Uuid) -> Result<Option<PersonKey>, StoreError> {
        let row: Option<(Option<Vec<u8>>, Option<DateTime<Utc>>)> =
            sqlx::query_as("SELECT wrapped_key, erased_at FROM person_keys WHERE person_id = $1")
                .bind(person)
                .fetch_optional(self.pool())
                .await?;
        row.map(kept).transpose()
    }

    async fn person_keys(&self, persons: &[Uuid]) -> Result<Vec<(Uuid, PersonKey)>, StoreError> {
        let rows: Vec<(Uuid, Option<Vec<u8>>, Option<DateTime<Utc>>)> = sqlx::query_as(
            "SELECT person_id, wrapped_key, erased_at FROM person_keys WHERE person_id = ANY($1)",
        )
        .bind(persons)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(person, wrapped, erased)| Ok((person, kept((wrapped, erased))?)))
            .collect()
    }

    async fn erase_person_key(&self, person: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "UPDATE person_keys SET wrapped_key = NULL, erased_at = $2 \
             WHERE person_id = $1 AND wrapped_key IS NOT NULL",
        )
        .bind(person)
        .bind(at)
        .execute(self.pool())
        .await?
        .rows_affected()
            == 1)
    }
}
