//! Erasing a survivor's data for good, without breaking the log (crypto-shredding).
//!
//! Her data key is destroyed first; then `person_erased` (which holds no personal data) is
//! appended to her stream. Every value sealed under the key, in the log, the read models, cached
//! states and the subscription backlog of every replica, is unreadable from then on and reads as
//! `[erased]`; the plans' facts (steps, dates, statuses) stay for the programme's figures. A
//! retry after a failure between the two finishes the erasure. Plans still open are closed
//! first, by the case team: an erasure must not silently end someone's return. A legal hold
//! stops every erasure until a supervisor lifts it.

use std::sync::Arc;

use homeward_store::person_keys::KeyErasure;
use homeward_store::reads::ReadModels;
use homeward_store::{EventStore, StoreError};
use homeward_workflows::person::{ErasureReason, Person, PersonCommand, PersonError};
use homeward_workflows::PersonId;
use thiserror::Error;

use crate::authz::{authorize, AccessDenied, Action, Viewer};
use crate::vault::{Vault, VaultError};
use crate::{CommandError, CommandHandler, CommandMeta, Handled};

#[derive(Debug, Error)]
pub enum ErasureError {
    #[error("no person with this id")]
    NotFound,
    #[error("this person's data was already erased on {0}; nothing was changed")]
    AlreadyErased(chrono::DateTime<chrono::Utc>),
    #[error(
        "this person has {0} plan(s) not yet closed: close them first (a draft too), then erase; \
         nothing was changed"
    )]
    OpenPlans(usize),
    #[error(
        "this person's data is on legal hold since {0}: lift the hold first; nothing was changed"
    )]
    OnLegalHold(chrono::DateTime<chrono::Utc>),
    #[error(transparent)]
    Denied(AccessDenied),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Command(#[from] CommandError<PersonError>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Erases `person`. `viewer` is who asks (a supervisor of the organisation that registered
/// her), or none when the programme's retention rule does.
pub async fn erase_person(
    handler: &CommandHandler<dyn EventStore>,
    reads: &Arc<dyn ReadModels>,
    vault: &Vault,
    viewer: Option<&Viewer>,
    person: PersonId,
    reason: ErasureReason,
    meta: CommandMeta,
) -> Result<Handled<Person>, ErasureError> {
    let stream = person.stream_id();
    let current = handler
        .load_latest::<Person>(&stream)
        .await?
        .state
        .ok_or(ErasureError::NotFound)?;
    if let Some(viewer) = viewer {
        // Another organisation's survivor is not theirs to know of.
        if viewer.organisation != current.organisation {
            return Err(ErasureError::NotFound);
        }
        authorize(
            viewer,
            Action::DecideErasure {
                registered_by: current.organisation,
            },
        )
        .map_err(ErasureError::Denied)?;
    }
    if let Some(at) = current.erased_at {
        return Err(ErasureError::AlreadyErased(at));
    }
    if let Some(hold) = &current.legal_hold {
        return Err(ErasureError::OnLegalHold(hold.placed_at));
    }
    let open = reads
        .plans_of_person(person.0)
        .await?
        .into_iter()
        .filter(|p| p.status != "closed")
        .count();
    if open > 0 {
        return Err(ErasureError::OpenPlans(open));
    }
    if vault.erase(person, handler.now()).await? == KeyErasure::Held {
        // A hold recorded since she was read.
        let since = handler
            .load_latest::<Person>(&stream)
            .await?
            .state
            .and_then(|p| p.legal_hold.as_ref().map(|h| h.placed_at))
            .unwrap_or_else(|| handler.now());
        return Err(ErasureError::OnLegalHold(since));
    }
    match handler
        .handle::<Person>(&stream, &PersonCommand::Erase { reason }, meta)
        .await
    {
        Ok(done) => {
            tracing::info!(person = %person.0, reason = ?reason, "a person's data was erased");
            Ok(done)
        }
        Err(CommandError::Rejected(PersonError::AlreadyErased)) => {
            let at = handler
                .load_latest::<Person>(&stream)
                .await?
                .state
                .and_then(|p| p.erased_at)
                .unwrap_or_else(|| handler.now());
            Err(ErasureError::AlreadyErased(at))
        }
        Err(e) => Err(e.into()),
    }
}
