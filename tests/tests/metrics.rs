//! `/metrics` after a journey through the real server: every family is there with the counts
//! the journey implies. A test binary of its own: the recorder is one per process, so no other
//! test's requests add to the counts.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use chrono::{TimeZone, Utc};
use homeward::app::Settings;
use homeward_tests::api::{error_code, samples, TestApi};
use homeward_tests::smtp::SmtpCatcher;
use serde_json::json;

fn sample(all: &HashMap<String, f64>, name: &str) -> f64 {
    *all.get(name)
        .unwrap_or_else(|| panic!("no sample {name} in /metrics:\n{all:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_a_journey_count_what_happened() {
    let smtp = SmtpCatcher::start().await;
    smtp.set_delay(StdDuration::from_millis(300));
    let url = smtp.url();
    let api = TestApi::start_with(move |s| Settings {
        no_scheduler: false,
        smtp_url: Some(url.into()),
        scheduler_max_sleep: StdDuration::from_millis(200).into(),
        reminder_lease: StdDuration::from_secs(2).into(),
        reminder_renewal: StdDuration::from_millis(100).into(),
        smtp_timeout: StdDuration::from_secs(1).into(),
        ..s
    })
    .await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let luc = api
        .party("GOVERNMENT_LIAISON", "Luc Martin", "Prefecture")
        .await;
    smtp.take_invitations(2);
    let plan = api.open_plan(&amina.token, "Joy N.").await;
    let mut events = api
        .subscribe(
            &amina.token,
            "subscription($id: ID!) { planEvents(planId: $id) { version type } }",
            json!({ "id": plan }),
        )
        .await;
    // The subscription starts on the server after the client sent it; events recorded before
    // it has are not its to send.
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    for m in [
        "mutation($id: ID!) { recordConsent(planId: $id, consent: { kind: RETURN }) { version } }",
        "mutation($id: ID!, $luc: ID!) { assignStep(planId: $id, step: \"passport\", assignee: $luc) { version } }",
    ] {
        api.data(&amina.token, m, json!({ "id": plan, "luc": luc.id }))
            .await;
    }
    events.next().await;
    // A stale expectedVersion: a conflict. A step that cannot start yet: refused.
    let stale = api
        .gql(
            &amina.token,
            "mutation($id: ID!) { prioritiseStep(planId: $id, step: \"passport\", priority: HIGH, expectedVersion: 1) { version } }",
            json!({ "id": plan }),
        )
        .await;
    assert_eq!(error_code(&stale), Some("CONFLICT"), "{stale}");
    let refused = api
        .gql(
            &amina.token,
            "mutation($id: ID!) { startStep(planId: $id, step: \"travel\") { version } }",
            json!({ "id": plan }),
        )
        .await;
    assert!(refused.get("errors").is_some(), "{refused}");

    // Two reads of her name, one after the other: two entries in the access audit, each
    // answer's batch committed on its own.
    for _ in 0..2 {
        let read = api
            .data(
                &amina.token,
                "query($id: ID!) { plan(id: $id) { person { fullName } } }",
                json!({ "id": plan }),
            )
            .await;
        assert_eq!(read["plan"]["person"]["fullName"], "Joy N.");
    }

    // A worker that died holding the passport reminder: its lease has ended.
    let dead = sqlx::query(
        "UPDATE timers SET claimed_by = gen_random_uuid(), lease_until = '2026-03-01' \
         WHERE step_key = 'passport' AND kind = 'before_due'",
    )
    .execute(api.db.pool())
    .await
    .unwrap();
    assert_eq!(dead.rows_affected(), 1);
    // Two minutes after the reminder fell due (12 April, 09:00 UTC): late.
    api.clock
        .set(Utc.with_ymd_and_hms(2026, 4, 12, 9, 2, 0).unwrap());
    assert_eq!(smtp.wait_for(1, StdDuration::from_secs(10)).await.len(), 1);
    // The record follows the send.
    tokio::time::sleep(StdDuration::from_millis(500)).await;

    let response = reqwest::get(format!("http://{}/metrics", api.addr))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    let all = samples(&text);

    // Requests per root field.
    assert_eq!(
        sample(
            &all,
            r#"homeward_graphql_requests_total{operation="openPlan",outcome="ok"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &all,
            r#"homeward_graphql_requests_total{operation="prioritiseStep",outcome="error"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &all,
            r#"homeward_graphql_request_duration_seconds_count{operation="openPlan"}"#
        ),
        1.0
    );
    // Commands by type and outcome.
    for (command, outcome, n) in [
        ("open_plan", "ok", 1.0),
        ("record_consent", "ok", 1.0),
        ("assign_step", "ok", 1.0),
        ("prioritise_step", "conflict", 1.0),
        ("start_step", "refused", 1.0),
        ("record_reminder_sent", "ok", 1.0),
    ] {
        assert_eq!(
            sample(
                &all,
                &format!(r#"homeward_commands_total{{command="{command}",outcome="{outcome}"}}"#)
            ),
            n,
            "{command} {outcome}"
        );
    }
    // Every event in the log was counted once; batches were measured.
    let logged = api.db.count("SELECT count(*) FROM events").await as f64;
    assert_eq!(sample(&all, "homeward_events_appended_total"), logged);
    assert!(sample(&all, "homeward_append_batch_size_count") >= 1.0);
    assert!(
        sample(&all, "homeward_append_batch_size_sum")
            >= sample(&all, "homeward_append_batch_size_count")
    );
    // The reminder: claimed late, taken over from the dead worker, renewed while the slow
    // server answered, sent once; nothing failed or lost.
    assert!(sample(&all, "homeward_timers_claimed_total") >= 1.0);
    assert_eq!(sample(&all, "homeward_timers_late_total"), 1.0);
    assert_eq!(sample(&all, "homeward_timer_claims_taken_over_total"), 1.0);
    assert!(sample(&all, "homeward_timer_claims_renewed_total") >= 1.0);
    assert_eq!(sample(&all, "homeward_timer_claims_lost_total"), 0.0);
    assert_eq!(sample(&all, "homeward_timers_failed_total"), 0.0);
    assert_eq!(
        sample(&all, r#"homeward_emails_sent_total{kind="reminder"}"#),
        1.0
    );
    assert_eq!(sample(&all, "homeward_emails_failed_total"), 0.0);
    // Due now and the age of the oldest, read at the scrape (the reminder sent is gone).
    let due = api
        .db
        .count("SELECT count(*) FROM timers WHERE fire_at <= '2026-04-12 09:02:00+00'")
        .await as f64;
    assert_eq!(sample(&all, "homeward_timers_due"), due);
    assert!(all.contains_key("homeward_oldest_due_timer_age_seconds"));
    // One open subscription, and the lag of every event it was fed.
    assert_eq!(sample(&all, "homeward_subscriptions"), 1.0);
    assert!(sample(&all, "homeward_subscription_lag_seconds_count") >= 3.0);
    // The access audit: the two reads' entries, two batches and their commits timed.
    assert_eq!(sample(&all, "homeward_access_audit_entries_total"), 2.0);
    assert_eq!(sample(&all, "homeward_access_audit_batch_size_count"), 2.0);
    assert_eq!(sample(&all, "homeward_access_audit_batch_size_sum"), 2.0);
    assert_eq!(
        sample(&all, "homeward_access_audit_commit_seconds_count"),
        2.0
    );
    assert!(sample(&all, "homeward_access_audit_commit_seconds_sum") > 0.0);
    // The pool.
    assert!(sample(&all, r#"homeward_db_pool_connections{state="in_use"}"#) >= 0.0);
    assert!(sample(&all, r#"homeward_db_pool_connections{state="idle"}"#) >= 0.0);
    assert_eq!(sample(&all, "homeward_db_pool_max_connections"), 16.0);
    // No personal data: the survivor's name is nowhere.
    assert!(!text.contains("Joy"));
    drop(events);
    api.stop().await;
}
