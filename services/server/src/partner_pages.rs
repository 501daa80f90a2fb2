//! The pages behind partner links (`/l/<token>`): a partner contact opens the link from a
//! reminder, sees the step (never the person) in their own language, and acknowledges the task
//! or confirms the follow-up visit. What may be done is decided in
//! [`homeward_engine::links`]; this module only renders and parses.
//!
//! The token is the whole credential, so the pages are never cached, never indexed and never
//! send a referrer.

use askama::Template;
use axum::extract::{FromRequest as _, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use chrono::NaiveDate;
use homeward_engine::links::{
    LinkAction, LinkError, LinkRefusal, LinkService, LinkView, VisitReport,
};
use homeward_engine::reminders::{local, Lang};
use homeward_workflows::plan::{ConcernArea, Wellbeing};

/// The answers of the visit form: each value as the form sends it (and the catalogue names it:
/// `wellbeing-<value>`, `concern-<value>`).
const WELLBEING: [(Wellbeing, &str); 4] = [
    (Wellbeing::Good, "good"),
    (Wellbeing::Fair, "fair"),
    (Wellbeing::Poor, "poor"),
    (Wellbeing::AtRisk, "at_risk"),
];

const CONCERNS: [(ConcernArea, &str); 9] = [
    (ConcernArea::Safety, "safety"),
    (ConcernArea::Health, "health"),
    (ConcernArea::Housing, "housing"),
    (ConcernArea::Income, "income"),
    (ConcernArea::Education, "education"),
    (ConcernArea::Family, "family"),
    (ConcernArea::Legal, "legal"),
    (ConcernArea::Stigma, "stigma"),
    (ConcernArea::Other, "other"),
];

/// A page of paragraphs: a refusal, an error, or thanks.
#[derive(Template)]
#[template(path = "partner/message.html")]
struct MessagePage {
    lang: &'static str,
    title: String,
    paragraphs: Vec<String>,
    emphasis: Option<String>,
}

/// The step and the form for its action.
#[derive(Template)]
#[template(path = "partner/action.html")]
struct ActionPage {
    lang: &'static str,
    title: String,
    problem: Option<String>,
    step_title: String,
    plan_reference_label: String,
    plan_reference: String,
    due_label: String,
    due: Option<String>,
    /// The visit form, for a follow-up visit; `None` to acknowledge a task.
    visit: Option<VisitForm>,
    prompt: String,
    button: String,
}

struct VisitForm {
    date_label: String,
    /// The earliest date the visit can have: the arrival.
    min_date: Option<String>,
    how_label: String,
    wellbeing: Vec<(&'static str, String)>,
    concerns_label: String,
    concerns: Vec<(&'static str, String)>,
}

/// No other site may frame a partner page and trick a partner into pressing its buttons.
const CSP: &str = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A rendered page with the headers every partner page carries: the token in its URL is the
/// whole credential, so it is never cached, indexed or sent on as a referrer.
pub(crate) fn page(status: StatusCode, template: impl Template) -> Response {
    rendered(status, template, CSP)
}

/// A rendered page that is never cached, indexed or sent on as a referrer, under `csp`: the
/// partner pages' and the web console's.
pub(crate) fn rendered(status: StatusCode, template: impl Template, csp: &'static str) -> Response {
    let html = match template.render() {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert("x-robots-tag", HeaderValue::from_static("noindex"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    response
}

pub(crate) fn message(
    status: StatusCode,
    lang: Lang,
    title: &str,
    paragraphs: Vec<String>,
    emphasis: Option<String>,
) -> Response {
    page(
        status,
        MessagePage {
            lang: lang.code(),
            title: lang.text(title),
            paragraphs,
            emphasis,
        },
    )
}

/// The page for a link that cannot be used: what happened, and that nothing was recorded.
fn refusal_page(lang: Lang, refusal: &LinkRefusal) -> Response {
    let (status, title) = match refusal {
        LinkRefusal::Malformed | LinkRefusal::Tampered => (StatusCode::BAD_REQUEST, "link-invalid"),
        LinkRefusal::Expired(_) => (StatusCode::GONE, "link-expired"),
        LinkRefusal::Used => (StatusCode::GONE, "link-used"),
        LinkRefusal::AlreadyDone => (StatusCode::GONE, "link-already-done"),
        LinkRefusal::NoLongerOpen => (StatusCode::GONE, "link-no-longer-open"),
        LinkRefusal::NotYours => (StatusCode::FORBIDDEN, "link-not-yours"),
        LinkRefusal::Rejected(_) => (StatusCode::UNPROCESSABLE_ENTITY, "link-rejected"),
    };
    let mut paragraphs = Vec::new();
    if let LinkRefusal::Rejected(reason) = refusal {
        paragraphs.push(reason.clone());
    }
    paragraphs.push(lang.text("link-nothing-recorded"));
    message(status, lang, title, paragraphs, None)
}

fn error_page(lang: Lang, error: LinkError) -> Response {
    match error {
        LinkError::Refused(refusal) => refusal_page(lang, &refusal),
        LinkError::Store(e) => {
            tracing::error!(error = %e, "partner link page failed");
            message(
                StatusCode::SERVICE_UNAVAILABLE,
                lang,
                "page-try-again-later",
                Vec::new(),
                None,
            )
        }
    }
}

/// The step and the form for its action, with what was wrong with the last answer if any.
fn action_page(view: &LinkView, problem: Option<String>) -> Response {
    let lang = Lang::of(&view.language);
    let visit = (view.action == LinkAction::ConfirmVisit).then(|| VisitForm {
        date_label: lang.text("page-visit-date"),
        min_date: view.arrived_on.map(|d| d.to_string()),
        how_label: lang.text("page-visit-how"),
        wellbeing: WELLBEING
            .iter()
            .map(|(_, value)| (*value, lang.text(&format!("wellbeing-{value}"))))
            .collect(),
        concerns_label: lang.text("page-visit-concerns"),
        concerns: CONCERNS
            .iter()
            .map(|(_, value)| (*value, lang.text(&format!("concern-{value}"))))
            .collect(),
    });
    let (title, button) = match view.action {
        LinkAction::Acknowledge => ("page-your-task", "page-acknowledge-button"),
        LinkAction::ConfirmVisit => ("page-follow-up-visit", "page-visit-button"),
    };
    page(
        StatusCode::OK,
        ActionPage {
            lang: lang.code(),
            title: lang.text(title),
            problem,
            step_title: view.step_title.clone(),
            plan_reference_label: lang.text("page-plan-reference"),
            plan_reference: view.plan_reference.clone(),
            due_label: lang.text("page-due"),
            due: view.due_at.map(|due| local(due, &view.time_zone)),
            visit,
            prompt: lang.text("page-acknowledge-prompt"),
            button: lang.text(button),
        },
    )
}

fn thanks_page(view: &LinkView) -> Response {
    let lang = Lang::of(&view.language);
    message(
        StatusCode::OK,
        lang,
        "page-thanks",
        vec![lang.text("page-thanks-body")],
        Some(view.step_title.clone()),
    )
}

pub async fn show(State(links): State<LinkService>, Path(token): Path<String>) -> Response {
    match links.view(&token).await {
        Ok(view) => action_page(&view, None),
        Err(e) => error_page(Lang::of(&links.language_of(&token).await), e),
    }
}

/// What the visit form says, or what is wrong with it (in the partner's language).
fn visit_report(lang: Lang, fields: &[(String, String)]) -> Result<VisitReport, String> {
    let value = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
    };
    let visited_on = value("visited_on")
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .ok_or_else(|| lang.text("page-visit-error-date"))?;
    let wellbeing = value("wellbeing")
        .and_then(|w| WELLBEING.iter().find(|(_, v)| *v == w))
        .map(|(w, _)| *w)
        .ok_or_else(|| lang.text("page-visit-error-wellbeing"))?;
    let mut concerns = Vec::new();
    for (_, v) in fields.iter().filter(|(k, _)| k == "concern") {
        let area = CONCERNS
            .iter()
            .find(|(_, value)| value == v)
            .map(|(c, _)| *c)
            .ok_or_else(|| lang.text("page-visit-error-concern"))?;
        concerns.push(area);
    }
    Ok(VisitReport {
        visited_on,
        wellbeing,
        concerns,
    })
}

pub async fn submit(
    State(links): State<LinkService>,
    Path(token): Path<String>,
    request: axum::extract::Request,
) -> Response {
    // Check the link before reading the form: a bad link gets its own page, and its sender
    // waits for nothing.
    let view = match links.view(&token).await {
        Ok(view) => view,
        Err(e) => return error_page(Lang::of(&links.language_of(&token).await), e),
    };
    let fields = match Form::<Vec<(String, String)>>::from_request(request, &()).await {
        Ok(Form(fields)) => fields,
        Err(rejection) => return rejection.into_response(),
    };
    let lang = Lang::of(&view.language);
    let visit = match view.action {
        LinkAction::Acknowledge => None,
        LinkAction::ConfirmVisit => match visit_report(lang, &fields) {
            Ok(report) => Some(report),
            Err(problem) => {
                let mut response = action_page(&view, Some(problem));
                *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
                return response;
            }
        },
    };
    match links.act(&token, visit).await {
        Ok(view) => thanks_page(&view),
        // A visit the plan refuses (a date before arrival, say): the form again, with why.
        Err(LinkError::Refused(LinkRefusal::Rejected(reason))) => {
            let mut response = action_page(&view, Some(reason));
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            response
        }
        Err(e) => error_page(lang, e),
    }
}
