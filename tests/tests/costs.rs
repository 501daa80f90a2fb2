//! A request's cost is known before it is paid: a query whose fragments double at every level,
//! or a thousand aliased time travels, is refused before validation walks it or a resolver
//! runs, and the server keeps answering others meanwhile; a `taskUpdates` subscriber loads no
//! plan that cannot change its inbox. A test binary of its own with one test: it reads
//! counters of the process's one metrics recorder, which nothing else adds to here.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use homeward_tests::api::{error_code, TestApi};
use serde_json::json;

fn counter(all: &HashMap<String, f64>, name: &str) -> f64 {
    all.get(name).copied().unwrap_or(0.0)
}

const FIELDS: &str = "homeward_graphql_fields_resolved_total";
const VALIDATIONS: &str = "homeward_graphql_validations_total";

/// Fragment `F0` selects `id`; each `F(n+1)` spreads `Fn` twice: 2^levels fields in about
/// 40 bytes a level.
fn doubling(levels: usize) -> String {
    let mut query = format!("{{ me {{ ...F{levels} }} }}\nfragment F0 on Party {{ id }}\n");
    for n in 1..=levels {
        let below = n - 1;
        query.push_str(&format!(
            "fragment F{n} on Party {{ ...F{below} ...F{below} }}\n"
        ));
    }
    query
}

/// `count` aliases of `field`, each selecting `selection`.
fn aliased(count: usize, field: &str, selection: &str) -> String {
    let fields: Vec<String> = (0..count)
        .map(|n| format!("a{n}: {field} {selection}"))
        .collect();
    format!("{{ {} }}", fields.join(" "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn costly_requests_are_refused_or_passed_over_before_their_cost_is_paid() {
    let api = TestApi::start().await;
    costly_queries_are_refused(&api).await;
    task_updates_load_only_the_plans_that_concern_their_viewer(&api).await;
}

async fn costly_queries_are_refused(api: &TestApi) {
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let plan = api.open_plan(&amina.token, "Joy N.").await;
    let plan = plan.as_str().unwrap();

    // A query within its price resolves, and its fields are counted.
    let before = api.metrics().await;
    api.data(&amina.token, "{ me { id displayName } }", json!({}))
        .await;
    let after = api.metrics().await;
    assert_eq!(counter(&after, FIELDS) - counter(&before, FIELDS), 3.0);
    assert_eq!(
        counter(&after, VALIDATIONS) - counter(&before, VALIDATIONS),
        1.0
    );

    // Four fragment-doubling queries at once (1 KB each, 2^26 fields expanded): refused without
    // validating or resolving anything, while /healthz keeps answering.
    let query = doubling(26);
    assert!(query.len() < 1_500, "{} bytes", query.len());
    let before = api.metrics().await;
    let http = reqwest::Client::new();
    let health_url = format!("http://{}/healthz", api.addr);
    let health = async {
        for _ in 0..10 {
            let answer = tokio::time::timeout(Duration::from_secs(2), http.get(&health_url).send())
                .await
                .expect("/healthz answers within 2 s while costly queries arrive")
                .unwrap();
            assert_eq!(answer.status(), 200);
        }
    };
    let refusals =
        futures::future::join_all((0..4).map(|_| api.post(Some(&amina.token), &query, json!({}))));
    let ((), answers) = tokio::join!(health, refusals);
    for (_, body) in answers {
        assert_eq!(error_code(&body), Some("VALIDATION"), "{body:#}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("fragments are expanded"), "{message}");
        assert!(body["data"].is_null(), "{body:#}");
    }
    let after = api.metrics().await;
    assert_eq!(counter(&after, VALIDATIONS), counter(&before, VALIDATIONS));
    assert_eq!(counter(&after, FIELDS), counter(&before, FIELDS));
    assert_eq!(
        counter(&after, "homeward_graphql_refused_before_validation_total")
            - counter(&before, "homeward_graphql_refused_before_validation_total"),
        4.0
    );

    // Fields that read a whole stream are priced by it: a thousand aliased `planAsOf` (each a
    // fold of the plan's history), a hundred `planHistory`, 600 `reminderSettings` (each
    // a fold of the party's stream) are refused as too complex before any resolves.
    let as_of = format!("planAsOf(id: \"{plan}\", at: \"2026-04-01T09:00:00Z\")");
    let history = format!("planHistory(id: \"{plan}\", first: 5)");
    for (what, query) in [
        ("planAsOf", aliased(1000, &as_of, "{ id }")),
        ("planAsOf", aliased(30, &as_of, "{ id }")),
        (
            "planHistory",
            aliased(100, &history, "{ edges { node { type } } }"),
        ),
        (
            "reminderSettings",
            aliased(600, "me", "{ reminderSettings { digestSchedule } }"),
        ),
        (
            "Plan.steps",
            "{ plans(first: 100) { edges { node { steps { key status title dueAt \
             assignee { displayName } dependsOn } } } } }"
                .to_owned(),
        ),
    ] {
        let before = api.metrics().await;
        let (_, body) = api.post(Some(&amina.token), &query, json!({})).await;
        assert_eq!(error_code(&body), Some("VALIDATION"), "{what}: {body:#}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("too complex"), "{what}: {message}");
        let after = api.metrics().await;
        assert_eq!(counter(&after, FIELDS), counter(&before, FIELDS), "{what}");
    }

    // What a person would ask for still fits: a plan as it was, its history, the plans page.
    let data = api
        .data(
            &amina.token,
            &format!(
                "{{ {as_of} {{ id }} {history} {{ edges {{ node {{ type }} }} }} \
                 plans(first: 20) {{ edges {{ node {{ id steps {{ key status dueAt \
                 assignee {{ displayName }} }} }} }} }} me {{ reminderSettings {{ digestSchedule }} }} }}"
            ),
            json!({}),
        )
        .await;
    assert_eq!(data["plans"]["edges"].as_array().unwrap().len(), 1);
}

const LOADS: &str = "homeward_subscription_plan_loads_total";

async fn task_updates_load_only_the_plans_that_concern_their_viewer(api: &TestApi) {
    let worker = api.party("SOCIAL_WORKER", "Binta", "Safe Passage").await;
    let luc = api
        .party("GOVERNMENT_LIAISON", "Luc Martin", "Prefecture")
        .await;
    let plan = api.open_plan(&worker.token, "Ada O.").await;
    let mut updates = api
        .subscribe(
            &luc.token,
            "subscription { taskUpdates { change key task { priority } } }",
            json!({}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let prioritise = |step: &'static str, priority: &'static str| {
        api.data(
            &worker.token,
            "mutation($id: ID!, $s: String!, $p: Priority!) { prioritiseStep(planId: $id, step: $s, priority: $p) { version } }",
            json!({ "id": plan, "s": step, "p": priority }),
        )
    };
    // Ten changes to a plan in which Luc has nothing: nothing loaded for him.
    let before = api.metrics().await;
    for n in 0..10 {
        prioritise("passport", if n % 2 == 0 { "HIGH" } else { "LOW" }).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = api.metrics().await;
    assert_eq!(counter(&after, LOADS), counter(&before, LOADS));

    // The passport becomes his: the plan is loaded once, then followed without loading.
    api.data(
        &worker.token,
        "mutation($id: ID!, $who: ID!) { assignStep(planId: $id, step: \"passport\", assignee: $who) { version } }",
        json!({ "id": plan, "who": luc.id }),
    )
    .await;
    let update = updates.next().await;
    assert_eq!(update["taskUpdates"]["key"], "passport", "{update}");
    prioritise("passport", "URGENT").await;
    let update = updates.next().await;
    assert_eq!(
        update["taskUpdates"]["task"]["priority"], "URGENT",
        "{update}"
    );
    let later = api.metrics().await;
    assert_eq!(counter(&later, LOADS) - counter(&after, LOADS), 1.0);
}
