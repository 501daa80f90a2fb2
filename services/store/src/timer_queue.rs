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

use crate::StoreError;

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

/// The two kinds of claimable work: they share the claim columns, not their rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClaimKind {
    /// A reminder timer (`timers`, by timer id).
    Timer,
    /// A party's digest (`digests`, by party id).
    Digest,
}

impl ClaimKind {
    /// The table of this kind of claim (the same in every backend's schema).
    pub fn table(self) -> &'static str {
        match self {
            Self::Timer => "timers",
            Self::Digest => "digests",
        }
    }

    /// The key column of that table.
    pub fn key(self) -> &'static str {
        match self {
            Self::Timer => "timer_id",
            Self::Digest => "party_id",
        }
    }
}
