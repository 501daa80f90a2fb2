//! The event log on SQLite, and what a server needs of its database besides.

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::Connection;
use sqlx::SqliteConnection;
use tokio::sync::watch;
use uuid::Uuid;

use homeward_store::{
    Append, Appended, Connections, Cursor, EventStore, ReadUntil, RebuildReport, RecordedEvent,
    StoreError, StreamsAndKeys, Subscription,
};

use crate::writer::Sql;
use crate::SqliteStore;

/// The migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// The columns of [`RecordedEvent`].
macro_rules! event_columns {
    () => {
        "global_position, tx_number, stream_id, stream_version, event_id, command_id, \
         event_type, schema_version, payload, metadata, occurred_at, recorded_at"
    };
}
pub(crate) use event_columns;

/// The number of the last transaction that appended events (0: none yet).
pub(crate) async fn last_transaction(db: &mut SqliteConnection) -> Result<u64, StoreError> {
    let exists: bool = sqlx::query_scalar(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'events'",
    )
    .fetch_one(&mut *db)
    .await?;
    if !exists {
        return Ok(0);
    }
    let last: i64 = sqlx::query_scalar("SELECT coalesce(max(tx_number), 0) FROM events")
        .fetch_one(&mut *db)
        .await?;
    Ok(last as u64)
}

/// The value kept under `name` in `server_secrets`: `value` if there was none (on the
/// writer's thread).
pub(crate) fn remember(db: &Connection, name: &str, value: &[u8]) -> rusqlite::Result<Vec<u8>> {
    db.prepare_cached(
        "INSERT INTO server_secrets (name, secret) VALUES (?, ?) ON CONFLICT DO NOTHING",
    )?
    .execute([name.sql(), value.sql()])?;
    db.prepare_cached("SELECT secret FROM server_secrets WHERE name = ?")?
        .query_row([name.sql()], |row| row.get(0))
}

impl SqliteStore {
    /// The value kept under `name` in `server_secrets`: `value` if there was none.
    async fn remember(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.inner
            .writer_thread
            .run(move |db| Ok(remember(db, &name, &value)?))
            .await
    }
}

/// The writer's commits as a follower's wake-up.
#[derive(Debug)]
struct Commits(watch::Receiver<u64>);

#[async_trait]
impl homeward_store::WakeUp for Commits {
    async fn wait(&mut self) -> Result<(), StoreError> {
        self.0
            .changed()
            .await
            .map_err(|_| StoreError::Unexpected("the store is closed".into()))
    }
}

#[async_trait]
impl homeward_store::Backend for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut writer = self.writer().await;
        match MIGRATOR.run_direct(&mut *writer).await {
            Ok(()) => Ok(()),
            // Checked before anything is applied: the file is left as it was.
            Err(sqlx::migrate::MigrateError::VersionMissing(version)) => {
                Err(StoreError::Unexpected(format!(
                    "this database was written by a newer version of Homeward (its schema has \
                     migration {version}, which this version does not know): run that version \
                     or a later one, or restore a backup made by this one"
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(self.read_pool()).await?;
        Ok(())
    }

    async fn head(&self) -> Result<Cursor, StoreError> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT tx_number, global_position FROM events ORDER BY global_position DESC LIMIT 1",
        )
        .fetch_optional(self.read_pool())
        .await?;
        Ok(row.map_or(Cursor::START, |(tx, position)| Cursor {
            tx_id: tx as u64,
            position,
        }))
    }

    async fn subscribe(&self, from: Cursor) -> Result<Subscription, StoreError> {
        let wake = Commits(self.inner.appended.subscribe());
        Ok(Subscription::new(
            Arc::new(self.clone()),
            Some(Box::new(wake)),
            from,
        ))
    }

    async fn rebuild_projections(&self) -> Result<RebuildReport, StoreError> {
        crate::rebuild::rebuild(self).await
    }

    async fn server_secret(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        let mut fresh = Vec::with_capacity(32);
        fresh.extend_from_slice(Uuid::new_v4().as_bytes());
        fresh.extend_from_slice(Uuid::new_v4().as_bytes());
        self.remember(name, &fresh).await
    }

    async fn master_key_check(&self, offered: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.remember("master_key_check", offered).await
    }

    async fn search_key_check(&self, offered: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.remember("search_key_check", offered).await
    }

    fn connections(&self) -> Connections {
        let pool = self.read_pool();
        let open = pool.size();
        let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX);
        // The two writing connections (sqlx's and the writer thread's) are always open.
        Connections {
            in_use: open.saturating_sub(idle) + 2,
            idle,
            max: pool.options().get_max_connections() + 2,
        }
    }

    async fn close(&self) {
        crate::close(self).await;
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(&self, append: Append) -> Result<Appended, StoreError> {
        self.inner.writer_thread.append(append).await
    }

    async fn command_result(&self, command_id: Uuid) -> Result<Option<Appended>, StoreError> {
        let mut reader = self.read_pool().acquire().await?;
        crate::append::command_result(&mut reader, command_id).await
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        until: ReadUntil,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = match until {
            ReadUntil::End => return self.read_stream_after(stream_id, 0).await,
            ReadUntil::Version(v) => {
                sqlx::query_as(concat!(
                    "SELECT ",
                    event_columns!(),
                    " FROM events WHERE stream_id = ? AND stream_version <= ? \
                     ORDER BY stream_version"
                ))
                .bind(stream_id)
                .bind(v as i64)
                .fetch_all(self.read_pool())
                .await?
            }
            ReadUntil::Time(t) => {
                sqlx::query_as(concat!(
                    "SELECT ",
                    event_columns!(),
                    " FROM events WHERE stream_id = ?1 AND stream_version < coalesce( \
                       (SELECT min(stream_version) FROM events \
                        WHERE stream_id = ?1 AND occurred_at > ?2), 9223372036854775807) \
                     ORDER BY stream_version"
                ))
                .bind(stream_id)
                .bind(t)
                .fetch_all(self.read_pool())
                .await?
            }
        };
        Ok(rows)
    }

    async fn read_stream_after(
        &self,
        stream_id: &str,
        after: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE stream_id = ? AND stream_version > ? ORDER BY stream_version"
        ))
        .bind(stream_id)
        .bind(after as i64)
        .fetch_all(self.read_pool())
        .await?)
    }

    async fn read_all(&self, after: Cursor, limit: i64) -> Result<Vec<RecordedEvent>, StoreError> {
        // One writer: positions are given in commit order, and a reader sees only what was
        // committed, so nothing can later appear behind the cursor.
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE (tx_number, global_position) > (?, ?) \
             ORDER BY tx_number, global_position LIMIT ?"
        ))
        .bind(after.tx_id as i64)
        .bind(after.position)
        .bind(limit)
        .fetch_all(self.read_pool())
        .await?)
    }

    async fn read_streams_after_with_keys(
        &self,
        streams: &[(String, u64)],
        persons: &[Uuid],
    ) -> Result<StreamsAndKeys, StoreError> {
        // In-process: two reads cost no more than one.
        Ok(StreamsAndKeys {
            events: self.read_streams_after(streams).await?,
            keys: homeward_store::person_keys::PersonKeys::person_keys(self, persons).await?,
        })
    }
}
