//! Survivors' data is sealed wherever it is stored. Canary strings planted through the API in
//! every personal field never show in the database's bytes (a `pg_dump`), in the logs at
//! `trace`, in any email sent over SMTP or written to the outbox; and they come back, whole,
//! to the people entitled to read them.
//!
//! Its own test binary: it captures every log line of the process.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration as StdDuration;

use chrono::{TimeZone, Utc};
use homeward::app::Settings;
use homeward_tests::api::TestApi;
use homeward_tests::smtp::SmtpCatcher;
use serde_json::{json, Value};

/// Every log line of the process, as formatted for output.
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Logs;

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(|| Logs)
        .with_ansi(false)
        .init();
}

fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

/// A string found nowhere but where it was planted.
fn canary(field: &str) -> String {
    format!("Cnry{field}{}", uuid::Uuid::new_v4().simple())
}

/// The whole database as `pg_dump` writes it: schema, every row, the events' payloads.
fn pg_dump(url: &str) -> String {
    let bin = std::process::Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| format!("{}/pg_dump", String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| "pg_dump".to_owned());
    let out = std::process::Command::new(bin)
        .args(["--no-owner", "--no-privileges", "--dbname", url])
        .output()
        .expect("pg_dump runs");
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump = String::from_utf8(out.stdout).expect("a text dump");
    assert!(dump.contains("COPY public.events"), "the dump has the log");
    dump
}

/// Every file under `dir`, read as text.
fn files_under(dir: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let path = e.path();
            if path.is_dir() {
                files_under(&path)
            } else {
                vec![String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned()]
            }
        })
        .collect()
}

fn leaks<'a>(canaries: &'a [(&'static str, String)], text: &str) -> Vec<&'a str> {
    canaries
        .iter()
        .filter(|(_, c)| text.contains(c.as_str()))
        .map(|(field, _)| *field)
        .collect()
}

#[tokio::test]
async fn personal_data_is_sealed_everywhere_and_gone_for_good_once_erased() {
    capture_logs();
    let smtp = SmtpCatcher::start().await;
    let url = smtp.url();
    let api = TestApi::start_with(move |s| Settings {
        no_scheduler: false,
        smtp_url: Some(url.into()),
        scheduler_max_sleep: StdDuration::from_millis(200).into(),
        ..s
    })
    .await;
    // A second replica whose worker writes to the outbox: reminders go out through both.
    let outbox =
        std::env::temp_dir().join(format!("homeward-canary-outbox-{}", uuid::Uuid::new_v4()));
    let outbox_dir = outbox.clone();
    let _replica = api
        .second_replica_with(move |s| Settings {
            no_scheduler: false,
            outbox_dir,
            scheduler_max_sleep: StdDuration::from_millis(200).into(),
            ..s
        })
        .await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let luc = api
        .party("GOVERNMENT_LIAISON", "Luc Martin", "Prefecture")
        .await;
    let sam = api.party("SUPERVISOR", "Sam", "Safe Passage").await;
    let other = api.party("SUPERVISOR", "Olu", "Other Shelter").await;
    smtp.take_invitations(4);

    let canaries: Vec<(&'static str, String)> = [
        "name",
        "phone",
        "email",
        "address",
        "aim",
        "title",
        "block",
        "remove",
        "cancel",
        "note",
        "correction",
    ]
    .into_iter()
    .map(|f| (f, canary(f)))
    .collect();
    let c = |field: &str| {
        canaries
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, c)| c.clone())
            .unwrap()
    };

    let person = api
        .data(
            &amina.token,
            "mutation($p: PersonInput!) { registerPerson(input: $p) }",
            json!({ "p": {
                "fullName": c("name"),
                "phone": c("phone"),
                "email": format!("{}@example.org", c("email")),
                "address": c("address"),
            } }),
        )
        .await["registerPerson"]
        .clone();
    api.data(
        &amina.token,
        "mutation($p: ID!, $t: String!) { addNote(personId: $p, text: $t) { version } }",
        json!({ "p": person, "t": c("note") }),
    )
    .await;
    api.data(
        &amina.token,
        "mutation($p: ID!, $r: String!) { updatePerson(personId: $p, input: { phone: \"+234 5\" }, reason: $r) { version } }",
        json!({ "p": person, "r": c("correction") }),
    )
    .await;
    let plan = api
        .data(
            &amina.token,
            "mutation($p: ID!) { openPlan(input: { personId: $p, originCountry: \"NG\" }) { plan { id } } }",
            json!({ "p": person }),
        )
        .await["openPlan"]["plan"]["id"]
        .clone();
    let run = |query: &'static str, vars: Value| {
        let api = &api;
        let token = amina.token.clone();
        async move { api.data(&token, query, vars).await }
    };
    run(
        "mutation($id: ID!) { recordConsent(planId: $id, consent: { kind: RETURN }) { version } }",
        json!({ "id": plan }),
    )
    .await;
    run(
        "mutation($id: ID!, $aim: String!) { setGoals(planId: $id, goals: [{ area: HEALTH, aim: $aim }]) { version } }",
        json!({ "id": plan, "aim": c("aim") }),
    )
    .await;
    run(
        "mutation($id: ID!, $title: String!, $luc: ID!) { addStep(planId: $id, step: {
            key: \"counselling\", kind: LEGAL, title: $title, assignee: $luc,
            due: { at: { localDateTime: \"2026-04-20T09:00:00\", timeZone: \"Europe/Paris\" } } }) { version } }",
        json!({ "id": plan, "title": c("title"), "luc": luc.id }),
    )
    .await;
    run(
        "mutation($id: ID!, $r: String!) { blockStep(planId: $id, step: \"passport\", reason: $r) { version } }",
        json!({ "id": plan, "r": c("block") }),
    )
    .await;
    run(
        "mutation($id: ID!, $r: String!) { removeStep(planId: $id, step: \"legal_clearance\", reason: $r) { version } }",
        json!({ "id": plan, "r": c("remove") }),
    )
    .await;
    run(
        "mutation($id: ID!, $r: String!) { cancelStep(planId: $id, step: \"family_mediation\", reason: $r) { version } }",
        json!({ "id": plan, "r": c("cancel") }),
    )
    .await;

    // The custom step's reminders fall due: three days before, and on the day.
    for day in [17, 20] {
        api.clock
            .set(Utc.with_ymd_and_hms(2026, 4, day, 7, 0, 30).unwrap());
        let mut sent = 0;
        for _ in 0..100 {
            sent = smtp.messages().len() + files_under(&outbox).len();
            if sent >= if day == 17 { 1 } else { 2 } {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
        assert!(sent >= 1, "the reminder of 17 April went out");
    }
    let mut mails: Vec<String> = smtp.messages().iter().map(|m| m.data.clone()).collect();
    mails.extend(files_under(&outbox));
    assert!(mails.len() >= 2, "both reminders went out: {}", mails.len());
    // The custom step is named by its kind, in Luc's language.
    assert!(
        mails.iter().all(|m| m.contains("Question juridique")),
        "a custom step is named by its kind: {mails:?}"
    );

    // Those entitled read every value back, whole.
    let read = api
        .data(
            &amina.token,
            "query($id: ID!) { plan(id: $id) {
                person { fullName phone email address }
                goals { aim }
                steps { key title statusReason }
            } }",
            json!({ "id": plan }),
        )
        .await["plan"]
        .clone();
    assert_eq!(read["person"]["fullName"], c("name"));
    assert_eq!(read["person"]["phone"], "+234 5", "corrected");
    assert_eq!(read["person"]["address"], c("address"));
    assert_eq!(read["goals"][0]["aim"], c("aim"));
    let step = |key: &str| {
        read["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .cloned()
            .unwrap()
    };
    assert_eq!(step("counselling")["title"], c("title"));
    assert_eq!(step("passport")["statusReason"], c("block"));
    assert_eq!(step("family_mediation")["statusReason"], c("cancel"));
    let inbox = api
        .data(
            &luc.token,
            "{ tasks(first: 50) { edges { node { key title } } } }",
            json!({}),
        )
        .await;
    assert!(
        inbox.to_string().contains(&c("title")),
        "the assignee's inbox shows the title: {inbox}"
    );
    let history = api
        .data(
            &amina.token,
            "query($id: ID!) { planHistory(id: $id, first: 100) { edges { node { type data } } } }",
            json!({ "id": plan }),
        )
        .await
        .to_string();
    for field in ["aim", "title", "block", "remove", "cancel"] {
        assert!(history.contains(&c(field)), "the history shows the {field}");
    }
    let record = api
        .data(
            &amina.token,
            "query($p: ID!) { personRecord(personId: $p) }",
            json!({ "p": person }),
        )
        .await
        .to_string();
    for field in [
        "name",
        "phone",
        "address",
        "note",
        "correction",
        "aim",
        "title",
    ] {
        assert!(record.contains(&c(field)), "her record shows the {field}");
    }

    // Nowhere else.
    let dump = pg_dump(&api.db.url);
    assert_eq!(
        leaks(&canaries, &dump),
        Vec::<&str>::new(),
        "in the database"
    );
    assert!(dump.contains("hwenc2:"), "sealed values are in the dump");
    assert_eq!(leaks(&canaries, &logs()), Vec::<&str>::new(), "in the logs");
    for mail in &mails {
        assert_eq!(leaks(&canaries, mail), Vec::<&str>::new(), "in an email");
    }
    assert!(logs().len() > 10_000, "the logs were captured");
    assert!(
        !logs().contains("skipping"),
        "a start logs no notice of what the schema already had"
    );

    // Erasure. The second replica reads the plan first: it now knows her key.
    let replica_url = format!("http://{}/graphql", _replica.addr);
    let through_replica = |query: &'static str| {
        let http = api.http.clone();
        let url = replica_url.clone();
        let token = amina.token.clone();
        let plan = plan.clone();
        async move {
            http.post(url)
                .bearer_auth(token)
                .json(&json!({ "query": query, "variables": { "id": plan } }))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    const NAME: &str = "query($id: ID!) { plan(id: $id) { person { fullName } } }";
    assert_eq!(
        through_replica(NAME).await["data"]["plan"]["person"]["fullName"],
        c("name")
    );
    let erase = "mutation($p: ID!, $r: ErasureReason!) { erasePerson(personId: $p, reason: $r) { personId erasedAt } }";
    let request = json!({ "p": person, "r": "SURVIVOR_REQUEST" });
    // Not while her plan is open; not by a social worker; not by another organisation.
    let open = api.gql(&sam.token, erase, request.clone()).await;
    assert_eq!(
        open["errors"][0]["extensions"]["code"], "VALIDATION",
        "{open}"
    );
    assert!(open["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("close them first"));
    run(
        "mutation($id: ID!) { closePlan(planId: $id, reason: OPTED_OUT) { version } }",
        json!({ "id": plan }),
    )
    .await;
    let by_worker = api.gql(&amina.token, erase, request.clone()).await;
    assert_eq!(
        by_worker["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{by_worker}"
    );
    let by_other = api.gql(&other.token, erase, request.clone()).await;
    assert_eq!(
        by_other["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{by_other}"
    );
    let key_kept: bool = sqlx::query_scalar(
        "SELECT wrapped_key IS NOT NULL FROM person_keys WHERE person_id = $1::text::uuid",
    )
    .bind(person.as_str().unwrap())
    .fetch_one(api.db.pool())
    .await
    .unwrap();
    assert!(key_kept, "refused erasures changed nothing");
    let mails_before = smtp.messages().len() + files_under(&outbox).len();
    let erased = api.data(&sam.token, erase, request.clone()).await;
    assert_eq!(erased["erasePerson"]["personId"], person);
    let again = api.gql(&sam.token, erase, request.clone()).await;
    assert_eq!(
        again["errors"][0]["extensions"]["code"], "ERASED",
        "{again}"
    );
    assert!(again["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("already erased"));

    // The other replica, which had her key, reads `[erased]` at its next read.
    assert_eq!(
        through_replica(NAME).await["data"]["plan"]["person"]["fullName"],
        "[erased]"
    );
    // The plan reads from start to end: its facts stay, her data reads `[erased]`.
    let check_after = |when: &'static str| {
        let api = &api;
        let token = amina.token.clone();
        let plan = plan.clone();
        async move {
            let read = api
                .data(
                    &token,
                    "query($id: ID!) { plan(id: $id) { status
                        person { fullName phone address }
                        goals { area aim }
                        steps { key status title statusReason }
                    }
                    planHistory(id: $id, first: 100) { edges { node { type data } } } }",
                    json!({ "id": plan }),
                )
                .await;
            assert_eq!(read["plan"]["status"], "CLOSED", "{when}");
            assert_eq!(read["plan"]["person"]["fullName"], "[erased]", "{when}");
            assert_eq!(read["plan"]["person"]["address"], "[erased]", "{when}");
            assert_eq!(read["plan"]["goals"][0]["area"], "HEALTH", "{when}");
            assert_eq!(read["plan"]["goals"][0]["aim"], "[erased]", "{when}");
            let steps = read["plan"]["steps"].as_array().unwrap();
            let counselling = steps.iter().find(|s| s["key"] == "counselling").unwrap();
            assert_eq!(counselling["title"], "[erased]", "{when}");
            let passport = steps.iter().find(|s| s["key"] == "passport").unwrap();
            assert_eq!(
                passport["title"], "Obtain a passport or laissez-passer",
                "{when}"
            );
            let history = read["planHistory"]["edges"].as_array().unwrap();
            assert!(history.len() > 10, "{when}: the whole history reads");
            assert_eq!(history[0]["node"]["type"], "plan_opened", "{when}");
            assert!(
                history.iter().any(|e| e["node"]["type"] == "step_blocked"
                    && e["node"]["data"]["reason"] == "[erased]"),
                "{when}: {history:?}"
            );
            read.to_string()
        }
    };
    let read = check_after("after erasure").await;
    assert_eq!(
        leaks(&canaries, &read),
        Vec::<&str>::new(),
        "in what the API shows"
    );
    let dump = pg_dump(&api.db.url);
    assert_eq!(
        leaks(&canaries, &dump),
        Vec::<&str>::new(),
        "in the database after erasure"
    );
    let key_kept: bool = sqlx::query_scalar(
        "SELECT wrapped_key IS NOT NULL FROM person_keys WHERE person_id = $1::text::uuid",
    )
    .bind(person.as_str().unwrap())
    .fetch_one(api.db.pool())
    .await
    .unwrap();
    assert!(!key_kept, "her key is destroyed");
    // A rebuild of the read models brings nothing back.
    homeward_store_postgres::rebuild(api.db.pool())
        .await
        .unwrap();
    check_after("after a rebuild").await;
    let dump = pg_dump(&api.db.url);
    assert_eq!(
        leaks(&canaries, &dump),
        Vec::<&str>::new(),
        "in the database after a rebuild"
    );
    // Nothing more is sent about her.
    api.clock
        .set(Utc.with_ymd_and_hms(2026, 6, 1, 7, 0, 30).unwrap());
    tokio::time::sleep(StdDuration::from_secs(1)).await;
    assert_eq!(
        smtp.messages().len() + files_under(&outbox).len(),
        mails_before,
        "no email after the erasure"
    );
    assert_eq!(
        leaks(&canaries, &logs()),
        Vec::<&str>::new(),
        "in the logs at the end"
    );
}
