//! Who may do what: the one authorisation decision every API operation goes through.
//!
//! Default deny. A request is made by a [`Viewer`] (the party behind the token, its role and
//! organisation); every read and every command names an [`Action`] on what it touches, and
//! [`authorize`] answers allowed or [`AccessDenied`]. Lists are narrowed before they are read by
//! [`plan_scope`] and [`task_scope`], which come from the same rules.
//!
//! - social worker: the plans of their organisation (read and change), their own inbox;
//! - supervisor: the same, plus the inbox of anyone working on their organisation's plans;
//! - government liaison: the travel-document and legal steps assigned to them, and of the person
//!   only the name and date of birth those steps need;
//! - partner contact: the steps assigned to them; the person's name, language and phone, and
//!   (holding the origin contact step) the travel dates, only when the survivor consented to
//!   sharing data with them; of the case worker, the name only;
//!
//! and, whoever sees a plan, why it was closed and whether it is suspended only its case team;
//! - admin: parties and tokens, never case content.

use homeward_store::reads::{PlanScope, TaskScope};
use homeward_workflows::party::PartyRole;
use homeward_workflows::plan::{ConsentPurpose, Plan, PlanCommand, PlanEvent, Step, StepKind};
use homeward_workflows::{OrganisationId, PartyId};
use thiserror::Error;

/// The party making a request, as its token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    pub party: PartyId,
    pub role: PartyRole,
    pub organisation: OrganisationId,
}

/// What a viewer wants to do, with what it touches.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    /// See a plan's summary (status, dates, origin country).
    ReadPlan(&'a Plan),
    /// See the case file: goals, consents, every step, the history and past states.
    ReadCaseFile(&'a Plan),
    /// See one step of a plan.
    ReadStep(&'a Plan, &'a Step),
    /// See a field of a plan that not everyone who sees the plan may read.
    ReadPlanField(&'a Plan, PlanField),
    /// See how to reach a party beyond their name: their email and their supervisor.
    ReadPartyContact(PartyId),
    /// See when and how a party hears from Homeward (quiet hours, digest).
    ReadReminderSettings(PartyId),
    /// Open a new plan in an organisation for a person registered by an organisation.
    OpenPlan {
        organisation: OrganisationId,
        person_registered_by: OrganisationId,
    },
    /// Record a survivor (the person stream).
    RegisterPerson,
    /// Carry out a command on an existing plan.
    Command(&'a Plan, &'a PlanCommand),
    /// See the directory of parties (to assign steps).
    ReadParties,
    /// Register or update parties and organisations.
    ManageParties,
    /// See the organisations (to register parties in them, to see who works with whom).
    ReadOrganisations,
    /// Revoke tokens (any party's).
    ManageTokens,
    /// Create a token for a party of this role: one's own, or (admins) another admin's. Nobody
    /// creates a token for someone else's case role: they are invited instead.
    CreateToken { party: PartyId, role: PartyRole },
    /// Set when and how a party hears from Homeward (language, time zone, quiet hours, digest).
    SetReminderSettings(PartyId),
    /// See a party's tokens (when issued, by whom, last used; never the secret).
    ReadTokens(PartyId),
    /// Hand all of a social worker's open plans over to another, in one's organisation.
    HandOverCases,
    /// Send a party of this role in this organisation an invitation (through which they create
    /// their own token). `organisation_has_supervisor`: whether it has an active supervisor.
    InviteParty {
        role: PartyRole,
        organisation: OrganisationId,
        organisation_has_supervisor: bool,
    },
    /// Decide when a survivor's data goes: erase it for good, place or lift a legal hold, see
    /// upcoming erasures and the persons to review. The supervisors of the organisation that
    /// registered them.
    DecideErasure { registered_by: OrganisationId },
    /// Read a survivor's own record, correct her details, add a case note: the case team of the
    /// organisation that registered her.
    ChangePerson { registered_by: OrganisationId },
    /// Read who has read a survivor's data (the access audit): the supervisors of the
    /// organisation that registered her.
    ReadAccessLog { registered_by: OrganisationId },
}

impl Action<'_> {
    fn name(&self) -> &'static str {
        match self {
            Self::ReadPlan(_) => "read this plan",
            Self::ReadCaseFile(_) => "read this plan's case file",
            Self::ReadStep(..) => "read this step",
            Self::ReadPlanField(_, field) => field.action(),
            Self::ReadPartyContact(_) => "see this party's email and supervisor",
            Self::ReadReminderSettings(_) => "see another party's reminder settings",
            Self::OpenPlan { .. } => "open a plan for this organisation",
            Self::RegisterPerson => "register a person",
            Self::Command(..) => "change this plan",
            Self::ReadParties => "list parties",
            Self::ManageParties => "register or update parties",
            Self::ReadOrganisations => "list organisations",
            Self::ManageTokens => "manage tokens",
            Self::CreateToken { .. } => {
                "create a token for another party of a case role (invite them: inviteParty)"
            }
            Self::SetReminderSettings(_) => "change another party's reminder settings",
            Self::ReadTokens(_) => "see another party's tokens",
            Self::HandOverCases => "hand cases over",
            Self::ChangePerson { .. } => "read or change this person's record",
            Self::ReadAccessLog { .. } => {
                "read who has read this person's data (a supervisor of the organisation that registered them)"
            }
            Self::DecideErasure { .. } => {
                "decide on the erasure of this organisation's survivors' data (a supervisor of the organisation that registered them)"
            }
            Self::InviteParty { .. } => {
                "invite this party (a supervisor of their organisation invites its social workers and supervisors)"
            }
        }
    }
}

/// A field of a plan that not everyone who sees the plan may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanField {
    /// When the survivor left and arrived: for the case team, and for the partner who receives
    /// them (the origin contact step) while the survivor consents to sharing data with them.
    TravelDates,
    /// Why the plan was closed (it can be "deceased"): the case team's.
    CloseReason,
    /// Whether consent to return was withdrawn: the case team's.
    Suspension,
}

impl PlanField {
    fn action(self) -> &'static str {
        match self {
            Self::TravelDates => "see when the survivor travels",
            Self::CloseReason => "see why the plan was closed",
            Self::Suspension => "see whether the plan is suspended",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("your role ({role}) may not {action}")]
pub struct AccessDenied {
    pub role: &'static str,
    pub action: &'static str,
}

/// How much of a survivor's personal data a viewer may see on a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PersonAccess {
    /// Name and date of birth: what a travel document or a legal step needs.
    Identity,
    /// Name, preferred language and phone: what the partner receiving the survivor needs.
    Reception,
    /// Everything (the case worker's organisation).
    Full,
}

fn deny(viewer: &Viewer, action: &Action<'_>) -> AccessDenied {
    AccessDenied {
        role: viewer.role.as_str(),
        action: action.name(),
    }
}

fn same_organisation(viewer: &Viewer, plan: &Plan) -> bool {
    viewer.organisation == plan.organisation
}

fn is_case_team(viewer: &Viewer) -> bool {
    matches!(viewer.role, PartyRole::SocialWorker | PartyRole::Supervisor)
}

/// The step kinds a government liaison works on.
fn liaison_kind(kind: StepKind) -> bool {
    matches!(kind, StepKind::TravelDocument | StepKind::Legal)
}

/// Whether a step is the viewer's to see and work on (liaisons and partners).
fn assigned_to(viewer: &Viewer, step: &Step) -> bool {
    if step.assignee != Some(viewer.party) {
        return false;
    }
    match viewer.role {
        PartyRole::GovernmentLiaison => liaison_kind(step.kind),
        PartyRole::PartnerContact => true,
        _ => false,
    }
}

fn any_assigned(viewer: &Viewer, plan: &Plan) -> bool {
    plan.steps.iter().any(|s| assigned_to(viewer, s))
}

/// The partner who receives the survivor (the origin contact step is theirs) while the survivor
/// consents to sharing data with them.
fn receives_the_survivor(viewer: &Viewer, plan: &Plan) -> bool {
    viewer.role == PartyRole::PartnerContact
        && plan
            .steps
            .iter()
            .any(|s| s.kind == StepKind::OriginContact && assigned_to(viewer, s))
        && plan.has_consent(ConsentPurpose::DataSharing {
            partner: viewer.party,
        })
}

/// The single decision: may `viewer` do `action`?
pub fn authorize(viewer: &Viewer, action: Action<'_>) -> Result<(), AccessDenied> {
    let allowed = match action {
        Action::ReadPlan(plan) => {
            (is_case_team(viewer) && same_organisation(viewer, plan)) || any_assigned(viewer, plan)
        }
        Action::ReadCaseFile(plan) => is_case_team(viewer) && same_organisation(viewer, plan),
        Action::ReadStep(plan, step) => {
            (is_case_team(viewer) && same_organisation(viewer, plan)) || assigned_to(viewer, step)
        }
        Action::ReadPlanField(plan, field) => {
            let case_team = is_case_team(viewer) && same_organisation(viewer, plan);
            match field {
                PlanField::TravelDates => case_team || receives_the_survivor(viewer, plan),
                PlanField::CloseReason | PlanField::Suspension => case_team,
            }
        }
        // A partner contact sees a case worker's name, not how to reach them outside the plan
        // or whom they answer to; everyone else who works on plans has the directory anyway.
        Action::ReadPartyContact(party) => {
            party == viewer.party || viewer.role != PartyRole::PartnerContact
        }
        Action::ReadReminderSettings(party) => {
            party == viewer.party || viewer.role == PartyRole::Admin
        }
        // A person registered by one organisation is not another's to plan for: that plan
        // would show them the person's data.
        Action::OpenPlan {
            organisation,
            person_registered_by,
        } => {
            is_case_team(viewer)
                && viewer.organisation == organisation
                && person_registered_by == organisation
        }
        Action::RegisterPerson => is_case_team(viewer),
        Action::Command(plan, command) => may_command(viewer, plan, command),
        Action::ReadParties | Action::ReadOrganisations => viewer.role != PartyRole::PartnerContact,
        Action::ManageParties | Action::ManageTokens => viewer.role == PartyRole::Admin,
        Action::CreateToken { party, role } => {
            party == viewer.party || (viewer.role == PartyRole::Admin && role == PartyRole::Admin)
        }
        // Everyone sets their own; admins anyone's.
        Action::SetReminderSettings(party) => {
            party == viewer.party || viewer.role == PartyRole::Admin
        }
        // Everyone sees their own; admins anyone's.
        Action::ReadTokens(party) => party == viewer.party || viewer.role == PartyRole::Admin,
        Action::HandOverCases => viewer.role == PartyRole::Supervisor,
        Action::ChangePerson { registered_by } => {
            is_case_team(viewer) && viewer.organisation == registered_by
        }
        Action::DecideErasure { registered_by } | Action::ReadAccessLog { registered_by } => {
            viewer.role == PartyRole::Supervisor && viewer.organisation == registered_by
        }
        // Who joins a case team is its supervisors' decision: an admin who could invite a
        // social worker could invite themselves under another name and read every case. An
        // admin invites admins, liaisons and partner contacts (who see only what the case team
        // assigns them), and the first supervisor of an organisation that has none.
        Action::InviteParty {
            role,
            organisation,
            organisation_has_supervisor,
        } => match (viewer.role, role) {
            (PartyRole::Supervisor, PartyRole::SocialWorker | PartyRole::Supervisor) => {
                viewer.organisation == organisation
            }
            (PartyRole::Admin, PartyRole::SocialWorker | PartyRole::Supervisor) => {
                !organisation_has_supervisor
            }
            (
                PartyRole::Admin,
                PartyRole::Admin | PartyRole::GovernmentLiaison | PartyRole::PartnerContact,
            ) => true,
            _ => false,
        },
    };
    if allowed {
        Ok(())
    } else {
        Err(deny(viewer, &action))
    }
}

fn may_command(viewer: &Viewer, plan: &Plan, command: &PlanCommand) -> bool {
    use PlanCommand as C;
    // "I have seen this and taken it on" is said by the assignee alone, whatever the role.
    if let C::AcknowledgeStep { step } = command {
        return plan.step(step).is_some_and(|s| {
            s.assignee == Some(viewer.party)
                && (assigned_to(viewer, s)
                    || (is_case_team(viewer) && same_organisation(viewer, plan)))
        });
    }
    // Handing a case over is a supervisor's decision.
    if let C::ReassignCaseWorker { .. } = command {
        return viewer.role == PartyRole::Supervisor && same_organisation(viewer, plan);
    }
    if is_case_team(viewer) {
        // Reminders are recorded by the scheduler alone.
        return same_organisation(viewer, plan)
            && !matches!(
                command,
                C::RecordReminderSent { .. } | C::RecordReminderFailed { .. }
            );
    }
    let step_of = |key| plan.step(key).is_some_and(|s| assigned_to(viewer, s));
    match (viewer.role, command) {
        (
            PartyRole::GovernmentLiaison | PartyRole::PartnerContact,
            C::StartStep { step, .. }
            | C::BlockStep { step, .. }
            | C::UnblockStep { step }
            | C::CompleteStep { step },
        ) => step_of(step),
        (PartyRole::GovernmentLiaison, C::UpdateDocumentStatus { step, .. }) => step_of(step),
        (PartyRole::PartnerContact, C::RecordFollowUp { step, .. }) => step_of(step),
        // The partner who receives the survivor confirms the arrival.
        (PartyRole::PartnerContact, C::ConfirmArrival { .. }) => plan
            .steps
            .iter()
            .any(|s| s.kind == StepKind::OriginContact && assigned_to(viewer, s)),
        _ => false,
    }
}

/// What a plan's event is to a viewer who follows the plan as it changes (`planEvents`),
/// decided on the plan as the event left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Following {
    /// Theirs to see.
    Shown,
    /// Not theirs (another's step, or the case file): passed over.
    Hidden,
    /// They may no longer follow the plan at all: the flow stops. A plan they no longer see (a
    /// step reassigned away was their last), or a partner whose data-sharing consent was
    /// withdrawn.
    Ended,
}

/// Whether the viewer may follow the plan as it changes.
pub fn may_follow(viewer: &Viewer, plan: &Plan) -> bool {
    let withdrawn = viewer.role == PartyRole::PartnerContact
        && plan
            .consent(ConsentPurpose::DataSharing {
                partner: viewer.party,
            })
            .is_some_and(|c| !c.given);
    authorize(viewer, Action::ReadPlan(plan)).is_ok() && !withdrawn
}

/// What `event` is to the viewer, on `plan` as the event left it: the case team follows every
/// event; a liaison or partner the events of the steps they may see, and nothing of the case
/// file.
pub fn following(viewer: &Viewer, plan: &Plan, event: &PlanEvent) -> Following {
    if !may_follow(viewer, plan) {
        return Following::Ended;
    }
    if authorize(viewer, Action::ReadCaseFile(plan)).is_ok() {
        return Following::Shown;
    }
    let shown = event
        .step()
        .and_then(|key| plan.step(key))
        .is_some_and(|step| authorize(viewer, Action::ReadStep(plan, step)).is_ok());
    if shown {
        Following::Shown
    } else {
        Following::Hidden
    }
}

/// How much of the person behind `plan` the viewer may see; `None` is nothing at all.
pub fn person_access(viewer: &Viewer, plan: &Plan) -> Option<PersonAccess> {
    match viewer.role {
        PartyRole::SocialWorker | PartyRole::Supervisor if same_organisation(viewer, plan) => {
            Some(PersonAccess::Full)
        }
        PartyRole::GovernmentLiaison if any_assigned(viewer, plan) => Some(PersonAccess::Identity),
        PartyRole::PartnerContact
            if any_assigned(viewer, plan)
                && plan.has_consent(ConsentPurpose::DataSharing {
                    partner: viewer.party,
                }) =>
        {
            Some(PersonAccess::Reception)
        }
        _ => None,
    }
}

/// Which plans a plan list may contain for this viewer.
pub fn plan_scope(viewer: &Viewer) -> Result<PlanScope, AccessDenied> {
    match viewer.role {
        PartyRole::SocialWorker | PartyRole::Supervisor => {
            Ok(PlanScope::Organisation(viewer.organisation.0))
        }
        PartyRole::GovernmentLiaison => Ok(PlanScope::AssignedTo {
            party: viewer.party,
            kinds: Some(vec![StepKind::TravelDocument, StepKind::Legal]),
        }),
        PartyRole::PartnerContact => Ok(PlanScope::AssignedTo {
            party: viewer.party,
            kinds: None,
        }),
        PartyRole::Admin => Err(AccessDenied {
            role: viewer.role.as_str(),
            action: "list plans",
        }),
    }
}

/// Whose tasks an inbox may show: one's own always (admins have none); another party's only to
/// a supervisor, and then only on their organisation's plans.
pub fn task_scope(viewer: &Viewer, assignee: PartyId) -> Result<TaskScope, AccessDenied> {
    let denied = || AccessDenied {
        role: viewer.role.as_str(),
        action: "see another party's tasks",
    };
    match viewer.role {
        PartyRole::Admin => Err(AccessDenied {
            role: viewer.role.as_str(),
            action: "see tasks",
        }),
        _ if assignee == viewer.party => Ok(match plan_scope(viewer)? {
            PlanScope::Organisation(org) => TaskScope {
                assignee,
                organisation: Some(org),
                kinds: None,
            },
            PlanScope::AssignedTo { kinds, .. } => TaskScope {
                assignee,
                organisation: None,
                kinds,
            },
        }),
        PartyRole::Supervisor => Ok(TaskScope {
            assignee,
            organisation: Some(viewer.organisation.0),
            kinds: None,
        }),
        _ => Err(denied()),
    }
}
