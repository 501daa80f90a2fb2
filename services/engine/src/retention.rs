//! The retention rule: a survivor's data is kept for as long as her organisation says after her
//! last plan closes (five years unless it sets otherwise), then erased, as a supervisor would
//! erase it, by the scheduler.
//!
//! Never a survivor with a plan not yet closed (a draft too), and never one on legal hold. A
//! survivor with no plan, or only drafts, is not erased by the rule: she is listed for a
//! supervisor to decide ([`ReadModels::persons_to_review`]). Every replica may sweep; two that
//! erase the same person at once send the same command id, and the second finds it done.

use std::sync::Arc;
use std::time::Duration;

use homeward_store::reads::ReadModels;
use homeward_store::{EventStore, StoreError};
use homeward_workflows::person::ErasureReason;
use homeward_workflows::PersonId;
use uuid::Uuid;

use crate::erasure::{erase_person, ErasureError};
use crate::scheduler::SCHEDULER;
use crate::vault::Vault;
use crate::{Clock, CommandHandler, CommandMeta};

/// How often a replica looks for survivors whose retention has ended, unless set otherwise.
pub const DEFAULT_SWEEP_EVERY: Duration = Duration::from_secs(3600);
/// Survivors looked at per query.
const BATCH: i64 = 100;

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    pub erased: usize,
    /// Found due but not erased: a hold placed, a plan opened or another replica's erasure
    /// since the query (each says why in the log).
    pub skipped: usize,
}

#[derive(Clone)]
pub struct RetentionSweeper {
    handler: CommandHandler<dyn EventStore>,
    reads: Arc<dyn ReadModels>,
    vault: Arc<Vault>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for RetentionSweeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetentionSweeper").finish_non_exhaustive()
    }
}

impl RetentionSweeper {
    pub fn new(
        handler: CommandHandler<dyn EventStore>,
        reads: Arc<dyn ReadModels>,
        vault: Arc<Vault>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            handler,
            reads,
            vault,
            clock,
        }
    }

    /// Erases every survivor whose retention has ended now.
    pub async fn run_once(&self) -> Result<Swept, StoreError> {
        let mut swept = Swept::default();
        let mut seen = std::collections::HashSet::new();
        loop {
            let due = self.reads.retention_ended(self.clock.now(), BATCH).await?;
            let fresh: Vec<Uuid> = due.into_iter().filter(|p| seen.insert(*p)).collect();
            if fresh.is_empty() {
                break;
            }
            for person in fresh {
                // The same command id from every replica: an erasure is recorded once.
                let meta = CommandMeta::new(SCHEDULER)
                    .with_command_id(Uuid::new_v5(&person, b"retention ended"));
                match erase_person(
                    &self.handler,
                    &self.reads,
                    &self.vault,
                    None,
                    PersonId(person),
                    ErasureReason::RetentionEnded,
                    meta,
                )
                .await
                {
                    Ok(_) => swept.erased += 1,
                    Err(ErasureError::Store(e)) => return Err(e),
                    Err(e) => {
                        tracing::info!(person = %person, reason = %e, "retention: not erased");
                        swept.skipped += 1;
                    }
                }
            }
        }
        if swept.erased > 0 {
            metrics::counter!("homeward_retention_erasures_total").increment(swept.erased as u64);
        }
        Ok(swept)
    }

    /// Sweeps every `every` until `stop`.
    pub async fn run_until_stopped(
        self,
        every: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            match self.run_once().await {
                Ok(swept) if swept.erased > 0 || swept.skipped > 0 => tracing::info!(
                    erased = swept.erased,
                    skipped = swept.skipped,
                    "retention sweep"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "retention sweep failed; trying again later"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                break;
            }
        }
    }
}
