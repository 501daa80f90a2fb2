//! The pages behind partner links (`/l/<token>`): a partner contact opens the link from a
//! reminder, sees the step (never the person) in their own language, and acknowledges the task
//! or confirms the follow-up visit. What may be done is decided in
//! [`homeward_engine::links`]; this module only renders and parses.
//!
//! The token is the whole credential, so the pages are never cached, never indexed and never
//! send a referrer.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use chrono::NaiveDate;
use homeward_engine::links::{
    LinkAction, LinkError, LinkRefusal, LinkService, LinkView, VisitReport,
};
use homeward_engine::reminders::{escape, local, Lang};
use homeward_workflows::plan::{ConcernArea, Wellbeing};

const WELLBEING: [(Wellbeing, &str, (&str, &str, &str)); 4] = [
    (Wellbeing::Good, "good", ("Good", "Bien", "Bien")),
    (Wellbeing::Fair, "fair", ("Fair", "Moyen", "Regular")),
    (Wellbeing::Poor, "poor", ("Poor", "Mauvais", "Mal")),
    (
        Wellbeing::AtRisk,
        "at_risk",
        ("At risk", "En danger", "En riesgo"),
    ),
];

const CONCERNS: [(ConcernArea, &str, (&str, &str, &str)); 9] = [
    (
        ConcernArea::Safety,
        "safety",
        ("Safety", "Sécurité", "Seguridad"),
    ),
    (ConcernArea::Health, "health", ("Health", "Santé", "Salud")),
    (
        ConcernArea::Housing,
        "housing",
        ("Housing", "Logement", "Vivienda"),
    ),
    (
        ConcernArea::Income,
        "income",
        ("Income", "Revenus", "Ingresos"),
    ),
    (
        ConcernArea::Education,
        "education",
        ("Education", "Éducation", "Educación"),
    ),
    (
        ConcernArea::Family,
        "family",
        ("Family", "Famille", "Familia"),
    ),
    (ConcernArea::Legal, "legal", ("Legal", "Juridique", "Legal")),
    (
        ConcernArea::Stigma,
        "stigma",
        ("Stigma", "Stigmatisation", "Estigma"),
    ),
    (ConcernArea::Other, "other", ("Other", "Autre", "Otro")),
];

fn page(status: StatusCode, lang: Lang, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Homeward</title></head><body><main><h1>{}</h1>{}</main></body></html>",
        lang.code(),
        escape(title),
        escape(title),
        body
    );
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
        HeaderValue::from_static("default-src 'none'; form-action 'self'"),
    );
    response
}

/// The page for a link that cannot be used: what happened, and that nothing was recorded.
fn refusal_page(lang: Lang, refusal: &LinkRefusal) -> Response {
    let (status, title) = match refusal {
        LinkRefusal::Malformed | LinkRefusal::Tampered => (
            StatusCode::BAD_REQUEST,
            lang.pick((
                "This link is not valid",
                "Ce lien n'est pas valide",
                "Este enlace no es válido",
            )),
        ),
        LinkRefusal::Expired(_) => (
            StatusCode::GONE,
            lang.pick((
                "This link has expired",
                "Ce lien a expiré",
                "Este enlace ha caducado",
            )),
        ),
        LinkRefusal::Used => (
            StatusCode::GONE,
            lang.pick((
                "This link was already used",
                "Ce lien a déjà été utilisé",
                "Este enlace ya fue utilizado",
            )),
        ),
        LinkRefusal::AlreadyDone => (
            StatusCode::GONE,
            lang.pick((
                "This was already recorded",
                "C'est déjà enregistré",
                "Esto ya está registrado",
            )),
        ),
        LinkRefusal::NoLongerOpen => (
            StatusCode::GONE,
            lang.pick((
                "This task is no longer open",
                "Cette tâche n'est plus ouverte",
                "Esta tarea ya no está abierta",
            )),
        ),
        LinkRefusal::NotYours => (
            StatusCode::FORBIDDEN,
            lang.pick((
                "This task is no longer assigned to you",
                "Cette tâche ne vous est plus confiée",
                "Esta tarea ya no le está asignada",
            )),
        ),
        LinkRefusal::Rejected(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            lang.pick((
                "This could not be recorded",
                "Cela n'a pas pu être enregistré",
                "No se pudo registrar",
            )),
        ),
    };
    let detail = match refusal {
        LinkRefusal::Rejected(reason) => format!("<p>{}</p>", escape(reason)),
        _ => String::new(),
    };
    let nothing = lang.pick((
        "Nothing was recorded. If you need to report something, please contact the case worker.",
        "Rien n'a été enregistré. Pour signaler quelque chose, contactez le travailleur social.",
        "No se registró nada. Si necesita informar algo, contacte al trabajador social.",
    ));
    page(
        status,
        lang,
        title,
        &format!("{detail}<p>{}</p>", escape(nothing)),
    )
}

fn error_page(lang: Lang, error: LinkError) -> Response {
    match error {
        LinkError::Refused(refusal) => refusal_page(lang, &refusal),
        LinkError::Store(e) => {
            tracing::error!(error = %e, "partner link page failed");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                lang,
                lang.pick((
                    "Please try again later",
                    "Veuillez réessayer plus tard",
                    "Inténtelo de nuevo más tarde",
                )),
                "",
            )
        }
    }
}

/// The step and the form for its action.
fn action_page(view: &LinkView, problem: Option<&str>) -> Response {
    let lang = Lang::of(&view.language);
    let mut body = String::new();
    if let Some(problem) = problem {
        body.push_str(&format!(
            "<p role=\"alert\"><strong>{}</strong></p>",
            escape(problem)
        ));
    }
    body.push_str(&format!(
        "<p><strong>{}</strong></p><p>{}: {}</p>",
        escape(&view.step_title),
        lang.pick(("Plan reference", "Référence du plan", "Referencia del plan")),
        escape(&view.plan_reference)
    ));
    if let Some(due) = view.due_at {
        body.push_str(&format!(
            "<p>{}: {}</p>",
            lang.pick(("Due", "Échéance", "Vence")),
            escape(&local(due, &view.time_zone))
        ));
    }
    body.push_str("<form method=\"post\">");
    match view.action {
        LinkAction::Acknowledge => {
            body.push_str(&format!(
                "<p>{}</p><button type=\"submit\">{}</button>",
                escape(lang.pick((
                    "Please confirm that you have seen this task and will take care of it.",
                    "Merci de confirmer que vous avez vu cette tâche et que vous vous en chargez.",
                    "Confirme que ha visto esta tarea y que se encargará de ella.",
                ))),
                escape(lang.pick((
                    "I acknowledge this task",
                    "Je prends en charge cette tâche",
                    "Me encargo de esta tarea",
                )))
            ));
        }
        LinkAction::ConfirmVisit => {
            body.push_str(&format!(
                "<p><label>{} <input type=\"date\" name=\"visited_on\" required{}></label></p>",
                escape(lang.pick((
                    "Date of the visit",
                    "Date de la visite",
                    "Fecha de la visita",
                ))),
                view.arrived_on
                    .map(|d| format!(" min=\"{d}\""))
                    .unwrap_or_default()
            ));
            body.push_str(&format!(
                "<fieldset><legend>{}</legend>",
                escape(lang.pick(("How is she doing?", "Comment va-t-elle ?", "¿Cómo está?")))
            ));
            for (_, value, labels) in WELLBEING {
                body.push_str(&format!(
                    "<label><input type=\"radio\" name=\"wellbeing\" value=\"{value}\" required> {}</label><br>",
                    escape(lang.pick(labels))
                ));
            }
            body.push_str(&format!(
                "</fieldset><fieldset><legend>{}</legend>",
                escape(lang.pick((
                    "Concerns (if any)",
                    "Préoccupations (s'il y en a)",
                    "Preocupaciones (si las hay)",
                )))
            ));
            for (_, value, labels) in CONCERNS {
                body.push_str(&format!(
                    "<label><input type=\"checkbox\" name=\"concern\" value=\"{value}\"> {}</label><br>",
                    escape(lang.pick(labels))
                ));
            }
            body.push_str(&format!(
                "</fieldset><button type=\"submit\">{}</button>",
                escape(lang.pick((
                    "Confirm the visit",
                    "Confirmer la visite",
                    "Confirmar la visita",
                )))
            ));
        }
    }
    body.push_str("</form>");
    let title = match view.action {
        LinkAction::Acknowledge => lang.pick(("Your task", "Votre tâche", "Su tarea")),
        LinkAction::ConfirmVisit => lang.pick((
            "Follow-up visit",
            "Visite de suivi",
            "Visita de seguimiento",
        )),
    };
    page(StatusCode::OK, lang, title, &body)
}

fn thanks_page(view: &LinkView) -> Response {
    let lang = Lang::of(&view.language);
    page(
        StatusCode::OK,
        lang,
        lang.pick(("Thank you", "Merci", "Gracias")),
        &format!(
            "<p>{}</p><p><strong>{}</strong></p>",
            escape(lang.pick((
                "This has been recorded. The case worker can see it now.",
                "C'est enregistré. Le travailleur social peut le voir dès maintenant.",
                "Quedó registrado. El trabajador social ya puede verlo.",
            ))),
            escape(&view.step_title)
        ),
    )
}

pub async fn show(State(links): State<LinkService>, Path(token): Path<String>) -> Response {
    match links.view(&token).await {
        Ok(view) => action_page(&view, None),
        Err(e) => error_page(Lang::of(&links.language_of(&token).await), e),
    }
}

/// What the visit form says, or what is wrong with it (in the partner's language).
fn visit_report(lang: Lang, fields: &[(String, String)]) -> Result<VisitReport, &'static str> {
    let value = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
    };
    let visited_on = value("visited_on")
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .ok_or(lang.pick((
            "Give the date of the visit (year-month-day).",
            "Indiquez la date de la visite (année-mois-jour).",
            "Indique la fecha de la visita (año-mes-día).",
        )))?;
    let wellbeing = value("wellbeing")
        .and_then(|w| WELLBEING.iter().find(|(_, v, _)| *v == w))
        .map(|(w, _, _)| *w)
        .ok_or(lang.pick((
            "Say how she is doing.",
            "Indiquez comment elle va.",
            "Indique cómo está.",
        )))?;
    let mut concerns = Vec::new();
    for (_, v) in fields.iter().filter(|(k, _)| k == "concern") {
        let area = CONCERNS
            .iter()
            .find(|(_, value, _)| value == v)
            .map(|(c, _, _)| *c)
            .ok_or(lang.pick((
                "Choose concerns from the list.",
                "Choisissez les préoccupations dans la liste.",
                "Elija las preocupaciones de la lista.",
            )))?;
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
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    // Check the link before reading the form: a bad link gets its own page.
    let view = match links.view(&token).await {
        Ok(view) => view,
        Err(e) => return error_page(Lang::of(&links.language_of(&token).await), e),
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
            let mut response = action_page(&view, Some(&reason));
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            response
        }
        Err(e) => error_page(lang, e),
    }
}
