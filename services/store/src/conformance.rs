//! The conformance suite: every behaviour of the store port, written once, generic over its
//! traits. A backend passes it when [`run`] finds no failure, each check on a fresh, empty,
//! migrated backend from the factory it is given. Checks report what went wrong instead of
//! panicking, so a test can also show that a broken backend fails them.
//!
//! The groups follow the traits: the event log ([`EventStore`]: appends, expected versions,
//! command ids, stream reads up to a version and an instant, the global stream in commit
//! order without gaps), following the log and the projections ([`Backend`]: subscriptions,
//! read models written with the events and rebuilt from the log), the timer queue with leases
//! ([`TimerQueue`]), idempotency keys ([`IdempotencyKeys`]) and the API's reads
//! ([`ReadModels`]).

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use homeward_workflows::organisation::{Organisation, OrganisationCommand, OrganisationKind};
use homeward_workflows::person::{ErasureReason, Person, PersonCommand};
use homeward_workflows::plan::{Plan, PlanCommand};
use homeward_workflows::text::CountryCode;
use homeward_workflows::{
    template, Aggregate, Context, OrganisationId, PartyId, PersonId, PlanId, StepKey,
};
use uuid::Uuid;

use crate::idempotency::{KeyClaim, KeyRecord};
use crate::projection::{self, TimerRow};
use crate::reads::{NewInvitation, NewToken, Page, PlanFilter, PlanScope};
use crate::sessions::{NewSession, NewSignInLink};
use crate::timer_queue::ClaimKind;
use crate::{
    Append, Backend, Cursor, EventStore, ExpectedVersion, Metadata, NewEvent, ProjectionChange,
    ReadUntil, StoreError,
};

/// A check that did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub check: &'static str,
    pub problem: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.check, self.problem)
    }
}

type Outcome = Result<(), String>;

macro_rules! ensure {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            return Err(format!($($message)+));
        }
    };
}

/// Turns a store error into a check's problem.
fn step<T>(what: &str, result: Result<T, StoreError>) -> Result<T, String> {
    result.map_err(|e| format!("{what}: {e}"))
}

/// Runs every check, each on a fresh backend; returns the failures (none: the backend conforms).
pub async fn run<B, F, Fut>(fresh: F) -> Vec<Failure>
where
    B: Backend,
    F: Fn() -> Fut,
    Fut: Future<Output = B>,
{
    let mut failures = event_log(|| async { Arc::new(fresh().await) as Arc<dyn EventStore> }).await;
    let checks: [(&'static str, CheckFn<B>); 17] = [
        ("subscriptions deliver new events in commit order", |b| {
            Box::pin(subscriptions(b))
        }),
        (
            "projections are written with the events and rebuilt alike",
            |b| Box::pin(projections(b)),
        ),
        ("timers are claimed once, under a lease", |b| {
            Box::pin(timers(b))
        }),
        ("idempotency keys are recorded once and expire", |b| {
            Box::pin(idempotency_keys(b))
        }),
        ("the API reads what the appends projected", |b| {
            Box::pin(api_reads(b))
        }),
        (
            "tokens stand until revoked or expired, and revocations are announced",
            |b| Box::pin(tokens(b)),
        ),
        (
            "a party's plans with open steps, and a person's plans, are found",
            |b| Box::pin(plans_with_open_steps(b)),
        ),
        (
            "organisations are read by id and by name, and rebuilt alike",
            |b| Box::pin(organisations(b)),
        ),
        (
            "a plan list's overdue filter looks only at the steps in scope",
            |b| Box::pin(overdue_in_scope(b)),
        ),
        (
            "an invitation is used once, before it expires, unless a newer one withdrew it",
            |b| Box::pin(invitations(b)),
        ),
        (
            "a person's data key is kept once and erased for good",
            |b| Box::pin(person_keys(b)),
        ),
        (
            "streams' tails and persons' keys are read together as they are apart",
            |b| Box::pin(tails_with_keys(b)),
        ),
        ("the access audit is appended and read newest first", |b| {
            Box::pin(access_log(b))
        }),
        (
            "a person's new key is stored with the append that opens her stream, or not at all",
            |b| Box::pin(person_key_with_append(b)),
        ),
        (
            "retention finds whom to erase, whom a hold keeps and whom to review",
            |b| Box::pin(retention(b)),
        ),
        (
            "the blind index finds a person by all her terms, until replaced or erased",
            |b| Box::pin(blind_index(b)),
        ),
        (
            "a sign-in link is used once and a session stands until it ends",
            |b| Box::pin(console_sessions(b)),
        ),
    ];
    for (check, run) in checks {
        if let Err(problem) = run(Arc::new(fresh().await)).await {
            failures.push(Failure { check, problem });
        }
    }
    failures
}

type CheckFn<B> = fn(Arc<B>) -> std::pin::Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// The event log's checks alone, for any [`EventStore`]: what a test double of the log must
/// pass too.
pub async fn event_log<F, Fut>(fresh: F) -> Vec<Failure>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn EventStore>>,
{
    let checks: [(&'static str, LogCheck); 5] = [
        ("appends are read back in version order", |s| {
            Box::pin(append_and_read(s))
        }),
        (
            "a stale expected version is a conflict and writes nothing",
            |s| Box::pin(expected_version(s)),
        ),
        ("a command id appended twice is written once", |s| {
            Box::pin(command_ids(s))
        }),
        (
            "a stream reads up to a version and as it stood at an instant",
            |s| Box::pin(read_until(s)),
        ),
        (
            "the global stream has every event once, in commit order",
            |s| Box::pin(global_stream(s)),
        ),
    ];
    let mut failures = Vec::new();
    for (check, run) in checks {
        if let Err(problem) = run(fresh().await).await {
            failures.push(Failure { check, problem });
        }
    }
    failures
}

type LogCheck = fn(Arc<dyn EventStore>) -> std::pin::Pin<Box<dyn Future<Output = Outcome> + Send>>;

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0)
        .single()
        .unwrap_or_default()
        + Span::seconds(seconds)
}

fn metadata() -> Metadata {
    Metadata {
        actor: PartyId(Uuid::from_u128(7)),
        correlation_id: Uuid::from_u128(8),
        partner_link: None,
    }
}

/// An append of `n` neutral events (the log does not read payloads) to `stream`, with no
/// read-model rows: also for a backend's own tests.
pub fn append(
    stream: &str,
    expected: ExpectedVersion,
    n: usize,
    occurred_at: DateTime<Utc>,
) -> Append {
    Append {
        stream_id: stream.to_owned(),
        stream_type: "conformance",
        expected_version: expected,
        command_id: Uuid::new_v4(),
        metadata: metadata(),
        occurred_at,
        events: (0..n)
            .map(|i| NewEvent {
                event_type: "noted".to_owned(),
                schema_version: 1,
                payload: serde_json::json!({ "n": i }),
            })
            .collect(),
        projection: ProjectionChange::default(),
        idempotency_key: None,
        new_person_key: None,
        search_terms: None,
    }
}

fn stream() -> String {
    format!("conformance-{}", Uuid::new_v4())
}

async fn append_and_read(store: Arc<dyn EventStore>) -> Outcome {
    let s = stream();
    let first = step(
        "append",
        store
            .append(append(&s, ExpectedVersion::NoStream, 2, at(0)))
            .await,
    )?;
    ensure!(
        (first.first_version, first.last_version, first.duplicate) == (1, 2, false),
        "the first append wrote versions {}..{} (duplicate {}), not 1..2",
        first.first_version,
        first.last_version,
        first.duplicate
    );
    let second = append(&s, ExpectedVersion::Exact(2), 1, at(1));
    let command = second.command_id;
    step("append", store.append(second).await)?;
    let events = step("read", store.read_stream(&s, ReadUntil::End).await)?;
    let versions: Vec<u64> = events.iter().map(|e| e.stream_version).collect();
    ensure!(versions == [1, 2, 3], "read back versions {versions:?}");
    let third = &events[2];
    ensure!(
        third.command_id == command && third.event_id == Append::event_id(command, 0),
        "the third event has the command id and event id of its append"
    );
    let payload: serde_json::Value =
        serde_json::from_str(&events[1].payload).map_err(|e| e.to_string())?;
    ensure!(
        payload == serde_json::json!({ "n": 1 }) && events[1].event_type == "noted",
        "an event's type and payload come back as written: {} {payload}",
        events[1].event_type
    );
    ensure!(
        events[0].metadata == metadata() && events[0].occurred_at == at(0),
        "metadata and occurred_at come back as written"
    );
    let tail = step("read after", store.read_stream_after(&s, 1).await)?;
    ensure!(
        tail.iter().map(|e| e.stream_version).collect::<Vec<_>>() == [2, 3],
        "the tail after version 1 is versions 2 and 3"
    );
    Ok(())
}

async fn expected_version(store: Arc<dyn EventStore>) -> Outcome {
    let s = stream();
    step(
        "append",
        store
            .append(append(&s, ExpectedVersion::NoStream, 1, at(0)))
            .await,
    )?;
    for stale in [
        ExpectedVersion::NoStream,
        ExpectedVersion::Exact(0),
        ExpectedVersion::Exact(2),
    ] {
        match store.append(append(&s, stale, 1, at(1))).await {
            Err(StoreError::Conflict { .. }) => {}
            other => return Err(format!("{stale:?} on a stream at version 1 gave {other:?}")),
        }
    }
    let any = step(
        "append",
        store
            .append(append(&s, ExpectedVersion::Any, 2, at(2)))
            .await,
    )?;
    ensure!(
        (any.first_version, any.last_version) == (2, 3),
        "an append at any version goes after the head: {}..{}",
        any.first_version,
        any.last_version
    );
    let events = step("read", store.read_stream(&s, ReadUntil::End).await)?;
    ensure!(
        events.len() == 3,
        "{} events after three refused appends and one of two",
        events.len()
    );
    // Concurrent appends at the same expected version: exactly one goes through.
    let tries = futures::future::join_all(
        (0..4).map(|_| store.append(append(&s, ExpectedVersion::Exact(3), 1, at(3)))),
    )
    .await;
    let written = tries.iter().filter(|r| r.is_ok()).count();
    let conflicts = tries
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Conflict { .. })))
        .count();
    ensure!(
        written == 1 && conflicts == 3,
        "four appends at version 3 at once: {written} written, {conflicts} conflicts"
    );
    Ok(())
}

async fn command_ids(store: Arc<dyn EventStore>) -> Outcome {
    let s = stream();
    let first = append(&s, ExpectedVersion::NoStream, 2, at(0));
    let command = first.command_id;
    let again = first.clone();
    step("append", store.append(first).await)?;
    let repeated = step("append again", store.append(again).await)?;
    ensure!(
        repeated.duplicate && (repeated.first_version, repeated.last_version) == (1, 2),
        "the repeat answers with the first result: {repeated:?}"
    );
    let events = step("read", store.read_stream(&s, ReadUntil::End).await)?;
    ensure!(
        events.len() == 2,
        "{} events after a repeated append of two",
        events.len()
    );
    // An edit at the stream's version, sent twice: the second finds the stream moved on by
    // itself, and answers with the first result.
    let edit = append(&s, ExpectedVersion::Exact(2), 1, at(1));
    let edit_again = edit.clone();
    step("append an edit", store.append(edit).await)?;
    let repeated = step("append the edit again", store.append(edit_again).await)?;
    ensure!(
        repeated.duplicate && (repeated.first_version, repeated.last_version) == (3, 3),
        "the repeated edit answers with the first result: {repeated:?}"
    );
    let events = step("read", store.read_stream(&s, ReadUntil::End).await)?;
    ensure!(
        events.len() == 3,
        "{} events after an append of two and an edit, each sent twice",
        events.len()
    );
    let known = step("command result", store.command_result(command).await)?;
    ensure!(
        known.as_ref().map(|a| (a.first_version, a.last_version)) == Some((1, 2)),
        "the command's result is found by its id: {known:?}"
    );
    ensure!(
        step("command result", store.command_result(Uuid::new_v4()).await)?.is_none(),
        "an unknown command id has no result"
    );
    Ok(())
}

async fn read_until(store: Arc<dyn EventStore>) -> Outcome {
    let s = stream();
    for (i, seconds) in [0, 60, 120].into_iter().enumerate() {
        let expected = if i == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(i as u64)
        };
        step(
            "append",
            store.append(append(&s, expected, 1, at(seconds))).await,
        )?;
    }
    let upto = step("read", store.read_stream(&s, ReadUntil::Version(2)).await)?;
    ensure!(upto.len() == 2, "up to version 2: {} events", upto.len());
    let then = step("read", store.read_stream(&s, ReadUntil::Time(at(90))).await)?;
    ensure!(
        then.iter().map(|e| e.stream_version).collect::<Vec<_>>() == [1, 2],
        "as it stood 90 s in: versions {:?}",
        then.iter().map(|e| e.stream_version).collect::<Vec<_>>()
    );
    let before = step("read", store.read_stream(&s, ReadUntil::Time(at(-1))).await)?;
    ensure!(
        before.is_empty(),
        "before its first event the stream is empty"
    );
    let none = step("read", store.read_stream(&stream(), ReadUntil::End).await)?;
    ensure!(none.is_empty(), "a stream never written is empty");
    Ok(())
}

async fn global_stream(store: Arc<dyn EventStore>) -> Outcome {
    const WRITERS: usize = 4;
    const APPENDS: usize = 10;
    let streams: Vec<String> = (0..WRITERS).map(|_| stream()).collect();
    let writers = streams.iter().map(|s| {
        let store = store.clone();
        async move {
            for i in 0..APPENDS {
                let expected = if i == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact((i * 2) as u64)
                };
                store.append(append(s, expected, 2, at(i as i64))).await?;
            }
            Ok::<_, StoreError>(())
        }
    });
    for written in futures::future::join_all(writers).await {
        step("append", written)?;
    }
    // Read in small pages, resuming from each page's last cursor. A committed event may be
    // held back while an older transaction anywhere on the server is still open (that is how
    // nothing is skipped): an empty page is read again, as a follower would, for a while.
    let mut cursor = Cursor::START;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let page = step("read all", store.read_all(cursor, 7).await)?;
        let Some(last) = page.last() else {
            if seen.len() < WRITERS * APPENDS * 2 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            break;
        };
        cursor = last.cursor();
        seen.extend(page);
    }
    let ids: HashSet<Uuid> = seen.iter().map(|e| e.event_id).collect();
    ensure!(
        seen.len() == WRITERS * APPENDS * 2 && ids.len() == seen.len(),
        "{} events read ({} distinct) of {}",
        seen.len(),
        ids.len(),
        WRITERS * APPENDS * 2
    );
    let cursors: Vec<Cursor> = seen.iter().map(|e| e.cursor()).collect();
    ensure!(
        cursors.windows(2).all(|w| w[0] < w[1]),
        "the global stream is in commit order (cursors increase)"
    );
    let mut next: BTreeMap<&str, u64> = BTreeMap::new();
    for event in &seen {
        let expected = next.entry(event.stream_id.as_str()).or_insert(1);
        ensure!(
            event.stream_version == *expected,
            "{} version {} came where version {} was due",
            event.stream_id,
            event.stream_version,
            expected
        );
        *expected += 1;
    }
    let rest = step("read all", store.read_all(cursor, 100).await)?;
    ensure!(rest.is_empty(), "nothing after the last cursor");
    Ok(())
}

async fn subscriptions<B: Backend>(backend: Arc<B>) -> Outcome {
    let s = stream();
    step(
        "append",
        backend
            .append(append(&s, ExpectedVersion::NoStream, 1, at(0)))
            .await,
    )?;
    // The head is what readers can see: wait until it covers the first append (an open
    // transaction elsewhere on the server may hold it back a moment).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let head = loop {
        let head = step("head", backend.head().await)?;
        let read = step("read all", backend.read_all(Cursor::START, 10).await)?;
        if read.last().is_some_and(|e| e.cursor() <= head) || tokio::time::Instant::now() > deadline
        {
            break head;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut following = step("subscribe", backend.subscribe(head).await)?;
    let later = append(&s, ExpectedVersion::Exact(1), 2, at(1));
    let command = later.command_id;
    step("append", backend.append(later).await)?;
    for version in [2, 3] {
        let event = tokio::time::timeout(Duration::from_secs(10), following.next())
            .await
            .map_err(|_| format!("version {version} did not arrive within 10 s"))?;
        let event = step("next", event)?;
        ensure!(
            event.stream_id == s && event.stream_version == version && event.command_id == command,
            "from the head, the subscription gives the new events in order: got {} v{}",
            event.stream_id,
            event.stream_version
        );
    }
    let mut replay = step("subscribe", backend.subscribe(Cursor::START).await)?;
    let first = tokio::time::timeout(Duration::from_secs(10), replay.next())
        .await
        .map_err(|_| "a subscription from the start gave nothing".to_owned())?;
    ensure!(
        step("next", first)?.stream_version == 1,
        "a subscription from the start begins with the first event"
    );
    Ok(())
}

/// Opens a plan from the standard template as the engine would: its events and the
/// projection change they make.
fn open_plan(plan_id: PlanId) -> Result<(Append, Plan), String> {
    open_plan_for(plan_id, PersonId::new(), OrganisationId(Uuid::from_u128(8)))
}

fn open_plan_for(
    plan_id: PlanId,
    person: PersonId,
    organisation: OrganisationId,
) -> Result<(Append, Plan), String> {
    let worker = PartyId(Uuid::from_u128(7));
    let command = PlanCommand::OpenPlan {
        plan_id,
        person,
        template: Box::new(template::find("standard-avr", 1).map_err(|e| e.to_string())?),
        case_worker: worker,
        organisation,
        origin_country: CountryCode::parse("NG").map_err(|e| e.to_string())?,
        follow_up_offsets_days: None,
    };
    let ctx = Context {
        now: at(0),
        actor: worker,
    };
    let events = Plan::decide(None, &command, &ctx).map_err(|e| e.to_string())?;
    let state = Plan::fold(&events).ok_or("opening gives a plan")?;
    let append = Append {
        idempotency_key: None,
        new_person_key: None,
        search_terms: None,
        stream_id: plan_id.stream_id(),
        stream_type: Plan::STREAM_PREFIX,
        expected_version: ExpectedVersion::NoStream,
        command_id: Uuid::new_v4(),
        metadata: metadata(),
        occurred_at: at(0),
        events: events.iter().map(NewEvent::from_domain).collect(),
        projection: ProjectionChange::for_plan(None, &state),
    };
    Ok((append, state))
}

async fn projections<B: Backend>(backend: Arc<B>) -> Outcome {
    let plan_id = PlanId::new();
    let (opening, state) = open_plan(plan_id)?;
    step("append", backend.append(opening).await)?;
    let written = step("plan row", backend.plan_row(plan_id.0).await)?;
    let expected = projection::plan_row(&state);
    ensure!(
        written.as_ref() == Some(&expected),
        "the plan row written with the events is the plan's: {written:?}"
    );
    // A refused append leaves the read models as they were.
    let mut stale = open_plan(plan_id)?.0;
    stale.projection.plans[0].organisation = Uuid::new_v4();
    match backend.append(stale).await {
        Err(StoreError::Conflict { .. }) => {}
        other => return Err(format!("a second opening of the plan gave {other:?}")),
    }
    let after = step("plan row", backend.plan_row(plan_id.0).await)?;
    ensure!(
        after.as_ref() == Some(&expected),
        "a conflict changed the plan row: {after:?}"
    );
    let report = step("rebuild", backend.rebuild_projections().await)?;
    ensure!(
        report.events >= 1,
        "the rebuild read {} events",
        report.events
    );
    let rebuilt = step("plan row", backend.plan_row(plan_id.0).await)?;
    ensure!(
        rebuilt.as_ref() == Some(&expected),
        "the rebuilt plan row is the one written with the events: {rebuilt:?}"
    );
    Ok(())
}

/// Carries out `commands` in turn on the stream `stream_id`, each decided and appended at
/// `at(0)` with its read-model rows, as the engine would; the state after the last.
async fn record<A: crate::projection::Projected, B: Backend>(
    backend: &B,
    stream_id: &str,
    commands: &[A::Command],
) -> Result<A, String> {
    let ctx = Context {
        now: at(0),
        actor: PartyId(Uuid::from_u128(7)),
    };
    let mut state: Option<A> = None;
    let mut version = 0;
    for command in commands {
        let events = A::decide(state.as_ref(), command, &ctx).map_err(|e| e.to_string())?;
        let after = events
            .iter()
            .fold(state.clone(), A::apply)
            .ok_or("the first command opens the stream")?;
        let append = Append {
            idempotency_key: None,
            new_person_key: None,
            search_terms: None,
            stream_id: stream_id.to_owned(),
            stream_type: A::STREAM_PREFIX,
            expected_version: if version == 0 {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Exact(version)
            },
            command_id: Uuid::new_v4(),
            metadata: metadata(),
            occurred_at: at(0),
            events: events.iter().map(NewEvent::from_domain).collect(),
            projection: A::projection(state.as_ref(), &after),
        };
        step("append", backend.append(append).await)?;
        version += events.len() as u64;
        state = Some(after);
    }
    state.ok_or_else(|| "no command".to_owned())
}

/// Registers an organisation (and records the partners it works with) as the engine would.
async fn register_organisation<B: Backend>(
    backend: &B,
    name: &str,
    kind: OrganisationKind,
    partners: &[OrganisationId],
) -> Result<Organisation, String> {
    let id = OrganisationId::new();
    let mut commands = vec![OrganisationCommand::Register {
        organisation_id: id,
        name: name.to_owned(),
        kind,
        country: "FR".to_owned(),
    }];
    commands.extend(
        partners
            .iter()
            .map(|&partner| OrganisationCommand::StartWorkingWith { partner }),
    );
    record(backend, &id.stream_id(), &commands).await
}

async fn organisations<B: Backend>(backend: Arc<B>) -> Outcome {
    let partner =
        register_organisation(&*backend, "Conformance", OrganisationKind::Partner, &[]).await?;
    let programme = register_organisation(
        &*backend,
        "Conformance",
        OrganisationKind::Programme,
        &[partner.id],
    )
    .await?;
    let expected = vec![
        projection::organisation_row(&partner),
        projection::organisation_row(&programme),
    ];
    let read = |backend: Arc<B>| async move {
        let mut by_id = step(
            "organisations by id",
            backend
                .organisations_by_id(&[partner.id.0, programme.id.0, Uuid::new_v4()])
                .await,
        )?;
        by_id.sort_by_key(|o| o.version);
        let listed = step(
            "organisations",
            backend
                .organisations(Page {
                    offset: 0,
                    limit: 10,
                })
                .await,
        )?;
        Ok::<_, String>((by_id, listed))
    };
    let (by_id, listed) = read(backend.clone()).await?;
    ensure!(
        by_id == expected,
        "two organisations of the same name are two rows, each with its partners: {by_id:?}"
    );
    ensure!(
        listed.len() == 2 && listed.iter().all(|o| expected.contains(o)),
        "the list has both: {listed:?}"
    );
    ensure!(
        programme.works_with(partner.id) && by_id[1].works_with == vec![partner.id.0],
        "the programme works with its partner"
    );
    step("rebuild", backend.rebuild_projections().await)?;
    let (rebuilt, _) = read(backend).await?;
    ensure!(
        rebuilt == expected,
        "the rebuilt organisation rows are the ones written with the events: {rebuilt:?}"
    );
    Ok(())
}

async fn timers<B: Backend>(backend: Arc<B>) -> Outcome {
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let timer = TimerRow {
        timer_id: Uuid::new_v4(),
        plan_id: Uuid::new_v4(),
        step_key: "passport".to_owned(),
        kind: "before_due".to_owned(),
        fire_at: at(100),
        recipient_party: Uuid::new_v4(),
        recipient_role: "assignee".to_owned(),
    };
    let mut arm = append(&stream(), ExpectedVersion::NoStream, 1, at(0));
    arm.projection.timers_arm.push(timer.clone());
    step("append", backend.append(arm).await)?;
    let early = step("claim", backend.claim_due(a, at(99), at(130), 10).await)?;
    ensure!(early.is_empty(), "a timer is not claimed before it is due");
    let (first, second) = tokio::join!(
        backend.claim_due(a, at(100), at(130), 10),
        backend.claim_due(b, at(100), at(130), 10)
    );
    let (first, second) = (step("claim", first)?, step("claim", second)?);
    ensure!(
        first.len() + second.len() == 1,
        "two workers claiming at once got {} and {} timers",
        first.len(),
        second.len()
    );
    let (holder, other) = if first.is_empty() { (b, a) } else { (a, b) };
    let again = step(
        "claim",
        backend.claim_due(other, at(110), at(140), 10).await,
    )?;
    ensure!(
        again.is_empty(),
        "a claimed timer is not claimed again within its lease"
    );
    let kept = step(
        "renew",
        backend
            .renew_claims(holder, ClaimKind::Timer, &[timer.timer_id], at(150))
            .await,
    )?;
    ensure!(kept == [timer.timer_id], "the holder renews its claim");
    let within = step(
        "claim",
        backend.claim_due(other, at(140), at(170), 10).await,
    )?;
    ensure!(
        within.is_empty(),
        "a renewed claim holds until its new lease ends"
    );
    // The holder stops renewing: after the lease, the other worker takes it over.
    let taken = step(
        "claim",
        backend.claim_due(other, at(151), at(181), 10).await,
    )?;
    ensure!(
        taken.len() == 1 && taken[0].taken_over && taken[0].timer_id == timer.timer_id,
        "after the lease ends another worker takes the timer over: {taken:?}"
    );
    let lost = step(
        "renew",
        backend
            .renew_claims(holder, ClaimKind::Timer, &[timer.timer_id], at(200))
            .await,
    )?;
    ensure!(
        lost.is_empty(),
        "the first holder's renewal finds its claim lost"
    );
    ensure!(
        step(
            "held",
            backend
                .held_until(holder, ClaimKind::Timer, timer.timer_id)
                .await
        )?
        .is_none(),
        "the first holder no longer holds it"
    );
    // Put off (quiet hours): due again later for any worker, without a taken-over claim.
    ensure!(
        step(
            "postpone",
            backend
                .postpone(other, ClaimKind::Timer, timer.timer_id, at(300), false)
                .await
        )?,
        "the holder puts its claim off"
    );
    let due = step("due", backend.due_timers(at(200)).await)?;
    ensure!(
        due.count == 1 && due.oldest == Some(at(100)),
        "one timer due since 100 s: {due:?}"
    );
    ensure!(
        step("claim", backend.claim_due(a, at(299), at(330), 10).await)?.is_empty(),
        "a put-off timer waits until its time"
    );
    let later = step("claim", backend.claim_due(a, at(300), at(330), 10).await)?;
    ensure!(
        later.len() == 1 && !later[0].taken_over,
        "a put-off timer is claimed again after its time, not taken over: {later:?}"
    );
    ensure!(
        step("release", backend.release_claims(a).await)? == 1,
        "a stopping worker gives its claim back"
    );
    Ok(())
}

async fn idempotency_keys<B: Backend>(backend: Arc<B>) -> Outcome {
    const DAY: i64 = 86_400;
    let party = Uuid::new_v4();
    // An append of one event to a new stream claiming `key` at `seconds`, the key kept a day.
    let keyed = |key: &[u8], seconds: i64| {
        let mut append = append(&stream(), ExpectedVersion::NoStream, 1, at(seconds));
        append.idempotency_key = Some(KeyClaim {
            record: KeyRecord {
                party,
                key_hash: key.to_vec(),
                operation: "setGoals".to_owned(),
                target: Some(append.stream_id.clone()),
                fingerprint: vec![1, 2, 3],
                command_id: append.command_id,
                created_at: at(seconds),
            },
            not_before: at(seconds - DAY),
        });
        append
    };
    let find = |key: &'static [u8], not_before| backend.find_key(party, key, not_before);

    ensure!(
        step("find", find(b"k1", at(-DAY)).await)?.is_none(),
        "an unused key is not found"
    );
    let first = keyed(b"k1", 0);
    step("append", backend.append(first.clone()).await)?;
    let claimed = first.idempotency_key.clone().map(|k| k.record);
    let found = step("find", find(b"k1", at(-DAY)).await)?;
    ensure!(
        found == claimed,
        "a key is recorded with its append: {found:?}"
    );

    // The key again, on another stream: refused, nothing written.
    let reused = keyed(b"k1", 10);
    let refused = backend.append(reused.clone()).await;
    ensure!(
        matches!(refused, Err(StoreError::KeyTaken)),
        "a key used within the retention refuses the append: {refused:?}"
    );
    ensure!(
        step(
            "read",
            backend.read_stream(&reused.stream_id, ReadUntil::End).await
        )?
        .is_empty(),
        "a refused keyed append writes nothing"
    );
    ensure!(
        step("find", find(b"k1", at(-DAY)).await)? == claimed,
        "a refused append leaves the first record"
    );
    // The same append again: its first result, not a refusal of its key.
    let repeated = step("append", backend.append(first.clone()).await)?;
    ensure!(
        repeated.duplicate,
        "a repeated keyed append is its first result"
    );

    // Another party's key of the same text is another key.
    let mut other_party = keyed(b"k1", 10);
    if let Some(claim) = &mut other_party.idempotency_key {
        claim.record.party = Uuid::new_v4();
    }
    step("append", backend.append(other_party).await)?;

    // Twenty appends at once over nineteen keys: each key taken once.
    let many: Vec<Append> = (0..20u8).map(|i| keyed(&[b'm', i % 19], 20)).collect();
    let answers = futures::future::join_all(many.iter().map(|a| backend.append(a.clone()))).await;
    let written = answers.iter().filter(|a| a.is_ok()).count();
    let taken = answers
        .iter()
        .filter(|a| matches!(a, Err(StoreError::KeyTaken)))
        .count();
    ensure!(
        (written, taken) == (19, 1),
        "20 appends at once over 19 keys: {written} written, {taken} refused: {answers:?}"
    );

    // After the retention the key is free again, and its new use replaces the old record.
    ensure!(
        step("find", find(b"k1", at(100_000 - DAY)).await)?.is_none(),
        "an expired key is not found"
    );
    let later = keyed(b"k1", 100_000);
    step("append", backend.append(later.clone()).await)?;
    let found = step("find", find(b"k1", at(-DAY)).await)?;
    ensure!(
        found == later.idempotency_key.map(|k| k.record),
        "an expired key is claimed afresh: {found:?}"
    );
    ensure!(
        step("purge", backend.purge_keys(at(50)).await)? == 20,
        "purging removes the keys first used before the cut-off"
    );
    ensure!(
        step("find", find(b"k1", at(-DAY)).await)?.is_some(),
        "purging keeps later keys"
    );
    Ok(())
}

async fn api_reads<B: Backend>(backend: Arc<B>) -> Outcome {
    ensure!(
        step("party count", backend.party_count().await)? == 0,
        "a fresh backend has no party"
    );
    let plan_id = PlanId::new();
    step("append", backend.append(open_plan(plan_id)?.0).await)?;
    ensure!(
        step("plan row", backend.plan_row(Uuid::new_v4()).await)?.is_none(),
        "an unknown plan has no row"
    );
    ensure!(
        step("plan row", backend.plan_row(plan_id.0).await)?.is_some(),
        "the opened plan has a row"
    );
    ensure!(
        step("parties", backend.parties_by_id(&[Uuid::new_v4()]).await)?.is_empty(),
        "unknown parties are not found"
    );
    step("ping", backend.ping().await)?;
    let secret = step("secret", backend.server_secret("conformance").await)?;
    ensure!(secret.len() >= 32, "a server secret has at least 256 bits");
    ensure!(
        step("secret", backend.server_secret("conformance").await)? == secret,
        "a server secret is the same ever after"
    );
    ensure!(
        step("key check", backend.master_key_check(&[1; 32]).await)? == vec![1; 32],
        "the first master key check value offered is kept"
    );
    ensure!(
        step("key check", backend.master_key_check(&[2; 32]).await)? == vec![1; 32],
        "another key's check value is answered with the kept one"
    );
    Ok(())
}

/// Appends `command`'s events to the plan at `version`, with their projection.
async fn change_plan<B: Backend>(
    backend: &B,
    before: &Plan,
    version: u64,
    command: PlanCommand,
) -> Result<(Plan, u64), String> {
    let ctx = Context {
        now: at(1),
        actor: before.case_worker,
    };
    let events = Plan::decide(Some(before), &command, &ctx).map_err(|e| e.to_string())?;
    let mut after = before.clone();
    for event in &events {
        after = Plan::apply(Some(after), event).ok_or("a change keeps the plan")?;
    }
    let append = Append {
        idempotency_key: None,
        new_person_key: None,
        search_terms: None,
        stream_id: before.id.stream_id(),
        stream_type: Plan::STREAM_PREFIX,
        expected_version: ExpectedVersion::Exact(version),
        command_id: Uuid::new_v4(),
        metadata: metadata(),
        occurred_at: at(1),
        events: events.iter().map(NewEvent::from_domain).collect(),
        projection: ProjectionChange::for_plan(Some(before), &after),
    };
    step("append", backend.append(append).await)?;
    Ok((after, version + events.len() as u64))
}

async fn plans_with_open_steps<B: Backend>(backend: Arc<B>) -> Outcome {
    let liaison = PartyId(Uuid::new_v4());
    let plan_id = PlanId::new();
    let (opening, plan) = open_plan(plan_id)?;
    let version = opening.events.len() as u64;
    step("append", backend.append(opening).await)?;
    let found = |backend: Arc<B>| async move {
        step(
            "plans with open steps",
            backend.plans_with_open_steps_of(liaison.0).await,
        )
    };
    ensure!(
        found(backend.clone()).await?.is_empty(),
        "a party with no step has no plan"
    );
    let passport = StepKey::parse("passport").map_err(|e| e.to_string())?;
    let assign = |step: &StepKey| PlanCommand::AssignStep {
        step: step.clone(),
        assignee: Some(liaison),
        candidate_group: None,
    };
    let (plan, version) = change_plan(backend.as_ref(), &plan, version, assign(&passport)).await?;
    let found_now = found(backend.clone()).await?;
    ensure!(
        found_now == vec![plan_id.0],
        "an assigned step's plan is found: {found_now:?}"
    );
    let cancel = PlanCommand::CancelStep {
        step: passport,
        reason: "Not needed".to_owned(),
    };
    change_plan(backend.as_ref(), &plan, version, cancel).await?;
    let found_now = found(backend.clone()).await?;
    ensure!(
        found_now.is_empty(),
        "a cancelled step's plan is not found: {found_now:?}"
    );
    let of_person = step(
        "plans of a person",
        backend.plans_of_person(plan.person.0).await,
    )?;
    ensure!(
        of_person.iter().map(|p| p.plan_id).collect::<Vec<_>>() == vec![plan_id.0],
        "a person's plans are found by the person: {of_person:?}"
    );
    ensure!(
        step(
            "plans of a person",
            backend.plans_of_person(Uuid::new_v4()).await
        )?
        .is_empty(),
        "a person without plans has none"
    );
    Ok(())
}

/// A liaison whose only step on a plan is not overdue does not see the plan as overdue because
/// of steps they may not see; the plan's organisation does.
async fn overdue_in_scope<B: Backend>(backend: Arc<B>) -> Outcome {
    let liaison = PartyId(Uuid::new_v4());
    let plan_id = PlanId::new();
    let (opening, plan) = open_plan(plan_id)?;
    let version = opening.events.len() as u64;
    step("append", backend.append(opening).await)?;
    // Due after arrival: no due date yet, never overdue before it.
    let follow_up = StepKey::parse("follow_up_1").map_err(|e| e.to_string())?;
    ensure!(
        plan.step(&follow_up).is_some_and(|s| s.due_at.is_none()),
        "the standard template's first follow-up waits for arrival"
    );
    let assign = PlanCommand::AssignStep {
        step: follow_up,
        assignee: Some(liaison),
        candidate_group: None,
    };
    change_plan(backend.as_ref(), &plan, version, assign).await?;
    let later = at(1_000_000_000);
    let list = |scope: PlanScope, overdue: bool| {
        let backend = backend.clone();
        async move {
            let filter = PlanFilter {
                has_overdue_steps: Some(overdue),
                ..PlanFilter::default()
            };
            let page = Page {
                offset: 0,
                limit: 10,
            };
            let rows = step("plans", backend.plans(&scope, &filter, later, page).await)?;
            Ok::<_, String>(rows.iter().map(|r| r.plan_id).collect::<Vec<_>>())
        }
    };
    let organisation = PlanScope::Organisation(Uuid::from_u128(8));
    let assigned = PlanScope::AssignedTo {
        party: liaison,
        kinds: None,
    };
    ensure!(
        list(organisation.clone(), true).await? == vec![plan_id.0],
        "the plan's organisation sees its overdue steps"
    );
    ensure!(
        list(organisation, false).await?.is_empty(),
        "the plan's organisation does not see it as on time"
    );
    ensure!(
        list(assigned.clone(), true).await?.is_empty(),
        "the liaison's only step is not overdue: the plan is not overdue to them"
    );
    ensure!(
        list(assigned, false).await? == vec![plan_id.0],
        "the plan is on time as far as the liaison sees it"
    );
    Ok(())
}

async fn invitations<B: Backend>(backend: Arc<B>) -> Outcome {
    let party = Uuid::new_v4();
    let invitation = |hash: u8, issued: i64| NewInvitation {
        invitation_id: Uuid::new_v4(),
        secret_hash: vec![hash; 32],
        party_id: party,
        issued_by: None,
        issued_at: at(issued),
        expires_at: at(issued + 3600),
    };
    step("invite", backend.insert_invitation(&invitation(1, 0)).await)?;
    ensure!(
        step("stands", backend.invitation_party(&[1; 32], at(10)).await)? == Some(party),
        "an invitation stands until used"
    );
    ensure!(
        step("use", backend.use_invitation(&[1; 32], at(3600)).await)?.is_none(),
        "an invitation is not used at its expiry"
    );
    // A newer one withdraws it.
    step(
        "invite",
        backend.insert_invitation(&invitation(2, 20)).await,
    )?;
    ensure!(
        step("use", backend.use_invitation(&[1; 32], at(30)).await)?.is_none(),
        "a withdrawn invitation is not used"
    );
    ensure!(
        step("use", backend.use_invitation(&[2; 32], at(30)).await)? == Some(party),
        "an invitation that stands gives its party"
    );
    ensure!(
        step("use", backend.use_invitation(&[2; 32], at(31)).await)?.is_none()
            && step("stands", backend.invitation_party(&[2; 32], at(31)).await)?.is_none(),
        "an invitation is used once"
    );
    step(
        "invite",
        backend.insert_invitation(&invitation(3, 40)).await,
    )?;
    ensure!(
        step("withdraw", backend.withdraw_invitations_of(party).await)? == 1,
        "withdrawing says how many were withdrawn"
    );
    ensure!(
        step("use", backend.use_invitation(&[3; 32], at(50)).await)?.is_none(),
        "a withdrawn invitation is not used"
    );
    ensure!(
        step("use", backend.use_invitation(&[9; 32], at(50)).await)?.is_none(),
        "an unknown invitation gives no one"
    );
    Ok(())
}

async fn person_keys<B: Backend>(backend: Arc<B>) -> Outcome {
    use crate::person_keys::{KeyErasure, PersonKey};
    let person = Uuid::new_v4();
    ensure!(
        step("read", backend.person_key(person).await)?.is_none(),
        "a person never seen has no key"
    );
    ensure!(
        step("erase", backend.erase_person_key(person, at(0)).await)? == KeyErasure::NoneLeft,
        "there is no key to erase of a person never seen"
    );
    // The first key stored fixes the master key of a database that has none.
    let first = Uuid::new_v4();
    step(
        "store",
        backend.store_person_key(first, &[6; 60], &[7; 32]).await,
    )?;
    let check = step("key check", backend.master_key_check(&[5; 32]).await)?;
    ensure!(
        check == vec![7; 32],
        "the first key stored fixes the master key's check value"
    );
    ensure!(
        matches!(
            backend.store_person_key(person, &[1; 60], &[8; 32]).await,
            Err(StoreError::MasterKeyChanged)
        ) && step("read", backend.person_key(person).await)?.is_none(),
        "a key wrapped under another master key than the database's is not stored"
    );
    ensure!(
        step(
            "store",
            backend.store_person_key(person, &[1; 60], &check).await
        )? == PersonKey::Wrapped(vec![1; 60]),
        "the first key stored is kept"
    );
    ensure!(
        step(
            "store",
            backend.store_person_key(person, &[2; 60], &check).await
        )? == PersonKey::Wrapped(vec![1; 60]),
        "a second key does not replace the first: the first is returned"
    );
    let other = Uuid::new_v4();
    step(
        "store",
        backend.store_person_key(other, &[3; 60], &check).await,
    )?;
    ensure!(
        step("erase", backend.erase_person_key(person, at(5)).await)? == KeyErasure::Destroyed,
        "erasing a kept key says so"
    );
    ensure!(
        step("read", backend.person_key(person).await)? == Some(PersonKey::Erased { at: at(5) }),
        "an erased key is gone and says when"
    );
    ensure!(
        step("erase", backend.erase_person_key(person, at(6)).await)? == KeyErasure::NoneLeft
            && step(
                "store",
                backend.store_person_key(person, &[4; 60], &check).await
            )? == PersonKey::Erased { at: at(5) },
        "an erased key stays erased: erased again or stored anew, nothing changes"
    );
    ensure!(
        step("read", backend.person_key(other).await)? == Some(PersonKey::Wrapped(vec![3; 60])),
        "another person's key is untouched"
    );
    let mut both = step(
        "read several",
        backend.person_keys(&[person, other, Uuid::new_v4()]).await,
    )?;
    both.sort_by_key(|(p, _)| *p != person);
    ensure!(
        both == vec![
            (person, PersonKey::Erased { at: at(5) }),
            (other, PersonKey::Wrapped(vec![3; 60]))
        ],
        "several keys are read at once, and a person never seen is left out"
    );
    // Rotation: every kept key re-wrapped, erased ones left alone, the check value replaced.
    let flip = |_: Uuid, wrapped: &[u8]| Ok(wrapped.iter().map(|b| b ^ 0xff).collect());
    ensure!(
        matches!(
            backend.rewrap_person_keys(&[8; 32], &[9; 32], &flip).await,
            Err(StoreError::MasterKeyChanged)
        ),
        "rotation from a key that is not the database's is refused"
    );
    ensure!(
        step(
            "rotate",
            backend.rewrap_person_keys(&check, &[9; 32], &flip).await
        )? == 2,
        "rotation re-wraps every kept key"
    );
    ensure!(
        step("read", backend.person_key(other).await)? == Some(PersonKey::Wrapped(vec![0xfc; 60]))
            && step("read", backend.person_key(person).await)?
                == Some(PersonKey::Erased { at: at(5) }),
        "a rotated key is the re-wrapped one; an erased key stays erased"
    );
    ensure!(
        step("key check", backend.master_key_check(&[1; 32]).await)? == vec![9; 32],
        "rotation replaces the master key's check value"
    );
    Ok(())
}

async fn tails_with_keys<B: Backend>(backend: Arc<B>) -> Outcome {
    use crate::person_keys::PersonKey;
    let (plan, person, empty) = (stream(), stream(), stream());
    step(
        "append",
        backend
            .append(append(&plan, ExpectedVersion::NoStream, 3, at(0)))
            .await,
    )?;
    step(
        "append",
        backend
            .append(append(&person, ExpectedVersion::NoStream, 2, at(1)))
            .await,
    )?;
    let (kept, erased, never) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let check = vec![4; 32];
    step(
        "store",
        backend.store_person_key(kept, &[1; 60], &check).await,
    )?;
    step(
        "store",
        backend.store_person_key(erased, &[2; 60], &check).await,
    )?;
    step("erase", backend.erase_person_key(erased, at(9)).await)?;

    let streams = [(plan.clone(), 1), (person.clone(), 0), (empty, 0)];
    let mut read = step(
        "read together",
        backend
            .read_streams_after_with_keys(&streams, &[never, kept, erased])
            .await,
    )?;
    let versions_of = |events: &[crate::RecordedEvent], stream: &str| -> Vec<u64> {
        events
            .iter()
            .filter(|e| e.stream_id == stream)
            .map(|e| e.stream_version)
            .collect()
    };
    ensure!(
        read.events.len() == 4
            && versions_of(&read.events, &plan) == [2, 3]
            && versions_of(&read.events, &person) == [1, 2],
        "each stream's events after its version, in version order: {:?}",
        read.events
            .iter()
            .map(|e| (&e.stream_id, e.stream_version))
            .collect::<Vec<_>>()
    );
    let apart = step("read apart", backend.read_streams_after(&streams).await)?;
    let by_position = |events: &[crate::RecordedEvent]| {
        let mut events = events.to_vec();
        events.sort_by_key(|e| e.global_position);
        events
    };
    ensure!(
        by_position(&read.events) == by_position(&apart),
        "the events read together are those read apart"
    );
    read.keys.sort_by_key(|(p, _)| *p != kept);
    ensure!(
        read.keys
            == vec![
                (kept, PersonKey::Wrapped(vec![1; 60])),
                (erased, PersonKey::Erased { at: at(9) })
            ],
        "the keys read together are those kept, erased ones as erased, none for a person \
         never seen: {:?}",
        read.keys
    );
    let nothing = step(
        "read nothing",
        backend.read_streams_after_with_keys(&[], &[]).await,
    )?;
    let keys_only = step(
        "read keys only",
        backend.read_streams_after_with_keys(&[], &[kept]).await,
    )?;
    let events_only = step(
        "read events only",
        backend
            .read_streams_after_with_keys(&[(plan.clone(), 2)], &[])
            .await,
    )?;
    ensure!(
        nothing == crate::StreamsAndKeys::default()
            && keys_only.events.is_empty()
            && keys_only.keys == vec![(kept, PersonKey::Wrapped(vec![1; 60]))]
            && events_only.keys.is_empty()
            && events_only.events.len() == 1
            && events_only.events[0].stream_version == 3,
        "either part may be asked alone"
    );
    Ok(())
}

async fn person_key_with_append<B: Backend>(backend: Arc<B>) -> Outcome {
    use crate::person_keys::PersonKey;
    use crate::NewPersonKey;
    let opening = |person: Uuid, check: u8| {
        let mut a = append(
            &format!("person-{person}"),
            ExpectedVersion::NoStream,
            1,
            at(0),
        );
        a.new_person_key = Some(NewPersonKey {
            person,
            wrapped: vec![check; 60],
            master_check: vec![check; 32],
        });
        a
    };
    // The first key stored fixes the master key of a database without one.
    let joy = Uuid::new_v4();
    step("append", backend.append(opening(joy, 1)).await)?;
    ensure!(
        step("read", backend.person_key(joy).await)? == Some(PersonKey::Wrapped(vec![1; 60])),
        "the key is stored with the append"
    );
    ensure!(
        step("key check", backend.master_key_check(&[9; 32]).await)? == vec![1; 32],
        "the first key stored fixed the master key"
    );
    // Refused appends store no key: a stream that exists, a key under another master key.
    let again = backend.append(opening(joy, 1)).await;
    ensure!(
        matches!(again, Err(StoreError::Conflict { .. })),
        "opening a stream that exists is a conflict: {again:?}"
    );
    let ada = Uuid::new_v4();
    let other = backend.append(opening(ada, 2)).await;
    ensure!(
        matches!(other, Err(StoreError::MasterKeyChanged)),
        "a key under another master key is refused: {other:?}"
    );
    ensure!(
        step("read", backend.person_key(ada).await)?.is_none()
            && step(
                "read",
                backend
                    .read_stream(&format!("person-{ada}"), ReadUntil::End)
                    .await
            )?
            .is_empty(),
        "a refused append writes neither its events nor its key"
    );
    Ok(())
}

async fn access_log<B: Backend>(backend: Arc<B>) -> Outcome {
    use crate::access_log::AccessEntry;
    let (joy, ada, reader) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let entry = |person: Uuid, second: i64, operation: &str| AccessEntry {
        at: at(second),
        party: reader,
        person,
        fields: vec!["contact.phone".into(), "full_name".into()],
        operation: operation.into(),
    };
    step("record", backend.record_access(&[]).await)?;
    step(
        "record",
        backend
            .record_access(&[entry(joy, 1, "plan"), entry(ada, 1, "plan")])
            .await,
    )?;
    step(
        "record",
        backend
            .record_access(&[entry(joy, 2, "personRecord")])
            .await,
    )?;
    let page = |offset, limit| Page { offset, limit };
    let read = step("read", backend.access_log(joy, page(0, 10)).await)?;
    ensure!(
        read == vec![entry(joy, 2, "personRecord"), entry(joy, 1, "plan")],
        "a person's entries, newest first, as recorded: {read:?}"
    );
    ensure!(
        step("read", backend.access_log(joy, page(1, 10)).await)? == vec![entry(joy, 1, "plan")],
        "read in pages"
    );
    ensure!(
        step(
            "read",
            backend.access_log(Uuid::new_v4(), page(0, 10)).await
        )?
        .is_empty(),
        "a person never read has no entries"
    );
    Ok(())
}

/// Registers an active social worker, `conformance@example.org`, as the engine would: her
/// read-model row.
async fn register_party<B: Backend>(
    backend: &B,
    party: Uuid,
) -> Result<projection::PartyRow, StoreError> {
    let mut registered = append(
        &format!("party-{party}"),
        ExpectedVersion::NoStream,
        1,
        at(0),
    );
    let row = projection::PartyRow {
        party_id: party,
        version: 1,
        display_name: "Conformance".to_owned(),
        email: "conformance@example.org".to_owned(),
        role: "social_worker".to_owned(),
        organisation: Uuid::new_v4(),
        country: "NG".to_owned(),
        language: "en".to_owned(),
        time_zone: "UTC".to_owned(),
        supervisor: None,
        active: true,
    };
    registered.projection.parties.push(row.clone());
    backend.append(registered).await?;
    Ok(row)
}

async fn tokens<B: Backend>(backend: Arc<B>) -> Outcome {
    let party = Uuid::new_v4();
    let registered_row = step("register", register_party(backend.as_ref(), party).await)?;
    // Listening before the revocation, as a replica's sockets do.
    let mut revocations = step("listen for revocations", backend.revocations().await)?;
    let token = NewToken {
        token_id: Uuid::new_v4(),
        token_hash: vec![7; 32],
        party_id: party,
        role: "social_worker".to_owned(),
        issued_at: at(0),
        issued_by: None,
        expires_at: at(3600),
    };
    step("insert token", backend.insert_token(&token).await)?;
    // Its use is recorded by the hour, never going back.
    step(
        "record use",
        backend.record_token_use(token.token_id, at(7200)).await,
    )?;
    step(
        "record use",
        backend.record_token_use(token.token_id, at(3600)).await,
    )?;
    let used = step(
        "token owner",
        backend.token_owner(&token.token_hash, at(0)).await,
    )?
    .and_then(|o| o.last_used_at);
    ensure!(
        used == Some(at(7200)),
        "the latest hour of use is kept: {used:?}"
    );
    let owner = step(
        "token owner",
        backend.token_owner(&token.token_hash, at(0)).await,
    )?;
    ensure!(
        owner
            .as_ref()
            .map(|o| (o.token_id, o.expires_at, o.party.party_id))
            == Some((token.token_id, token.expires_at, party)),
        "a token is found by its hash, with its expiry and its party: {owner:?}"
    );
    ensure!(
        step("token owner", backend.token_owner(&[8; 32], at(0)).await)?.is_none(),
        "an unknown hash finds no one"
    );
    ensure!(
        step(
            "token owner",
            backend.token_owner(&token.token_hash, at(3600)).await
        )?
        .is_none(),
        "a token stands no longer from its expiry"
    );
    ensure!(
        step("revoke", backend.revoke_token(token.token_id).await)?,
        "revoking a token says it was revoked"
    );
    ensure!(
        !step("revoke", backend.revoke_token(token.token_id).await)?,
        "revoking it again says there was nothing to revoke"
    );
    let announced = tokio::time::timeout(Duration::from_secs(10), revocations.next())
        .await
        .map_err(|_| "a revocation was not announced within 10 s".to_owned())?;
    ensure!(
        step("next revocation", announced)? == token.token_id,
        "the revoked token is announced"
    );
    ensure!(
        tokio::time::timeout(Duration::from_millis(300), revocations.next())
            .await
            .is_err(),
        "a revocation is announced once, and revoking nothing announces nothing"
    );
    ensure!(
        step(
            "token owner",
            backend.token_owner(&token.token_hash, at(0)).await
        )?
        .is_none(),
        "a revoked token finds no one"
    );
    // A party's tokens are listed, revoked ones too, and revoked all at once.
    let admin = Uuid::new_v4();
    let second = NewToken {
        token_id: Uuid::new_v4(),
        token_hash: vec![9; 32],
        issued_at: at(60),
        issued_by: Some(admin),
        ..token.clone()
    };
    step("insert token", backend.insert_token(&second).await)?;
    let listed = step("tokens of", backend.tokens_of(party).await)?;
    let summary: Vec<(Uuid, Option<Uuid>, bool)> = listed
        .iter()
        .map(|t| (t.token_id, t.issued_by, t.revoked_at.is_some()))
        .collect();
    ensure!(
        summary
            == vec![
                (second.token_id, Some(admin), false),
                (token.token_id, None, true)
            ],
        "a party's tokens are listed newest first, with who issued them: {listed:?}"
    );
    ensure!(
        listed[1].issued_at == at(0) && listed[1].last_used_at == Some(at(7200)),
        "a listed token says when it was issued and last used: {listed:?}"
    );
    let revoked = step("revoke all", backend.revoke_tokens_of(party).await)?;
    ensure!(
        revoked == vec![second.token_id],
        "revoking a party's tokens revokes those still standing: {revoked:?}"
    );
    let announced = tokio::time::timeout(Duration::from_secs(10), revocations.next())
        .await
        .map_err(|_| "a revocation of all tokens was not announced within 10 s".to_owned())?;
    ensure!(
        step("next revocation", announced)? == second.token_id,
        "each token revoked with the others is announced"
    );
    ensure!(
        step("revoke all", backend.revoke_tokens_of(party).await)?.is_empty(),
        "nothing is left to revoke"
    );
    // A deactivated party's token does not stand, whatever the token says.
    let third = NewToken {
        token_id: Uuid::new_v4(),
        token_hash: vec![42; 32],
        ..token.clone()
    };
    step("insert token", backend.insert_token(&third).await)?;
    ensure!(
        step(
            "token owner",
            backend.token_owner(&third.token_hash, at(0)).await
        )?
        .is_some(),
        "a new token of an active party stands"
    );
    let mut deactivated = append(
        &format!("party-{party}"),
        ExpectedVersion::Exact(1),
        1,
        at(0),
    );
    deactivated.projection.parties.push(projection::PartyRow {
        version: 2,
        active: false,
        ..registered_row
    });
    step("append", backend.append(deactivated).await)?;
    ensure!(
        step(
            "token owner",
            backend.token_owner(&third.token_hash, at(0)).await
        )?
        .is_none(),
        "a deactivated party's token does not stand"
    );
    Ok(())
}

/// Registers a person of `organisation`, then carries out `commands` on her, as the engine
/// would (her fields unsealed: the store does not read them).
async fn record_person<B: Backend>(
    backend: &B,
    organisation: OrganisationId,
    commands: &[PersonCommand],
) -> Result<Person, String> {
    let id = PersonId::new();
    let mut all = vec![PersonCommand::Register {
        person_id: id,
        organisation,
        full_name: "Joy N.".to_owned(),
        date_of_birth: None,
        preferred_language: None,
        contact: Default::default(),
    }];
    all.extend(commands.iter().cloned());
    record(backend, &id.stream_id(), &all).await
}

/// Opens a plan for `person` (at `at(0)`), closed at `at(1)` when `close`.
async fn plan_for<B: Backend>(backend: &B, person: &Person, close: bool) -> Result<(), String> {
    let (append, plan) = open_plan_for(PlanId::new(), person.id, person.organisation)?;
    let version = append.events.len() as u64;
    step("open", backend.append(append).await)?;
    if close {
        let close = PlanCommand::ClosePlan {
            reason: homeward_workflows::plan::CloseReason::OptedOut,
        };
        change_plan(backend, &plan, version, close).await?;
    }
    Ok(())
}

async fn retention<B: Backend>(backend: Arc<B>) -> Outcome {
    let programme =
        register_organisation(&*backend, "Retention", OrganisationKind::Programme, &[]).await?;
    let org = programme.id;
    let hold = PersonCommand::PlaceLegalHold {
        reason: "Witness in a trial".to_owned(),
    };
    let erase = PersonCommand::Erase {
        reason: ErasureReason::SurvivorRequest,
    };
    let closed = record_person(&*backend, org, &[]).await?;
    plan_for(&*backend, &closed, true).await?;
    let held = record_person(&*backend, org, &[hold]).await?;
    plan_for(&*backend, &held, true).await?;
    let drafted = record_person(&*backend, org, &[]).await?;
    plan_for(&*backend, &drafted, false).await?;
    let planless = record_person(&*backend, org, &[]).await?;
    let erased = record_person(&*backend, org, &[erase]).await?;
    plan_for(&*backend, &erased, true).await?;
    // Another organisation's survivor, in the same state as the first.
    let elsewhere =
        register_organisation(&*backend, "Elsewhere", OrganisationKind::Programme, &[]).await?;
    let theirs = record_person(&*backend, elsewhere.id, &[]).await?;
    plan_for(&*backend, &theirs, true).await?;

    // Five years (the default) after the last plan closed at `at(1)`.
    let ends = at(1) + chrono::Months::new(60);
    let due = |now| {
        let backend = backend.clone();
        async move {
            let mut due = step("retention ended", backend.retention_ended(now, 100).await)?;
            due.sort();
            Ok::<_, String>(due)
        }
    };
    ensure!(
        due(ends - Span::seconds(1)).await?.is_empty(),
        "nobody is due a second before the period ends"
    );
    let mut expected = vec![closed.id.0, theirs.id.0];
    expected.sort();
    let found = due(ends).await?;
    ensure!(
        found == expected,
        "only closed plans without a hold are due when the period ends: {found:?}"
    );
    let page = Page {
        offset: 0,
        limit: 10,
    };
    let upcoming = step(
        "upcoming erasures",
        backend
            .upcoming_erasures(org.0, ends + Span::days(1), page)
            .await,
    )?;
    let listed: Vec<_> = upcoming
        .iter()
        .map(|u| (u.person_id, u.erase_at, u.held_since.is_some()))
        .collect();
    let mut expected = vec![(closed.id.0, ends, false), (held.id.0, ends, true)];
    expected.sort_by_key(|e| e.0);
    let mut listed_sorted = listed.clone();
    listed_sorted.sort_by_key(|e| e.0);
    ensure!(
        listed_sorted == expected,
        "the organisation's upcoming erasures, held ones marked: {listed:?}"
    );
    ensure!(
        step(
            "upcoming erasures",
            backend.upcoming_erasures(org.0, ends, page).await
        )?
        .is_empty(),
        "an erasure at `until` is not before it"
    );
    let review = step(
        "persons to review",
        backend.persons_to_review(org.0, at(2), page).await,
    )?;
    let mut reviewed: Vec<_> = review.iter().map(|r| (r.person_id, r.drafts)).collect();
    reviewed.sort();
    let mut expected = vec![(drafted.id.0, 1), (planless.id.0, 0)];
    expected.sort();
    ensure!(
        reviewed == expected,
        "persons with only drafts or no plan are to review: {review:?}"
    );
    ensure!(
        review.iter().all(|r| r.last_activity_at <= at(1)),
        "their last activity is their last event: {review:?}"
    );
    ensure!(
        step(
            "persons to review",
            backend.persons_to_review(org.0, at(0), page).await
        )?
        .is_empty(),
        "persons touched since `before` are not listed"
    );
    // The rows hold what the retention needs, and a rebuild gives them back alike.
    let ids = [closed.id.0, held.id.0, erased.id.0];
    let read = |backend: Arc<B>| async move {
        let mut rows = step("persons by id", backend.persons_by_id(&ids).await)?;
        rows.sort_by_key(|r| r.person_id);
        Ok::<_, String>(rows)
    };
    let before = read(backend.clone()).await?;
    let mut expected = vec![
        projection::person_row(&closed),
        projection::person_row(&held),
        projection::person_row(&erased),
    ];
    expected.sort_by_key(|r| r.person_id);
    ensure!(before == expected, "person rows as projected: {before:?}");
    step("rebuild", backend.rebuild_projections().await)?;
    let after = read(backend.clone()).await?;
    ensure!(
        after == before,
        "a rebuild writes the same person rows: {after:?}"
    );
    // A person on hold keeps her key, however her erasure is asked for.
    use crate::person_keys::{KeyErasure, PersonKey};
    let check = step("key check", backend.master_key_check(&[1; 32]).await)?;
    step(
        "store",
        backend.store_person_key(held.id.0, &[2; 60], &check).await,
    )?;
    ensure!(
        step("erase", backend.erase_person_key(held.id.0, ends).await)? == KeyErasure::Held
            && step("read", backend.person_key(held.id.0).await)?
                == Some(PersonKey::Wrapped(vec![2; 60])),
        "a held person's key is not destroyed"
    );
    Ok(())
}

async fn blind_index<B: Backend>(backend: Arc<B>) -> Outcome {
    use crate::{NewPersonKey, SearchTerms};
    let (org, other) = (Uuid::new_v4(), Uuid::new_v4());
    let (joy, ada) = (Uuid::new_v4(), Uuid::new_v4());
    let terms = |person: Uuid, terms: &[&[u8]]| SearchTerms {
        person,
        organisation: org,
        terms: terms.iter().map(|t| t.to_vec()).collect(),
    };
    // A new person's terms are stored with her key, by the append that opens her stream.
    let opening = |person: Uuid, found_by: &[&[u8]]| {
        let mut a = append(
            &format!("person-{person}"),
            ExpectedVersion::NoStream,
            1,
            at(0),
        );
        a.new_person_key = Some(NewPersonKey {
            person,
            wrapped: vec![1; 60],
            master_check: vec![1; 32],
        });
        a.search_terms = Some(terms(person, found_by));
        a
    };
    step("append", backend.append(opening(joy, &[b"a", b"b"])).await)?;
    step("append", backend.append(opening(ada, &[b"a"])).await)?;
    let find = |organisation: Uuid, asked: &[&[u8]]| {
        let backend = backend.clone();
        let asked: Vec<Vec<u8>> = asked.iter().map(|t| t.to_vec()).collect();
        async move {
            let mut found = step(
                "persons matching",
                backend.persons_matching(organisation, &asked, 10).await,
            )?;
            found.sort();
            Ok::<_, String>(found)
        }
    };
    let mut both = vec![joy, ada];
    both.sort();
    ensure!(find(org, &[b"a"]).await? == both, "one term finds both");
    ensure!(
        find(org, &[b"b", b"a"]).await? == vec![joy],
        "every term must match, in any order"
    );
    ensure!(
        find(org, &[b"a", b"c"]).await?.is_empty(),
        "a term she lacks excludes her"
    );
    ensure!(find(org, &[]).await?.is_empty(), "no terms find nobody");
    ensure!(
        find(other, &[b"a"]).await?.is_empty(),
        "another organisation finds nobody"
    );
    // Her new terms, with a later append to her stream, replace the old.
    let mut correction = append(
        &format!("person-{joy}"),
        ExpectedVersion::Exact(1),
        1,
        at(1),
    );
    correction.search_terms = Some(terms(joy, &[b"c"]));
    step("append", backend.append(correction).await)?;
    ensure!(
        find(org, &[b"a", b"b"]).await?.is_empty() && find(org, &[b"c"]).await? == vec![joy],
        "replaced terms no longer find her"
    );
    // Erasure takes her terms with her key.
    ensure!(
        step("erase", backend.erase_person_key(ada, at(5)).await)?
            == crate::person_keys::KeyErasure::Destroyed,
        "her key is destroyed"
    );
    ensure!(
        find(org, &[b"a"]).await?.is_empty(),
        "an erased person is not found"
    );
    let mut late = append(
        &format!("person-{ada}"),
        ExpectedVersion::Exact(1),
        1,
        at(6),
    );
    late.search_terms = Some(terms(ada, &[b"a"]));
    step("append", backend.append(late).await)?;
    ensure!(
        find(org, &[b"a"]).await?.is_empty(),
        "nothing is indexed for an erased person"
    );
    Ok(())
}

async fn console_sessions<B: Backend>(backend: Arc<B>) -> Outcome {
    let party = Uuid::new_v4();
    let row = step("register", register_party(backend.as_ref(), party).await)?;
    let found = step(
        "by email",
        backend
            .active_parties_with_email("CONFORMANCE@example.org")
            .await,
    )?;
    ensure!(
        found.iter().map(|p| p.party_id).collect::<Vec<_>>() == vec![party],
        "an active party is found by email, case ignored: {found:?}"
    );

    // Links: used once, before they expire, unless a newer one withdrew them.
    let link = |hash: u8, issued: i64| NewSignInLink {
        secret_hash: vec![hash; 32],
        party_id: party,
        issued_at: at(issued),
        expires_at: at(issued + 900),
    };
    step("link", backend.insert_sign_in_link(&link(1, 0)).await)?;
    ensure!(
        step("stands", backend.sign_in_link_party(&[1; 32], at(10)).await)? == Some(party),
        "a sign-in link stands until used"
    );
    ensure!(
        step("use", backend.use_sign_in_link(&[1; 32], at(900)).await)?.is_none(),
        "a sign-in link is not used at its expiry"
    );
    step("link", backend.insert_sign_in_link(&link(2, 20)).await)?;
    step("link", backend.insert_sign_in_link(&link(3, 30)).await)?;
    ensure!(
        step("use", backend.use_sign_in_link(&[2; 32], at(40)).await)?.is_none(),
        "a newer sign-in link withdraws the older one"
    );
    let (first, second) = tokio::join!(
        backend.use_sign_in_link(&[3; 32], at(40)),
        backend.use_sign_in_link(&[3; 32], at(40))
    );
    let used = [step("use", first)?, step("use", second)?];
    ensure!(
        used.iter().filter(|u| **u == Some(party)).count() == 1 && used.contains(&None),
        "a sign-in link used twice at once is used once: {used:?}"
    );
    ensure!(
        step("stands", backend.sign_in_link_party(&[3; 32], at(41)).await)?.is_none(),
        "a used sign-in link no longer stands"
    );

    // Sessions: idle limit, absolute end, signing out, deactivation, the token's revocation.
    let session = |hash: u8, token: Option<Uuid>| NewSession {
        session_id: Uuid::new_v4(),
        secret_hash: vec![hash; 32],
        party_id: party,
        token_id: token,
        started_at: at(0),
        expires_at: at(7200),
    };
    let by_link = session(10, None);
    step("session", backend.insert_session(&by_link).await)?;
    let owner = step(
        "session owner",
        backend.session_owner(&[10; 32], at(60), at(-1)).await,
    )?;
    ensure!(
        owner
            .as_ref()
            .map(|o| (o.session_id, o.party.party_id, o.last_seen_at, o.expires_at))
            == Some((by_link.session_id, party, at(0), at(7200))),
        "a session is found by its hash, with its party and times: {owner:?}"
    );
    ensure!(
        step(
            "session owner",
            backend.session_owner(&[10; 32], at(60), at(0)).await
        )?
        .is_none(),
        "a session not seen since its idle limit does not stand"
    );
    step(
        "touch",
        backend.touch_session(by_link.session_id, at(600)).await,
    )?;
    step(
        "touch",
        backend.touch_session(by_link.session_id, at(300)).await,
    )?;
    let seen = step(
        "session owner",
        backend.session_owner(&[10; 32], at(601), at(0)).await,
    )?
    .map(|o| o.last_seen_at);
    ensure!(
        seen == Some(at(600)),
        "the latest time a session was seen is kept: {seen:?}"
    );
    ensure!(
        step(
            "session owner",
            backend.session_owner(&[10; 32], at(7200), at(0)).await
        )?
        .is_none(),
        "a session does not stand from its absolute end"
    );
    ensure!(
        step(
            "session owner",
            backend.session_owner(&[11; 32], at(1), at(-1)).await
        )?
        .is_none(),
        "an unknown session finds no one"
    );
    ensure!(
        step("sign out", backend.end_session(&[10; 32], at(700)).await)?
            && !step("sign out", backend.end_session(&[10; 32], at(701)).await)?,
        "a session ends once"
    );
    ensure!(
        step(
            "session owner",
            backend.session_owner(&[10; 32], at(702), at(0)).await
        )?
        .is_none(),
        "an ended session does not stand"
    );
    let token = NewToken {
        token_id: Uuid::new_v4(),
        token_hash: vec![12; 32],
        party_id: party,
        role: "social_worker".to_owned(),
        issued_at: at(0),
        issued_by: None,
        expires_at: at(3600),
    };
    step("insert token", backend.insert_token(&token).await)?;
    step(
        "session",
        backend
            .insert_session(&session(13, Some(token.token_id)))
            .await,
    )?;
    ensure!(
        step(
            "session owner",
            backend.session_owner(&[13; 32], at(1), at(-1)).await
        )?
        .is_some_and(|o| o.token_id == Some(token.token_id)),
        "a session started by a token stands with it"
    );
    ensure!(
        step(
            "session owner",
            backend.session_owner(&[13; 32], at(3600), at(-1)).await
        )?
        .is_none(),
        "a session ends when its token expires"
    );
    step("revoke", backend.revoke_token(token.token_id).await)?;
    ensure!(
        step(
            "session owner",
            backend.session_owner(&[13; 32], at(1), at(-1)).await
        )?
        .is_none(),
        "a session ends when its token is revoked"
    );
    step("session", backend.insert_session(&session(14, None)).await)?;
    let mut deactivated = append(
        &format!("party-{party}"),
        ExpectedVersion::Exact(1),
        1,
        at(0),
    );
    deactivated.projection.parties.push(projection::PartyRow {
        version: 2,
        active: false,
        ..row
    });
    step("append", backend.append(deactivated).await)?;
    ensure!(
        step(
            "session owner",
            backend.session_owner(&[14; 32], at(1), at(-1)).await
        )?
        .is_none(),
        "a deactivated party's session does not stand"
    );
    ensure!(
        step(
            "by email",
            backend
                .active_parties_with_email("conformance@example.org")
                .await
        )?
        .is_empty(),
        "a deactivated party is not found by email"
    );
    Ok(())
}
