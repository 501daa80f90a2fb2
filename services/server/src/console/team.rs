//! A supervisor's page (`/team`): the organisation's late steps by case worker (escalated
//! ones said so), handing a worker's open cases over to another, the survivors whose data the
//! retention rule will soon erase and those nobody has touched for a year. Read and written
//! through the API (`plans`, `parties`, `upcomingErasures`, `personsToReview`,
//! `handOverCases`), which keeps all of it to the supervisor's own organisation.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::Form;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use homeward_engine::reminders::plan_reference;
use homeward_workflows::party::PartyRole;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::{self, Connection, Failed};
use super::inbox::{kind_name, when_words};
use super::Signed;
use super::{
    local_time, message, page, see_other, signed_form, signed_in, unavailable, Chrome, Fields,
};
use crate::routes::AppState;

const QUERY: &str = "query ConsoleTeam($after: String) {
  plans(filter: { hasOverdueSteps: true }, first: 50, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id caseWorker { displayName } person { fullName }
      steps { key kind title overdue dueAt followUpOn assignee { displayName }
              remindersSent { kind } }
    }
  }
  upcomingErasures(withinDays: 90, first: 100) {
    pageInfo { hasNextPage endCursor }
    nodes { person { id fullName } eraseAt onLegalHold }
  }
  personsToReview(first: 100) {
    pageInfo { hasNextPage endCursor }
    nodes { person { id fullName } lastActivityAt drafts onLegalHold }
  }
}";

const WORKERS: &str = "query ConsoleWorkers($org: ID!, $after: String) {
  parties(organisation: $org, first: 100, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id displayName role active }
  }
}";

const HAND_OVER: &str = "mutation ConsoleHandOver($from: ID!, $to: ID!) {
  handOverCases(from: $from, to: $to) }";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    plans: Connection<PlanOut>,
    upcoming_erasures: Connection<Erasure>,
    persons_to_review: Connection<ToReview>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlanOut {
    id: String,
    case_worker: Option<Worker>,
    person: Option<Named>,
    steps: Vec<StepOut>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Worker {
    display_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Named {
    full_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StepOut {
    key: String,
    kind: String,
    title: Option<String>,
    overdue: bool,
    due_at: Option<DateTime<Utc>>,
    follow_up_on: Option<NaiveDate>,
    assignee: Option<AssigneeOut>,
    reminders_sent: Vec<SentOut>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssigneeOut {
    display_name: String,
}

#[derive(Debug, Deserialize)]
struct SentOut {
    kind: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PersonRef {
    id: String,
    full_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Erasure {
    person: PersonRef,
    erase_at: DateTime<Utc>,
    on_legal_hold: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToReview {
    person: PersonRef,
    last_activity_at: DateTime<Utc>,
    drafts: u32,
    on_legal_hold: bool,
}

#[derive(Debug, Deserialize)]
struct WorkersAnswer {
    parties: Connection<PartyOut>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PartyOut {
    pub id: String,
    pub display_name: String,
    pub role: Option<String>,
    pub active: bool,
}

impl PartyOut {
    pub(crate) fn is_social_worker(&self) -> bool {
        self.role.as_deref() == Some("SOCIAL_WORKER")
    }
}

/// The social workers and supervisors of the viewer's organisation, as the API lists them.
pub(crate) async fn case_team(state: &AppState, signed: &Signed) -> Result<Vec<PartyOut>, Failed> {
    let viewer = &signed.session.viewer;
    // The session read the party's row, organisation and all, for this very request.
    let organisation = signed.session.party.organisation;
    let mut workers = Vec::new();
    let mut after: Option<String> = None;
    // An organisation's directory, a hundred at a time.
    for _ in 0..20 {
        let variables = json!({ "org": organisation, "after": after });
        let page = api::run::<WorkersAnswer>(state, viewer, "workers", WORKERS, variables)
            .await?
            .parties;
        workers.extend(
            page.nodes
                .into_iter()
                .filter(|p| matches!(p.role.as_deref(), Some("SOCIAL_WORKER" | "SUPERVISOR"))),
        );
        match page.page_info.next() {
            Some(cursor) => after = Some(cursor.to_owned()),
            None => break,
        }
    }
    Ok(workers)
}

/// A late step as the page lists it.
pub(crate) struct Late {
    pub href: String,
    pub plan: String,
    pub person: String,
    pub step: String,
    pub assignee: String,
    pub when: String,
    pub escalated: bool,
}

/// A social worker the hand-over form offers, and whether the form sent named her.
pub(crate) struct WorkerOption {
    pub id: String,
    pub name: String,
    pub active: bool,
    pub from: bool,
    pub to: bool,
}

/// A survivor the page lists: her record's page, her name, and what is said of her.
pub(crate) struct PersonLine {
    pub href: String,
    pub name: String,
    pub detail: String,
    pub on_hold: bool,
}

#[derive(Template)]
#[template(path = "console/team.html")]
struct TeamPage {
    chrome: Chrome,
    /// Late steps by case worker: (worker, steps).
    late: Vec<(String, Vec<Late>)>,
    late_next: Option<String>,
    /// Social workers of the organisation, to hand cases from and to.
    workers: Vec<WorkerOption>,
    /// Active colleagues a supervisor may invite to sign in: (id, label).
    invitees: Vec<(String, String)>,
    /// What the invitation form just did, or why it was refused.
    invited: Option<String>,
    invite_error: Option<String>,
    hand_over_error: Option<String>,
    /// What the hand-over form just did.
    handed_over: Option<String>,
    /// Whether there are more than the page lists.
    erasures_more: bool,
    to_review_more: bool,
    erasures: Vec<PersonLine>,
    to_review: Vec<PersonLine>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TeamQuery {
    #[serde(default)]
    after: String,
    /// How many plans the hand-over form just handed over.
    #[serde(default)]
    handed: Option<u32>,
    /// Whether the invitation form just sent one.
    #[serde(default)]
    invited: Option<u8>,
}

/// Whether this viewer has the page (the API still decides what it holds).
fn supervises(signed: &Signed) -> bool {
    signed.session.viewer.role == PartyRole::Supervisor
}

/// `GET /team`.
pub(crate) async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    query: Result<Query<TeamQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let here = super::here(&uri);
    let signed = match signed_in(&state, &headers, &here).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let hand_over = HandOver {
        done: query.handed,
        invited: query.invited == Some(1),
        ..HandOver::default()
    };
    render(&state, &signed, &here, query.after, hand_over).await
}

/// The hand-over form as it was sent, and why it was refused.
#[derive(Default)]
struct HandOver {
    from: String,
    to: String,
    error: Option<String>,
    status: Option<StatusCode>,
    /// How many plans were just handed over.
    done: Option<u32>,
    /// An invitation was just sent, or refused with why.
    invited: bool,
    invite_error: Option<String>,
}

async fn render(
    state: &AppState,
    signed: &Signed,
    here: &str,
    after: String,
    hand_over: HandOver,
) -> Response {
    let lang = signed.lang;
    if !supervises(signed) {
        return message(
            StatusCode::FORBIDDEN,
            Chrome::signed(lang, "refused-title", here, signed),
            vec![lang.text("team-supervisors-only")],
            Some((lang.text("nav-inbox"), "/inbox".to_owned())),
        );
    }
    let viewer = &signed.session.viewer;
    let after = (!after.is_empty()).then_some(after);
    let answer =
        match api::run::<Answer>(state, viewer, "team", QUERY, json!({ "after": after })).await {
            Ok(a) => a,
            Err(e) => return unavailable(lang, e),
        };
    let tz: Tz = signed.session.party.time_zone.parse().unwrap_or(Tz::UTC);
    let today = state.services.clock.now().with_timezone(&tz).date_naive();

    let mut late: Vec<(String, Vec<Late>)> = Vec::new();
    for plan in &answer.plans.nodes {
        let worker = plan
            .case_worker
            .as_ref()
            .map_or_else(|| lang.text("step-unassigned"), |w| w.display_name.clone());
        let rows = plan.steps.iter().filter(|s| s.overdue).map(|s| Late {
            href: format!("/plans/{}#step-{}", plan.id, s.key),
            plan: plan_reference(uuid::Uuid::parse_str(&plan.id).unwrap_or_default()),
            person: plan
                .person
                .as_ref()
                .and_then(|p| p.full_name.clone())
                .unwrap_or_default(),
            step: s.title.clone().unwrap_or_else(|| kind_name(lang, &s.kind)),
            assignee: s
                .assignee
                .as_ref()
                .map_or_else(|| lang.text("step-unassigned"), |a| a.display_name.clone()),
            when: when_words(lang, s.due_at, s.follow_up_on, true, today, tz).0,
            escalated: s.reminders_sent.iter().any(|r| r.kind == "ESCALATION"),
        });
        match late.iter_mut().find(|(w, _)| *w == worker) {
            Some((_, list)) => list.extend(rows),
            None => late.push((worker, rows.collect())),
        }
    }
    late.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    let late_next = answer.plans.page_info.next().map(|cursor| {
        format!(
            "/team?{}",
            serde_urlencoded::to_string([("after", cursor)]).unwrap_or_default()
        )
    });

    let team = match case_team(state, signed).await {
        Ok(team) => team,
        Err(e) => return unavailable(lang, e),
    };
    let me = signed.session.party.party_id.to_string();
    let invitees = team
        .iter()
        .filter(|p| p.active && p.id != me)
        .map(|p| {
            let role = lang.text(&format!(
                "role-{}",
                p.role.as_deref().unwrap_or_default().to_ascii_lowercase()
            ));
            (p.id.clone(), format!("{} ({role})", p.display_name))
        })
        .collect();
    let workers = team
        .into_iter()
        .filter(PartyOut::is_social_worker)
        .map(|p| WorkerOption {
            from: p.id == hand_over.from,
            to: p.id == hand_over.to,
            id: p.id,
            name: p.display_name,
            active: p.active,
        })
        .collect();
    let name = |p: &PersonRef| {
        p.full_name
            .clone()
            .unwrap_or_else(|| lang.text("unreadable"))
    };
    let erasures = answer
        .upcoming_erasures
        .nodes
        .iter()
        .map(|e| PersonLine {
            href: format!("/persons/{}", e.person.id),
            name: name(&e.person),
            detail: lang.text_with(
                "team-erased-on",
                &[("date", local_time(e.erase_at, tz).into())],
            ),
            on_hold: e.on_legal_hold,
        })
        .collect();
    let to_review = answer
        .persons_to_review
        .nodes
        .iter()
        .map(|r| PersonLine {
            href: format!("/persons/{}", r.person.id),
            name: name(&r.person),
            detail: lang.text_with(
                "team-last-activity",
                &[
                    ("date", local_time(r.last_activity_at, tz).into()),
                    ("count", r.drafts.into()),
                ],
            ),
            on_hold: r.on_legal_hold,
        })
        .collect();
    page(
        hand_over.status.unwrap_or(StatusCode::OK),
        TeamPage {
            chrome: Chrome::signed(lang, "team-title", here, signed),
            late,
            late_next,
            workers,
            invitees,
            invited: hand_over.invited.then(|| lang.text("admin-invited-notice")),
            invite_error: hand_over.invite_error,
            hand_over_error: hand_over.error,
            handed_over: hand_over
                .done
                .map(|count| lang.text_with("team-handed-over", &[("count", count.into())])),
            erasures_more: answer.upcoming_erasures.page_info.has_next_page,
            to_review_more: answer.persons_to_review.page_info.has_next_page,
            erasures,
            to_review,
        },
    )
}

/// `POST /team/hand-over`: every open plan of one social worker to another.
pub(crate) async fn hand_over(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let fields = Fields(fields);
    let here = "/team";
    let signed = match signed_form(&state, &headers, fields.one("form_token"), here).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let lang = signed.lang;
    let (from, to) = (fields.one("from"), fields.one("to"));
    let refused = |error: String, status| HandOver {
        from: from.to_owned(),
        to: to.to_owned(),
        error: Some(error),
        status: Some(status),
        done: None,
        invited: false,
        invite_error: None,
    };
    let (Ok(from_id), Ok(to_id)) = (uuid::Uuid::parse_str(from), uuid::Uuid::parse_str(to)) else {
        let outcome = refused(
            lang.text("team-choose-both"),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
        return render(&state, &signed, here, String::new(), outcome).await;
    };
    if from_id == to_id {
        let outcome = refused(
            lang.text("team-same-worker"),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
        return render(&state, &signed, here, String::new(), outcome).await;
    }
    let variables = json!({ "from": from_id, "to": to_id });
    match api::run::<Value>(&state, &signed.session.viewer, "team", HAND_OVER, variables).await {
        // Said at an address of its own, so that reloading it hands nothing over again.
        Ok(answer) => {
            let count = answer["handOverCases"].as_array().map_or(0, Vec::len);
            see_other(&format!("/team?handed={count}#hand-over"))
        }
        Err(Failed::Api(problems)) => {
            let (status, text) = api::refusal(&problems);
            let error = lang.text_with("form-refused", &[("message", text.into())]);
            render(&state, &signed, here, String::new(), refused(error, status)).await
        }
        Err(e) => unavailable(lang, e),
    }
}

const INVITE: &str = "mutation ConsoleTeamInvite($id: ID!) { inviteParty(party: $id) { sentTo } }";

/// `POST /team/invite`: a colleague of the supervisor's organisation is emailed a link to
/// create their own token (the API decides whom a supervisor may invite).
pub(crate) async fn invite(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let fields = Fields(fields);
    let here = "/team";
    let signed = match signed_form(&state, &headers, fields.one("form_token"), here).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let lang = signed.lang;
    let refused = |error: String, status| HandOver {
        invite_error: Some(error),
        status: Some(status),
        ..HandOver::default()
    };
    let Ok(party) = uuid::Uuid::parse_str(fields.one("party")) else {
        let outcome = refused(lang.text("form-choose"), StatusCode::UNPROCESSABLE_ENTITY);
        return render(&state, &signed, here, String::new(), outcome).await;
    };
    let variables = json!({ "id": party });
    match api::run::<Value>(&state, &signed.session.viewer, "team", INVITE, variables).await {
        // Said at an address of its own, so that reloading it sends no second invitation.
        Ok(_) => see_other("/team?invited=1#invite"),
        Err(Failed::Api(problems)) => {
            let (status, text) = api::refusal(&problems);
            let error = lang.text_with("form-refused", &[("message", text.into())]);
            render(&state, &signed, here, String::new(), refused(error, status)).await
        }
        Err(e) => unavailable(lang, e),
    }
}
