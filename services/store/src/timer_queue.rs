//! The timer queue the scheduler works from: due timers are claimed with a lease, so that any
//! number of workers (in any number of replicas) share them and each timer is worked on by one
//! worker at a time; a worker that dies holding claims loses them when the lease runs out.
//!
//! Timers themselves are a projection (see [`crate::projection`]): they appear and disappear with
//! the plan events. Delivering a reminder ends with an event (`ReminderSent`) whose projection
//! deletes the timer in the same transaction, so a delivered timer is never claimed again.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use crate::{PgStore, StoreError};

/// A timer a worker has claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedTimer {
    pub timer_id: Uuid,
    pub plan_id: Uuid,
    pub step_key: String,
    pub kind: String,
    pub fire_at: DateTime<Utc>,
    pub recipient_party: Uuid,
    pub recipient_role: String,
    pub lease_until: DateTime<Utc>,
    /// Failed deliveries so far.
    pub attempts: i32,
}

/// A party's digest a worker has claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDigest {
    pub party_id: Uuid,
    /// The occurrence of the party's schedule that is due.
    pub due_at: DateTime<Utc>,
    /// Failed deliveries so far.
    pub attempts: i32,
}

#[async_trait]
pub trait TimerQueue: Send + Sync + 'static {
    /// Claims up to `limit` timers due at `now` (not claimed, or whose lease ended), earliest
    /// first, for `worker` until `lease_until`. Concurrent claimers never get the same timer.
    async fn claim_due(
        &self,
        worker: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ClaimedTimer>, StoreError>;

    /// Keeps a claimed timer for `worker` until `until` (quiet hours; with `failed`, a retry
    /// after a failed delivery, counted in `attempts`); false when the worker no longer holds it.
    async fn extend_claim(
        &self,
        worker: Uuid,
        timer_id: Uuid,
        until: DateTime<Utc>,
        failed: bool,
    ) -> Result<bool, StoreError>;

    /// Claims up to `limit` parties' digests due at `now`, like [`TimerQueue::claim_due`].
    async fn claim_due_digests(
        &self,
        worker: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ClaimedDigest>, StoreError>;

    /// Keeps a claimed digest until `until`, like [`TimerQueue::extend_claim`].
    async fn extend_digest_claim(
        &self,
        worker: Uuid,
        party_id: Uuid,
        until: DateTime<Utc>,
        failed: bool,
    ) -> Result<bool, StoreError>;

    /// Gives back every claim of `worker`, timers and digests (on shutdown), so others may take
    /// them at once.
    async fn release_claims(&self, worker: Uuid) -> Result<u64, StoreError>;

    /// When the next timer or digest becomes due (or its lease ends), among the earliest ones:
    /// a hint for how long a worker may sleep. Workers still wake up on a bounded interval.
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
}

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
        let rows = sqlx::query(
            "UPDATE timers t SET claimed_by = $1, lease_until = $3 \
             FROM (SELECT timer_id FROM timers \
                   WHERE fire_at <= $2 AND (lease_until IS NULL OR lease_until <= $2) \
                   ORDER BY fire_at LIMIT $4 FOR UPDATE SKIP LOCKED) due \
             WHERE t.timer_id = due.timer_id \
             RETURNING t.timer_id, t.plan_id, t.step_key, t.kind, t.fire_at, \
                       t.recipient_party, t.recipient_role, t.lease_until, \
                       coalesce(t.attempts, 0) AS attempts",
        )
        .bind(worker)
        .bind(now)
        .bind(lease_until)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut claimed = rows
            .iter()
            .map(|r| {
                Ok(ClaimedTimer {
                    timer_id: r.try_get("timer_id")?,
                    plan_id: r.try_get("plan_id")?,
                    step_key: r.try_get("step_key")?,
                    kind: r.try_get("kind")?,
                    fire_at: r.try_get("fire_at")?,
                    recipient_party: r.try_get("recipient_party")?,
                    recipient_role: r.try_get("recipient_role")?,
                    lease_until: r.try_get("lease_until")?,
                    attempts: r.try_get("attempts")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        claimed.sort_by_key(|t| (t.fire_at, t.timer_id));
        Ok(claimed)
    }

    async fn extend_claim(
        &self,
        worker: Uuid,
        timer_id: Uuid,
        until: DateTime<Utc>,
        failed: bool,
    ) -> Result<bool, StoreError> {
        extend(self, Claimable::Timers, worker, timer_id, until, failed).await
    }

    async fn claim_due_digests(
        &self,
        worker: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ClaimedDigest>, StoreError> {
        let rows = sqlx::query(
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
        let mut claimed = rows
            .iter()
            .map(|r| {
                Ok(ClaimedDigest {
                    party_id: r.try_get("party_id")?,
                    due_at: r.try_get("due_at")?,
                    attempts: r.try_get("attempts")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        claimed.sort_by_key(|d| (d.due_at, d.party_id));
        Ok(claimed)
    }

    async fn extend_digest_claim(
        &self,
        worker: Uuid,
        party_id: Uuid,
        until: DateTime<Utc>,
        failed: bool,
    ) -> Result<bool, StoreError> {
        extend(self, Claimable::Digests, worker, party_id, until, failed).await
    }

    async fn release_claims(&self, worker: Uuid) -> Result<u64, StoreError> {
        let mut released = 0;
        for queue in [Claimable::Timers, Claimable::Digests] {
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

/// The two kinds of claimable work: they share the claim columns, not their rows.
#[derive(Clone, Copy)]
enum Claimable {
    Timers,
    Digests,
}

impl Claimable {
    fn table(self) -> &'static str {
        match self {
            Self::Timers => "timers",
            Self::Digests => "digests",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Self::Timers => "timer_id",
            Self::Digests => "party_id",
        }
    }
}

/// Keeps a claim until `until`, counting a failed delivery; false when `worker` lost it.
async fn extend(
    store: &PgStore,
    queue: Claimable,
    worker: Uuid,
    id: Uuid,
    until: DateTime<Utc>,
    failed: bool,
) -> Result<bool, StoreError> {
    let done = sqlx::query(&format!(
        "UPDATE {} SET lease_until = $3, attempts = coalesce(attempts, 0) + $4 \
         WHERE {} = $2 AND claimed_by = $1",
        queue.table(),
        queue.key()
    ))
    .bind(worker)
    .bind(id)
    .bind(until)
    .bind(i32::from(failed))
    .execute(store.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}
