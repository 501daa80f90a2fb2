//! The timer queue the scheduler works from: due timers are claimed with a lease, so that any
//! number of workers (in any number of replicas) share them and each timer is worked on by one
//! worker at a time; a worker that dies holding claims loses them when the lease runs out.
//!
//! A claim lives only while its worker works on it: the worker renews the lease while it sends
//! ([`TimerQueue::renew_claims`], a heartbeat and the fencing check before each send), and a timer
//! put off for later (quiet hours, a retry after a failed delivery) is postponed *unclaimed*
//! ([`TimerQueue::postpone`]), due again for any worker at its new time. Every check of "is this
//! still mine" is `claimed_by = worker` on the row: claiming sets it, so a worker that lost a
//! claim to another finds out at its next renewal and neither sends nor postpones.
//!
//! Timers themselves are a projection (see [`crate::projection`]): they appear and disappear with
//! the plan events. Delivering a reminder ends with an event (`ReminderSent`) whose projection
//! deletes the timer in the same transaction, so a delivered timer is never claimed again.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{PgStore, StoreError};

/// A timer a worker has claimed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
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
    /// Another worker held it and neither sent nor gave it back before its lease ended (it
    /// died or stalled): this claim took it over.
    pub taken_over: bool,
}

/// Timers due and not yet sent, as monitoring sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct DueTimers {
    /// Due at `now`, claimed or not.
    pub count: i64,
    /// When the earliest of them fell due.
    pub oldest: Option<DateTime<Utc>>,
}

/// A party's digest a worker has claimed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
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

    /// Extends to `lease_until` the leases of those of `ids` that `worker` still holds, and
    /// returns them: an id missing from the answer was claimed by another worker (its lease
    /// ended) or finished, and must not be sent.
    async fn renew_claims(
        &self,
        worker: Uuid,
        kind: ClaimKind,
        ids: &[Uuid],
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, StoreError>;

    /// Until when `worker` holds its claim on `id`, or `None` when it no longer holds it (a
    /// read: the fencing check before a send, which renews only when the lease runs short).
    async fn held_until(
        &self,
        worker: Uuid,
        kind: ClaimKind,
        id: Uuid,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Gives up `worker`'s claim and makes the timer or digest due again at `until` for any
    /// worker (quiet hours; with `failed`, a retry after a failed delivery, counted in
    /// `attempts`); false when the worker no longer held it (nothing changed).
    async fn postpone(
        &self,
        worker: Uuid,
        kind: ClaimKind,
        id: Uuid,
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

    /// Gives back every claim of `worker`, timers and digests (on shutdown: those it has not
    /// sent), so others may take them at once.
    async fn release_claims(&self, worker: Uuid) -> Result<u64, StoreError>;

    /// When the next timer or digest becomes due (or its lease ends), among the earliest ones:
    /// a hint for how long a worker may sleep. Workers still wake up on a bounded interval.
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// How many timers are due at `now` and not yet sent, and since when the oldest is.
    async fn due_timers(&self, now: DateTime<Utc>) -> Result<DueTimers, StoreError>;
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

/// The two kinds of claimable work: they share the claim columns, not their rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClaimKind {
    /// A reminder timer (`timers`, by timer id).
    Timer,
    /// A party's digest (`digests`, by party id).
    Digest,
}

impl ClaimKind {
    fn table(self) -> &'static str {
        match self {
            Self::Timer => "timers",
            Self::Digest => "digests",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Self::Timer => "timer_id",
            Self::Digest => "party_id",
        }
    }
}
