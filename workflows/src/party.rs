//! Responsible parties: social workers, supervisors, government liaisons, partner contacts and
//! admins. A party has the email, language and time zone its reminders are written for.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use chrono::{DateTime, Utc};

use crate::aggregate::{Aggregate, Context, DomainEvent};
use crate::ids::{OrganisationId, PartyId};
use crate::schedule::{DigestCron, QuietHours, ScheduleError};
use crate::text::{
    bounded, bounded_lines, email, one_line, time_zone, CountryCode, Language, TextError,
};

pub const MAX_NAME: usize = 200;
pub const MAX_REASON: usize = 1000;

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
pub enum PartyRole {
    SocialWorker,
    Supervisor,
    GovernmentLiaison,
    PartnerContact,
    Admin,
}

impl PartyRole {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The role named by [`PartyRole::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        name.parse().ok()
    }
}

/// A party's details as given (before validation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyDetails {
    pub display_name: String,
    pub email: String,
    pub role: PartyRole,
    pub organisation: OrganisationId,
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
    pub organisation: OrganisationId,
    pub country: CountryCode,
    pub language: Language,
    pub time_zone: String,
    pub supervisor: Option<PartyId>,
}

/// How and when a party hears from the scheduler.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderSettings {
    pub quiet_hours: QuietHours,
    pub digest: Option<Digest>,
}

/// A digest of open and overdue tasks on a cron schedule in the party's time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub cron: DigestCron,
    /// When the schedule was set: the first digest is the first occurrence after it.
    pub since: DateTime<Utc>,
    /// The occurrence the last digest covered (sent or given up).
    pub last_covered: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub id: PartyId,
    pub version: u64,
    pub profile: PartyProfile,
    #[serde(default)]
    pub reminders: ReminderSettings,
    /// Why the party was deactivated, while they are: no tokens, reminders, links or new
    /// duties.
    #[serde(default)]
    pub deactivated: Option<String>,
}

impl Party {
    pub fn is_active(&self) -> bool {
        self.deactivated.is_none()
    }

    /// When the next digest is due, if the party has a schedule (and is active).
    pub fn next_digest_at(&self) -> Option<DateTime<Utc>> {
        if !self.is_active() {
            return None;
        }
        let digest = self.reminders.digest.as_ref()?;
        let after = digest
            .last_covered
            .unwrap_or(digest.since)
            .max(digest.since);
        digest.cron.next_after(after, &self.profile.time_zone)
    }
}

/// Reminder settings as given (before validation). They replace the settings as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderSettingsInput {
    pub language: String,
    pub time_zone: String,
    /// `None`: no digest.
    pub digest_cron: Option<String>,
    /// `None`: the default quiet hours (20:00–08:00).
    pub quiet_hours: Option<(String, String)>,
}

/// Named in snake case (`complete_step`) for metrics and logs.
#[derive(Debug, Clone, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum PartyCommand {
    Register {
        party_id: PartyId,
        details: PartyDetails,
    },
    Update {
        details: PartyDetails,
    },
    SetReminderSettings(ReminderSettingsInput),
    /// The scheduler reports the digest it delivered for the occurrence `covering`.
    RecordDigestSent {
        covering: DateTime<Utc>,
        open_tasks: u32,
        overdue_tasks: u32,
    },
    /// The scheduler gives up on the digest for `covering`.
    RecordDigestFailed {
        covering: DateTime<Utc>,
        reason: String,
    },
    /// The party no longer works with Homeward (for now): why.
    Deactivate {
        reason: String,
    },
    Reactivate,
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
    #[serde(rename = "reminder_settings_changed")]
    ReminderSettingsChanged {
        language: Language,
        time_zone: String,
        quiet_hours: QuietHours,
        digest: Option<DigestCron>,
        changed_at: DateTime<Utc>,
    },
    #[serde(rename = "digest_sent")]
    DigestSent {
        covering: DateTime<Utc>,
        open_tasks: u32,
        overdue_tasks: u32,
    },
    #[serde(rename = "digest_failed")]
    DigestFailed {
        covering: DateTime<Utc>,
        reason: String,
    },
    #[serde(rename = "party_deactivated")]
    PartyDeactivated { reason: String },
    #[serde(rename = "party_reactivated")]
    PartyReactivated,
}

impl DomainEvent for PartyEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::PartyRegistered { .. } => "party_registered",
            Self::PartyUpdated { .. } => "party_updated",
            Self::ReminderSettingsChanged { .. } => "reminder_settings_changed",
            Self::DigestSent { .. } => "digest_sent",
            Self::DigestFailed { .. } => "digest_failed",
            Self::PartyDeactivated { .. } => "party_deactivated",
            Self::PartyReactivated => "party_reactivated",
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
    #[error("this party has no digest schedule")]
    NoDigest,
    #[error("this party is already deactivated")]
    AlreadyDeactivated,
    #[error("this party is active")]
    AlreadyActive,
    #[error("the digest for {0} is already recorded")]
    DigestAlreadyRecorded(DateTime<Utc>),
    #[error(transparent)]
    Text(#[from] TextError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
}

/// A party's details as they would be recorded, or why they cannot be.
pub fn validate(id: PartyId, d: &PartyDetails) -> Result<PartyProfile, PartyError> {
    if d.supervisor == Some(id) {
        return Err(PartyError::OwnSupervisor);
    }
    Ok(PartyProfile {
        display_name: bounded("display name", &d.display_name, MAX_NAME)?,
        email: email(&d.email)?,
        role: d.role,
        organisation: d.organisation,
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

    fn command_name(command: &Self::Command) -> &'static str {
        command.into()
    }

    fn apply(state: Option<Self>, event: &PartyEvent) -> Option<Self> {
        match (state, event) {
            (None, PartyEvent::PartyRegistered { party_id, profile }) => Some(Party {
                id: *party_id,
                version: 1,
                profile: profile.clone(),
                reminders: ReminderSettings::default(),
                deactivated: None,
            }),
            (None, _) => None,
            (Some(mut p), e) => {
                p.version += 1;
                match e {
                    PartyEvent::PartyRegistered { .. } => {}
                    PartyEvent::PartyUpdated { profile } => p.profile = profile.clone(),
                    PartyEvent::ReminderSettingsChanged {
                        language,
                        time_zone,
                        quiet_hours,
                        digest,
                        changed_at,
                    } => {
                        p.profile.language = language.clone();
                        p.profile.time_zone = time_zone.clone();
                        p.reminders = ReminderSettings {
                            quiet_hours: *quiet_hours,
                            digest: digest.clone().map(|cron| Digest {
                                cron,
                                since: *changed_at,
                                last_covered: None,
                            }),
                        };
                    }
                    PartyEvent::DigestSent { covering, .. }
                    | PartyEvent::DigestFailed { covering, .. } => {
                        if let Some(d) = &mut p.reminders.digest {
                            d.last_covered = Some(*covering);
                        }
                    }
                    PartyEvent::PartyDeactivated { reason } => {
                        p.deactivated = Some(reason.clone());
                    }
                    PartyEvent::PartyReactivated => p.deactivated = None,
                }
                Some(p)
            }
        }
    }

    fn decide(
        state: Option<&Self>,
        command: &PartyCommand,
        ctx: &Context,
    ) -> Result<Vec<PartyEvent>, PartyError> {
        match (state, command) {
            (None, PartyCommand::Register { party_id, details }) => {
                Ok(vec![PartyEvent::PartyRegistered {
                    party_id: *party_id,
                    profile: validate(*party_id, details)?,
                }])
            }
            (Some(_), PartyCommand::Register { .. }) => Err(PartyError::AlreadyRegistered),
            (Some(p), PartyCommand::Update { details }) => Ok(vec![PartyEvent::PartyUpdated {
                profile: validate(p.id, details)?,
            }]),
            (None, _) => Err(PartyError::NotRegistered),
            (Some(_), PartyCommand::SetReminderSettings(input)) => {
                Ok(vec![PartyEvent::ReminderSettingsChanged {
                    language: Language::parse(&input.language)?,
                    time_zone: time_zone(&input.time_zone)?.name().to_owned(),
                    quiet_hours: match &input.quiet_hours {
                        Some((start, end)) => QuietHours::parse(start, end)?,
                        None => QuietHours::default(),
                    },
                    digest: input
                        .digest_cron
                        .as_deref()
                        .map(DigestCron::parse)
                        .transpose()?,
                    changed_at: ctx.now,
                }])
            }
            (
                Some(p),
                PartyCommand::RecordDigestSent {
                    covering,
                    open_tasks,
                    overdue_tasks,
                },
            ) => {
                digest_not_yet_recorded(p, *covering)?;
                Ok(vec![PartyEvent::DigestSent {
                    covering: *covering,
                    open_tasks: *open_tasks,
                    overdue_tasks: *overdue_tasks,
                }])
            }
            (Some(p), PartyCommand::Deactivate { reason }) => {
                if !p.is_active() {
                    return Err(PartyError::AlreadyDeactivated);
                }
                Ok(vec![PartyEvent::PartyDeactivated {
                    reason: bounded_lines("reason", reason, MAX_REASON)?,
                }])
            }
            (Some(p), PartyCommand::Reactivate) => {
                if p.is_active() {
                    return Err(PartyError::AlreadyActive);
                }
                Ok(vec![PartyEvent::PartyReactivated])
            }
            (Some(p), PartyCommand::RecordDigestFailed { covering, reason }) => {
                digest_not_yet_recorded(p, *covering)?;
                Ok(vec![PartyEvent::DigestFailed {
                    covering: *covering,
                    reason: one_line(&reason.chars().take(900).collect::<String>()),
                }])
            }
        }
    }
}

/// A digest is recorded once per occurrence, in order: a worker that crashed after sending and
/// another that sent it again record it only once.
fn digest_not_yet_recorded(p: &Party, covering: DateTime<Utc>) -> Result<(), PartyError> {
    let digest = p.reminders.digest.as_ref().ok_or(PartyError::NoDigest)?;
    if digest.last_covered.is_some_and(|last| last >= covering) {
        return Err(PartyError::DigestAlreadyRecorded(covering));
    }
    Ok(())
}
