//! Read-model rows and how a change of state becomes a change of rows.
//!
//! The rows are computed here from aggregate state, in Rust; SQL only stores them
//! (`homeward_project_rows`, or `COPY` in a rebuild). Commands send the difference between the
//! state before and after; a rebuild sends every row of the final states. Both go through
//! [`ProjectionChange`], so they cannot disagree.

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use homeward_workflows::organisation::Organisation;
use homeward_workflows::party::Party;
use homeward_workflows::person::Person;
use homeward_workflows::plan::{Plan, Step, StepStatus};
use homeward_workflows::timers::{plan_timer_effects, Effect, TimerSpec};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, sqlx::FromRow)]
#[sqlx(type_name = "homeward_plan_row")]
pub struct PlanRow {
    pub plan_id: Uuid,
    pub version: i64,
    pub person_id: Uuid,
    pub template_name: String,
    pub template_version: i32,
    pub case_worker: Uuid,
    pub organisation: Uuid,
    pub origin_country: String,
    pub status: String,
    pub suspended: bool,
    pub opened_at: DateTime<Utc>,
    pub departed_at: Option<DateTime<Utc>>,
    pub arrived_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub close_reason: Option<String>,
    pub next_due_at: Option<DateTime<Utc>>,
    pub steps_total: i32,
    pub steps_open: i32,
    pub steps_done: i32,
    pub steps_blocked: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, sqlx::FromRow)]
#[sqlx(type_name = "homeward_step_row")]
pub struct StepRow {
    pub plan_id: Uuid,
    pub step_key: String,
    pub position: i32,
    pub kind: String,
    pub title: String,
    pub status: String,
    pub assignee: Option<Uuid>,
    pub candidate_group: Option<String>,
    pub priority: i16,
    pub due_at: Option<DateTime<Utc>>,
    pub follow_up_on: Option<NaiveDate>,
    pub document_status: Option<String>,
    pub status_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "homeward_step_ref")]
pub struct StepRef {
    pub plan_id: Uuid,
    pub step_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "homeward_timer_row")]
pub struct TimerRow {
    pub timer_id: Uuid,
    pub plan_id: Uuid,
    pub step_key: String,
    pub kind: String,
    pub fire_at: DateTime<Utc>,
    pub recipient_party: Uuid,
    pub recipient_role: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, sqlx::FromRow)]
#[sqlx(type_name = "homeward_party_row")]
pub struct PartyRow {
    pub party_id: Uuid,
    pub version: i64,
    pub display_name: String,
    pub email: String,
    pub role: String,
    pub organisation: Uuid,
    pub country: String,
    pub language: String,
    pub time_zone: String,
    pub supervisor: Option<Uuid>,
    /// False while deactivated: no tokens, reminders, links or new duties.
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, sqlx::FromRow)]
#[sqlx(type_name = "homeward_organisation_row")]
pub struct OrganisationRow {
    pub organisation_id: Uuid,
    pub version: i64,
    pub name: String,
    pub kind: String,
    pub country: String,
    /// The organisations it works with, in id order.
    pub works_with: Vec<Uuid>,
    /// Months survivors' data is kept after their last plan closes.
    pub retention_months: i32,
}

/// A survivor as her organisation's retention rule sees her: no personal data, only whose she
/// is and whether she may be erased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, sqlx::FromRow)]
#[sqlx(type_name = "homeward_person_row")]
pub struct PersonRow {
    pub person_id: Uuid,
    pub version: i64,
    /// The organisation that registered her.
    pub organisation: Uuid,
    pub erased_at: Option<DateTime<Utc>>,
    /// Since when a legal hold keeps her data (none: the retention rule applies).
    pub held_since: Option<DateTime<Utc>>,
}

/// When a party's next digest is due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "homeward_digest_row")]
pub struct DigestRow {
    pub party_id: Uuid,
    pub due_at: DateTime<Utc>,
}

/// Rows to write and delete: the parts `homeward_project_rows` takes, each an array of the
/// composite type its row names (see the schema baseline), sent in the binary format.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProjectionChange {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plans: Vec<PlanRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps_delete: Vec<StepRef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps_upsert: Vec<StepRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timers_cancel: Vec<Uuid>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timers_arm: Vec<TimerRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parties: Vec<PartyRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub digests_delete: Vec<Uuid>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub digests_upsert: Vec<DigestRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub organisations: Vec<OrganisationRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub persons: Vec<PersonRow>,
}

impl ProjectionChange {
    pub fn is_empty(&self) -> bool {
        self.plans.is_empty()
            && self.steps_delete.is_empty()
            && self.steps_upsert.is_empty()
            && self.timers_cancel.is_empty()
            && self.timers_arm.is_empty()
            && self.parties.is_empty()
            && self.digests_delete.is_empty()
            && self.digests_upsert.is_empty()
            && self.organisations.is_empty()
            && self.persons.is_empty()
    }

    /// The rows that change when a plan goes from `before` to `after` (`None`: newly opened or
    /// rebuilt, so every row is written).
    pub fn for_plan(before: Option<&Plan>, after: &Plan) -> Self {
        let (steps_delete, steps_upsert) = step_changes(before, after);
        let mut timers_cancel = Vec::new();
        let mut timers_arm = Vec::new();
        for effect in plan_timer_effects(before, after) {
            match effect {
                Effect::CancelTimer(id) => timers_cancel.push(id),
                Effect::ArmTimer(t) => timers_arm.push(timer_row(&t)),
            }
        }
        Self {
            plans: vec![plan_row(after)],
            steps_delete,
            steps_upsert,
            timers_cancel,
            timers_arm,
            ..Self::default()
        }
    }

    /// The party's row, and its digest row (or its removal when it has no schedule).
    pub fn for_party(after: &Party) -> Self {
        let (digests_upsert, digests_delete) = match digest_row(after) {
            Some(row) => (vec![row], Vec::new()),
            None => (Vec::new(), vec![after.id.0]),
        };
        Self {
            parties: vec![party_row(after)],
            digests_upsert,
            digests_delete,
            ..Self::default()
        }
    }

    /// The organisation's row.
    pub fn for_organisation(after: &Organisation) -> Self {
        Self {
            organisations: vec![organisation_row(after)],
            ..Self::default()
        }
    }

    /// The person's row.
    pub fn for_person(after: &Person) -> Self {
        Self {
            persons: vec![person_row(after)],
            ..Self::default()
        }
    }

    /// Adds another change's rows (used to batch a rebuild).
    pub fn extend(&mut self, other: ProjectionChange) {
        self.plans.extend(other.plans);
        self.steps_delete.extend(other.steps_delete);
        self.steps_upsert.extend(other.steps_upsert);
        self.timers_cancel.extend(other.timers_cancel);
        self.timers_arm.extend(other.timers_arm);
        self.parties.extend(other.parties);
        self.digests_delete.extend(other.digests_delete);
        self.digests_upsert.extend(other.digests_upsert);
        self.organisations.extend(other.organisations);
        self.persons.extend(other.persons);
    }

    /// Number of rows this change writes or deletes.
    pub fn len(&self) -> usize {
        self.plans.len()
            + self.steps_delete.len()
            + self.steps_upsert.len()
            + self.timers_cancel.len()
            + self.timers_arm.len()
            + self.parties.len()
            + self.digests_delete.len()
            + self.digests_upsert.len()
            + self.organisations.len()
            + self.persons.len()
    }
}

pub fn plan_row(plan: &Plan) -> PlanRow {
    let count = |f: fn(&Step) -> bool| plan.steps.iter().filter(|s| f(s)).count() as i32;
    PlanRow {
        plan_id: plan.id.0,
        version: plan.version as i64,
        person_id: plan.person.0,
        template_name: plan.template.name.clone(),
        template_version: plan.template.version as i32,
        case_worker: plan.case_worker.0,
        organisation: plan.organisation.0,
        origin_country: plan.origin_country.as_str().to_owned(),
        status: plan.status.as_str().to_owned(),
        suspended: plan.suspended,
        opened_at: stored(plan.opened_at),
        departed_at: plan.departed_at.map(stored),
        arrived_at: plan.arrived_at.map(stored),
        closed_at: plan.closed_at.map(stored),
        close_reason: plan.close_reason.map(|r| enum_str(&r)),
        next_due_at: plan.next_due_at().map(stored),
        steps_total: plan.steps.len() as i32,
        steps_open: count(|s| s.status.is_open()),
        steps_done: count(|s| s.status == StepStatus::Done),
        steps_blocked: count(|s| matches!(s.status, StepStatus::Blocked { .. })),
    }
}

/// The step rows to delete and to write when a plan goes from `before` to `after`. A step's row
/// depends only on the plan, the step and its position, so when the plan keeps its steps in the
/// same order (every command but adding and removing steps) only the steps that changed are
/// compared.
fn step_changes(before: Option<&Plan>, after: &Plan) -> (Vec<StepRef>, Vec<StepRow>) {
    if let Some(before) = before.filter(|b| b.id == after.id && b.has_same_steps_as(after)) {
        let upsert = before
            .steps
            .iter()
            .zip(&after.steps)
            .enumerate()
            .filter(|(_, (was, is))| was != is)
            .map(|(i, (was, is))| (step_row(before, i, was), step_row(after, i, is)))
            .filter(|(old, new)| old != new)
            .map(|(_, new)| new)
            .collect();
        return (Vec::new(), upsert);
    }
    let old_steps: Vec<StepRow> = before.map(step_rows).unwrap_or_default();
    let new_steps = step_rows(after);
    let delete = old_steps
        .iter()
        .filter(|o| !new_steps.iter().any(|n| n.step_key == o.step_key))
        .map(|o| StepRef {
            plan_id: o.plan_id,
            step_key: o.step_key.clone(),
        })
        .collect();
    let upsert = new_steps
        .into_iter()
        .filter(|n| !old_steps.contains(n))
        .collect();
    (delete, upsert)
}

pub fn step_rows(plan: &Plan) -> Vec<StepRow> {
    plan.steps
        .iter()
        .enumerate()
        .map(|(i, s)| step_row(plan, i, s))
        .collect()
}

/// The row of the step at `position` in `plan`.
fn step_row(plan: &Plan, position: usize, s: &Step) -> StepRow {
    StepRow {
        plan_id: plan.id.0,
        step_key: s.key.to_string(),
        position: position as i32,
        kind: s.kind.as_str().to_owned(),
        title: s.title.stored().to_owned(),
        status: s.status.as_str().to_owned(),
        assignee: s.assignee.map(|p| p.0),
        candidate_group: s.candidate_group.clone(),
        priority: s.priority.rank(),
        due_at: s.due_at.map(stored),
        follow_up_on: s.follow_up_on,
        document_status: s.document_status.map(|d| enum_str(&d)),
        status_reason: match &s.status {
            StepStatus::Blocked { reason, .. } | StepStatus::Cancelled { reason } => {
                Some(reason.stored().to_owned())
            }
            _ => None,
        },
    }
}

pub fn timer_row(t: &TimerSpec) -> TimerRow {
    TimerRow {
        timer_id: t.id,
        plan_id: t.plan_id.0,
        step_key: t.step.to_string(),
        kind: t.kind.as_str().to_owned(),
        fire_at: stored(t.fire_at),
        recipient_party: t.recipient.party().0,
        recipient_role: t.recipient.role().to_owned(),
    }
}

pub fn party_row(p: &Party) -> PartyRow {
    PartyRow {
        party_id: p.id.0,
        version: p.version as i64,
        display_name: p.profile.display_name.clone(),
        email: p.profile.email.clone(),
        role: p.profile.role.as_str().to_owned(),
        organisation: p.profile.organisation.0,
        country: p.profile.country.as_str().to_owned(),
        language: p.profile.language.as_str().to_owned(),
        time_zone: p.profile.time_zone.clone(),
        supervisor: p.profile.supervisor.map(|s| s.0),
        active: p.is_active(),
    }
}

pub fn organisation_row(o: &Organisation) -> OrganisationRow {
    OrganisationRow {
        organisation_id: o.id.0,
        version: o.version as i64,
        name: o.name.clone(),
        kind: o.kind.as_str().to_owned(),
        country: o.country.as_str().to_owned(),
        works_with: o.works_with.iter().map(|id| id.0).collect(),
        retention_months: i32::from(o.retention_months),
    }
}

pub fn person_row(p: &Person) -> PersonRow {
    PersonRow {
        person_id: p.id.0,
        version: p.version as i64,
        organisation: p.organisation.0,
        erased_at: p.erased_at.map(stored),
        held_since: p.legal_hold.as_ref().map(|h| stored(h.placed_at)),
    }
}

pub fn digest_row(p: &Party) -> Option<DigestRow> {
    p.next_digest_at().map(|due_at| DigestRow {
        party_id: p.id.0,
        due_at: stored(due_at),
    })
}

/// A time as PostgreSQL stores it, to the microsecond. Rows carry whole microseconds because
/// the paths to the database would treat the rest differently: the binary format truncates it
/// and text input (JSON, COPY) rounds it, and a rebuild must write what the commands wrote.
fn stored(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// The serde name of a unit enum value, e.g. `lost_contact`.
fn enum_str<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => unreachable!("unit enums serialise as strings, got {other:?}"),
    }
}

/// An aggregate whose state feeds read models. A person's row holds none of her data, which
/// stays in her stream, sealed under her key.
pub trait Projected: homeward_workflows::Aggregate {
    fn projection(before: Option<&Self>, after: &Self) -> ProjectionChange;
}

impl Projected for Plan {
    fn projection(before: Option<&Self>, after: &Self) -> ProjectionChange {
        ProjectionChange::for_plan(before, after)
    }
}

impl Projected for Party {
    fn projection(_before: Option<&Self>, after: &Self) -> ProjectionChange {
        ProjectionChange::for_party(after)
    }
}

impl Projected for Organisation {
    fn projection(_before: Option<&Self>, after: &Self) -> ProjectionChange {
        ProjectionChange::for_organisation(after)
    }
}

impl Projected for Person {
    fn projection(_before: Option<&Self>, after: &Self) -> ProjectionChange {
        ProjectionChange::for_person(after)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{Duration, TimeZone};
    use homeward_workflows::plan::{
        ConsentPurpose, DueRule, Milestone, NewStep, PlanCommand, Priority, StepKind,
    };
    use homeward_workflows::text::CountryCode;
    use homeward_workflows::timers::planned_timers;
    use homeward_workflows::{template, Aggregate, Context, PartyId, PersonId, PlanId, StepKey};

    use super::*;

    fn key(k: &str) -> StepKey {
        StepKey::parse(k).unwrap()
    }

    /// The tables as a store keeps them: each command's change applied to the rows before it.
    #[derive(Default)]
    struct Tables {
        steps: BTreeMap<String, StepRow>,
        timers: BTreeMap<Uuid, TimerRow>,
    }

    impl Tables {
        fn apply(&mut self, change: ProjectionChange) {
            for gone in change.steps_delete {
                self.steps.remove(&gone.step_key);
            }
            for row in change.steps_upsert {
                self.steps.insert(row.step_key.clone(), row);
            }
            for id in change.timers_cancel {
                self.timers.remove(&id);
            }
            for row in change.timers_arm {
                self.timers.entry(row.timer_id).or_insert(row);
            }
        }
    }

    #[test]
    fn a_plan_kept_by_its_changes_matches_its_rows_written_whole_after_every_command() {
        let worker = PartyId::new();
        let liaison = PartyId::new();
        let partner = PartyId::new();
        let mut now = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
        let id = PlanId::new();
        let open = PlanCommand::OpenPlan {
            plan_id: id,
            person: PersonId::new(),
            template: Box::new(template::find("standard-avr", 1).unwrap()),
            case_worker: worker,
            organisation: homeward_workflows::OrganisationId(Uuid::from_u128(9)),
            origin_country: CountryCode::parse("NG").unwrap(),
            follow_up_offsets_days: None,
        };
        let assign = |step: &str, to: PartyId| PlanCommand::AssignStep {
            step: key(step),
            assignee: Some(to),
            candidate_group: None,
        };
        let commands = vec![
            PlanCommand::RecordConsent {
                purpose: ConsentPurpose::Return,
            },
            assign("passport", liaison),
            PlanCommand::PrioritiseStep {
                step: key("medical_check"),
                priority: Priority::Urgent,
            },
            PlanCommand::RescheduleStep {
                step: key("passport"),
                due: Some(DueRule::After {
                    milestone: Milestone::PlanOpened,
                    days: 30,
                }),
                follow_up_on: None,
            },
            assign("origin_contact", partner),
            PlanCommand::RecordConsent {
                purpose: ConsentPurpose::DataSharing { partner },
            },
            PlanCommand::StartStep {
                step: key("origin_contact"),
                override_reason: None,
            },
            // Completing it makes the steps that wait on it ready: several rows change.
            PlanCommand::CompleteStep {
                step: key("origin_contact"),
            },
            assign("family_mediation", partner),
            // Withdrawn data sharing stops every reminder to the partner at once.
            PlanCommand::WithdrawConsent {
                purpose: ConsentPurpose::DataSharing { partner },
            },
            PlanCommand::AddStep(Box::new(NewStep {
                key: key("housing"),
                kind: StepKind::ReintegrationSupport,
                title: "Find housing".into(),
                assignee: Some(worker),
                candidate_group: None,
                priority: Priority::Normal,
                due: Some(DueRule::After {
                    milestone: Milestone::PlanOpened,
                    days: 20,
                }),
                follow_up_on: None,
                depends_on: vec![key("passport")],
                reminder_policy: None,
            })),
            PlanCommand::RemoveStep {
                step: key("legal_clearance"),
                reason: "Nothing pending".into(),
            },
            // Withdrawing consent to return suspends the plan: no timers at all.
            PlanCommand::WithdrawConsent {
                purpose: ConsentPurpose::Return,
            },
            PlanCommand::RecordConsent {
                purpose: ConsentPurpose::Return,
            },
        ];

        let ctx = |now| Context { now, actor: worker };
        let events = Plan::decide(None, &open, &ctx(now)).unwrap();
        let mut plan = Plan::fold(&events).unwrap();
        let mut tables = Tables::default();
        tables.apply(ProjectionChange::for_plan(None, &plan));
        for command in commands {
            now += Duration::hours(5);
            let events = Plan::decide(Some(&plan), &command, &ctx(now))
                .unwrap_or_else(|e| panic!("{command:?} refused: {e}"));
            let after = events
                .iter()
                .try_fold(plan.clone(), |s, e| Plan::apply(Some(s), e))
                .unwrap();
            tables.apply(ProjectionChange::for_plan(Some(&plan), &after));
            plan = after;

            let whole: BTreeMap<String, StepRow> = step_rows(&plan)
                .into_iter()
                .map(|r| (r.step_key.clone(), r))
                .collect();
            assert_eq!(tables.steps, whole, "step rows after {command:?}");
            let timers: BTreeMap<Uuid, TimerRow> = planned_timers(&plan)
                .iter()
                .map(|t| (t.id, timer_row(t)))
                .collect();
            assert_eq!(tables.timers, timers, "timers after {command:?}");
        }
        assert!(plan.suspended || !tables.timers.is_empty());
    }
}
