//! The reminder worker: claims due timers, writes each reminder for its recipient, sends it, and
//! records `ReminderSent` (or `StepEscalated`) on the plan, whose projection removes the timer.
//!
//! Any number of workers share the timer table (claims with leases, see the store's timer
//! queue). Before sending, the worker checks the timer against the plan as it is now: a step
//! completed, reassigned or rescheduled, a plan closed or suspended, or a partner's data-sharing
//! consent withdrawn since the timer was armed means the reminder is no longer wanted, and it is
//! not sent. Quiet hours in the recipient's time zone defer it; a failed delivery is retried
//! later with exponential backoff and jitter.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use homeward_store::reads::ReadModels;
use homeward_store::timer_queue::{ClaimedTimer, TimerQueue};
use homeward_store::{EventStore, StoreError};
use homeward_workflows::plan::{Plan, PlanCommand, PlanError};
use homeward_workflows::timers::{planned_timers, Recipient as TimerRecipient};
use homeward_workflows::{PartyId, PlanId};
use thiserror::Error;
use uuid::Uuid;

use crate::mail::{MailError, Mailer};
use crate::reminders::{render, Recipient, Reminder};
use crate::{Clock, CommandError, CommandHandler, CommandMeta};

/// The actor of the events the scheduler records.
pub const SCHEDULER: PartyId = PartyId(Uuid::from_u128(0x5c4e_d01e_0000_4000_8000_0000_0000_0001));

/// Deliveries tried before a reminder is given up (with the backoff, about four hours).
pub const MAX_ATTEMPTS: i32 = 8;

/// Namespace of the command ids of recorded reminders: one per timer, so that recording the
/// same delivery twice (a worker that crashed after sending) appends nothing new.
const RECORD_NAMESPACE: Uuid = Uuid::from_u128(0x1f0e_7b1c_5d2a_4c3b_9e8f_7a6b_5c4d_3e2f);

/// When reminders are not sent, in the recipient's time zone: from `start` to `end` (across
/// midnight when `start` > `end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl Default for QuietHours {
    fn default() -> Self {
        Self {
            start: NaiveTime::from_hms_opt(20, 0, 0).expect("a valid time"),
            end: NaiveTime::from_hms_opt(8, 0, 0).expect("a valid time"),
        }
    }
}

impl QuietHours {
    /// The instant the quiet hours around `now` end in `time_zone`, or `None` if `now` is not
    /// in them.
    pub fn end_after(&self, now: DateTime<Utc>, time_zone: &str) -> Option<DateTime<Utc>> {
        let tz: Tz = time_zone.parse().unwrap_or(chrono_tz::UTC);
        let local = now.with_timezone(&tz);
        let time = local.time();
        let quiet = if self.start <= self.end {
            time >= self.start && time < self.end
        } else {
            time >= self.start || time < self.end
        };
        if !quiet {
            return None;
        }
        let mut day = local.date_naive();
        if time >= self.start && self.start > self.end {
            day = day.succ_opt()?;
        }
        // The first valid local instant at or after `end` that day (a DST gap skips ahead).
        (0..=120).find_map(|minutes| {
            let candidate = day.and_time(self.end) + Duration::minutes(minutes);
            tz.from_local_datetime(&candidate)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        })
    }
}

#[derive(Debug, Error)]
pub enum SchedulerError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    pub claimed: usize,
    pub sent: usize,
    /// No longer wanted by the plan: not sent.
    pub dropped: usize,
    /// Quiet hours in the recipient's zone: kept for later.
    pub deferred: usize,
    /// Delivery failed: retried later.
    pub failed: usize,
    /// Delivery failed for the last time (or was refused): recorded as `ReminderFailed`.
    pub gave_up: usize,
}

#[derive(Clone)]
pub struct Worker {
    pub id: Uuid,
    queue: Arc<dyn TimerQueue>,
    handler: CommandHandler<dyn EventStore>,
    reads: Arc<dyn ReadModels>,
    mailer: Arc<dyn Mailer>,
    clock: Arc<dyn Clock>,
    lease: Duration,
    batch: i64,
    quiet: QuietHours,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Worker {
    pub fn new(
        queue: Arc<dyn TimerQueue>,
        handler: CommandHandler<dyn EventStore>,
        reads: Arc<dyn ReadModels>,
        mailer: Arc<dyn Mailer>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            id: Uuid::new_v4(),
            queue,
            handler,
            reads,
            mailer,
            clock,
            lease: Duration::minutes(5),
            batch: 50,
            quiet: QuietHours::default(),
        }
    }

    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    pub fn with_quiet_hours(mut self, quiet: QuietHours) -> Self {
        self.quiet = quiet;
        self
    }

    /// Claims the timers due now and works on each; returns what it did.
    pub async fn run_once(&self) -> Result<Pass, SchedulerError> {
        let now = self.clock.now();
        let claimed = self
            .queue
            .claim_due(self.id, now, now + self.lease, self.batch)
            .await?;
        let mut pass = Pass {
            claimed: claimed.len(),
            ..Pass::default()
        };
        for timer in claimed {
            match self.deliver(&timer, now).await? {
                Outcome::Sent => pass.sent += 1,
                Outcome::Dropped => pass.dropped += 1,
                Outcome::Deferred => pass.deferred += 1,
                Outcome::Failed => pass.failed += 1,
                Outcome::GaveUp => pass.gave_up += 1,
            }
        }
        Ok(pass)
    }

    /// Runs passes until nothing is due now; returns the total.
    pub async fn drain(&self) -> Result<Pass, SchedulerError> {
        let mut total = Pass::default();
        loop {
            let pass = self.run_once().await?;
            if pass.claimed == 0 {
                return Ok(total);
            }
            total.claimed += pass.claimed;
            total.sent += pass.sent;
            total.dropped += pass.dropped;
            total.deferred += pass.deferred;
            total.failed += pass.failed;
            total.gave_up += pass.gave_up;
        }
    }

    /// When the worker has something to do next (a hint for how long to sleep).
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, SchedulerError> {
        Ok(self.queue.next_due().await?)
    }

    /// Gives back this worker's claims (on shutdown).
    pub async fn release(&self) -> Result<u64, SchedulerError> {
        Ok(self.queue.release_claims(self.id).await?)
    }

    async fn deliver(
        &self,
        timer: &ClaimedTimer,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let plan_id = PlanId(timer.plan_id);
        let plan = self
            .handler
            .load_latest::<Plan>(&plan_id.stream_id())
            .await?
            .state;
        // The plan as it is now must still want this reminder.
        let wanted = plan.as_ref().and_then(|p| {
            planned_timers(p)
                .into_iter()
                .find(|t| t.id == timer.timer_id)
                .map(|t| (p, t))
        });
        let Some((plan, spec)) = wanted else {
            // The command that made it unwanted removed its row too; nothing to keep.
            tracing::debug!(timer = %timer.timer_id, "timer no longer wanted; not sent");
            self.queue
                .extend_claim(self.id, timer.timer_id, now + Duration::days(1), false)
                .await?;
            return Ok(Outcome::Dropped);
        };
        let Some(step) = plan.step(&spec.step) else {
            return Ok(Outcome::Dropped);
        };
        let recipient_party = match spec.recipient {
            TimerRecipient::Assignee(p) => Some(p),
            TimerRecipient::SupervisorOf(case_worker) => self
                .reads
                .parties_by_id(&[case_worker.0])
                .await?
                .into_iter()
                .next()
                .and_then(|cw| cw.supervisor.map(PartyId)),
        };
        let party = match recipient_party {
            Some(p) => self.reads.parties_by_id(&[p.0]).await?.into_iter().next(),
            None => None,
        };
        let Some(party) = party else {
            tracing::warn!(timer = %timer.timer_id, "reminder has no recipient (no supervisor?); retried tomorrow");
            self.queue
                .extend_claim(self.id, timer.timer_id, now + Duration::days(1), false)
                .await?;
            return Ok(Outcome::Deferred);
        };
        if let Some(until) = self.quiet.end_after(now, &party.time_zone) {
            self.queue
                .extend_claim(self.id, timer.timer_id, until, false)
                .await?;
            return Ok(Outcome::Deferred);
        }
        let reminder = Reminder {
            timer_id: timer.timer_id,
            kind: spec.kind,
            plan_id: plan.id.0,
            step_title: step.title.clone(),
            step_kind: step.kind,
            due_at: step.due_at.unwrap_or(spec.fire_at),
            now,
        };
        let to = Recipient {
            name: party.display_name.clone(),
            address: party.email.clone(),
            language: party.language.clone(),
            time_zone: party.time_zone.clone(),
        };
        match self.mailer.send(&render(&reminder, &to)).await {
            Ok(()) => {}
            Err(e) => {
                let attempts = timer.attempts + 1;
                // A refusal will not change on retry; a broken configuration might be fixed.
                let give_up = matches!(e, MailError::Permanent(_)) || attempts >= MAX_ATTEMPTS;
                if give_up {
                    tracing::error!(timer = %timer.timer_id, attempts, error = %e, "reminder given up");
                    let reason = format!("not delivered after {attempts} attempt(s): {e}");
                    let command = PlanCommand::RecordReminderFailed {
                        step: spec.step.clone(),
                        kind: spec.kind,
                        fire_at: spec.fire_at,
                        recipient: PartyId(party.party_id),
                        reason: reason.chars().take(900).collect(),
                    };
                    self.record(plan_id, command, timer.timer_id).await?;
                    return Ok(Outcome::GaveUp);
                }
                let retry = now + backoff(timer.attempts, timer.timer_id);
                tracing::warn!(timer = %timer.timer_id, attempts, error = %e, "reminder not sent; retrying later");
                self.queue
                    .extend_claim(self.id, timer.timer_id, retry, true)
                    .await?;
                return Ok(Outcome::Failed);
            }
        }
        let command = PlanCommand::RecordReminderSent {
            step: spec.step.clone(),
            kind: spec.kind,
            fire_at: spec.fire_at,
            recipient: PartyId(party.party_id),
        };
        self.record(plan_id, command, timer.timer_id).await?;
        Ok(Outcome::Sent)
    }

    /// Records what became of a timer's reminder, once: the command id is derived from the
    /// timer, so a worker that crashed after sending and a second worker record it only once.
    async fn record(
        &self,
        plan: PlanId,
        command: PlanCommand,
        timer_id: Uuid,
    ) -> Result<(), StoreError> {
        let meta = CommandMeta::new(SCHEDULER)
            .with_command_id(Uuid::new_v5(&RECORD_NAMESPACE, timer_id.as_bytes()));
        match self
            .handler
            .handle::<Plan>(&plan.stream_id(), &command, meta)
            .await
        {
            Ok(_) | Err(CommandError::Rejected(PlanError::ReminderAlreadyRecorded)) => Ok(()),
            Err(CommandError::Store(e)) => Err(e),
            Err(other) => {
                // The plan refused the record (it changed meanwhile, e.g. closed): the timer is
                // gone with that change; say so rather than resend blindly.
                tracing::warn!(%plan, error = %other, "reminder outcome not recorded");
                Ok(())
            }
        }
    }
}

enum Outcome {
    Sent,
    Dropped,
    Deferred,
    Failed,
    GaveUp,
}

/// Exponential backoff from one minute, doubling per failure up to six hours, with up to a
/// quarter of jitter (derived from the timer, so workers spread out without a random source).
pub fn backoff(attempts: i32, timer_id: Uuid) -> Duration {
    let base = 60_i64 << attempts.clamp(0, 9);
    let base = base.min(6 * 3600);
    let jitter = (timer_id.as_u128() as i64 & 0x7fff_ffff) % (base / 4 + 1);
    Duration::seconds(base + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_end_at_eight_local_time() {
        let quiet = QuietHours::default();
        // 21:30 in Paris (19:30 UTC, summer): quiet until 08:00 Paris the next day (06:00 UTC).
        let evening = Utc.with_ymd_and_hms(2026, 6, 1, 19, 30, 0).unwrap();
        assert_eq!(
            quiet.end_after(evening, "Europe/Paris"),
            Some(Utc.with_ymd_and_hms(2026, 6, 2, 6, 0, 0).unwrap())
        );
        // 06:00 in Lagos (05:00 UTC): quiet until 08:00 Lagos the same day.
        let dawn = Utc.with_ymd_and_hms(2026, 6, 1, 5, 0, 0).unwrap();
        assert_eq!(
            quiet.end_after(dawn, "Africa/Lagos"),
            Some(Utc.with_ymd_and_hms(2026, 6, 1, 7, 0, 0).unwrap())
        );
        // Noon anywhere: not quiet.
        let noon = Utc.with_ymd_and_hms(2026, 6, 1, 11, 0, 0).unwrap();
        assert_eq!(quiet.end_after(noon, "Europe/Paris"), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let id = Uuid::from_u128(12345);
        let first = backoff(0, id).num_seconds();
        assert!((60..=75).contains(&first), "{first}");
        let third = backoff(2, id).num_seconds();
        assert!((240..=300).contains(&third), "{third}");
        let capped = backoff(30, id).num_seconds();
        assert!((21_600..=27_000).contains(&capped), "{capped}");
    }
}
