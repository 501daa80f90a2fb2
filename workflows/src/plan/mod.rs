//! The return plan: its state, how events fold into it, and the rules its commands obey.
//!
//! Lifecycle: `Draft` (opened from a template) → `Active` (the survivor's informed consent to
//! voluntary return is recorded) → `Travelling` → `Returned` (arrival confirmed; anchors the
//! follow-up schedule) → `Monitoring` (first follow-up recorded) → `Closed(reason)`. Withdrawing
//! consent to return suspends the plan at whatever stage it is; recording it again resumes it.

mod command;
mod decide;
mod error;
mod event;
mod state;

pub use command::{NewStep, PlanCommand};
pub use decide::{
    MAX_DEPENDENCIES, MAX_GROUP, MAX_OFFSET_DAYS, MAX_REASON, MAX_REMINDER_DAYS, MAX_TITLE,
};
pub use error::PlanError;
pub use event::{PlanEvent, PlanOpened, StepDefinition};
pub use state::{
    CloseReason, ConcernArea, Consent, ConsentPurpose, DocumentStatus, DueRule, FollowUpOutcome,
    Goal, Milestone, Plan, PlanStatus, Priority, ReminderKind, ReminderPolicy, SentReminder, Step,
    StepKind, StepStatus, TemplateRef, Wellbeing,
};

use crate::aggregate::{Aggregate, Context};

impl Aggregate for Plan {
    type Command = PlanCommand;
    type Event = PlanEvent;
    type Error = PlanError;
    const STREAM_PREFIX: &'static str = "plan";

    fn command_name(command: &Self::Command) -> &'static str {
        command.into()
    }

    fn data_subject(&self) -> Option<crate::PersonId> {
        Some(self.person)
    }

    fn apply(state: Option<Self>, event: &PlanEvent) -> Option<Self> {
        state::apply(state, event)
    }

    fn decide(
        state: Option<&Self>,
        command: &PlanCommand,
        ctx: &Context,
    ) -> Result<Vec<PlanEvent>, PlanError> {
        decide::decide(state, command, ctx)
    }
}
