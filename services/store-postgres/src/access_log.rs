//! The access audit on PostgreSQL (`access_log`, append-only by trigger).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use homeward_store::access_log::{AccessEntry, AccessLog};
use homeward_store::reads::Page;
use homeward_store::StoreError;
use uuid::Uuid;

use crate::PgStore;

/// An `access_log` row as read: `at, party_id, person_id, fields, operation`.
pub(crate) type AccessRow = (DateTime<Utc>, Uuid, Uuid, Vec<String>, String);

/// The entry a row holds.
pub(crate) fn entry((at, party, person, fields, operation): AccessRow) -> AccessEntry {
    AccessEntry {
        at,
        party,
        person,
        fields,
        operation,
    }
}

#[async_trait]
impl AccessLog for PgStore {
    async fn record_access(&self, entries: &[AccessEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let at: Vec<DateTime<Utc>> = entries.iter().map(|e| e.at).collect();
        let party: Vec<Uuid> = entries.iter().map(|e| e.party).collect();
        let person: Vec<Uuid> = entries.iter().map(|e| e.person).collect();
        // text[] per entry, sent as one text each (fields never hold a comma: they are paths).
        let fields: Vec<String> = entries.iter().map(|e| e.fields.join(",")).collect();
        let operation: Vec<&str> = entries.iter().map(|e| e.operation.as_str()).collect();
        sqlx::query(
            "INSERT INTO access_log (at, party_id, person_id, fields, operation) \
             SELECT at, party, person, string_to_array(fields, ','), operation \
             FROM UNNEST($1::timestamptz[], $2::uuid[], $3::uuid[], $4::text[], $5::text[]) \
                 AS e(at, party, person, fields, operation)",
        )
        .bind(&at)
        .bind(&party)
        .bind(&person)
        .bind(&fields)
        .bind(&operation)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn access_log(&self, person: Uuid, page: Page) -> Result<Vec<AccessEntry>, StoreError> {
        let rows: Vec<AccessRow> = sqlx::query_as(
            "SELECT at, party_id, person_id, fields, operation FROM access_log \
             WHERE person_id = $1 ORDER BY at DESC, entry_id DESC OFFSET $2 LIMIT $3",
        )
        .bind(person)
        .bind(page.offset)
        .bind(page.limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(entry).collect())
    }
}
