//! The one place a backend is opened, from `DATABASE_URL`: everything else uses it through the
//! store's port ([`Backend`]).

use std::sync::Arc;

use anyhow::Context as _;
use homeward_store::Backend;
use homeward_store_postgres::PgStore;
use secrecy::{ExposeSecret as _, SecretString};

/// Opens the backend `url` names, with at most `max_connections` connections and `flushes`
/// group-commit transactions in flight.
pub async fn open(
    url: &SecretString,
    max_connections: u32,
    flushes: usize,
) -> anyhow::Result<Arc<dyn Backend>> {
    let store = PgStore::connect_with_flushes(url.expose_secret(), max_connections, flushes)
        .await
        .context("connecting to PostgreSQL (check DATABASE_URL)")?;
    Ok(Arc::new(store))
}
