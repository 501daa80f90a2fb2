//! The WebSocket side of the API as a `graphql-transport-ws` client sees it: a refused or broken
//! connection closes with the protocol's code and a short reason, in a frame that a client
//! enforcing RFC 6455 (tungstenite does: a control frame's payload is at most 125 bytes) reads.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use homeward::app::Settings;
use homeward_tests::api::TestApi;
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
