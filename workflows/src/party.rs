//! Responsible parties: social workers, supervisors, government liaisons, partner contacts and
//! admins. A party has the email, language and time zone its reminders are written for.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::aggregate::{Aggregate, Context, DomainEvent};
use crate::ids::PartyId;
use crate::text::{bounded, email, time_zone, CountryCode, Language, TextError};

pub const MAX_NAME: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartyRole {
    SocialWorker,
    Supervisor,
    GovernmentLiaison,
    PartnerContact,
    Admin,
}

impl PartyRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SocialWorker => "social_worker",
            Self::Supervisor => "supervisor",
            Self::GovernmentLiaison => "government_liaison",
            Self::PartnerContact => "partner_contact",
            Self::Admin => "admin",
        }
    }

    /// The role named by [`PartyRole::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::SocialWorker,
            Self::Supervisor,
            Self::GovernmentLiaison,
            Self::PartnerContact,
            Self::Admin,
        ]
        .into_iter()
        .find(|r| r.as_str() == name)
    }
}

/// A party's details as given (before validation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyDetails {
    pub display_name: String,
    pub email: String,
    pub role: PartyRole,
    pub organisation: String,
    pub country: String,
    pub language: String,
    pub time_zone: String,
    pub supervisor: Option<PartyId>,
}

/// A party's details as recorded (validated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyProfile {
    pub display_name: String,
    pub email: String,
    pub role: PartyRole,
    pub organisation: String,
    pub country: CountryCode,
    pub language: Language,
    pub time_zone: String,
    pub supervisor: Option<PartyId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub id: PartyId,
    pub version: u64,
    pub profile: PartyProfile,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartyCommand {
    Register {
        party_id: PartyId,
        details: PartyDetails,
    },
    Update {
        details: PartyDetails,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartyEvent {
    #[serde(rename = "party_registered")]
    PartyRegistered {
        party_id: PartyId,
        profile: PartyProfile,
    },
    #[serde(rename = "party_updated")]
    PartyUpdated { profile: PartyProfile },
}

impl DomainEvent for PartyEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::PartyRegistered { .. } => "party_registered",
            Self::PartyUpdated { .. } => "party_updated",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PartyError {
    #[error("this party is already registered")]
    AlreadyRegistered,
    #[error("no such party: register it first")]
    NotRegistered,
    #[error("a party cannot be its own supervisor")]
    OwnSupervisor,
    #[error(transparent)]
    Text(#[from] TextError),
}

fn validate(id: PartyId, d: &PartyDetails) -> Result<PartyProfile, PartyError> {
    if d.supervisor == Some(id) {
        return Err(PartyError::OwnSupervisor);
    }
    Ok(PartyProfile {
        display_name: bounded("display name", &d.display_name, MAX_NAME)?,
        email: email(&d.email)?,
        role: d.role,
        organisation: bounded("organisation", &d.organisation, MAX_NAME)?,
        country: CountryCode::parse(&d.country)?,
        language: Language::parse(&d.language)?,
        time_zone: time_zone(&d.time_zone)?.name().to_owned(),
        supervisor: d.supervisor,
    })
}

impl Aggregate for Party {
    type Command = PartyCommand;
    type Event = PartyEvent;
    type Error = PartyError;
    const STREAM_PREFIX: &'static str = "party";

    fn apply(state: Option<Self>, event: &PartyEvent) -> Option<Self> {
        match (state, event) {
            (None, PartyEvent::PartyRegistered { party_id, profile }) => Some(Party {
                id: *party_id,
                version: 1,
                profile: profile.clone(),
            }),
            (None, _) => None,
            (Some(mut p), e) => {
                p.version += 1;
                if let PartyEvent::PartyUpdated { profile } = e {
                    p.profile = profile.clone();
                }
                Some(p)
            }
        }
    }

    fn decide(
        state: Option<&Self>,
        command: &PartyCommand,
        _ctx: &Context,
    ) -> Result<Vec<PartyEvent>, PartyError> {
        match (state, command) {
            (None, PartyCommand::Register { party_id, details }) => {
                Ok(vec![PartyEvent::PartyRegistered {
                    party_id: *party_id,
                    profile: validate(*party_id, details)?,
                }])
            }
            (Some(_), PartyCommand::Register { .. }) => Err(PartyError::AlreadyRegistered),
            (None, PartyCommand::Update { .. }) => Err(PartyError::NotRegistered),
            (Some(p), PartyCommand::Update { details }) => Ok(vec![PartyEvent::PartyUpdated {
                profile: validate(p.id, details)?,
            }]),
        }
    }
}
