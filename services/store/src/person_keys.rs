//! Each survivor's data key, kept only wrapped by the master key (the engine's `keys` module
//! wraps and unwraps; the store never sees a key in the clear).
//!
//! A person's key is stored before the first event sealed under it, and never replaced: two
//! replicas registering the same person at once end up with the one stored first. Erasing the
//! person destroys the wrapped key and keeps the row as a tombstone, so that a reader can tell
//! "erased" from "never had a key".

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::StoreError;

/// What is kept of a person's data key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonKey {
    /// The data key, wrapped by the master key.
    Wrapped(Vec<u8>),
    /// Destroyed when the person was erased: what was sealed under it is unreadable for good.
    Erased { at: DateTime<Utc> },
}

impl PersonKey {
    /// What a stored row says: the wrapped key, or when it was erased (a row with both or
    /// neither is not one a store writes).
    pub fn from_stored(
        wrapped: Option<Vec<u8>>,
        erased_at: Option<DateTime<Utc>>,
    ) -> Result<Self, StoreError> {
        match (wrapped, erased_at) {
            (Some(wrapped), None) => Ok(Self::Wrapped(wrapped)),
            (None, Some(at)) => Ok(Self::Erased { at }),
            _ => Err(StoreError::Unexpected(
                "a person key row is neither kept nor erased".into(),
            )),
        }
    }
}

/// What [`PersonKeys::erase_person_key`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyErasure {
    Destroyed,
    /// There was no key left to destroy (never had one, or erased already).
    NoneLeft,
    /// A legal hold keeps her data: nothing was destroyed.
    Held,
}

#[async_trait]
pub trait PersonKeys: Send + Sync + 'static {
    /// Keeps `wrapped` as `person`'s key unless they have one (or had one) already; returns
    /// what is kept, the earlier key if there was one. Only while `master_check` is the check
    /// value of the database's master key: a replica still running with a key rotated away
    /// stores nothing it could not read back ([`StoreError::MasterKeyChanged`]). On a database
    /// without a master key yet, `master_check` becomes its check value.
    async fn store_person_key(
        &self,
        person: Uuid,
        wrapped: &[u8],
        master_check: &[u8],
    ) -> Result<PersonKey, StoreError>;

    /// What is kept of `person`'s key, if they ever had one.
    async fn person_key(&self, person: Uuid) -> Result<Option<PersonKey>, StoreError>;

    /// What is kept of the keys of several persons at once (those who ever had one).
    async fn person_keys(&self, persons: &[Uuid]) -> Result<Vec<(Uuid, PersonKey)>, StoreError>;

    /// Rotation: re-wraps every kept key with `rewrap` (from the old master key to the new)
    /// and makes `new_check` the master key's check value, in one transaction, if the check
    /// value is `current_check`; returns how many keys were re-wrapped. No event is touched.
    async fn rewrap_person_keys(
        &self,
        current_check: &[u8],
        new_check: &[u8],
        rewrap: &(dyn for<'k> Fn(Uuid, &'k [u8]) -> Result<Vec<u8>, String> + Send + Sync),
    ) -> Result<u64, StoreError>;

    /// Destroys `person`'s wrapped key for good, and her blind-index terms with it, unless a
    /// legal hold is recorded for her: checked under the lock appends to her stream take, so no
    /// hold is recorded between the check and the destruction (and none can be sealed after
    /// it).
    async fn erase_person_key(
        &self,
        person: Uuid,
        at: DateTime<Utc>,
    ) -> Result<KeyErasure, StoreError>;
}
