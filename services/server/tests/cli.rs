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
        .env(
            "HOMEWARD_MASTER_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .env(
            "HOMEWARD_SEARCH_KEY",
            "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
        )
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

/// `homeward serve` with `env` set, against a database that does not exist: a bad setting must
/// stop it before it tries to connect, with a message naming the setting.
fn serve_refuses(env: &[(&str, &str)]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_homeward"));
    command
        .arg("serve")
        .env(
            "DATABASE_URL",
            "postgres://homeward@127.0.0.1:1/nothing_here",
        )
        .env("HOMEWARD_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn");
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().unwrap();
    assert!(!out.status.success(), "started with {env:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        !stderr.contains("connecting"),
        "checked before connecting: {stderr}"
    );
    stderr
}

#[test]
fn each_bad_setting_stops_start_up_with_a_message_naming_it() {
    let outbox_file =
        std::env::temp_dir().join(format!("homeward-outbox-file-{}", std::process::id()));
    std::fs::write(&outbox_file, b"").unwrap();
    let outbox = outbox_file.join("outbox");
    let cases: [(&[(&str, &str)], &str); 6] = [
        (
            &[("DATABASE_URL", "postgres://homeward:pw@db:port/x")],
            "DATABASE_URL: not a PostgreSQL URL",
        ),
        (
            &[("HOMEWARD_TIME_ZONE", "Paris")],
            "HOMEWARD_TIME_ZONE (--time-zone): \"Paris\" is not an IANA time zone",
        ),
        (
            &[("HOMEWARD_LINK_SECRET", "too-short")],
            "HOMEWARD_LINK_SECRET (--link-secret): the key must be at least 16 characters",
        ),
        (
            &[
                ("HOMEWARD_LINK_SECRET", "a key long enough to sign"),
                ("HOMEWARD_LINK_PREVIOUS_SECRETS", "too-short"),
            ],
            "HOMEWARD_LINK_PREVIOUS_SECRETS (--link-previous-secrets): previous key 1 must be at \
             least 16 characters",
        ),
        (
            &[("HOMEWARD_OUTBOX", outbox.to_str().unwrap())],
            "HOMEWARD_OUTBOX (--outbox): the folder",
        ),
        (
            &[("HOMEWARD_DB_CONNECTIONS", "0")],
            "HOMEWARD_DB_CONNECTIONS (--db-connections): must be 1 to 1000; it is 0",
        ),
    ];
    for (env, expected) in cases {
        let stderr = serve_refuses(env);
        assert!(stderr.contains(expected), "{env:?}: {stderr}");
        for secret in ["pw@", "too-short"] {
            assert!(!stderr.contains(secret), "a secret in {stderr}");
        }
    }
    std::fs::remove_file(&outbox_file).unwrap();
}

#[test]
fn config_prints_every_setting_with_its_source_and_redacts_every_secret() {
    let out = Command::new(env!("CARGO_BIN_EXE_homeward"))
        .arg("config")
        .env(
            "DATABASE_URL",
            "postgres://homeward:db-password@db/homeward",
        )
        .env("SMTP_URL", "smtps://mail:smtp-password@smtp.example:465")
        .env("HOMEWARD_LINK_SECRET", "a-link-secret-long-enough")
        .env("HOMEWARD_TIME_ZONE", "Africa/Lagos")
        .env(
            "HOMEWARD_OUTBOX",
            std::env::temp_dir().join("homeward-config-outbox"),
        )
        .args(["--db-connections", "8"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    for secret in [
        "db-password",
        "smtp-password",
        "a-link-secret",
        "smtp.example",
    ] {
        assert!(!stdout.contains(secret), "{secret} in {stdout}");
        assert!(!stderr.contains(secret), "{secret} in {stderr}");
    }
    for line in [
        "DATABASE_URL=[redacted]",
        "SMTP_URL=[redacted]",
        "HOMEWARD_LINK_SECRET=[redacted]",
        "HOMEWARD_TIME_ZONE=Africa/Lagos  # from the environment",
        "HOMEWARD_DB_CONNECTIONS=8  # from the command line",
        "HOMEWARD_LISTEN=127.0.0.1:8080  # default",
        "HOMEWARD_REMINDER_LEASE_SECS=30  # default",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(line)),
            "no {line:?} in\n{stdout}"
        );
    }
}

#[test]
fn config_checks_the_outbox_without_creating_it() {
    let outbox = std::env::temp_dir()
        .join(format!("homeward-config-{}", std::process::id()))
        .join("outbox");
    let out = Command::new(env!("CARGO_BIN_EXE_homeward"))
        .arg("config")
        .env("DATABASE_URL", "postgres://homeward@db/homeward")
        .env_remove("SMTP_URL")
        .env("HOMEWARD_OUTBOX", &outbox)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !outbox.parent().unwrap().exists(),
        "checking the settings creates nothing"
    );
}
