//! Effects as data: which reminder timers a plan needs.
//!
//! The timer table is a function of the plan state: [`planned_timers`] says which timers should
//! exist now, and [`timer_effects`] turns the difference between two states into `Arm`/`Cancel`
//! effects that the store applies in the same transaction as the events. Completing, cancelling or
//! rescheduling a step, closing the plan or withdrawing consent therefore cancels exactly the
//! timers that no longer apply, and a rebuild from the log yields the same table.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::ids::{PartyId, PlanId, StepKey};
use crate::plan::{ConsentPurpose, Plan, PlanStatus, ReminderKind, Step, StepKind, StepStatus};

/// How long after arrival the reintegration plan should be done before the case worker is
/// reminded.
pub const REINTEGRATION_PLAN_DAYS: u32 = 30;

/// Who a timer notifies when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Recipient {
    /// The party the step is assigned to.
    Assignee(PartyId),
    /// The supervisor of this party (the plan's case worker), resolved when the timer fires.
    SupervisorOf(PartyId),
    /// The plan's case worker.
    CaseWorker(PartyId),
}

impl Recipient {
    pub fn party(&self) -> PartyId {
        match self {
            Self::Assignee(p) | Self::SupervisorOf(p) | Self::CaseWorker(p) => *p,
        }
    }
    pub fn role(&self) -> &'static str {
        match self {
            Self::Assignee(_) => "assignee",
            Self::SupervisorOf(_) => "supervisor_of",
            Self::CaseWorker(_) => "case_worker",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TimerSpec {
    /// Derived from plan, step, kind, time and recipient: the same timer always has the same id,
    /// which also makes the Message-ID of its email recognisable on retry. A reminder to someone
    /// else (the step was reassigned) is another timer, so the table never keeps a stale recipient.
    pub id: Uuid,
    pub plan_id: PlanId,
    pub step: StepKey,
    pub kind: ReminderKind,
    pub fire_at: DateTime<Utc>,
    pub recipient: Recipient,
}

impl TimerSpec {
    fn new(
        plan: &Plan,
        step: &Step,
        kind: ReminderKind,
        fire_at: DateTime<Utc>,
        recipient: Recipient,
    ) -> Self {
        Self {
            id: timer_id(plan.id, &step.key, kind, fire_at, recipient),
            plan_id: plan.id,
            step: step.key.clone(),
            kind,
            fire_at,
            recipient,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    ArmTimer(TimerSpec),
    CancelTimer(Uuid),
}

/// Namespace for timer ids (UUIDv5).
const TIMER_NAMESPACE: Uuid = Uuid::from_u128(0x6b0d_3f7e_2a8c_4e51_9c1d_4b7a_0e2f_5a13);

pub fn timer_id(
    plan: PlanId,
    step: &StepKey,
    kind: ReminderKind,
    fire_at: DateTime<Utc>,
    recipient: Recipient,
) -> Uuid {
    let name = format!(
        "{}/{}/{}/{}/{}/{}",
        plan.0,
        step,
        kind.as_str(),
        fire_at.timestamp_millis(),
        recipient.role(),
        recipient.party().0
    );
    Uuid::new_v5(&TIMER_NAMESPACE, name.as_bytes())
}

/// A closed or suspended plan has no timers at all.
fn has_timers(plan: &Plan) -> bool {
    plan.status != PlanStatus::Closed && !plan.suspended
}

/// The timers that should exist for this plan right now.
pub fn planned_timers(plan: &Plan) -> Vec<TimerSpec> {
    if !has_timers(plan) {
        return Vec::new();
    }
    let mut timers = Vec::new();
    for step in &plan.steps {
        step_timers(plan, step, &mut timers);
    }
    if let Some(timer) = reintegration_plan_timer(plan) {
        timers.push(timer);
    }
    timers
}

/// A month after arrival, the case worker hears if no reintegration support step is done yet
/// (the reminder hangs on the first open one).
fn reintegration_plan_timer(plan: &Plan) -> Option<TimerSpec> {
    let arrived_at = plan.arrived_at?;
    let mut reintegration = plan
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::ReintegrationSupport);
    if reintegration.clone().any(|s| s.status == StepStatus::Done) {
        return None;
    }
    let kind = ReminderKind::ReintegrationPlanDue;
    let fire_at = arrived_at + days_(REINTEGRATION_PLAN_DAYS);
    // Sent once per plan, whichever step it hung on (that step may be cancelled since).
    if reintegration
        .clone()
        .any(|s| s.reminder_recorded(kind, fire_at))
    {
        return None;
    }
    let step = reintegration.find(|s| s.status.is_open())?;
    Some(TimerSpec::new(
        plan,
        step,
        kind,
        fire_at,
        Recipient::CaseWorker(plan.case_worker),
    ))
}

fn step_timers(plan: &Plan, step: &Step, out: &mut Vec<TimerSpec>) {
    let (Some(due_at), Some(assignee)) = (step.due_at, step.assignee) else {
        return;
    };
    if !step.status.is_open() {
        return;
    }
    // A partner whose data-sharing consent was withdrawn gets nothing about this case.
    let sharing_withdrawn = plan
        .consent(ConsentPurpose::DataSharing { partner: assignee })
        .is_some_and(|c| !c.given);
    let mut push = |kind: ReminderKind, fire_at: DateTime<Utc>, recipient: Recipient| {
        if !step.reminder_recorded(kind, fire_at) {
            out.push(TimerSpec::new(plan, step, kind, fire_at, recipient));
        }
    };
    let policy = step.reminder_policy;
    if !sharing_withdrawn {
        let to_assignee = Recipient::Assignee(assignee);
        if let Some(days) = policy.before_due_days {
            push(ReminderKind::BeforeDue, due_at - days_(days), to_assignee);
        }
        if policy.on_due {
            push(ReminderKind::OnDue, due_at, to_assignee);
        }
        if let Some(every) = policy.overdue_every_days {
            // Only the next overdue reminder is armed; sending it arms the one after.
            let already = step
                .reminders_sent
                .iter()
                .filter(|r| r.kind == ReminderKind::Overdue)
                .count() as u32;
            push(
                ReminderKind::Overdue,
                due_at + days_(every.saturating_mul(already + 1)),
                to_assignee,
            );
        }
    }
    if let Some(days) = policy.escalate_after_days {
        push(
            ReminderKind::Escalation,
            due_at + days_(days),
            Recipient::SupervisorOf(plan.case_worker),
        );
    }
}

fn days_(days: u32) -> Duration {
    Duration::days(i64::from(days))
}

/// The effects that take the timer table from a plan's timers before a command to its timers
/// after it: `timer_effects(&planned_timers(before), &planned_timers(after))`, worked out for
/// the changed steps only when nothing that all of a plan's timers depend on changed (the
/// everyday edit of one step), and for the whole plan otherwise.
pub fn plan_timer_effects(before: Option<&Plan>, after: &Plan) -> Vec<Effect> {
    let Some(before) = before.filter(|b| same_timer_context(b, after)) else {
        return timer_effects(
            &before.map(planned_timers).unwrap_or_default(),
            &planned_timers(after),
        );
    };
    if !has_timers(after) {
        return Vec::new();
    }
    let mut effects = Vec::new();
    let (mut old, mut new) = (Vec::new(), Vec::new());
    for (was, is) in before.steps.iter().zip(&after.steps) {
        if was != is {
            old.clear();
            new.clear();
            step_timers(before, was, &mut old);
            step_timers(after, is, &mut new);
            effects.extend(timer_effects(&old, &new));
        }
    }
    let old: Vec<TimerSpec> = reintegration_plan_timer(before).into_iter().collect();
    let new: Vec<TimerSpec> = reintegration_plan_timer(after).into_iter().collect();
    effects.extend(timer_effects(&old, &new));
    effects
}

/// Whether each step's timers depend on the step alone in both states: the same plan, open or
/// closed, suspended or not, alike in both; the same case worker (escalations go to their
/// supervisor) and consents (a partner's withdrawn data sharing stops their reminders); the
/// same steps in the same order.
fn same_timer_context(before: &Plan, after: &Plan) -> bool {
    before.id == after.id
        && has_timers(before) == has_timers(after)
        && before.case_worker == after.case_worker
        && before.consents == after.consents
        && before.has_same_steps_as(after)
}

/// The effects that take the timer table from `before` to `after`.
pub fn timer_effects(before: &[TimerSpec], after: &[TimerSpec]) -> Vec<Effect> {
    let mut effects: Vec<Effect> = before
        .iter()
        .filter(|t| !after.iter().any(|a| a.id == t.id))
        .map(|t| Effect::CancelTimer(t.id))
        .collect();
    effects.extend(
        after
            .iter()
            .filter(|t| !before.iter().any(|b| b.id == t.id))
            .cloned()
            .map(Effect::ArmTimer),
    );
    effects
}
