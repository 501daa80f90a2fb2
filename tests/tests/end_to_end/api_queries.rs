//! The list queries: every filter of `plans` and `tasks`, the inbox order, and paging with
//! cursors that neither skip nor repeat.
#![allow(clippy::unwrap_used)]

use chrono::Duration;
use homeward_tests::api::{Person, TestApi};
use homeward_tests::start_time;
use serde_json::{json, Value};

async fn open_plan(api: &TestApi, worker: &Person, country: &str) -> String {
    let person = api
        .data(
            &worker.token,
            "mutation { registerPerson(input: { fullName: \"N. N.\" }) }",
            json!({}),
        )
        .await["registerPerson"]
        .clone();
    api.data(
        &worker.token,
        "mutation($p: ID!, $c: String!) { openPlan(input: { personId: $p, originCountry: $c }) { plan { id } } }",
        json!({ "p": person, "c": country }),
    )
    .await["openPlan"]["plan"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn ids(connection: &Value) -> Vec<String> {
    connection["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn plan_filters_select_what_they_say() {
    let api = TestApi::start().await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let bea = api.party("SOCIAL_WORKER", "Bea", "Safe Passage").await;
    let nigeria = open_plan(&api, &amina, "NG").await;
    api.clock.advance(Duration::days(10));
    let albania = open_plan(&api, &amina, "AL").await;
    api.clock.advance(Duration::days(10));
    let beas = open_plan(&api, &bea, "NG").await;
    api.data(
        &amina.token,
        "mutation($id: ID!) { recordConsent(planId: $id, consent: { kind: RETURN }) { version } }",
        json!({ "id": albania }),
    )
    .await;

    let query = |filter: Value| {
        let api = &api;
        let token = amina.token.clone();
        async move {
            ids(&api
                .data(
                    &token,
                    "query($f: PlanFilterInput) { plans(filter: $f) { edges { node { id } } } }",
                    json!({ "f": filter }),
                )
                .await["plans"])
        }
    };
    // Newest first; the whole organisation.
    assert_eq!(
        query(json!({})).await,
        [beas.clone(), albania.clone(), nigeria.clone()]
    );
    assert_eq!(
        query(json!({ "originCountry": "NG" })).await,
        [beas.clone(), nigeria.clone()]
    );
    assert_eq!(
        query(json!({ "originCountry": "ng" })).await,
        [beas.clone(), nigeria.clone()]
    );
    assert_eq!(
        query(json!({ "caseWorker": bea.id })).await,
        vec![beas.clone()]
    );
    assert_eq!(
        query(json!({ "statuses": ["ACTIVE"] })).await,
        vec![albania.clone()]
    );
    assert_eq!(
        query(json!({ "statuses": ["DRAFT", "ACTIVE"] }))
            .await
            .len(),
        3
    );
    let t = |days: i64| (start_time() + Duration::days(days)).to_rfc3339();
    assert_eq!(
        query(json!({ "openedFrom": t(5), "openedBefore": t(15) })).await,
        vec![albania.clone()]
    );
    // The origin contact is due 21 days after opening: 25 days in, the first plan is overdue.
    api.clock.set(start_time() + Duration::days(25));
    assert_eq!(
        query(json!({ "hasOverdueSteps": true })).await,
        vec![nigeria.clone()]
    );
    assert_eq!(
        query(json!({ "hasOverdueSteps": false })).await,
        [beas.clone(), albania.clone()]
    );

    // Paging: two pages of one and two, no repeats, no gaps.
    let page = |first: i64, after: Option<String>| {
        let api = &api;
        let token = amina.token.clone();
        async move {
            api.data(&token, "query($n: Int, $a: String) { plans(first: $n, after: $a) { edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage endCursor } } }", json!({ "n": first, "a": after }))
                .await["plans"]
                .clone()
        }
    };
    let one = page(1, None).await;
    assert_eq!(ids(&one), vec![beas.clone()]);
    assert_eq!(one["pageInfo"]["hasNextPage"], true);
    let rest = page(2, one["pageInfo"]["endCursor"].as_str().map(str::to_owned)).await;
    assert_eq!(ids(&rest), [albania, nigeria]);
    assert_eq!(rest["pageInfo"]["hasNextPage"], false);
    assert_eq!(rest["pageInfo"]["hasPreviousPage"], true);
}

#[tokio::test]
async fn the_inbox_is_sorted_and_filtered() {
    let api = TestApi::start().await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let plan = open_plan(&api, &amina, "NG").await;
    let v = json!({ "id": plan, "me": amina.id });
    api.data(
        &amina.token,
        "mutation($id: ID!) { recordConsent(planId: $id, consent: { kind: RETURN }) { version } }",
        v.clone(),
    )
    .await;
    // Four tasks: two due the same day (priority decides), one later, one with no due date.
    for (key, due, priority) in [
        ("a_later", Some("2026-04-20T09:00:00"), "NORMAL"),
        ("b_same_day_low", Some("2026-04-10T09:00:00"), "LOW"),
        ("c_same_day_urgent", Some("2026-04-10T09:00:00"), "URGENT"),
        ("d_undated", None, "HIGH"),
    ] {
        let due = due.map(|d| json!({ "at": { "localDateTime": d, "timeZone": "UTC" } }));
        api.data(&amina.token, "mutation($id: ID!, $me: ID!, $key: String!, $due: DueInput, $p: Priority!) {
            addStep(planId: $id, step: { key: $key, kind: CUSTOM, title: $key, assignee: $me, due: $due, priority: $p }) { version } }",
            json!({ "id": plan, "me": amina.id, "key": key, "due": due, "p": priority })).await;
    }
    let inbox = |filter: Value| {
        let api = &api;
        let token = amina.token.clone();
        async move {
            api.data(&token, "query($f: TaskFilterInput) { tasks(filter: $f) { edges { node { key overdue } } } }", json!({ "f": filter }))
                .await["tasks"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["key"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        inbox(json!({})).await,
        [
            "c_same_day_urgent",
            "b_same_day_low",
            "a_later",
            "d_undated"
        ]
    );
    assert_eq!(
        inbox(json!({ "kinds": ["CUSTOM"], "dueFrom": "2026-04-15T00:00:00Z" })).await,
        ["a_later"]
    );
    assert_eq!(
        inbox(json!({ "dueBefore": "2026-04-15T00:00:00Z" })).await,
        ["c_same_day_urgent", "b_same_day_low"]
    );
    api.clock.set(start_time() + Duration::days(45)); // 15 April
    assert_eq!(
        inbox(json!({ "overdue": true })).await,
        ["c_same_day_urgent", "b_same_day_low"]
    );
    api.data(
        &amina.token,
        "mutation($id: ID!) { completeStep(planId: $id, step: \"c_same_day_urgent\") { version } }",
        v.clone(),
    )
    .await;
    assert_eq!(inbox(json!({ "overdue": true })).await, ["b_same_day_low"]);
    assert_eq!(
        inbox(json!({ "statuses": ["DONE"] })).await,
        ["c_same_day_urgent"]
    );
}
