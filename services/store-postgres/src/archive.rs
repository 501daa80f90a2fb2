//! Export and import on PostgreSQL (see `homeward_store::archive`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use homeward_store::access_log::AccessLog as _;
use homeward_store::archive::{Archive, Kept, KeptPersonKey};
use homeward_store::idempotency::KeyRecord;
use homeward_store::{Cursor, EventStore as _, RecordedEvent, StoreError};
use uuid::Uuid;

use crate::batch::hex;
use crate::PgStore;

/// A `person_keys` row as exported: terms in hex, as stored.
type KeyRow = (
    Uuid,
    Option<Vec<u8>>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<Uuid>,
    Option<Vec<String>>,
);

#[async_trait]
impl Archive for PgStore {
    async fn export_events(
        &self,
        after: Cursor,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read_all(after, limit).await
    }

    async fn export_kept(&self) -> Result<Kept, StoreError> {
        let streams: Vec<(String, String)> =
            sqlx::query_as("SELECT stream_id, stream_type FROM streams ORDER BY stream_id")
                .fetch_all(self.pool())
                .await?;
        let keys: Vec<KeyRow> = sqlx::query_as(
            "SELECT person_id, wrapped_key, created_at, erased_at, organisation, search_terms \
             FROM person_keys ORDER BY person_id",
        )
        .fetch_all(self.pool())
        .await?;
        let person_keys = keys
            .into_iter()
            .map(
                |(person, wrapped, created_at, erased_at, organisation, terms)| {
                    let terms = terms
                        .unwrap_or_default()
                        .iter()
                        .map(|t| unhex(t))
                        .collect::<Result<_, _>>()?;
                    Ok(KeptPersonKey {
                        person,
                        wrapped,
                        created_at,
                        erased_at,
                        organisation,
                        terms,
                    })
                },
            )
            .collect::<Result<_, StoreError>>()?;
        let access: Vec<crate::access_log::AccessRow> = sqlx::query_as(
            "SELECT at, party_id, person_id, fields, operation FROM access_log ORDER BY entry_id",
        )
        .fetch_all(self.pool())
        .await?;
        let idempotency_keys: Vec<KeyRecord> = sqlx::query_as(
            "SELECT party_id, key_hash, operation, target, fingerprint, command_id, created_at \
             FROM idempotency_keys ORDER BY created_at, party_id, key_hash",
        )
        .fetch_all(self.pool())
        .await?;
        let secrets: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT name, secret FROM server_secrets ORDER BY name")
                .fetch_all(self.pool())
                .await?;
        Ok(Kept {
            streams,
            person_keys,
            access_log: access.into_iter().map(crate::access_log::entry).collect(),
            idempotency_keys,
            secrets,
        })
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT NOT EXISTS (SELECT 1 FROM events) AND NOT EXISTS (SELECT 1 FROM person_keys) \
               AND NOT EXISTS (SELECT 1 FROM api_tokens)",
        )
        .fetch_one(self.pool())
        .await?)
    }

    async fn import_events(&self, events: &[RecordedEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let streams: Vec<&str> = events.iter().map(|e| e.stream_id.as_str()).collect();
        let versions: Vec<i64> = events.iter().map(|e| e.stream_version as i64).collect();
        let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        let commands: Vec<Uuid> = events.iter().map(|e| e.command_id).collect();
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        let schemas: Vec<i16> = events.iter().map(|e| e.schema_version).collect();
        let payloads: Vec<&str> = events.iter().map(|e| e.payload.as_str()).collect();
        let metadata = events
            .iter()
            .map(|e| serde_json::to_string(&e.metadata))
            .collect::<Result<Vec<String>, _>>()
            .map_err(|e| StoreError::Unexpected(e.to_string()))?;
        let occurred: Vec<DateTime<Utc>> = events.iter().map(|e| e.occurred_at).collect();
        let recorded: Vec<DateTime<Utc>> = events.iter().map(|e| e.recorded_at).collect();
        // In the order given: positions are handed out as the rows are inserted.
        sqlx::query(
            "INSERT INTO events (stream_id, stream_version, event_id, command_id, event_type, \
               schema_version, payload, metadata, occurred_at, recorded_at) \
             SELECT s, v, id, c, t, sv, p::jsonb, m::jsonb, oa, ra \
               FROM UNNEST($1::text[], $2::bigint[], $3::uuid[], $4::uuid[], $5::text[], \
                           $6::smallint[], $7::text[], $8::text[], $9::timestamptz[], \
                           $10::timestamptz[]) WITH ORDINALITY \
                    AS e(s, v, id, c, t, sv, p, m, oa, ra, n) \
              ORDER BY n",
        )
        .bind(&streams)
        .bind(&versions)
        .bind(&ids)
        .bind(&commands)
        .bind(&types)
        .bind(&schemas)
        .bind(&payloads)
        .bind(&metadata)
        .bind(&occurred)
        .bind(&recorded)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn import_kept(&self, kept: &Kept) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for (stream, kind) in &kept.streams {
            sqlx::query("INSERT INTO streams (stream_id, stream_type) VALUES ($1, $2)")
                .bind(stream)
                .bind(kind)
                .execute(&mut *tx)
                .await?;
        }
        for key in &kept.person_keys {
            let terms: Option<Vec<String>> = (key.wrapped.is_some() && !key.terms.is_empty())
                .then(|| key.terms.iter().map(|t| hex(t)).collect());
            sqlx::query(
                "INSERT INTO person_keys (person_id, wrapped_key, created_at, erased_at, \
                   organisation, search_terms) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(key.person)
            .bind(&key.wrapped)
            .bind(key.created_at)
            .bind(key.erased_at)
            .bind(key.organisation)
            .bind(terms)
            .execute(&mut *tx)
            .await?;
        }
        for key in &kept.idempotency_keys {
            sqlx::query(
                "INSERT INTO idempotency_keys (party_id, key_hash, operation, target, \
                   fingerprint, command_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
                "INSERT INTO server_secrets (name, secret) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET secret = EXCLUDED.secret",
            )
            .bind(name)
            .bind(secret)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        // The audit keeps its order: entries after the keys, in one statement per thousand.
        for chunk in kept.access_log.chunks(1_000) {
            self.record_access(chunk).await?;
        }
        Ok(())
    }
}

fn unhex(text: &str) -> Result<Vec<u8>, StoreError> {
    let bad = || StoreError::Unexpected(format!("a blind-index term is not hex: {text}"));
    if !text.len().is_multiple_of(2) {
        return Err(bad());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2).ok_or_else(bad)?, 16).map_err(|_| bad()))
        .collect()
}
