//! Where survivors' data is sealed and opened: the one holder of the master key and of the
//! unwrapped data keys.
//!
//! The command handler seals every personal field of a new event (the paths
//! [`homeward_workflows::classification`] marks personal) under the person's key before the
//! event is stored, so the log, the read models and every cached state hold only sealed text.
//! The edges that show a value to someone entitled to it (the API, the partner pages) open it
//! here, one field at a time: a value that cannot be opened (altered, moved) is an error for that
//! field alone, and a value whose person was erased reads as [`Opened::Erased`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use homeward_store::person_keys::{KeyErasure, PersonKey, PersonKeys};
use homeward_store::{NewEvent, SearchTerms, StoreError};
use homeward_workflows::classification::{for_each_at, personal_paths};
use homeward_workflows::personal::looks_sealed;
use homeward_workflows::{FindableBy, PersonId, Personal};
use serde::de::DeserializeOwned;
use thiserror::Error;
use uuid::Uuid;

use crate::keys::{sealed_for, DataKey, KeyError, MasterKey, Place};

/// How many unwrapped keys a replica keeps in memory before it starts again from none.
const CACHED_KEYS: usize = 50_000;

#[derive(Debug, Error)]
pub enum VaultError {
    /// Nothing new can be recorded about an erased person.
    #[error("this person's data was erased: nothing more can be recorded about them")]
    Erased,
    #[error(
        "a data key cannot be unwrapped with this server's master key: \
         was the key changed without `homeward keys rotate`?"
    )]
    Unwrap(#[source] KeyError),
    /// A handler without a vault was asked to record personal data (a defect).
    #[error("this handler has no master key to seal survivors' data with")]
    NoVault,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// For a handler without a vault: refuses events that hold personal data.
pub fn refuse_unsealed(events: &[NewEvent]) -> Result<Sealed, VaultError> {
    if events
        .iter()
        .any(|e| personal_paths(&e.event_type).next().is_some())
    {
        return Err(VaultError::NoVault);
    }
    Ok(Sealed::default())
}

/// A personal value as the edge may show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened<T> {
    Value(T),
    /// The person was erased: the value is gone for good.
    Erased,
}

impl<T> Opened<T> {
    pub fn value(self) -> Option<T> {
        match self {
            Self::Value(v) => Some(v),
            Self::Erased => None,
        }
    }
}

impl Opened<String> {
    /// The text, or `[erased]` where the person's data was.
    pub fn text(self) -> String {
        match self {
            Self::Value(v) => v,
            Self::Erased => ERASED.to_owned(),
        }
    }
}

/// What sealing a command's events did.
#[derive(Debug, Default)]
pub struct Sealed {
    /// Whether any value was sealed (the events changed).
    pub any: bool,
    /// A person's new key, to store with the append (and its key, to know once it is stored).
    pub new_key: Option<(DataKey, homeward_store::NewPersonKey)>,
}

/// What a reader sees where an erased person's text was.
pub const ERASED: &str = "[erased]";

/// A value that cannot be opened: altered, moved from another place, or its key is damaged.
/// The rest of the record reads.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the {field} stored here cannot be read: it was altered or damaged (the rest of the record is unaffected); tell the people who run Homeward")]
pub struct Unreadable {
    pub field: String,
}

/// A person's key as known to this replica.
#[derive(Clone)]
enum Known {
    Key(DataKey),
    Erased,
}

pub struct Vault {
    master: MasterKey,
    keys: Arc<dyn PersonKeys>,
    known: Mutex<HashMap<Uuid, Known>>,
    /// The master key's check value (computed once: it is sent with every new key).
    check: Vec<u8>,
    /// False only in [`Vault::unsealed_baseline`].
    seals: bool,
    /// The blind index persons are found by; none, and nobody is indexed.
    index: Option<crate::search::BlindIndex>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").finish_non_exhaustive()
    }
}

impl Vault {
    pub fn new(master: MasterKey, keys: Arc<dyn PersonKeys>) -> Self {
        Self {
            check: master.check_value(),
            master,
            keys,
            known: Mutex::new(HashMap::new()),
            seals: true,
            index: None,
        }
    }

    /// Indexes persons' names and dates of birth in `index` as they are recorded.
    pub fn with_search(mut self, index: crate::search::BlindIndex) -> Self {
        self.index = Some(index);
        self
    }

    pub fn search(&self) -> Option<&crate::search::BlindIndex> {
        self.index.as_ref()
    }

    /// The blind-index terms of a person as `findable` says she now stands (in `stream`, her
    /// own), to store with the append that records it. A detail not changed by the command is
    /// still sealed: it is opened here, and never leaves this function.
    pub async fn search_terms(
        &self,
        stream: &str,
        findable: FindableBy<'_>,
    ) -> Result<Option<SearchTerms>, VaultError> {
        let Some(index) = &self.index else {
            return Ok(None);
        };
        let unreadable = |u: Unreadable| {
            VaultError::Store(StoreError::Unexpected(format!(
                "a person's {} cannot be opened to index it",
                u.field
            )))
        };
        let name = match self
            .open(findable.full_name, stream, "full_name")
            .await
            .map_err(unreadable)?
        {
            Opened::Value(name) => name,
            Opened::Erased => return Err(VaultError::Erased),
        };
        let born = match findable.date_of_birth {
            None => None,
            Some(date) => match self
                .open(date, stream, "date_of_birth")
                .await
                .map_err(unreadable)?
            {
                Opened::Value(date) => Some(date),
                Opened::Erased => return Err(VaultError::Erased),
            },
        };
        let organisation = findable.organisation.0;
        Ok(Some(SearchTerms {
            person: findable.person.0,
            organisation,
            terms: index.terms(organisation, &name, born),
        }))
    }

    /// A vault that stores personal data as it comes, unsealed: the baseline `homeward-bench`
    /// measures sealing against, and nothing else. The server never makes one.
    pub fn unsealed_baseline(master: MasterKey, keys: Arc<dyn PersonKeys>) -> Self {
        Self {
            seals: false,
            ..Self::new(master, keys)
        }
    }

    fn cached(&self, person: Uuid) -> Option<Known> {
        self.known
            .lock()
            .expect("the key cache is never poisoned")
            .get(&person)
            .cloned()
    }

    fn remember(&self, person: Uuid, known: Known) {
        let mut cache = self.known.lock().expect("the key cache is never poisoned");
        if cache.len() >= CACHED_KEYS {
            cache.clear();
        }
        cache.insert(person, known);
    }

    /// Forgets what this replica knew of `person`'s key (after their erasure).
    pub fn forget(&self, person: Uuid) {
        self.known
            .lock()
            .expect("the key cache is never poisoned")
            .remove(&person);
    }

    fn known_from(&self, person: Uuid, kept: PersonKey) -> Result<Known, VaultError> {
        let known = match kept {
            PersonKey::Wrapped(wrapped) => Known::Key(
                self.master
                    .unwrap(person, &wrapped)
                    .map_err(VaultError::Unwrap)?,
            ),
            PersonKey::Erased { .. } => Known::Erased,
        };
        self.remember(person, known.clone());
        Ok(known)
    }

    /// The key to seal `person`'s data under, made and stored the first time.
    async fn key_for_sealing(&self, person: Uuid) -> Result<DataKey, VaultError> {
        let known = match self.cached(person) {
            Some(known) => known,
            None => {
                // One statement whether the person is new or not: a new key is stored, or the
                // one kept (or the tombstone of an erased one) comes back.
                let (_, wrapped) = self.master.new_data_key(person);
                let kept = self
                    .keys
                    .store_person_key(person, &wrapped, &self.check)
                    .await?;
                self.known_from(person, kept)?
            }
        };
        match known {
            Known::Key(key) => Ok(key),
            Known::Erased => Err(VaultError::Erased),
        }
    }

    /// The key to open `person`'s data with, from what the store keeps of it now; `None` once
    /// they are erased (and then forgotten here too).
    fn key_for_opening(
        &self,
        person: Uuid,
        kept: Option<PersonKey>,
    ) -> Result<Option<DataKey>, VaultError> {
        match kept {
            // Sealed under a key never stored: nothing can open it.
            None => Err(VaultError::Unwrap(KeyError::Unwrap)),
            Some(PersonKey::Erased { .. }) => {
                self.forget(person);
                Ok(None)
            }
            Some(PersonKey::Wrapped(wrapped)) => match self.cached(person) {
                Some(Known::Key(key)) => Ok(Some(key)),
                _ => match self.known_from(person, PersonKey::Wrapped(wrapped))? {
                    Known::Key(key) => Ok(Some(key)),
                    Known::Erased => Ok(None),
                },
            },
        }
    }

    /// Seals every personal field of `events` (one command's, in `stream`, whose ids derive
    /// from `command_id`) under `person`'s key. `opens_person` when the events open the
    /// person's own stream: her key is then made here, to be stored with the append
    /// ([`Sealed::new_key`]), and known to this vault once the append is done
    /// ([`Vault::key_stored`]).
    pub async fn seal_events(
        &self,
        person: PersonId,
        stream: &str,
        command_id: Uuid,
        events: &mut [NewEvent],
        opens_person: bool,
    ) -> Result<Sealed, VaultError> {
        let personal = |e: &NewEvent| personal_paths(&e.event_type).next().is_some();
        if !self.seals || !events.iter().any(personal) {
            return Ok(Sealed::default());
        }
        let (key, new_key) = if opens_person && self.cached(person.0).is_none() {
            let (key, wrapped) = self.master.new_data_key(person.0);
            let new_key = homeward_store::NewPersonKey {
                person: person.0,
                wrapped,
                master_check: self.check.clone(),
            };
            (key.clone(), Some((key, new_key)))
        } else {
            (self.key_for_sealing(person.0).await?, None)
        };
        let mut sealed_any = false;
        for (index, event) in events.iter_mut().enumerate() {
            let event_id = homeward_store::Append::event_id(command_id, index);
            for path in personal_paths(&event.event_type) {
                for_each_at(&mut event.payload, path, &mut |value| {
                    // Kept as it is only when it is sealed already: hers, and it opens here.
                    // Text that merely looks sealed (typed so) is sealed like any other.
                    if value
                        .as_str()
                        .is_some_and(|s| looks_sealed(s) && key.open(stream, path, s).is_ok())
                    {
                        return;
                    }
                    let plain = value.to_string();
                    let place = Place {
                        stream,
                        event: event_id,
                        field: path,
                    };
                    *value = serde_json::Value::String(key.seal(place, &plain));
                    sealed_any = true;
                });
            }
        }
        Ok(Sealed {
            any: sealed_any,
            new_key,
        })
    }

    /// The new key of [`Sealed::new_key`], stored with its append: known from now on.
    pub fn key_stored(&self, key: DataKey, person: Uuid) {
        self.remember(person, Known::Key(key));
    }

    /// Re-wraps every kept data key from this vault's master key to `next`, and makes `next`
    /// the database's master key, without touching an event; returns how many keys. Every
    /// replica must then start with `next` (a replica still holding this key stores no new
    /// key, and one started with it stops at once).
    pub async fn rotate(&self, next: &MasterKey) -> Result<u64, VaultError> {
        let rewrap = |person: Uuid, wrapped: &[u8]| {
            let key = self
                .master
                .unwrap(person, wrapped)
                .map_err(|e| format!("the key of person {person}: {e}"))?;
            Ok(next.wrap(person, &key))
        };
        Ok(self
            .keys
            .rewrap_person_keys(&self.check, &next.check_value(), &rewrap)
            .await?)
    }

    /// What the store keeps of these persons' keys now (for a request to open their data).
    pub async fn kept(&self, persons: &[Uuid]) -> Result<Vec<(Uuid, PersonKey)>, StoreError> {
        self.keys.person_keys(persons).await
    }

    /// Whose key `value` needs (none for a plain value).
    pub fn sealed_for<T>(value: &Personal<T>) -> Option<Uuid> {
        match value {
            Personal::Plain(_) => None,
            Personal::Sealed(sealed) => sealed_for(sealed).ok(),
        }
    }

    /// Opens the personal value at `field` (its path in the event that recorded it) of
    /// `stream`, asking the store whether its person is erased.
    pub async fn open<T: DeserializeOwned + Clone>(
        &self,
        value: &Personal<T>,
        stream: &str,
        field: &str,
    ) -> Result<Opened<T>, Unreadable> {
        let kept = match Self::sealed_for(value) {
            Some(person) => self.keys.person_key(person).await.map_err(|e| {
                tracing::error!(error = %e, "reading a person's key failed");
                Unreadable {
                    field: field.to_owned(),
                }
            })?,
            None => None,
        };
        self.open_with(value, stream, field, kept)
    }

    /// Opens the personal value at `field` of `stream` with what the store keeps of its
    /// person's key (read fresh for the request: an erasure through another replica shows at
    /// once).
    pub fn open_with<T: DeserializeOwned + Clone>(
        &self,
        value: &Personal<T>,
        stream: &str,
        field: &str,
        kept: Option<PersonKey>,
    ) -> Result<Opened<T>, Unreadable> {
        let sealed = match value {
            Personal::Plain(v) => return Ok(Opened::Value(v.clone())),
            Personal::Sealed(sealed) => sealed,
        };
        let unreadable = |why: &dyn std::fmt::Display| {
            tracing::error!(stream, field, error = %why, "a sealed value cannot be opened");
            Unreadable {
                field: field.to_owned(),
            }
        };
        let person = sealed_for(sealed).map_err(|e| unreadable(&e))?;
        let key = match self.key_for_opening(person, kept) {
            Ok(Some(key)) => key,
            Ok(None) => return Ok(Opened::Erased),
            Err(e) => return Err(unreadable(&e)),
        };
        let plain = key
            .open(stream, field, sealed)
            .map_err(|e| unreadable(&e))?;
        serde_json::from_str(&plain)
            .map(Opened::Value)
            .map_err(|e| unreadable(&e))
    }

    /// `value` as a [`Personal`]: sealed text or plain (kept before sealing).
    pub fn stored(value: &str) -> Personal<String> {
        if looks_sealed(value) {
            Personal::Sealed(value.to_owned())
        } else {
            Personal::Plain(value.to_owned())
        }
    }

    /// Destroys `person`'s data key for good, unless a legal hold keeps it: everything sealed
    /// under it is unreadable from now on, in every replica (each asks the store before it
    /// opens).
    pub async fn erase(
        &self,
        person: PersonId,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<KeyErasure, VaultError> {
        let erased = self.keys.erase_person_key(person.0, at).await?;
        self.forget(person.0);
        Ok(erased)
    }

    /// Opens text kept in a read model's column (sealed, or plain from before sealing).
    pub async fn open_text(
        &self,
        stored: &str,
        stream: &str,
        field: &str,
    ) -> Result<Opened<String>, Unreadable> {
        self.open(&Self::stored(stored), stream, field).await
    }
}
