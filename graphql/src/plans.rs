//! Plans: reading them (one, a page, the history, as they stood at an instant) and every command
//! on them. Each command is authorised on the very state it is decided on.

use std::sync::Arc;

use async_graphql::connection::Connection;
use async_graphql::{Context, InputObject, Object, ID};
use chrono::{DateTime, NaiveDate, Utc};
use homeward_engine::authz::{self, Action};
use homeward_engine::duties::{self, Duty};
use homeward_store::reads::PlanFilter;
use homeward_store::ReadUntil;
use homeward_workflows::person::{ContactDetails, Person, PersonCommand};
use homeward_workflows::plan::{Plan, PlanCommand};
use homeward_workflows::{template, OrganisationId, PersonId, Personal, PlanId};
use uuid::Uuid;

use crate::error::{command_error, Code};
use crate::idempotency::{self, Begun};
use crate::inputs::{
    self, list, party_id, step_key, uuid, ConsentInput, DueInput, GoalInput, NewStepInput,
    OpenPlanInput, OutcomeInput, PersonInput, ReminderPolicyInput,
};
use crate::loaders::PlanAt;
use crate::personal::KeyAsRead;
use crate::types::{
    CloseReason, DocumentStatus, PlanHistoryEntry, PlanObject, PlanPayload, PlanStatus, Priority,
    Template,
};
use crate::{loaders, services, viewer, ApiError, ApiResult};

/// Loads the current plan and checks `action` on it; unknown ids are NOT_FOUND.
async fn readable_plan(
    ctx: &Context<'_>,
    id: &ID,
    action: impl for<'a> Fn(&'a Plan) -> Action<'a>,
) -> ApiResult<Arc<Plan>> {
    let plan_id = uuid("id", id)?;
    let plan = loaders(ctx).plan(PlanAt::latest(plan_id)).await?;
    may_read(ctx, plan_id, plan, action)
}

/// A plan the viewer may read, with its survivor and her key read in the same round trip
/// (shown only as far as the plan's `person` field allows).
async fn readable_plan_with_person(ctx: &Context<'_>, id: &ID) -> ApiResult<PlanObject> {
    let plan_id = uuid("id", id)?;
    let Some(read) = services(ctx)
        .handler
        .load_with_person::<Plan>(&PlanId(plan_id).stream_id(), |p| p.person)
        .await?
    else {
        return Err(ApiError::not_found("plan", plan_id));
    };
    let plan = may_read(ctx, plan_id, read.loaded.state, |p| Action::ReadPlan(p))?;
    let person = read.person.map(|(her, kept)| {
        let person = her.id.0;
        (her, KeyAsRead { person, kept })
    });
    Ok(PlanObject(plan, person))
}

/// `plan`, if the viewer may see it and read it through `action`.
fn may_read(
    ctx: &Context<'_>,
    plan_id: Uuid,
    plan: Option<Arc<Plan>>,
    action: impl for<'a> Fn(&'a Plan) -> Action<'a>,
) -> ApiResult<Arc<Plan>> {
    let plan = plan.ok_or_else(|| ApiError::not_found("plan", plan_id))?;
    let viewer = viewer(ctx)?;
    // A plan the viewer may not see at all is answered as one that does not exist; one they
    // see but may not read this way is refused.
    if authz::authorize(viewer, Action::ReadPlan(&plan)).is_err() {
        return Err(ApiError::not_found("plan", plan_id));
    }
    authz::authorize(viewer, action(&plan))?;
    Ok(plan)
}

#[derive(InputObject, Debug, Clone, Default)]
pub struct PlanFilterInput {
    #[graphql(default)]
    pub statuses: Vec<PlanStatus>,
    pub case_worker: Option<ID>,
    /// ISO 3166 alpha-2 code.
    pub origin_country: Option<String>,
    pub has_overdue_steps: Option<bool>,
    /// Opened at or after this instant ...
    pub opened_from: Option<DateTime<Utc>>,
    /// ... and before this one.
    pub opened_before: Option<DateTime<Utc>>,
}

#[derive(Default, Debug)]
pub struct PlanQuery;

#[Object]
impl PlanQuery {
    /// One plan, as far as you may see it. Null with an error (`NOT_FOUND`) when there is none
    /// you may see, which leaves the rest of the query's answer standing.
    async fn plan(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<PlanObject>> {
        if ctx.look_ahead().field("person").exists() {
            return Ok(Some(readable_plan_with_person(ctx, &id).await?));
        }
        Ok(Some(PlanObject::of(
            readable_plan(ctx, &id, |p| Action::ReadPlan(p)).await?,
        )))
    }

    /// The plans you may see, newest first.
    #[graphql(complexity = "crate::inputs::page_complexity(first, child_complexity)")]
    async fn plans(
        &self,
        ctx: &Context<'_>,
        filter: Option<PlanFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, PlanObject>> {
        let viewer = viewer(ctx)?;
        let scope = authz::plan_scope(viewer)?;
        let filter = filter.unwrap_or_default();
        let statuses = list("statuses", filter.statuses)?;
        let filter = PlanFilter {
            statuses: statuses
                .into_iter()
                .map(|s| {
                    homeward_workflows::plan::PlanStatus::from(s)
                        .as_str()
                        .to_owned()
                })
                .collect(),
            case_worker: filter
                .case_worker
                .as_ref()
                .map(|c| uuid("caseWorker", c))
                .transpose()?,
            origin_country: filter
                .origin_country
                .map(|c| homeward_workflows::text::CountryCode::parse(&c))
                .transpose()
                .map_err(|e| ApiError::validation(e.to_string()))?
                .map(|c| c.as_str().to_owned()),
            has_overdue_steps: filter.has_overdue_steps,
            opened_from: filter.opened_from,
            opened_before: filter.opened_before,
        };
        let page = inputs::page(first, after.as_deref())?;
        let s = services(ctx);
        let rows = s
            .reads
            .plans(&scope, &filter, s.clock.now(), inputs::probe(page))
            .await?;
        let (rows, has_next) = inputs::split_page(page, rows);
        let keys: Vec<PlanAt> = rows
            .iter()
            .map(|r| PlanAt {
                id: r.plan_id,
                at_least: r.version as u64,
            })
            .collect();
        let plans = loaders(ctx).plans.load_many(keys.iter().copied()).await?;
        loaders(ctx)
            .prime_parties(plans.values().map(|p| p.as_ref()))
            .await?;
        Ok(inputs::connection(page, keys, has_next, |key| {
            plans
                .get(&key)
                .filter(|plan| authz::authorize(viewer, Action::ReadPlan(plan)).is_ok())
                .map(|plan| PlanObject::of(plan.clone()))
        }))
    }

    /// The events of a plan, oldest first, with who did what and when (case file). Null with an
    /// error when there is no plan you may see.
    #[graphql(
        complexity = "crate::cost::STREAM_READ + crate::inputs::page_complexity(first, child_complexity)"
    )]
    async fn plan_history(
        &self,
        ctx: &Context<'_>,
        id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Option<Connection<String, PlanHistoryEntry>>> {
        let plan = readable_plan(ctx, &id, |p| Action::ReadCaseFile(p)).await?;
        let page = inputs::page(first, after.as_deref())?;
        let events = services(ctx)
            .handler
            .store()
            .read_stream_after(&plan.id.stream_id(), page.offset as u64)
            .await?;
        let (events, has_next) = inputs::split_page(page, events);
        let entries = events
            .iter()
            .map(PlanHistoryEntry::from_recorded)
            .collect::<ApiResult<Vec<_>>>()?;
        Ok(Some(inputs::connection(page, entries, has_next, Some)))
    }

    /// The plan as it stood at a past instant (case file); null if it was not opened yet then.
    #[graphql(complexity = "crate::cost::PLAN_FOLD + child_complexity")]
    async fn plan_as_of(
        &self,
        ctx: &Context<'_>,
        id: ID,
        at: DateTime<Utc>,
    ) -> ApiResult<Option<PlanObject>> {
        let plan = readable_plan(ctx, &id, |p| Action::ReadCaseFile(p)).await?;
        let then = services(ctx)
            .handler
            .load::<Plan>(&plan.id.stream_id(), ReadUntil::Time(at))
            .await?;
        Ok(then.state.map(PlanObject::of))
    }

    /// The templates plans can be opened from.
    async fn templates(&self, ctx: &Context<'_>) -> ApiResult<Vec<Template>> {
        viewer(ctx)?;
        Ok(template::builtin()
            .into_iter()
            .map(|t| Template {
                step_keys: t.steps.iter().map(|s| s.key.to_string()).collect(),
                name: t.name,
                version: t.version,
                title: t.title,
                follow_up_offsets_days: t.follow_up_offsets_days,
            })
            .collect())
    }
}

/// Runs a plan command for the viewer: authorised on the state it is decided on, idempotent by
/// key, and checked against `expectedVersion` when given.
async fn run(
    ctx: &Context<'_>,
    plan_id: Uuid,
    command: PlanCommand,
    expected_version: Option<u64>,
    idempotency_key: Option<String>,
) -> ApiResult<PlanPayload> {
    check_duties(ctx, plan_id, &command).await?;
    let stream = PlanId(plan_id).stream_id();
    let begun = idempotency::begin(ctx, Some(&stream), idempotency_key.as_deref())?;
    run_begun(ctx, begun, plan_id, command, expected_version, None).await
}

/// Whoever `command` names for a duty (a step's assignee, a case worker) fits it on this plan
/// (see [`duties`]). Checked only once the viewer may give the command at all, so that it tells
/// nothing about a plan they may not change; a plan or step that does not exist is left to the
/// command to report.
async fn check_duties(ctx: &Context<'_>, plan_id: Uuid, command: &PlanCommand) -> ApiResult<()> {
    let (party, step) = match command {
        PlanCommand::AssignStep {
            step,
            assignee: Some(party),
            ..
        } => (*party, Some(Err(step))),
        PlanCommand::AddStep(new) => match new.assignee {
            Some(party) => (party, Some(Ok(new.kind))),
            None => return Ok(()),
        },
        PlanCommand::ReassignCaseWorker { case_worker } => (*case_worker, None),
        _ => return Ok(()),
    };
    let Some(plan) = loaders(ctx).plan(PlanAt::latest(plan_id)).await? else {
        return Ok(());
    };
    if authz::authorize(viewer(ctx)?, Action::Command(&plan, command)).is_err() {
        return Ok(());
    }
    let duty = match step {
        None => Duty::CaseWorker,
        Some(Ok(kind)) => Duty::Step(kind),
        Some(Err(key)) => match plan.step(key) {
            Some(step) => Duty::Step(step.kind),
            None => return Ok(()),
        },
    };
    fit(ctx, party, duty, plan.organisation).await
}

/// Whether `party` may hold `duty` for `organisation` (see [`duties::fits`]).
async fn fit(
    ctx: &Context<'_>,
    party: homeward_workflows::PartyId,
    duty: Duty,
    organisation: OrganisationId,
) -> ApiResult<()> {
    let row = crate::parties::fresh_party(ctx, party)
        .await?
        .ok_or_else(|| ApiError::not_found("party", party))?;
    let organisation = crate::organisations::existing(ctx, organisation).await?;
    duties::fits(&row, duty, &organisation).map_err(|e| ApiError::validation(e.to_string()))
}

/// [`run`] once the idempotency key is looked up, with the organisation that registered the
/// person when the command opens a plan.
async fn run_begun(
    ctx: &Context<'_>,
    begun: Begun,
    plan_id: Uuid,
    command: PlanCommand,
    expected_version: Option<u64>,
    person_registered_by: Option<OrganisationId>,
) -> ApiResult<PlanPayload> {
    let viewer = viewer(ctx)?;
    let mut meta = begun.meta(viewer.party);
    meta.expected_version = expected_version;
    let allowed = |state: Option<&Plan>| match (state, &command) {
        (None, PlanCommand::OpenPlan { organisation, .. }) => authz::authorize(
            viewer,
            Action::OpenPlan {
                organisation: *organisation,
                // Unknown: no organisation's.
                person_registered_by: person_registered_by.unwrap_or(OrganisationId(Uuid::nil())),
            },
        ),
        (Some(plan), command) => authz::authorize(viewer, Action::Command(plan, command)),
        // Not opened: `decide` says so.
        (None, _) => Ok(()),
    };
    let outcome = services(ctx)
        .handler
        .handle_authorized::<Plan>(&PlanId(plan_id).stream_id(), &command, meta, &allowed)
        .await
        .map_err(|e| command_error(e, ApiError::from));
    let handled = begun.finish(ctx, outcome).await?;
    // A replayed command returns the first result: show it only to someone who may see it.
    authz::authorize(viewer, Action::ReadPlan(&handled.state))?;
    Ok(PlanPayload {
        version: handled.version,
        replayed: handled.duplicate,
        plan: PlanObject::of(handled.state),
    })
}

#[derive(Default, Debug)]
pub struct PlanMutation;

/// Commands on the plan as a whole.
#[Object]
impl PlanMutation {
    /// Records a survivor (their personal data lives only here). Returns the person's id.
    async fn register_person(
        &self,
        ctx: &Context<'_>,
        input: PersonInput,
        idempotency_key: Option<String>,
    ) -> ApiResult<ID> {
        let viewer = viewer(ctx)?;
        authz::authorize(viewer, Action::RegisterPerson)?;
        let begun = idempotency::begin(ctx, None, idempotency_key.as_deref())?;
        let person_id = PersonId(begun.new_id());
        let command = PersonCommand::Register {
            person_id,
            organisation: viewer.organisation,
            full_name: input.full_name,
            date_of_birth: input.date_of_birth,
            preferred_language: input.preferred_language,
            contact: ContactDetails {
                phone: input.phone.map(Personal::new),
                email: input.email.map(Personal::new),
                address: input.address.map(Personal::new),
            },
        };
        let outcome = services(ctx)
            .handler
            .handle::<Person>(&person_id.stream_id(), &command, begun.meta(viewer.party))
            .await
            .map_err(|e| command_error(e, |e| ApiError::validation(e.to_string())));
        Ok(ID(begun.finish(ctx, outcome).await?.state.id.to_string()))
    }

    /// Opens a plan for a survivor from a template version; its steps are copied into the plan.
    async fn open_plan(
        &self,
        ctx: &Context<'_>,
        input: OpenPlanInput,
        idempotency_key: Option<String>,
    ) -> ApiResult<PlanPayload> {
        let viewer = viewer(ctx)?;
        let template = template::find(&input.template, input.template_version)
            .map_err(|e| ApiError::validation(format!("{e}: see the templates query")))?;
        let person = PersonId(uuid("personId", &input.person_id)?);
        let origin_country = homeward_workflows::text::CountryCode::parse(&input.origin_country)
            .map_err(|e| ApiError::validation(e.to_string()))?;
        let case_worker = match &input.case_worker {
            Some(c) => party_id("caseWorker", c)?,
            None => viewer.party,
        };
        // The role first: only a case team opens plans, for the persons of its organisation.
        authz::authorize(
            viewer,
            Action::OpenPlan {
                organisation: viewer.organisation,
                person_registered_by: viewer.organisation,
            },
        )?;
        let registered = loaders(ctx)
            .person(person.0)
            .await?
            .filter(|p| p.organisation == viewer.organisation)
            // Another organisation's person is answered as one that does not exist.
            .ok_or_else(|| ApiError::not_found("person", person))?;
        if registered.erased_at.is_some() {
            return Err(ApiError::new(
                Code::Erased,
                "this person's data was erased: no plan can be opened for them",
            ));
        }
        let person_registered_by = registered.organisation;
        fit(ctx, case_worker, Duty::CaseWorker, viewer.organisation).await?;
        let follow_up_offsets_days = input
            .follow_up_offsets_days
            .map(|d| list("followUpOffsetsDays", d))
            .transpose()?;
        let begun = idempotency::begin(ctx, None, idempotency_key.as_deref())?;
        let plan_id = begun.new_id();
        let command = PlanCommand::OpenPlan {
            plan_id: PlanId(plan_id),
            person,
            template: Box::new(template),
            case_worker,
            organisation: viewer.organisation,
            origin_country,
            follow_up_offsets_days,
        };
        run_begun(
            ctx,
            begun,
            plan_id,
            command,
            None,
            Some(person_registered_by),
        )
        .await
    }

    /// Replaces the survivor's goals.
    async fn set_goals(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        goals: Vec<GoalInput>,
        expected_version: Option<u64>,
        idempotency_key: Option<String>,
    ) -> ApiResult<PlanPayload> {
        let goals = list("goals", goals)?
            .into_iter()
            .map(|g| homeward_workflows::plan::Goal {
                area: g.area.into(),
                aim: g.aim.into(),
            })
            .collect();
        let command = PlanCommand::SetGoals { goals };
        run(
            ctx,
            uuid("planId", &plan_id)?,
            command,
            expected_version,
            idempotency_key,
        )
        .await
    }

    async fn record_consent(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        consent: ConsentInput,
        expected_version: Option<u64>,
        idempotency_key: Option<String>,
    ) -> ApiResult<PlanPayload> {
        let command = PlanCommand::RecordConsent {
            purpose: consent.into_domain()?,
        };
        run(
            ctx,
            uuid("planId", &plan_id)?,
            command,
            expected_version,
            idempotency_key,
        )
        .await
    }

    /// Withdraws a consent. Withdrawing consent to return suspends the plan and its reminders.
    async fn withdraw_consent(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        consent: ConsentInput,
        expected_version: Option<u64>,
        idempotency_key: Option<String>,
    ) -> ApiResult<PlanPayload> {
        let command = PlanCommand::WithdrawConsent {
            purpose: consent.into_domain()?,
        };
        run(
            ctx,
            uuid("planId", &plan_id)?,
            command,
            expected_version,
            idempotency_key,
        )
        .await
    }

    /// Confirms the survivor left. `overrideReason` records why travel went ahead although its
    /// preconditions were not met.
    async fn confirm_departure(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        departed_at: DateTime<Utc>,
        override_reason: Option<String>,
        expected_version: Option<u64>,
        idempotency_key: Option<String>,
    ) -> ApiResult<PlanPayload> {
        let command = PlanCommand::ConfirmDeparture {
            departed_at,
            override_reason,
        };
        run(
            ctx,
            uuid("planId", &plan_id)?,
            command,
            expected_version,
            idempotency_key,
        )
        .await
    }

    /// Confirms the survivor arrived; follow-ups due after arrival get their dates.
    async fn confirm_arrival(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        arrived_at: DateTime<Utc>,
        expected_version: Option<u64>,
        idempotency_key: Option<String>,
    ) -> ApiResult<PlanPayload> {
        let command = PlanCommand::ConfirmArrival { arrived_at };
        run(
            ctx,
            uuid("planId", &plan_id)?,
            command,
            expected_version,
            idempotency_key,
        )
        .await
    }

    async fn close_plan(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        reason: CloseReason,
        expected_version: Option<u64>,
        idempotency_key: Option<String>,
    ) -> ApiResult<PlanPayload> {
        let command = PlanCommand::ClosePlan {
            reason: reason.into(),
        };
        run(
            ctx,
            uuid("planId", &plan_id)?,
            command,
            expected_version,
            idempotency_key,
        )
        .await
    }

    /// Hands a plan over to another social worker of its organisation (supervisors); recorded
    /// on the plan as `case_worker_reassigned`, with who did it.
    async fn reassign_case_worker(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        case_worker: ID,
        expected_version: Option<u64>,
        idempotency_key: Option<String>,
    ) -> ApiResult<PlanPayload> {
        let id = uuid("planId", &plan_id)?;
        let command = PlanCommand::ReassignCaseWorker {
            case_worker: party_id("caseWorker", &case_worker)?,
        };
        run(ctx, id, command, expected_version, idempotency_key).await
    }

    /// Hands every open plan of one social worker over to another of the same organisation
    /// (supervisors), each recorded on its plan; the plans handed over. Closed plans keep
    /// their case worker. If one fails, those before it stay handed over: send it again.
    async fn hand_over_cases(&self, ctx: &Context<'_>, from: ID, to: ID) -> ApiResult<Vec<ID>> {
        let viewer = viewer(ctx)?;
        authz::authorize(viewer, Action::HandOverCases)?;
        let from = party_id("from", &from)?;
        let to = party_id("to", &to)?;
        fit(ctx, to, Duty::CaseWorker, viewer.organisation).await?;
        let scope = authz::plan_scope(viewer)?;
        let mut handed_over = Vec::new();
        loop {
            // Each page starts at the beginning: the plans handed over leave it.
            let open = open_plans_of(ctx, &scope, Some(from), 100).await?;
            if open.is_empty() {
                break;
            }
            for plan in open {
                let command = PlanCommand::ReassignCaseWorker { case_worker: to };
                run(ctx, plan, command, None, None).await?;
                handed_over.push(ID(plan.to_string()));
            }
        }
        Ok(handed_over)
    }
}

/// Up to `limit` plans in `scope` that are not closed (and have `case_worker` as case worker,
/// when given).
pub(crate) async fn open_plans_of(
    ctx: &Context<'_>,
    scope: &homeward_store::reads::PlanScope,
    case_worker: Option<homeward_workflows::PartyId>,
    limit: i64,
) -> ApiResult<Vec<Uuid>> {
    use homeward_workflows::plan::PlanStatus;
    let filter = PlanFilter {
        case_worker: case_worker.map(|c| c.0),
        statuses: [
            PlanStatus::Draft,
            PlanStatus::Active,
            PlanStatus::Travelling,
            PlanStatus::Returned,
            PlanStatus::Monitoring,
        ]
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect(),
        ..PlanFilter::default()
    };
    let page = homeward_store::reads::Page { offset: 0, limit };
    let rows = services(ctx)
        .reads
        .plans(scope, &filter, services(ctx).clock.now(), page)
        .await?;
    Ok(rows.iter().map(|row| row.plan_id).collect())
}

#[derive(Default, Debug)]
pub struct StepMutation;

/// Commands on one step of a plan.
#[Object]
#[allow(clippy::too_many_arguments)]
impl StepMutation {
    async fn add_step(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        step: NewStepInput,
        expected_version: Option<u64>,
        idempotency_key: Option<String>,
    ) -> ApiResult<PlanPayload> {
        let command = PlanCommand::AddStep(Box::new(step.into_domain()?));
        run(
            ctx,
            uuid("planId", &plan_id)?,
            command,
            expected_version,
            idempotency_key,
        )
        .await
    }

    /// Removes a step that has not started.
    async fn remove_step(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        step: String,
        reason: String,
        expected_version: Option<u64>,
        idempotency_key: Option<String>,
    ) -> ApiResult<PlanPayload> {
        let command = PlanCommand::RemoveStep {
            step: step_key(&step)?,
            reason,
        };
        run(
            ctx,
            uuid("planId", &plan_id)?,
            command,
            expected_version,
            idempotency_key,
        )
        .await
    }

    /// Assigns a step to a party (or none) and a candidate group.
    async fn assign_step(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        step: String,
        assignee: Option<ID>,
        candidate_group: Option<String>,
        expected_version: Option<u64>,
        idempotency_key: Option<String>,
    ) -> ApiResult<PlanPayload> {
        let command = PlanCommand::AssignStep {
            step: step_key(&step)?,
            assignee: assignee
                .as_ref()
                .map(|a| party_id("assignee", a))
                .transpose()?,
            candidate_group,
        };
        run(
            ctx,
            uuid("planId", &plan_id)?,
            command,
            expected_version,
            idempotency_key,
        )
        .await
    }

    async fn reschedule_step(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        step: String,
        due: Option<DueInput>,
        follow_up_on: Option<NaiveDate>,
        expected_version: Option<u64>,
        idempotency_key: Option<String>,
    ) -> ApiResult<PlanPayload> {
        let command = PlanCommand::RescheduleStep {
            step: step_key(&step)?,
            due: due.map(DueInput::into_domain),
            follow_up_on,
        };
        run(
            ctx,
            uuid("planId", &plan_id)?,
            command,
            expected_version,
            idempotency_key,
        )
        .await
    }

    /// Replaces the steps this one waits for (cycles are refused).
    async fn change_dependencies(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        step: String,
        depends_on: Vec<String>,
        expected_version: Option<u64>,
        idempotency_key: Option<String>,
    ) -> ApiResult<PlanPayload> {
        let command = PlanCommand::ChangeDependencies {
            step: step_key(&step)?,
            depends_on: list("dependsOn", depends_on)?
                .iter()
                .map(|k| step_key(k))
                .collect::<ApiResult<_>>()?,
        };
        run(
            ctx,
            uuid("planId", &plan_id)?,
            command,
            expected_version,
            idempotency_key,
        )
        .await
    }

    async fn prioritise_step(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        step: String,
        priority: Priority,
        expected_version: Option<u64>,
        idempotency_key: Option<String>,
    ) -> ApiResult<PlanPayload> {
        let command = PlanCommand::PrioritiseStep {
            step: step_key(&step)?,
            priority: priority.into(),
        };
        run(
            ctx,
            uuid("planId", &plan_id)?,
            command,
            expected_version,
            idempotency_key,
        )
        .await
    }

    /// Sets when the step's assignee is reminded and when it escalates.
    async fn set_reminder_policy(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        step: String,
        policy: ReminderPolicyInput,
        expected_version: Option<u64>,
        idempotency_key: Option<String>,
    ) -> ApiResult<PlanPayload> {
        let command = PlanCommand::SetReminderPolicy {
            step: step_key(&step)?,
            policy: policy.into(),
        };
        run(
            ctx,
            uuid("planId", &plan_id)?,
            command,
            expected_version,
            idempotency_key,
        )
        .await
    }

    /// Starts a ready step. `overrideReason` starts travel before its preconditions are met.
    async fn start_step(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        step: String,
        override_reason: Option<String>,
        expected_version: Option<u64>,
        idempotency_key: Option<String>,
    ) -> ApiResult<PlanPayload> {
        let command = PlanCommand::StartStep {
            step: step_key(&step)?,
            override_reason,
        };
        run(
            ctx,
            uuid("planId", &plan_id)?,
            command,
            expected_version,
            idempotency_key,
        )
        .await
    }

    async fn block_step(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        step: String,
        reason: String,
        expected_version: Option<u64>,
        idempotency_key: Option<String>,
    ) -> ApiResult<PlanPayload> {
        let command = PlanCommand::BlockStep {
            step: step_key(&step)?,
            reason,
        };
        run(
            ctx,
            uuid("planId", &plan_id)?,
            command,
            expected_version,
            idempotency_key,
        )
        .await
    }

    async fn unblock_step(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        step: String,
        expected_version: Option<u64>,
        idempotency_key: Option<String>,
    ) -> ApiResult<PlanPayload> {
        let command = PlanCommand::UnblockStep {
            step: step_key(&step)?,
        };
        run(
            ctx,
            uuid("planId", &plan_id)?,
            command,
            expected_version,
            idempotency_key,
        )
        .await
    }

    /// The assignee acknowledges the task: seen, and taken on.
    async fn acknowledge_step(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        step: String,
        expected_version: Option<u64>,
        idempotency_key: Option<String>,
    ) -> ApiResult<PlanPayload> {
        let command = PlanCommand::AcknowledgeStep {
            step: step_key(&step)?,
        };
        run(
            ctx,
            uuid("planId", &plan_id)?,
            command,
            expected_version,
            idempotency_key,
        )
        .await
    }

    /// Completes a step. A follow-up visit is completed with its `outcome`.
    async fn complete_step(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        step: String,
        outcome: Option<OutcomeInput>,
        expected_version: Option<u64>,
        idempotency_key: Option<String>,
    ) -> ApiResult<PlanPayload> {
        let step = step_key(&step)?;
        let command = match outcome {
            Some(o) => PlanCommand::RecordFollowUp {
                step,
                visited_on: o.visited_on,
                wellbeing: o.wellbeing.into(),
                concerns: list("concerns", o.concerns)?
                    .into_iter()
                    .map(Into::into)
                    .collect(),
            },
            None => PlanCommand::CompleteStep { step },
        };
        run(
            ctx,
            uuid("planId", &plan_id)?,
            command,
            expected_version,
            idempotency_key,
        )
        .await
    }

    async fn cancel_step(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        step: String,
        reason: String,
        expected_version: Option<u64>,
        idempotency_key: Option<String>,
    ) -> ApiResult<PlanPayload> {
        let command = PlanCommand::CancelStep {
            step: step_key(&step)?,
            reason,
        };
        run(
            ctx,
            uuid("planId", &plan_id)?,
            command,
            expected_version,
            idempotency_key,
        )
        .await
    }

    /// Moves a travel document forward: requested, submitted, issued, delivered.
    async fn update_document_status(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        step: String,
        status: DocumentStatus,
        expected_version: Option<u64>,
        idempotency_key: Option<String>,
    ) -> ApiResult<PlanPayload> {
        let command = PlanCommand::UpdateDocumentStatus {
            step: step_key(&step)?,
            status: status.into(),
        };
        run(
            ctx,
            uuid("planId", &plan_id)?,
            command,
            expected_version,
            idempotency_key,
        )
        .await
    }

    /// Records a follow-up visit: how the survivor is doing and what concerns came up.
    async fn record_follow_up(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
        step: String,
        outcome: OutcomeInput,
        expected_version: Option<u64>,
        idempotency_key: Option<String>,
    ) -> ApiResult<PlanPayload> {
        let command = PlanCommand::RecordFollowUp {
            step: step_key(&step)?,
            visited_on: outcome.visited_on,
            wellbeing: outcome.wellbeing.into(),
            concerns: list("concerns", outcome.concerns)?
                .into_iter()
                .map(Into::into)
                .collect(),
        };
        run(
            ctx,
            uuid("planId", &plan_id)?,
            command,
            expected_version,
            idempotency_key,
        )
        .await
    }
}
