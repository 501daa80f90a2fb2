//! The access audit: who read which survivor's personal data, when, which fields, through which
//! operation. Appended before the data is sent; read by the supervisors of the organisation that
//! registered her; never changed or deleted through the API.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::reads::Page;
use crate::StoreError;

/// One operation's reading of one person's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    pub at: DateTime<Utc>,
    /// Who read it.
    pub party: Uuid,
    pub person: Uuid,
    /// The fields read, by their paths (`full_name`, `contact.phone`, `step.title`).
    pub fields: Vec<String>,
    /// What read them: the API operation's root fields (`plan`, `personRecord`), a page, an
    /// export.
    pub operation: String,
}

#[async_trait]
pub trait AccessLog: Send + Sync + 'static {
    /// Appends entries, in one transaction.
    async fn record_access(&self, entries: &[AccessEntry]) -> Result<(), StoreError>;

    /// One page of a person's entries, newest first.
    async fn access_log(&self, person: Uuid, page: Page) -> Result<Vec<AccessEntry>, StoreError>;
}
