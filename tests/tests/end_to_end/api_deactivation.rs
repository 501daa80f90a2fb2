//! A party who no longer works with Homeward is deactivated: their tokens stop at once (open
//! sockets too), they get no reminders, links or new duties, and a social worker is
//! deactivated only once their cases are handed over.
#![allow(clippy::unwrap_used)]

use std::time::Duration as StdDuration;

use chrono::{TimeZone, Utc};
use homeward::app::Settings;
use homeward_tests::api::{error_code, TestApi};
use homeward_tests::smtp::SmtpCatcher;
use serde_json::json;

const DEACTIVATE: &str =
    "mutation($p: ID!, $why: String!) { deactivateParty(party: $p, reason: $why) { active } }";
const REACTIVATE: &str = "mutation($p: ID!) { reactivateParty(party: $p) { active } }";
const ASSIGN_PASSPORT: &str = "mutation($id: ID!, $who: ID!) { assignStep(planId: $id, step: \"passport\", assignee: $who) { version } }";

#[tokio::test]
async fn a_deactivated_party_loses_access_reminders_and_duties_until_reactivated() {
    let smtp = SmtpCatcher::start().await;
    let url = smtp.url();
    let api = TestApi::start_with(move |s| Settings {
        no_scheduler: false,
        smtp_url: Some(url.into()),
        scheduler_max_sleep: StdDuration::from_millis(200).into(),
        ..s
    })
    .await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let luc = api
        .party("GOVERNMENT_LIAISON", "Luc Martin", "Prefecture")
        .await;
    smtp.take_invitations(2);
    let plan = api.open_plan(&amina.token, "Joy N.").await;
    for m in [
        "mutation($id: ID!) { recordConsent(planId: $id, consent: { kind: RETURN }) { version } }",
        ASSIGN_PASSPORT,
    ] {
        api.data(&amina.token, m, json!({ "id": plan, "who": luc.id }))
            .await;
    }
    let mut socket = api
        .subscribe(
            &luc.token,
            "subscription { taskUpdates { key } }",
            json!({}),
        )
        .await;
    tokio::time::sleep(StdDuration::from_millis(300)).await;

    // Amina has an open plan: handed over first.
    let events = api.db.count("SELECT count(*) FROM events").await;
    let body = api
        .gql(
            &api.admin,
            DEACTIVATE,
            json!({ "p": amina.id, "why": "Left" }),
        )
        .await;
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("handOverCases"));
    assert_eq!(api.db.count("SELECT count(*) FROM events").await, events);
    // Only an admin deactivates.
    let body = api
        .gql(
            &amina.token,
            DEACTIVATE,
            json!({ "p": luc.id, "why": "No" }),
        )
        .await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");

    // Luc leaves the prefecture.
    let done = api
        .data(
            &api.admin,
            DEACTIVATE,
            json!({ "p": luc.id, "why": "Left the prefecture" }),
        )
        .await;
    assert_eq!(done["deactivateParty"]["active"], false);
    let (code, reason, _) = socket.closed(StdDuration::from_secs(5)).await;
    assert_eq!(code, 4403, "{reason}");
    let (status, _) = api.post(Some(&luc.token), "{ me { id } }", json!({})).await;
    assert_eq!(status, 401);
    // Not even a token made on the server's command line stands for him.
    let fresh = api.token_for(&luc.id).await;
    assert_eq!(
        api.post(Some(&fresh), "{ me { id } }", json!({})).await.0,
        401
    );
    // Nor is he given anything new, or invited.
    let body = api
        .gql(
            &amina.token,
            "mutation($id: ID!, $who: ID!) { assignStep(planId: $id, step: \"legal_clearance\", assignee: $who) { version } }",
            json!({ "id": plan, "who": luc.id }),
        )
        .await;
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("deactivated"));
    let body = api
        .gql(
            &api.admin,
            "mutation($p: ID!) { inviteParty(party: $p) { sentTo } }",
            json!({ "p": luc.id }),
        )
        .await;
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");

    // His passport reminder falls due: not sent, recorded as failed for the case team.
    api.clock
        .set(Utc.with_ymd_and_hms(2026, 4, 12, 9, 0, 30).unwrap());
    let mut failed = json!([]);
    for _ in 0..50 {
        let view = api
            .data(
                &amina.token,
                "query($id: ID!) { plan(id: $id) { step(key: \"passport\") { remindersFailed { reason } } } }",
                json!({ "id": plan }),
            )
            .await;
        failed = view["plan"]["step"]["remindersFailed"].clone();
        if failed != json!([]) {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    assert!(
        failed[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("Luc Martin is deactivated")),
        "{failed}"
    );
    assert!(smtp.messages().is_empty(), "{:#?}", smtp.messages());

    // Back: he may be given steps again and have a token.
    let back = api
        .data(&api.admin, REACTIVATE, json!({ "p": luc.id }))
        .await;
    assert_eq!(back["reactivateParty"]["active"], true);
    let token = api.token_for(&luc.id).await;
    assert_eq!(
        api.post(Some(&token), "{ me { id } }", json!({})).await.0,
        200
    );
    api.data(
        &amina.token,
        "mutation($id: ID!, $who: ID!) { assignStep(planId: $id, step: \"legal_clearance\", assignee: $who) { version } }",
        json!({ "id": plan, "who": luc.id }),
    )
    .await;
    api.stop().await;
}
