//! Pages that follow what changes: `GET /plans/{id}/live` and `GET /inbox/live` are
//! server-sent events fed by the API's own subscriptions (`planEvents`, `taskUpdates`),
//! executed in-process as the signed-in party, so a page hears of exactly the changes the API
//! would tell that party of. Each says `changed` (the page then fetches itself again) and
//! `ended` when the party may no longer follow it or the session has ended; the session is
//! checked again every `HOMEWARD_WS_RECHECK_SECS` while the stream is open, as a WebSocket's
//! token is.

use std::convert::Infallible;

use async_graphql::Variables;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{FutureExt as _, StreamExt as _};
use homeward_engine::authz::Viewer;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::{api, cookie, session_cookie};
use crate::routes::AppState;

#[derive(Debug, Deserialize)]
pub(crate) struct Since {
    /// The plan's version the page shows.
    since: Option<u64>,
}

/// `GET /plans/{id}/live?since=<version>`.
pub(crate) async fn plan(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(since): Query<Since>,
) -> Response {
    let Ok(plan_id) = uuid::Uuid::parse_str(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    follow(
        state,
        &headers,
        "subscription ConsoleLivePlan($p: ID!) { planEvents(planId: $p) { version } }",
        json!({ "p": plan_id }),
        since.since.map(|version| (plan_id, version)),
    )
    .await
}

/// `GET /inbox/live`.
pub(crate) async fn inbox(State(state): State<AppState>, headers: HeaderMap) -> Response {
    follow(
        state,
        &headers,
        "subscription ConsoleLiveInbox { taskUpdates { change } }",
        json!({}),
        None,
    )
    .await
}

/// Whether the plan moved on from the version a page shows.
async fn moved_on(state: &AppState, viewer: &Viewer, plan: uuid::Uuid, since: u64) -> bool {
    let answer = api::run::<serde_json::Value>(
        state,
        viewer,
        "live",
        "query ConsoleVersion($p: ID!) { plan(id: $p) { version } }",
        json!({ "p": plan }),
    )
    .await;
    match answer {
        Ok(a) => a["plan"]["version"].as_u64().is_some_and(|v| v > since),
        // Gone, or no longer theirs: the page finds out when it fetches itself.
        Err(_) => true,
    }
}

async fn follow(
    state: AppState,
    headers: &HeaderMap,
    subscription: &'static str,
    variables: serde_json::Value,
    shown: Option<(uuid::Uuid, u64)>,
) -> Response {
    // An event stream cannot be sent to the sign-in page: the page's script reloads, and the
    // page goes there.
    let Some(secret) = cookie(headers, session_cookie(&state)).map(str::to_owned) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let session = match state
        .sign_in
        .session(&secret, state.services.clock.now())
        .await
    {
        Ok(Some(session)) => session,
        Ok(None) => return StatusCode::UNAUTHORIZED.into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "a live page's session could not be checked");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let viewer = session.viewer;
    let (request_viewer, loaders) = homeward_graphql::request_data(&state.services, viewer.clone());
    let request = async_graphql::Request::new(subscription)
        .variables(Variables::from_json(variables))
        .data(request_viewer)
        .data(loaders);
    let mut answers = state.schema.execute_stream(request);
    let (sender, mut receiver) = mpsc::channel::<Event>(16);
    tokio::spawn(async move {
        // Polled once, the subscription listens: what is recorded from now on reaches it.
        if let Some(answer) = answers.next().now_or_never() {
            let changed = matches!(answer, Some(a) if a.errors.is_empty());
            if !tell(&sender, changed).await {
                return;
            }
        }
        // What was recorded between the page and the subscription is found by asking for the
        // plan's version: now, and once more after the subscription has surely read the plan
        // it follows (it passes over what that read already held).
        let mut checks_left = if shown.is_some() { 2 } else { 0 };
        let mut recheck = tokio::time::interval(state.ws_recheck);
        loop {
            let changed = tokio::select! {
                answer = answers.next() => matches!(answer, Some(a) if a.errors.is_empty()),
                _ = recheck.tick() => {
                    if !matches!(state.sign_in.session(&secret, state.services.clock.now()).await, Ok(Some(_))) {
                        false
                    } else if checks_left > 0 {
                        checks_left -= 1;
                        match shown {
                            Some((plan, since)) if moved_on(&state, &viewer, plan, since).await => {
                                checks_left = 0;
                                true
                            }
                            _ => continue,
                        }
                    } else {
                        continue;
                    }
                }
                () = sender.closed() => break,
            };
            if !tell(&sender, changed).await {
                break;
            }
        }
    });
    let stream =
        futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)).map(Ok::<Event, Infallible>);
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Tells the page that something changed (true) or that it may follow no longer (false);
/// whether the stream goes on.
async fn tell(sender: &mpsc::Sender<Event>, changed: bool) -> bool {
    let event = Event::default()
        .event(if changed { "changed" } else { "ended" })
        .data("{}");
    sender.send(event).await.is_ok() && changed
}
