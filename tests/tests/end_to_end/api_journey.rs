//! One survivor's whole return through the GraphQL API only, as the people who do the work
//! would drive it: real HTTP on a random port, real PostgreSQL, a real WebSocket subscription.
#![allow(clippy::unwrap_used)]

use chrono::Duration;
use homeward_engine::Clock;
use homeward_tests::api::{error_code, TestApi};
use homeward_tests::start_time;
use serde_json::{json, Value};

const PLAN_FIELDS: &str =
    "plan { id version status steps { key status documentStatus assignee { displayName } } }";

async fn mutate(api: &TestApi, token: &str, mutation: &str, vars: Value) -> Value {
    let data = api.data(token, mutation, vars).await;
    data.as_object().unwrap().values().next().unwrap().clone()
}

fn step<'a>(plan: &'a Value, key: &str) -> &'a Value {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("no step {key} in {plan}"))
}

#[tokio::test]
async fn a_survivors_return_from_opening_to_closing() {
    let api = TestApi::start().await;
    let amina = api
        .party("SOCIAL_WORKER", "Amina Diallo", "Safe Passage")
        .await;
    let liaison = api
        .party("GOVERNMENT_LIAISON", "Luc Martin", "Prefecture")
        .await;
    let partner = api
        .party_in(
            "PARTNER_CONTACT",
            "Grace Okafor",
            "Hope Lagos",
            "NG",
            "en",
            "Africa/Lagos",
        )
        .await;

    // The social worker records the survivor and opens her plan from the standard template.
    let person = api
        .data(
            &amina.token,
            "mutation { registerPerson(input: { fullName: \"Blessing E.\", dateOfBirth: \"1999-04-02\",
               preferredLanguage: \"en\", phone: \"+234 800 000 0000\" }) }",
            json!({}),
        )
        .await["registerPerson"]
        .as_str()
        .unwrap()
        .to_owned();
    let opened = mutate(
        &api,
        &amina.token,
        &format!("mutation($p: ID!) {{ openPlan(input: {{ personId: $p, originCountry: \"NG\" }}) {{ version {PLAN_FIELDS} }} }}"),
        json!({ "p": person }),
    )
    .await;
    let plan_id = opened["plan"]["id"].as_str().unwrap().to_owned();
    assert_eq!(opened["plan"]["status"], "DRAFT");
    let opened_version = opened["version"].as_u64().unwrap();

    // From here on, the social worker watches the plan's events live.
    let mut live = api
        .subscribe(
            &amina.token,
            "subscription($id: ID!) { planEvents(planId: $id) { version type actor { displayName } } }",
            json!({ "id": plan_id }),
        )
        .await;
    // Give the server a moment to register the subscription before events happen (the
    // protocol has no acknowledgement of a subscription).
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;

    // Personalisation: goals, assignments, an extra step, consent.
    let v = json!({ "id": plan_id, "liaison": liaison.id, "partner": partner.id });
    mutate(&api, &amina.token, "mutation($id: ID!) { setGoals(planId: $id, goals: [
        { area: INCOME, aim: \"Open a tailoring workshop\" }, { area: HOUSING, aim: \"Rent a room near her sister\" }]) { version } }", v.clone()).await;
    for (step, who) in [("passport", "liaison"), ("origin_contact", "partner")] {
        mutate(&api, &amina.token, &format!("mutation($id: ID!, ${who}: ID!) {{ assignStep(planId: $id, step: \"{step}\", assignee: ${who}) {{ version }} }}"), v.clone()).await;
    }
    for n in 1..=4 {
        mutate(&api, &amina.token, &format!("mutation($id: ID!, $partner: ID!) {{ assignStep(planId: $id, step: \"follow_up_{n}\", assignee: $partner) {{ version }} }}"), v.clone()).await;
    }
    mutate(&api, &amina.token, "mutation($id: ID!, $partner: ID!) { addStep(planId: $id, step: {
        key: \"tailoring_course\", kind: REINTEGRATION_SUPPORT, title: \"Tailoring course in Benin City\",
        assignee: $partner, due: { after: { milestone: ARRIVAL, days: 60 } }, dependsOn: [\"travel\"] }) { version } }", v.clone()).await;
    let active = mutate(&api, &amina.token, &format!("mutation($id: ID!) {{ recordConsent(planId: $id, consent: {{ kind: RETURN }}) {{ {PLAN_FIELDS} }} }}"), v.clone()).await;
    assert_eq!(active["plan"]["status"], "ACTIVE");
    mutate(&api, &amina.token, "mutation($id: ID!, $partner: ID!) { recordConsent(planId: $id, consent: { kind: DATA_SHARING, partner: $partner }) { version } }", v.clone()).await;

    // The liaison finds the passport in her inbox and sees only what she needs of the survivor.
    let inbox = api
        .data(&liaison.token, "{ tasks { edges { node { planId key kind status plan { person { fullName dateOfBirth phone } } } } } }", json!({}))
        .await;
    let tasks = inbox["tasks"]["edges"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{inbox}");
    assert_eq!(tasks[0]["node"]["key"], "passport");
    assert_eq!(tasks[0]["node"]["kind"], "TRAVEL_DOCUMENT");
    let seen = &tasks[0]["node"]["plan"]["person"];
    assert_eq!(seen["fullName"], "Blessing E.");
    assert_eq!(seen["dateOfBirth"], "1999-04-02");
    assert_eq!(
        seen["phone"],
        Value::Null,
        "a liaison does not see the phone number"
    );
    let goals = api
        .gql(
            &liaison.token,
            "query($id: ID!) { plan(id: $id) { goals { aim } } }",
            v.clone(),
        )
        .await;
    assert_eq!(error_code(&goals), Some("FORBIDDEN"), "{goals}");

    // The passport moves through its sub-statuses (it starts requested), a day apart.
    assert_eq!(
        step(&active["plan"], "passport")["documentStatus"],
        "REQUESTED"
    );
    let mut passport_issued_at = None;
    for status in ["SUBMITTED_TO_AUTHORITY", "ISSUED", "DELIVERED"] {
        api.clock.advance(Duration::days(1));
        let after = mutate(&api, &liaison.token, &format!("mutation($id: ID!) {{ updateDocumentStatus(planId: $id, step: \"passport\", status: {status}) {{ {PLAN_FIELDS} }} }}"), v.clone()).await;
        assert_eq!(step(&after["plan"], "passport")["documentStatus"], status);
        if status == "ISSUED" {
            // planAsOf goes by the time the commands were decided (the server's clock).
            passport_issued_at = Some(api.clock.now() + Duration::hours(1));
        }
    }
    mutate(
        &api,
        &liaison.token,
        "mutation($id: ID!) { completeStep(planId: $id, step: \"passport\") { version } }",
        v.clone(),
    )
    .await;

    // The partner designates herself as the contact; the social worker does the medical check.
    mutate(
        &api,
        &partner.token,
        "mutation($id: ID!) { completeStep(planId: $id, step: \"origin_contact\") { version } }",
        v.clone(),
    )
    .await;
    mutate(
        &api,
        &amina.token,
        "mutation($id: ID!) { completeStep(planId: $id, step: \"medical_check\") { version } }",
        v.clone(),
    )
    .await;

    // Travel: started and departure confirmed by the social worker, arrival by the partner.
    api.clock.set(start_time() + Duration::days(30));
    mutate(
        &api,
        &amina.token,
        "mutation($id: ID!) { startStep(planId: $id, step: \"travel\") { version } }",
        v.clone(),
    )
    .await;
    let departed = start_time() + Duration::days(30) - Duration::hours(6);
    let travelling = mutate(&api, &amina.token, "mutation($id: ID!, $at: DateTime!) { confirmDeparture(planId: $id, departedAt: $at) { plan { status } } }", json!({ "id": plan_id, "at": departed.to_rfc3339() })).await;
    assert_eq!(travelling["plan"]["status"], "TRAVELLING");
    let arrived = start_time() + Duration::days(30) - Duration::hours(1);
    let returned = mutate(&api, &partner.token, "mutation($id: ID!, $at: DateTime!) { confirmArrival(planId: $id, arrivedAt: $at) { plan { status } } }", json!({ "id": plan_id, "at": arrived.to_rfc3339() })).await;
    assert_eq!(returned["plan"]["status"], "RETURNED");

    // The partner sees the survivor's phone (data sharing consent) and her follow-up dates.
    let partner_view = api
        .data(&partner.token, "query($id: ID!) { plan(id: $id) { person { fullName phone dateOfBirth } steps { key dueAt } } }", v.clone())
        .await;
    assert_eq!(partner_view["plan"]["person"]["phone"], "+234 800 000 0000");
    assert_eq!(partner_view["plan"]["person"]["dateOfBirth"], Value::Null);
    let partner_steps: Vec<&str> = partner_view["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        partner_steps,
        [
            "origin_contact",
            "follow_up_1",
            "follow_up_2",
            "follow_up_3",
            "follow_up_4",
            "tailoring_course"
        ]
    );

    // Four follow-up visits at 14, 90, 180 and 365 days.
    for (n, days) in [(1, 14), (2, 90), (3, 180), (4, 365)] {
        let visit = arrived + Duration::days(days);
        api.clock.set(visit + Duration::hours(8));
        let after = mutate(&api, &partner.token, &format!("mutation($id: ID!, $on: NaiveDate!) {{ completeStep(planId: $id, step: \"follow_up_{n}\",
            outcome: {{ visitedOn: $on, wellbeing: GOOD, concerns: [INCOME] }}) {{ plan {{ status }} }} }}"),
            json!({ "id": plan_id, "on": visit.date_naive().to_string() })).await;
        assert_eq!(after["plan"]["status"], "MONITORING");
    }
    let closed = mutate(&api, &amina.token, "mutation($id: ID!) { closePlan(planId: $id, reason: REINTEGRATED) { plan { status closeReason } } }", v.clone()).await;
    assert_eq!(closed["plan"]["status"], "CLOSED");
    assert_eq!(closed["plan"]["closeReason"], "REINTEGRATED");

    // The history shows the journey, with who did what.
    let history = api
        .data(&amina.token, "query($id: ID!) { planHistory(id: $id, first: 100) { edges { node { version type actor { displayName } } } pageInfo { hasNextPage } } }", v.clone())
        .await;
    let entries = history["planHistory"]["edges"].as_array().unwrap();
    let last_version = entries.last().unwrap()["node"]["version"].as_u64().unwrap();
    assert_eq!(
        entries.len() as u64,
        last_version,
        "every version from 1, none missing"
    );
    let by_type = |t: &str| {
        entries
            .iter()
            .filter(|e| e["node"]["type"] == t)
            .collect::<Vec<_>>()
    };
    assert_eq!(by_type("document_status_updated").len(), 3);
    assert!(by_type("document_status_updated")
        .iter()
        .all(|e| e["node"]["actor"]["displayName"] == "Luc Martin"));
    assert_eq!(by_type("follow_up_recorded").len(), 4);
    assert_eq!(
        by_type("arrival_confirmed")[0]["node"]["actor"]["displayName"],
        "Grace Okafor"
    );
    assert_eq!(by_type("plan_closed").len(), 1);

    // As the plan stood the moment the passport was issued: active, passport issued.
    let then = api
        .data(
            &amina.token,
            "query($id: ID!, $at: DateTime!) { planAsOf(id: $id, at: $at) {
            version status steps { key documentStatus status } } }",
            json!({ "id": plan_id, "at": passport_issued_at.unwrap().to_rfc3339() }),
        )
        .await;
    let as_of = &then["planAsOf"];
    assert_eq!(as_of["status"], "ACTIVE");
    assert_eq!(step(as_of, "passport")["documentStatus"], "ISSUED");
    assert_eq!(step(as_of, "travel")["status"], "PENDING");
    assert!(as_of["version"].as_u64().unwrap() < last_version);

    // The subscription saw every event after the plan was opened, in order.
    let mut seen_versions = Vec::new();
    while seen_versions.last().copied() != Some(last_version) {
        let event = live.next().await;
        seen_versions.push(event["planEvents"]["version"].as_u64().unwrap());
    }
    let expected: Vec<u64> = (opened_version + 1..=last_version).collect();
    assert_eq!(seen_versions, expected);

    api.stop().await;
}
