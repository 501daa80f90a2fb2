//! No N+1: a page of plans with their steps, assignees and case workers costs a fixed number of
//! SQL statements, whatever the page size; a plan with her person, and an everyday edit, cost
//! the statements they need and no more. Statements are counted from sqlx's own per-statement
//! trace events (target `sqlx::query`), so nothing in Homeward's code can hide one.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

use homeward_engine::CommandMeta;
use homeward_tests::api::TestApi;
use homeward_tests::{key, open_standard_plan};
use homeward_workflows::plan::{Plan, PlanCommand};
use homeward_workflows::{OrganisationId, PartyId, PlanId};
use serde_json::json;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

static STATEMENTS: AtomicUsize = AtomicUsize::new(0);

/// Counts statements, leaving out the subscription feed's background polling and wake-ups.
struct CountStatements;

struct Statement(String);

impl Visit for Statement {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if matches!(field.name(), "db.statement" | "summary") {
            self.0.push_str(&format!("{value:?} "));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if matches!(field.name(), "db.statement" | "summary") {
            self.0.push_str(value);
            self.0.push(' ');
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for CountStatements {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        let mut statement = Statement(String::new());
        event.record(&mut statement);
        let background = ["pg_snapshot_xmin", "pg_notify", "LISTEN"]
            .iter()
            .any(|s| statement.0.contains(s));
        if !background {
            if std::env::var_os("SHOW_STATEMENTS").is_some() {
                eprintln!("statement: {}", &statement.0[..statement.0.len().min(90)]);
            }
            STATEMENTS.fetch_add(1, Ordering::SeqCst);
        }
    }
}

const PAGE: &str = "query($n: Int!) { plans(first: $n) { edges { node { id status
    caseWorker { displayName } steps { key status assignee { displayName role } } } } } }";

/// The tests of this file count statements process-wide: one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn count_statements() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(CountStatements),
        )
        .unwrap()
    });
}

/// Statements run by `request`.
async fn statements_of<T>(request: impl std::future::Future<Output = T>) -> (usize, T) {
    let before = STATEMENTS.load(Ordering::SeqCst);
    let out = request.await;
    (STATEMENTS.load(Ordering::SeqCst) - before, out)
}

#[tokio::test]
async fn a_page_of_plans_costs_the_same_statements_at_any_size() {
    let _alone = ONE_AT_A_TIME.lock().await;
    count_statements();
    let api = TestApi::start().await;
    let worker = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let liaison = api.party("GOVERNMENT_LIAISON", "Luc", "Prefecture").await;
    let worker_id = PartyId(worker.id.parse().unwrap());
    let liaison_id = PartyId(liaison.id.parse().unwrap());

    // 120 plans written by another process's handler (so the server's cache knows none), in
    // the worker's organisation.
    let handler = api.db.handler(api.clock.clone());
    let safe_passage = OrganisationId(api.organisation("Safe Passage").await.parse().unwrap());
    for _ in 0..120 {
        let id = PlanId::new();
        let mut open = open_standard_plan(id, worker_id);
        if let PlanCommand::OpenPlan { organisation, .. } = &mut open {
            *organisation = safe_passage;
        }
        handler
            .handle::<Plan>(&id.stream_id(), &open, CommandMeta::new(worker_id))
            .await
            .unwrap();
        let assign = PlanCommand::AssignStep {
            step: key("passport"),
            assignee: Some(liaison_id),
            candidate_group: None,
        };
        handler
            .handle::<Plan>(&id.stream_id(), &assign, CommandMeta::new(worker_id))
            .await
            .unwrap();
    }

    // The token's first use in this hour is recorded once (one UPDATE): not a page's cost.
    api.data(&worker.token, "{ me { id } }", json!({})).await;
    let mut counts = Vec::new();
    for n in [1, 10, 100] {
        let before = STATEMENTS.load(Ordering::SeqCst);
        let data = api.data(&worker.token, PAGE, json!({ "n": n })).await;
        let after = STATEMENTS.load(Ordering::SeqCst);
        let edges = data["plans"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), n as usize);
        let passport = edges[n as usize - 1]["node"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == "passport")
            .unwrap()
            .clone();
        assert_eq!(passport["assignee"]["displayName"], "Luc");
        assert_eq!(edges[0]["node"]["caseWorker"]["displayName"], "Amina");
        counts.push(after - before);
    }
    // The token, the page of plans, their events (one read for all), their parties (one read).
    assert!(
        counts.iter().all(|c| *c == counts[0]),
        "statements per page size 1, 10, 100: {counts:?}"
    );
    assert_eq!(counts[0], 4, "statements per request: {counts:?}");
}

/// A plan shown with her person, on a replica that has seen the plan: the token, one read for
/// the plan's tail, hers and her key, and the access audit's insert. Her plan's own personal
/// fields (its steps' titles, its goals' aims) are opened with that key, read no more.
#[tokio::test]
async fn a_plan_with_her_person_costs_one_read_beyond_the_token_and_the_audit() {
    let _alone = ONE_AT_A_TIME.lock().await;
    count_statements();
    let api = TestApi::start().await;
    let worker = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let plan = api.open_plan(&worker.token, "Joy N.").await;
    api.data(
        &worker.token,
        "mutation($id: ID!) { setGoals(planId: $id, goals: [{ area: HOUSING, aim: \"A room near her sister\" }]) { version } }",
        json!({ "id": plan }),
    )
    .await;
    // The token's first use in this hour is recorded once (one UPDATE): not a read's cost.
    api.data(&worker.token, "{ me { id } }", json!({})).await;

    const WITH_HER: &str = "query($id: ID!) { plan(id: $id) { status person { fullName } } }";
    const CASE_FILE: &str = "query($id: ID!) { plan(id: $id) { status
        person { fullName } goals { aim } steps { key title } } }";
    const WITHOUT: &str = "query($id: ID!) { plan(id: $id) { status } }";
    for _ in 0..2 {
        let (count, data) =
            statements_of(api.data(&worker.token, WITH_HER, json!({ "id": plan }))).await;
        assert_eq!(data["plan"]["person"]["fullName"], "Joy N.");
        assert_eq!(
            count, 3,
            "the token, the plan with her and her key, the audit"
        );
        let (count, data) =
            statements_of(api.data(&worker.token, CASE_FILE, json!({ "id": plan }))).await;
        assert_eq!(data["plan"]["person"]["fullName"], "Joy N.");
        assert_eq!(data["plan"]["goals"][0]["aim"], "A room near her sister");
        assert!(data["plan"]["steps"][0]["title"].is_string(), "{data}");
        assert_eq!(
            count, 3,
            "the token, the plan with her and her key, the audit"
        );
        let (count, data) =
            statements_of(api.data(&worker.token, WITHOUT, json!({ "id": plan }))).await;
        assert!(data["plan"]["status"].is_string(), "{data}");
        assert_eq!(count, 2, "the token, the plan");
    }
}

/// An everyday edit through the API, on a plan this replica has seen: the token and the append,
/// nothing more (the plan's state comes from the handler's cache; its read models are written by
/// the append's own call).
#[tokio::test]
async fn an_edit_of_a_plan_already_seen_costs_the_token_and_its_append() {
    let _alone = ONE_AT_A_TIME.lock().await;
    count_statements();
    let api = TestApi::start().await;
    let worker = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let plan = api.open_plan(&worker.token, "Joy N.").await;
    // The token's first use in this hour is recorded once (one UPDATE): not an edit's cost.
    api.data(&worker.token, "{ me { id } }", json!({})).await;

    const PRIORITISE: &str = "mutation($p: ID!, $pr: Priority!) { \
        prioritiseStep(planId: $p, step: \"travel\", priority: $pr) { version } }";
    let mut versions = Vec::new();
    for priority in ["HIGH", "LOW", "HIGH"] {
        let (count, data) = statements_of(api.data(
            &worker.token,
            PRIORITISE,
            json!({ "p": plan, "pr": priority }),
        ))
        .await;
        versions.push(data["prioritiseStep"]["version"].as_u64().unwrap());
        assert_eq!(count, 2, "the token, the append");
    }
    assert!(
        versions.windows(2).all(|w| w[1] == w[0] + 1),
        "{versions:?}"
    );
}
