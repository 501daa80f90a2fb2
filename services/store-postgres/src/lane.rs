//! Connections of the store's own for the statement every API request makes first, the token
//! check: taken and given back without a round trip.
//!
//! sqlx's pool sends a round trip (a `Sync`) on every connection given back to it, to learn that
//! the connection is still usable; round trips, more than the statement's own work, are what the
//! token check costs (BENCHMARKS.md, "The GraphQL API"). The lane's connections are
//! [`Slot`]s, as group commit's are: opened when first needed, checked only after they sat
//! idle, and dropped after any error. A statement that fails on a connection the server ended is
//! sent once more on a new one: the lane carries reads only.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use sqlx::postgres::PgConnection;
use sqlx::PgPool;
use tokio::sync::Semaphore;

use crate::batch::Slot;

/// How many token checks run at once on a replica's lane.
const LANE_CONNECTIONS: usize = 4;

#[derive(Clone)]
pub(crate) struct Lane {
    pool: PgPool,
    idle: Arc<Mutex<Vec<Slot>>>,
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lane")
            .field("free", &self.permits.available_permits())
            .finish()
    }
}

impl Lane {
    pub(crate) fn new(pool: &PgPool) -> Self {
        Self {
            pool: pool.clone(),
            idle: Arc::new(Mutex::new(Vec::new())),
            permits: Arc::new(Semaphore::new(LANE_CONNECTIONS)),
        }
    }

    /// Runs `read` on one of the lane's connections; once more on a new connection if the
    /// first was broken.
    pub(crate) async fn read<T>(
        &self,
        read: impl for<'c> Fn(&'c mut PgConnection) -> BoxFuture<'c, Result<T, sqlx::Error>>,
    ) -> Result<T, sqlx::Error> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let taken = self.idle.lock().expect("never poisoned").pop();
        // A slot dropped with its future (a request cancelled mid-statement) closes its
        // connection; the next read opens another.
        let mut slot = taken.unwrap_or_else(|| Slot::new(&self.pool));
        let mut result = Self::on(&mut slot, &read).await;
        if matches!(&result, Err(e) if broken(e)) {
            result = Self::on(&mut slot, &read).await;
        }
        self.idle.lock().expect("never poisoned").push(slot);
        result
    }

    async fn on<T>(
        slot: &mut Slot,
        read: &impl for<'c> Fn(&'c mut PgConnection) -> BoxFuture<'c, Result<T, sqlx::Error>>,
    ) -> Result<T, sqlx::Error> {
        let result = match slot.connection().await {
            Ok(connection) => read(connection).await,
            Err(e) => Err(e),
        };
        if result.is_err() {
            slot.connection = None;
        }
        result
    }
}

/// Whether `e` says the connection is gone rather than that the statement failed: an I/O or
/// protocol error, a connection exception (SQLSTATE class 08) or the server ending the session
/// (57P01–57P05). Not a statement cancelled or timed out (57014): running it again would only
/// double its cost.
pub(crate) fn broken(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Io(_) | sqlx::Error::Protocol(_))
        || matches!(e, sqlx::Error::Database(db)
            if db.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P")))
}
