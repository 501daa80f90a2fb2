//! Golden fixtures of the stored event forms (`tests/fixtures/<aggregate>/<type>.v<N>.json`).
//!
//! Every stored (event_type, schema_version) has a fixture that must keep decoding, with
//! `decode` and `decode_str`; current-version fixtures must also re-encode to exactly the same
//! payload. Every event type of the three enums must have a fixture at every version from 1 to
//! its current one, so adding an event type or bumping a version without a fixture fails here.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use homeward_workflows::organisation::OrganisationEvent;
use homeward_workflows::party::PartyEvent;
use homeward_workflows::person::PersonEvent;
use homeward_workflows::plan::{
    CloseReason, ConcernArea, ConsentPurpose, PlanCommand, PlanEvent, PlanOpened, ReminderKind,
    TemplateRef, Wellbeing,
};
use homeward_workflows::text::CountryCode;
use homeward_workflows::upcast::{
    current_schema_version, decode, decode_str, encode, legacy_organisation, DecodeError,
};
use homeward_workflows::DomainEvent;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use support::*;

const AGGREGATES: [&str; 4] = ["plan", "person", "party", "organisation"];

#[derive(Debug)]
struct Fixture {
    path: PathBuf,
    aggregate: String,
    event_type: String,
    schema_version: i16,
    payload: Value,
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn load_fixtures() -> Vec<Fixture> {
    let mut out = Vec::new();
    let mut dirs: Vec<_> = fs::read_dir(fixtures_dir())
        .expect("tests/fixtures exists")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    dirs.sort();
    for dir in dirs {
        assert!(dir.is_dir(), "unexpected file {}", dir.display());
        let aggregate = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a UTF-8 directory name")
            .to_owned();
        assert!(
            AGGREGATES.contains(&aggregate.as_str()),
            "unknown fixture directory {aggregate}"
        );
        let mut files: Vec<_> = fs::read_dir(&dir)
            .expect("a readable fixture directory")
            .map(|e| e.expect("a directory entry").path())
            .collect();
        files.sort();
        for path in files {
            let text = fs::read_to_string(&path).expect("a readable fixture");
            let json: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            let event_type = json["event_type"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: no event_type", path.display()))
                .to_owned();
            let schema_version = json["schema_version"]
                .as_i64()
                .and_then(|v| i16::try_from(v).ok())
                .unwrap_or_else(|| panic!("{}: no schema_version", path.display()));
            let payload = json
                .get("payload")
                .cloned()
                .unwrap_or_else(|| panic!("{}: no payload", path.display()));
            let expected_name = format!("{event_type}.v{schema_version}.json");
            assert_eq!(
                path.file_name().and_then(|n| n.to_str()),
                Some(expected_name.as_str()),
                "fixture files are named <event_type>.v<schema_version>.json"
            );
            out.push(Fixture {
                path,
                aggregate: aggregate.clone(),
                event_type,
                schema_version,
                payload,
            });
        }
    }
    out
}

fn fixture(aggregate: &str, event_type: &str, version: i16) -> Fixture {
    load_fixtures()
        .into_iter()
        .find(|f| {
            f.aggregate == aggregate && f.event_type == event_type && f.schema_version == version
        })
        .unwrap_or_else(|| panic!("no fixture {aggregate}/{event_type}.v{version}.json"))
}

/// The stored names of every variant of an event enum, as serde knows them: from the error for
/// an unknown variant ("expected one of `a`, `b`, ..."). No hand-kept list to forget to update.
fn variant_names<E: DeserializeOwned>() -> Vec<String> {
    let error = match serde_json::from_value::<E>(json!({ "__not_an_event__": null })) {
        Ok(_) => panic!("an unknown event type decoded"),
        Err(e) => e.to_string(),
    };
    let (_, expected) = error
        .split_once("expected")
        .unwrap_or_else(|| panic!("unexpected serde message: {error}"));
    let names: Vec<String> = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    assert!(!names.is_empty(), "no variant names in: {error}");
    names
}

/// Decodes a fixture with both decoders, checks they agree and that the event knows its type.
fn decode_both<E: DomainEvent + PartialEq>(f: &Fixture) -> E {
    let from_value: E = decode(&f.event_type, f.schema_version, f.payload.clone())
        .unwrap_or_else(|e| panic!("{}: decode failed: {e}", f.path.display()));
    let text = serde_json::to_string(&f.payload).expect("payload to text");
    let from_str: E = decode_str(&f.event_type, f.schema_version, &text)
        .unwrap_or_else(|e| panic!("{}: decode_str failed: {e}", f.path.display()));
    assert_eq!(
        from_value,
        from_str,
        "{}: the decoders disagree",
        f.path.display()
    );
    assert_eq!(
        from_value.event_type(),
        f.event_type,
        "{}: decoded into another event type",
        f.path.display()
    );
    from_value
}

/// Re-encodes a decoded fixture: always at the current version, and for a current-version
/// fixture to exactly the stored payload (the stored form is frozen).
fn check_reencoding<E: DomainEvent + PartialEq>(f: &Fixture, event: &E) {
    let (event_type, version, payload) = encode(event);
    assert_eq!(event_type, f.event_type);
    assert_eq!(version, current_schema_version(&f.event_type));
    if f.schema_version == version {
        assert_eq!(
            payload,
            f.payload,
            "{}: the stored form of this event changed; add a new schema version and an \
             upcaster instead",
            f.path.display()
        );
    }
    let again: E = decode(event_type, version, payload).expect("re-encoded events decode");
    assert_eq!(
        &again,
        event,
        "{}: encode/decode does not roundtrip",
        f.path.display()
    );
}

fn check_fixture(f: &Fixture) {
    match f.aggregate.as_str() {
        "plan" => {
            let e: PlanEvent = decode_both(f);
            check_reencoding(f, &e);
        }
        "person" => {
            let e: PersonEvent = decode_both(f);
            check_reencoding(f, &e);
        }
        "party" => {
            let e: PartyEvent = decode_both(f);
            check_reencoding(f, &e);
        }
        "organisation" => {
            let e: OrganisationEvent = decode_both(f);
            check_reencoding(f, &e);
        }
        other => panic!("unknown aggregate {other}"),
    }
}

#[test]
fn every_fixture_decodes_into_its_event_type_and_reencodes_to_the_stored_form() {
    let fixtures = load_fixtures();
    assert!(
        fixtures.len() >= 33,
        "only {} fixtures found",
        fixtures.len()
    );
    for f in &fixtures {
        check_fixture(f);
    }
}

#[test]
fn every_event_type_has_a_fixture_at_every_version_up_to_its_current_one() {
    let fixtures = load_fixtures();
    let stored: BTreeSet<(String, String, i16)> = fixtures
        .iter()
        .map(|f| (f.aggregate.clone(), f.event_type.clone(), f.schema_version))
        .collect();
    let enums = [
        ("plan", variant_names::<PlanEvent>()),
        ("person", variant_names::<PersonEvent>()),
        ("party", variant_names::<PartyEvent>()),
        ("organisation", variant_names::<OrganisationEvent>()),
    ];
    assert_eq!(enums[0].1.len(), 30, "plan event types: {:?}", enums[0].1);
    let mut missing = Vec::new();
    let mut expected = BTreeSet::new();
    for (aggregate, names) in &enums {
        for name in names {
            for version in 1..=current_schema_version(name) {
                let k = (aggregate.to_string(), name.clone(), version);
                if !stored.contains(&k) {
                    missing.push(format!("{aggregate}/{name}.v{version}.json"));
                }
                expected.insert(k);
            }
        }
    }
    assert!(missing.is_empty(), "missing golden fixtures: {missing:#?}");
    let unexpected: Vec<_> = stored.difference(&expected).collect();
    assert!(
        unexpected.is_empty(),
        "fixtures for unknown event types or future versions: {unexpected:?}"
    );
}

#[test]
fn plan_opened_v1_is_upcast_with_its_country_as_origin_country_and_an_unknown_organisation() {
    let v1 = fixture("plan", "plan_opened", 1);
    let v3 = fixture("plan", "plan_opened", 3);
    let old: PlanEvent = decode_both(&v1);
    let current: PlanEvent = decode_both(&v3);
    let PlanEvent::PlanOpened(old) = old else {
        panic!("not a plan_opened: {old:?}")
    };
    assert_eq!(old.origin_country, CountryCode::parse("NG").expect("NG"));
    assert_eq!(old.organisation, legacy_organisation("unknown"));
    assert_eq!(
        old.template,
        TemplateRef {
            name: "standard-avr".to_owned(),
            version: 1
        }
    );
    assert_eq!(old.opened_at, utc(2026, 1, 5, 9, 0));
    // Apart from the organisation it did not record, v1 carries the same facts as v3.
    let PlanEvent::PlanOpened(current) = current else {
        panic!("not a plan_opened")
    };
    assert_eq!(
        PlanOpened {
            organisation: current.organisation,
            ..old.clone()
        },
        current
    );
    // Re-encoding writes the current version, never the old shape.
    let (_, version, payload) = encode(&PlanEvent::PlanOpened(old));
    assert_eq!(version, 3);
    assert!(payload.get("country").is_none());
    assert_eq!(payload["origin_country"], json!("NG"));
    assert_eq!(
        payload["organisation"],
        json!(legacy_organisation("unknown").to_string())
    );
}

/// Events written when organisations were names keep the grouping they had: the same name gives
/// the same id, another name another id.
#[test]
fn organisations_named_in_older_events_become_ids_of_their_names() {
    let plan: PlanEvent = decode_both(&fixture("plan", "plan_opened", 2));
    let PlanEvent::PlanOpened(plan) = plan else {
        panic!("not a plan_opened")
    };
    let updated: PartyEvent = decode_both(&fixture("party", "party_updated", 1));
    let PartyEvent::PartyUpdated { profile } = updated else {
        panic!("not a party_updated")
    };
    assert_eq!(plan.organisation, legacy_organisation("Homeward Lyon"));
    assert_eq!(profile.organisation, plan.organisation);
    let registered: PartyEvent = decode_both(&fixture("party", "party_registered", 1));
    let PartyEvent::PartyRegistered { profile, .. } = registered else {
        panic!("not a party_registered")
    };
    assert_ne!(profile.organisation, plan.organisation);
    assert_ne!(
        legacy_organisation("Homeward Lyon"),
        legacy_organisation("homeward lyon")
    );
}

/// A person registered before the registering organisation was recorded belongs to none: no
/// organisation can open a plan for them by accident.
#[test]
fn a_person_registered_before_organisations_had_ids_belongs_to_no_organisation() {
    let old: PersonEvent = decode_both(&fixture("person", "person_registered", 1));
    let PersonEvent::PersonRegistered { organisation, .. } = old else {
        panic!("not a person_registered")
    };
    assert!(organisation.0.is_nil());
}

#[test]
fn a_v1_plan_opened_that_already_names_its_organisation_keeps_it() {
    let mut payload = fixture("plan", "plan_opened", 1).payload;
    payload["organisation"] = json!("Homeward Marseille");
    let event: PlanEvent = decode("plan_opened", 1, payload).expect("decodes");
    let PlanEvent::PlanOpened(opened) = event else {
        panic!("not a plan_opened")
    };
    assert_eq!(
        opened.organisation,
        legacy_organisation("Homeward Marseille")
    );
}

#[test]
fn a_v1_plan_opened_without_a_country_cannot_be_upcast() {
    let mut payload = fixture("plan", "plan_opened", 1).payload;
    payload
        .as_object_mut()
        .expect("an object")
        .remove("country");
    let text = payload.to_string();
    for result in [
        decode::<PlanEvent>("plan_opened", 1, payload),
        decode_str::<PlanEvent>("plan_opened", 1, &text),
    ] {
        match result {
            Err(DecodeError::Upcast {
                event_type,
                version,
                message,
            }) => {
                assert_eq!((event_type.as_str(), version), ("plan_opened", 1));
                assert_eq!(message, "plan_opened v1 has no country");
            }
            other => panic!("expected an upcast error, got {other:?}"),
        }
    }
}

#[test]
fn an_event_from_a_newer_schema_version_is_refused_with_a_clear_error() {
    let payload = fixture("plan", "plan_opened", 3).payload;
    let text = payload.to_string();
    for result in [
        decode::<PlanEvent>("plan_opened", 4, payload),
        decode_str::<PlanEvent>("plan_opened", 4, &text),
    ] {
        match result {
            Err(DecodeError::FromTheFuture {
                event_type,
                version,
                current,
            }) => assert_eq!(
                (event_type.as_str(), version, current),
                ("plan_opened", 4, 3)
            ),
            other => panic!("expected FromTheFuture, got {other:?}"),
        }
    }
    assert!(matches!(
        decode::<PlanEvent>("step_completed", 2, json!({"step": "passport"})),
        Err(DecodeError::FromTheFuture { .. })
    ));
}

#[test]
fn a_schema_version_with_no_upcaster_is_refused() {
    let result = decode::<PlanEvent>("step_completed", 0, json!({"step": "passport"}));
    match result {
        Err(DecodeError::Upcast { message, .. }) => {
            assert_eq!(message, "no upcaster from version 0")
        }
        other => panic!("expected an upcast error, got {other:?}"),
    }
}

#[test]
fn malformed_payloads_are_refused_as_json_errors() {
    let cases: Vec<(&str, Value)> = vec![
        ("step_completed", json!({})),
        ("step_completed", json!({"step": "Not A Key"})),
        ("step_completed", Value::Null),
        ("no_such_event", json!({"step": "passport"})),
        (
            "document_status_updated",
            json!({"step": "passport", "status": "lost"}),
        ),
        (
            "consent_recorded",
            json!({"purpose": {"purpose": "gossip"}}),
        ),
    ];
    for (event_type, payload) in cases {
        let text = payload.to_string();
        for result in [
            decode::<PlanEvent>(event_type, 1, payload.clone()),
            decode_str::<PlanEvent>(event_type, 1, &text),
        ] {
            assert!(
                matches!(result, Err(DecodeError::Json { .. })),
                "{event_type} {payload}: {result:?}"
            );
        }
    }
    assert!(matches!(
        decode_str::<PlanEvent>("step_completed", 1, "{\"step\": "),
        Err(DecodeError::Json { .. })
    ));
    assert!(matches!(
        decode_str::<PlanEvent>("step_completed", 1, "{\"step\": \"passport\"} trailing"),
        Err(DecodeError::Json { .. })
    ));
}

#[test]
fn an_event_of_another_aggregate_does_not_decode_as_a_plan_event() {
    let f = fixture("person", "person_registered", 1);
    assert!(matches!(
        decode::<PlanEvent>(&f.event_type, f.schema_version, f.payload),
        Err(DecodeError::Json { .. })
    ));
}

#[test]
fn personal_data_decoded_from_the_log_stays_out_of_debug_output() {
    let f = fixture("person", "person_registered", 1);
    let event: PersonEvent = decode_both(&f);
    let debug = format!("{event:?}");
    for secret in ["Amina", "amina@example.org", "+33", "1998"] {
        assert!(!debug.contains(secret), "{secret} leaked into {debug}");
    }
}

/// A plan history that touches every plan event type, built with real commands.
fn full_story() -> Vec<PlanEvent> {
    use homeward_workflows::plan::{Goal, Priority, ReminderPolicy};
    let story = Story::opened()
        .run(PlanCommand::SetGoals {
            goals: vec![Goal {
                area: ConcernArea::Income,
                aim: "Open a tailoring workshop".to_owned().into(),
            }],
        })
        .run(PlanCommand::RemoveStep {
            step: key("legal_clearance"),
            reason: "None pending".to_owned(),
        })
        .run(PlanCommand::RescheduleStep {
            step: key("medical_check"),
            due: None,
            follow_up_on: Some(date(2026, 1, 20)),
        })
        .run(PlanCommand::PrioritiseStep {
            step: key("medical_check"),
            priority: Priority::Urgent,
        })
        .run(PlanCommand::SetReminderPolicy {
            step: key("passport"),
            policy: ReminderPolicy::default(),
        })
        .run(PlanCommand::ChangeDependencies {
            step: key("family_mediation"),
            depends_on: vec![key("origin_contact"), key("medical_check")],
        })
        .assigned("passport", LIAISON)
        .consented_to(ConsentPurpose::DataSharing { partner: PARTNER })
        .consented_to(ConsentPurpose::FamilyContact)
        .run(PlanCommand::BlockStep {
            step: key("passport"),
            reason: "Embassy closed".to_owned(),
        })
        .run(PlanCommand::UnblockStep {
            step: key("passport"),
        })
        .run(PlanCommand::AcknowledgeStep {
            step: key("passport"),
        })
        .run(PlanCommand::ReassignCaseWorker { case_worker: ACTOR })
        .run(PlanCommand::RecordReminderSent {
            step: key("passport"),
            kind: ReminderKind::BeforeDue,
            fire_at: opened_at() + days(42),
            recipient: LIAISON,
        })
        .run(PlanCommand::RecordReminderSent {
            step: key("passport"),
            kind: ReminderKind::Escalation,
            fire_at: opened_at() + days(59),
            recipient: CASE_WORKER,
        })
        .run(PlanCommand::RecordReminderFailed {
            step: key("passport"),
            kind: ReminderKind::OnDue,
            fire_at: opened_at() + days(45),
            recipient: LIAISON,
            reason: "550 mailbox unavailable".to_owned(),
        })
        .returned()
        .withdrew(ConsentPurpose::Return)
        .consented()
        .cancelled("family_mediation", "The survivor decided against it");
    let visited_on = (story.now() + days(1)).date_naive();
    story
        .run(PlanCommand::RecordFollowUp {
            step: key("follow_up_1"),
            visited_on,
            wellbeing: Wellbeing::Good,
            concerns: vec![ConcernArea::Stigma],
        })
        .run(PlanCommand::ClosePlan {
            reason: CloseReason::Reintegrated,
        })
        .events()
}

#[test]
fn encoding_then_decoding_every_event_of_a_full_plan_history_roundtrips() {
    let events = full_story();
    let mut types = BTreeSet::new();
    for event in &events {
        let (event_type, version, payload) = encode(event);
        assert_eq!(event_type, event.event_type());
        assert_eq!(version, current_schema_version(event_type));
        let text = serde_json::to_string(&payload).expect("payload to text");
        let from_value: PlanEvent =
            decode(event_type, version, payload).expect("an encoded event decodes");
        let from_str: PlanEvent =
            decode_str(event_type, version, &text).expect("an encoded event decodes from text");
        assert_eq!(&from_value, event);
        assert_eq!(&from_str, event);
        types.insert(event_type.to_owned());
    }
    let all: BTreeSet<String> = variant_names::<PlanEvent>().into_iter().collect();
    let untouched: Vec<_> = all.difference(&types).collect();
    assert!(
        untouched.is_empty(),
        "the full story does not produce {untouched:?}"
    );
}

#[test]
fn person_and_party_events_roundtrip_through_encode_and_decode() {
    for f in load_fixtures() {
        match f.aggregate.as_str() {
            "person" => {
                let e: PersonEvent = decode_both(&f);
                let (t, v, p) = encode(&e);
                assert_eq!(decode::<PersonEvent>(t, v, p).expect("decodes"), e);
            }
            "party" => {
                let e: PartyEvent = decode_both(&f);
                let (t, v, p) = encode(&e);
                assert_eq!(decode::<PartyEvent>(t, v, p).expect("decodes"), e);
            }
            _ => {}
        }
    }
}

#[test]
fn unit_events_are_stored_without_a_payload() {
    for event in [
        PlanEvent::PlanActivated,
        PlanEvent::PlanSuspended,
        PlanEvent::PlanResumed,
        PlanEvent::MonitoringStarted,
    ] {
        let (event_type, version, payload) = encode(&event);
        assert_eq!((version, &payload), (1, &Value::Null), "{event_type}");
        assert_eq!(
            decode_str::<PlanEvent>(event_type, version, "null").expect("decodes"),
            event
        );
    }
}
