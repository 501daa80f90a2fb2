//! Rebuilding the read models: each stream folded from its events, in version order, into the
//! rows its final state has ([`ProjectionChange`], the rows commands write). Backend-neutral: a
//! backend reads the events stream by stream and writes the rows.

use homeward_workflows::organisation::{Organisation, OrganisationEvent};
use homeward_workflows::party::{Party, PartyEvent};
use homeward_workflows::person::{Person, PersonEvent};
use homeward_workflows::plan::{Plan, PlanEvent};
use homeward_workflows::Aggregate;

use crate::{ProjectionChange, RecordedEvent, StoreError};

/// An event decoded for the fold (decoding happens in the reading task).
#[derive(Debug)]
pub enum Decoded {
    Plan(PlanEvent),
    Party(PartyEvent),
    Organisation(OrganisationEvent),
    Person(PersonEvent),
    /// Streams of no kind known here: not decoded at all.
    Other,
}

#[derive(Debug)]
pub struct DecodedEvent {
    pub stream_id: String,
    pub event: Decoded,
}

impl DecodedEvent {
    pub fn decode(recorded: RecordedEvent) -> Result<Self, StoreError> {
        let event = if recorded.stream_id.starts_with("plan-") {
            Decoded::Plan(recorded.decode()?)
        } else if recorded.stream_id.starts_with("party-") {
            Decoded::Party(recorded.decode()?)
        } else if recorded.stream_id.starts_with("organisation-") {
            Decoded::Organisation(recorded.decode()?)
        } else if recorded.stream_id.starts_with("person-") {
            Decoded::Person(recorded.decode()?)
        } else {
            Decoded::Other
        };
        Ok(Self {
            stream_id: recorded.stream_id,
            event,
        })
    }
}

/// The state of the stream being folded (`Other` until its first event says what it is).
#[derive(Debug, Default)]
enum Folding {
    Plan(Option<Plan>),
    Party(Option<Party>),
    Organisation(Option<Organisation>),
    Person(Option<Person>),
    #[default]
    Other,
}

impl Folding {
    fn apply(&mut self, event: Decoded) {
        *self = match (std::mem::take(self), event) {
            (Self::Plan(state), Decoded::Plan(e)) => Self::Plan(Plan::apply(state, &e)),
            (Self::Other, Decoded::Plan(e)) => Self::Plan(Plan::apply(None, &e)),
            (Self::Party(state), Decoded::Party(e)) => Self::Party(Party::apply(state, &e)),
            (Self::Other, Decoded::Party(e)) => Self::Party(Party::apply(None, &e)),
            (Self::Organisation(state), Decoded::Organisation(e)) => {
                Self::Organisation(Organisation::apply(state, &e))
            }
            (Self::Other, Decoded::Organisation(e)) => {
                Self::Organisation(Organisation::apply(None, &e))
            }
            (Self::Person(state), Decoded::Person(e)) => Self::Person(Person::apply(state, &e)),
            (Self::Other, Decoded::Person(e)) => Self::Person(Person::apply(None, &e)),
            (folding, _) => folding,
        };
    }

    fn rows(&self) -> ProjectionChange {
        match self {
            Self::Plan(Some(plan)) => ProjectionChange::for_plan(None, plan),
            Self::Party(Some(party)) => ProjectionChange::for_party(party),
            Self::Organisation(Some(organisation)) => {
                ProjectionChange::for_organisation(organisation)
            }
            Self::Person(Some(person)) => ProjectionChange::for_person(person),
            _ => ProjectionChange::default(),
        }
    }
}

/// Events folded stream by stream, in (stream, version) order: each stream's rows are given
/// out once its last event has been seen (the next stream's first, or [`Streams::finish`]).
#[derive(Debug, Default)]
pub struct Streams {
    current: Option<(String, Folding)>,
    /// How many streams were seen.
    pub count: u64,
}

impl Streams {
    /// Folds `event`; the rows of the stream it ends (if it starts another) go into `rows`.
    pub fn push(&mut self, event: DecodedEvent, rows: &mut ProjectionChange) {
        if self
            .current
            .as_ref()
            .is_none_or(|(id, _)| *id != event.stream_id)
        {
            if let Some((_, done)) = self.current.take() {
                rows.extend(done.rows());
            }
            self.count += 1;
            self.current = Some((event.stream_id, Folding::Other));
        }
        if let Some((_, folding)) = self.current.as_mut() {
            folding.apply(event.event);
        }
    }

    /// The rows of the last stream.
    pub fn finish(&mut self, rows: &mut ProjectionChange) {
        if let Some((_, done)) = self.current.take() {
            rows.extend(done.rows());
        }
    }
}
