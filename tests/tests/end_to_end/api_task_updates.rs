//! `taskUpdates` keeps a client's inbox right: each update shows the task as the event that
//! changed it left it, only the tasks an event changed are sent, and a task that leaves the
//! inbox (done, reassigned away, cancelled, its plan suspended) is sent as `REMOVED`.
#![allow(clippy::unwrap_used)]

use homeward_tests::api::{Person, Subscription, TestApi};
use serde_json::{json, Value};

const UPDATES: &str =
    "subscription { taskUpdates { change planId key version task { key status priority } } }";

/// The next update as (change, key, status or null).
async fn next(updates: &mut Subscription) -> (String, String, Value) {
    let u = updates.next().await["taskUpdates"].clone();
    (
        u["change"].as_str().unwrap().to_owned(),
        u["key"].as_str().unwrap().to_owned(),
        u["task"]["status"].clone(),
    )
}

async fn mutate(api: &TestApi, who: &Person, query: &str, plan: &Value) {
    api.data(&who.token, query, json!({ "id": plan })).await;
}

#[tokio::test]
async fn task_updates_follow_start_reassignment_cancellation_and_suspension() {
    let api = TestApi::start().await;
    let worker = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let luc = api
        .party("GOVERNMENT_LIAISON", "Luc Martin", "Prefecture")
        .await;
    let other = api
        .party("GOVERNMENT_LIAISON", "Lea Dubois", "Prefecture")
        .await;
    let plan = api.open_plan(&worker.token, "Joy N.").await;
    mutate(
        &api,
        &worker,
        "mutation($id: ID!) { recordConsent(planId: $id, consent: { kind: RETURN }) { version } }",
        &plan,
    )
    .await;
    let mut updates = api.subscribe(&luc.token, UPDATES, json!({})).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    // Two steps become Luc's: one update each, as assigned. (The medical check cannot be his:
    // a liaison does not see medical steps. Refused, and no update.)
    let refused = api
        .gql(
            &worker.token,
            "mutation($id: ID!, $who: ID!) { assignStep(planId: $id, step: \"medical_check\", assignee: $who) { version } }",
            json!({ "id": plan, "who": luc.id }),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "VALIDATION",
        "{refused}"
    );
    for step in ["passport", "legal_clearance"] {
        api.data(
            &worker.token,
            "mutation($id: ID!, $step: String!, $who: ID!) { assignStep(planId: $id, step: $step, assignee: $who) { version } }",
            json!({ "id": plan, "step": step, "who": luc.id }),
        )
        .await;
        let (change, key, status) = next(&mut updates).await;
        assert_eq!((change.as_str(), key.as_str()), ("CHANGED", step));
        assert_eq!(status, "READY");
    }

    // Started then completed at once: the first update shows it started, not done.
    mutate(
        &api,
        &luc,
        "mutation($id: ID!) { startStep(planId: $id, step: \"passport\") { version } }",
        &plan,
    )
    .await;
    mutate(
        &api,
        &luc,
        "mutation($id: ID!) { completeStep(planId: $id, step: \"passport\") { version } }",
        &plan,
    )
    .await;
    assert_eq!(
        next(&mut updates).await,
        ("CHANGED".into(), "passport".into(), json!("IN_PROGRESS"))
    );
    assert_eq!(
        next(&mut updates).await,
        ("REMOVED".into(), "passport".into(), Value::Null),
        "done: out of the inbox"
    );

    // A plan-wide event that changes none of Luc's tasks sends nothing: the next update is
    // the one after it.
    mutate(&api, &worker, "mutation($id: ID!) { setGoals(planId: $id, goals: [{ area: INCOME, aim: \"A workshop\" }]) { version } }", &plan).await;
    mutate(&api, &worker, "mutation($id: ID!) { prioritiseStep(planId: $id, step: \"legal_clearance\", priority: URGENT) { version } }", &plan).await;
    let u = updates.next().await["taskUpdates"].clone();
    assert_eq!(u["key"], "legal_clearance", "{u}");
    assert_eq!(u["task"]["priority"], "URGENT");

    // Reassigned to someone else: removed from Luc's inbox.
    api.data(
        &worker.token,
        "mutation($id: ID!, $who: ID!) { assignStep(planId: $id, step: \"legal_clearance\", assignee: $who) { version } }",
        json!({ "id": plan, "who": other.id }),
    )
    .await;
    assert_eq!(
        next(&mut updates).await,
        ("REMOVED".into(), "legal_clearance".into(), Value::Null)
    );

    // A step added for him, then cancelled: added, then removed.
    api.data(
        &worker.token,
        "mutation($id: ID!, $who: ID!) { addStep(planId: $id, step: { key: \"court_hearing\", kind: LEGAL, title: \"Court hearing\", assignee: $who }) { version } }",
        json!({ "id": plan, "who": luc.id }),
    )
    .await;
    assert_eq!(
        next(&mut updates).await,
        ("CHANGED".into(), "court_hearing".into(), json!("READY"))
    );
    mutate(&api, &worker, "mutation($id: ID!) { cancelStep(planId: $id, step: \"court_hearing\", reason: \"Hearing withdrawn\") { version } }", &plan).await;
    assert_eq!(
        next(&mut updates).await,
        ("REMOVED".into(), "court_hearing".into(), Value::Null)
    );

    // Suspended: a task he still holds leaves his inbox.
    api.data(
        &worker.token,
        "mutation($id: ID!, $who: ID!) { assignStep(planId: $id, step: \"legal_clearance\", assignee: $who) { version } }",
        json!({ "id": plan, "who": luc.id }),
    )
    .await;
    assert_eq!(
        next(&mut updates).await,
        ("CHANGED".into(), "legal_clearance".into(), json!("READY"))
    );
    mutate(&api, &worker, "mutation($id: ID!) { withdrawConsent(planId: $id, consent: { kind: RETURN }) { version } }", &plan).await;
    assert_eq!(
        next(&mut updates).await,
        ("REMOVED".into(), "legal_clearance".into(), Value::Null)
    );
}
