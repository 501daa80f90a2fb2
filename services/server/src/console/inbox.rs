//! The inbox: the signed-in party's open tasks, overdue first (said in words, not only by a
//! colour), then by due date, follow-up date and priority, in pages; filtered by kind, status,
//! a due range and lateness. Read through the API's `tasks` query.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};
use chrono_tz::Tz;
use homeward_engine::i18n::Lang;
use homeward_engine::reminders::plan_reference;
use serde::Deserialize;
use serde_json::json;

use super::api::{self, Connection, Failed};
use super::{page, signed_in, unavailable, Chrome};
use crate::routes::AppState;

/// Tasks on one page.
const PAGE_SIZE: i32 = 25;

const QUERY: &str = "query ConsoleInbox($filter: TaskFilterInput, $first: Int, $after: String) {
  tasks(filter: $filter, first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes {
      planId key kind title status priority dueAt followUpOn overdue documentStatus
      assignee { displayName }
      plan { templateName templateVersion person { fullName } }
    }
  }
}";

/// The step kinds, as the API names them, and their message ids.
const KINDS: [(&str, &str); 9] = [
    ("TRAVEL_DOCUMENT", "step-kind-travel-document"),
    ("TRAVEL", "step-kind-travel"),
    ("FAMILY_MEDIATION", "step-kind-family-mediation"),
    ("ORIGIN_CONTACT", "step-kind-origin-contact"),
    ("FOLLOW_UP", "step-kind-follow-up"),
    ("MEDICAL", "step-kind-medical"),
    ("LEGAL", "step-kind-legal"),
    ("REINTEGRATION_SUPPORT", "step-kind-reintegration-support"),
    ("CUSTOM", "step-kind-custom"),
];

const STATUSES: [&str; 6] = [
    "PENDING",
    "READY",
    "IN_PROGRESS",
    "BLOCKED",
    "DONE",
    "CANCELLED",
];

/// The filters, as the form sends them (every field optional, kept as typed).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Filters {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    overdue: String,
    #[serde(default)]
    after: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    tasks: Connection<Task>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Task {
    plan_id: String,
    key: String,
    kind: String,
    title: Option<String>,
    status: String,
    priority: String,
    due_at: Option<DateTime<Utc>>,
    follow_up_on: Option<NaiveDate>,
    overdue: bool,
    document_status: Option<String>,
    assignee: Option<Named>,
    plan: Option<PlanOf>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Named {
    display_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlanOf {
    template_name: String,
    template_version: u32,
    person: Option<PersonOf>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PersonOf {
    full_name: Option<String>,
}

/// One row of the inbox, in words.
pub(crate) struct Row {
    pub title: String,
    pub kind: String,
    pub plan_href: String,
    pub plan_reference: String,
    pub step_key: String,
    pub person: Option<String>,
    pub assignee: Option<String>,
    pub when: String,
    pub when_detail: Option<String>,
    pub overdue: bool,
    pub priority: String,
    pub status: String,
    pub document: Option<String>,
}

#[derive(Template)]
#[template(path = "console/inbox.html")]
struct InboxPage {
    chrome: Chrome,
    rows: Vec<Row>,
    count: String,
    /// (value, label, selected)
    kinds: Vec<(&'static str, String, bool)>,
    statuses: Vec<(&'static str, String, bool)>,
    filters: Filters,
    from_error: Option<String>,
    until_error: Option<String>,
    next_page: Option<String>,
    first_page: Option<String>,
}

/// The API's name of a value (`IN_PROGRESS`) as a message id's tail (`in_progress`).
pub(crate) fn id_of(value: &str) -> String {
    value.to_ascii_lowercase()
}

pub(crate) fn kind_name(lang: Lang, kind: &str) -> String {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, id)| lang.text(id))
        .unwrap_or_else(|| kind.to_owned())
}

/// A step's title as a page shows it: a template's own title in the reader's language, a title
/// someone wrote as written, the kind when the title cannot be read.
pub(crate) fn step_title(
    lang: Lang,
    template: &homeward_workflows::plan::TemplateRef,
    key: &str,
    kind: &str,
    title: Option<&str>,
) -> String {
    use homeward_workflows::plan::StepKind;
    const KINDS: [StepKind; 9] = [
        StepKind::TravelDocument,
        StepKind::Travel,
        StepKind::FamilyMediation,
        StepKind::OriginContact,
        StepKind::FollowUp,
        StepKind::Medical,
        StepKind::Legal,
        StepKind::ReintegrationSupport,
        StepKind::Custom,
    ];
    let Some(title) = title else {
        return kind_name(lang, kind);
    };
    let localised = KINDS
        .into_iter()
        .find(|k| k.api_name() == kind)
        .zip(homeward_workflows::StepKey::parse(key).ok())
        .and_then(|(kind, key)| {
            homeward_engine::i18n::template_step_title(template, &key, kind, title, lang)
        });
    localised.unwrap_or_else(|| title.to_owned())
}

/// A date in the viewer's zone.
fn day(at: DateTime<Utc>, tz: Tz) -> NaiveDate {
    at.with_timezone(&tz).date_naive()
}

/// When a task is due, in words: "Overdue by 3 days", "Due today", "Due in 2 days", with the
/// date and time in the viewer's zone beside it.
pub(crate) fn when_words(
    lang: Lang,
    due_at: Option<DateTime<Utc>>,
    follow_up_on: Option<NaiveDate>,
    overdue: bool,
    today: NaiveDate,
    tz: Tz,
) -> (String, Option<String>) {
    match (due_at, follow_up_on) {
        (Some(due), _) => {
            let days = (day(due, tz) - today).num_days();
            let words = if overdue {
                lang.text_with("due-overdue", &[("days", (-days).max(0).into())])
            } else if days <= 0 {
                lang.text("due-today")
            } else {
                lang.text_with("due-in", &[("days", days.into())])
            };
            let local = due.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string();
            (
                words,
                Some(lang.text_with("due-on", &[("date", local.into())])),
            )
        }
        (None, Some(date)) => (
            lang.text_with("follow-up-on", &[("date", date.to_string().into())]),
            None,
        ),
        (None, None) => (lang.text("due-none"), None),
    }
}

/// The start of `date` in `tz`, as an instant (the earliest, on a day that starts twice).
fn start_of(date: NaiveDate, tz: Tz) -> Option<DateTime<Utc>> {
    tz.from_local_datetime(&date.and_hms_opt(0, 0, 0)?)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// A date the filter form sent: none when empty, an error message when it is not a date.
fn date_field(lang: Lang, text: &str) -> Result<Option<NaiveDate>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| lang.text("inbox-bad-date"))
}

/// The inbox's address with these filters and cursor.
fn href(filters: &Filters, after: Option<&str>) -> String {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for (name, value) in [
        ("kind", filters.kind.as_str()),
        ("status", filters.status.as_str()),
        ("from", filters.from.as_str()),
        ("until", filters.until.as_str()),
        ("overdue", filters.overdue.as_str()),
    ] {
        if !value.is_empty() {
            pairs.push((name, value));
        }
    }
    if let Some(after) = after {
        pairs.push(("after", after));
    }
    if pairs.is_empty() {
        return "/inbox".to_owned();
    }
    format!(
        "/inbox?{}",
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    )
}

/// `GET /inbox`.
pub(crate) async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    filters: Result<Query<Filters>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let here = super::here(&uri);
    let signed = match signed_in(&state, &headers, &here).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let lang = signed.lang;
    let filters = filters.map(|Query(f)| f).unwrap_or_default();
    let tz: Tz = signed.session.party.time_zone.parse().unwrap_or(Tz::UTC);
    let today = day(state.services.clock.now(), tz);
    let from = date_field(lang, &filters.from);
    let until = date_field(lang, &filters.until);
    let kind = KINDS
        .iter()
        .find(|(k, _)| *k == filters.kind)
        .map(|(k, _)| *k);
    let status = STATUSES.iter().find(|s| **s == filters.status).copied();
    let mut chrome = Chrome::signed(lang, "inbox-title", &here, &signed);
    chrome.live = Some("/inbox/live".to_owned());
    let mut shown = InboxPage {
        chrome,
        rows: Vec::new(),
        count: String::new(),
        kinds: KINDS
            .iter()
            .map(|(k, id)| (*k, lang.text(id), Some(*k) == kind))
            .collect(),
        statuses: STATUSES
            .iter()
            .map(|s| {
                (
                    *s,
                    lang.text(&format!("status-{}", id_of(s))),
                    Some(*s) == status,
                )
            })
            .collect(),
        from_error: from.as_ref().err().cloned(),
        until_error: until.as_ref().err().cloned(),
        next_page: None,
        first_page: None,
        filters: Filters::default(),
    };
    let (Ok(from), Ok(until)) = (from, until) else {
        shown.filters = filters;
        return page(StatusCode::UNPROCESSABLE_ENTITY, shown);
    };
    let mut filter = json!({});
    if let Some(kind) = kind {
        filter["kinds"] = json!([kind]);
    }
    if let Some(status) = status {
        filter["statuses"] = json!([status]);
    }
    if let Some(at) = from.and_then(|d| start_of(d, tz)) {
        filter["dueFrom"] = json!(at);
    }
    if let Some(at) = until
        .and_then(|d| d.succ_opt())
        .and_then(|d| start_of(d, tz))
    {
        filter["dueBefore"] = json!(at);
    }
    if !filters.overdue.is_empty() {
        filter["overdue"] = json!(true);
    }
    let after = (!filters.after.is_empty()).then(|| filters.after.clone());
    let variables = json!({ "filter": filter, "first": PAGE_SIZE, "after": after });
    let answer: Answer = match api::run(&state, &signed.session.viewer, "inbox", QUERY, variables)
        .await
    {
        Ok(a) => a,
        Err(Failed::Api(problems)) => {
            // A cursor from another filter, say: start again from the first page.
            tracing::info!(codes = ?problems.iter().map(|p| &p.code).collect::<Vec<_>>(), "the inbox's query was refused");
            return super::see_other(&href(&filters, None));
        }
        Err(e) => return unavailable(lang, e),
    };
    shown.rows = answer
        .tasks
        .nodes
        .iter()
        .map(|task| {
            let (when, when_detail) = when_words(
                lang,
                task.due_at,
                task.follow_up_on,
                task.overdue,
                today,
                tz,
            );
            let plan_id = uuid::Uuid::parse_str(&task.plan_id).unwrap_or_default();
            Row {
                title: match (&task.plan, task.title.as_deref()) {
                    (Some(plan), Some(title)) => {
                        let template = homeward_workflows::plan::TemplateRef {
                            name: plan.template_name.clone(),
                            version: plan.template_version,
                        };
                        step_title(lang, &template, &task.key, &task.kind, Some(title))
                    }
                    (None, Some(title)) => title.to_owned(),
                    (_, None) => lang.text("unreadable"),
                },
                kind: kind_name(lang, &task.kind),
                plan_href: format!("/plans/{}", task.plan_id),
                plan_reference: plan_reference(plan_id),
                step_key: task.key.clone(),
                person: task.plan.as_ref().and_then(|p| p.person.as_ref()).map(|p| {
                    p.full_name
                        .clone()
                        .unwrap_or_else(|| lang.text("unreadable"))
                }),
                assignee: task.assignee.as_ref().map(|a| a.display_name.clone()),
                when,
                when_detail,
                overdue: task.overdue,
                priority: lang.text(&format!("priority-{}", id_of(&task.priority))),
                status: lang.text(&format!("status-{}", id_of(&task.status))),
                document: task
                    .document_status
                    .as_ref()
                    .map(|d| lang.text(&format!("document-{}", id_of(d)))),
            }
        })
        .collect();
    shown.count = lang.text_with("inbox-count", &[("count", shown.rows.len().into())]);
    shown.next_page = answer
        .tasks
        .page_info
        .next()
        .map(|cursor| href(&filters, Some(cursor)));
    if after.is_some() {
        shown.first_page = Some(href(&filters, None));
    }
    shown.filters = filters;
    page(StatusCode::OK, shown)
}
