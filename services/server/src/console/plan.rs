//! A plan's page: its summary, the person (as the viewer's role allows), the timeline, the
//! steps, and for the case team the goals, consents and history in pages. Read through the
//! API's `plan` and `planHistory` queries; the case file is asked for only by whom it may
//! show it to, so that a liaison or a partner sees their steps and nothing more.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use homeward_engine::i18n::Lang;
use homeward_engine::reminders::plan_reference;
use homeward_workflows::party::PartyRole;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::{self, Failed};
use super::inbox::{id_of, kind_name, when_words};
use super::timeline::{self, Milestone, Standing, StepIn, Timeline, Words};
use super::{message, page, signed_in, unavailable, Chrome};
use crate::routes::AppState;

const QUERY: &str = "query ConsolePlan($id: ID!, $caseTeam: Boolean!, $history: String) {
  plan(id: $id) {
    id version status suspended templateName originCountry openedAt departedAt arrivedAt closedAt
    caseWorker { displayName }
    person { fullName dateOfBirth preferredLanguage phone email address }
    goals @include(if: $caseTeam) { area aim }
    consents @include(if: $caseTeam) { kind given at }
    steps {
      key kind title status statusReason priority dueAt overdue followUpOn dependsOn
      documentStatus assignee { displayName } remindersSent { fireAt } remindersFailed { fireAt }
    }
  }
  planHistory(id: $id, first: 20, after: $history) @include(if: $caseTeam) {
    pageInfo { hasNextPage endCursor }
    nodes { type occurredAt byPartnerLink data actor { displayName } }
  }
}";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    plan: Option<PlanOut>,
    plan_history: Option<History>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlanOut {
    id: String,
    status: String,
    suspended: Option<bool>,
    template_name: String,
    origin_country: String,
    opened_at: DateTime<Utc>,
    departed_at: Option<DateTime<Utc>>,
    arrived_at: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
    case_worker: Option<Named>,
    person: Option<PersonOut>,
    goals: Option<Vec<GoalOut>>,
    consents: Option<Vec<ConsentOut>>,
    steps: Vec<StepOut>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Named {
    display_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PersonOut {
    full_name: Option<String>,
    date_of_birth: Option<NaiveDate>,
    preferred_language: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    address: Option<String>,
}

#[derive(Debug, Deserialize)]
struct GoalOut {
    area: String,
    aim: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ConsentOut {
    kind: String,
    given: bool,
    at: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StepOut {
    key: String,
    kind: String,
    title: Option<String>,
    status: String,
    status_reason: Option<String>,
    priority: String,
    due_at: Option<DateTime<Utc>>,
    overdue: bool,
    follow_up_on: Option<NaiveDate>,
    depends_on: Vec<String>,
    document_status: Option<String>,
    assignee: Option<Named>,
    reminders_sent: Vec<Value>,
    reminders_failed: Vec<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct History {
    page_info: PageInfo,
    nodes: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    #[serde(rename = "type")]
    kind: String,
    occurred_at: DateTime<Utc>,
    by_partner_link: bool,
    data: Value,
    actor: Option<Named>,
}

/// A step as the page lists it, in words.
pub(crate) struct StepShown {
    pub key: String,
    pub name: String,
    pub kind: String,
    pub status: String,
    pub reason: Option<String>,
    pub assignee: String,
    pub when: String,
    pub when_detail: Option<String>,
    pub overdue: bool,
    pub priority: String,
    pub depends_on: String,
    pub document: Option<String>,
    pub reminders: Option<String>,
}

pub(crate) struct HistoryShown {
    pub when: String,
    pub who: String,
    pub what: String,
}

#[derive(Template)]
#[template(path = "console/plan.html")]
struct PlanPage {
    chrome: Chrome,
    /// (label, value) pairs of the summary.
    summary: Vec<(String, String)>,
    suspended: bool,
    person: Vec<(String, String)>,
    goals: Option<Vec<(String, String)>>,
    consents: Option<Vec<(String, String)>>,
    timeline: Timeline,
    steps: Vec<StepShown>,
    history: Option<Vec<HistoryShown>>,
    history_next: Option<String>,
    history_first: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PlanQuery {
    #[serde(default)]
    history: String,
}

fn local(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

/// Whether the viewer's role reads case files (the API still decides, plan by plan).
fn reads_case_files(role: PartyRole) -> bool {
    matches!(role, PartyRole::SocialWorker | PartyRole::Supervisor)
}

/// `GET /plans/{id}`.
pub(crate) async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    query: Result<Query<PlanQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let here = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
    let signed = match signed_in(&state, &headers, &here).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let lang = signed.lang;
    let not_found = || {
        message(
            StatusCode::NOT_FOUND,
            Chrome::signed(lang, "plan-summary", &here, &signed),
            vec![lang.text("plan-not-found")],
            Some((lang.text("nav-inbox"), "/inbox".to_owned())),
        )
    };
    let Ok(plan_id) = uuid::Uuid::parse_str(&id) else {
        return not_found();
    };
    let history = query.map(|Query(q)| q.history).unwrap_or_default();
    let history = (!history.is_empty()).then_some(history);
    let viewer = &signed.session.viewer;
    let mut case_team = reads_case_files(viewer.role);
    let answer: Answer = loop {
        let variables = json!({ "id": plan_id, "caseTeam": case_team, "history": history });
        match api::run_partial::<Answer>(&state, viewer, "plan", QUERY, variables).await {
            Ok((answer, _)) if answer.plan.is_some() => break answer,
            // A case worker of another organisation assigned a step: not the case file.
            Ok(_) if case_team => case_team = false,
            Ok(_) => return not_found(),
            Err(Failed::Api(problems)) => {
                tracing::info!(codes = ?problems.iter().map(|p| &p.code).collect::<Vec<_>>(), "a plan page's query was refused");
                return not_found();
            }
            Err(e) => return unavailable(lang, e),
        }
    };
    let Some(plan) = answer.plan else {
        return not_found();
    };
    let tz: Tz = signed.session.party.time_zone.parse().unwrap_or(Tz::UTC);
    let now = state.services.clock.now();
    let today = now.with_timezone(&tz).date_naive();
    let reference = plan_reference(plan_id);
    let mut chrome = Chrome::signed(lang, "plan-summary", &here, &signed);
    chrome.title = lang.text_with("plan-title", &[("reference", reference.into())]);

    let mut summary = vec![
        (
            lang.text("plan-status"),
            lang.text(&format!("plan-status-{}", id_of(&plan.status))),
        ),
        (lang.text("plan-template"), plan.template_name.clone()),
        (lang.text("plan-origin"), plan.origin_country.clone()),
        (lang.text("plan-opened"), local(plan.opened_at, tz)),
    ];
    if let Some(worker) = &plan.case_worker {
        summary.push((lang.text("plan-case-worker"), worker.display_name.clone()));
    }
    for (label, at) in [
        ("plan-departed", plan.departed_at),
        ("plan-arrived", plan.arrived_at),
        ("plan-closed", plan.closed_at),
    ] {
        if let Some(at) = at {
            summary.push((lang.text(label), local(at, tz)));
        }
    }
    let mut person = Vec::new();
    if let Some(p) = &plan.person {
        for (label, value) in [
            ("person-name", p.full_name.clone()),
            ("person-born", p.date_of_birth.map(|d| d.to_string())),
            ("person-language", p.preferred_language.clone()),
            ("person-phone", p.phone.clone()),
            ("person-email", p.email.clone()),
            ("person-address", p.address.clone()),
        ] {
            if let Some(value) = value {
                person.push((lang.text(label), value));
            }
        }
    }
    let goals = plan.goals.as_ref().map(|goals| {
        goals
            .iter()
            .map(|g| {
                (
                    lang.text(&format!("concern-{}", id_of(&g.area))),
                    g.aim.clone().unwrap_or_else(|| lang.text("unreadable")),
                )
            })
            .collect()
    });
    let consents = plan.consents.as_ref().map(|consents| {
        consents
            .iter()
            .map(|c| {
                let date = local(c.at, tz);
                (
                    lang.text(&format!("consent-{}", id_of(&c.kind))),
                    if c.given {
                        lang.text_with("consent-given", &[("date", date.into())])
                    } else {
                        lang.text_with("consent-withdrawn", &[("date", date.into())])
                    },
                )
            })
            .collect()
    });
    let names: std::collections::HashMap<&str, String> = plan
        .steps
        .iter()
        .map(|s| (s.key.as_str(), step_name(lang, s)))
        .collect();
    let steps: Vec<StepShown> = plan
        .steps
        .iter()
        .map(|s| {
            let (when, when_detail) =
                when_words(lang, s.due_at, s.follow_up_on, s.overdue, today, tz);
            let reminders = match (s.reminders_sent.len(), s.reminders_failed.len()) {
                (0, 0) => None,
                (sent, 0) => Some(lang.text_with("reminders-sent", &[("count", sent.into())])),
                (sent, failed) => Some(format!(
                    "{} · {}",
                    lang.text_with("reminders-sent", &[("count", sent.into())]),
                    lang.text_with("reminders-failed", &[("count", failed.into())])
                )),
            };
            StepShown {
                key: s.key.clone(),
                name: names.get(s.key.as_str()).cloned().unwrap_or_default(),
                kind: kind_name(lang, &s.kind),
                status: lang.text(&format!("status-{}", id_of(&s.status))),
                reason: s.status_reason.clone(),
                assignee: s
                    .assignee
                    .as_ref()
                    .map_or_else(|| lang.text("step-unassigned"), |a| a.display_name.clone()),
                when,
                when_detail,
                overdue: s.overdue,
                priority: lang.text(&format!("priority-{}", id_of(&s.priority))),
                depends_on: s
                    .depends_on
                    .iter()
                    .map(|d| names.get(d.as_str()).cloned().unwrap_or_else(|| d.clone()))
                    .collect::<Vec<_>>()
                    .join(", "),
                document: s
                    .document_status
                    .as_ref()
                    .map(|d| lang.text(&format!("document-{}", id_of(d)))),
                reminders,
            }
        })
        .collect();
    let timeline = draw(lang, &plan, &steps, now, tz);
    let (history, history_next, history_first) = match answer.plan_history {
        Some(h) => {
            let entries =
                h.nodes
                    .iter()
                    .map(|e| {
                        let mut what = lang.text(&format!("event-{}", e.kind));
                        // `step` is a key, or (for `step_added`) the step's definition.
                        let step = e.data.get("step").and_then(|s| {
                            s.as_str().or_else(|| s.get("key").and_then(Value::as_str))
                        });
                        if let Some(step) = step {
                            what = format!(
                                "{what}: {}",
                                names.get(step).cloned().unwrap_or_else(|| step.to_owned())
                            );
                        }
                        let mut who = e
                            .actor
                            .as_ref()
                            .map(|a| a.display_name.clone())
                            .unwrap_or_default();
                        if e.by_partner_link {
                            who = format!("{who} ({})", lang.text("history-by-link"));
                        }
                        HistoryShown {
                            when: local(e.occurred_at, tz),
                            who,
                            what,
                        }
                    })
                    .collect();
            let base = format!("/plans/{}", plan.id);
            let next = h
                .page_info
                .has_next_page
                .then_some(h.page_info.end_cursor)
                .flatten()
                .map(|cursor| {
                    format!(
                        "{base}?{}#history",
                        serde_urlencoded::to_string([("history", cursor)]).unwrap_or_default()
                    )
                });
            let first = history.as_ref().map(|_| format!("{base}#history"));
            (Some(entries), next, first)
        }
        None => (None, None, None),
    };
    page(
        StatusCode::OK,
        PlanPage {
            chrome,
            summary,
            suspended: plan.suspended == Some(true),
            person,
            goals,
            consents,
            timeline,
            steps,
            history,
            history_next,
            history_first,
        },
    )
}

/// A step's name: its title, or its kind when the title cannot be read.
fn step_name(lang: Lang, step: &StepOut) -> String {
    step.title
        .clone()
        .unwrap_or_else(|| kind_name(lang, &step.kind))
}

/// The plan's timeline, in the viewer's language and zone.
fn draw(lang: Lang, plan: &PlanOut, steps: &[StepShown], now: DateTime<Utc>, tz: Tz) -> Timeline {
    let placed: Vec<StepIn> = plan
        .steps
        .iter()
        .zip(steps)
        .map(|(s, shown)| {
            let standing = match s.status.as_str() {
                "DONE" => Standing::Done,
                "CANCELLED" => Standing::Cancelled,
                _ if s.overdue => Standing::Overdue,
                "BLOCKED" => Standing::Blocked,
                _ => Standing::Open,
            };
            let words = match standing {
                Standing::Done | Standing::Cancelled | Standing::Blocked => shown.status.clone(),
                Standing::Overdue | Standing::Open => shown.when.clone(),
            };
            StepIn {
                key: s.key.clone(),
                name: shown.name.clone(),
                standing,
                due_at: s.due_at,
                follow_up_on: s.follow_up_on,
                depends_on: s.depends_on.clone(),
                words,
            }
        })
        .collect();
    let mut milestones = Vec::new();
    if let Some(consent) = plan
        .consents
        .iter()
        .flatten()
        .find(|c| c.kind == "RETURN" && c.given)
    {
        milestones.push(Milestone {
            label: lang.text("milestone-consent"),
            at: consent.at,
        });
    }
    for (label, at) in [
        ("milestone-departure", plan.departed_at),
        ("milestone-arrival", plan.arrived_at),
    ] {
        if let Some(at) = at {
            milestones.push(Milestone {
                label: lang.text(label),
                at,
            });
        }
    }
    let done = placed
        .iter()
        .filter(|s| s.standing == Standing::Done)
        .count();
    let overdue = placed
        .iter()
        .filter(|s| s.standing == Standing::Overdue)
        .count();
    let last = placed
        .iter()
        .filter_map(|s| s.due_at)
        .max()
        .unwrap_or(now)
        .max(now);
    let summary = lang.text_with(
        "timeline-summary",
        &[
            ("steps", placed.len().into()),
            ("from", local(plan.opened_at, tz).into()),
            ("to", local(last, tz).into()),
            ("done", done.into()),
            ("overdue", overdue.into()),
        ],
    );
    timeline::place(
        plan.opened_at,
        now,
        &placed,
        &milestones,
        tz,
        Words {
            today: lang.text("timeline-today"),
            summary,
        },
    )
}
