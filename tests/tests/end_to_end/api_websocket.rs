//! The WebSocket side of the API as a `graphql-transport-ws` client sees it: a refused or broken
//! connection closes with the protocol's code and a short reason, in a frame that a client
//! enforcing RFC 6455 (tungstenite does: a control frame's payload is at most 125 bytes) reads.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use homeward::app::Settings;
use homeward_tests::api::{Person, Subscription, TestApi};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(api: &TestApi) -> Socket {
    let mut request = format!("ws://{}/graphql", api.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        response.headers()["Sec-WebSocket-Protocol"],
        "graphql-transport-ws"
    );
    socket
}

/// Sends `messages`, then reads until the server closes: its close code and reason.
async fn closed_with(api: &TestApi, messages: &[serde_json::Value]) -> (u16, String) {
    let mut socket = open(api).await;
    for m in messages {
        socket.send(Message::text(m.to_string())).await.unwrap();
    }
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("the server closes within 10 s");
        match next {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.to_string())
            }
            Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn refused_and_broken_connections_close_with_the_protocols_codes() {
    let api = TestApi::start_with(|s| Settings {
        ws_init_timeout: Duration::from_millis(500).into(),
        ..s
    })
    .await;
    let worker = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;

    // No token in connection_init.
    let (code, reason) = closed_with(&api, &[json!({ "type": "connection_init" })]).await;
    assert_eq!(code, 4403, "{reason}");
    assert!(reason.contains("connection_init payload"), "{reason}");
    assert!(reason.len() <= 123);

    // A token that is not one.
    let (code, reason) = closed_with(
        &api,
        &[json!({ "type": "connection_init", "payload": { "Authorization": "Bearer hw_nope" } })],
    )
    .await;
    assert_eq!(code, 4403);
    assert!(reason.contains("unknown, expired or revoked"), "{reason}");

    // A subscription before connection_init.
    let (code, _) = closed_with(
        &api,
        &[json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription { taskUpdates { key } }" } })],
    )
    .await;
    assert_eq!(code, 4401);

    // A message that is not one of the protocol's.
    let (code, reason) = closed_with(&api, &[json!({ "type": "hello" })]).await;
    assert_eq!(code, 4400, "{reason}");
    assert!(reason.len() <= 123);

    // Two connection_init.
    let init = json!({ "type": "connection_init",
                       "payload": { "Authorization": format!("Bearer {}", worker.token) } });
    let (code, _) = closed_with(&api, &[init.clone(), init]).await;
    assert_eq!(code, 4429);

    // Nothing at all within the initialisation timeout.
    let (code, reason) = closed_with(&api, &[]).await;
    assert_eq!(code, 4408, "{reason}");

    // A good token is acknowledged and the socket stays open.
    let mut socket = open(&api).await;
    socket
        .send(Message::text(
            json!({ "type": "connection_init",
                    "payload": { "Authorization": format!("Bearer {}", worker.token) } })
            .to_string(),
        ))
        .await
        .unwrap();
    let ack = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(ack.to_text().unwrap().contains("connection_ack"), "{ack}");
    // Past the initialisation timeout, an acknowledged socket is not closed.
    tokio::time::sleep(Duration::from_millis(800)).await;
    socket
        .send(Message::text(json!({ "type": "ping" }).to_string()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(pong.to_text().unwrap().contains("pong"), "{pong}");
}

const PLAN_EVENTS: &str = "subscription($id: ID!) { planEvents(planId: $id) { version type } }";
const PRIORITISE: &str = "mutation($id: ID!) { prioritiseStep(planId: $id, step: \"passport\", priority: URGENT) { version } }";

/// A second token for a party, created with their first (which stays valid): its id and its
/// secret.
async fn second_token(api: &TestApi, party: &Person) -> (String, String) {
    let created = api
        .data(
            &party.token,
            "mutation($id: ID!) { createToken(party: $id, days: 30) { tokenId secret } }",
            json!({ "id": party.id }),
        )
        .await;
    (
        created["createToken"]["tokenId"]
            .as_str()
            .unwrap()
            .to_owned(),
        created["createToken"]["secret"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

/// No message on the socket carries plan data: only the close may follow a revocation.
fn no_data(before: &[serde_json::Value]) {
    assert!(
        before.iter().all(|m| m["type"] != "next"),
        "data after the token lapsed: {before:?}"
    );
}

/// Waits (5 s at most) for the server to close the socket with 4403, with no data before the
/// close; the close's reason.
async fn closed_forbidden(socket: &mut Subscription) -> String {
    let (code, reason, before) = socket.closed(Duration::from_secs(5)).await;
    assert_eq!(code, 4403, "{reason}");
    no_data(&before);
    reason
}

/// A social worker with a plan, and a second token of hers (the first stays valid).
struct Worker {
    person: Person,
    plan: serde_json::Value,
    token_id: String,
    secret: String,
}

async fn worker_with_a_plan(api: &TestApi) -> Worker {
    let person = api.party("SOCIAL_WORKER", "Ana Diaz", "Caritas").await;
    let plan = api.open_plan(&person.token, "Mira K").await;
    let (token_id, secret) = second_token(api, &person).await;
    Worker {
        person,
        plan,
        token_id,
        secret,
    }
}

#[tokio::test]
async fn a_revoked_tokens_socket_is_closed_in_every_replica_and_receives_nothing_more() {
    let api = TestApi::start().await;
    let replica = api.second_replica().await;
    let Worker {
        person: worker,
        plan,
        token_id,
        secret,
    } = worker_with_a_plan(&api).await;

    // Open on each replica with the second token; both follow the plan.
    let mut here = api
        .subscribe(&secret, PLAN_EVENTS, json!({ "id": plan }))
        .await;
    let mut there = replica
        .subscribe(&secret, PLAN_EVENTS, json!({ "id": plan }))
        .await;
    // The protocol does not acknowledge a subscription: give both servers a moment to start
    // following the plan before it changes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    api.data(&worker.token, PRIORITISE, json!({ "id": plan }))
        .await;
    assert_eq!(here.next().await["planEvents"]["type"], "step_prioritised");
    assert_eq!(there.next().await["planEvents"]["type"], "step_prioritised");

    // Revoked on the first replica, then the plan changes again (with the first token).
    let revoked = api
        .data(
            &api.admin,
            "mutation($id: ID!) { revokeToken(tokenId: $id) }",
            json!({ "id": token_id }),
        )
        .await;
    assert_eq!(revoked["revokeToken"], true);
    api.data(
        &worker.token,
        "mutation($id: ID!) { prioritiseStep(planId: $id, step: \"passport\", priority: LOW) { version } }",
        json!({ "id": plan }),
    )
    .await;
    for socket in [&mut here, &mut there] {
        let reason = closed_forbidden(socket).await;
        assert!(reason.contains("revoked"), "{reason}");
    }
}

#[tokio::test]
async fn a_socket_closes_when_its_party_moves_to_another_organisation() {
    let api = TestApi::start().await;
    let replica = api.second_replica().await;
    let worker = api.party("SOCIAL_WORKER", "Ana Diaz", "Caritas").await;
    // A colleague's plan: a worker who is the case worker of open plans is moved only once
    // they are handed over.
    let colleague = api.party("SOCIAL_WORKER", "Eva Ruiz", "Caritas").await;
    let plan = api.open_plan(&colleague.token, "Mira K").await;
    let mut there = replica
        .subscribe(&worker.token, PLAN_EVENTS, json!({ "id": plan }))
        .await;
    // The reminder settings are the party's too, but change nothing of what it may see.
    api.data(
        &worker.token,
        "mutation($id: ID!) { setReminderSettings(party: $id, input: { language: \"es\", timeZone: \"Europe/Paris\" }) { id } }",
        json!({ "id": worker.id }),
    )
    .await;
    assert!(there.stays_quiet(Duration::from_millis(500)).await);

    let another = api.organisation("Another NGO").await;
    api.data(
        &api.admin,
        "mutation($id: ID!, $input: PartyInput!) { updateParty(id: $id, input: $input) { id } }",
        json!({ "id": worker.id, "input": {
            "displayName": "Ana Diaz", "email": "ana.diaz@caritas.example",
            "role": "SOCIAL_WORKER", "organisation": another, "country": "FR",
            "language": "fr",
        }}),
    )
    .await;
    closed_forbidden(&mut there).await;
}

#[tokio::test]
async fn a_revocation_written_straight_to_the_database_is_announced_too() {
    let api = TestApi::start().await;
    let Worker {
        plan,
        token_id,
        secret,
        ..
    } = worker_with_a_plan(&api).await;
    let mut socket = api
        .subscribe(&secret, PLAN_EVENTS, json!({ "id": plan }))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // An operator's own UPDATE, not the API's: the database announces it all the same, and
    // the socket closes without waiting for its next operation.
    sqlx::query("UPDATE api_tokens SET revoked_at = now() WHERE token_id = $1::uuid")
        .bind(&token_id)
        .execute(api.db.pool())
        .await
        .unwrap();
    closed_forbidden(&mut socket).await;
}

#[tokio::test]
async fn an_operation_after_a_lost_announcement_asks_the_database_again() {
    let api = TestApi::start_with(|s| Settings {
        ws_recheck: Duration::from_millis(200).into(),
        ..s
    })
    .await;
    // An announcement from before the revocation (the revocation listener connecting, or the
    // party's own events reaching the server late on a loaded machine) makes the socket ask the
    // database early and close at once: that run shows nothing of the recheck, and is run again.
    sqlx::query("ALTER TABLE api_tokens DISABLE TRIGGER api_tokens_revoked")
        .execute(api.db.pool())
        .await
        .unwrap();
    for _ in 0..3 {
        let Worker {
            plan,
            token_id,
            secret,
            ..
        } = worker_with_a_plan(&api).await;
        let mut socket = api
            .subscribe(&secret, PLAN_EVENTS, json!({ "id": plan }))
            .await;
        socket.send_operation("2", "{ me { displayName } }").await;
        let answer = socket.next_message().await;
        assert_eq!(
            answer["payload"]["data"]["me"]["displayName"], "Ana Diaz",
            "{answer}"
        );
        assert_eq!(socket.next_message().await["type"], "complete");

        // Revoked with the announcement lost (as when the listening connection drops at the
        // wrong moment): nothing reaches the socket, but the next operation, past the recheck
        // interval, asks the database and is refused.
        sqlx::query("UPDATE api_tokens SET revoked_at = now() WHERE token_id = $1::uuid")
            .bind(&token_id)
            .execute(api.db.pool())
            .await
            .unwrap();
        if !socket.stays_quiet(Duration::from_millis(300)).await {
            continue;
        }
        socket.send_operation("3", "{ me { displayName } }").await;
        closed_forbidden(&mut socket).await;
        return;
    }
    panic!("three times, the socket closed before its next operation asked the database");
}

#[tokio::test]
async fn a_socket_closes_when_its_token_expires_and_answers_nothing_after() {
    let api = TestApi::start().await;
    let worker = api.party("SOCIAL_WORKER", "Ana Diaz", "Caritas").await;
    let plan = api.open_plan(&worker.token, "Mira K").await;
    let created = api
        .data(
            &worker.token,
            "mutation($id: ID!) { createToken(party: $id, days: 1) { secret } }",
            json!({ "id": worker.id }),
        )
        .await;
    let secret = created["createToken"]["secret"].as_str().unwrap();
    let mut idle = api
        .subscribe(secret, PLAN_EVENTS, json!({ "id": plan }))
        .await;
    let mut asking = api
        .subscribe(secret, PLAN_EVENTS, json!({ "id": plan }))
        .await;
    assert!(idle.stays_quiet(Duration::from_millis(1500)).await);

    api.clock.advance(chrono::Duration::days(1));
    // One sends a query at once; the other says nothing and is closed all the same.
    asking.send_operation("2", "{ me { displayName } }").await;
    for socket in [&mut asking, &mut idle] {
        let reason = closed_forbidden(socket).await;
        assert!(reason.contains("expired"), "{reason}");
    }
}

#[tokio::test]
async fn a_revocation_reaches_open_sockets_after_the_listening_connection_was_lost() {
    let api = TestApi::start().await;
    let Worker {
        plan,
        token_id,
        secret,
        ..
    } = worker_with_a_plan(&api).await;
    let mut socket = api
        .subscribe(&secret, PLAN_EVENTS, json!({ "id": plan }))
        .await;

    // The server ends the connection that listens for revocations, as a restart or a network
    // failure would; the token is revoked at once, possibly before anyone listens again.
    let ended: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
           AND query ILIKE '%homeward_revoked_tokens%') AS t",
    )
    .fetch_one(api.db.pool())
    .await
    .unwrap();
    assert_eq!(ended, 1, "one connection listens for revocations");
    api.data(
        &api.admin,
        "mutation($id: ID!) { revokeToken(tokenId: $id) }",
        json!({ "id": token_id }),
    )
    .await;
    closed_forbidden(&mut socket).await;
}

#[tokio::test]
async fn a_message_larger_than_a_request_closes_that_socket_only() {
    let api = TestApi::start().await;
    let worker = api.party("SOCIAL_WORKER", "Ana Diaz", "Caritas").await;
    let plan = api.open_plan(&worker.token, "Mira K").await;
    let mut other = api
        .subscribe(&worker.token, PLAN_EVENTS, json!({ "id": plan }))
        .await;

    // Before connection_init (nothing authenticated yet) and after it: 10 MiB in one frame.
    for init in [false, true] {
        let mut socket = open(&api).await;
        if init {
            let init = json!({ "type": "connection_init",
                               "payload": { "Authorization": format!("Bearer {}", worker.token) } });
            socket.send(Message::text(init.to_string())).await.unwrap();
        }
        let huge = format!(
            "{{\"type\":\"subscribe\",\"id\":\"1\",\"payload\":{{\"query\":\"{}\"}}}}",
            "x".repeat(10 * 1024 * 1024)
        );
        let _ = socket.send(Message::text(huge)).await;
        let code = loop {
            match tokio::time::timeout(Duration::from_secs(10), socket.next())
                .await
                .expect("closed within 10 s")
            {
                Some(Ok(Message::Close(Some(frame)))) => break Some(u16::from(frame.code)),
                Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Err(_)) | None | Some(Ok(Message::Close(None))) => break None,
                other => panic!("unexpected {other:?}"),
            }
        };
        // Closed with 1009, or reset before the client read the close frame (it was still
        // writing): either way not 4401 before the init, nor an answer after it.
        assert!(matches!(code, Some(1009) | None), "init {init}: {code:?}");
    }

    // The other socket, and the server, go on.
    api.data(&worker.token, PRIORITISE, json!({ "id": plan }))
        .await;
    assert_eq!(other.next().await["planEvents"]["type"], "step_prioritised");
}

/// A protocol message of this type, for this operation.
fn assert_message(message: &serde_json::Value, kind: &str, id: &str) {
    assert_eq!(
        (message["type"].as_str(), message["id"].as_str()),
        (Some(kind), Some(id)),
        "{message}"
    );
}

#[tokio::test]
async fn a_socket_holds_no_more_operations_than_its_cap_and_gets_room_back_as_they_end() {
    let api = TestApi::start_with(|s| Settings {
        ws_max_operations: 3,
        ..s
    })
    .await;
    let worker = api.party("SOCIAL_WORKER", "Ana Diaz", "Caritas").await;
    let plan = api.open_plan(&worker.token, "Mira K").await;
    let follow = format!(
        "subscription {{ planEvents(planId: \"{}\") {{ version }} }}",
        plan.as_str().unwrap()
    );
    let me = "{ me { displayName } }";
    let mut socket = api
        .subscribe(&worker.token, PLAN_EVENTS, json!({ "id": plan }))
        .await;
    socket.send_operation("2", &follow).await;
    socket.send_operation("3", &follow).await;

    // Full: a fourth is refused, and only it.
    socket.send_operation("4", me).await;
    let refused = socket.next_message().await;
    assert_message(&refused, "error", "4");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"], "RATE_LIMITED",
        "{refused}"
    );

    // The client ends one: room for a query, which the server ends in its turn.
    socket.complete("2").await;
    let ended = socket.next_message().await;
    assert_message(&ended, "complete", "2");
    socket.send_operation("5", me).await;
    let answer = socket.next_message().await;
    assert_message(&answer, "next", "5");
    assert_eq!(socket.next_message().await["type"], "complete");
    // So a subscription fits again, and the next operation is the one refused.
    socket.send_operation("6", &follow).await;
    socket.send_operation("7", me).await;
    let refused = socket.next_message().await;
    assert_message(&refused, "error", "7");

    // The open subscriptions still deliver.
    api.data(&worker.token, PRIORITISE, json!({ "id": plan }))
        .await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let event = socket.next_message().await;
        assert_eq!(event["type"], "next", "{event}");
        ids.push(event["id"].as_str().unwrap().to_owned());
    }
    ids.sort();
    assert_eq!(ids, ["1", "3", "6"]);
}

#[tokio::test]
async fn a_token_opens_no_more_sockets_than_its_cap_and_gets_room_back_as_they_close() {
    let api = TestApi::start_with(|s| Settings {
        ws_max_sockets_per_token: 2,
        ..s
    })
    .await;
    let worker = api.party("SOCIAL_WORKER", "Ana Diaz", "Caritas").await;
    let plan = api.open_plan(&worker.token, "Mira K").await;
    let init = json!({ "type": "connection_init",
                       "payload": { "Authorization": format!("Bearer {}", worker.token) } });
    let first = api
        .subscribe(&worker.token, PLAN_EVENTS, json!({ "id": plan }))
        .await;
    let _second = api
        .subscribe(&worker.token, PLAN_EVENTS, json!({ "id": plan }))
        .await;

    let (code, reason) = closed_with(&api, std::slice::from_ref(&init)).await;
    assert_eq!(code, 4403, "{reason}");
    assert!(reason.contains("sockets"), "{reason}");
    // Another token of the same party is not held back by this one's sockets.
    let (_, other) = second_token(&api, &worker).await;
    let _third = api
        .subscribe(&other, PLAN_EVENTS, json!({ "id": plan }))
        .await;

    // One closes: room for one more, once the server has seen it go.
    drop(first);
    let mut opened = false;
    for _ in 0..50 {
        let mut socket = open(&api).await;
        socket.send(Message::text(init.to_string())).await.unwrap();
        if let Some(Ok(Message::Text(text))) = socket.next().await {
            if text.contains("connection_ack") {
                opened = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(opened, "a socket closed gives its place back");
}

/// The next message of a subscription that ends: the refusal (its code), then `complete`.
async fn ended_forbidden(socket: &mut Subscription) {
    let message = socket.next_message().await;
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(
        message["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{message}"
    );
    assert!(message["payload"]["data"].is_null(), "{message}");
    assert_eq!(socket.next_message().await["type"], "complete");
}

#[tokio::test]
async fn a_partners_plan_events_show_her_steps_and_stop_at_withdrawn_consent_and_reassignment() {
    let api = TestApi::start().await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let grace = api.party("PARTNER_CONTACT", "Grace", "Hope Lagos").await;
    let plan = api.open_plan(&amina.token, "Joy N.").await;
    let amina_does = |query: &'static str| {
        let plan = plan.clone();
        let grace = grace.id.clone();
        let token = amina.token.clone();
        let api = &api;
        async move {
            api.data(&token, query, json!({ "id": plan, "grace": grace }))
                .await;
        }
    };
    const SHARING: &str = "mutation($id: ID!, $grace: ID!) { recordConsent(planId: $id, consent: { kind: DATA_SHARING, partner: $grace }) { version } }";
    amina_does("mutation($id: ID!, $grace: ID!) { assignStep(planId: $id, step: \"origin_contact\", assignee: $grace) { version } }").await;
    amina_does("mutation($id: ID!, $grace: ID!) { assignStep(planId: $id, step: \"follow_up_1\", assignee: $grace) { version } }").await;
    amina_does(SHARING).await;

    let mut events = api
        .subscribe(&grace.token, PLAN_EVENTS, json!({ "id": plan }))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The case file and other steps pass her by; her steps reach her.
    amina_does("mutation($id: ID!) { setGoals(planId: $id, goals: [{ area: HEALTH, aim: \"Rest\" }]) { version } }").await;
    amina_does("mutation($id: ID!) { prioritiseStep(planId: $id, step: \"medical_check\", priority: URGENT) { version } }").await;
    amina_does("mutation($id: ID!) { prioritiseStep(planId: $id, step: \"origin_contact\", priority: URGENT) { version } }").await;
    let event = events.next().await;
    assert_eq!(event["planEvents"]["type"], "step_prioritised", "{event}");
    assert!(events.stays_quiet(Duration::from_millis(300)).await);

    // The survivor withdraws consent to sharing data with her: the flow stops.
    amina_does("mutation($id: ID!, $grace: ID!) { withdrawConsent(planId: $id, consent: { kind: DATA_SHARING, partner: $grace }) { version } }").await;
    ended_forbidden(&mut events).await;
    // And does not start again while it stays withdrawn.
    let mut again = api
        .subscribe(&grace.token, PLAN_EVENTS, json!({ "id": plan }))
        .await;
    ended_forbidden(&mut again).await;

    // Given again; her steps are reassigned one by one: the flow stops with the last.
    amina_does(SHARING).await;
    let mut events = api
        .subscribe(&grace.token, PLAN_EVENTS, json!({ "id": plan }))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    amina_does("mutation($id: ID!) { assignStep(planId: $id, step: \"origin_contact\", assignee: null) { version } }").await;
    amina_does("mutation($id: ID!) { prioritiseStep(planId: $id, step: \"origin_contact\", priority: LOW) { version } }").await;
    assert!(events.stays_quiet(Duration::from_millis(300)).await);
    amina_does("mutation($id: ID!) { assignStep(planId: $id, step: \"follow_up_1\", assignee: null) { version } }").await;
    ended_forbidden(&mut events).await;
}

/// On SQLite a token revoked by another process writing to the file (`homeward token revoke`
/// beside the server) closes the server's sockets too: the server looks for revocations in the
/// file every second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_from_the_command_line_beside_a_sqlite_server_closes_its_sockets() {
    use homeward_store::reads::ReadModels as _;
    let api = TestApi::start_on_sqlite().await;
    let Worker {
        plan,
        token_id,
        secret,
        ..
    } = worker_with_a_plan(&api).await;
    let mut socket = api
        .subscribe(&secret, PLAN_EVENTS, json!({ "id": plan }))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Another process's store on the same file, as the command line opens it.
    let file = api.db.sqlite.as_ref().unwrap().path();
    let command_line = homeward_store_sqlite::SqliteStore::open(&file, 1)
        .await
        .unwrap();
    assert!(command_line
        .revoke_token(token_id.parse().unwrap())
        .await
        .unwrap());
    let reason = closed_forbidden(&mut socket).await;
    assert!(reason.contains("revoked"), "{reason}");
}
