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

use chrono::{DateTime, Duration, Utc};
use homeward_store::reads::{Page, ReadModels, TaskFilter};
use homeward_store::timer_queue::{ClaimedDigest, ClaimedTimer, TimerQueue};
use homeward_store::{EventStore, StoreError};
use homeward_workflows::party::{Party, PartyCommand, PartyError};
use homeward_workflows::plan::{ConsentPurpose, Plan, PlanCommand, PlanError};
use homeward_workflows::timers::{planned_timers, Recipient as TimerRecipient};
use homeward_workflows::{PartyId, PlanId};
use thiserror::Error;
use uuid::Uuid;

use crate::authz::{task_scope, Viewer};
use crate::links::{actions_for, LinkSigner, PartnerLink, LINK_VALIDITY_DAYS};
use crate::mail::{MailError, Mailer};
use crate::reminders::{render, render_digest, DigestTask, Recipient, Reminder};
use crate::{Clock, CommandError, CommandHandler, CommandMeta};

/// The actor of the events the scheduler records.
pub const SCHEDULER: PartyId = PartyId(Uuid::from_u128(0x5c4e_d01e_0000_4000_8000_0000_0000_0001));

/// Deliveries tried before a reminder is given up (with the backoff, about four hours).
pub const MAX_ATTEMPTS: i32 = 8;

/// Namespace of the command ids of recorded reminders: one per timer, so that recording the
/// same delivery twice (a worker that crashed after sending) appends nothing new.
const RECORD_NAMESPACE: Uuid = Uuid::from_u128(0x1f0e_7b1c_5d2a_4c3b_9e8f_7a6b_5c4d_3e2f);

pub use homeward_workflows::schedule::QuietHours;

/// Where partner links point and how they are signed.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    pub signer: LinkSigner,
    /// The public address of this server, e.g. `https://homeward.example.org`; links are
    /// `<base>/l/<token>`.
    pub base_url: String,
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
    /// Digests sent (their failures count in `failed` and `gave_up`).
    pub digests: usize,
}

impl Pass {
    fn add(&mut self, other: &Pass) {
        self.claimed += other.claimed;
        self.sent += other.sent;
        self.dropped += other.dropped;
        self.deferred += other.deferred;
        self.failed += other.failed;
        self.gave_up += other.gave_up;
        self.digests += other.digests;
    }

    fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Sent => self.sent += 1,
            Outcome::Dropped => self.dropped += 1,
            Outcome::Deferred => self.deferred += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::GaveUp => self.gave_up += 1,
        }
    }
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
    links: Option<LinkSettings>,
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
            links: None,
        }
    }

    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Puts signed links for partner contacts in their reminders.
    pub fn with_links(mut self, links: LinkSettings) -> Self {
        self.links = Some(links);
        self
    }

    /// Claims the timers and digests due now and works on each; returns what it did.
    pub async fn run_once(&self) -> Result<Pass, SchedulerError> {
        let now = self.clock.now();
        let claimed = self
            .queue
            .claim_due(self.id, now, now + self.lease, self.batch)
            .await?;
        let digests = self
            .queue
            .claim_due_digests(self.id, now, now + self.lease, self.batch)
            .await?;
        let mut pass = Pass {
            claimed: claimed.len() + digests.len(),
            ..Pass::default()
        };
        for timer in claimed {
            pass.count(self.deliver(&timer, now).await?);
        }
        for digest in digests {
            match self.deliver_digest(&digest, now).await? {
                Outcome::Sent => pass.digests += 1,
                other => pass.count(other),
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
            total.add(&pass);
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
            TimerRecipient::Assignee(p) | TimerRecipient::CaseWorker(p) => Some(p),
            TimerRecipient::SupervisorOf(case_worker) => self
                .party(case_worker)
                .await?
                .and_then(|cw| cw.profile.supervisor),
        };
        let party = match recipient_party {
            Some(p) => self.party(p).await?,
            None => None,
        };
        let Some(party) = party else {
            // Only an escalation can lack its recipient: the case worker has no supervisor. It
            // is recorded as failed, so that the case team sees it, rather than retried forever.
            tracing::warn!(timer = %timer.timer_id, "escalation without a supervisor; recorded as failed");
            let command = PlanCommand::RecordReminderFailed {
                step: spec.step.clone(),
                kind: spec.kind,
                fire_at: spec.fire_at,
                recipient: spec.recipient.party(),
                reason: "nobody to escalate to: the case worker has no supervisor (set one with updateParty)".to_owned(),
            };
            self.record(plan_id, command, timer.timer_id).await?;
            return Ok(Outcome::GaveUp);
        };
        if let Some(until) = party
            .reminders
            .quiet_hours
            .end_after(now, &party.profile.time_zone)
        {
            self.queue
                .extend_claim(self.id, timer.timer_id, until, false)
                .await?;
            return Ok(Outcome::Deferred);
        }
        let links = match (&self.links, spec.recipient) {
            (Some(settings), TimerRecipient::Assignee(_)) => actions_for(party.profile.role, step)
                .into_iter()
                .map(|action| {
                    let link = PartnerLink::for_reminder(
                        timer.timer_id,
                        plan.id,
                        step.key.clone(),
                        party.id,
                        action,
                        now + Duration::days(LINK_VALIDITY_DAYS),
                    );
                    let url = format!(
                        "{}/l/{}",
                        settings.base_url.trim_end_matches('/'),
                        settings.signer.sign(&link)
                    );
                    (action, url)
                })
                .collect(),
            _ => Vec::new(),
        };
        let reminder = Reminder {
            timer_id: timer.timer_id,
            kind: spec.kind,
            plan_id: plan.id.0,
            step_title: step.title.clone(),
            step_kind: step.kind,
            due_at: step.due_at.unwrap_or(spec.fire_at),
            now,
            links,
        };
        let to = recipient_of(&party);
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
                        recipient: party.id,
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
            recipient: party.id,
        };
        self.record(plan_id, command, timer.timer_id).await?;
        Ok(Outcome::Sent)
    }

    async fn party(&self, id: PartyId) -> Result<Option<Arc<Party>>, StoreError> {
        Ok(self
            .handler
            .load_latest::<Party>(&id.stream_id())
            .await?
            .state)
    }

    /// Sends a party's digest of open and overdue tasks for the latest occurrence of its
    /// schedule that is due (after downtime, one digest stands for those missed), and records
    /// it on the party, which moves the schedule on. Quiet hours do not apply: the party chose
    /// the time.
    async fn deliver_digest(
        &self,
        claimed: &ClaimedDigest,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let party_id = PartyId(claimed.party_id);
        let Some(party) = self.party(party_id).await? else {
            return Ok(Outcome::Dropped);
        };
        let Some(digest) = &party.reminders.digest else {
            return Ok(Outcome::Dropped);
        };
        if party.next_digest_at() != Some(claimed.due_at) {
            // The schedule changed since the row was claimed; its projection reset the row.
            return Ok(Outcome::Dropped);
        }
        let covering = digest
            .cron
            .latest_due(claimed.due_at, now, &party.profile.time_zone);
        let viewer = Viewer {
            party: party.id,
            role: party.profile.role,
            organisation: party.profile.organisation.clone(),
        };
        let tasks = match task_scope(&viewer, party.id) {
            Ok(scope) => {
                self.reads
                    .tasks(
                        &scope,
                        &TaskFilter::default(),
                        now,
                        Page {
                            offset: 0,
                            limit: DIGEST_TASK_LIMIT,
                        },
                    )
                    .await?
            }
            // Admins have no tasks.
            Err(_) => Vec::new(),
        };
        // Nothing from a plan that shares nothing with this party now: suspended, or their
        // data-sharing consent withdrawn.
        let plans: Vec<(String, u64)> = tasks
            .iter()
            .map(|t| (PlanId(t.plan_id).stream_id(), 0))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let silent: std::collections::HashSet<Uuid> = self
            .handler
            .load_many::<Plan>(&plans)
            .await?
            .into_iter()
            .filter_map(|(_, loaded)| loaded.state)
            .filter(|plan| {
                plan.suspended
                    || plan
                        .consent(ConsentPurpose::DataSharing { partner: party.id })
                        .is_some_and(|c| !c.given)
            })
            .map(|plan| plan.id.0)
            .collect();
        let tasks: Vec<DigestTask> = tasks
            .into_iter()
            .filter(|t| !silent.contains(&t.plan_id))
            .map(|t| DigestTask {
                plan_id: t.plan_id,
                step_title: t.title,
                due_at: t.due_at,
                overdue: t.due_at.is_some_and(|d| d < now),
            })
            .collect();
        let mail = render_digest(party.id.0, covering, &tasks, &recipient_of(&party));
        let record_id = Uuid::new_v5(&DIGEST_RECORD_NAMESPACE, mail.message_id.as_bytes());
        let command = match self.mailer.send(&mail).await {
            Ok(()) => PartyCommand::RecordDigestSent {
                covering,
                open_tasks: tasks.len() as u32,
                overdue_tasks: tasks.iter().filter(|t| t.overdue).count() as u32,
            },
            Err(e) => {
                let attempts = claimed.attempts + 1;
                if !matches!(e, MailError::Permanent(_)) && attempts < MAX_ATTEMPTS {
                    tracing::warn!(party = %party.id, attempts, error = %e, "digest not sent; retrying later");
                    let retry = now + backoff(claimed.attempts, claimed.party_id);
                    self.queue
                        .extend_digest_claim(self.id, claimed.party_id, retry, true)
                        .await?;
                    return Ok(Outcome::Failed);
                }
                tracing::error!(party = %party.id, attempts, error = %e, "digest given up");
                PartyCommand::RecordDigestFailed {
                    covering,
                    reason: format!("not delivered after {attempts} attempt(s): {e}"),
                }
            }
        };
        let gave_up = matches!(command, PartyCommand::RecordDigestFailed { .. });
        let meta = CommandMeta::new(SCHEDULER).with_command_id(record_id);
        match self
            .handler
            .handle::<Party>(&party.id.stream_id(), &command, meta)
            .await
        {
            Ok(_) | Err(CommandError::Rejected(PartyError::DigestAlreadyRecorded(_))) => {}
            Err(CommandError::Store(e)) => return Err(e),
            Err(other) => {
                tracing::warn!(party = %party.id, error = %other, "digest outcome not recorded")
            }
        }
        Ok(if gave_up {
            Outcome::GaveUp
        } else {
            Outcome::Sent
        })
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

fn recipient_of(party: &Party) -> Recipient {
    Recipient {
        name: party.profile.display_name.clone(),
        address: party.profile.email.clone(),
        language: party.profile.language.as_str().to_owned(),
        time_zone: party.profile.time_zone.clone(),
    }
}

/// Open tasks a digest counts (it lists the first [`crate::reminders::DIGEST_MAX_TASKS`]).
const DIGEST_TASK_LIMIT: i64 = 1000;

/// Namespace of the command ids of recorded digests: one per party and occurrence.
const DIGEST_RECORD_NAMESPACE: Uuid = Uuid::from_u128(0x0b9e_52d4_7c31_4a8f_b6e0_2d5f_8c17_a493);

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
