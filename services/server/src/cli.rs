//! Command-line interface.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use homeward_engine::{CommandHandler, CommandMeta, SystemClock};
use homeward_store::reads::ReadModels;
use homeward_store::PgStore;
use homeward_workflows::party::{Party, PartyCommand, PartyDetails, PartyRole};

#[derive(Debug, Parser)]
#[command(
    name = "homeward",
    version,
    about = "Event-sourced return and reintegration plans"
)]
pub struct Cli {
    /// PostgreSQL connection URL, e.g. postgres://user@localhost/homeward
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Log as JSON lines instead of text.
    #[arg(long, env = "HOMEWARD_LOG_JSON", global = true)]
    pub log_json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the GraphQL API (POST /graphql; GraphiQL on GET; subscriptions over WebSocket).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "HOMEWARD_LISTEN", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Largest request body accepted, in bytes.
        #[arg(long, env = "HOMEWARD_MAX_BODY_BYTES", default_value_t = crate::app::DEFAULT_MAX_BODY_BYTES)]
        max_body_bytes: usize,
        /// Database connections in the pool.
        #[arg(long, env = "HOMEWARD_DB_CONNECTIONS", default_value_t = 16)]
        db_connections: u32,
        /// Group-commit transactions in flight at once, each on a connection of its own. Fewer
        /// make larger batches, more let small ones go at once.
        #[arg(long, env = "HOMEWARD_APPEND_FLUSHES", default_value_t = homeward_store::DEFAULT_FLUSHES_IN_FLIGHT as u16, value_parser = clap::value_parser!(u16).range(1..=64))]
        append_flushes: u16,
        /// SMTP server for reminders: smtp://host:port, smtp://user:pass@host:587?tls=required
        /// (STARTTLS) or smtps://user:pass@host:465 (TLS). Without it, reminders are written as
        /// .eml files to the outbox folder.
        #[arg(long, env = "SMTP_URL", hide_env_values = true)]
        smtp_url: Option<String>,
        /// Folder for .eml files when no SMTP server is set.
        #[arg(long, env = "HOMEWARD_OUTBOX", default_value = "data/outbox")]
        outbox: std::path::PathBuf,
        /// The sender of reminders.
        #[arg(
            long,
            env = "HOMEWARD_MAIL_FROM",
            default_value = "Homeward <homeward@localhost>"
        )]
        mail_from: String,
        /// SMTP connections in the pool: how many reminders are sent at once.
        #[arg(long, env = "HOMEWARD_SMTP_CONNECTIONS", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
        smtp_connections: u32,
        /// Seconds one message may take (connect, greeting and every command) before it counts as
        /// failed and is retried later; must be shorter than the reminder lease.
        #[arg(long, env = "HOMEWARD_SMTP_TIMEOUT_SECS", default_value_t = homeward_engine::mail::DEFAULT_SMTP_TIMEOUT.as_secs_f64(), value_parser = seconds)]
        smtp_timeout_secs: f64,
        /// Seconds a worker's claim on a due reminder lasts unless renewed: how long a dead
        /// replica's reminders wait, at most, before another replica sends them.
        #[arg(long, env = "HOMEWARD_REMINDER_LEASE_SECS", default_value_t = homeward_engine::scheduler::DEFAULT_LEASE.as_secs_f64(), value_parser = seconds)]
        reminder_lease_secs: f64,
        /// Seconds between renewals of the claims a worker is sending; at most half the lease.
        #[arg(long, env = "HOMEWARD_REMINDER_RENEW_SECS", default_value_t = homeward_engine::scheduler::DEFAULT_RENEWAL.as_secs_f64(), value_parser = seconds)]
        reminder_renew_secs: f64,
        /// Hours an idempotency key is remembered: a request repeated with the same key within
        /// them gets the first result.
        #[arg(long, env = "HOMEWARD_IDEMPOTENCY_HOURS", default_value_t = homeward_graphql::DEFAULT_IDEMPOTENCY_HOURS as u32, value_parser = clap::value_parser!(u32).range(1..=8760))]
        idempotency_hours: u32,
        /// Seconds a command without expectedVersion keeps retrying while other replicas write
        /// the same plan, before it answers BUSY (nothing written, send it again).
        #[arg(long, env = "HOMEWARD_COMMAND_DEADLINE_SECS", default_value_t = homeward_engine::DEFAULT_RETRY_DEADLINE.as_secs_f64(), value_parser = seconds)]
        command_deadline_secs: f64,
        /// Do not run the reminder worker in this process (another replica does).
        #[arg(long, env = "HOMEWARD_NO_SCHEDULER")]
        no_scheduler: bool,
        /// The address partners reach this server at, for the links in their reminders, e.g.
        /// https://homeward.example.org (default: http://<listen>).
        #[arg(long, env = "HOMEWARD_PUBLIC_URL")]
        public_url: Option<String>,
        /// The key that signs partner links, at least 16 characters; by default one kept in the
        /// database and shared by every replica.
        #[arg(long, env = "HOMEWARD_LINK_SECRET", hide_env_values = true)]
        link_secret: Option<String>,
    },
    /// On an empty database: create the first admin party and print its token.
    Bootstrap {
        /// The admin's email address.
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "Administrator")]
        name: String,
        #[arg(long, default_value = "Homeward")]
        organisation: String,
        /// ISO 3166 alpha-2 code.
        #[arg(long, default_value = "GB")]
        country: String,
        #[arg(long, default_value = "en")]
        language: String,
        #[arg(long, default_value = "UTC")]
        time_zone: String,
    },
    /// Create or revoke API tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Apply the database migrations (also done on start by the commands that need them).
    Migrate,
    /// Manage the read models.
    Projections {
        #[command(subcommand)]
        action: ProjectionsAction,
    },
}

/// A number of seconds, fractions allowed (`0.5`), more than zero and at most a day.
fn seconds(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Ok(s),
        _ => Err(format!(
            "{text:?} is not a number of seconds between 0 and 86400 (e.g. 30 or 0.5)"
        )),
    }
}

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Create a token for a party; printed once, stored hashed.
    Create {
        #[arg(long)]
        party: homeward_workflows::PartyId,
        /// social_worker, supervisor, government_liaison, partner_contact or admin: the
        /// party's registered role.
        #[arg(long)]
        role: String,
        /// Days until it expires.
        #[arg(long, default_value_t = homeward_engine::tokens::DEFAULT_TOKEN_DAYS)]
        days: i64,
    },
    /// Revoke a token at once, by the id printed when it was created.
    Revoke { token_id: uuid::Uuid },
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsAction {
    /// Recompute every read model from the event log.
    Rebuild,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let url = cli
        .database_url
        .context("set DATABASE_URL (or --database-url) to a PostgreSQL connection URL")?;
    match cli.command {
        Command::Serve {
            listen,
            max_body_bytes,
            db_connections,
            append_flushes,
            smtp_url,
            outbox,
            mail_from,
            smtp_connections,
            smtp_timeout_secs,
            reminder_lease_secs,
            reminder_renew_secs,
            idempotency_hours,
            command_deadline_secs,
            no_scheduler,
            public_url,
            link_secret,
        } => {
            let mut settings = crate::app::Settings::new(url, listen);
            settings.max_body_bytes = max_body_bytes;
            settings.max_connections = db_connections;
            settings.append_flushes = usize::from(append_flushes);
            settings.smtp_url = smtp_url;
            settings.outbox_dir = outbox;
            settings.mail_from = mail_from;
            settings.smtp_connections = smtp_connections;
            settings.smtp_timeout = Duration::from_secs_f64(smtp_timeout_secs);
            settings.reminder_lease = Duration::from_secs_f64(reminder_lease_secs);
            settings.reminder_renewal = Duration::from_secs_f64(reminder_renew_secs);
            settings.idempotency_retention =
                Duration::from_secs(u64::from(idempotency_hours) * 3600);
            settings.command_deadline = Duration::from_secs_f64(command_deadline_secs);
            settings.scheduler = !no_scheduler;
            settings.public_url = public_url;
            settings.link_secret = link_secret;
            let app = crate::app::Application::build(settings).await?;
            app.run_until_stopped(crate::app::shutdown_signal()).await?;
        }
        Command::Bootstrap {
            email,
            name,
            organisation,
            country,
            language,
            time_zone,
        } => {
            let store = connect(&url, 2).await?;
            store.migrate().await.context("applying migrations")?;
            let details = PartyDetails {
                display_name: name,
                email,
                role: PartyRole::Admin,
                organisation,
                country,
                language,
                time_zone,
                supervisor: None,
            };
            let (party, token) = bootstrap(store, details).await?;
            println!("admin party: {party}");
            print_token(&token);
        }
        Command::Token { action } => {
            let store = connect(&url, 2).await?;
            store.migrate().await.context("applying migrations")?;
            match action {
                TokenAction::Create { party, role, days } => {
                    let role = PartyRole::parse(&role).with_context(|| {
                        format!(
                            "unknown role {role:?}: use social_worker, supervisor, \
                             government_liaison, partner_contact or admin"
                        )
                    })?;
                    let token = homeward_engine::tokens::issue(
                        &store,
                        party,
                        role,
                        days,
                        chrono::Utc::now(),
                    )
                    .await?;
                    print_token(&token);
                }
                TokenAction::Revoke { token_id } => {
                    if store.revoke_token(token_id).await? {
                        println!("token {token_id} revoked");
                    } else {
                        anyhow::bail!("no active token {token_id}");
                    }
                }
            }
        }
        Command::Migrate => {
            let store = connect(&url, 2).await?;
            store.migrate().await.context("applying migrations")?;
            println!("migrations applied");
        }
        Command::Projections {
            action: ProjectionsAction::Rebuild,
        } => {
            let store = connect(&url, 2).await?;
            store.migrate().await.context("applying migrations")?;
            let report = homeward_store::rebuild(store.pool())
                .await
                .context("rebuilding projections")?;
            println!(
                "rebuilt projections from {} events in {} streams: {} rows in {:.2?}",
                report.events, report.streams, report.rows, report.elapsed
            );
        }
    }
    Ok(())
}

fn print_token(token: &homeward_engine::tokens::IssuedToken) {
    println!("token id: {}", token.token_id);
    println!("expires:  {}", token.expires_at.to_rfc3339());
    println!("token:    {}", token.secret);
    println!("(shown once; send it as `Authorization: Bearer <token>`)");
}

/// Registers the first admin party and issues its token; refuses when any party exists.
pub async fn bootstrap(
    store: PgStore,
    details: PartyDetails,
) -> anyhow::Result<(
    homeward_workflows::PartyId,
    homeward_engine::tokens::IssuedToken,
)> {
    if store.party_count().await? > 0 {
        anyhow::bail!(
            "this database already has parties: an admin creates tokens with `homeward token create`"
        );
    }
    let party = homeward_workflows::PartyId::new();
    let handler = CommandHandler::new(Arc::new(store.clone()), Arc::new(SystemClock));
    handler
        .handle::<Party>(
            &party.stream_id(),
            &PartyCommand::Register {
                party_id: party,
                details,
            },
            CommandMeta::new(party),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let token = homeward_engine::tokens::issue(
        &store,
        party,
        PartyRole::Admin,
        homeward_engine::tokens::DEFAULT_TOKEN_DAYS,
        chrono::Utc::now(),
    )
    .await?;
    Ok((party, token))
}

async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgStore> {
    PgStore::connect(url, max_connections)
        .await
        .context("connecting to PostgreSQL (check DATABASE_URL)")
}

#[cfg(test)]
mod tests {
    use super::{Cli, Command};
    use clap::Parser;

    fn append_flushes(args: &[&str]) -> Result<u16, clap::Error> {
        let cli = Cli::try_parse_from(["homeward", "serve"].iter().chain(args))?;
        match cli.command {
            Command::Serve { append_flushes, .. } => Ok(append_flushes),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn group_commit_flushes_default_to_the_store_default_and_must_be_1_to_64() {
        assert_eq!(
            append_flushes(&[]).unwrap(),
            homeward_store::DEFAULT_FLUSHES_IN_FLIGHT as u16
        );
        assert_eq!(append_flushes(&["--append-flushes", "2"]).unwrap(), 2);
        for bad in ["0", "65", "two"] {
            let error = append_flushes(&["--append-flushes", bad]).unwrap_err();
            assert!(
                error.to_string().contains("--append-flushes"),
                "{bad}: {error}"
            );
        }
    }
}
