//! What is personal in every stored event, decided once.
//!
//! Each field of each event type's payload is either [`Class::Personal`]: it identifies or
//! describes a survivor, or is free text that may (a goal's aim, a reason, a custom step's
//! title, a follow-up's findings, which are health and safety data), and is to be kept under the
//! survivor's own key and erased with it; or [`Class::Safe`]: ids, kinds, dates, statuses and
//! settings the programme's figures and the workflow need, and the staff's own professional
//! details. A field is named by its path in the payload: keys joined with `.`, `[]` for the
//! elements of a list; a classified path covers everything under it.
//!
//! A test (`workflows/tests/classification.rs`) walks every stored event form (the golden
//! fixtures) and fails when a field has no class here, so a new field is classified before it
//! is stored.

/// Whether a stored field is a survivor's personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Personal,
    Safe,
}

use Class::{Personal, Safe};

/// (event type, field path, class). Paths are those of the current schema version.
pub const FIELDS: &[(&str, &str, Class)] = &[
    // The plan stream: facts of the workflow are safe, free text is personal.
    ("plan_opened", "plan_id", Safe),
    ("plan_opened", "person", Safe),
    ("plan_opened", "template", Safe),
    ("plan_opened", "case_worker", Safe),
    ("plan_opened", "organisation", Safe),
    ("plan_opened", "origin_country", Safe),
    ("plan_opened", "opened_at", Safe),
    ("goals_set", "goals[].area", Safe),
    ("goals_set", "goals[].aim", Personal),
    ("step_added", "step.key", Safe),
    ("step_added", "step.kind", Safe),
    // A custom step's title can say anything about her ("Counselling after the assault").
    ("step_added", "step.title", Personal),
    ("step_added", "step.assignee", Safe),
    ("step_added", "step.candidate_group", Safe),
    ("step_added", "step.priority", Safe),
    ("step_added", "step.due", Safe),
    ("step_added", "step.follow_up_on", Safe),
    ("step_added", "step.depends_on", Safe),
    ("step_added", "step.reminder_policy", Safe),
    ("step_removed", "step", Safe),
    ("step_removed", "reason", Personal),
    ("step_assigned", "step", Safe),
    ("step_assigned", "assignee", Safe),
    ("step_assigned", "candidate_group", Safe),
    ("step_rescheduled", "step", Safe),
    ("step_rescheduled", "due", Safe),
    ("step_rescheduled", "follow_up_on", Safe),
    ("step_dependencies_changed", "step", Safe),
    ("step_dependencies_changed", "depends_on", Safe),
    ("step_prioritised", "step", Safe),
    ("step_prioritised", "priority", Safe),
    ("reminder_policy_set", "step", Safe),
    ("reminder_policy_set", "policy", Safe),
    ("step_started", "step", Safe),
    ("step_started", "override_reason", Personal),
    ("step_blocked", "step", Safe),
    ("step_blocked", "reason", Personal),
    ("step_unblocked", "step", Safe),
    ("step_completed", "step", Safe),
    ("step_acknowledged", "step", Safe),
    ("step_cancelled", "step", Safe),
    ("step_cancelled", "reason", Personal),
    ("document_status_updated", "step", Safe),
    ("document_status_updated", "status", Safe),
    ("consent_recorded", "purpose", Safe),
    ("consent_recorded", "at", Safe),
    ("consent_recorded", "recorded_by", Safe),
    ("consent_withdrawn", "purpose", Safe),
    ("consent_withdrawn", "at", Safe),
    ("consent_withdrawn", "recorded_by", Safe),
    ("departure_confirmed", "departed_at", Safe),
    ("departure_confirmed", "override_reason", Personal),
    ("arrival_confirmed", "arrived_at", Safe),
    ("follow_up_recorded", "step", Safe),
    ("follow_up_recorded", "outcome.visited_on", Safe),
    // How she is and what worries her: health and safety data.
    ("follow_up_recorded", "outcome.wellbeing", Personal),
    ("follow_up_recorded", "outcome.concerns", Personal),
    // A reason from a closed list, counted in the programme's figures.
    ("plan_closed", "reason", Safe),
    ("plan_closed", "closed_at", Safe),
    ("case_worker_reassigned", "from", Safe),
    ("case_worker_reassigned", "to", Safe),
    ("reminder_sent", "step", Safe),
    ("reminder_sent", "kind", Safe),
    ("reminder_sent", "fire_at", Safe),
    ("reminder_sent", "recipient", Safe),
    ("step_escalated", "step", Safe),
    ("step_escalated", "kind", Safe),
    ("step_escalated", "fire_at", Safe),
    ("step_escalated", "recipient", Safe),
    ("reminder_failed", "step", Safe),
    ("reminder_failed", "kind", Safe),
    ("reminder_failed", "fire_at", Safe),
    ("reminder_failed", "recipient", Safe),
    // A delivery failure may quote the step's title back.
    ("reminder_failed", "reason", Personal),
    // The person stream: all of it is hers, but the ids that tie it to the rest.
    ("person_registered", "person_id", Safe),
    ("person_registered", "organisation", Safe),
    ("person_registered", "full_name", Personal),
    ("person_registered", "date_of_birth", Personal),
    ("person_registered", "preferred_language", Personal),
    ("person_registered", "contact.phone", Personal),
    ("person_registered", "contact.email", Personal),
    ("person_registered", "contact.address", Personal),
    ("person_contact_updated", "contact.phone", Personal),
    ("person_contact_updated", "contact.email", Personal),
    ("person_contact_updated", "contact.address", Personal),
    ("person_note_added", "note.text", Personal),
    ("person_note_added", "note.author", Safe),
    ("person_note_added", "note.at", Safe),
    ("person_corrected", "full_name", Personal),
    ("person_corrected", "date_of_birth", Personal),
    ("person_corrected", "preferred_language", Personal),
    ("person_corrected", "contact.phone", Personal),
    ("person_corrected", "contact.email", Personal),
    ("person_corrected", "contact.address", Personal),
    // Which details changed (their names), not what they hold.
    ("person_corrected", "changed", Safe),
    ("person_corrected", "reason", Personal),
    ("person_erased", "reason", Safe),
    ("person_erased", "erased_at", Safe),
    // A hold's reason may name the court case.
    ("legal_hold_placed", "hold.reason", Personal),
    ("legal_hold_placed", "hold.placed_by", Safe),
    ("legal_hold_placed", "hold.placed_at", Safe),
    ("legal_hold_lifted", "reason", Personal),
    ("legal_hold_lifted", "lifted_by", Safe),
    ("legal_hold_lifted", "lifted_at", Safe),
    // Parties and organisations: the staff's professional details, no survivor's.
    ("party_registered", "party_id", Safe),
    ("party_registered", "profile", Safe),
    ("party_updated", "profile", Safe),
    ("reminder_settings_changed", "language", Safe),
    ("reminder_settings_changed", "time_zone", Safe),
    ("reminder_settings_changed", "quiet_hours", Safe),
    ("reminder_settings_changed", "digest", Safe),
    ("reminder_settings_changed", "changed_at", Safe),
    ("digest_sent", "covering", Safe),
    ("digest_sent", "open_tasks", Safe),
    ("digest_sent", "overdue_tasks", Safe),
    ("digest_failed", "covering", Safe),
    ("digest_failed", "reason", Safe),
    ("party_deactivated", "reason", Safe),
    ("organisation_registered", "organisation_id", Safe),
    ("organisation_registered", "name", Safe),
    ("organisation_registered", "kind", Safe),
    ("organisation_registered", "country", Safe),
    ("organisation_renamed", "name", Safe),
    ("partnership_started", "partner", Safe),
    ("partnership_ended", "partner", Safe),
    ("retention_period_set", "months", Safe),
];

/// The class of the field at `path` of an event of `event_type`: that of the longest classified
/// path it lies under; `None` when it has none (a defect the classification test finds).
pub fn class_of(event_type: &str, path: &str) -> Option<Class> {
    FIELDS
        .iter()
        .filter(|(t, p, _)| *t == event_type && covers(p, path))
        .max_by_key(|(_, p, _)| p.len())
        .map(|(_, _, class)| *class)
}

/// The personal paths of an event type: where the engine seals (and the edge opens) values.
/// Each is a [`crate::Personal`] field of the event's Rust type.
pub fn personal_paths(event_type: &str) -> impl Iterator<Item = &'static str> + '_ {
    FIELDS
        .iter()
        .filter(move |(t, _, class)| *t == event_type && *class == Personal)
        .map(|(_, path, _)| *path)
}

/// Calls `f` with every value at `path` in `payload` (each element's for a `[]` segment); a
/// missing or null value is skipped.
pub fn for_each_at(
    payload: &mut serde_json::Value,
    path: &str,
    f: &mut dyn FnMut(&mut serde_json::Value),
) {
    let (head, rest) = match path.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    };
    let (key, each) = match head.strip_suffix("[]") {
        Some(key) => (key, true),
        None => (head, false),
    };
    let Some(inner) = payload.get_mut(key) else {
        return;
    };
    let mut visit = |value: &mut serde_json::Value| match rest {
        _ if value.is_null() => {}
        Some(rest) => for_each_at(value, rest, f),
        None => f(value),
    };
    if each {
        if let Some(items) = inner.as_array_mut() {
            items.iter_mut().for_each(&mut visit);
        }
    } else {
        visit(inner);
    }
}

/// Whether the classified path `classified` is `path` or lies above it.
pub fn covers(classified: &str, path: &str) -> bool {
    path == classified
        || path
            .strip_prefix(classified)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with("[]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_classified_path_covers_what_lies_under_it_and_nothing_beside_it() {
        assert!(covers("step.due", "step.due.local"));
        assert!(covers("goals", "goals[].aim"));
        assert!(!covers("step.due", "step.due_rule"));
        assert_eq!(class_of("goals_set", "goals[].aim"), Some(Class::Personal));
        assert_eq!(class_of("goals_set", "goals[].area"), Some(Class::Safe));
        assert_eq!(
            class_of("person_registered", "contact.phone"),
            Some(Class::Personal)
        );
        assert_eq!(class_of("goals_set", "goals[].colour"), None);
    }

    #[test]
    fn every_value_at_a_path_is_visited_and_nothing_else() {
        let mut payload = serde_json::json!({
            "goals": [{"area": "work", "aim": "a"}, {"area": "family", "aim": "b"}],
            "contact": {"phone": null, "email": "e"},
        });
        let mut seen = Vec::new();
        for path in ["goals[].aim", "contact.phone", "contact.email", "absent.x"] {
            for_each_at(&mut payload, path, &mut |v| {
                seen.push(v.clone());
                *v = serde_json::json!("x");
            });
        }
        assert_eq!(seen, ["a", "b", "e"]);
        assert_eq!(payload["goals"][1]["aim"], "x");
        assert_eq!(payload["goals"][1]["area"], "family");
        assert!(payload["contact"]["phone"].is_null());
        assert_eq!(
            personal_paths("step_blocked").collect::<Vec<_>>(),
            ["reason"]
        );
    }
}
