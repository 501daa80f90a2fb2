//! The page behind an invitation email (`/invitations/<secret>`): the GET shows a button (mail
//! scanners open links and must not use them up), the POST uses the invitation once and shows
//! the party's new token, once. The secret is the whole credential: the pages carry the same
//! headers as the partner pages (never cached, indexed or sent on as a referrer) and the path
//! is never logged.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use homeward_engine::reminders::{local, Lang};

use crate::partner_pages::{message, page};
use crate::routes::AppState;

#[derive(Template)]
#[template(path = "invitation/accept.html")]
struct AcceptPage {
    lang: &'static str,
    title: String,
    prompt: String,
    button: String,
}

#[derive(Template)]
#[template(path = "invitation/token.html")]
struct TokenPage {
    lang: &'static str,
    title: String,
    token: String,
    note: String,
}

/// The page for an invitation that cannot be used: how to get another.
fn invalid(lang: Lang) -> Response {
    message(
        StatusCode::GONE,
        lang,
        "invite-invalid",
        vec![lang.text("invite-invalid-body")],
        None,
    )
}

fn unavailable(error: impl std::fmt::Display) -> Response {
    tracing::error!(error = %error, "invitation page failed");
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        Lang::En,
        "page-try-again-later",
        Vec::new(),
        None,
    )
}

pub(crate) async fn show(State(state): State<AppState>, Path(secret): Path<String>) -> Response {
    let s = &state.services;
    match s
        .invitations
        .standing(s.reads.as_ref(), &secret, s.clock.now())
        .await
    {
        Ok(Some(party)) => {
            let lang = Lang::of(&party.language);
            page(
                StatusCode::OK,
                AcceptPage {
                    lang: lang.code(),
                    title: lang.text("invite-title"),
                    prompt: lang.text("invite-prompt"),
                    button: lang.text("invite-button"),
                },
            )
        }
        Ok(None) => invalid(Lang::En),
        Err(e) => unavailable(e),
    }
}

pub(crate) async fn accept(State(state): State<AppState>, Path(secret): Path<String>) -> Response {
    let s = &state.services;
    match s
        .invitations
        .accept(s.reads.as_ref(), &secret, s.clock.now(), s.token_max_days)
        .await
    {
        Ok(Some((party, token))) => {
            let lang = Lang::of(&party.language);
            page(
                StatusCode::OK,
                TokenPage {
                    lang: lang.code(),
                    title: lang.text("invite-token-title"),
                    token: token.secret,
                    note: lang.text_with(
                        "invite-token-note",
                        &[("expires", local(token.expires_at, &party.time_zone).into())],
                    ),
                },
            )
        }
        Ok(None) => invalid(Lang::En),
        Err(e) => unavailable(e),
    }
}
