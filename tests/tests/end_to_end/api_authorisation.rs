//! Who may do what, operation by operation and role by role, through the real API: each cell
//! is either allowed (the operation succeeds) or `FORBIDDEN` (and nothing is written). A read
//! of a plan the role may not see at all is `NOT_FOUND`, as for an id that does not exist.
#![allow(clippy::unwrap_used)]

use homeward_tests::api::{error_code, Person, TestApi};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    SocialWorker,
    /// A social worker of another organisation.
    OtherSocialWorker,
    Supervisor,
    /// Assigned the passport step.
    Liaison,
    /// Assigned the origin contact and the first follow-up.
    Partner,
    Admin,
}
use Role::*;

const ALL: &[Role] = &[
    SocialWorker,
    OtherSocialWorker,
    Supervisor,
    Liaison,
    Partner,
    Admin,
];
const CASE_TEAM: &[Role] = &[SocialWorker, Supervisor];

/// What the plan needs before the operation can succeed for someone allowed to do it.
#[derive(Debug, Clone, Copy)]
enum Setup {
    Active,
    Travelling,
    Arrived,
    PassportBlocked,
}

struct Case {
    name: &'static str,
    query: &'static str,
    setup: Setup,
    allowed: &'static [Role],
}

const fn case(
    name: &'static str,
    query: &'static str,
    setup: Setup,
    allowed: &'static [Role],
) -> Case {
    Case {
        name,
        query,
        setup,
        allowed,
    }
}

/// Who may see the plan of the fixture at all (its case team, and those with a step on it).
const PLAN_READERS: &[Role] = &[SocialWorker, Supervisor, Liaison, Partner];

/// Whether a case reads the fixture's plan by its id.
fn reads_the_plan(case: &Case) -> bool {
    case.query.starts_with("query($plan: ID!)")
}

/// Whether a case names the fixture's person, whom only her organisation's case team knows of:
/// to the case team of another organisation she does not exist.
fn names_the_person(case: &Case) -> bool {
    case.query.starts_with("mutation($person: ID!")
}

const CASES: &[Case] = &[
    // Reads
    case("me", "{ me { id } }", Setup::Active, ALL),
    case("templates", "{ templates { name } }", Setup::Active, ALL),
    case("plan", "query($plan: ID!) { plan(id: $plan) { id status } }", Setup::Active,
        &[SocialWorker, Supervisor, Liaison, Partner]),
    case("plan goals (case file)", "query($plan: ID!) { plan(id: $plan) { goals { aim } } }",
        Setup::Active, CASE_TEAM),
    case("plan consents (case file)", "query($plan: ID!) { plan(id: $plan) { consents { kind } } }",
        Setup::Active, CASE_TEAM),
    case("plans", "{ plans { edges { node { id } } } }", Setup::Active,
        &[SocialWorker, OtherSocialWorker, Supervisor, Liaison, Partner]),
    case("tasks (own)", "{ tasks { edges { node { key } } } }", Setup::Active,
        &[SocialWorker, OtherSocialWorker, Supervisor, Liaison, Partner]),
    // Her own inbox for the social worker; her supervisor's view of it; nobody else's.
    case("tasks (the social worker's)",
        "query($worker: ID!) { tasks(filter: { assignee: $worker }) { edges { node { key } } } }",
        Setup::Active, CASE_TEAM),
    case("planHistory", "query($plan: ID!) { planHistory(id: $plan) { edges { node { type } } } }",
        Setup::Active, CASE_TEAM),
    case("planAsOf", "query($plan: ID!) { planAsOf(id: $plan, at: \"2030-01-01T00:00:00Z\") { id } }",
        Setup::Active, CASE_TEAM),
    case("parties", "{ parties { edges { node { id } } } }", Setup::Active,
        &[SocialWorker, OtherSocialWorker, Supervisor, Liaison, Admin]),
    case("party", "query($worker: ID!) { party(id: $worker) { id displayName } }", Setup::Active,
        &[SocialWorker, OtherSocialWorker, Supervisor, Liaison, Admin]),
    // Plan commands
    case("registerPerson", "mutation { registerPerson(input: { fullName: \"A. B.\" }) }",
        Setup::Active, &[SocialWorker, OtherSocialWorker, Supervisor]),
    // The person was registered in the social worker's organisation: nobody else plans for her.
    case("openPlan", "mutation($person: ID!, $worker: ID!) { openPlan(input: { personId: $person, originCountry: \"NG\", caseWorker: $worker }) { version } }",
        Setup::Active, CASE_TEAM),
    case("setGoals", "mutation($plan: ID!) { setGoals(planId: $plan, goals: [{ area: HEALTH, aim: \"Rest\" }]) { version } }",
        Setup::Active, CASE_TEAM),
    case("addStep", "mutation($plan: ID!) { addStep(planId: $plan, step: { key: \"extra\", kind: CUSTOM, title: \"Extra\" }) { version } }",
        Setup::Active, CASE_TEAM),
    case("removeStep", "mutation($plan: ID!) { removeStep(planId: $plan, step: \"legal_clearance\", reason: \"none pending\") { version } }",
        Setup::Active, CASE_TEAM),
    case("assignStep", "mutation($plan: ID!, $worker: ID!) { assignStep(planId: $plan, step: \"medical_check\", assignee: $worker) { version } }",
        Setup::Active, CASE_TEAM),
    case("rescheduleStep", "mutation($plan: ID!) { rescheduleStep(planId: $plan, step: \"medical_check\", due: { at: { localDateTime: \"2026-04-01T09:00:00\", timeZone: \"Europe/Paris\" } }) { version } }",
        Setup::Active, CASE_TEAM),
    case("changeDependencies", "mutation($plan: ID!) { changeDependencies(planId: $plan, step: \"legal_clearance\", dependsOn: [\"medical_check\"]) { version } }",
        Setup::Active, CASE_TEAM),
    case("prioritiseStep", "mutation($plan: ID!) { prioritiseStep(planId: $plan, step: \"legal_clearance\", priority: URGENT) { version } }",
        Setup::Active, CASE_TEAM),
    case("setReminderPolicy", "mutation($plan: ID!) { setReminderPolicy(planId: $plan, step: \"medical_check\", policy: { onDue: true, beforeDueDays: 2 }) { version } }",
        Setup::Active, CASE_TEAM),
    case("startStep (passport)", "mutation($plan: ID!) { startStep(planId: $plan, step: \"passport\") { version } }",
        Setup::Active, &[SocialWorker, Supervisor, Liaison]),
    case("startStep (origin contact)", "mutation($plan: ID!) { startStep(planId: $plan, step: \"origin_contact\") { version } }",
        Setup::Active, &[SocialWorker, Supervisor, Partner]),
    case("startStep (medical check)", "mutation($plan: ID!) { startStep(planId: $plan, step: \"medical_check\") { version } }",
        Setup::Active, CASE_TEAM),
    case("blockStep (passport)", "mutation($plan: ID!) { blockStep(planId: $plan, step: \"passport\", reason: \"embassy closed\") { version } }",
        Setup::Active, &[SocialWorker, Supervisor, Liaison]),
    case("unblockStep (passport)", "mutation($plan: ID!) { unblockStep(planId: $plan, step: \"passport\") { version } }",
        Setup::PassportBlocked, &[SocialWorker, Supervisor, Liaison]),
    case("completeStep (passport)", "mutation($plan: ID!) { completeStep(planId: $plan, step: \"passport\") { version } }",
        Setup::Active, &[SocialWorker, Supervisor, Liaison]),
    case("completeStep (origin contact)", "mutation($plan: ID!) { completeStep(planId: $plan, step: \"origin_contact\") { version } }",
        Setup::Active, &[SocialWorker, Supervisor, Partner]),
    // Only the assignee says "seen and taken on".
    case("acknowledgeStep (passport)", "mutation($plan: ID!) { acknowledgeStep(planId: $plan, step: \"passport\") { version } }",
        Setup::Active, &[Liaison]),
    case("acknowledgeStep (origin contact)", "mutation($plan: ID!) { acknowledgeStep(planId: $plan, step: \"origin_contact\") { version } }",
        Setup::Active, &[Partner]),
    case("cancelStep", "mutation($plan: ID!) { cancelStep(planId: $plan, step: \"legal_clearance\", reason: \"not needed\") { version } }",
        Setup::Active, CASE_TEAM),
    case("updateDocumentStatus", "mutation($plan: ID!) { updateDocumentStatus(planId: $plan, step: \"passport\", status: ISSUED) { version } }",
        Setup::Active, &[SocialWorker, Supervisor, Liaison]),
    case("recordConsent", "mutation($plan: ID!) { recordConsent(planId: $plan, consent: { kind: FAMILY_CONTACT }) { version } }",
        Setup::Active, CASE_TEAM),
    case("withdrawConsent", "mutation($plan: ID!) { withdrawConsent(planId: $plan, consent: { kind: RETURN }) { version } }",
        Setup::Active, CASE_TEAM),
    case("confirmDeparture", "mutation($plan: ID!) { confirmDeparture(planId: $plan, departedAt: \"2026-03-01T09:00:00Z\", overrideReason: \"flight booked by IOM\") { version } }",
        Setup::Active, CASE_TEAM),
    case("confirmArrival", "mutation($plan: ID!) { confirmArrival(planId: $plan, arrivedAt: \"2026-03-01T09:00:00Z\") { version } }",
        Setup::Travelling, &[SocialWorker, Supervisor, Partner]),
    case("recordFollowUp", "mutation($plan: ID!) { recordFollowUp(planId: $plan, step: \"follow_up_1\", outcome: { visitedOn: \"2026-03-01\", wellbeing: FAIR }) { version } }",
        Setup::Arrived, &[SocialWorker, Supervisor, Partner]),
    case("closePlan", "mutation($plan: ID!) { closePlan(planId: $plan, reason: OPTED_OUT) { version } }",
        Setup::Active, CASE_TEAM),
    // Parties and tokens
    case("registerParty", "mutation($organisation: ID!) { registerParty(input: { displayName: \"New\", email: \"new@x.example\", role: SOCIAL_WORKER, organisation: $organisation, country: \"FR\", language: \"fr\", timeZone: \"Europe/Paris\" }) { id } }",
        Setup::Active, &[Admin]),
    case("updateParty", "mutation($worker: ID!, $organisation: ID!) { updateParty(id: $worker, input: { displayName: \"Renamed\", email: \"amina@safe-passage.example\", role: SOCIAL_WORKER, organisation: $organisation, country: \"FR\", language: \"fr\", timeZone: \"Europe/Paris\" }) { id } }",
        Setup::Active, &[Admin]),
    case("setReminderSettings (the social worker's)", "mutation($worker: ID!) { setReminderSettings(party: $worker, input: { language: \"fr\", timeZone: \"Europe/Paris\", digestSchedule: \"0 8 * * Mon\" }) { id } }",
        Setup::Active, &[SocialWorker, Admin]),
    // Her own token, by herself; nobody else's, admins included (they invite her instead).
    case("createToken", "mutation($worker: ID!) { createToken(party: $worker) { secret } }",
        Setup::Active, &[SocialWorker]),
    // Into a case team with a supervisor, by the supervisor.
    case("inviteParty", "mutation($worker: ID!) { inviteParty(party: $worker) { sentTo } }",
        Setup::Active, &[Supervisor]),
    case("revokeToken", "mutation($spareToken: ID!) { revokeToken(tokenId: $spareToken) }",
        Setup::Active, &[Admin]),
];

struct World {
    api: TestApi,
    worker: Person,
    other: Person,
    supervisor: Person,
    liaison: Person,
    partner: Person,
}

impl World {
    fn token(&self, role: Role) -> &str {
        match role {
            SocialWorker => &self.worker.token,
            OtherSocialWorker => &self.other.token,
            Supervisor => &self.supervisor.token,
            Liaison => &self.liaison.token,
            Partner => &self.partner.token,
            Admin => &self.api.admin,
        }
    }

    /// A fresh plan of the social worker's organisation in the state `setup` asks for; returns
    /// the variables the cases use.
    async fn fixture(&self, setup: Setup) -> Value {
        let api = &self.api;
        let w = &self.worker.token;
        let person = api.register_person(w, "Joy N.").await;
        let plan = api
            .data(w, "mutation($p: ID!) { openPlan(input: { personId: $p, originCountry: \"NG\" }) { plan { id } } }", json!({ "p": person }))
            .await["openPlan"]["plan"]["id"]
            .clone();
        let vars = json!({ "plan": plan, "person": person, "worker": self.worker.id,
                           "organisation": self.api.organisation("Safe Passage").await,
                           "liaison": self.liaison.id, "partner": self.partner.id });
        for command in [
            "mutation($plan: ID!, $liaison: ID!) { assignStep(planId: $plan, step: \"passport\", assignee: $liaison) { version } }",
            "mutation($plan: ID!, $partner: ID!) { assignStep(planId: $plan, step: \"origin_contact\", assignee: $partner) { version } }",
            "mutation($plan: ID!, $partner: ID!) { assignStep(planId: $plan, step: \"follow_up_1\", assignee: $partner) { version } }",
            "mutation($plan: ID!) { recordConsent(planId: $plan, consent: { kind: RETURN }) { version } }",
        ] {
            api.data(w, command, vars.clone()).await;
        }
        let extra: &[&str] = match setup {
            Setup::Active => &[],
            Setup::PassportBlocked => &["mutation($plan: ID!) { blockStep(planId: $plan, step: \"passport\", reason: \"embassy closed\") { version } }"],
            Setup::Travelling => &["mutation($plan: ID!) { confirmDeparture(planId: $plan, departedAt: \"2026-03-01T09:00:00Z\", overrideReason: \"flight booked\") { version } }"],
            Setup::Arrived => &[
                "mutation($plan: ID!) { confirmDeparture(planId: $plan, departedAt: \"2026-03-01T09:00:00Z\", overrideReason: \"flight booked\") { version } }",
                "mutation($plan: ID!) { confirmArrival(planId: $plan, arrivedAt: \"2026-03-01T09:00:00Z\") { version } }",
            ],
        };
        for command in extra {
            api.data(w, command, vars.clone()).await;
        }
        let spare = api
            .data(
                &self.partner.token,
                "mutation($partner: ID!) { createToken(party: $partner) { tokenId } }",
                vars.clone(),
            )
            .await["createToken"]["tokenId"]
            .clone();
        let mut vars = vars;
        vars["spareToken"] = spare;
        vars
    }
}

/// Only the variables a query declares (GraphQL refuses unused ones in strict servers; ours
/// ignores them, but sending exactly what is declared keeps the cases honest).
fn declared(query: &str, all: &Value) -> Value {
    let mut vars = serde_json::Map::new();
    for (name, value) in all.as_object().unwrap() {
        if query.contains(&format!("${name}:")) {
            vars.insert(name.clone(), value.clone());
        }
    }
    Value::Object(vars)
}

#[tokio::test]
async fn every_operation_for_every_role_is_allowed_or_forbidden() {
    let api = TestApi::start().await;
    let worker = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let other = api.party("SOCIAL_WORKER", "Olga", "Other Shelter").await;
    let supervisor = api.party("SUPERVISOR", "Sam", "Safe Passage").await;
    let liaison = api.party("GOVERNMENT_LIAISON", "Luc", "Prefecture").await;
    let partner = api.party("PARTNER_CONTACT", "Grace", "Hope Lagos").await;
    let world = World {
        api,
        worker,
        other,
        supervisor,
        liaison,
        partner,
    };

    let mut failures = Vec::new();
    let mut cells = 0;
    for case in CASES {
        for &role in ALL {
            cells += 1;
            let vars = world.fixture(case.setup).await;
            let events_before = world.api.db.count("SELECT count(*) FROM events").await;
            let body = world
                .api
                .gql(world.token(role), case.query, declared(case.query, &vars))
                .await;
            let allowed = case.allowed.contains(&role);
            // Those who may not see the plan are not told it exists.
            let refusal = if (reads_the_plan(case) && !PLAN_READERS.contains(&role))
                || (names_the_person(case) && role == OtherSocialWorker)
            {
                "NOT_FOUND"
            } else {
                "FORBIDDEN"
            };
            let outcome = match (allowed, body.get("errors"), error_code(&body)) {
                (true, None, _) => Ok(()),
                (false, Some(_), Some(code)) if code == refusal => {
                    let events_after = world.api.db.count("SELECT count(*) FROM events").await;
                    if events_after == events_before {
                        Ok(())
                    } else {
                        Err(format!("{refusal} but events were written"))
                    }
                }
                (true, Some(_), _) => Err(format!("expected success, got {body}")),
                (false, _, _) => Err(format!("expected {refusal}, got {body}")),
            };
            if let Err(why) = outcome {
                failures.push(format!("{} as {role:?}: {why}", case.name));
            }
        }
    }
    assert_eq!(cells, CASES.len() * ALL.len());
    assert!(
        failures.is_empty(),
        "{} cells wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn without_a_valid_token_nothing_is_seen() {
    let api = TestApi::start().await;
    let worker = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    for token in [None, Some("hw_not-a-real-token"), Some("garbage"), Some("")] {
        for query in [
            "{ me { id } }",
            "{ __schema { types { name } } }",
            "{ plans { edges { node { id } } } }",
        ] {
            let (status, body) = api.post(token, query, json!({})).await;
            assert_eq!(status, 401, "{body}");
            assert_eq!(error_code(&body), Some("UNAUTHENTICATED"));
            assert!(body.get("data").is_none(), "{body}");
        }
    }
    // A revoked token stops working at once.
    let token_id = api
        .data(
            &worker.token,
            "mutation($id: ID!) { createToken(party: $id) { tokenId secret } }",
            json!({ "id": worker.id }),
        )
        .await["createToken"]
        .clone();
    let secret = token_id["secret"].as_str().unwrap();
    assert_eq!(
        api.post(Some(secret), "{ me { id } }", json!({})).await.0,
        200
    );
    api.data(
        &api.admin,
        "mutation($t: ID!) { revokeToken(tokenId: $t) }",
        json!({ "t": token_id["tokenId"] }),
    )
    .await;
    let (status, body) = api.post(Some(secret), "{ me { id } }", json!({})).await;
    assert_eq!((status, error_code(&body)), (401, Some("UNAUTHENTICATED")));
    // An expired one too (the clock moves past its one day).
    let short = api
        .data(
            &worker.token,
            "mutation($id: ID!) { createToken(party: $id, days: 1) { secret } }",
            json!({ "id": worker.id }),
        )
        .await["createToken"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        api.post(Some(&short), "{ me { id } }", json!({})).await.0,
        200
    );
    api.clock.advance(chrono::Duration::days(2));
    assert_eq!(
        api.post(Some(&short), "{ me { id } }", json!({})).await.0,
        401
    );
}

/// The plan's state when a field is read: each state changes who may see some fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldState {
    /// Arrived; the survivor consents to sharing data with the partner, who holds the origin
    /// contact step and the first follow-up.
    Shared,
    /// Data-sharing consent withdrawn.
    Withdrawn,
    /// Consent given again, the origin contact step taken from the partner (the follow-up
    /// stays theirs).
    Reassigned,
    /// Closed, the reason given.
    Closed,
}
use FieldState::*;

const STATES: [FieldState; 4] = [Shared, Withdrawn, Reassigned, Closed];

/// A sensitive field, as a selection on the plan, and who sees it (not null) in each state.
struct FieldCase {
    name: &'static str,
    selection: &'static str,
    pointer: &'static str,
    shown: fn(FieldState) -> &'static [Role],
}

const READERS: &[Role] = &[SocialWorker, Supervisor, Liaison, Partner];
const WITH_LIAISON: &[Role] = &[SocialWorker, Supervisor, Liaison];
const WITH_PARTNER: &[Role] = &[SocialWorker, Supervisor, Partner];

/// The partner while the survivor shares data with them (and, for travel, while they hold the
/// origin contact step).
fn partner_sharing(state: FieldState) -> &'static [Role] {
    match state {
        Shared | Reassigned | Closed => WITH_PARTNER,
        Withdrawn => CASE_TEAM,
    }
}

const FIELD_CASES: &[FieldCase] = &[
    FieldCase {
        name: "departedAt",
        selection: "departedAt",
        pointer: "/plan/departedAt",
        shown: |s| if s == Shared { WITH_PARTNER } else { CASE_TEAM },
    },
    FieldCase {
        name: "arrivedAt",
        selection: "arrivedAt",
        pointer: "/plan/arrivedAt",
        shown: |s| if s == Shared { WITH_PARTNER } else { CASE_TEAM },
    },
    FieldCase {
        name: "suspended",
        selection: "suspended",
        pointer: "/plan/suspended",
        shown: |_| CASE_TEAM,
    },
    FieldCase {
        name: "closeReason",
        selection: "closeReason",
        pointer: "/plan/closeReason",
        shown: |s| if s == Closed { CASE_TEAM } else { &[] },
    },
    FieldCase {
        name: "caseWorker.displayName",
        selection: "caseWorker { displayName }",
        pointer: "/plan/caseWorker/displayName",
        shown: |_| READERS,
    },
    FieldCase {
        name: "caseWorker.email",
        selection: "caseWorker { email }",
        pointer: "/plan/caseWorker/email",
        shown: |_| WITH_LIAISON,
    },
    FieldCase {
        name: "caseWorker.supervisor",
        selection: "caseWorker { supervisor { id } }",
        pointer: "/plan/caseWorker/supervisor/id",
        shown: |_| WITH_LIAISON,
    },
    FieldCase {
        name: "caseWorker.reminderSettings",
        selection: "caseWorker { reminderSettings { quietHoursStart } }",
        pointer: "/plan/caseWorker/reminderSettings/quietHoursStart",
        shown: |_| &[SocialWorker],
    },
    FieldCase {
        name: "person.fullName",
        selection: "person { fullName }",
        pointer: "/plan/person/fullName",
        shown: |s| {
            if s == Withdrawn {
                WITH_LIAISON
            } else {
                READERS
            }
        },
    },
    FieldCase {
        name: "person.dateOfBirth",
        selection: "person { dateOfBirth }",
        pointer: "/plan/person/dateOfBirth",
        shown: |_| WITH_LIAISON,
    },
    FieldCase {
        name: "person.phone",
        selection: "person { phone }",
        pointer: "/plan/person/phone",
        shown: partner_sharing,
    },
    FieldCase {
        name: "person.preferredLanguage",
        selection: "person { preferredLanguage }",
        pointer: "/plan/person/preferredLanguage",
        shown: partner_sharing,
    },
    FieldCase {
        name: "person.email",
        selection: "person { email }",
        pointer: "/plan/person/email",
        shown: |_| CASE_TEAM,
    },
    FieldCase {
        name: "person.address",
        selection: "person { address }",
        pointer: "/plan/person/address",
        shown: |_| CASE_TEAM,
    },
    FieldCase {
        name: "step origin_contact",
        selection: "step(key: \"origin_contact\") { key }",
        pointer: "/plan/step/key",
        shown: |s| {
            if matches!(s, Shared | Withdrawn) {
                WITH_PARTNER
            } else {
                CASE_TEAM
            }
        },
    },
    FieldCase {
        name: "step passport",
        selection: "step(key: \"passport\") { key }",
        pointer: "/plan/step/key",
        shown: |_| WITH_LIAISON,
    },
    FieldCase {
        name: "step medical_check",
        selection: "step(key: \"medical_check\") { key }",
        pointer: "/plan/step/key",
        shown: |_| CASE_TEAM,
    },
    FieldCase {
        name: "step follow_up_1",
        selection: "step(key: \"follow_up_1\") { key }",
        pointer: "/plan/step/key",
        shown: |_| WITH_PARTNER,
    },
    // Due so many days after the arrival: that tells the arrival, as `arrivedAt` would.
    FieldCase {
        name: "step follow_up_1 dueRule",
        selection: "step(key: \"follow_up_1\") { dueRule { milestone days } }",
        pointer: "/plan/step/dueRule/days",
        shown: |s| {
            if s == Shared {
                WITH_PARTNER
            } else {
                CASE_TEAM
            }
        },
    },
    FieldCase {
        name: "goals (case file)",
        selection: "goals { aim }",
        pointer: "/plan/goals/0/aim",
        shown: |_| CASE_TEAM,
    },
    FieldCase {
        name: "consents (case file)",
        selection: "consents { kind }",
        pointer: "/plan/consents/0/kind",
        shown: |_| CASE_TEAM,
    },
];

/// Every sensitive field of a plan, its steps, its person and its parties, for every role, in
/// every state that changes who may see it: shown (not null) or hidden (null, or the whole plan
/// `NOT_FOUND` for those who may not see it at all).
#[tokio::test]
async fn every_sensitive_field_for_every_role_is_shown_or_hidden() {
    let api = TestApi::start().await;
    let worker = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let other = api.party("SOCIAL_WORKER", "Olga", "Other Shelter").await;
    let supervisor = api.party("SUPERVISOR", "Sam", "Safe Passage").await;
    let liaison = api.party("GOVERNMENT_LIAISON", "Luc", "Prefecture").await;
    let partner = api.party("PARTNER_CONTACT", "Grace", "Hope Lagos").await;
    // Amina answers to Sam.
    api.data(
        &api.admin,
        "mutation($id: ID!, $input: PartyInput!) { updateParty(id: $id, input: $input) { id } }",
        json!({ "id": worker.id, "input": {
            "displayName": "Amina", "email": "amina@safe-passage.example", "role": "SOCIAL_WORKER",
            "organisation": api.organisation("Safe Passage").await, "country": "FR",
            "language": "fr", "timeZone": "Europe/Paris", "supervisor": supervisor.id } }),
    )
    .await;
    let world = World {
        api,
        worker,
        other,
        supervisor,
        liaison,
        partner,
    };
    let api = &world.api;
    let w = &world.worker.token;
    let person = api
        .data(
            w,
            "mutation { registerPerson(input: { fullName: \"Joy N.\", dateOfBirth: \"1999-04-02\", \
             preferredLanguage: \"en\", phone: \"+234 800\", email: \"joy@example.org\", \
             address: \"12 Allen Avenue\" }) }",
            json!({}),
        )
        .await["registerPerson"]
        .clone();
    let plan = api
        .data(w, "mutation($p: ID!) { openPlan(input: { personId: $p, originCountry: \"NG\" }) { plan { id } } }", json!({ "p": person }))
        .await["openPlan"]["plan"]["id"]
        .clone();
    let vars = json!({ "plan": plan, "liaison": world.liaison.id, "partner": world.partner.id });
    let run = |commands: &'static [&'static str]| {
        let vars = vars.clone();
        async move {
            for command in commands {
                api.data(w, command, declared(command, &vars)).await;
            }
        }
    };
    run(&[
        "mutation($plan: ID!) { setGoals(planId: $plan, goals: [{ area: HEALTH, aim: \"Rest\" }]) { version } }",
        "mutation($plan: ID!, $liaison: ID!) { assignStep(planId: $plan, step: \"passport\", assignee: $liaison) { version } }",
        "mutation($plan: ID!, $partner: ID!) { assignStep(planId: $plan, step: \"origin_contact\", assignee: $partner) { version } }",
        "mutation($plan: ID!, $partner: ID!) { assignStep(planId: $plan, step: \"follow_up_1\", assignee: $partner) { version } }",
        "mutation($plan: ID!) { recordConsent(planId: $plan, consent: { kind: RETURN }) { version } }",
        "mutation($plan: ID!, $partner: ID!) { recordConsent(planId: $plan, consent: { kind: DATA_SHARING, partner: $partner }) { version } }",
        "mutation($plan: ID!) { confirmDeparture(planId: $plan, departedAt: \"2026-03-01T09:00:00Z\", overrideReason: \"flight booked\") { version } }",
        "mutation($plan: ID!) { confirmArrival(planId: $plan, arrivedAt: \"2026-03-01T09:00:00Z\") { version } }",
    ])
    .await;

    let mut failures = Vec::new();
    let mut cells = 0;
    for state in STATES {
        match state {
            Shared => {}
            Withdrawn => run(&["mutation($plan: ID!, $partner: ID!) { withdrawConsent(planId: $plan, consent: { kind: DATA_SHARING, partner: $partner }) { version } }"]).await,
            Reassigned => run(&[
                "mutation($plan: ID!, $partner: ID!) { recordConsent(planId: $plan, consent: { kind: DATA_SHARING, partner: $partner }) { version } }",
                "mutation($plan: ID!) { assignStep(planId: $plan, step: \"origin_contact\", assignee: null) { version } }",
            ]).await,
            Closed => run(&["mutation($plan: ID!) { closePlan(planId: $plan, reason: DECEASED) { version } }"]).await,
        }
        for case in FIELD_CASES {
            let query = format!(
                "query($plan: ID!) {{ plan(id: $plan) {{ {} }} }}",
                case.selection
            );
            for &role in ALL {
                cells += 1;
                let body = api
                    .gql(world.token(role), &query, json!({ "plan": plan }))
                    .await;
                let value = body["data"]
                    .pointer(case.pointer)
                    .cloned()
                    .unwrap_or(Value::Null);
                let expected = (case.shown)(state).contains(&role);
                // Hidden is null; an error is only for those who may not see the plan at all.
                // The case file is refused as a whole (see the operations' matrix).
                let error_ok = match error_code(&body) {
                    None => true,
                    Some("NOT_FOUND") => !READERS.contains(&role),
                    Some("FORBIDDEN") => case.name.ends_with("(case file)") && !expected,
                    Some(_) => false,
                };
                if value.is_null() == expected || !error_ok {
                    failures.push(format!(
                        "{} as {role:?} in {state:?}: expected {}, got {body}",
                        case.name,
                        if expected { "shown" } else { "hidden" }
                    ));
                }
            }
        }
    }
    // A party's own email and reminder settings are theirs, whatever the role.
    for &role in ALL {
        cells += 1;
        let me = api
            .data(
                world.token(role),
                "{ me { email reminderSettings { quietHoursStart } } }",
                json!({}),
            )
            .await;
        if me["me"]["email"].is_null() || me["me"]["reminderSettings"].is_null() {
            failures.push(format!("me as {role:?}: {me}"));
        }
    }
    assert_eq!(
        cells,
        STATES.len() * FIELD_CASES.len() * ALL.len() + ALL.len()
    );
    assert!(
        failures.is_empty(),
        "{} cells wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
