//! The binary on its embedded default, as a newcomer meets it: no `DATABASE_URL`, no PostgreSQL
//! on `PATH`, a fresh folder. It keeps its data in `data/homeward.db` across restarts, refuses a
//! second server on the same file, and stops with a clear message, touching nothing, on a file
//! that is not a database, a folder it cannot write, or a database a newer version wrote.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The binary, run in `folder` with nothing from the environment but an empty `PATH` (no
/// PostgreSQL, no tools) and the keys tests use.
fn homeward(folder: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_homeward"));
    let empty = folder.join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    command
        .current_dir(folder)
        .env_clear()
        .env("PATH", &empty)
        .env("RUST_LOG", "warn");
    command
}

/// A server that is stopped (SIGTERM, then waited for) when dropped.
struct Server {
    child: Child,
    url: String,
    stdout: Vec<String>,
}

impl Server {
    /// Starts `homeward serve` in `folder` on a free port, and waits until it is ready.
    fn start(folder: &Path) -> Self {
        Self::start_command(folder, "serve")
    }

    /// Starts `homeward <command>` (`serve` or `demo`) in `folder` on a free port, and waits
    /// until it is ready.
    fn start_command(folder: &Path, command: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = homeward(folder)
            .args([command, "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Everything it prints before it serves (the first admin's token, on a new database).
        let (lines, printed) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the server stopped at start: {status}");
            }
            if ping(port) {
                break;
            }
            assert!(Instant::now() < deadline, "the server did not get ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(100));
        let stdout = printed.try_iter().collect();
        Self { child, url, stdout }
    }

    fn printed(&self, prefix: &str) -> Option<String> {
        self.stdout
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .map(|v| v.trim().to_owned())
    }

    async fn gql(&self, token: &str, query: &str, variables: Value) -> Value {
        let body: Value = reqwest::Client::new()
            .post(format!("{}/graphql", self.url))
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(body.get("errors").is_none(), "{query}: {body:#}");
        body["data"].clone()
    }

    fn stop(mut self) {
        stop(&mut self.child);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether the port answers HTTP's `/readyz` with 200.
fn ping(port: u16) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

fn run(folder: &Path, args: &[&str]) -> Output {
    homeward(folder).args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_folder_serves_from_sqlite_without_postgresql_and_keeps_every_plan() {
    let folder = tempfile::tempdir().unwrap();
    let server = Server::start(folder.path());
    let admin = server
        .printed("admin token:")
        .expect("a new database prints its first admin's token");
    assert!(admin.starts_with("hw_"), "{admin}");
    assert!(folder.path().join("data/homeward.db").is_file());
    // The master key is kept apart from the data folder, so a copy of one is not the other.
    assert!(folder.path().join("keys/master.key").is_file());
    assert!(!folder.path().join("data/keys").exists());

    // A second server on the same file is refused, and the first goes on serving.
    let second = run(folder.path(), &["serve", "--listen", "127.0.0.1:0"]);
    assert!(!second.status.success());
    assert!(
        stderr(&second).contains("another Homeward server is using data/homeward.db"),
        "{}",
        stderr(&second)
    );

    // The admin registers an organisation and a social worker; the operator gives her a token
    // with the command line, beside the running server.
    let organisation = server
        .gql(
            &admin,
            "mutation { registerOrganisation(input: { name: \"Safe Passage\", kind: PROGRAMME, \
             country: \"FR\" }) { id } }",
            json!({}),
        )
        .await["registerOrganisation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let worker = server
        .gql(
            &admin,
            "mutation($input: PartyInput!) { registerParty(input: $input) { id } }",
            json!({ "input": {
                "displayName": "Amina Diallo", "email": "amina@safe-passage.example",
                "role": "SOCIAL_WORKER", "organisation": organisation, "country": "FR",
                "language": "fr", "timeZone": "Europe/Paris",
            }}),
        )
        .await["registerParty"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let created = run(
        folder.path(),
        &[
            "token",
            "create",
            "--party",
            &worker,
            "--role",
            "social_worker",
        ],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let out = String::from_utf8(created.stdout).unwrap();
    let token = out
        .lines()
        .find_map(|l| l.strip_prefix("token:"))
        .unwrap()
        .trim()
        .to_owned();
    let person = server
        .gql(
            &token,
            "mutation { registerPerson(input: { fullName: \"Grace Okafor\" }) }",
            json!({}),
        )
        .await["registerPerson"]
        .clone();
    let plan = server
        .gql(
            &token,
            "mutation($p: ID!) { openPlan(input: { personId: $p, originCountry: \"NG\" }) \
             { plan { id } } }",
            json!({ "p": person }),
        )
        .await["openPlan"]["plan"]["id"]
        .clone();
    // A copy made while it serves holds the plan, and opens as a database.
    let backup = run(folder.path(), &["backup", "backups/monday.db"]);
    assert!(backup.status.success(), "{}", stderr(&backup));
    let copy = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        folder.path().join("backups/monday.db").display()
    ))
    .await
    .unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&copy)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    let plan_events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE stream_id = 'plan-' || ?")
            .bind(plan.as_str().unwrap())
            .fetch_one(&copy)
            .await
            .unwrap();
    assert!(plan_events >= 1, "the copy holds the plan's events");
    let again = run(folder.path(), &["backup", "backups/monday.db"]);
    assert!(!again.status.success(), "a backup never overwrites a file");
    server.stop();

    // After a restart: the same plan, the same token, and no second admin.
    let again = Server::start(folder.path());
    assert_eq!(again.printed("admin token:"), None, "{:?}", again.stdout);
    let read = again
        .gql(
            &token,
            "query($id: ID!) { plan(id: $id) { id status person { fullName } } }",
            json!({ "id": plan }),
        )
        .await;
    assert_eq!(read["plan"]["id"], plan);
    assert_eq!(read["plan"]["status"], "DRAFT");
    assert_eq!(read["plan"]["person"]["fullName"], "Grace Okafor");
    again.stop();
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_left_as_it_was() {
    let folder = tempfile::tempdir().unwrap();
    std::fs::create_dir(folder.path().join("data")).unwrap();
    let file = folder.path().join("data/homeward.db");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &garbage).unwrap();
    let out = run(folder.path(), &["serve", "--listen", "127.0.0.1:0"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot open data/homeward.db as a SQLite database"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&file).unwrap(), garbage);
}

#[test]
fn a_data_folder_that_cannot_be_written_is_refused() {
    let folder = tempfile::tempdir().unwrap();
    // A file where the folder should be: not writable as a folder, even for root.
    std::fs::write(folder.path().join("data"), b"not a folder").unwrap();
    let out = run(folder.path(), &["serve", "--listen", "127.0.0.1:0"]);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(
        message.contains("DATABASE_URL: the folder data") && message.contains("not a folder"),
        "{message}"
    );
    assert_eq!(
        std::fs::read(folder.path().join("data")).unwrap(),
        b"not a folder"
    );
}

#[tokio::test]
async fn a_database_written_by_a_newer_version_is_refused_and_left_as_it_was() {
    let folder = tempfile::tempdir().unwrap();
    let migrated = run(folder.path(), &["migrate"]);
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    let file = folder.path().join("data/homeward.db");
    let url = format!("sqlite://{}", file.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (29991231000001, 'from the future', 1, x'00', 1)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let tables = |pool: sqlx::SqlitePool| async move {
        sqlx::query_scalar::<_, String>(
            "SELECT group_concat(name) FROM (SELECT name FROM sqlite_master ORDER BY name)",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let before = tables(pool.clone()).await;
    pool.close().await;

    let out = run(folder.path(), &["serve", "--listen", "127.0.0.1:0"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("written by a newer version of Homeward"),
        "{}",
        stderr(&out)
    );
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    assert_eq!(tables(pool.clone()).await, before);
    let parties: i64 = sqlx::query_scalar("SELECT count(*) FROM party_view")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(parties, 0, "no admin was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_gives_every_role_something_to_do() {
    let folder = tempfile::tempdir().unwrap();
    let demo = Server::start_command(folder.path(), "demo");
    let token = |role: &str, name: &str| {
        demo.stdout
            .iter()
            .find_map(|l| {
                let mut words = l.split_whitespace();
                (words.next() == Some(role) && l.contains(name))
                    .then(|| l.split_whitespace().last().unwrap().to_owned())
            })
            .unwrap_or_else(|| panic!("no token for {role} {name} in {:?}", demo.stdout))
    };
    let tasks = "query($overdue: Boolean) { tasks(first: 100, filter: { overdue: $overdue }) \
                 { edges { node { key plan { id } } } } }";
    let count = |data: &Value, list: &str| data[list]["edges"].as_array().unwrap().len();
    for (role, name) in [
        ("social_worker", "Amina"),
        ("social_worker", "Julien"),
        ("government_liaison", "Marc"),
        ("partner_contact", "Ngozi"),
        ("partner_contact", "Lucía"),
    ] {
        let inbox = demo.gql(&token(role, name), tasks, json!({})).await;
        assert!(count(&inbox, "tasks") > 0, "{name}'s inbox is empty");
    }
    // Some steps are late: the liaison's passports of the oldest plan waiting for documents.
    let late = demo
        .gql(
            &token("government_liaison", "Marc"),
            tasks,
            json!({ "overdue": true }),
        )
        .await;
    assert!(count(&late, "tasks") > 0, "no step is overdue: {late}");
    // The supervisor sees the whole programme, at every stage.
    let plans = demo
        .gql(
            &token("supervisor", "Claire"),
            "{ plans(first: 100) { edges { node { status } } } }",
            json!({}),
        )
        .await;
    let statuses: std::collections::BTreeSet<&str> = plans["plans"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(count(&plans, "plans"), 12);
    for status in ["DRAFT", "ACTIVE", "TRAVELLING", "MONITORING", "CLOSED"] {
        assert!(statuses.contains(status), "no {status} plan: {statuses:?}");
    }
    let parties = demo
        .gql(
            &token("admin", "Administrator"),
            "{ parties(first: 100) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(count(&parties, "parties"), 7);
    demo.stop();

    // A demo into a database with data refuses, and changes nothing.
    let again = run(folder.path(), &["demo", "--listen", "127.0.0.1:0"]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("empty SQLite database"),
        "{}",
        stderr(&again)
    );
}
