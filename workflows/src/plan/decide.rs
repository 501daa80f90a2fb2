//! `decide`: the rules of a return plan. Pure: the state, the command and the context in; the
//! events or a typed refusal out. A refused command produces nothing.

use chrono::{DateTime, Duration, Utc};

use super::command::{NewStep, PlanCommand};
use super::error::PlanError;
use super::event::{PlanEvent, PlanOpened, StepDefinition};
use super::state::{
    resolve_local, CloseReason, ConsentPurpose, DueRule, Plan, PlanStatus, ReminderKind,
    ReminderPolicy, Step, StepKind, StepStatus,
};
use crate::aggregate::Context;
use crate::ids::StepKey;
use crate::personal::Personal;
use crate::template::find_cycle;
use crate::text::{bounded, bounded_lines, one_line};

pub const MAX_TITLE: usize = 200;
pub const MAX_REASON: usize = 1000;
pub const MAX_GROUP: usize = 100;
pub const MAX_GOAL_AIM: usize = 300;
pub const MAX_GOALS: usize = 20;
pub const MAX_STEPS: usize = 200;
pub const MAX_DEPENDENCIES: usize = 20;
pub const MAX_OFFSET_DAYS: u32 = 3650;
pub const MAX_REMINDER_DAYS: u32 = 365;
/// Clocks differ a little; a confirmation this far in the future is still "now".
const CLOCK_SKEW: Duration = Duration::minutes(5);
/// The furthest time zone ahead of UTC (UTC+14, Kiribati's Line Islands).
const LATEST_UTC_OFFSET: Duration = Duration::hours(14);

pub(crate) fn decide(
    state: Option<&Plan>,
    command: &PlanCommand,
    ctx: &Context,
) -> Result<Vec<PlanEvent>, PlanError> {
    if let PlanCommand::OpenPlan { .. } = command {
        return match state {
            Some(_) => Err(PlanError::AlreadyOpened),
            None => open_plan(command, ctx),
        };
    }
    let plan = state.ok_or(PlanError::NotOpened)?;
    if plan.status == PlanStatus::Closed {
        return Err(PlanError::Closed);
    }
    let allowed_while_suspended = matches!(
        command,
        PlanCommand::RecordConsent { .. }
            | PlanCommand::WithdrawConsent { .. }
            | PlanCommand::ClosePlan { .. }
            | PlanCommand::ReassignCaseWorker { .. }
    );
    if plan.suspended && !allowed_while_suspended {
        return Err(PlanError::Suspended);
    }

    use PlanCommand as C;
    use PlanEvent as E;
    Ok(match command {
        C::OpenPlan { .. } => unreachable!("handled above"),
        C::SetGoals { goals } => {
            if goals.len() > MAX_GOALS {
                return Err(too_many("goals", goals.len(), MAX_GOALS));
            }
            let mut clean = Vec::with_capacity(goals.len());
            for g in goals {
                let mut g = g.clone();
                g.aim = Personal::new(bounded("goal aim", g.aim.stored(), MAX_GOAL_AIM)?);
                clean.push(g);
            }
            vec![E::GoalsSet { goals: clean }]
        }
        C::AddStep(new) => vec![E::StepAdded {
            step: validate_new_step(plan, new)?,
        }],
        C::RemoveStep { step, reason } => {
            let s = open_step(plan, step)?;
            if !matches!(s.status, StepStatus::Pending | StepStatus::Ready) {
                return Err(PlanError::CannotRemove {
                    step: step.clone(),
                    status: s.status.api_name(),
                });
            }
            if let Some(d) = plan.steps.iter().find(|d| d.depends_on.contains(step)) {
                return Err(PlanError::HasDependents {
                    step: step.clone(),
                    dependent: d.key.clone(),
                });
            }
            vec![E::StepRemoved {
                step: step.clone(),
                reason: Personal::new(bounded_lines("reason", reason, MAX_REASON)?),
            }]
        }
        C::AssignStep {
            step,
            assignee,
            candidate_group,
        } => {
            open_step(plan, step)?;
            let candidate_group = candidate_group
                .as_deref()
                .map(|g| bounded("candidate group", g, MAX_GROUP))
                .transpose()?;
            vec![E::StepAssigned {
                step: step.clone(),
                assignee: *assignee,
                candidate_group,
            }]
        }
        C::RescheduleStep {
            step,
            due,
            follow_up_on,
        } => {
            open_step(plan, step)?;
            let due = due
                .as_ref()
                .map(|rule| validate_due(plan, rule))
                .transpose()?;
            vec![E::StepRescheduled {
                step: step.clone(),
                due,
                follow_up_on: *follow_up_on,
            }]
        }
        C::ChangeDependencies { step, depends_on } => {
            let s = open_step(plan, step)?;
            if !matches!(s.status, StepStatus::Pending | StepStatus::Ready) {
                return Err(invalid(s, "change the dependencies of"));
            }
            validate_dependencies(plan, step, depends_on)?;
            vec![E::StepDependenciesChanged {
                step: step.clone(),
                depends_on: dedup(depends_on),
            }]
        }
        C::PrioritiseStep { step, priority } => {
            open_step(plan, step)?;
            vec![E::StepPrioritised {
                step: step.clone(),
                priority: *priority,
            }]
        }
        C::SetReminderPolicy { step, policy } => {
            open_step(plan, step)?;
            validate_policy(policy)?;
            vec![E::ReminderPolicySet {
                step: step.clone(),
                policy: *policy,
            }]
        }
        C::StartStep {
            step,
            override_reason,
        } => {
            let s = find_step(plan, step)?;
            match s.status {
                StepStatus::Ready => {}
                StepStatus::Pending => return Err(PlanError::DependenciesNotDone(step.clone())),
                _ => return Err(invalid(s, "start")),
            }
            require_active(plan)?;
            let override_reason = override_reason
                .as_deref()
                .map(|r| bounded_lines("override reason", r, MAX_REASON).map(Personal::new))
                .transpose()?;
            let mut recorded_override = None;
            if s.kind == StepKind::Travel {
                if let Err(refusal) = travel_ready(plan) {
                    recorded_override = Some(override_reason.ok_or(refusal)?);
                }
            }
            if s.kind == StepKind::FamilyMediation
                && !plan.has_consent(ConsentPurpose::FamilyContact)
            {
                return Err(PlanError::FamilyContactConsentRequired);
            }
            vec![E::StepStarted {
                step: step.clone(),
                override_reason: recorded_override,
            }]
        }
        C::BlockStep { step, reason } => {
            let s = find_step(plan, step)?;
            if !matches!(
                s.status,
                StepStatus::Pending | StepStatus::Ready | StepStatus::InProgress
            ) {
                return Err(invalid(s, "block"));
            }
            vec![E::StepBlocked {
                step: step.clone(),
                reason: Personal::new(bounded_lines("reason", reason, MAX_REASON)?),
            }]
        }
        C::UnblockStep { step } => {
            let s = find_step(plan, step)?;
            if !matches!(s.status, StepStatus::Blocked { .. }) {
                return Err(invalid(s, "unblock"));
            }
            vec![E::StepUnblocked { step: step.clone() }]
        }
        C::AcknowledgeStep { step } => {
            let s = find_step(plan, step)?;
            if !s.status.is_open() {
                return Err(invalid(s, "acknowledge"));
            }
            if s.acknowledged {
                return Err(PlanError::AlreadyAcknowledged(step.clone()));
            }
            vec![E::StepAcknowledged { step: step.clone() }]
        }
        C::CompleteStep { step } => {
            let s = find_step(plan, step)?;
            match s.status {
                StepStatus::Ready | StepStatus::InProgress => {}
                StepStatus::Pending => return Err(PlanError::DependenciesNotDone(step.clone())),
                _ => return Err(invalid(s, "complete")),
            }
            require_active(plan)?;
            match s.kind {
                StepKind::FollowUp => return Err(PlanError::OutcomeRequired(step.clone())),
                StepKind::Travel if plan.arrived_at.is_none() => {
                    return Err(PlanError::WrongPlanStatus {
                        actual: plan.status,
                        expected: "RETURNED: confirm the arrival to complete travel",
                    })
                }
                // Completing a step that was never started starts it implicitly: the same
                // consent rule applies as for `StartStep`.
                StepKind::FamilyMediation
                    if s.status == StepStatus::Ready
                        && !plan.has_consent(ConsentPurpose::FamilyContact) =>
                {
                    return Err(PlanError::FamilyContactConsentRequired)
                }
                _ => {}
            }
            vec![E::StepCompleted { step: step.clone() }]
        }
        C::CancelStep { step, reason } => {
            open_step(plan, step)?;
            vec![E::StepCancelled {
                step: step.clone(),
                reason: Personal::new(bounded_lines("reason", reason, MAX_REASON)?),
            }]
        }
        C::UpdateDocumentStatus { step, status } => {
            let s = open_step(plan, step)?;
            if s.kind != StepKind::TravelDocument {
                return Err(PlanError::NotADocumentStep {
                    step: step.clone(),
                    kind: s.kind,
                });
            }
            if let Some(current) = s.document_status {
                // A new travel document step is already REQUESTED: a liaison's natural first
                // call. Said as such, with what comes next.
                if *status == current {
                    return Err(PlanError::DocumentStatusUnchanged { current });
                }
                if *status < current {
                    return Err(PlanError::DocumentStatusBackwards {
                        current,
                        requested: *status,
                    });
                }
            }
            vec![E::DocumentStatusUpdated {
                step: step.clone(),
                status: *status,
            }]
        }
        C::RecordConsent { purpose } => {
            if plan.has_consent(*purpose) {
                return Err(PlanError::ConsentAlreadyGiven(purpose_name(purpose)));
            }
            let mut events = vec![E::ConsentRecorded {
                purpose: *purpose,
                at: ctx.now,
                recorded_by: ctx.actor,
            }];
            if *purpose == ConsentPurpose::Return {
                if plan.status == PlanStatus::Draft {
                    events.push(E::PlanActivated);
                }
                if plan.suspended {
                    events.push(E::PlanResumed);
                }
            }
            events
        }
        C::WithdrawConsent { purpose } => {
            if !plan.has_consent(*purpose) {
                return Err(PlanError::ConsentNotGiven(purpose_name(purpose)));
            }
            let mut events = vec![E::ConsentWithdrawn {
                purpose: *purpose,
                at: ctx.now,
                recorded_by: ctx.actor,
            }];
            if *purpose == ConsentPurpose::Return {
                events.push(E::PlanSuspended);
            }
            events
        }
        C::ConfirmDeparture {
            departed_at,
            override_reason,
        } => {
            require_status(plan, PlanStatus::Active)?;
            not_in_future("the departure time", *departed_at, ctx.now)?;
            if *departed_at < plan.opened_at {
                return Err(PlanError::DepartureBeforeOpened {
                    departed_at: *departed_at,
                    opened_at: plan.opened_at,
                });
            }
            let override_reason = override_reason
                .as_deref()
                .map(|r| bounded_lines("override reason", r, MAX_REASON).map(Personal::new))
                .transpose()?;
            let recorded_override = match travel_ready(plan) {
                Ok(()) => None,
                Err(refusal) => Some(override_reason.ok_or(refusal)?),
            };
            vec![E::DepartureConfirmed {
                departed_at: *departed_at,
                override_reason: recorded_override,
            }]
        }
        C::ConfirmArrival { arrived_at } => {
            require_status(plan, PlanStatus::Travelling)?;
            not_in_future("the arrival time", *arrived_at, ctx.now)?;
            if let Some(departed_at) = plan.departed_at {
                if *arrived_at < departed_at {
                    return Err(PlanError::ArrivalBeforeDeparture {
                        arrived_at: *arrived_at,
                        departed_at,
                    });
                }
            }
            let mut events = vec![E::ArrivalConfirmed {
                arrived_at: *arrived_at,
            }];
            events.extend(
                plan.steps
                    .iter()
                    .filter(|s| s.kind == StepKind::Travel && s.status.is_open())
                    .map(|s| E::StepCompleted {
                        step: s.key.clone(),
                    }),
            );
            events
        }
        C::RecordFollowUp {
            step,
            visited_on,
            wellbeing,
            concerns,
        } => {
            let s = find_step(plan, step)?;
            if s.kind != StepKind::FollowUp {
                return Err(PlanError::NotAFollowUp(step.clone()));
            }
            let arrived_at = plan.arrived_at.ok_or(PlanError::FollowUpBeforeArrival)?;
            match s.status {
                StepStatus::Ready | StepStatus::InProgress => {}
                StepStatus::Pending => return Err(PlanError::DependenciesNotDone(step.clone())),
                _ => return Err(invalid(s, "record a follow-up on")),
            }
            let arrived_on = arrived_at.date_naive();
            // A visit dated today where it took place is not in the future: the latest "today"
            // on Earth is the UTC date in UTC+14 (Line Islands).
            if *visited_on < arrived_on {
                return Err(PlanError::FollowUpBeforeArrivalDate {
                    visited_on: *visited_on,
                    arrived_on,
                });
            }
            let today = (ctx.now + LATEST_UTC_OFFSET).date_naive();
            if *visited_on > today {
                return Err(PlanError::FollowUpInTheFuture {
                    visited_on: *visited_on,
                    today,
                });
            }
            let mut concerns = concerns.clone();
            concerns.sort();
            concerns.dedup();
            let mut events = vec![
                E::FollowUpRecorded {
                    step: step.clone(),
                    outcome: super::state::FollowUpOutcome {
                        visited_on: *visited_on,
                        wellbeing: Personal::new(*wellbeing),
                        concerns: Personal::new(concerns),
                    },
                },
                E::StepCompleted { step: step.clone() },
            ];
            if plan.status == PlanStatus::Returned {
                events.push(E::MonitoringStarted);
            }
            events
        }
        C::ReassignCaseWorker { case_worker } => {
            if *case_worker == plan.case_worker {
                return Err(PlanError::AlreadyCaseWorker);
            }
            vec![E::CaseWorkerReassigned {
                from: plan.case_worker,
                to: *case_worker,
            }]
        }
        C::ClosePlan { reason } => {
            if *reason == CloseReason::Reintegrated
                && !matches!(plan.status, PlanStatus::Returned | PlanStatus::Monitoring)
            {
                return Err(PlanError::NotYetReturned);
            }
            vec![E::PlanClosed {
                reason: *reason,
                closed_at: ctx.now,
            }]
        }
        C::RecordReminderSent {
            step,
            kind,
            fire_at,
            recipient,
        } => {
            let s = find_step(plan, step)?;
            if s.reminder_recorded(*kind, *fire_at) {
                return Err(PlanError::ReminderAlreadyRecorded);
            }
            let (step, kind, fire_at, recipient) = (step.clone(), *kind, *fire_at, *recipient);
            if kind == ReminderKind::Escalation {
                vec![E::StepEscalated {
                    step,
                    kind,
                    fire_at,
                    recipient,
                }]
            } else {
                vec![E::ReminderSent {
                    step,
                    kind,
                    fire_at,
                    recipient,
                }]
            }
        }
        C::RecordReminderFailed {
            step,
            kind,
            fire_at,
            recipient,
            reason,
        } => {
            let s = find_step(plan, step)?;
            if s.reminder_recorded(*kind, *fire_at) {
                return Err(PlanError::ReminderAlreadyRecorded);
            }
            vec![E::ReminderFailed {
                step: step.clone(),
                kind: *kind,
                fire_at: *fire_at,
                recipient: *recipient,
                // A mail server's words: what no field may hold becomes a space, not a refusal
                // of the record that the reminder failed.
                reason: Personal::new(bounded("failure reason", &one_line(reason), MAX_REASON)?),
            }]
        }
    })
}

fn open_plan(command: &PlanCommand, ctx: &Context) -> Result<Vec<PlanEvent>, PlanError> {
    let PlanCommand::OpenPlan {
        plan_id,
        person,
        template,
        case_worker,
        organisation,
        origin_country,
        follow_up_offsets_days,
    } = command
    else {
        unreachable!("open_plan is only called with OpenPlan")
    };
    let offsets = follow_up_offsets_days
        .as_deref()
        .unwrap_or(&template.follow_up_offsets_days);
    if offsets.len() > 24 {
        return Err(too_many("follow-up offsets", offsets.len(), 24));
    }
    for &days in offsets {
        check_range("follow-up offset (days)", days, 1, MAX_OFFSET_DAYS)?;
    }
    let mut events = vec![PlanEvent::PlanOpened(PlanOpened {
        plan_id: *plan_id,
        person: *person,
        template: template.reference(),
        case_worker: *case_worker,
        organisation: *organisation,
        origin_country: origin_country.clone(),
        opened_at: ctx.now,
    })];
    events.extend(
        template
            .step_definitions(offsets)
            .into_iter()
            .map(|step| PlanEvent::StepAdded { step }),
    );
    Ok(events)
}

fn validate_new_step(plan: &Plan, new: &NewStep) -> Result<StepDefinition, PlanError> {
    if plan.step(&new.key).is_some() {
        return Err(PlanError::DuplicateStep(new.key.clone()));
    }
    if plan.steps.len() >= MAX_STEPS {
        return Err(too_many("steps", plan.steps.len() + 1, MAX_STEPS));
    }
    validate_dependencies(plan, &new.key, &new.depends_on)?;
    let due = new
        .due
        .as_ref()
        .map(|rule| validate_due(plan, rule))
        .transpose()?;
    let reminder_policy = new.reminder_policy.unwrap_or_default();
    validate_policy(&reminder_policy)?;
    Ok(StepDefinition {
        key: new.key.clone(),
        kind: new.kind,
        title: Personal::new(bounded("title", &new.title, MAX_TITLE)?),
        assignee: new.assignee,
        candidate_group: new
            .candidate_group
            .as_deref()
            .map(|g| bounded("candidate group", g, MAX_GROUP))
            .transpose()?,
        priority: new.priority,
        due,
        follow_up_on: new.follow_up_on,
        depends_on: dedup(&new.depends_on),
        reminder_policy,
    })
}

/// Dependencies must name steps of this plan and must not close a cycle.
fn validate_dependencies(
    plan: &Plan,
    step: &StepKey,
    depends_on: &[StepKey],
) -> Result<(), PlanError> {
    if depends_on.len() > MAX_DEPENDENCIES {
        return Err(too_many("dependencies", depends_on.len(), MAX_DEPENDENCIES));
    }
    for dep in depends_on {
        if dep == step {
            return Err(PlanError::DependencyCycle(step.clone()));
        }
        if plan.step(dep).is_none() {
            return Err(PlanError::UnknownDependency {
                step: step.clone(),
                missing: dep.clone(),
            });
        }
    }
    let graph = plan.steps.iter().map(|s| {
        if &s.key == step {
            (&s.key, depends_on)
        } else {
            (&s.key, s.depends_on.as_slice())
        }
    });
    match find_cycle(graph) {
        Some(key) => Err(PlanError::DependencyCycle(key)),
        None => Ok(()),
    }
}

/// Checks a due rule and returns it as it is recorded: an absolute rule names its zone in the
/// canonical spelling (`" europe/paris"` becomes `Europe/Paris`), so that [`resolve_local`]
/// resolves it when the event is folded.
fn validate_due(plan: &Plan, rule: &DueRule) -> Result<DueRule, PlanError> {
    match rule {
        DueRule::At { local, time_zone } => {
            let time_zone = crate::text::time_zone(time_zone)?.name().to_owned();
            let due_at = resolve_local(local, &time_zone).ok_or_else(|| {
                PlanError::NonexistentLocalTime {
                    local: local.to_string(),
                    time_zone: time_zone.clone(),
                }
            })?;
            if due_at < plan.opened_at {
                return Err(PlanError::DueBeforeOpened {
                    due_at,
                    opened_at: plan.opened_at,
                });
            }
            Ok(DueRule::At {
                local: *local,
                time_zone,
            })
        }
        DueRule::After { days, .. } => {
            check_range("days after milestone", *days, 0, MAX_OFFSET_DAYS)?;
            Ok(rule.clone())
        }
    }
}

fn validate_policy(policy: &ReminderPolicy) -> Result<(), PlanError> {
    if let Some(d) = policy.before_due_days {
        check_range("days before due", d, 1, MAX_REMINDER_DAYS)?;
    }
    if let Some(d) = policy.overdue_every_days {
        check_range("overdue reminder interval (days)", d, 1, MAX_REMINDER_DAYS)?;
    }
    if let Some(d) = policy.escalate_after_days {
        check_range("escalation delay (days)", d, 1, MAX_REMINDER_DAYS)?;
    }
    Ok(())
}

/// The preconditions of travel: an origin-country contact designated and a travel document issued.
fn travel_ready(plan: &Plan) -> Result<(), PlanError> {
    if !plan.origin_contact_designated() {
        return Err(PlanError::TravelNotReady {
            missing: "an origin-country contact is designated",
        });
    }
    if !plan.travel_document_issued() {
        return Err(PlanError::TravelNotReady {
            missing: "the travel document is issued",
        });
    }
    Ok(())
}

fn require_active(plan: &Plan) -> Result<(), PlanError> {
    if plan.status == PlanStatus::Draft {
        return Err(PlanError::ConsentRequired);
    }
    Ok(())
}

fn require_status(plan: &Plan, status: PlanStatus) -> Result<(), PlanError> {
    if plan.status == PlanStatus::Draft {
        return Err(PlanError::ConsentRequired);
    }
    if plan.status != status {
        return Err(PlanError::WrongPlanStatus {
            actual: plan.status,
            expected: status.api_name(),
        });
    }
    Ok(())
}

fn not_in_future(
    what: &'static str,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), PlanError> {
    if at > now + CLOCK_SKEW {
        return Err(PlanError::InTheFuture(what));
    }
    Ok(())
}

fn find_step<'a>(plan: &'a Plan, key: &StepKey) -> Result<&'a Step, PlanError> {
    plan.step(key)
        .ok_or_else(|| PlanError::UnknownStep(key.clone()))
}

/// A step that still has work to do; changing a finished step is refused.
fn open_step<'a>(plan: &'a Plan, key: &StepKey) -> Result<&'a Step, PlanError> {
    let s = find_step(plan, key)?;
    if !s.status.is_open() {
        return Err(invalid(s, "change"));
    }
    Ok(s)
}

fn invalid(step: &Step, action: &'static str) -> PlanError {
    PlanError::InvalidStepTransition {
        step: step.key.clone(),
        status: step.status.api_name(),
        action,
    }
}

fn check_range(field: &'static str, value: u32, min: u32, max: u32) -> Result<(), PlanError> {
    if value < min || value > max {
        return Err(PlanError::OutOfRange {
            field,
            value: i64::from(value),
            min: i64::from(min),
            max: i64::from(max),
        });
    }
    Ok(())
}

fn too_many(field: &'static str, len: usize, max: usize) -> PlanError {
    PlanError::TooMany { field, len, max }
}

fn dedup(keys: &[StepKey]) -> Vec<StepKey> {
    let mut out: Vec<StepKey> = Vec::with_capacity(keys.len());
    for k in keys {
        if !out.contains(k) {
            out.push(k.clone());
        }
    }
    out
}

fn purpose_name(purpose: &ConsentPurpose) -> &'static str {
    match purpose {
        ConsentPurpose::Return => "RETURN",
        ConsentPurpose::DataSharing { .. } => "DATA_SHARING with this partner",
        ConsentPurpose::FamilyContact => "FAMILY_CONTACT",
    }
}
