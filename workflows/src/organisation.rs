//! Organisations: the NGOs and agencies that run return programmes, the government offices their
//! liaisons work in, and the partners who receive survivors in their countries of origin.
//!
//! Everything that belongs to an organisation names it by [`OrganisationId`], never by its name:
//! two NGOs called the same see nothing of each other. A programme records the organisations it
//! works with; only their people (and its own) can be given steps of its plans.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::aggregate::{Aggregate, Context, DomainEvent};
use crate::ids::OrganisationId;
use crate::text::{bounded, CountryCode, TextError};

pub const MAX_NAME: usize = 200;

/// How long a programme keeps a survivor's data after her last plan closes, unless it sets
/// otherwise: five years.
pub const DEFAULT_RETENTION_MONTHS: u16 = 60;
/// The longest retention a programme may set: fifty years.
pub const MAX_RETENTION_MONTHS: u16 = 600;

fn default_retention() -> u16 {
    DEFAULT_RETENTION_MONTHS
}

/// What an organisation does in a return.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum OrganisationKind {
    /// Runs return programmes: its social workers and supervisors open and manage plans.
    Programme,
    /// A government office: passports, travel documents, legal matters.
    Government,
    /// Receives survivors in a country of origin and follows up on them.
    Partner,
}

impl OrganisationKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The kind named by [`OrganisationKind::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        name.parse().ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organisation {
    pub id: OrganisationId,
    pub version: u64,
    pub name: String,
    pub kind: OrganisationKind,
    pub country: CountryCode,
    /// The organisations this one works with: their people may be given steps of its plans.
    pub works_with: BTreeSet<OrganisationId>,
    /// Months a survivor's data is kept after her last plan closes; then it is erased.
    #[serde(default = "default_retention")]
    pub retention_months: u16,
}

impl Organisation {
    /// Whether a party of `other` may take part in this organisation's plans.
    pub fn works_with(&self, other: OrganisationId) -> bool {
        other == self.id || self.works_with.contains(&other)
    }
}

/// Named in snake case (`register`) for metrics and logs.
#[derive(Debug, Clone, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum OrganisationCommand {
    Register {
        organisation_id: OrganisationId,
        name: String,
        kind: OrganisationKind,
        country: String,
    },
    Rename {
        name: String,
    },
    /// Record that this organisation works with another. The caller has checked that the other
    /// exists.
    StartWorkingWith {
        partner: OrganisationId,
    },
    /// No new steps go to the other's people; steps they hold stay theirs until reassigned.
    StopWorkingWith {
        partner: OrganisationId,
    },
    /// Sets how long survivors' data is kept after their last plan closes.
    SetRetention {
        months: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrganisationEvent {
    #[serde(rename = "organisation_registered")]
    OrganisationRegistered {
        organisation_id: OrganisationId,
        name: String,
        kind: OrganisationKind,
        country: CountryCode,
    },
    #[serde(rename = "organisation_renamed")]
    OrganisationRenamed { name: String },
    #[serde(rename = "partnership_started")]
    PartnershipStarted { partner: OrganisationId },
    #[serde(rename = "partnership_ended")]
    PartnershipEnded { partner: OrganisationId },
    #[serde(rename = "retention_period_set")]
    RetentionPeriodSet { months: u16 },
}

impl DomainEvent for OrganisationEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::OrganisationRegistered { .. } => "organisation_registered",
            Self::OrganisationRenamed { .. } => "organisation_renamed",
            Self::PartnershipStarted { .. } => "partnership_started",
            Self::PartnershipEnded { .. } => "partnership_ended",
            Self::RetentionPeriodSet { .. } => "retention_period_set",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OrganisationError {
    #[error("this organisation is already registered")]
    AlreadyRegistered,
    #[error("no such organisation: register it first")]
    NotRegistered,
    #[error("an organisation always works with itself: name another organisation")]
    WithItself,
    #[error(
        "only an organisation that runs return programmes records partners; this one is a {0}"
    )]
    NotAProgramme(&'static str),
    #[error("this organisation already works with {0}")]
    AlreadyPartners(OrganisationId),
    #[error("this organisation does not work with {0}")]
    NotPartners(OrganisationId),
    #[error(
        "a retention period is between 1 and {MAX_RETENTION_MONTHS} months; {0} is not: \
         give the number of months survivors' data is kept after their last plan closes"
    )]
    RetentionOutOfRange(u32),
    #[error(
        "only an organisation that runs return programmes keeps survivors' data; this one is a {0}"
    )]
    KeepsNoSurvivors(&'static str),
    #[error(transparent)]
    Text(#[from] TextError),
}

impl Aggregate for Organisation {
    type Command = OrganisationCommand;
    type Event = OrganisationEvent;
    type Error = OrganisationError;
    const STREAM_PREFIX: &'static str = "organisation";

    fn command_name(command: &Self::Command) -> &'static str {
        command.into()
    }

    fn apply(state: Option<Self>, event: &OrganisationEvent) -> Option<Self> {
        match (state, event) {
            (
                None,
                OrganisationEvent::OrganisationRegistered {
                    organisation_id,
                    name,
                    kind,
                    country,
                },
            ) => Some(Organisation {
                id: *organisation_id,
                version: 1,
                name: name.clone(),
                kind: *kind,
                country: country.clone(),
                works_with: BTreeSet::new(),
                retention_months: DEFAULT_RETENTION_MONTHS,
            }),
            (None, _) => None,
            (Some(mut o), e) => {
                o.version += 1;
                match e {
                    OrganisationEvent::OrganisationRegistered { .. } => {}
                    OrganisationEvent::OrganisationRenamed { name } => o.name = name.clone(),
                    OrganisationEvent::PartnershipStarted { partner } => {
                        o.works_with.insert(*partner);
                    }
                    OrganisationEvent::PartnershipEnded { partner } => {
                        o.works_with.remove(partner);
                    }
                    OrganisationEvent::RetentionPeriodSet { months } => {
                        o.retention_months = *months;
                    }
                }
                Some(o)
            }
        }
    }

    fn decide(
        state: Option<&Self>,
        command: &OrganisationCommand,
        _ctx: &Context,
    ) -> Result<Vec<OrganisationEvent>, OrganisationError> {
        use OrganisationCommand as C;
        use OrganisationEvent as E;
        match (state, command) {
            (
                None,
                C::Register {
                    organisation_id,
                    name,
                    kind,
                    country,
                },
            ) => Ok(vec![E::OrganisationRegistered {
                organisation_id: *organisation_id,
                name: bounded("name", name, MAX_NAME)?,
                kind: *kind,
                country: CountryCode::parse(country)?,
            }]),
            (Some(_), C::Register { .. }) => Err(OrganisationError::AlreadyRegistered),
            (None, _) => Err(OrganisationError::NotRegistered),
            (Some(_), C::Rename { name }) => Ok(vec![E::OrganisationRenamed {
                name: bounded("name", name, MAX_NAME)?,
            }]),
            (Some(o), C::StartWorkingWith { partner }) => {
                if *partner == o.id {
                    return Err(OrganisationError::WithItself);
                }
                if o.kind != OrganisationKind::Programme {
                    return Err(OrganisationError::NotAProgramme(o.kind.as_str()));
                }
                if o.works_with.contains(partner) {
                    return Err(OrganisationError::AlreadyPartners(*partner));
                }
                Ok(vec![E::PartnershipStarted { partner: *partner }])
            }
            (Some(o), C::StopWorkingWith { partner }) => {
                if !o.works_with.contains(partner) {
                    return Err(OrganisationError::NotPartners(*partner));
                }
                Ok(vec![E::PartnershipEnded { partner: *partner }])
            }
            (Some(o), C::SetRetention { months }) => {
                if o.kind != OrganisationKind::Programme {
                    return Err(OrganisationError::KeepsNoSurvivors(o.kind.as_str()));
                }
                let months = u16::try_from(*months)
                    .ok()
                    .filter(|m| (1..=MAX_RETENTION_MONTHS).contains(m))
                    .ok_or(OrganisationError::RetentionOutOfRange(*months))?;
                Ok(vec![E::RetentionPeriodSet { months }])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::PartyId;
    use chrono::Utc;

    fn ctx() -> Context {
        Context {
            now: Utc::now(),
            actor: PartyId::new(),
        }
    }

    fn run(state: Option<Organisation>, command: OrganisationCommand) -> Organisation {
        let events = Organisation::decide(state.as_ref(), &command, &ctx()).expect("allowed");
        events
            .iter()
            .fold(state, Organisation::apply)
            .expect("registered")
    }

    fn register(kind: OrganisationKind) -> Organisation {
        run(
            None,
            OrganisationCommand::Register {
                organisation_id: OrganisationId::new(),
                name: "Safe Passage".into(),
                kind,
                country: "FR".into(),
            },
        )
    }

    #[test]
    fn a_programme_works_with_itself_and_the_partners_it_records() {
        let programme = register(OrganisationKind::Programme);
        let partner = OrganisationId::new();
        assert!(programme.works_with(programme.id));
        assert!(!programme.works_with(partner));
        let programme = run(
            Some(programme),
            OrganisationCommand::StartWorkingWith { partner },
        );
        assert!(programme.works_with(partner));
        let programme = run(
            Some(programme),
            OrganisationCommand::StopWorkingWith { partner },
        );
        assert!(!programme.works_with(partner));
        assert_eq!(programme.version, 3);
    }

    #[test]
    fn partnerships_are_refused_when_they_mean_nothing() {
        let programme = register(OrganisationKind::Programme);
        let partner = register(OrganisationKind::Partner);
        let decide = |o: &Organisation, c| Organisation::decide(Some(o), &c, &ctx());
        assert_eq!(
            decide(
                &programme,
                OrganisationCommand::StartWorkingWith {
                    partner: programme.id
                }
            ),
            Err(OrganisationError::WithItself)
        );
        assert_eq!(
            decide(
                &partner,
                OrganisationCommand::StartWorkingWith {
                    partner: programme.id
                }
            ),
            Err(OrganisationError::NotAProgramme("partner"))
        );
        assert_eq!(
            decide(
                &programme,
                OrganisationCommand::StopWorkingWith {
                    partner: partner.id
                }
            ),
            Err(OrganisationError::NotPartners(partner.id))
        );
    }

    #[test]
    fn a_programme_keeps_data_five_years_unless_it_sets_otherwise() {
        let programme = register(OrganisationKind::Programme);
        assert_eq!(programme.retention_months, 60);
        let decide = |o: &Organisation, months| {
            Organisation::decide(
                Some(o),
                &OrganisationCommand::SetRetention { months },
                &ctx(),
            )
        };
        assert_eq!(
            decide(&programme, 0),
            Err(OrganisationError::RetentionOutOfRange(0))
        );
        assert_eq!(
            decide(&programme, 70_000),
            Err(OrganisationError::RetentionOutOfRange(70_000))
        );
        assert_eq!(
            decide(&register(OrganisationKind::Partner), 24),
            Err(OrganisationError::KeepsNoSurvivors("partner"))
        );
        let programme = run(
            Some(programme),
            OrganisationCommand::SetRetention { months: 24 },
        );
        assert_eq!(programme.retention_months, 24);
    }

    #[test]
    fn names_and_countries_are_validated() {
        let refused = Organisation::decide(
            None,
            &OrganisationCommand::Register {
                organisation_id: OrganisationId::new(),
                name: "Safe\u{202e}Passage".into(),
                kind: OrganisationKind::Partner,
                country: "XX1".into(),
            },
            &ctx(),
        );
        assert!(matches!(refused, Err(OrganisationError::Text(_))));
    }
}
