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

/// Opens the backend `url` names for a command that does not serve (SQLite files are shared
/// with a server running beside it), with at most `max_connections` connections and `flushes`
/// group-commit transactions in flight.
pub async fn open(
    url: &SecretString,
    max_connections: u32,
    flushes: usize,
) -> anyhow::Result<Arc<dyn Backend>> {
    Ok(connect(url, max_connections, flushes, false).await?.backend)
}

/// Opens the backend to serve it: a SQLite file is locked first, so that a second server is
/// refused before it touches the file.
pub async fn open_for_serving(
    url: &SecretString,
    max_connections: u32,
    flushes: usize,
) -> anyhow::Result<Opened> {
    connect(url, max_connections, flushes, true).await
}

async fn connect(
    url: &SecretString,
    max_connections: u32,
    flushes: usize,
    serving: bool,
) -> anyhow::Result<Opened> {
    if let Some(file) = sqlite_file(url.expose_secret()) {
        return open_sqlite(&file, max_connections, serving).await;
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

async fn open_sqlite(file: &Path, readers: u32, serving: bool) -> anyhow::Result<Opened> {
    if let Some(folder) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).with_context(|| {
            format!(
                "DATABASE_URL: cannot create the folder {} for the database",
                folder.display()
            )
        })?;
    }
    let lock = if serving {
        Some(ServerLock::take(file).context("DATABASE_URL")?)
    } else {
        None
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
