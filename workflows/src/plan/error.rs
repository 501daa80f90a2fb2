//! Why a plan command is refused. Each message says what to do instead.

use chrono::{DateTime, Utc};
use thiserror::Error;

use super::state::{DocumentStatus, PlanStatus, StepKind};
use crate::ids::StepKey;
use crate::template::TemplateError;
use crate::text::TextError;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlanError {
    #[error("this plan does not exist yet: open it first")]
    NotOpened,
    #[error("this plan is already open")]
    AlreadyOpened,
    #[error("the plan is closed: nothing can change on a closed plan")]
    Closed,
    #[error("this social worker is already the plan's case worker")]
    AlreadyCaseWorker,
    #[error("the plan is suspended because consent to return was withdrawn: record consent again or close the plan")]
    Suspended,
    #[error("the survivor's informed consent to voluntary return must be recorded before this")]
    ConsentRequired,
    #[error(
        "the survivor's consent to family contact must be recorded before family mediation starts"
    )]
    FamilyContactConsentRequired,
    #[error("the plan is {}; this needs it to be {expected}", actual.api_name())]
    WrongPlanStatus {
        actual: PlanStatus,
        expected: &'static str,
    },
    #[error("no step '{0}' in this plan")]
    UnknownStep(StepKey),
    #[error("a step '{0}' already exists in this plan: choose another key")]
    DuplicateStep(StepKey),
    #[error("step '{step}' depends on '{missing}', which is not in this plan")]
    UnknownDependency { step: StepKey, missing: StepKey },
    #[error("adding these dependencies would create a cycle through step '{0}'")]
    DependencyCycle(StepKey),
    #[error(
        "step '{step}' cannot be removed: {dependent} depends on it (remove or change that first)"
    )]
    HasDependents { step: StepKey, dependent: StepKey },
    #[error("step '{step}' is {status}; it can only be removed while pending or ready (cancel it instead)")]
    CannotRemove { step: StepKey, status: &'static str },
    #[error("step '{step}' is {status}: cannot {action} it")]
    InvalidStepTransition {
        step: StepKey,
        status: &'static str,
        action: &'static str,
    },
    #[error("step '{0}' is already acknowledged")]
    AlreadyAcknowledged(StepKey),
    #[error("step '{0}' is waiting for its dependencies to be done")]
    DependenciesNotDone(StepKey),
    #[error("travel cannot start before {missing}; give an override reason to proceed anyway")]
    TravelNotReady { missing: &'static str },
    #[error(
        "step '{step}' is a {} step; document status applies to TRAVEL_DOCUMENT steps only",
        kind.api_name()
    )]
    NotADocumentStep { step: StepKey, kind: StepKind },
    #[error(
        "the document is {} already; its status only moves forward (REQUESTED, SUBMITTED_TO_AUTHORITY, ISSUED, DELIVERED), so it cannot go back to {}",
        current.api_name(),
        requested.api_name()
    )]
    DocumentStatusBackwards {
        current: DocumentStatus,
        requested: DocumentStatus,
    },
    #[error("the document is already {}; {}", current.api_name(), current.next_step())]
    DocumentStatusUnchanged { current: DocumentStatus },
    #[error(
        "step '{0}' is a follow-up: record the follow-up visit (with wellbeing) to complete it"
    )]
    OutcomeRequired(StepKey),
    #[error("step '{0}' is not a follow-up step")]
    NotAFollowUp(StepKey),
    #[error("a follow-up cannot be recorded before the survivor's arrival is confirmed")]
    FollowUpBeforeArrival,
    #[error("the follow-up visit date {visited_on} lies before the arrival on {arrived_on}: give the day of the visit, on or after the arrival")]
    FollowUpBeforeArrivalDate {
        visited_on: chrono::NaiveDate,
        arrived_on: chrono::NaiveDate,
    },
    #[error("the follow-up visit date {visited_on} lies in the future (today is {today}): record a visit once it has taken place")]
    FollowUpInTheFuture {
        visited_on: chrono::NaiveDate,
        today: chrono::NaiveDate,
    },
    #[error("the due date {due_at} lies before the plan was opened ({opened_at})")]
    DueBeforeOpened {
        due_at: DateTime<Utc>,
        opened_at: DateTime<Utc>,
    },
    #[error("the departure time {departed_at} lies before the plan was opened ({opened_at})")]
    DepartureBeforeOpened {
        departed_at: DateTime<Utc>,
        opened_at: DateTime<Utc>,
    },
    #[error("the local time {local} does not exist in {time_zone} (a daylight-saving gap): choose another time")]
    NonexistentLocalTime { local: String, time_zone: String },
    #[error("{0} must not lie in the future")]
    InTheFuture(&'static str),
    #[error("arrival ({arrived_at}) cannot be before departure ({departed_at})")]
    ArrivalBeforeDeparture {
        arrived_at: DateTime<Utc>,
        departed_at: DateTime<Utc>,
    },
    #[error("a plan can be closed as reintegrated only after the survivor has returned")]
    NotYetReturned,
    #[error("{field} is {value}; it must be between {min} and {max}")]
    OutOfRange {
        field: &'static str,
        value: i64,
        min: i64,
        max: i64,
    },
    #[error("too many {field}: {len}, at most {max}")]
    TooMany {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("consent {0} is not currently given, so it cannot be withdrawn")]
    ConsentNotGiven(&'static str),
    #[error("the plan already records consent {0}")]
    ConsentAlreadyGiven(&'static str),
    #[error("this reminder was already recorded (as sent or failed)")]
    ReminderAlreadyRecorded,
    #[error(transparent)]
    Text(#[from] TextError),
    #[error(transparent)]
    Template(#[from] TemplateError),
}
