//! Cases are handed over by a supervisor: one plan, or every open plan of a social worker at
//! once, each recorded on its plan; only to a social worker of the plan's organisation.
#![allow(clippy::unwrap_used)]

use homeward_tests::api::{error_code, TestApi};
use serde_json::{json, Value};

const REASSIGN: &str =
    "mutation($p: ID!, $to: ID!) { reassignCaseWorker(planId: $p, caseWorker: $to) \
    { plan { caseWorker { displayName } } } }";
const HAND_OVER: &str = "mutation($from: ID!, $to: ID!) { handOverCases(from: $from, to: $to) }";
const CASE_WORKER: &str = "query($p: ID!) { plan(id: $p) { caseWorker { displayName } } }";

async fn case_worker(api: &TestApi, token: &str, plan: &Value) -> Value {
    api.data(token, CASE_WORKER, json!({ "p": plan })).await["plan"]["caseWorker"]["displayName"]
        .clone()
}

#[tokio::test]
async fn a_supervisor_hands_over_one_plan_or_all_of_a_workers_open_plans() {
    let api = TestApi::start().await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let binta = api.party("SOCIAL_WORKER", "Binta", "Safe Passage").await;
    let sara = api.party("SUPERVISOR", "Sara", "Safe Passage").await;
    let olu = api.party("SOCIAL_WORKER", "Olu", "Other Shelter").await;
    let luc = api
        .party("GOVERNMENT_LIAISON", "Luc Martin", "Prefecture")
        .await;
    let first = api.open_plan(&amina.token, "Joy N.").await;
    let second = api.open_plan(&amina.token, "Ada O.").await;
    let closed = api.open_plan(&amina.token, "Efe I.").await;
    api.data(
        &amina.token,
        "mutation($p: ID!) { closePlan(planId: $p, reason: OPTED_OUT) { version } }",
        json!({ "p": closed }),
    )
    .await;
    let events = || api.db.count("SELECT count(*) FROM events");
    let before = events().await;
    // Moving Amina to another organisation, or making her a supervisor, would leave her open
    // plans without a case worker: refused until they are handed over.
    for (role, organisation) in [
        ("SOCIAL_WORKER", "Other Shelter"),
        ("SUPERVISOR", "Safe Passage"),
    ] {
        let (_, body) = api
            .post(
                Some(&api.admin),
                UPDATE,
                update(&amina.id, role, &api.organisation(organisation).await),
            )
            .await;
        assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("hand them over first"), "{message}");
    }

    // A social worker does not hand her own cases over, nor does an admin.
    for token in [&amina.token, &api.admin] {
        let (_, body) = api
            .post(Some(token), REASSIGN, json!({ "p": first, "to": binta.id }))
            .await;
        assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");
        let (_, body) = api
            .post(
                Some(token),
                HAND_OVER,
                json!({ "from": amina.id, "to": binta.id }),
            )
            .await;
        assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");
    }
    // Only to a social worker of the plan's organisation.
    for (to, says) in [
        (&luc.id, "not a social worker"),
        (&olu.id, "another organisation"),
    ] {
        let (_, body) = api
            .post(Some(&sara.token), REASSIGN, json!({ "p": first, "to": to }))
            .await;
        assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
        let (_, body) = api
            .post(
                Some(&sara.token),
                HAND_OVER,
                json!({ "from": amina.id, "to": to }),
            )
            .await;
        assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
    }
    assert_eq!(events().await, before, "nothing was written");

    // One plan, recorded on it with who handed it over.
    let moved = api
        .data(&sara.token, REASSIGN, json!({ "p": first, "to": binta.id }))
        .await;
    assert_eq!(
        moved["reassignCaseWorker"]["plan"]["caseWorker"]["displayName"],
        "Binta"
    );
    let history = api
        .data(
            &sara.token,
            "query($p: ID!) { planHistory(id: $p, first: 100) { edges { node { type data actor { displayName } } } } }",
            json!({ "p": first }),
        )
        .await;
    let entry = history["planHistory"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .find(|n| n["type"] == "case_worker_reassigned")
        .unwrap()
        .clone();
    assert_eq!(entry["actor"]["displayName"], "Sara");
    assert_eq!(entry["data"]["from"], amina.id.as_str());
    assert_eq!(entry["data"]["to"], binta.id.as_str());

    // Every open plan of Amina's at once; the closed one keeps her.
    let handed = api
        .data(
            &sara.token,
            HAND_OVER,
            json!({ "from": amina.id, "to": binta.id }),
        )
        .await;
    assert_eq!(handed["handOverCases"], json!([second]));
    assert_eq!(case_worker(&api, &sara.token, &second).await, "Binta");
    assert_eq!(case_worker(&api, &sara.token, &closed).await, "Amina");
    let binta_s = api
        .data(
            &sara.token,
            "query($b: ID!) { plans(filter: { caseWorker: $b }) { edges { node { id } } } }",
            json!({ "b": binta.id }),
        )
        .await;
    assert_eq!(binta_s["plans"]["edges"].as_array().unwrap().len(), 2);
    // Nothing left to hand over.
    let again = api
        .data(
            &sara.token,
            HAND_OVER,
            json!({ "from": amina.id, "to": binta.id }),
        )
        .await;
    assert_eq!(again["handOverCases"], json!([]));
    // Now she may move (her closed plan stays hers, as its record).
    api.data(
        &api.admin,
        UPDATE,
        update(
            &amina.id,
            "SOCIAL_WORKER",
            &api.organisation("Other Shelter").await,
        ),
    )
    .await;
}

const UPDATE: &str =
    "mutation($id: ID!, $input: PartyInput!) { updateParty(id: $id, input: $input) { id } }";

fn update(id: &str, role: &str, organisation: &str) -> Value {
    json!({ "id": id, "input": {
        "displayName": "Amina", "email": "amina@safe-passage.example", "role": role,
        "organisation": organisation, "country": "FR", "language": "fr", "timeZone": "Europe/Paris",
    }})
}
