//! The HTTP side of `homeward serve`: the routes (`/graphql` over POST, GET and WebSocket, the
//! partner pages, GraphiQL's assets, health, readiness and metrics) and authentication, once
//! per request (or per WebSocket connection): no token, no schema.

use std::time::Duration;

use async_graphql::http::{WebSocketProtocols, ALL_WEBSOCKET_PROTOCOLS};
use async_graphql::Data;
use axum::body::{Body, Bytes};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use homeward_engine::authz::Viewer;
use homeward_engine::links::LinkService;
use homeward_engine::tokens;
use homeward_graphql::{ApiError, Code, HomewardSchema, Services};
use homeward_store::Backend;
use std::sync::Arc;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::access::{AccessWatch, Standing, TokenStanding};
use crate::graphiql;
use crate::partner_pages;
use crate::websocket::{self, InitRefusal};

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) links: LinkService,
    pub(crate) schema: HomewardSchema,
    /// The same schema for queries that read only the schema (a deeper depth limit).
    pub(crate) introspection: HomewardSchema,
    pub(crate) services: Services,
    pub(crate) store: Arc<dyn Backend>,
    pub(crate) max_body_bytes: usize,
    pub(crate) ws_init_timeout: Duration,
    /// Operations one socket may have open at once.
    pub(crate) ws_max_operations: usize,
    /// Sockets one token may have open at once in this replica.
    pub(crate) ws_max_sockets_per_token: usize,
    /// What open sockets follow (revocations, party changes).
    pub(crate) access: AccessWatch,
    /// Whether GraphiQL is served at GET /graphql.
    pub(crate) graphiql: bool,
    /// Whether every response carries HSTS (the public URL is https).
    pub(crate) hsts: bool,
}

pub(crate) fn router(state: AppState) -> Router {
    let partner_pages = Router::new()
        .route(
            "/l/{token}",
            get(partner_pages::show).post(partner_pages::submit),
        )
        .layer(DefaultBodyLimit::max(16 * 1024))
        .with_state(state.links.clone());
    let mut routes = Router::new()
        .merge(partner_pages)
        .route("/graphql", get(graphql_get).post(graphql_post));
    if state.graphiql {
        routes = routes.route(
            &format!("{}/{{file}}", graphiql::ASSETS),
            get(graphiql::asset),
        );
    }
    routes
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        // On every response, unless a page set its own: no guessing of content types, no
        // address (a partner link's token) sent on to another site, no framing by another
        // site, and https only once the public address is https.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'none'"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            state
                .hsts
                .then(|| HeaderValue::from_static("max-age=31536000")),
        ))
        .layer(
            // One span per request: method and path only (no query string, which could carry
            // a GraphQL query with personal data in it).
            TraceLayer::new_for_http().make_span_with(|req: &Request<Body>| {
                let path = logged_path(req.uri().path());
                tracing::info_span!("request", method = %req.method(), path = %path)
            }),
        )
        .with_state(state)
}

/// Prometheus' text format (see [`crate::metrics`]).
async fn metrics(State(state): State<AppState>) -> Response {
    // Read at the scrape, not on every pass of the reminder worker.
    let now = state.services.clock.now();
    match state.store.due_timers(now).await {
        Ok(due) => crate::metrics::record_due_timers(due, now),
        Err(e) => tracing::warn!(error = %e, "due timers not read for /metrics"),
    }
    match crate::metrics::render(state.store.connections()) {
        Some(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics are not recorded in this process",
        )
            .into_response(),
    }
}

/// The path as logged: a partner link's token is a credential, so it is left out.
fn logged_path(path: &str) -> &str {
    if path.starts_with("/l/") {
        "/l/…"
    } else {
        path
    }
}

async fn ready(State(state): State<AppState>) -> Response {
    let ping = tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await;
    match ping {
        Ok(Ok(_)) => (StatusCode::OK, "ready").into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response(),
    }
}

/// A GraphQL-shaped error response outside the schema (before a request reaches it).
fn error_response(status: StatusCode, error: ApiError) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": error.message, "extensions": { "code": error.code.as_str() } }]
    });
    let mut response = (status, axum::Json(body)).into_response();
    if error.code == Code::Unauthenticated {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn authenticate(services: &Services, token: Option<&str>) -> Result<Viewer, Response> {
    let Some(token) = token else {
        return Err(error_response(
            StatusCode::UNAUTHORIZED,
            ApiError::unauthenticated(),
        ));
    };
    match tokens::authenticate(services.reads.as_ref(), token, services.clock.now()).await {
        Ok(Some(viewer)) => Ok(viewer),
        Ok(None) => Err(error_response(
            StatusCode::UNAUTHORIZED,
            ApiError::new(
                Code::Unauthenticated,
                "this token is unknown, expired or revoked: ask an administrator for a new one",
            ),
        )),
        Err(e) => Err(error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            ApiError::internal(&e),
        )),
    }
}

async fn graphql_post(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let body: Bytes = match axum::body::to_bytes(body, state.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                ApiError::validation(format!(
                    "the request body is larger than {} bytes: send a smaller query or fewer \
                     variables",
                    state.max_body_bytes
                )),
            )
        }
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer);
    let viewer = match authenticate(&state.services, token).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                ApiError::validation(format!(
                    "the body must be a JSON object with \"query\" (and optionally \"variables\" \
                     and \"operationName\"): {e}"
                )),
            )
        }
    };
    if request.query.trim().is_empty() {
        return error_response(
            StatusCode::BAD_REQUEST,
            ApiError::validation("the body has no \"query\": send {\"query\": \"{ me { id } }\"}"),
        );
    }
    let (viewer, loaders) = homeward_graphql::request_data(&state.services, viewer);
    let schema =
        if homeward_graphql::is_introspection(&request.query, request.operation_name.as_deref()) {
            &state.introspection
        } else {
            &state.schema
        };
    let response = schema.execute(request.data(viewer).data(loaders)).await;
    axum::Json(response).into_response()
}

/// GET /graphql: a WebSocket upgrade for subscriptions, or GraphiQL for a browser.
async fn graphql_get(State(state): State<AppState>, request: Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    let wants_upgrade = parts
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !wants_upgrade {
        if !state.graphiql {
            return graphiql::off();
        }
        return graphiql::page();
    }
    let Some(protocol) = parts
        .headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|value| value.to_str().ok())
        .and_then(|protocols| {
            protocols
                .split(',')
                .find_map(|p| p.trim().parse::<WebSocketProtocols>().ok())
        })
    else {
        return error_response(
            StatusCode::BAD_REQUEST,
            ApiError::validation(
                "ask for the graphql-transport-ws protocol (Sec-WebSocket-Protocol header)",
            ),
        );
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let schema = state.schema.clone();
    let services = state.services.clone();
    let init_timeout = state.ws_init_timeout;
    let max_operations = state.ws_max_operations;
    let max_sockets = state.ws_max_sockets_per_token;
    let access = state.access.clone();
    // Told of access changes from the upgrade on: none is missed before the init's check.
    let changes = state.access.subscribe();
    upgrade
        // No message larger than a request body: refused (1009) from its frame's header, before
        // its payload is read.
        .max_message_size(state.max_body_bytes)
        .max_frame_size(state.max_body_bytes)
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            websocket::serve(
                socket,
                schema,
                protocol,
                init_timeout,
                max_operations,
                changes,
                move |payload| async move {
                    let Some(token) = connection_token(&payload) else {
                        return Err(InitRefusal::NoToken.into());
                    };
                    let opened =
                        match tokens::check(services.reads.as_ref(), &token, services.clock.now())
                            .await
                        {
                            Ok(Some(opened)) => opened,
                            Ok(None) => return Err(InitRefusal::BadToken.into()),
                            Err(e) => {
                                tracing::warn!(error = %e, "a socket's token could not be checked");
                                return Err(InitRefusal::Unavailable.into());
                            }
                        };
                    let Some(hold) = access.hold(opened.token_id, max_sockets) else {
                        return Err(InitRefusal::TooManySockets.into());
                    };
                    let (viewer, loaders) =
                        homeward_graphql::request_data(&services, opened.viewer.clone());
                    let mut data = Data::default();
                    data.insert(viewer);
                    data.insert(loaders);
                    let standing: Arc<dyn Standing> =
                        Arc::new(TokenStanding::new(services, token.into(), opened, hold));
                    Ok((data, standing))
                },
            )
        })
}

/// The token in a `connection_init` payload: `{"Authorization": "Bearer hw_..."}` (any case of
/// the key), or `{"token": "hw_..."}`.
fn connection_token(payload: &serde_json::Value) -> Option<String> {
    let object = payload.as_object()?;
    for (key, value) in object {
        let Some(value) = value.as_str() else {
            continue;
        };
        if key.eq_ignore_ascii_case("authorization") {
            return bearer(value).map(str::to_owned);
        }
        if key == "token" {
            return Some(value.to_owned());
        }
    }
    None
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::logged_path;

    #[test]
    fn a_partner_links_token_is_not_logged() {
        assert_eq!(logged_path("/l/AAAA.BBBB"), "/l/…");
        assert_eq!(logged_path("/graphql"), "/graphql");
    }
}
