//! `homeward serve`'s start-up and shutdown: [`Application::build`] checks the settings,
//! connects, migrates, binds, wires the services and the reminder worker, and assembles the
//! routes (`routes.rs`); tests use it to boot the real server on a random port.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use homeward_engine::invitations::{InvitationSettings, Invitations};
use homeward_engine::links::{LinkService, LinkSigner};
use homeward_engine::mail::{FileOutbox, Mailer, SmtpMailer};
use homeward_engine::retention::RetentionSweeper;
use homeward_engine::scheduler::{LinkSettings, Worker};
use homeward_engine::search::BlindIndex;
use homeward_engine::sessions::{SessionSettings, SignIn};
use homeward_engine::vault::Vault;
use homeward_engine::{Clock, CommandHandler, SystemClock};
use homeward_graphql::{EventHub, Idempotency, Services};
use homeward_store::{Backend, EventStore};
use secrecy::ExposeSecret as _;
use tokio::net::TcpListener;

use crate::access::AccessWatch;
use crate::limits::{Pacing, RateLimits};
use crate::routes::{router, AppState};

pub use crate::settings::Settings;

/// A bound, ready-to-run server.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: Router,
    /// How long a client has to send a request's headers (and an idle connection stays open).
    header_timeout: Duration,
    feed: tokio::task::JoinHandle<()>,
    housekeeping: tokio::task::JoinHandle<()>,
    /// Follows revocations and party changes for the open sockets.
    access_watch: tokio::task::JoinHandle<()>,
    /// Deletes old messages from the mail outbox, when mail goes there.
    outbox_cleaner: Option<tokio::task::JoinHandle<()>>,
    store: Arc<dyn Backend>,
    scheduler: Option<Scheduler>,
    /// Keeps other servers off a SQLite file while this one serves it.
    _lock: Option<homeward_store_sqlite::ServerLock>,
    /// The first admin's token, when this start created her (an empty SQLite database).
    first_admin: Option<FirstAdmin>,
    /// What the console executes the schema with, for work done in-process (the demo).
    in_process: crate::routes::AppState,
}

/// The admin a first start on an empty SQLite database creates, to be told once.
#[derive(Debug, Clone)]
pub struct FirstAdmin {
    pub party: homeward_workflows::PartyId,
    pub token: String,
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
        crate::metrics::handle();
        let opened = crate::store::open_for_serving(
            &settings.database_url,
            settings.max_connections,
            settings.append_flushes,
        )
        .await?;
        let store = opened.backend;
        store.migrate().await.context("applying migrations")?;
        // Before anything is served: the master key is the one the data was sealed under.
        let (master_key, created) = settings.master_key()?;
        if created {
            tracing::warn!(
                file = crate::settings::DEFAULT_MASTER_KEY_FILE,
                "created a new master key: back it up now, apart from the database and its \
                 backups"
            );
        }
        let kept = store.master_key_check(&master_key.check_value()).await?;
        if kept != master_key.check_value() {
            anyhow::bail!(
                "the master key (HOMEWARD_MASTER_KEY, HOMEWARD_MASTER_KEY_FILE or {}) is not the \
                 key this database was first started with (its key check value differs): start \
                 with that key",
                crate::settings::DEFAULT_MASTER_KEY_FILE
            );
        }
        let (search_key, created) = settings.search_key()?;
        if created {
            tracing::warn!(
                file = crate::settings::DEFAULT_SEARCH_KEY_FILE,
                "created a new search key: back it up with the master key"
            );
        }
        let kept = store.search_key_check(&search_key.check_value()).await?;
        if kept != search_key.check_value() {
            anyhow::bail!(
                "the search key (HOMEWARD_SEARCH_KEY, HOMEWARD_SEARCH_KEY_FILE or {}) is not the \
                 key this database's search index was built with (its key check value differs): \
                 start with that key",
                crate::settings::DEFAULT_SEARCH_KEY_FILE
            );
        }
        let events = EventHub::new();
        let feed = events.follow(store.subscribe(store.head().await?).await?);
        let event_store: Arc<dyn EventStore> = store.clone();
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        let signer = match settings.link_keys()? {
            Some(keys) => {
                let secrets: Vec<&[u8]> =
                    keys.iter().map(|k| k.expose_secret().as_bytes()).collect();
                LinkSigner::rotated(secrets[0], &secrets[1..])
            }
            None => LinkSigner::new(&store.server_secret("partner_links").await?),
        };
        tracing::info!(key_ids = ?signer.key_ids(), "partner links signed with the first key, checked with each");
        let mut outbox_cleaner = None;
        let (mailer, mail_concurrency): (Arc<dyn Mailer>, u32) = match &settings.smtp_url {
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
            None => {
                let outbox = FileOutbox::new(&settings.outbox_dir, &settings.mail_from)?;
                outbox_cleaner = Some(tokio::spawn(forget_old_outbox_mail(outbox.clone())));
                (Arc::new(outbox), 1)
            }
        };
        let base_url = match &settings.public_url {
            Some(url) => url.clone(),
            None => {
                let local = format!("http://{}", listener.local_addr()?);
                if settings.smtp_url.is_some() {
                    tracing::warn!(links = %local, "HOMEWARD_PUBLIC_URL is not set: links in emails point at the listen address; set it to the https address people reach");
                }
                local
            }
        };
        let sign_in = SignIn::new(
            store.clone(),
            store.clone(),
            mailer.clone(),
            base_url.clone(),
            SessionSettings {
                idle: chrono::Duration::minutes(i64::from(settings.session_idle_minutes)),
                lifetime: chrono::Duration::hours(i64::from(settings.session_hours)),
                ..SessionSettings::default()
            },
        );
        let invitations = Invitations::new(InvitationSettings {
            mailer: mailer.clone(),
            base_url: base_url.clone(),
            valid_for: chrono::Duration::days(i64::from(settings.invitation_days)),
        });
        let vault = Arc::new(
            Vault::new(master_key, store.clone()).with_search(BlindIndex::new(search_key)),
        );
        let services = Services {
            handler: CommandHandler::new(event_store, clock.clone())
                .with_vault(vault.clone())
                .with_retry_deadline(settings.command_deadline.0)
                .with_cached_events(settings.state_cache_events(opened.embedded)),
            vault,
            audit: if settings.audit_each_answer {
                homeward_engine::audit::AuditWriter::spawn(
                    store.clone(),
                    Duration::from_millis(settings.audit_gather_ms),
                )
            } else {
                homeward_engine::audit::AuditWriter::discarding()
            },
            access_log: store.clone(),
            reads: store.clone(),
            clock: clock.clone(),
            events,
            idempotency: Idempotency {
                keys: store.clone(),
                secret: store.server_secret("idempotency_keys").await?.into(),
                retention: chrono::Duration::hours(i64::from(settings.idempotency_hours)),
            },
            default_time_zone: settings.time_zone.clone(),
            token_max_days: i64::from(settings.token_max_days),
            invitations,
        };
        let scheduler = if !settings.no_scheduler {
            let concurrency = mail_concurrency;
            let worker = Worker::new(
                store.clone(),
                services.handler.clone(),
                services.reads.clone(),
                mailer,
                clock,
            )
            .with_links(LinkSettings {
                signer: signer.clone(),
                base_url,
                valid_for: chrono::Duration::days(i64::from(settings.link_days)),
            })
            .with_concurrency(concurrency as usize)
            .with_lease(chrono::Duration::from_std(settings.reminder_lease.0)?)
            .with_renewal(settings.reminder_renewal.0);
            Some(Scheduler {
                worker,
                events: services.events.clone(),
                max_sleep: settings.scheduler_max_sleep.0,
                retention: RetentionSweeper::new(
                    services.handler.clone(),
                    services.reads.clone(),
                    services.vault.clone(),
                    services.clock.clone(),
                ),
                sweep_every: settings.retention_sweep.0,
            })
        } else {
            None
        };
        let housekeeping = tokio::spawn(forget_old_idempotency_keys(
            services.idempotency.clone(),
            services.clock.clone(),
        ));
        let (access, access_watch) = AccessWatch::start(&services);
        let links = LinkService::new(signer, services.handler.clone());
        let state = AppState {
            links,
            sign_in,
            schema: homeward_graphql::schema(services.clone()),
            introspection: homeward_graphql::introspection_schema(services.clone()),
            services,
            store: store.clone(),
            max_body_bytes: settings.max_body_bytes,
            ws_init_timeout: settings.ws_init_timeout.0,
            ws_max_operations: settings.ws_max_operations,
            ws_max_sockets_per_token: settings.ws_max_sockets_per_token,
            ws_check_each_operation: settings.ws_check_each_operation,
            ws_recheck: settings.ws_recheck.0,
            access,
            graphiql: settings.graphiql_on(),
            hsts: settings.served_over_https(),
            rate_limits: RateLimits::new(settings.rate_limit, settings.rate_burst),
            proxies: settings.trusted_proxies.clone(),
            body_timeout: settings.body_timeout.0,
            pacing: Pacing {
                in_flight: Arc::new(tokio::sync::Semaphore::new(
                    settings.max_concurrent_requests,
                )),
                request_timeout: settings.request_timeout.0,
            },
        };
        // One server on its own file: a newcomer's first start gets an admin to sign in with;
        // last, once nothing else can fail, so that her token is printed whenever she is made.
        let first_admin =
            if opened.embedded && !settings.no_bootstrap && store.party_count().await? == 0 {
                let (party, token) = crate::cli::bootstrap(
                    store.clone(),
                    "Homeward",
                    crate::cli::first_admin_details(&settings.admin_email),
                )
                .await?;
                Some(FirstAdmin {
                    party,
                    token: token.secret,
                })
            } else {
                None
            };
        let in_process = state.clone();
        let router = router(state);
        Ok(Self {
            listener,
            router,
            header_timeout: settings.header_timeout.0,
            feed,
            housekeeping,
            access_watch,
            outbox_cleaner,
            store,
            scheduler,
            _lock: opened.lock,
            first_admin,
            in_process,
        })
    }

    /// Executes a GraphQL operation in-process as `viewer`, as the console does (access
    /// audited); the data, or what the API refused.
    pub async fn execute_as(
        &self,
        viewer: &homeward_engine::authz::Viewer,
        operation: &str,
        query: &str,
        variables: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        crate::console::api::run(&self.in_process, viewer, operation, query, variables)
            .await
            .map_err(|e| match e {
                crate::console::api::Failed::Api(problems) => anyhow::anyhow!(
                    "{operation}: {}",
                    problems
                        .iter()
                        .map(|p| format!("{} ({})", p.message, p.code))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                other => anyhow::anyhow!("{operation}: {other}"),
            })
    }

    /// The store this server serves from.
    pub fn backend(&self) -> Arc<dyn Backend> {
        self.store.clone()
    }

    /// The admin this start created on an empty SQLite database, if it did.
    pub fn first_admin(&self) -> Option<&FirstAdmin> {
        self.first_admin.as_ref()
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
        let scheduler = self.scheduler.map(|s| {
            let retention = tokio::spawn(
                s.retention
                    .run_until_stopped(s.sweep_every, stopped.clone()),
            );
            let reminders = tokio::spawn(s.worker.run_until_stopped(
                s.events.subscribe(),
                s.max_sleep,
                stopped,
            ));
            (reminders, retention)
        });
        // The worker stops starting sends as soon as shutdown begins, and gives back the rest.
        let shutdown = async move {
            shutdown.await;
            let _ = stop_scheduler.send(true);
        };
        crate::serve::serve(self.listener, self.router, self.header_timeout, shutdown).await;
        if let Some((reminders, retention)) = scheduler {
            let _ = reminders.await;
            let _ = retention.await;
        }
        self.feed.abort();
        self.housekeeping.abort();
        self.access_watch.abort();
        if let Some(cleaner) = &self.outbox_cleaner {
            cleaner.abort();
        }
        self.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// What the scheduler runs in this process: the reminder worker and the retention sweep.
#[derive(Debug)]
struct Scheduler {
    worker: Worker,
    events: EventHub,
    max_sleep: Duration,
    retention: RetentionSweeper,
    sweep_every: Duration,
}

/// How long a message stays in the mail outbox.
const OUTBOX_KEEP: Duration = Duration::from_secs(30 * 24 * 3600);

/// Deletes the outbox's messages older than [`OUTBOX_KEEP`], at start and hourly.
async fn forget_old_outbox_mail(outbox: FileOutbox) {
    loop {
        match outbox.forget_older_than(OUTBOX_KEEP).await {
            Ok(n) if n > 0 => tracing::info!(forgotten = n, "old outbox messages deleted"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "old outbox messages not deleted"),
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
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
