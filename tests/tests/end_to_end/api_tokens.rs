//! Tokens as an admin and their party see them: who issued each and when, when it was last
//! used (to the hour), revoked one by one or all at once, open sockets included, and never
//! longer-lived than the server allows.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::Duration as Span;
use homeward::app::Settings;
use homeward_tests::api::{error_code, TestApi, TOKEN_DAYS};
use homeward_tests::start_time;
use serde_json::{json, Value};

const TOKENS: &str = "query($p: ID!) { tokens(party: $p) { tokenId role issuedAt \
    issuedBy { displayName } expiresAt lastUsedAt revokedAt } }";

/// An instant as the API writes it.
fn instant(at: chrono::DateTime<chrono::Utc>) -> Value {
    json!(at.to_rfc3339())
}

async fn tokens_of(api: &TestApi, asker: &str, party: &str) -> Vec<Value> {
    api.data(asker, TOKENS, json!({ "p": party })).await["tokens"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_partys_tokens_say_who_issued_them_and_when_they_were_last_used() {
    let api = TestApi::start().await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let luc = api
        .party("GOVERNMENT_LIAISON", "Luc Martin", "Prefecture")
        .await;

    // Issued on the server's command line at the start (by nobody through the API), not used
    // since (the helper only created it).
    let listed = tokens_of(&api, &api.admin, &amina.id).await;
    assert_eq!(listed.len(), 1, "{listed:#?}");
    let token = &listed[0];
    assert!(token["issuedBy"].is_null(), "{token}");
    assert_eq!(token["role"], "social_worker");
    assert_eq!(token["issuedAt"], instant(start_time()));
    assert_eq!(
        token["expiresAt"],
        instant(start_time() + Span::days(TOKEN_DAYS))
    );
    assert!(token["revokedAt"].is_null());
    assert!(token["lastUsedAt"].is_null(), "{token}");
    assert!(token.get("secret").is_none() && !token.to_string().contains("hw_"));

    // Used at 11:42: recorded as used in the hour from 11:00; she sees her own.
    api.clock.set(start_time() + Span::minutes(162));
    let own = tokens_of(&api, &amina.token, &amina.id).await;
    assert_eq!(
        own[0]["lastUsedAt"],
        instant(start_time() + Span::minutes(120)),
        "{own:#?}"
    );
    // The admin's own bootstrap token came from the command line: issued by nobody.
    let admin_id = api.data(&api.admin, "{ me { id } }", json!({})).await["me"]["id"].clone();
    let admins = tokens_of(&api, &api.admin, admin_id.as_str().unwrap()).await;
    assert!(admins[0]["issuedBy"].is_null(), "{admins:#?}");

    // One she creates herself says so.
    api.data(
        &amina.token,
        "mutation($p: ID!) { createToken(party: $p, days: 30) { tokenId } }",
        json!({ "p": amina.id }),
    )
    .await;
    let own = tokens_of(&api, &amina.token, &amina.id).await;
    assert_eq!(own[0]["issuedBy"]["displayName"], "Amina", "{own:#?}");

    // Nobody else sees them.
    let (_, body) = api
        .post(Some(&luc.token), TOKENS, json!({ "p": amina.id }))
        .await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");
}

#[tokio::test]
async fn revoking_all_of_a_partys_tokens_closes_their_sockets_and_spares_others() {
    let api = TestApi::start().await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let luc = api
        .party("GOVERNMENT_LIAISON", "Luc Martin", "Prefecture")
        .await;
    let second = api
        .data(
            &amina.token,
            "mutation($p: ID!) { createToken(party: $p, days: 30) { secret } }",
            json!({ "p": amina.id }),
        )
        .await["createToken"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut socket = api
        .subscribe(&second, "subscription { taskUpdates { key } }", json!({}))
        .await;
    let mut lucs = api
        .subscribe(
            &luc.token,
            "subscription { taskUpdates { key } }",
            json!({}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Only an admin may.
    let (_, body) = api
        .post(
            Some(&amina.token),
            "mutation($p: ID!) { revokeTokens(party: $p) }",
            json!({ "p": amina.id }),
        )
        .await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");
    let revoked = api
        .data(
            &api.admin,
            "mutation($p: ID!) { revokeTokens(party: $p) }",
            json!({ "p": amina.id }),
        )
        .await;
    assert_eq!(revoked["revokeTokens"], 2);
    let (code, reason, _) = socket.closed(Duration::from_secs(5)).await;
    assert_eq!(code, 4403, "{reason}");
    for token in [&amina.token, &second] {
        let (status, _) = api.post(Some(token), "{ me { id } }", json!({})).await;
        assert_eq!(status, 401);
    }
    let listed = tokens_of(&api, &api.admin, &amina.id).await;
    assert!(
        listed.iter().all(|t| t["revokedAt"].is_string()),
        "{listed:#?}"
    );
    // Luc's token and socket are untouched.
    assert!(lucs.stays_quiet(Duration::from_millis(300)).await);
    api.data(&luc.token, "{ me { id } }", json!({})).await;
    // Nothing left to revoke.
    let again = api
        .data(
            &api.admin,
            "mutation($p: ID!) { revokeTokens(party: $p) }",
            json!({ "p": amina.id }),
        )
        .await;
    assert_eq!(again["revokeTokens"], 0);
}

#[tokio::test]
async fn a_token_lives_no_longer_than_the_server_allows() {
    // A year unless the server says otherwise.
    let defaults = Settings::new("postgres://unused", "127.0.0.1:0".parse().unwrap());
    assert_eq!(defaults.token_max_days, 365);
    let api = TestApi::start_with(|s| Settings {
        token_max_days: 30,
        ..s
    })
    .await;
    // Another admin: the one party of another's an admin creates tokens for.
    let amina = api.register_party("ADMIN", "Amina", "Safe Passage").await;
    let create = |days: i64| {
        api.post(
            Some(&api.admin),
            "mutation($p: ID!, $d: Int!) { createToken(party: $p, days: $d) { expiresAt } }",
            json!({ "p": amina, "d": days }),
        )
    };
    let (_, body) = create(31).await;
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("1 to 30 days") && message.contains("HOMEWARD_TOKEN_MAX_DAYS"),
        "{message}"
    );
    assert!(tokens_of(&api, &api.admin, &amina).await.is_empty());
    let (_, body) = create(30).await;
    assert_eq!(
        body["data"]["createToken"]["expiresAt"],
        instant(start_time() + Span::days(30)),
        "{body}"
    );
}

/// On PostgreSQL, token checks run on connections of their own, which the pool does not check.
/// When the server ends them (a restart, a network failure), the next request is still answered:
/// its check goes once more on a new connection.
#[tokio::test]
async fn a_request_is_answered_after_postgresql_ended_the_token_checks_connections() {
    let api = TestApi::start().await;
    let worker = api.party("SOCIAL_WORKER", "Ana Diaz", "Caritas").await;
    let me = "{ me { displayName } }";
    assert_eq!(
        api.data(&worker.token, me, json!({})).await["me"]["displayName"],
        "Ana Diaz"
    );
    let ended = api
        .db
        .end_connections_that_ran("%FROM api_tokens t JOIN%")
        .await;
    assert!(ended >= 1, "a connection had checked a token");
    for _ in 0..3 {
        assert_eq!(
            api.data(&worker.token, me, json!({})).await["me"]["displayName"],
            "Ana Diaz"
        );
    }
}
