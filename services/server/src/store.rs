//! The one place a backend is opened, from `DATABASE_URL`: everything else uses it through the
//! store's port ([`Backend`]).
//!
//! `sqlite://path` (the default, `sqlite://data/homeward.db`) is a file that one server serves;
//! `postgres://...` is a PostgreSQL database that any number of replicas share.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use homeward_store::Backend;
use homeward_store_postgres::PgStore;
use homeward_store_sqlite::{ServerLock, SqliteStore};
use secrecy::{ExposeSecret as _, SecretString};

/// Where Homeward keeps its data when `DATABASE_URL` names nothing else.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/homeward.db";

/// Where `homeward demo` loads its sample when `DATABASE_URL` names nothing else: not the file
/// real work is kept in.
pub const DEMO_DATABASE_URL: &str = "sqlite://data/demo.db";

/// The file a `sqlite://` URL names, or `None` for another kind of URL.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    (url.starts_with("sqlite:")).then(|| homeward_store_sqlite::path_of(url))
}

/// An open backend, and for a SQLite file the lock that keeps other servers off it.
#[derive(Debug)]
pub struct Opened {
    pub backend: Arc<dyn Backend>,
    /// Held while serving a SQLite file (released when dropped, or when the process ends).
    pub lock: Option<ServerLock>,
    /// True for a SQLite file: a single server, which bootstraps an empty database itself.
    pub embedded: bool,
}

/// How a command opens its database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Serving (or loading the demo): a SQLite file is created if missing and locked, so that
    /// a second server is refused before it touches it.
    Serve,
    /// A command that may start a database (`migrate`, `bootstrap`): created if missing.
    Create,
    /// A command that loads a whole database (`import`): created if missing and locked, so
    /// that no server starts on it meanwhile.
    Load,
    /// A command on a database that must exist (`token`, `export`, `keys`, `projections`): a
    /// missing SQLite file is an error, not a new empty database.
    Existing,
}

/// Opens the backend `url` names for a command that does not serve, with at most
/// `max_connections` connections and `flushes` group-commit transactions in flight.
pub async fn open(
    url: &SecretString,
    max_connections: u32,
    flushes: usize,
    access: Access,
) -> anyhow::Result<Opened> {
    connect(url, max_connections, flushes, access).await
}

/// Opens the backend to serve it (see [`Access::Serve`]).
pub async fn open_for_serving(
    url: &SecretString,
    max_connections: u32,
    flushes: usize,
) -> anyhow::Result<Opened> {
    connect(url, max_connections, flushes, Access::Serve).await
}

async fn connect(
    url: &SecretString,
    max_connections: u32,
    flushes: usize,
    access: Access,
) -> anyhow::Result<Opened> {
    if let Some(file) = sqlite_file(url.expose_secret()) {
        return open_sqlite(&file, max_connections, access).await;
    }
    let store = PgStore::connect_with_flushes(url.expose_secret(), max_connections, flushes)
        .await
        .context("connecting to PostgreSQL (check DATABASE_URL)")?;
    Ok(Opened {
        backend: Arc::new(store),
        lock: None,
        embedded: false,
    })
}

async fn open_sqlite(file: &Path, readers: u32, access: Access) -> anyhow::Result<Opened> {
    if access == Access::Existing && !file.is_file() {
        let shown = std::path::absolute(file).unwrap_or_else(|_| file.to_owned());
        anyhow::bail!(
            "DATABASE_URL: there is no database at {} (run the command in the folder that holds \
             data/, or set DATABASE_URL=sqlite://path/to/homeward.db)",
            shown.display()
        );
    }
    if let Some(folder) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).with_context(|| {
            format!(
                "DATABASE_URL: cannot create the folder {} for the database",
                folder.display()
            )
        })?;
    }
    let lock = match access {
        Access::Serve | Access::Load => Some(ServerLock::take(file).context("DATABASE_URL")?),
        Access::Create | Access::Existing => None,
    };
    let store = SqliteStore::open(file, readers.min(8))
        .await
        .with_context(|| {
            format!(
                "DATABASE_URL: cannot open {} as a SQLite database (is it one, and not damaged? \
                 restore a backup, or name another file)",
                file.display()
            )
        })?;
    Ok(Opened {
        backend: Arc::new(store),
        lock,
        embedded: true,
    })
}
