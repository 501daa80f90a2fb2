//! `homeward-bench --phases timers`: the cost of claiming due timers with 1,000 and with
//! 1,000,000 future timers in the table, measured in one run, and the plan PostgreSQL uses.
//!
//! For each size: the table is filled with future timers (1 to 365 days ahead) and analysed;
//! then, for the measurement time, 50 timers fall due, one worker claims them (`claim_due`,
//! limit 50) and they are deleted as delivered ones are, so the table keeps its size. The
//! latency of each claim is recorded.

use std::time::{Duration, Instant};

use chrono::Utc;
use homeward_store::timer_queue::TimerQueue;
use homeward_store_postgres::PgStore;
use uuid::Uuid;

struct Claims {
    p50: Duration,
    p99: Duration,
    count: usize,
}

pub async fn run(url: &str, seconds: u64) -> anyhow::Result<()> {
    let store = PgStore::connect(url, 4).await?;
    store.migrate().await?;
    println!("## Claiming due timers ({seconds}s per size)\n");
    let mut results = Vec::new();
    for future in [1_000_i64, 1_000_000] {
        sqlx::query("TRUNCATE timers").execute(store.pool()).await?;
        sqlx::query(
            "INSERT INTO timers (timer_id, plan_id, step_key, kind, fire_at, recipient_party, recipient_role) \
             SELECT gen_random_uuid(), gen_random_uuid(), 'passport', 'on_due', \
                    now() + interval '1 day' + (i % 364) * interval '1 day' + (i % 86400) * interval '1 second', \
                    gen_random_uuid(), 'assignee' \
             FROM generate_series(1, $1) AS i",
        )
        .bind(future)
        .execute(store.pool())
        .await?;
        sqlx::query("VACUUM ANALYZE timers")
            .execute(store.pool())
            .await?;
        let claims = measure(&store, Duration::from_secs(seconds)).await?;
        results.push((future, claims));
    }
    println!("| future timers | claims of 50 | p50 | p99 |");
    println!("|---:|---:|---:|---:|");
    for (future, c) in &results {
        println!(
            "| {future} | {} | {:.2} ms | {:.2} ms |",
            c.count,
            c.p50.as_secs_f64() * 1e3,
            c.p99.as_secs_f64() * 1e3
        );
    }
    let ratio = results[1].1.p50.as_secs_f64() / results[0].1.p50.as_secs_f64();
    println!("\np50 with 1,000,000 future timers / p50 with 1,000: {ratio:.2} (target ≤ 1.5)\n");
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT timer_id FROM timers \
         WHERE fire_at <= now() AND (lease_until IS NULL OR lease_until <= now()) \
         ORDER BY fire_at LIMIT 50 FOR UPDATE SKIP LOCKED",
    )
    .fetch_all(store.pool())
    .await?;
    println!(
        "The claim's scan, with 1,000,000 future timers:\n\n```\n{}\n```\n",
        plan.join("\n")
    );
    Ok(())
}

async fn measure(store: &PgStore, duration: Duration) -> anyhow::Result<Claims> {
    let worker = Uuid::new_v4();
    let deadline = Instant::now() + duration;
    let mut latencies = Vec::new();
    while Instant::now() < deadline {
        sqlx::query(
            "INSERT INTO timers (timer_id, plan_id, step_key, kind, fire_at, recipient_party, recipient_role) \
             SELECT gen_random_uuid(), gen_random_uuid(), 'passport', 'on_due', \
                    now() - interval '1 second', gen_random_uuid(), 'assignee' \
             FROM generate_series(1, 50)",
        )
        .execute(store.pool())
        .await?;
        let now = Utc::now();
        let began = Instant::now();
        let claimed = store
            .claim_due(worker, now, now + chrono::Duration::minutes(5), 50)
            .await?;
        latencies.push(began.elapsed());
        anyhow::ensure!(
            claimed.len() == 50,
            "claimed {} of 50 due timers",
            claimed.len()
        );
        let ids: Vec<Uuid> = claimed.iter().map(|t| t.timer_id).collect();
        sqlx::query("DELETE FROM timers WHERE timer_id = ANY($1)")
            .bind(&ids)
            .execute(store.pool())
            .await?;
    }
    latencies.sort_unstable();
    let pick = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Ok(Claims {
        p50: pick(0.5),
        p99: pick(0.99),
        count: latencies.len(),
    })
}
