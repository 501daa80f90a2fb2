//! Export and import on SQLite (see `homeward_store::archive`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use homeward_store::archive::{Archive, Kept, KeptPersonKey};
use homeward_store::idempotency::KeyRecord;
use homeward_store::{Cursor, EventStore as _, RecordedEvent, StoreError};
use uuid::Uuid;

use crate::{write_transaction, SqliteStore};

/// A `person_keys` row as exported.
type KeyRow = (
    Uuid,
    Option<Vec<u8>>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<Uuid>,
);

#[async_trait]
impl Archive for SqliteStore {
    async fn export_events(
        &self,
        after: Cursor,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read_all(after, limit).await
    }

    async fn export_kept(&self) -> Result<Kept, StoreError> {
        let pool = self.read_pool();
        let streams: Vec<(String, String)> =
            sqlx::query_as("SELECT stream_id, stream_type FROM streams ORDER BY stream_id")
                .fetch_all(pool)
                .await?;
        let keys: Vec<KeyRow> = sqlx::query_as(
            "SELECT person_id, wrapped_key, created_at, erased_at, organisation \
             FROM person_keys ORDER BY person_id",
        )
        .fetch_all(pool)
        .await?;
        let terms: Vec<(Uuid, Vec<u8>)> =
            sqlx::query_as("SELECT person_id, term FROM person_terms ORDER BY person_id, term")
                .fetch_all(pool)
                .await?;
        let person_keys = keys
            .into_iter()
            .map(
                |(person, wrapped, created_at, erased_at, organisation)| KeptPersonKey {
                    person,
                    wrapped,
                    created_at,
                    erased_at,
                    organisation,
                    terms: terms
                        .iter()
                        .filter(|(p, _)| *p == person)
                        .map(|(_, t)| t.clone())
                        .collect(),
                },
            )
            .collect();
        let access: Vec<crate::access_log::AccessRow> = sqlx::query_as(
            "SELECT at, party_id, person_id, fields, operation FROM access_log ORDER BY entry_id",
        )
        .fetch_all(pool)
        .await?;
        let access_log = access
            .into_iter()
            .map(crate::access_log::entry)
            .collect::<Result<_, StoreError>>()?;
        let idempotency_keys: Vec<KeyRecord> = sqlx::query_as(
            "SELECT party_id, key_hash, operation, target, fingerprint, command_id, created_at \
             FROM idempotency_keys ORDER BY created_at, party_id, key_hash",
        )
        .fetch_all(pool)
        .await?;
        let secrets: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT name, secret FROM server_secrets ORDER BY name")
                .fetch_all(pool)
                .await?;
        Ok(Kept {
            streams,
            person_keys,
            access_log,
            idempotency_keys,
            secrets,
        })
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT NOT EXISTS (SELECT 1 FROM events) AND NOT EXISTS (SELECT 1 FROM person_keys) \
               AND NOT EXISTS (SELECT 1 FROM api_tokens)",
        )
        .fetch_one(self.read_pool())
        .await?)
    }

    async fn import_events(&self, events: &[RecordedEvent]) -> Result<(), StoreError> {
        write_transaction!(self, |tx| {
            // Transactions are counted again from this database's last: a new number where the
            // source's changes, so events of one source transaction stay together.
            let mut number: i64 =
                sqlx::query_scalar("SELECT coalesce(max(tx_number), 0) FROM events")
                    .fetch_one(&mut *tx)
                    .await?;
            let mut source_tx = None;
            for e in events {
                if source_tx != Some(e.tx_id) {
                    source_tx = Some(e.tx_id);
                    number += 1;
                }
                sqlx::query(
                    "INSERT INTO events (tx_number, stream_id, stream_version, event_id, \
                       command_id, event_type, schema_version, payload, metadata, occurred_at, \
                       recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(number)
                .bind(&e.stream_id)
                .bind(e.stream_version as i64)
                .bind(e.event_id)
                .bind(e.command_id)
                .bind(&e.event_type)
                .bind(e.schema_version)
                .bind(&e.payload)
                .bind(sqlx::types::Json(&e.metadata))
                .bind(e.occurred_at)
                .bind(e.recorded_at)
                .execute(&mut *tx)
                .await?;
            }
            Ok(())
        })?;
        self.wake_followers().await
    }

    async fn import_kept(&self, kept: &Kept) -> Result<(), StoreError> {
        write_transaction!(self, |tx| {
            for (stream, kind) in &kept.streams {
                sqlx::query(
                    "INSERT INTO streams (stream_id, stream_type, created_at) VALUES (?, ?, ?)",
                )
                .bind(stream)
                .bind(kind)
                .bind(Utc::now())
                .execute(&mut *tx)
                .await?;
            }
            for key in &kept.person_keys {
                sqlx::query(
                    "INSERT INTO person_keys (person_id, wrapped_key, created_at, erased_at, \
                       organisation) VALUES (?, ?, ?, ?, ?)",
                )
                .bind(key.person)
                .bind(&key.wrapped)
                .bind(key.created_at)
                .bind(key.erased_at)
                .bind(key.organisation)
                .execute(&mut *tx)
                .await?;
                if let (Some(_), Some(organisation)) = (&key.wrapped, key.organisation) {
                    for term in &key.terms {
                        sqlx::query(
                            "INSERT OR IGNORE INTO person_terms (organisation, term, person_id) \
                             VALUES (?, ?, ?)",
                        )
                        .bind(organisation)
                        .bind(term)
                        .bind(key.person)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
            }
            for entry in &kept.access_log {
                sqlx::query(
                    "INSERT INTO access_log (at, party_id, person_id, fields, operation) \
                     VALUES (?, ?, ?, ?, ?)",
                )
                .bind(entry.at)
                .bind(entry.party)
                .bind(entry.person)
                .bind(sqlx::types::Json(&entry.fields))
                .bind(&entry.operation)
                .execute(&mut *tx)
                .await?;
            }
            for key in &kept.idempotency_keys {
                sqlx::query(
                    "INSERT INTO idempotency_keys (party_id, key_hash, operation, target, \
                       fingerprint, command_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(key.party)
                .bind(&key.key_hash)
                .bind(&key.operation)
                .bind(&key.target)
                .bind(&key.fingerprint)
                .bind(key.command_id)
                .bind(key.created_at)
                .execute(&mut *tx)
                .await?;
            }
            for (name, secret) in &kept.secrets {
                sqlx::query(
                    "INSERT INTO server_secrets (name, secret) VALUES (?, ?) \
                     ON CONFLICT (name) DO UPDATE SET secret = excluded.secret",
                )
                .bind(name)
                .bind(secret)
                .execute(&mut *tx)
                .await?;
            }
            Ok(())
        })
    }
}
