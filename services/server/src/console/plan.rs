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

use super::api::{self, Connection, Failed};
use super::inbox::{id_of, kind_name, step_title, when_words};
use super::timeline::{self, Milestone, Standing, StepIn, Timeline, Words};
use super::{local_time, message, page, signed_in, unavailable, Chrome, Signed};
use crate::routes::AppState;

const QUERY: &str = "query ConsolePlan($id: ID!, $caseTeam: Boolean!, $history: String) {
  plan(id: $id) {
    id version status suspended templateName templateVersion originCountry openedAt departedAt arrivedAt closedAt
    caseWorker { displayName }
    person { id fullName dateOfBirth preferredLanguage phone email address }
    goals @include(if: $caseTeam) { area aim }
    consents @include(if: $caseTeam) { kind partner given at }
    steps {
      key kind title status statusReason priority dueAt overdue followUpOn dependsOn
      documentStatus assignee { id displayName role } remindersSent { fireAt } remindersFailed { fireAt }
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
    version: u64,
    status: String,
    suspended: Option<bool>,
    template_name: String,
    template_version: u32,
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
struct Assignee {
    id: String,
    display_name: String,
    role: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PersonOut {
    id: String,
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
    partner: Option<String>,
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
    assignee: Option<Assignee>,
    reminders_sent: Vec<Value>,
    reminders_failed: Vec<Value>,
}

type History = Connection<Entry>;

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
    /// Its forms with a button and at most a reason: (action, the button's words, whether a
    /// reason is asked).
    pub actions: Vec<(&'static str, String, bool)>,
    /// A travel document's statuses to choose from: (value, label, current).
    pub documents: Option<Vec<(&'static str, String, bool)>>,
    /// A follow-up visit, recorded by its own form.
    pub visit: bool,
    /// Its own page, where the case team changes it (open steps only).
    pub change_href: Option<String>,
    /// What the last form sent for this step was refused for, and what was typed in it.
    pub error: Option<(&'static str, String)>,
    pub typed: String,
}

impl StepShown {
    /// Why the form `action` of this step was refused, if it was the one sent.
    pub(crate) fn error_for(&self, action: &str) -> Option<&str> {
        match &self.error {
            Some((sent, error)) if *sent == action => Some(error),
            _ => None,
        }
    }
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
    plan_id: String,
    /// The version the page shows: every form sends it back, so that a change made meanwhile
    /// is reported, never overwritten.
    version: u64,
    /// One idempotency key per page: whatever form of it is sent, twice or after a lost
    /// answer, it is recorded once.
    form_key: String,
    /// A plan-level form's refusal: (action, message).
    plan_error: Option<(&'static str, String)>,
    /// The consents the case team records or withdraws here: to return, to contact the
    /// family, to share data with each partner contact who has a step.
    consent_forms: Vec<ConsentForm>,
    /// The plan's milestone forms the case team has at this stage: `departure`, `arrival`,
    /// `close`.
    milestones: Vec<MilestoneForm>,
    close_reasons: Vec<(&'static str, String)>,
    /// The date and time a milestone form starts with: now, in the viewer's zone.
    now_local: String,
    /// A refusal that belongs to no form on the page (a step it does not show).
    general_error: Option<String>,
    /// The entries recorded since the version a refused form was based on.
    conflict: Option<Vec<HistoryShown>>,
    wellbeings: Vec<(&'static str, String)>,
    concerns: Vec<(&'static str, String)>,
    /// (label, value) pairs of the summary.
    summary: Vec<(String, String)>,
    suspended: bool,
    person: Vec<(String, String)>,
    /// Her record's page, for the case team.
    person_href: Option<String>,
    goals: Option<Vec<(String, String)>>,
    timeline: Timeline,
    steps: Vec<StepShown>,
    /// The page that adds a step, for the case team of a plan still open.
    add_step_href: Option<String>,
    history: Option<Vec<HistoryShown>>,
    history_next: Option<String>,
    history_first: Option<String>,
}

impl PlanPage {
    /// Why the plan's form `action` was refused, if it was the one sent.
    fn plan_error_for(&self, action: &str) -> Option<&str> {
        match &self.plan_error {
            Some((sent, error)) if *sent == action => Some(error),
            _ => None,
        }
    }
}

/// A consent's form: what it is for, where it stands, and recording or withdrawing it.
pub(crate) struct ConsentForm {
    /// The form's own name on the page (`consent-return`, `consent-data_sharing-<id>`).
    pub id: String,
    pub purpose: &'static str,
    pub partner: Option<String>,
    pub label: String,
    pub state: String,
    /// `consent` or `withdraw-consent`.
    pub action: &'static str,
    pub button: String,
    /// What withdrawing it does, said before it is confirmed.
    pub warning: Option<String>,
    /// Why it was refused, when it was the form sent.
    pub error: Option<String>,
}

/// The consent forms of a plan, from its consents (the last of each purpose stands) and the
/// partner contacts who have a step on it.
fn consent_forms(lang: Lang, tz: Tz, plan: &PlanOut) -> Vec<ConsentForm> {
    let Some(consents) = &plan.consents else {
        return Vec::new();
    };
    let mut purposes: Vec<(&'static str, Option<String>, String)> = vec![
        ("RETURN", None, lang.text("consent-return")),
        ("FAMILY_CONTACT", None, lang.text("consent-family_contact")),
    ];
    let mut partners: Vec<&Assignee> = Vec::new();
    for assignee in plan.steps.iter().filter_map(|s| s.assignee.as_ref()) {
        if assignee.role.as_deref() == Some("PARTNER_CONTACT")
            && !partners.iter().any(|p| p.id == assignee.id)
        {
            partners.push(assignee);
        }
    }
    for partner in partners {
        purposes.push((
            "DATA_SHARING",
            Some(partner.id.clone()),
            lang.text_with(
                "consent-data-sharing-with",
                &[("name", partner.display_name.clone().into())],
            ),
        ));
    }
    // A consent given to a partner who no longer has a step stays on the page, to withdraw.
    for consent in consents.iter().filter(|c| c.kind == "DATA_SHARING") {
        if !purposes.iter().any(|(_, p, _)| *p == consent.partner) {
            purposes.push((
                "DATA_SHARING",
                consent.partner.clone(),
                lang.text("consent-data-sharing-former"),
            ));
        }
    }
    purposes
        .into_iter()
        .map(|(purpose, partner, label)| {
            let last = consents
                .iter()
                .rev()
                .find(|c| c.kind == purpose && c.partner == partner);
            let given = last.is_some_and(|c| c.given);
            let state = match last {
                Some(c) if c.given => {
                    lang.text_with("consent-given", &[("date", local_time(c.at, tz).into())])
                }
                Some(c) => lang.text_with(
                    "consent-withdrawn",
                    &[("date", local_time(c.at, tz).into())],
                ),
                None => lang.text("consent-not-recorded"),
            };
            let kind = id_of(purpose);
            ConsentForm {
                id: match &partner {
                    Some(p) => format!("consent-{kind}-{p}"),
                    None => format!("consent-{kind}"),
                },
                purpose,
                partner,
                label,
                state,
                action: if given { "withdraw-consent" } else { "consent" },
                button: lang.text(if given {
                    "form-consent-withdraw-this"
                } else {
                    "form-consent-record-this"
                }),
                warning: given.then(|| lang.text(&format!("form-consent-withdraw-{kind}"))),
                error: None,
            }
        })
        .collect()
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PlanQuery {
    #[serde(default)]
    history: String,
}

/// Whether the viewer's role reads case files (the API still decides, plan by plan).
pub(crate) fn reads_case_files(role: PartyRole) -> bool {
    matches!(role, PartyRole::SocialWorker | PartyRole::Supervisor)
}

/// What a form sent from the plan's page came to, shown on the page again.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub status: Option<StatusCode>,
    /// The form refused: its action, and its step (none for the plan's own forms).
    pub action: &'static str,
    pub step: Option<String>,
    pub error: Option<String>,
    /// What was typed in it, kept.
    pub typed: String,
    /// The consent form sent (its id on the page), when it was one.
    pub consent: Option<String>,
    /// The form was based on this version, and the plan had moved on.
    pub conflict_since: Option<u64>,
}

/// `GET /plans/{id}`.
pub(crate) async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    query: Result<Query<PlanQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let here = super::here(&uri);
    let signed = match signed_in(&state, &headers, &here).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let history = query.map(|Query(q)| q.history).unwrap_or_default();
    let history = (!history.is_empty()).then_some(history);
    render(&state, &signed, &here, &id, history, Outcome::default()).await
}

pub(crate) fn not_found(lang: Lang, here: &str, signed: &Signed) -> Response {
    message(
        StatusCode::NOT_FOUND,
        Chrome::signed(lang, "plan-summary", here, signed),
        vec![lang.text("plan-not-found")],
        Some((lang.text("nav-inbox"), "/inbox".to_owned())),
    )
}

/// The plan's page, with what a form sent from it came to.
pub(crate) async fn render(
    state: &AppState,
    signed: &Signed,
    here: &str,
    id: &str,
    history: Option<String>,
    outcome: Outcome,
) -> Response {
    let lang = signed.lang;
    let Ok(plan_id) = uuid::Uuid::parse_str(id) else {
        return not_found(lang, here, signed);
    };
    let viewer = &signed.session.viewer;
    let mut case_team = reads_case_files(viewer.role);
    let answer: Answer = loop {
        let variables = json!({ "id": plan_id, "caseTeam": case_team, "history": history });
        match api::run_partial::<Answer>(state, viewer, "plan", QUERY, variables).await {
            Ok((answer, _)) if answer.plan.is_some() => break answer,
            // A case worker of another organisation assigned a step: not the case file.
            Ok(_) if case_team => case_team = false,
            Ok(_) => return not_found(lang, here, signed),
            Err(Failed::Api(problems)) => {
                tracing::info!(codes = ?problems.iter().map(|p| &p.code).collect::<Vec<_>>(), "a plan page's query was refused");
                return not_found(lang, here, signed);
            }
            Err(e) => return unavailable(lang, e),
        }
    };
    let Some(plan) = answer.plan else {
        return not_found(lang, here, signed);
    };
    let tz: Tz = signed.session.party.time_zone.parse().unwrap_or(Tz::UTC);
    let now = state.services.clock.now();
    let today = now.with_timezone(&tz).date_naive();
    let reference = plan_reference(plan_id);
    let mut chrome = Chrome::signed(lang, "plan-summary", here, signed);
    chrome.title = lang.text_with("plan-title", &[("reference", reference.into())]);
    chrome.live = Some(format!("/plans/{}/live?since={}", plan.id, plan.version));

    let mut summary = vec![
        (
            lang.text("plan-status"),
            lang.text(&format!("plan-status-{}", id_of(&plan.status))),
        ),
        (lang.text("plan-template"), plan.template_name.clone()),
        (lang.text("plan-origin"), plan.origin_country.clone()),
        (lang.text("plan-opened"), local_time(plan.opened_at, tz)),
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
            summary.push((lang.text(label), local_time(at, tz)));
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
    let names: std::collections::HashMap<&str, String> = plan
        .steps
        .iter()
        .map(|s| (s.key.as_str(), step_name(lang, &plan, s)))
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
                actions: actions_of(&s.status, &s.kind)
                    .into_iter()
                    .map(|a| (a, lang.text(&format!("form-{a}")), a == "block"))
                    .collect(),
                documents: (s.kind == "TRAVEL_DOCUMENT" && open(&s.status)).then(|| {
                    DOCUMENT_STATUSES
                        .iter()
                        .map(|d| {
                            (
                                *d,
                                lang.text(&format!("document-{}", id_of(d))),
                                s.document_status.as_deref() == Some(*d),
                            )
                        })
                        .collect()
                }),
                visit: s.kind == "FOLLOW_UP" && open(&s.status),
                change_href: (case_team && open(&s.status) && plan.status != "CLOSED")
                    .then(|| format!("/plans/{}/steps/{}", plan.id, s.key)),
                error: None,
                typed: String::new(),
            }
        })
        .collect();
    let timeline = draw(lang, &plan, &steps, now, tz);
    let (history, history_next, history_first) = match answer.plan_history {
        Some(h) => {
            let entries = history_entries(lang, tz, &names, &h.nodes);
            let base = format!("/plans/{}", plan.id);
            let next = h.page_info.next().map(|cursor| {
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
    // What was recorded since the version a refused form was based on (the case team reads
    // the history; others are told only that the plan changed).
    let conflict = match outcome.conflict_since {
        Some(since) if case_team => {
            match changes_since(state, signed, plan_id, since, &names).await {
                Ok(entries) => Some(entries),
                Err(response) => return response,
            }
        }
        Some(_) => Some(Vec::new()),
        None => None,
    };
    let mut steps = steps;
    let mut plan_error = None;
    let mut general_error = None;
    if let Some(error) = &outcome.error {
        match outcome
            .step
            .as_ref()
            .and_then(|key| steps.iter_mut().find(|s| &s.key == key))
        {
            Some(step) => {
                step.error = Some((outcome.action, error.clone()));
                step.typed = outcome.typed.clone();
            }
            None if outcome.step.is_none() => plan_error = Some((outcome.action, error.clone())),
            // A step this page does not show: said at the top.
            None => general_error = Some(error.clone()),
        }
    }
    let mut consent_forms = consent_forms(lang, tz, &plan);
    if let (Some(error), Some(form)) = (&outcome.error, &outcome.consent) {
        if let Some(shown) = consent_forms.iter_mut().find(|f| &f.id == form) {
            shown.error = Some(error.clone());
            plan_error = None;
        }
    }
    page(
        outcome.status.unwrap_or(StatusCode::OK),
        PlanPage {
            chrome,
            plan_id: plan.id.clone(),
            version: plan.version,
            form_key: uuid::Uuid::new_v4().to_string(),
            consent_forms,
            milestones: if case_team {
                milestones_of(
                    &plan.status,
                    plan.departed_at.is_some(),
                    plan.arrived_at.is_some(),
                )
                .into_iter()
                .map(|action| MilestoneForm {
                    action,
                    closing: action == "close",
                    button: lang.text(&format!("form-{action}")),
                    at_label: if action == "close" {
                        String::new()
                    } else {
                        lang.text(&format!("form-{action}-at"))
                    },
                })
                .collect()
            } else {
                Vec::new()
            },
            close_reasons: CLOSE_REASONS
                .iter()
                .map(|r| (*r, lang.text(&format!("close-reason-{}", id_of(r)))))
                .collect(),
            now_local: now.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string(),
            plan_error,
            general_error,
            conflict,
            wellbeings: WELLBEINGS
                .iter()
                .map(|w| (*w, lang.text(&format!("wellbeing-{}", id_of(w)))))
                .collect(),
            concerns: CONCERNS
                .iter()
                .map(|c| (*c, lang.text(&format!("concern-{}", id_of(c)))))
                .collect(),
            summary,
            suspended: plan.suspended == Some(true),
            person,
            person_href: plan
                .person
                .as_ref()
                .filter(|_| case_team)
                .map(|p| format!("/persons/{}", p.id)),
            goals,
            timeline,
            add_step_href: (case_team && plan.status != "CLOSED")
                .then(|| format!("/plans/{}/new-step", plan.id)),
            steps,
            history,
            history_next,
            history_first,
        },
    )
}

const SINCE: &str = "query ConsolePlanSince($id: ID!, $after: String) {
  planHistory(id: $id, first: 50, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { type occurredAt byPartnerLink data actor { displayName } }
  }
}";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SinceAnswer {
    plan_history: Option<History>,
}

/// What was recorded on a plan since `version`, in words: what a form based on that version
/// is shown when the plan has moved on (for the case team, who read the history).
pub(crate) async fn changes_since(
    state: &AppState,
    signed: &Signed,
    plan_id: uuid::Uuid,
    version: u64,
    names: &std::collections::HashMap<&str, String>,
) -> Result<Vec<HistoryShown>, Response> {
    let lang = signed.lang;
    let tz: Tz = signed.session.party.time_zone.parse().unwrap_or(Tz::UTC);
    let variables = json!({
        "id": plan_id,
        "after": homeward_graphql::history_after_version(version),
    });
    match api::run::<SinceAnswer>(state, &signed.session.viewer, "plan", SINCE, variables).await {
        Ok(a) => Ok(history_entries(
            lang,
            tz,
            names,
            &a.plan_history.map(|h| h.nodes).unwrap_or_default(),
        )),
        Err(e) => Err(unavailable(lang, e)),
    }
}

/// A form of the plan's milestones: its action, whether it closes the plan (a reason, not a
/// time), its button and its time's label.
pub(crate) struct MilestoneForm {
    pub action: &'static str,
    pub closing: bool,
    pub button: String,
    pub at_label: String,
}

pub(crate) const CLOSE_REASONS: [&str; 7] = [
    "REINTEGRATED",
    "SUPPORT_ENDED",
    "OPTED_OUT",
    "MOVED_AWAY",
    "LOST_CONTACT",
    "DECEASED",
    "OTHER",
];

/// The milestone forms a plan offers its case team at its stage (the API decides the rest).
fn milestones_of(status: &str, departed: bool, arrived: bool) -> Vec<&'static str> {
    let mut forms = Vec::new();
    if status == "CLOSED" {
        return forms;
    }
    if !departed && matches!(status, "ACTIVE" | "TRAVELLING") {
        forms.push("departure");
    }
    if departed && !arrived {
        forms.push("arrival");
    }
    forms.push("close");
    forms
}

pub(crate) const WELLBEINGS: [&str; 4] = ["GOOD", "FAIR", "POOR", "AT_RISK"];
pub(crate) const CONCERNS: [&str; 9] = [
    "SAFETY",
    "HEALTH",
    "HOUSING",
    "INCOME",
    "EDUCATION",
    "FAMILY",
    "LEGAL",
    "STIGMA",
    "OTHER",
];
pub(crate) const DOCUMENT_STATUSES: [&str; 4] =
    ["REQUESTED", "SUBMITTED_TO_AUTHORITY", "ISSUED", "DELIVERED"];

/// History entries in words: what happened (to which step), who did it, when.
fn history_entries(
    lang: Lang,
    tz: Tz,
    names: &std::collections::HashMap<&str, String>,
    entries: &[Entry],
) -> Vec<HistoryShown> {
    entries
        .iter()
        .map(|e| {
            let mut what = lang.text(&format!("event-{}", e.kind));
            // `step` is a key, or (for `step_added`) the step's definition.
            let step = e
                .data
                .get("step")
                .and_then(|s| s.as_str().or_else(|| s.get("key").and_then(Value::as_str)));
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
                when: local_time(e.occurred_at, tz),
                who,
                what,
            }
        })
        .collect()
}

fn open(status: &str) -> bool {
    !matches!(status, "DONE" | "CANCELLED")
}

/// What can be done to a step from its page, by its status (the API decides who may).
fn actions_of(status: &str, kind: &str) -> Vec<&'static str> {
    // A follow-up visit is done by recording it.
    let complete = kind != "FOLLOW_UP";
    match status {
        "PENDING" | "READY" => vec!["start", "block"],
        "IN_PROGRESS" if complete => vec!["complete", "block"],
        "IN_PROGRESS" => vec!["block"],
        "BLOCKED" => vec!["unblock"],
        _ => Vec::new(),
    }
}

/// A step's name: its title (a template's in the reader's language), or its kind when the
/// title cannot be read.
fn step_name(lang: Lang, plan: &PlanOut, step: &StepOut) -> String {
    let template = homeward_workflows::plan::TemplateRef {
        name: plan.template_name.clone(),
        version: plan.template_version,
    };
    step_title(
        lang,
        &template,
        &step.key,
        &step.kind,
        step.title.as_deref(),
    )
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
                // A step under way says so, and when it is due.
                Standing::Overdue | Standing::Open if s.status == "IN_PROGRESS" => {
                    format!("{} · {}", shown.status, shown.when)
                }
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
            ("from", local_time(plan.opened_at, tz).into()),
            ("to", local_time(last, tz).into()),
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
