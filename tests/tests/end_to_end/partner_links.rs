//! Partner links end to end: a reminder to a partner contact arrives at a real SMTP server with
//! signed links; the page behind each, served by the real router, is in the partner's language
//! and shows only the step; using it records the action once, with the partner as actor. A
//! tampered, expired or reused link gets a clear page and records nothing.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, TimeZone, Utc};
use homeward::app::Settings;
use homeward_engine::links::{LinkAction, LinkSigner, PartnerLink};
use homeward_engine::mail::SmtpMailer;
use homeward_engine::scheduler::{LinkSettings, Worker};
use homeward_engine::CommandHandler;
use homeward_store::EventStore;
use homeward_tests::api::{Person, TestApi};
use homeward_tests::smtp::{Caught, SmtpCatcher};
use homeward_tests::{key, start_time};
use homeward_workflows::{PartyId, PlanId};
use serde_json::{json, Value};
use uuid::Uuid;

struct World {
    api: TestApi,
    smtp: SmtpCatcher,
    worker: Worker,
    signer: LinkSigner,
    amina: Person,
    luc: Person,
    grace: Person,
    plan: String,
}

impl World {
    async fn new() -> Self {
        Self::start_with(|s| s, None).await
    }

    /// The world with the server's settings adjusted, and the worker signing with `signer`
    /// (by default the server's own key, kept in the database).
    async fn start_with(
        adjust: impl FnOnce(Settings) -> Settings,
        signer: Option<LinkSigner>,
    ) -> Self {
        let api = TestApi::start_with(adjust).await;
        let smtp = SmtpCatcher::start().await;
        let amina = api
            .party("SOCIAL_WORKER", "Amina Diallo", "Safe Passage")
            .await;
        let luc = api
            .party("GOVERNMENT_LIAISON", "Luc Martin", "Prefecture")
            .await;
        let grace = api
            .party_in(
                "PARTNER_CONTACT",
                "Grace Okafor",
                "Hope Lagos",
                "NG",
                "fr",
                "Africa/Lagos",
            )
            .await;
        // The worker runs here, one pass at a time, with the server's own link key.
        let signer = match signer {
            Some(signer) => signer,
            None => LinkSigner::new(
                &api.db
                    .backend()
                    .server_secret("partner_links")
                    .await
                    .unwrap(),
            ),
        };
        let backend = api.db.backend();
        let store: Arc<dyn EventStore> = backend.clone();
        let mailer =
            SmtpMailer::from_url(&smtp.url(), "Homeward <reminders@homeward.example>", 2).unwrap();
        let worker = Worker::new(
            backend.clone(),
            CommandHandler::new(store, api.clock.clone()).with_vault(api.db.server_vault()),
            backend,
            Arc::new(mailer),
            api.clock.clone(),
        )
        .with_links(LinkSettings {
            signer: signer.clone(),
            base_url: format!("http://{}", api.addr),
            valid_for: Duration::days(30),
        });
        let person = api
            .data(
                &amina.token,
                "mutation { registerPerson(input: { fullName: \"Blessing E.\" }) }",
                json!({}),
            )
            .await["registerPerson"]
            .as_str()
            .unwrap()
            .to_owned();
        let plan = api
            .data(&amina.token, "mutation($p: ID!) { openPlan(input: { personId: $p, originCountry: \"NG\" }) { plan { id } } }", json!({ "p": person }))
            .await["openPlan"]["plan"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let w = Self {
            api,
            smtp,
            worker,
            signer,
            amina,
            luc,
            grace,
            plan,
        };
        w.as_amina("mutation($id: ID!) { recordConsent(planId: $id, consent: { kind: RETURN }) { version } }").await;
        w.as_amina("mutation($id: ID!, $grace: ID!) { recordConsent(planId: $id, consent: { kind: DATA_SHARING, partner: $grace }) { version } }").await;
        for (step, who) in [
            ("passport", "luc"),
            ("origin_contact", "grace"),
            ("follow_up_1", "grace"),
        ] {
            w.as_amina(&format!("mutation($id: ID!, ${who}: ID!) {{ assignStep(planId: $id, step: \"{step}\", assignee: ${who}) {{ version }} }}")).await;
        }
        w
    }

    fn vars(&self) -> Value {
        json!({ "id": self.plan, "grace": self.grace.id, "luc": self.luc.id })
    }

    async fn as_amina(&self, mutation: &str) -> Value {
        self.api
            .data(&self.amina.token, mutation, self.vars())
            .await
    }

    async fn as_(&self, who: &Person, mutation: &str) -> Value {
        self.api.data(&who.token, mutation, self.vars()).await
    }

    async fn events(&self) -> i64 {
        self.api.db.count("SELECT count(*) FROM events").await
    }

    async fn history(&self) -> Vec<Value> {
        self.api
            .data(&self.amina.token, "query($id: ID!) { planHistory(id: $id, first: 100) { edges { node { type data byPartnerLink occurredAt actor { displayName } } } } }", self.vars())
            .await["planHistory"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"].clone())
            .collect()
    }

    async fn get(&self, url: &str) -> (u16, String, reqwest::header::HeaderMap) {
        let response = self.api.http.get(url).send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, as_read(&response.text().await.unwrap()), headers)
    }

    async fn post(&self, url: &str, form: &[(&str, &str)]) -> (u16, String) {
        let response = self.api.http.post(url).form(form).send().await.unwrap();
        let status = response.status().as_u16();
        (status, as_read(&response.text().await.unwrap()))
    }

    /// The messages to Grace so far.
    fn to_grace(&self) -> Vec<Caught> {
        self.smtp
            .messages()
            .into_iter()
            .filter(|m| m.to == ["<grace.okafor@hope-lagos.example>"])
            .collect()
    }
}

/// The link after `label` in a reminder's text.
fn link_after(mail: &Caught, label: &str) -> String {
    let text = mail.part("text/plain").unwrap();
    let mut lines = text.lines();
    lines
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no '{label}' in:\n{text}"));
    lines.next().unwrap().trim().to_owned()
}

fn at(days_after_start: i64, hour_utc: u32) -> DateTime<Utc> {
    let day = start_time() + Duration::days(days_after_start);
    Utc.from_utc_datetime(&day.date_naive().and_hms_opt(hour_utc, 0, 0).unwrap())
}

#[tokio::test]
async fn a_partner_acknowledges_a_task_and_confirms_a_visit_from_the_links_in_her_reminders() {
    let w = World::new().await;

    // Three days before the origin contact is due (day 21), Grace's reminder, in French.
    w.api.clock.set(at(18, 10));
    let pass = w.worker.drain().await.unwrap();
    assert!(pass.sent >= 1, "{pass:?}");
    let mail = w.smtp.wait_for(1, StdDuration::from_secs(5)).await;
    assert!(!mail.is_empty());
    let mails = w.to_grace();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let reminder = &mails[0];
    assert!(reminder.header("Subject").unwrap().starts_with("Rappel : "));
    let text = reminder.part("text/plain").unwrap();
    assert!(!text.contains("Blessing"), "no survivor data in the email");
    assert!(
        !text.contains("Confirmer que la visite"),
        "a visit link only on follow-ups"
    );
    let ack = link_after(reminder, "Confirmer la prise en charge de cette tâche");
    assert!(
        ack.starts_with(&format!("http://{}/l/", w.api.addr)),
        "{ack}"
    );
    assert!(reminder
        .part("text/html")
        .unwrap()
        .contains(&format!("<a href=\"{ack}\">")));

    // Valid for as long as the worker was told (30 days here), not a minute more.
    w.api
        .clock
        .set(at(18, 10) + Duration::days(30) - Duration::minutes(1));
    assert_eq!(w.get(&ack).await.0, 200);
    w.api
        .clock
        .set(at(18, 10) + Duration::days(30) + Duration::minutes(1));
    assert_eq!(w.get(&ack).await.0, 410);
    w.api.clock.set(at(18, 10));

    // The page: in French, the step and the action only, never cached or indexed.
    let (status, page, headers) = w.get(&ack).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<html lang=\"fr\">"));
    assert!(page.contains("Votre tâche"));
    assert!(page.contains("Je prends en charge cette tâche"));
    assert!(!page.contains("Blessing"));
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["referrer-policy"], "no-referrer");

    // Using it records the acknowledgement, by Grace.
    let before = w.events().await;
    let (status, page) = w.post(&ack, &[]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Merci"));
    assert_eq!(w.events().await, before + 1);
    let history = w.history().await;
    let acknowledged = history
        .iter()
        .find(|e| e["type"] == "step_acknowledged")
        .expect("step_acknowledged is in the history");
    assert_eq!(acknowledged["actor"]["displayName"], "Grace Okafor");
    assert_eq!(acknowledged["data"]["step"], "origin_contact");
    // The case worker sees that it came through the link, and when; nothing else did.
    assert_eq!(acknowledged["byPartnerLink"], true, "{acknowledged}");
    assert!(acknowledged["occurredAt"].is_string());
    assert_eq!(
        history
            .iter()
            .filter(|e| e["byPartnerLink"] == true)
            .count(),
        1,
        "{history:#?}"
    );
    let step = w
        .as_amina(
            "query($id: ID!) { plan(id: $id) { step(key: \"origin_contact\") { acknowledged } } }",
        )
        .await;
    assert_eq!(step["plan"]["step"]["acknowledged"], true);

    // Used again: a clear page, nothing recorded.
    let (status, page) = w.post(&ack, &[]).await;
    assert_eq!(status, 410, "{page}");
    assert!(page.contains("Ce lien a déjà été utilisé"), "{page}");
    let (status, page, _) = w.get(&ack).await;
    assert_eq!(status, 410);
    assert!(page.contains("Rien n'a été enregistré"));

    // Tampered: one character of the token changed.
    let (base, token) = ack.rsplit_once('/').unwrap();
    let mut chars: Vec<char> = token.chars().collect();
    chars[10] = if chars[10] == 'A' { 'B' } else { 'A' };
    let tampered = format!("{base}/{}", chars.into_iter().collect::<String>());
    for (status, page) in [
        w.post(&tampered, &[]).await,
        (w.get(&tampered).await.0, w.get(&tampered).await.1),
    ] {
        assert_eq!(status, 400, "{page}");
        assert!(page.contains("This link is not valid"), "{page}");
    }
    let (status, _, _) = w.get(&format!("{base}/not-a-token")).await;
    assert_eq!(status, 400);
    assert_eq!(w.events().await, before + 1);

    // The return: passport, contact, medical check, travel, arrival.
    for status in ["SUBMITTED_TO_AUTHORITY", "ISSUED", "DELIVERED"] {
        w.as_(&w.luc, &format!("mutation($id: ID!) {{ updateDocumentStatus(planId: $id, step: \"passport\", status: {status}) {{ version }} }}")).await;
    }
    w.as_(
        &w.luc,
        "mutation($id: ID!) { completeStep(planId: $id, step: \"passport\") { version } }",
    )
    .await;
    w.as_(
        &w.grace,
        "mutation($id: ID!) { completeStep(planId: $id, step: \"origin_contact\") { version } }",
    )
    .await;
    w.as_amina(
        "mutation($id: ID!) { completeStep(planId: $id, step: \"medical_check\") { version } }",
    )
    .await;
    w.api.clock.set(at(30, 9));
    w.as_amina("mutation($id: ID!) { startStep(planId: $id, step: \"travel\") { version } }")
        .await;
    let arrived = at(30, 8);
    w.api
        .data(&w.amina.token, "mutation($id: ID!, $at: DateTime!) { confirmDeparture(planId: $id, departedAt: $at) { version } }", json!({ "id": w.plan, "at": (arrived - Duration::hours(5)).to_rfc3339() }))
        .await;
    w.api
        .data(&w.grace.token, "mutation($id: ID!, $at: DateTime!) { confirmArrival(planId: $id, arrivedAt: $at) { version } }", json!({ "id": w.plan, "at": arrived.to_rfc3339() }))
        .await;
    // Whatever fell due on the way goes out now, so the next pass only has the follow-up.
    w.worker.drain().await.unwrap();
    let sent_so_far = w.to_grace().len();

    // The first follow-up is due 14 days after arrival; three days before, Grace's reminder
    // carries both links and an invitation.
    w.api.clock.set(at(30 + 11, 10));
    w.worker.drain().await.unwrap();
    w.smtp
        .wait_for(sent_so_far + 1, StdDuration::from_secs(5))
        .await;
    let mails = w.to_grace();
    let follow_up = mails
        .iter()
        .find(|m| m.header("Subject").unwrap().contains("Visite de suivi 1,"))
        .unwrap_or_else(|| panic!("the follow-up reminder arrives: {mails:?}"));
    assert!(follow_up.data.contains("text/calendar"));
    let confirm = link_after(follow_up, "Confirmer que la visite a eu lieu");
    link_after(follow_up, "Confirmer la prise en charge de cette tâche");

    let (status, page, _) = w.get(&confirm).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Visite de suivi"));
    assert!(page.contains("type=\"date\" name=\"visited_on\""));
    // She received the survivor, with her consent: the arrival bounds the date.
    assert!(
        page.contains(&format!("min=\"{}\"", arrived.date_naive())),
        "{page}"
    );
    assert!(page.contains("value=\"at_risk\""));

    // A form that is not filled in, or a visit before arrival: the form again, nothing recorded.
    let before = w.events().await;
    let arrived_on = arrived.date_naive();
    let too_early = (arrived_on - Duration::days(2)).to_string();
    for (form, expected) in [
        (
            vec![("visited_on", "2026-13-01"), ("wellbeing", "fair")],
            "Indiquez la date de la visite",
        ),
        (
            vec![
                ("visited_on", arrived_on.to_string().as_str()),
                ("wellbeing", "happy"),
            ],
            "Indiquez comment elle va",
        ),
        (
            vec![("visited_on", too_early.as_str()), ("wellbeing", "fair")],
            "lies before the arrival",
        ),
    ] {
        let (status, page) = w.post(&confirm, &form).await;
        assert_eq!(status, 422, "{form:?}: {page}");
        assert!(page.contains(expected), "{form:?}: {page}");
        assert!(page.contains("<form method=\"post\">"));
    }
    assert_eq!(w.events().await, before);

    // Filled in: the visit is recorded, by Grace, and the step is done.
    let visited = (arrived_on + Duration::days(10)).to_string();
    let (status, page) = w
        .post(
            &confirm,
            &[
                ("visited_on", visited.as_str()),
                ("wellbeing", "fair"),
                ("concern", "housing"),
                ("concern", "income"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let history = w.history().await;
    let visit = history
        .iter()
        .find(|e| e["type"] == "follow_up_recorded")
        .expect("follow_up_recorded");
    assert_eq!(visit["actor"]["displayName"], "Grace Okafor");
    assert_eq!(visit["byPartnerLink"], true);
    assert_eq!(visit["data"]["outcome"]["wellbeing"], "fair");
    assert_eq!(
        visit["data"]["outcome"]["concerns"],
        json!(["housing", "income"])
    );
    let step = w
        .as_amina("query($id: ID!) { plan(id: $id) { step(key: \"follow_up_1\") { status } } }")
        .await;
    assert_eq!(step["plan"]["step"]["status"], "DONE");
    let after = w.events().await;
    let (status, _) = w
        .post(
            &confirm,
            &[("visited_on", visited.as_str()), ("wellbeing", "good")],
        )
        .await;
    assert_eq!(status, 410);
    assert_eq!(w.events().await, after);
    w.api.stop().await;
}

#[tokio::test]
async fn an_expired_link_or_one_for_a_step_no_longer_hers_records_nothing() {
    let w = World::new().await;
    let plan = PlanId(Uuid::parse_str(&w.plan).unwrap());
    let grace = PartyId(Uuid::parse_str(&w.grace.id).unwrap());
    let luc = PartyId(Uuid::parse_str(&w.luc.id).unwrap());
    let url = |link: &PartnerLink| format!("http://{}/l/{}", w.api.addr, w.signer.sign(link));
    let link = |party, step: &str, expires_at| {
        PartnerLink::for_reminder(
            Uuid::new_v4(),
            plan,
            key(step),
            party,
            LinkAction::Acknowledge,
            expires_at,
        )
    };
    let before = w.events().await;

    // Expired yesterday.
    let expired = url(&link(
        grace,
        "origin_contact",
        start_time() - Duration::days(1),
    ));
    let (status, page, _) = w.get(&expired).await;
    assert_eq!(status, 410);
    assert!(page.contains("Ce lien a expiré"), "{page}");
    assert_eq!(w.post(&expired, &[]).await.0, 410);

    // A genuine link for a step assigned to someone else (Luc's passport, signed for Grace).
    let not_hers = url(&link(grace, "passport", start_time() + Duration::days(30)));
    let (status, page, _) = w.get(&not_hers).await;
    assert_eq!(status, 403);
    assert!(
        page.contains("Cette tâche ne vous est plus confiée"),
        "{page}"
    );
    // A liaison's link works only for his own step kinds; his passport is his.
    let his = url(&link(luc, "passport", start_time() + Duration::days(30)));
    assert_eq!(w.get(&his).await.0, 200);

    // A step that is no longer open.
    w.as_amina("mutation($id: ID!) { cancelStep(planId: $id, step: \"follow_up_1\", reason: \"Moved away\") { version } }").await;
    let before_cancelled = w.events().await;
    let closed = url(&link(
        grace,
        "follow_up_1",
        start_time() + Duration::days(30),
    ));
    let (status, page, _) = w.get(&closed).await;
    assert_eq!(status, 410);
    assert!(page.contains("Cette tâche n'est plus ouverte"), "{page}");
    assert_eq!(w.post(&closed, &[]).await.0, 410);
    assert_eq!(w.events().await, before_cancelled);
    assert_eq!(before_cancelled, before + 1, "only the cancellation");

    // Acknowledged meanwhile through the API: another acknowledgement link says so.
    let other_ack = url(&link(
        grace,
        "origin_contact",
        start_time() + Duration::days(30),
    ));
    w.as_(
        &w.grace,
        "mutation($id: ID!) { acknowledgeStep(planId: $id, step: \"origin_contact\") { version } }",
    )
    .await;
    let acknowledged_at = w.events().await;
    let (status, page, _) = w.get(&other_ack).await;
    assert_eq!(status, 410);
    assert!(page.contains("C'est déjà enregistré"), "{page}");
    assert_eq!(w.post(&other_ack, &[]).await.0, 410);
    assert_eq!(w.events().await, acknowledged_at);

    // Her data-sharing consent withdrawn: her links show nothing of the case any more.
    let open_step = url(&PartnerLink::for_reminder(
        Uuid::new_v4(),
        plan,
        key("origin_contact"),
        grace,
        LinkAction::ConfirmVisit,
        start_time() + Duration::days(30),
    ));
    assert_eq!(w.get(&open_step).await.0, 200);
    w.as_amina("mutation($id: ID!, $grace: ID!) { withdrawConsent(planId: $id, consent: { kind: DATA_SHARING, partner: $grace }) { version } }").await;
    let after_withdrawal = w.events().await;
    let (status, page, _) = w.get(&open_step).await;
    assert_eq!(status, 410);
    assert!(!page.contains("Designate"), "{page}");
    assert_eq!(w.post(&open_step, &[]).await.0, 410);
    assert_eq!(w.events().await, after_withdrawal);
    w.api.stop().await;
}

/// A page's HTML with the character references the templates write for quotes and apostrophes
/// read back (`n&#39;a` is "n'a"), so that the tests look for the text a partner reads. `<` and
/// `&` stay escaped: a test that finds them raw has found markup, not text.
fn as_read(html: &str) -> String {
    html.replace("&#39;", "'").replace("&#34;", "\"")
}

#[tokio::test]
async fn links_issued_before_a_key_rotation_keep_working_and_a_dropped_keys_do_not() {
    const LAST_YEAR: &str = "the partner link key of last year";
    const THIS_YEAR: &str = "the partner link key of this year";
    // The server signs with this year's key and still checks last year's; the reminder was
    // sent before the rotation.
    let w = World::start_with(
        |s| Settings {
            link_secret: Some(THIS_YEAR.into()),
            link_previous_secrets: Some(LAST_YEAR.into()),
            ..s
        },
        Some(LinkSigner::new(LAST_YEAR.as_bytes())),
    )
    .await;
    let plan = PlanId(Uuid::parse_str(&w.plan).unwrap());
    let grace = PartyId(Uuid::parse_str(&w.grace.id).unwrap());
    let link = |step: &str| {
        PartnerLink::for_reminder(
            Uuid::new_v4(),
            plan,
            key(step),
            grace,
            LinkAction::Acknowledge,
            start_time() + Duration::days(5),
        )
    };
    let url = |signer: &LinkSigner, link: &PartnerLink| {
        format!("http://{}/l/{}", w.api.addr, signer.sign(link))
    };
    let before = w.events().await;
    let old = url(&w.signer, &link("origin_contact"));
    assert_eq!(w.get(&old).await.0, 200);
    assert_eq!(w.post(&old, &[]).await.0, 200);
    assert_eq!(w.events().await, before + 1);
    // A link under a key the server never had is refused, and records nothing.
    let stranger = LinkSigner::new(b"a key that was never Homeward's");
    let forged = url(&stranger, &link("follow_up_1"));
    let (status, page, _) = w.get(&forged).await;
    assert_ne!(status, 200, "{page}");
    assert_ne!(w.post(&forged, &[]).await.0, 200);
    assert_eq!(w.events().await, before + 1);
    w.api.stop().await;

    // Once last year's key is dropped, its links are refused.
    let w = World::start_with(
        |s| Settings {
            link_secret: Some(THIS_YEAR.into()),
            ..s
        },
        Some(LinkSigner::new(LAST_YEAR.as_bytes())),
    )
    .await;
    let plan = PlanId(Uuid::parse_str(&w.plan).unwrap());
    let grace = PartyId(Uuid::parse_str(&w.grace.id).unwrap());
    let link = PartnerLink::for_reminder(
        Uuid::new_v4(),
        plan,
        key("origin_contact"),
        grace,
        LinkAction::Acknowledge,
        start_time() + Duration::days(5),
    );
    let old = format!("http://{}/l/{}", w.api.addr, w.signer.sign(&link));
    assert_ne!(w.get(&old).await.0, 200);
    let current = LinkSigner::new(THIS_YEAR.as_bytes());
    let new = format!("http://{}/l/{}", w.api.addr, current.sign(&link));
    assert_eq!(w.get(&new).await.0, 200);
    w.api.stop().await;
}
