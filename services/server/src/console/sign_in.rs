//! Signing in and out: the sign-in page (a link by email, or a pasted token), the page behind
//! an emailed link (a button: mail scanners open links and must not use them), signing out,
//! and the language switch.

use askama::Template;
use axum::extract::FromRequest as _;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Form;
use homeward_engine::i18n::Lang;
use homeward_engine::sessions::Started;
use serde::Deserialize;

use super::{
    from_this_site, language, local_path, message, page, refused_foreign, see_other,
    session_cookie, signed_form, unavailable, Chrome,
};
use crate::limits;
use crate::routes::AppState;

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    next: String,
    email: String,
    email_error: Option<String>,
    token_error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/link.html")]
struct LinkPage {
    chrome: Chrome,
    prompt: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Next {
    next: Option<String>,
}

fn sign_in_page(
    status: StatusCode,
    lang: Lang,
    next: &str,
    email: String,
    email_error: Option<String>,
    token_error: Option<String>,
) -> Response {
    page(
        status,
        SignInPage {
            chrome: Chrome::new(lang, "sign-in-title", "/sign-in"),
            next: next.to_owned(),
            email,
            email_error,
            token_error,
        },
    )
}

/// `GET /sign-in`: the two ways in. Someone whose session ended arrives here with the page
/// they were on in `next`, and returns to it.
pub(crate) async fn show(headers: HeaderMap, Query(next): Query<Next>) -> Response {
    sign_in_page(
        StatusCode::OK,
        language(&headers, None),
        &local_path(next.next.as_deref()),
        String::new(),
        None,
        None,
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct LinkRequest {
    #[serde(default)]
    email: String,
    next: Option<String>,
}

/// `POST /sign-in/link`: emails a link to the address if it is a party's. The answer is the
/// same whether it is or not; every request counts against the address's tries, so that
/// nobody can fill a party's mailbox or probe addresses quickly.
pub(crate) async fn send_link(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let lang = language(headers, None);
    if !from_this_site(&state, headers) {
        return refused_foreign(lang);
    }
    let client = limits::client_address(&state.proxies, headers, crate::serve::peer(&parts));
    if let Err(limited) = state.rate_limits.address_may_try(client) {
        return super::too_many(lang, limited);
    }
    state.rate_limits.address_failed(client);
    let Ok(Form(form)) =
        Form::<LinkRequest>::from_request(axum::extract::Request::from_parts(parts, body), &state)
            .await
    else {
        return sign_in_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            lang,
            "/inbox",
            String::new(),
            Some(lang.text("sign-in-email-wrong")),
            None,
        );
    };
    let next = local_path(form.next.as_deref());
    let email = form.email.trim().to_owned();
    if email.is_empty() || email.len() > 254 || !email.contains('@') {
        return sign_in_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            lang,
            &next,
            email.chars().take(254).collect(),
            Some(lang.text("sign-in-email-wrong")),
            None,
        );
    }
    if let Err(e) = state
        .sign_in
        .send_link(&email, state.services.clock.now())
        .await
    {
        return unavailable(lang, e);
    }
    let minutes = state.sign_in.settings().link_valid_for.num_minutes();
    message(
        StatusCode::OK,
        Chrome::new(lang, "sign-in-sent-title", "/sign-in"),
        vec![lang.text_with(
            "sign-in-sent",
            &[("email", email.into()), ("minutes", minutes.into())],
        )],
        None,
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenForm {
    #[serde(default)]
    token: String,
    next: Option<String>,
}

/// `POST /sign-in/token`: a session for the party of a pasted token, ending with the token.
pub(crate) async fn with_token(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let headers = parts.headers.clone();
    let lang = language(&headers, None);
    if !from_this_site(&state, &headers) {
        return refused_foreign(lang);
    }
    let client = limits::client_address(&state.proxies, &headers, crate::serve::peer(&parts));
    if let Err(limited) = state.rate_limits.address_may_try(client) {
        return super::too_many(lang, limited);
    }
    let form =
        Form::<TokenForm>::from_request(axum::extract::Request::from_parts(parts, body), &state)
            .await
            .map(|Form(f)| f)
            .unwrap_or(TokenForm {
                token: String::new(),
                next: None,
            });
    let next = local_path(form.next.as_deref());
    match state
        .sign_in
        .with_token(&form.token, state.services.clock.now())
        .await
    {
        Ok(Some(started)) => signed_in_to(&state, &started, &next),
        Ok(None) => {
            state.rate_limits.address_failed(client);
            sign_in_page(
                StatusCode::UNAUTHORIZED,
                lang,
                &next,
                String::new(),
                None,
                Some(lang.text("sign-in-token-wrong")),
            )
        }
        Err(e) => unavailable(lang, e),
    }
}

/// The answer that starts a session: its cookie, and on to `next`.
fn signed_in_to(state: &AppState, started: &Started, next: &str) -> Response {
    let mut response = see_other(next);
    let secure = if state.hsts { "; Secure" } else { "" };
    // No Max-Age: the browser forgets it when closed; the server ends it at its idle limit or
    // its absolute end anyway.
    let cookie = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Lax{secure}",
        session_cookie(state),
        started.secret
    );
    match HeaderValue::from_str(&cookie) {
        Ok(value) => {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
        Err(e) => tracing::error!(error = %e, "a session cookie could not be written"),
    }
    response
}

/// The page for a link that cannot be used: why, and how to get another.
fn link_invalid(lang: Lang) -> Response {
    message(
        StatusCode::GONE,
        Chrome::new(lang, "sign-in-link-invalid", "/sign-in"),
        vec![lang.text("sign-in-link-invalid-body")],
        Some((lang.text("sign-in-again"), "/sign-in".to_owned())),
    )
}

/// `GET /sign-in/{secret}`: a button, if the link can still be used. Opening the link uses
/// nothing.
pub(crate) async fn show_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(secret): Path<String>,
) -> Response {
    match state
        .sign_in
        .link_party(&secret, state.services.clock.now())
        .await
    {
        Ok(Some(party)) => {
            let lang = language(&headers, Some(&party));
            page(
                StatusCode::OK,
                LinkPage {
                    chrome: Chrome::new(lang, "sign-in-title", "/sign-in"),
                    prompt: lang.text_with(
                        "sign-in-link-prompt",
                        &[("name", party.display_name.as_str().into())],
                    ),
                },
            )
        }
        Ok(None) => link_invalid(language(&headers, None)),
        Err(e) => unavailable(language(&headers, None), e),
    }
}

/// `POST /sign-in/{secret}`: uses the link (once) and starts a session.
pub(crate) async fn use_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(secret): Path<String>,
) -> Response {
    let lang = language(&headers, None);
    if !from_this_site(&state, &headers) {
        return refused_foreign(lang);
    }
    match state
        .sign_in
        .use_link(&secret, state.services.clock.now())
        .await
    {
        Ok(Some(started)) => signed_in_to(&state, &started, "/inbox"),
        Ok(None) => link_invalid(lang),
        Err(e) => unavailable(lang, e),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct SignOutForm {
    #[serde(default)]
    form_token: String,
}

/// `POST /sign-out`: ends the session here and in the browser.
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignOutForm>,
) -> Response {
    let signed = match signed_form(&state, &headers, &form.form_token, "/inbox").await {
        Ok(s) => s,
        Err(response) => return response,
    };
    if let Err(e) = state
        .sign_in
        .sign_out(&signed.secret, state.services.clock.now())
        .await
    {
        return unavailable(signed.lang, e);
    }
    let mut response = see_other("/sign-in");
    let secure = if state.hsts { "; Secure" } else { "" };
    let expired = format!(
        "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}",
        session_cookie(&state)
    );
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[derive(Debug, Deserialize)]
pub(crate) struct LanguageForm {
    lang: String,
    next: Option<String>,
}

/// `POST /language`: remembers the language chosen, for a year, and returns to the page.
pub(crate) async fn choose_language(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LanguageForm>,
) -> Response {
    if !from_this_site(&state, &headers) {
        return refused_foreign(language(&headers, None));
    }
    let lang = Lang::of(&form.lang);
    let mut response = see_other(&local_path(form.next.as_deref()));
    let secure = if state.hsts { "; Secure" } else { "" };
    let value = format!(
        "{}={}; Path=/; SameSite=Lax; Max-Age=31536000{secure}",
        super::LANGUAGE_COOKIE,
        lang.code()
    );
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
