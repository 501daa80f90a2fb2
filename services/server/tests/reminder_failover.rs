//! A replica killed with SIGKILL in the middle of a batch of reminders: `homeward serve` (the real
//! binary, the system clock) sends to a slow SMTP server, is killed while it holds claims, and a
//! replica started after it sends the rest within a lease of their due time. Each reminder is
//! recorded once; only those the dead replica had in flight may arrive twice, with the same
//! Message-ID.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::Utc;
use homeward_engine::{CommandMeta, FixedClock};
use homeward_tests::smtp::SmtpCatcher;
use homeward_tests::{plan_with_passport, register_party, TestDb};
use homeward_workflows::party::{Party, PartyCommand, PartyRole, ReminderSettingsInput};

const REMINDERS: usize = 40;
const LEASE_SECS: u64 = 3;
/// SMTP connections of each replica: reminders it may have in flight when it dies.
const CONNECTIONS: usize = 2;

/// Kills the replica if the test fails before it does.
struct Replica(Child);

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn replica(db: &TestDb, smtp: &SmtpCatcher) -> Replica {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    Replica(
        Command::new(env!("CARGO_BIN_EXE_homeward"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", &db.url)
            // Both replicas: the key the test's handler sealed with, named (not a key file made
            // in the working folder).
            .env("HOMEWARD_MASTER_KEY", homeward_tests::TEST_MASTER_KEY)
            .env("HOMEWARD_SEARCH_KEY", homeward_tests::TEST_SEARCH_KEY)
            .env("SMTP_URL", smtp.url())
            .env("HOMEWARD_SMTP_CONNECTIONS", CONNECTIONS.to_string())
            .env("HOMEWARD_SMTP_TIMEOUT_SECS", "2")
            .env("HOMEWARD_REMINDER_LEASE_SECS", LEASE_SECS.to_string())
            .env("HOMEWARD_REMINDER_RENEW_SECS", "0.5")
            .env("HOMEWARD_DB_CONNECTIONS", "4")
            .env("HOMEWARD_APPEND_FLUSHES", "1")
            .env("HOMEWARD_PUBLIC_URL", "https://homeward.example")
            .env("RUST_LOG", "warn")
            .env_remove("HOMEWARD_LOG_JSON")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the homeward binary starts"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_batch_has_its_reminders_sent_by_another_within_a_lease() {
    let db = TestDb::new().await;
    let smtp = SmtpCatcher::start().await;
    // Every reminder falls due at `due`, a few seconds from now: each plan's passport reminder
    // three days before it is due, 42 days after the plan opened.
    let due = Utc::now() + chrono::Duration::seconds(3);
    let due = due - chrono::Duration::nanoseconds(i64::from(due.timestamp_subsec_nanos()));
    let clock = Arc::new(FixedClock::new(due - chrono::Duration::days(42)));
    let handler = db.handler(clock);
    let worker = register_party(&handler, PartyRole::SocialWorker, "amina@example.org").await;
    let liaison = register_party(&handler, PartyRole::GovernmentLiaison, "luc@example.org").await;
    handler
        .handle::<Party>(
            &liaison.stream_id(),
            &PartyCommand::SetReminderSettings(ReminderSettingsInput {
                language: "en".into(),
                time_zone: "UTC".into(),
                digest_cron: None,
                // No quiet hours: the test runs at any time of day.
                quiet_hours: Some(("00:00".into(), "00:00".into())),
            }),
            CommandMeta::new(liaison),
        )
        .await
        .unwrap();
    for _ in 0..REMINDERS {
        plan_with_passport(&handler, worker, liaison).await;
    }
    assert_eq!(
        db.count(&format!(
            "SELECT count(*) FROM timers WHERE fire_at = '{}'",
            due.to_rfc3339()
        ))
        .await,
        REMINDERS as i64
    );
    // A slow server: the first replica cannot finish before it is killed.
    smtp.set_delay(Duration::from_millis(100));

    let mut first = replica(&db, &smtp);
    let got = smtp.wait_for(4, Duration::from_secs(30)).await;
    assert!(got.len() >= 4, "the first replica sends");
    let held = db
        .count("SELECT count(*) FROM timers WHERE claimed_by IS NOT NULL")
        .await;
    assert!(held > 0, "it holds claims when it is killed");
    first.0.kill().unwrap(); // SIGKILL
    first.0.wait().unwrap();
    let killed_at = SystemTime::now();
    let _second = replica(&db, &smtp);

    // Every reminder arrives, the last within a lease (and a margin) of its due time.
    let deadline = SystemTime::from(due) + Duration::from_secs(LEASE_SECS + 5);
    let mut recorded = 0;
    while SystemTime::now() < deadline + Duration::from_secs(10) {
        recorded = db
            .count("SELECT count(*) FROM events WHERE event_type = 'reminder_sent'")
            .await;
        if recorded >= REMINDERS as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(recorded, REMINDERS as i64, "one ReminderSent per reminder");
    let got = smtp.messages();
    let mut first_arrival: HashMap<String, (SystemTime, usize)> = HashMap::new();
    for m in &got {
        let entry = first_arrival
            .entry(m.header("Message-ID").unwrap())
            .or_insert((m.received_at, 0));
        entry.0 = entry.0.min(m.received_at);
        entry.1 += 1;
    }
    assert_eq!(first_arrival.len(), REMINDERS, "every reminder arrived");
    let late: Vec<_> = first_arrival
        .values()
        .filter(|(at, _)| *at > deadline)
        .collect();
    assert!(
        late.is_empty(),
        "{} reminders arrived more than {} s after their due time",
        late.len(),
        LEASE_SECS + 5
    );
    let taken_over = first_arrival
        .values()
        .filter(|(at, _)| *at > killed_at)
        .count();
    assert!(taken_over > 0, "the second replica sent the dead one's");
    let twice: Vec<_> = first_arrival.values().filter(|(_, n)| *n > 1).collect();
    assert!(
        twice.iter().all(|(_, n)| *n == 2),
        "no reminder more than twice"
    );
    assert!(
        twice.len() <= CONNECTIONS,
        "only the sends in flight when it died may be repeated: {} were",
        twice.len()
    );
}
