//! Plan events: past-tense facts. Each has a stable `event_type` string; payload versions are
//! upcast on read (see [`crate::upcast`]).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::state::{
    CloseReason, ConsentPurpose, DocumentStatus, DueRule, FollowUpOutcome, Goal, Priority,
    ReminderKind, ReminderPolicy, StepKind, TemplateRef,
};
use crate::aggregate::DomainEvent;
use crate::ids::{OrganisationId, PartyId, PersonId, PlanId, StepKey};
use crate::personal::Personal;
use crate::text::CountryCode;

/// Everything needed to add a step. Used by templates, by personalisation and in `StepAdded`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepDefinition {
    pub key: StepKey,
    pub kind: StepKind,
    pub title: Personal<String>,
    pub assignee: Option<PartyId>,
    pub candidate_group: Option<String>,
    pub priority: Priority,
    pub due: Option<DueRule>,
    pub follow_up_on: Option<NaiveDate>,
    pub depends_on: Vec<StepKey>,
    pub reminder_policy: ReminderPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOpened {
    pub plan_id: PlanId,
    pub person: PersonId,
    pub template: TemplateRef,
    pub case_worker: PartyId,
    pub organisation: OrganisationId,
    pub origin_country: CountryCode,
    pub opened_at: DateTime<Utc>,
}

/// The serde name of each variant is its stored `event_type`: keep them stable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlanEvent {
    #[serde(rename = "plan_opened")]
    PlanOpened(PlanOpened),
    #[serde(rename = "goals_set")]
    GoalsSet { goals: Vec<Goal> },
    #[serde(rename = "step_added")]
    StepAdded { step: StepDefinition },
    #[serde(rename = "step_removed")]
    StepRemoved {
        step: StepKey,
        reason: Personal<String>,
    },
    #[serde(rename = "step_assigned")]
    StepAssigned {
        step: StepKey,
        assignee: Option<PartyId>,
        candidate_group: Option<String>,
    },
    #[serde(rename = "step_rescheduled")]
    StepRescheduled {
        step: StepKey,
        due: Option<DueRule>,
        follow_up_on: Option<NaiveDate>,
    },
    #[serde(rename = "step_dependencies_changed")]
    StepDependenciesChanged {
        step: StepKey,
        depends_on: Vec<StepKey>,
    },
    #[serde(rename = "step_prioritised")]
    StepPrioritised { step: StepKey, priority: Priority },
    #[serde(rename = "reminder_policy_set")]
    ReminderPolicySet {
        step: StepKey,
        policy: ReminderPolicy,
    },
    #[serde(rename = "step_started")]
    StepStarted {
        step: StepKey,
        /// Set when a rule (travel readiness) was overridden: the recorded reason.
        override_reason: Option<Personal<String>>,
    },
    #[serde(rename = "step_blocked")]
    StepBlocked {
        step: StepKey,
        reason: Personal<String>,
    },
    #[serde(rename = "step_unblocked")]
    StepUnblocked { step: StepKey },
    #[serde(rename = "step_completed")]
    StepCompleted { step: StepKey },
    #[serde(rename = "step_acknowledged")]
    StepAcknowledged { step: StepKey },
    #[serde(rename = "step_cancelled")]
    StepCancelled {
        step: StepKey,
        reason: Personal<String>,
    },
    #[serde(rename = "document_status_updated")]
    DocumentStatusUpdated {
        step: StepKey,
        status: DocumentStatus,
    },
    #[serde(rename = "consent_recorded")]
    ConsentRecorded {
        purpose: ConsentPurpose,
        at: DateTime<Utc>,
        recorded_by: PartyId,
    },
    #[serde(rename = "consent_withdrawn")]
    ConsentWithdrawn {
        purpose: ConsentPurpose,
        at: DateTime<Utc>,
        recorded_by: PartyId,
    },
    #[serde(rename = "plan_activated")]
    PlanActivated,
    #[serde(rename = "plan_suspended")]
    PlanSuspended,
    #[serde(rename = "plan_resumed")]
    PlanResumed,
    #[serde(rename = "departure_confirmed")]
    DepartureConfirmed {
        departed_at: DateTime<Utc>,
        override_reason: Option<Personal<String>>,
    },
    #[serde(rename = "arrival_confirmed")]
    ArrivalConfirmed { arrived_at: DateTime<Utc> },
    #[serde(rename = "follow_up_recorded")]
    FollowUpRecorded {
        step: StepKey,
        outcome: FollowUpOutcome,
    },
    #[serde(rename = "monitoring_started")]
    MonitoringStarted,
    #[serde(rename = "plan_closed")]
    PlanClosed {
        reason: CloseReason,
        closed_at: DateTime<Utc>,
    },
    #[serde(rename = "case_worker_reassigned")]
    CaseWorkerReassigned { from: PartyId, to: PartyId },
    #[serde(rename = "reminder_sent")]
    ReminderSent {
        step: StepKey,
        kind: ReminderKind,
        fire_at: DateTime<Utc>,
        recipient: PartyId,
    },
    #[serde(rename = "step_escalated")]
    StepEscalated {
        step: StepKey,
        kind: ReminderKind,
        fire_at: DateTime<Utc>,
        recipient: PartyId,
    },
    /// A reminder that could not be delivered after every attempt: it is not tried again, and
    /// the case team sees why.
    #[serde(rename = "reminder_failed")]
    ReminderFailed {
        step: StepKey,
        kind: ReminderKind,
        fire_at: DateTime<Utc>,
        recipient: PartyId,
        reason: Personal<String>,
    },
}

impl PlanEvent {
    /// The step this event is about, if it is about one step.
    pub fn step(&self) -> Option<&StepKey> {
        match self {
            Self::StepAdded { step } => Some(&step.key),
            Self::StepRemoved { step, .. }
            | Self::StepAssigned { step, .. }
            | Self::StepRescheduled { step, .. }
            | Self::StepDependenciesChanged { step, .. }
            | Self::StepPrioritised { step, .. }
            | Self::ReminderPolicySet { step, .. }
            | Self::StepStarted { step, .. }
            | Self::StepBlocked { step, .. }
            | Self::StepUnblocked { step }
            | Self::StepCompleted { step }
            | Self::StepAcknowledged { step }
            | Self::StepCancelled { step, .. }
            | Self::DocumentStatusUpdated { step, .. }
            | Self::FollowUpRecorded { step, .. }
            | Self::ReminderSent { step, .. }
            | Self::StepEscalated { step, .. }
            | Self::ReminderFailed { step, .. } => Some(step),
            Self::PlanOpened(_)
            | Self::GoalsSet { .. }
            | Self::ConsentRecorded { .. }
            | Self::ConsentWithdrawn { .. }
            | Self::PlanActivated
            | Self::PlanSuspended
            | Self::PlanResumed
            | Self::DepartureConfirmed { .. }
            | Self::ArrivalConfirmed { .. }
            | Self::MonitoringStarted
            | Self::PlanClosed { .. }
            | Self::CaseWorkerReassigned { .. } => None,
        }
    }
}

impl DomainEvent for PlanEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::PlanOpened(_) => "plan_opened",
            Self::GoalsSet { .. } => "goals_set",
            Self::StepAdded { .. } => "step_added",
            Self::StepRemoved { .. } => "step_removed",
            Self::StepAssigned { .. } => "step_assigned",
            Self::StepRescheduled { .. } => "step_rescheduled",
            Self::StepDependenciesChanged { .. } => "step_dependencies_changed",
            Self::StepPrioritised { .. } => "step_prioritised",
            Self::ReminderPolicySet { .. } => "reminder_policy_set",
            Self::StepStarted { .. } => "step_started",
            Self::StepBlocked { .. } => "step_blocked",
            Self::StepUnblocked { .. } => "step_unblocked",
            Self::StepCompleted { .. } => "step_completed",
            Self::StepAcknowledged { .. } => "step_acknowledged",
            Self::StepCancelled { .. } => "step_cancelled",
            Self::DocumentStatusUpdated { .. } => "document_status_updated",
            Self::ConsentRecorded { .. } => "consent_recorded",
            Self::ConsentWithdrawn { .. } => "consent_withdrawn",
            Self::PlanActivated => "plan_activated",
            Self::PlanSuspended => "plan_suspended",
            Self::PlanResumed => "plan_resumed",
            Self::DepartureConfirmed { .. } => "departure_confirmed",
            Self::ArrivalConfirmed { .. } => "arrival_confirmed",
            Self::FollowUpRecorded { .. } => "follow_up_recorded",
            Self::MonitoringStarted => "monitoring_started",
            Self::PlanClosed { .. } => "plan_closed",
            Self::CaseWorkerReassigned { .. } => "case_worker_reassigned",
            Self::ReminderSent { .. } => "reminder_sent",
            Self::StepEscalated { .. } => "step_escalated",
            Self::ReminderFailed { .. } => "reminder_failed",
        }
    }
}
