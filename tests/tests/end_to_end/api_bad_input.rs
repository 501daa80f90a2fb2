//! Bad input gets a clear error with a code and changes nothing: never a 500, never a panic,
//! never a partial write.
#![allow(clippy::unwrap_used)]

use homeward::app::Settings;
use homeward_tests::api::{error_code, Person, TestApi};
use serde_json::{json, Value};

async fn world() -> (TestApi, Person, String) {
    let api = TestApi::start().await;
    let worker = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let person = api
        .data(
            &worker.token,
            "mutation { registerPerson(input: { fullName: \"Joy N.\" }) }",
            json!({}),
        )
        .await["registerPerson"]
        .as_str()
        .unwrap()
        .to_owned();
    let plan = api
        .data(&worker.token, "mutation($p: ID!) { openPlan(input: { personId: $p, originCountry: \"NG\" }) { plan { id } } }", json!({ "p": person }))
        .await["openPlan"]["plan"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (api, worker, plan)
}

/// What a refused request must leave as it was.
async fn footprint(api: &TestApi) -> (i64, Value) {
    let events = api.db.count("SELECT count(*) FROM events").await;
    let views: Value = sqlx::query_scalar(
        "SELECT jsonb_build_array(
           (SELECT coalesce(jsonb_agg(p ORDER BY plan_id), '[]') FROM plan_view p),
           (SELECT coalesce(jsonb_agg(s ORDER BY plan_id, step_key), '[]') FROM step_view s),
           (SELECT coalesce(jsonb_agg(t ORDER BY timer_id), '[]') FROM timers t))",
    )
    .fetch_one(api.db.pool())
    .await
    .unwrap();
    (events, views)
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
