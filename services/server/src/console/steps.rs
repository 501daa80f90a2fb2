//! Personalising a plan, step by step: a step's own page (`/plans/{id}/steps/{key}`) with a
//! form for each change the case team makes to it (when it is due, whom it is for, what it
//! waits for, how urgent it is, when its assignee is reminded, and removing it), and the page
//! that adds a step (`/plans/{id}/new-step`). Each form is one API mutation sent with the
//! version the page showed: a change made meanwhile is shown, never overwritten. What a form
//! lacks is said beside the field, with what was typed kept, and nothing is sent.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::Form;
use chrono::{NaiveDate, NaiveDateTime};
use homeward_workflows::plan::{
    MAX_DEPENDENCIES, MAX_GROUP, MAX_OFFSET_DAYS, MAX_REASON, MAX_REMINDER_DAYS, MAX_TITLE,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::{self, Connection, Failed};
use super::inbox::{id_of, kind_name, step_title};
use super::plan::{changes_since, not_found, reads_case_files, HistoryShown};
use super::{page, see_other, signed_form, signed_in, unavailable, Chrome, Fields, Signed};
use crate::routes::AppState;

const PLAN: &str = "query ConsoleStep($id: ID!) {
  plan(id: $id) {
    id version status templateName templateVersion
    steps {
      key kind title status priority followUpOn dependsOn candidateGroup assignee { id }
      dueRule { localDateTime timeZone milestone days }
      reminderPolicy { beforeDueDays onDue overdueEveryDays escalateAfterDays }
    }
  }
}";

const PARTIES: &str = "query ConsoleParties($after: String) {
  parties(first: 100, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id displayName role active organisation { name } }
  }
}";

const RESCHEDULE: &str = "mutation ConsoleReschedule($p: ID!, $s: String!, $due: DueInput,
  $f: NaiveDate, $v: Int, $k: String) {
  rescheduleStep(planId: $p, step: $s, due: $due, followUpOn: $f, expectedVersion: $v,
    idempotencyKey: $k) { version } }";
const ASSIGN: &str = "mutation ConsoleAssign($p: ID!, $s: String!, $a: ID, $g: String, $v: Int,
  $k: String) {
  assignStep(planId: $p, step: $s, assignee: $a, candidateGroup: $g, expectedVersion: $v,
    idempotencyKey: $k) { version } }";
const DEPENDS: &str = "mutation ConsoleDepends($p: ID!, $s: String!, $d: [String!]!, $v: Int,
  $k: String) {
  changeDependencies(planId: $p, step: $s, dependsOn: $d, expectedVersion: $v,
    idempotencyKey: $k) { version } }";
const PRIORITY: &str = "mutation ConsolePriority($p: ID!, $s: String!, $r: Priority!, $v: Int,
  $k: String) {
  prioritiseStep(planId: $p, step: $s, priority: $r, expectedVersion: $v, idempotencyKey: $k) {
    version } }";
const REMINDERS: &str = "mutation ConsoleReminders($p: ID!, $s: String!,
  $r: ReminderPolicyInput!, $v: Int, $k: String) {
  setReminderPolicy(planId: $p, step: $s, policy: $r, expectedVersion: $v, idempotencyKey: $k) {
    version } }";
const REMOVE: &str = "mutation ConsoleRemove($p: ID!, $s: String!, $r: String!, $v: Int,
  $k: String) {
  removeStep(planId: $p, step: $s, reason: $r, expectedVersion: $v, idempotencyKey: $k) {
    version } }";
const CANCEL: &str = "mutation ConsoleCancel($p: ID!, $s: String!, $r: String!, $v: Int,
  $k: String) {
  cancelStep(planId: $p, step: $s, reason: $r, expectedVersion: $v, idempotencyKey: $k) {
    version } }";
const ADD: &str = "mutation ConsoleAddStep($p: ID!, $step: NewStepInput!, $v: Int, $k: String) {
  addStep(planId: $p, step: $step, expectedVersion: $v, idempotencyKey: $k) { version } }";

/// The changes a step's page has a form for.
const CHANGES: [&str; 7] = [
    "reschedule",
    "assign",
    "depends",
    "priority",
    "reminders",
    "remove",
    "cancel",
];

pub(crate) const KINDS: [&str; 9] = [
    "CUSTOM",
    "TRAVEL_DOCUMENT",
    "TRAVEL",
    "FAMILY_MEDIATION",
    "ORIGIN_CONTACT",
    "FOLLOW_UP",
    "MEDICAL",
    "LEGAL",
    "REINTEGRATION_SUPPORT",
];
const PRIORITIES: [&str; 4] = ["LOW", "NORMAL", "HIGH", "URGENT"];
const MILESTONES: [&str; 3] = ["PLAN_OPENED", "DEPARTURE", "ARRIVAL"];

#[derive(Debug, Deserialize)]
struct PlanAnswer {
    plan: Option<PlanOut>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlanOut {
    id: String,
    version: u64,
    status: String,
    template_name: String,
    template_version: u32,
    steps: Vec<StepOut>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StepOut {
    key: String,
    kind: String,
    title: Option<String>,
    status: String,
    priority: String,
    follow_up_on: Option<NaiveDate>,
    depends_on: Vec<String>,
    candidate_group: Option<String>,
    assignee: Option<Id>,
    due_rule: Option<DueRuleOut>,
    reminder_policy: PolicyOut,
}

#[derive(Debug, Deserialize)]
struct Id {
    id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DueRuleOut {
    local_date_time: Option<NaiveDateTime>,
    time_zone: Option<String>,
    milestone: Option<String>,
    days: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyOut {
    before_due_days: Option<u32>,
    on_due: bool,
    overdue_every_days: Option<u32>,
    escalate_after_days: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct PartiesAnswer {
    parties: Connection<PartyOut>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartyOut {
    id: String,
    display_name: String,
    role: Option<String>,
    active: bool,
    organisation: Option<OrganisationOut>,
}

#[derive(Debug, Deserialize)]
struct OrganisationOut {
    name: String,
}

/// What a step's fields hold: the step as it is, or what was typed in a refused form.
#[derive(Debug, Clone, Default)]
struct Values {
    kind: String,
    title: String,
    /// How it is due: `none`, `at` a time, or `after` a milestone.
    due: String,
    due_at: String,
    due_zone: String,
    milestone: String,
    days: String,
    follow_up_on: String,
    assignee: String,
    group: String,
    depends_on: Vec<String>,
    priority: String,
    before_due_days: String,
    on_due: bool,
    overdue_every_days: String,
    escalate_after_days: String,
    reason: String,
}

fn number(n: Option<u32>) -> String {
    n.map(|n| n.to_string()).unwrap_or_default()
}

impl Values {
    fn of(step: &StepOut, zone: &str) -> Self {
        let rule = step.due_rule.as_ref();
        let due = match rule {
            Some(r) if r.milestone.is_some() => "after",
            Some(_) => "at",
            None => "none",
        };
        let policy = &step.reminder_policy;
        Self {
            kind: step.kind.clone(),
            title: step.title.clone().unwrap_or_default(),
            due: due.to_owned(),
            due_at: rule
                .and_then(|r| r.local_date_time)
                .map(|t| t.format("%Y-%m-%dT%H:%M").to_string())
                .unwrap_or_default(),
            due_zone: rule
                .and_then(|r| r.time_zone.clone())
                .unwrap_or_else(|| zone.to_owned()),
            milestone: rule
                .and_then(|r| r.milestone.clone())
                .unwrap_or_else(|| "ARRIVAL".to_owned()),
            days: number(rule.and_then(|r| r.days)),
            follow_up_on: step.follow_up_on.map(|d| d.to_string()).unwrap_or_default(),
            assignee: step
                .assignee
                .as_ref()
                .map(|a| a.id.clone())
                .unwrap_or_default(),
            group: step.candidate_group.clone().unwrap_or_default(),
            depends_on: step.depends_on.clone(),
            priority: step.priority.clone(),
            before_due_days: number(policy.before_due_days),
            on_due: policy.on_due,
            overdue_every_days: number(policy.overdue_every_days),
            escalate_after_days: number(policy.escalate_after_days),
            reason: String::new(),
        }
    }

    /// A new step's fields before anything is typed.
    fn new_step(zone: &str) -> Self {
        Self {
            kind: "CUSTOM".to_owned(),
            due: "at".to_owned(),
            due_zone: zone.to_owned(),
            milestone: "ARRIVAL".to_owned(),
            priority: "NORMAL".to_owned(),
            on_due: true,
            ..Self::default()
        }
    }

    /// These values with what the form `change` sent over them (a checkbox left empty is
    /// not sent, so the form's own fields are all taken).
    fn typed(mut self, change: &str, fields: &Fields) -> Self {
        let text = |name: &str| fields.one(name).to_owned();
        let all = |name: &str| fields.all(name).into_iter().map(str::to_owned).collect();
        match change {
            "reschedule" => self.schedule_from(fields),
            "assign" => {
                self.assignee = text("assignee");
                self.group = text("group");
            }
            "depends" => self.depends_on = all("depends_on"),
            "priority" => self.priority = text("priority"),
            "reminders" => {
                self.before_due_days = text("before_due_days");
                self.on_due = fields.one("on_due") == "on";
                self.overdue_every_days = text("overdue_every_days");
                self.escalate_after_days = text("escalate_after_days");
            }
            "remove" | "cancel" => self.reason = text("reason"),
            "add" => {
                self.kind = text("kind");
                self.title = text("title");
                self.schedule_from(fields);
                self.assignee = text("assignee");
                self.group = text("group");
                self.depends_on = all("depends_on");
                self.priority = text("priority");
            }
            _ => {}
        }
        self
    }

    fn schedule_from(&mut self, fields: &Fields) {
        self.due = fields.one("due").to_owned();
        self.due_at = fields.one("due_at").to_owned();
        if !fields.one("due_zone").is_empty() {
            self.due_zone = fields.one("due_zone").to_owned();
        }
        self.milestone = fields.one("milestone").to_owned();
        self.days = fields.one("days").to_owned();
        self.follow_up_on = fields.one("follow_up_on").to_owned();
    }
}

/// A field a form was refused for, and why.
struct Invalid {
    field: &'static str,
    message: String,
}

fn invalid(field: &'static str, message: String) -> Invalid {
    Invalid { field, message }
}

/// A number of days typed in a field: none when empty, else within `min..=max`.
fn days_in(
    lang: homeward_engine::i18n::Lang,
    field: &'static str,
    text: &str,
    min: u32,
    max: u32,
) -> Result<Option<u32>, Invalid> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(invalid(
            field,
            lang.text_with(
                "form-bad-days",
                &[
                    ("from", min.to_string().into()),
                    ("to", max.to_string().into()),
                ],
            ),
        )),
    }
}

/// The `due` and `followUpOn` a form's schedule fields ask for.
fn schedule(signed: &Signed, fields: &Fields) -> Result<(Value, Value), Invalid> {
    let lang = signed.lang;
    let due = match fields.one("due") {
        "none" => Value::Null,
        "at" => {
            let text = fields.one("due_at");
            let Some(at) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
                .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
                .ok()
            else {
                return Err(invalid("due_at", lang.text("form-bad-time")));
            };
            let zone = match fields.one("due_zone") {
                "" => signed.session.party.time_zone.as_str(),
                zone => zone,
            };
            if zone.parse::<chrono_tz::Tz>().is_err() {
                return Err(invalid("due_at", lang.text("form-bad-zone")));
            }
            json!({ "at": {
                "localDateTime": at.format("%Y-%m-%dT%H:%M:%S").to_string(),
                "timeZone": zone,
            } })
        }
        "after" => {
            let milestone = fields.one("milestone");
            if !MILESTONES.contains(&milestone) {
                return Err(invalid("milestone", lang.text("form-choose")));
            }
            let Some(days) = days_in(lang, "days", fields.one("days"), 0, MAX_OFFSET_DAYS)? else {
                return Err(invalid("days", lang.text("form-required-number")));
            };
            json!({ "after": { "milestone": milestone, "days": days } })
        }
        _ => return Err(invalid("due", lang.text("form-choose"))),
    };
    let follow_up = match fields.one("follow_up_on").trim() {
        "" => Value::Null,
        text => match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(date) => json!(date),
            Err(_) => return Err(invalid("follow_up_on", lang.text("form-bad-date"))),
        },
    };
    Ok((due, follow_up))
}

/// The assignee and candidate group a form asks for.
fn assignment(signed: &Signed, fields: &Fields) -> Result<(Value, Value), Invalid> {
    let lang = signed.lang;
    let assignee = match fields.one("assignee") {
        "" => Value::Null,
        id => match uuid::Uuid::parse_str(id) {
            Ok(id) => json!(id),
            Err(_) => return Err(invalid("assignee", lang.text("form-choose"))),
        },
    };
    let group = fields.one("group").trim();
    if group.chars().count() > MAX_GROUP {
        return Err(invalid(
            "group",
            lang.text_with("form-too-long", &[("max", MAX_GROUP.into())]),
        ));
    }
    Ok((assignee, (!group.is_empty()).then_some(group).into()))
}

/// The steps a form says this one waits for: steps of the plan, not itself.
fn dependencies<'a>(
    signed: &Signed,
    fields: &'a Fields,
    keys: &[&str],
    step: Option<&str>,
) -> Result<Vec<&'a str>, Invalid> {
    let lang = signed.lang;
    let chosen = fields.all("depends_on");
    if chosen.iter().any(|d| !keys.contains(d) || Some(*d) == step) {
        return Err(invalid("depends_on", lang.text("form-choose")));
    }
    if chosen.len() > MAX_DEPENDENCIES {
        return Err(invalid(
            "depends_on",
            lang.text_with("form-too-many", &[("max", MAX_DEPENDENCIES.into())]),
        ));
    }
    Ok(chosen)
}

fn priority<'a>(signed: &Signed, fields: &'a Fields) -> Result<&'a str, Invalid> {
    let priority = fields.one("priority");
    if PRIORITIES.contains(&priority) {
        Ok(priority)
    } else {
        Err(invalid("priority", signed.lang.text("form-choose")))
    }
}

/// What the form `change` of `step` asks of the API, once its fields are checked.
fn change_of(
    signed: &Signed,
    change: &str,
    fields: &Fields,
    keys: &[&str],
    step: &str,
) -> Result<(&'static str, Value), Invalid> {
    let lang = signed.lang;
    Ok(match change {
        "reschedule" => {
            let (due, follow_up) = schedule(signed, fields)?;
            (RESCHEDULE, json!({ "due": due, "f": follow_up }))
        }
        "assign" => {
            let (assignee, group) = assignment(signed, fields)?;
            (ASSIGN, json!({ "a": assignee, "g": group }))
        }
        "depends" => (
            DEPENDS,
            json!({ "d": dependencies(signed, fields, keys, Some(step))? }),
        ),
        "priority" => (PRIORITY, json!({ "r": priority(signed, fields)? })),
        "reminders" => {
            let before = days_in(
                lang,
                "before_due_days",
                fields.one("before_due_days"),
                1,
                MAX_REMINDER_DAYS,
            )?;
            let every = days_in(
                lang,
                "overdue_every_days",
                fields.one("overdue_every_days"),
                1,
                MAX_REMINDER_DAYS,
            )?;
            let escalate = days_in(
                lang,
                "escalate_after_days",
                fields.one("escalate_after_days"),
                1,
                MAX_REMINDER_DAYS,
            )?;
            (
                REMINDERS,
                json!({ "r": {
                    "beforeDueDays": before,
                    "onDue": fields.one("on_due") == "on",
                    "overdueEveryDays": every,
                    "escalateAfterDays": escalate,
                } }),
            )
        }
        "remove" | "cancel" => {
            let reason = fields.one("reason").trim();
            if reason.is_empty() {
                return Err(invalid("reason", lang.text("form-required")));
            }
            if reason.chars().count() > MAX_REASON {
                return Err(invalid(
                    "reason",
                    lang.text_with("form-too-long", &[("max", MAX_REASON.into())]),
                ));
            }
            let query = if change == "remove" { REMOVE } else { CANCEL };
            (query, json!({ "r": reason }))
        }
        _ => return Err(invalid("", lang.text("form-required"))),
    })
}

/// A new step's key, from its title: lowercase letters and digits joined by `_`, with a
/// number after it when a step of the plan (as the page showed it) already has that key.
fn key_for(title: &str, kind: &str, taken: &[&str]) -> String {
    let mut key = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        let c = match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
            'ç' => 'c',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ñ' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            c if c.is_ascii_alphanumeric() => c,
            _ => '_',
        };
        if c != '_' || !(key.is_empty() || key.ends_with('_')) {
            key.push(c);
        }
        if key.len() >= 48 {
            break;
        }
    }
    let key = key.trim_end_matches('_');
    let key = if key.is_empty() {
        kind.to_ascii_lowercase()
    } else {
        key.to_owned()
    };
    if !taken.contains(&key.as_str()) {
        return key;
    }
    (2..)
        .map(|n| format!("{key}_{n}"))
        .find(|k| !taken.contains(&k.as_str()))
        .unwrap_or(key)
}

/// An option of a list: (value, label, chosen).
type Choice = (String, String, bool);

#[derive(Template)]
#[template(path = "console/step.html")]
struct StepPage {
    chrome: Chrome,
    plan_href: String,
    /// Where the forms are sent: `/plans/{id}/steps/{key}`, or the new-step page.
    action: String,
    version: u64,
    form_key: String,
    /// Whether this page adds a step (one form) or changes one (a form per change).
    adding: bool,
    /// Whether the step has not started (its dependencies can change, it can be removed).
    not_started: bool,
    /// Whether it has started and is not over (it can be cancelled).
    started: bool,
    /// The due time's label, with the zone it is in.
    due_at_label: String,
    values: Values,
    kinds: Vec<(&'static str, String, bool)>,
    priorities: Vec<(&'static str, String, bool)>,
    milestones: Vec<(&'static str, String, bool)>,
    /// Parties to assign, by organisation: (organisation, [(id, label, chosen)]).
    assignees: Vec<(String, Vec<Choice>)>,
    /// The plan's other steps: (key, name, waited for).
    others: Vec<(String, String, bool)>,
    /// The keys of the plan's steps as this page showed them (a new step's key is not one).
    taken: String,
    /// The form refused: (change, field, message).
    error: Option<(String, &'static str, String)>,
    /// What was recorded since the version a refused form was based on.
    conflict: Option<Vec<HistoryShown>>,
    /// How the due date choice reads: (value, label, chosen).
    due_choices: Vec<(&'static str, String, bool)>,
}

impl StepPage {
    /// Why the form `change` was refused, if it was the one sent.
    fn error_for(&self, change: &str) -> Option<&str> {
        match &self.error {
            Some((sent, _, message)) if sent == change => Some(message),
            _ => None,
        }
    }

    /// Whether `field` of the form `change` was what it was refused for.
    fn invalid(&self, change: &str, field: &str) -> bool {
        matches!(&self.error, Some((sent, f, _)) if sent == change && *f == field)
    }
}

/// What a form sent from a step's page came to.
#[derive(Default)]
struct Outcome {
    status: Option<StatusCode>,
    change: String,
    fields: Option<Fields>,
    error: Option<Invalid>,
    conflict_since: Option<u64>,
}

/// The plan as the step's page reads it, with the parties it may be assigned to.
async fn load(
    state: &AppState,
    signed: &Signed,
    here: &str,
    plan_id: uuid::Uuid,
) -> Result<(PlanOut, Vec<PartyOut>), Response> {
    let lang = signed.lang;
    let viewer = &signed.session.viewer;
    if !reads_case_files(viewer.role) {
        return Err(not_found(lang, here, signed));
    }
    let plan =
        match api::run::<PlanAnswer>(state, viewer, "step", PLAN, json!({ "id": plan_id })).await {
            Ok(PlanAnswer { plan: Some(plan) }) => plan,
            Ok(_) | Err(Failed::Api(_)) => return Err(not_found(lang, here, signed)),
            Err(e) => return Err(unavailable(lang, e)),
        };
    let mut parties = Vec::new();
    let mut after: Option<String> = None;
    // A programme's directory, a page of a hundred at a time.
    for _ in 0..20 {
        let answer =
            api::run::<PartiesAnswer>(state, viewer, "step", PARTIES, json!({ "after": after }))
                .await
                .map_err(|e| unavailable(lang, e))?;
        parties.extend(answer.parties.nodes);
        match answer.parties.page_info.next() {
            Some(cursor) => after = Some(cursor.to_owned()),
            None => break,
        }
    }
    Ok((plan, parties))
}

fn step_name(lang: homeward_engine::i18n::Lang, plan: &PlanOut, step: &StepOut) -> String {
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

/// The page of `step` (none: the new-step page), with what a form sent from it came to.
async fn render(
    state: &AppState,
    signed: &Signed,
    here: &str,
    plan_id: uuid::Uuid,
    step: Option<&str>,
    outcome: Outcome,
) -> Response {
    let lang = signed.lang;
    let (plan, parties) = match load(state, signed, here, plan_id).await {
        Ok(loaded) => loaded,
        Err(response) => return response,
    };
    let zone = signed.session.party.time_zone.clone();
    let current = step.and_then(|key| plan.steps.iter().find(|s| s.key == key));
    if step.is_some() && current.is_none() {
        // Removed meanwhile: the plan's page says what changed since the form's version.
        if let Some(since) = outcome.conflict_since {
            let shown = super::plan::Outcome {
                status: Some(StatusCode::CONFLICT),
                conflict_since: Some(since),
                ..Default::default()
            };
            let plan_page = format!("/plans/{plan_id}");
            return super::plan::render(state, signed, &plan_page, &plan.id, None, shown).await;
        }
        return not_found(lang, here, signed);
    }
    let names: HashMap<&str, String> = plan
        .steps
        .iter()
        .map(|s| (s.key.as_str(), step_name(lang, &plan, s)))
        .collect();
    let mut values = current.map_or_else(|| Values::new_step(&zone), |s| Values::of(s, &zone));
    if let (Some(fields), Some(_)) = (&outcome.fields, &outcome.error) {
        values = values.typed(&outcome.change, fields);
    }
    let conflict = match outcome.conflict_since {
        Some(since) => match changes_since(state, signed, plan_id, since, &names).await {
            Ok(entries) => Some(entries),
            Err(response) => return response,
        },
        None => None,
    };
    let choices = |options: &[&'static str], prefix: &str, chosen: &str| {
        options
            .iter()
            .map(|o| {
                (
                    *o,
                    lang.text(&format!("{prefix}-{}", id_of(o))),
                    *o == chosen,
                )
            })
            .collect::<Vec<_>>()
    };
    let mut by_organisation: Vec<(String, Vec<Choice>)> = Vec::new();
    for party in parties
        .iter()
        .filter(|p| p.active || p.id == values.assignee)
        .filter(|p| !matches!(p.role.as_deref(), Some("ADMIN") | None))
    {
        let organisation = party
            .organisation
            .as_ref()
            .map(|o| o.name.clone())
            .unwrap_or_default();
        let label = format!(
            "{} ({})",
            party.display_name,
            lang.text(&format!(
                "role-{}",
                id_of(party.role.as_deref().unwrap_or_default())
            ))
        );
        let entry = (party.id.clone(), label, party.id == values.assignee);
        match by_organisation.iter_mut().find(|(o, _)| *o == organisation) {
            Some((_, list)) => list.push(entry),
            None => by_organisation.push((organisation, vec![entry])),
        }
    }
    let others = plan
        .steps
        .iter()
        .filter(|s| Some(s.key.as_str()) != step && s.status != "CANCELLED")
        .map(|s| {
            (
                s.key.clone(),
                names.get(s.key.as_str()).cloned().unwrap_or_default(),
                values.depends_on.contains(&s.key),
            )
        })
        .collect();
    let plan_href = format!("/plans/{}", plan.id);
    let (title_id, action) = match step {
        Some(key) => ("step-change-title", format!("{plan_href}/steps/{key}")),
        None => ("step-add-title", format!("{plan_href}/new-step")),
    };
    let mut chrome = Chrome::signed(lang, title_id, here, signed);
    let name = current
        .map(|s| step_name(lang, &plan, s))
        .unwrap_or_default();
    if current.is_some() {
        chrome.title = lang.text_with("step-change-title", &[("title", name.clone().into())]);
    }
    let due_choices = ["at", "after", "none"]
        .into_iter()
        .map(|d| (d, lang.text(&format!("form-due-{d}")), values.due == d))
        .collect();
    page(
        outcome.status.unwrap_or(StatusCode::OK),
        StepPage {
            chrome,
            plan_href,
            action,
            version: plan.version,
            form_key: uuid::Uuid::new_v4().to_string(),
            adding: step.is_none(),
            started: current
                .is_some_and(|s| matches!(s.status.as_str(), "IN_PROGRESS" | "BLOCKED"))
                && plan.status != "CLOSED",
            due_at_label: lang.text_with(
                "form-due-at-label",
                &[("zone", values.due_zone.clone().into())],
            ),
            not_started: current.is_none_or(|s| matches!(s.status.as_str(), "PENDING" | "READY"))
                && plan.status != "CLOSED",
            kinds: KINDS
                .iter()
                .map(|k| (*k, kind_name(lang, k), *k == values.kind))
                .collect(),
            priorities: choices(&PRIORITIES, "priority", &values.priority),
            milestones: choices(&MILESTONES, "milestone", &values.milestone),
            assignees: by_organisation,
            others,
            taken: plan
                .steps
                .iter()
                .map(|s| s.key.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            error: outcome
                .error
                .map(|e| (outcome.change.clone(), e.field, e.message)),
            conflict,
            due_choices,
            values,
        },
    )
}

/// `GET /plans/{id}/steps/{key}`.
pub(crate) async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, key)): Path<(String, String)>,
) -> Response {
    let here = uri.path().to_owned();
    let signed = match signed_in(&state, &headers, &here).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let Ok(plan_id) = uuid::Uuid::parse_str(&id) else {
        return not_found(signed.lang, &here, &signed);
    };
    render(
        &state,
        &signed,
        &here,
        plan_id,
        Some(&key),
        Outcome::default(),
    )
    .await
}

/// `GET /plans/{id}/new-step`.
pub(crate) async fn new_step(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    let here = uri.path().to_owned();
    let signed = match signed_in(&state, &headers, &here).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let Ok(plan_id) = uuid::Uuid::parse_str(&id) else {
        return not_found(signed.lang, &here, &signed);
    };
    render(&state, &signed, &here, plan_id, None, Outcome::default()).await
}

/// `POST /plans/{id}/steps/{key}/{change}`.
pub(crate) async fn change(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, key, change)): Path<(String, String, String)>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let fields = Fields(fields);
    let back = format!("/plans/{id}/steps/{key}");
    let signed = match signed_form(&state, &headers, fields.one("form_token"), &back).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let (Ok(plan_id), Some(change)) = (
        uuid::Uuid::parse_str(&id),
        CHANGES.iter().copied().find(|c| *c == change),
    ) else {
        return not_found(signed.lang, &back, &signed);
    };
    let keys: Vec<&str> = fields.one("taken").split_whitespace().collect();
    let checked = match change_of(&signed, change, &fields, &keys, &key) {
        Ok((query, mut variables)) => {
            variables["s"] = json!(key);
            Ok((query, variables))
        }
        Err(e) => Err(e),
    };
    let done = if matches!(change, "remove" | "cancel") {
        format!("/plans/{id}#steps")
    } else {
        format!("{back}#{change}")
    };
    send(
        &state,
        &signed,
        &back,
        plan_id,
        Some(&key),
        change,
        fields,
        checked,
        done,
    )
    .await
}

/// `POST /plans/{id}/new-step`.
pub(crate) async fn add(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let fields = Fields(fields);
    let back = format!("/plans/{id}/new-step");
    let signed = match signed_form(&state, &headers, fields.one("form_token"), &back).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let Ok(plan_id) = uuid::Uuid::parse_str(&id) else {
        return not_found(signed.lang, &back, &signed);
    };
    let taken: Vec<&str> = fields.one("taken").split_whitespace().collect();
    let checked = new_step_of(&signed, &fields, &taken);
    let done = match &checked {
        Ok((_, variables)) => format!(
            "/plans/{id}#step-{}",
            variables["step"]["key"].as_str().unwrap_or_default()
        ),
        Err(_) => String::new(),
    };
    send(
        &state, &signed, &back, plan_id, None, "add", fields, checked, done,
    )
    .await
}

/// The step a new-step form asks to add, once its fields are checked.
fn new_step_of(
    signed: &Signed,
    fields: &Fields,
    taken: &[&str],
) -> Result<(&'static str, Value), Invalid> {
    let lang = signed.lang;
    let kind = fields.one("kind");
    if !KINDS.contains(&kind) {
        return Err(invalid("kind", lang.text("form-choose")));
    }
    let title = fields.one("title").trim();
    if title.is_empty() {
        return Err(invalid("title", lang.text("form-required")));
    }
    if title.chars().count() > MAX_TITLE {
        return Err(invalid(
            "title",
            lang.text_with("form-too-long", &[("max", MAX_TITLE.into())]),
        ));
    }
    let (due, follow_up) = schedule(signed, fields)?;
    let (assignee, group) = assignment(signed, fields)?;
    let depends_on = dependencies(signed, fields, taken, None)?;
    let priority = priority(signed, fields)?;
    Ok((
        ADD,
        json!({ "step": {
            "key": key_for(title, kind, taken),
            "kind": kind,
            "title": title,
            "assignee": assignee,
            "candidateGroup": group,
            "priority": priority,
            "due": due,
            "followUpOn": follow_up,
            "dependsOn": depends_on,
        } }),
    ))
}

/// Sends a checked form's mutation with the version the page showed and the page's key for
/// this form (sent twice, recorded once): to `done` when recorded, else the page again with
/// why.
#[allow(clippy::too_many_arguments)]
async fn send(
    state: &AppState,
    signed: &Signed,
    back: &str,
    plan_id: uuid::Uuid,
    step: Option<&str>,
    change: &str,
    fields: Fields,
    checked: Result<(&'static str, Value), Invalid>,
    done: String,
) -> Response {
    let lang = signed.lang;
    let refused = |status, error, fields| Outcome {
        status: Some(status),
        change: change.to_owned(),
        fields: Some(fields),
        error: Some(error),
        conflict_since: None,
    };
    // The version the page showed; a form without one is out of date.
    let Ok(version) = fields.one("version").parse::<u64>() else {
        let error = invalid("", lang.text("refused-form-token"));
        let outcome = refused(StatusCode::CONFLICT, error, fields);
        return render(state, signed, back, plan_id, step, outcome).await;
    };
    let (query, mut variables) = match checked {
        Ok(checked) => checked,
        Err(error) => {
            let outcome = refused(StatusCode::UNPROCESSABLE_ENTITY, error, fields);
            return render(state, signed, back, plan_id, step, outcome).await;
        }
    };
    variables["p"] = json!(plan_id);
    variables["v"] = json!(version);
    let key = fields.one("key");
    if !key.is_empty() {
        variables["k"] = json!(format!("console-{key}-{change}"));
    }
    let answer =
        api::run::<Value>(state, &signed.session.viewer, "step form", query, variables).await;
    match answer {
        Ok(_) => see_other(&done),
        Err(Failed::Api(problems)) if problems.iter().any(|p| p.code == "CONFLICT") => {
            // What was typed stays in the form, for the person to check and send again.
            let error = invalid("", lang.text("form-conflict-resend"));
            let outcome = Outcome {
                conflict_since: Some(version),
                ..refused(StatusCode::CONFLICT, error, fields)
            };
            render(state, signed, back, plan_id, step, outcome).await
        }
        Err(Failed::Api(problems)) => {
            let (status, message) = api::refusal(&problems);
            let error = invalid(
                "",
                lang.text_with("form-refused", &[("message", message.into())]),
            );
            render(
                state,
                signed,
                back,
                plan_id,
                step,
                refused(status, error, fields),
            )
            .await
        }
        Err(e) => unavailable(lang, e),
    }
}

#[cfg(test)]
mod tests {
    use super::key_for;

    #[test]
    fn a_new_steps_key_is_its_title_in_plain_letters_and_never_one_taken() {
        assert_eq!(key_for("Meet the lawyer", "LEGAL", &[]), "meet_the_lawyer");
        assert_eq!(
            key_for("Rendez-vous médecin (CHU)", "MEDICAL", &[]),
            "rendez_vous_medecin_chu"
        );
        assert_eq!(key_for("  ¿?  ", "LEGAL", &[]), "legal");
        assert_eq!(
            key_for(
                "Meet the lawyer",
                "LEGAL",
                &["meet_the_lawyer", "meet_the_lawyer_2"]
            ),
            "meet_the_lawyer_3"
        );
        let long = key_for(&"a very long title ".repeat(10), "CUSTOM", &[]);
        assert!(long.len() <= 48 && !long.ends_with('_'), "{long}");
    }
}
