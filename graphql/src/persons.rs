//! A survivor's own record, for the case team of the organisation that registered her: reading
//! it, correcting her details (her right to have them corrected, recorded with who and why),
//! case notes, and erasure.

use async_graphql::{Context, InputObject, MaybeUndefined, Object, ID};
use homeward_engine::authz::{self, Action, PersonAccess};
use homeward_engine::CommandMeta;
use homeward_workflows::person::{Change, Person, PersonCommand};
use homeward_workflows::PersonId;

use crate::error::{command_error, Code};
use crate::idempotency;
use crate::inputs::{connection, page, probe, split_page, uuid};
use crate::personal::{self, field};
use crate::types::{ErasureReason, PersonObject};
use crate::{loaders, services, viewer, ApiError, ApiResult};
use async_graphql::connection::Connection;

/// Corrections to a survivor's details: a detail left out stays as it is, `null` clears it.
#[derive(InputObject, Debug)]
pub struct PersonCorrectionInput {
    pub full_name: Option<String>,
    pub date_of_birth: MaybeUndefined<chrono::NaiveDate>,
    /// BCP 47 language tag, for example `fr` or `pt-BR`.
    pub preferred_language: MaybeUndefined<String>,
    pub phone: MaybeUndefined<String>,
    pub email: MaybeUndefined<String>,
    pub address: MaybeUndefined<String>,
}

fn change<T>(value: MaybeUndefined<T>) -> Change<T> {
    match value {
        MaybeUndefined::Undefined => Change::Keep,
        MaybeUndefined::Null => Change::Clear,
        MaybeUndefined::Value(v) => Change::Set(v),
    }
}

/// The person, if the viewer is of the case team of the organisation that registered her
/// (to anyone else she does not exist).
async fn own_person(ctx: &Context<'_>, id: &ID) -> ApiResult<(PersonId, std::sync::Arc<Person>)> {
    let viewer = viewer(ctx)?;
    let person = PersonId(uuid("personId", id)?);
    let found = loaders(ctx)
        .person(person.0)
        .await?
        .filter(|p| {
            authz::authorize(
                viewer,
                Action::ChangePerson {
                    registered_by: p.organisation,
                },
            )
            .is_ok()
        })
        .ok_or_else(|| ApiError::not_found("person", person))?;
    Ok((person, found))
}

#[derive(Default, Debug)]
pub struct PersonQuery;

#[Object]
impl PersonQuery {
    /// A survivor registered by your organisation (the case team's), with her notes.
    async fn person(&self, ctx: &Context<'_>, id: ID) -> ApiResult<PersonObject> {
        let (_, person) = own_person(ctx, &id).await?;
        Ok(PersonObject {
            person,
            access: PersonAccess::Full,
            key: None,
        })
    }

    /// Finds your organisation's survivors by name and date of birth (the case team): every
    /// part of the name given must be one of hers, in any order, accents and case ignored
    /// ("adebayo ngozi" finds "Ngozi Adébáyọ̀"); whole parts only. Give a name, a date of
    /// birth, or both. Searched through a keyed index: her name is never stored searchable.
    async fn search_persons(
        &self,
        ctx: &Context<'_>,
        name: Option<String>,
        date_of_birth: Option<chrono::NaiveDate>,
        #[graphql(desc = "At most this many (1 to 50; 20 when left out).")] first: Option<i32>,
    ) -> ApiResult<Vec<PersonObject>> {
        let first = first.unwrap_or(20);
        let viewer = viewer(ctx)?;
        authz::authorize(
            viewer,
            Action::ChangePerson {
                registered_by: viewer.organisation,
            },
        )?;
        if !(1..=MAX_FOUND).contains(&first) {
            return Err(ApiError::validation(format!(
                "first must be between 1 and {MAX_FOUND}, not {first}"
            )));
        }
        // Checked as a name is when it is recorded (length, no control or invisible
        // characters).
        let name = match name.filter(|n| !n.trim().is_empty()) {
            Some(n) => {
                homeward_workflows::text::bounded("name", &n, homeward_workflows::person::MAX_NAME)
                    .map_err(|e| ApiError::validation(e.to_string()))?
            }
            None => String::new(),
        };
        let services = services(ctx);
        let index = services
            .vault
            .search()
            .ok_or_else(|| ApiError::internal(&"no search index on this server"))?;
        let terms = index
            .query(viewer.organisation.0, &name, date_of_birth)
            .map_err(|e| ApiError::validation(e.to_string()))?;
        let found = services
            .reads
            .persons_matching(viewer.organisation.0, &terms, i64::from(first))
            .await?;
        let loaded = loaders(ctx).persons(&found).await?;
        Ok(found
            .iter()
            .filter_map(|id| loaded.get(id).cloned())
            .filter(|p| p.organisation == viewer.organisation && p.erased_at.is_none())
            .map(|person| PersonObject {
                person,
                access: PersonAccess::Full,
                key: None,
            })
            .collect())
    }

    /// Your organisation's survivors whose data the retention rule will erase within
    /// `withinDays` (default 90), soonest first, those on legal hold too (supervisors).
    #[graphql(complexity = "crate::inputs::page_complexity(first, child_complexity)")]
    async fn upcoming_erasures(
        &self,
        ctx: &Context<'_>,
        within_days: Option<i32>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, UpcomingErasure>> {
        let organisation = deciding_organisation(ctx)?;
        let within = days("withinDays", within_days.unwrap_or(90))?;
        let page = page(first, after.as_deref())?;
        let services = services(ctx);
        let until = services.clock.now() + within;
        let rows = services
            .reads
            .upcoming_erasures(organisation, until, probe(page))
            .await?;
        with_persons(
            ctx,
            page,
            rows,
            |r| r.person_id,
            |row, person| UpcomingErasure { row, person },
        )
        .await
    }

    /// Your organisation's survivors with no plan under way (no plan, or only drafts beside
    /// closed ones) whom nobody has touched for `untouchedDays` (default 365): the retention
    /// rule does not erase them; a supervisor decides. Least recently touched first.
    #[graphql(complexity = "crate::inputs::page_complexity(first, child_complexity)")]
    async fn persons_to_review(
        &self,
        ctx: &Context<'_>,
        untouched_days: Option<i32>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, PersonToReview>> {
        let organisation = deciding_organisation(ctx)?;
        let untouched = days("untouchedDays", untouched_days.unwrap_or(365))?;
        let page = page(first, after.as_deref())?;
        let services = services(ctx);
        let before = services.clock.now() - untouched;
        let rows = services
            .reads
            .persons_to_review(organisation, before, probe(page))
            .await?;
        with_persons(
            ctx,
            page,
            rows,
            |r| r.person_id,
            |row, person| PersonToReview { row, person },
        )
        .await
    }

    /// Who has read a survivor's personal data, newest first: when, which fields, through
    /// which operation (supervisors of the organisation that registered her). Nobody can change
    /// or delete it.
    async fn access_log(
        &self,
        ctx: &Context<'_>,
        person_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, AccessLogEntry>> {
        let viewer = viewer(ctx)?;
        let person = PersonId(uuid("personId", &person_id)?);
        let page = page(first, after.as_deref())?;
        let registered_by = loaders(ctx)
            .person(person.0)
            .await?
            .filter(|p| p.organisation == viewer.organisation)
            .ok_or_else(|| ApiError::not_found("person", person))?
            .organisation;
        authz::authorize(viewer, Action::ReadAccessLog { registered_by })?;
        let rows = services(ctx)
            .access_log
            .access_log(person.0, probe(page))
            .await?;
        let (rows, more) = split_page(page, rows);
        Ok(connection(page, rows, more, |e| Some(AccessLogEntry(e))))
    }

    /// Everything Homeward holds about a survivor, as one JSON document: her right of access
    /// (the case team of the organisation that registered her). Reading it is recorded in the
    /// access audit like any other read.
    async fn person_record(
        &self,
        ctx: &Context<'_>,
        person_id: ID,
    ) -> ApiResult<async_graphql::Json<serde_json::Value>> {
        let (person, current) = own_person(ctx, &person_id).await?;
        let stream = person.stream_id();
        let services = services(ctx);
        let mut history = Vec::new();
        for event in services
            .handler
            .store()
            .read_stream(&stream, homeward_store::ReadUntil::End)
            .await?
        {
            let mut data: serde_json::Value =
                serde_json::from_str(&event.payload).map_err(|e| ApiError::internal(&e))?;
            personal::open_payload(ctx, &event.event_type, &stream, &mut data).await?;
            history.push(serde_json::json!({
                "type": event.event_type,
                "occurredAt": event.occurred_at,
                "by": event.metadata.actor.0,
                "data": data,
            }));
        }
        let mut plans = Vec::new();
        for row in services.reads.plans_of_person(person.0).await? {
            let plan_stream = homeward_workflows::PlanId(row.plan_id).stream_id();
            let mut events = Vec::new();
            for event in services
                .handler
                .store()
                .read_stream(&plan_stream, homeward_store::ReadUntil::End)
                .await?
            {
                let mut data: serde_json::Value =
                    serde_json::from_str(&event.payload).map_err(|e| ApiError::internal(&e))?;
                personal::open_payload(ctx, &event.event_type, &plan_stream, &mut data).await?;
                events.push(serde_json::json!({
                    "type": event.event_type,
                    "occurredAt": event.occurred_at,
                    "data": data,
                }));
            }
            plans.push(serde_json::json!({
                "planId": row.plan_id,
                "status": row.status,
                "openedAt": row.opened_at,
                "closedAt": row.closed_at,
                "history": events,
            }));
        }
        Ok(async_graphql::Json(serde_json::json!({
            "personId": person.0,
            "registeredBy": current.organisation.0,
            "erasedAt": current.erased_at,
            "history": history,
            "plans": plans,
        })))
    }
}

/// The most persons one search returns: a search narrows, it does not list.
const MAX_FOUND: i32 = 50;

/// The viewer's organisation, when the viewer decides on its survivors' erasure (a
/// supervisor).
fn deciding_organisation(ctx: &Context<'_>) -> ApiResult<uuid::Uuid> {
    let viewer = viewer(ctx)?;
    authz::authorize(
        viewer,
        Action::DecideErasure {
            registered_by: viewer.organisation,
        },
    )?;
    Ok(viewer.organisation.0)
}

/// A page of `rows` (from its probe), each with its person, loaded in one batch.
async fn with_persons<R, T: async_graphql::OutputType>(
    ctx: &Context<'_>,
    page: homeward_store::reads::Page,
    rows: Vec<R>,
    person_of: impl Fn(&R) -> uuid::Uuid,
    node: impl Fn(R, std::sync::Arc<Person>) -> T,
) -> ApiResult<Connection<String, T>> {
    let (rows, more) = split_page(page, rows);
    let ids: Vec<_> = rows.iter().map(&person_of).collect();
    let loaded = loaders(ctx).persons(&ids).await?;
    Ok(connection(page, rows, more, |row| {
        let person = loaded.get(&person_of(&row))?.clone();
        Some(node(row, person))
    }))
}

/// A number of days between 1 and ten years, as a duration.
fn days(argument: &str, n: i32) -> ApiResult<chrono::Duration> {
    if !(1..=3660).contains(&n) {
        return Err(ApiError::validation(format!(
            "{argument} must be between 1 and 3660 days, not {n}"
        )));
    }
    Ok(chrono::Duration::days(i64::from(n)))
}

/// A survivor whose data the retention rule will erase.
#[derive(Debug, Clone)]
pub struct UpcomingErasure {
    row: homeward_store::reads::UpcomingErasure,
    person: std::sync::Arc<Person>,
}

#[Object]
impl UpcomingErasure {
    async fn person(&self) -> PersonObject {
        PersonObject {
            person: self.person.clone(),
            access: PersonAccess::Full,
            key: None,
        }
    }
    /// When her last plan closed: the retention period runs from then.
    async fn last_closed_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.row.last_closed_at
    }
    /// When the retention rule erases her data, unless a legal hold keeps it.
    async fn erase_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.row.erase_at
    }
    /// Whether a legal hold stops the erasure (see `person.legalHold` for why).
    async fn on_legal_hold(&self) -> bool {
        self.row.held_since.is_some()
    }
}

/// A survivor the retention rule leaves to a supervisor: no plan under way, untouched a long
/// time.
#[derive(Debug, Clone)]
pub struct PersonToReview {
    row: homeward_store::reads::PersonToReview,
    person: std::sync::Arc<Person>,
}

#[Object]
impl PersonToReview {
    async fn person(&self) -> PersonObject {
        PersonObject {
            person: self.person.clone(),
            access: PersonAccess::Full,
            key: None,
        }
    }
    /// When anything was last recorded about her or in one of her plans.
    async fn last_activity_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.row.last_activity_at
    }
    /// Her plans still in draft.
    async fn drafts(&self) -> i64 {
        self.row.drafts
    }
    async fn on_legal_hold(&self) -> bool {
        self.row.held_since.is_some()
    }
}

/// One operation's reading of a survivor's personal data.
#[derive(Debug, Clone)]
pub struct AccessLogEntry(homeward_store::access_log::AccessEntry);

#[Object]
impl AccessLogEntry {
    async fn at(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.at
    }
    /// Who read it.
    async fn party(&self, ctx: &Context<'_>) -> ApiResult<Option<crate::types::PartyObject>> {
        crate::types::party(ctx, Some(self.0.party)).await
    }
    /// The fields read, by their paths in the record (`full_name`, `contact.phone`).
    async fn fields(&self) -> &[String] {
        &self.0.fields
    }
    /// What read them: the API's root fields (`plan`, `personRecord`).
    async fn operation(&self) -> &str {
        &self.0.operation
    }
}

/// A detail as it stands, to compare a correction with: opened without showing it to anyone
/// (so not an access for the audit); `None` once erased.
async fn current_value<T: serde::de::DeserializeOwned + Clone>(
    ctx: &Context<'_>,
    value: &homeward_workflows::Personal<T>,
    stream: &str,
    field: &str,
) -> ApiResult<Option<T>> {
    Ok(services(ctx)
        .vault
        .open(value, stream, field)
        .await?
        .value())
}

/// `Keep` for a change to what the detail already holds.
async fn unless_same<T: serde::de::DeserializeOwned + Clone + PartialEq>(
    ctx: &Context<'_>,
    change: Change<T>,
    current: Option<&homeward_workflows::Personal<T>>,
    stream: &str,
    field: &str,
) -> ApiResult<Change<T>> {
    let current = match current {
        Some(c) => current_value(ctx, c, stream, field).await?,
        None => None,
    };
    Ok(match change {
        Change::Set(v) if Some(&v) == current.as_ref() => Change::Keep,
        Change::Clear if current.is_none() => Change::Keep,
        other => other,
    })
}

#[derive(Default, Debug)]
pub struct PersonMutation;

async fn run_person(
    ctx: &Context<'_>,
    person: PersonId,
    command: PersonCommand,
    expected_version: Option<i32>,
    idempotency_key: Option<String>,
) -> ApiResult<PersonObject> {
    let viewer = viewer(ctx)?;
    let stream = person.stream_id();
    let begun = idempotency::begin(ctx, Some(&stream), idempotency_key.as_deref())?;
    let mut meta = begun.meta(viewer.party);
    if let Some(v) = expected_version {
        let v = u64::try_from(v)
            .map_err(|_| ApiError::validation("expectedVersion cannot be negative"))?;
        meta = meta.expecting(v);
    }
    let outcome = services(ctx)
        .handler
        .handle::<Person>(&stream, &command, meta)
        .await
        .map_err(|e| {
            command_error(e, |e| match e {
                homeward_workflows::person::PersonError::Erased => {
                    ApiError::new(Code::Erased, e.to_string())
                }
                other => ApiError::validation(other.to_string()),
            })
        });
    let handled = begun.finish(ctx, outcome).await?;
    Ok(PersonObject {
        person: handled.state,
        access: PersonAccess::Full,
        key: None,
    })
}

#[Object]
impl PersonMutation {
    /// Corrects a survivor's details, saying why (her right to have them corrected): the case
    /// team of the organisation that registered her. Who corrected what, and why, is recorded.
    async fn update_person(
        &self,
        ctx: &Context<'_>,
        person_id: ID,
        input: PersonCorrectionInput,
        reason: String,
        expected_version: Option<i32>,
        idempotency_key: Option<String>,
    ) -> ApiResult<PersonObject> {
        let (person, current) = own_person(ctx, &person_id).await?;
        let stream = person.stream_id();
        // The record holds sealed values, which the domain cannot compare: a detail given as it
        // already stands is not a change.
        let full_name = match input.full_name {
            Some(name)
                if Some(&name)
                    == current_value(ctx, &current.full_name, &stream, field::FULL_NAME)
                        .await?
                        .as_ref() =>
            {
                None
            }
            other => other,
        };
        let date_of_birth = unless_same(
            ctx,
            change(input.date_of_birth),
            current.date_of_birth.as_ref(),
            &stream,
            field::DATE_OF_BIRTH,
        )
        .await?;
        let language = match &current.preferred_language {
            Some(l) => current_value(ctx, l, &stream, field::PREFERRED_LANGUAGE)
                .await?
                .map(|l| l.as_str().to_owned()),
            None => None,
        };
        let preferred_language = match change(input.preferred_language) {
            Change::Set(l) if Some(&l) == language.as_ref() => Change::Keep,
            Change::Clear if language.is_none() => Change::Keep,
            other => other,
        };
        let phone = unless_same(
            ctx,
            change(input.phone),
            current.contact.phone.as_ref(),
            &stream,
            field::PHONE,
        )
        .await?;
        let email = unless_same(
            ctx,
            change(input.email),
            current.contact.email.as_ref(),
            &stream,
            field::EMAIL,
        )
        .await?;
        let address = unless_same(
            ctx,
            change(input.address),
            current.contact.address.as_ref(),
            &stream,
            field::ADDRESS,
        )
        .await?;
        let command = PersonCommand::Correct {
            full_name,
            date_of_birth,
            preferred_language,
            phone,
            email,
            address,
            reason,
        };
        run_person(ctx, person, command, expected_version, idempotency_key).await
    }

    /// Adds a case note about a survivor (sealed like the rest of her data; the case team of the
    /// organisation that registered her reads it).
    async fn add_note(
        &self,
        ctx: &Context<'_>,
        person_id: ID,
        text: String,
        idempotency_key: Option<String>,
    ) -> ApiResult<PersonObject> {
        let (person, _) = own_person(ctx, &person_id).await?;
        run_person(
            ctx,
            person,
            PersonCommand::AddNote { text },
            None,
            idempotency_key,
        )
        .await
    }

    /// Keeps a survivor's data from erasure, by hand or by the retention rule, until the hold
    /// is lifted (supervisors of the organisation that registered her), saying why: a court
    /// case, an inquiry. The reason is sealed like the rest of her data.
    async fn place_legal_hold(
        &self,
        ctx: &Context<'_>,
        person_id: ID,
        reason: String,
        idempotency_key: Option<String>,
    ) -> ApiResult<PersonObject> {
        let person = person_to_decide_on(ctx, &person_id).await?;
        let command = PersonCommand::PlaceLegalHold { reason };
        run_person(ctx, person, command, None, idempotency_key).await
    }

    /// Lifts a legal hold, saying why (supervisors of the organisation that registered her):
    /// the retention rule applies again, and erases at its next sweep if her time has come.
    async fn lift_legal_hold(
        &self,
        ctx: &Context<'_>,
        person_id: ID,
        reason: String,
        idempotency_key: Option<String>,
    ) -> ApiResult<PersonObject> {
        let person = person_to_decide_on(ctx, &person_id).await?;
        let command = PersonCommand::LiftLegalHold { reason };
        run_person(ctx, person, command, None, idempotency_key).await
    }

    /// Erases a survivor's data for good (supervisors of the organisation that registered
    /// her): her key is destroyed, everything personal recorded about her reads `[erased]` from
    /// now on, and her plans' facts (steps, dates, statuses) stay for the programme's figures.
    /// Her plans must be closed first. Cannot be undone.
    async fn erase_person(
        &self,
        ctx: &Context<'_>,
        person_id: ID,
        reason: ErasureReason,
    ) -> ApiResult<ErasedPerson> {
        let viewer = viewer(ctx)?;
        let person = PersonId(uuid("personId", &person_id)?);
        if reason == ErasureReason::RetentionEnded {
            return Err(ApiError::validation(
                "RETENTION_ENDED is recorded by the retention rule itself: give the reason you \
                 erase for",
            ));
        }
        let services = services(ctx);
        let done = homeward_engine::erasure::erase_person(
            &services.handler,
            &services.reads,
            &services.vault,
            Some(viewer),
            person,
            reason.into(),
            CommandMeta::new(viewer.party),
        )
        .await
        .map_err(erasure_error)?;
        Ok(ErasedPerson {
            person_id: ID(person.0.to_string()),
            erased_at: done
                .state
                .erased_at
                .unwrap_or_else(|| services.handler.now()),
        })
    }
}

/// The person, if the viewer is a supervisor of the organisation that registered her (to
/// anyone else of another organisation she does not exist).
async fn person_to_decide_on(ctx: &Context<'_>, id: &ID) -> ApiResult<PersonId> {
    let viewer = viewer(ctx)?;
    let person = PersonId(uuid("personId", id)?);
    let registered_by = loaders(ctx)
        .person(person.0)
        .await?
        .filter(|p| p.organisation == viewer.organisation)
        .ok_or_else(|| ApiError::not_found("person", person))?
        .organisation;
    authz::authorize(viewer, Action::DecideErasure { registered_by })?;
    Ok(person)
}

fn erasure_error(e: homeward_engine::erasure::ErasureError) -> ApiError {
    use homeward_engine::erasure::ErasureError as E;
    match e {
        E::NotFound => ApiError::new(Code::NotFound, "no person with this id"),
        E::AlreadyErased(_) => ApiError::new(Code::Erased, e.to_string()),
        E::OnLegalHold(_) => ApiError::new(Code::LegalHold, e.to_string()),
        E::OpenPlans(_) => ApiError::validation(e.to_string()),
        E::Denied(denied) => denied.into(),
        E::Vault(v) => ApiError::internal(&v),
        E::Command(c) => command_error(c, |e| ApiError::validation(e.to_string())),
        E::Store(s) => s.into(),
    }
}

/// A survivor whose data was erased.
#[derive(async_graphql::SimpleObject, Debug, Clone)]
pub struct ErasedPerson {
    pub person_id: ID,
    pub erased_at: chrono::DateTime<chrono::Utc>,
}
