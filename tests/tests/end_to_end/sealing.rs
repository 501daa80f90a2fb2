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
    assert!(sealed.starts_with("hwenc1:"), "stored sealed: {sealed}");

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
        stored.starts_with("hwenc1:"),
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
