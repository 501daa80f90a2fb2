//! The access audit on PostgreSQL (`access_log`, append-only by trigger), written on a
//! connection of its own: the audit's writer commits one batch at a time, and the pool would
//! add a round trip to each (its check of every connection given back).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use homeward_store::access_log::{AccessEntry, AccessLog};
use homeward_store::reads::Page;
use homeward_store::StoreError;
use uuid::Uuid;

use crate::batch::Slot;
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

impl PgStore {
    /// Runs `insert` on the audit's own connection; a failed connection is dropped, and the
    /// next batch opens another.
    async fn insert_on(
        slot: &mut Slot,
        insert: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<(), sqlx::Error> {
        let written = match slot.connection().await {
            Ok(connection) => insert.execute(connection).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if written.is_err() {
            slot.connection = None;
        }
        written
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
        let insert = || {
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
        };
        let mut slot = self.audit.lock().await;
        let mut written = Self::insert_on(&mut slot, insert()).await;
        // A connection the server ended (a restart, an idle timeout) fails the batch before it
        // runs: sent once more on a new connection. Should the connection break between the
        // commit and its answer, the entries are then kept twice, never lost.
        if matches!(&written, Err(e) if crate::lane::broken(e)) {
            written = Self::insert_on(&mut slot, insert()).await;
        }
        Ok(written?)
    }

    async fn access_log(&self, person: Uuid, page: Page) -> Result<Vec<AccessEntry>, StoreError> {
        let rows: Vec<AccessRow> = self
            .read(|pool| async move {
                sqlx::query_as(
                    "SELECT at, party_id, person_id, fields, operation FROM access_log \
             WHERE person_id = $1 ORDER BY at DESC, entry_id DESC OFFSET $2 LIMIT $3",
                )
                .bind(person)
                .bind(page.offset)
                .bind(page.limit)
                .fetch_all(pool)
                .await
            })
            .await?;
        Ok(rows.into_iter().map(entry).collect())
    }
}
