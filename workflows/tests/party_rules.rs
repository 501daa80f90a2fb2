//! Given/when/then for a party's reminder settings and digests.

mod support;

use homeward_workflows::party::{
    PartyCommand, PartyDetails, PartyError, PartyEvent, PartyRole, ReminderSettingsInput,
};
use homeward_workflows::schedule::{DigestCron, QuietHours, ScheduleError};
use homeward_workflows::text::{Language, TextError};
use support::*;

fn registered() -> Vec<PartyEvent> {
    let (events, _) = given_nothing::<PartyEvent>()
        .when(PartyCommand::Register {
            party_id: PARTNER,
            details: PartyDetails {
                display_name: "Grace Partner".to_owned(),
                email: "grace@partner.example.org".to_owned(),
                role: PartyRole::PartnerContact,
                organisation: ORGANISATION,
                country: "NG".to_owned(),
                language: "en".to_owned(),
                time_zone: "Africa/Lagos".to_owned(),
                supervisor: None,
            },
        })
        .then_accepted();
    events
}

fn settings(digest: Option<&str>) -> ReminderSettingsInput {
    ReminderSettingsInput {
        language: " FR ".to_owned(),
        time_zone: "europe/paris".to_owned(),
        digest_cron: digest.map(str::to_owned),
        quiet_hours: Some(("21:00".to_owned(), "07:30".to_owned())),
    }
}

#[test]
fn reminder_settings_replace_language_time_zone_quiet_hours_and_digest() {
    let party = given(registered())
        .when(PartyCommand::SetReminderSettings(settings(Some(
            "0 8 * * Mon",
        ))))
        .then([PartyEvent::ReminderSettingsChanged {
            language: Language::parse("fr").unwrap(),
            time_zone: "Europe/Paris".to_owned(),
            quiet_hours: QuietHours::parse("21:00", "07:30").unwrap(),
            digest: Some(DigestCron::parse("0 8 * * Mon").unwrap()),
            changed_at: now(),
        }]);
    assert_eq!(party.profile.language.as_str(), "fr");
    // now() is Monday 2 March 2026, 09:00 UTC: past this week's 08:00 in Paris, so the first
    // digest is next Monday at 08:00 Paris (07:00 UTC).
    assert_eq!(party.next_digest_at(), Some(utc(2026, 3, 9, 7, 0)));
}

#[test]
fn without_a_schedule_there_is_no_digest_and_quiet_hours_default() {
    let mut input = settings(None);
    input.quiet_hours = None;
    let party = given(registered())
        .when(PartyCommand::SetReminderSettings(input))
        .then_accepted()
        .1;
    assert_eq!(party.next_digest_at(), None);
    assert_eq!(party.reminders.quiet_hours, QuietHours::default());
}

#[test]
fn bad_settings_are_refused_with_what_to_fix() {
    let cases: Vec<(ReminderSettingsInput, PartyError)> = vec![
        (
            ReminderSettingsInput {
                digest_cron: Some("every monday".to_owned()),
                ..settings(None)
            },
            PartyError::Schedule(ScheduleError::InvalidCron {
                input: "every monday".to_owned(),
                reason: "it has 2 fields".to_owned(),
            }),
        ),
        (
            ReminderSettingsInput {
                digest_cron: Some("*/5 * * * *".to_owned()),
                ..settings(None)
            },
            PartyError::Schedule(ScheduleError::CronTooFrequent("*/5 * * * *".to_owned())),
        ),
        (
            ReminderSettingsInput {
                time_zone: "Mars/Olympus".to_owned(),
                ..settings(None)
            },
            PartyError::Text(TextError::InvalidTimeZone("Mars/Olympus".to_owned())),
        ),
        (
            ReminderSettingsInput {
                language: "xx".to_owned(),
                ..settings(None)
            },
            PartyError::Text(TextError::InvalidLanguage("xx".to_owned())),
        ),
        (
            ReminderSettingsInput {
                quiet_hours: Some(("8pm".to_owned(), "08:00".to_owned())),
                ..settings(None)
            },
            PartyError::Schedule(ScheduleError::InvalidTimeOfDay("8pm".to_owned())),
        ),
    ];
    for (input, error) in cases {
        given(registered())
            .when(PartyCommand::SetReminderSettings(input))
            .then_error(error);
    }
}

#[test]
fn a_digest_is_recorded_once_per_occurrence_and_moves_the_schedule_on() {
    let (mut events, _) = given(registered())
        .when(PartyCommand::SetReminderSettings(settings(Some(
            "0 8 * * Mon",
        ))))
        .then_accepted();
    let history = registered();
    events.splice(0..0, history);
    let monday = utc(2026, 3, 9, 7, 0);
    let sent = PartyCommand::RecordDigestSent {
        covering: monday,
        open_tasks: 2,
        overdue_tasks: 1,
    };
    let (new, party) = given(events.clone()).when(sent.clone()).then_accepted();
    assert_eq!(party.next_digest_at(), Some(utc(2026, 3, 16, 7, 0)));
    events.extend(new);
    given(events.clone())
        .when(sent)
        .then_error(PartyError::DigestAlreadyRecorded(monday));
    given(events)
        .when(PartyCommand::RecordDigestFailed {
            covering: utc(2026, 3, 16, 7, 0),
            reason: "refused".to_owned(),
        })
        .then_accepted();
}

#[test]
fn a_digest_without_a_schedule_is_refused() {
    given(registered())
        .when(PartyCommand::RecordDigestSent {
            covering: now(),
            open_tasks: 0,
            overdue_tasks: 0,
        })
        .then_error(PartyError::NoDigest);
}

#[test]
fn a_deactivated_party_gets_no_digest_until_reactivated() {
    let (mut events, _) = given(registered())
        .when(PartyCommand::SetReminderSettings(settings(Some(
            "0 8 * * Mon",
        ))))
        .then_accepted();
    let mut history = registered();
    history.append(&mut events);
    let party = given(history.clone())
        .when(PartyCommand::Deactivate {
            reason: "Left the programme".to_owned(),
        })
        .then([PartyEvent::PartyDeactivated {
            reason: "Left the programme".to_owned(),
        }]);
    assert!(!party.is_active());
    assert_eq!(party.next_digest_at(), None);
    history.push(PartyEvent::PartyDeactivated {
        reason: "Left the programme".to_owned(),
    });
    given(history.clone())
        .when(PartyCommand::Deactivate {
            reason: "again".to_owned(),
        })
        .then_error(PartyError::AlreadyDeactivated);
    let party = given(history)
        .when(PartyCommand::Reactivate)
        .then([PartyEvent::PartyReactivated]);
    assert!(party.is_active());
    assert_eq!(party.next_digest_at(), Some(utc(2026, 3, 9, 7, 0)));
    given(registered())
        .when(PartyCommand::Reactivate)
        .then_error(PartyError::AlreadyActive);
    given(registered())
        .when(PartyCommand::Deactivate {
            reason: "  ".to_owned(),
        })
        .then_error(PartyError::Text(TextError::Empty { field: "reason" }));
}
