//! GraphQL over WebSocket: the `graphql-transport-ws` protocol (and the older
//! `subscriptions-transport-ws`), with the close codes the protocol defines.
//!
//! async-graphql runs the protocol; this loop carries its messages between it and the socket
//! and closes the way `graphql-transport-ws` clients expect: 4400 for a message it cannot read,
//! 4401 for a subscription before the connection was acknowledged, 4403 for a refused
//! `connection_init` (no token, or one that is unknown, expired or revoked), 4408 when no
//! `connection_init` arrives in time, 4429 for a second `connection_init`, 1009 for a message
//! larger than a request body may be. Each close reason is
//! short: a close frame carries at most 125 bytes (RFC 6455), two of them the code.
//!
//! Once acknowledged, the socket follows its token ([`Standing`]): it is checked again before
//! every operation sent over the socket, and whenever an access change may concern it; the
//! socket closes with 4403 as soon as the token no longer stands for the viewer it was opened
//! for, or has expired.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_graphql::http::{WebSocketProtocols, WsMessage};
use async_graphql::{Data, Executor};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use tokio::sync::{broadcast, mpsc};

use crate::access::{AccessChange, Standing};
use homeward_graphql::Code;

/// How often an acknowledged socket asks the clock whether its token has expired.
const EXPIRY_CHECK: Duration = Duration::from_secs(1);

/// Why the server closes a socket that was open: its token lapsed (4403), or a message was
/// larger than a request may be (1009).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lapse {
    /// Revoked, expired, or its party's role or organisation changed.
    NoLongerStands,
    /// It could not be checked (the database did not answer).
    Unchecked,
    /// A message (or a frame of one) larger than the request body limit, refused from its
    /// header before its payload was read.
    TooLarge,
}

impl Lapse {
    fn code(self) -> u16 {
        match self {
            Self::NoLongerStands | Self::Unchecked => 4403,
            Self::TooLarge => 1009,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Self::NoLongerStands => {
                "Forbidden: this token was revoked or has expired, or its party changed; connect again"
            }
            Self::Unchecked => InitRefusal::Unavailable.reason(),
            Self::TooLarge => "Message too big: send messages no larger than a request body may be",
        }
    }

    fn of(checked: Result<bool, homeward_store::StoreError>) -> Option<Self> {
        match checked {
            Ok(true) => None,
            Ok(false) => Some(Self::NoLongerStands),
            Err(e) => {
                tracing::warn!(error = %e, "a socket's token could not be checked");
                Some(Self::Unchecked)
            }
        }
    }
}

/// Whether a client message may start an operation (a query, mutation or subscription): any
/// message but those known to start none, so that one the protocol reads differently from
/// this check (a repeated key, say) is checked too.
fn may_start_operation(message: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Kind<'a> {
        #[serde(rename = "type", borrow)]
        kind: std::borrow::Cow<'a, str>,
    }
    !serde_json::from_slice::<Kind<'_>>(message).is_ok_and(|m| {
        matches!(
            m.kind.as_ref(),
            "ping" | "pong" | "complete" | "stop" | "connection_init" | "connection_terminate"
        )
    })
}

/// Longest close reason: 125 bytes of payload less the two of the code.
const MAX_CLOSE_REASON: usize = 123;

/// Why a `connection_init` was refused: said in the 4403 close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitRefusal {
    /// The payload carried no token.
    NoToken,
    /// The token is unknown, expired or revoked.
    BadToken,
    /// The token could not be checked (the database did not answer).
    Unavailable,
    /// The token already has as many sockets open in this replica as it may.
    TooManySockets,
}

impl InitRefusal {
    fn reason(self) -> &'static str {
        match self {
            Self::NoToken => {
                "Forbidden: send {\"Authorization\": \"Bearer hw_...\"} as the connection_init payload"
            }
            Self::BadToken => "Forbidden: this token is unknown, expired or revoked",
            Self::Unavailable => "Forbidden: the token could not be checked now; try again",
            Self::TooManySockets => {
                "Forbidden: this token has as many sockets open as it may; close one first"
            }
        }
    }

    fn from_reason(reason: &str) -> Option<Self> {
        [
            Self::NoToken,
            Self::BadToken,
            Self::Unavailable,
            Self::TooManySockets,
        ]
        .into_iter()
        .find(|r| r.reason() == reason)
    }
}

impl From<InitRefusal> for async_graphql::Error {
    fn from(refusal: InitRefusal) -> Self {
        async_graphql::Error::new(refusal.reason())
    }
}

/// A protocol message's type and operation id, as far as the caps need them.
#[derive(serde::Deserialize)]
struct ClientMessage<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    id: Option<std::borrow::Cow<'a, str>>,
}

/// The operations open on one socket, by id, up to a cap: a client cannot hold more
/// subscriptions (or queries in flight) on one socket than that.
struct Operations {
    open: std::sync::Mutex<std::collections::HashSet<String>>,
    max: usize,
}

impl Operations {
    /// Whether an operation with this id may start (and counts it as open if so).
    fn start(&self, id: &str) -> bool {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if open.contains(id) {
            // A second operation with a live id: the protocol refuses it (4409).
            return true;
        }
        if open.len() >= self.max {
            return false;
        }
        open.insert(id.to_owned());
        true
    }

    fn end(&self, id: &str) {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }

    /// Ends the operation a server message completes or fails, if it does.
    fn ended_by_server(&self, text: &str) {
        // Most carry a result (`next`, or `data` in the older protocol); async-graphql writes
        // the type first, so those are known without reading their payload again.
        if text
            .split_once("\"type\":\"")
            .is_some_and(|(_, rest)| rest.starts_with("next\"") || rest.starts_with("data\""))
        {
            return;
        }
        // The same two fields as a client message (the payload is skipped, not kept).
        if let Ok(ClientMessage { kind, id: Some(id) }) = serde_json::from_str(text) {
            if matches!(kind.as_ref(), "complete" | "error") {
                self.end(&id);
            }
        }
    }

    /// The protocol's error message for an operation refused for being one too many.
    fn refusal(&self, id: &str, transport_ws: bool) -> String {
        refusal(
            id,
            transport_ws,
            &format!(
                "this socket already has {} operations open: complete one, or open another socket",
                self.max
            ),
            None,
        )
    }
}

/// The protocol's error message for an operation refused with `RATE_LIMITED`.
fn refusal(id: &str, transport_ws: bool, message: &str, retry_after: Option<u64>) -> String {
    let mut extensions = serde_json::json!({ "code": Code::RateLimited.as_str() });
    if let Some(seconds) = retry_after {
        extensions["retryAfterSeconds"] = seconds.into();
    }
    let error = serde_json::json!({ "message": message, "extensions": extensions });
    let payload = if transport_ws {
        serde_json::json!([error])
    } else {
        error
    };
    serde_json::json!({ "type": "error", "id": id, "payload": payload }).to_string()
}

/// What one socket allows its client.
#[derive(Debug, Clone, Copy)]
pub struct SocketRules {
    /// How long the client has to send `connection_init`.
    pub init_timeout: Duration,
    /// Operations open at once.
    pub max_operations: usize,
    /// Whether the token is checked again before every operation.
    pub check_each_operation: bool,
    /// Before an operation, the store is asked again when it last said the token stands
    /// longer ago than this; in between, the socket relies on the announcements it is told of
    /// (revocations, party changes) and on the clock (expiry).
    pub recheck_after: Duration,
}

/// Serves one socket until either side closes it. `on_init` checks the `connection_init`
/// payload and gives the connection's data (who is asking) and its standing, which the socket
/// follows from then on, told of `changes`, within `rules`.
pub async fn serve<E, F, R>(
    socket: WebSocket,
    executor: E,
    protocol: WebSocketProtocols,
    rules: SocketRules,
    mut changes: broadcast::Receiver<AccessChange>,
    on_init: F,
) where
    E: Executor,
    F: FnOnce(serde_json::Value) -> R + Send + 'static,
    R: Future<Output = async_graphql::Result<(Data, Arc<dyn Standing>)>> + Send + 'static,
{
    let standing: Arc<OnceLock<Arc<dyn Standing>>> = Arc::default();
    let (lapsed, mut lapse) = mpsc::channel::<Lapse>(1);
    let transport_ws = protocol == WebSocketProtocols::GraphQLWS;
    let operations = Arc::new(Operations {
        open: Default::default(),
        max: rules.max_operations,
    });
    let (refuse, mut refused) = mpsc::unbounded_channel::<String>();
    let (mut sink, stream) = socket.split();
    let messages = stream.filter_map(|message| {
        futures::future::ready(match message {
            Ok(Message::Text(text)) => Some(Ok(text.as_str().as_bytes().to_vec())),
            Ok(Message::Binary(bytes)) => Some(Ok(bytes.to_vec())),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
    });
    // Before every operation, the token again: a message that finds it lapsed goes no further,
    // and the socket closes.
    // Past the cap, an operation is answered with an error and goes no further.
    let input = futures::stream::unfold(
        (
            Box::pin(messages),
            standing.clone(),
            lapsed,
            operations.clone(),
            refuse,
        ),
        move |(mut messages, standing, lapsed, operations, refuse)| async move {
            loop {
                let message = match messages.next().await? {
                    Ok(message) => message,
                    Err(e) => {
                        // tungstenite's capacity error ("Message too big: ..."); anything else
                        // is the connection failing.
                        if e.to_string().contains("too big") {
                            let _ = lapsed.try_send(Lapse::TooLarge);
                        }
                        return None;
                    }
                };
                let current = standing.get().cloned();
                let check = rules.check_each_operation && may_start_operation(&message);
                if let Some(current) = current.filter(|_| check) {
                    if current.expired() {
                        let _ = lapsed.try_send(Lapse::NoLongerStands);
                        return None;
                    }
                    if !current.checked_within(rules.recheck_after) {
                        if let Some(lapse) = Lapse::of(current.holds().await) {
                            let _ = lapsed.try_send(lapse);
                            return None;
                        }
                    }
                }
                if let Ok(ClientMessage { kind, id: Some(id) }) = serde_json::from_slice(&message) {
                    let starts = matches!(kind.as_ref(), "subscribe" | "start");
                    let over_rate = standing
                        .get()
                        .filter(|_| starts)
                        .and_then(|standing| standing.admits_operation().err());
                    if let Some(limited) = over_rate {
                        let seconds = limited.retry_after_seconds();
                        let message =
                            format!("too many requests from this token; send again in {seconds} s");
                        let _ = refuse.send(refusal(&id, transport_ws, &message, Some(seconds)));
                        continue;
                    }
                    match kind.as_ref() {
                        "subscribe" | "start" if !operations.start(&id) => {
                            let _ = refuse.send(operations.refusal(&id, transport_ws));
                            continue;
                        }
                        "complete" | "stop" => operations.end(&id),
                        _ => {}
                    }
                }
                return Some((message, (messages, standing, lapsed, operations, refuse)));
            }
        },
    );
    let opened = standing.clone();
    let outgoing = async_graphql::http::WebSocket::new(executor, Box::pin(input), protocol)
        .on_connection_init(move |payload| async move {
            let (data, standing) = on_init(payload).await?;
            let _ = opened.set(standing);
            Ok(data)
        });
    futures::pin_mut!(outgoing);
    let init_deadline = tokio::time::sleep(rules.init_timeout);
    futures::pin_mut!(init_deadline);
    let mut expiry_check = tokio::time::interval(EXPIRY_CHECK);
    let mut acknowledged = false;
    let mut following = true;
    loop {
        let following_now = acknowledged && following;
        let next = tokio::select! {
            biased;
            Some(lapse) = lapse.recv() => {
                let _ = sink.send(close(lapse.code(), lapse.reason())).await;
                return;
            }
            Some(refusal) = refused.recv() => {
                if sink.send(Message::Text(refusal.into())).await.is_err() {
                    return;
                }
                continue;
            }
            change = changes.recv(), if following_now => {
                let change = match change {
                    Ok(change) => change,
                    Err(broadcast::error::RecvError::Lagged(_)) => AccessChange::Any,
                    Err(broadcast::error::RecvError::Closed) => {
                        following = false;
                        continue;
                    }
                };
                if let Some(standing) = standing.get().filter(|s| s.concerns(change)) {
                    if let Some(lapse) = Lapse::of(standing.holds().await) {
                        let _ = sink.send(close(lapse.code(), lapse.reason())).await;
                        return;
                    }
                }
                continue;
            }
            _ = expiry_check.tick(), if acknowledged => {
                if standing.get().is_some_and(|s| s.expired()) {
                    let _ = sink.send(close(4403, Lapse::NoLongerStands.reason())).await;
                    return;
                }
                continue;
            }
            next = outgoing.next() => next,
            () = &mut init_deadline, if !acknowledged && transport_ws => {
                let _ = sink
                    .send(close(4408, "Connection initialisation timeout"))
                    .await;
                return;
            }
        };
        let Some(message) = next else {
            // The input ended: the client went away, or an operation found the token lapsed.
            if let Ok(lapse) = lapse.try_recv() {
                let _ = sink.send(close(lapse.code(), lapse.reason())).await;
            }
            return;
        };
        let message = match message {
            WsMessage::Text(text) => {
                if !acknowledged && text.contains("\"connection_ack\"") {
                    acknowledged = true;
                }
                // Whose data this message shows is recorded before it is sent.
                if let Some(standing) = standing.get() {
                    if standing.record_access().await.is_err() {
                        let _ = sink
                            .send(close(1011, "the access audit is unavailable"))
                            .await;
                        return;
                    }
                }
                operations.ended_by_server(&text);
                Message::Text(text.into())
            }
            WsMessage::Close(code, reason) if transport_ws => {
                let (code, reason) = protocol_close(code, &reason);
                close(code, &reason)
            }
            WsMessage::Close(code, reason) => close(code, &reason),
        };
        let closing = matches!(message, Message::Close(_));
        if sink.send(message).await.is_err() || closing {
            return;
        }
    }
}

/// The `graphql-transport-ws` close code and reason for what async-graphql closes with.
fn protocol_close(code: u16, reason: &str) -> (u16, String) {
    match code {
        // A refused connection_init (our own reasons), or a message that could not be read.
        1002 => match InitRefusal::from_reason(reason) {
            Some(refusal) => (4403, refusal.reason().to_owned()),
            None => (4400, format!("Invalid message: {reason}")),
        },
        // A subscription before the connection was acknowledged.
        1011 => (4401, "Unauthorized".to_owned()),
        other => (other, reason.to_owned()),
    }
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: truncate(reason, MAX_CLOSE_REASON).into(),
    }))
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_is_checked_but_those_known_to_start_no_operation() {
        for (message, operation) in [
            (
                r#"{"type":"subscribe","id":"1","payload":{"query":"{ me { id } }"}}"#,
                true,
            ),
            (r#"{"id":"1","type":"start","payload":{}}"#, true),
            (r#"{"type":"ping"}"#, false),
            (r#"{"type":"complete","id":"1"}"#, false),
            (r#"{"type":"connection_init","payload":{}}"#, false),
            (r#"{"type":"sub\u0073cribe","id":"1"}"#, true),
            (r#"{"type":"ping","type":"subscribe","id":"1"}"#, true),
            (r#"{"type":"p\u0069ng"}"#, false),
            ("not json", true),
        ] {
            assert_eq!(
                may_start_operation(message.as_bytes()),
                operation,
                "{message}"
            );
        }
    }

    #[test]
    fn every_lapse_fits_in_a_close_frame() {
        for lapse in [Lapse::NoLongerStands, Lapse::Unchecked, Lapse::TooLarge] {
            assert!(lapse.reason().len() <= MAX_CLOSE_REASON, "{lapse:?}");
        }
    }

    #[test]
    fn every_refusal_fits_in_a_close_frame() {
        for refusal in [
            InitRefusal::NoToken,
            InitRefusal::BadToken,
            InitRefusal::Unavailable,
            InitRefusal::TooManySockets,
        ] {
            assert!(refusal.reason().len() <= MAX_CLOSE_REASON, "{refusal:?}");
            assert_eq!(
                protocol_close(1002, refusal.reason()),
                (4403, refusal.reason().to_owned())
            );
        }
    }

    #[test]
    fn long_reasons_are_cut_at_a_character_boundary() {
        let long = "é".repeat(100);
        let cut = truncate(&long, MAX_CLOSE_REASON);
        assert!(cut.len() <= MAX_CLOSE_REASON);
        assert_eq!(cut.chars().count(), 61);
        let (code, reason) = protocol_close(1002, &long);
        assert_eq!(code, 4400);
        assert!(truncate(&reason, MAX_CLOSE_REASON).len() <= MAX_CLOSE_REASON);
    }
}
