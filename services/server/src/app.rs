//! `homeward serve`: the GraphQL API on axum, health checks and graceful shutdown.
//!
//! [`Application::build`] connects, migrates, binds and assembles the router; tests use it to
//! boot the real server on a random port. Authentication happens here, once per request (or
//! per WebSocket connection): no token, no schema.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
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
use homeward_engine::links::{LinkService, LinkSigner};
use homeward_engine::mail::{FileOutbox, Mailer, SmtpMailer};
use homeward_engine::scheduler::{LinkSettings, Worker};
use homeward_engine::{tokens, Clock, CommandHandler, SystemClock};
use homeward_graphql::{ApiError, Code, EventHub, HomewardSchema, Idempotency, Services};
use homeward_store::{EventStore, PgStore};
use secrecy::ExposeSecret as _;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::graphiql;
use crate::partner_pages;
use crate::websocket::{self, InitRefusal};

pub use crate::settings::Settings;

#[derive(Clone)]
struct AppState {
    links: LinkService,
    schema: HomewardSchema,
    /// The same schema for queries that read only the schema (a deeper depth limit).
    introspection: HomewardSchema,
    services: Services,
    store: PgStore,
    max_body_bytes: usize,
    ws_init_timeout: Duration,
}

/// A bound, ready-to-run server.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: Router,
    feed: tokio::task::JoinHandle<()>,
    housekeeping: tokio::task::JoinHandle<()>,
    store: PgStore,
    scheduler: Option<(Worker, Arc<dyn Clock>, EventHub, Duration)>,
}

impl Application {
    /// Connects to the database, applies migrations, binds the address and builds the router.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// As [`Application::build`], with the clock the domain decides with (tests fix it).
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        settings.validate()?;
        let store = PgStore::connect_with_flushes(
            settings.database_url.expose_secret(),
            settings.max_connections,
            settings.append_flushes,
        )
        .await
        .context("connecting to PostgreSQL (check DATABASE_URL)")?;
        store.migrate().await.context("applying migrations")?;
        let events = EventHub::new();
        let feed = events.follow(store.subscribe(store.head().await?).await?);
        let event_store: Arc<dyn EventStore> = Arc::new(store.clone());
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        let secret = match &settings.link_secret {
            Some(secret) => secret.expose_secret().as_bytes().to_vec(),
            None => store.server_secret("partner_links").await?,
        };
        let signer = LinkSigner::new(&secret);
        let services = Services {
            handler: CommandHandler::new(event_store, clock.clone())
                .with_retry_deadline(settings.command_deadline.0),
            reads: Arc::new(store.clone()),
            clock: clock.clone(),
            events,
            idempotency: Idempotency {
                keys: Arc::new(store.clone()),
                secret: store.server_secret("idempotency_keys").await?.into(),
                retention: chrono::Duration::hours(i64::from(settings.idempotency_hours)),
            },
            default_time_zone: settings.time_zone.clone(),
        };
        let scheduler = if !settings.no_scheduler {
            let (mailer, concurrency): (Arc<dyn Mailer>, u32) = match &settings.smtp_url {
                Some(url) => (
                    Arc::new(
                        SmtpMailer::from_url(
                            url.expose_secret(),
                            &settings.mail_from,
                            settings.smtp_connections,
                        )?
                        .with_timeout(settings.smtp_timeout.0),
                    ),
                    settings.smtp_connections,
                ),
                None => (
                    Arc::new(FileOutbox::new(&settings.outbox_dir, &settings.mail_from)?),
                    1,
                ),
            };
            let base_url = match &settings.public_url {
                Some(url) => url.clone(),
                None => {
                    let local = format!("http://{}", listener.local_addr()?);
                    if settings.smtp_url.is_some() {
                        tracing::warn!(links = %local, "HOMEWARD_PUBLIC_URL is not set: partner links in reminders point at the listen address; set it to the https address partners reach");
                    }
                    local
                }
            };
            let worker = Worker::new(
                Arc::new(store.clone()),
                services.handler.clone(),
                services.reads.clone(),
                mailer,
                clock,
            )
            .with_links(LinkSettings {
                signer: signer.clone(),
                base_url,
            })
            .with_concurrency(concurrency as usize)
            .with_lease(chrono::Duration::from_std(settings.reminder_lease.0)?)
            .with_renewal(settings.reminder_renewal.0);
            Some((
                worker,
                services.clock.clone(),
                services.events.clone(),
                settings.scheduler_max_sleep.0,
            ))
        } else {
            None
        };
        let housekeeping = tokio::spawn(forget_old_idempotency_keys(
            services.idempotency.clone(),
            services.clock.clone(),
        ));
        let links = LinkService::new(signer, services.handler.clone());
        let state = AppState {
            links,
            schema: homeward_graphql::schema(services.clone()),
            introspection: homeward_graphql::introspection_schema(services.clone()),
            services,
            store: store.clone(),
            max_body_bytes: settings.max_body_bytes,
            ws_init_timeout: settings.ws_init_timeout.0,
        };
        let router = router(state);
        Ok(Self {
            listener,
            router,
            feed,
            housekeeping,
            store,
            scheduler,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(address = %self.local_addr(), "serving the GraphQL API at /graphql");
        let (stop_scheduler, stopped) = tokio::sync::watch::channel(false);
        let scheduler = self.scheduler.map(|(worker, clock, events, max_sleep)| {
            let worker = worker.with_stop(stopped.clone());
            tokio::spawn(run_scheduler(worker, clock, events, max_sleep, stopped))
        });
        // The worker stops starting sends as soon as shutdown begins, and gives back the rest.
        let shutdown = async move {
            shutdown.await;
            let _ = stop_scheduler.send(true);
        };
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP")?;
        if let Some(task) = scheduler {
            let _ = task.await;
        }
        self.feed.abort();
        self.housekeeping.abort();
        self.store.pool().close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The reminder worker's loop: a pass, then sleep until the next timer is due, an event is
/// recorded (it may have armed an earlier timer), or `max_sleep`; on stop, its claims are given
/// back so that another replica takes them at once.
async fn run_scheduler(
    worker: Worker,
    clock: Arc<dyn Clock>,
    events: EventHub,
    max_sleep: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    /// At most this often, however busy the log: wake-ups between passes are coalesced.
    const MIN_INTERVAL: Duration = Duration::from_millis(100);
    let mut wake = events.subscribe();
    loop {
        match worker.drain().await {
            Ok(pass) if pass.claimed > 0 => {
                tracing::info!(
                    sent = pass.sent,
                    deferred = pass.deferred,
                    failed = pass.failed,
                    dropped = pass.dropped,
                    "reminders"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reminder pass failed; trying again"),
        }
        let until_next = match worker.next_due().await {
            Ok(Some(at)) => (at - clock.now()).to_std().unwrap_or(Duration::ZERO),
            _ => max_sleep,
        };
        let sleep = until_next.clamp(MIN_INTERVAL, max_sleep.max(MIN_INTERVAL));
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = wake.recv() => { tokio::time::sleep(MIN_INTERVAL).await; wake = wake.resubscribe(); }
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
    match worker.release().await {
        Ok(n) if n > 0 => tracing::info!(released = n, "reminder claims given back"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "claims not given back; their leases will end"),
    }
}

/// Deletes the records of idempotency keys past their retention, hourly. Expired records are
/// already ignored when a key is looked up; this only keeps the table small.
async fn forget_old_idempotency_keys(idempotency: Idempotency, clock: Arc<dyn Clock>) {
    loop {
        let before = clock.now() - idempotency.retention;
        match idempotency.keys.purge_keys(before).await {
            Ok(n) if n > 0 => tracing::info!(forgotten = n, "old idempotency keys deleted"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "old idempotency keys not deleted"),
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

fn router(state: AppState) -> Router {
    let partner_pages = Router::new()
        .route(
            "/l/{token}",
            get(partner_pages::show).post(partner_pages::submit),
        )
        .layer(DefaultBodyLimit::max(16 * 1024))
        .with_state(state.links.clone());
    Router::new()
        .merge(partner_pages)
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route(
            &format!("{}/{{file}}", graphiql::ASSETS),
            get(graphiql::asset),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
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

/// The path as logged: a partner link's token is a credential, so it is left out.
fn logged_path(path: &str) -> &str {
    if path.starts_with("/l/") {
        "/l/…"
    } else {
        path
    }
}

async fn ready(State(state): State<AppState>) -> Response {
    let ping = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query("SELECT 1").execute(state.store.pool()),
    )
    .await;
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
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            websocket::serve(
                socket,
                schema,
                protocol,
                init_timeout,
                move |payload| async move {
                    let Some(token) = connection_token(&payload) else {
                        return Err(InitRefusal::NoToken.into());
                    };
                    let viewer = match tokens::authenticate(
                        services.reads.as_ref(),
                        &token,
                        services.clock.now(),
                    )
                    .await
                    {
                        Ok(Some(viewer)) => viewer,
                        Ok(None) => return Err(InitRefusal::BadToken.into()),
                        Err(e) => {
                            tracing::warn!(error = %e, "a socket's token could not be checked");
                            return Err(InitRefusal::Unavailable.into());
                        }
                    };
                    let (viewer, loaders) = homeward_graphql::request_data(&services, viewer);
                    let mut data = Data::default();
                    data.insert(viewer);
                    data.insert(loaders);
                    Ok(data)
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
