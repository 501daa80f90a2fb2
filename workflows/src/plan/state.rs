//! Plan state and `apply`, the fold of one event. `apply` never fails: events are facts.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use super::event::{PlanEvent, StepDefinition};
use crate::ids::{OrganisationId, PartyId, PersonId, PlanId, StepKey};
use crate::personal::Personal;
use crate::text::CountryCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    Draft,
    Active,
    Travelling,
    Returned,
    Monitoring,
    Closed,
}

impl PlanStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// As the API spells it (`TRAVELLING`): what messages to its users say.
    pub fn api_name(self) -> &'static str {
        match self {
            Self::Draft => "DRAFT",
            Self::Active => "ACTIVE",
            Self::Travelling => "TRAVELLING",
            Self::Returned => "RETURNED",
            Self::Monitoring => "MONITORING",
            Self::Closed => "CLOSED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    Reintegrated,
    SupportEnded,
    OptedOut,
    MovedAway,
    LostContact,
    Deceased,
    Other,
}

/// What a consent is for. Each purpose is recorded and withdrawn on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "purpose")]
pub enum ConsentPurpose {
    /// Informed consent to voluntary return: without it the plan cannot be active.
    Return,
    /// Sharing case data with one named partner (party).
    DataSharing { partner: PartyId },
    /// Contacting the survivor's family (family mediation).
    FamilyContact,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub purpose: ConsentPurpose,
    pub given: bool,
    pub at: DateTime<Utc>,
    pub recorded_by: PartyId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateRef {
    pub name: String,
    pub version: u32,
}

/// A goal the survivor set for their reintegration. Free text about the person's life belongs in
/// the person stream; a goal is short and names an area and an aim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Goal {
    pub area: ConcernArea,
    pub aim: Personal<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Passport or another travel document (laissez-passer).
    TravelDocument,
    Travel,
    FamilyMediation,
    /// A named contact person in the community of origin: required before travel.
    OriginContact,
    FollowUp,
    Medical,
    Legal,
    /// Training, business, housing, schooling.
    ReintegrationSupport,
    Custom,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// As the API spells it (`TRAVEL_DOCUMENT`).
    pub fn api_name(self) -> &'static str {
        match self {
            Self::TravelDocument => "TRAVEL_DOCUMENT",
            Self::Travel => "TRAVEL",
            Self::FamilyMediation => "FAMILY_MEDIATION",
            Self::OriginContact => "ORIGIN_CONTACT",
            Self::FollowUp => "FOLLOW_UP",
            Self::Medical => "MEDICAL",
            Self::Legal => "LEGAL",
            Self::ReintegrationSupport => "REINTEGRATION_SUPPORT",
            Self::Custom => "CUSTOM",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl Priority {
    /// Sort rank: urgent first.
    pub fn rank(self) -> i16 {
        match self {
            Self::Urgent => 0,
            Self::High => 1,
            Self::Normal => 2,
            Self::Low => 3,
        }
    }
}

/// A milestone a due date can be relative to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Milestone {
    PlanOpened,
    Departure,
    Arrival,
}

/// When a step is due: an absolute local date-time in an IANA time zone, or a number of days
/// after a milestone, resolved when the milestone happens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "rule")]
pub enum DueRule {
    At {
        local: NaiveDateTime,
        time_zone: String,
    },
    After {
        milestone: Milestone,
        days: u32,
    },
}

/// Who gets reminded when, relative to the due date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderPolicy {
    /// Remind the assignee this many days before the due date.
    pub before_due_days: Option<u32>,
    /// Remind the assignee on the due date.
    pub on_due: bool,
    /// Once overdue, remind again every N days.
    pub overdue_every_days: Option<u32>,
    /// Escalate to the case worker's supervisor after M days overdue.
    pub escalate_after_days: Option<u32>,
}

impl Default for ReminderPolicy {
    fn default() -> Self {
        Self {
            before_due_days: Some(3),
            on_due: true,
            overdue_every_days: Some(7),
            escalate_after_days: Some(14),
        }
    }
}

/// Where a travel document is with the authorities. Only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentStatus {
    Requested,
    SubmittedToAuthority,
    Issued,
    Delivered,
}

impl DocumentStatus {
    /// As the API spells it (`SUBMITTED_TO_AUTHORITY`).
    pub fn api_name(self) -> &'static str {
        match self {
            Self::Requested => "REQUESTED",
            Self::SubmittedToAuthority => "SUBMITTED_TO_AUTHORITY",
            Self::Issued => "ISSUED",
            Self::Delivered => "DELIVERED",
        }
    }

    /// What to set next, in words for a message.
    pub fn next_step(self) -> &'static str {
        match self {
            Self::Requested => "set SUBMITTED_TO_AUTHORITY once it is submitted",
            Self::SubmittedToAuthority => "set ISSUED once it is issued",
            Self::Issued => "set DELIVERED once the survivor has it",
            Self::Delivered => "nothing more to record",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum StepStatus {
    /// Waiting for its dependencies.
    Pending,
    /// All dependencies done (or cancelled): can be started.
    Ready,
    InProgress,
    Done,
    Blocked {
        reason: Personal<String>,
        was_started: bool,
    },
    Cancelled {
        reason: Personal<String>,
    },
}

impl StepStatus {
    pub fn as_str(&self) -> &'static str {
        self.into()
    }

    /// As the API spells it (`IN_PROGRESS`).
    pub fn api_name(&self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Ready => "READY",
            Self::InProgress => "IN_PROGRESS",
            Self::Done => "DONE",
            Self::Blocked { .. } => "BLOCKED",
            Self::Cancelled { .. } => "CANCELLED",
        }
    }

    /// Still work to do: reminders apply.
    pub fn is_open(&self) -> bool {
        !matches!(self, Self::Done | Self::Cancelled { .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wellbeing {
    Good,
    Fair,
    Poor,
    AtRisk,
}

/// Areas of concern (and of goals). Structured on purpose: free-text notes are personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConcernArea {
    Safety,
    Health,
    Housing,
    Income,
    Education,
    Family,
    Legal,
    Stigma,
    Other,
}

/// What a follow-up visit found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUpOutcome {
    pub visited_on: NaiveDate,
    pub wellbeing: Personal<Wellbeing>,
    pub concerns: Personal<Vec<ConcernArea>>,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ReminderKind {
    BeforeDue,
    OnDue,
    Overdue,
    Escalation,
    /// To the case worker: a month after arrival, the reintegration plan is not yet done.
    ReintegrationPlanDue,
}

impl ReminderKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A reminder that went out (or, with `failed`, could not be delivered after every attempt),
/// so it is not armed again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentReminder {
    pub kind: ReminderKind,
    pub fire_at: DateTime<Utc>,
    /// Why delivery failed, for a reminder that never arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<Personal<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub key: StepKey,
    pub kind: StepKind,
    pub title: Personal<String>,
    pub assignee: Option<PartyId>,
    pub candidate_group: Option<String>,
    pub priority: Priority,
    pub due: Option<DueRule>,
    /// The due instant, once the rule can be resolved (relative rules wait for their milestone).
    pub due_at: Option<DateTime<Utc>>,
    pub follow_up_on: Option<NaiveDate>,
    pub depends_on: Vec<StepKey>,
    pub reminder_policy: ReminderPolicy,
    pub status: StepStatus,
    pub document_status: Option<DocumentStatus>,
    pub outcome: Option<FollowUpOutcome>,
    /// The recorded reason when a rule was overridden to start this step.
    pub override_reason: Option<Personal<String>>,
    pub reminders_sent: Vec<SentReminder>,
    /// The assignee acknowledged the task.
    #[serde(default)]
    pub acknowledged: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub id: PlanId,
    /// Number of events folded into this state (the stream version).
    pub version: u64,
    pub person: PersonId,
    pub template: TemplateRef,
    pub case_worker: PartyId,
    pub organisation: OrganisationId,
    pub origin_country: CountryCode,
    pub status: PlanStatus,
    /// Consent to return was withdrawn: nothing moves and nothing is sent until it is given again.
    pub suspended: bool,
    pub opened_at: DateTime<Utc>,
    pub departed_at: Option<DateTime<Utc>>,
    pub arrived_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub close_reason: Option<CloseReason>,
    pub goals: Vec<Goal>,
    /// The latest consent decision per purpose.
    pub consents: Vec<Consent>,
    /// Steps in the order they were added.
    pub steps: Vec<Step>,
}

impl Step {
    /// Whether the reminder of `kind` due at `fire_at` went out (or was given up) already.
    pub fn reminder_recorded(&self, kind: ReminderKind, fire_at: DateTime<Utc>) -> bool {
        self.reminders_sent
            .iter()
            .any(|r| r.kind == kind && r.fire_at == fire_at)
    }
}

impl Plan {
    pub fn step(&self, key: &StepKey) -> Option<&Step> {
        self.steps.iter().find(|s| &s.key == key)
    }

    fn step_mut(&mut self, key: &StepKey) -> Option<&mut Step> {
        self.steps.iter_mut().find(|s| &s.key == key)
    }

    /// Whether `other` has the same steps, by key and in the same order (their contents may
    /// differ): every command but adding and removing steps keeps them so.
    pub fn has_same_steps_as(&self, other: &Plan) -> bool {
        self.steps.len() == other.steps.len()
            && self
                .steps
                .iter()
                .zip(&other.steps)
                .all(|(a, b)| a.key == b.key)
    }

    pub fn consent(&self, purpose: ConsentPurpose) -> Option<&Consent> {
        self.consents.iter().find(|c| c.purpose == purpose)
    }

    pub fn has_consent(&self, purpose: ConsentPurpose) -> bool {
        self.consent(purpose).is_some_and(|c| c.given)
    }

    pub fn milestone_at(&self, milestone: Milestone) -> Option<DateTime<Utc>> {
        match milestone {
            Milestone::PlanOpened => Some(self.opened_at),
            Milestone::Departure => self.departed_at,
            Milestone::Arrival => self.arrived_at,
        }
    }

    /// The due instant of a rule, if it can be known yet. `None` for a local time that does not
    /// exist in its zone is impossible here: `decide` rejects those before they become events.
    pub fn resolve_due(&self, rule: &DueRule) -> Option<DateTime<Utc>> {
        match rule {
            DueRule::At { local, time_zone } => resolve_local(local, time_zone),
            DueRule::After { milestone, days } => self
                .milestone_at(*milestone)
                .map(|at| at + Duration::days(i64::from(*days))),
        }
    }

    /// Whether every dependency of `step` is done or cancelled.
    pub fn dependencies_done(&self, step: &Step) -> bool {
        step.depends_on.iter().all(|dep| {
            self.step(dep)
                .is_none_or(|d| matches!(d.status, StepStatus::Done | StepStatus::Cancelled { .. }))
        })
    }

    /// An origin-country contact is designated (its step is done).
    pub fn origin_contact_designated(&self) -> bool {
        self.steps
            .iter()
            .any(|s| s.kind == StepKind::OriginContact && s.status == StepStatus::Done)
    }

    /// A travel document has been issued (or its step is done).
    pub fn travel_document_issued(&self) -> bool {
        self.steps.iter().any(|s| {
            s.kind == StepKind::TravelDocument
                && (s.status == StepStatus::Done
                    || s.document_status
                        .is_some_and(|d| d >= DocumentStatus::Issued))
        })
    }

    /// Steps whose due date has passed at `now` and are still open.
    pub fn overdue_steps(&self, now: DateTime<Utc>) -> impl Iterator<Item = &Step> {
        self.steps
            .iter()
            .filter(move |s| s.status.is_open() && s.due_at.is_some_and(|d| d < now))
    }

    /// The earliest due date among open steps.
    pub fn next_due_at(&self) -> Option<DateTime<Utc>> {
        self.steps
            .iter()
            .filter(|s| s.status.is_open())
            .filter_map(|s| s.due_at)
            .min()
    }

    /// Moves pending steps whose dependencies are done to ready, and back if a dependency reopened.
    fn refresh_readiness(&mut self) {
        let ready: Vec<bool> = self
            .steps
            .iter()
            .map(|s| self.dependencies_done(s))
            .collect();
        for (step, ready) in self.steps.iter_mut().zip(ready) {
            match (&step.status, ready) {
                (StepStatus::Pending, true) => step.status = StepStatus::Ready,
                (StepStatus::Ready, false) => step.status = StepStatus::Pending,
                _ => {}
            }
        }
    }

    /// Resolves relative due dates that wait on a milestone that just happened.
    fn resolve_relative_dues(&mut self) {
        let resolved: Vec<Option<DateTime<Utc>>> = self
            .steps
            .iter()
            .map(|s| s.due.as_ref().and_then(|r| self.resolve_due(r)))
            .collect();
        for (step, due_at) in self.steps.iter_mut().zip(resolved) {
            step.due_at = due_at;
        }
    }

    fn step_from_definition(&self, def: &StepDefinition) -> Step {
        Step {
            key: def.key.clone(),
            kind: def.kind,
            title: def.title.clone(),
            assignee: def.assignee,
            candidate_group: def.candidate_group.clone(),
            priority: def.priority,
            due: def.due.clone(),
            due_at: def.due.as_ref().and_then(|r| self.resolve_due(r)),
            follow_up_on: def.follow_up_on,
            depends_on: def.depends_on.clone(),
            reminder_policy: def.reminder_policy,
            status: StepStatus::Pending,
            document_status: (def.kind == StepKind::TravelDocument)
                .then_some(DocumentStatus::Requested),
            outcome: None,
            override_reason: None,
            reminders_sent: Vec::new(),
            acknowledged: false,
        }
    }
}

/// Converts a local date-time in an IANA zone to UTC. In a DST fold the earlier instant is taken;
/// a local time that does not exist (DST gap) or an unknown zone gives `None`.
pub fn resolve_local(local: &NaiveDateTime, time_zone: &str) -> Option<DateTime<Utc>> {
    use chrono::TimeZone;
    let tz: chrono_tz::Tz = time_zone.parse().ok()?;
    tz.from_local_datetime(local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// Folds one event into the plan state.
pub(crate) fn apply(state: Option<Plan>, event: &PlanEvent) -> Option<Plan> {
    let mut plan = match (state, event) {
        (None, PlanEvent::PlanOpened(e)) => {
            return Some(Plan {
                id: e.plan_id,
                version: 1,
                person: e.person,
                template: e.template.clone(),
                case_worker: e.case_worker,
                organisation: e.organisation,
                origin_country: e.origin_country.clone(),
                status: PlanStatus::Draft,
                suspended: false,
                opened_at: e.opened_at,
                departed_at: None,
                arrived_at: None,
                closed_at: None,
                close_reason: None,
                goals: Vec::new(),
                consents: Vec::new(),
                steps: Vec::new(),
            })
        }
        // An event for a stream that was never opened cannot be folded; decide never emits one.
        (None, _) => return None,
        (Some(plan), _) => plan,
    };
    plan.version += 1;
    match event {
        PlanEvent::PlanOpened(_) => {}
        PlanEvent::GoalsSet { goals } => plan.goals = goals.clone(),
        PlanEvent::StepAdded { step } => {
            let new = plan.step_from_definition(step);
            plan.steps.push(new);
            plan.refresh_readiness();
        }
        PlanEvent::StepRemoved { step, .. } => {
            plan.steps.retain(|s| &s.key != step);
            plan.refresh_readiness();
        }
        PlanEvent::StepAssigned {
            step,
            assignee,
            candidate_group,
        } => {
            if let Some(s) = plan.step_mut(step) {
                // An acknowledgement is the assignee's: a new assignee has not seen it yet.
                if s.assignee != *assignee {
                    s.acknowledged = false;
                }
                s.assignee = *assignee;
                s.candidate_group = candidate_group.clone();
            }
        }
        PlanEvent::StepRescheduled {
            step,
            due,
            follow_up_on,
        } => {
            let due_at = due.as_ref().and_then(|r| plan.resolve_due(r));
            if let Some(s) = plan.step_mut(step) {
                s.due = due.clone();
                s.due_at = due_at;
                s.follow_up_on = *follow_up_on;
            }
        }
        PlanEvent::StepDependenciesChanged { step, depends_on } => {
            if let Some(s) = plan.step_mut(step) {
                s.depends_on = depends_on.clone();
            }
            plan.refresh_readiness();
        }
        PlanEvent::StepPrioritised { step, priority } => {
            if let Some(s) = plan.step_mut(step) {
                s.priority = *priority;
            }
        }
        PlanEvent::ReminderPolicySet { step, policy } => {
            if let Some(s) = plan.step_mut(step) {
                s.reminder_policy = *policy;
            }
        }
        PlanEvent::StepStarted {
            step,
            override_reason,
        } => {
            if let Some(s) = plan.step_mut(step) {
                s.status = StepStatus::InProgress;
                s.override_reason = override_reason.clone();
            }
        }
        PlanEvent::StepBlocked { step, reason } => {
            if let Some(s) = plan.step_mut(step) {
                let was_started = s.status == StepStatus::InProgress;
                s.status = StepStatus::Blocked {
                    reason: reason.clone(),
                    was_started,
                };
            }
        }
        PlanEvent::StepUnblocked { step } => {
            if let Some(s) = plan.step_mut(step) {
                if let StepStatus::Blocked { was_started, .. } = s.status {
                    s.status = if was_started {
                        StepStatus::InProgress
                    } else {
                        StepStatus::Pending
                    };
                }
            }
            plan.refresh_readiness();
        }
        PlanEvent::StepAcknowledged { step } => {
            if let Some(s) = plan.step_mut(step) {
                s.acknowledged = true;
            }
        }
        PlanEvent::StepCompleted { step } => {
            if let Some(s) = plan.step_mut(step) {
                s.status = StepStatus::Done;
            }
            plan.refresh_readiness();
        }
        PlanEvent::StepCancelled { step, reason } => {
            if let Some(s) = plan.step_mut(step) {
                s.status = StepStatus::Cancelled {
                    reason: reason.clone(),
                };
            }
            plan.refresh_readiness();
        }
        PlanEvent::DocumentStatusUpdated { step, status } => {
            if let Some(s) = plan.step_mut(step) {
                s.document_status = Some(*status);
            }
        }
        PlanEvent::ConsentRecorded {
            purpose,
            at,
            recorded_by,
        } => set_consent(&mut plan, *purpose, true, *at, *recorded_by),
        PlanEvent::ConsentWithdrawn {
            purpose,
            at,
            recorded_by,
        } => set_consent(&mut plan, *purpose, false, *at, *recorded_by),
        PlanEvent::PlanActivated => plan.status = PlanStatus::Active,
        PlanEvent::PlanSuspended => plan.suspended = true,
        PlanEvent::PlanResumed => plan.suspended = false,
        PlanEvent::DepartureConfirmed { departed_at, .. } => {
            plan.status = PlanStatus::Travelling;
            plan.departed_at = Some(*departed_at);
            plan.resolve_relative_dues();
        }
        PlanEvent::ArrivalConfirmed { arrived_at } => {
            plan.status = PlanStatus::Returned;
            plan.arrived_at = Some(*arrived_at);
            plan.resolve_relative_dues();
        }
        PlanEvent::FollowUpRecorded { step, outcome } => {
            if let Some(s) = plan.step_mut(step) {
                s.outcome = Some(outcome.clone());
            }
        }
        PlanEvent::MonitoringStarted => plan.status = PlanStatus::Monitoring,
        PlanEvent::PlanClosed { reason, closed_at } => {
            plan.status = PlanStatus::Closed;
            plan.close_reason = Some(*reason);
            plan.closed_at = Some(*closed_at);
        }
        PlanEvent::CaseWorkerReassigned { to, .. } => plan.case_worker = *to,
        PlanEvent::ReminderSent {
            step,
            kind,
            fire_at,
            ..
        }
        | PlanEvent::StepEscalated {
            step,
            kind,
            fire_at,
            ..
        } => {
            if let Some(s) = plan.step_mut(step) {
                s.reminders_sent.push(SentReminder {
                    kind: *kind,
                    fire_at: *fire_at,
                    failed: None,
                });
            }
        }
        PlanEvent::ReminderFailed {
            step,
            kind,
            fire_at,
            reason,
            ..
        } => {
            if let Some(s) = plan.step_mut(step) {
                s.reminders_sent.push(SentReminder {
                    kind: *kind,
                    fire_at: *fire_at,
                    failed: Some(reason.clone()),
                });
            }
        }
    }
    Some(plan)
}

fn set_consent(
    plan: &mut Plan,
    purpose: ConsentPurpose,
    given: bool,
    at: DateTime<Utc>,
    recorded_by: PartyId,
) {
    let consent = Consent {
        purpose,
        given,
        at,
        recorded_by,
    };
    match plan.consents.iter_mut().find(|c| c.purpose == purpose) {
        Some(c) => *c = consent,
        None => plan.consents.push(consent),
    }
}
