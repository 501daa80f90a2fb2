//! The reminder worker: claims due timers, writes each reminder for its recipient, sends it, and
//! records `ReminderSent` (or `StepEscalated`) on the plan, whose projection removes the timer.
//!
//! Any number of workers share the timer table (claims with leases, see the store's timer
//! queue). A worker holds its claims only while it works on them: it claims about as many as it
//! can send within half a lease (from how long its deliveries have been taking), sends them in
//! parallel up to its SMTP pool size (one plan's reminders one after another, so that their
//! records do not race), renews the leases of what it still holds on a heartbeat, and checks
//! just before each send that the claim is still its own. A worker that dies loses its claims
//! when the lease ends; one that stops gives back what it has not sent at once.
//!
//! Before sending, the worker checks the timer against the plan as it is now: a step
//! completed, reassigned or rescheduled, a plan closed or suspended, or a partner's data-sharing
//! consent withdrawn since the timer was armed means the reminder is no longer wanted, and it is
//! not sent. Quiet hours in the recipient's time zone defer it; a failed delivery is retried
//! later with exponential backoff and jitter.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use homeward_store::reads::{Page, ReadModels, TaskFilter};
use homeward_store::timer_queue::{ClaimKind, ClaimedDigest, ClaimedTimer, TimerQueue};
use homeward_store::{EventStore, StoreError};
use homeward_workflows::party::{Party, PartyCommand, PartyError};
use homeward_workflows::plan::{ConsentPurpose, Plan, PlanCommand, PlanError};
use homeward_workflows::timers::{planned_timers, Recipient as TimerRecipient};
use homeward_workflows::{PartyId, PlanId};
use thiserror::Error;
use uuid::Uuid;

use crate::authz::{task_scope, Viewer};
use crate::links::{actions_for, LinkSigner, PartnerLink};
use crate::mail::{MailError, Mailer};
use crate::reminders::{render, render_digest, DigestTask, Recipient, Reminder};
use crate::{Clock, CommandError, CommandHandler, CommandMeta};

/// The actor of the events the scheduler records.
pub const SCHEDULER: PartyId = PartyId(Uuid::from_u128(0x5c4e_d01e_0000_4000_8000_0000_0000_0001));

/// Deliveries tried before a reminder is given up (with the backoff, about four hours).
pub const MAX_ATTEMPTS: i32 = 8;

/// How long a claim lasts unless renewed: a dead worker's reminders go out this long after it
/// died, at most. Longer than any one send may take (the SMTP timeout).
pub const DEFAULT_LEASE: std::time::Duration = std::time::Duration::from_secs(30);

/// How often a working worker renews its leases: a few times per lease.
pub const DEFAULT_RENEWAL: std::time::Duration = std::time::Duration::from_secs(10);

/// The most timers (and digests) claimed at once.
pub const DEFAULT_MAX_BATCH: i64 = 50;

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
    /// How long a link stays valid from the reminder that carries it.
    pub valid_for: Duration,
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
    /// Claims found taken by another worker before sending (this one's lease had ended): not
    /// sent here.
    pub lost: usize,
    /// Claims given back unsent because the worker is stopping.
    pub released: usize,
}

/// A reminder sent this long after its due instant counts as late (`homeward_timers_late_total`).
const LATE: Duration = Duration::seconds(60);

impl Pass {
    /// Adds what this pass did to the process's metrics.
    fn record_metrics(&self) {
        metrics::counter!("homeward_emails_sent_total", "kind" => "reminder")
            .increment(self.sent as u64);
        metrics::counter!("homeward_emails_sent_total", "kind" => "digest")
            .increment(self.digests as u64);
        metrics::counter!("homeward_emails_failed_total")
            .increment((self.failed + self.gave_up) as u64);
        metrics::counter!("homeward_timers_failed_total").increment(self.gave_up as u64);
        metrics::counter!("homeward_timer_claims_lost_total").increment(self.lost as u64);
    }

    fn add(&mut self, other: &Pass) {
        self.claimed += other.claimed;
        self.sent += other.sent;
        self.dropped += other.dropped;
        self.deferred += other.deferred;
        self.failed += other.failed;
        self.gave_up += other.gave_up;
        self.digests += other.digests;
        self.lost += other.lost;
        self.released += other.released;
    }

    fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Sent => self.sent += 1,
            Outcome::Dropped => self.dropped += 1,
            Outcome::Deferred => self.deferred += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::GaveUp => self.gave_up += 1,
            Outcome::Lost => self.lost += 1,
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
    renewal: std::time::Duration,
    max_batch: i64,
    concurrency: usize,
    pace: Arc<Pace>,
    stop: Option<tokio::sync::watch::Receiver<bool>>,
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
            lease: Duration::seconds(DEFAULT_LEASE.as_secs() as i64),
            renewal: DEFAULT_RENEWAL,
            max_batch: DEFAULT_MAX_BATCH,
            concurrency: 1,
            pace: Arc::default(),
            stop: None,
            links: None,
        }
    }

    /// How long a claim lasts unless renewed (default [`DEFAULT_LEASE`]).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How often the leases of claims being worked on are renewed (default
    /// [`DEFAULT_RENEWAL`]); keep it well under the lease.
    pub fn with_renewal(mut self, every: std::time::Duration) -> Self {
        self.renewal = every.max(std::time::Duration::from_millis(10));
        self
    }

    /// Deliveries in flight at once: the SMTP pool size (default 1).
    pub fn with_concurrency(mut self, deliveries: usize) -> Self {
        self.concurrency = deliveries.max(1);
        self
    }

    /// The most timers (and digests) claimed at once (default [`DEFAULT_MAX_BATCH`]).
    pub fn with_max_batch(mut self, claims: i64) -> Self {
        self.max_batch = claims.max(1);
        self
    }

    /// Stops starting deliveries once `stop` holds `true`: a pass finishes the sends in flight
    /// and gives back the claims it has not sent.
    pub fn with_stop(mut self, stop: tokio::sync::watch::Receiver<bool>) -> Self {
        self.stop = Some(stop);
        self
    }

    /// Puts signed links for partner contacts in their reminders.
    pub fn with_links(mut self, links: LinkSettings) -> Self {
        self.links = Some(links);
        self
    }

    /// Claims the timers and digests due now and works on each; returns what it did.
    pub async fn run_once(&self) -> Result<Pass, SchedulerError> {
        if self.stopping() {
            return Ok(Pass::default());
        }
        let now = self.clock.now();
        let limit = self.claim_size();
        let timers = self
            .queue
            .claim_due(self.id, now, now + self.lease, limit)
            .await?;
        metrics::counter!("homeward_timers_claimed_total").increment(timers.len() as u64);
        metrics::counter!("homeward_timers_late_total")
            .increment(timers.iter().filter(|t| now - t.fire_at > LATE).count() as u64);
        metrics::counter!("homeward_timer_claims_taken_over_total")
            .increment(timers.iter().filter(|t| t.taken_over).count() as u64);
        let digests = self
            .queue
            .claim_due_digests(self.id, now, now + self.lease, limit)
            .await?;
        let held = Held::default();
        held.add(ClaimKind::Timer, timers.iter().map(|t| t.timer_id));
        held.add(ClaimKind::Digest, digests.iter().map(|d| d.party_id));
        let mut pass = Pass {
            claimed: timers.len() + digests.len(),
            ..Pass::default()
        };
        // One plan's timers one after another (their records append to the same stream); plans
        // and parties in parallel.
        let mut by_plan: BTreeMap<Uuid, Vec<ClaimedTimer>> = BTreeMap::new();
        for timer in timers {
            by_plan.entry(timer.plan_id).or_default().push(timer);
        }
        // Every delivery runs to its end before an error is reported: one dropped in the middle
        // of a send could leave a delivered reminder unrecorded.
        let work = async {
            let timers: Vec<_> = futures::stream::iter(by_plan.into_values())
                .map(|plan_timers| self.deliver_in_turn(plan_timers, &held))
                .buffer_unordered(self.concurrency)
                .collect()
                .await;
            let digests: Vec<_> = futures::stream::iter(digests)
                .map(|digest| self.deliver_digest_held(digest, &held))
                .buffer_unordered(self.concurrency)
                .collect()
                .await;
            (timers, digests)
        };
        let (timers, digests) = tokio::select! {
            done = work => done,
            never = self.heartbeat(&held) => match never {},
        };
        let mut first_error = None;
        for (outcomes, error) in timers {
            outcomes.into_iter().for_each(|outcome| pass.count(outcome));
            first_error = first_error.or(error);
        }
        for outcome in digests {
            match outcome {
                Ok(Some(Outcome::Sent)) => pass.digests += 1,
                Ok(Some(other)) => pass.count(other),
                Ok(None) => {}
                Err(error) => first_error = first_error.or(Some(error)),
            }
        }
        pass.record_metrics();
        if self.stopping() {
            pass.released = usize::try_from(self.release().await?).unwrap_or(usize::MAX);
        }
        match first_error {
            Some(error) => Err(error.into()),
            None => Ok(pass),
        }
    }

    fn stopping(&self) -> bool {
        self.stop.as_ref().is_some_and(|stop| *stop.borrow())
    }

    /// As many claims as can be sent within half a lease at the pace deliveries have been
    /// going, at least one per delivery slot and at most the batch size: claims a worker cannot
    /// get to soon are better left to others.
    fn claim_size(&self) -> i64 {
        let slots = self.concurrency as i64;
        let Some(per_delivery) = self.pace.seconds() else {
            return (slots * 4).min(self.max_batch);
        };
        let half_lease = self.lease.num_milliseconds() as f64 / 2000.0;
        let fits = (half_lease / per_delivery.max(0.001)) as i64 * slots;
        fits.clamp(slots.min(self.max_batch), self.max_batch)
    }

    /// Renews the leases of the claims in `held` every renewal interval, for as long as the
    /// pass runs; a claim another worker has taken meanwhile is marked lost.
    async fn heartbeat(&self, held: &Held) -> std::convert::Infallible {
        loop {
            tokio::time::sleep(self.renewal).await;
            for kind in [ClaimKind::Timer, ClaimKind::Digest] {
                let ids = held.ids(kind);
                if ids.is_empty() {
                    continue;
                }
                let until = self.clock.now() + self.lease;
                match self.queue.renew_claims(self.id, kind, &ids, until).await {
                    Ok(kept) => {
                        metrics::counter!("homeward_timer_claims_renewed_total")
                            .increment(kept.len() as u64);
                        held.keep_only(kind, &ids, &kept);
                    }
                    // The fencing check before each send still protects; try again next beat.
                    Err(e) => tracing::warn!(error = %e, "leases not renewed"),
                }
            }
        }
    }

    /// Delivers one plan's claimed timers in order, skipping what is left once the worker
    /// stops (given back by the pass) or after an error (their leases end); returns the
    /// outcomes and the error, if any.
    async fn deliver_in_turn(
        &self,
        timers: Vec<ClaimedTimer>,
        held: &Held,
    ) -> (Vec<Outcome>, Option<StoreError>) {
        let mut outcomes = Vec::with_capacity(timers.len());
        for timer in timers {
            if self.stopping() {
                break;
            }
            let started = Instant::now();
            let outcome = self.deliver(&timer, held).await;
            held.remove(ClaimKind::Timer, timer.timer_id);
            match outcome {
                Ok(outcome) => outcomes.push(outcome),
                Err(error) => return (outcomes, Some(error)),
            }
            self.pace.record(started.elapsed());
        }
        (outcomes, None)
    }

    async fn deliver_digest_held(
        &self,
        digest: ClaimedDigest,
        held: &Held,
    ) -> Result<Option<Outcome>, StoreError> {
        if self.stopping() {
            return Ok(None);
        }
        let outcome = self.deliver_digest(&digest, held).await;
        held.remove(ClaimKind::Digest, digest.party_id);
        outcome.map(Some)
    }

    /// Whether this worker still holds the claim: the fencing check just before a send or a
    /// recorded failure. A worker that lost a claim does neither. Another worker can take a
    /// claim only once its lease has ended, so a claim held for more than half a lease yet
    /// (the heartbeat keeps it so) is safe to send on; a shorter one is renewed first.
    async fn still_mine(&self, kind: ClaimKind, id: Uuid, held: &Held) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let mine = match self.queue.held_until(self.id, kind, id).await? {
            Some(until) if until - now > self.lease / 2 => true,
            Some(_) => !self
                .queue
                .renew_claims(self.id, kind, &[id], now + self.lease)
                .await?
                .is_empty(),
            None => false,
        };
        if !mine {
            held.remove(kind, id);
            tracing::warn!(claim = %id, "claim taken over by another worker; not sent here");
        }
        Ok(mine)
    }

    /// The worker's loop, as `homeward serve` runs it: a pass, then sleep until the next timer
    /// is due, something is recorded in the log (`wake`: it may have armed an earlier timer),
    /// or `max_sleep`; on `stop`, its claims are given back so that another replica takes them
    /// at once.
    pub async fn run_until_stopped<T: Clone>(
        self,
        mut wake: tokio::sync::broadcast::Receiver<T>,
        max_sleep: std::time::Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        /// At most this often, however busy the log: wake-ups between passes are coalesced.
        const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);
        let worker = self.with_stop(stop.clone());
        loop {
            match worker.drain().await {
                Ok(pass) if pass.claimed > 0 => {
                    tracing::info!(
                        sent = pass.sent,
                        deferred = pass.deferred,
                        failed = pass.failed,
                        dropped = pass.dropped,
                        "reminders"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reminder pass failed; trying again"),
            }
            let until_next = match worker.next_due().await {
                Ok(Some(at)) => (at - worker.clock.now())
                    .to_std()
                    .unwrap_or(std::time::Duration::ZERO),
                _ => max_sleep,
            };
            let sleep = until_next.clamp(MIN_INTERVAL, max_sleep.max(MIN_INTERVAL));
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = wake.recv() => {
                    tokio::time::sleep(MIN_INTERVAL).await;
                    wake = wake.resubscribe();
                }
                _ = stop.changed() => break,
            }
            if *stop.borrow() {
                break;
            }
        }
        match worker.release().await {
            Ok(n) if n > 0 => tracing::info!(released = n, "reminder claims given back"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "claims not given back; their leases will end"),
        }
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

    async fn deliver(&self, timer: &ClaimedTimer, held: &Held) -> Result<Outcome, StoreError> {
        let now = self.clock.now();
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
                .and_then(|t| Some((p, p.step(&t.step)?, t)))
        });
        let Some((plan, step, spec)) = wanted else {
            // The command that made it unwanted removed its row too; a row that outlived it
            // (claimed meanwhile) is put out of the way for a day.
            tracing::debug!(timer = %timer.timer_id, "timer no longer wanted; not sent");
            self.postpone(
                ClaimKind::Timer,
                timer.timer_id,
                now + Duration::days(1),
                false,
            )
            .await?;
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
            if !self
                .still_mine(ClaimKind::Timer, timer.timer_id, held)
                .await?
            {
                return Ok(Outcome::Lost);
            }
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
        if !party.is_active() {
            // Nobody reads a deactivated party's mail for Homeward: recorded as failed, so that
            // the case team sees it and gives the step to someone else.
            if !self
                .still_mine(ClaimKind::Timer, timer.timer_id, held)
                .await?
            {
                return Ok(Outcome::Lost);
            }
            let command = PlanCommand::RecordReminderFailed {
                step: spec.step.clone(),
                kind: spec.kind,
                fire_at: spec.fire_at,
                recipient: spec.recipient.party(),
                reason: format!(
                    "{} is deactivated: assign the step to someone else",
                    party.profile.display_name
                ),
            };
            self.record(plan_id, command, timer.timer_id).await?;
            return Ok(Outcome::GaveUp);
        }
        if let Some(until) = party
            .reminders
            .quiet_hours
            .end_after(now, &party.profile.time_zone)
        {
            self.postpone(ClaimKind::Timer, timer.timer_id, until, false)
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
                        now + settings.valid_for,
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
            step_title: crate::i18n::step_name(
                &plan.template,
                &step.key,
                step.kind,
                crate::i18n::Lang::of(party.profile.language.as_str()),
            ),
            step_kind: step.kind,
            due_at: step.due_at.unwrap_or(spec.fire_at),
            now,
            links,
        };
        let to = recipient_of(&party);
        let mail = render(&reminder, &to);
        if !self
            .still_mine(ClaimKind::Timer, timer.timer_id, held)
            .await?
        {
            return Ok(Outcome::Lost);
        }
        match self.mailer.send(&mail).await {
            Ok(()) => {}
            Err(e) => {
                let attempts = timer.attempts + 1;
                // A refusal will not change on retry; a broken configuration might be fixed.
                let give_up = matches!(e, MailError::Permanent(_)) || attempts >= MAX_ATTEMPTS;
                if give_up {
                    // Another worker that took the claim over may be delivering it now: only
                    // the holder records a failure.
                    if !self
                        .still_mine(ClaimKind::Timer, timer.timer_id, held)
                        .await?
                    {
                        return Ok(Outcome::Lost);
                    }
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
                self.postpone(ClaimKind::Timer, timer.timer_id, retry, true)
                    .await?;
                return Ok(Outcome::Failed);
            }
        }
        // What was delivered is recorded, whoever holds the claim by now: the record is
        // idempotent per timer, and a delivery left unrecorded would be sent again.
        let command = PlanCommand::RecordReminderSent {
            step: spec.step.clone(),
            kind: spec.kind,
            fire_at: spec.fire_at,
            recipient: party.id,
        };
        self.record(plan_id, command, timer.timer_id).await?;
        Ok(Outcome::Sent)
    }

    /// Gives up the claim until `until` (a worker that lost it changes nothing).
    async fn postpone(
        &self,
        kind: ClaimKind,
        id: Uuid,
        until: DateTime<Utc>,
        failed: bool,
    ) -> Result<(), StoreError> {
        if !self
            .queue
            .postpone(self.id, kind, id, until, failed)
            .await?
        {
            tracing::debug!(claim = %id, "claim no longer held; not postponed");
        }
        Ok(())
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
        held: &Held,
    ) -> Result<Outcome, StoreError> {
        let now = self.clock.now();
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
            organisation: party.profile.organisation,
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
        let shared: std::collections::HashMap<Uuid, Arc<Plan>> = self
            .handler
            .load_many::<Plan>(&plans)
            .await?
            .into_iter()
            .filter_map(|(_, loaded)| loaded.state)
            .filter(|plan| {
                !plan.suspended
                    && plan
                        .consent(ConsentPurpose::DataSharing { partner: party.id })
                        .is_none_or(|c| c.given)
            })
            .map(|plan| (plan.id.0, plan))
            .collect();
        let lang = crate::i18n::Lang::of(party.profile.language.as_str());
        let tasks: Vec<DigestTask> = tasks
            .into_iter()
            .filter_map(|t| {
                let plan = shared.get(&t.plan_id)?;
                let step = plan.steps.iter().find(|s| s.key.as_str() == t.step_key)?;
                Some(DigestTask {
                    plan_id: t.plan_id,
                    step_title: crate::i18n::step_name(&plan.template, &step.key, step.kind, lang),
                    due_at: t.due_at,
                    overdue: t.due_at.is_some_and(|d| d < now),
                })
            })
            .collect();
        let mail = render_digest(party.id.0, covering, &tasks, &recipient_of(&party));
        let record_id = Uuid::new_v5(&DIGEST_RECORD_NAMESPACE, mail.message_id.as_bytes());
        if !self
            .still_mine(ClaimKind::Digest, claimed.party_id, held)
            .await?
        {
            return Ok(Outcome::Lost);
        }
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
                    self.postpone(ClaimKind::Digest, claimed.party_id, retry, true)
                        .await?;
                    return Ok(Outcome::Failed);
                }
                if !self
                    .still_mine(ClaimKind::Digest, claimed.party_id, held)
                    .await?
                {
                    return Ok(Outcome::Lost);
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
    /// Another worker took the claim over: nothing done here.
    Lost,
}

/// The claims of a pass not yet worked through: what the heartbeat renews.
#[derive(Debug, Default)]
struct Held(Mutex<HashSet<(ClaimKind, Uuid)>>);

impl Held {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<(ClaimKind, Uuid)>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn add(&self, kind: ClaimKind, ids: impl IntoIterator<Item = Uuid>) {
        self.lock().extend(ids.into_iter().map(|id| (kind, id)));
    }

    fn remove(&self, kind: ClaimKind, id: Uuid) {
        self.lock().remove(&(kind, id));
    }

    fn ids(&self, kind: ClaimKind) -> Vec<Uuid> {
        self.lock()
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, id)| *id)
            .collect()
    }

    /// Of `asked`, drops those not in `kept` (lost to another worker).
    fn keep_only(&self, kind: ClaimKind, asked: &[Uuid], kept: &[Uuid]) {
        let kept: HashSet<&Uuid> = kept.iter().collect();
        let mut held = self.lock();
        for id in asked.iter().filter(|id| !kept.contains(id)) {
            held.remove(&(kind, *id));
        }
    }
}

/// How long one delivery takes, a moving average in microseconds (0: nothing measured yet),
/// shared by a worker's clones.
#[derive(Debug, Default)]
struct Pace(AtomicU64);

impl Pace {
    fn seconds(&self) -> Option<f64> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            micros => Some(micros as f64 / 1e6),
        }
    }

    fn record(&self, took: std::time::Duration) {
        let sample = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(if old == 0 {
                    sample
                } else {
                    (old * 4 + sample) / 5
                })
            });
    }
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
