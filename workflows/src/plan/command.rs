//! What people ask of a plan. Commands carry raw-ish input; `decide` validates it.

use chrono::{DateTime, NaiveDate, Utc};

use super::state::{
    CloseReason, ConcernArea, ConsentPurpose, DocumentStatus, DueRule, Goal, Priority,
    ReminderKind, ReminderPolicy, StepKind, Wellbeing,
};
use crate::ids::{OrganisationId, PartyId, PersonId, PlanId, StepKey};
use crate::template::Template;
use crate::text::CountryCode;

/// A step to add to a running plan (personalisation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStep {
    pub key: StepKey,
    pub kind: StepKind,
    pub title: String,
    pub assignee: Option<PartyId>,
    pub candidate_group: Option<String>,
    pub priority: Priority,
    pub due: Option<DueRule>,
    pub follow_up_on: Option<NaiveDate>,
    pub depends_on: Vec<StepKey>,
    pub reminder_policy: Option<ReminderPolicy>,
}

/// Named in snake case (`complete_step`) for metrics and logs.
#[derive(Debug, Clone, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum PlanCommand {
    /// Opens a plan from a template version. The template's steps become `StepAdded` events, so
    /// later template versions never rewrite this plan.
    OpenPlan {
        plan_id: PlanId,
        person: PersonId,
        template: Box<Template>,
        case_worker: PartyId,
        organisation: OrganisationId,
        origin_country: CountryCode,
        /// The programme's follow-up offsets (days after arrival); the template's when `None`.
        follow_up_offsets_days: Option<Vec<u32>>,
    },
    SetGoals {
        goals: Vec<Goal>,
    },
    AddStep(Box<NewStep>),
    RemoveStep {
        step: StepKey,
        reason: String,
    },
    AssignStep {
        step: StepKey,
        assignee: Option<PartyId>,
        candidate_group: Option<String>,
    },
    RescheduleStep {
        step: StepKey,
        due: Option<DueRule>,
        follow_up_on: Option<NaiveDate>,
    },
    /// Replaces the steps this one waits for. Cycles are refused.
    ChangeDependencies {
        step: StepKey,
        depends_on: Vec<StepKey>,
    },
    PrioritiseStep {
        step: StepKey,
        priority: Priority,
    },
    SetReminderPolicy {
        step: StepKey,
        policy: ReminderPolicy,
    },
    /// Starts a ready step. `override_reason` lets a coordinator start travel before its
    /// preconditions are met; the reason is recorded.
    StartStep {
        step: StepKey,
        override_reason: Option<String>,
    },
    BlockStep {
        step: StepKey,
        reason: String,
    },
    UnblockStep {
        step: StepKey,
    },
    CompleteStep {
        step: StepKey,
    },
    /// The assignee says they have seen the task and taken it on (a partner does this from the
    /// link in a reminder).
    AcknowledgeStep {
        step: StepKey,
    },
    CancelStep {
        step: StepKey,
        reason: String,
    },
    UpdateDocumentStatus {
        step: StepKey,
        status: DocumentStatus,
    },
    RecordConsent {
        purpose: ConsentPurpose,
    },
    WithdrawConsent {
        purpose: ConsentPurpose,
    },
    ConfirmDeparture {
        departed_at: DateTime<Utc>,
        override_reason: Option<String>,
    },
    ConfirmArrival {
        arrived_at: DateTime<Utc>,
    },
    RecordFollowUp {
        step: StepKey,
        visited_on: NaiveDate,
        wellbeing: Wellbeing,
        concerns: Vec<ConcernArea>,
    },
    ClosePlan {
        reason: CloseReason,
    },
    /// Hands the plan over to another social worker (a supervisor does, when a worker leaves
    /// or moves, or to share the load). Suspended plans may be handed over too.
    ReassignCaseWorker {
        case_worker: PartyId,
    },
    /// The scheduler reports a reminder it delivered (escalations included).
    RecordReminderSent {
        step: StepKey,
        kind: ReminderKind,
        fire_at: DateTime<Utc>,
        recipient: PartyId,
    },
    /// The scheduler gives up on a reminder it could not deliver.
    RecordReminderFailed {
        step: StepKey,
        kind: ReminderKind,
        fire_at: DateTime<Utc>,
        recipient: PartyId,
        reason: String,
    },
}
