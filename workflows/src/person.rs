//! The survivor's personal data: the `person-<id>` stream, the only place it lives.
//!
//! Plans refer to a person by [`PersonId`] alone. Every field here is [`Personal`], the marker the
//! encryption issue will use to encrypt with a per-person key (and shred on erasure).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::aggregate::{Aggregate, Context, DomainEvent, FindableBy};
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

/// A legal hold: her data must be kept (a court case, an inquiry) and is erased neither by the
/// retention rule nor by hand until the hold is lifted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalHold {
    /// Why: it may name the case, so it is personal.
    pub reason: Personal<String>,
    pub placed_by: PartyId,
    pub placed_at: chrono::DateTime<chrono::Utc>,
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
    #[serde(default)]
    pub legal_hold: Option<LegalHold>,
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
    /// Records the erasure, once the person's key is destroyed: a fact, not refused for a
    /// legal hold (the key is not destroyed while one is recorded; a hold recorded while it
    /// was being destroyed came too late).
    Erase {
        reason: ErasureReason,
    },
    /// Keeps her data until the hold is lifted, saying why.
    PlaceLegalHold {
        reason: String,
    },
    /// Ends the hold, saying why: the retention rule applies again.
    LiftLegalHold {
        reason: String,
    },
    /// Corrects her details (her right to have them corrected), saying why.
    Correct {
        full_name: Option<String>,
        date_of_birth: Change<NaiveDate>,
        preferred_language: Change<String>,
        phone: Change<String>,
        email: Change<String>,
        address: Change<String>,
        reason: String,
    },
}

/// What a correction does to one optional detail.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Change<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T> Change<T> {
    fn apply<U>(
        self,
        current: &Option<U>,
        set: impl FnOnce(T) -> Result<U, PersonError>,
    ) -> Result<(Option<U>, bool), PersonError>
    where
        U: Clone,
    {
        Ok(match self {
            Self::Keep => (current.clone(), false),
            Self::Clear => (None, current.is_some()),
            Self::Set(v) => (Some(set(v)?), true),
        })
    }
}

/// A detail of a person, as a correction names what it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum PersonField {
    FullName,
    DateOfBirth,
    PreferredLanguage,
    Phone,
    Email,
    Address,
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
    /// Her details as corrected: every detail as it now stands (those not changed keep their
    /// sealed values), which ones changed, and why.
    #[serde(rename = "person_corrected")]
    PersonCorrected {
        full_name: Personal<String>,
        date_of_birth: Option<Personal<NaiveDate>>,
        preferred_language: Option<Personal<Language>>,
        contact: ContactDetails,
        changed: Vec<PersonField>,
        reason: Personal<String>,
    },
    /// The person's key was destroyed. Holds no personal data.
    #[serde(rename = "person_erased")]
    PersonErased {
        reason: ErasureReason,
        erased_at: chrono::DateTime<chrono::Utc>,
    },
    #[serde(rename = "legal_hold_placed")]
    LegalHoldPlaced { hold: LegalHold },
    #[serde(rename = "legal_hold_lifted")]
    LegalHoldLifted {
        reason: Personal<String>,
        lifted_by: PartyId,
        lifted_at: chrono::DateTime<chrono::Utc>,
    },
}

impl DomainEvent for PersonEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::PersonRegistered { .. } => "person_registered",
            Self::ContactUpdated { .. } => "person_contact_updated",
            Self::NoteAdded { .. } => "person_note_added",
            Self::PersonErased { .. } => "person_erased",
            Self::PersonCorrected { .. } => "person_corrected",
            Self::LegalHoldPlaced { .. } => "legal_hold_placed",
            Self::LegalHoldLifted { .. } => "legal_hold_lifted",
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
    #[error("nothing to correct: give at least one detail that differs")]
    NothingToCorrect,
    #[error("the date of birth {0} lies in the future")]
    BornInTheFuture(NaiveDate),
    #[error("this person's data is already on legal hold since {0}; nothing was changed")]
    AlreadyOnHold(chrono::DateTime<chrono::Utc>),
    #[error("this person's data is not on legal hold; nothing was changed")]
    NoLegalHold,
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

/// A correction of `person`'s details as `command` asks.
fn correct(
    person: &Person,
    command: &PersonCommand,
    ctx: &Context,
) -> Result<Vec<PersonEvent>, PersonError> {
    let PersonCommand::Correct {
        full_name,
        date_of_birth,
        preferred_language,
        phone,
        email: new_email,
        address,
        reason,
    } = command.clone()
    else {
        unreachable!("only a correction is corrected")
    };
    let mut changed = Vec::new();
    let mut note = |field: PersonField, did: bool| {
        if did {
            changed.push(field);
        }
    };
    let name = match full_name {
        Some(n) => {
            note(PersonField::FullName, true);
            Personal::new(bounded("full name", &n, MAX_NAME)?)
        }
        None => person.full_name.clone(),
    };
    let (dob, did) = date_of_birth.apply(&person.date_of_birth, |d| {
        if d > ctx.now.date_naive() {
            return Err(PersonError::BornInTheFuture(d));
        }
        Ok(Personal::new(d))
    })?;
    note(PersonField::DateOfBirth, did);
    let (language, did) = preferred_language.apply(&person.preferred_language, |l| {
        Ok(Personal::new(Language::parse(&l)?))
    })?;
    note(PersonField::PreferredLanguage, did);
    let (phone, did) = phone.apply(&person.contact.phone, |v| {
        Ok(Personal::new(bounded("phone", &v, MAX_CONTACT)?))
    })?;
    note(PersonField::Phone, did);
    let (email_address, did) =
        new_email.apply(&person.contact.email, |v| Ok(Personal::new(email(&v)?)))?;
    note(PersonField::Email, did);
    let (address, did) = address.apply(&person.contact.address, |v| {
        Ok(Personal::new(bounded_lines("address", &v, MAX_CONTACT)?))
    })?;
    note(PersonField::Address, did);
    if changed.is_empty() {
        return Err(PersonError::NothingToCorrect);
    }
    Ok(vec![PersonEvent::PersonCorrected {
        full_name: name,
        date_of_birth: dob,
        preferred_language: language,
        contact: ContactDetails {
            phone,
            email: email_address,
            address,
        },
        changed,
        reason: Personal::new(bounded_lines("reason", &reason, MAX_REASON)?),
    }])
}

/// Longest reason for a correction.
pub const MAX_REASON: usize = 1000;

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

    fn findable_by(&self, events: &[PersonEvent]) -> Option<FindableBy<'_>> {
        let changes_it = |e: &PersonEvent| match e {
            PersonEvent::PersonRegistered { .. } => true,
            PersonEvent::PersonCorrected { changed, .. } => changed
                .iter()
                .any(|f| matches!(f, PersonField::FullName | PersonField::DateOfBirth)),
            _ => false,
        };
        (self.erased_at.is_none() && events.iter().any(changes_it)).then_some(FindableBy {
            person: self.id,
            organisation: self.organisation,
            full_name: &self.full_name,
            date_of_birth: self.date_of_birth.as_ref(),
        })
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
                legal_hold: None,
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
                    PersonEvent::LegalHoldPlaced { hold } => p.legal_hold = Some(hold.clone()),
                    PersonEvent::LegalHoldLifted { .. } => p.legal_hold = None,
                    PersonEvent::PersonCorrected {
                        full_name,
                        date_of_birth,
                        preferred_language,
                        contact,
                        ..
                    } => {
                        p.full_name = full_name.clone();
                        p.date_of_birth = date_of_birth.clone();
                        p.preferred_language = preferred_language.clone();
                        p.contact = contact.clone();
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
            (Some(p), PersonCommand::Correct { .. }) => correct(p, command, ctx),
            (Some(p), PersonCommand::PlaceLegalHold { reason }) => match &p.legal_hold {
                Some(hold) => Err(PersonError::AlreadyOnHold(hold.placed_at)),
                None => Ok(vec![PersonEvent::LegalHoldPlaced {
                    hold: LegalHold {
                        reason: Personal::new(bounded_lines("reason", reason, MAX_REASON)?),
                        placed_by: ctx.actor,
                        placed_at: ctx.now,
                    },
                }]),
            },
            (Some(p), PersonCommand::LiftLegalHold { reason }) => match &p.legal_hold {
                None => Err(PersonError::NoLegalHold),
                Some(_) => Ok(vec![PersonEvent::LegalHoldLifted {
                    reason: Personal::new(bounded_lines("reason", reason, MAX_REASON)?),
                    lifted_by: ctx.actor,
                    lifted_at: ctx.now,
                }]),
            },
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

    #[test]
    fn a_legal_hold_is_placed_once_and_lifted_once_with_a_reason() {
        let (person, ctx) = registered();
        let place = PersonCommand::PlaceLegalHold {
            reason: "Witness in the trial".into(),
        };
        let events = Person::decide(Some(&person), &place, &ctx).unwrap();
        let held = Person::apply(Some(person), &events[0]).unwrap();
        assert_eq!(held.legal_hold.as_ref().unwrap().placed_by, ctx.actor);
        assert_eq!(
            Person::decide(Some(&held), &place, &ctx),
            Err(PersonError::AlreadyOnHold(ctx.now))
        );
        let lift = PersonCommand::LiftLegalHold {
            reason: "The trial ended".into(),
        };
        let blank = PersonCommand::LiftLegalHold { reason: " ".into() };
        assert!(matches!(
            Person::decide(Some(&held), &blank, &ctx),
            Err(PersonError::Text(_))
        ));
        let events = Person::decide(Some(&held), &lift, &ctx).unwrap();
        let lifted = Person::apply(Some(held), &events[0]).unwrap();
        assert_eq!(lifted.legal_hold, None);
        assert_eq!(
            Person::decide(Some(&lifted), &lift, &ctx),
            Err(PersonError::NoLegalHold)
        );
    }
}
