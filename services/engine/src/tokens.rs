//! API tokens: issued for a party and role, stored as a hash, checked on every request.

use chrono::{DateTime, Duration, Utc};
use homeward_store::reads::{NewToken, ReadModels};
use homeward_store::StoreError;
use homeward_workflows::party::PartyRole;
use homeward_workflows::PartyId;
use sha2::{Digest, Sha256};
use thiserror::Error;
use uuid::Uuid;

use crate::authz::Viewer;

/// Tokens start with this, so that a leaked one is easy to recognise (and to scan for).
pub const TOKEN_PREFIX: &str = "hw_";

/// How long a token is valid unless asked otherwise.
pub const DEFAULT_TOKEN_DAYS: i64 = 90;

/// The longest a token may live unless the server says otherwise (`HOMEWARD_TOKEN_MAX_DAYS`):
/// a stolen token stops working within a year at most.
pub const DEFAULT_MAX_TOKEN_DAYS: i64 = 365;

#[derive(Debug, Error)]
pub enum TokenError {
    #[error("no party {0} is registered: register the party first")]
    UnknownParty(Uuid),
    #[error("party {party} is registered as {registered}, not {asked}: a token carries the party's own role")]
    RoleMismatch {
        party: Uuid,
        registered: String,
        asked: &'static str,
    },
    #[error("a token must be valid for 1 to {max} days (HOMEWARD_TOKEN_MAX_DAYS), not {days}")]
    BadLifetime { days: i64, max: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A token just created: the secret is shown once and never stored.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token_id: Uuid,
    pub secret: String,
    pub expires_at: DateTime<Utc>,
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// What a token is asked for.
#[derive(Debug, Clone, Copy)]
pub struct TokenRequest {
    pub party: PartyId,
    pub role: PartyRole,
    /// Days it is valid for, at most `max_days`.
    pub days: i64,
    pub max_days: i64,
    /// The admin asking through the API; `None` on the server's command line.
    pub issued_by: Option<PartyId>,
}

/// Creates a token as asked.
pub async fn issue(
    reads: &dyn ReadModels,
    request: TokenRequest,
    now: DateTime<Utc>,
) -> Result<IssuedToken, TokenError> {
    let TokenRequest {
        party,
        role,
        days,
        max_days,
        issued_by,
    } = request;
    if !(1..=max_days).contains(&days) {
        return Err(TokenError::BadLifetime {
            days,
            max: max_days,
        });
    }
    let registered = reads
        .parties_by_id(&[party.0])
        .await?
        .into_iter()
        .next()
        .ok_or(TokenError::UnknownParty(party.0))?;
    if registered.role != role.as_str() {
        return Err(TokenError::RoleMismatch {
            party: party.0,
            registered: registered.role,
            asked: role.as_str(),
        });
    }
    // Two v4 UUIDs: 244 random bits from the operating system's generator.
    let secret = format!(
        "{TOKEN_PREFIX}{}{}",
        Uuid::new_v4().simple(),
        Uuid::new_v4().simple()
    );
    let token = NewToken {
        token_id: Uuid::new_v4(),
        token_hash: hash(&secret),
        party_id: party.0,
        role: role.as_str().to_owned(),
        issued_at: now,
        issued_by: issued_by.map(|p| p.0),
        expires_at: now + Duration::days(days),
    };
    reads.insert_token(&token).await?;
    Ok(IssuedToken {
        token_id: token.token_id,
        secret,
        expires_at: token.expires_at,
    })
}

/// A token that stands: who it is for, which token, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub viewer: Viewer,
    pub token_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// The viewer a bearer token stands for; `None` when it is unknown, expired or revoked.
pub async fn authenticate(
    reads: &dyn ReadModels,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<Option<Viewer>, StoreError> {
    Ok(check(reads, secret, now).await?.map(|a| a.viewer))
}

/// As [`authenticate`], with the token's id and expiry: what an open socket follows.
pub async fn check(
    reads: &dyn ReadModels,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<Option<Authenticated>, StoreError> {
    if !secret.starts_with(TOKEN_PREFIX) || secret.len() > 128 {
        return Ok(None);
    }
    let Some(owner) = reads.token_owner(&hash(secret), now).await? else {
        return Ok(None);
    };
    // The role is the token's; it matched the party's when issued. A party whose role changed
    // since keeps only the narrower of the two: here, none unless they still agree.
    if owner.role != owner.party.role {
        return Ok(None);
    }
    let Some(role) = PartyRole::parse(&owner.role) else {
        return Ok(None);
    };
    // When it was last used, to the hour: written once an hour, not on every request.
    let hour = hour_of(now);
    if owner.last_used_at.is_none_or(|used| used < hour) {
        if let Err(e) = reads.record_token_use(owner.token_id, hour).await {
            tracing::warn!(error = %e, "a token's use was not recorded");
        }
    }
    Ok(Some(Authenticated {
        viewer: Viewer {
            party: PartyId(owner.party.party_id),
            role,
            organisation: homeward_workflows::OrganisationId(owner.party.organisation),
        },
        token_id: owner.token_id,
        expires_at: owner.expires_at,
    }))
}

/// The start of the hour `at` falls in.
fn hour_of(at: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::{DurationRound as _, TimeDelta};
    at.duration_trunc(TimeDelta::hours(1)).unwrap_or(at)
}
