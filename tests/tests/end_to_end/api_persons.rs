//! A survivor's own record through the API: read by the case team of the organisation that
//! registered her, corrected with who and why, case notes sealed like the rest.
#![allow(clippy::unwrap_used)]

use homeward_tests::api::{Person, TestApi};
use serde_json::{json, Value};

const READ: &str = "query($id: ID!) { person(id: $id) { id version fullName dateOfBirth
    preferredLanguage phone email address erasedAt notes { text author { displayName } at } } }";
const CORRECT: &str = "mutation($id: ID!, $input: PersonCorrectionInput!, $reason: String!,
    $v: Int) { updatePerson(personId: $id, input: $input, reason: $reason, expectedVersion: $v) {
    version fullName phone email address } }";

async fn register(api: &TestApi, worker: &Person) -> Value {
    api.data(
        &worker.token,
        "mutation { registerPerson(input: { fullName: \"Joy N.\", phone: \"+234 1\",
            email: \"joy@example.org\", address: \"12 Example Street\" }) }",
        json!({}),
    )
    .await["registerPerson"]
        .clone()
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("none")
}

#[tokio::test]
async fn the_case_team_reads_corrects_and_notes_and_nobody_else_sees_her() {
    let api = TestApi::start().await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let luc = api.party("GOVERNMENT_LIAISON", "Luc", "Prefecture").await;
    let other = api.party("SOCIAL_WORKER", "Olu", "Other Shelter").await;
    let person = register(&api, &amina).await;
    let read = api.data(&amina.token, READ, json!({ "id": person })).await;
    assert_eq!(read["person"]["fullName"], "Joy N.");
    assert_eq!(read["person"]["version"], 1);
    for outsider in [&luc, &other] {
        let body = api
            .gql(&outsider.token, READ, json!({ "id": person }))
            .await;
        assert_eq!(code(&body), "NOT_FOUND", "{body}");
        let body = api
            .gql(
                &outsider.token,
                CORRECT,
                json!({ "id": person, "input": { "phone": "+1" }, "reason": "r" }),
            )
            .await;
        assert_eq!(code(&body), "NOT_FOUND", "{body}");
    }

    // A correction: the phone changed, the email cleared, the rest kept.
    let corrected = api
        .data(
            &amina.token,
            CORRECT,
            json!({ "id": person, "input": { "phone": "+234 2", "email": null },
                    "reason": "She has a new phone", "v": 1 }),
        )
        .await["updatePerson"]
        .clone();
    assert_eq!(
        corrected,
        json!({ "version": 2, "fullName": "Joy N.", "phone": "+234 2", "email": null,
                "address": "12 Example Street" })
    );
    // Recorded with who and why, the why sealed like the rest.
    let (payload, metadata) = api.db.events_of_type("person_corrected").await.remove(0);
    let (changed, reason, actor) = (
        payload["changed"].clone(),
        payload["reason"].as_str().unwrap().to_owned(),
        metadata["actor"].as_str().unwrap().to_owned(),
    );
    assert_eq!(changed, json!(["phone", "email"]));
    assert_eq!(actor, amina.id);
    let stream = format!("person-{}", person.as_str().unwrap());
    assert_eq!(
        api.db.opened(&reason, &stream, "reason").await,
        "She has a new phone"
    );
    // Nothing to correct, a bad value, a stale version: refused, nothing changes.
    for (input, v, expected) in [
        (json!({ "phone": "+234 2" }), 2, "VALIDATION"),
        (json!({ "email": "not an email" }), 2, "VALIDATION"),
        (json!({ "fullName": "Joy M." }), 1, "CONFLICT"),
    ] {
        let body = api
            .gql(
                &amina.token,
                CORRECT,
                json!({ "id": person, "input": input, "reason": "r", "v": v }),
            )
            .await;
        assert_eq!(code(&body), expected, "{body}");
    }
    assert_eq!(
        api.data(&amina.token, READ, json!({ "id": person })).await["person"]["version"],
        2
    );

    // A case note, sealed, read by the case team.
    api.data(
        &amina.token,
        "mutation($id: ID!) { addNote(personId: $id, text: \"Prefers calls after 6 pm\") { version } }",
        json!({ "id": person }),
    )
    .await;
    let read = api.data(&amina.token, READ, json!({ "id": person })).await;
    assert_eq!(
        read["person"]["notes"][0]["text"],
        "Prefers calls after 6 pm"
    );
    assert_eq!(read["person"]["notes"][0]["author"]["displayName"], "Amina");
    let (note, _) = api.db.events_of_type("person_note_added").await.remove(0);
    let stored = note["note"]["text"].as_str().unwrap().to_owned();
    assert!(stored.starts_with("hwenc2:"), "{stored}");
    let body = api
        .gql(
            &luc.token,
            "mutation($id: ID!) { addNote(personId: $id, text: \"x\") { version } }",
            json!({ "id": person }),
        )
        .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");

    // Once erased, nothing more is recorded about her, and her record reads `[erased]`.
    let sam = api.party("SUPERVISOR", "Sam", "Safe Passage").await;
    api.data(
        &sam.token,
        "mutation($id: ID!) { erasePerson(personId: $id, reason: REGISTERED_IN_ERROR) { erasedAt } }",
        json!({ "id": person }),
    )
    .await;
    let body = api
        .gql(
            &amina.token,
            CORRECT,
            json!({ "id": person, "input": { "phone": "+1" }, "reason": "r" }),
        )
        .await;
    assert_eq!(code(&body), "ERASED", "{body}");
    let read = api.data(&amina.token, READ, json!({ "id": person })).await;
    assert_eq!(read["person"]["fullName"], "[erased]");
    assert_eq!(read["person"]["phone"], "[erased]");
    assert_eq!(read["person"]["notes"][0]["text"], "[erased]");
    assert!(read["person"]["erasedAt"].is_string());
}

/// `plan(id:)` with her person reads the plan's tail, hers and her key together: a replica
/// that holds both in its cache still shows what another replica changed since, at once, with
/// one audit entry per read.
#[tokio::test]
async fn a_plan_read_with_her_shows_her_as_she_is_now_over_two_replicas() {
    const WITH_HER: &str = "query($id: ID!) { plan(id: $id) { version person { id fullName
        phone dateOfBirth } } }";
    let api = TestApi::start().await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let person = register(&api, &amina).await;
    let plan = api
        .data(
            &amina.token,
            "mutation($p: ID!) { openPlan(input: { personId: $p, originCountry: \"NG\" }) {
                plan { id } } }",
            json!({ "p": person }),
        )
        .await["openPlan"]["plan"]["id"]
        .clone();
    let replica = api.second_replica().await;
    let through_replica = |query: &'static str| {
        let read = replica.data(&amina.token, query, json!({ "id": plan }));
        async move { read.await["plan"].clone() }
    };
    let audited = || async {
        api.db
            .count(&format!(
                "SELECT count(*) FROM access_log WHERE person_id = '{}'",
                person.as_str().unwrap()
            ))
            .await
    };

    // Read twice: first folded from the log, then from the replica's cache.
    for _ in 0..2 {
        let read = through_replica(WITH_HER).await;
        assert_eq!(read["person"]["id"], person);
        assert_eq!(read["person"]["fullName"], "Joy N.");
        assert_eq!(read["person"]["phone"], "+234 1");
    }
    assert_eq!(audited().await, 2);
    // Without her, nothing personal is read or recorded.
    let read = through_replica("query($id: ID!) { plan(id: $id) { version } }").await;
    assert!(read["person"].is_null());
    assert_eq!(audited().await, 2);

    // Corrected through the first replica: the second shows it at its next read.
    api.data(
        &amina.token,
        "mutation($id: ID!, $input: PersonCorrectionInput!) { updatePerson(personId: $id,
            input: $input, reason: \"she moved\") { version } }",
        json!({ "id": person, "input": { "phone": "+234 2", "dateOfBirth": "1999-04-01" } }),
    )
    .await;
    let read = through_replica(WITH_HER).await;
    assert_eq!(read["person"]["phone"], "+234 2");
    assert_eq!(read["person"]["dateOfBirth"], "1999-04-01");
    assert_eq!(audited().await, 3);

    // Erased through the first replica: the second, which read her key with her a moment ago,
    // reads `[erased]` at its next read.
    // (Not while her plan is open: closed first, which the replica's next read shows too.)
    let version = read["version"].as_u64().unwrap();
    api.data(
        &amina.token,
        "mutation($id: ID!) { closePlan(planId: $id, reason: OPTED_OUT) { version } }",
        json!({ "id": plan }),
    )
    .await;
    let sam = api.party("SUPERVISOR", "Sam", "Safe Passage").await;
    api.data(
        &sam.token,
        "mutation($id: ID!) { erasePerson(personId: $id, reason: SURVIVOR_REQUEST) { erasedAt } }",
        json!({ "id": person }),
    )
    .await;
    let read = through_replica(WITH_HER).await;
    assert!(read["version"].as_u64().unwrap() > version, "{read}");
    assert_eq!(read["person"]["fullName"], "[erased]");
    assert_eq!(read["person"]["phone"], "[erased]");
    assert!(read["person"]["dateOfBirth"].is_null());
}
