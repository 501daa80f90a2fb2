//! Queries on the read models for the API: plan lists, the task inbox, parties, and the API
//! tokens that say who is asking.
//!
//! Every list is narrowed by a scope the engine's authorisation decided ([`PlanScope`],
//! [`TaskScope`]); the store only applies it. Filters are optional and combined with AND. Pages
//! are `offset`/`limit`: the API turns the offset into an opaque cursor.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use homeward_workflows::plan::StepKind;
use homeward_workflows::PartyId;
use uuid::Uuid;

use crate::projection::{OrganisationRow, PartyRow, PersonRow, PlanRow, StepRow};
use crate::StoreError;

/// Which plans a viewer may list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanScope {
    /// Every plan of one organisation.
    Organisation(Uuid),
    /// Plans with a step assigned to this party (of these kinds, if given).
    AssignedTo {
        party: PartyId,
        kinds: Option<Vec<StepKind>>,
    },
}

/// Whose tasks an inbox shows, and within what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskScope {
    pub assignee: PartyId,
    /// Only steps of plans of this organisation.
    pub organisation: Option<Uuid>,
    /// Only steps of these kinds.
    pub kinds: Option<Vec<StepKind>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanFilter {
    pub statuses: Vec<String>,
    pub case_worker: Option<Uuid>,
    pub origin_country: Option<String>,
    /// Plans with (or without) a step past its due date at `now`.
    pub has_overdue_steps: Option<bool>,
    pub opened_from: Option<DateTime<Utc>>,
    pub opened_before: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    pub kinds: Vec<String>,
    /// Statuses; empty means the open ones (not done, not cancelled).
    pub statuses: Vec<String>,
    pub overdue: Option<bool>,
    pub due_from: Option<DateTime<Utc>>,
    pub due_before: Option<DateTime<Utc>>,
}

/// A survivor whose data her organisation's retention rule will erase: every plan of hers is
/// closed, and the retention period runs from the last closing.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UpcomingErasure {
    pub person_id: Uuid,
    pub last_closed_at: DateTime<Utc>,
    pub erase_at: DateTime<Utc>,
    /// Since when a legal hold stops the erasure, if one does.
    pub held_since: Option<DateTime<Utc>>,
}

/// A survivor with no plan under way (none at all, or only drafts beside closed ones) whom
/// nobody has touched for a long time: the retention rule does not erase her, a supervisor
/// decides.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PersonToReview {
    pub person_id: Uuid,
    /// When anything was last recorded about her or in one of her plans.
    pub last_activity_at: DateTime<Utc>,
    pub drafts: i64,
    pub held_since: Option<DateTime<Utc>>,
}

/// A page request: skip `offset` rows, return at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub offset: i64,
    pub limit: i64,
}

/// The party behind a valid token.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenOwner {
    pub token_id: Uuid,
    #[sqlx(rename = "token_role")]
    pub role: String,
    pub expires_at: DateTime<Utc>,
    /// The hour it was last used in, as recorded (see [`ReadModels::record_token_use`]).
    pub last_used_at: Option<DateTime<Utc>>,
    #[sqlx(flatten)]
    pub party: PartyRow,
}

/// A token to store: only its hash, never the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    pub token_id: Uuid,
    pub token_hash: Vec<u8>,
    pub party_id: Uuid,
    pub role: String,
    pub issued_at: DateTime<Utc>,
    /// The admin who issued it through the API; `None` for the server's command line.
    pub issued_by: Option<Uuid>,
    pub expires_at: DateTime<Utc>,
}

/// An invitation to store: only its secret's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInvitation {
    pub invitation_id: Uuid,
    pub secret_hash: Vec<u8>,
    pub party_id: Uuid,
    /// The admin who sent it.
    pub issued_by: Option<Uuid>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What is known of a token besides its secret: what a party and the admins may list.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenRecord {
    pub token_id: Uuid,
    pub party_id: Uuid,
    pub role: String,
    pub issued_at: DateTime<Utc>,
    pub issued_by: Option<Uuid>,
    pub expires_at: DateTime<Utc>,
    /// To the hour.
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The read side the API uses. Implemented by [`PgStore`] (and later by SQLite).
#[async_trait]
pub trait ReadModels: Send + Sync + 'static {
    /// One page of plans in scope, newest first.
    async fn plans(
        &self,
        scope: &PlanScope,
        filter: &PlanFilter,
        now: DateTime<Utc>,
        page: Page,
    ) -> Result<Vec<PlanRow>, StoreError>;

    /// One page of the inbox: open steps by due date, then follow-up date, then priority.
    async fn tasks(
        &self,
        scope: &TaskScope,
        filter: &TaskFilter,
        now: DateTime<Utc>,
        page: Page,
    ) -> Result<Vec<StepRow>, StoreError>;

    async fn plan_row(&self, plan_id: Uuid) -> Result<Option<PlanRow>, StoreError>;

    /// Every plan of a person, whatever its status (to erase them, or to keep them).
    async fn plans_of_person(&self, person: Uuid) -> Result<Vec<PlanRow>, StoreError>;

    async fn persons_by_id(&self, ids: &[Uuid]) -> Result<Vec<PersonRow>, StoreError>;

    /// Up to `limit` persons whose retention has ended at `now`: not erased, no legal hold, at
    /// least one plan and every plan closed, the last closed longer ago than the retention
    /// period of the organisation that registered them.
    async fn retention_ended(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Uuid>, StoreError>;

    /// One page of an organisation's persons whose retention ends before `until` (those on hold
    /// too), soonest first.
    async fn upcoming_erasures(
        &self,
        organisation: Uuid,
        until: DateTime<Utc>,
        page: Page,
    ) -> Result<Vec<UpcomingErasure>, StoreError>;

    /// One page of an organisation's persons not erased, with no plan under way (no plan, or
    /// drafts and closed plans with at least one draft) and nothing recorded about them since
    /// `before`; least recently touched first.
    async fn persons_to_review(
        &self,
        organisation: Uuid,
        before: DateTime<Utc>,
        page: Page,
    ) -> Result<Vec<PersonToReview>, StoreError>;

    /// Up to `limit` of an organisation's persons who have every one of `terms` in the blind
    /// index (none when `terms` is empty).
    async fn persons_matching(
        &self,
        organisation: Uuid,
        terms: &[Vec<u8>],
        limit: i64,
    ) -> Result<Vec<Uuid>, StoreError>;

    /// The plans in which `party` has a step assigned that is neither done nor cancelled:
    /// those whose events may change the party's inbox.
    async fn plans_with_open_steps_of(&self, party: Uuid) -> Result<Vec<Uuid>, StoreError>;

    async fn parties_by_id(&self, ids: &[Uuid]) -> Result<Vec<PartyRow>, StoreError>;

    /// One page of parties by name, optionally of one organisation.
    async fn parties(
        &self,
        organisation: Option<Uuid>,
        page: Page,
    ) -> Result<Vec<PartyRow>, StoreError>;

    async fn organisations_by_id(&self, ids: &[Uuid]) -> Result<Vec<OrganisationRow>, StoreError>;

    /// One page of organisations by name.
    async fn organisations(&self, page: Page) -> Result<Vec<OrganisationRow>, StoreError>;

    async fn party_count(&self) -> Result<i64, StoreError>;

    async fn insert_token(&self, token: &NewToken) -> Result<(), StoreError>;

    /// Revokes a token; false when no unrevoked token has that id. Announced to every
    /// [`Revocations`] listener of this database, in every replica.
    async fn revoke_token(&self, token_id: Uuid) -> Result<bool, StoreError>;

    /// Tokens revoked from now on, by any replica: what closes the sockets opened with them.
    async fn revocations(&self) -> Result<Box<dyn Revocations>, StoreError>;

    /// A party's tokens, the newest first, revoked and expired ones included.
    async fn tokens_of(&self, party: Uuid) -> Result<Vec<TokenRecord>, StoreError>;

    /// Revokes every token of a party that is not revoked yet, and announces each as
    /// [`ReadModels::revoke_token`] does; the ids revoked.
    async fn revoke_tokens_of(&self, party: Uuid) -> Result<Vec<Uuid>, StoreError>;

    /// Records that a token was used in the hour starting at `hour`, unless a later hour is
    /// recorded.
    /// Stores an invitation and withdraws the party's earlier unused ones.
    async fn insert_invitation(&self, invitation: &NewInvitation) -> Result<(), StoreError>;

    /// Uses the invitation with this hash if it stands (unused, not withdrawn, not expired at
    /// `now`): its party, once. Any later use finds nothing.
    async fn use_invitation(
        &self,
        secret_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError>;

    /// The party of the invitation with this hash if it stands at `now` (without using it).
    async fn invitation_party(
        &self,
        secret_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError>;

    /// Withdraws the party's unused invitations; how many.
    async fn withdraw_invitations_of(&self, party: Uuid) -> Result<u64, StoreError>;

    async fn record_token_use(&self, token_id: Uuid, hour: DateTime<Utc>)
        -> Result<(), StoreError>;

    /// The owner of an unrevoked, unexpired token with this hash.
    async fn token_owner(
        &self,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<TokenOwner>, StoreError>;
}

/// Revoked tokens as they are revoked (see [`ReadModels::revocations`]).
#[async_trait]
pub trait Revocations: Send + std::fmt::Debug {
    /// The id of the next token revoked. An error means some may have been missed (the
    /// connection was lost): the caller checks every token it holds again, then calls this
    /// again, which reconnects.
    async fn next(&mut self) -> Result<Uuid, StoreError>;
}
