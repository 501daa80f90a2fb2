//! The timer queue on PostgreSQL: due timers claimed with `FOR UPDATE SKIP LOCKED` and a lease.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use homeward_store::timer_queue::*;
use homeward_store::StoreError;
use uuid::Uuid;

use crate::PgStore;

#[async_trait]
impl TimerQueue for PgStore {
    async fn claim_due(
        &self,
        worker: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ClaimedTimer>, StoreError> {
        // The inner scan walks `timers_due` (fire_at) from the earliest timer and stops at `now`:
        // future timers are never read, however many there are.
        let mut claimed: Vec<ClaimedTimer> = sqlx::query_as(
            "UPDATE timers t SET claimed_by = $1, lease_until = $3 \
             FROM (SELECT timer_id, claimed_by AS previous_holder FROM timers \
                   WHERE fire_at <= $2 AND (lease_until IS NULL OR lease_until <= $2) \
                   ORDER BY fire_at LIMIT $4 FOR UPDATE SKIP LOCKED) due \
             WHERE t.timer_id = due.timer_id \
             RETURNING t.timer_id, t.plan_id, t.step_key, t.kind, t.fire_at, \
                       t.recipient_party, t.recipient_role, t.lease_until, \
                       coalesce(t.attempts, 0) AS attempts, \
                       coalesce(due.previous_holder <> $1, false) AS taken_over",
        )
        .bind(worker)
        .bind(now)
        .bind(lease_until)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        claimed.sort_by_key(|t| (t.fire_at, t.timer_id));
        Ok(claimed)
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
        Ok(sqlx::query_scalar(&format!(
            "UPDATE {table} SET lease_until = $3 \
             WHERE {key} = ANY ($2) AND claimed_by = $1 RETURNING {key}",
            table = kind.table(),
            key = kind.key()
        ))
        .bind(worker)
        .bind(ids)
        .bind(lease_until)
        .fetch_all(self.pool())
        .await?)
    }

    async fn held_until(
        &self,
        worker: Uuid,
        kind: ClaimKind,
        id: Uuid,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(sqlx::query_scalar(&format!(
            "SELECT lease_until FROM {} WHERE {} = $2 AND claimed_by = $1",
            kind.table(),
            kind.key()
        ))
        .bind(worker)
        .bind(id)
        .fetch_optional(self.pool())
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
        let done = sqlx::query(&format!(
            "UPDATE {} SET claimed_by = NULL, lease_until = $3, \
                 attempts = coalesce(attempts, 0) + $4 \
             WHERE {} = $2 AND claimed_by = $1",
            kind.table(),
            kind.key()
        ))
        .bind(worker)
        .bind(id)
        .bind(until)
        .bind(i32::from(failed))
        .execute(self.pool())
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
        let mut claimed: Vec<ClaimedDigest> = sqlx::query_as(
            "UPDATE digests d SET claimed_by = $1, lease_until = $3 \
             FROM (SELECT party_id FROM digests \
                   WHERE due_at <= $2 AND (lease_until IS NULL OR lease_until <= $2) \
                   ORDER BY due_at LIMIT $4 FOR UPDATE SKIP LOCKED) due \
             WHERE d.party_id = due.party_id \
             RETURNING d.party_id, d.due_at, coalesce(d.attempts, 0) AS attempts",
        )
        .bind(worker)
        .bind(now)
        .bind(lease_until)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        claimed.sort_by_key(|d| (d.due_at, d.party_id));
        Ok(claimed)
    }

    async fn release_claims(&self, worker: Uuid) -> Result<u64, StoreError> {
        let mut released = 0;
        for queue in [ClaimKind::Timer, ClaimKind::Digest] {
            let done = sqlx::query(&format!(
                "UPDATE {} SET claimed_by = NULL, lease_until = NULL WHERE claimed_by = $1",
                queue.table()
            ))
            .bind(worker)
            .execute(self.pool())
            .await?;
            released += done.rows_affected();
        }
        Ok(released)
    }

    async fn due_timers(&self, now: DateTime<Utc>) -> Result<DueTimers, StoreError> {
        Ok(sqlx::query_as(
            "SELECT count(*) AS count, min(fire_at) AS oldest FROM timers WHERE fire_at <= $1",
        )
        .bind(now)
        .fetch_one(self.pool())
        .await?)
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT min(t) FROM ( \
               SELECT greatest(fire_at, coalesce(lease_until, fire_at)) AS t FROM \
                 (SELECT fire_at, lease_until FROM timers ORDER BY fire_at LIMIT 100) timers \
               UNION ALL \
               SELECT greatest(due_at, coalesce(lease_until, due_at)) FROM \
                 (SELECT due_at, lease_until FROM digests ORDER BY due_at LIMIT 100) digests \
             ) earliest",
        )
        .fetch_one(self.pool())
        .await?)
    }
}
