//! The README's GraphQL examples, as written and in order, against the real server: each says
//! who sends it and on what day (`# Amina (social worker), 1 March 2026`), the server's clock is
//! set to that day, and its variables are the ids earlier examples returned. An example that no
//! longer works fails here, not in a newcomer's hands.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use chrono::{NaiveDate, TimeZone, Utc};
use homeward_tests::api::{Person, Subscription, TestApi};
use serde_json::{json, Value};

const README: &str = include_str!("../../../README.md");

/// One ```graphql block: who sends it, when, and the document.
struct Example {
    actor: String,
    day: Option<NaiveDate>,
    document: String,
}

fn examples() -> Vec<Example> {
    let mut out = Vec::new();
    let mut rest = README;
    while let Some(start) = rest.find("```graphql\n") {
        let body = &rest[start + "```graphql\n".len()..];
        let end = body.find("```").expect("a closed code block");
        let block = &body[..end];
        rest = &body[end + 3..];
        let (first, document) = block.split_once('\n').unwrap();
        let header = first
            .strip_prefix("# ")
            .unwrap_or_else(|| panic!("a README example must say who sends it: {block}"));
        let (who, when) = match header.split_once("), ") {
            Some((who, when)) => (who, Some(when)),
            None => (header.trim_end_matches(')'), None),
        };
        let actor = who.split_whitespace().next().unwrap().to_owned();
        let day = when.map(|w| {
            NaiveDate::parse_from_str(w.trim(), "%d %B %Y")
                .unwrap_or_else(|e| panic!("{w:?} is not a day like \"1 March 2026\": {e}"))
        });
        out.push(Example {
            actor,
            day,
            document: document.to_owned(),
        });
    }
    out
}

/// The variables an operation declares (`$plan: ID!`), from what earlier examples returned.
fn variables(document: &str, known: &HashMap<String, Value>) -> Value {
    let header = document.split('{').next().unwrap_or_default();
    let mut vars = serde_json::Map::new();
    for part in header.split('$').skip(1) {
        let name: String = part
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let value = known
            .get(&name)
            .unwrap_or_else(|| panic!("no value for ${name} yet in {document}"));
        vars.insert(name, value.clone());
    }
    Value::Object(vars)
}

#[tokio::test]
async fn the_readme_examples_run_as_written() {
    let api = TestApi::start().await;
    let amina = api
        .party("SOCIAL_WORKER", "Amina Diallo", "Safe Passage")
        .await;
    let luc = api
        .party("GOVERNMENT_LIAISON", "Luc Martin", "Prefecture")
        .await;
    let grace = api
        .party_in(
            "PARTNER_CONTACT",
            "Grace Okafor",
            "Hope Lagos",
            "NG",
            "en",
            "Africa/Lagos",
        )
        .await;
    let ada = Person {
        id: api.data(&api.admin, "{ me { id } }", json!({})).await["me"]["id"]
            .as_str()
            .unwrap()
            .to_owned(),
        token: api.admin.clone(),
    };
    let people: HashMap<&str, &Person> = HashMap::from([
        ("Ada", &ada),
        ("Amina", &amina),
        ("Luc", &luc),
        ("Grace", &grace),
    ]);
    let mut known: HashMap<String, Value> = HashMap::from([
        ("liaison".to_owned(), json!(luc.id)),
        ("partner".to_owned(), json!(grace.id)),
    ]);
    let examples = examples();
    assert!(examples.len() >= 12, "the worked example is there");
    let mut live: Option<Subscription> = None;
    let mut results = Vec::new();
    for example in &examples {
        let who = people
            .get(example.actor.as_str())
            .unwrap_or_else(|| panic!("who is {}?", example.actor));
        if let Some(day) = example.day {
            api.clock
                .set(Utc.from_utc_datetime(&day.and_hms_opt(10, 0, 0).unwrap()));
        }
        known.insert("me".to_owned(), json!(who.id));
        let vars = variables(&example.document, &known);
        if example.document.trim_start().starts_with("subscription") {
            live = Some(api.subscribe(&who.token, &example.document, vars).await);
            // The protocol does not acknowledge a subscription: give the server a moment.
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            continue;
        }
        let body = api.gql(&who.token, &example.document, vars).await;
        assert!(
            body.get("errors").is_none(),
            "README example failed:\n{}\n{body:#}",
            example.document
        );
        let data = body["data"].clone();
        if let Some(person) = data.get("registerPerson") {
            known.insert("person".to_owned(), person.clone());
        }
        if let Some(plan) = data.pointer("/openPlan/plan/id") {
            known.insert("plan".to_owned(), plan.clone());
        }
        results.push(data);
    }

    // What the story says happened, happened.
    let find = |pointer: &str| {
        results
            .iter()
            .find_map(|d| d.pointer(pointer).cloned())
            .unwrap_or_else(|| panic!("no {pointer} in the examples' answers"))
    };
    let organisations = find("/organisations/edges");
    let safe_passage = organisations
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["name"] == "Safe Passage")
        .unwrap_or_else(|| panic!("{organisations}"));
    assert_eq!(safe_passage["node"]["kind"], "PROGRAMME");
    let mut partners: Vec<&str> = safe_passage["node"]["worksWith"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    partners.sort_unstable();
    assert_eq!(partners, ["Hope Lagos", "Prefecture"]);
    assert_eq!(find("/consent/plan/status"), "ACTIVE");
    assert_eq!(find("/departed/plan/status"), "TRAVELLING");
    assert_eq!(find("/confirmArrival/plan/status"), "RETURNED");
    assert_eq!(find("/completeStep/plan/status"), "MONITORING");
    assert_eq!(find("/closePlan/plan/closeReason"), "REINTEGRATED");
    let as_of = find("/planAsOf");
    assert_eq!(
        as_of["status"], "ACTIVE",
        "on 1 April: passport issued, not yet gone"
    );
    let passport = as_of["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "passport")
        .unwrap();
    assert_eq!(passport["documentStatus"], "ISSUED");
    // The subscription saw the plan closed.
    let event = live.expect("the README subscribes").next().await;
    assert_eq!(event["planEvents"]["type"], "plan_closed", "{event}");

    // What the README says of lookups: a plan as of before it was opened is null without an
    // error, and a failed lookup leaves the rest of the answer standing.
    let plan = known["plan"].clone();
    let body = api
        .gql(
            &amina.token,
            "query($plan: ID!, $other: ID!) { planAsOf(id: $plan, at: \"2026-01-01T00:00:00Z\") { status }
               missing: plan(id: $other) { id } me { displayName } }",
            json!({ "plan": plan, "other": uuid::Uuid::new_v4().to_string() }),
        )
        .await;
    assert_eq!(body["data"]["planAsOf"], Value::Null, "{body}");
    assert_eq!(body["data"]["missing"], Value::Null);
    assert_eq!(body["data"]["me"]["displayName"], "Amina Diallo");
    assert_eq!(body["errors"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND");
}
