//! The HTTP side of `homeward serve`: the routes (`/graphql` over POST, GET and WebSocket, the
//! partner pages, GraphiQL's assets, health, readiness and metrics) and authentication, once
//! per request (or per WebSocket connection): no token, no schema.

use std::time::Duration;

use async_graphql::http::{WebSocketProtocols, ALL_WEBSOCKET_PROTOCOLS};
use async_graphql::Data;
use axum::body::{Body, Bytes};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
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
use crate::limits::{self, Limited, Pacing, RateLimits, TrustedProxies};
use crate::websocket::{self, InitRefusal, SocketRules};
use crate::{invitation_pages, partner_pages};

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) links: LinkService,
    /// The web console's sign-in links and sessions.
    pub(crate) sign_in: homeward_engine::sessions::SignIn,
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
    /// Whether a socket checks its token before every operation (only a benchmark says no).
    pub(crate) ws_check_each_operation: bool,
    pub(crate) ws_recheck: Duration,
    /// What open sockets follow (revocations, party changes).
    pub(crate) access: AccessWatch,
    /// Whether GraphiQL is served at GET /graphql.
    pub(crate) graphiql: bool,
    /// Whether every response carries HSTS (the public URL is https).
    pub(crate) hsts: bool,
    /// Requests per token, and failed tries per address.
    pub(crate) rate_limits: RateLimits,
    /// Whose `X-Forwarded-For` gives the client's address.
    pub(crate) proxies: TrustedProxies,
    /// How long a client has to send a request's whole body.
    pub(crate) body_timeout: Duration,
    /// Requests served at once, and how long each may take.
    pub(crate) pacing: Pacing,
}

pub(crate) fn router(state: AppState) -> Router {
    let partner_pages = Router::new()
        .route(
            "/l/{token}",
            get(partner_pages::show).post(partner_pages::submit),
        )
        .layer(DefaultBodyLimit::max(16 * 1024))
        .with_state(state.links.clone());
    let invitation_pages = Router::new()
        .route(
            "/invitations/{secret}",
            get(invitation_pages::show).post(invitation_pages::accept),
        )
        .layer(DefaultBodyLimit::max(1024))
        .with_state(state.clone());
    // Health, readiness and metrics are left out: they answer while the API is saturated.
    let mut routes = Router::new()
        .merge(partner_pages)
        .merge(invitation_pages)
        .merge(crate::console::router())
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route_layer(axum::middleware::from_fn_with_state(
            state.pacing.clone(),
            limits::paced,
        ));
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

/// The path as logged: a partner link's token and an invitation's secret are credentials, so
/// they are left out.
fn logged_path(path: &str) -> &str {
    if path.starts_with("/l/") {
        "/l/…"
    } else if path.starts_with("/invitations/") {
        "/invitations/…"
    } else if path.starts_with("/sign-in/") && path != "/sign-in/link" && path != "/sign-in/token" {
        "/sign-in/…"
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
    let mut extensions = serde_json::json!({ "code": error.code.as_str() });
    if let Some(seconds) = error.retry_after_seconds {
        extensions["retryAfterSeconds"] = seconds.into();
    }
    let body = serde_json::json!({
        "errors": [{ "message": error.message, "extensions": extensions }]
    });
    let mut response = (status, axum::Json(body)).into_response();
    if error.code == Code::Unauthenticated {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// 429 with `Retry-After`: too many requests from one token or address.
fn rate_limited(limited: Limited, whose: &str, limits: &RateLimits) -> Response {
    let seconds = limited.retry_after_seconds();
    let mut error = ApiError::new(
        Code::RateLimited,
        format!(
            "too many requests from this {whose}: at most {} a second, in bursts of {}; \
             send again in {seconds} s",
            limits.rate, limits.burst
        ),
    );
    error.retry_after_seconds = Some(seconds);
    let mut response = error_response(StatusCode::TOO_MANY_REQUESTS, error);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// 503: a request stopped at the request timeout.
pub(crate) fn timed_out(limit: Duration) -> Response {
    error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        ApiError::new(
            Code::Timeout,
            format!(
                "the request took longer than {} s and was stopped. A mutation may have been \
                 carried out: send it again with the same idempotencyKey, or read the plan first",
                limit.as_secs_f64()
            ),
        ),
    )
}

fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The viewer of a request's token, within the limits: an address whose tries keep failing is
/// refused before its token is looked up, and a token past its rate is refused.
async fn authenticate(
    state: &AppState,
    token: Option<&str>,
    client: std::net::IpAddr,
) -> Result<Viewer, Response> {
    if let Err(limited) = state.rate_limits.address_may_try(client) {
        return Err(rate_limited(limited, "address", &state.rate_limits));
    }
    let Some(token) = token else {
        state.rate_limits.address_failed(client);
        return Err(error_response(
            StatusCode::UNAUTHORIZED,
            ApiError::unauthenticated(),
        ));
    };
    let services = &state.services;
    match tokens::check(services.reads.as_ref(), token, services.clock.now()).await {
        Ok(Some(opened)) => match state.rate_limits.token(opened.token_id) {
            Ok(()) => Ok(opened.viewer),
            Err(limited) => Err(rate_limited(limited, "token", &state.rate_limits)),
        },
        Ok(None) => {
            state.rate_limits.address_failed(client);
            Err(error_response(
                StatusCode::UNAUTHORIZED,
                ApiError::new(
                    Code::Unauthenticated,
                    "this token is unknown, expired or revoked: ask an administrator for a new one",
                ),
            ))
        }
        Err(e) => Err(error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            ApiError::internal(&e),
        )),
    }
}

/// POST /graphql: authenticated from its headers first; only then is its body read, within
/// the body timeout.
async fn graphql_post(State(state): State<AppState>, request: Request) -> Response {
    // Counted from here, so that an audit batch opened meanwhile waits for its entries.
    let executing = state.services.audit.executing();
    let (parts, body) = request.into_parts();
    let client = limits::client_address(&state.proxies, &parts.headers, crate::serve::peer(&parts));
    let token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer);
    let viewer = match authenticate(&state, token, client).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let read = axum::body::to_bytes(body, state.max_body_bytes);
    let body: Bytes = match tokio::time::timeout(state.body_timeout, read).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                ApiError::validation(format!(
                    "the request body is larger than {} bytes: send a smaller query or fewer \
                     variables",
                    state.max_body_bytes
                )),
            )
        }
        Err(_) => {
            return error_response(
                StatusCode::REQUEST_TIMEOUT,
                ApiError::new(
                    Code::Timeout,
                    format!(
                        "the request body did not arrive within {} s: send it at once",
                        state.body_timeout.as_secs_f64()
                    ),
                ),
            )
        }
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
    let (reader, shown) = (viewer.party.0, loaders.access.clone());
    let schema =
        if homeward_graphql::is_introspection(&request.query, request.operation_name.as_deref()) {
            &state.introspection
        } else {
            &state.schema
        };
    let response = schema.execute(request.data(viewer).data(loaders)).await;
    // Whose data this response shows is recorded before it leaves; if it cannot be, it does
    // not leave.
    let entries = shown.take(reader, state.services.clock.now());
    if let Err(e) = state.services.audit.record(entries, executing).await {
        return error_response(StatusCode::SERVICE_UNAVAILABLE, ApiError::internal(&e));
    }
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
    let client = limits::client_address(&state.proxies, &parts.headers, crate::serve::peer(&parts));
    if let Err(limited) = state.rate_limits.address_may_try(client) {
        return rate_limited(limited, "address", &state.rate_limits);
    }
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let schema = state.schema.clone();
    let services = state.services.clone();
    let rules = SocketRules {
        init_timeout: state.ws_init_timeout,
        max_operations: state.ws_max_operations,
        check_each_operation: state.ws_check_each_operation,
        recheck_after: state.ws_recheck,
    };
    let max_sockets = state.ws_max_sockets_per_token;
    let access = state.access.clone();
    let rate_limits = state.rate_limits.clone();
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
                rules,
                changes,
                move |payload| async move {
                    let Some(token) = connection_token(&payload) else {
                        rate_limits.address_failed(client);
                        return Err(InitRefusal::NoToken.into());
                    };
                    let opened =
                        match tokens::check(services.reads.as_ref(), &token, services.clock.now())
                            .await
                        {
                            Ok(Some(opened)) => opened,
                            Ok(None) => {
                                rate_limits.address_failed(client);
                                return Err(InitRefusal::BadToken.into());
                            }
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
                    let shown = loaders.access.clone();
                    let mut data = Data::default();
                    data.insert(viewer);
                    data.insert(loaders);
                    let standing: Arc<dyn Standing> = Arc::new(TokenStanding::new(
                        services,
                        token.into(),
                        opened,
                        hold,
                        rate_limits,
                        shown,
                    ));
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
        assert_eq!(logged_path("/invitations/hwi_0123abcd"), "/invitations/…");
        assert_eq!(logged_path("/sign-in/hwl_0123abcd"), "/sign-in/…");
        assert_eq!(logged_path("/sign-in/token"), "/sign-in/token");
        assert_eq!(logged_path("/graphql"), "/graphql");
    }
}
