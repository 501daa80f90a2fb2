//! Live events for subscriptions: one follower of the global stream per process, fanned out to
//! every subscriber, who keeps what concerns them.

use std::sync::Arc;

use homeward_store::{RecordedEvent, Subscription};
use tokio::sync::broadcast;

/// How many events a slow subscriber may fall behind before its subscription ends (it is told
/// to subscribe again rather than silently miss events).
const BACKLOG: usize = 4096;

#[derive(Debug, Clone)]
pub struct EventHub {
    sender: broadcast::Sender<Arc<RecordedEvent>>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self::new()
    }
}

impl EventHub {
    /// A hub that nothing feeds yet (see [`EventHub::follow`]).
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(BACKLOG);
        Self { sender }
    }

    /// Feeds the hub from a subscription to the global stream until it fails or the process
    /// stops. Returns the task, so that the server can stop it.
    pub fn follow(&self, mut subscription: Subscription) -> tokio::task::JoinHandle<()> {
        let sender = self.sender.clone();
        tokio::spawn(async move {
            loop {
                match subscription.next().await {
                    // No subscribers is fine: the event is simply not needed.
                    Ok(event) => {
                        // From the commit to the hub, which hands it to every subscriber.
                        let lag = (chrono::Utc::now() - event.recorded_at)
                            .num_microseconds()
                            .map_or(0.0, |us| us.max(0) as f64 / 1e6);
                        metrics::histogram!("homeward_subscription_lag_seconds").record(lag);
                        let _ = sender.send(Arc::new(event));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "event feed for subscriptions failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<RecordedEvent>> {
        self.sender.subscribe()
    }
}
