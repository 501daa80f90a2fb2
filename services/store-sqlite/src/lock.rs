//! One server per database file: a lock taken on a file beside it, held while the server runs.
//! The operating system lets it go when the process ends, however it ends.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// The lock of a database file, held while this value lives.
#[derive(Debug)]
pub struct ServerLock {
    _file: File,
    path: PathBuf,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another Homeward server is using {database} (its lock {lock} is held): only one \
         server may serve a SQLite database; stop the other one, or use PostgreSQL \
         (DATABASE_URL=postgres://...) to run several replicas"
    )]
    Held { database: String, lock: String },
    #[error("cannot open the lock file {lock}: {source}")]
    Io {
        lock: String,
        source: std::io::Error,
    },
}

impl ServerLock {
    /// Takes the lock of `database` (the file `<database>.lock`), or says who holds it.
    pub fn take(database: &Path) -> Result<Self, LockError> {
        let mut name = database.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| LockError::Io {
                lock: path.display().to_string(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file, path }),
            Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Held {
                database: database.display().to_string(),
                lock: path.display().to_string(),
            }),
            Err(std::fs::TryLockError::Error(source)) => Err(LockError::Io {
                lock: path.display().to_string(),
                source,
            }),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
