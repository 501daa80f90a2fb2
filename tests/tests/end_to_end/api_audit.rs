//! The access audit: every route that returns a survivor's personal data records one entry per
//! person and read (who, which fields, through what) before the response leaves; supervisors of
//! the registering organisation read it; nobody changes or deletes it.
#![allow(clippy::unwrap_used)]

use homeward_tests::api::TestApi;
use serde_json::{json, Value};

/// The audit as the server's store keeps it, in order: (reader, person, fields, operation).
async fn entries(api: &TestApi) -> Vec<(String, String, Vec<String>, String)> {
    let kept = api.db.backend().export_kept().await.unwrap();
    kept.access_log
        .into_iter()
        .map(|e| {
            (
                e.party.to_string(),
                e.person.to_string(),
                e.fields,
                e.operation,
            )
        })
        .collect()
}

#[tokio::test]
async fn every_read_of_personal_data_is_recorded_once_and_the_record_cannot_be_changed() {
    let api = TestApi::start().await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let sam = api.party("SUPERVISOR", "Sam", "Safe Passage").await;
    let luc = api.party("GOVERNMENT_LIAISON", "Luc", "Prefecture").await;
    let other = api.party("SUPERVISOR", "Olu", "Other Shelter").await;
    let person = api
        .data(
            &amina.token,
            "mutation { registerPerson(input: { fullName: \"Joy N.\", phone: \"+234 1\",
                address: \"12 Example Street\" }) }",
            json!({}),
        )
        .await["registerPerson"]
        .as_str()
        .unwrap()
        .to_owned();
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
    for m in [
        "mutation($id: ID!) { setGoals(planId: $id, goals: [{ area: INCOME, aim: \"A workshop\" }]) { version } }",
        "mutation($id: ID!, $luc: ID!) { assignStep(planId: $id, step: \"passport\", assignee: $luc) { version } }",
        "mutation($p: ID!) { addNote(personId: $p, text: \"Calls after 6 pm\") { version } }",
        // Comparing a correction with her details shows them to no one.
        "mutation($p: ID!) { updatePerson(personId: $p, input: { phone: \"+234 2\", address: \"12 Example Street\" }, reason: \"New phone\") { version } }",
    ] {
        api.data(&amina.token, m, json!({ "id": plan, "luc": luc.id, "p": person }))
            .await;
    }
    // Mutations answer with what they changed, not with her data: nothing recorded yet.
    assert_eq!(entries(&api).await, vec![]);

    // Every route, and what each must record.
    let routes: Vec<(&str, &str, Vec<&str>, &str)> =
        vec![
        (
            &amina.token,
            "query($id: ID!) { plan(id: $id) { person { fullName phone address } goals { aim } } }",
            vec!["contact.address", "contact.phone", "full_name", "goals[].aim"],
            "plan",
        ),
        (
            &amina.token,
            "query($p: ID!) { person(id: $p) { fullName notes { text } } }",
            vec!["full_name", "note.text"],
            "person",
        ),
        (
            &luc.token,
            "{ tasks(first: 10) { edges { node { key title } } } }",
            vec!["step.title"],
            "tasks",
        ),
        (
            &amina.token,
            "query($id: ID!) { planHistory(id: $id, first: 100) { edges { node { data } } } }",
            vec!["goals[].aim", "step.title"],
            "planHistory",
        ),
        (
            &amina.token,
            "query($p: ID!) { personRecord(personId: $p) }",
            vec![
                "contact.address",
                "contact.phone",
                "full_name",
                "goals[].aim",
                "note.text",
                "reason",
                "step.title",
            ],
            "personRecord",
        ),
    ];
    for (n, (token, query, fields, operation)) in routes.iter().enumerate() {
        let body = api
            .data(token, query, json!({ "id": plan, "p": person }))
            .await;
        assert!(!body.to_string().contains("hwenc"), "{query}: {body}");
        let all = entries(&api).await;
        assert_eq!(all.len(), n + 1, "one entry for {query}: {all:?}");
        let (party, whom, read, through) = all.last().unwrap().clone();
        let reader = if *token == luc.token {
            &luc.id
        } else {
            &amina.id
        };
        assert_eq!(&party, reader, "{query}");
        assert_eq!(whom, person, "{query}");
        assert_eq!(read, *fields, "{query}");
        assert_eq!(through, *operation, "{query}");
    }
    // A read without personal data records nothing.
    api.data(
        &amina.token,
        "query($id: ID!) { plan(id: $id) { status steps { key status } } }",
        json!({ "id": plan }),
    )
    .await;
    assert_eq!(entries(&api).await.len(), routes.len());

    // Supervisors of her organisation read the audit, newest first; nobody else.
    const LOG: &str = "query($p: ID!) { accessLog(personId: $p, first: 50) { edges { node {
        party { displayName } fields operation at } } } }";
    let log = api.data(&sam.token, LOG, json!({ "p": person })).await;
    let edges = log["accessLog"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), routes.len());
    assert_eq!(edges[0]["node"]["operation"], "personRecord");
    assert_eq!(edges[0]["node"]["party"]["displayName"], "Amina");
    for (token, code) in [(&amina.token, "FORBIDDEN"), (&other.token, "NOT_FOUND")] {
        let body = api.gql(token, LOG, json!({ "p": person })).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], code, "{body}");
    }

    // No operation of the API writes or deletes it, and the database refuses to.
    let (_, schema) = api
        .post(
            Some(&amina.token),
            "{ __schema { mutationType { fields { name } } } }",
            json!({}),
        )
        .await;
    let mutations: Vec<&Value> = schema["data"]["__schema"]["mutationType"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert!(mutations.len() > 20);
    assert!(
        mutations.iter().all(|m| {
            let name = m["name"].as_str().unwrap().to_lowercase();
            !name.contains("access") && !name.contains("audit")
        }),
        "{mutations:?}"
    );
    for sql in [
        "UPDATE access_log SET operation = 'nothing'",
        "DELETE FROM access_log",
    ] {
        let refused = api.db.execute(sql).await.unwrap_err();
        assert!(refused.contains("append-only"), "{refused}");
    }
    assert_eq!(
        entries(&api).await.len(),
        routes.len(),
        "the audit itself shows no personal data, and was neither changed nor deleted"
    );
}

/// On PostgreSQL the audit is written on a connection of its own. When the server ends it (a
/// restart, a network failure), the next read of her data is still answered, and recorded once.
#[tokio::test]
async fn a_read_is_answered_and_recorded_once_after_postgresql_ended_the_audits_connection() {
    let api = TestApi::start().await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let person = api.register_person(&amina.token, "Joy N.").await;
    let read = "query($p: ID!) { person(id: $p) { fullName } }";
    let name = |data: Value| data["person"]["fullName"].clone();
    assert_eq!(
        name(api.data(&amina.token, read, json!({ "p": person })).await),
        "Joy N."
    );
    assert_eq!(entries(&api).await.len(), 1);

    let ended = api
        .db
        .end_connections_that_ran("INSERT INTO access_log%")
        .await;
    assert_eq!(ended, 1, "one connection had written the audit");
    for _ in 0..3 {
        assert_eq!(
            name(api.data(&amina.token, read, json!({ "p": person })).await),
            "Joy N."
        );
    }
    let kept = entries(&api).await;
    assert_eq!(kept.len(), 4, "one entry per read: {kept:?}");
    assert!(kept
        .iter()
        .all(|(_, p, fields, _)| *p == person && fields == &["full_name"]));
}

/// A batch of audit entries waits for other requests only while some are executing: a reader
/// alone is answered as soon as her entry is committed, not at the end of the batch's window
/// (here the longest the setting allows). With the window waited out, every read would take
/// at least 100 ms; the fastest of five must not.
#[tokio::test]
async fn a_reader_alone_does_not_wait_out_the_audit_window() {
    let api = TestApi::start_with(|s| homeward::app::Settings {
        audit_gather_ms: 100,
        ..s
    })
    .await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let person = api.register_person(&amina.token, "Joy N.").await;
    let read = "query($p: ID!) { person(id: $p) { fullName } }";
    let mut fastest = std::time::Duration::MAX;
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let data = api.data(&amina.token, read, json!({ "p": person })).await;
        fastest = fastest.min(started.elapsed());
        assert_eq!(data["person"]["fullName"], "Joy N.");
    }
    assert_eq!(entries(&api).await.len(), 5, "each read recorded");
    assert!(
        fastest < std::time::Duration::from_millis(100),
        "the fastest read took {fastest:?}: a lone reader waited out the window"
    );
}
