//! Command-line interface.

use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret as _, SecretString};

use crate::settings::Settings;
use homeward_engine::tokens::{self, TokenRequest};
use homeward_engine::{CommandHandler, CommandMeta, SystemClock};
use homeward_store::{Backend, EventStore};
use homeward_workflows::organisation::{Organisation, OrganisationCommand, OrganisationKind};
use homeward_workflows::party::{Party, PartyCommand, PartyDetails, PartyRole};
use homeward_workflows::OrganisationId;

#[derive(Debug, Parser)]
#[command(
    name = "homeward",
    version,
    about = "Event-sourced return and reintegration plans"
)]
pub struct Cli {
    /// The database: a SQLite file that one server serves (sqlite://data/homeward.db, the
    /// default), or PostgreSQL for several replicas (postgres://user@localhost/homeward).
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true, value_parser = crate::settings::secret,
        default_value = crate::store::DEFAULT_DATABASE_URL)]
    pub database_url: SecretString,

    /// Log as JSON lines instead of text.
    #[arg(long, env = "HOMEWARD_LOG_JSON", global = true)]
    pub log_json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the GraphQL API (POST /graphql; GraphiQL on GET; subscriptions over WebSocket).
    Serve(Settings),
    /// Print the settings `serve` would run with (secrets redacted), after checking them.
    Config(Settings),
    /// Load a sample programme (parties in three countries, a dozen plans at every stage) into
    /// an empty SQLite database (`data/demo.db` unless DATABASE_URL names another), print a
    /// token for each role, and serve it as `serve` does.
    Demo(Settings),
    /// On an empty database: create the first admin party and print its token.
    Bootstrap {
        /// The admin's email address.
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "Administrator")]
        name: String,
        /// The organisation the admin belongs to, registered with them: the programme that runs
        /// Homeward.
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
    /// Write the whole database to one file (JSON lines): the log as stored, personal fields
    /// still sealed, with what a rebuild cannot recompute (wrapped data keys, the search index,
    /// the access audit, idempotency records, server secrets). Tokens are not in it.
    Export {
        /// The new file to write (it must not exist).
        target: std::path::PathBuf,
    },
    /// Load an export into an empty database of either kind, then rebuild the read models.
    /// Start it with the master key the export's database was sealed under.
    Import {
        source: std::path::PathBuf,
        /// The master key (as for `serve`).
        #[arg(long, env = "HOMEWARD_MASTER_KEY", hide_env_values = true, value_parser = crate::settings::secret)]
        master_key: Option<SecretString>,
        /// A file holding the master key instead (as for `serve`; without either,
        /// `keys/master.key`).
        #[arg(long, env = "HOMEWARD_MASTER_KEY_FILE")]
        master_key_file: Option<std::path::PathBuf>,
    },
    /// Copy a SQLite database, consistent as of one moment, while the server runs (for
    /// PostgreSQL use pg_dump). The keys are not in the copy: back up `keys/` apart.
    Backup {
        /// The new file to write (it must not exist).
        target: std::path::PathBuf,
    },
    /// Manage the read models.
    Projections {
        #[command(subcommand)]
        action: ProjectionsAction,
    },
    /// Manage the master key of survivors' data.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Re-wrap every survivor's data key under a new master key, without touching an event.
    /// Stop every replica first; then start them with the new key (a replica still holding the
    /// old one stops at start, and stores no new key while it runs).
    Rotate {
        /// The current master key (as for `serve`).
        #[arg(long, env = "HOMEWARD_MASTER_KEY", hide_env_values = true, value_parser = crate::settings::secret)]
        master_key: Option<SecretString>,
        /// A file holding the current master key instead (as for `serve`; without either,
        /// `keys/master.key`).
        #[arg(long, env = "HOMEWARD_MASTER_KEY_FILE")]
        master_key_file: Option<std::path::PathBuf>,
        /// A file holding the new master key (32 bytes, base64; `openssl rand -base64 32`),
        /// readable by its owner only.
        #[arg(long)]
        new_key_file: std::path::PathBuf,
    },
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
        /// The longest a token may live, in days (as for `serve`).
        #[arg(long, env = "HOMEWARD_TOKEN_MAX_DAYS", default_value_t = homeward_engine::tokens::DEFAULT_MAX_TOKEN_DAYS)]
        max_days: i64,
    },
    /// Revoke a token at once, by the id printed when it was created.
    Revoke { token_id: uuid::Uuid },
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsAction {
    /// Recompute every read model from the event log.
    Rebuild,
}

/// Runs a parsed command line; `matches` are what it was parsed from (`config` prints them).
pub async fn run(cli: Cli, matches: &clap::ArgMatches) -> anyhow::Result<()> {
    let url = cli.database_url;
    match cli.command {
        Command::Serve(mut settings) => {
            settings.database_url = url;
            settings.validate()?;
            let app = crate::app::Application::build(settings).await?;
            if let Some(admin) = app.first_admin() {
                // Told once, on the terminal (not in the logs): it is not stored anywhere.
                println!("A new database: an admin was created to sign in with.");
                println!("admin party: {}", admin.party);
                println!("admin token: {}", admin.token);
                println!(
                    "Open http://{}/ and sign in with the token (paste it), or send it as \
                     `Authorization: Bearer <token>` to /graphql.",
                    app.local_addr()
                );
            }
            app.run_until_stopped(crate::app::shutdown_signal()).await?;
        }
        Command::Demo(mut settings) => {
            // Not the file `serve` keeps real work in: the sample's survivors are fictional.
            settings.database_url = if url.expose_secret() == crate::store::DEFAULT_DATABASE_URL {
                SecretString::from(crate::store::DEMO_DATABASE_URL)
            } else {
                url
            };
            settings.validate()?;
            crate::demo::run(settings).await?;
        }
        Command::Config(mut settings) => {
            settings.database_url = url;
            settings.validate()?;
            let matches = matches
                .subcommand_matches("config")
                .context("the config command's settings")?;
            for line in Settings::describe(matches) {
                println!("{line}");
            }
        }
        Command::Bootstrap {
            email,
            name,
            organisation,
            country,
            language,
            time_zone,
        } => {
            let store = connect_or_create(&url).await?;
            store.migrate().await.context("applying migrations")?;
            let details = PartyDetails {
                display_name: name,
                email,
                role: PartyRole::Admin,
                organisation: OrganisationId::new(),
                country,
                language,
                time_zone,
                supervisor: None,
            };
            let (party, token) = bootstrap(store, &organisation, details).await?;
            println!("admin party: {party}");
            print_token(&token);
        }
        Command::Token { action } => {
            let store = connect(&url).await?;
            store.migrate().await.context("applying migrations")?;
            match action {
                TokenAction::Create {
                    party,
                    role,
                    days,
                    max_days,
                } => {
                    let role = PartyRole::parse(&role).with_context(|| {
                        format!(
                            "unknown role {role:?}: use social_worker, supervisor, \
                             government_liaison, partner_contact or admin"
                        )
                    })?;
                    let request = TokenRequest {
                        party,
                        role,
                        days,
                        max_days,
                        issued_by: None,
                    };
                    let token = tokens::issue(store.as_ref(), request, chrono::Utc::now()).await?;
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
        Command::Keys {
            action:
                KeysAction::Rotate {
                    master_key,
                    master_key_file,
                    new_key_file,
                },
        } => {
            let (current, _) = crate::settings::read_master_key(
                master_key.as_ref(),
                master_key_file.as_deref(),
                false,
            )?;
            let (next, _) = crate::settings::read_master_key(None, Some(&new_key_file), false)?;
            if next.check_value() == current.check_value() {
                anyhow::bail!("the new master key is the current one: generate a new one");
            }
            let store = connect(&url).await?;
            store.migrate().await.context("applying migrations")?;
            let kept = store.master_key_check(&current.check_value()).await?;
            if kept != current.check_value() {
                anyhow::bail!(
                    "the current master key given is not this database's (its key check value \
                     differs): give the key the servers start with"
                );
            }
            let vault = homeward_engine::vault::Vault::new(current, store.clone());
            let count = vault
                .rotate(&next)
                .await
                .context("rotating the master key")?;
            println!(
                "re-wrapped {count} data keys under the new master key; start every replica with \
                 it now (HOMEWARD_MASTER_KEY_FILE={}), and keep the old key until no backup \
                 made before today is kept",
                new_key_file.display()
            );
        }
        Command::Export { target } => {
            let store = connect(&url).await?;
            store.migrate().await.context("applying migrations")?;
            let moved = crate::archive::export(store, &target).await?;
            println!(
                "exported {} events, {} survivors' keys and {} audit entries to {} (recorded in \
                 the access audit); personal data stays sealed: import it with the same master key",
                moved.events,
                moved.persons,
                moved.access_entries,
                target.display()
            );
        }
        Command::Import {
            source,
            master_key,
            master_key_file,
        } => {
            let (key, _) = crate::settings::read_master_key(
                master_key.as_ref(),
                master_key_file.as_deref(),
                false,
            )?;
            // Locked like a server's: none starts on it while it is loaded.
            let opened = crate::store::open(&url, 2, 1, crate::store::Access::Load).await?;
            let store = opened.backend;
            store.migrate().await.context("applying migrations")?;
            let moved = crate::archive::import(store, &source, &key.check_value()).await?;
            println!(
                "imported {} events, {} survivors' keys and {} audit entries from {}, and rebuilt \
                 the read models; parties sign in again (tokens are not moved)",
                moved.events,
                moved.persons,
                moved.access_entries,
                source.display()
            );
        }
        Command::Backup { target } => {
            let file = crate::store::sqlite_file(url.expose_secret()).context(
                "homeward backup copies a SQLite database; back up PostgreSQL with pg_dump \
                 (see Backups in the README)",
            )?;
            if !file.is_file() {
                anyhow::bail!("there is no database at {} to back up", file.display());
            }
            if target.exists() {
                anyhow::bail!("{} exists already: name a new file", target.display());
            }
            if let Some(folder) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(folder)
                    .with_context(|| format!("cannot create the folder {}", folder.display()))?;
            }
            let store = homeward_store_sqlite::SqliteStore::open(&file, 1).await?;
            store
                .backup(&target)
                .await
                .with_context(|| format!("copying {} to {}", file.display(), target.display()))?;
            println!(
                "copied {} to {}; the master and search keys are not in it: keep a copy of \
                 keys/ apart from it",
                file.display(),
                target.display()
            );
        }
        Command::Migrate => {
            let store = connect_or_create(&url).await?;
            store.migrate().await.context("applying migrations")?;
            println!("migrations applied");
        }
        Command::Projections {
            action: ProjectionsAction::Rebuild,
        } => {
            let store = connect(&url).await?;
            store.migrate().await.context("applying migrations")?;
            let report = store
                .rebuild_projections()
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

/// The first admin a new SQLite database gets, at `email` (her other details can be corrected
/// in the console).
pub fn first_admin_details(email: &str) -> PartyDetails {
    PartyDetails {
        display_name: "Administrator".into(),
        email: email.to_owned(),
        role: PartyRole::Admin,
        organisation: OrganisationId::new(),
        country: "GB".into(),
        language: "en".into(),
        time_zone: "UTC".into(),
        supervisor: None,
    }
}

/// Registers the first organisation (a programme named `organisation`, in the admin's country,
/// under the id `details.organisation`) and the first admin party in it, and issues the admin's
/// token; refuses when any party exists.
pub async fn bootstrap(
    store: Arc<dyn Backend>,
    organisation: &str,
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
    let handler = CommandHandler::new(store.clone() as Arc<dyn EventStore>, Arc::new(SystemClock));
    handler
        .handle::<Organisation>(
            &details.organisation.stream_id(),
            &OrganisationCommand::Register {
                organisation_id: details.organisation,
                name: organisation.to_owned(),
                kind: OrganisationKind::Programme,
                country: details.country.clone(),
            },
            CommandMeta::new(party),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
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
    let request = TokenRequest {
        party,
        role: PartyRole::Admin,
        days: tokens::DEFAULT_TOKEN_DAYS,
        max_days: tokens::DEFAULT_MAX_TOKEN_DAYS,
        issued_by: None,
    };
    let token = tokens::issue(store.as_ref(), request, chrono::Utc::now()).await?;
    Ok((party, token))
}

/// The backend for a one-off command on a database that must exist: two connections, one
/// group-commit flush.
async fn connect(url: &SecretString) -> anyhow::Result<Arc<dyn Backend>> {
    Ok(
        crate::store::open(url, 2, 1, crate::store::Access::Existing)
            .await?
            .backend,
    )
}

/// The backend for a command that may start a database (created if it is missing).
async fn connect_or_create(url: &SecretString) -> anyhow::Result<Arc<dyn Backend>> {
    Ok(crate::store::open(url, 2, 1, crate::store::Access::Create)
        .await?
        .backend)
}
