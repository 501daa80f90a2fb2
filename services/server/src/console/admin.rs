//! The administration pages, for admins: the organisations (registering one, how long each
//! keeps a survivor's data), the parties (registering one, inviting, deactivating and
//! reactivating), and a party's tokens (what is known of each, never the token; revoking
//! one or all). Admins see no case content: these pages ask the API for none, and the API
//! would refuse it.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::Form;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use homeward_engine::i18n::Lang;
use homeward_workflows::party::PartyRole;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::{self, Connection, Failed};
use super::inbox::id_of;
use super::{
    local_time, message, page, see_other, signed_form, signed_in, unavailable, Chrome, Fields,
    Signed,
};
use crate::routes::AppState;

const ORGANISATIONS: &str = "query ConsoleOrganisations($after: String) {
  organisations(first: 100, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id version name kind country retentionMonths worksWith { name } }
  }
}";

const PARTIES: &str = "query ConsoleAdminParties($org: ID, $after: String) {
  parties(organisation: $org, first: 50, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id displayName email role active organisation { name } }
  }
}";

const SUPERVISORS: &str = "query ConsoleSupervisors($after: String) {
  parties(first: 100, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id displayName role active organisation { name } }
  }
}";

const PARTY: &str = "query ConsoleAdminParty($id: ID!) {
  party(id: $id) {
    id displayName email role active country language timeZone
    organisation { name } supervisor { displayName }
  }
  tokens(party: $id) {
    tokenId role issuedAt issuedBy { displayName } expiresAt lastUsedAt revokedAt
  }
}";

const REGISTER_ORGANISATION: &str =
    "mutation ConsoleRegisterOrganisation($input: OrganisationInput!, $k: String) {
  registerOrganisation(input: $input, idempotencyKey: $k) { id } }";
const RETENTION: &str = "mutation ConsoleRetention($id: ID!, $months: Int!, $v: Int, $k: String) {
  setRetentionPeriod(organisation: $id, months: $months, expectedVersion: $v, idempotencyKey: $k) {
    id } }";
const REGISTER_PARTY: &str = "mutation ConsoleRegisterParty($input: PartyInput!, $k: String) {
  registerParty(input: $input, idempotencyKey: $k) { id } }";
const INVITE: &str =
    "mutation ConsoleInvite($id: ID!) { inviteParty(party: $id) { sentTo expiresAt } }";
const DEACTIVATE: &str = "mutation ConsoleDeactivate($id: ID!, $r: String!, $k: String) {
  deactivateParty(party: $id, reason: $r, idempotencyKey: $k) { id } }";
const REACTIVATE: &str = "mutation ConsoleReactivate($id: ID!, $k: String) {
  reactivateParty(party: $id, idempotencyKey: $k) { id } }";
const REVOKE_ALL: &str = "mutation ConsoleRevokeAll($id: ID!) { revokeTokens(party: $id) }";
const REVOKE: &str = "mutation ConsoleRevoke($token: ID!) { revokeToken(tokenId: $token) }";

const KINDS: [&str; 3] = ["PROGRAMME", "GOVERNMENT", "PARTNER"];
const ROLES: [&str; 5] = [
    "SOCIAL_WORKER",
    "SUPERVISOR",
    "GOVERNMENT_LIAISON",
    "PARTNER_CONTACT",
    "ADMIN",
];
/// The languages Homeward writes in.
const LANGUAGES: [&str; 3] = ["en", "fr", "es"];
/// The longest retention period an organisation may set, in months.
const MAX_RETENTION_MONTHS: u32 = 600;
/// The longest reason for a deactivation.
const MAX_REASON: usize = 1000;

#[derive(Debug, Deserialize)]
struct OrganisationsAnswer {
    organisations: Connection<OrganisationOut>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrganisationOut {
    id: String,
    version: u64,
    name: String,
    kind: Option<String>,
    country: String,
    retention_months: u32,
    works_with: Vec<Named>,
}

#[derive(Debug, Deserialize)]
struct Named {
    name: String,
}

#[derive(Debug, Deserialize)]
struct PartiesAnswer {
    parties: Connection<PartyRow>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartyRow {
    id: String,
    display_name: String,
    #[serde(default)]
    email: Option<String>,
    role: Option<String>,
    active: bool,
    organisation: Option<Named>,
}

#[derive(Debug, Deserialize)]
struct PartyAnswer {
    party: Option<PartyOut>,
    tokens: Vec<TokenOut>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartyOut {
    id: String,
    display_name: String,
    email: Option<String>,
    role: Option<String>,
    active: bool,
    country: String,
    language: String,
    time_zone: String,
    organisation: Option<Named>,
    supervisor: Option<DisplayName>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DisplayName {
    display_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenOut {
    token_id: String,
    role: String,
    issued_at: DateTime<Utc>,
    issued_by: Option<DisplayName>,
    expires_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

/// A form as it was sent, and what its fields were refused for: a refused form is shown
/// again with what was typed, and each error beside its field.
#[derive(Debug, Default)]
pub(crate) struct Typed {
    fields: Vec<(String, String)>,
    errors: Vec<(&'static str, String)>,
}

impl Typed {
    fn new(fields: Fields) -> Self {
        Self {
            fields: fields.0,
            errors: Vec::new(),
        }
    }

    /// What was typed in `name`, or `default` when the form was not sent.
    pub(crate) fn value<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        if self.fields.is_empty() {
            return default;
        }
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Why `name` was refused, if it was.
    pub(crate) fn error(&self, name: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, e)| e.as_str())
    }

    fn refuse(&mut self, field: &'static str, error: String) {
        self.errors.push((field, error));
    }

    fn refused(&self) -> bool {
        !self.errors.is_empty()
    }
}

/// The page that tells a viewer who does not administer Homeward that these pages are not
/// theirs; none for an admin.
fn not_an_admin(signed: &Signed, here: &str) -> Option<Response> {
    if signed.session.viewer.role == PartyRole::Admin {
        return None;
    }
    let lang = signed.lang;
    Some(message(
        StatusCode::FORBIDDEN,
        Chrome::signed(lang, "refused-title", here, signed),
        vec![lang.text("admin-only")],
        Some((lang.text("nav-inbox"), "/inbox".to_owned())),
    ))
}

/// A country as the API takes it: two letters, upper case.
fn country(lang: Lang, typed: &mut Typed, name: &'static str, text: &str) -> String {
    let text = text.trim();
    if text.len() == 2 && text.chars().all(|c| c.is_ascii_alphabetic()) {
        text.to_ascii_uppercase()
    } else {
        typed.refuse(name, lang.text("plans-bad-country"));
        String::new()
    }
}

/// A name a form requires: trimmed, not empty, at most 200 characters.
fn required(lang: Lang, typed: &mut Typed, name: &'static str, text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        typed.refuse(name, lang.text("form-required"));
    } else if text.chars().count() > 200 {
        typed.refuse(
            name,
            lang.text_with("form-too-long", &[("max", 200.into())]),
        );
    }
    text.to_owned()
}

/// One of `options`, or a refusal beside the field.
fn one_of(
    lang: Lang,
    typed: &mut Typed,
    name: &'static str,
    text: &str,
    options: &[&str],
) -> String {
    if !options.contains(&text) {
        typed.refuse(name, lang.text("form-choose"));
    }
    text.to_owned()
}

/// The idempotency key of one form of a page (`form`: which one): the same form sent twice is
/// recorded once, two forms of a page are two changes; none without the page's key.
fn form_key(page_key: &str, form: &str) -> Option<String> {
    (!page_key.is_empty()).then(|| format!("console-{page_key}-{form}"))
}

/// A refused mutation's words, beside the form.
fn refusal_words(lang: Lang, problems: &[api::Problem]) -> (StatusCode, String) {
    let (status, text) = api::refusal(problems);
    (
        status,
        lang.text_with("form-refused", &[("message", text.into())]),
    )
}

// ---------------------------------------------------------------------------------------
// Organisations

/// An organisation as the page lists it.
pub(crate) struct OrganisationShown {
    pub id: String,
    pub version: u64,
    pub name: String,
    pub kind: String,
    pub country: String,
    pub works_with: String,
    pub retention_months: u32,
    /// Whether it keeps survivors' data (runs return programmes), and so has a retention
    /// period to set.
    pub keeps_data: bool,
    pub parties_href: String,
    /// What the retention form was refused for, and what was typed in it.
    pub retention_error: Option<String>,
    pub retention_typed: Option<String>,
}

#[derive(Template)]
#[template(path = "console/admin.html")]
struct AdminPage {
    chrome: Chrome,
    organisations: Vec<OrganisationShown>,
    next_page: Option<String>,
    kinds: Vec<(&'static str, String, bool)>,
    /// The register-organisation form, as typed when refused.
    form: Typed,
    form_key: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Paging {
    #[serde(default)]
    after: String,
    #[serde(default)]
    organisation: String,
}

/// `GET /admin`.
pub(crate) async fn organisations(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    paging: Result<Query<Paging>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let here = super::here(&uri);
    let signed = match signed_in(&state, &headers, &here).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let after = paging.map(|Query(p)| p.after).unwrap_or_default();
    show_organisations(&state, &signed, &here, after, Typed::default(), None, None).await
}

/// The organisations' page; a refused form shown again with what was typed: the register
/// form (`form`), or one organisation's retention (`retention`: its id, why, what was typed).
async fn show_organisations(
    state: &AppState,
    signed: &Signed,
    here: &str,
    after: String,
    form: Typed,
    retention: Option<(String, String, String)>,
    status: Option<StatusCode>,
) -> Response {
    if let Some(response) = not_an_admin(signed, here) {
        return response;
    }
    let lang = signed.lang;
    let after = (!after.is_empty()).then_some(after);
    let answer = match api::run::<OrganisationsAnswer>(
        state,
        &signed.session.viewer,
        "admin",
        ORGANISATIONS,
        json!({ "after": after }),
    )
    .await
    {
        Ok(a) => a.organisations,
        Err(e) => return unavailable(lang, e),
    };
    let organisations = answer
        .nodes
        .into_iter()
        .map(|o| {
            let refused = retention.as_ref().filter(|(id, _, _)| *id == o.id);
            OrganisationShown {
                parties_href: format!(
                    "/admin/parties?{}",
                    serde_urlencoded::to_string([("organisation", &o.id)]).unwrap_or_default()
                ),
                kind: o
                    .kind
                    .as_deref()
                    .map(|k| lang.text(&format!("organisation-kind-{}", id_of(k))))
                    .unwrap_or_default(),
                works_with: o
                    .works_with
                    .iter()
                    .map(|w| w.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                keeps_data: o.kind.as_deref() == Some("PROGRAMME"),
                retention_error: refused.map(|(_, e, _)| e.clone()),
                retention_typed: refused.map(|(_, _, t)| t.clone()),
                id: o.id,
                version: o.version,
                name: o.name,
                country: o.country,
                retention_months: o.retention_months,
            }
        })
        .collect();
    let next_page = answer.page_info.next().map(|c| {
        format!(
            "/admin?{}",
            serde_urlencoded::to_string([("after", c)]).unwrap_or_default()
        )
    });
    page(
        status.unwrap_or(StatusCode::OK),
        AdminPage {
            chrome: Chrome::signed(lang, "admin-title", here, signed),
            organisations,
            next_page,
            kinds: KINDS
                .iter()
                .map(|k| {
                    let chosen = *k == form.value("kind", "PROGRAMME");
                    (
                        *k,
                        lang.text(&format!("organisation-kind-{}", id_of(k))),
                        chosen,
                    )
                })
                .collect(),
            form,
            form_key: uuid::Uuid::new_v4().to_string(),
        },
    )
}

/// `POST /admin/organisations`.
pub(crate) async fn register_organisation(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let fields = Fields(fields);
    let here = "/admin";
    let signed = match signed_form(&state, &headers, fields.one("form_token"), here).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let lang = signed.lang;
    let key = fields.one("key").to_owned();
    let name = fields.one("name").to_owned();
    let kind = fields.one("kind").to_owned();
    let typed_country = fields.one("country").to_owned();
    let mut typed = Typed::new(fields);
    let name = required(lang, &mut typed, "name", &name);
    let kind = one_of(lang, &mut typed, "kind", &kind, &KINDS);
    let country = country(lang, &mut typed, "country", &typed_country);
    if typed.refused() {
        let status = Some(StatusCode::UNPROCESSABLE_ENTITY);
        return show_organisations(&state, &signed, here, String::new(), typed, None, status).await;
    }
    let variables = json!({
        "input": { "name": name, "kind": kind, "country": country },
        "k": form_key(&key, "organisation"),
    });
    let viewer = &signed.session.viewer;
    match api::run::<Value>(&state, viewer, "admin", REGISTER_ORGANISATION, variables).await {
        Ok(answer) => see_other(&format!(
            "/admin#organisation-{}",
            answer["registerOrganisation"]["id"]
                .as_str()
                .unwrap_or_default()
        )),
        Err(Failed::Api(problems)) => {
            let (status, words) = refusal_words(lang, &problems);
            typed.refuse("form", words);
            show_organisations(
                &state,
                &signed,
                here,
                String::new(),
                typed,
                None,
                Some(status),
            )
            .await
        }
        Err(e) => unavailable(lang, e),
    }
}

/// `POST /admin/organisations/{id}/retention`.
pub(crate) async fn set_retention(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let fields = Fields(fields);
    let here = "/admin";
    let signed = match signed_form(&state, &headers, fields.one("form_token"), here).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let lang = signed.lang;
    let typed = fields.one("months").trim().to_owned();
    let refuse = |status, error: String| {
        let retention = Some((id.clone(), error, typed.clone()));
        show_organisations(
            &state,
            &signed,
            here,
            String::new(),
            Typed::default(),
            retention,
            Some(status),
        )
    };
    let months = match typed.parse::<u32>() {
        Ok(m) if (1..=MAX_RETENTION_MONTHS).contains(&m) => m,
        _ => {
            let error = lang.text_with("admin-bad-months", &[("max", MAX_RETENTION_MONTHS.into())]);
            return refuse(StatusCode::UNPROCESSABLE_ENTITY, error).await;
        }
    };
    let (Ok(organisation), Ok(version)) = (
        uuid::Uuid::parse_str(&id),
        fields.one("version").parse::<u64>(),
    ) else {
        return refuse(StatusCode::CONFLICT, lang.text("refused-form-token")).await;
    };
    let variables = json!({
        "id": organisation, "months": months, "v": version,
        "k": form_key(fields.one("key"), &format!("retention-{organisation}")),
    });
    match api::run::<Value>(
        &state,
        &signed.session.viewer,
        "admin",
        RETENTION,
        variables,
    )
    .await
    {
        Ok(_) => see_other(&format!("/admin#organisation-{id}")),
        Err(Failed::Api(problems)) if problems.iter().any(|p| p.code == "CONFLICT") => {
            refuse(StatusCode::CONFLICT, lang.text("admin-changed-meanwhile")).await
        }
        Err(Failed::Api(problems)) => {
            let (status, words) = refusal_words(lang, &problems);
            refuse(status, words).await
        }
        Err(e) => unavailable(lang, e),
    }
}

// ---------------------------------------------------------------------------------------
// Parties

pub(crate) struct PartyShown {
    pub href: String,
    pub name: String,
    pub role: String,
    pub organisation: String,
    pub email: String,
    pub active: bool,
}

#[derive(Template)]
#[template(path = "console/admin_parties.html")]
struct PartiesPage {
    chrome: Chrome,
    parties: Vec<PartyShown>,
    next_page: Option<String>,
    /// Organisations to filter by: (id, name, chosen).
    organisations: Vec<(String, String, bool)>,
    /// Organisations to register in: (id, name, chosen in the form).
    form_organisations: Vec<(String, String, bool)>,
    roles: Vec<(&'static str, String, bool)>,
    languages: Vec<(&'static str, &'static str, bool)>,
    /// Supervisors a new party may answer to: (id, label, chosen).
    supervisors: Vec<(String, String, bool)>,
    form: Typed,
    form_key: String,
}

/// `GET /admin/parties`.
pub(crate) async fn parties(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    paging: Result<Query<Paging>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let here = super::here(&uri);
    let signed = match signed_in(&state, &headers, &here).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let paging = paging.map(|Query(p)| p).unwrap_or_default();
    show_parties(&state, &signed, &here, paging, Typed::default(), None).await
}

/// Every page of `query` (a `parties` or `organisations` connection), a hundred at a time.
async fn every<T: serde::de::DeserializeOwned>(
    state: &AppState,
    signed: &Signed,
    query: &str,
    pick: impl Fn(Value) -> Option<Value>,
) -> Result<Vec<T>, Failed> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..20 {
        let answer: Value = api::run(
            state,
            &signed.session.viewer,
            "admin",
            query,
            json!({ "after": after }),
        )
        .await?;
        let connection = pick(answer).unwrap_or_default();
        let page: Connection<T> = serde_json::from_value(connection)
            .map_err(|e| Failed::Internal(format!("an unexpected answer ({:?})", e.classify())))?;
        all.extend(page.nodes);
        match page.page_info.next() {
            Some(cursor) => after = Some(cursor.to_owned()),
            None => break,
        }
    }
    Ok(all)
}

async fn show_parties(
    state: &AppState,
    signed: &Signed,
    here: &str,
    paging: Paging,
    form: Typed,
    status: Option<StatusCode>,
) -> Response {
    if let Some(response) = not_an_admin(signed, here) {
        return response;
    }
    let lang = signed.lang;
    let organisation = uuid::Uuid::parse_str(&paging.organisation).ok();
    let after = (!paging.after.is_empty()).then_some(paging.after.clone());
    let listed = api::run::<PartiesAnswer>(
        state,
        &signed.session.viewer,
        "admin",
        PARTIES,
        json!({ "org": organisation, "after": after }),
    )
    .await;
    let listed = match listed {
        Ok(a) => a.parties,
        Err(e) => return unavailable(lang, e),
    };
    let organisations: Vec<OrganisationOut> = match every(state, signed, ORGANISATIONS, |mut a| {
        Some(a["organisations"].take())
    })
    .await
    {
        Ok(all) => all,
        Err(e) => return unavailable(lang, e),
    };
    let everyone: Vec<PartyRow> = match every(state, signed, SUPERVISORS, |mut a| {
        Some(a["parties"].take())
    })
    .await
    {
        Ok(all) => all,
        Err(e) => return unavailable(lang, e),
    };
    let parties = listed
        .nodes
        .into_iter()
        .map(|p| PartyShown {
            href: format!("/admin/parties/{}", p.id),
            role: role_words(lang, p.role.as_deref()),
            organisation: p.organisation.map(|o| o.name).unwrap_or_default(),
            email: p.email.unwrap_or_default(),
            active: p.active,
            name: p.display_name,
        })
        .collect();
    let next_page = listed.page_info.next().map(|c| {
        let mut pairs = vec![("after", c.to_owned())];
        if !paging.organisation.is_empty() {
            pairs.push(("organisation", paging.organisation.clone()));
        }
        format!(
            "/admin/parties?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    });
    page(
        status.unwrap_or(StatusCode::OK),
        PartiesPage {
            chrome: Chrome::signed(lang, "admin-parties-title", here, signed),
            parties,
            next_page,
            form_organisations: organisations
                .iter()
                .map(|o| {
                    let chosen = o.id == form.value("organisation", "");
                    (o.id.clone(), format!("{} ({})", o.name, o.country), chosen)
                })
                .collect(),
            organisations: organisations
                .into_iter()
                .map(|o| {
                    let chosen = o.id == paging.organisation;
                    (o.id, format!("{} ({})", o.name, o.country), chosen)
                })
                .collect(),
            roles: ROLES
                .iter()
                .map(|r| {
                    let chosen = *r == form.value("role", "SOCIAL_WORKER");
                    (*r, role_words(lang, Some(r)), chosen)
                })
                .collect(),
            languages: [("en", "English"), ("fr", "Français"), ("es", "Español")]
                .into_iter()
                .map(|(code, name)| (code, name, code == form.value("language", "en")))
                .collect(),
            supervisors: everyone
                .into_iter()
                .filter(|p| p.active && p.role.as_deref() == Some("SUPERVISOR"))
                .map(|p| {
                    let organisation = p.organisation.map(|o| o.name).unwrap_or_default();
                    let chosen = p.id == form.value("supervisor", "");
                    (p.id, format!("{} ({organisation})", p.display_name), chosen)
                })
                .collect(),
            form,
            form_key: uuid::Uuid::new_v4().to_string(),
        },
    )
}

fn role_words(lang: Lang, role: Option<&str>) -> String {
    role.map(|r| lang.text(&format!("role-{}", id_of(r))))
        .unwrap_or_default()
}

/// `POST /admin/parties`.
pub(crate) async fn register_party(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let fields = Fields(fields);
    let here = "/admin/parties";
    let signed = match signed_form(&state, &headers, fields.one("form_token"), here).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let lang = signed.lang;
    let owned = |name: &str| fields.one(name).trim().to_owned();
    let (key, name, email, role, organisation, typed_country, language, zone, supervisor) = (
        owned("key"),
        owned("display_name"),
        owned("email"),
        owned("role"),
        owned("organisation"),
        owned("country"),
        owned("language"),
        owned("time_zone"),
        owned("supervisor"),
    );
    let mut typed = Typed::new(fields);
    let name = required(lang, &mut typed, "display_name", &name);
    if !email.contains('@') || email.len() > 320 || email.chars().any(char::is_whitespace) {
        typed.refuse("email", lang.text("admin-bad-email"));
    }
    let role = one_of(lang, &mut typed, "role", &role, &ROLES);
    if uuid::Uuid::parse_str(&organisation).is_err() {
        typed.refuse("organisation", lang.text("form-choose"));
    }
    let country = country(lang, &mut typed, "country", &typed_country);
    let language = one_of(lang, &mut typed, "language", &language, &LANGUAGES);
    if !zone.is_empty() && zone.parse::<Tz>().is_err() {
        typed.refuse("time_zone", lang.text("form-bad-zone"));
    }
    if !supervisor.is_empty() && uuid::Uuid::parse_str(&supervisor).is_err() {
        typed.refuse("supervisor", lang.text("form-choose"));
    }
    let paging = Paging::default();
    if typed.refused() {
        let status = Some(StatusCode::UNPROCESSABLE_ENTITY);
        return show_parties(&state, &signed, here, paging, typed, status).await;
    }
    let variables = json!({
        "input": {
            "displayName": name, "email": email, "role": role, "organisation": organisation,
            "country": country, "language": language,
            "timeZone": (!zone.is_empty()).then_some(zone),
            "supervisor": (!supervisor.is_empty()).then_some(supervisor),
        },
        "k": (!key.is_empty()).then(|| format!("console-{key}")),
    });
    match api::run::<Value>(
        &state,
        &signed.session.viewer,
        "admin",
        REGISTER_PARTY,
        variables,
    )
    .await
    {
        Ok(answer) => see_other(&format!(
            "/admin/parties/{}",
            answer["registerParty"]["id"].as_str().unwrap_or_default()
        )),
        Err(Failed::Api(problems)) => {
            let (status, words) = refusal_words(lang, &problems);
            typed.refuse("form", words);
            show_parties(&state, &signed, here, paging, typed, Some(status)).await
        }
        Err(e) => unavailable(lang, e),
    }
}

// ---------------------------------------------------------------------------------------
// One party

pub(crate) struct TokenShown {
    pub id: String,
    pub role: String,
    pub issued: String,
    pub expires: String,
    pub last_used: String,
    pub revoked: Option<String>,
}

#[derive(Template)]
#[template(path = "console/admin_party.html")]
struct PartyPage {
    chrome: Chrome,
    party_id: String,
    facts: Vec<(String, String)>,
    active: bool,
    tokens: Vec<TokenShown>,
    /// A form refused: (action, why), and the reason typed for a deactivation.
    error: Option<(String, String)>,
    reason: String,
    notice: Option<String>,
    form_key: String,
}

impl PartyPage {
    fn error_for(&self, action: &str) -> Option<&str> {
        match &self.error {
            Some((sent, error)) if sent == action => Some(error),
            _ => None,
        }
    }
}

/// `GET /admin/parties/{id}`.
pub(crate) async fn party(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    query: Result<Query<PartyQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let here = uri.path().to_owned();
    let signed = match signed_in(&state, &headers, &here).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    // Said on the page the invitation form returns to.
    let notice = query
        .is_ok_and(|Query(q)| q.invited == "1")
        .then(|| signed.lang.text("admin-invited-notice"));
    let shown = PartyOutcome {
        notice,
        ..PartyOutcome::default()
    };
    show_party(&state, &signed, &here, &id, shown).await
}

/// What a party's page says beside its forms: a refusal (the action, why, the reason typed)
/// or a notice, and the answer's status.
#[derive(Default)]
struct PartyOutcome {
    error: Option<(String, String)>,
    reason: String,
    notice: Option<String>,
    status: Option<StatusCode>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PartyQuery {
    #[serde(default)]
    invited: String,
}

fn party_not_found(signed: &Signed, here: &str) -> Response {
    let lang = signed.lang;
    message(
        StatusCode::NOT_FOUND,
        Chrome::signed(lang, "admin-parties-title", here, signed),
        vec![lang.text("admin-no-party")],
        Some((
            lang.text("admin-parties-title"),
            "/admin/parties".to_owned(),
        )),
    )
}

async fn show_party(
    state: &AppState,
    signed: &Signed,
    here: &str,
    id: &str,
    outcome: PartyOutcome,
) -> Response {
    let PartyOutcome {
        error,
        reason,
        notice,
        status,
    } = outcome;
    if let Some(response) = not_an_admin(signed, here) {
        return response;
    }
    let lang = signed.lang;
    let Ok(party_id) = uuid::Uuid::parse_str(id) else {
        return party_not_found(signed, here);
    };
    let viewer = &signed.session.viewer;
    let answer =
        match api::run::<PartyAnswer>(state, viewer, "admin", PARTY, json!({ "id": party_id }))
            .await
        {
            Ok(a) => a,
            Err(Failed::Api(_)) => return party_not_found(signed, here),
            Err(e) => return unavailable(lang, e),
        };
    let Some(party) = answer.party else {
        return party_not_found(signed, here);
    };
    let tz: Tz = signed.session.party.time_zone.parse().unwrap_or(Tz::UTC);
    let mut facts = vec![
        (
            lang.text("admin-role"),
            role_words(lang, party.role.as_deref()),
        ),
        (
            lang.text("admin-organisation"),
            party.organisation.map(|o| o.name).unwrap_or_default(),
        ),
        (lang.text("admin-country"), party.country),
        (lang.text("console-language"), party.language),
        (lang.text("admin-time-zone"), party.time_zone),
    ];
    if let Some(email) = party.email {
        facts.insert(1, (lang.text("admin-email"), email));
    }
    if let Some(supervisor) = party.supervisor {
        facts.push((lang.text("admin-supervisor"), supervisor.display_name));
    }
    facts.push((
        lang.text("admin-status"),
        lang.text(if party.active {
            "admin-active"
        } else {
            "admin-deactivated"
        }),
    ));
    let never = lang.text("admin-never");
    let tokens = answer
        .tokens
        .into_iter()
        .map(|t| TokenShown {
            role: role_words(lang, Some(&t.role.to_ascii_uppercase())),
            issued: match t.issued_by {
                Some(by) => format!("{} ({})", local_time(t.issued_at, tz), by.display_name),
                None => local_time(t.issued_at, tz),
            },
            expires: local_time(t.expires_at, tz),
            last_used: t
                .last_used_at
                .map_or_else(|| never.clone(), |at| local_time(at, tz)),
            revoked: t.revoked_at.map(|at| local_time(at, tz)),
            id: t.token_id,
        })
        .collect();
    let mut chrome = Chrome::signed(lang, "admin-parties-title", here, signed);
    chrome.title = party.display_name;
    page(
        status.unwrap_or(StatusCode::OK),
        PartyPage {
            chrome,
            party_id: party.id,
            facts,
            active: party.active,
            tokens,
            error,
            reason,
            notice,
            form_key: uuid::Uuid::new_v4().to_string(),
        },
    )
}

/// The actions of a party's page.
const PARTY_ACTIONS: [&str; 5] = ["invite", "deactivate", "reactivate", "revoke-all", "revoke"];

/// `POST /admin/parties/{id}/{action}`.
pub(crate) async fn party_action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let fields = Fields(fields);
    let here = format!("/admin/parties/{id}");
    let signed = match signed_form(&state, &headers, fields.one("form_token"), &here).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let lang = signed.lang;
    let (Ok(party), Some(action)) = (
        uuid::Uuid::parse_str(&id),
        PARTY_ACTIONS.iter().copied().find(|a| *a == action),
    ) else {
        return party_not_found(&signed, &here);
    };
    let reason = fields.one("reason").trim().to_owned();
    let refuse = |status, error: String| {
        let outcome = PartyOutcome {
            error: Some((action.to_owned(), error)),
            reason: reason.clone(),
            notice: None,
            status: Some(status),
        };
        show_party(&state, &signed, &here, &id, outcome)
    };
    let key = form_key(fields.one("key"), &format!("{action}-{party}"));
    let (query, variables) = match action {
        "invite" => (INVITE, json!({ "id": party })),
        "deactivate" => {
            if reason.is_empty() {
                return refuse(StatusCode::UNPROCESSABLE_ENTITY, lang.text("form-required")).await;
            }
            if reason.chars().count() > MAX_REASON {
                let error = lang.text_with("form-too-long", &[("max", MAX_REASON.into())]);
                return refuse(StatusCode::UNPROCESSABLE_ENTITY, error).await;
            }
            (DEACTIVATE, json!({ "id": party, "r": reason, "k": key }))
        }
        "reactivate" => (REACTIVATE, json!({ "id": party, "k": key })),
        "revoke-all" => (REVOKE_ALL, json!({ "id": party })),
        _ => match uuid::Uuid::parse_str(fields.one("token")) {
            Ok(token) => (REVOKE, json!({ "token": token })),
            Err(_) => {
                return refuse(StatusCode::UNPROCESSABLE_ENTITY, lang.text("form-choose")).await
            }
        },
    };
    match api::run::<Value>(&state, &signed.session.viewer, "admin", query, variables).await {
        // Seen at an address of its own (reloading it sends nothing again).
        Ok(_) if action == "invite" => see_other(&format!("{here}?invited=1#invite")),
        Ok(_) => see_other(&format!("{here}#{action}")),
        Err(Failed::Api(problems)) => {
            let (status, words) = refusal_words(lang, &problems);
            refuse(status, words).await
        }
        Err(e) => unavailable(lang, e),
    }
}
