//! Mail delivery through the real adapters: pooled SMTP to a real SMTP server on a random port,
//! and the file outbox.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::Duration;

use homeward_engine::mail::{FileOutbox, MailError, Mailer, OutgoingMail, SmtpMailer};
use homeward_tests::smtp::SmtpCatcher;

const FROM: &str = "Homeward <reminders@homeward.example>";

fn mail(n: usize, calendar: bool) -> OutgoingMail {
    OutgoingMail {
        to_name: "Grace Okafor".into(),
        to_address: "grace@hope-lagos.example".into(),
        subject: format!("Reminder {n}: follow-up visit"),
        text: format!("Visit number {n} is due."),
        html: format!("<p>Visit number {n} is due.</p>"),
        message_id: format!("timer-{n}@homeward"),
        calendar: calendar.then(|| {
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:timer-1@homeward\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n".to_owned()
        }),
    }
}

#[tokio::test]
async fn pooled_smtp_delivers_each_message_once() {
    let catcher = SmtpCatcher::start().await;
    let mailer = SmtpMailer::from_url(&catcher.url(), FROM, 4).unwrap();
    let sends: Vec<_> = (0..40)
        .map(|n| {
            let mailer = mailer.clone();
            tokio::spawn(async move { mailer.send(&mail(n, n == 7)).await })
        })
        .collect();
    for s in sends {
        s.await.unwrap().unwrap();
    }
    let got = catcher.wait_for(40, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 40);
    let ids: HashSet<String> = got
        .iter()
        .map(|m| m.header("Message-ID").unwrap())
        .collect();
    assert_eq!(ids.len(), 40, "each message once");
    assert!(ids.contains("<timer-7@homeward>"));
    let seventh = got
        .iter()
        .find(|m| m.header("Message-ID").unwrap() == "<timer-7@homeward>")
        .unwrap();
    assert_eq!(seventh.to, ["<grace@hope-lagos.example>"]);
    assert_eq!(
        seventh.header("Subject").unwrap(),
        "Reminder 7: follow-up visit"
    );
    assert!(seventh
        .header("Content-Type")
        .unwrap()
        .starts_with("multipart/mixed"));
    assert!(seventh.data.contains("multipart/alternative"));
    assert!(seventh.data.contains("text/plain"));
    assert!(seventh.data.contains("text/html"));
    assert!(seventh.data.contains("text/calendar"));
    assert!(seventh.data.contains("invite.ics"));
    let plain = got
        .iter()
        .find(|m| m.header("Message-ID").unwrap() == "<timer-3@homeward>")
        .unwrap();
    assert!(plain
        .header("Content-Type")
        .unwrap()
        .starts_with("multipart/alternative"));
    assert!(!plain.data.contains("text/calendar"));
}

#[tokio::test]
async fn a_server_that_is_down_is_a_transient_failure_and_recovers() {
    let catcher = SmtpCatcher::start().await;
    let mailer = SmtpMailer::from_url(&catcher.url(), FROM, 2).unwrap();
    catcher.set_down(true);
    let failed = mailer.send(&mail(1, false)).await;
    assert!(matches!(failed, Err(MailError::Transient(_))), "{failed:?}");
    assert!(catcher.messages().is_empty());
    catcher.set_down(false);
    mailer.send(&mail(1, false)).await.unwrap();
    assert_eq!(catcher.wait_for(1, Duration::from_secs(5)).await.len(), 1);
}

#[tokio::test]
async fn the_file_outbox_keeps_each_message_once() {
    let dir = std::env::temp_dir().join(format!("homeward-outbox-{}", uuid::Uuid::new_v4()));
    let outbox = FileOutbox::new(&dir, FROM).unwrap();
    outbox.send(&mail(1, true)).await.unwrap();
    outbox.send(&mail(1, true)).await.unwrap(); // sent again after a failure
    outbox.send(&mail(2, false)).await.unwrap();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["timer-1_homeward.eml", "timer-2_homeward.eml"]);
    let first = std::fs::read_to_string(dir.join("timer-1_homeward.eml")).unwrap();
    assert!(first.contains("Message-ID: <timer-1@homeward>"));
    assert!(first.contains("Subject: Reminder 1: follow-up visit"));
    assert!(first.contains("BEGIN:VCALENDAR") || first.contains("text/calendar"));

    // Readable by their owner only.
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("timer-1_homeward.eml")), 0o600);

    // A message older than the outbox keeps them is forgotten; a newer one stays.
    let month = Duration::from_secs(30 * 24 * 3600);
    std::fs::File::options()
        .write(true)
        .open(dir.join("timer-1_homeward.eml"))
        .unwrap()
        .set_modified(std::time::SystemTime::now() - month - Duration::from_secs(60))
        .unwrap();
    assert_eq!(outbox.forget_older_than(month).await.unwrap(), 1);
    assert!(!dir.join("timer-1_homeward.eml").exists());
    assert!(dir.join("timer-2_homeward.eml").exists());
    assert_eq!(outbox.forget_older_than(month).await.unwrap(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn bad_mail_settings_are_clear_errors() {
    for url in ["http://mail.example", "smtp://", "not a url"] {
        let made = SmtpMailer::from_url(url, FROM, 1);
        assert!(matches!(made, Err(MailError::Config(_))), "{url}: {made:?}");
    }
    assert!(matches!(
        SmtpMailer::from_url("smtp://127.0.0.1:25", "not an address", 1),
        Err(MailError::Config(_))
    ));
}
