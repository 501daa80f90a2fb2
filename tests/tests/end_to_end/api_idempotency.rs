//! Idempotency keys through the real server: the same key with the same request returns the
//! first result (for creating mutations, the id first created), and with any other request (on
//! another plan, another operation, other arguments) it is refused and writes nothing. Keys are
//! the caller's own, stored only as keyed hashes, and free again after a refusal.
#![allow(clippy::unwrap_used)]

use homeward_tests::api::{Person, TestApi};
use serde_json::{json, Value};

async fn world() -> (TestApi, Person, String, String) {
    let api = TestApi::start().await;
    let worker = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let a = api.open_plan(&worker.token, "Joy N.").await;
    let b = api.open_plan(&worker.token, "Grace O.").await;
    let (a, b) = (
        a.as_str().unwrap().to_owned(),
        b.as_str().unwrap().to_owned(),
    );
    (api, worker, a, b)
}

const PRIORITISE: &str = "mutation($id: ID!, $step: String!, $p: Priority!, $k: String) { \
    prioritiseStep(planId: $id, step: $step, priority: $p, idempotencyKey: $k) { version replayed } }";

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("an error with a code: {body}"))
}

fn message(body: &Value) -> &str {
    body["errors"][0]["message"].as_str().unwrap()
}

async fn priority(api: &TestApi, token: &str, plan: &str, step: &str) -> Value {
    api.data(
        token,
        "query($id: ID!) { plan(id: $id) { steps { key priority } } }",
        json!({ "id": plan }),
    )
    .await["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == step)
        .unwrap()["priority"]
        .clone()
}

#[tokio::test]
async fn a_key_reused_on_another_plan_operation_or_arguments_is_refused_and_writes_nothing() {
    let (api, worker, plan_a, plan_b) = world().await;
    let t = &worker.token;
    let b_before = priority(&api, t, &plan_b, "passport").await;
    assert_ne!(b_before, "URGENT");
    let first = api
        .data(
            t,
            PRIORITISE,
            json!({ "id": plan_a, "step": "passport", "p": "URGENT", "k": "k1" }),
        )
        .await;
    assert_eq!(first["prioritiseStep"]["replayed"], false);
    let events = api.db.count("SELECT count(*) FROM events").await;

    // The same request again: the first result, nothing written.
    let again = api
        .data(
            t,
            PRIORITISE,
            json!({ "id": plan_a, "step": "passport", "p": "URGENT", "k": "k1" }),
        )
        .await;
    assert_eq!(again["prioritiseStep"]["replayed"], true);
    assert_eq!(
        again["prioritiseStep"]["version"],
        first["prioritiseStep"]["version"]
    );

    // On another plan: refused, and plan B is not silently left unchanged under a "success".
    let other_plan = api
        .gql(
            t,
            PRIORITISE,
            json!({ "id": plan_b, "step": "passport", "p": "URGENT", "k": "k1" }),
        )
        .await;
    assert_eq!(code(&other_plan), "IDEMPOTENCY_KEY_REUSED", "{other_plan}");
    assert!(
        message(&other_plan).contains("prioritiseStep on another plan"),
        "{other_plan}"
    );
    // With other arguments on the same plan.
    let other_args = api
        .gql(
            t,
            PRIORITISE,
            json!({ "id": plan_a, "step": "passport", "p": "LOW", "k": "k1" }),
        )
        .await;
    assert_eq!(code(&other_args), "IDEMPOTENCY_KEY_REUSED");
    assert!(
        message(&other_args).contains("with other arguments"),
        "{other_args}"
    );
    // In another operation.
    let other_operation = api
        .gql(
            t,
            "mutation($id: ID!) { startStep(planId: $id, step: \"origin_contact\", idempotencyKey: \"k1\") { version } }",
            json!({ "id": plan_a }),
        )
        .await;
    assert_eq!(code(&other_operation), "IDEMPOTENCY_KEY_REUSED");
    assert!(
        message(&other_operation).contains("for prioritiseStep"),
        "{other_operation}"
    );
    assert_eq!(api.db.count("SELECT count(*) FROM events").await, events);
    assert_eq!(
        priority(&api, t, &plan_b, "passport").await,
        b_before,
        "plan B untouched"
    );

    // The key is the caller's own: another party may use "k1" for its own request.
    let colleague = api.party("SOCIAL_WORKER", "Bola", "Safe Passage").await;
    let theirs = api
        .data(
            &colleague.token,
            PRIORITISE,
            json!({ "id": plan_b, "step": "passport", "p": "LOW", "k": "k1" }),
        )
        .await;
    assert_eq!(theirs["prioritiseStep"]["replayed"], false);
    assert_eq!(priority(&api, t, &plan_b, "passport").await, "LOW");

    // Only keyed hashes are stored, never the key itself.
    assert_eq!(
        api.db
            .count("SELECT count(*) FROM idempotency_keys WHERE operation = 'prioritiseStep'")
            .await,
        2
    );
    assert_eq!(
        api.db
            .count(if homeward_tests::servers_on_sqlite() {
                "SELECT count(*) FROM idempotency_keys WHERE instr(key_hash, CAST('k1' AS BLOB)) > 0"
            } else {
                "SELECT count(*) FROM idempotency_keys WHERE position('k1'::bytea in key_hash) > 0"
            })
            .await,
        0
    );
}

#[tokio::test]
async fn a_key_first_used_to_register_a_person_is_refused_on_a_plan() {
    let (api, worker, plan_a, _) = world().await;
    let t = &worker.token;
    api.data(
        t,
        "mutation { registerPerson(input: { fullName: \"Ade K.\" }, idempotencyKey: \"k2\") }",
        json!({}),
    )
    .await;
    let events = api.db.count("SELECT count(*) FROM events").await;
    let on_plan = api
        .gql(
            t,
            PRIORITISE,
            json!({ "id": plan_a, "step": "passport", "p": "HIGH", "k": "k2" }),
        )
        .await;
    assert_eq!(code(&on_plan), "IDEMPOTENCY_KEY_REUSED", "{on_plan}");
    assert!(
        message(&on_plan).contains("for registerPerson"),
        "{on_plan}"
    );
    assert_eq!(api.db.count("SELECT count(*) FROM events").await, events);
}

#[tokio::test]
async fn replaying_a_creating_mutation_returns_the_id_it_first_created() {
    let (api, worker, _, _) = world().await;
    let t = &worker.token;
    let register = "mutation { registerPerson(input: { fullName: \"Ade K.\" }, idempotencyKey: \"person-1\") }";
    let first = api.data(t, register, json!({})).await["registerPerson"].clone();
    let again = api.data(t, register, json!({})).await["registerPerson"].clone();
    assert_eq!(first, again);
    assert_eq!(
        api.db
            .count("SELECT count(*) FROM events WHERE stream_id LIKE 'person-%'")
            .await,
        3,
        "two from the world, one here"
    );

    let open = "mutation($p: ID!) { openPlan(input: { personId: $p, originCountry: \"NG\" }, idempotencyKey: \"plan-1\") { version replayed plan { id } } }";
    let person = first;
    let first = api.data(t, open, json!({ "p": person })).await;
    let again = api.data(t, open, json!({ "p": person })).await;
    assert_eq!(again["openPlan"]["replayed"], true);
    assert_eq!(
        first["openPlan"]["plan"]["id"],
        again["openPlan"]["plan"]["id"]
    );
    assert_eq!(api.db.count("SELECT count(*) FROM plan_view").await, 3);

    let party = "mutation($o: ID!) { registerParty(input: { displayName: \"Luc\", email: \"luc@prefecture.example\", role: GOVERNMENT_LIAISON, organisation: $o, country: \"FR\", language: \"fr\", timeZone: \"Europe/Paris\" }, idempotencyKey: \"party-1\") { id } }";
    let prefecture = json!({ "o": api.organisation("Prefecture").await });
    let first = api.data(&api.admin, party, prefecture.clone()).await;
    let again = api.data(&api.admin, party, prefecture).await;
    assert_eq!(first["registerParty"]["id"], again["registerParty"]["id"]);
    assert_eq!(
        api.db
            .count("SELECT count(*) FROM party_view WHERE email = 'luc@prefecture.example'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_refused_request_leaves_its_key_free() {
    let (api, worker, plan_a, _) = world().await;
    let t = &worker.token;
    // Travel cannot start before its dependencies: refused, nothing written.
    let start = "mutation($id: ID!) { startStep(planId: $id, step: \"travel\", idempotencyKey: \"k3\") { version } }";
    let refused = api.gql(t, start, json!({ "id": plan_a })).await;
    assert_eq!(code(&refused), "VALIDATION", "{refused}");
    // The same key for a corrected request goes through.
    let done = api
        .data(
            t,
            PRIORITISE,
            json!({ "id": plan_a, "step": "passport", "p": "HIGH", "k": "k3" }),
        )
        .await;
    assert_eq!(done["prioritiseStep"]["replayed"], false);
}

#[tokio::test]
async fn a_key_is_remembered_for_the_retention_and_free_after_it() {
    let (api, worker, plan_a, _) = world().await;
    let t = &worker.token;
    let opened = homeward_tests::start_time();
    api.data(
        t,
        PRIORITISE,
        json!({ "id": plan_a, "step": "passport", "p": "URGENT", "k": "k4" }),
    )
    .await;
    // 23 hours later, still the first request's.
    api.clock.set(opened + chrono::Duration::hours(23));
    let reused = api
        .gql(
            t,
            PRIORITISE,
            json!({ "id": plan_a, "step": "passport", "p": "LOW", "k": "k4" }),
        )
        .await;
    assert_eq!(code(&reused), "IDEMPOTENCY_KEY_REUSED");
    // Past the 24 hours, the key is free.
    api.clock.set(opened + chrono::Duration::hours(25));
    let fresh = api
        .data(
            t,
            PRIORITISE,
            json!({ "id": plan_a, "step": "passport", "p": "LOW", "k": "k4" }),
        )
        .await;
    assert_eq!(fresh["prioritiseStep"]["replayed"], false);
    assert_eq!(priority(&api, t, &plan_a, "passport").await, "LOW");
}

#[tokio::test]
async fn the_same_keyed_request_sent_five_times_at_once_is_carried_out_once() {
    let (api, worker, plan_a, _) = world().await;
    let events = api.db.count("SELECT count(*) FROM events").await;
    let goals = "mutation($id: ID!) { setGoals(planId: $id, goals: [{ area: INCOME, aim: \"A workshop\" }], idempotencyKey: \"k5\") { version replayed } }";
    let answers = futures::future::join_all(
        (0..5).map(|_| api.data(&worker.token, goals, json!({ "id": plan_a }))),
    )
    .await;
    assert_eq!(
        api.db.count("SELECT count(*) FROM events").await,
        events + 1
    );
    let versions: std::collections::HashSet<_> = answers
        .iter()
        .map(|a| a["setGoals"]["version"].clone())
        .collect();
    assert_eq!(
        versions.len(),
        1,
        "every answer is the first result: {answers:?}"
    );
    assert_eq!(
        answers
            .iter()
            .filter(|a| a["setGoals"]["replayed"] == false)
            .count(),
        1
    );
}

/// Many keys at once over two replicas, each key sent three times (twice to one replica, once
/// to the other), and some keys sent with two different requests: every key is carried out
/// exactly once, its repeats answer with the first result, and a key's second request is
/// refused whichever replica took the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_keys_at_once_over_two_replicas_are_each_carried_out_once() {
    const KEYS: usize = 24;
    const CONTESTED: usize = 8;
    let (api, worker, plan_a, plan_b) = world().await;
    let replica = api.second_replica().await;
    let events = api.db.count("SELECT count(*) FROM events").await;
    let goals = "mutation($id: ID!, $aim: String!, $k: String) { setGoals(planId: $id, \
        goals: [{ area: INCOME, aim: $aim }], idempotencyKey: $k) { version replayed } }";
    let http = reqwest::Client::new();
    let send = |url: String, plan: String, aim: String, key: String| {
        let (http, token) = (http.clone(), worker.token.clone());
        async move {
            http.post(url)
                .bearer_auth(token)
                .json(&json!({ "query": goals, "variables": { "id": plan, "aim": aim, "k": key } }))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let mut repeated = Vec::new();
    for k in 0..KEYS {
        let (plan, aim, key) = (
            if k % 2 == 0 { &plan_a } else { &plan_b },
            format!("aim {k}"),
            format!("many-{k}"),
        );
        for url in [api.url(), api.url(), replica.url()] {
            repeated.push(send(url, plan.clone(), aim.clone(), key.clone()));
        }
    }
    let mut contested = Vec::new();
    for k in 0..CONTESTED {
        let key = format!("contested-{k}");
        contested.push(send(
            api.url(),
            plan_a.clone(),
            format!("first {k}"),
            key.clone(),
        ));
        contested.push(send(
            replica.url(),
            plan_a.clone(),
            format!("other {k}"),
            key,
        ));
    }
    let (repeated, contested) = tokio::join!(
        futures::future::join_all(repeated),
        futures::future::join_all(contested)
    );
    for (k, answers) in repeated.chunks(3).enumerate() {
        for answer in answers {
            assert!(answer.get("errors").is_none(), "key {k}: {answer}");
        }
        let versions: std::collections::HashSet<_> = answers
            .iter()
            .map(|a| a["data"]["setGoals"]["version"].clone())
            .collect();
        assert_eq!(versions.len(), 1, "key {k}: one result {answers:?}");
        let first = answers
            .iter()
            .filter(|a| a["data"]["setGoals"]["replayed"] == false)
            .count();
        assert_eq!(first, 1, "key {k}: carried out once {answers:?}");
    }
    for (k, pair) in contested.chunks(2).enumerate() {
        let done: Vec<_> = pair.iter().filter(|a| a.get("errors").is_none()).collect();
        let refused: Vec<_> = pair.iter().filter(|a| a.get("errors").is_some()).collect();
        assert_eq!(done.len(), 1, "key {k}: one request goes through {pair:?}");
        assert_eq!(code(refused[0]), "IDEMPOTENCY_KEY_REUSED", "key {k}");
    }
    assert_eq!(
        api.db.count("SELECT count(*) FROM events").await,
        events + (KEYS + CONTESTED) as i64,
        "one event per key, none lost and none twice"
    );
    assert_eq!(
        api.db
            .count("SELECT count(*) FROM idempotency_keys WHERE operation = 'setGoals'")
            .await,
        (KEYS + CONTESTED) as i64
    );
}
