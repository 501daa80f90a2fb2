//! The values that cross the store's boundary.

use chrono::{DateTime, Utc};
use homeward_workflows::{upcast, DomainEvent, PartyId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::idempotency::KeyClaim;
use crate::projection::ProjectionChange;
use crate::StoreError;

/// What an append expects of the stream's head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the version is (the stream lock still orders appends).
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be at exactly this version.
    Exact(u64),
}

impl ExpectedVersion {
    /// As a database column holds it: none for any version, 0 for no stream yet.
    pub fn as_sql(self) -> Option<i64> {
        match self {
            Self::Any => None,
            Self::NoStream => Some(0),
            Self::Exact(v) => Some(v as i64),
        }
    }
}

/// Who and why, stored with every event (never personal data about survivors).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub actor: PartyId,
    pub correlation_id: Uuid,
    /// The partner link the actor recorded this through (from a reminder), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_link: Option<Uuid>,
}

/// An event ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_type: String,
    pub schema_version: i16,
    pub payload: serde_json::Value,
}

impl NewEvent {
    pub fn from_domain<E: DomainEvent>(event: &E) -> Self {
        let (event_type, schema_version, payload) = upcast::encode(event);
        Self {
            event_type: event_type.to_owned(),
            schema_version,
            payload,
        }
    }
}

/// One command's events for one stream.
#[derive(Debug, Clone)]
pub struct Append {
    pub stream_id: String,
    pub stream_type: &'static str,
    pub expected_version: ExpectedVersion,
    pub command_id: Uuid,
    pub metadata: Metadata,
    pub occurred_at: DateTime<Utc>,
    pub events: Vec<NewEvent>,
    /// The read-model rows this append changes, written in the same transaction.
    pub projection: ProjectionChange,
    /// The idempotency key of the request, recorded in the same transaction.
    pub idempotency_key: Option<KeyClaim>,
    /// The data key of the person a new person stream is about, stored in the same transaction
    /// as the events sealed under it (so that a registration costs no statement of its own).
    pub new_person_key: Option<NewPersonKey>,
    /// A person's blind-index terms, replacing those she had, when this append records her
    /// name or date of birth.
    pub search_terms: Option<SearchTerms>,
}

/// The keyed hashes a person is found by in her organisation (see the engine's blind index):
/// at least one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchTerms {
    pub person: Uuid,
    pub organisation: Uuid,
    pub terms: Vec<Vec<u8>>,
}

/// A person's new data key, wrapped, to store with the append that first seals under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPersonKey {
    pub person: Uuid,
    pub wrapped: Vec<u8>,
    /// The check value of the master key that wrapped it: the append is refused
    /// ([`crate::StoreError::MasterKeyChanged`]) when it is not the database's.
    pub master_check: Vec<u8>,
}

impl Append {
    /// Event ids derive from the command id, so a retried command cannot add events twice.
    pub fn event_id(command_id: Uuid, index: usize) -> Uuid {
        Uuid::new_v5(&command_id, &(index as u64).to_be_bytes())
    }
}

/// The result of an append (or of the first append of a repeated command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub stream_id: String,
    pub first_version: u64,
    pub last_version: u64,
    /// True when this command id had been appended before and nothing new was written.
    pub duplicate: bool,
}

/// How far to read a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadUntil {
    End,
    /// Up to and including this version.
    Version(u64),
    /// The stream as it stood at this instant: its events up to the first that occurred after
    /// it (by `occurred_at`, the time the command was decided, which history shows; a prefix,
    /// so that a replica's clock a little behind another's cannot leave a hole).
    Time(DateTime<Utc>),
}

/// A position in the global stream: the writing transaction id and the position within it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Cursor {
    pub tx_id: u64,
    pub position: i64,
}

impl Cursor {
    pub const START: Cursor = Cursor {
        tx_id: 0,
        position: 0,
    };
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RecordedEvent {
    pub global_position: i64,
    #[sqlx(rename = "tx_number", try_from = "i64")]
    pub tx_id: u64,
    pub stream_id: String,
    #[sqlx(try_from = "i64")]
    pub stream_version: u64,
    pub event_id: Uuid,
    pub command_id: Uuid,
    pub event_type: String,
    pub schema_version: i16,
    /// The payload as stored (JSON text), upcast on decode.
    pub payload: String,
    #[sqlx(json)]
    pub metadata: Metadata,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            tx_id: self.tx_id,
            position: self.global_position,
        }
    }

    /// Decodes the payload into a domain event, upcasting older schema versions.
    pub fn decode<E: DomainEvent>(&self) -> Result<E, StoreError> {
        Ok(upcast::decode_str(
            &self.event_type,
            self.schema_version,
            &self.payload,
        )?)
    }
}
