//! Following the global stream: catch up from a checkpoint, then wait for more.
//!
//! `LISTEN/NOTIFY` is only a wake-up hint (appends send it coalesced, after commit); the reader
//! also polls, so a lost notification delays it by at most the poll interval and never loses an
//! event. What it delivers is exactly what `read_all` returns, in commit order.

use std::collections::VecDeque;
use std::time::Duration;

use sqlx::postgres::PgListener;

use crate::model::{Cursor, RecordedEvent};
use crate::postgres::{PgStore, NOTIFY_CHANNEL};
use crate::{EventStore, StoreError};

const PAGE: i64 = 500;

#[derive(Debug)]
pub struct Subscription {
    store: PgStore,
    listener: Option<PgListener>,
    cursor: Cursor,
    buffer: VecDeque<RecordedEvent>,
    poll_interval: Duration,
}

impl Subscription {
    pub(crate) async fn start(store: PgStore, from: Cursor) -> Result<Self, StoreError> {
        let mut listener = PgListener::connect_with(store.pool()).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        Ok(Self {
            store,
            listener: Some(listener),
            cursor: from,
            buffer: VecDeque::new(),
            poll_interval: Duration::from_millis(250),
        })
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
        let Some(listener) = self.listener.as_mut() else {
            tokio::time::sleep(self.poll_interval).await;
            return;
        };
        tokio::select! {
            received = listener.recv() => {
                if let Err(e) = received {
                    // Polling carries on; the listener reconnects on its next recv.
                    tracing::debug!(error = %e, "notification listener failed");
                    tokio::time::sleep(self.poll_interval).await;
                }
            }
            _ = tokio::time::sleep(self.poll_interval) => {}
        }
    }
}
