use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    /// The stream moved on since it was read: reload and decide again, or report to the caller.
    #[error("stream {stream_id} is at version {actual}, not the expected {expected}")]
    Conflict {
        stream_id: String,
        expected: u64,
        actual: u64,
    },
    /// The append's idempotency key was used within the retention (by another request, or by
    /// this one in a race): nothing was written.
    #[error("the idempotency key is already taken")]
    KeyTaken,
    /// The database's master key is not the one this server holds (it was rotated while the
    /// server ran): nothing was written.
    #[error(
        "the master key was changed (rotated) while this server ran: restart it with the new key"
    )]
    MasterKeyChanged,
    #[error("stored event could not be decoded: {0}")]
    Decode(#[from] homeward_workflows::upcast::DecodeError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unexpected answer from the database: {0}")]
    Unexpected(String),
}
