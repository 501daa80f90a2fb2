//! The token commands as an operator runs them: `homeward bootstrap`, `token create`, `token
//! revoke`, and `homeward serve` stopping on SIGTERM; each checked against the database and the
//! running API.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use homeward_tests::TestDb;

fn homeward(db: &TestDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_homeward"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn line<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?} in {out}"))
        .trim()
}

#[tokio::test]
async fn bootstrap_then_tokens_from_the_command_line() {
    let db = TestDb::new().await;
    let first = homeward(&db, &["bootstrap", "--email", "ops@homeward.example"]);
    assert!(first.status.success(), "{first:?}");
    let out = String::from_utf8(first.stdout).unwrap();
    let admin = line(&out, "admin party:").to_owned();
    let token = line(&out, "token:").to_owned();
    assert!(token.starts_with("hw_"));
    // Only the hash is stored.
    let stored: i64 = db
        .count(&format!(
            "SELECT count(*) FROM api_tokens WHERE token_hash = sha256('{token}'::bytea)"
        ))
        .await;
    assert_eq!(stored, 1);
    assert_eq!(
        db.count(&format!(
            "SELECT count(*) FROM api_tokens WHERE encode(token_hash, 'escape') LIKE '%{token}%'"
        ))
        .await,
        0
    );

    // A second bootstrap refuses: the database has parties.
    let again = homeward(&db, &["bootstrap", "--email", "someone@else.example"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already has parties"));
    assert_eq!(db.count("SELECT count(*) FROM party_view").await, 1);

    // A token must carry the party's own role; unknown roles and parties are refused.
    let wrong_role = homeward(
        &db,
        &[
            "token",
            "create",
            "--party",
            &admin,
            "--role",
            "social_worker",
        ],
    );
    assert!(!wrong_role.status.success());
    assert!(String::from_utf8_lossy(&wrong_role.stderr).contains("registered as admin"));
    let unknown_role = homeward(
        &db,
        &["token", "create", "--party", &admin, "--role", "boss"],
    );
    assert!(!unknown_role.status.success());
    let unknown_party = homeward(
        &db,
        &[
            "token",
            "create",
            "--party",
            "00000000-0000-4000-8000-000000000000",
            "--role",
            "admin",
        ],
    );
    assert!(!unknown_party.status.success());
    assert_eq!(db.count("SELECT count(*) FROM api_tokens").await, 1);

    let created = homeward(
        &db,
        &[
            "token", "create", "--party", &admin, "--role", "admin", "--days", "7",
        ],
    );
    assert!(created.status.success(), "{created:?}");
    let out = String::from_utf8(created.stdout).unwrap();
    let token_id = line(&out, "token id:").to_owned();
    let revoked = homeward(&db, &["token", "revoke", &token_id]);
    assert!(revoked.status.success(), "{revoked:?}");
    assert_eq!(
        db.count(&format!("SELECT count(*) FROM api_tokens WHERE token_id = '{token_id}' AND revoked_at IS NOT NULL")).await,
        1
    );
    let twice = homeward(&db, &["token", "revoke", &token_id]);
    assert!(!twice.status.success());
}

#[tokio::test]
async fn serve_answers_and_stops_on_sigterm() {
    let db = TestDb::new().await;
    let out = homeward(&db, &["bootstrap", "--email", "ops@homeward.example"]);
    let token = line(&String::from_utf8(out.stdout).unwrap(), "token:").to_owned();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut server = Command::new(env!("CARGO_BIN_EXE_homeward"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--outbox")
        .arg(std::env::temp_dir().join(format!("homeward-outbox-{port}")))
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/graphql");
    let mut answered = None;
    for _ in 0..100 {
        let sent = client
            .post(&url)
            .bearer_auth(&token)
            .json(&serde_json::json!({ "query": "{ me { role } }" }))
            .send()
            .await;
        if let Ok(response) = sent {
            answered = Some(response.json::<serde_json::Value>().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answered.unwrap()["data"]["me"]["role"], "ADMIN");
    let pid = server.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let mut exited = None;
    for _ in 0..100 {
        if let Some(status) = server.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = exited.unwrap_or_else(|| {
        let _ = server.kill();
        panic!("homeward serve did not stop within 10 s of SIGTERM")
    });
    assert!(status.success(), "exit status {status:?}");
}
