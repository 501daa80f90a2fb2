//! Survivors' wrapped data keys on PostgreSQL (`person_keys`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use homeward_store::person_keys::{KeyErasure, PersonKey, PersonKeys};
use homeward_store::StoreError;
use uuid::Uuid;

use crate::PgStore;

/// A `person_keys` row: the wrapped key, or when it was erased.
type KeyRow = (Option<Vec<u8>>, Option<DateTime<Utc>>);

#[async_trait]
impl PersonKeys for PgStore {
    async fn store_person_key(
        &self,
        person: Uuid,
        wrapped: &[u8],
        master_check: &[u8],
    ) -> Result<PersonKey, StoreError> {
        // A statement that waited for another storing the first check value does not see it
        // in its snapshot: the second try does.
        match self.try_store_key(person, wrapped, master_check).await {
            Err(StoreError::MasterKeyChanged) => {
                self.try_store_key(person, wrapped, master_check).await
            }
            other => other,
        }
    }

    async fn rewrap_person_keys(
        &self,
        current_check: &[u8],
        new_check: &[u8],
        rewrap: &(dyn for<'k> Fn(Uuid, &'k [u8]) -> Result<Vec<u8>, String> + Send + Sync),
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        // Keys stored meanwhile wait for the rotation, then find the new check value.
        sqlx::query("LOCK TABLE person_keys IN EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        let kept: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT secret FROM server_secrets WHERE name = 'master_key_check' FOR UPDATE",
        )
        .fetch_optional(&mut *tx)
        .await?;
        if kept.as_deref() != Some(current_check) {
            return Err(StoreError::MasterKeyChanged);
        }
        let rows: Vec<(Uuid, Vec<u8>)> = sqlx::query_as(
            "SELECT person_id, wrapped_key FROM person_keys WHERE wrapped_key IS NOT NULL",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut persons = Vec::with_capacity(rows.len());
        let mut wrapped = Vec::with_capacity(rows.len());
        for (person, old) in rows {
            let new = rewrap(person, &old).map_err(StoreError::Unexpected)?;
            persons.push(person);
            wrapped.push(new);
        }
        sqlx::query(
            "UPDATE person_keys k SET wrapped_key = n.wrapped \
             FROM UNNEST($1::uuid[], $2::bytea[]) AS n(person_id, wrapped) \
             WHERE k.person_id = n.person_id",
        )
        .bind(&persons)
        .bind(&wrapped)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE server_secrets SET secret = $1 WHERE name = 'master_key_check'")
            .bind(new_check)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(persons.len() as u64)
    }

    async fn person_key(&self, person: Uuid) -> Result<Option<PersonKey>, StoreError> {
        let row: Option<KeyRow> = self
            .read(|pool| {
                sqlx::query_as(
                    "SELECT wrapped_key, erased_at FROM person_keys WHERE person_id = $1",
                )
                .bind(person)
                .fetch_optional(pool)
            })
            .await?;
        row.map(|(wrapped, erased)| PersonKey::from_stored(wrapped, erased))
            .transpose()
    }

    async fn person_keys(&self, persons: &[Uuid]) -> Result<Vec<(Uuid, PersonKey)>, StoreError> {
        let rows: Vec<(Uuid, Option<Vec<u8>>, Option<DateTime<Utc>>)> = self
            .read(|pool| {
                sqlx::query_as(
                    "SELECT person_id, wrapped_key, erased_at FROM person_keys \
                     WHERE person_id = ANY($1)",
                )
                .bind(persons)
                .fetch_all(pool)
            })
            .await?;
        rows.into_iter()
            .map(|(person, wrapped, erased)| Ok((person, PersonKey::from_stored(wrapped, erased)?)))
            .collect()
    }

    async fn erase_person_key(
        &self,
        person: Uuid,
        at: DateTime<Utc>,
    ) -> Result<KeyErasure, StoreError> {
        let mut tx = self.begin().await?;
        // The lock an append to her stream takes (`homeward_append_commands`): a hold being
        // recorded commits before this looks, or waits until the key is gone (and then cannot
        // seal its reason).
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("person-{person}"))
            .execute(&mut *tx)
            .await?;
        let held: Option<bool> = sqlx::query_scalar(
            "SELECT held_since IS NOT NULL FROM person_view WHERE person_id = $1",
        )
        .bind(person)
        .fetch_optional(&mut *tx)
        .await?;
        if held == Some(true) {
            return Ok(KeyErasure::Held);
        }
        // Her search terms go with her key: nothing finds her after.
        let destroyed = sqlx::query(
            "UPDATE person_keys SET wrapped_key = NULL, erased_at = $2, search_terms = NULL \
             WHERE person_id = $1 AND wrapped_key IS NOT NULL",
        )
        .bind(person)
        .bind(at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        tx.commit().await?;
        Ok(if destroyed {
            KeyErasure::Destroyed
        } else {
            KeyErasure::NoneLeft
        })
    }
}

impl PgStore {
    async fn try_store_key(
        &self,
        person: Uuid,
        wrapped: &[u8],
        master_check: &[u8],
    ) -> Result<PersonKey, StoreError> {
        // One statement: the row inserted now (only under the database's master key; on a
        // database that has none yet, the first key stored fixes it, as a first start does), or
        // the one that was there. A row another transaction committed while this one waited is not
        // in this statement's snapshot: then a second look finds it.
        //
        // Committed without waiting for the disk: the key is stored to seal the events of the
        // command about to be appended, and that append's synchronous commit flushes the log up
        // to its own commit, this one included. A key is durable whenever an event sealed under
        // it is acknowledged, and storing one costs no flush of its own.
        let mut tx = self.begin().await?;
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        let row: Option<KeyRow> = sqlx::query_as(
            "WITH first_check AS ( \
                 INSERT INTO server_secrets (name, secret) VALUES ('master_key_check', $3) \
                 ON CONFLICT (name) DO NOTHING RETURNING secret), \
             new AS ( \
                 INSERT INTO person_keys (person_id, wrapped_key) \
                 SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM first_check) \
                     OR EXISTS (SELECT 1 FROM server_secrets \
                         WHERE name = 'master_key_check' AND secret = $3) \
                 ON CONFLICT (person_id) DO NOTHING RETURNING wrapped_key, erased_at) \
             SELECT wrapped_key, erased_at FROM new \
             UNION ALL \
             SELECT wrapped_key, erased_at FROM person_keys WHERE person_id = $1 \
             LIMIT 1",
        )
        .bind(person)
        .bind(wrapped)
        .bind(master_check)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        match row {
            Some((wrapped, erased)) => PersonKey::from_stored(wrapped, erased),
            None => match self.person_key(person).await? {
                Some(kept) => Ok(kept),
                None => Err(StoreError::MasterKeyChanged),
            },
        }
    }
}
