//! Reminder emails, written for their recipient: in their language (English, French or Spanish;
//! English for any other), with dates in their time zone. The words come from the catalogues
//! ([`crate::i18n`]), the layout from the templates in `services/engine/templates/` (plain text
//! and HTML, escaped by askama).
//!
//! A reminder names the step, its due date and the plan's reference, never the survivor: the
//! people reminded know the case, and an email can be forwarded or read over a shoulder. A
//! follow-up visit reminder carries an iCalendar invitation for the visit.

use askama::Template;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use homeward_workflows::plan::{ReminderKind, StepKind};
use uuid::Uuid;

pub use crate::i18n::Lang;
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

fn link_label(lang: Lang, action: LinkAction) -> String {
    lang.text(match action {
        LinkAction::Acknowledge => "link-acknowledge",
        LinkAction::ConfirmVisit => "link-confirm-visit",
    })
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

/// The short reference of a plan that emails and pages name it by (never the person).
pub fn plan_reference(plan_id: Uuid) -> String {
    plan_id.simple().to_string()[..8].to_owned()
}

/// What a reminder says, laid out by `reminder.txt` and `reminder.html`.
struct ReminderBody {
    lang: &'static str,
    greeting: String,
    line: String,
    plan_line: String,
    /// (label, URL) of each partner link.
    links: Vec<(String, String)>,
    footer: Option<String>,
}

#[derive(Template)]
#[template(path = "reminder.txt")]
struct ReminderText<'a> {
    m: &'a ReminderBody,
}

#[derive(Template)]
#[template(path = "reminder.html")]
struct ReminderHtml<'a> {
    m: &'a ReminderBody,
}

/// The email for one reminder to one recipient.
pub fn render(reminder: &Reminder, to: &Recipient) -> OutgoingMail {
    let lang = Lang::of(&to.language);
    let days_late = (reminder.now - reminder.due_at).num_days().max(0);
    let args = [
        ("title", reminder.step_title.as_str().into()),
        ("due", local(reminder.due_at, &to.time_zone).into()),
        ("days", days_late.into()),
    ];
    let kind = match reminder.kind {
        ReminderKind::BeforeDue => "before-due",
        ReminderKind::OnDue => "on-due",
        ReminderKind::Overdue => "overdue",
        ReminderKind::Escalation => "escalation",
        ReminderKind::ReintegrationPlanDue => "reintegration",
    };
    let body = ReminderBody {
        lang: lang.code(),
        greeting: lang.text_with("mail-greeting", &[("name", to.name.as_str().into())]),
        line: lang.text_with(&format!("reminder-{kind}-line"), &args),
        plan_line: lang.text_with(
            "mail-plan-reference",
            &[("reference", plan_reference(reminder.plan_id).into())],
        ),
        links: reminder
            .links
            .iter()
            .map(|(action, url)| (link_label(lang, *action), url.clone()))
            .collect(),
        // Escalations and the reintegration check go to someone the step is not assigned to.
        footer: match reminder.kind {
            ReminderKind::Escalation | ReminderKind::ReintegrationPlanDue => None,
            _ => Some(lang.text("reminder-footer")),
        },
    };
    let calendar = (reminder.step_kind == StepKind::FollowUp).then(|| invitation(reminder, to));
    OutgoingMail {
        to_name: to.name.clone(),
        to_address: to.address.clone(),
        subject: lang.text_with(&format!("reminder-{kind}-subject"), &args),
        text: rendered(ReminderText { m: &body }),
        html: rendered(ReminderHtml { m: &body }),
        message_id: message_id(reminder.timer_id),
        calendar,
    }
}

/// A template's text. The templates are checked when compiled and their values are plain
/// strings, so rendering cannot fail but for a formatter's own error, which no value here has.
fn rendered(template: impl Template) -> String {
    template
        .render()
        .unwrap_or_else(|e| panic!("an email template failed to render: {e}"))
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

/// What a digest says, laid out by `digest.txt` and `digest.html`.
struct DigestBody {
    lang: &'static str,
    greeting: String,
    none: String,
    lines: Vec<String>,
    more: Option<String>,
    footer: String,
}

#[derive(Template)]
#[template(path = "digest.txt")]
struct DigestText<'a> {
    m: &'a DigestBody,
}

#[derive(Template)]
#[template(path = "digest.html")]
struct DigestHtml<'a> {
    m: &'a DigestBody,
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
    let overdue_mark = lang.text("digest-overdue");
    let lines = tasks
        .iter()
        .take(DIGEST_MAX_TASKS)
        .map(|t| {
            let mut args = vec![
                ("title", t.step_title.as_str().into()),
                ("reference", plan_reference(t.plan_id).into()),
            ];
            let line = match t.due_at {
                Some(due) => {
                    args.push(("due", local(due, &to.time_zone).into()));
                    lang.text_with("digest-task-due", &args)
                }
                None => lang.text_with("digest-task", &args),
            };
            if t.overdue {
                format!("[{overdue_mark}] {line}")
            } else {
                line
            }
        })
        .collect();
    let body = DigestBody {
        lang: lang.code(),
        greeting: lang.text_with("mail-greeting", &[("name", to.name.as_str().into())]),
        none: lang.text("digest-none"),
        lines,
        more: (open > DIGEST_MAX_TASKS).then(|| {
            lang.text_with(
                "digest-more",
                &[("count", (open - DIGEST_MAX_TASKS).into())],
            )
        }),
        footer: lang.text("digest-footer"),
    };
    OutgoingMail {
        to_name: to.name.clone(),
        to_address: to.address.clone(),
        subject: lang.text_with(
            "digest-subject",
            &[("open", open.into()), ("overdue", overdue.into())],
        ),
        text: rendered(DigestText { m: &body }),
        html: rendered(DigestHtml { m: &body }),
        message_id: digest_message_id(party_id, covering),
        calendar: None,
    }
}

/// An iCalendar invitation for a follow-up visit at its due time (one hour), written by the
/// `icalendar` crate: RFC 5545's escaping of text, quoting of parameters and folding of long
/// lines, whatever the step's title or the recipient's name holds.
fn invitation(reminder: &Reminder, to: &Recipient) -> String {
    use icalendar::{Attendee, Calendar, Component, Event, EventLike, Property};
    let event = Event::new()
        .uid(&message_id(reminder.timer_id))
        .timestamp(reminder.now)
        .starts(reminder.due_at)
        .ends(reminder.due_at + chrono::Duration::hours(1))
        .summary(&reminder.step_title)
        // A parameter value may not hold a double quote (RFC 5545 3.2), and the crate would
        // write it as is, ending the value early.
        .attendee(Attendee::new(format!("mailto:{}", to.address)).cn(to.name.replace('"', "'")))
        .done();
    let mut calendar = Calendar::empty();
    calendar
        .append_property(Property::new("VERSION", "2.0"))
        .append_property(Property::new("PRODID", "-//Homeward//Reminders//EN"))
        .append_property(Property::new("METHOD", "REQUEST"))
        .push(event);
    calendar.done().to_string()
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
        assert!(mail.html.contains("Follow-up visit &#60;1&#62;"));
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
    fn the_text_is_laid_out_line_by_line() {
        let mut r = reminder(ReminderKind::OnDue, StepKind::FollowUp);
        r.links = vec![(LinkAction::Acknowledge, "https://hw.example/l/a.b".into())];
        assert_eq!(
            render(&r, &to("en", "UTC")).text,
            "Hello Grace,\n\nThe step \"Follow-up visit <1>\" is due today (2026-06-01 07:00 UTC).\n\
             Plan reference: abcdef12\n\nAcknowledge this task:\nhttps://hw.example/l/a.b\n\n-- \n\
             Homeward sends this reminder because the step is assigned to you.\n"
        );
        // An escalation goes to someone the step is not assigned to: no such footer.
        assert_eq!(
            render(
                &reminder(ReminderKind::Escalation, StepKind::Medical),
                &to("en", "UTC")
            )
            .text,
            "Hello Grace,\n\nThe step \"Follow-up visit <1>\" was due on 2026-06-01 07:00 UTC and \
             is 10 days overdue. You are receiving this as the case worker's supervisor.\n\
             Plan reference: abcdef12\n"
        );
        let covering = Utc.with_ymd_and_hms(2026, 6, 8, 7, 0, 0).unwrap();
        let many: Vec<DigestTask> = (0..DIGEST_MAX_TASKS + 2)
            .map(|i| DigestTask {
                plan_id: Uuid::from_u128(0xabcdef12_0000_0000_0000_000000000000),
                step_title: format!("Task {i}"),
                due_at: None,
                overdue: false,
            })
            .collect();
        let digest = render_digest(Uuid::from_u128(9), covering, &many, &to("en", "UTC")).text;
        assert!(digest.starts_with("Hello Grace,\n\n- Task 0 (plan abcdef12)\n- Task 1 "));
        assert!(digest.ends_with(
            "- Task 49 (plan abcdef12)\n+ 2 more tasks\n\n-- \n\
             Homeward sends this digest on the schedule you chose.\n"
        ));
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
        assert!(mail.html.contains("Passport &#60;renewal&#62;"));
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

    #[test]
    fn a_hostile_title_and_name_stay_one_event_with_their_text_intact() {
        use icalendar::{Calendar, CalendarComponent, Component};
        let title = "Visite; « Lagos », bureau \\ 2: BEGIN:VEVENT, END:VCALENDAR — \
                     un titre assez long pour être plié sur plusieurs lignes du fichier";
        let mut visit = reminder(ReminderKind::BeforeDue, StepKind::FollowUp);
        visit.step_title = title.into();
        let mut grace = to("fr", "Africa/Lagos");
        grace.name = "Okafor; Grace \"G\": ACME, Ltd".into();
        let ics = render(&visit, &grace).calendar.unwrap();

        // RFC 5545: lines of at most 75 octets, ended by CR LF.
        for line in ics.split("\r\n") {
            assert!(line.len() <= 75, "{line:?} ({} octets)", line.len());
        }
        let parsed: Calendar = ics.parse().expect("the invitation parses");
        let events: Vec<_> = parsed
            .components
            .iter()
            .filter_map(|c| match c {
                CalendarComponent::Event(e) => Some(e),
                _ => None,
            })
            .collect();
        assert_eq!(events.len(), 1, "{ics}");
        assert_eq!(events[0].get_summary(), Some(title));
        assert_eq!(
            events[0].get_start(),
            Some(Utc.with_ymd_and_hms(2026, 6, 1, 7, 0, 0).unwrap().into())
        );
        let attendees = events[0].get_attendees();
        assert_eq!(attendees.len(), 1);
        assert_eq!(attendees[0].cal_address, "mailto:grace@hope-lagos.example");
        assert_eq!(
            attendees[0].cn.as_deref(),
            Some("Okafor; Grace 'G': ACME, Ltd")
        );
        assert_eq!(ics.matches("PRODID").count(), 1, "{ics}");
    }
}
