//! Shared helpers for Homeward's end-to-end tests: a fresh PostgreSQL database per test, and a
//! few builders for the people and plans the tests act on.
//!
//! The database server comes from `DATABASE_URL` (the test command starts a throwaway cluster
//! and sets it); each [`TestDb`] creates its own database on it and applies the migrations.
#![forbid(unsafe_code)]

pub mod api;
pub mod browser;
pub mod smtp;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use homeward_engine::{CommandHandler, CommandMeta, FixedClock};
use homeward_store_postgres::PgStore;
use homeward_workflows::party::{PartyCommand, PartyDetails, PartyRole};
use homeward_workflows::plan::{PlanCommand, StepKind};
use homeward_workflows::text::CountryCode;
use homeward_workflows::{template, OrganisationId, PartyId, PersonId, PlanId, StepKey};
use sqlx::{Connection, Executor, PgConnection};

/// Where tests find PostgreSQL when `DATABASE_URL` is not set: the machine's local server.
const FALLBACK_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database of its own for one test.
/// The master key tests seal survivors' data under, unless a test names another.
pub const TEST_MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// The search index's key every test server starts with (named, so that no key file is made in
/// the working folder).
pub const TEST_SEARCH_KEY: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    pub name: String,
    pub store: Arc<PgStore>,
    /// The SQLite database a test server runs on instead, when the tests run on SQLite (see
    /// [`TestDb::for_server`]).
    pub sqlite: Option<TestSqlite>,
}

/// The backend test servers run on: `HOMEWARD_TEST_BACKEND=sqlite` puts them on a SQLite file
/// of their own (the test command runs the tests that are not about PostgreSQL so too).
pub fn servers_on_sqlite() -> bool {
    std::env::var("HOMEWARD_TEST_BACKEND").is_ok_and(|b| b == "sqlite")
}

/// A SQLite database of its own for one test, in a folder removed when it is dropped.
#[derive(Debug)]
pub struct TestSqlite {
    pub store: Arc<homeward_store_sqlite::SqliteStore>,
    pub folder: tempfile::TempDir,
}

impl TestSqlite {
    pub async fn new() -> Self {
        use homeward_store::Backend as _;
        let folder = tempfile::tempdir().expect("a temporary folder");
        let store = homeward_store_sqlite::SqliteStore::open(&folder.path().join("homeward.db"), 4)
            .await
            .expect("open the test database");
        store.migrate().await.expect("migrations apply");
        Self {
            store: Arc::new(store),
            folder,
        }
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.folder.path().join("homeward.db")
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.reader().await)
            .await
            .expect("count query runs")
    }

    /// A connection of the test's own that reads the file (what the server committed).
    async fn reader(&self) -> sqlx::SqlitePool {
        sqlx::SqlitePool::connect(&format!("sqlite://{}", self.path().display()))
            .await
            .expect("open the test database")
    }

    /// Every row of the read models, as JSON in a fixed order (as [`TestDb::projection_snapshot`]).
    pub async fn projection_snapshot(&self) -> serde_json::Value {
        sqlite_projection_snapshot(&self.path()).await
    }
}

/// Every row of the read models of the SQLite database at `path`, as JSON in a fixed order.
pub async fn sqlite_projection_snapshot(path: &std::path::Path) -> serde_json::Value {
    {
        use sqlx::{Column as _, Row as _, TypeInfo as _, ValueRef as _};
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("open the test database");
        let mut out = serde_json::Map::new();
        for (table, order) in SNAPSHOT_TABLES {
            let rows = sqlx::query(&format!("SELECT * FROM {table} ORDER BY {order}"))
                .fetch_all(&pool)
                .await
                .expect("snapshot query runs");
            let rows: Vec<serde_json::Value> = rows
                .iter()
                .map(|row| {
                    let mut object = serde_json::Map::new();
                    for (i, column) in row.columns().iter().enumerate() {
                        let raw = row.try_get_raw(i).expect("a column");
                        let value = if raw.is_null() {
                            serde_json::Value::Null
                        } else {
                            match raw.type_info().name() {
                                "INTEGER" => row.get::<i64, _>(i).into(),
                                "REAL" => row.get::<f64, _>(i).into(),
                                "BLOB" => format!("{:02x?}", row.get::<Vec<u8>, _>(i)).into(),
                                _ => row.get::<String, _>(i).into(),
                            }
                        };
                        object.insert(column.name().to_owned(), value);
                    }
                    serde_json::Value::Object(object)
                })
                .collect();
            let rows = if rows.is_empty() {
                serde_json::Value::Null
            } else {
                rows.into()
            };
            out.insert(table.to_owned(), rows);
        }
        pool.close().await;
        serde_json::Value::Object(out)
    }
}

/// The read models a snapshot holds, each in a fixed order.
const SNAPSHOT_TABLES: [(&str, &str); 5] = [
    ("plan_view", "plan_id"),
    ("step_view", "plan_id, step_key"),
    ("party_view", "party_id"),
    ("timers", "timer_id"),
    ("digests", "party_id"),
];

impl TestDb {
    pub async fn new() -> Self {
        Self::with_pool_size(20).await
    }

    pub async fn with_pool_size(max_connections: u32) -> Self {
        let server = std::env::var("DATABASE_URL").unwrap_or_else(|_| FALLBACK_URL.to_owned());
        let name = format!("hw_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&server)
            .await
            .expect("connect to the PostgreSQL in DATABASE_URL (the test command starts one)");
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create the test database");
        admin.close().await.ok();
        let url = homeward_store_postgres::with_database(&server, &name);
        let pool = homeward_store_postgres::pool_options(max_connections)
            .connect(&url)
            .await
            .expect("connect to the test database");
        let store = PgStore::from_pool(pool);
        store.migrate().await.expect("migrations apply");
        Self {
            url,
            name,
            store: Arc::new(store),
            sqlite: None,
        }
    }

    /// The database for a test server: PostgreSQL, or a SQLite file when
    /// [`servers_on_sqlite`].
    pub async fn for_server() -> Self {
        let mut db = Self::new().await;
        if servers_on_sqlite() {
            db.sqlite = Some(TestSqlite::new().await);
        }
        db
    }

    /// The `DATABASE_URL` a server on this database is started with.
    pub fn server_url(&self) -> String {
        match &self.sqlite {
            Some(sqlite) => format!("sqlite://{}", sqlite.path().display()),
            None => self.url.clone(),
        }
    }

    pub fn pool(&self) -> &sqlx::PgPool {
        self.store.pool()
    }

    /// Ends, as a restart or a network failure would, the connections to this database whose
    /// last statement was like `statement` (an `ILIKE` pattern; `%` is every one), waits until
    /// they are gone, and says how many there were. It runs on a connection of its own: the
    /// store's pool may hand out one it ended.
    pub async fn end_connections_that_ran(&self, statement: &str) -> i64 {
        let mut own = <sqlx::PgConnection as sqlx::Connection>::connect(&self.url)
            .await
            .expect("a connection to end the others from");
        let those = "FROM pg_stat_activity WHERE datname = current_database() \
                     AND pid <> pg_backend_pid() AND query ILIKE $1";
        let ended: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) {those}) AS t"
        ))
        .bind(statement)
        .fetch_one(&mut own)
        .await
        .expect("connections can be ended");
        for _ in 0..100 {
            let left: i64 = sqlx::query_scalar(&format!("SELECT count(*) {those}"))
                .bind(statement)
                .fetch_one(&mut own)
                .await
                .expect("connections can be counted");
            if left == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        ended
    }

    /// A command handler on this database with a clock the test controls, sealing survivors'
    /// data under [`TEST_MASTER_KEY`].
    pub fn handler(&self, clock: Arc<FixedClock>) -> CommandHandler<PgStore> {
        CommandHandler::new(self.store.clone(), clock).with_vault(self.vault())
    }

    /// The vault of this database under [`TEST_MASTER_KEY`].
    pub fn vault(&self) -> Arc<homeward_engine::vault::Vault> {
        let master = homeward_engine::keys::MasterKey::from_base64(TEST_MASTER_KEY)
            .expect("the test master key is valid");
        Arc::new(homeward_engine::vault::Vault::new(
            master,
            self.store.clone(),
        ))
    }

    /// A personal value as stored (sealed), opened: panics when it is stored in the clear or
    /// does not open, so a test reading the database checks the sealing too.
    pub async fn opened(&self, stored: &str, stream: &str, field: &str) -> String {
        assert!(
            stored.starts_with(homeward_workflows::personal::SEALED_PREFIX),
            "{stream} {field} is stored in the clear: {stored}"
        );
        self.server_vault()
            .open_text(stored, stream, field)
            .await
            .expect("a sealed value opens")
            .text()
    }

    /// The store the test server runs on, through the port (SQLite or PostgreSQL).
    pub fn backend(&self) -> Arc<dyn homeward_store::Backend> {
        match &self.sqlite {
            Some(sqlite) => sqlite.store.clone(),
            None => self.store.clone(),
        }
    }

    /// The vault of the database the test server runs on, under [`TEST_MASTER_KEY`].
    pub fn server_vault(&self) -> Arc<homeward_engine::vault::Vault> {
        let master = homeward_engine::keys::MasterKey::from_base64(TEST_MASTER_KEY)
            .expect("the test master key is valid");
        Arc::new(homeward_engine::vault::Vault::new(master, self.backend()))
    }

    /// Every event of `event_type` in the log the test server writes, in the order written, as
    /// (payload, metadata) JSON.
    pub async fn events_of_type(
        &self,
        event_type: &str,
    ) -> Vec<(serde_json::Value, serde_json::Value)> {
        let rows: Vec<(String, String)> = match &self.sqlite {
            Some(sqlite) => sqlx::query_as(
                "SELECT payload, metadata FROM events WHERE event_type = ? \
                 ORDER BY global_position",
            )
            .bind(event_type)
            .fetch_all(&sqlite.reader().await)
            .await
            .expect("the log reads"),
            None => sqlx::query_as(
                "SELECT payload::text, metadata::text FROM events WHERE event_type = $1 \
                 ORDER BY global_position",
            )
            .bind(event_type)
            .fetch_all(self.pool())
            .await
            .expect("the log reads"),
        };
        rows.iter()
            .map(|(payload, metadata)| {
                (
                    serde_json::from_str(payload).expect("a payload is JSON"),
                    serde_json::from_str(metadata).expect("metadata is JSON"),
                )
            })
            .collect()
    }

    /// Runs one statement on whichever database the test server runs on: the rows it changed,
    /// or the database's refusal.
    pub async fn execute(&self, sql: &str) -> Result<u64, String> {
        match &self.sqlite {
            Some(sqlite) => sqlx::query(sql)
                .execute(&sqlite.reader().await)
                .await
                .map(|done| done.rows_affected())
                .map_err(|e| e.to_string()),
            None => sqlx::query(sql)
                .execute(self.pool())
                .await
                .map(|done| done.rows_affected())
                .map_err(|e| e.to_string()),
        }
    }

    /// A count, on whichever database the test server runs on.
    pub async fn count(&self, sql: &str) -> i64 {
        match &self.sqlite {
            Some(sqlite) => sqlite.count(sql).await,
            None => sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(self.pool())
                .await
                .expect("count query runs"),
        }
    }

    /// Every row of the read models, as JSON in a fixed order: compare before and after a rebuild.
    pub async fn projection_snapshot(&self) -> serde_json::Value {
        if let Some(sqlite) = &self.sqlite {
            return sqlite.projection_snapshot().await;
        }
        let mut out = serde_json::Map::new();
        for (table, order) in SNAPSHOT_TABLES {
            let rows: Option<serde_json::Value> = sqlx::query_scalar(&format!(
                "SELECT jsonb_agg(to_jsonb(t) ORDER BY {order}) FROM {table} t"
            ))
            .fetch_one(self.pool())
            .await
            .expect("snapshot query runs");
            out.insert(table.to_owned(), rows.unwrap_or(serde_json::Value::Null));
        }
        serde_json::Value::Object(out)
    }
}

/// 1 March 2026, 09:00 UTC: the day the example plans open.
pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0)
        .single()
        .expect("a valid instant")
}

pub fn key(s: &str) -> StepKey {
    StepKey::parse(s).expect("a valid step key")
}

/// Registers a party and returns its id.
pub async fn register_party(
    handler: &CommandHandler<PgStore>,
    role: PartyRole,
    email: &str,
) -> PartyId {
    let id = PartyId::new();
    let details = party_details(role, email);
    handler
        .handle::<homeward_workflows::party::Party>(
            &id.stream_id(),
            &PartyCommand::Register {
                party_id: id,
                details,
            },
            CommandMeta::new(id),
        )
        .await
        .expect("register a party");
    id
}

/// The organisation of the plans and parties the tests write to the log directly.
pub const SAFE_PASSAGE: OrganisationId = OrganisationId(uuid::Uuid::from_u128(0x5afe));

/// The command that opens a plan from the standard template.
pub fn open_standard_plan(plan_id: PlanId, case_worker: PartyId) -> PlanCommand {
    PlanCommand::OpenPlan {
        plan_id,
        person: PersonId::new(),
        template: Box::new(template::find("standard-avr", 1).expect("the standard template")),
        case_worker,
        organisation: SAFE_PASSAGE,
        origin_country: CountryCode::parse("NG").expect("a country code"),
        follow_up_offsets_days: None,
    }
}

/// Everyday edits that are always accepted on an open plan from the standard template:
/// (un)assigning the passport step (which arms or cancels its reminder timers), reprioritising,
/// rescheduling. The crash test's writer and the benchmarks send them round-robin.
pub fn busy_command(i: usize, party: PartyId) -> PlanCommand {
    use homeward_workflows::plan::{DueRule, Milestone, Priority};
    match i % 3 {
        0 => PlanCommand::AssignStep {
            step: key("passport"),
            assignee: i.is_multiple_of(2).then_some(party),
            candidate_group: None,
        },
        1 => PlanCommand::PrioritiseStep {
            step: key("medical_check"),
            priority: if i.is_multiple_of(2) {
                Priority::High
            } else {
                Priority::Normal
            },
        },
        _ => PlanCommand::RescheduleStep {
            step: key("legal_clearance"),
            due: Some(DueRule::After {
                milestone: Milestone::PlanOpened,
                days: 40 + (i % 20) as u32,
            }),
            follow_up_on: None,
        },
    }
}

/// Opens an active plan (return consent recorded) with its passport step assigned to
/// `liaison`: the passport is due 45 days after the handler's clock, with a reminder three days
/// before.
pub async fn plan_with_passport<S: homeward_store::EventStore + ?Sized>(
    handler: &CommandHandler<S>,
    case_worker: PartyId,
    liaison: PartyId,
) -> PlanId {
    let id = PlanId::new();
    for command in [
        open_standard_plan(id, case_worker),
        PlanCommand::RecordConsent {
            purpose: homeward_workflows::plan::ConsentPurpose::Return,
        },
        PlanCommand::AssignStep {
            step: key("passport"),
            assignee: Some(liaison),
            candidate_group: None,
        },
    ] {
        handler
            .handle::<homeward_workflows::plan::Plan>(
                &id.stream_id(),
                &command,
                CommandMeta::new(case_worker),
            )
            .await
            .expect("the plan opens and its passport is assigned");
    }
    id
}

/// Keys of the standard template's steps of a kind.
pub fn standard_step(kind: StepKind) -> StepKey {
    let t = template::find("standard-avr", 1).expect("the standard template");
    t.step_definitions(&t.follow_up_offsets_days)
        .into_iter()
        .find(|s| s.kind == kind)
        .map(|s| s.key)
        .expect("the standard template has this kind of step")
}

/// Details of a party as [`register_party`] gives them, for tests that change one field.
pub fn party_details(role: PartyRole, email: &str) -> PartyDetails {
    PartyDetails {
        display_name: format!("{} ({})", email, role.as_str()),
        email: email.to_owned(),
        role,
        organisation: SAFE_PASSAGE,
        country: "FR".to_owned(),
        language: "fr".to_owned(),
        time_zone: "Europe/Paris".to_owned(),
        supervisor: None,
    }
}

/// What a refused plan command must leave as it was: the whole log, and the plan's rows in the
/// read models.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanFootprint {
    /// Rows in `events` (all streams).
    pub events: i64,
    /// `plan_view.version` of the plan (`None` without a row).
    pub plan_version: Option<i64>,
    /// The plan's `step_view` rows, as JSON in key order.
    pub steps: serde_json::Value,
    /// The plan's `timers` rows, as JSON in id order.
    pub timers: serde_json::Value,
}

impl TestDb {
    /// The log size and this plan's read-model rows: equal before and after a refused command.
    pub async fn plan_footprint(&self, plan: PlanId) -> PlanFootprint {
        let events = self.count("SELECT count(*) FROM events").await;
        let plan_version: Option<i64> =
            sqlx::query_scalar("SELECT version FROM plan_view WHERE plan_id = $1")
                .bind(plan.0)
                .fetch_optional(self.pool())
                .await
                .expect("plan_view query runs");
        let rows = |table: &str, order: &str| {
            format!(
                "SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY {order}), '[]'::jsonb) \
                 FROM {table} t WHERE plan_id = $1"
            )
        };
        let steps: serde_json::Value = sqlx::query_scalar(&rows("step_view", "step_key"))
            .bind(plan.0)
            .fetch_one(self.pool())
            .await
            .expect("step_view query runs");
        let timers: serde_json::Value = sqlx::query_scalar(&rows("timers", "timer_id"))
            .bind(plan.0)
            .fetch_one(self.pool())
            .await
            .expect("timers query runs");
        PlanFootprint {
            events,
            plan_version,
            steps,
            timers,
        }
    }

    /// Rows in `timers` for this plan.
    pub async fn plan_timer_count(&self, plan: PlanId) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM timers WHERE plan_id = $1")
            .bind(plan.0)
            .fetch_one(self.pool())
            .await
            .expect("timers count query runs")
    }
}
