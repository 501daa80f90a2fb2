//! The settings of `homeward serve`, in one place: one type, parsed by clap from flags and
//! environment variables, each default written once (in its attribute), secrets kept as
//! [`SecretString`] (redacted in `Debug` and in `homeward config`), and the whole checked by
//! [`Settings::validate`] before anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr as _;
use std::time::Duration;

use clap::{ArgMatches, Args, FromArgMatches as _};
use secrecy::{ExposeSecret as _, SecretString};

use crate::limits::TrustedProxies;
use homeward_engine::keys::MasterKey;
use homeward_engine::search::SearchKey;

/// What `homeward serve` needs. Flags and variables are listed by `homeward serve --help`;
/// `homeward config` prints the effective values.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// The database (`DATABASE_URL`, read by the command line for every command): a SQLite file
    /// (`sqlite://data/homeward.db`, the default) or PostgreSQL (`postgres://...`).
    #[arg(skip = SecretString::from(""))]
    pub database_url: SecretString,
    /// Address to listen on.
    #[arg(long, env = "HOMEWARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "HOMEWARD_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Database connections in the pool (1 to 1000).
    #[arg(
        long = "db-connections",
        env = "HOMEWARD_DB_CONNECTIONS",
        default_value_t = 16
    )]
    pub max_connections: u32,
    /// Group-commit transactions in flight at once, each on a connection of its own (1 to 64).
    /// Fewer make larger batches, more let small ones go at once.
    #[arg(long, env = "HOMEWARD_APPEND_FLUSHES", default_value_t = homeward_store_postgres::DEFAULT_FLUSHES_IN_FLIGHT)]
    pub append_flushes: usize,
    /// SMTP server for reminders: smtp://host:port, smtp://user:pass@host:587?tls=required
    /// (STARTTLS) or smtps://user:pass@host:465 (TLS). Without it, reminders are written as
    /// .eml files to the outbox folder.
    #[arg(long, env = "SMTP_URL", hide_env_values = true, value_parser = secret)]
    pub smtp_url: Option<SecretString>,
    /// Folder for .eml files when no SMTP server is set; created if missing, must be writable.
    #[arg(
        long = "outbox",
        env = "HOMEWARD_OUTBOX",
        default_value = "data/outbox"
    )]
    pub outbox_dir: PathBuf,
    /// The sender of reminders.
    #[arg(
        long,
        env = "HOMEWARD_MAIL_FROM",
        default_value = "Homeward <homeward@localhost>"
    )]
    pub mail_from: String,
    /// SMTP connections in the pool: how many reminders are sent at once (1 to 64).
    #[arg(long, env = "HOMEWARD_SMTP_CONNECTIONS", default_value_t = 4)]
    pub smtp_connections: u32,
    /// Seconds one message may take (connect, greeting and every command) before it counts as
    /// failed and is retried later; must be shorter than the reminder lease.
    #[arg(long = "smtp-timeout-secs", env = "HOMEWARD_SMTP_TIMEOUT_SECS", value_parser = seconds,
        default_value_t = Seconds(homeward_engine::mail::DEFAULT_SMTP_TIMEOUT))]
    pub smtp_timeout: Seconds,
    /// Seconds a worker's claim on a due reminder lasts unless renewed: how long a dead
    /// replica's reminders wait, at most, before another replica sends them.
    #[arg(long = "reminder-lease-secs", env = "HOMEWARD_REMINDER_LEASE_SECS", value_parser = seconds,
        default_value_t = Seconds(homeward_engine::scheduler::DEFAULT_LEASE))]
    pub reminder_lease: Seconds,
    /// Seconds between renewals of the claims a worker is sending; at most half the lease.
    #[arg(long = "reminder-renew-secs", env = "HOMEWARD_REMINDER_RENEW_SECS", value_parser = seconds,
        default_value_t = Seconds(homeward_engine::scheduler::DEFAULT_RENEWAL))]
    pub reminder_renewal: Seconds,
    /// The longest the reminder worker sleeps between passes when nothing wakes it sooner.
    #[arg(long = "scheduler-max-sleep-secs", env = "HOMEWARD_SCHEDULER_MAX_SLEEP_SECS", value_parser = seconds,
        default_value_t = Seconds(Duration::from_secs(30)))]
    pub scheduler_max_sleep: Seconds,
    /// Plans and other states kept in memory, counted in the events they were folded from (0:
    /// none), so that a command on a cached plan reads only its newest events. Unset: 500,000
    /// on PostgreSQL; 50,000 on SQLite, whose reads are from a local file and whose single
    /// server is kept small.
    #[arg(long, env = "HOMEWARD_STATE_CACHE_EVENTS")]
    pub state_cache_events: Option<u64>,
    /// Do not run the reminder worker in this process (another replica does).
    #[arg(long, env = "HOMEWARD_NO_SCHEDULER")]
    pub no_scheduler: bool,
    /// On an empty SQLite database, do not create the first admin (create one with
    /// `homeward bootstrap` instead).
    #[arg(long, env = "HOMEWARD_NO_BOOTSTRAP")]
    pub no_bootstrap: bool,
    /// The email address of the admin created on an empty SQLite database.
    #[arg(
        long,
        env = "HOMEWARD_ADMIN_EMAIL",
        default_value = "admin@example.org"
    )]
    pub admin_email: String,
    /// Seconds between two looks for survivors whose retention has ended (they are erased),
    /// by the scheduler.
    #[arg(long = "retention-sweep-secs", env = "HOMEWARD_RETENTION_SWEEP_SECS", value_parser = seconds,
        default_value_t = Seconds(homeward_engine::retention::DEFAULT_SWEEP_EVERY))]
    pub retention_sweep: Seconds,
    /// The address partners reach this server at, for the links in their reminders, e.g.
    /// https://homeward.example.org (default: http://<listen>).
    #[arg(long, env = "HOMEWARD_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Days a partner link in a reminder stays valid (1 to 90).
    #[arg(long, env = "HOMEWARD_LINK_DAYS", default_value_t = homeward_engine::links::DEFAULT_LINK_DAYS)]
    pub link_days: u32,
    /// Allow plain SMTP and an http:// public URL while listening beyond loopback (true or
    /// false): for a local stack such as compose.yaml's, never where partners are reached.
    #[arg(long, env = "HOMEWARD_ALLOW_INSECURE_TRANSPORT",
        value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    pub allow_insecure_transport: bool,
    /// GraphiQL, the in-browser IDE at GET /graphql: true or false (default: true when listening
    /// on a loopback address only, such as 127.0.0.1).
    #[arg(long, env = "HOMEWARD_GRAPHIQL", value_parser = clap::builder::BoolishValueParser::new())]
    pub graphiql: Option<bool>,
    /// The key that signs partner links, at least 16 characters; by default one kept in the
    /// database and shared by every replica.
    #[arg(long, env = "HOMEWARD_LINK_SECRET", hide_env_values = true, value_parser = secret)]
    pub link_secret: Option<SecretString>,
    /// Keys that signed partner links before HOMEWARD_LINK_SECRET, comma-separated: their
    /// links keep working until they expire. Drop a key once its links have (HOMEWARD_LINK_DAYS
    /// after the rotation).
    #[arg(long, env = "HOMEWARD_LINK_PREVIOUS_SECRETS", hide_env_values = true, value_parser = secret)]
    pub link_previous_secrets: Option<SecretString>,
    /// A file of partner link keys instead of HOMEWARD_LINK_SECRET: one per line, the first
    /// signs, the others only check links issued before a rotation; readable by its owner only.
    #[arg(long, env = "HOMEWARD_LINK_SECRET_FILE")]
    pub link_secret_file: Option<PathBuf>,
    /// The master key for survivors' data: 32 bytes, base64 (`openssl rand -base64 32`),
    /// checked at every start against the check value the database keeps. Keep it apart from the
    /// database and its backups: a backup that carries its own key protects nothing.
    #[arg(long, env = "HOMEWARD_MASTER_KEY", hide_env_values = true, value_parser = secret)]
    pub master_key: Option<SecretString>,
    /// A file holding the master key instead, readable by its owner only. Without either, the
    /// key is kept in `keys/master.key` (beside the `data/` folder, never in it), created on the
    /// first start.
    #[arg(long, env = "HOMEWARD_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// The key of the search index (survivors found by name and date of birth without
    /// plaintext): 32 bytes, base64, not the master key. Checked at every start like it.
    #[arg(long, env = "HOMEWARD_SEARCH_KEY", hide_env_values = true, value_parser = secret)]
    pub search_key: Option<SecretString>,
    /// A file holding the search key instead, readable by its owner only. Without either, it is
    /// kept in `keys/search.key`, created on the first start.
    #[arg(long, env = "HOMEWARD_SEARCH_KEY_FILE")]
    pub search_key_file: Option<PathBuf>,
    /// The longest an API token may live, in days (1 to 3650): `createToken` and `homeward
    /// token create` refuse more.
    #[arg(long, env = "HOMEWARD_TOKEN_MAX_DAYS", default_value_t = homeward_engine::tokens::DEFAULT_MAX_TOKEN_DAYS as u32)]
    pub token_max_days: u32,
    /// Days an invitation email's link can be used (1 to 30), once.
    #[arg(long, env = "HOMEWARD_INVITATION_DAYS", default_value_t = homeward_engine::invitations::DEFAULT_INVITATION_DAYS as u32)]
    pub invitation_days: u32,
    /// Minutes a web console session may go without a request before it ends (1 to 1440).
    #[arg(long, env = "HOMEWARD_SESSION_IDLE_MINUTES", default_value_t = 60)]
    pub session_idle_minutes: u32,
    /// Hours after which a web console session ends however busy it is (1 to 168).
    #[arg(long, env = "HOMEWARD_SESSION_HOURS", default_value_t = 12)]
    pub session_hours: u32,
    /// Hours an idempotency key is remembered (1 to 8760): a request repeated with the same key
    /// within them gets the first result.
    #[arg(long, env = "HOMEWARD_IDEMPOTENCY_HOURS", default_value_t = homeward_graphql::DEFAULT_IDEMPOTENCY_HOURS as u32)]
    pub idempotency_hours: u32,
    /// Seconds a WebSocket client has to send `connection_init` before it is closed (4408).
    #[arg(long = "ws-init-timeout-secs", env = "HOMEWARD_WS_INIT_TIMEOUT_SECS", value_parser = seconds,
        default_value_t = Seconds(Duration::from_secs(10)))]
    pub ws_init_timeout: Seconds,
    /// Operations (subscriptions, queries in flight) one WebSocket may have open at once;
    /// past it, an operation is answered with RATE_LIMITED.
    #[arg(long, env = "HOMEWARD_WS_MAX_OPERATIONS", default_value_t = 20)]
    pub ws_max_operations: usize,
    /// WebSockets one token may have open at once in one replica; past it, a socket's
    /// connection_init is refused (4403).
    #[arg(long, env = "HOMEWARD_WS_MAX_SOCKETS_PER_TOKEN", default_value_t = 10)]
    pub ws_max_sockets_per_token: usize,
    /// Whether a WebSocket checks its token again before every operation. Always on in the
    /// server (no flag or variable turns it off); the benchmark turns it off in code, to
    /// measure what the check costs.
    #[arg(skip = true)]
    pub ws_check_each_operation: bool,
    /// Whether every answer that shows personal data waits for its access audit entries to be
    /// committed. Always on in the server (no flag or variable turns it off); the benchmark
    /// turns it off in code, for the baseline it measures the audit against.
    #[arg(skip = true)]
    pub audit_each_answer: bool,
    /// Milliseconds (0 to 100) a batch of access audit entries waits at most after its first
    /// for the entries of requests still executing, so that busy replicas commit several
    /// reads' entries at once. 0 commits each batch at once.
    #[arg(long, env = "HOMEWARD_AUDIT_GATHER_MS", default_value_t = homeward_engine::audit::DEFAULT_GATHER.as_millis() as u64)]
    pub audit_gather_ms: u64,
    /// Seconds (fractions allowed) after which an operation on a WebSocket asks the database
    /// again whether its token stands. In between it relies on what every replica announces
    /// (revocations, party changes) and on the clock (expiry); this is the net under a lost
    /// announcement.
    #[arg(long = "ws-recheck-secs", env = "HOMEWARD_WS_RECHECK_SECS", value_parser = seconds,
        default_value_t = Seconds(Duration::from_secs(1)))]
    pub ws_recheck: Seconds,
    /// Seconds a client has to send a request's headers; a connection left idle this long is
    /// closed too.
    #[arg(long = "header-timeout-secs", env = "HOMEWARD_HEADER_TIMEOUT_SECS", value_parser = seconds,
        default_value_t = Seconds(Duration::from_secs(10)))]
    pub header_timeout: Seconds,
    /// Seconds a client has to send a request's whole body, once its token is accepted.
    #[arg(long = "body-timeout-secs", env = "HOMEWARD_BODY_TIMEOUT_SECS", value_parser = seconds,
        default_value_t = Seconds(Duration::from_secs(10)))]
    pub body_timeout: Seconds,
    /// Seconds a request may take from its headers to its answer (waiting for a place
    /// included); past them it is stopped with TIMEOUT (503).
    #[arg(long = "request-timeout-secs", env = "HOMEWARD_REQUEST_TIMEOUT_SECS", value_parser = seconds,
        default_value_t = Seconds(Duration::from_secs(30)))]
    pub request_timeout: Seconds,
    /// Requests to /graphql and the partner pages served at once in this replica (1 to
    /// 10000); more wait for a place.
    #[arg(long, env = "HOMEWARD_MAX_CONCURRENT_REQUESTS", default_value_t = 256)]
    pub max_concurrent_requests: usize,
    /// Requests a second one token may make in this replica, on average (HTTP requests and
    /// WebSocket operations together), and what an address may try with missing or wrong
    /// tokens; past it, RATE_LIMITED (429 with Retry-After). 0 turns the limits off.
    #[arg(long, env = "HOMEWARD_RATE_LIMIT", default_value_t = 20)]
    pub rate_limit: u32,
    /// Requests a token may make at once after a quiet spell, above the average rate.
    #[arg(long, env = "HOMEWARD_RATE_BURST", default_value_t = 100)]
    pub rate_burst: u32,
    /// The proxies in front of Homeward, whose X-Forwarded-For names the client (addresses or
    /// networks, comma-separated: 10.0.0.5,172.16.0.0/12). Without them, the client is the
    /// connection's address.
    #[arg(long, env = "HOMEWARD_TRUSTED_PROXIES", default_value = "", value_parser = proxies)]
    pub trusted_proxies: TrustedProxies,
    /// Seconds a command without expectedVersion keeps retrying while other replicas write
    /// the same plan, before it answers BUSY (nothing written, send it again).
    #[arg(long = "command-deadline-secs", env = "HOMEWARD_COMMAND_DEADLINE_SECS", value_parser = seconds,
        default_value_t = Seconds(homeward_engine::DEFAULT_RETRY_DEADLINE))]
    pub command_deadline: Seconds,
    /// The programme's IANA time zone (e.g. Europe/Paris): the time zone of a party registered
    /// without one.
    #[arg(long, env = "HOMEWARD_TIME_ZONE", default_value = "UTC")]
    pub time_zone: String,
}

/// A setting that stops start-up: which one, and what is allowed.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct BadSetting {
    /// The variable and its flag, e.g. `HOMEWARD_DB_CONNECTIONS (--db-connections)`.
    pub setting: &'static str,
    pub problem: String,
}

/// A number setting within its range, or the setting named with the range and the value.
fn in_range<T>(
    setting: &'static str,
    value: T,
    range: std::ops::RangeInclusive<T>,
    unit: &str,
) -> Result<(), BadSetting>
where
    T: PartialOrd + std::fmt::Display,
{
    if range.contains(&value) {
        return Ok(());
    }
    let unit = if unit.is_empty() {
        String::new()
    } else {
        format!(" {unit}")
    };
    Err(bad(
        setting,
        format!(
            "must be {} to {}{unit}; it is {value}",
            range.start(),
            range.end()
        ),
    ))
}

fn bad(setting: &'static str, problem: impl Into<String>) -> BadSetting {
    BadSetting {
        setting,
        problem: problem.into(),
    }
}

impl Settings {
    /// The defaults, with this database and address; environment variables are not read, so
    /// tests get the same settings on every machine.
    pub fn new(database_url: impl Into<String>, listen: SocketAddr) -> Self {
        let command = Self::augment_args(clap::Command::new("homeward serve"))
            .mut_args(|arg| arg.env(None))
            .no_binary_name(true);
        let matches = command
            .try_get_matches_from(["--listen", &listen.to_string()])
            .expect("the defaults parse");
        let mut settings = Self::from_arg_matches(&matches).expect("the defaults are settings");
        settings.database_url = SecretString::from(database_url.into());
        settings
    }

    /// The state cache's bound (see `state_cache_events`) for a server on SQLite (`embedded`)
    /// or PostgreSQL.
    pub fn state_cache_events(&self, embedded: bool) -> u64 {
        self.state_cache_events.unwrap_or(if embedded {
            SQLITE_STATE_CACHE_EVENTS
        } else {
            homeward_engine::DEFAULT_CACHED_EVENTS
        })
    }

    /// Mail and partner links cross networks without TLS only on a loopback address or when
    /// allowed: a partner link carries access to a survivor's plan.
    fn check_transport(&self) -> Result<(), BadSetting> {
        if self.listen.ip().is_loopback() || self.allow_insecure_transport {
            return Ok(());
        }
        let allow = "or set HOMEWARD_ALLOW_INSECURE_TRANSPORT=true for a local stack";
        if let Some(url) = &self.smtp_url {
            let url = url.expose_secret();
            let plain = url.starts_with("smtp://")
                && !url
                    .split_once('?')
                    .is_some_and(|(_, query)| query.split('&').any(|pair| pair == "tls=required"));
            if plain {
                return Err(bad(
                    "SMTP_URL",
                    format!(
                        "sends mail without TLS while the server listens on {}: use smtps:// or \
                         smtp://...?tls=required, {allow}",
                        self.listen
                    ),
                ));
            }
            if self.public_url.is_none() {
                return Err(bad(
                    "HOMEWARD_PUBLIC_URL (--public-url)",
                    format!(
                        "is needed when listening on {}: partner links would point at \
                         http://{}; set the https address partners reach, {allow}",
                        self.listen, self.listen
                    ),
                ));
            }
        }
        if let Some(url) = self
            .public_url
            .as_deref()
            .filter(|u| u.starts_with("http://"))
        {
            return Err(bad(
                "HOMEWARD_PUBLIC_URL (--public-url)",
                format!("{url} is not https: partner links would travel in clear; use https://, {allow}"),
            ));
        }
        Ok(())
    }

    /// Whether GraphiQL is served: as set, or when listening on a loopback address only.
    pub fn graphiql_on(&self) -> bool {
        self.graphiql.unwrap_or(self.listen.ip().is_loopback())
    }

    /// Whether browsers reach this server over https (its public URL says so): then every
    /// response asks them to keep to https (HSTS).
    pub fn served_over_https(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://"))
    }

    /// Checks every setting, and how they fit together, before anything starts. Creates the
    /// outbox folder when reminders go there.
    pub fn validate(&self) -> Result<(), BadSetting> {
        let url = self.database_url.expose_secret();
        if let Some(file) = crate::store::sqlite_file(url) {
            if url.contains(":memory:") || url.contains('?') {
                return Err(bad(
                    "DATABASE_URL",
                    "sqlite:// must name a database file, without options or :memory: (the data \
                     must outlive the process), e.g. sqlite://data/homeward.db",
                ));
            }
            if file.as_os_str().is_empty() || file.is_dir() {
                return Err(bad(
                    "DATABASE_URL",
                    "sqlite:// must name a database file, e.g. sqlite://data/homeward.db",
                ));
            }
            let folder = file
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            check_writable("DATABASE_URL", folder, ", or another sqlite:// file")?;
        } else if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(bad(
                "DATABASE_URL",
                "must start with sqlite:// (one server, e.g. sqlite://data/homeward.db) or \
                 postgres:// (postgres://user:password@host:5432/database)",
            ));
        } else {
            sqlx::postgres::PgConnectOptions::from_str(url).map_err(
            |e| {
                bad(
                    "DATABASE_URL",
                    format!(
                        "not a PostgreSQL URL ({}); write it as postgres://user:password@host:5432/database",
                        redact_url_error(&e.to_string())
                    ),
                )
            },
        )?;
        }
        in_range(
            "HOMEWARD_DB_CONNECTIONS (--db-connections)",
            self.max_connections,
            1..=1000,
            "",
        )?;
        in_range(
            "HOMEWARD_AUDIT_GATHER_MS (--audit-gather-ms)",
            self.audit_gather_ms,
            0..=100,
            "milliseconds",
        )?;
        in_range(
            "HOMEWARD_APPEND_FLUSHES (--append-flushes)",
            self.append_flushes,
            1..=64,
            "",
        )?;
        in_range(
            "HOMEWARD_SMTP_CONNECTIONS (--smtp-connections)",
            self.smtp_connections,
            1..=64,
            "",
        )?;
        in_range(
            "HOMEWARD_IDEMPOTENCY_HOURS (--idempotency-hours)",
            self.idempotency_hours,
            1..=8760,
            "hours (a year)",
        )?;
        if self.max_body_bytes < 1024 {
            return Err(bad(
                "HOMEWARD_MAX_BODY_BYTES (--max-body-bytes)",
                format!("must be at least 1024 bytes; it is {}", self.max_body_bytes),
            ));
        }
        if self.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(bad(
                "HOMEWARD_TIME_ZONE (--time-zone)",
                format!(
                    "{:?} is not an IANA time zone; write it as Region/City, e.g. Europe/Paris or Africa/Lagos",
                    self.time_zone
                ),
            ));
        }
        self.link_keys()?;
        if let Some(url) = &self.public_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(bad(
                    "HOMEWARD_PUBLIC_URL (--public-url)",
                    format!("{url:?} must start with https:// (or http:// for a local test)"),
                ));
            }
        }
        if self.reminder_renewal.0 * 2 > self.reminder_lease.0 {
            return Err(bad(
                "HOMEWARD_REMINDER_RENEW_SECS (--reminder-renew-secs)",
                format!(
                    "must be at most half of HOMEWARD_REMINDER_LEASE_SECS ({} s); it is {} s",
                    self.reminder_lease.0.as_secs_f64(),
                    self.reminder_renewal.0.as_secs_f64()
                ),
            ));
        }
        in_range(
            "HOMEWARD_WS_MAX_SOCKETS_PER_TOKEN (--ws-max-sockets-per-token)",
            self.ws_max_sockets_per_token,
            1..=1000,
            "",
        )?;
        in_range(
            "HOMEWARD_WS_MAX_OPERATIONS (--ws-max-operations)",
            self.ws_max_operations,
            1..=1000,
            "",
        )?;
        in_range(
            "HOMEWARD_MAX_CONCURRENT_REQUESTS (--max-concurrent-requests)",
            self.max_concurrent_requests,
            1..=10_000,
            "",
        )?;
        in_range(
            "HOMEWARD_RATE_BURST (--rate-burst)",
            self.rate_burst,
            1..=100_000,
            "",
        )?;
        in_range(
            "HOMEWARD_RATE_LIMIT (--rate-limit)",
            self.rate_limit,
            0..=100_000,
            "a second",
        )?;
        in_range(
            "HOMEWARD_TOKEN_MAX_DAYS (--token-max-days)",
            self.token_max_days,
            1..=3650,
            "days",
        )?;
        in_range(
            "HOMEWARD_INVITATION_DAYS (--invitation-days)",
            self.invitation_days,
            1..=30,
            "days",
        )?;
        in_range(
            "HOMEWARD_SESSION_IDLE_MINUTES (--session-idle-minutes)",
            self.session_idle_minutes,
            1..=1440,
            "minutes",
        )?;
        in_range(
            "HOMEWARD_SESSION_HOURS (--session-hours)",
            self.session_hours,
            1..=168,
            "hours",
        )?;
        in_range(
            "HOMEWARD_LINK_DAYS (--link-days)",
            self.link_days,
            1..=90,
            "days",
        )?;
        self.check_transport()?;
        // A key given is well formed (the default file is read or made at start-up).
        if self.master_key.is_some() || self.master_key_file.is_some() {
            self.master_key()?;
        }
        if self.search_key.is_some() || self.search_key_file.is_some() {
            self.search_key()?;
        }
        match &self.smtp_url {
            Some(_) if self.smtp_timeout.0 >= self.reminder_lease.0 => {
                return Err(bad(
                    "HOMEWARD_SMTP_TIMEOUT_SECS (--smtp-timeout-secs)",
                    format!(
                        "must be shorter than HOMEWARD_REMINDER_LEASE_SECS ({} s); it is {} s",
                        self.reminder_lease.0.as_secs_f64(),
                        self.smtp_timeout.0.as_secs_f64()
                    ),
                ));
            }
            Some(_) => {}
            // Invitations and notices go there too, scheduler or not.
            None => check_writable(
                "HOMEWARD_OUTBOX (--outbox)",
                &self.outbox_dir,
                ", or set SMTP_URL",
            )?,
        }
        Ok(())
    }

    /// The master key: from `HOMEWARD_MASTER_KEY`, from `HOMEWARD_MASTER_KEY_FILE`, or from
    /// [`DEFAULT_MASTER_KEY_FILE`], which is created (`0600`, with a warning to back it up
    /// apart) when missing. `true` with a key just created.
    pub fn master_key(&self) -> Result<(MasterKey, bool), BadSetting> {
        read_master_key(
            self.master_key.as_ref(),
            self.master_key_file.as_deref(),
            true,
        )
    }

    /// The search index's key: from `HOMEWARD_SEARCH_KEY`, from `HOMEWARD_SEARCH_KEY_FILE`, or
    /// from [`DEFAULT_SEARCH_KEY_FILE`], created when missing. `true` with a key just created.
    pub fn search_key(&self) -> Result<(SearchKey, bool), BadSetting> {
        read_key(
            &SEARCH_KEY,
            self.search_key.as_ref(),
            self.search_key_file.as_deref(),
            true,
        )
    }

    /// The partner link keys set here, the signing one first; `None` when the key kept in the
    /// database signs.
    pub fn link_keys(&self) -> Result<Option<Vec<SecretString>>, BadSetting> {
        const SECRET: &str = "HOMEWARD_LINK_SECRET (--link-secret)";
        const PREVIOUS: &str = "HOMEWARD_LINK_PREVIOUS_SECRETS (--link-previous-secrets)";
        const FILE: &str = "HOMEWARD_LINK_SECRET_FILE (--link-secret-file)";
        let (keys, setting): (Vec<SecretString>, &str) =
            match (&self.link_secret, &self.link_secret_file) {
                (Some(_), Some(_)) => {
                    return Err(bad(FILE, "set either it or HOMEWARD_LINK_SECRET, not both"))
                }
                (None, None) if self.link_previous_secrets.is_some() => {
                    return Err(bad(
                        PREVIOUS,
                        "previous keys need the current one in HOMEWARD_LINK_SECRET",
                    ))
                }
                (None, None) => return Ok(None),
                (Some(current), None) => {
                    let mut keys = vec![current.clone()];
                    if let Some(previous) = &self.link_previous_secrets {
                        keys.extend(
                            previous
                                .expose_secret()
                                .split(',')
                                .map(str::trim)
                                .filter(|k| !k.is_empty())
                                .map(SecretString::from),
                        );
                    }
                    (keys, SECRET)
                }
                (None, Some(path)) => (read_key_file(path, FILE)?, FILE),
            };
        if keys.is_empty() {
            return Err(bad(FILE, "the file holds no key: write one per line"));
        }
        for (n, key) in keys.iter().enumerate() {
            if key.expose_secret().chars().count() < 16 {
                let (setting, which) = match (setting == FILE, n) {
                    (true, n) => (FILE, format!("key {} of the file", n + 1)),
                    (false, 0) => (SECRET, "the key".to_owned()),
                    (false, n) => (PREVIOUS, format!("previous key {n}")),
                };
                return Err(bad(
                    setting,
                    format!(
                        "{which} must be at least 16 characters long (or leave the link keys \
                         unset: a key kept in the database is used)"
                    ),
                ));
            }
        }
        Ok(Some(keys))
    }

    /// Every setting as `VARIABLE=value`, in the order of `--help`, with secrets redacted:
    /// what `homeward config` prints.
    pub fn describe(matches: &ArgMatches) -> Vec<String> {
        let mut lines = vec!["DATABASE_URL=[redacted]".to_owned()];
        let command = Self::augment_args(clap::Command::new("homeward serve"));
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            let name = arg
                .get_env()
                .map(|env| env.to_string_lossy().into_owned())
                .unwrap_or_else(|| format!("--{id}"));
            let value = if arg.is_hide_env_values_set() {
                match matches.get_raw(id) {
                    Some(_) => "[redacted]".to_owned(),
                    None => "(unset)".to_owned(),
                }
            } else {
                match matches.get_raw(id) {
                    Some(values) => values
                        .map(|v| v.to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join(","),
                    None if arg.get_action().takes_values() => "(unset)".to_owned(),
                    None => "false".to_owned(),
                }
            };
            let source = match matches.value_source(id) {
                Some(clap::parser::ValueSource::DefaultValue) => "  # default",
                Some(clap::parser::ValueSource::EnvVariable) => "  # from the environment",
                Some(clap::parser::ValueSource::CommandLine) => "  # from the command line",
                _ => "",
            };
            lines.push(format!("{name}={value}{source}"));
        }
        lines
    }
}

/// A database URL error may quote the URL: keep only what precedes a quoted part.
fn redact_url_error(message: &str) -> String {
    message
        .split(['"', '\''])
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// A folder is writable, or can be created in a writable folder; nothing is left behind (its
/// user creates it when it starts). `setting` names it, `otherwise` says what else to do.
pub(crate) fn check_writable(
    setting: &'static str,
    dir: &std::path::Path,
    otherwise: &str,
) -> Result<(), BadSetting> {
    let refused = |why: String| {
        bad(
            setting,
            format!(
                "the folder {} {why}; name a writable folder{otherwise}",
                dir.display()
            ),
        )
    };
    // The folder itself, or the nearest folder above it that exists.
    let mut existing = dir;
    while !existing.exists() {
        existing = match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => std::path::Path::new("."),
        };
        if existing == std::path::Path::new(".") {
            break;
        }
    }
    if !existing.is_dir() {
        return Err(refused(format!(
            "cannot be created: {} is not a folder",
            existing.display()
        )));
    }
    // A name of its own: two checks at once (replicas, tests) must not remove each other's.
    let probe = existing.join(format!(".homeward-write-check-{}", uuid::Uuid::new_v4()));
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| refused(format!("is not writable ({e})")))
}

/// A duration given in seconds (fractions allowed), shown as seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub Duration);

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.as_secs_f64())
    }
}

impl From<Duration> for Seconds {
    fn from(duration: Duration) -> Self {
        Self(duration)
    }
}

/// A number of seconds, fractions allowed (`0.5`), more than zero and at most a day.
fn seconds(text: &str) -> Result<Seconds, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => {
            Ok(Seconds(Duration::from_secs_f64(s)))
        }
        _ => Err(format!(
            "{text:?} is not a number of seconds between 0 and 86400 (e.g. 30 or 0.5)"
        )),
    }
}

/// Where the master key is kept when no setting names it: beside the data folder, not in it.
pub const DEFAULT_MASTER_KEY_FILE: &str = "keys/master.key";
/// The state cache's bound on SQLite, in events (see `Settings::state_cache_events`).
pub const SQLITE_STATE_CACHE_EVENTS: u64 = 50_000;
/// Where the search key is kept when no setting names it, beside the master key.
pub const DEFAULT_SEARCH_KEY_FILE: &str = "keys/search.key";

/// A key read from a setting or a file, or made and kept in its default file.
pub trait KeyText: Sized {
    fn generate() -> Self;
    fn parse(text: &str) -> Result<Self, String>;
    fn to_base64(&self) -> String;
}

impl KeyText for MasterKey {
    fn generate() -> Self {
        MasterKey::generate()
    }
    fn parse(text: &str) -> Result<Self, String> {
        MasterKey::from_base64(text).map_err(|e| e.to_string())
    }
    fn to_base64(&self) -> String {
        MasterKey::to_base64(self)
    }
}

impl KeyText for SearchKey {
    fn generate() -> Self {
        SearchKey::generate()
    }
    fn parse(text: &str) -> Result<Self, String> {
        SearchKey::from_base64(text).map_err(|e| e.to_string())
    }
    fn to_base64(&self) -> String {
        SearchKey::to_base64(self)
    }
}

/// The settings and the default file of one kind of key.
#[derive(Debug)]
pub struct KeySettings {
    pub key: &'static str,
    pub file: &'static str,
    pub default_file: &'static str,
}

pub const MASTER_KEY: KeySettings = KeySettings {
    key: "HOMEWARD_MASTER_KEY (--master-key)",
    file: "HOMEWARD_MASTER_KEY_FILE (--master-key-file)",
    default_file: DEFAULT_MASTER_KEY_FILE,
};

pub const SEARCH_KEY: KeySettings = KeySettings {
    key: "HOMEWARD_SEARCH_KEY (--search-key)",
    file: "HOMEWARD_SEARCH_KEY_FILE (--search-key-file)",
    default_file: DEFAULT_SEARCH_KEY_FILE,
};

/// Writes a new key file readable by its owner only, in a folder of theirs only.
fn create_key_file(path: &std::path::Path, key: &impl KeyText) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(file, "{}", key.to_base64())
}

/// The master key: from `key` (HOMEWARD_MASTER_KEY), from `file` (HOMEWARD_MASTER_KEY_FILE), or
/// from [`DEFAULT_MASTER_KEY_FILE`], which is created (`0600`) when missing if `create`. `true`
/// with a key just created.
pub fn read_master_key(
    key: Option<&SecretString>,
    file: Option<&std::path::Path>,
    create: bool,
) -> Result<(MasterKey, bool), BadSetting> {
    read_key(&MASTER_KEY, key, file, create)
}

/// A key of the kind `names` says: from its setting, from its file setting, or from its default
/// file, which is created (`0600`) when missing if `create`. `true` with a key just created.
pub fn read_key<K: KeyText>(
    names: &KeySettings,
    key: Option<&SecretString>,
    file: Option<&std::path::Path>,
    create: bool,
) -> Result<(K, bool), BadSetting> {
    let parse = |text: &str, setting: &'static str| K::parse(text).map_err(|e| bad(setting, e));
    let from_file = |path: &std::path::Path| {
        let keys = read_key_file(path, names.file)?;
        let first = keys
            .first()
            .ok_or_else(|| bad(names.file, "the file holds no key"))?;
        parse(first.expose_secret(), names.file)
    };
    match (key, file) {
        (Some(_), Some(_)) => Err(bad(
            names.file,
            format!("set either it or {}, not both", names.key),
        )),
        (Some(key), None) => Ok((parse(key.expose_secret(), names.key)?, false)),
        (None, Some(path)) => Ok((from_file(path)?, false)),
        (None, None) => {
            let path = std::path::Path::new(names.default_file);
            if path.exists() {
                return Ok((from_file(path)?, false));
            }
            if !create {
                return Err(bad(
                    names.file,
                    format!(
                        "no key: {} does not exist; set {} or this",
                        path.display(),
                        names.key
                    ),
                ));
            }
            let key = K::generate();
            match create_key_file(path, &key) {
                Ok(()) => Ok((key, true)),
                // Another replica on this folder made it first: theirs is the key.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    Ok((from_file(path)?, false))
                }
                Err(e) => Err(bad(
                    names.file,
                    format!("{} cannot be created: {e}", path.display()),
                )),
            }
        }
    }
}

/// The keys of a key file: one per line, blank lines and `#` comments left out. The file must be
/// readable by its owner only: it signs what partners are trusted to have received.
fn read_key_file(
    path: &std::path::Path,
    setting: &'static str,
) -> Result<Vec<SecretString>, BadSetting> {
    use std::os::unix::fs::PermissionsExt as _;
    let metadata = std::fs::metadata(path)
        .map_err(|e| bad(setting, format!("{} cannot be read: {e}", path.display())))?;
    if metadata.permissions().mode() & 0o077 != 0 {
        return Err(bad(
            setting,
            format!(
                "{} can be read by others than its owner: chmod 600 it",
                path.display()
            ),
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad(setting, format!("{} cannot be read: {e}", path.display())))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(SecretString::from)
        .collect())
}

fn proxies(text: &str) -> Result<TrustedProxies, String> {
    TrustedProxies::parse(text)
}

pub(crate) fn secret(text: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(text))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn settings() -> Settings {
        let mut s = Settings::new("postgres://localhost/test", "127.0.0.1:0".parse().unwrap());
        s.outbox_dir = std::env::temp_dir().join(format!("homeward-outbox-{}", std::process::id()));
        s
    }

    /// Every server waits for each answer's access audit entries: no flag or variable turns
    /// that off (only the benchmark, in code, for its baseline).
    #[test]
    fn no_flag_turns_the_access_audit_off() {
        assert!(settings().audit_each_answer);
        for flag in [
            "--audit-each-answer=false",
            "--audit-each-answer",
            "--no-audit",
        ] {
            let parsed = Settings::augment_args(clap::Command::new("homeward serve"))
                .no_binary_name(true)
                .try_get_matches_from([flag]);
            assert!(parsed.is_err(), "{flag} is not a flag of the server");
        }
    }

    fn refused(settings: &Settings) -> String {
        settings.validate().unwrap_err().to_string()
    }

    #[test]
    fn the_defaults_are_valid_and_come_from_one_place() {
        let s = settings();
        s.validate().unwrap();
        assert_eq!(s.max_connections, 16);
        assert_eq!(
            s.append_flushes,
            homeward_store_postgres::DEFAULT_FLUSHES_IN_FLIGHT
        );
        assert_eq!(
            s.reminder_lease.0,
            homeward_engine::scheduler::DEFAULT_LEASE
        );
        assert_eq!(s.time_zone, "UTC");
        assert!(!s.no_scheduler);
        assert_eq!(s.link_days, 7);
        assert!(!s.allow_insecure_transport);
    }

    #[test]
    fn mail_and_links_without_tls_only_on_loopback_or_when_allowed() {
        let beyond = |smtp: &str, public: Option<&str>| {
            let mut s = settings();
            s.listen = "0.0.0.0:8080".parse().unwrap();
            s.smtp_url = Some(SecretString::from(smtp));
            s.public_url = public.map(str::to_owned);
            s
        };
        let https = Some("https://homeward.example.org");
        beyond("smtps://mail.example:465", https)
            .validate()
            .unwrap();
        beyond("smtp://mail.example:587?tls=required", https)
            .validate()
            .unwrap();
        for (smtp, public, named) in [
            ("smtp://mail.example:25", https, "SMTP_URL"),
            (
                "smtp://mail.example:25?tls=opportunistic",
                https,
                "SMTP_URL",
            ),
            (
                "smtps://mail.example:465",
                Some("http://homeward.example.org"),
                "HOMEWARD_PUBLIC_URL",
            ),
            ("smtps://mail.example:465", None, "HOMEWARD_PUBLIC_URL"),
        ] {
            let mut s = beyond(smtp, public);
            let message = refused(&s);
            assert!(message.starts_with(named), "{smtp} {public:?}: {message}");
            assert!(
                message.contains("HOMEWARD_ALLOW_INSECURE_TRANSPORT"),
                "{message}"
            );
            s.allow_insecure_transport = true;
            s.validate().unwrap();
            s.allow_insecure_transport = false;
            s.listen = "127.0.0.1:8080".parse().unwrap();
            s.validate().unwrap();
        }
    }

    #[test]
    fn each_bad_setting_is_named_with_what_is_allowed() {
        let mut s = settings();
        s.link_days = 0;
        assert!(refused(&s).contains("HOMEWARD_LINK_DAYS (--link-days): must be 1 to 90 days"));
        s.link_days = 365;
        assert!(refused(&s).contains("HOMEWARD_LINK_DAYS"));

        let mut s = settings();
        s.database_url = SecretString::from("mysql://root:hunter2@db/x");
        let message = refused(&s);
        assert!(message.starts_with("DATABASE_URL"), "{message}");
        assert!(!message.contains("hunter2"), "no secret in {message}");
        for kept_nowhere in ["sqlite::memory:", "sqlite://data/homeward.db?mode=ro"] {
            s.database_url = SecretString::from(kept_nowhere);
            let message = refused(&s);
            assert!(
                message.starts_with("DATABASE_URL: sqlite:// must name a database file"),
                "{kept_nowhere}: {message}"
            );
        }
        s.database_url = SecretString::from("postgres://homeward:hunter2@db:port/x");
        let message = refused(&s);
        assert!(
            message.starts_with("DATABASE_URL: not a PostgreSQL URL"),
            "{message}"
        );
        assert!(!message.contains("hunter2"), "no secret in {message}");

        let mut s = settings();
        s.max_connections = 0;
        assert!(refused(&s)
            .contains("HOMEWARD_DB_CONNECTIONS (--db-connections): must be 1 to 1000; it is 0"));
        s.max_connections = 5000;
        assert!(refused(&s).contains("HOMEWARD_DB_CONNECTIONS"));

        let mut s = settings();
        s.append_flushes = 65;
        assert!(refused(&s).contains("HOMEWARD_APPEND_FLUSHES"));

        let mut s = settings();
        assert_eq!(s.audit_gather_ms, 1, "a batch of audit entries waits 1 ms");
        s.audit_gather_ms = 0;
        s.validate().unwrap();
        s.audit_gather_ms = 101;
        assert!(refused(&s).contains(
            "HOMEWARD_AUDIT_GATHER_MS (--audit-gather-ms): must be 0 to 100 milliseconds; it is 101"
        ));

        let mut s = settings();
        s.time_zone = "Mars/Olympus".into();
        assert!(refused(&s).contains(
            "HOMEWARD_TIME_ZONE (--time-zone): \"Mars/Olympus\" is not an IANA time zone"
        ));

        let mut s = settings();
        s.link_secret = Some(SecretString::from("short"));
        let message = refused(&s);
        assert!(message.contains("HOMEWARD_LINK_SECRET"), "{message}");
        assert!(!message.contains("short\""), "{message}");

        let mut s = settings();
        s.reminder_renewal = Seconds(Duration::from_secs(40));
        assert!(refused(&s).contains("HOMEWARD_REMINDER_RENEW_SECS"));

        let mut s = settings();
        s.smtp_url = Some(SecretString::from("smtp://localhost:25"));
        s.smtp_timeout = Seconds(s.reminder_lease.0);
        assert!(refused(&s).contains("HOMEWARD_SMTP_TIMEOUT_SECS"));

        let mut s = settings();
        s.public_url = Some("homeward.example.org".into());
        assert!(refused(&s).contains("HOMEWARD_PUBLIC_URL"));
    }

    #[test]
    fn an_outbox_that_cannot_be_written_is_refused_unless_mail_goes_by_smtp() {
        let file =
            std::env::temp_dir().join(format!("homeward-not-a-folder-{}", std::process::id()));
        std::fs::write(&file, b"").unwrap();
        let mut s = settings();
        s.outbox_dir = file.join("outbox");
        let message = refused(&s);
        assert!(
            message.starts_with("HOMEWARD_OUTBOX (--outbox): the folder"),
            "{message}"
        );
        s.smtp_url = Some(SecretString::from("smtp://localhost:25"));
        s.validate().unwrap();
        std::fs::remove_file(&file).unwrap();
    }

    #[test]
    fn the_master_key_comes_from_the_environment_or_a_file_of_the_owners_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let mut s = Settings::new("postgres://localhost/test", "127.0.0.1:0".parse().unwrap());
        let key = MasterKey::generate();
        s.master_key = Some(key.to_base64().into());
        let (read, created) = s.master_key().unwrap();
        assert!(!created);
        assert_eq!(read.check_value(), key.check_value());
        s.master_key = Some("too short".into());
        let refused = s.master_key().unwrap_err().to_string();
        assert!(refused.contains("HOMEWARD_MASTER_KEY"), "{refused}");
        assert!(s.validate().is_err());

        let dir = std::env::temp_dir().join(format!("homeward-keys-{}", uuid::Uuid::new_v4()));
        let file = dir.join("keys").join("master.key");
        create_key_file(&file, &key).unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(file.parent().unwrap()), 0o700);
        // Never overwritten.
        assert!(create_key_file(&file, &MasterKey::generate()).is_err());
        s.master_key_file = Some(file.clone());
        let both = s.master_key().unwrap_err().to_string();
        assert!(both.contains("not both"), "{both}");
        s.master_key = None;
        assert_eq!(s.master_key().unwrap().0.check_value(), key.check_value());
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let open = s.master_key().unwrap_err().to_string();
        assert!(open.contains("chmod 600"), "{open}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn link_keys_come_from_the_environment_or_a_file_of_the_owners_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let keys = |s: &Settings| -> Vec<String> {
            s.link_keys()
                .unwrap()
                .unwrap_or_default()
                .iter()
                .map(|k| k.expose_secret().to_owned())
                .collect()
        };
        assert_eq!(settings().link_keys().unwrap().map(|k| k.len()), None);

        let mut s = settings();
        s.link_secret = Some(SecretString::from("the key of this year"));
        s.link_previous_secrets = Some(SecretString::from(
            "the key of last year, the key of two years ago",
        ));
        assert_eq!(
            keys(&s),
            [
                "the key of this year",
                "the key of last year",
                "the key of two years ago"
            ]
        );
        s.link_previous_secrets = Some(SecretString::from("the key of last year,short"));
        let message = refused(&s);
        assert!(
            message.starts_with(
                "HOMEWARD_LINK_PREVIOUS_SECRETS (--link-previous-secrets): previous key 2"
            ),
            "{message}"
        );

        let mut s = settings();
        s.link_previous_secrets = Some(SecretString::from("the key of last year"));
        assert!(refused(&s).contains("need the current one"));

        let file = std::env::temp_dir().join(format!("homeward-link-keys-{}", std::process::id()));
        std::fs::write(
            &file,
            "# rotated 2026-12-01\nthe key of this year\n\nthe key of last year\n",
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut s = settings();
        s.link_secret_file = Some(file.clone());
        assert_eq!(keys(&s), ["the key of this year", "the key of last year"]);
        s.link_secret = Some(SecretString::from("the key of this year"));
        assert!(refused(&s).contains("not both"));
        s.link_secret = None;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let message = refused(&s);
        assert!(message.contains("chmod 600"), "{message}");
        std::fs::remove_file(&file).unwrap();
        assert!(refused(&s).contains("cannot be read"));
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let mut s = settings();
        s.database_url = SecretString::from("postgres://homeward:hunter2@db/homeward");
        s.link_secret = Some(SecretString::from("a-link-secret-of-enough-length"));
        s.smtp_url = Some(SecretString::from("smtps://mail:mailpass@smtp.example:465"));
        let debug = format!("{s:?}");
        for secret in ["hunter2", "a-link-secret", "mailpass"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
    }
}
