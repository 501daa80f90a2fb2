//! The forms of a plan's page (`POST /plans/{id}/{action}`): start, complete, block and
//! unblock a step, a travel document's status, a follow-up visit, and consent to return. Each
//! is one API mutation, sent with the version the page showed (a change made meanwhile is
//! reported with what it was, never overwritten) and the page's idempotency key (sent twice,
//! recorded once). What the form lacks is said beside it, with what was typed kept, and
//! nothing is sent.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use chrono::NaiveDate;
use serde_json::{json, Value};

use super::api::{self, Failed};
use super::plan::{render, Outcome, CLOSE_REASONS, CONCERNS, DOCUMENT_STATUSES, WELLBEINGS};
use super::{see_other, signed_form, unavailable, Fields, Signed};
use crate::routes::AppState;

/// The longest reason a form takes (the API's limit on free text).
const MAX_REASON: usize = 2000;

const START: &str = "mutation ConsoleStart($p: ID!, $s: String!, $v: Int, $k: String) {
  startStep(planId: $p, step: $s, expectedVersion: $v, idempotencyKey: $k) { version } }";
const COMPLETE: &str = "mutation ConsoleComplete($p: ID!, $s: String!, $v: Int, $k: String) {
  completeStep(planId: $p, step: $s, expectedVersion: $v, idempotencyKey: $k) { version } }";
const BLOCK: &str =
    "mutation ConsoleBlock($p: ID!, $s: String!, $r: String!, $v: Int, $k: String) {
  blockStep(planId: $p, step: $s, reason: $r, expectedVersion: $v, idempotencyKey: $k) { version } }";
const UNBLOCK: &str = "mutation ConsoleUnblock($p: ID!, $s: String!, $v: Int, $k: String) {
  unblockStep(planId: $p, step: $s, expectedVersion: $v, idempotencyKey: $k) { version } }";
const DOCUMENT: &str =
    "mutation ConsoleDocument($p: ID!, $s: String!, $d: DocumentStatus!, $v: Int, $k: String) {
  updateDocumentStatus(planId: $p, step: $s, status: $d, expectedVersion: $v, idempotencyKey: $k) { version } }";
const VISIT: &str =
    "mutation ConsoleVisit($p: ID!, $s: String!, $o: OutcomeInput!, $v: Int, $k: String) {
  recordFollowUp(planId: $p, step: $s, outcome: $o, expectedVersion: $v, idempotencyKey: $k) { version } }";
const DEPARTURE: &str = "mutation ConsoleDeparture($p: ID!, $at: DateTime!, $v: Int, $k: String) {
  confirmDeparture(planId: $p, departedAt: $at, expectedVersion: $v, idempotencyKey: $k) { version } }";
const ARRIVAL: &str = "mutation ConsoleArrival($p: ID!, $at: DateTime!, $v: Int, $k: String) {
  confirmArrival(planId: $p, arrivedAt: $at, expectedVersion: $v, idempotencyKey: $k) { version } }";
const CLOSE: &str = "mutation ConsoleClose($p: ID!, $r: CloseReason!, $v: Int, $k: String) {
  closePlan(planId: $p, reason: $r, expectedVersion: $v, idempotencyKey: $k) { version } }";
const CONSENT: &str = "mutation ConsoleConsent($p: ID!, $c: ConsentInput!, $v: Int, $k: String) {
  recordConsent(planId: $p, consent: $c, expectedVersion: $v, idempotencyKey: $k) { version } }";
const WITHDRAW: &str = "mutation ConsoleWithdraw($p: ID!, $c: ConsentInput!, $v: Int, $k: String) {
  withdrawConsent(planId: $p, consent: $c, expectedVersion: $v, idempotencyKey: $k) { version } }";

/// The consents a plan's page records and withdraws.
const PURPOSES: [&str; 3] = ["RETURN", "FAMILY_CONTACT", "DATA_SHARING"];

/// The consent a form names: its purpose, and the partner for data sharing.
fn consent_of(lang: homeward_engine::i18n::Lang, fields: &Fields) -> Result<Value, String> {
    let purpose = match fields.one("purpose") {
        "" => "RETURN",
        purpose => purpose,
    };
    if !PURPOSES.contains(&purpose) {
        return Err(lang.text("form-choose"));
    }
    if purpose != "DATA_SHARING" {
        return Ok(json!({ "kind": purpose }));
    }
    match uuid::Uuid::parse_str(fields.one("partner")) {
        Ok(partner) => Ok(json!({ "kind": purpose, "partner": partner })),
        Err(_) => Err(lang.text("form-choose")),
    }
}

/// The consent form's id on the page, as the page names it (see `plan::consent_forms`).
fn consent_form(fields: &Fields) -> String {
    let kind = match fields.one("purpose") {
        "" => "return".to_owned(),
        purpose => purpose.to_ascii_lowercase(),
    };
    match fields.one("partner") {
        "" => format!("consent-{kind}"),
        partner => format!("consent-{kind}-{partner}"),
    }
}

/// A field of one step's controls (`reason-<step>`), or the plain one (`reason`).
fn of_step<'a>(fields: &'a Fields, name: &str, step: &str) -> &'a str {
    match fields.one(&format!("{name}-{step}")) {
        "" => fields.one(name),
        value => value,
    }
}

/// What a form asks of the API, once its fields are checked.
struct Mutation {
    query: &'static str,
    variables: Value,
}

/// Checks a form's fields: the mutation it makes, or what to say beside it.
fn mutation(signed: &Signed, action: &'static str, fields: &Fields) -> Result<Mutation, String> {
    let lang = signed.lang;
    let step = fields.one("step");
    let reason = of_step(fields, "reason", step).trim();
    let (query, mut variables) = match action {
        "start" => (START, json!({})),
        "complete" => (COMPLETE, json!({})),
        "unblock" => (UNBLOCK, json!({})),
        "block" => {
            if reason.is_empty() {
                return Err(lang.text("form-required"));
            }
            if reason.chars().count() > MAX_REASON {
                return Err(lang.text_with("form-too-long", &[("max", MAX_REASON.into())]));
            }
            (BLOCK, json!({ "r": reason }))
        }
        "document" => {
            let status = of_step(fields, "status", step);
            if !DOCUMENT_STATUSES.contains(&status) {
                return Err(lang.text("form-required"));
            }
            (DOCUMENT, json!({ "d": status }))
        }
        "visit" => {
            let Ok(visited_on) =
                NaiveDate::parse_from_str(of_step(fields, "visited_on", step), "%Y-%m-%d")
            else {
                return Err(lang.text("page-visit-error-date"));
            };
            let wellbeing = of_step(fields, "wellbeing", step);
            if !WELLBEINGS.contains(&wellbeing) {
                return Err(lang.text("page-visit-error-wellbeing"));
            }
            let mut concerns = fields.all(&format!("concern-{step}"));
            if concerns.is_empty() {
                concerns = fields.all("concern");
            }
            if concerns.iter().any(|c| !CONCERNS.contains(c)) {
                return Err(lang.text("page-visit-error-concern"));
            }
            (
                VISIT,
                json!({ "o": { "visitedOn": visited_on, "wellbeing": wellbeing, "concerns": concerns } }),
            )
        }
        "departure" | "arrival" => {
            let tz: chrono_tz::Tz = signed
                .session
                .party
                .time_zone
                .parse()
                .unwrap_or(chrono_tz::Tz::UTC);
            let Some(at) =
                chrono::NaiveDateTime::parse_from_str(fields.one("at"), "%Y-%m-%dT%H:%M")
                    .ok()
                    .and_then(|t| t.and_local_timezone(tz).earliest())
            else {
                return Err(lang.text("form-bad-time"));
            };
            let query = if action == "departure" {
                DEPARTURE
            } else {
                ARRIVAL
            };
            (query, json!({ "at": at.with_timezone(&chrono::Utc) }))
        }
        "close" => {
            let reason = fields.one("close_reason");
            if !CLOSE_REASONS.contains(&reason) {
                return Err(lang.text("form-required"));
            }
            (CLOSE, json!({ "r": reason }))
        }
        "consent" => (CONSENT, json!({ "c": consent_of(lang, fields)? })),
        "withdraw-consent" => {
            let consent = consent_of(lang, fields)?;
            if fields.one("confirm") != "on" {
                return Err(lang.text("form-confirm-needed"));
            }
            (WITHDRAW, json!({ "c": consent }))
        }
        _ => return Err(lang.text("form-required")),
    };
    if !matches!(
        action,
        "consent" | "withdraw-consent" | "departure" | "arrival" | "close"
    ) {
        if step.is_empty() || step.len() > 64 {
            return Err(lang.text("form-required"));
        }
        variables["s"] = json!(step);
    }
    Ok(Mutation { query, variables })
}

/// The actions a plan's page has forms for.
const ACTIONS: [&str; 11] = [
    "departure",
    "arrival",
    "close",
    "start",
    "complete",
    "block",
    "unblock",
    "document",
    "visit",
    "consent",
    "withdraw-consent",
];

/// `POST /plans/{id}/{action}`.
pub(crate) async fn act(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let fields = Fields(fields);
    let back = format!("/plans/{id}");
    let signed = match signed_form(&state, &headers, fields.one("form_token"), &back).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let lang = signed.lang;
    let Some(action) = ACTIONS.iter().copied().find(|a| *a == action) else {
        return super::plan::not_found(lang, &back, &signed);
    };
    let Ok(plan_id) = uuid::Uuid::parse_str(&id) else {
        return super::plan::not_found(lang, &back, &signed);
    };
    let step = (!fields.one("step").is_empty()).then(|| fields.one("step").to_owned());
    let refused = |status: StatusCode, error: String| Outcome {
        status: Some(status),
        action,
        step: step.clone(),
        error: Some(error),
        typed: of_step(&fields, "reason", fields.one("step")).to_owned(),
        consent: action.ends_with("consent").then(|| consent_form(&fields)),
        conflict_since: None,
    };
    // The version the page showed; a form without one is out of date.
    let Ok(version) = fields.one("version").parse::<u64>() else {
        let outcome = refused(StatusCode::CONFLICT, lang.text("refused-form-token"));
        return render(&state, &signed, &back, &id, None, outcome).await;
    };
    let mut mutation = match mutation(&signed, action, &fields) {
        Ok(m) => m,
        Err(error) => {
            let outcome = refused(StatusCode::UNPROCESSABLE_ENTITY, error);
            return render(&state, &signed, &back, &id, None, outcome).await;
        }
    };
    mutation.variables["p"] = json!(plan_id);
    mutation.variables["v"] = json!(version);
    // One key per form of the page: the same form sent twice is recorded once, and two
    // forms of one page are two changes.
    let key = fields.one("key");
    if !key.is_empty() {
        let form = match &step {
            Some(step) => step.clone(),
            None if action.ends_with("consent") => consent_form(&fields),
            None => String::new(),
        };
        mutation.variables["k"] = json!(format!("console-{key}-{action}-{form}"));
    }
    let answer = api::run::<Value>(
        &state,
        &signed.session.viewer,
        "plan form",
        mutation.query,
        mutation.variables,
    )
    .await;
    match answer {
        Ok(_) => see_other(&match &step {
            Some(key) => format!("{back}#step-{key}"),
            None if action.ends_with("consent") => format!("{back}#consents"),
            None => format!("{back}#summary"),
        }),
        Err(Failed::Api(problems)) => {
            if problems.iter().any(|p| p.code == "CONFLICT") {
                // What was typed stays beside the form, for the person to check and send again.
                let outcome = Outcome {
                    conflict_since: Some(version),
                    ..refused(StatusCode::CONFLICT, lang.text("form-conflict-resend"))
                };
                return render(&state, &signed, &back, &id, None, outcome).await;
            }
            let (status, message) = api::refusal(&problems);
            let error = lang.text_with("form-refused", &[("message", message.into())]);
            render(&state, &signed, &back, &id, None, refused(status, error)).await
        }
        Err(e) => unavailable(lang, e),
    }
}
