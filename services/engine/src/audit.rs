//! The access audit: every operation that shows a survivor's personal data records, per person,
//! who read it, when, which fields and through what, committed before the response leaves.
//!
//! An [`AccessRecorder`] belongs to one request (or one socket): the edge notes each value it
//! opens. Before the response is sent the server takes its entries and hands them to the
//! [`AuditWriter`], which writes the entries of all the requests waiting at that moment in one
//! transaction (group commit, as appends are; one batch at a time) and answers each; a response
//! whose entries could not be written is not sent.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use homeward_store::access_log::{AccessEntry, AccessLog};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, Notify};
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
    executing: Arc<InExecution>,
}

/// How many requests are executing that may still hand entries over, and a signal when none is.
#[derive(Debug, Default)]
struct InExecution {
    count: AtomicUsize,
    none: Notify,
}

/// A request in execution, counted from when it starts until it hands its entries over
/// ([`AuditWriter::record`]) or ends: a batch waits for others' entries only while some request
/// may still bring them.
#[derive(Debug)]
#[must_use = "a request counts as executing only while this is held"]
pub struct Executing(Arc<InExecution>);

impl Drop for Executing {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.none.notify_one();
        }
    }
}

impl AuditWriter {
    /// A writer to `log`, with its task.
    ///
    /// A batch waits for others' entries after its first, for at most `gather`, and only while
    /// some request counted as [`executing`](AuditWriter::executing) has not handed its
    /// entries over. Batches are otherwise as large as the requests that came during the last
    /// commit, which at a few thousand reads a second is about one: a commit per read, which
    /// cost the API's reads of personal data 5–11% of their rate from 32 clients up. Waiting a
    /// millisecond made it 4–7%, and gained nothing with 16, where the cores then stood idle
    /// while every request waited out the window (BENCHMARKS.md, "Sealing survivors' data");
    /// a reader alone waits for no one.
    pub fn spawn(log: Arc<dyn AccessLog>, gather: Duration) -> Self {
        let (sender, mut receiver) = mpsc::unbounded_channel::<Pending>();
        let executing = Arc::<InExecution>::default();
        let in_execution = executing.clone();
        tokio::spawn(async move {
            while let Some(first) = receiver.recv().await {
                let mut batch = vec![first];
                if !gather.is_zero() {
                    let until = tokio::time::Instant::now() + gather;
                    loop {
                        while let Ok(more) = receiver.try_recv() {
                            batch.push(more);
                        }
                        // Entries are sent before their request stops counting, so once none
                        // counts, every entry to come from a request that was executing is
                        // already in the channel (the last drain below takes it).
                        if in_execution.count.load(Ordering::SeqCst) == 0 {
                            break;
                        }
                        tokio::select! {
                            more = receiver.recv() => match more {
                                Some(more) => batch.push(more),
                                None => break,
                            },
                            () = in_execution.none.notified() => {}
                            () = tokio::time::sleep_until(until) => break,
                        }
                    }
                }
                // Everything that came while the last batch was committed goes now.
                while let Ok(more) = receiver.try_recv() {
                    batch.push(more);
                }
                let entries: Vec<AccessEntry> =
                    batch.iter().flat_map(|(e, _)| e.iter().cloned()).collect();
                let committing = std::time::Instant::now();
                let result = log.record_access(&entries).await.map_err(|e| e.to_string());
                metrics::histogram!("homeward_access_audit_commit_seconds")
                    .record(committing.elapsed().as_secs_f64());
                metrics::histogram!("homeward_access_audit_batch_size").record(batch.len() as f64);
                if result.is_ok() {
                    metrics::counter!("homeward_access_audit_entries_total")
                        .increment(entries.len() as u64);
                }
                for (_, answer) in batch {
                    let _ = answer.send(result.clone());
                }
            }
        });
        Self {
            sender: Some(sender),
            executing,
        }
    }

    /// A writer that drops every entry: the baseline `homeward-bench` measures the audit
    /// against, and nothing else. The server makes one only when its settings say so in code
    /// (`Settings::audit_each_answer`), which no flag or variable can.
    pub fn discarding() -> Self {
        Self {
            sender: None,
            executing: Arc::default(),
        }
    }

    /// Counts a request as executing until the guard is given to [`AuditWriter::record`] or
    /// dropped. Taken when a request starts, so that a batch open meanwhile waits for its
    /// entries (within the window).
    pub fn executing(&self) -> Executing {
        self.executing.count.fetch_add(1, Ordering::SeqCst);
        Executing(self.executing.clone())
    }

    /// Records `entries` of the request counted by `executing`, which then no longer counts;
    /// returns once they are committed.
    pub async fn record(
        &self,
        entries: Vec<AccessEntry>,
        executing: Executing,
    ) -> Result<(), AuditError> {
        let Some(sender) = &self.sender else {
            return Ok(());
        };
        if entries.is_empty() {
            return Ok(());
        }
        let (answer, answered) = oneshot::channel();
        let sent = sender
            .send((entries, answer))
            .map_err(|_| AuditError("the audit writer stopped".into()));
        // Handed over (the writer sees the entries before it sees the count fall).
        drop(executing);
        sent?;
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
        /// When each commit began.
        began: Mutex<Vec<tokio::time::Instant>>,
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
            self.began.lock().unwrap().push(tokio::time::Instant::now());
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

    /// A read of person `n`'s name: executing from `executing_ms` from now, handing its entry
    /// over at `records_ms`; its answer checks that its entry was kept before it came.
    fn read(
        writer: &AuditWriter,
        log: &Arc<SlowLog>,
        n: u128,
        executing_ms: u64,
        records_ms: u64,
    ) -> tokio::task::JoinHandle<()> {
        let (writer, log) = (writer.clone(), log.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(executing_ms)).await;
            let executing = writer.executing();
            tokio::time::sleep(Duration::from_millis(records_ms - executing_ms)).await;
            let person = Uuid::from_u128(n);
            let entry = AccessEntry {
                at: Utc::now(),
                party: Uuid::from_u128(1000),
                person,
                fields: vec!["full_name".into()],
                operation: "person".into(),
            };
            writer.record(vec![entry], executing).await.unwrap();
            let kept = log.committed.lock().unwrap().concat();
            assert!(
                kept.iter().any(|e| e.person == person),
                "answered once kept"
            );
        })
    }

    /// A read of person `n`'s name, executing from now and handing its entry over `after_ms`
    /// from now.
    fn read_after(
        writer: &AuditWriter,
        log: &Arc<SlowLog>,
        n: u128,
        after_ms: u64,
    ) -> tokio::task::JoinHandle<()> {
        read(writer, log, n, 0, after_ms)
    }

    /// The persons of each batch committed, in order.
    fn batches(log: &SlowLog) -> Vec<Vec<u128>> {
        log.committed
            .lock()
            .unwrap()
            .iter()
            .map(|batch| batch.iter().map(|e| e.person.as_u128()).collect())
            .collect()
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
        assert_eq!(batches(&log), [vec![1, 2], vec![3]]);
    }

    /// A batch waits for others' entries only while another request is executing: it goes as
    /// soon as the last request executing has handed its entries over, not at the end of the
    /// window; and at once when no other request is executing (a lone reader waits for no one).
    #[tokio::test(start_paused = true)]
    async fn a_batch_waits_only_while_another_request_is_executing() {
        let log = Arc::new(SlowLog::default());
        let writer = AuditWriter::spawn(log.clone(), Duration::from_millis(5));
        let start = tokio::time::Instant::now();
        // 1 and 2 execute from the start and hand over at 0 and 2 ms; 3 starts executing at
        // 3 ms, after the first batch left, and hands over at once, while that batch commits.
        let reads = [
            read(&writer, &log, 1, 0, 0),
            read(&writer, &log, 2, 0, 2),
            read(&writer, &log, 3, 3, 3),
        ];
        for read in futures::future::join_all(reads).await {
            read.unwrap();
        }
        assert_eq!(batches(&log), [vec![1, 2], vec![3]]);
        let began: Vec<u128> = log
            .began
            .lock()
            .unwrap()
            .iter()
            .map(|at| (*at - start).as_millis())
            .collect();
        // The first batch at 2 ms, when 2 handed over (not at 5); the second as soon as the
        // first was committed (22 ms), since nothing else was executing.
        assert_eq!(began, [2, 22]);
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
