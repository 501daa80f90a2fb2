//! Bad input gets a clear error with a code and changes nothing: never a 500, never a panic,
//! never a partial write.
#![allow(clippy::unwrap_used)]

use homeward::app::Settings;
use homeward_tests::api::{error_code, Person, TestApi};
use serde_json::{json, Value};

async fn world() -> (TestApi, Person, String) {
    let api = TestApi::start().await;
    let worker = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let person = api.register_person(&worker.token, "Joy N.").await;
    let plan = api
        .data(&worker.token, "mutation($p: ID!) { openPlan(input: { personId: $p, originCountry: \"NG\" }) { plan { id } } }", json!({ "p": person }))
        .await["openPlan"]["plan"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (api, worker, plan)
}

/// What a refused request must leave as it was: the log's length and every read-model row.
async fn footprint(api: &TestApi) -> (i64, Value) {
    let events = api.db.count("SELECT count(*) FROM events").await;
    (events, api.db.projection_snapshot().await)
}

#[tokio::test]
async fn each_class_of_bad_input_is_a_coded_error_that_writes_nothing() {
    let (api, worker, plan) = world().await;
    let long = "x".repeat(5_000);
    let many: Vec<String> = (0..1_000).map(|i| format!("s{i}")).collect();
    let cases: Vec<(&str, String, Value, &str)> = vec![
        ("syntax error", "mutation { setGoals(".into(), json!({}), "VALIDATION"),
        ("unknown field", "{ plan(id: $id) { nonsense } }".into(), json!({}), "VALIDATION"),
        ("wrong type", "mutation($id: ID!) { startStep(planId: $id, step: 42) { version } }".into(), json!({ "id": plan }), "VALIDATION"),
        ("unknown enum", "mutation($id: ID!) { closePlan(planId: $id, reason: BORED) { version } }".into(), json!({ "id": plan }), "VALIDATION"),
        ("malformed id", "mutation { startStep(planId: \"not-a-uuid\", step: \"passport\") { version } }".into(), json!({}), "VALIDATION"),
        ("unknown plan", "mutation { startStep(planId: \"00000000-0000-4000-8000-000000000000\", step: \"passport\") { version } }".into(), json!({}), "NOT_FOUND"),
        ("unknown plan (query)", "{ plan(id: \"00000000-0000-4000-8000-000000000000\") { id } }".into(), json!({}), "NOT_FOUND"),
        ("unknown step", "mutation($id: ID!) { startStep(planId: $id, step: \"no_such_step\") { version } }".into(), json!({ "id": plan }), "VALIDATION"),
        ("bad step key", "mutation($id: ID!) { startStep(planId: $id, step: \"Passport!\") { version } }".into(), json!({ "id": plan }), "VALIDATION"),
        ("invalid date", "mutation($id: ID!) { confirmDeparture(planId: $id, departedAt: \"2026-02-30T10:00:00Z\") { version } }".into(), json!({ "id": plan }), "VALIDATION"),
        ("invalid local date-time", "mutation($id: ID!) { rescheduleStep(planId: $id, step: \"passport\", due: { at: { localDateTime: \"tomorrow\", timeZone: \"Europe/Paris\" } }) { version } }".into(), json!({ "id": plan }), "VALIDATION"),
        ("invalid time zone", "mutation($id: ID!) { rescheduleStep(planId: $id, step: \"passport\", due: { at: { localDateTime: \"2026-05-01T09:00:00\", timeZone: \"Europe/Atlantis\" } }) { version } }".into(), json!({ "id": plan }), "VALIDATION"),
        ("both due forms", "mutation($id: ID!) { rescheduleStep(planId: $id, step: \"passport\", due: { at: { localDateTime: \"2026-05-01T09:00:00\", timeZone: \"UTC\" }, after: { milestone: ARRIVAL, days: 3 } }) { version } }".into(), json!({ "id": plan }), "VALIDATION"),
        ("due before opening", "mutation($id: ID!) { rescheduleStep(planId: $id, step: \"passport\", due: { at: { localDateTime: \"2020-05-01T09:00:00\", timeZone: \"UTC\" } }) { version } }".into(), json!({ "id": plan }), "VALIDATION"),
        ("negative number", "mutation($id: ID!) { rescheduleStep(planId: $id, step: \"passport\", due: { after: { milestone: ARRIVAL, days: -3 } }) { version } }".into(), json!({ "id": plan }), "VALIDATION"),
        ("oversized string", "mutation($id: ID!, $r: String!) { blockStep(planId: $id, step: \"passport\", reason: $r) { version } }".into(), json!({ "id": plan, "r": long }), "VALIDATION"),
        ("oversized list", "mutation($id: ID!, $d: [String!]!) { changeDependencies(planId: $id, step: \"travel\", dependsOn: $d) { version } }".into(), json!({ "id": plan, "d": many }), "VALIDATION"),
        ("oversized idempotency key", "mutation($id: ID!, $k: String!) { startStep(planId: $id, step: \"passport\", idempotencyKey: $k) { version } }".into(), json!({ "id": plan, "k": long }), "VALIDATION"),
        ("page too large", "{ plans(first: 1000) { edges { node { id } } } }".into(), json!({}), "VALIDATION"),
        ("page size zero", "{ tasks(first: 0) { edges { node { key } } } }".into(), json!({}), "VALIDATION"),
        ("forged cursor", "{ plans(after: \"bm90LWEtY3Vyc29y\") { edges { node { id } } } }".into(), json!({}), "VALIDATION"),
        ("over-deep query", "{ me { supervisor { supervisor { supervisor { supervisor { supervisor { supervisor { supervisor { supervisor { supervisor { supervisor { supervisor { supervisor { id } } } } } } } } } } } } } }".into(), json!({}), "VALIDATION"),
        ("too complex", format!("{{ {} }}", (0..60).map(|i| format!("p{i}: plans(first: 100) {{ edges {{ node {{ id status steps {{ key assignee {{ id }} }} }} }} }}")).collect::<Vec<_>>().join(" ")), json!({}), "VALIDATION"),
        ("missing variable", "mutation($id: ID!) { startStep(planId: $id, step: \"passport\") { version } }".into(), json!({}), "VALIDATION"),
        ("consent without partner", "mutation($id: ID!) { recordConsent(planId: $id, consent: { kind: DATA_SHARING }) { version } }".into(), json!({ "id": plan }), "VALIDATION"),
        ("rule: start travel too early", "mutation($id: ID!) { recordConsent(planId: $id, consent: { kind: RETURN }) { version } }".into(), json!({ "id": plan }), "OK"),
        ("rule: follow-up before arrival", "mutation($id: ID!) { recordFollowUp(planId: $id, step: \"follow_up_1\", outcome: { visitedOn: \"2026-03-01\", wellbeing: GOOD }) { version } }".into(), json!({ "id": plan }), "VALIDATION"),
        ("stale expectedVersion", "mutation($id: ID!) { startStep(planId: $id, step: \"medical_check\", expectedVersion: 1) { version } }".into(), json!({ "id": plan }), "CONFLICT"),
        ("unknown template", "mutation($p: ID!) { openPlan(input: { personId: $p, originCountry: \"NG\", template: \"nope\" }) { version } }".into(), json!({ "p": "00000000-0000-4000-8000-000000000000" }), "VALIDATION"),
        ("unknown person", "mutation { openPlan(input: { personId: \"00000000-0000-4000-8000-000000000000\", originCountry: \"NG\" }) { version } }".into(), json!({}), "NOT_FOUND"),
        ("bad country", "mutation($p: ID!) { openPlan(input: { personId: $p, originCountry: \"Narnia\" }) { version } }".into(), json!({ "p": "00000000-0000-4000-8000-000000000000" }), "VALIDATION"),
    ];
    for (name, query, vars, expected) in cases {
        let before = footprint(&api).await;
        let (status, body) = api.post(Some(&worker.token), &query, vars).await;
        assert_ne!(status, 500, "{name}: {body}");
        if expected == "OK" {
            // A step of the setup: it must succeed.
            assert!(body.get("errors").is_none(), "{name}: {body}");
            continue;
        }
        assert_eq!(error_code(&body), Some(expected), "{name}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.len() > 10,
            "{name}: the message says what to fix: {body}"
        );
        assert!(
            !message.to_lowercase().contains("sqlx") && !message.contains("panicked"),
            "{name}: {message}"
        );
        assert_eq!(footprint(&api).await, before, "{name}: nothing may change");
    }

    // The travel rule, with consent now recorded: a clear refusal, nothing written.
    let before = footprint(&api).await;
    let body = api
        .gql(
            &worker.token,
            "mutation($id: ID!) { startStep(planId: $id, step: \"travel\") { version } }",
            json!({ "id": plan }),
        )
        .await;
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
    assert_eq!(footprint(&api).await, before);
}

#[tokio::test]
async fn malformed_requests_get_coded_errors_not_500s() {
    let api = TestApi::start_with(|s| Settings {
        max_body_bytes: 64 * 1024,
        ..s
    })
    .await;
    let worker = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let send = |body: Vec<u8>, content_type: &'static str| {
        let request = api
            .http
            .post(api.url())
            .bearer_auth(&worker.token)
            .header("content-type", content_type)
            .body(body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    for (name, body, status) in [
        ("not JSON", b"{ me { id } }".to_vec(), 400),
        ("JSON without query", br#"{"variables": {}}"#.to_vec(), 400),
        ("empty body", Vec::new(), 400),
        ("binary", vec![0xff, 0xfe, 0x00, 0x81], 400),
        (
            "too large",
            format!(
                r#"{{"query": "{{ me {{ id }} }}", "variables": {{"x": "{}"}}}}"#,
                "y".repeat(100_000)
            )
            .into_bytes(),
            413,
        ),
    ] {
        let (got, body) = send(body, "application/json").await;
        assert_eq!(got, status, "{name}: {body}");
        assert_eq!(error_code(&body), Some("VALIDATION"), "{name}: {body}");
    }
    // The server is still fine.
    assert!(api
        .gql(&worker.token, "{ me { id } }", json!({}))
        .await
        .get("errors")
        .is_none());
}

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_first_result_and_writes_once() {
    let (api, worker, plan) = world().await;
    let mutation = "mutation($id: ID!) { recordConsent(planId: $id, consent: { kind: RETURN }, idempotencyKey: \"consent-1\") { version replayed } }";
    let first = api
        .data(&worker.token, mutation, json!({ "id": plan }))
        .await;
    let events = api.db.count("SELECT count(*) FROM events").await;
    let again = api
        .data(&worker.token, mutation, json!({ "id": plan }))
        .await;
    assert_eq!(
        first["recordConsent"]["version"],
        again["recordConsent"]["version"]
    );
    assert_eq!(first["recordConsent"]["replayed"], false);
    assert_eq!(again["recordConsent"]["replayed"], true);
    assert_eq!(api.db.count("SELECT count(*) FROM events").await, events);
}

/// Every text input of the schema: `Mutation.field.argument` or `InputType.field`, for each
/// argument or input field of type `String` (or a list of it), reachable from a mutation or a
/// query.
async fn text_inputs(api: &TestApi) -> std::collections::BTreeSet<String> {
    let schema = api
        .data(
            &api.admin,
            "{ __schema { types { name kind
                 fields { name args { name type { ...T } } }
                 inputFields { name type { ...T } } } } }
             fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }",
            json!({}),
        )
        .await;
    fn is_text(t: &Value) -> bool {
        match t["kind"].as_str() {
            Some("SCALAR") => t["name"] == "String",
            Some("NON_NULL" | "LIST") => is_text(&t["ofType"]),
            _ => false,
        }
    }
    let mut inputs = std::collections::BTreeSet::new();
    for t in schema["__schema"]["types"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        if name.starts_with("__") {
            continue;
        }
        for f in t["fields"].as_array().into_iter().flatten() {
            for a in f["args"].as_array().into_iter().flatten() {
                if is_text(&a["type"]) {
                    inputs.insert(format!(
                        "{name}.{}.{}",
                        f["name"].as_str().unwrap(),
                        a["name"].as_str().unwrap()
                    ));
                }
            }
        }
        for f in t["inputFields"].as_array().into_iter().flatten() {
            if is_text(&f["type"]) {
                inputs.insert(format!("{name}.{}", f["name"].as_str().unwrap()));
            }
        }
    }
    inputs
}

/// Replaces "BAD" in every string of `vars` with `bad` inside some ordinary text.
fn with_bad(vars: &Value, bad: &str) -> Value {
    match vars {
        Value::String(s) => Value::String(s.replace("BAD", &format!("Pass{bad}port"))),
        Value::Array(items) => Value::Array(items.iter().map(|v| with_bad(v, bad)).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), with_bad(v, bad)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[tokio::test]
async fn control_bidi_and_invisible_characters_in_every_text_input_are_refused_and_write_nothing() {
    let (api, worker, plan) = world().await;
    let admin = api.admin.clone();
    let person = api
        .data(
            &worker.token,
            "mutation { registerPerson(input: { fullName: \"Ade O.\" }) }",
            json!({}),
        )
        .await["registerPerson"]
        .clone();
    let safe_passage = api.organisation("Safe Passage").await;
    let supervisor = api.party("SUPERVISOR", "Sade", "Safe Passage").await;
    let held = api
        .data(
            &worker.token,
            "mutation { registerPerson(input: { fullName: \"Ife O.\" }) }",
            json!({}),
        )
        .await["registerPerson"]
        .clone();
    api.data(
        &supervisor.token,
        "mutation($p: ID!) { placeLegalHold(personId: $p, reason: \"Witness\") { version } }",
        json!({ "p": held }),
    )
    .await;
    // A party without plans, whom only the reason keeps from being deactivated.
    let luc = api.party("GOVERNMENT_LIAISON", "Luc", "Prefecture").await;
    let party = json!({ "displayName": "Ana", "email": "ana@ngo.example", "role": "SOCIAL_WORKER",
                        "organisation": safe_passage, "country": "FR", "language": "fr" });
    let organisation = json!({ "name": "Safe Passage", "kind": "PROGRAMME", "country": "FR" });
    let set_organisation = |field: &str, value: &str| {
        let mut o = organisation.clone();
        o[field] = json!(value);
        o
    };
    let set = |field: &str, value: &str| {
        let mut p = party.clone();
        p[field] = json!(value);
        p
    };
    // Each case: the text inputs it puts the bad text in (by schema path), who sends it, the
    // operation, its variables ("BAD" marks the text).
    let cases: Vec<(&[&str], &str, &str, Value)> = vec![
        (&["Mutation.blockStep.reason"], &worker.token, "mutation($id: ID!, $v: String!) { blockStep(planId: $id, step: \"passport\", reason: $v) { version } }", json!({ "id": plan, "v": "BAD" })),
        (&["Mutation.cancelStep.reason"], &worker.token, "mutation($id: ID!, $v: String!) { cancelStep(planId: $id, step: \"passport\", reason: $v) { version } }", json!({ "id": plan, "v": "BAD" })),
        (&["Mutation.removeStep.reason"], &worker.token, "mutation($id: ID!, $v: String!) { removeStep(planId: $id, step: \"medical_check\", reason: $v) { version } }", json!({ "id": plan, "v": "BAD" })),
        (&["Mutation.startStep.overrideReason"], &worker.token, "mutation($id: ID!, $v: String) { startStep(planId: $id, step: \"travel\", overrideReason: $v) { version } }", json!({ "id": plan, "v": "BAD" })),
        (&["Mutation.confirmDeparture.overrideReason"], &worker.token, "mutation($id: ID!, $v: String) { confirmDeparture(planId: $id, departedAt: \"2026-03-02T10:00:00Z\", overrideReason: $v) { version } }", json!({ "id": plan, "v": "BAD" })),
        (&["Mutation.assignStep.candidateGroup"], &worker.token, "mutation($id: ID!, $v: String) { assignStep(planId: $id, step: \"passport\", candidateGroup: $v) { version } }", json!({ "id": plan, "v": "BAD" })),
        (&["NewStepInput.title"], &worker.token, "mutation($id: ID!, $v: String!) { addStep(planId: $id, step: { key: \"extra\", kind: CUSTOM, title: $v }) { version } }", json!({ "id": plan, "v": "BAD" })),
        (&["NewStepInput.candidateGroup"], &worker.token, "mutation($id: ID!, $v: String) { addStep(planId: $id, step: { key: \"extra\", kind: CUSTOM, title: \"Extra\", candidateGroup: $v }) { version } }", json!({ "id": plan, "v": "BAD" })),
        (&["NewStepInput.key", "NewStepInput.dependsOn"], &worker.token, "mutation($id: ID!, $v: String!) { addStep(planId: $id, step: { key: $v, kind: CUSTOM, title: \"Extra\", dependsOn: [$v] }) { version } }", json!({ "id": plan, "v": "BAD" })),
        (&["GoalInput.aim"], &worker.token, "mutation($id: ID!, $v: String!) { setGoals(planId: $id, goals: [{ area: HEALTH, aim: $v }]) { version } }", json!({ "id": plan, "v": "BAD" })),
        (&["PersonInput.fullName"], &worker.token, "mutation($v: String!) { registerPerson(input: { fullName: $v }) }", json!({ "v": "BAD" })),
        (&["PersonInput.phone"], &worker.token, "mutation($v: String) { registerPerson(input: { fullName: \"Joy\", phone: $v }) }", json!({ "v": "BAD" })),
        (&["PersonInput.email"], &worker.token, "mutation($v: String) { registerPerson(input: { fullName: \"Joy\", email: $v }) }", json!({ "v": "joy@BAD.example" })),
        (&["PersonInput.address"], &worker.token, "mutation($v: String) { registerPerson(input: { fullName: \"Joy\", address: $v }) }", json!({ "v": "BAD" })),
        (&["PersonInput.preferredLanguage"], &worker.token, "mutation($v: String) { registerPerson(input: { fullName: \"Joy\", preferredLanguage: $v }) }", json!({ "v": "BAD" })),
        (&["OpenPlanInput.originCountry"], &worker.token, "mutation($p: ID!, $v: String!) { openPlan(input: { personId: $p, originCountry: $v }) { version } }", json!({ "p": person, "v": "BAD" })),
        (&["OpenPlanInput.template"], &worker.token, "mutation($p: ID!, $v: String) { openPlan(input: { personId: $p, originCountry: \"NG\", template: $v }) { version } }", json!({ "p": person, "v": "BAD" })),
        (&["PartyInput.displayName"], &admin, "mutation($p: PartyInput!) { registerParty(input: $p) { id } }", json!({ "p": set("displayName", "BAD") })),
        (&["PartyInput.email"], &admin, "mutation($p: PartyInput!) { registerParty(input: $p) { id } }", json!({ "p": set("email", "a@BAD.example") })),
        (&["OrganisationInput.name"], &admin, "mutation($o: OrganisationInput!) { registerOrganisation(input: $o) { id } }", json!({ "o": set_organisation("name", "BAD") })),
        (&["OrganisationInput.country"], &admin, "mutation($o: OrganisationInput!) { registerOrganisation(input: $o) { id } }", json!({ "o": set_organisation("country", "BAD") })),
        (&["Mutation.deactivateParty.reason"], &admin, "mutation($id: ID!, $v: String!) { deactivateParty(party: $id, reason: $v) { id } }", json!({ "id": luc.id, "v": "BAD" })),
        (&["Mutation.renameOrganisation.name"], &admin, "mutation($id: ID!, $v: String!) { renameOrganisation(id: $id, name: $v) { id } }", json!({ "id": safe_passage, "v": "BAD" })),
        (&["PartyInput.country"], &admin, "mutation($p: PartyInput!) { registerParty(input: $p) { id } }", json!({ "p": set("country", "BAD") })),
        (&["PartyInput.language"], &admin, "mutation($p: PartyInput!) { registerParty(input: $p) { id } }", json!({ "p": set("language", "BAD") })),
        (&["PartyInput.timeZone"], &admin, "mutation($p: PartyInput!) { registerParty(input: $p) { id } }", json!({ "p": set("timeZone", "BAD") })),
        (&["Mutation.updateParty.idempotencyKey"], &admin, "mutation($id: ID!, $p: PartyInput!, $v: String) { updateParty(id: $id, input: $p, idempotencyKey: $v) { id } }", json!({ "id": worker.id, "p": party, "v": "BAD" })),
        (&["ReminderSettingsInput.language", "ReminderSettingsInput.timeZone", "ReminderSettingsInput.digestSchedule", "QuietHoursInput.start", "QuietHoursInput.end"], &worker.token, "mutation($id: ID!, $v: String!) { setReminderSettings(party: $id, input: { language: $v, timeZone: $v, digestSchedule: $v, quietHours: { start: $v, end: $v } }) { id } }", json!({ "id": worker.id, "v": "BAD" })),
        (&["DueAtInput.timeZone"], &worker.token, "mutation($id: ID!, $v: String!) { rescheduleStep(planId: $id, step: \"passport\", due: { at: { localDateTime: \"2026-05-01T09:00:00\", timeZone: $v } }) { version } }", json!({ "id": plan, "v": "BAD" })),
        (&["Mutation.startStep.step"], &worker.token, "mutation($id: ID!, $v: String!) { startStep(planId: $id, step: $v) { version } }", json!({ "id": plan, "v": "BAD" })),
        (&["Mutation.startStep.idempotencyKey"], &worker.token, "mutation($id: ID!, $v: String) { startStep(planId: $id, step: \"passport\", idempotencyKey: $v) { version } }", json!({ "id": plan, "v": "BAD" })),
        (&["Mutation.registerPerson.idempotencyKey"], &worker.token, "mutation($v: String) { registerPerson(input: { fullName: \"Joy\" }, idempotencyKey: $v) }", json!({ "v": "BAD" })),
        (&["PlanFilterInput.originCountry"], &worker.token, "query($v: String) { plans(filter: { originCountry: $v }) { edges { node { id } } } }", json!({ "v": "BAD" })),
        (&["Query.plans.after"], &worker.token, "query($v: String) { plans(after: $v) { edges { node { id } } } }", json!({ "v": "BAD" })),
        (&["Query.tasks.after"], &worker.token, "query($v: String) { tasks(after: $v) { edges { node { key } } } }", json!({ "v": "BAD" })),
        (&["Query.organisations.after"], &admin, "query($v: String) { organisations(after: $v) { edges { node { id } } } }", json!({ "v": "BAD" })),
        (&["Query.parties.after"], &admin, "query($v: String) { parties(after: $v) { edges { node { id } } } }", json!({ "v": "BAD" })),
        (&["Query.planHistory.after"], &worker.token, "query($id: ID!, $v: String) { planHistory(planId: $id, after: $v) { edges { node { version } } } }", json!({ "id": plan, "v": "BAD" })),
        (&["PersonCorrectionInput.fullName"], &worker.token, "mutation($p: ID!, $v: String) { updatePerson(personId: $p, input: { fullName: $v }, reason: \"Typo\") { version } }", json!({ "p": person, "v": "BAD" })),
        (&["PersonCorrectionInput.phone"], &worker.token, "mutation($p: ID!, $v: String) { updatePerson(personId: $p, input: { phone: $v }, reason: \"New\") { version } }", json!({ "p": person, "v": "BAD" })),
        (&["PersonCorrectionInput.email"], &worker.token, "mutation($p: ID!, $v: String) { updatePerson(personId: $p, input: { email: $v }, reason: \"New\") { version } }", json!({ "p": person, "v": "ade@BAD.example" })),
        (&["PersonCorrectionInput.address"], &worker.token, "mutation($p: ID!, $v: String) { updatePerson(personId: $p, input: { address: $v }, reason: \"Moved\") { version } }", json!({ "p": person, "v": "BAD" })),
        (&["PersonCorrectionInput.preferredLanguage"], &worker.token, "mutation($p: ID!, $v: String) { updatePerson(personId: $p, input: { preferredLanguage: $v }, reason: \"Asked\") { version } }", json!({ "p": person, "v": "BAD" })),
        (&["Mutation.updatePerson.reason"], &worker.token, "mutation($p: ID!, $v: String!) { updatePerson(personId: $p, input: { phone: \"+234 9\" }, reason: $v) { version } }", json!({ "p": person, "v": "BAD" })),
        (&["Mutation.addNote.text"], &worker.token, "mutation($p: ID!, $v: String!) { addNote(personId: $p, text: $v) { version } }", json!({ "p": person, "v": "BAD" })),
        (&["Query.accessLog.after"], &worker.token, "query($p: ID!, $v: String) { accessLog(personId: $p, after: $v) { edges { node { at } } } }", json!({ "p": person, "v": "BAD" })),
        (&["Mutation.placeLegalHold.reason"], &supervisor.token, "mutation($p: ID!, $v: String!) { placeLegalHold(personId: $p, reason: $v) { version } }", json!({ "p": person, "v": "BAD" })),
        (&["Mutation.liftLegalHold.reason"], &supervisor.token, "mutation($p: ID!, $v: String!) { liftLegalHold(personId: $p, reason: $v) { version } }", json!({ "p": held, "v": "BAD" })),
        (&["Query.searchPersons.name"], &worker.token, "query($v: String) { searchPersons(name: $v) { id } }", json!({ "v": "BAD" })),
        (&["Query.upcomingErasures.after"], &supervisor.token, "query($v: String) { upcomingErasures(after: $v) { edges { node { eraseAt } } } }", json!({ "v": "BAD" })),
        (&["Query.personsToReview.after"], &supervisor.token, "query($v: String) { personsToReview(after: $v) { edges { node { drafts } } } }", json!({ "v": "BAD" })),
        (&["Plan.step.key"], &worker.token, "query($id: ID!, $v: String!) { plan(id: $id) { step(key: $v) { key } } }", json!({ "id": plan, "v": "BAD" })),
    ];
    // Text inputs checked by the same code as a case above: every step key by one parser, every
    // idempotency key by one function.
    let same_check = |input: &str| {
        (input.starts_with("Mutation.") && input.ends_with(".step"))
            || input.ends_with(".idempotencyKey")
            || input == "Mutation.changeDependencies.dependsOn"
            || input == "Mutation.recordFollowUp.step"
    };
    let covered: std::collections::BTreeSet<&str> =
        cases.iter().flat_map(|c| c.0.iter().copied()).collect();
    let missing: Vec<String> = text_inputs(&api)
        .await
        .into_iter()
        .filter(|i| !covered.contains(i.as_str()) && !same_check(i))
        .collect();
    assert!(
        missing.is_empty(),
        "text inputs without a case: {missing:?}"
    );

    // Fields of several lines take new lines (and only there).
    let several_lines = [
        "Mutation.blockStep.reason",
        "Mutation.cancelStep.reason",
        "Mutation.removeStep.reason",
        "Mutation.startStep.overrideReason",
        "Mutation.confirmDeparture.overrideReason",
        "PersonInput.address",
        "PersonCorrectionInput.address",
        "Mutation.updatePerson.reason",
        "Mutation.addNote.text",
        "Mutation.deactivateParty.reason",
        "Mutation.placeLegalHold.reason",
        "Mutation.liftLegalHold.reason",
    ];
    for (inputs, token, query, vars) in &cases {
        let lines = inputs.iter().all(|i| several_lines.contains(i));
        let line_break = (!lines).then_some("\r\nBcc: x@example.org");
        for bad in ["\u{0}", "\u{1b}[31m", "\u{202e}", "\u{200b}", "\u{2028}"]
            .into_iter()
            .chain(line_break)
        {
            let before = footprint(&api).await;
            let (status, body) = api.post(Some(token), query, with_bad(vars, bad)).await;
            let name = format!("{inputs:?} with {bad:?}");
            assert_ne!(status, 500, "{name}: {body}");
            assert_eq!(error_code(&body), Some("VALIDATION"), "{name}: {body}");
            let message = body["errors"][0]["message"].as_str().unwrap_or_default();
            assert!(
                !message.contains("sqlx") && !message.contains("database"),
                "{name}: {message}"
            );
            assert_eq!(footprint(&api).await, before, "{name}: nothing may change");
        }
    }
}
