//! Survivors' wrapped data keys on SQLite (`person_keys`), and the blind index beside them
//! (`person_terms`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use homeward_store::person_keys::{KeyErasure, PersonKey, PersonKeys};
use homeward_store::{SearchTerms, StoreError};
use sqlx::SqliteConnection;
use uuid::Uuid;

use crate::{write_transaction, SqliteStore};

/// A `person_keys` row: the wrapped key, or when it was erased.
type KeyRow = (Option<Vec<u8>>, Option<DateTime<Utc>>);

/// Replaces a person's blind-index terms (nothing is indexed for a person without a kept key).
pub(crate) async fn replace_terms(
    db: &mut SqliteConnection,
    search: &SearchTerms,
) -> Result<(), StoreError> {
    let kept = sqlx::query(
        "UPDATE person_keys SET organisation = ? WHERE person_id = ? AND wrapped_key IS NOT NULL",
    )
    .bind(search.organisation)
    .bind(search.person)
    .execute(&mut *db)
    .await?
    .rows_affected()
        == 1;
    sqlx::query("DELETE FROM person_terms WHERE person_id = ?")
        .bind(search.person)
        .execute(&mut *db)
        .await?;
    if kept {
        for term in &search.terms {
            sqlx::query(
                "INSERT OR IGNORE INTO person_terms (organisation, term, person_id) \
                 VALUES (?, ?, ?)",
            )
            .bind(search.organisation)
            .bind(term)
            .bind(search.person)
            .execute(&mut *db)
            .await?;
        }
    }
    Ok(())
}

#[async_trait]
impl PersonKeys for SqliteStore {
    async fn store_person_key(
        &self,
        person: Uuid,
        wrapped: &[u8],
        master_check: &[u8],
    ) -> Result<PersonKey, StoreError> {
        write_transaction!(self, |tx| {
            let earlier: Option<KeyRow> = sqlx::query_as(
                "SELECT wrapped_key, erased_at FROM person_keys WHERE person_id = ?",
            )
            .bind(person)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(earlier) = earlier {
                return PersonKey::from_stored(earlier.0, earlier.1);
            }
            let check = crate::store::remember(&mut tx, "master_key_check", master_check).await?;
            if check != master_check {
                return Err(StoreError::MasterKeyChanged);
            }
            sqlx::query(
                "INSERT INTO person_keys (person_id, wrapped_key, created_at) VALUES (?, ?, ?)",
            )
            .bind(person)
            .bind(wrapped)
            .bind(crate::stored(Utc::now()))
            .execute(&mut *tx)
            .await?;
            Ok(PersonKey::Wrapped(wrapped.to_vec()))
        })
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
