//! The plans: a list with filters (status, lateness, country of origin) in pages, and the form
//! that registers a survivor and opens her plan from a template (`registerPerson`, then
//! `openPlan`), the first thing a social worker does with someone.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::Form;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use homeward_engine::reminders::plan_reference;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::{self, Connection, Failed};
use super::inbox::id_of;
use super::{page, see_other, signed_form, signed_in, unavailable, Chrome, Signed};
use crate::routes::AppState;

const PAGE_SIZE: i32 = 25;

const LIST: &str = "query ConsolePlans($filter: PlanFilterInput, $first: Int, $after: String) {
  plans(filter: $filter, first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id status originCountry openedAt caseWorker { displayName } person { fullName }
            steps { overdue } }
  }
}";

const STATUSES: [&str; 6] = [
    "DRAFT",
    "ACTIVE",
    "TRAVELLING",
    "RETURNED",
    "MONITORING",
    "CLOSED",
];

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListFilters {
    #[serde(default)]
    status: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    overdue: String,
    /// A case worker's id.
    #[serde(default)]
    worker: String,
    #[serde(default)]
    after: String,
}

#[derive(Debug, Deserialize)]
struct ListAnswer {
    plans: Connection<PlanRow>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlanRow {
    id: String,
    status: String,
    origin_country: String,
    opened_at: DateTime<Utc>,
    case_worker: Option<Value>,
    person: Option<Value>,
    steps: Vec<Value>,
}

pub(crate) struct Row {
    pub href: String,
    pub reference: String,
    pub status: String,
    pub country: String,
    pub opened: String,
    pub case_worker: String,
    pub person: Option<String>,
    /// How many of its steps are overdue, in words; none when none is.
    pub overdue: Option<String>,
}

#[derive(Template)]
#[template(path = "console/plans.html")]
struct PlansPage {
    chrome: Chrome,
    rows: Vec<Row>,
    statuses: Vec<(&'static str, String, bool)>,
    filters: ListFilters,
    country_error: Option<String>,
    next_page: Option<String>,
    first_page: Option<String>,
    /// Whether this party opens plans (the form's link is shown) and searches survivors.
    opens_plans: bool,
    /// The organisation's social workers to filter by: (id, name, chosen).
    workers: Vec<(String, String, bool)>,
    /// The search form's fields: empty on this page.
    name: String,
    born: String,
    error: Option<String>,
}

fn href(filters: &ListFilters, after: Option<&str>) -> String {
    let mut pairs: Vec<(&str, &str)> = [
        ("status", filters.status.as_str()),
        ("country", filters.country.as_str()),
        ("overdue", filters.overdue.as_str()),
        ("worker", filters.worker.as_str()),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .collect();
    if let Some(after) = after {
        pairs.push(("after", after));
    }
    if pairs.is_empty() {
        "/plans".to_owned()
    } else {
        format!(
            "/plans?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    }
}

fn opens_plans(signed: &Signed) -> bool {
    use homeward_workflows::party::PartyRole;
    matches!(
        signed.session.viewer.role,
        PartyRole::SocialWorker | PartyRole::Supervisor
    )
}

/// A country code as the API takes it (ISO 3166 alpha-2), or none when the field is empty.
fn country(text: &str) -> Result<Option<String>, ()> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() == 2 && text.chars().all(|c| c.is_ascii_alphabetic()) {
        Ok(Some(text.to_ascii_uppercase()))
    } else {
        Err(())
    }
}

/// `GET /plans`.
pub(crate) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    filters: Result<Query<ListFilters>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let here = super::here(&uri);
    let signed = match signed_in(&state, &headers, &here).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let lang = signed.lang;
    let filters = filters.map(|Query(f)| f).unwrap_or_default();
    let tz: Tz = signed.session.party.time_zone.parse().unwrap_or(Tz::UTC);
    let status = STATUSES.iter().find(|s| **s == filters.status).copied();
    let mut shown = PlansPage {
        chrome: Chrome::signed(lang, "plans-title", &here, &signed),
        rows: Vec::new(),
        statuses: STATUSES
            .iter()
            .map(|s| {
                (
                    *s,
                    lang.text(&format!("plan-status-{}", id_of(s))),
                    Some(*s) == status,
                )
            })
            .collect(),
        filters: ListFilters::default(),
        country_error: None,
        next_page: None,
        first_page: None,
        opens_plans: opens_plans(&signed),
        workers: Vec::new(),
        name: String::new(),
        born: String::new(),
        error: None,
    };
    let Ok(country) = country(&filters.country) else {
        shown.country_error = Some(lang.text("plans-bad-country"));
        shown.filters = filters;
        return page(StatusCode::UNPROCESSABLE_ENTITY, shown);
    };
    let mut filter = json!({});
    if let Some(status) = status {
        filter["statuses"] = json!([status]);
    }
    if let Some(country) = country {
        filter["originCountry"] = json!(country);
    }
    if !filters.overdue.is_empty() {
        filter["hasOverdueSteps"] = json!(true);
    }
    if shown.opens_plans {
        match super::team::case_team(&state, &signed).await {
            Ok(workers) => {
                shown.workers = workers
                    .into_iter()
                    .filter(super::team::PartyOut::is_social_worker)
                    .map(|w| {
                        let chosen = w.id == filters.worker;
                        (w.id, w.display_name, chosen)
                    })
                    .collect();
            }
            Err(e) => return unavailable(lang, e),
        }
    }
    if let Ok(worker) = uuid::Uuid::parse_str(&filters.worker) {
        filter["caseWorker"] = json!(worker);
    }
    let after = (!filters.after.is_empty()).then(|| filters.after.clone());
    let variables = json!({ "filter": filter, "first": PAGE_SIZE, "after": after });
    let answer = match api::run_partial::<ListAnswer>(
        &state,
        &signed.session.viewer,
        "plans",
        LIST,
        variables,
    )
    .await
    {
        Ok((a, _)) => a,
        Err(Failed::Api(_)) => return see_other(&href(&filters, None)),
        Err(e) => return unavailable(lang, e),
    };
    shown.rows = answer
        .plans
        .nodes
        .iter()
        .map(|p| Row {
            href: format!("/plans/{}", p.id),
            reference: plan_reference(uuid::Uuid::parse_str(&p.id).unwrap_or_default()),
            status: lang.text(&format!("plan-status-{}", id_of(&p.status))),
            country: p.origin_country.clone(),
            opened: p
                .opened_at
                .with_timezone(&tz)
                .format("%Y-%m-%d")
                .to_string(),
            case_worker: p
                .case_worker
                .as_ref()
                .and_then(|c| c["displayName"].as_str())
                .unwrap_or_default()
                .to_owned(),
            person: p
                .person
                .as_ref()
                .and_then(|c| c["fullName"].as_str())
                .map(str::to_owned),
            overdue: match p
                .steps
                .iter()
                .filter(|s| s["overdue"] == json!(true))
                .count()
            {
                0 => None,
                count => Some(lang.text_with("plans-overdue-steps", &[("count", count.into())])),
            },
        })
        .collect();
    shown.next_page = answer
        .plans
        .page_info
        .next()
        .map(|c| href(&filters, Some(c)));
    if after.is_some() {
        shown.first_page = Some(href(&filters, None));
    }
    shown.filters = filters;
    page(StatusCode::OK, shown)
}

/// What the new-plan form holds, as typed.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct NewPlanForm {
    #[serde(default)]
    form_token: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    full_name: String,
    #[serde(default)]
    date_of_birth: String,
    #[serde(default)]
    preferred_language: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    origin_country: String,
    #[serde(default)]
    template: String,
}

/// Errors beside the new-plan form's fields.
#[derive(Debug, Default)]
pub(crate) struct NewPlanErrors {
    pub full_name: Option<String>,
    pub date_of_birth: Option<String>,
    pub origin_country: Option<String>,
    pub form: Option<String>,
}

impl NewPlanErrors {
    fn any(&self) -> bool {
        self.full_name.is_some()
            || self.date_of_birth.is_some()
            || self.origin_country.is_some()
            || self.form.is_some()
    }
}

#[derive(Template)]
#[template(path = "console/new_plan.html")]
struct NewPlanPage {
    chrome: Chrome,
    form: NewPlanForm,
    errors: NewPlanErrors,
    templates: Vec<(String, String, bool)>,
}

#[derive(Debug, Deserialize)]
struct Templates {
    templates: Vec<TemplateOut>,
}

#[derive(Debug, Deserialize)]
struct TemplateOut {
    name: String,
    title: String,
}

async fn new_plan_page(
    state: &AppState,
    signed: &Signed,
    status: StatusCode,
    form: NewPlanForm,
    errors: NewPlanErrors,
) -> Response {
    let lang = signed.lang;
    let templates = match api::run::<Templates>(
        state,
        &signed.session.viewer,
        "new plan",
        "query ConsoleTemplates { templates { name title } }",
        json!({}),
    )
    .await
    {
        Ok(t) => t.templates,
        Err(e) => return unavailable(lang, e),
    };
    let chosen = if form.template.is_empty() {
        templates
            .first()
            .map(|t| t.name.clone())
            .unwrap_or_default()
    } else {
        form.template.clone()
    };
    let form = NewPlanForm {
        // A form shown again keeps its key: sent again, the survivor is registered once.
        key: if form.key.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            form.key
        },
        ..form
    };
    page(
        status,
        NewPlanPage {
            chrome: Chrome::signed(lang, "new-plan-title", "/plans/new", signed),
            templates: templates
                .into_iter()
                .map(|t| {
                    let selected = t.name == chosen;
                    (t.name, t.title, selected)
                })
                .collect(),
            form,
            errors,
        },
    )
}

/// `GET /plans/new`.
pub(crate) async fn new_plan(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let signed = match signed_in(&state, &headers, "/plans/new").await {
        Ok(s) => s,
        Err(response) => return response,
    };
    new_plan_page(
        &state,
        &signed,
        StatusCode::OK,
        NewPlanForm::default(),
        NewPlanErrors::default(),
    )
    .await
}

/// `POST /plans/new`: registers the survivor, then opens her plan; on to the plan's page.
pub(crate) async fn open_plan(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<NewPlanForm>,
) -> Response {
    let signed = match signed_form(&state, &headers, &form.form_token, "/plans/new").await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let lang = signed.lang;
    let mut errors = NewPlanErrors::default();
    let name = form.full_name.trim();
    if name.is_empty() {
        errors.full_name = Some(lang.text("form-required"));
    } else if name.chars().count() > 200 {
        errors.full_name = Some(lang.text_with("form-too-long", &[("max", 200.into())]));
    }
    let born = match form.date_of_birth.trim() {
        "" => None,
        text => match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                errors.date_of_birth = Some(lang.text("inbox-bad-date"));
                None
            }
        },
    };
    let origin = match country(&form.origin_country) {
        Ok(Some(c)) => Some(c),
        _ => {
            errors.origin_country = Some(lang.text("plans-bad-country"));
            None
        }
    };
    if errors.any() {
        return new_plan_page(
            &state,
            &signed,
            StatusCode::UNPROCESSABLE_ENTITY,
            form,
            errors,
        )
        .await;
    }
    let key = if form.key.is_empty() {
        uuid::Uuid::new_v4().to_string()
    } else {
        form.key.clone()
    };
    let mut person = json!({ "fullName": name });
    if let Some(born) = born {
        person["dateOfBirth"] = json!(born);
    }
    for (field, value) in [
        ("preferredLanguage", form.preferred_language.trim()),
        ("phone", form.phone.trim()),
    ] {
        if !value.is_empty() {
            person[field] = json!(value);
        }
    }
    let viewer = &signed.session.viewer;
    let registered = api::run::<Value>(
        &state,
        viewer,
        "new plan",
        "mutation ConsoleRegister($input: PersonInput!, $k: String) { registerPerson(input: $input, idempotencyKey: $k) }",
        json!({ "input": person, "k": format!("console-person-{key}") }),
    )
    .await;
    let person_id = match registered {
        Ok(data) => data["registerPerson"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        Err(Failed::Api(problems)) => {
            errors.form = Some(lang.text_with(
                "form-refused",
                &[("message", api::refusal(&problems).1.into())],
            ));
            // Another key: what was typed changed since the key was first used.
            let form = NewPlanForm {
                key: String::new(),
                ..form
            };
            return new_plan_page(
                &state,
                &signed,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                errors,
            )
            .await;
        }
        Err(e) => return unavailable(lang, e),
    };
    let mut input = json!({ "personId": person_id, "originCountry": origin });
    if !form.template.is_empty() {
        input["template"] = json!(form.template);
    }
    let opened = api::run::<Value>(
        &state,
        viewer,
        "new plan",
        "mutation ConsoleOpen($input: OpenPlanInput!, $k: String) { openPlan(input: $input, idempotencyKey: $k) { plan { id } } }",
        json!({ "input": input, "k": format!("console-plan-{key}") }),
    )
    .await;
    match opened {
        Ok(data) => see_other(&format!(
            "/plans/{}",
            data["openPlan"]["plan"]["id"].as_str().unwrap_or_default()
        )),
        Err(Failed::Api(problems)) => {
            errors.form = Some(lang.text_with(
                "form-refused",
                &[("message", api::refusal(&problems).1.into())],
            ));
            new_plan_page(
                &state,
                &signed,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                errors,
            )
            .await
        }
        Err(e) => unavailable(lang, e),
    }
}

const SEARCH: &str = "query ConsoleSearch($name: String, $born: NaiveDate) {
  searchPersons(name: $name, dateOfBirth: $born, first: 20) {
    id fullName dateOfBirth plans { id status }
  }
}";

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SearchForm {
    #[serde(default)]
    form_token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    born: String,
}

/// A survivor found, with her plans: (href, reference, status).
pub(crate) struct Found {
    pub href: String,
    pub name: String,
    pub born: String,
    pub plans: Vec<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "console/search.html")]
struct SearchPage {
    chrome: Chrome,
    name: String,
    born: String,
    error: Option<String>,
    found: Option<Vec<Found>>,
}

/// `POST /plans/search`: survivors by name and date of birth. A POST, so that what is
/// searched for is never in an address, the browser's history or a log.
pub(crate) async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SearchForm>,
) -> Response {
    let signed = match signed_form(&state, &headers, &form.form_token, "/plans").await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let lang = signed.lang;
    let name = form.name.trim().to_owned();
    let born = form.born.trim().to_owned();
    let mut shown = SearchPage {
        chrome: Chrome::signed(lang, "search-title", "/plans", &signed),
        name: name.clone(),
        born: born.clone(),
        error: None,
        found: None,
    };
    let born_date = match born.as_str() {
        "" => None,
        text => match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                shown.error = Some(lang.text("inbox-bad-date"));
                return page(StatusCode::UNPROCESSABLE_ENTITY, shown);
            }
        },
    };
    if name.is_empty() && born_date.is_none() {
        shown.error = Some(lang.text("search-nothing"));
        return page(StatusCode::UNPROCESSABLE_ENTITY, shown);
    }
    let variables = json!({
        "name": (!name.is_empty()).then_some(name),
        "born": born_date,
    });
    match api::run::<Value>(&state, &signed.session.viewer, "search", SEARCH, variables).await {
        Ok(data) => {
            shown.found = Some(
                data["searchPersons"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| Found {
                        href: format!("/persons/{}", p["id"].as_str().unwrap_or_default()),
                        name: p["fullName"].as_str().unwrap_or_default().to_owned(),
                        born: p["dateOfBirth"].as_str().unwrap_or_default().to_owned(),
                        plans: p["plans"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|plan| {
                                let id = plan["id"].as_str().unwrap_or_default();
                                (
                                    format!("/plans/{id}"),
                                    plan_reference(uuid::Uuid::parse_str(id).unwrap_or_default()),
                                    lang.text(&format!(
                                        "plan-status-{}",
                                        id_of(plan["status"].as_str().unwrap_or_default())
                                    )),
                                )
                            })
                            .collect(),
                    })
                    .collect(),
            );
            page(StatusCode::OK, shown)
        }
        Err(Failed::Api(problems)) => {
            let (status, message) = api::refusal(&problems);
            shown.error = Some(message);
            page(status, shown)
        }
        Err(e) => unavailable(lang, e),
    }
}
