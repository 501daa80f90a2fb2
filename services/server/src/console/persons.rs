//! A survivor's record for her case team (`/persons/{id}`): her details, their correction (with
//! a reason, based on the version shown: a change made meanwhile is reported, never
//! overwritten), and case notes. Read and written through the API's `person`, `updatePerson`
//! and `addNote`; what the page shows of her is in her access log.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::{self, Failed};
use super::{
    local_time, message, page, see_other, signed_form, signed_in, unavailable, Chrome, Fields,
    Signed,
};
use crate::routes::AppState;

const QUERY: &str = "query ConsolePerson($id: ID!) {
  person(id: $id) {
    id version fullName dateOfBirth preferredLanguage phone email address erasedAt
    legalHold { reason placedAt }
    notes { text at author { displayName } }
  }
}";

/// The fields of her record a correction may change: (form name, API name, label id).
const FIELDS: [(&str, &str, &str); 6] = [
    ("full_name", "fullName", "person-name"),
    ("date_of_birth", "dateOfBirth", "person-born"),
    ("preferred_language", "preferredLanguage", "person-language"),
    ("phone", "phone", "person-phone"),
    ("email", "email", "person-email"),
    ("address", "address", "person-address"),
];

const MAX_NOTE: usize = 2000;

const ACCESS: &str = "query ConsoleAccess($id: ID!) {
  accessLog(personId: $id, first: 20) { nodes { at fields operation party { displayName } } }
}";

/// Why a supervisor erases her data (the retention rule's own reason is the scheduler's).
const ERASURE_REASONS: [&str; 3] = [
    "SURVIVOR_REQUEST",
    "REGISTERED_IN_ERROR",
    "LEGAL_OBLIGATION",
];

#[derive(Debug, Deserialize)]
struct Answer {
    person: PersonOut,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PersonOut {
    version: u64,
    erased_at: Option<DateTime<Utc>>,
    legal_hold: Option<Hold>,
    notes: Option<Vec<NoteOut>>,
    #[serde(flatten)]
    details: serde_json::Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Hold {
    reason: Option<String>,
    placed_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
struct NoteOut {
    text: Option<String>,
    at: DateTime<Utc>,
    author: Option<Value>,
}

/// A field of the correction form: its name, label, value (as stored, or as typed) and error.
pub(crate) struct FieldShown {
    pub name: &'static str,
    pub label: String,
    pub value: String,
    pub date: bool,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/person.html")]
struct PersonPage {
    chrome: Chrome,
    person_id: String,
    version: u64,
    form_key: String,
    erased: Option<String>,
    hold: Option<String>,
    fields: Vec<FieldShown>,
    reason: String,
    reason_error: Option<String>,
    note: String,
    note_error: Option<String>,
    notes: Vec<(String, String, String)>,
    /// Her record changed since the form was shown; nothing was recorded.
    conflict: bool,
    form_error: Option<String>,
    /// For a supervisor: who read her data, and the forms of holds and erasure.
    protection: Option<Protection>,
}

/// What a supervisor of her organisation decides about her data.
pub(crate) struct Protection {
    /// (when, who, fields, through what), newest first.
    pub access: Vec<(String, String, String, String)>,
    pub held: bool,
    pub erased: bool,
    pub reasons: Vec<(&'static str, String)>,
    pub typed: String,
    pub error: Option<(&'static str, String)>,
}

impl Protection {
    fn error_for(&self, action: &str) -> Option<&str> {
        match &self.error {
            Some((sent, error)) if *sent == action => Some(error),
            _ => None,
        }
    }
}

/// What a form sent from the page came to.
#[derive(Debug, Default)]
struct Sent {
    status: Option<StatusCode>,
    typed: Vec<(String, String)>,
    field_errors: Vec<(&'static str, String)>,
    reason_error: Option<String>,
    note_error: Option<String>,
    conflict: bool,
    form_error: Option<String>,
    /// A refused hold or erasure: (action, why).
    protection_error: Option<(&'static str, String)>,
}

impl Sent {
    fn typed(&self, name: &str) -> Option<&str> {
        self.typed
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `GET /persons/{id}`.
pub(crate) async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let here = format!("/persons/{id}");
    let signed = match signed_in(&state, &headers, &here).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    render(&state, &signed, &id, Sent::default()).await
}

fn not_found(signed: &Signed, here: &str) -> Response {
    let lang = signed.lang;
    message(
        StatusCode::NOT_FOUND,
        Chrome::signed(lang, "person-title", here, signed),
        vec![lang.text("person-not-found")],
        Some((lang.text("nav-inbox"), "/inbox".to_owned())),
    )
}

async fn render(state: &AppState, signed: &Signed, id: &str, sent: Sent) -> Response {
    let lang = signed.lang;
    let here = format!("/persons/{id}");
    let Ok(person_id) = uuid::Uuid::parse_str(id) else {
        return not_found(signed, &here);
    };
    let answer = api::run::<Answer>(
        state,
        &signed.session.viewer,
        "person",
        QUERY,
        json!({ "id": person_id }),
    )
    .await;
    let person = match answer {
        Ok(a) => a.person,
        Err(Failed::Api(_)) => return not_found(signed, &here),
        Err(e) => return unavailable(lang, e),
    };
    let tz: Tz = signed.session.party.time_zone.parse().unwrap_or(Tz::UTC);
    let fields = FIELDS
        .iter()
        .map(|(name, api_name, label)| FieldShown {
            name,
            label: lang.text(label),
            value: sent.typed(name).map_or_else(
                || {
                    person
                        .details
                        .get(*api_name)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                },
                str::to_owned,
            ),
            date: *name == "date_of_birth",
            error: sent
                .field_errors
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, e)| e.clone()),
        })
        .collect();
    let notes = person
        .notes
        .unwrap_or_default()
        .into_iter()
        .map(|n| {
            (
                local_time(n.at, tz),
                n.author
                    .as_ref()
                    .and_then(|a| a["displayName"].as_str())
                    .unwrap_or_default()
                    .to_owned(),
                n.text.unwrap_or_else(|| lang.text("unreadable")),
            )
        })
        .collect();
    let protection =
        if signed.session.viewer.role == homeward_workflows::party::PartyRole::Supervisor {
            let log = api::run::<Value>(
                state,
                &signed.session.viewer,
                "person",
                ACCESS,
                json!({ "id": person_id }),
            )
            .await;
            let access = match log {
                Ok(log) => log["accessLog"]["nodes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| {
                        let at = e["at"]
                            .as_str()
                            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                            .map(|t| local_time(t.with_timezone(&Utc), tz))
                            .unwrap_or_default();
                        let fields: Vec<&str> = e["fields"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .collect();
                        (
                            at,
                            e["party"]["displayName"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                            fields.join(", "),
                            e["operation"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect(),
                // Another organisation's supervisor, say: no access log to show.
                Err(Failed::Api(_)) => Vec::new(),
                Err(e) => return unavailable(lang, e),
            };
            Some(Protection {
                access,
                held: person.legal_hold.is_some(),
                erased: person.erased_at.is_some(),
                reasons: ERASURE_REASONS
                    .iter()
                    .map(|r| {
                        (
                            *r,
                            lang.text(&format!("erasure-reason-{}", r.to_ascii_lowercase())),
                        )
                    })
                    .collect(),
                typed: sent.typed("hold_reason").unwrap_or_default().to_owned(),
                error: sent.protection_error.clone(),
            })
        } else {
            None
        };
    let mut chrome = Chrome::signed(lang, "person-title", &here, signed);
    if let Some(name) = person.details.get("fullName").and_then(Value::as_str) {
        chrome.title = name.to_owned();
    }
    page(
        sent.status.unwrap_or(StatusCode::OK),
        PersonPage {
            chrome,
            person_id: person_id.to_string(),
            version: person.version,
            form_key: uuid::Uuid::new_v4().to_string(),
            erased: person
                .erased_at
                .map(|at| lang.text_with("person-erased", &[("date", local_time(at, tz).into())])),
            hold: person.legal_hold.map(|h| {
                lang.text_with(
                    "person-hold",
                    &[
                        ("date", local_time(h.placed_at, tz).into()),
                        (
                            "reason",
                            h.reason.unwrap_or_else(|| lang.text("unreadable")).into(),
                        ),
                    ],
                )
            }),
            fields,
            reason: sent.typed("reason").unwrap_or_default().to_owned(),
            note: sent.typed("note").unwrap_or_default().to_owned(),
            reason_error: sent.reason_error,
            note_error: sent.note_error,
            notes,
            conflict: sent.conflict,
            form_error: sent.form_error,
            protection,
        },
    )
}

/// `POST /persons/{id}/correct`: the fields that differ from her record as shown, with why.
pub(crate) async fn correct(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let fields = Fields(fields);
    let one = |name: &str| fields.one(name);
    let here = format!("/persons/{id}");
    let signed = match signed_form(&state, &headers, one("form_token"), &here).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let lang = signed.lang;
    let mut sent = Sent {
        typed: fields.0.clone(),
        ..Sent::default()
    };
    let Ok(person_id) = uuid::Uuid::parse_str(&id) else {
        return not_found(&signed, &here);
    };
    // What her record says now, to send only what the form changes.
    let current = match api::run::<Answer>(
        &state,
        &signed.session.viewer,
        "person",
        QUERY,
        json!({ "id": person_id }),
    )
    .await
    {
        Ok(a) => a.person,
        Err(Failed::Api(_)) => return not_found(&signed, &here),
        Err(e) => return unavailable(lang, e),
    };
    let mut input = serde_json::Map::new();
    for (name, api_name, _) in FIELDS {
        let typed = one(name).trim();
        let stored = current
            .details
            .get(api_name)
            .and_then(Value::as_str)
            .unwrap_or_default();
        if typed == stored {
            continue;
        }
        if name == "full_name" && typed.is_empty() {
            sent.field_errors.push((name, lang.text("form-required")));
        } else if typed.chars().count() > 400 {
            sent.field_errors.push((
                name,
                lang.text_with("form-too-long", &[("max", 400.into())]),
            ));
        } else if name == "date_of_birth" && NaiveDate::parse_from_str(typed, "%Y-%m-%d").is_err() {
            sent.field_errors.push((name, lang.text("inbox-bad-date")));
        } else {
            input.insert(api_name.to_owned(), json!(typed));
        }
    }
    let reason = one("reason").trim();
    if reason.is_empty() {
        sent.reason_error = Some(lang.text("form-required"));
    } else if reason.chars().count() > MAX_NOTE {
        sent.reason_error = Some(lang.text_with("form-too-long", &[("max", MAX_NOTE.into())]));
    }
    if input.is_empty() && sent.field_errors.is_empty() {
        sent.form_error = Some(lang.text("person-nothing-changed"));
    }
    if !sent.field_errors.is_empty() || sent.reason_error.is_some() || sent.form_error.is_some() {
        sent.status = Some(StatusCode::UNPROCESSABLE_ENTITY);
        return render(&state, &signed, &id, sent).await;
    }
    let Ok(version) = one("version").parse::<u64>() else {
        sent.status = Some(StatusCode::CONFLICT);
        sent.conflict = true;
        return render(&state, &signed, &id, sent).await;
    };
    let answer = api::run::<Value>(
        &state,
        &signed.session.viewer,
        "person form",
        "mutation ConsoleCorrect($p: ID!, $input: PersonCorrectionInput!, $r: String!, $v: Int, $k: String) {
           updatePerson(personId: $p, input: $input, reason: $r, expectedVersion: $v, idempotencyKey: $k) { version } }",
        json!({ "p": person_id, "input": input, "r": reason, "v": version,
                "k": format!("console-correct-{}", one("key")) }),
    )
    .await;
    refused_or_done(&state, &signed, &id, sent, answer).await
}

/// `POST /persons/{id}/note`.
pub(crate) async fn note(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let fields = Fields(fields);
    let one = |name: &str| fields.one(name);
    let here = format!("/persons/{id}");
    let signed = match signed_form(&state, &headers, one("form_token"), &here).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let lang = signed.lang;
    let Ok(person_id) = uuid::Uuid::parse_str(&id) else {
        return not_found(&signed, &here);
    };
    let mut sent = Sent {
        typed: vec![("note".to_owned(), one("note").to_owned())],
        ..Sent::default()
    };
    let text = one("note").trim();
    if text.is_empty() {
        sent.note_error = Some(lang.text("form-required"));
    } else if text.chars().count() > MAX_NOTE {
        sent.note_error = Some(lang.text_with("form-too-long", &[("max", MAX_NOTE.into())]));
    }
    if sent.note_error.is_some() {
        sent.status = Some(StatusCode::UNPROCESSABLE_ENTITY);
        return render(&state, &signed, &id, sent).await;
    }
    let answer = api::run::<Value>(
        &state,
        &signed.session.viewer,
        "person form",
        "mutation ConsoleNote($p: ID!, $t: String!, $k: String) { addNote(personId: $p, text: $t, idempotencyKey: $k) { version } }",
        json!({ "p": person_id, "t": text, "k": format!("console-note-{}", one("key")) }),
    )
    .await;
    refused_or_done(&state, &signed, &id, sent, answer).await
}

async fn refused_or_done(
    state: &AppState,
    signed: &Signed,
    id: &str,
    mut sent: Sent,
    answer: Result<Value, Failed>,
) -> Response {
    match answer {
        Ok(_) => see_other(&format!("/persons/{id}")),
        Err(Failed::Api(problems)) => {
            if problems.iter().any(|p| p.code == "CONFLICT") {
                sent.status = Some(StatusCode::CONFLICT);
                sent.conflict = true;
            } else {
                let (status, message) = api::refusal(&problems);
                sent.status = Some(status);
                sent.form_error = Some(
                    signed
                        .lang
                        .text_with("form-refused", &[("message", message.into())]),
                );
            }
            render(state, signed, id, sent).await
        }
        Err(e) => unavailable(signed.lang, e),
    }
}

/// `POST /persons/{id}/{decision}`: a legal hold placed or lifted (with why), or her data
/// erased (with why, once confirmed); a supervisor's, as the API decides.
pub(crate) async fn decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, decision)): Path<(String, String)>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let fields = Fields(fields);
    let one = |name: &str| fields.one(name);
    let here = format!("/persons/{id}");
    let signed = match signed_form(&state, &headers, one("form_token"), &here).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let lang = signed.lang;
    let Ok(person_id) = uuid::Uuid::parse_str(&id) else {
        return not_found(&signed, &here);
    };
    let Some(action) = ["hold", "lift", "erase"]
        .into_iter()
        .find(|a| *a == decision)
    else {
        return not_found(&signed, &here);
    };
    let mut sent = Sent {
        typed: vec![("hold_reason".to_owned(), one("hold_reason").to_owned())],
        ..Sent::default()
    };
    let reason = one("hold_reason").trim();
    let refusal = match action {
        "hold" | "lift" if reason.is_empty() => Some(lang.text("form-required")),
        "hold" | "lift" if reason.chars().count() > MAX_NOTE => {
            Some(lang.text_with("form-too-long", &[("max", MAX_NOTE.into())]))
        }
        "erase" if !ERASURE_REASONS.contains(&one("erasure_reason")) => {
            Some(lang.text("form-required"))
        }
        "erase" if one("confirm") != "on" => Some(lang.text("person-erase-confirm-needed")),
        _ => None,
    };
    if let Some(error) = refusal {
        sent.status = Some(StatusCode::UNPROCESSABLE_ENTITY);
        sent.protection_error = Some((action, error));
        return render(&state, &signed, &id, sent).await;
    }
    let (query, variables) = match action {
        "hold" => (
            "mutation ConsoleHold($p: ID!, $r: String!, $k: String) { placeLegalHold(personId: $p, reason: $r, idempotencyKey: $k) { version } }",
            json!({ "p": person_id, "r": reason, "k": format!("console-hold-{}", one("key")) }),
        ),
        "lift" => (
            "mutation ConsoleLift($p: ID!, $r: String!, $k: String) { liftLegalHold(personId: $p, reason: $r, idempotencyKey: $k) { version } }",
            json!({ "p": person_id, "r": reason, "k": format!("console-lift-{}", one("key")) }),
        ),
        _ => (
            "mutation ConsoleErase($p: ID!, $r: ErasureReason!) { erasePerson(personId: $p, reason: $r) { erasedAt } }",
            json!({ "p": person_id, "r": one("erasure_reason") }),
        ),
    };
    match api::run::<Value>(
        &state,
        &signed.session.viewer,
        "person form",
        query,
        variables,
    )
    .await
    {
        Ok(_) => see_other(&format!("/persons/{id}#protection")),
        Err(Failed::Api(problems)) => {
            let (status, message) = api::refusal(&problems);
            sent.status = Some(status);
            sent.protection_error = Some((
                action,
                lang.text_with("form-refused", &[("message", message.into())]),
            ));
            render(&state, &signed, &id, sent).await
        }
        Err(e) => unavailable(lang, e),
    }
}

const RECORD: &str = "query ConsolePersonRecord($id: ID!) { personRecord(personId: $id) }";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordAnswer {
    person_record: Value,
}

/// `GET /persons/{id}/export`: everything Homeward holds about her, as one JSON file (her
/// right of access), as the API's `personRecord` gives it to her case team, and recorded in
/// her access log like any read.
pub(crate) async fn export(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let here = format!("/persons/{id}");
    // Followed from another site, a link would write a read of her record into her access log.
    if !super::from_this_site(&state, &headers) {
        return super::refused_foreign(super::language(&headers, None));
    }
    let signed = match signed_in(&state, &headers, &here).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let Ok(person_id) = uuid::Uuid::parse_str(&id) else {
        return not_found(&signed, &here);
    };
    let answer = api::run::<RecordAnswer>(
        &state,
        &signed.session.viewer,
        "person export",
        RECORD,
        json!({ "id": person_id }),
    )
    .await;
    let record = match answer {
        Ok(a) => a.person_record,
        Err(Failed::Api(_)) => return not_found(&signed, &here),
        Err(e) => return unavailable(signed.lang, e),
    };
    let body = match serde_json::to_vec_pretty(&record) {
        Ok(body) => body,
        Err(e) => return unavailable(signed.lang, e),
    };
    let disposition = format!("attachment; filename=\"homeward-person-{person_id}.json\"");
    let mut response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}
