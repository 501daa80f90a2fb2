//! The access audit on SQLite (`access_log`, append-only by trigger; `fields` a JSON array).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use homeward_store::access_log::{AccessEntry, AccessLog};
use homeward_store::reads::Page;
use homeward_store::StoreError;
use sqlx::{QueryBuilder, Sqlite};
use uuid::Uuid;

use crate::SqliteStore;

/// An `access_log` row as read: `at, party_id, person_id, fields, operation`.
pub(crate) type AccessRow = (DateTime<Utc>, Uuid, Uuid, String, String);

/// The entry a row holds (its fields decoded from JSON).
pub(crate) fn entry(
    (at, party, person, fields, operation): AccessRow,
) -> Result<AccessEntry, StoreError> {
    let fields = serde_json::from_str(&fields).map_err(|e| {
        StoreError::Unexpected(format!(
            "an access entry's fields are not a JSON array of strings: {e}"
        ))
    })?;
    Ok(AccessEntry {
        at,
        party,
        person,
        fields,
        operation,
    })
}

/// Entries per `INSERT`: five bound values each, well under SQLite's limit of 32766.
const ENTRIES_PER_INSERT: usize = 1000;

#[async_trait]
impl AccessLog for SqliteStore {
    async fn record_access(&self, entries: &[AccessEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let fields = entries
            .iter()
            .map(|e| serde_json::to_string(&e.fields))
            .collect::<Result<Vec<String>, _>>()
            .map_err(|e| StoreError::Unexpected(format!("fields read not written as JSON: {e}")))?;
        let mut writer = self.writer().await;
        let mut tx = sqlx::Connection::begin_with(&mut *writer, "BEGIN IMMEDIATE").await?;
        for (entries, fields) in entries
            .chunks(ENTRIES_PER_INSERT)
            .zip(fields.chunks(ENTRIES_PER_INSERT))
        {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO access_log (at, party_id, person_id, fields, operation) ",
            );
            q.push_values(entries.iter().zip(fields), |mut row, (e, fields)| {
                row.push_bind(crate::stored(e.at))
                    .push_bind(e.party)
                    .push_bind(e.person)
                    .push_bind(fields.as_str())
                    .push_bind(e.operation.as_str());
            });
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn access_log(&self, person: Uuid, page: Page) -> Result<Vec<AccessEntry>, StoreError> {
        let rows: Vec<AccessRow> = sqlx::query_as(
            "SELECT at, party_id, person_id, fields, operation FROM access_log \
             WHERE person_id = ? ORDER BY at DESC, entry_id DESC LIMIT ? OFFSET ?",
        )
        .bind(person)
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(self.read_pool())
        .await?;
        rows.into_iter().map(entry).collect()
    }
}
