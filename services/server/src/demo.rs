//! `homeward demo`: a realistic sample in an empty database, then the server, so that a
//! newcomer sees a working inbox for every role at once.
//!
//! The sample is a programme in France working with its prefecture and with partners in
//! Nigeria and Colombia; parties who read French, English and Spanish; a dozen plans at every
//! stage (drafts, waiting for documents, travelling, in follow-up, closed), some of them late,
//! some with reminders due within days. Everything is done as the people would do it: through
//! the GraphQL schema, in-process, as each party, with the server's clock set back to the day
//! each thing happened (so the history reads as months of work), then released.

use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use chrono::{DateTime, Duration, Utc};
use homeward_engine::authz::Viewer;
use homeward_engine::tokens::{self, TokenRequest};
use homeward_engine::Clock;
use homeward_workflows::party::PartyRole;
use homeward_workflows::{OrganisationId, PartyId};
use serde_json::{json, Value};

use crate::app::Application;
use crate::settings::Settings;

/// The server's clock during the demo: set back while the sample is written, then the
/// system's.
#[derive(Debug, Default)]
pub struct DemoClock {
    fixed: Mutex<Option<DateTime<Utc>>>,
}

impl DemoClock {
    fn set(&self, at: DateTime<Utc>) {
        *self.fixed.lock().unwrap_or_else(|e| e.into_inner()) = Some(at);
    }

    fn release(&self) {
        *self.fixed.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl Clock for DemoClock {
    fn now(&self) -> DateTime<Utc> {
        self.fixed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or_else(Utc::now)
    }
}

/// A party of the sample: who acts, and the token printed for them.
#[derive(Debug, Clone)]
struct Member {
    name: &'static str,
    viewer: Viewer,
}

/// Loads the sample into the empty database `settings` name, prints a token per role, and
/// serves until stopped.
pub async fn run(mut settings: Settings) -> anyhow::Result<()> {
    settings.no_bootstrap = false;
    let clock = Arc::new(DemoClock::default());
    let app = Application::build_with_clock(settings, clock.clone()).await?;
    let admin = app.first_admin().cloned().context(
        "homeward demo loads its sample into an empty SQLite database, and this one has data: \
         name another file (DATABASE_URL=sqlite://demo.db homeward demo)",
    )?;
    let today = Utc::now();
    let members = load(&app, &clock, admin.party, today).await?;
    clock.release();

    let store = app.backend();
    println!("The demo is loaded: 12 plans of Safe Passage (Paris), from drafts to closed.");
    println!(
        "Tokens (valid 30 days; paste one to sign in at http://{}/):",
        app.local_addr()
    );
    println!("  {:<19}{:<17}{}", "admin", "Administrator", admin.token);
    for member in &members {
        let token = tokens::issue(
            store.as_ref(),
            TokenRequest {
                party: member.viewer.party,
                role: member.viewer.role,
                days: 30,
                max_days: tokens::DEFAULT_MAX_TOKEN_DAYS,
                issued_by: None,
            },
            Utc::now(),
        )
        .await?;
        println!(
            "  {:<19}{:<17}{}",
            member.viewer.role.as_str(),
            member.name,
            token.secret
        );
    }
    app.run_until_stopped(crate::app::shutdown_signal()).await
}

/// The sample, written as its people would have written it; the parties, each with a role.
async fn load(
    app: &Application,
    clock: &DemoClock,
    admin: PartyId,
    today: DateTime<Utc>,
) -> anyhow::Result<Vec<Member>> {
    let days_ago = |d: i64, hour: u32| {
        let day = (today - Duration::days(d)).date_naive();
        day.and_hms_opt(hour, 0, 0)
            .map_or(today, |t| DateTime::from_naive_utc_and_offset(t, Utc))
    };
    clock.set(days_ago(540, 9));
    let admin_org = app
        .backend()
        .parties_by_id(&[admin.0])
        .await?
        .pop()
        .context("the first admin")?
        .organisation;
    let admin = Viewer {
        party: admin,
        role: PartyRole::Admin,
        organisation: OrganisationId(admin_org),
    };
    let run = |viewer: Viewer, query: &'static str, variables: Value| async move {
        app.execute_as(&viewer, "demo", query, variables).await
    };

    let organisation = |name: &'static str, kind: &'static str, country: &'static str| {
        let admin = admin.clone();
        async move {
            let data = run(
                admin,
                "mutation($name: String!, $kind: OrganisationKind!, $country: String!) { \
                 registerOrganisation(input: { name: $name, kind: $kind, country: $country }) { id } }",
                json!({ "name": name, "kind": kind, "country": country }),
            )
            .await?;
            id_of(&data["registerOrganisation"]["id"])
        }
    };
    let programme = organisation("Safe Passage", "PROGRAMME", "FR").await?;
    let prefecture = organisation("Préfecture de Police", "GOVERNMENT", "FR").await?;
    let lagos = organisation("Hope Lagos", "PARTNER", "NG").await?;
    let bogota = organisation("Fundación Renacer", "PARTNER", "CO").await?;
    for partner in [prefecture, lagos, bogota] {
        run(
            admin.clone(),
            "mutation($o: ID!, $p: ID!) { startPartnership(organisation: $o, partner: $p) { id } }",
            json!({ "o": programme.to_string(), "p": partner.to_string() }),
        )
        .await?;
    }

    let mut members = Vec::new();
    let party = |name: &'static str,
                 email: &'static str,
                 role: PartyRole,
                 organisation: uuid::Uuid,
                 (country, language, zone): (&'static str, &'static str, &'static str),
                 supervisor: Option<PartyId>| {
        let admin = admin.clone();
        let registered = async move {
            let data = run(
                admin,
                "mutation($input: PartyInput!) { registerParty(input: $input) { id } }",
                json!({ "input": {
                    "displayName": name, "email": email,
                    "role": role.as_str().to_uppercase(), "organisation": organisation.to_string(),
                    "country": country, "language": language, "timeZone": zone,
                    "supervisor": supervisor.map(|s| s.to_string()),
                }}),
            )
            .await?;
            let member = Member {
                name,
                viewer: Viewer {
                    party: PartyId(id_of(&data["registerParty"]["id"])?),
                    role,
                    organisation: OrganisationId(organisation),
                },
            };
            anyhow::Ok(member)
        };
        registered
    };
    const PARIS: (&str, &str, &str) = ("FR", "fr", "Europe/Paris");
    let claire = party(
        "Claire Fontaine",
        "claire.fontaine@safe-passage.example",
        PartyRole::Supervisor,
        programme,
        PARIS,
        None,
    )
    .await?;
    let amina = party(
        "Amina Diallo",
        "amina.diallo@safe-passage.example",
        PartyRole::SocialWorker,
        programme,
        PARIS,
        Some(claire.viewer.party),
    )
    .await?;
    let julien = party(
        "Julien Moreau",
        "julien.moreau@safe-passage.example",
        PartyRole::SocialWorker,
        programme,
        PARIS,
        Some(claire.viewer.party),
    )
    .await?;
    let marc = party(
        "Marc Lefèvre",
        "marc.lefevre@prefecture.example",
        PartyRole::GovernmentLiaison,
        prefecture,
        PARIS,
        None,
    )
    .await?;
    let ngozi = party(
        "Ngozi Okafor",
        "ngozi.okafor@hope-lagos.example",
        PartyRole::PartnerContact,
        lagos,
        ("NG", "en", "Africa/Lagos"),
        None,
    )
    .await?;
    let lucia = party(
        "Lucía Gómez",
        "lucia.gomez@renacer.example",
        PartyRole::PartnerContact,
        bogota,
        ("CO", "es", "America/Bogota"),
        None,
    )
    .await?;
    members.extend([
        amina.clone(),
        julien.clone(),
        claire.clone(),
        marc.clone(),
        ngozi.clone(),
        lucia.clone(),
    ]);

    // Twelve survivors and their plans: (name, date of birth, origin, social worker, partner,
    // opened how many days ago, how far it has come).
    let plans: [(&str, &str, &str, &Member, &Member, i64, Stage); 12] = [
        (
            "Blessing Eze",
            "1999-04-02",
            "NG",
            &amina,
            &ngozi,
            3,
            Stage::Draft,
        ),
        (
            "María Fernanda Ruiz",
            "2001-11-19",
            "CO",
            &julien,
            &lucia,
            9,
            Stage::Draft,
        ),
        (
            "Joy Adebayo",
            "1997-06-30",
            "NG",
            &amina,
            &ngozi,
            18,
            Stage::Documents,
        ),
        (
            "Valentina Ospina",
            "1995-02-14",
            "CO",
            &julien,
            &lucia,
            33,
            Stage::Documents,
        ),
        (
            "Precious Okonkwo",
            "2002-08-08",
            "NG",
            &amina,
            &ngozi,
            56,
            Stage::Documents,
        ),
        (
            "Camila Restrepo",
            "1993-12-01",
            "CO",
            &amina,
            &lucia,
            64,
            Stage::Travelling,
        ),
        (
            "Esther Nwosu",
            "1998-03-21",
            "NG",
            &julien,
            &ngozi,
            71,
            Stage::Travelling,
        ),
        (
            "Ifeoma Chukwu",
            "1996-09-12",
            "NG",
            &amina,
            &ngozi,
            85,
            Stage::FollowUp,
        ),
        (
            "Daniela Vargas",
            "2000-05-05",
            "CO",
            &julien,
            &lucia,
            150,
            Stage::FollowUp,
        ),
        (
            "Chiamaka Obi",
            "1994-07-17",
            "NG",
            &amina,
            &ngozi,
            240,
            Stage::FollowUp,
        ),
        (
            "Luisa Moreno",
            "1992-01-25",
            "CO",
            &amina,
            &lucia,
            470,
            Stage::Closed,
        ),
        (
            "Funmilayo Bello",
            "1991-10-03",
            "NG",
            &julien,
            &ngozi,
            520,
            Stage::Closed,
        ),
    ];
    for (name, born, origin, worker, partner, opened, stage) in plans {
        let w = worker.viewer.clone();
        clock.set(days_ago(opened, 9));
        let person = run(
            w.clone(),
            "mutation($name: String!, $born: NaiveDate!) { registerPerson(input: { \
             fullName: $name, dateOfBirth: $born, preferredLanguage: \"fr\" }) }",
            json!({ "name": name, "born": born }),
        )
        .await?;
        let plan = run(
            w.clone(),
            "mutation($p: ID!, $origin: String!) { openPlan(input: { personId: $p, \
             originCountry: $origin }) { plan { id } } }",
            json!({ "p": person["registerPerson"], "origin": origin }),
        )
        .await?;
        let id = plan["openPlan"]["plan"]["id"].clone();
        let v = json!({
            "id": id,
            "liaison": marc.viewer.party.to_string(),
            "partner": partner.viewer.party.to_string(),
        });
        // The medical check is the social worker's own.
        run(
            w.clone(),
            "mutation($id: ID!, $worker: ID!) { assignStep(planId: $id, step: \"medical_check\", \
             assignee: $worker) { version } }",
            with(&v, "worker", &w.party.to_string()),
        )
        .await?;
        if stage == Stage::Draft {
            continue;
        }
        // Personalised and consented to in the first days.
        clock.set(days_ago(opened - 1, 10));
        run(
            w.clone(),
            "mutation($id: ID!) { setGoals(planId: $id, goals: [ \
             { area: INCOME, aim: \"Start a small business\" }, \
             { area: HOUSING, aim: \"A room near her family\" }]) { version } }",
            v.clone(),
        )
        .await?;
        for (step, who) in [
            ("passport", "liaison"),
            ("legal_clearance", "liaison"),
            ("origin_contact", "partner"),
            ("follow_up_1", "partner"),
            ("follow_up_2", "partner"),
            ("follow_up_3", "partner"),
            ("follow_up_4", "partner"),
        ] {
            run(
                w.clone(),
                match who {
                    "liaison" => {
                        "mutation($id: ID!, $liaison: ID!, $step: String!) { assignStep(planId: $id, \
                         step: $step, assignee: $liaison) { version } }"
                    }
                    _ => {
                        "mutation($id: ID!, $partner: ID!, $step: String!) { assignStep(planId: $id, \
                         step: $step, assignee: $partner) { version } }"
                    }
                },
                with(&v, "step", step),
            )
            .await?;
        }
        run(
            w.clone(),
            "mutation($id: ID!) { recordConsent(planId: $id, consent: { kind: RETURN }) { version } }",
            v.clone(),
        )
        .await?;
        run(
            w.clone(),
            "mutation($id: ID!, $partner: ID!) { recordConsent(planId: $id, consent: \
             { kind: DATA_SHARING, partner: $partner }) { version } }",
            v.clone(),
        )
        .await?;
        // The passport's way through the prefecture.
        clock.set(days_ago(opened - 6, 11));
        run(
            marc.viewer.clone(),
            "mutation($id: ID!) { updateDocumentStatus(planId: $id, step: \"passport\", \
             status: SUBMITTED_TO_AUTHORITY) { version } }",
            v.clone(),
        )
        .await?;
        if stage == Stage::Documents {
            if opened > 20 {
                clock.set(days_ago(opened - 12, 15));
                run(
                    partner.viewer.clone(),
                    "mutation($id: ID!) { completeStep(planId: $id, step: \"origin_contact\") { version } }",
                    v.clone(),
                )
                .await?;
            }
            continue;
        }
        for (status, after) in [("ISSUED", 25), ("DELIVERED", 30)] {
            clock.set(days_ago(opened - after, 11));
            run(
                marc.viewer.clone(),
                "mutation($id: ID!, $status: DocumentStatus!) { updateDocumentStatus(planId: $id, \
                 step: \"passport\", status: $status) { version } }",
                with(&v, "status", status),
            )
            .await?;
        }
        clock.set(days_ago(opened - 31, 10));
        for (step, by) in [
            ("passport", &marc),
            ("legal_clearance", &marc),
            ("origin_contact", partner),
            ("medical_check", worker),
        ] {
            run(
                by.viewer.clone(),
                "mutation($id: ID!, $step: String!) { completeStep(planId: $id, step: $step) { version } }",
                with(&v, "step", step),
            )
            .await?;
        }
        // Travel, around two months after opening (yesterday for those travelling now).
        let travel_day = if stage == Stage::Travelling {
            1
        } else {
            opened - 60
        };
        clock.set(days_ago(travel_day, 6));
        run(
            w.clone(),
            "mutation($id: ID!) { startStep(planId: $id, step: \"travel\") { version } }",
            v.clone(),
        )
        .await?;
        clock.set(days_ago(travel_day, 8));
        run(
            w.clone(),
            "mutation($id: ID!, $at: DateTime!) { confirmDeparture(planId: $id, departedAt: $at) { version } }",
            with(&v, "at", &days_ago(travel_day, 7).to_rfc3339()),
        )
        .await?;
        if stage == Stage::Travelling {
            continue;
        }
        clock.set(days_ago(travel_day, 22));
        run(
            partner.viewer.clone(),
            "mutation($id: ID!, $at: DateTime!) { confirmArrival(planId: $id, arrivedAt: $at) { version } }",
            with(&v, "at", &days_ago(travel_day, 20).to_rfc3339()),
        )
        .await?;
        // Visits at 14, 90, 180 and 365 days, those that have come.
        for (n, after) in [(1, 14), (2, 90), (3, 180), (4, 365)] {
            let visit = travel_day - after;
            if visit < 2 {
                break;
            }
            clock.set(days_ago(visit, 16));
            let wellbeing = if n == 1 { "FAIR" } else { "GOOD" };
            run(
                partner.viewer.clone(),
                "mutation($id: ID!, $step: String!, $on: NaiveDate!, $wellbeing: Wellbeing!) { \
                 completeStep(planId: $id, step: $step, outcome: { visitedOn: $on, \
                 wellbeing: $wellbeing, concerns: [INCOME] }) { version } }",
                json!({
                    "id": id, "step": format!("follow_up_{n}"),
                    "on": days_ago(visit, 16).date_naive().to_string(), "wellbeing": wellbeing,
                }),
            )
            .await?;
        }
        if stage == Stage::Closed {
            clock.set(days_ago(travel_day - 370, 10));
            run(
                w.clone(),
                "mutation($id: ID!) { closePlan(planId: $id, reason: REINTEGRATED) { version } }",
                v.clone(),
            )
            .await?;
        }
    }
    Ok(members)
}

/// How far a sample plan has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Opened, nothing agreed yet.
    Draft,
    /// Consented to; the passport is with the prefecture.
    Documents,
    /// Left yesterday.
    Travelling,
    /// Home, with follow-up visits done and to come.
    FollowUp,
    /// Every visit done, closed.
    Closed,
}

/// `variables` with one more string.
fn with(variables: &Value, name: &str, value: &str) -> Value {
    let mut out = variables.clone();
    out[name] = json!(value);
    out
}

fn id_of(value: &Value) -> anyhow::Result<uuid::Uuid> {
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("an id, not {value}"))
}
