//! The timer queue on SQLite: due timers claimed under the writer, with a lease.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use homeward_store::timer_queue::*;
use homeward_store::StoreError;
use uuid::Uuid;

use crate::{write_transaction, SqliteStore};

#[async_trait]
impl TimerQueue for SqliteStore {
    async fn claim_due(
        &self,
        worker: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ClaimedTimer>, StoreError> {
        write_transaction!(self, |tx| {
            // `timers_due` (fire_at) from the earliest timer, stopping at `now`.
            let due: Vec<(Uuid, Option<Uuid>)> = sqlx::query_as(
                "SELECT timer_id, claimed_by FROM timers \
                 WHERE fire_at <= ? AND (lease_until IS NULL OR lease_until <= ?) \
                 ORDER BY fire_at LIMIT ?",
            )
            .bind(now)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
            let mut claimed = Vec::with_capacity(due.len());
            for (timer, previous_holder) in due {
                let mut row: ClaimedTimer = sqlx::query_as(
                    "UPDATE timers SET claimed_by = ?, lease_until = ? WHERE timer_id = ? \
                     RETURNING timer_id, plan_id, step_key, kind, fire_at, recipient_party, \
                       recipient_role, lease_until, coalesce(attempts, 0) AS attempts, \
                       0 AS taken_over",
                )
                .bind(worker)
                .bind(lease_until)
                .bind(timer)
                .fetch_one(&mut *tx)
                .await?;
                row.taken_over = previous_holder.is_some_and(|p| p != worker);
                claimed.push(row);
            }
            claimed.sort_by_key(|t| (t.fire_at, t.timer_id));
            Ok(claimed)
        })
    }

    async fn renew_claims(
        &self,
        worker: Uuid,
        kind: ClaimKind,
        ids: &[Uuid],
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = sqlx::QueryBuilder::<sqlx::Sqlite>::new(format!(
            "UPDATE {} SET lease_until = ",
            kind.table()
        ));
        query.push_bind(lease_until);
        query.push(" WHERE claimed_by = ");
        query.push_bind(worker);
        query.push(format!(" AND {} IN (", kind.key()));
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        query.push(format!(") RETURNING {}", kind.key()));
        let mut writer = self.writer().await;
        Ok(query.build_query_scalar().fetch_all(&mut *writer).await?)
    }

    async fn held_until(
        &self,
        worker: Uuid,
        kind: ClaimKind,
        id: Uuid,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(sqlx::query_scalar(&format!(
            "SELECT lease_until FROM {} WHERE {} = ? AND claimed_by = ?",
            kind.table(),
            kind.key()
        ))
        .bind(id)
        .bind(worker)
        .fetch_optional(self.read_pool())
        .await?
        .flatten())
    }

    async fn postpone(
        &self,
        worker: Uuid,
        kind: ClaimKind,
        id: Uuid,
        until: DateTime<Utc>,
        failed: bool,
    ) -> Result<bool, StoreError> {
        let mut writer = self.writer().await;
        let done = sqlx::query(&format!(
            "UPDATE {} SET claimed_by = NULL, lease_until = ?, \
                 attempts = coalesce(attempts, 0) + ? \
             WHERE {} = ? AND claimed_by = ?",
            kind.table(),
            kind.key()
        ))
        .bind(until)
        .bind(i32::from(failed))
        .bind(id)
        .bind(worker)
        .execute(&mut *writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn claim_due_digests(
        &self,
        worker: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ClaimedDigest>, StoreError> {
        let mut writer = self.writer().await;
        let mut claimed: Vec<ClaimedDigest> = sqlx::query_as(
            "UPDATE digests SET claimed_by = ?, lease_until = ? \
             WHERE party_id IN (SELECT party_id FROM digests \
                   WHERE due_at <= ? AND (lease_until IS NULL OR lease_until <= ?) \
                   ORDER BY due_at LIMIT ?) \
             RETURNING party_id, due_at, coalesce(attempts, 0) AS attempts",
        )
        .bind(worker)
        .bind(lease_until)
        .bind(now)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *writer)
        .await?;
        claimed.sort_by_key(|d| (d.due_at, d.party_id));
        Ok(claimed)
    }

    async fn release_claims(&self, worker: Uuid) -> Result<u64, StoreError> {
        write_transaction!(self, |tx| {
            let mut released = 0;
            for queue in [ClaimKind::Timer, ClaimKind::Digest] {
                let done = sqlx::query(&format!(
                    "UPDATE {} SET claimed_by = NULL, lease_until = NULL WHERE claimed_by = ?",
                    queue.table()
                ))
                .bind(worker)
                .execute(&mut *tx)
                .await?;
                released += done.rows_affected();
            }
            Ok(released)
        })
    }

    async fn due_timers(&self, now: DateTime<Utc>) -> Result<DueTimers, StoreError> {
        let (count, oldest): (i64, Option<DateTime<Utc>>) =
            sqlx::query_as("SELECT count(*), min(fire_at) FROM timers WHERE fire_at <= ?")
                .bind(now)
                .fetch_one(self.read_pool())
                .await?;
        Ok(DueTimers { count, oldest })
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        // Times compare as their text: the later of due time and lease is max() of the two.
        Ok(sqlx::query_scalar(
            "SELECT min(t) FROM ( \
               SELECT max(fire_at, coalesce(lease_until, fire_at)) AS t FROM \
                 (SELECT fire_at, lease_until FROM timers ORDER BY fire_at LIMIT 100) \
               UNION ALL \
               SELECT max(due_at, coalesce(lease_until, due_at)) FROM \
                 (SELECT due_at, lease_until FROM digests ORDER BY due_at LIMIT 100) \
             )",
        )
        .fetch_one(self.read_pool())
        .await?)
    }
}
