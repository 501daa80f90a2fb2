//! Organisations are entities with ids: a plan, a person and a party belong to one by id, never
//! by name, and a step or a case goes only to a party whose role and organisation fit it.
#![allow(clippy::unwrap_used)]

use homeward_tests::api::{error_code, Person, TestApi};
use serde_json::{json, Value};

const REGISTER_ORGANISATION: &str =
    "mutation($input: OrganisationInput!) { registerOrganisation(input: $input) { id name kind } }";
const START_PARTNERSHIP: &str = "mutation($o: ID!, $p: ID!) { startPartnership(organisation: $o, partner: $p) { worksWith { id } } }";
const END_PARTNERSHIP: &str =
    "mutation($o: ID!, $p: ID!) { endPartnership(organisation: $o, partner: $p) { id } }";
const REGISTER_PARTY: &str =
    "mutation($input: PartyInput!) { registerParty(input: $input) { id } }";
const ASSIGN: &str = "mutation($p: ID!, $step: String!, $who: ID!) { assignStep(planId: $p, step: $step, assignee: $who) { version } }";

/// Registers an organisation through the API; its id.
async fn organisation(api: &TestApi, name: &str, kind: &str) -> String {
    let data = api
        .data(
            &api.admin,
            REGISTER_ORGANISATION,
            json!({ "input": { "name": name, "kind": kind, "country": "FR" } }),
        )
        .await;
    assert_eq!(data["registerOrganisation"]["name"], name);
    data["registerOrganisation"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn party_input(role: &str, name: &str, organisation: &str) -> Value {
    json!({
        "displayName": name, "role": role, "organisation": organisation,
        "email": format!("{}@{}.example", name.to_lowercase(), &organisation[..8]),
        "country": "FR", "language": "fr", "timeZone": "Europe/Paris",
    })
}

/// Registers a party in the organisation with this id and gives it a token.
async fn member(api: &TestApi, role: &str, name: &str, organisation: &str) -> Person {
    let id = api
        .data(
            &api.admin,
            REGISTER_PARTY,
            json!({ "input": party_input(role, name, organisation) }),
        )
        .await["registerParty"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = api.token_for(&id).await;
    Person { id, token }
}

async fn register_person(api: &TestApi, worker: &Person, name: &str) -> Value {
    api.data(
        &worker.token,
        "mutation($n: String!) { registerPerson(input: { fullName: $n }) }",
        json!({ "n": name }),
    )
    .await["registerPerson"]
        .clone()
}

const OPEN_PLAN: &str =
    "mutation($p: ID!) { openPlan(input: { personId: $p, originCountry: \"NG\" }) { plan { id } } }";

#[tokio::test]
async fn two_organisations_with_the_same_name_see_nothing_of_each_other() {
    let api = TestApi::start().await;
    let lyon = organisation(&api, "Safe Passage", "PROGRAMME").await;
    let lille = organisation(&api, "Safe Passage", "PROGRAMME").await;
    assert_ne!(lyon, lille);
    let listed = api
        .data(
            &api.admin,
            "{ organisations { edges { node { id name } } } }",
            json!({}),
        )
        .await;
    let ids: Vec<&Value> = listed["organisations"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"]["name"] == "Safe Passage")
        .map(|e| &e["node"]["id"])
        .collect();
    assert_eq!(ids.len(), 2, "{listed}");

    let ana = member(&api, "SOCIAL_WORKER", "Ana", &lyon).await;
    let bea = member(&api, "SOCIAL_WORKER", "Bea", &lille).await;
    let sam = member(&api, "SUPERVISOR", "Sam", &lille).await;
    let person = register_person(&api, &ana, "Joy N.").await;
    let plan = api
        .data(&ana.token, OPEN_PLAN, json!({ "p": person }))
        .await["openPlan"]["plan"]["id"]
        .clone();
    let me = api
        .data(&ana.token, "{ me { organisation { id name } } }", json!({}))
        .await;
    assert_eq!(me["me"]["organisation"]["id"], lyon.as_str());
    let mine = api
        .data(
            &ana.token,
            "query($p: ID!) { plan(id: $p) { organisation { id } } }",
            json!({ "p": plan }),
        )
        .await;
    assert_eq!(mine["plan"]["organisation"]["id"], lyon.as_str());

    for other in [&bea, &sam] {
        let plans = api
            .data(
                &other.token,
                "{ plans { edges { node { id } } } }",
                json!({}),
            )
            .await;
        assert_eq!(plans["plans"]["edges"], json!([]), "{plans}");
        let read = api
            .gql(
                &other.token,
                "query($p: ID!) { plan(id: $p) { id } }",
                json!({ "p": plan }),
            )
            .await;
        assert_eq!(error_code(&read), Some("NOT_FOUND"), "{read}");
        // Her person does not exist for them either.
        let events = api.db.count("SELECT count(*) FROM events").await;
        let open = api
            .gql(&other.token, OPEN_PLAN, json!({ "p": person }))
            .await;
        assert_eq!(error_code(&open), Some("NOT_FOUND"), "{open}");
        assert_eq!(api.db.count("SELECT count(*) FROM events").await, events);
    }
    // Nor is Ana's inbox the other supervisor's to read.
    let inbox = api
        .gql(
            &sam.token,
            "query($w: ID!) { tasks(filter: { assignee: $w }) { edges { node { key } } } }",
            json!({ "w": ana.id }),
        )
        .await;
    let tasks = &inbox["data"]["tasks"]["edges"];
    assert!(
        error_code(&inbox).is_some() || tasks == &json!([]),
        "{inbox}"
    );
}

#[tokio::test]
async fn moving_a_social_worker_moves_none_of_the_persons_they_registered() {
    let api = TestApi::start().await;
    let lyon = organisation(&api, "Safe Passage", "PROGRAMME").await;
    let shelter = organisation(&api, "Other Shelter", "PROGRAMME").await;
    let ana = member(&api, "SOCIAL_WORKER", "Ana", &lyon).await;
    let eva = member(&api, "SOCIAL_WORKER", "Eva", &lyon).await;
    let person = register_person(&api, &ana, "Joy N.").await;

    // Ana has no open plans: she may move.
    api.data(
        &api.admin,
        "mutation($id: ID!, $input: PartyInput!) { updateParty(id: $id, input: $input) { organisation { id } } }",
        json!({ "id": ana.id, "input": party_input("SOCIAL_WORKER", "Ana", &shelter) }),
    )
    .await;

    // Her token ended with the move; with a new one (her new organisation's invitation), the
    // person stays with the organisation that registered her.
    assert_eq!(
        api.post(Some(&ana.token), "{ me { id } }", json!({}))
            .await
            .0,
        401
    );
    let token = api.token_for(&ana.id).await;
    let moved = api.gql(&token, OPEN_PLAN, json!({ "p": person })).await;
    assert_eq!(error_code(&moved), Some("NOT_FOUND"), "{moved}");
    let stayed = api
        .data(&eva.token, OPEN_PLAN, json!({ "p": person }))
        .await;
    assert!(stayed["openPlan"]["plan"]["id"].is_string(), "{stayed}");
}

#[tokio::test]
async fn steps_and_cases_go_only_to_parties_whose_role_and_organisation_fit() {
    let api = TestApi::start().await;
    let lyon = organisation(&api, "Safe Passage", "PROGRAMME").await;
    let shelter = organisation(&api, "Other Shelter", "PROGRAMME").await;
    let hope = organisation(&api, "Hope Lagos", "PARTNER").await;
    let far = organisation(&api, "Far Away", "PARTNER").await;
    let prefecture = organisation(&api, "Prefecture", "GOVERNMENT").await;
    let ana = member(&api, "SOCIAL_WORKER", "Ana", &lyon).await;
    let olu = member(&api, "SOCIAL_WORKER", "Olu", &shelter).await;
    let grace = member(&api, "PARTNER_CONTACT", "Grace", &hope).await;
    let kofi = member(&api, "PARTNER_CONTACT", "Kofi", &far).await;
    let luc = member(&api, "GOVERNMENT_LIAISON", "Luc", &prefecture).await;
    let admin = api.data(&api.admin, "{ me { id } }", json!({})).await["me"]["id"].clone();
    let person = register_person(&api, &ana, "Joy N.").await;
    let plan = api
        .data(&ana.token, OPEN_PLAN, json!({ "p": person }))
        .await["openPlan"]["plan"]["id"]
        .clone();
    let events = || api.db.count("SELECT count(*) FROM events");

    // Nobody outside the programme until it records that it works with them.
    let refused = |body: &Value, needle: &str| {
        assert_eq!(error_code(body), Some("VALIDATION"), "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{message}");
    };
    let before = events().await;
    for (step, who, needle) in [
        ("origin_contact", json!(grace.id), "startPartnership"),
        ("passport", json!(luc.id), "startPartnership"),
        ("medical_check", json!(olu.id), "startPartnership"),
        ("medical_check", admin.clone(), "is an admin"),
    ] {
        let body = api
            .gql(
                &ana.token,
                ASSIGN,
                json!({ "p": plan, "step": step, "who": who }),
            )
            .await;
        refused(&body, needle);
    }
    let body = api
        .gql(
            &ana.token,
            "mutation($p: ID!, $who: ID!) { addStep(planId: $p, step: { key: \"visit\", kind: FOLLOW_UP, title: \"Visit\", assignee: $who }) { version } }",
            json!({ "p": plan, "who": kofi.id }),
        )
        .await;
    refused(&body, "startPartnership");
    let body = api
        .gql(
            &ana.token,
            "mutation($p: ID!, $w: ID!) { openPlan(input: { personId: $p, originCountry: \"NG\", caseWorker: $w }) { version } }",
            json!({ "p": person, "w": olu.id }),
        )
        .await;
    refused(&body, "another organisation");
    assert_eq!(events().await, before, "nothing was written");

    // Partners recorded: their people take steps, within their work.
    for partner in [&hope, &prefecture] {
        let data = api
            .data(
                &api.admin,
                START_PARTNERSHIP,
                json!({ "o": lyon, "p": partner }),
            )
            .await;
        assert!(data["startPartnership"]["worksWith"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"] == partner.as_str()));
    }
    for (step, who) in [("origin_contact", &grace), ("passport", &luc)] {
        api.data(
            &ana.token,
            ASSIGN,
            json!({ "p": plan, "step": step, "who": who.id }),
        )
        .await;
    }
    let body = api
        .gql(
            &ana.token,
            ASSIGN,
            json!({ "p": plan, "step": "medical_check", "who": luc.id }),
        )
        .await;
    refused(&body, "travel documents");
    let body = api
        .gql(
            &ana.token,
            ASSIGN,
            json!({ "p": plan, "step": "follow_up_1", "who": kofi.id }),
        )
        .await;
    refused(&body, "startPartnership");

    // Ended: no new steps for Grace; the one she holds stays hers until reassigned.
    api.data(&api.admin, END_PARTNERSHIP, json!({ "o": lyon, "p": hope }))
        .await;
    let body = api
        .gql(
            &ana.token,
            ASSIGN,
            json!({ "p": plan, "step": "follow_up_1", "who": grace.id }),
        )
        .await;
    refused(&body, "startPartnership");
    let held = api
        .data(
            &grace.token,
            "query($p: ID!) { plan(id: $p) { step(key: \"origin_contact\") { assignee { id } } } }",
            json!({ "p": plan }),
        )
        .await;
    assert_eq!(
        held["plan"]["step"]["assignee"]["id"],
        grace.id.as_str(),
        "{held}"
    );
}

#[tokio::test]
async fn organisations_and_their_members_are_checked_when_registered() {
    let api = TestApi::start().await;
    let lyon = organisation(&api, "Safe Passage", "PROGRAMME").await;
    let shelter = organisation(&api, "Other Shelter", "PROGRAMME").await;
    let hope = organisation(&api, "Hope Lagos", "PARTNER").await;
    let ana = member(&api, "SOCIAL_WORKER", "Ana", &lyon).await;
    let grace = member(&api, "PARTNER_CONTACT", "Grace", &hope).await;
    let sam = member(&api, "SUPERVISOR", "Sam", &shelter).await;
    let events = || api.db.count("SELECT count(*) FROM events");
    let before = events().await;

    let expect = |body: &Value, code: &str, needle: &str| {
        assert_eq!(error_code(body), Some(code), "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{message}");
    };
    // A social worker of a partner organisation, an organisation that does not exist, a
    // supervisor of another organisation.
    let body = api
        .gql(
            &api.admin,
            REGISTER_PARTY,
            json!({ "input": party_input("SOCIAL_WORKER", "Nia", &hope) }),
        )
        .await;
    expect(
        &body,
        "VALIDATION",
        "cannot belong to a partner organisation",
    );
    let body = api
        .gql(
            &api.admin,
            REGISTER_PARTY,
            json!({ "input": party_input("SOCIAL_WORKER", "Nia", "00000000-0000-4000-8000-000000000000") }),
        )
        .await;
    expect(&body, "NOT_FOUND", "no organisation");
    let mut input = party_input("SOCIAL_WORKER", "Nia", &lyon);
    input["supervisor"] = json!(sam.id);
    let body = api
        .gql(&api.admin, REGISTER_PARTY, json!({ "input": input }))
        .await;
    expect(&body, "VALIDATION", "another organisation");
    // Partnerships: recorded by a programme, with another organisation that exists.
    for (organisation, partner, code, needle) in [
        (
            &hope,
            &lyon,
            "VALIDATION",
            "only an organisation that runs return programmes",
        ),
        (&lyon, &lyon, "VALIDATION", "works with itself"),
        (
            &lyon,
            &"00000000-0000-4000-8000-000000000000".to_owned(),
            "NOT_FOUND",
            "no organisation",
        ),
    ] {
        let body = api
            .gql(
                &api.admin,
                START_PARTNERSHIP,
                json!({ "o": organisation, "p": partner }),
            )
            .await;
        expect(&body, code, needle);
    }
    let body = api
        .gql(
            &api.admin,
            REGISTER_ORGANISATION,
            json!({ "input": { "name": "X", "kind": "CHURCH", "country": "FR" } }),
        )
        .await;
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
    assert_eq!(events().await, before, "nothing was written");

    // Admins alone register organisations; partner contacts do not list them.
    for token in [&ana.token, &grace.token] {
        let body = api
            .gql(
                token,
                REGISTER_ORGANISATION,
                json!({ "input": { "name": "Mine", "kind": "PROGRAMME", "country": "FR" } }),
            )
            .await;
        assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");
    }
    let body = api
        .gql(
            &grace.token,
            "{ organisations { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");
    let body = api
        .gql(
            &grace.token,
            "{ me { organisation { name worksWith { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");
    assert_eq!(
        body["data"]["me"]["organisation"]["worksWith"],
        Value::Null,
        "{body}"
    );
    assert_eq!(events().await, before, "nothing was written");
}
