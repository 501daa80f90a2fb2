//! The shape every aggregate shares, so the engine can load, decide and append any of them.

use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Serialize};

use crate::ids::{OrganisationId, PartyId, PersonId};
use crate::personal::Personal;

/// What a decision may know besides the state and the command: who asks and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    pub now: DateTime<Utc>,
    pub actor: PartyId,
}

/// What a survivor is found by in her organisation's search: her name and date of birth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FindableBy<'a> {
    pub person: PersonId,
    pub organisation: OrganisationId,
    pub full_name: &'a Personal<String>,
    pub date_of_birth: Option<&'a Personal<chrono::NaiveDate>>,
}

/// An event type with a stable name and a schema version, stored as JSON.
pub trait DomainEvent: Serialize + DeserializeOwned + Clone + std::fmt::Debug {
    /// The stable name stored in the log (never a Rust type path).
    fn event_type(&self) -> &'static str;
}

/// An event-sourced aggregate: `decide` turns a command into events, `apply` folds one event.
pub trait Aggregate: Sized + Clone + std::fmt::Debug {
    type Command: std::fmt::Debug;
    type Event: DomainEvent;
    type Error: std::error::Error + Send + Sync + 'static;

    /// Streams of this aggregate are named `<STREAM_PREFIX>-<uuid>`.
    const STREAM_PREFIX: &'static str;

    /// The command's name in snake case (`complete_step`), for metrics and logs.
    fn command_name(command: &Self::Command) -> &'static str;

    /// The survivor whose data this stream holds, if any: its personal fields are sealed under
    /// that person's key.
    fn data_subject(&self) -> Option<PersonId> {
        None
    }

    /// What a survivor is found by, as it stands in this state (the state after `events`), when
    /// `events` changed it: the search index is then brought up to date with the append.
    fn findable_by(&self, _events: &[Self::Event]) -> Option<FindableBy<'_>> {
        None
    }

    /// Folds one event into the state. `None` is the state before the stream's first event.
    fn apply(state: Option<Self>, event: &Self::Event) -> Option<Self>;

    /// Decides which events a command produces, or why it is refused. Pure.
    fn decide(
        state: Option<&Self>,
        command: &Self::Command,
        ctx: &Context,
    ) -> Result<Vec<Self::Event>, Self::Error>;

    /// Folds a whole sequence of events from the empty state.
    fn fold<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Option<Self>
    where
        Self::Event: 'a,
    {
        events
            .into_iter()
            .fold(None, |state, e| Self::apply(state, e))
    }
}
