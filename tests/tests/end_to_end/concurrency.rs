//! Concurrency against a real PostgreSQL: no lost or duplicated events, contiguous versions,
//! conflicts reported or retried, and catch-up readers that never skip an event when
//! transactions commit out of order.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use homeward_engine::{CommandError, CommandMeta, FixedClock};
use homeward_store::{Cursor, EventStore, ReadUntil};
use homeward_tests::{open_standard_plan, start_time, TestDb};
use homeward_workflows::plan::{ConcernArea, Goal, Plan, PlanCommand};
use homeward_workflows::{PartyId, PlanId};
use uuid::Uuid;

#[derive(Debug)]
struct Ack {
    stream: String,
    command_id: Uuid,
    first_version: u64,
    last_version: u64,
}

/// Every stored event, read directly (not through the catch-up horizon, which other tests'
/// open transactions in the same cluster can hold back).
async fn all_events(db: &TestDb) -> Vec<(Uuid, Uuid, String, u64)> {
    let rows: Vec<(Uuid, Uuid, String, i64)> = sqlx::query_as(
        "SELECT event_id, command_id, stream_id, stream_version FROM events ORDER BY global_position",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(|(e, c, s, v)| (e, c, s, v as u64))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_writers_on_shared_and_own_plans_lose_and_duplicate_nothing() {
    let db = TestDb::with_pool_size(24).await;
    let clock = Arc::new(FixedClock::new(start_time()));
    let handler = db.handler(clock);
    let worker = PartyId::new();

    let shared = PlanId::new();
    handler
        .handle::<Plan>(
            &shared.stream_id(),
            &open_standard_plan(shared, worker),
            CommandMeta::new(worker),
        )
        .await
        .unwrap();

    let mut tasks = Vec::new();
    for task in 0..16 {
        let handler = handler.clone();
        tasks.push(tokio::spawn(async move {
            let own = PlanId::new();
            handler
                .handle::<Plan>(
                    &own.stream_id(),
                    &open_standard_plan(own, worker),
                    CommandMeta::new(worker),
                )
                .await
                .unwrap();
            let mut acks = Vec::new();
            let mut conflicts = Vec::new();
            for i in 0..20 {
                let target = if i % 2 == 0 { shared } else { own };
                let command = PlanCommand::SetGoals {
                    goals: vec![Goal {
                        area: ConcernArea::Income,
                        aim: format!("goal {task}/{i}").into(),
                    }],
                };
                let mut meta = CommandMeta::new(worker);
                // Every fifth command states the version it saw: under contention it may be
                // stale, and then it must be reported, never applied.
                if i % 5 == 0 {
                    let seen = handler
                        .load::<Plan>(&target.stream_id(), ReadUntil::End)
                        .await
                        .unwrap();
                    meta = meta.expecting(seen.version);
                }
                match handler
                    .handle::<Plan>(&target.stream_id(), &command, meta.clone())
                    .await
                {
                    Ok(done) => acks.push(Ack {
                        stream: target.stream_id(),
                        command_id: meta.command_id,
                        first_version: done.first_version,
                        last_version: done.version,
                    }),
                    Err(CommandError::Conflict { .. }) => conflicts.push(meta.command_id),
                    Err(e) => panic!("unexpected error: {e}"),
                }
            }
            (acks, conflicts)
        }));
    }
    let mut acks = Vec::new();
    let mut conflicts = Vec::new();
    for t in tasks {
        let (a, c) = t.await.unwrap();
        acks.extend(a);
        conflicts.extend(c);
    }
    assert!(!acks.is_empty());

    // Every acknowledged command's events are present exactly once, at the reported versions.
    let all = all_events(&db).await;
    let mut by_command: HashMap<Uuid, Vec<(String, u64)>> = HashMap::new();
    for (_, command_id, stream_id, version) in &all {
        by_command
            .entry(*command_id)
            .or_default()
            .push((stream_id.clone(), *version));
    }
    for ack in &acks {
        let stored = by_command
            .get(&ack.command_id)
            .expect("acknowledged command is stored");
        let expected: Vec<(String, u64)> = (ack.first_version..=ack.last_version)
            .map(|v| (ack.stream.clone(), v))
            .collect();
        assert_eq!(stored, &expected);
    }
    // A reported conflict wrote nothing.
    for id in &conflicts {
        assert!(
            !by_command.contains_key(id),
            "conflicting command {id} was written"
        );
    }
    // No duplicates, contiguous versions per stream.
    let ids: HashSet<Uuid> = all.iter().map(|e| e.0).collect();
    assert_eq!(ids.len(), all.len());
    let mut versions: HashMap<&str, Vec<u64>> = HashMap::new();
    for (_, _, stream_id, version) in &all {
        versions.entry(stream_id).or_default().push(*version);
    }
    for (stream, mut v) in versions {
        v.sort_unstable();
        let expected: Vec<u64> = (1..=v.len() as u64).collect();
        assert_eq!(v, expected, "versions of {stream} are contiguous");
    }
    // The shared plan holds exactly its opening events plus one per acknowledged command.
    let shared_events = db
        .store
        .read_stream(&shared.stream_id(), ReadUntil::End)
        .await
        .unwrap()
        .len();
    let opening = by_command
        .values()
        .find(|v| v[0] == (shared.stream_id(), 1))
        .unwrap()
        .len();
    let shared_acks = acks
        .iter()
        .filter(|a| a.stream == shared.stream_id())
        .count();
    assert_eq!(shared_events, opening + shared_acks);
    // The read model matches the log.
    let version: i64 = sqlx::query_scalar("SELECT version FROM plan_view WHERE plan_id = $1")
        .bind(shared.0)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(version as usize, shared_events);
    eprintln!(
        "acknowledged {}, conflicts reported {}, shared plan events {}",
        acks.len(),
        conflicts.len(),
        shared_events
    );
}

/// Appends through `homeward_append_commands` inside a transaction held open for a while after the
/// insert, so positions are taken early and committed late, out of order.
async fn slow_append(pool: &sqlx::PgPool, stream: &str, events: i32, hold_ms: u64) -> u64 {
    let mut tx = pool.begin().await.unwrap();
    let n = events as usize;
    let command = Uuid::new_v4();
    let ids: Vec<Uuid> = (0..n)
        .map(|i| homeward_store::Append::event_id(command, i))
        .collect();
    let types = vec!["tick"; n];
    let versions = vec![1i16; n];
    let payloads = vec![serde_json::json!({}); n];
    let metadata = serde_json::json!({"actor": Uuid::nil(), "correlation_id": command});
    let (refusals,): (Option<Vec<Option<String>>>,) = sqlx::query_as(
        "SELECT (homeward_append_commands(ARRAY[$1], ARRAY['test'], \
         ARRAY[NULL::bigint], $3, $4, array_fill($1::text, ARRAY[$9]), $2, \
         array_fill($5, ARRAY[$9]), $6, $7, $8, array_fill($10::jsonb, ARRAY[$9]), \
         array_fill(now(), ARRAY[$9]), ARRAY[NULL::uuid], ARRAY[NULL::bytea], ARRAY[NULL::text], \
         ARRAY[NULL::text], ARRAY[NULL::bytea], ARRAY[NULL::uuid], ARRAY[NULL::timestamptz], \
         ARRAY[NULL::timestamptz], \
         NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
         NULL, NULL, NULL, NULL, NULL, NULL)).refusals",
    )
    .bind(stream)
    .bind(&ids)
    .bind(vec![1i32; n])
    .bind((1..=events).collect::<Vec<i32>>())
    .bind(command)
    .bind(&types)
    .bind(&versions)
    .bind(&payloads)
    .bind(events)
    .bind(&metadata)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(refusals, None);
    tokio::time::sleep(Duration::from_millis(hold_ms)).await;
    tx.commit().await.unwrap();
    n as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_catch_up_reader_never_skips_events_committed_out_of_order() {
    let db = TestDb::with_pool_size(16).await;
    let mut subscription = db
        .store
        .subscribe(Cursor::START)
        .await
        .unwrap()
        .with_poll_interval(Duration::from_millis(50));

    let mut writers = Vec::new();
    for w in 0..8u64 {
        let pool = db.pool().clone();
        writers.push(tokio::spawn(async move {
            let mut written = 0;
            for i in 0..60u64 {
                // Writers share some streams and hold their transactions for varying times.
                let stream = format!("test-{}", (w + i) % 5);
                let hold = (w * 7 + i * 13) % 15;
                written += slow_append(&pool, &stream, 1 + (i % 3) as i32, hold).await;
            }
            written
        }));
    }
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        // 8 writers × 60 appends × (1..=3 events) = 960 events.
        while seen.len() < 960 {
            let next = tokio::time::timeout(Duration::from_secs(30), subscription.next())
                .await
                .expect("the reader keeps up")
                .unwrap();
            seen.push(next);
        }
        seen
    });
    let mut total = 0;
    for w in writers {
        total += w.await.unwrap();
    }
    assert_eq!(total, 960);
    let seen = reader.await.unwrap();

    // Exactly once each...
    let ids: HashSet<Uuid> = seen.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), 960);
    // ...in the order the log reads back once everything has committed...
    let mut later = Vec::new();
    let mut cursor = Cursor::START;
    loop {
        let page = db.store.read_all(cursor, 200).await.unwrap();
        let Some(last) = page.last() else { break };
        cursor = last.cursor();
        later.extend(page);
    }
    let seen_order: Vec<Uuid> = seen.iter().map(|e| e.event_id).collect();
    let later_order: Vec<Uuid> = later.iter().map(|e| e.event_id).collect();
    assert_eq!(seen_order, later_order);
    // ...and each stream's events in version order.
    let mut last_version: HashMap<&str, u64> = HashMap::new();
    for e in &seen {
        let prev = last_version
            .insert(&e.stream_id, e.stream_version)
            .unwrap_or(0);
        assert_eq!(
            e.stream_version,
            prev + 1,
            "stream {} in order",
            e.stream_id
        );
    }
    // Positions were in fact committed out of order, or this test proves nothing.
    let positions: Vec<i64> = seen.iter().map(|e| e.global_position).collect();
    assert!(
        positions.windows(2).any(|w| w[0] > w[1]),
        "commits never overlapped; the test did not exercise out-of-order commits"
    );
}

/// Sixteen clients send commands without `expectedVersion` to eight plans through two replicas
/// for 30 seconds: nobody gets an error (neither `CONFLICT`, which would blame a version the
/// caller never sent, nor `BUSY`), and every acknowledged change is in the log exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_clients_on_eight_hot_plans_over_two_replicas_get_no_error_and_lose_nothing() {
    use homeward_tests::api::TestApi;
    use serde_json::json;

    const CLIENTS: usize = 16;
    const PLANS: usize = 8;
    let seconds: u64 = std::env::var("HOMEWARD_HOT_PLANS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let api = TestApi::start().await;
    let replica = api.second_replica().await;
    let worker = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let mut plans = Vec::new();
    for _ in 0..PLANS {
        plans.push(api.open_plan(&worker.token, "Joy N.").await);
    }
    let urls = [api.url(), replica.url()];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let http = reqwest::Client::new();
            let url = urls[client % 2].clone();
            let token = worker.token.clone();
            let plans = plans.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut errors = Vec::new();
                let mut n = 0;
                while std::time::Instant::now() < deadline {
                    let aim = format!("client {client} change {n}");
                    let plan = &plans[(client + n) % PLANS];
                    let body: serde_json::Value = http
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&json!({
                            "query": "mutation($id: ID!, $aim: String!) { setGoals(planId: $id, goals: [{ area: INCOME, aim: $aim }]) { version } }",
                            "variables": { "id": plan, "aim": aim },
                        }))
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    match body.get("errors") {
                        None => acked.push(aim),
                        Some(e) => errors.push(e.to_string()),
                    }
                    n += 1;
                }
                (acked, errors)
            })
        })
        .collect();
    let mut acked = Vec::new();
    let mut errors = Vec::new();
    for client in clients {
        let (a, e) = client.await.unwrap();
        acked.extend(a);
        errors.extend(e);
    }
    assert!(
        errors.is_empty(),
        "{} of {} calls failed, e.g. {}",
        errors.len(),
        errors.len() + acked.len(),
        errors[0]
    );
    assert!(acked.len() > CLIENTS * 5, "only {} calls", acked.len());
    let recorded: Vec<(String, String)> = sqlx::query_as(
        "SELECT stream_id, payload->'goals'->0->>'aim' FROM events WHERE event_type = 'goals_set'",
    )
    .fetch_all(api.db.pool())
    .await
    .unwrap();
    let mut times: HashMap<String, usize> = HashMap::new();
    for (stream, aim) in recorded {
        let aim = api.db.opened(&aim, &stream, "goals[].aim").await;
        *times.entry(aim).or_default() += 1;
    }
    for aim in &acked {
        assert_eq!(times.get(aim), Some(&1), "{aim} recorded once");
    }
    assert_eq!(
        times.len(),
        acked.len(),
        "nothing unacknowledged was written"
    );
    eprintln!(
        "{} changes to {PLANS} plans by {CLIENTS} clients over two replicas in {seconds} s",
        acked.len()
    );
}

/// The same pressure on one plan, harder: two replicas (handlers with their own caches and
/// locks) with eight writers each, all on one plan, without `expectedVersion`. Every command
/// succeeds, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_writers_on_one_plan_through_two_replicas_all_succeed_once() {
    let db = TestDb::new().await;
    let clock = Arc::new(FixedClock::new(start_time()));
    let replicas = [db.handler(clock.clone()), db.handler(clock.clone())];
    let worker = PartyId::new();
    let plan = PlanId::new();
    replicas[0]
        .handle::<Plan>(
            &plan.stream_id(),
            &open_standard_plan(plan, worker),
            CommandMeta::new(worker),
        )
        .await
        .unwrap();
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let handler = replicas[w % 2].clone();
            tokio::spawn(async move {
                let mut errors = Vec::new();
                for i in 0..40 {
                    let command = PlanCommand::SetGoals {
                        goals: vec![Goal {
                            area: ConcernArea::Income,
                            aim: format!("writer {w} change {i}").into(),
                        }],
                    };
                    if let Err(e) = handler
                        .handle::<Plan>(&plan.stream_id(), &command, CommandMeta::new(worker))
                        .await
                    {
                        errors.push(e.to_string());
                    }
                }
                errors
            })
        })
        .collect();
    let mut errors = Vec::new();
    for w in writers {
        errors.extend(w.await.unwrap());
    }
    assert!(
        errors.is_empty(),
        "{} failed: {:?}",
        errors.len(),
        errors.first()
    );
    assert_eq!(
        db.count("SELECT count(*) FROM events WHERE event_type = 'goals_set'")
            .await,
        16 * 40
    );
}
