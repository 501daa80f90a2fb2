//! Retention and legal holds through the real server: the scheduler erases a survivor's data
//! when her organisation's retention period after her last plan closed has passed, never while a
//! plan of hers is open or a legal hold keeps it; supervisors see what is coming and decide on
//! the persons the rule leaves to them.
#![allow(clippy::unwrap_used)]

use std::time::Duration as StdDuration;

use chrono::{DateTime, Months, Utc};
use homeward::app::Settings;
use homeward_engine::Clock as _;
use homeward_tests::api::{error_code, Person, TestApi};
use homeward_tests::smtp::SmtpCatcher;
use serde_json::{json, Value};

const UPCOMING: &str = "query($d: Int) { upcomingErasures(withinDays: $d) { edges { node {
    person { id fullName } lastClosedAt eraseAt onLegalHold } } } }";
const READ: &str =
    "query($id: ID!) { person(id: $id) { erasedAt legalHold { reason placedAt placedBy { displayName } } } }";
const HOLD: &str =
    "mutation($p: ID!, $r: String!) { placeLegalHold(personId: $p, reason: $r) { version } }";
const LIFT: &str =
    "mutation($p: ID!, $r: String!) { liftLegalHold(personId: $p, reason: $r) { version } }";

/// Registers a survivor with a plan, as `worker`; returns (person id, plan id).
async fn with_plan(api: &TestApi, worker: &Person, name: &str) -> (String, String) {
    let plan = api.open_plan(&worker.token, name).await;
    let plan = plan.as_str().unwrap().to_owned();
    (api.person_of_plan(&worker.token, &plan).await, plan)
}

async fn close(api: &TestApi, worker: &Person, plan: &str) -> DateTime<Utc> {
    api.data(
        &worker.token,
        "mutation($id: ID!) { closePlan(planId: $id, reason: OPTED_OUT) { version } }",
        json!({ "id": plan }),
    )
    .await;
    api.clock.now()
}

async fn erased_at(api: &TestApi, token: &str, person: &str) -> Value {
    api.data(token, READ, json!({ "id": person })).await["person"]["erasedAt"].clone()
}

#[tokio::test]
async fn the_scheduler_erases_a_plan_closed_five_years_and_a_day_ago_but_not_one_on_legal_hold() {
    let smtp = SmtpCatcher::start().await;
    let url = smtp.url();
    let api = TestApi::start_with(move |s| Settings {
        no_scheduler: false,
        smtp_url: Some(url.into()),
        scheduler_max_sleep: StdDuration::from_millis(200).into(),
        retention_sweep: StdDuration::from_millis(100).into(),
        ..s
    })
    .await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let sade = api.party("SUPERVISOR", "Sade", "Safe Passage").await;
    let (joy, joy_plan) = with_plan(&api, &amina, "Joy N.").await;
    let (ada, ada_plan) = with_plan(&api, &amina, "Ada O.").await;
    let (eve, _) = with_plan(&api, &amina, "Eve A.").await; // her plan stays open
    let closed = close(&api, &amina, &joy_plan).await;
    close(&api, &amina, &ada_plan).await;
    api.data(
        &sade.token,
        HOLD,
        json!({ "p": ada, "r": "Witness in the trial of her recruiters" }),
    )
    .await;
    // Closed two days later: her time comes two days later.
    api.clock.advance(chrono::Duration::days(2));
    let (kim, kim_plan) = with_plan(&api, &amina, "Kim B.").await;
    close(&api, &amina, &kim_plan).await;

    // The supervisor sees what is coming, held ones marked.
    let upcoming = api.data(&sade.token, UPCOMING, json!({ "d": 3660 })).await["upcomingErasures"]
        ["edges"]
        .clone();
    let ends = closed + Months::new(60);
    let listed: Vec<(Value, DateTime<Utc>, Value)> = upcoming
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let n = &e["node"];
            (
                n["person"]["fullName"].clone(),
                n["eraseAt"].as_str().unwrap().parse().unwrap(),
                n["onLegalHold"].clone(),
            )
        })
        .collect();
    assert_eq!(listed.len(), 3, "{upcoming}");
    assert!(
        listed.contains(&(json!("Joy N."), ends, json!(false))),
        "{listed:?}"
    );
    assert!(
        listed.contains(&(json!("Ada O."), ends, json!(true))),
        "{listed:?}"
    );
    assert_eq!(listed[2].0, json!("Kim B."), "soonest first: {listed:?}");

    // Five years and a day after Joy's plan closed.
    api.clock.set(ends + chrono::Duration::days(1));
    let mut waited = 0;
    while erased_at(&api, &sade.token, &joy).await.is_null() {
        waited += 1;
        assert!(waited < 100, "the retention sweep did not erase her");
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    // Let more sweeps pass: the others stay.
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    for (name, person) in [("held", &ada), ("open plan", &eve), ("closed later", &kim)] {
        assert!(
            erased_at(&api, &sade.token, person).await.is_null(),
            "{name} was erased"
        );
    }
    let (payload, metadata) = api.db.events_of_type("person_erased").await.remove(0);
    let (reason, actor) = (
        payload["reason"].as_str().unwrap().to_owned(),
        metadata["actor"].as_str().unwrap().to_owned(),
    );
    assert_eq!(reason, "retention_ended");
    assert_eq!(
        actor,
        homeward_engine::scheduler::SCHEDULER.0.to_string(),
        "the retention rule erased her, not a person"
    );
    // Her erasure by hand now says it is done.
    let body = api
        .gql(
            &sade.token,
            "mutation($p: ID!) { erasePerson(personId: $p, reason: SURVIVOR_REQUEST) { erasedAt } }",
            json!({ "p": joy }),
        )
        .await;
    assert_eq!(error_code(&body), Some("ERASED"), "{body}");

    // Lifted, the hold stops nothing: the next sweep erases her.
    api.data(
        &sade.token,
        LIFT,
        json!({ "p": ada, "r": "The trial ended" }),
    )
    .await;
    let mut waited = 0;
    while erased_at(&api, &sade.token, &ada).await.is_null() {
        waited += 1;
        assert!(waited < 100, "the hold was lifted but she was not erased");
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    assert_eq!(
        api.db
            .count("SELECT count(*) FROM events WHERE event_type = 'person_erased'")
            .await,
        2,
        "each erasure recorded once"
    );
    api.stop().await;
}

#[tokio::test]
async fn legal_holds_and_the_retention_period_are_decided_by_those_whose_decision_it_is() {
    let api = TestApi::start().await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let sade = api.party("SUPERVISOR", "Sade", "Safe Passage").await;
    let other = api.party("SUPERVISOR", "Olu", "Other Shelter").await;
    let (ada, plan) = with_plan(&api, &amina, "Ada O.").await;
    let hold = json!({ "p": ada, "r": "Witness in the trial" });

    let refused = api.gql(&amina.token, HOLD, hold.clone()).await;
    assert_eq!(error_code(&refused), Some("FORBIDDEN"), "{refused}");
    let refused = api.gql(&other.token, HOLD, hold.clone()).await;
    assert_eq!(error_code(&refused), Some("NOT_FOUND"), "{refused}");
    let refused = api
        .gql(
            &sade.token,
            LIFT,
            json!({ "p": ada, "r": "Nothing to lift" }),
        )
        .await;
    assert_eq!(error_code(&refused), Some("VALIDATION"), "{refused}");
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not on legal hold"),
        "{refused}"
    );

    api.data(&sade.token, HOLD, hold.clone()).await;
    let again = api.gql(&sade.token, HOLD, hold.clone()).await;
    assert_eq!(error_code(&again), Some("VALIDATION"), "{again}");
    // The case team sees the hold and why; the reason is sealed where it is stored.
    let read = api.data(&amina.token, READ, json!({ "id": ada })).await;
    assert_eq!(
        read["person"]["legalHold"]["reason"],
        "Witness in the trial"
    );
    assert_eq!(
        read["person"]["legalHold"]["placedBy"]["displayName"],
        "Sade"
    );
    let (hold, _) = api.db.events_of_type("legal_hold_placed").await.remove(0);
    let stored = hold["hold"]["reason"].as_str().unwrap().to_owned();
    assert!(stored.starts_with("hwenc2:"), "{stored}");

    // No erasure while held, even asked for, and nothing changes.
    api.data(
        &amina.token,
        "mutation($id: ID!) { closePlan(planId: $id, reason: OPTED_OUT) { version } }",
        json!({ "id": plan }),
    )
    .await;
    let events = api.db.count("SELECT count(*) FROM events").await;
    let body = api
        .gql(
            &sade.token,
            "mutation($p: ID!) { erasePerson(personId: $p, reason: SURVIVOR_REQUEST) { erasedAt } }",
            json!({ "p": ada }),
        )
        .await;
    assert_eq!(error_code(&body), Some("LEGAL_HOLD"), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("lift the hold"),
        "{body}"
    );
    assert_eq!(api.db.count("SELECT count(*) FROM events").await, events);
    let kept = api
        .db
        .backend()
        .person_keys(&[uuid::Uuid::parse_str(&ada).unwrap()])
        .await
        .unwrap();
    assert!(
        matches!(
            kept.as_slice(),
            [(_, homeward_store::person_keys::PersonKey::Wrapped(_))]
        ),
        "her key is kept: {kept:?}"
    );
    let refused = api.gql(&amina.token, UPCOMING, json!({})).await;
    assert_eq!(error_code(&refused), Some("FORBIDDEN"), "{refused}");
    let refused = api.gql(&sade.token, UPCOMING, json!({ "d": 0 })).await;
    assert_eq!(error_code(&refused), Some("VALIDATION"), "{refused}");

    // The period is the organisation's, set by admins, within bounds.
    let safe_passage = api.organisation("Safe Passage").await;
    let set = "mutation($o: ID!, $m: Int!) { setRetentionPeriod(organisation: $o, months: $m) {
        retentionMonths } }";
    for months in [0, -1, 601] {
        let body = api
            .gql(&api.admin, set, json!({ "o": safe_passage, "m": months }))
            .await;
        assert_eq!(error_code(&body), Some("VALIDATION"), "{months}: {body}");
    }
    let body = api
        .gql(&sade.token, set, json!({ "o": safe_passage, "m": 24 }))
        .await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");
    let partner = api.organisation("Hope Lagos").await;
    let body = api
        .gql(&api.admin, set, json!({ "o": partner, "m": 24 }))
        .await;
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
    let done = api
        .data(&api.admin, set, json!({ "o": safe_passage, "m": 24 }))
        .await;
    assert_eq!(done["setRetentionPeriod"]["retentionMonths"], 24);
    let upcoming = api.data(&sade.token, UPCOMING, json!({ "d": 3660 })).await["upcomingErasures"]
        ["edges"][0]["node"]
        .clone();
    let closed: DateTime<Utc> = upcoming["lastClosedAt"].as_str().unwrap().parse().unwrap();
    let erase: DateTime<Utc> = upcoming["eraseAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(erase, closed + Months::new(24), "{upcoming}");
    assert_eq!(upcoming["onLegalHold"], true);
}

#[tokio::test]
async fn persons_with_no_plan_under_way_untouched_for_a_year_are_listed_for_a_supervisor() {
    let api = TestApi::start().await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let sade = api.party("SUPERVISOR", "Sade", "Safe Passage").await;
    let register = |name: &'static str| {
        let api = &api;
        let token = amina.token.clone();
        async move {
            api.data(
                &token,
                "mutation($n: String!) { registerPerson(input: { fullName: $n }) }",
                json!({ "n": name }),
            )
            .await["registerPerson"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let planless = register("Ife A.").await;
    let drafted = register("Uche B.").await;
    api.data(
        &amina.token,
        "mutation($p: ID!) { openPlan(input: { personId: $p, originCountry: \"NG\" }) { version } }",
        json!({ "p": drafted }),
    )
    .await;
    let noted = register("Bisi C.").await;
    let (_under_way, plan) = with_plan(&api, &amina, "Tolu D.").await;
    api.data(
        &amina.token,
        "mutation($id: ID!) { recordConsent(planId: $id, consent: { kind: RETURN }) { version } }",
        json!({ "id": plan }),
    )
    .await;
    let review = "query($d: Int) { personsToReview(untouchedDays: $d) { edges { node {
        person { id fullName } lastActivityAt drafts onLegalHold } } } }";
    let listed = |body: Value| -> Vec<(String, i64)> {
        body["personsToReview"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["node"]["person"]["id"].as_str().unwrap().to_owned(),
                    e["node"]["drafts"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    assert!(
        listed(api.data(&sade.token, review, json!({})).await).is_empty(),
        "nobody is untouched for a year yet"
    );
    api.clock.advance(chrono::Duration::days(366));
    api.data(
        &amina.token,
        "mutation($p: ID!) { addNote(personId: $p, text: \"Called; she is well\") { version } }",
        json!({ "p": noted }),
    )
    .await;
    let mut found = listed(api.data(&sade.token, review, json!({})).await);
    found.sort();
    let mut expected = vec![(planless.clone(), 0), (drafted.clone(), 1)];
    expected.sort();
    assert_eq!(found, expected, "no plan or only a draft, untouched a year");
    let refused = api.gql(&amina.token, review, json!({})).await;
    assert_eq!(error_code(&refused), Some("FORBIDDEN"), "{refused}");
}
