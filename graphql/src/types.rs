//! Output types: thin wrappers over domain state and read-model rows. Fields that need a
//! permission ask the authorisation function; nested parties, plans and persons come from the
//! request's batch loaders.

use std::sync::Arc;

use async_graphql::{ComplexObject, Context, Enum, Object, SimpleObject, ID};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use homeward_engine::authz::{self, Action, PersonAccess, PlanField};
use homeward_store::projection::{OrganisationRow, PartyRow, StepRow};
use homeward_workflows::person::Person;
use homeward_workflows::plan::{self as domain, Plan, Step};
use uuid::Uuid;

use crate::loaders::PlanAt;
use crate::personal::{self, field, KeyAsRead};
use crate::{loaders, services, viewer, ApiError, ApiResult};
use homeward_workflows::Personal;

macro_rules! remote_enum {
    ($(#[$doc:meta])* $name:ident = $remote:literal { $($variant:ident),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
        #[graphql(remote = $remote)]
        pub enum $name { $($variant),* }
    };
}

remote_enum!(PlanStatus = "domain::PlanStatus" {
    Draft, Active, Travelling, Returned, Monitoring, Closed
});
remote_enum!(
    /// Why a plan was closed.
    CloseReason = "domain::CloseReason" {
    Reintegrated, SupportEnded, OptedOut, MovedAway, LostContact, Deceased, Other
});
remote_enum!(StepKind = "domain::StepKind" {
    TravelDocument, Travel, FamilyMediation, OriginContact, FollowUp, Medical, Legal,
    ReintegrationSupport, Custom
});
remote_enum!(Priority = "domain::Priority" { Low, Normal, High, Urgent });
remote_enum!(
    /// Where a travel document is with the authorities. Only moves forward.
    DocumentStatus = "domain::DocumentStatus" {
    Requested, SubmittedToAuthority, Issued, Delivered
});
remote_enum!(Wellbeing = "domain::Wellbeing" { Good, Fair, Poor, AtRisk });
remote_enum!(
    /// Why a survivor's data is erased: SURVIVOR_REQUEST (she asked), REGISTERED_IN_ERROR
    /// (by mistake, or twice), LEGAL_OBLIGATION (a law or a court requires it), or
    /// RETENTION_ENDED (recorded by the retention rule only).
    ErasureReason = "homeward_workflows::person::ErasureReason" {
    SurvivorRequest, RetentionEnded, RegisteredInError, LegalObligation
});
remote_enum!(ConcernArea = "domain::ConcernArea" {
    Safety, Health, Housing, Income, Education, Family, Legal, Stigma, Other
});
remote_enum!(ReminderKind = "domain::ReminderKind" { BeforeDue, OnDue, Overdue, Escalation, ReintegrationPlanDue });
remote_enum!(Milestone = "domain::Milestone" { PlanOpened, Departure, Arrival });
remote_enum!(PartyRole = "homeward_workflows::party::PartyRole" {
    SocialWorker, Supervisor, GovernmentLiaison, PartnerContact, Admin
});
remote_enum!(
    /// What an organisation does in a return: runs return programmes (its social workers open
    /// plans), a government office, or a partner in a country of origin.
    OrganisationKind = "homeward_workflows::organisation::OrganisationKind" {
    Programme, Government, Partner
});

/// An organisation. Everything belongs to one by its id: two with the same name share nothing.
#[derive(Debug, Clone)]
pub struct OrganisationObject(pub Arc<OrganisationRow>);

#[Object(name = "Organisation")]
impl OrganisationObject {
    async fn id(&self) -> ID {
        ID(self.0.organisation_id.to_string())
    }
    async fn version(&self) -> i64 {
        self.0.version
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn kind(&self) -> Option<OrganisationKind> {
        homeward_workflows::organisation::OrganisationKind::parse(&self.0.kind).map(Into::into)
    }
    /// ISO 3166 country code.
    async fn country(&self) -> &str {
        &self.0.country
    }
    /// Months a survivor's data is kept after her last plan closes; then it is erased (a
    /// programme's rule; five years unless set).
    async fn retention_months(&self) -> i32 {
        self.0.retention_months
    }
    /// The organisations whose people may be given steps of this one's plans (everyone but
    /// partner contacts).
    async fn works_with(&self, ctx: &Context<'_>) -> ApiResult<Vec<OrganisationObject>> {
        authz::authorize(viewer(ctx)?, Action::ReadOrganisations)?;
        let found = loaders(ctx)
            .organisations
            .load_many(self.0.works_with.iter().copied())
            .await?;
        Ok(self
            .0
            .works_with
            .iter()
            .filter_map(|id| found.get(id).cloned().map(OrganisationObject))
            .collect())
    }
}

/// The organisation with this id, as a field of what belongs to it.
async fn organisation(ctx: &Context<'_>, id: Uuid) -> ApiResult<Option<OrganisationObject>> {
    Ok(loaders(ctx).organisation(id).await?.map(OrganisationObject))
}

/// A step's state in its lifecycle.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    Pending,
    Ready,
    InProgress,
    Done,
    Blocked,
    Cancelled,
}

impl StepStatus {
    pub fn of(status: &domain::StepStatus) -> Self {
        match status {
            domain::StepStatus::Pending => Self::Pending,
            domain::StepStatus::Ready => Self::Ready,
            domain::StepStatus::InProgress => Self::InProgress,
            domain::StepStatus::Done => Self::Done,
            domain::StepStatus::Blocked { .. } => Self::Blocked,
            domain::StepStatus::Cancelled { .. } => Self::Cancelled,
        }
    }

    /// The read model's name of this status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Ready => "ready",
            Self::InProgress => "in_progress",
            Self::Done => "done",
            Self::Blocked => "blocked",
            Self::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Ready,
            Self::InProgress,
            Self::Done,
            Self::Blocked,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// What a consent is for.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentKind {
    /// Informed consent to voluntary return.
    Return,
    /// Sharing case data with one named partner.
    DataSharing,
    /// Contacting the survivor's family.
    FamilyContact,
}

fn parse_kind(s: &str) -> Option<StepKind> {
    serde_json::from_value::<domain::StepKind>(serde_json::Value::String(s.to_owned()))
        .ok()
        .map(Into::into)
}

fn parse_document_status(s: &str) -> Option<DocumentStatus> {
    serde_json::from_value::<domain::DocumentStatus>(serde_json::Value::String(s.to_owned()))
        .ok()
        .map(Into::into)
}

fn priority_of_rank(rank: i16) -> Priority {
    match rank {
        0 => Priority::Urgent,
        1 => Priority::High,
        3 => Priority::Low,
        _ => Priority::Normal,
    }
}

/// A return plan, as far as the viewer may see it; with its survivor and what the store kept
/// of her key when they were read with it in one round trip (`plan(id:)` asking for `person`).
#[derive(Debug, Clone)]
pub struct PlanObject(pub Arc<Plan>, pub Option<(Arc<Person>, KeyAsRead)>);

impl PlanObject {
    /// The plan alone (its survivor read when asked for).
    pub fn of(plan: Arc<Plan>) -> Self {
        Self(plan, None)
    }

    /// Her key as read with the plan, which opens the plan's own personal values too.
    fn her_key(&self) -> Option<KeyAsRead> {
        self.1
            .as_ref()
            .filter(|(person, _)| person.id == self.0.person)
            .map(|(_, key)| key.clone())
    }

    /// Whether the viewer may read this field of the plan (null for them otherwise).
    fn may_read(&self, ctx: &Context<'_>, field: PlanField) -> ApiResult<bool> {
        Ok(authz::authorize(viewer(ctx)?, Action::ReadPlanField(&self.0, field)).is_ok())
    }

    fn case_file(&self, ctx: &Context<'_>) -> ApiResult<()> {
        Ok(authz::authorize(
            viewer(ctx)?,
            Action::ReadCaseFile(&self.0),
        )?)
    }
}

#[Object(name = "Plan")]
impl PlanObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The plan's stream version: pass it as `expectedVersion` to change the plan as you saw it.
    async fn version(&self) -> u64 {
        self.0.version
    }
    async fn status(&self) -> PlanStatus {
        self.0.status.into()
    }
    /// True while consent to return is withdrawn: nothing moves and no reminders go out. Null
    /// unless you are of the case team.
    async fn suspended(&self, ctx: &Context<'_>) -> ApiResult<Option<bool>> {
        Ok(self
            .may_read(ctx, PlanField::Suspension)?
            .then_some(self.0.suspended))
    }
    async fn template_name(&self) -> &str {
        &self.0.template.name
    }
    async fn template_version(&self) -> u32 {
        self.0.template.version
    }
    /// The organisation the plan was opened in; it never changes.
    async fn organisation(&self, ctx: &Context<'_>) -> ApiResult<Option<OrganisationObject>> {
        organisation(ctx, self.0.organisation.0).await
    }
    /// ISO 3166 country code.
    async fn origin_country(&self) -> &str {
        self.0.origin_country.as_str()
    }
    async fn opened_at(&self) -> DateTime<Utc> {
        self.0.opened_at
    }
    /// When the survivor left: for the case team, and for the partner receiving them while
    /// the survivor consents to sharing data with them; null for anyone else.
    async fn departed_at(&self, ctx: &Context<'_>) -> ApiResult<Option<DateTime<Utc>>> {
        Ok(self
            .may_read(ctx, PlanField::TravelDates)?
            .then_some(self.0.departed_at)
            .flatten())
    }
    /// When the survivor arrived (as `departedAt`, who may see it).
    async fn arrived_at(&self, ctx: &Context<'_>) -> ApiResult<Option<DateTime<Utc>>> {
        Ok(self
            .may_read(ctx, PlanField::TravelDates)?
            .then_some(self.0.arrived_at)
            .flatten())
    }
    async fn closed_at(&self) -> Option<DateTime<Utc>> {
        self.0.closed_at
    }
    /// Why the plan was closed; null unless you are of the case team.
    async fn close_reason(&self, ctx: &Context<'_>) -> ApiResult<Option<CloseReason>> {
        Ok(self
            .may_read(ctx, PlanField::CloseReason)?
            .then_some(self.0.close_reason.map(Into::into))
            .flatten())
    }
    async fn case_worker(&self, ctx: &Context<'_>) -> ApiResult<Option<PartyObject>> {
        party(ctx, Some(self.0.case_worker.0)).await
    }
    /// The survivor, with as much personal data as your role needs (none at all for some).
    async fn person(&self, ctx: &Context<'_>) -> ApiResult<Option<PersonObject>> {
        let Some(access) = authz::person_access(viewer(ctx)?, &self.0) else {
            return Ok(None);
        };
        if let Some((person, key)) = &self.1 {
            if person.id == self.0.person {
                return Ok(Some(PersonObject {
                    person: person.clone(),
                    access,
                    key: Some(key.clone()),
                }));
            }
        }
        let person = loaders(ctx).person(self.0.person.0).await?;
        Ok(person.map(|p| PersonObject {
            person: p,
            access,
            key: None,
        }))
    }
    /// The survivor's goals (case file).
    async fn goals(&self, ctx: &Context<'_>) -> ApiResult<Vec<Goal>> {
        self.case_file(ctx)?;
        Ok(self
            .0
            .goals
            .iter()
            .map(|g| Goal {
                area: g.area.into(),
                aim: g.aim.clone(),
                stream: self.0.id.stream_id(),
                key: self.her_key(),
            })
            .collect())
    }
    /// Consents as recorded, per purpose (case file).
    async fn consents(&self, ctx: &Context<'_>) -> ApiResult<Vec<Consent>> {
        self.case_file(ctx)?;
        Ok(self
            .0
            .consents
            .iter()
            .map(|c| {
                let (kind, partner) = match c.purpose {
                    domain::ConsentPurpose::Return => (ConsentKind::Return, None),
                    domain::ConsentPurpose::DataSharing { partner } => {
                        (ConsentKind::DataSharing, Some(ID(partner.to_string())))
                    }
                    domain::ConsentPurpose::FamilyContact => (ConsentKind::FamilyContact, None),
                };
                Consent {
                    kind,
                    partner,
                    given: c.given,
                    at: c.at,
                    recorded_by: ID(c.recorded_by.to_string()),
                }
            })
            .collect())
    }
    /// The reminders armed for this plan, soonest first (case file).
    async fn scheduled_reminders(&self, ctx: &Context<'_>) -> ApiResult<Vec<ScheduledReminder>> {
        self.case_file(ctx)?;
        let mut timers = homeward_workflows::timers::planned_timers(&self.0);
        timers.sort_by_key(|t| t.fire_at);
        Ok(timers
            .into_iter()
            .map(|t| ScheduledReminder {
                step_key: t.step.to_string(),
                kind: t.kind.into(),
                fire_at: t.fire_at,
                recipient_role: t.recipient.role().to_owned(),
                recipient: ID(t.recipient.party().to_string()),
            })
            .collect())
    }
    /// The steps you may see, in plan order.
    #[graphql(complexity = "crate::cost::STEPS_PER_PLAN * child_complexity")]
    async fn steps(&self, ctx: &Context<'_>) -> ApiResult<Vec<StepObject>> {
        let viewer = viewer(ctx)?;
        Ok(self
            .0
            .steps
            .iter()
            .enumerate()
            .filter(|(_, s)| authz::authorize(viewer, Action::ReadStep(&self.0, s)).is_ok())
            .map(|(index, _)| StepObject {
                plan: self.0.clone(),
                index,
                key: self.her_key(),
            })
            .collect())
    }
    async fn step(&self, ctx: &Context<'_>, key: String) -> ApiResult<Option<StepObject>> {
        let viewer = viewer(ctx)?;
        let key = crate::inputs::step_key(&key)?;
        Ok(self
            .0
            .steps
            .iter()
            .position(|s| s.key == key)
            .filter(|i| {
                authz::authorize(viewer, Action::ReadStep(&self.0, &self.0.steps[*i])).is_ok()
            })
            .map(|index| StepObject {
                plan: self.0.clone(),
                index,
                key: self.her_key(),
            }))
    }
}

#[derive(SimpleObject, Debug, Clone)]
#[graphql(complex)]
pub struct Goal {
    pub area: ConcernArea,
    #[graphql(skip)]
    pub aim: Personal<String>,
    #[graphql(skip)]
    pub stream: String,
    #[graphql(skip)]
    pub(crate) key: Option<KeyAsRead>,
}

#[ComplexObject]
impl Goal {
    /// What she aims for (null only when it cannot be read).
    async fn aim(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        personal::text(
            ctx,
            &self.aim,
            &self.stream,
            field::GOAL_AIM,
            self.key.as_ref(),
        )
        .await
        .map(Some)
    }
}

#[derive(SimpleObject, Debug, Clone)]
pub struct Consent {
    pub kind: ConsentKind,
    /// The partner party, for data sharing.
    pub partner: Option<ID>,
    /// False once withdrawn.
    pub given: bool,
    pub at: DateTime<Utc>,
    pub recorded_by: ID,
}

/// One step of a plan.
#[derive(Debug, Clone)]
pub struct StepObject {
    pub plan: Arc<Plan>,
    pub index: usize,
    /// Her key as read with the plan, if it was.
    pub(crate) key: Option<KeyAsRead>,
}

impl StepObject {
    fn step(&self) -> &Step {
        &self.plan.steps[self.index]
    }

    fn stream(&self) -> String {
        self.plan.id.stream_id()
    }
}

#[Object(name = "Step")]
impl StepObject {
    async fn key(&self) -> &str {
        self.step().key.as_str()
    }
    async fn plan_id(&self) -> ID {
        ID(self.plan.id.to_string())
    }
    async fn kind(&self) -> StepKind {
        self.step().kind.into()
    }
    /// Null only when it cannot be read (an `UNREADABLE` error says so).
    async fn title(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        let step = self.step();
        personal::step_title(
            ctx,
            &step.title,
            &self.stream(),
            &self.plan.template,
            &step.key,
            step.kind,
            self.key.as_ref(),
        )
        .await
        .map(Some)
    }
    async fn status(&self) -> StepStatus {
        StepStatus::of(&self.step().status)
    }
    /// Why the step is blocked or was cancelled.
    async fn status_reason(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        match &self.step().status {
            domain::StepStatus::Blocked { reason, .. }
            | domain::StepStatus::Cancelled { reason } => personal::text(
                ctx,
                reason,
                &self.stream(),
                field::REASON,
                self.key.as_ref(),
            )
            .await
            .map(Some),
            _ => Ok(None),
        }
    }
    async fn assignee(&self, ctx: &Context<'_>) -> ApiResult<Option<PartyObject>> {
        party(ctx, self.step().assignee.map(|p| p.0)).await
    }
    async fn candidate_group(&self) -> Option<&str> {
        self.step().candidate_group.as_deref()
    }
    async fn priority(&self) -> Priority {
        self.step().priority.into()
    }
    /// When the step is due; null while it waits for its milestone (e.g. arrival).
    async fn due_at(&self) -> Option<DateTime<Utc>> {
        self.step().due_at
    }
    /// The rule the due date comes from. A rule counted from the departure or the arrival is
    /// shown only to whom the travel dates are (see `Plan.departedAt`).
    async fn due_rule(&self, ctx: &Context<'_>) -> ApiResult<Option<DueRule>> {
        if let Some(domain::DueRule::After { milestone, .. }) = &self.step().due {
            let travel = matches!(
                milestone,
                domain::Milestone::Departure | domain::Milestone::Arrival
            );
            let may = authz::authorize(
                viewer(ctx)?,
                Action::ReadPlanField(&self.plan, PlanField::TravelDates),
            )
            .is_ok();
            if travel && !may {
                return Ok(None);
            }
        }
        Ok(self.step().due.as_ref().map(|d| match d {
            domain::DueRule::At { local, time_zone } => DueRule {
                local_date_time: Some(*local),
                time_zone: Some(time_zone.clone()),
                milestone: None,
                days: None,
            },
            domain::DueRule::After { milestone, days } => DueRule {
                local_date_time: None,
                time_zone: None,
                milestone: Some((*milestone).into()),
                days: Some(*days),
            },
        }))
    }
    async fn overdue(&self, ctx: &Context<'_>) -> bool {
        let now = services(ctx).clock.now();
        self.step().status.is_open() && self.step().due_at.is_some_and(|d| d < now)
    }
    async fn follow_up_on(&self) -> Option<NaiveDate> {
        self.step().follow_up_on
    }
    /// Keys of the steps this one waits for.
    async fn depends_on(&self) -> Vec<&str> {
        self.step().depends_on.iter().map(|k| k.as_str()).collect()
    }
    async fn reminder_policy(&self) -> ReminderPolicy {
        let p = self.step().reminder_policy;
        ReminderPolicy {
            before_due_days: p.before_due_days,
            on_due: p.on_due,
            overdue_every_days: p.overdue_every_days,
            escalate_after_days: p.escalate_after_days,
        }
    }
    async fn document_status(&self) -> Option<DocumentStatus> {
        self.step().document_status.map(Into::into)
    }
    /// What a follow-up visit found.
    async fn outcome(&self) -> Option<FollowUpOutcome> {
        self.step().outcome.as_ref().map(|o| FollowUpOutcome {
            visited_on: o.visited_on,
            wellbeing: o.wellbeing.clone(),
            concerns: o.concerns.clone(),
            stream: self.stream(),
            key: self.key.clone(),
        })
    }
    /// Why the step was started although its preconditions were not met.
    async fn override_reason(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        match &self.step().override_reason {
            Some(reason) => personal::text(
                ctx,
                reason,
                &self.stream(),
                field::OVERRIDE_REASON,
                self.key.as_ref(),
            )
            .await
            .map(Some),
            None => Ok(None),
        }
    }
    /// The assignee acknowledged the task (from the API or a partner link).
    async fn acknowledged(&self) -> bool {
        self.step().acknowledged
    }
    /// Reminders delivered for this step (escalations included).
    async fn reminders_sent(&self) -> Vec<SentReminder> {
        self.step()
            .reminders_sent
            .iter()
            .filter(|r| r.failed.is_none())
            .map(|r| SentReminder {
                kind: r.kind.into(),
                fire_at: r.fire_at,
            })
            .collect()
    }
    /// Reminders that could not be delivered after every attempt, and why.
    async fn reminders_failed(&self) -> Vec<FailedReminder> {
        self.step()
            .reminders_sent
            .iter()
            .filter_map(|r| {
                r.failed.as_ref().map(|reason| FailedReminder {
                    kind: r.kind.into(),
                    fire_at: r.fire_at,
                    reason: reason.clone(),
                    stream: self.stream(),
                    key: self.key.clone(),
                })
            })
            .collect()
    }
}

#[derive(SimpleObject, Debug, Clone)]
pub struct DueRule {
    /// Due at this local date and time ...
    pub local_date_time: Option<NaiveDateTime>,
    /// ... in this IANA time zone.
    pub time_zone: Option<String>,
    /// Or due this many days after a milestone.
    pub milestone: Option<Milestone>,
    pub days: Option<u32>,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct ReminderPolicy {
    pub before_due_days: Option<u32>,
    pub on_due: bool,
    pub overdue_every_days: Option<u32>,
    pub escalate_after_days: Option<u32>,
}

#[derive(SimpleObject, Debug, Clone)]
#[graphql(complex)]
pub struct FollowUpOutcome {
    pub visited_on: NaiveDate,
    #[graphql(skip)]
    pub wellbeing: Personal<domain::Wellbeing>,
    #[graphql(skip)]
    pub concerns: Personal<Vec<domain::ConcernArea>>,
    #[graphql(skip)]
    pub stream: String,
    #[graphql(skip)]
    pub(crate) key: Option<KeyAsRead>,
}

#[ComplexObject]
impl FollowUpOutcome {
    /// Null once the person is erased.
    async fn wellbeing(&self, ctx: &Context<'_>) -> ApiResult<Option<Wellbeing>> {
        Ok(personal::value(
            ctx,
            &self.wellbeing,
            &self.stream,
            field::WELLBEING,
            self.key.as_ref(),
        )
        .await?
        .map(Into::into))
    }
    /// Null once the person is erased.
    async fn concerns(&self, ctx: &Context<'_>) -> ApiResult<Option<Vec<ConcernArea>>> {
        Ok(personal::value(
            ctx,
            &self.concerns,
            &self.stream,
            field::CONCERNS,
            self.key.as_ref(),
        )
        .await?
        .map(|c| c.into_iter().map(Into::into).collect()))
    }
}

#[derive(SimpleObject, Debug, Clone)]
pub struct SentReminder {
    pub kind: ReminderKind,
    pub fire_at: DateTime<Utc>,
}

#[derive(SimpleObject, Debug, Clone)]
#[graphql(complex)]
pub struct FailedReminder {
    pub kind: ReminderKind,
    pub fire_at: DateTime<Utc>,
    #[graphql(skip)]
    pub reason: Personal<String>,
    #[graphql(skip)]
    pub stream: String,
    #[graphql(skip)]
    pub(crate) key: Option<KeyAsRead>,
}

#[ComplexObject]
impl FailedReminder {
    /// Why it could not be delivered (null only when it cannot be read).
    async fn reason(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        personal::text(
            ctx,
            &self.reason,
            &self.stream,
            field::REASON,
            self.key.as_ref(),
        )
        .await
        .map(Some)
    }
}

/// A reminder that will go out (unless the step changes first).
#[derive(SimpleObject, Debug, Clone)]
pub struct ScheduledReminder {
    pub step_key: String,
    pub kind: ReminderKind,
    pub fire_at: DateTime<Utc>,
    /// `assignee`, or `supervisor_of` for an escalation to the case worker's supervisor.
    pub recipient_role: String,
    pub recipient: ID,
}

/// A responsible party: a social worker, supervisor, liaison, partner contact or admin.
#[derive(Debug, Clone)]
pub struct PartyObject(pub Arc<PartyRow>);

#[Object(name = "Party")]
impl PartyObject {
    async fn id(&self) -> ID {
        ID(self.0.party_id.to_string())
    }
    async fn version(&self) -> i64 {
        self.0.version
    }
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }
    /// Null for partner contacts, except their own.
    async fn email(&self, ctx: &Context<'_>) -> ApiResult<Option<&str>> {
        Ok(self.may_reach(ctx)?.then_some(self.0.email.as_str()))
    }
    /// False while deactivated: no tokens, reminders, links or new duties.
    async fn active(&self) -> bool {
        self.0.active
    }
    async fn role(&self) -> Option<PartyRole> {
        homeward_workflows::party::PartyRole::parse(&self.0.role).map(Into::into)
    }
    async fn organisation(&self, ctx: &Context<'_>) -> ApiResult<Option<OrganisationObject>> {
        organisation(ctx, self.0.organisation).await
    }
    async fn country(&self) -> &str {
        &self.0.country
    }
    async fn language(&self) -> &str {
        &self.0.language
    }
    async fn time_zone(&self) -> &str {
        &self.0.time_zone
    }
    /// Null for partner contacts, except their own.
    async fn supervisor(&self, ctx: &Context<'_>) -> ApiResult<Option<PartyObject>> {
        if !self.may_reach(ctx)? {
            return Ok(None);
        }
        party(ctx, self.0.supervisor).await
    }
    /// When and how this party hears from Homeward: your own (admins anyone's); null otherwise.
    #[graphql(complexity = "crate::cost::PARTY_FOLD + child_complexity")]
    async fn reminder_settings(&self, ctx: &Context<'_>) -> ApiResult<Option<ReminderSettings>> {
        let id = homeward_workflows::PartyId(self.0.party_id);
        if authz::authorize(viewer(ctx)?, Action::ReadReminderSettings(id)).is_err() {
            return Ok(None);
        }
        let stream = id.stream_id();
        let party = services(ctx)
            .handler
            .load_latest::<homeward_workflows::party::Party>(&stream)
            .await?
            .state
            .ok_or_else(|| ApiError::internal(&"a listed party without a stream"))?;
        Ok(Some(ReminderSettings(party)))
    }
}

impl PartyObject {
    /// Whether the viewer may see how to reach this party beyond their name.
    fn may_reach(&self, ctx: &Context<'_>) -> ApiResult<bool> {
        let id = homeward_workflows::PartyId(self.0.party_id);
        Ok(authz::authorize(viewer(ctx)?, Action::ReadPartyContact(id)).is_ok())
    }
}

/// A party's quiet hours and digest schedule (language and time zone are on the party).
#[derive(Debug, Clone)]
pub struct ReminderSettings(Arc<homeward_workflows::party::Party>);

#[Object]
impl ReminderSettings {
    /// Start of the quiet hours, `HH:MM` in the party's time zone.
    async fn quiet_hours_start(&self) -> String {
        self.0
            .reminders
            .quiet_hours
            .start
            .format("%H:%M")
            .to_string()
    }
    async fn quiet_hours_end(&self) -> String {
        self.0.reminders.quiet_hours.end.format("%H:%M").to_string()
    }
    /// The digest's cron expression, if the party has one.
    async fn digest_schedule(&self) -> Option<&str> {
        self.0.reminders.digest.as_ref().map(|d| d.cron.as_str())
    }
    /// When the next digest goes out.
    async fn next_digest_at(&self) -> Option<DateTime<Utc>> {
        self.0.next_digest_at()
    }
}

pub(crate) async fn party(ctx: &Context<'_>, id: Option<Uuid>) -> ApiResult<Option<PartyObject>> {
    let Some(id) = id else { return Ok(None) };
    Ok(loaders(ctx).party(id).await?.map(PartyObject))
}

/// The survivor. Which fields are filled depends on the viewer's role (see `PersonAccess`);
/// the others are null.
#[derive(Debug, Clone)]
pub struct PersonObject {
    pub person: Arc<Person>,
    pub access: PersonAccess,
    /// Her key as read with her (`None`: asked when a field is opened).
    pub(crate) key: Option<KeyAsRead>,
}

#[Object(name = "Person")]
impl PersonObject {
    async fn id(&self) -> ID {
        ID(self.person.id.to_string())
    }
    /// Null only when it cannot be read (an `UNREADABLE` error says so).
    async fn full_name(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        Ok(Some(
            self.open(ctx, &self.person.full_name, field::FULL_NAME)
                .await?
                .text(),
        ))
    }
    async fn date_of_birth(&self, ctx: &Context<'_>) -> ApiResult<Option<NaiveDate>> {
        match (self.access, &self.person.date_of_birth) {
            (PersonAccess::Identity | PersonAccess::Full, Some(d)) => {
                Ok(self.open(ctx, d, field::DATE_OF_BIRTH).await?.value())
            }
            _ => Ok(None),
        }
    }
    async fn preferred_language(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        match (self.access, &self.person.preferred_language) {
            (PersonAccess::Reception | PersonAccess::Full, Some(l)) => Ok(self
                .open(ctx, l, field::PREFERRED_LANGUAGE)
                .await?
                .value()
                .map(|l| l.as_str().to_owned())),
            _ => Ok(None),
        }
    }
    async fn phone(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        match self.access {
            PersonAccess::Reception | PersonAccess::Full => {
                self.contact(ctx, &self.person.contact.phone, field::PHONE)
                    .await
            }
            PersonAccess::Identity => Ok(None),
        }
    }
    async fn email(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        match self.access {
            PersonAccess::Full => {
                self.contact(ctx, &self.person.contact.email, field::EMAIL)
                    .await
            }
            _ => Ok(None),
        }
    }
    async fn address(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        match self.access {
            PersonAccess::Full => {
                self.contact(ctx, &self.person.contact.address, field::ADDRESS)
                    .await
            }
            _ => Ok(None),
        }
    }
    /// Case notes, oldest first (the case team's; null for others).
    async fn notes(&self) -> Option<Vec<Note>> {
        match self.access {
            PersonAccess::Full => Some(
                self.person
                    .notes
                    .iter()
                    .map(|n| Note {
                        note: n.clone(),
                        stream: self.stream(),
                    })
                    .collect(),
            ),
            _ => None,
        }
    }
    /// When her data was erased; null while it is kept.
    async fn erased_at(&self) -> Option<DateTime<Utc>> {
        self.person.erased_at
    }
    /// The legal hold that keeps her data from erasure, if one does (the case team's; null
    /// for others).
    async fn legal_hold(&self) -> Option<LegalHold> {
        match (self.access, &self.person.legal_hold) {
            (PersonAccess::Full, Some(hold)) => Some(LegalHold {
                hold: hold.clone(),
                stream: self.stream(),
            }),
            _ => None,
        }
    }
    /// Her record's version: pass it as `expectedVersion` to correct her details as you saw
    /// them.
    async fn version(&self) -> u64 {
        self.person.version
    }
    /// Her plans that you may see, newest first (the case team's; null for others).
    async fn plans(&self, ctx: &Context<'_>) -> ApiResult<Option<Vec<PlanObject>>> {
        if !matches!(self.access, PersonAccess::Full) {
            return Ok(None);
        }
        let viewer = viewer(ctx)?;
        let mut rows = services(ctx)
            .reads
            .plans_of_person(self.person.id.0)
            .await?;
        rows.sort_by_key(|r| std::cmp::Reverse(r.opened_at));
        let plans = loaders(ctx)
            .plans
            .load_many(rows.iter().map(|r| PlanAt::latest(r.plan_id)))
            .await?;
        Ok(Some(
            rows.iter()
                .filter_map(|r| plans.get(&PlanAt::latest(r.plan_id)))
                .filter(|plan| authz::authorize(viewer, Action::ReadPlan(plan)).is_ok())
                .map(|plan| PlanObject::of(plan.clone()))
                .collect(),
        ))
    }
}

/// Why and since when a survivor's data must be kept: nothing erases it until it is lifted.
#[derive(Debug, Clone)]
pub struct LegalHold {
    hold: homeward_workflows::person::LegalHold,
    stream: String,
}

#[Object]
impl LegalHold {
    /// Null only when it cannot be read (an `UNREADABLE` error says so).
    async fn reason(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        personal::text(
            ctx,
            &self.hold.reason,
            &self.stream,
            field::HOLD_REASON,
            None,
        )
        .await
        .map(Some)
    }
    async fn placed_by(&self, ctx: &Context<'_>) -> ApiResult<Option<PartyObject>> {
        party(ctx, Some(self.hold.placed_by.0)).await
    }
    async fn placed_at(&self) -> DateTime<Utc> {
        self.hold.placed_at
    }
}

/// A case note about a survivor.
#[derive(Debug, Clone)]
pub struct Note {
    note: homeward_workflows::person::Note,
    stream: String,
}

#[Object]
impl Note {
    /// Null only when it cannot be read (an `UNREADABLE` error says so).
    async fn text(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        personal::text(ctx, &self.note.text, &self.stream, field::NOTE, None)
            .await
            .map(Some)
    }
    async fn author(&self, ctx: &Context<'_>) -> ApiResult<Option<PartyObject>> {
        party(ctx, Some(self.note.author.0)).await
    }
    async fn at(&self) -> DateTime<Utc> {
        self.note.at
    }
}

impl PersonObject {
    fn stream(&self) -> String {
        self.person.id.stream_id()
    }

    async fn contact(
        &self,
        ctx: &Context<'_>,
        value: &Option<Personal<String>>,
        field: &str,
    ) -> ApiResult<Option<String>> {
        match value {
            Some(v) => Ok(Some(self.open(ctx, v, field).await?.text())),
            None => Ok(None),
        }
    }

    /// One of her values, opened with her key as read with her if it was.
    async fn open<T: serde::de::DeserializeOwned + Clone>(
        &self,
        ctx: &Context<'_>,
        value: &Personal<T>,
        field: &str,
    ) -> ApiResult<homeward_engine::vault::Opened<T>> {
        personal::open_known(ctx, value, &self.stream(), field, self.key.as_ref()).await
    }
}

/// An inbox entry: a step assigned to someone, with its plan one field away.
#[derive(SimpleObject, Debug, Clone)]
#[graphql(complex)]
pub struct Task {
    #[graphql(skip)]
    pub row: StepRow,
    pub plan_id: ID,
    pub key: String,
    pub due_at: Option<DateTime<Utc>>,
    pub follow_up_on: Option<NaiveDate>,
    pub candidate_group: Option<String>,
}

impl Task {
    fn stream(&self) -> String {
        homeward_workflows::PlanId(self.row.plan_id).stream_id()
    }

    pub fn new(row: StepRow) -> Self {
        Self {
            plan_id: ID(row.plan_id.to_string()),
            key: row.step_key.clone(),
            due_at: row.due_at,
            follow_up_on: row.follow_up_on,
            candidate_group: row.candidate_group.clone(),
            row,
        }
    }
}

/// How a task changed in your inbox.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskChange {
    /// New in your inbox, or changed: `task` is as the event left it.
    Changed,
    /// It left your inbox: done, cancelled, reassigned to someone else, its plan suspended or
    /// closed, or no longer shared with you.
    Removed,
}

/// One task's change, as one event made it.
#[derive(SimpleObject, Debug, Clone)]
pub struct TaskUpdate {
    pub change: TaskChange,
    pub plan_id: ID,
    pub key: String,
    /// The plan's version after the event.
    pub version: u64,
    /// The task as the event left it; null when it was removed.
    pub task: Option<Task>,
}

impl TaskUpdate {
    pub fn changed(row: StepRow, version: u64) -> Self {
        Self {
            change: TaskChange::Changed,
            plan_id: ID(row.plan_id.to_string()),
            key: row.step_key.clone(),
            version,
            task: Some(Task::new(row)),
        }
    }

    pub fn removed(row: &StepRow, version: u64) -> Self {
        Self {
            change: TaskChange::Removed,
            plan_id: ID(row.plan_id.to_string()),
            key: row.step_key.clone(),
            version,
            task: None,
        }
    }
}

#[ComplexObject]
impl Task {
    /// Null only when it cannot be read (an `UNREADABLE` error says so).
    async fn title(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        let title = homeward_engine::vault::Vault::stored(&self.row.title);
        let opened = personal::open(ctx, &title, &self.stream(), field::STEP_TITLE).await?;
        if let homeward_engine::vault::Opened::Value(title) = opened {
            return Ok(Some(title));
        }
        // Erased: the plan's template still names its own steps.
        let plan = loaders(ctx).plan(PlanAt::latest(self.row.plan_id)).await?;
        let step = plan
            .as_ref()
            .and_then(|p| p.steps.iter().find(|s| s.key.as_str() == self.row.step_key));
        Ok(Some(match (&plan, step) {
            (Some(plan), Some(step)) => {
                homeward_workflows::template::template_title(&plan.template, &step.key, step.kind)
                    .unwrap_or_else(|| homeward_engine::vault::ERASED.to_owned())
            }
            _ => homeward_engine::vault::ERASED.to_owned(),
        }))
    }
    /// Why the step is blocked or was cancelled.
    async fn status_reason(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        match &self.row.status_reason {
            Some(reason) => personal::stored_text(ctx, reason, &self.stream(), field::REASON)
                .await
                .map(Some),
            None => Ok(None),
        }
    }
    async fn kind(&self) -> ApiResult<StepKind> {
        parse_kind(&self.row.kind).ok_or_else(|| ApiError::internal(&"unknown step kind"))
    }
    async fn status(&self) -> ApiResult<StepStatus> {
        StepStatus::parse(&self.row.status)
            .ok_or_else(|| ApiError::internal(&"unknown step status"))
    }
    async fn priority(&self) -> Priority {
        priority_of_rank(self.row.priority)
    }
    async fn document_status(&self) -> Option<DocumentStatus> {
        self.row
            .document_status
            .as_deref()
            .and_then(parse_document_status)
    }
    async fn overdue(&self, ctx: &Context<'_>) -> bool {
        let now = services(ctx).clock.now();
        !matches!(self.row.status.as_str(), "done" | "cancelled")
            && self.row.due_at.is_some_and(|d| d < now)
    }
    async fn assignee(&self, ctx: &Context<'_>) -> ApiResult<Option<PartyObject>> {
        party(ctx, self.row.assignee).await
    }
    /// The plan this task belongs to (as far as you may see it).
    async fn plan(&self, ctx: &Context<'_>) -> ApiResult<Option<PlanObject>> {
        let plan = loaders(ctx).plan(PlanAt::latest(self.row.plan_id)).await?;
        let viewer = viewer(ctx)?;
        Ok(plan
            .filter(|p| authz::authorize(viewer, Action::ReadPlan(p)).is_ok())
            .map(PlanObject::of))
    }
}

/// A plan after a mutation.
#[derive(SimpleObject, Debug, Clone)]
pub struct PlanPayload {
    pub plan: PlanObject,
    /// The plan's version after the change.
    pub version: u64,
    /// True when this idempotency key had been used before: nothing new was written and this
    /// is the plan as that first request left it.
    pub replayed: bool,
}

/// One event in a plan's history.
#[derive(SimpleObject, Debug, Clone)]
#[graphql(complex)]
pub struct PlanHistoryEntry {
    pub version: u64,
    /// The event's type, e.g. `step_completed`.
    #[graphql(name = "type")]
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    #[graphql(skip)]
    pub data: serde_json::Value,
    #[graphql(skip)]
    pub stream: String,
    #[graphql(skip)]
    pub actor: Uuid,
    /// True when the actor, a partner contact, recorded it through the link in a reminder
    /// (acknowledging a task, confirming a visit) rather than signed in.
    pub by_partner_link: bool,
}

impl PlanHistoryEntry {
    /// The entry of a stored plan event (its payload as recorded).
    pub fn from_recorded(event: &homeward_store::RecordedEvent) -> ApiResult<Self> {
        Ok(Self {
            version: event.stream_version,
            event_type: event.event_type.clone(),
            occurred_at: event.occurred_at,
            recorded_at: event.recorded_at,
            data: serde_json::from_str(&event.payload).map_err(|e| ApiError::internal(&e))?,
            stream: event.stream_id.clone(),
            actor: event.metadata.actor.0,
            by_partner_link: event.metadata.partner_link.is_some(),
        })
    }
}

#[ComplexObject]
impl PlanHistoryEntry {
    /// The event as recorded, its personal fields opened (`[erased]` once the person is).
    async fn data(&self, ctx: &Context<'_>) -> ApiResult<async_graphql::Json<serde_json::Value>> {
        let mut data = self.data.clone();
        personal::open_payload(ctx, &self.event_type, &self.stream, &mut data).await?;
        Ok(async_graphql::Json(data))
    }
    /// Who did it.
    async fn actor(&self, ctx: &Context<'_>) -> ApiResult<Option<PartyObject>> {
        party(ctx, Some(self.actor)).await
    }
}

/// A plan template that plans can be opened from.
#[derive(SimpleObject, Debug, Clone)]
pub struct Template {
    pub name: String,
    pub version: u32,
    pub title: String,
    pub follow_up_offsets_days: Vec<u32>,
    pub step_keys: Vec<String>,
}

/// What is known of a token besides the token itself.
#[derive(Debug, Clone)]
pub struct TokenInfo(pub homeward_store::reads::TokenRecord);

#[Object]
impl TokenInfo {
    async fn token_id(&self) -> ID {
        ID(self.0.token_id.to_string())
    }
    /// The role it carries (the party's when it was issued).
    async fn role(&self) -> &str {
        &self.0.role
    }
    async fn issued_at(&self) -> DateTime<Utc> {
        self.0.issued_at
    }
    /// The admin who issued it; null when it was made on the server's command line.
    async fn issued_by(&self, ctx: &Context<'_>) -> ApiResult<Option<PartyObject>> {
        match self.0.issued_by {
            Some(admin) => party(ctx, Some(admin)).await,
            None => Ok(None),
        }
    }
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at
    }
    /// The start of the hour it was last used in; null if never.
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
}

/// An invitation email that went out.
#[derive(SimpleObject, Debug, Clone)]
pub struct Invitation {
    pub sent_to: String,
    /// Its link works once, until then.
    pub expires_at: DateTime<Utc>,
}

/// A token just created. The secret is shown this once.
#[derive(SimpleObject, Debug, Clone)]
pub struct CreatedToken {
    pub token_id: ID,
    pub secret: String,
    pub expires_at: DateTime<Utc>,
}
