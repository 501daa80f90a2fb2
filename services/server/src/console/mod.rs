//! The web console at `/`: pages for the people who do the work, rendered on the server
//! (askama templates, htmx for partial updates, both served from the binary).
//!
//! Every page reads and writes only through the GraphQL schema, executed in-process with the
//! signed-in party as the viewer ([`api`]): the console can never see or do more than the API
//! allows that party, and the API's validation and access audit apply unchanged.
//!
//! What a page may trust: a session cookie (HttpOnly, SameSite=Lax, `__Host-` and Secure over
//! https) names a session stored hashed ([`homeward_engine::sessions`]); a form is accepted
//! only from this site (`Sec-Fetch-Site`, else `Origin`) and, once signed in, with the
//! session's form token. Pages are never cached (they hold personal data), and their URLs hold
//! ids only.

mod admin;
pub(crate) mod api;
mod inbox;
mod live;
mod persons;
mod plan;
mod plan_forms;
mod plans;
mod sign_in;
mod steps;
mod team;
mod timeline;

use askama::Template;
use axum::extract::{DefaultBodyLimit, Path};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use homeward_engine::i18n::Lang;
use homeward_engine::sessions::Session;
use homeward_store::projection::PartyRow;
use homeward_workflows::party::PartyRole;

use crate::routes::AppState;

/// Where the assets are served; the version is in a file's name, so they are cached for good.
const ASSETS: &str = "/console/assets";
const HTMX: &str = "htmx-2.0.11.min.js";

/// The cookie that remembers a language chosen on a page.
const LANGUAGE_COOKIE: &str = "homeward-lang";

/// No script or style from elsewhere, no inline script, no framing, forms to this site only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/sign-in", get(sign_in::show))
        .route("/sign-in/link", post(sign_in::send_link))
        .route("/sign-in/token", post(sign_in::with_token))
        .route(
            "/sign-in/{secret}",
            get(sign_in::show_link).post(sign_in::use_link),
        )
        .route("/sign-out", post(sign_in::sign_out))
        .route("/language", post(sign_in::choose_language))
        .route("/inbox", get(inbox::show))
        .route("/inbox/live", get(live::inbox))
        .route("/plans/{id}/live", get(live::plan))
        .route("/persons/{id}", get(persons::show))
        .route("/persons/{id}/correct", post(persons::correct))
        .route("/persons/{id}/export", get(persons::export))
        .route("/persons/{id}/note", post(persons::note))
        .route("/persons/{id}/{decision}", post(persons::decide))
        .route("/admin", get(admin::organisations))
        .route("/admin/organisations", post(admin::register_organisation))
        .route(
            "/admin/organisations/{id}/retention",
            post(admin::set_retention),
        )
        .route(
            "/admin/parties",
            get(admin::parties).post(admin::register_party),
        )
        .route("/admin/parties/{id}", get(admin::party))
        .route("/admin/parties/{id}/{action}", post(admin::party_action))
        .route("/team", get(team::show))
        .route("/team/hand-over", post(team::hand_over))
        .route("/team/invite", post(team::invite))
        .route("/plans", get(plans::list))
        .route("/plans/new", get(plans::new_plan).post(plans::open_plan))
        .route("/plans/search", post(plans::search))
        .route("/plans/{id}", get(plan::show))
        .route("/plans/{id}/{action}", post(plan_forms::act))
        .route(
            "/plans/{id}/new-step",
            get(steps::new_step).post(steps::add),
        )
        .route("/plans/{id}/steps/{key}", get(steps::show))
        .route("/plans/{id}/steps/{key}/{change}", post(steps::change))
        .route(&format!("{ASSETS}/{{file}}"), get(asset))
        // Forms are small; nothing a person types into one comes near this.
        .layer(DefaultBodyLimit::max(64 * 1024))
}

/// `/`: the inbox when signed in, else the sign-in page.
async fn home(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: HeaderMap,
) -> Response {
    match session(&state, &headers).await {
        // An administrator has no tasks: the administration pages are theirs.
        Ok(Some(signed)) if signed.session.viewer.role == PartyRole::Admin => see_other("/admin"),
        Ok(Some(_)) => see_other("/inbox"),
        Ok(None) => see_other("/sign-in"),
        Err(response) => response,
    }
}

/// `GET /console/assets/{file}`.
async fn asset(Path(file): Path<String>) -> Response {
    const FOREVER: &str = "public, max-age=31536000, immutable";
    match file.as_str() {
        HTMX => {
            let mut response = (
                [
                    (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                    (header::CACHE_CONTROL, FOREVER),
                ],
                include_bytes!("../../assets/console/htmx-2.0.11.min.js.gz").as_slice(),
            )
                .into_response();
            // Every browser accepts gzip; the file is kept only in that form.
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
            response
        }
        "live.js" => (
            [
                (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            include_str!("../../assets/console/live.js"),
        )
            .into_response(),
        "console.css" => (
            [
                (header::CONTENT_TYPE, "text/css; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            include_str!("../../assets/console/console.css"),
        )
            .into_response(),
        _ => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

/// What every page's frame shows: the language, the title, who is signed in.
pub(crate) struct Chrome {
    pub lang: Lang,
    pub title: String,
    /// Who is signed in, with their role in words; none on the sign-in pages.
    pub signed_in: Option<(String, String)>,
    /// The signed-in session's form token.
    pub form_token: String,
    /// This page's path and query, where the language switch returns to.
    pub here: String,
    pub htmx: String,
    pub css: String,
    pub live_js: String,
    /// The events this page follows (`data-live`), if it follows any.
    pub live: Option<String>,
    /// The pages the signed-in party's role has: (path, name).
    pub nav: Vec<(&'static str, String)>,
}

impl Chrome {
    pub(crate) fn new(lang: Lang, title_id: &str, here: &str) -> Self {
        Self {
            lang,
            title: lang.text(title_id),
            signed_in: None,
            form_token: String::new(),
            here: here.to_owned(),
            htmx: format!("{ASSETS}/{HTMX}"),
            css: format!("{ASSETS}/console.css"),
            live_js: format!("{ASSETS}/live.js"),
            live: None,
            nav: Vec::new(),
        }
    }

    pub(crate) fn signed(lang: Lang, title_id: &str, here: &str, signed: &Signed) -> Self {
        let party = &signed.session.party;
        let mut nav = vec![("/inbox", "nav-inbox"), ("/plans", "nav-plans")];
        match signed.session.viewer.role {
            PartyRole::Supervisor => nav.push(("/team", "nav-team")),
            PartyRole::GovernmentLiaison => {
                nav.insert(1, ("/inbox?kind=TRAVEL_DOCUMENT", "nav-documents"));
            }
            PartyRole::PartnerContact => nav.insert(1, ("/inbox?kind=FOLLOW_UP", "nav-visits")),
            PartyRole::Admin => nav = vec![("/admin", "nav-admin")],
            _ => {}
        }
        Self {
            nav: nav
                .into_iter()
                .map(|(path, name)| (path, lang.text(name)))
                .collect(),
            signed_in: Some((
                party.display_name.clone(),
                lang.text(&format!("role-{}", party.role)),
            )),
            form_token: signed.session.form_token.clone(),
            ..Self::new(lang, title_id, here)
        }
    }

    /// The languages the switch offers, with whether each is this page's.
    pub(crate) fn languages(&self) -> Vec<(&'static str, &'static str, bool)> {
        Lang::ALL
            .iter()
            .map(|l| {
                let name = match l {
                    Lang::En => "English",
                    Lang::Fr => "Français",
                    Lang::Es => "Español",
                };
                (l.code(), name, *l == self.lang)
            })
            .collect()
    }
}

/// A rendered page with the console's headers: never cached or indexed (pages hold personal
/// data), no referrer sent on, nothing loaded from elsewhere.
pub(crate) fn page(status: StatusCode, template: impl Template) -> Response {
    crate::partner_pages::rendered(status, template, CSP)
}

/// A request's path and query: where a page returns to after signing in or a language switch.
pub(crate) fn here(uri: &axum::http::Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned())
}

/// An instant as a page shows it: to the minute, in the viewer's zone.
pub(crate) fn local_time(at: chrono::DateTime<chrono::Utc>, tz: chrono_tz::Tz) -> String {
    at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

/// The fields a form sent, by name (a name may come several times: checkboxes).
pub(crate) struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The first value of `name`, or nothing.
    pub(crate) fn one(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `name`.
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

#[derive(Template)]
#[template(path = "console/message.html")]
pub(crate) struct MessagePage {
    pub chrome: Chrome,
    pub paragraphs: Vec<String>,
    /// A link to go on with: (label, path).
    pub next: Option<(String, String)>,
}

/// A page that only says something (a refusal, a link sent).
pub(crate) fn message(
    status: StatusCode,
    chrome: Chrome,
    paragraphs: Vec<String>,
    next: Option<(String, String)>,
) -> Response {
    page(
        status,
        MessagePage {
            chrome,
            paragraphs,
            next,
        },
    )
}

/// 303 See Other: where a form's answer is read (so that reloading does not send it again).
pub(crate) fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The page that says the service cannot answer now; the error is logged, not shown.
pub(crate) fn unavailable(lang: Lang, error: impl std::fmt::Display) -> Response {
    tracing::error!(error = %error, "a console page failed");
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        Chrome::new(lang, "page-try-again-later", "/"),
        Vec::new(),
        None,
    )
}

/// The value of the cookie `name`, if the request carries it.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then_some(value)
        })
}

/// The session cookie's name: with the `__Host-` prefix over https (the browser then keeps
/// it to this host, path `/`, Secure), plain over http, where a Secure cookie would not be
/// sent back.
pub(crate) fn session_cookie(state: &AppState) -> &'static str {
    if state.hsts {
        "__Host-homeward-session"
    } else {
        "homeward-session"
    }
}

/// The language of a page: the one chosen on a page (remembered in a cookie), else the
/// party's own, else the browser's first of English, French and Spanish.
pub(crate) fn language(headers: &HeaderMap, party: Option<&PartyRow>) -> Lang {
    if let Some(chosen) = cookie(headers, LANGUAGE_COOKIE) {
        return Lang::of(chosen);
    }
    if let Some(party) = party {
        return Lang::of(&party.language);
    }
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .map(|tag| tag.split(';').next().unwrap_or_default().trim())
                .find(|tag| {
                    let primary = tag.split('-').next().unwrap_or_default();
                    ["en", "fr", "es"].contains(&primary.to_ascii_lowercase().as_str())
                })
                .map(Lang::of)
        })
        .unwrap_or(Lang::En)
}

/// Whether a form was sent by a page of this site: a browser says where a request comes from
/// (`Sec-Fetch-Site`, or at least `Origin`); a request that says neither is not a browser's,
/// and a signed-in form is still checked by its form token.
pub(crate) fn from_this_site(state: &AppState, headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if origin.eq_ignore_ascii_case(state.sign_in.origin()) {
        return true;
    }
    let scheme = if state.hsts { "https" } else { "http" };
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|host| origin.eq_ignore_ascii_case(&format!("{scheme}://{host}")))
}

/// A signed-in request: its session, the cookie's secret and the page's language.
pub(crate) struct Signed {
    pub session: Session,
    pub secret: String,
    pub lang: Lang,
}

/// The session the request's cookie names, if it stands.
async fn session(state: &AppState, headers: &HeaderMap) -> Result<Option<Signed>, Response> {
    let Some(secret) = cookie(headers, session_cookie(state)) else {
        return Ok(None);
    };
    match state
        .sign_in
        .session(secret, state.services.clock.now())
        .await
    {
        Ok(Some(session)) => {
            let lang = language(headers, Some(&session.party));
            Ok(Some(Signed {
                session,
                secret: secret.to_owned(),
                lang,
            }))
        }
        Ok(None) => Ok(None),
        Err(e) => Err(unavailable(language(headers, None), e)),
    }
}

/// Whether the request came from htmx (it then follows `HX-Redirect`, not a 303).
fn from_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

/// To the sign-in page, and back to `here` afterwards.
fn to_sign_in(headers: &HeaderMap, here: &str) -> Response {
    let location = format!(
        "/sign-in?{}",
        serde_urlencoded::to_string([("next", here)]).unwrap_or_default()
    );
    if from_htmx(headers) {
        let mut response = StatusCode::NO_CONTENT.into_response();
        if let Ok(value) = HeaderValue::from_str(&location) {
            response.headers_mut().insert("hx-redirect", value);
        }
        return response;
    }
    see_other(&location)
}

/// The signed-in party of a page's request; without a session that stands, to the sign-in
/// page (and back to `here` after it).
pub(crate) async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
    here: &str,
) -> Result<Signed, Response> {
    match session(state, headers).await? {
        Some(signed) => Ok(signed),
        None => Err(to_sign_in(headers, here)),
    }
}

/// The signed-in party of a form: sent from this site, in a session that stands, with that
/// session's form token. Anything else is refused and changes nothing.
pub(crate) async fn signed_form(
    state: &AppState,
    headers: &HeaderMap,
    form_token: &str,
    back_to: &str,
) -> Result<Signed, Response> {
    if !from_this_site(state, headers) {
        return Err(refused_foreign(language(headers, None)));
    }
    let signed = signed_in(state, headers, back_to).await?;
    if !homeward_engine::sessions::form_token_matches(&signed.secret, form_token) {
        return Err(message(
            StatusCode::FORBIDDEN,
            Chrome::new(signed.lang, "refused-title", back_to),
            vec![signed.lang.text("refused-form-token")],
            Some((signed.lang.text("refused-retry"), "/inbox".to_owned())),
        ));
    }
    Ok(signed)
}

/// 429 with `Retry-After`: too many tries from one address.
pub(crate) fn too_many(lang: Lang, limited: crate::limits::Limited) -> Response {
    let seconds = limited.retry_after_seconds();
    let mut response = message(
        StatusCode::TOO_MANY_REQUESTS,
        Chrome::new(lang, "refused-title", "/sign-in"),
        vec![lang.text_with("too-many-tries", &[("seconds", seconds.into())])],
        None,
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// The page for a form sent from another site.
pub(crate) fn refused_foreign(lang: Lang) -> Response {
    message(
        StatusCode::FORBIDDEN,
        Chrome::new(lang, "refused-title", "/"),
        vec![lang.text("refused-foreign")],
        None,
    )
}

/// A path to return to after signing in: one of this site's (never another site's, which
/// `//host` or `/\host` would be to a browser), else the inbox.
pub(crate) fn local_path(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && path.len() <= 1024
                && !path.chars().any(char::is_control) =>
        {
            path.to_owned()
        }
        _ => "/inbox".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_this_sites_paths_are_returned_to() {
        assert_eq!(local_path(Some("/inbox?page=2")), "/inbox?page=2");
        assert_eq!(local_path(Some("//evil.example/x")), "/inbox");
        assert_eq!(local_path(Some("/\\evil.example")), "/inbox");
        assert_eq!(local_path(Some("https://evil.example")), "/inbox");
        assert_eq!(local_path(Some("/a\nb")), "/inbox");
        assert_eq!(local_path(None), "/inbox");
    }
}
