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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    En,
    Fr,
    Es,
}

impl Lang {
    fn of(tag: &str) -> Self {
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

/// The Message-ID of a timer's email: the same timer always gives the same id.
pub fn message_id(timer_id: Uuid) -> String {
    format!("{timer_id}@homeward")
}

fn local(at: DateTime<Utc>, time_zone: &str) -> String {
    let tz: Tz = time_zone.parse().unwrap_or(chrono_tz::UTC);
    at.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

fn escape(s: &str) -> String {
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
    };
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
    let text = format!("{greeting}\n\n{line}\n{plan_line}\n\n-- \n{footer}\n");
    let html = format!(
        "<!doctype html><html lang=\"{}\"><body><p>{}</p><p>{}<br>{}</p><hr><p><small>{}</small></p></body></html>",
        match lang {
            Lang::En => "en",
            Lang::Fr => "fr",
            Lang::Es => "es",
        },
        escape(&greeting),
        escape(&line),
        escape(&plan_line),
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
