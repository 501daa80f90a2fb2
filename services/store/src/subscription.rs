//! Following the global stream: catch up from a checkpoint, then wait for more.
//!
//! A backend's wake-up ([`WakeUp`]: `LISTEN/NOTIFY` on PostgreSQL) is only a hint; the reader
//! also polls, so a lost wake-up delays it by at most the poll interval and never loses an
//! event. What it delivers is exactly what `read_all` returns, in commit order.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::model::{Cursor, RecordedEvent};
use crate::{EventStore, StoreError};

const PAGE: i64 = 500;

/// What tells a follower, sooner than its poll, that events may have been appended.
#[async_trait]
pub trait WakeUp: Send + std::fmt::Debug {
    /// Returns when something may have been appended (or the hint failed: the follower then
    /// polls).
    async fn wait(&mut self) -> Result<(), StoreError>;
}

/// The global stream from a cursor, in commit order, as it grows.
pub struct Subscription {
    store: Arc<dyn EventStore>,
    wake: Option<Box<dyn WakeUp>>,
    cursor: Cursor,
    buffer: VecDeque<RecordedEvent>,
    poll_interval: Duration,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("cursor", &self.cursor)
            .field("wake", &self.wake)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// Follows `store` from `from`, woken by `wake` if the backend has one.
    pub fn new(store: Arc<dyn EventStore>, wake: Option<Box<dyn WakeUp>>, from: Cursor) -> Self {
        Self {
            store,
            wake,
            cursor: from,
            buffer: VecDeque::new(),
            poll_interval: Duration::from_millis(250),
        }
    }

    /// How often to look for new events when no notification arrives.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The position after the last event handed out: store it to resume later.
    pub fn cursor(&self) -> Cursor {
        self.cursor
    }

    /// The next event in commit order, waiting for one if the reader has caught up.
    pub async fn next(&mut self) -> Result<RecordedEvent, StoreError> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                self.cursor = event.cursor();
                return Ok(event);
            }
            let page = self.store.read_all(self.cursor, PAGE).await?;
            if !page.is_empty() {
                self.buffer.extend(page);
                continue;
            }
            self.wait().await;
        }
    }

    async fn wait(&mut self) {
        let Some(wake) = self.wake.as_mut() else {
            tokio::time::sleep(self.poll_interval).await;
            return;
        };
        tokio::select! {
            woken = wake.wait() => {
                if let Err(e) = woken {
                    // Polling carries on.
                    tracing::debug!(error = %e, "wake-up failed");
                    tokio::time::sleep(self.poll_interval).await;
                }
            }
            _ = tokio::time::sleep(self.poll_interval) => {}
        }
    }
}
