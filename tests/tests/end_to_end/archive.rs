//! Moving an office from SQLite to PostgreSQL: `homeward export` from a SQLite server that has
//! worked for weeks, `homeward import` into an empty PostgreSQL database. The same events (ids,
//! versions, times, sealed payloads), the same read models, the same keys, audit and
//! idempotency records, and the same `planAsOf` answers from a server on the new database.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Duration;
use homeward_engine::Clock as _;
use homeward_store::reads::{Page, TaskFilter, TaskScope};
use homeward_store::{Backend, Cursor};
use homeward_tests::api::TestApi;
use homeward_tests::TestDb;
use homeward_workflows::PartyId;
use serde_json::{json, Value};
use uuid::Uuid;

/// Every event of a backend in commit order, as comparable values (the payload parsed: each
/// database keeps JSON in its own spelling).
async fn log(store: &dyn Backend) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = Cursor::START;
    loop {
        let page = store.export_events(cursor, 500).await.unwrap();
        let Some(last) = page.last() else { break };
        cursor = last.cursor();
        for e in page {
            out.push(json!({
                "stream": e.stream_id, "version": e.stream_version, "event": e.event_id,
                "command": e.command_id, "type": e.event_type, "schema": e.schema_version,
                "payload": serde_json::from_str::<Value>(&e.payload).unwrap(),
                "metadata": e.metadata, "occurred_at": e.occurred_at, "recorded_at": e.recorded_at,
            }));
        }
    }
    out
}

/// The read models and what is kept beside them, through the store's port.
async fn rows(store: &dyn Backend, log: &[Value]) -> Value {
    let ids = |prefix: &str| -> BTreeSet<Uuid> {
        log.iter()
            .filter_map(|e| e["stream"].as_str()?.strip_prefix(prefix)?.parse().ok())
            .collect()
    };
    let (plans, parties, persons) = (ids("plan-"), ids("party-"), ids("person-"));
    let mut plan_rows = Vec::new();
    for plan in &plans {
        plan_rows.push(format!("{:?}", store.plan_row(*plan).await.unwrap()));
    }
    let parties: Vec<Uuid> = parties.into_iter().collect();
    let persons: Vec<Uuid> = persons.into_iter().collect();
    let mut tasks = Vec::new();
    for party in &parties {
        let scope = TaskScope {
            assignee: PartyId(*party),
            organisation: None,
            kinds: None,
        };
        let filter = TaskFilter {
            statuses: [
                "pending",
                "ready",
                "in_progress",
                "blocked",
                "done",
                "cancelled",
            ]
            .map(String::from)
            .to_vec(),
            ..TaskFilter::default()
        };
        let page = Page {
            offset: 0,
            limit: 1_000,
        };
        let found = store
            .tasks(&scope, &filter, chrono::Utc::now(), page)
            .await
            .unwrap();
        tasks.push(format!("{found:?}"));
    }
    let mut audit = Vec::new();
    for person in &persons {
        let page = Page {
            offset: 0,
            limit: 1_000,
        };
        audit.push(format!(
            "{:?}",
            store.access_log(*person, page).await.unwrap()
        ));
    }
    let far = chrono::Utc::now() + Duration::days(3650);
    let page = Page {
        offset: 0,
        limit: 1_000,
    };
    let mut kept = store.export_kept().await.unwrap();
    // The audit is compared person by person above; streams' creation times are not kept.
    kept.access_log.clear();
    json!({
        "plans": plan_rows,
        "tasks": tasks,
        "parties": format!("{:?}", store.parties_by_id(&parties).await.unwrap()),
        "persons": format!("{:?}", store.persons_by_id(&persons).await.unwrap()),
        "organisations": format!("{:?}", store.organisations(page).await.unwrap()),
        "timers": format!("{:?}", store.due_timers(far).await.unwrap()),
        "audit": audit,
        "kept": format!("{kept:?}"),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_office_moves_from_sqlite_to_postgresql_without_losing_a_thing() {
    // Weeks of work on SQLite: a plan personalised, consented, its passport on its way, a
    // keyed request, a survivor's file read (audited), a second plan.
    let api = TestApi::start_on_sqlite().await;
    let amina = api
        .party("SOCIAL_WORKER", "Amina Diallo", "Safe Passage")
        .await;
    let liaison = api
        .party("GOVERNMENT_LIAISON", "Marc Lefevre", "Prefecture")
        .await;
    let plan = api.open_plan(&amina.token, "Grace Okafor").await;
    let v = json!({ "id": plan, "liaison": liaison.id });
    let mut instants = vec![api.clock.now()];
    for mutation in [
        "mutation($id: ID!, $liaison: ID!) { assignStep(planId: $id, step: \"passport\", assignee: $liaison) { version } }",
        "mutation($id: ID!) { recordConsent(planId: $id, consent: { kind: RETURN }) { version } }",
        "mutation($id: ID!) { setGoals(planId: $id, goals: [{ area: INCOME, aim: \"Open a tailoring workshop\" }]) { version } }",
    ] {
        api.clock.advance(Duration::days(3));
        api.data(&amina.token, mutation, v.clone()).await;
        instants.push(api.clock.now() + Duration::hours(1));
    }
    api.clock.advance(Duration::days(5));
    api.data(
        &liaison.token,
        "mutation($id: ID!) { updateDocumentStatus(planId: $id, step: \"passport\", status: SUBMITTED_TO_AUTHORITY, idempotencyKey: \"passport-1\") { version } }",
        v.clone(),
    )
    .await;
    instants.push(api.clock.now() + Duration::hours(1));
    api.data(
        &amina.token,
        "query($id: ID!) { plan(id: $id) { person { fullName } } }",
        v.clone(),
    )
    .await;
    api.open_plan(&amina.token, "Joy Adebayo").await;

    // Export while the server runs; import into an empty PostgreSQL database.
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("office.jsonl");
    let source = api.backend.clone();
    let moved = homeward::archive::export(source.clone(), &file)
        .await
        .unwrap();
    assert!(moved.events > 20, "{moved:?}");
    let target = TestDb::new().await;
    let postgres: Arc<dyn Backend> = target.store.clone();
    let master = homeward_engine::keys::MasterKey::from_base64(&api.master_key).unwrap();
    let imported = homeward::archive::import(postgres.clone(), &file, &master.check_value())
        .await
        .unwrap();
    assert_eq!(imported.events, moved.events);

    // The export itself is in the audit, on both sides.
    let sqlite_log = log(source.as_ref()).await;
    let postgres_log = log(postgres.as_ref()).await;
    assert_eq!(sqlite_log.len() as u64, moved.events);
    assert_eq!(
        sqlite_log, postgres_log,
        "the same events, in the same order"
    );
    assert_eq!(
        rows(source.as_ref(), &sqlite_log).await,
        rows(postgres.as_ref(), &postgres_log).await,
        "the same read models, keys, audit and idempotency records"
    );

    // A server on PostgreSQL answers planAsOf as the SQLite one does, at every instant.
    let moved_server = api.server_on(&target.url).await;
    let token = homeward_engine::tokens::issue(
        postgres.as_ref(),
        homeward_engine::tokens::TokenRequest {
            party: PartyId(amina.id.parse().unwrap()),
            role: homeward_workflows::party::PartyRole::SocialWorker,
            days: 30,
            max_days: 3650,
            issued_by: None,
        },
        api.clock.now(),
    )
    .await
    .unwrap()
    .secret;
    let as_of = "query($id: ID!, $at: DateTime!) { planAsOf(id: $id, at: $at) { version status \
                 person { fullName } goals { aim } steps { key status assignee { id } documentStatus dueAt } } }";
    for at in instants {
        let vars = json!({ "id": plan, "at": at.to_rfc3339() });
        let before = api.data(&amina.token, as_of, vars.clone()).await;
        let after: Value = reqwest::Client::new()
            .post(moved_server.url())
            .bearer_auth(&token)
            .json(&json!({ "query": as_of, "variables": vars }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(after["data"], before, "planAsOf at {at}");
    }

    // And back: exported from PostgreSQL, imported into a new SQLite file, it is the office
    // it was.
    let back_file = folder.path().join("back.jsonl");
    homeward::archive::export(postgres.clone(), &back_file)
        .await
        .unwrap();
    let back = homeward_tests::TestSqlite::new().await;
    let back_store: Arc<dyn Backend> = back.store.clone();
    homeward::archive::import(back_store.clone(), &back_file, &master.check_value())
        .await
        .unwrap();
    let back_log = log(back_store.as_ref()).await;
    assert_eq!(back_log, postgres_log);
    assert_eq!(
        rows(back_store.as_ref(), &back_log).await,
        rows(postgres.as_ref(), &postgres_log).await
    );

    // Importing again into a database that is not empty is refused.
    let again = homeward::archive::import(postgres.clone(), &file, &master.check_value()).await;
    assert!(again.unwrap_err().to_string().contains("not empty"));
    // A file cut short, at a line or within one, is refused before anything is written.
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let short = folder.path().join("short.jsonl");
    let empty = TestDb::new().await;
    std::fs::write(&short, lines[..lines.len() / 2].join("\n") + "\n").unwrap();
    let cut = homeward::archive::import(empty.store.clone(), &short, &master.check_value()).await;
    assert!(cut.unwrap_err().to_string().contains("cut short"));
    std::fs::write(&short, &text[..text.len() / 2]).unwrap();
    let cut = homeward::archive::import(empty.store.clone(), &short, &master.check_value()).await;
    assert!(cut.is_err());
    assert_eq!(empty.count("SELECT count(*) FROM events").await, 0);
    // And with another master key, nothing is imported.
    let other_key =
        homeward_engine::keys::MasterKey::from_base64(homeward_tests::TEST_SEARCH_KEY).unwrap();
    let wrong =
        homeward::archive::import(empty.store.clone(), &file, &other_key.check_value()).await;
    assert!(wrong
        .unwrap_err()
        .to_string()
        .contains("another master key"));
    assert_eq!(empty.count("SELECT count(*) FROM events").await, 0);
}
