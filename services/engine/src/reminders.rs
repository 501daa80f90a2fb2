//! Reminder emails, written for their recipient: in their language (English, French or Spanish;
//! English for any other), with dates in their time zone.
//!
//! A reminder names the step, its due date and the plan's reference, never the survivor: the
//! people reminded know the case, and an email can be forwarded or read over a shoulder. A
//! follow-up visit reminder carries an iCalendar invitation for the visit.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use homeward_workflows::plan::{ReminderKind, StepKind};
use uuid::Uuid;

use crate::links::LinkAction;
use crate::mail::OutgoingMail;

/// What a reminder is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminder {
    pub timer_id: Uuid,
    pub kind: ReminderKind,
    pub plan_id: Uuid,
    pub step_title: String,
    pub step_kind: StepKind,
    pub due_at: DateTime<Utc>,
    /// When the reminder is sent (days overdue are counted from the due date to this).
    pub now: DateTime<Utc>,
    /// Signed links for a partner contact to answer from the email (see [`crate::links`]).
    pub links: Vec<(LinkAction, String)>,
}

/// Who receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub name: String,
    pub address: String,
    /// BCP 47 tag; only the primary language counts (`fr-CA` is French).
    pub language: String,
    pub time_zone: String,
}

/// The languages Homeward writes in (emails and partner pages); any other gets English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Fr,
    Es,
}

impl Lang {
    /// The language for a BCP 47 tag: only the primary language counts (`fr-CA` is French).
    pub fn of(tag: &str) -> Self {
        match tag
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase()
            .as_str()
        {
            "fr" => Self::Fr,
            "es" => Self::Es,
            _ => Self::En,
        }
    }
}

impl Lang {
    /// For `<html lang="...">`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
            Lang::Es => "es",
        }
    }

    /// The text in this language from (English, French, Spanish).
    pub fn pick(self, texts: (&'static str, &'static str, &'static str)) -> &'static str {
        match self {
            Self::En => texts.0,
            Self::Fr => texts.1,
            Self::Es => texts.2,
        }
    }
}

fn link_label(lang: Lang, action: LinkAction) -> &'static str {
    match (lang, action) {
        (Lang::En, LinkAction::Acknowledge) => "Acknowledge this task",
        (Lang::En, LinkAction::ConfirmVisit) => "Confirm that the visit took place",
        (Lang::Fr, LinkAction::Acknowledge) => "Confirmer la prise en charge de cette tâche",
        (Lang::Fr, LinkAction::ConfirmVisit) => "Confirmer que la visite a eu lieu",
        (Lang::Es, LinkAction::Acknowledge) => "Confirmar que se encarga de esta tarea",
        (Lang::Es, LinkAction::ConfirmVisit) => "Confirmar que la visita tuvo lugar",
    }
}

/// The Message-ID of a timer's email: the same timer always gives the same id.
pub fn message_id(timer_id: Uuid) -> String {
    format!("{timer_id}@homeward")
}

/// An instant as the recipient reads it: in their time zone, with the zone's abbreviation.
pub fn local(at: DateTime<Utc>, time_zone: &str) -> String {
    let tz: Tz = time_zone.parse().unwrap_or(chrono_tz::UTC);
    at.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// Text made safe for HTML content and double-quoted attributes.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The email for one reminder to one recipient.
pub fn render(reminder: &Reminder, to: &Recipient) -> OutgoingMail {
    let lang = Lang::of(&to.language);
    let due = local(reminder.due_at, &to.time_zone);
    let days_late = (reminder.now - reminder.due_at).num_days().max(0);
    let title = &reminder.step_title;
    let reference = reminder.plan_id.simple().to_string()[..8].to_owned();
    let (subject, line) = match (lang, reminder.kind) {
        (Lang::En, ReminderKind::BeforeDue) => (
            format!("Reminder: {title} is due on {due}"),
            format!("The step \"{title}\" is due on {due}."),
        ),
        (Lang::En, ReminderKind::OnDue) => (
            format!("Due today: {title}"),
            format!("The step \"{title}\" is due today ({due})."),
        ),
        (Lang::En, ReminderKind::Overdue) => (
            format!("Overdue: {title} (due {due})"),
            format!("The step \"{title}\" was due on {due}: {days_late} days ago."),
        ),
        (Lang::En, ReminderKind::Escalation) => (
            format!("Escalation: {title} is {days_late} days overdue"),
            format!(
                "The step \"{title}\" was due on {due} and is {days_late} days overdue. You are \
                 receiving this as the case worker's supervisor."
            ),
        ),
        (Lang::Fr, ReminderKind::BeforeDue) => (
            format!("Rappel : {title}, échéance le {due}"),
            format!("L'étape « {title} » arrive à échéance le {due}."),
        ),
        (Lang::Fr, ReminderKind::OnDue) => (
            format!("Échéance aujourd'hui : {title}"),
            format!("L'étape « {title} » arrive à échéance aujourd'hui ({due})."),
        ),
        (Lang::Fr, ReminderKind::Overdue) => (
            format!("En retard : {title} (échéance le {due})"),
            format!("L'étape « {title} » devait être faite le {due}, il y a {days_late} jours."),
        ),
        (Lang::Fr, ReminderKind::Escalation) => (
            format!("Escalade : {title}, {days_late} jours de retard"),
            format!(
                "L'étape « {title} » devait être faite le {due} et a {days_late} jours de retard. \
                 Vous recevez ce message en tant que responsable du travailleur social."
            ),
        ),
        (Lang::Es, ReminderKind::BeforeDue) => (
            format!("Recordatorio: {title} vence el {due}"),
            format!("El paso «{title}» vence el {due}."),
        ),
        (Lang::Es, ReminderKind::OnDue) => (
            format!("Vence hoy: {title}"),
            format!("El paso «{title}» vence hoy ({due})."),
        ),
        (Lang::Es, ReminderKind::Overdue) => (
            format!("Atrasado: {title} (vencía el {due})"),
            format!("El paso «{title}» vencía el {due}, hace {days_late} días."),
        ),
        (Lang::Es, ReminderKind::Escalation) => (
            format!("Escalamiento: {title} lleva {days_late} días de retraso"),
            format!(
                "El paso «{title}» vencía el {due} y lleva {days_late} días de retraso. Recibe \
                 este mensaje como supervisor del trabajador social."
            ),
        ),
        (Lang::En, ReminderKind::ReintegrationPlanDue) => (
            format!("No reintegration plan yet, a month after arrival: {title}"),
            format!(
                "A month has passed since the arrival and \"{title}\" is not done yet. You are \
                 receiving this as the plan's case worker."
            ),
        ),
        (Lang::Fr, ReminderKind::ReintegrationPlanDue) => (
            format!("Pas encore de plan de réintégration un mois après l'arrivée : {title}"),
            format!(
                "Un mois s'est écoulé depuis l'arrivée et « {title} » n'est pas encore fait. Vous \
                 recevez ce message en tant que travailleur social du plan."
            ),
        ),
        (Lang::Es, ReminderKind::ReintegrationPlanDue) => (
            format!("Aún sin plan de reintegración un mes después de la llegada: {title}"),
            format!(
                "Ha pasado un mes desde la llegada y «{title}» aún no está hecho. Recibe este \
                 mensaje como trabajador social del plan."
            ),
        ),
    };
    let link_lines: Vec<(String, &str)> = reminder
        .links
        .iter()
        .map(|(action, url)| (link_label(lang, *action).to_owned(), url.as_str()))
        .collect();
    let (greeting, plan_line, footer) = match lang {
        Lang::En => (
            format!("Hello {},", to.name),
            format!("Plan reference: {reference}"),
            "Homeward sends this reminder because the step is assigned to you.",
        ),
        Lang::Fr => (
            format!("Bonjour {},", to.name),
            format!("Référence du plan : {reference}"),
            "Homeward vous envoie ce rappel car l'étape vous est confiée.",
        ),
        Lang::Es => (
            format!("Hola {}:", to.name),
            format!("Referencia del plan: {reference}"),
            "Homeward le envía este recordatorio porque el paso le ha sido asignado.",
        ),
    };
    let footer = match reminder.kind {
        ReminderKind::Escalation | ReminderKind::ReintegrationPlanDue => "",
        _ => footer,
    };
    let mut text = format!("{greeting}\n\n{line}\n{plan_line}\n");
    let mut links_html = String::new();
    for (label, url) in &link_lines {
        text.push_str(&format!("\n{label}:\n{url}\n"));
        links_html.push_str(&format!(
            "<p><a href=\"{}\">{}</a></p>",
            escape(url),
            escape(label)
        ));
    }
    if !footer.is_empty() {
        text.push_str(&format!("\n-- \n{footer}\n"));
    }
    let html = format!(
        "<!doctype html><html lang=\"{}\"><body><p>{}</p><p>{}<br>{}</p>{}<hr><p><small>{}</small></p></body></html>",
        lang.code(),
        escape(&greeting),
        escape(&line),
        escape(&plan_line),
        links_html,
        escape(footer)
    );
    let calendar = (reminder.step_kind == StepKind::FollowUp).then(|| invitation(reminder, to));
    OutgoingMail {
        to_name: to.name.clone(),
        to_address: to.address.clone(),
        subject,
        text,
        html,
        message_id: message_id(reminder.timer_id),
        calendar,
    }
}

/// One open task in a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestTask {
    pub plan_id: Uuid,
    pub step_title: String,
    pub due_at: Option<DateTime<Utc>>,
    pub overdue: bool,
}

/// Tasks listed in one digest; the rest are counted.
pub const DIGEST_MAX_TASKS: usize = 50;

/// Namespace of digest Message-IDs: one per party and occurrence.
const DIGEST_NAMESPACE: Uuid = Uuid::from_u128(0x7d3e_0c5a_1b2f_4e69_a804_3f1c_9d2e_6b57);

/// The Message-ID of a party's digest for one occurrence of its schedule.
pub fn digest_message_id(party_id: Uuid, covering: DateTime<Utc>) -> String {
    let mut name = party_id.as_bytes().to_vec();
    name.extend_from_slice(&covering.timestamp().to_be_bytes());
    format!("digest-{}@homeward", Uuid::new_v5(&DIGEST_NAMESPACE, &name))
}

/// The digest of a party's open and overdue tasks (overdue first, as given).
pub fn render_digest(
    party_id: Uuid,
    covering: DateTime<Utc>,
    tasks: &[DigestTask],
    to: &Recipient,
) -> OutgoingMail {
    let lang = Lang::of(&to.language);
    let open = tasks.len();
    let overdue = tasks.iter().filter(|t| t.overdue).count();
    let (subject, greeting, none, overdue_mark, due_word, plan_word, more, footer) = match lang {
        Lang::En => (
            format!("Your Homeward tasks: {open} open, {overdue} overdue"),
            format!("Hello {},", to.name),
            "You have no open tasks.",
            "OVERDUE",
            "due",
            "plan",
            "more tasks",
            "Homeward sends this digest on the schedule you chose.",
        ),
        Lang::Fr => (
            format!("Vos tâches Homeward : {open} ouvertes, {overdue} en retard"),
            format!("Bonjour {},", to.name),
            "Vous n'avez aucune tâche ouverte.",
            "EN RETARD",
            "échéance",
            "plan",
            "autres tâches",
            "Homeward vous envoie ce récapitulatif selon le calendrier que vous avez choisi.",
        ),
        Lang::Es => (
            format!("Sus tareas en Homeward: {open} abiertas, {overdue} atrasadas"),
            format!("Hola {}:", to.name),
            "No tiene tareas abiertas.",
            "ATRASADA",
            "vence",
            "plan",
            "tareas más",
            "Homeward le envía este resumen según el calendario que eligió.",
        ),
    };
    let lines: Vec<String> = tasks
        .iter()
        .take(DIGEST_MAX_TASKS)
        .map(|t| {
            let mark = if t.overdue {
                format!("[{overdue_mark}] ")
            } else {
                String::new()
            };
            let due = t
                .due_at
                .map(|d| format!(", {due_word} {}", local(d, &to.time_zone)))
                .unwrap_or_default();
            let reference = &t.plan_id.simple().to_string()[..8];
            format!("{mark}{} ({plan_word} {reference}){due}", t.step_title)
        })
        .collect();
    let mut text = format!("{greeting}\n\n");
    let mut items = String::new();
    if lines.is_empty() {
        text.push_str(none);
        text.push('\n');
        items.push_str(&format!("<p>{}</p>", escape(none)));
    } else {
        items.push_str("<ul>");
        for line in &lines {
            text.push_str(&format!("- {line}\n"));
            items.push_str(&format!("<li>{}</li>", escape(line)));
        }
        items.push_str("</ul>");
    }
    if open > DIGEST_MAX_TASKS {
        let rest = format!("+ {} {more}", open - DIGEST_MAX_TASKS);
        text.push_str(&format!("{rest}\n"));
        items.push_str(&format!("<p>{}</p>", escape(&rest)));
    }
    text.push_str(&format!("\n-- \n{footer}\n"));
    let html = format!(
        "<!doctype html><html lang=\"{}\"><body><p>{}</p>{}<hr><p><small>{}</small></p></body></html>",
        lang.code(),
        escape(&greeting),
        items,
        escape(footer)
    );
    OutgoingMail {
        to_name: to.name.clone(),
        to_address: to.address.clone(),
        subject,
        text,
        html,
        message_id: digest_message_id(party_id, covering),
        calendar: None,
    }
}

/// An iCalendar invitation for a follow-up visit at its due time (one hour).
fn invitation(reminder: &Reminder, to: &Recipient) -> String {
    let stamp = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    let end = reminder.due_at + chrono::Duration::hours(1);
    let summary = reminder
        .step_title
        .replace('\\', "\\\\")
        .replace(';', "\\;")
        .replace(',', "\\,")
        .replace('\n', "\\n");
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Homeward//Reminders//EN\r\nMETHOD:REQUEST\r\n\
         BEGIN:VEVENT\r\nUID:{}\r\nDTSTAMP:{}\r\nDTSTART:{}\r\nDTEND:{}\r\nSUMMARY:{}\r\n\
         ATTENDEE;CN={}:mailto:{}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        message_id(reminder.timer_id),
        stamp(reminder.now),
        stamp(reminder.due_at),
        stamp(end),
        summary,
        to.name.replace([';', ':', ','], " "),
        to.address
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn reminder(kind: ReminderKind, step_kind: StepKind) -> Reminder {
        Reminder {
            timer_id: Uuid::from_u128(7),
            kind,
            plan_id: Uuid::from_u128(0xabcdef12_0000_0000_0000_000000000000),
            step_title: "Follow-up visit <1>".into(),
            step_kind,
            due_at: Utc.with_ymd_and_hms(2026, 6, 1, 7, 0, 0).unwrap(),
            now: Utc.with_ymd_and_hms(2026, 6, 11, 7, 0, 0).unwrap(),
            links: Vec::new(),
        }
    }

    fn to(language: &str, time_zone: &str) -> Recipient {
        Recipient {
            name: "Grace".into(),
            address: "grace@hope-lagos.example".into(),
            language: language.into(),
            time_zone: time_zone.into(),
        }
    }

    #[test]
    fn written_in_the_recipients_language_with_local_times() {
        let r = reminder(ReminderKind::Overdue, StepKind::FollowUp);
        let en = render(&r, &to("en", "Africa/Lagos"));
        assert_eq!(
            en.subject,
            "Overdue: Follow-up visit <1> (due 2026-06-01 08:00 WAT)"
        );
        assert!(en.text.contains("10 days ago"));
        let fr = render(&r, &to("fr-CA", "Europe/Paris"));
        assert_eq!(
            fr.subject,
            "En retard : Follow-up visit <1> (échéance le 2026-06-01 09:00 CEST)"
        );
        assert!(fr.text.starts_with("Bonjour Grace,"));
        let es = render(&r, &to("es", "America/Bogota"));
        assert_eq!(
            es.subject,
            "Atrasado: Follow-up visit <1> (vencía el 2026-06-01 02:00 -05)"
        );
        // Any other language: English.
        assert_eq!(
            render(&r, &to("yo", "UTC")).subject,
            "Overdue: Follow-up visit <1> (due 2026-06-01 07:00 UTC)"
        );
    }

    #[test]
    fn html_is_escaped_and_the_message_id_comes_from_the_timer() {
        let mail = render(
            &reminder(ReminderKind::OnDue, StepKind::Medical),
            &to("en", "UTC"),
        );
        assert!(mail.html.contains("Follow-up visit &lt;1&gt;"));
        assert!(!mail.html.contains("<1>"));
        assert_eq!(
            mail.message_id,
            "00000000-0000-0000-0000-000000000007@homeward"
        );
        assert!(mail.text.contains("Plan reference: abcdef12"));
        assert!(
            mail.calendar.is_none(),
            "only follow-up visits carry an invitation"
        );
    }

    #[test]
    fn a_reminder_with_links_lists_them_in_text_and_html() {
        let mut r = reminder(ReminderKind::BeforeDue, StepKind::FollowUp);
        r.links = vec![
            (LinkAction::Acknowledge, "https://hw.example/l/a.b".into()),
            (LinkAction::ConfirmVisit, "https://hw.example/l/c.d".into()),
        ];
        let mail = render(&r, &to("fr", "Africa/Lagos"));
        assert!(mail
            .text
            .contains("Confirmer la prise en charge de cette tâche:\nhttps://hw.example/l/a.b\n"));
        assert!(mail.html.contains(
            "<a href=\"https://hw.example/l/c.d\">Confirmer que la visite a eu lieu</a>"
        ));
    }

    #[test]
    fn a_digest_lists_tasks_with_local_due_dates_overdue_marked() {
        let tasks = vec![
            DigestTask {
                plan_id: Uuid::from_u128(0xabcdef12_0000_0000_0000_000000000000),
                step_title: "Passport <renewal>".into(),
                due_at: Some(Utc.with_ymd_and_hms(2026, 6, 1, 7, 0, 0).unwrap()),
                overdue: true,
            },
            DigestTask {
                plan_id: Uuid::from_u128(0x12345678_0000_0000_0000_000000000000),
                step_title: "Legal clearance".into(),
                due_at: None,
                overdue: false,
            },
        ];
        let covering = Utc.with_ymd_and_hms(2026, 6, 8, 7, 0, 0).unwrap();
        let mail = render_digest(
            Uuid::from_u128(9),
            covering,
            &tasks,
            &to("es", "Africa/Lagos"),
        );
        assert_eq!(
            mail.subject,
            "Sus tareas en Homeward: 2 abiertas, 1 atrasadas"
        );
        assert!(mail.text.contains(
            "- [ATRASADA] Passport <renewal> (plan abcdef12), vence 2026-06-01 08:00 WAT\n"
        ));
        assert!(mail.text.contains("- Legal clearance (plan 12345678)\n"));
        assert!(mail.html.contains("Passport &lt;renewal&gt;"));
        assert_eq!(
            mail.message_id,
            digest_message_id(Uuid::from_u128(9), covering)
        );
        let empty = render_digest(Uuid::from_u128(9), covering, &[], &to("en", "UTC"));
        assert!(empty.text.contains("You have no open tasks."));
    }

    #[test]
    fn a_follow_up_visit_carries_an_invitation() {
        let mail = render(
            &reminder(ReminderKind::BeforeDue, StepKind::FollowUp),
            &to("en", "UTC"),
        );
        let ics = mail.calendar.unwrap();
        assert!(ics.contains("METHOD:REQUEST"));
        assert!(ics.contains("DTSTART:20260601T070000Z"));
        assert!(ics.contains("DTEND:20260601T080000Z"));
        assert!(ics.contains("UID:00000000-0000-0000-0000-000000000007@homeward"));
        assert!(ics.contains("mailto:grace@hope-lagos.example"));
    }
}
