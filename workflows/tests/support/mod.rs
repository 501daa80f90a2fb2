//! Shared test support: a given/when/then harness over any aggregate, fixed ids and times, and a
//! `Story` that drives a plan opened from the built-in `standard-avr` v1 template through its
//! lifecycle with real commands (so every given history is one `decide` could have produced).
//!
//! Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::fmt::Debug;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use homeward_workflows::party::{Party, PartyEvent};
use homeward_workflows::person::{Person, PersonEvent};
use homeward_workflows::plan::{
    ConsentPurpose, DocumentStatus, Plan, PlanCommand, PlanEvent, PlanStatus, StepStatus,
};
use homeward_workflows::template::{self, Template};
use homeward_workflows::text::CountryCode;
use homeward_workflows::{Aggregate, Context, OrganisationId, PartyId, PersonId, PlanId, StepKey};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Fixed ids and times
// ---------------------------------------------------------------------------------------------

pub const PLAN: PlanId = PlanId(Uuid::from_u128(0x11111111_1111_4111_8111_111111111111));
pub const PERSON: PersonId = PersonId(Uuid::from_u128(0x22222222_2222_4222_8222_222222222222));
/// The plan's case worker.
pub const CASE_WORKER: PartyId = PartyId(Uuid::from_u128(0x33333333_3333_4333_8333_333333333333));
/// Whoever issues the commands in the harness.
pub const ACTOR: PartyId = PartyId(Uuid::from_u128(0x44444444_4444_4444_8444_444444444444));
/// A partner organisation's contact in the country of origin.
pub const PARTNER: PartyId = PartyId(Uuid::from_u128(0x55555555_5555_4555_8555_555555555555));
/// A government liaison.
pub const LIAISON: PartyId = PartyId(Uuid::from_u128(0x66666666_6666_4666_8666_666666666666));

/// The programme the plan belongs to.
pub const ORGANISATION: OrganisationId =
    OrganisationId(Uuid::from_u128(0x77777777_7777_4777_8777_777777777777));
pub const ORIGIN: &str = "NG";

pub fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .expect("a valid UTC instant")
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a valid date")
}

pub fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
    date(y, m, d)
        .and_hms_opt(h, min, 0)
        .expect("a valid local time")
}

pub fn days(n: i64) -> Duration {
    Duration::days(n)
}

/// When every story plan is opened (a Monday).
pub fn opened_at() -> DateTime<Utc> {
    utc(2026, 1, 5, 9, 0)
}

/// The harness's default "now": well after everything a `Story` does.
pub fn now() -> DateTime<Utc> {
    utc(2026, 3, 2, 9, 0)
}

pub fn ctx_at(now: DateTime<Utc>) -> Context {
    Context { now, actor: ACTOR }
}

pub fn key(s: &str) -> StepKey {
    StepKey::parse(s).expect("a valid step key in a test")
}

pub fn country(s: &str) -> CountryCode {
    CountryCode::parse(s).expect("a valid country code in a test")
}

pub fn standard_template() -> Template {
    template::find("standard-avr", 1).expect("the built-in standard-avr v1 template")
}

// ---------------------------------------------------------------------------------------------
// given / when / then
// ---------------------------------------------------------------------------------------------

/// Links an event type to its aggregate, so `given(events)` needs no type annotations.
pub trait EventOf: Clone + Debug + PartialEq {
    type Agg: Aggregate<Event = Self> + PartialEq;
    fn version(state: &Self::Agg) -> u64;
}

impl EventOf for PlanEvent {
    type Agg = Plan;
    fn version(state: &Plan) -> u64 {
        state.version
    }
}

impl EventOf for PersonEvent {
    type Agg = Person;
    fn version(state: &Person) -> u64 {
        state.version
    }
}

impl EventOf for PartyEvent {
    type Agg = Party;
    fn version(state: &Party) -> u64 {
        state.version
    }
}

pub struct Given<E: EventOf> {
    history: Vec<E>,
    ctx: Context,
}

/// The events already in the stream.
pub fn given<E: EventOf>(history: impl IntoIterator<Item = E>) -> Given<E> {
    Given {
        history: history.into_iter().collect(),
        ctx: ctx_at(now()),
    }
}

/// An empty stream.
pub fn given_nothing<E: EventOf>() -> Given<E> {
    given(Vec::new())
}

/// A plan stream with no events yet.
pub fn no_plan() -> Given<PlanEvent> {
    given_nothing()
}

impl<E: EventOf> Given<E> {
    /// Decides at this instant instead of the default `now()`.
    pub fn at(mut self, now: DateTime<Utc>) -> Self {
        self.ctx.now = now;
        self
    }

    /// Decides as this party instead of `ACTOR`.
    pub fn by(mut self, actor: PartyId) -> Self {
        self.ctx.actor = actor;
        self
    }

    pub fn when(self, command: <E::Agg as Aggregate>::Command) -> When<E>
    where
        <E::Agg as Aggregate>::Error: PartialEq,
    {
        let state = E::Agg::fold(&self.history);
        assert!(
            self.history.is_empty() || state.is_some(),
            "the given history does not fold into a state: {:?}",
            self.history
        );
        let outcome = E::Agg::decide(state.as_ref(), &command, &self.ctx);
        // `decide` is pure: asking twice gives the same answer.
        let again = E::Agg::decide(state.as_ref(), &command, &self.ctx);
        assert_eq!(
            outcome, again,
            "decide is not deterministic for {command:?}"
        );
        When {
            history: self.history,
            state,
            command,
            outcome,
        }
    }
}

pub struct When<E: EventOf> {
    history: Vec<E>,
    state: Option<E::Agg>,
    command: <E::Agg as Aggregate>::Command,
    outcome: Result<Vec<E>, <E::Agg as Aggregate>::Error>,
}

impl<E: EventOf> When<E>
where
    <E::Agg as Aggregate>::Error: PartialEq,
{
    /// The command is accepted with exactly these events. Returns the state after them, which is
    /// checked to be the same whether the events are applied one by one or folded from scratch.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = E>) -> E::Agg {
        let expected: Vec<E> = expected.into_iter().collect();
        let events = match self.outcome {
            Ok(events) => events,
            Err(e) => panic!(
                "expected {expected:#?}\nbut {:?} was refused: {e} ({e:?})",
                self.command
            ),
        };
        assert_eq!(events, expected, "events for {:?}", self.command);
        accept(self.history, self.state, &events)
    }

    /// The command is accepted; returns its events and the new state for custom assertions.
    #[track_caller]
    pub fn then_accepted(self) -> (Vec<E>, E::Agg) {
        let events = match self.outcome {
            Ok(events) => events,
            Err(e) => panic!("{:?} was refused: {e} ({e:?})", self.command),
        };
        assert!(
            !events.is_empty(),
            "an accepted command must record something"
        );
        let state = accept(self.history, self.state, &events);
        (events, state)
    }

    /// The command is refused with exactly this error, and so produces no events.
    #[track_caller]
    pub fn then_error(self, expected: <E::Agg as Aggregate>::Error) {
        match self.outcome {
            Ok(events) => panic!(
                "expected {:?} to be refused with {expected:?}, but it produced {events:#?}",
                self.command
            ),
            Err(actual) => assert_eq!(actual, expected, "refusal of {:?}", self.command),
        }
    }
}

#[track_caller]
fn accept<E: EventOf>(mut history: Vec<E>, state: Option<E::Agg>, events: &[E]) -> E::Agg {
    let before = state.as_ref().map_or(0, E::version);
    let incremental = events
        .iter()
        .fold(state, E::Agg::apply)
        .expect("accepted events fold into a state");
    assert_eq!(
        E::version(&incremental),
        before + events.len() as u64,
        "the version counts the events"
    );
    history.extend(events.iter().cloned());
    let from_scratch = E::Agg::fold(&history).expect("the whole stream folds");
    assert_eq!(
        incremental, from_scratch,
        "applying the new events to the old state differs from folding the whole stream"
    );
    incremental
}

// ---------------------------------------------------------------------------------------------
// Driving a plan through its lifecycle
// ---------------------------------------------------------------------------------------------

pub fn open_command() -> PlanCommand {
    PlanCommand::OpenPlan {
        plan_id: PLAN,
        person: PERSON,
        template: Box::new(standard_template()),
        case_worker: CASE_WORKER,
        organisation: ORGANISATION,
        origin_country: country(ORIGIN),
        follow_up_offsets_days: None,
    }
}

/// A plan's history built with real commands, each one day after the previous.
#[derive(Debug, Clone)]
pub struct Story {
    events: Vec<PlanEvent>,
    now: DateTime<Utc>,
}

impl Story {
    /// A draft plan opened from the standard template at `opened_at()`.
    pub fn opened() -> Self {
        let mut story = Self {
            events: Vec::new(),
            now: opened_at(),
        };
        story.run_now(open_command());
        story
    }

    pub fn events(&self) -> Vec<PlanEvent> {
        self.events.clone()
    }

    /// The time of the last command.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    pub fn plan(&self) -> Plan {
        Plan::fold(&self.events).expect("a story always has an opened plan")
    }

    /// Runs a command one day after the previous one; panics if it is refused.
    pub fn run(mut self, command: PlanCommand) -> Self {
        self.now += days(1);
        self.run_now(command);
        self
    }

    /// Runs a command at a given instant (not before the previous one).
    pub fn run_at(mut self, at: DateTime<Utc>, command: PlanCommand) -> Self {
        assert!(at >= self.now, "stories move forward in time");
        self.now = at;
        self.run_now(command);
        self
    }

    fn run_now(&mut self, command: PlanCommand) {
        let state = Plan::fold(&self.events);
        match Plan::decide(state.as_ref(), &command, &ctx_at(self.now)) {
            Ok(events) => self.events.extend(events),
            Err(e) => panic!("story step {command:?} was refused: {e}"),
        }
    }

    /// The survivor's informed consent to return: activates the plan.
    pub fn consented(self) -> Self {
        self.run(PlanCommand::RecordConsent {
            purpose: ConsentPurpose::Return,
        })
    }

    pub fn consented_to(self, purpose: ConsentPurpose) -> Self {
        self.run(PlanCommand::RecordConsent { purpose })
    }

    pub fn withdrew(self, purpose: ConsentPurpose) -> Self {
        self.run(PlanCommand::WithdrawConsent { purpose })
    }

    pub fn started(self, step: &str) -> Self {
        self.run(PlanCommand::StartStep {
            step: key(step),
            override_reason: None,
        })
    }

    pub fn completed(self, step: &str) -> Self {
        self.run(PlanCommand::CompleteStep { step: key(step) })
    }

    pub fn cancelled(self, step: &str, reason: &str) -> Self {
        self.run(PlanCommand::CancelStep {
            step: key(step),
            reason: reason.to_owned(),
        })
    }

    pub fn assigned(self, step: &str, to: PartyId) -> Self {
        self.run(PlanCommand::AssignStep {
            step: key(step),
            assignee: Some(to),
            candidate_group: None,
        })
    }

    /// The origin-country contact step is done.
    pub fn origin_contact_designated(self) -> Self {
        self.started("origin_contact").completed("origin_contact")
    }

    /// The passport moves through the authority to `Issued`; its step stays open.
    pub fn passport_issued(self) -> Self {
        self.document("passport", DocumentStatus::SubmittedToAuthority)
            .document("passport", DocumentStatus::Issued)
    }

    pub fn document(self, step: &str, status: DocumentStatus) -> Self {
        self.run(PlanCommand::UpdateDocumentStatus {
            step: key(step),
            status,
        })
    }

    pub fn medical_cleared(self) -> Self {
        self.completed("medical_check")
    }

    /// Consent, origin contact, passport issued and its step done, medical check: the travel
    /// step is ready and its preconditions hold.
    pub fn ready_for_travel(self) -> Self {
        let story = self
            .consented()
            .origin_contact_designated()
            .passport_issued()
            .completed("passport")
            .medical_cleared();
        let plan = story.plan();
        assert_eq!(
            plan.step(&key("travel")).map(|s| s.status.clone()),
            Some(StepStatus::Ready)
        );
        story
    }

    pub fn departed(self) -> Self {
        let departed_at = self.now + days(1);
        self.run_at(
            departed_at,
            PlanCommand::ConfirmDeparture {
                departed_at,
                override_reason: None,
            },
        )
    }

    pub fn arrived(self) -> Self {
        let arrived_at = self.now + days(1);
        self.run_at(arrived_at, PlanCommand::ConfirmArrival { arrived_at })
    }

    /// Ready for travel, travel started, departed and arrived: the plan is `Returned`.
    pub fn returned(self) -> Self {
        let story = self
            .ready_for_travel()
            .started("travel")
            .departed()
            .arrived();
        assert_eq!(story.plan().status, PlanStatus::Returned);
        story
    }
}
