//! The survivor's personal data: the `person-<id>` stream, the only place it lives.
//!
//! Plans refer to a person by [`PersonId`] alone. Every field here is [`Personal`], the marker the
//! encryption issue will use to encrypt with a per-person key (and shred on erasure).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::aggregate::{Aggregate, Context, DomainEvent};
use crate::ids::{OrganisationId, PartyId, PersonId};
use crate::personal::Personal;
use crate::text::{bounded, bounded_lines, email, Language, TextError};

pub const MAX_NAME: usize = 200;
pub const MAX_CONTACT: usize = 500;
pub const MAX_NOTE: usize = 4000;

/// How to reach the person. All optional; all personal.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContactDetails {
    pub phone: Option<Personal<String>>,
    pub email: Option<Personal<String>>,
    pub address: Option<Personal<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub text: Personal<String>,
    pub author: PartyId,
    pub at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub id: PersonId,
    pub version: u64,
    /// The organisation that registered the person: theirs to plan for, fixed for good (moving
    /// the social worker who registered them moves none of their people).
    pub organisation: OrganisationId,
    pub full_name: Personal<String>,
    pub date_of_birth: Option<Personal<NaiveDate>>,
    pub preferred_language: Option<Personal<Language>>,
    pub contact: ContactDetails,
    pub notes: Vec<Note>,
    /// When the person was erased: their key is destroyed and every sealed value of theirs is
    /// unreadable for good; nothing more is recorded about them.
    #[serde(default)]
    pub erased_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Why a person's data was erased. A closed list: the record of an erasure holds no free text,
/// which could say what the erasure removed.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumIter,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ErasureReason {
    /// The survivor asked for it (her right to erasure).
    SurvivorRequest,
    /// The organisation's retention period after her last plan closed has passed.
    RetentionEnded,
    /// She was registered by mistake, or twice.
    RegisteredInError,
    /// A law or a court requires it.
    LegalObligation,
}

/// Named in snake case (`complete_step`) for metrics and logs.
#[derive(Debug, Clone, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum PersonCommand {
    Register {
        person_id: PersonId,
        organisation: OrganisationId,
        full_name: String,
        date_of_birth: Option<NaiveDate>,
        preferred_language: Option<String>,
        contact: ContactDetails,
    },
    UpdateContact {
        contact: ContactDetails,
    },
    AddNote {
        text: String,
    },
    /// Records the erasure, once the person's key is destroyed.
    Erase {
        reason: ErasureReason,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PersonEvent {
    #[serde(rename = "person_registered")]
    PersonRegistered {
        person_id: PersonId,
        organisation: OrganisationId,
        full_name: Personal<String>,
        date_of_birth: Option<Personal<NaiveDate>>,
        preferred_language: Option<Personal<Language>>,
        contact: ContactDetails,
    },
    #[serde(rename = "person_contact_updated")]
    ContactUpdated { contact: ContactDetails },
    #[serde(rename = "person_note_added")]
    NoteAdded { note: Note },
    /// The person's key was destroyed. Holds no personal data.
    #[serde(rename = "person_erased")]
    PersonErased {
        reason: ErasureReason,
        erased_at: chrono::DateTime<chrono::Utc>,
    },
}

impl DomainEvent for PersonEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::PersonRegistered { .. } => "person_registered",
            Self::ContactUpdated { .. } => "person_contact_updated",
            Self::NoteAdded { .. } => "person_note_added",
            Self::PersonErased { .. } => "person_erased",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PersonError {
    #[error("this person is already registered")]
    AlreadyRegistered,
    #[error("no such person: register them first")]
    NotRegistered,
    #[error("this person's data was already erased")]
    AlreadyErased,
    #[error("this person's data was erased: nothing more can be recorded about them")]
    Erased,
    #[error("the date of birth {0} lies in the future")]
    BornInTheFuture(NaiveDate),
    #[error(transparent)]
    Text(#[from] TextError),
}

fn clean_contact(c: &ContactDetails) -> Result<ContactDetails, TextError> {
    let field = |name: &'static str, v: &Option<Personal<String>>| {
        v.as_ref()
            .map(|v| bounded(name, v.stored(), MAX_CONTACT).map(Personal::new))
            .transpose()
    };
    Ok(ContactDetails {
        phone: field("phone", &c.phone)?,
        email: c
            .email
            .as_ref()
            .map(|e| email(e.stored()).map(Personal::new))
            .transpose()?,
        address: c
            .address
            .as_ref()
            .map(|v| bounded_lines("address", v.stored(), MAX_CONTACT).map(Personal::new))
            .transpose()?,
    })
}

impl Aggregate for Person {
    type Command = PersonCommand;
    type Event = PersonEvent;
    type Error = PersonError;
    const STREAM_PREFIX: &'static str = "person";

    fn command_name(command: &Self::Command) -> &'static str {
        command.into()
    }

    fn data_subject(&self) -> Option<PersonId> {
        Some(self.id)
    }

    fn apply(state: Option<Self>, event: &PersonEvent) -> Option<Self> {
        match (state, event) {
            (
                None,
                PersonEvent::PersonRegistered {
                    person_id,
                    organisation,
                    full_name,
                    date_of_birth,
                    preferred_language,
                    contact,
                },
            ) => Some(Person {
                id: *person_id,
                version: 1,
                organisation: *organisation,
                full_name: full_name.clone(),
                date_of_birth: date_of_birth.clone(),
                preferred_language: preferred_language.clone(),
                contact: contact.clone(),
                notes: Vec::new(),
                erased_at: None,
            }),
            (None, _) => None,
            (Some(mut p), e) => {
                p.version += 1;
                match e {
                    PersonEvent::PersonRegistered { .. } => {}
                    PersonEvent::ContactUpdated { contact } => p.contact = contact.clone(),
                    PersonEvent::NoteAdded { note } => p.notes.push(note.clone()),
                    PersonEvent::PersonErased { erased_at, .. } => {
                        p.erased_at = Some(*erased_at);
                    }
                }
                Some(p)
            }
        }
    }

    fn decide(
        state: Option<&Self>,
        command: &PersonCommand,
        ctx: &Context,
    ) -> Result<Vec<PersonEvent>, PersonError> {
        match (state, command) {
            (
                None,
                PersonCommand::Register {
                    person_id,
                    organisation,
                    full_name,
                    date_of_birth,
                    preferred_language,
                    contact,
                },
            ) => {
                if let Some(dob) = date_of_birth {
                    if *dob > ctx.now.date_naive() {
                        return Err(PersonError::BornInTheFuture(*dob));
                    }
                }
                Ok(vec![PersonEvent::PersonRegistered {
                    person_id: *person_id,
                    organisation: *organisation,
                    full_name: Personal::new(bounded("full name", full_name, MAX_NAME)?),
                    date_of_birth: date_of_birth.map(Personal::new),
                    preferred_language: preferred_language
                        .as_deref()
                        .map(Language::parse)
                        .transpose()?
                        .map(Personal::new),
                    contact: clean_contact(contact)?,
                }])
            }
            (Some(_), PersonCommand::Register { .. }) => Err(PersonError::AlreadyRegistered),
            (None, _) => Err(PersonError::NotRegistered),
            (Some(p), PersonCommand::Erase { .. }) if p.erased_at.is_some() => {
                Err(PersonError::AlreadyErased)
            }
            (Some(_), PersonCommand::Erase { reason }) => Ok(vec![PersonEvent::PersonErased {
                reason: *reason,
                erased_at: ctx.now,
            }]),
            (Some(p), _) if p.erased_at.is_some() => Err(PersonError::Erased),
            (Some(_), PersonCommand::UpdateContact { contact }) => {
                Ok(vec![PersonEvent::ContactUpdated {
                    contact: clean_contact(contact)?,
                }])
            }
            (Some(_), PersonCommand::AddNote { text }) => Ok(vec![PersonEvent::NoteAdded {
                note: Note {
                    text: Personal::new(bounded_lines("note", text, MAX_NOTE)?),
                    author: ctx.actor,
                    at: ctx.now,
                },
            }]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered() -> (Person, Context) {
        let ctx = Context {
            now: chrono::Utc::now(),
            actor: PartyId::new(),
        };
        let command = PersonCommand::Register {
            person_id: PersonId::new(),
            organisation: OrganisationId::new(),
            full_name: "Joy N.".into(),
            date_of_birth: None,
            preferred_language: None,
            contact: ContactDetails::default(),
        };
        let events = Person::decide(None, &command, &ctx).unwrap();
        (Person::fold(&events).unwrap(), ctx)
    }

    #[test]
    fn an_erased_person_is_erased_once_and_nothing_more_is_recorded() {
        let (person, ctx) = registered();
        let erase = PersonCommand::Erase {
            reason: ErasureReason::SurvivorRequest,
        };
        let events = Person::decide(Some(&person), &erase, &ctx).unwrap();
        assert_eq!(
            events,
            [PersonEvent::PersonErased {
                reason: ErasureReason::SurvivorRequest,
                erased_at: ctx.now
            }]
        );
        let erased = Person::apply(Some(person), &events[0]).unwrap();
        assert_eq!(erased.erased_at, Some(ctx.now));
        assert_eq!(
            Person::decide(Some(&erased), &erase, &ctx),
            Err(PersonError::AlreadyErased)
        );
        let note = PersonCommand::AddNote {
            text: "Called back".into(),
        };
        assert_eq!(
            Person::decide(Some(&erased), &note, &ctx),
            Err(PersonError::Erased)
        );
    }
}
