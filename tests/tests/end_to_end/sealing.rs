//! Survivors' data is sealed under their own key and bound to its place: an altered value, or
//! one moved to another plan, is an `UNREADABLE` error for that field alone, never garbage or a
//! failure of the whole plan.
#![allow(clippy::unwrap_used)]

use homeward_tests::api::{Person, TestApi};
use serde_json::{json, Value};

async fn plan_with_custom_step(api: &TestApi, amina: &Person, name: &str, title: &str) -> String {
    let person = api
        .data(
            &amina.token,
            "mutation($n: String!) { registerPerson(input: { fullName: $n }) }",
            json!({ "n": name }),
        )
        .await["registerPerson"]
        .clone();
    let plan = api
        .data(
            &amina.token,
            "mutation($p: ID!) { openPlan(input: { personId: $p, originCountry: \"NG\" }) { plan { id } } }",
            json!({ "p": person }),
        )
        .await["openPlan"]["plan"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.data(
        &amina.token,
        "mutation($id: ID!, $t: String!, $me: ID!) { addStep(planId: $id, step: {
            key: \"counselling\", kind: CUSTOM, title: $t, assignee: $me }) { version } }",
        json!({ "id": plan, "t": title, "me": amina.id }),
    )
    .await;
    plan
}

async fn post(api: &TestApi, url: &str, token: &str, query: &str, variables: Value) -> Value {
    api.http
        .post(url)
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

const READ: &str = "query($id: ID!) { plan(id: $id) { status person { fullName }
    steps { key title } } }";

/// The error of the field at `path`, if any.
fn error_at<'a>(body: &'a Value, path: &[Value]) -> Option<&'a Value> {
    body["errors"]
        .as_array()?
        .iter()
        .find(|e| e["path"].as_array().map(Vec::as_slice) == Some(path))
}

#[tokio::test]
async fn an_altered_or_moved_value_is_an_error_for_that_field_and_the_rest_reads() {
    let api = TestApi::start().await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let first = plan_with_custom_step(&api, &amina, "Joy N.", "Counselling for Joy").await;
    let second = plan_with_custom_step(&api, &amina, "Ada O.", "Housing for Ada").await;
    let counselling = |plan: &str| {
        format!(
            "SELECT payload->'step'->>'title' FROM events WHERE stream_id = 'plan-{plan}' \
             AND event_type = 'step_added' AND payload->'step'->>'key' = 'counselling'"
        )
    };
    let sealed: String = sqlx::query_scalar(&counselling(&first))
        .fetch_one(api.db.pool())
        .await
        .unwrap();
    assert!(sealed.starts_with("hwenc2:"), "stored sealed: {sealed}");

    // One character of the first plan's title altered; the second plan's title replaced by the
    // first's (sealed for another person and another stream).
    let mut altered: Vec<char> = sealed.chars().collect();
    let last = altered.len() - 2;
    altered[last] = if altered[last] == 'A' { 'B' } else { 'A' };
    let altered: String = altered.into_iter().collect();
    for (plan, value) in [(&first, &altered), (&second, &sealed)] {
        sqlx::query(&format!(
            "UPDATE events SET payload = jsonb_set(payload, '{{step,title}}', to_jsonb($1::text)) \
             WHERE stream_id = 'plan-{plan}' AND event_type = 'step_added' \
             AND payload->'step'->>'key' = 'counselling'"
        ))
        .bind(value)
        .execute(api.db.pool())
        .await
        .unwrap();
    }

    // A replica that folds the plans from the log (the first one's cache holds them as they
    // were written).
    let replica = api.second_replica().await;
    for (plan, name) in [(&first, "Joy N."), (&second, "Ada O.")] {
        let body = post(
            &api,
            &replica.url(),
            &amina.token,
            READ,
            json!({ "id": plan }),
        )
        .await;
        let steps = body["data"]["plan"]["steps"].as_array().unwrap();
        let at = steps
            .iter()
            .position(|s| s["key"] == "counselling")
            .unwrap();
        assert_eq!(steps[at]["title"], Value::Null, "{body}");
        let error = error_at(
            &body,
            &[json!("plan"), json!("steps"), json!(at), json!("title")],
        )
        .unwrap_or_else(|| panic!("an error for the title: {body}"));
        assert_eq!(error["extensions"]["code"], "UNREADABLE");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("cannot be read"),
            "{error}"
        );
        // Everything else reads.
        assert_eq!(body["data"]["plan"]["status"], "DRAFT", "{body}");
        assert_eq!(body["data"]["plan"]["person"]["fullName"], name);
        assert_eq!(
            steps[0]["title"],
            "Designate a contact person in the community of origin"
        );
        assert_eq!(body["errors"].as_array().unwrap().len(), 1, "{body}");
    }
}

#[tokio::test]
async fn an_altered_title_in_the_inbox_is_an_error_for_that_task_alone() {
    let api = TestApi::start().await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let plan = plan_with_custom_step(&api, &amina, "Joy N.", "Counselling for Joy").await;
    let plan_id: uuid::Uuid = plan.parse().unwrap();
    let stored: String = sqlx::query_scalar(
        "SELECT title FROM step_view WHERE plan_id = $1 AND step_key = 'counselling'",
    )
    .bind(plan_id)
    .fetch_one(api.db.pool())
    .await
    .unwrap();
    assert!(
        stored.starts_with("hwenc2:"),
        "the read model holds it sealed"
    );
    // Cut short.
    sqlx::query(
        "UPDATE step_view SET title = left(title, length(title) - 4) \
         WHERE plan_id = $1 AND step_key = 'counselling'",
    )
    .bind(plan_id)
    .execute(api.db.pool())
    .await
    .unwrap();
    let body = api
        .gql(
            &amina.token,
            "{ tasks(first: 10) { edges { node { key title } } } }",
            json!({}),
        )
        .await;
    let edges = body["data"]["tasks"]["edges"].as_array().unwrap();
    let at = edges
        .iter()
        .position(|e| e["node"]["key"] == "counselling")
        .unwrap_or_else(|| panic!("the task is listed: {body}"));
    assert_eq!(edges[at]["node"]["title"], Value::Null);
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNREADABLE",
        "{body}"
    );
    assert_eq!(body["errors"].as_array().unwrap().len(), 1, "{body}");
}

/// `homeward keys rotate` re-wraps every data key under a new master key without touching an
/// event: a replica with the new key reads everything, one with the old key does not start, and
/// a server still running with the old key stores no key it could not read back.
#[tokio::test]
async fn rotating_the_master_key_keeps_every_person_readable_and_touches_no_event() {
    use clap::{CommandFactory, FromArgMatches};
    let api = TestApi::start().await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let plan = plan_with_custom_step(&api, &amina, "Joy N.", "Counselling for Joy").await;
    let events_before: Vec<(i64, String)> = sqlx::query_as(
        "SELECT global_position, payload::text FROM events ORDER BY global_position",
    )
    .fetch_all(api.db.pool())
    .await
    .unwrap();
    let wrapped_before: Vec<u8> = sqlx::query_scalar("SELECT wrapped_key FROM person_keys")
        .fetch_one(api.db.pool())
        .await
        .unwrap();

    let next = homeward_engine::keys::MasterKey::generate();
    let dir = std::env::temp_dir().join(format!("homeward-rotate-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let new_key_file = dir.join("next.key");
    std::fs::write(&new_key_file, next.to_base64()).unwrap();
    std::fs::set_permissions(
        &new_key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let rotate = |current: String| {
        let args = [
            "homeward".to_owned(),
            "--database-url".to_owned(),
            api.db.url.clone(),
            "keys".to_owned(),
            "rotate".to_owned(),
            "--master-key".to_owned(),
            current,
            "--new-key-file".to_owned(),
            new_key_file.display().to_string(),
        ];
        let matches = homeward::cli::Cli::command()
            .try_get_matches_from(args)
            .unwrap();
        let cli = homeward::cli::Cli::from_arg_matches(&matches).unwrap();
        async move { homeward::cli::run(cli, &matches).await }
    };
    // From a key that is not the database's: refused.
    let refused = rotate(homeward_engine::keys::MasterKey::generate().to_base64())
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("not this database's"), "{refused}");
    rotate(homeward_tests::TEST_MASTER_KEY.to_owned())
        .await
        .unwrap();

    let events_after: Vec<(i64, String)> = sqlx::query_as(
        "SELECT global_position, payload::text FROM events ORDER BY global_position",
    )
    .fetch_all(api.db.pool())
    .await
    .unwrap();
    assert_eq!(events_after, events_before, "no event was touched");
    let wrapped_after: Vec<u8> = sqlx::query_scalar("SELECT wrapped_key FROM person_keys")
        .fetch_one(api.db.pool())
        .await
        .unwrap();
    assert_ne!(wrapped_after, wrapped_before, "the key was re-wrapped");

    // The old key no longer starts a replica; the new one reads everything.
    let old = homeward::app::Settings {
        no_scheduler: true,
        master_key: Some(homeward_tests::TEST_MASTER_KEY.into()),
        search_key: Some(homeward_tests::TEST_SEARCH_KEY.into()),
        outbox_dir: dir.join("outbox"),
        ..homeward::app::Settings::new(api.db.url.clone(), "127.0.0.1:0".parse().unwrap())
    };
    assert!(
        homeward::app::Application::build_with_clock(old, api.clock.clone())
            .await
            .is_err()
    );
    let next_key = next.to_base64();
    let replica = api
        .second_replica_with(move |s| homeward::app::Settings {
            master_key: Some(next_key.into()),
            ..s
        })
        .await;
    let body = post(
        &api,
        &replica.url(),
        &amina.token,
        READ,
        json!({ "id": plan }),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["plan"]["person"]["fullName"], "Joy N.");
    assert!(body.to_string().contains("Counselling for Joy"), "{body}");

    // The server still running with the old key registers no one it could not read back.
    let keys_before = api.db.count("SELECT count(*) FROM person_keys").await;
    let late = api
        .gql(
            &amina.token,
            "mutation { registerPerson(input: { fullName: \"Ada O.\" }) }",
            json!({}),
        )
        .await;
    assert_eq!(
        late["errors"][0]["extensions"]["code"], "INTERNAL",
        "{late}"
    );
    assert_eq!(
        api.db.count("SELECT count(*) FROM person_keys").await,
        keys_before
    );
    assert_eq!(
        api.db
            .count("SELECT count(*) FROM events WHERE event_type = 'person_registered'")
            .await,
        1
    );
}

/// Text a person types that looks like a sealed value is sealed all the same: only a value
/// already sealed for her, in the stored form, is kept as it is. Stored as typed, the plain
/// text would sit in the log, the read models and every backup.
#[tokio::test]
async fn text_that_looks_sealed_is_sealed_all_the_same() {
    let api = TestApi::start().await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let name = "hwenc1:Canaryname Okafor";
    let plan = plan_with_custom_step(&api, &amina, name, "hwenc2:Canarytitle").await;
    let person = api.person_of_plan(&amina.token, &plan).await;
    // The stored form's shape, for this very person, around a plain word in base64.
    let forged = format!("hwenc1:{person}:{}:Q2FuYXJ5Zm9yZ2Vk", uuid::Uuid::new_v4());
    api.data(
        &amina.token,
        "mutation($id: ID!, $t: String!, $me: ID!) { addStep(planId: $id, step: {
            key: \"housing\", kind: CUSTOM, title: $t, assignee: $me }) { version } }",
        json!({ "id": plan, "t": forged, "me": amina.id }),
    )
    .await;

    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT payload::text FROM events UNION ALL SELECT title FROM step_view",
    )
    .fetch_all(api.db.pool())
    .await
    .unwrap();
    for text in &stored {
        assert!(!text.contains("Canary"), "stored as typed: {text}");
        assert!(
            !text.contains("Q2FuYXJ5Zm9yZ2Vk"),
            "stored as typed: {text}"
        );
    }
    let body = api
        .data(
            &amina.token,
            "query($id: ID!) { plan(id: $id) { person { fullName } steps { key title } } }",
            json!({ "id": plan }),
        )
        .await;
    assert_eq!(body["plan"]["person"]["fullName"], name, "{body}");
    let title = |key: &str| {
        body["plan"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .map(|s| s["title"].clone())
            .unwrap_or_else(|| panic!("step {key}: {body}"))
    };
    assert_eq!(title("counselling"), "hwenc2:Canarytitle");
    assert_eq!(title("housing"), forged.as_str());
}
