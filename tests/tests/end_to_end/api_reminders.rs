//! `homeward serve` runs the reminder worker: a reminder falls due, arrives at a real SMTP
//! server in the recipient's language, and shows in the plan's history.
#![allow(clippy::unwrap_used)]

use std::time::Duration as StdDuration;

use chrono::{Duration, TimeZone, Utc};
use homeward::app::Settings;
use homeward_tests::api::TestApi;
use homeward_tests::smtp::SmtpCatcher;
use serde_json::json;

#[tokio::test]
async fn the_server_sends_due_reminders_and_records_them() {
    let smtp = SmtpCatcher::start().await;
    let url = smtp.url();
    let api = TestApi::start_with(move |s| Settings {
        no_scheduler: false,
        smtp_url: Some(url.into()),
        scheduler_max_sleep: std::time::Duration::from_millis(200).into(),
        ..s
    })
    .await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let luc = api
        .party("GOVERNMENT_LIAISON", "Luc Martin", "Prefecture")
        .await;
    let person = api.register_person(&amina.token, "Joy N.").await;
    let plan = api
        .data(&amina.token, "mutation($p: ID!) { openPlan(input: { personId: $p, originCountry: \"NG\" }) { plan { id } } }", json!({ "p": person }))
        .await["openPlan"]["plan"]["id"]
        .clone();
    for m in [
        "mutation($id: ID!) { recordConsent(planId: $id, consent: { kind: RETURN }) { version } }",
        "mutation($id: ID!, $luc: ID!) { assignStep(planId: $id, step: \"passport\", assignee: $luc) { version } }",
    ] {
        api.data(&amina.token, m, json!({ "id": plan, "luc": luc.id })).await;
    }
    smtp.take_invitations(2);

    // Three days before the passport is due (15 April, 09:00 UTC): 11:00 in Paris.
    api.clock
        .set(Utc.with_ymd_and_hms(2026, 4, 12, 9, 0, 30).unwrap());
    let got = smtp.wait_for(1, StdDuration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "the reminder arrives");
    assert_eq!(got[0].to, ["<luc.martin@prefecture.example>"]);
    assert!(got[0]
        .header("Subject")
        .unwrap()
        .starts_with("Rappel : Obtenir un passeport"));

    // The plan's history says so (wait for the record, which follows the send).
    let mut recorded = false;
    for _ in 0..50 {
        let history = api
            .data(&amina.token, "query($id: ID!) { planHistory(id: $id, first: 100) { edges { node { type data } } } }", json!({ "id": plan }))
            .await;
        recorded = history["planHistory"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| {
                e["node"]["type"] == "reminder_sent" && e["node"]["data"]["kind"] == "before_due"
            });
        if recorded {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    assert!(recorded, "reminder_sent is in the history");
    // The plan shows what went out and what is still to come.
    let view = api
        .data(
            &amina.token,
            "query($id: ID!) { plan(id: $id) {
            scheduledReminders { stepKey kind recipientRole }
            step(key: \"passport\") { remindersSent { kind } remindersFailed { reason } } } }",
            json!({ "id": plan }),
        )
        .await;
    assert_eq!(
        view["plan"]["step"]["remindersSent"],
        json!([{ "kind": "BEFORE_DUE" }])
    );
    assert_eq!(view["plan"]["step"]["remindersFailed"], json!([]));
    let scheduled = view["plan"]["scheduledReminders"].as_array().unwrap();
    assert!(scheduled
        .iter()
        .any(|r| r["stepKey"] == "passport" && r["kind"] == "ON_DUE"));
    assert!(scheduled
        .iter()
        .any(|r| r["kind"] == "ESCALATION" && r["recipientRole"] == "supervisor_of"));
    assert!(!scheduled
        .iter()
        .any(|r| r["stepKey"] == "passport" && r["kind"] == "BEFORE_DUE"));
    // Later passes send nothing again.
    api.clock.advance(Duration::minutes(1));
    tokio::time::sleep(StdDuration::from_millis(600)).await;
    assert_eq!(smtp.messages().len(), 1);
    api.stop().await;
}
