//! A party's reminder settings through GraphQL: language, time zone, quiet hours and a digest
//! schedule; the step's reminder policy. Bad input (cron, time zone, language, time of day,
//! email address) is a coded error with a message that says what to fix, and stores nothing.
#![allow(clippy::unwrap_used)]

use homeward_tests::api::{error_code, TestApi};
use serde_json::{json, Value};

const SET: &str = "mutation($party: ID!, $input: ReminderSettingsInput!) {
    setReminderSettings(party: $party, input: $input) {
        version language timeZone
        reminderSettings { quietHoursStart quietHoursEnd digestSchedule nextDigestAt } } }";

/// Everything a refused request must leave as it was.
async fn footprint(api: &TestApi) -> (i64, Value) {
    let events = api.db.count("SELECT count(*) FROM events").await;
    let snapshot = api.db.projection_snapshot().await;
    let views = json!([snapshot["party_view"], snapshot["digests"]]);
    (events, views)
}

#[tokio::test]
async fn a_party_sets_its_own_language_zone_quiet_hours_and_digest() {
    let api = TestApi::start().await;
    let luc = api
        .party("GOVERNMENT_LIAISON", "Luc Martin", "Prefecture")
        .await;
    let settings = api
        .data(
            &luc.token,
            SET,
            json!({ "party": luc.id, "input": {
                "language": "es", "timeZone": "america/bogota",
                "quietHours": { "start": "21:00", "end": "07:00" },
                "digestSchedule": "0 8 * * Mon" } }),
        )
        .await["setReminderSettings"]
        .clone();
    assert_eq!(settings["language"], "es");
    assert_eq!(settings["timeZone"], "America/Bogota");
    // Sunday 1 March 2026, 09:00 UTC: the first digest is Monday 08:00 in Bogota (13:00 UTC).
    assert_eq!(
        settings["reminderSettings"],
        json!({ "quietHoursStart": "21:00", "quietHoursEnd": "07:00",
                "digestSchedule": "0 8 * * Mon", "nextDigestAt": "2026-03-02T13:00:00+00:00" })
    );
    assert_eq!(
        api.db
            .count("SELECT count(*) FROM digests WHERE due_at = '2026-03-02T13:00:00+00:00'")
            .await,
        1
    );

    // Without quiet hours or a digest: the default quiet hours, no digest.
    let plain = api
        .data(
            &luc.token,
            SET,
            json!({ "party": luc.id, "input": { "language": "fr", "timeZone": "Europe/Paris" } }),
        )
        .await["setReminderSettings"]["reminderSettings"]
        .clone();
    assert_eq!(
        plain,
        json!({ "quietHoursStart": "20:00", "quietHoursEnd": "08:00",
                "digestSchedule": null, "nextDigestAt": null })
    );
    assert_eq!(api.db.count("SELECT count(*) FROM digests").await, 0);

    // Only the party itself or an admin.
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let before = footprint(&api).await;
    let body = api
        .gql(
            &amina.token,
            SET,
            json!({ "party": luc.id, "input": { "language": "en", "timeZone": "UTC" } }),
        )
        .await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");
    assert_eq!(footprint(&api).await, before);
    let by_admin = api
        .data(
            &api.admin,
            SET,
            json!({ "party": luc.id, "input": { "language": "en", "timeZone": "UTC" } }),
        )
        .await;
    assert_eq!(by_admin["setReminderSettings"]["language"], "en");
    api.stop().await;
}

#[tokio::test]
async fn bad_reminder_settings_are_coded_errors_that_store_nothing() {
    let api = TestApi::start().await;
    let luc = api
        .party("GOVERNMENT_LIAISON", "Luc Martin", "Prefecture")
        .await;
    let ok = json!({ "language": "fr", "timeZone": "Europe/Paris" });
    let with = |field: &str, value: Value| {
        let mut input = ok.clone();
        input[field] = value;
        json!({ "party": luc.id, "input": input })
    };
    let long_cron = format!("0 8 * * {}", "Mon,".repeat(60));
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "cron in words",
            with("digestSchedule", json!("every monday")),
            "VALIDATION",
            "use five fields",
        ),
        (
            "cron with a bad field",
            with("digestSchedule", json!("61 8 * * Mon")),
            "VALIDATION",
            "is not a cron expression",
        ),
        (
            "cron every minute",
            with("digestSchedule", json!("* * * * *")),
            "VALIDATION",
            "at most hourly",
        ),
        (
            "cron that never fires",
            with("digestSchedule", json!("0 8 30 2 *")),
            "VALIDATION",
            "never fires",
        ),
        (
            "oversized cron",
            with("digestSchedule", json!(long_cron)),
            "VALIDATION",
            "longer than 100 characters",
        ),
        (
            "unknown time zone",
            with("timeZone", json!("Mars/Olympus")),
            "VALIDATION",
            "is not an IANA time zone",
        ),
        (
            "unknown language",
            with("language", json!("english")),
            "VALIDATION",
            "ISO 639-1",
        ),
        (
            "made-up language code",
            with("language", json!("xx")),
            "VALIDATION",
            "ISO 639-1",
        ),
        (
            "bad time of day",
            with("quietHours", json!({ "start": "25:00", "end": "07:00" })),
            "VALIDATION",
            "HH:MM",
        ),
        (
            "time of day in words",
            with("quietHours", json!({ "start": "9pm", "end": "07:00" })),
            "VALIDATION",
            "HH:MM",
        ),
        (
            "missing field",
            json!({ "party": luc.id, "input": { "language": "fr" } }),
            "VALIDATION",
            "timeZone",
        ),
        (
            "malformed party id",
            json!({ "party": "luc", "input": ok }),
            "VALIDATION",
            "party",
        ),
        (
            "unknown party",
            json!({ "party": "00000000-0000-4000-8000-000000000000", "input": ok }),
            "FORBIDDEN",
            "reminder settings",
        ),
    ];
    let hope_lagos = api.organisation("Hope Lagos").await;
    let before = footprint(&api).await;
    for (name, vars, code, hint) in cases {
        let body = api.gql(&luc.token, SET, vars).await;
        assert_eq!(error_code(&body), Some(code), "{name}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(hint), "{name}: {message}");
        assert_eq!(footprint(&api).await, before, "{name} changed something");
    }
    // The same through an admin, for an unknown party: not found.
    let body = api
        .gql(
            &api.admin,
            SET,
            json!({ "party": "00000000-0000-4000-8000-000000000000", "input": ok }),
        )
        .await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"), "{body}");

    // An invalid email address when registering a party.
    let body = api
        .gql(
            &api.admin,
            "mutation($input: PartyInput!) { registerParty(input: $input) { id } }",
            json!({ "input": {
                "displayName": "Grace", "email": "grace at hope", "role": "PARTNER_CONTACT",
                "organisation": hope_lagos, "country": "NG", "language": "en",
                "timeZone": "Africa/Lagos" } }),
        )
        .await;
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("is not an email address"));
    assert_eq!(footprint(&api).await, before);
    api.stop().await;
}

#[tokio::test]
async fn a_steps_reminder_policy_replaces_its_timers() {
    let api = TestApi::start().await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let luc = api
        .party("GOVERNMENT_LIAISON", "Luc Martin", "Prefecture")
        .await;
    let person = api.register_person(&amina.token, "Joy N.").await;
    let plan = api
        .data(&amina.token, "mutation($p: ID!) { openPlan(input: { personId: $p, originCountry: \"NG\" }) { plan { id } } }", json!({ "p": person }))
        .await["openPlan"]["plan"]["id"]
        .clone();
    let v = json!({ "id": plan, "luc": luc.id });
    api.data(&amina.token, "mutation($id: ID!, $luc: ID!) { assignStep(planId: $id, step: \"passport\", assignee: $luc) { version } }", v.clone()).await;
    let kinds = |view: &Value| -> Vec<String> {
        let mut kinds: Vec<String> = view["plan"]["scheduledReminders"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["stepKey"] == "passport")
            .map(|r| r["kind"].as_str().unwrap().to_owned())
            .collect();
        kinds.sort();
        kinds
    };
    let query = "query($id: ID!) { plan(id: $id) { scheduledReminders { stepKey kind fireAt } } }";
    assert_eq!(
        kinds(&api.data(&amina.token, query, v.clone()).await),
        ["BEFORE_DUE", "ESCALATION", "ON_DUE", "OVERDUE"]
    );
    api.data(
        &amina.token,
        "mutation($id: ID!) { setReminderPolicy(planId: $id, step: \"passport\",
        policy: { beforeDueDays: 7, onDue: false }) { version } }",
        v.clone(),
    )
    .await;
    assert_eq!(
        kinds(&api.data(&amina.token, query, v.clone()).await),
        ["BEFORE_DUE"]
    );
    api.stop().await;
}

/// A party registered without a time zone gets the programme's (`HOMEWARD_TIME_ZONE`); an
/// update that leaves it out keeps the party's own.
#[tokio::test]
async fn a_party_without_a_time_zone_gets_the_programmes_and_keeps_its_own_on_update() {
    let api = TestApi::start_with(|s| homeward::app::Settings {
        time_zone: "Europe/Paris".into(),
        ..s
    })
    .await;
    let register = "mutation($input: PartyInput!) { registerParty(input: $input) { id timeZone } }";
    let prefecture = api.organisation("Prefecture").await;
    let details = |time_zone: Option<&str>| {
        let mut input = json!({
            "displayName": "Luc", "email": "luc@prefecture.example", "role": "GOVERNMENT_LIAISON",
            "organisation": prefecture, "country": "FR", "language": "fr" });
        if let Some(zone) = time_zone {
            input["timeZone"] = json!(zone);
        }
        input
    };
    let luc = api
        .data(&api.admin, register, json!({ "input": details(None) }))
        .await;
    assert_eq!(luc["registerParty"]["timeZone"], "Europe/Paris");
    let id = luc["registerParty"]["id"].clone();
    let update = "mutation($id: ID!, $input: PartyInput!) { updateParty(id: $id, input: $input) { timeZone } }";
    let mut input = details(Some("America/Cayenne"));
    input["email"] = json!("luc.martin@prefecture.example");
    let moved = api
        .data(&api.admin, update, json!({ "id": id, "input": input }))
        .await;
    assert_eq!(moved["updateParty"]["timeZone"], "America/Cayenne");
    let kept = api
        .data(
            &api.admin,
            update,
            json!({ "id": id, "input": details(None) }),
        )
        .await;
    assert_eq!(kept["updateParty"]["timeZone"], "America/Cayenne");
    api.stop().await;
}
