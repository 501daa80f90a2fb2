//! What an open WebSocket follows after its `connection_init`: a token is checked when the
//! socket opens and again before every operation sent over it, and the socket is closed (4403)
//! as soon as its token no longer stands for the viewer it was opened for: revoked (in any
//! replica: the store announces revocations), expired, or its party changed (role,
//! organisation: a party event in the log, which every replica follows).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use homeward_engine::tokens::{self, Authenticated};
use homeward_graphql::{EventHub, Services};
use homeward_store::RecordedEvent;
use homeward_workflows::PartyId;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::broadcast;

use crate::limits::{Limited, RateLimits};
use uuid::Uuid;

/// Something that may end the standing of open sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessChange {
    /// This token was revoked.
    Token(Uuid),
    /// Something about this party changed.
    Party(Uuid),
    /// Changes may have been missed (a lost connection, a backlog overrun): every socket
    /// checks its token again.
    Any,
}

/// Access changes of every replica, for the sockets of this one.
#[derive(Debug, Clone)]
pub struct AccessWatch {
    sender: broadcast::Sender<AccessChange>,
    /// Sockets open in this replica, by token.
    sockets: Arc<std::sync::Mutex<std::collections::HashMap<Uuid, usize>>>,
}

/// One open socket of a token, counted until it is dropped.
#[derive(Debug)]
pub struct SocketHold {
    token_id: Uuid,
    sockets: Arc<std::sync::Mutex<std::collections::HashMap<Uuid, usize>>>,
}

impl Drop for SocketHold {
    fn drop(&mut self) {
        let mut sockets = self
            .sockets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(open) = sockets.get_mut(&self.token_id) {
            *open -= 1;
            if *open == 0 {
                sockets.remove(&self.token_id);
            }
        }
    }
}

/// Changes a slow socket may fall behind by before it must check again anyway.
const BACKLOG: usize = 1024;

impl AccessWatch {
    /// Follows revocations and party events until the process stops. Returns the task, so
    /// that the server can stop it.
    pub fn start(services: &Services) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, _) = broadcast::channel(BACKLOG);
        let task = tokio::spawn(watch(
            services.reads.clone(),
            services.events.clone(),
            sender.clone(),
        ));
        (
            Self {
                sender,
                sockets: Arc::default(),
            },
            task,
        )
    }

    /// Counts one more socket of `token_id` in this replica, unless it has `max` open already.
    pub fn hold(&self, token_id: Uuid, max: usize) -> Option<SocketHold> {
        let mut sockets = self
            .sockets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let open = sockets.entry(token_id).or_default();
        if *open >= max {
            return None;
        }
        *open += 1;
        Some(SocketHold {
            token_id,
            sockets: self.sockets.clone(),
        })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<AccessChange> {
        self.sender.subscribe()
    }
}

async fn watch(
    reads: Arc<dyn homeward_store::reads::ReadModels>,
    events: EventHub,
    sender: broadcast::Sender<AccessChange>,
) {
    let mut events = events.subscribe();
    let mut revocations = None;
    loop {
        let listening = match &mut revocations {
            Some(listening) => listening,
            None => match reads.revocations().await {
                Ok(listening) => {
                    // Anything revoked while no one listened is found by checking again.
                    let _ = sender.send(AccessChange::Any);
                    revocations.insert(listening)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "not listening for revoked tokens; trying again");
                    let _ = sender.send(AccessChange::Any);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let change = tokio::select! {
            revoked = listening.next() => match revoked {
                Ok(token_id) => AccessChange::Token(token_id),
                Err(e) => {
                    tracing::warn!(error = %e, "revocations may have been missed; every socket checks again");
                    revocations = None;
                    AccessChange::Any
                }
            },
            event = events.recv() => match event {
                Ok(event) => match party_of(&event) {
                    Some(party) => AccessChange::Party(party),
                    None => continue,
                },
                Err(broadcast::error::RecvError::Lagged(_)) => AccessChange::Any,
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        // No socket open is fine: there is no one to tell.
        let _ = sender.send(change);
    }
}

/// The party whose stream an event is in, if it is a party's.
fn party_of(event: &RecordedEvent) -> Option<Uuid> {
    let id = event
        .stream_id
        .strip_prefix(PartyId::STREAM_PREFIX)?
        .strip_prefix('-')?;
    Uuid::parse_str(id).ok()
}

/// Whether a socket may stay open.
#[async_trait]
pub trait Standing: Send + Sync {
    /// Whether the token still stands for the viewer the socket was opened for (asks the
    /// store); an error when it could not be checked.
    async fn holds(&self) -> Result<bool, homeward_store::StoreError>;

    /// Whether the token has expired by now (asks the clock only).
    fn expired(&self) -> bool;

    /// Whether [`Standing::holds`] found the token standing within `within`: between checks,
    /// the socket relies on the announcements it is told of (revocations, party changes) and
    /// on the clock (expiry).
    fn checked_within(&self, within: Duration) -> bool;

    /// Whether `change` may concern this socket.
    fn concerns(&self, change: AccessChange) -> bool;

    /// Counts an operation against the token's rate, if it is within it.
    fn admits_operation(&self) -> Result<(), Limited>;

    /// Records in the access audit whose personal data the socket is about to send; an error
    /// when it cannot be recorded (then it is not sent).
    async fn record_access(&self) -> Result<(), homeward_engine::audit::AuditError>;
}

/// A socket's token as it was when the socket was opened.
pub struct TokenStanding {
    services: Services,
    token: SecretString,
    opened: Authenticated,
    /// When the store last said the token stands (on the server's own monotonic clock).
    last_held: std::sync::Mutex<std::time::Instant>,
    /// The socket's place among its token's sockets, given back with the standing.
    _hold: SocketHold,
    /// The rate its operations count against, with the token's requests over HTTP.
    rate_limits: RateLimits,
    /// What the socket's operations have shown of whom, for the access audit.
    shown: Arc<homeward_engine::audit::AccessRecorder>,
}

impl TokenStanding {
    pub fn new(
        services: Services,
        token: SecretString,
        opened: Authenticated,
        hold: SocketHold,
        rate_limits: RateLimits,
        shown: Arc<homeward_engine::audit::AccessRecorder>,
    ) -> Self {
        Self {
            shown,
            services,
            token,
            opened,
            // The init's own check, just made.
            last_held: std::sync::Mutex::new(std::time::Instant::now()),
            _hold: hold,
            rate_limits,
        }
    }
}

#[async_trait]
impl Standing for TokenStanding {
    async fn holds(&self) -> Result<bool, homeward_store::StoreError> {
        let now = self.services.clock.now();
        let current = tokens::check(
            self.services.reads.as_ref(),
            self.token.expose_secret(),
            now,
        )
        .await?;
        let holds = current.is_some_and(|current| current == self.opened);
        if holds {
            *self
                .last_held
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = std::time::Instant::now();
        }
        Ok(holds)
    }

    fn expired(&self) -> bool {
        self.services.clock.now() >= self.opened.expires_at
    }

    async fn record_access(&self) -> Result<(), homeward_engine::audit::AuditError> {
        let entries = self
            .shown
            .take(self.opened.viewer.party.0, self.services.clock.now());
        let audit = &self.services.audit;
        audit.record(entries, audit.executing()).await
    }

    fn checked_within(&self, within: Duration) -> bool {
        self.last_held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .elapsed()
            < within
    }

    fn concerns(&self, change: AccessChange) -> bool {
        match change {
            AccessChange::Token(token_id) => token_id == self.opened.token_id,
            AccessChange::Party(party) => party == self.opened.viewer.party.0,
            AccessChange::Any => true,
        }
    }

    fn admits_operation(&self) -> Result<(), Limited> {
        self.rate_limits.token(self.opened.token_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_party_streams_name_a_party() {
        let party = Uuid::new_v4();
        let event = |stream_id: String| RecordedEvent {
            global_position: 1,
            tx_id: 1,
            stream_id,
            stream_version: 1,
            event_id: Uuid::new_v4(),
            command_id: Uuid::new_v4(),
            event_type: "PartyUpdated".to_owned(),
            schema_version: 1,
            payload: "{}".to_owned(),
            metadata: homeward_store::Metadata {
                actor: PartyId(party),
                correlation_id: party,
                partner_link: None,
            },
            occurred_at: chrono::Utc::now(),
            recorded_at: chrono::Utc::now(),
        };
        assert_eq!(party_of(&event(format!("party-{party}"))), Some(party));
        assert_eq!(party_of(&event(format!("plan-{party}"))), None);
        assert_eq!(party_of(&event(format!("partyx-{party}"))), None);
        assert_eq!(party_of(&event("party-".to_owned())), None);
    }
}
