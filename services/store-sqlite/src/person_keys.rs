//! Survivors' wrapped data keys on SQLite (`person_keys`), and the blind index beside them
//! (`person_terms`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use homeward_store::person_keys::{KeyErasure, PersonKey, PersonKeys};
use homeward_store::StoreError;
use rusqlite::{OptionalExtension, TransactionBehavior};
use uuid::Uuid;

use crate::writer::{time, Sql};

use crate::{write_transaction, SqliteStore};

/// A `person_keys` row: the wrapped key, or when it was erased.
type KeyRow = (Option<Vec<u8>>, Option<DateTime<Utc>>);

#[async_trait]
impl PersonKeys for SqliteStore {
    async fn store_person_key(
        &self,
        person: Uuid,
        wrapped: &[u8],
        master_check: &[u8],
    ) -> Result<PersonKey, StoreError> {
        let (wrapped, master_check) = (wrapped.to_vec(), master_check.to_vec());
        // On the writer's thread, where appends check the same master key.
        self.inner
            .writer_thread
            .run(move |db| {
                let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let earlier: Option<(Option<Vec<u8>>, Option<String>)> = tx
                    .prepare_cached(
                        "SELECT wrapped_key, erased_at FROM person_keys WHERE person_id = ?",
                    )?
                    .query_row([person.sql()], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()?;
                if let Some((key, erased_at)) = earlier {
                    let erased_at = erased_at.as_deref().map(time).transpose()?;
                    return Ok(PersonKey::from_stored(key, erased_at)?);
                }
                let check = crate::store::remember(&tx, "master_key_check", &master_check)?;
                if check != master_check {
                    return Err(StoreError::MasterKeyChanged.into());
                }
                tx.prepare_cached(
                    "INSERT INTO person_keys (person_id, wrapped_key, created_at) \
                     VALUES (?, ?, ?)",
                )?
                .execute([
                    person.sql(),
                    wrapped.sql(),
                    crate::stored(Utc::now()).sql(),
                ])?;
                tx.commit()?;
                Ok(PersonKey::Wrapped(wrapped))
            })
            .await
    }

    async fn rewrap_person_keys(
        &self,
        current_check: &[u8],
        new_check: &[u8],
        rewrap: &(dyn for<'k> Fn(Uuid, &'k [u8]) -> Result<Vec<u8>, String> + Send + Sync),
    ) -> Result<u64, StoreError> {
        write_transaction!(self, |tx| {
            let kept: Option<Vec<u8>> = sqlx::query_scalar(
                "SELECT secret FROM server_secrets WHERE name = 'master_key_check'",
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
            let count = rows.len() as u64;
            for (person, old) in rows {
                let new = rewrap(person, &old).map_err(StoreError::Unexpected)?;
                sqlx::query("UPDATE person_keys SET wrapped_key = ? WHERE person_id = ?")
                    .bind(new)
                    .bind(person)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("UPDATE server_secrets SET secret = ? WHERE name = 'master_key_check'")
                .bind(new_check)
                .execute(&mut *tx)
                .await?;
            Ok(count)
        })
    }

    async fn person_key(&self, person: Uuid) -> Result<Option<PersonKey>, StoreError> {
        let row: Option<KeyRow> =
            sqlx::query_as("SELECT wrapped_key, erased_at FROM person_keys WHERE person_id = ?")
                .bind(person)
                .fetch_optional(self.read_pool())
                .await?;
        row.map(|(wrapped, erased)| PersonKey::from_stored(wrapped, erased))
            .transpose()
    }

    async fn person_keys(&self, persons: &[Uuid]) -> Result<Vec<(Uuid, PersonKey)>, StoreError> {
        if persons.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "SELECT person_id, wrapped_key, erased_at FROM person_keys WHERE person_id IN (",
        );
        let mut ids = query.separated(", ");
        for person in persons {
            ids.push_bind(*person);
        }
        query.push(")");
        let rows: Vec<(Uuid, Option<Vec<u8>>, Option<DateTime<Utc>>)> =
            query.build_query_as().fetch_all(self.read_pool()).await?;
        rows.into_iter()
            .map(|(person, wrapped, erased)| Ok((person, PersonKey::from_stored(wrapped, erased)?)))
            .collect()
    }

    async fn erase_person_key(
        &self,
        person: Uuid,
        at: DateTime<Utc>,
    ) -> Result<KeyErasure, StoreError> {
        // Under the writer: no hold can be recorded between the check and the destruction.
        write_transaction!(self, |tx| {
            let held: Option<bool> = sqlx::query_scalar(
                "SELECT held_since IS NOT NULL FROM person_view WHERE person_id = ?",
            )
            .bind(person)
            .fetch_optional(&mut *tx)
            .await?;
            if held == Some(true) {
                return Ok(KeyErasure::Held);
            }
            // Her search terms go with her key: nothing finds her after.
            sqlx::query("DELETE FROM person_terms WHERE person_id = ?")
                .bind(person)
                .execute(&mut *tx)
                .await?;
            let destroyed = sqlx::query(
                "UPDATE person_keys SET wrapped_key = NULL, erased_at = ? \
                 WHERE person_id = ? AND wrapped_key IS NOT NULL",
            )
            .bind(crate::stored(at))
            .bind(person)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            Ok(if destroyed {
                KeyErasure::Destroyed
            } else {
                KeyErasure::NoneLeft
            })
        })
    }
}
