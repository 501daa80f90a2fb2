//! The web console's sign-in links and sessions. Only SHA-256 hashes of their secrets are
//! stored: a reader of the database cannot sign in with what it finds there.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::projection::PartyRow;
use crate::StoreError;

/// A sign-in link to store: emailed to its party, used once, briefly valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSignInLink {
    pub secret_hash: Vec<u8>,
    pub party_id: Uuid,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A session to store, started by a sign-in link or a pasted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub session_id: Uuid,
    pub secret_hash: Vec<u8>,
    pub party_id: Uuid,
    /// The token pasted to sign in: the session ends when it is revoked or expires.
    pub token_id: Option<Uuid>,
    pub started_at: DateTime<Utc>,
    /// The absolute end, however busy the session is.
    pub expires_at: DateTime<Utc>,
}

/// The party behind a session that stands.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionOwner {
    pub session_id: Uuid,
    pub token_id: Option<Uuid>,
    /// When it was last seen, as recorded (see [`ConsoleSessions::touch_session`]).
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    #[sqlx(flatten)]
    pub party: PartyRow,
}

#[async_trait]
pub trait ConsoleSessions: Send + Sync + 'static {
    /// The active parties with this email address (case ignored): whom a sign-in link for it
    /// goes to.
    async fn active_parties_with_email(&self, email: &str) -> Result<Vec<PartyRow>, StoreError>;

    /// Stores a sign-in link and withdraws the party's earlier unused ones.
    async fn insert_sign_in_link(&self, link: &NewSignInLink) -> Result<(), StoreError>;

    /// The party of the link with this hash if it stands at `now` (without using it).
    async fn sign_in_link_party(
        &self,
        secret_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError>;

    /// Uses the link with this hash if it stands (unused, not withdrawn, not expired at `now`):
    /// its party. A link is used once, however many ask at once.
    async fn use_sign_in_link(
        &self,
        secret_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError>;

    async fn insert_session(&self, session: &NewSession) -> Result<(), StoreError>;

    /// The owner of the session with this hash if it stands at `now`: not ended, before its
    /// absolute end, seen after `seen_after` (its idle limit), its party active and its token,
    /// if it has one, neither revoked nor expired.
    async fn session_owner(
        &self,
        secret_hash: &[u8],
        now: DateTime<Utc>,
        seen_after: DateTime<Utc>,
    ) -> Result<Option<SessionOwner>, StoreError>;

    /// Records that a session was seen at `at`, unless a later time is recorded.
    async fn touch_session(&self, session_id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Ends the session with this hash (signing out); false when none stood.
    async fn end_session(&self, secret_hash: &[u8], at: DateTime<Utc>) -> Result<bool, StoreError>;
}
