//! The access audit: every operation that shows a survivor's personal data records, per person,
//! who read it, when, which fields and through what, committed before the response leaves.
//!
//! An [`AccessRecorder`] belongs to one request (or one socket): the edge notes each value it
//! opens. Before the response is sent the server takes its entries and hands them to the
//! [`AuditWriter`], which writes the entries of all the requests waiting at that moment in one
//! transaction (group commit, as appends are; one batch at a time) and answers each; a response
//! whose entries could not be written is not sent.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use homeward_store::access_log::{AccessEntry, AccessLog};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// What one request has shown of whom.
#[derive(Debug, Default)]
pub struct AccessRecorder {
    read: Mutex<BTreeMap<Uuid, Reading>>,
}

#[derive(Debug, Default)]
struct Reading {
    fields: BTreeSet<String>,
    operations: BTreeSet<String>,
}

impl AccessRecorder {
    /// Notes that `field` of `person` was shown through `operation`.
    pub fn note(&self, person: Uuid, field: &str, operation: &str) {
        let mut read = self.read.lock().expect("the recorder is never poisoned");
        let reading = read.entry(person).or_default();
        if !reading.fields.contains(field) {
            reading.fields.insert(field.to_owned());
        }
        if !reading.operations.contains(operation) {
            reading.operations.insert(operation.to_owned());
        }
    }

    /// The entries noted since the last take, one per person, as read by `party` at `at`.
    pub fn take(&self, party: Uuid, at: DateTime<Utc>) -> Vec<AccessEntry> {
        let read = std::mem::take(&mut *self.read.lock().expect("the recorder is never poisoned"));
        read.into_iter()
            .map(|(person, reading)| AccessEntry {
                at,
                party,
                person,
                fields: reading.fields.into_iter().collect(),
                operation: reading.operations.into_iter().collect::<Vec<_>>().join(","),
            })
            .collect()
    }
}

#[derive(Debug, Error)]
#[error("the access to personal data could not be recorded: {0}")]
pub struct AuditError(String);

type Pending = (Vec<AccessEntry>, oneshot::Sender<Result<(), String>>);

/// The time a batch waits for others' entries after its first, unless set otherwise
/// (`HOMEWARD_AUDIT_GATHER_MS`); see [`AuditWriter::spawn`].
pub const DEFAULT_GATHER: Duration = Duration::from_millis(1);

/// Writes the audit's entries in batches: one transaction for all the requests waiting, one
/// transaction at a time (two at once measured no faster: BENCHMARKS.md, "Sealing survivors'
/// data").
#[derive(Debug, Clone)]
pub struct AuditWriter {
    /// `None` only in the benchmark's baseline ([`AuditWriter::discarding`]).
    sender: Option<mpsc::UnboundedSender<Pending>>,
}

impl AuditWriter {
    /// A writer to `log`, with its task.
    ///
    /// A batch waits `gather` after its first entries for others to join it. Batches are
    /// otherwise as large as the requests that came during the last commit, which at a few
    /// thousand reads a second is about one: a commit per read, which cost the API's reads of
    /// personal data 5–11% of their rate from 32 clients up. Waiting a millisecond made it
    /// 4–7%, and gained nothing with 16, where the cores then stand idle at times
    /// (BENCHMARKS.md, "Sealing survivors' data"); an answer waits that much longer.
    pub fn spawn(log: Arc<dyn AccessLog>, gather: Duration) -> Self {
        let (sender, mut receiver) = mpsc::unbounded_channel::<Pending>();
        tokio::spawn(async move {
            while let Some(first) = receiver.recv().await {
                let mut batch = vec![first];
                if !gather.is_zero() {
                    let until = tokio::time::Instant::now() + gather;
                    while let Ok(Some(more)) = tokio::time::timeout_at(until, receiver.recv()).await
                    {
                        batch.push(more);
                    }
                }
                // Everything that came while the last batch was committed goes now.
                while let Ok(more) = receiver.try_recv() {
                    batch.push(more);
                }
                let entries: Vec<AccessEntry> =
                    batch.iter().flat_map(|(e, _)| e.iter().cloned()).collect();
                let result = log.record_access(&entries).await.map_err(|e| e.to_string());
                metrics::counter!("homeward_access_audit_entries_total")
                    .increment(entries.len() as u64);
                for (_, answer) in batch {
                    let _ = answer.send(result.clone());
                }
            }
        });
        Self {
            sender: Some(sender),
        }
    }

    /// A writer that drops every entry: the baseline `homeward-bench` measures the audit
    /// against, and nothing else. The server makes one only when its settings say so in code
    /// (`Settings::audit_each_answer`), which no flag or variable can.
    pub fn discarding() -> Self {
        Self { sender: None }
    }

    /// Records `entries`; returns once they are committed.
    pub async fn record(&self, entries: Vec<AccessEntry>) -> Result<(), AuditError> {
        let Some(sender) = &self.sender else {
            return Ok(());
        };
        if entries.is_empty() {
            return Ok(());
        }
        let (answer, answered) = oneshot::channel();
        sender
            .send((entries, answer))
            .map_err(|_| AuditError("the audit writer stopped".into()))?;
        match answered.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "the access audit could not be written");
                Err(AuditError(e))
            }
            Err(_) => Err(AuditError("the audit writer stopped".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log that takes a while to commit and notes how many commits ran at once.
    #[derive(Default)]
    struct SlowLog {
        running: std::sync::atomic::AtomicUsize,
        most_at_once: std::sync::atomic::AtomicUsize,
        committed: Mutex<Vec<Vec<AccessEntry>>>,
    }

    #[async_trait::async_trait]
    impl AccessLog for SlowLog {
        async fn record_access(
            &self,
            entries: &[AccessEntry],
        ) -> Result<(), homeward_store::StoreError> {
            use std::sync::atomic::Ordering::SeqCst;
            let now = self.running.fetch_add(1, SeqCst) + 1;
            self.most_at_once.fetch_max(now, SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            self.committed.lock().unwrap().push(entries.to_vec());
            self.running.fetch_sub(1, SeqCst);
            Ok(())
        }

        async fn access_log(
            &self,
            _: Uuid,
            _: homeward_store::reads::Page,
        ) -> Result<Vec<AccessEntry>, homeward_store::StoreError> {
            Ok(Vec::new())
        }
    }

    /// A read of person `n`'s name, `after_ms` from now, whose answer checks that its entry was
    /// kept before it came.
    fn read_after(
        writer: &AuditWriter,
        log: &Arc<SlowLog>,
        n: u128,
        after_ms: u64,
    ) -> tokio::task::JoinHandle<()> {
        let (writer, log) = (writer.clone(), log.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(after_ms)).await;
            let person = Uuid::from_u128(n);
            let entry = AccessEntry {
                at: Utc::now(),
                party: Uuid::from_u128(1000),
                person,
                fields: vec!["full_name".into()],
                operation: "person".into(),
            };
            writer.record(vec![entry]).await.unwrap();
            let kept = log.committed.lock().unwrap().concat();
            assert!(
                kept.iter().any(|e| e.person == person),
                "answered once kept"
            );
        })
    }

    /// Requests that come while a batch commits go together in the next one, and each answer
    /// comes only once its own entries are kept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_arriving_during_a_commit_go_in_the_next_batch_and_each_waits_for_its_own() {
        let log = Arc::new(SlowLog::default());
        let writer = AuditWriter::spawn(log.clone(), Duration::ZERO);
        let reads = (0..40u128).map(|n| read_after(&writer, &log, n, n as u64));
        for read in futures::future::join_all(reads.collect::<Vec<_>>()).await {
            read.unwrap();
        }
        let mut kept: Vec<u128> = log
            .committed
            .lock()
            .unwrap()
            .concat()
            .iter()
            .map(|e| e.person.as_u128())
            .collect();
        kept.sort_unstable();
        assert_eq!(kept, (0..40).collect::<Vec<_>>(), "each entry kept once");
        let batches = log.committed.lock().unwrap().len();
        assert!(batches < 40, "entries were batched: {batches} commits");
        let most = log.most_at_once.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(most, 1, "one batch at a time");
    }

    /// An entry that comes within the gathering window after a batch's first goes in the
    /// same batch (one commit for both); one that comes after the window goes in the next; and
    /// no answer comes before its own entries are kept.
    #[tokio::test(start_paused = true)]
    async fn entries_within_the_gathering_window_share_a_batch() {
        let log = Arc::new(SlowLog::default());
        let writer = AuditWriter::spawn(log.clone(), Duration::from_millis(5));
        let read = |n: u128, after_ms: u64| read_after(&writer, &log, n, after_ms);
        // The first at 0 ms and the second at 3 ms, within the first's 5 ms; the third at
        // 6 ms, past them, while the first batch commits (20 ms).
        let reads = [read(1, 0), read(2, 3), read(3, 6)];
        for read in futures::future::join_all(reads).await {
            read.unwrap();
        }
        let batches: Vec<Vec<u128>> = log
            .committed
            .lock()
            .unwrap()
            .iter()
            .map(|batch| batch.iter().map(|e| e.person.as_u128()).collect())
            .collect();
        assert_eq!(batches, [vec![1, 2], vec![3]]);
    }

    #[test]
    fn one_entry_per_person_with_every_field_and_operation_once() {
        let recorder = AccessRecorder::default();
        let (joy, ada) = (Uuid::from_u128(1), Uuid::from_u128(2));
        recorder.note(joy, "full_name", "plan");
        recorder.note(joy, "contact.phone", "plan");
        recorder.note(joy, "full_name", "plans");
        recorder.note(ada, "step.title", "tasks");
        let at = Utc::now();
        let party = Uuid::from_u128(9);
        let entries = recorder.take(party, at);
        assert_eq!(
            entries,
            [
                AccessEntry {
                    at,
                    party,
                    person: joy,
                    fields: vec!["contact.phone".into(), "full_name".into()],
                    operation: "plan,plans".into(),
                },
                AccessEntry {
                    at,
                    party,
                    person: ada,
                    fields: vec!["step.title".into()],
                    operation: "tasks".into(),
                },
            ]
        );
        assert!(recorder.take(party, at).is_empty(), "taken once");
    }
}
