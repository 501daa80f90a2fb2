//! Crash safety: the `append-loop` test binary is killed with SIGKILL while it appends. Every command it
//! acknowledged must be in the log, each stream's versions must run 1..n without a gap, every
//! command's events must be all there or not at all, and the read models written with the events
//! must equal a rebuild from the log.
#![cfg(unix)]
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use homeward_store::Append;
use homeward_store_postgres::rebuild;
use homeward_tests::TestDb;
use uuid::Uuid;

/// Acknowledgements to read before the kill.
const ACKS_BEFORE_KILL: usize = 300;
/// The writer's connections carry this name, so the test can wait for their backends to end.
const WRITER_APP_NAME: &str = "homeward_crash_writer";
const SIGKILL: i32 = 9;

/// Kills the writer if the test fails before it does.
struct Writer(Child);

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads `ack <uuid>` lines into `acks` until `until` of them are there or stdout ends. A line
/// cut short by the kill does not parse and is not an acknowledgement.
fn read_acks(
    mut lines: std::io::Lines<BufReader<ChildStdout>>,
    mut acks: Vec<Uuid>,
    until: usize,
) -> (std::io::Lines<BufReader<ChildStdout>>, Vec<Uuid>) {
    while acks.len() < until {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(id) = line
            .strip_prefix("ack ")
            .and_then(|id| Uuid::parse_str(id.trim()).ok())
        {
            acks.push(id);
        }
    }
    (lines, acks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_killed_mid_stream_loses_no_acknowledged_command_and_leaves_a_consistent_log() {
    let db = TestDb::with_pool_size(4).await;
    // The test database's URL, with a name on the writer's connections.
    let separator = if db.url.contains('?') { '&' } else { '?' };
    let writer_url = format!("{}{separator}application_name={WRITER_APP_NAME}", db.url);
    let acks = kill_mid_stream(&writer_url).await;

    // A statement the server was running when the client died may still commit: wait until the
    // writer's backends are gone before reading anything.
    let mut backends = i64::MAX;
    for _ in 0..200 {
        backends = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND datname = $2",
        )
        .bind(WRITER_APP_NAME)
        .bind(&db.name)
        .fetch_one(db.pool())
        .await
        .unwrap();
        if backends == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(backends, 0, "the killed writer's backends did not end");

    let rows: Vec<(String, i64, Uuid, Uuid)> = sqlx::query_as(
        "SELECT stream_id, stream_version, event_id, command_id FROM events \
         ORDER BY stream_id, stream_version",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();

    every_acknowledged_command_whole(&rows, &acks);

    // The read models written with the events are what a rebuild from the log gives.
    let before = db.projection_snapshot().await;
    rebuild(db.pool()).await.unwrap();
    let after = db.projection_snapshot().await;
    assert_eq!(before, after, "the read models differ from a rebuild");
    let plans: i64 = db.count("SELECT count(*) FROM plan_view").await;
    assert_eq!(plans, 8);
}

/// Every acknowledged command is in the log whole, and each stream's versions run 1..n: `rows`
/// are the log's (stream, version, event id, command id), in stream and version order.
fn every_acknowledged_command_whole(rows: &[(String, i64, Uuid, Uuid)], acks: &[Uuid]) {
    // Every acknowledged command is in the log, found by the id of its first event.
    let first_event_ids: HashSet<Uuid> = rows
        .iter()
        .filter(|(_, _, event_id, command_id)| *event_id == Append::event_id(*command_id, 0))
        .map(|(_, _, event_id, _)| *event_id)
        .collect();
    let lost: Vec<&Uuid> = acks
        .iter()
        .filter(|c| !first_event_ids.contains(&Append::event_id(**c, 0)))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged commands are not in the log: {lost:?}",
        lost.len(),
        acks.len()
    );

    // Each stream's versions run 1..n.
    let mut versions: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (stream, version, _, _) in rows {
        versions.entry(stream.as_str()).or_default().push(*version);
    }
    assert_eq!(versions.len(), 8, "eight plans: {:?}", versions.keys());
    for (stream, versions) in &versions {
        let expected: Vec<i64> = (1..=versions.len() as i64).collect();
        assert_eq!(versions, &expected, "versions of {stream}");
    }

    // A command's events are all there or none: consecutive versions of one stream, with the
    // ids derived from the command id in order.
    let mut by_command: BTreeMap<Uuid, Vec<(&str, i64, Uuid)>> = BTreeMap::new();
    for (stream, version, event_id, command_id) in rows {
        by_command
            .entry(*command_id)
            .or_default()
            .push((stream.as_str(), *version, *event_id));
    }
    for (command_id, events) in &by_command {
        let (stream, first, _) = events[0];
        for (i, (s, version, event_id)) in events.iter().enumerate() {
            assert_eq!(*s, stream, "command {command_id} wrote to two streams");
            assert_eq!(*version, first + i as i64, "command {command_id}: a gap");
            assert_eq!(
                *event_id,
                Append::event_id(*command_id, i),
                "command {command_id}: event {i} is missing or out of order"
            );
        }
    }
}

/// Runs the append-loop writer on `url` until it has acknowledged [`ACKS_BEFORE_KILL`]
/// commands, kills it with SIGKILL mid-stream, and returns every command it acknowledged.
async fn kill_mid_stream(url: &str) -> Vec<Uuid> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_append-loop"))
        .args(["--plans", "8"])
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .env_remove("HOMEWARD_LOG_JSON")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the append-loop test binary starts");
    let stdout = child.stdout.take().unwrap();
    let mut writer = Writer(child);

    let reading = tokio::task::spawn_blocking(move || {
        read_acks(BufReader::new(stdout).lines(), Vec::new(), ACKS_BEFORE_KILL)
    });
    let (lines, acks) = match tokio::time::timeout(Duration::from_secs(180), reading).await {
        Ok(read) => read.unwrap(),
        Err(_) => {
            // Ends the blocked reader too: the pipe closes with the process.
            let _ = writer.0.kill();
            panic!("no {ACKS_BEFORE_KILL} acknowledgements within 180 s");
        }
    };
    assert_eq!(
        acks.len(),
        ACKS_BEFORE_KILL,
        "the writer stopped by itself (status {:?})",
        writer.0.try_wait()
    );

    // Still appending when killed: it has not exited, and SIGKILL is what ends it.
    assert!(
        writer.0.try_wait().unwrap().is_none(),
        "the writer exited before the kill"
    );
    writer.0.kill().unwrap();
    let status = writer.0.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(SIGKILL),
        "the writer was killed mid-stream"
    );
    // Acknowledgements already in the pipe count too.
    let (_, acks) = tokio::task::spawn_blocking(move || read_acks(lines, acks, usize::MAX))
        .await
        .unwrap();
    acks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_on_sqlite_killed_mid_stream_loses_no_acknowledged_command() {
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("homeward.db");
    let acks = kill_mid_stream(&format!("sqlite://{}", file.display())).await;

    // The process is gone, and with it every lock: opening the file recovers what it committed.
    let store = homeward_store_sqlite::SqliteStore::open(&file, 2)
        .await
        .unwrap();
    // A killed process loses nothing the operating system holds: what makes a commit survive a
    // lost machine too is WAL with synchronous=FULL, which the store writes with.
    assert_eq!(
        store.durability().await.unwrap(),
        ("wal".to_owned(), 2, true)
    );
    let rows: Vec<(String, i64, Uuid, Uuid)> = sqlx::query_as(
        "SELECT stream_id, stream_version, event_id, command_id FROM events \
         ORDER BY stream_id, stream_version",
    )
    .fetch_all(
        &sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display()))
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    every_acknowledged_command_whole(&rows, &acks);

    let before = homeward_tests::sqlite_projection_snapshot(&file).await;
    homeward_store::Backend::rebuild_projections(&store)
        .await
        .unwrap();
    let after = homeward_tests::sqlite_projection_snapshot(&file).await;
    assert_eq!(before, after, "the read models differ from a rebuild");
    assert_eq!(before["plan_view"].as_array().map(Vec::len), Some(8));
}
