//! Who may hold which duty: be a member of an organisation, a plan's case worker, a party's
//! supervisor, or a step's assignee. Decided here once, on ids, for every path that names a
//! party (registering or updating a party, opening a plan, assigning or adding a step, handing
//! a case over).
//!
//! - social workers and supervisors belong to an organisation that runs return programmes;
//!   government liaisons to a government office or a programme; partner contacts to a partner
//!   organisation or a programme; admins anywhere;
//! - a case worker is a social worker of the plan's organisation;
//! - a supervisor is a supervisor of the supervised party's organisation;
//! - a step goes to the case team of the plan's organisation, or to a liaison (travel documents
//!   and legal steps only: the only ones a liaison can see) or a partner contact of that
//!   organisation or of one it works with. Never to an admin.

use homeward_store::projection::{OrganisationRow, PartyRow};
use homeward_workflows::organisation::OrganisationKind;
use homeward_workflows::party::PartyRole;
use homeward_workflows::plan::StepKind;
use thiserror::Error;

/// A duty a party is named for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duty {
    CaseWorker,
    Supervisor,
    Step(StepKind),
}

/// Why a party cannot hold a duty: a message that says whom to name instead.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct Unfit(pub String);

fn role_name(role: &str) -> String {
    role.replace('_', " ")
}

/// Whether a party of `role` may belong to an organisation of `kind`.
pub fn may_belong(role: PartyRole, kind: OrganisationKind) -> Result<(), Unfit> {
    use OrganisationKind as K;
    let fits = match role {
        PartyRole::SocialWorker | PartyRole::Supervisor => kind == K::Programme,
        PartyRole::GovernmentLiaison => matches!(kind, K::Government | K::Programme),
        PartyRole::PartnerContact => matches!(kind, K::Partner | K::Programme),
        PartyRole::Admin => true,
    };
    if fits {
        Ok(())
    } else {
        Err(Unfit(format!(
            "a {} cannot belong to a {} organisation: choose an organisation of the kind their \
             work needs",
            role_name(role.as_str()),
            kind.as_str()
        )))
    }
}

/// Whether `candidate` may hold `duty` for `organisation`: the plan's organisation (case
/// worker, step) or the supervised party's (supervisor).
pub fn fits(candidate: &PartyRow, duty: Duty, organisation: &OrganisationRow) -> Result<(), Unfit> {
    let name = &candidate.display_name;
    let role = PartyRole::parse(&candidate.role);
    let own = candidate.organisation == organisation.organisation_id;
    let partner = own || organisation.works_with.contains(&candidate.organisation);
    let unfit = |why: String| Err(Unfit(format!("{name} {why}")));
    if !candidate.active {
        return unfit("is deactivated: choose someone who works with Homeward now".to_owned());
    }
    match duty {
        Duty::CaseWorker => match role {
            Some(PartyRole::SocialWorker) if own => Ok(()),
            Some(PartyRole::SocialWorker) => unfit(format!(
                "works for another organisation than {}: a plan's case worker is a social \
                 worker of its organisation",
                organisation.name
            )),
            _ => unfit(format!(
                "is a {}, not a social worker: only a social worker can be a plan's case worker",
                role_name(&candidate.role)
            )),
        },
        Duty::Supervisor => match role {
            Some(PartyRole::Supervisor) if own => Ok(()),
            Some(PartyRole::Supervisor) => unfit(format!(
                "supervises in another organisation than {}: name a supervisor of the same \
                 organisation",
                organisation.name
            )),
            _ => unfit(format!(
                "is a {}, not a supervisor",
                role_name(&candidate.role)
            )),
        },
        Duty::Step(kind) => match role {
            Some(PartyRole::SocialWorker | PartyRole::Supervisor) if own => Ok(()),
            Some(PartyRole::GovernmentLiaison)
                if partner && !matches!(kind, StepKind::TravelDocument | StepKind::Legal) =>
            {
                unfit(format!(
                    "is a government liaison, who works on travel documents and legal steps \
                     only, not on a {} step",
                    kind.as_str().replace('_', " ")
                ))
            }
            Some(PartyRole::GovernmentLiaison | PartyRole::PartnerContact) if partner => Ok(()),
            Some(PartyRole::Admin) => unfit(
                "is an admin: admins manage parties and tokens and take no part in plans"
                    .to_owned(),
            ),
            _ => unfit(format!(
                "belongs to an organisation {} does not work with: record the partnership \
                 first (startPartnership), or choose someone else",
                organisation.name
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn organisation(id: u128, works_with: &[u128]) -> OrganisationRow {
        OrganisationRow {
            organisation_id: Uuid::from_u128(id),
            version: 1,
            name: "Safe Passage".to_owned(),
            kind: "programme".to_owned(),
            country: "FR".to_owned(),
            works_with: works_with.iter().map(|&w| Uuid::from_u128(w)).collect(),
            retention_months: 60,
        }
    }

    fn party(role: PartyRole, organisation: u128) -> PartyRow {
        PartyRow {
            party_id: Uuid::new_v4(),
            version: 1,
            display_name: "Ada".to_owned(),
            email: "ada@example.org".to_owned(),
            role: role.as_str().to_owned(),
            organisation: Uuid::from_u128(organisation),
            country: "FR".to_owned(),
            language: "fr".to_owned(),
            time_zone: "Europe/Paris".to_owned(),
            supervisor: None,
            active: true,
        }
    }

    #[test]
    fn a_case_worker_is_a_social_worker_of_the_plans_organisation() {
        let programme = organisation(1, &[2]);
        assert!(fits(
            &party(PartyRole::SocialWorker, 1),
            Duty::CaseWorker,
            &programme
        )
        .is_ok());
        for (role, org) in [
            (PartyRole::SocialWorker, 2),
            (PartyRole::SocialWorker, 3),
            (PartyRole::Supervisor, 1),
            (PartyRole::PartnerContact, 1),
            (PartyRole::Admin, 1),
        ] {
            assert!(
                fits(&party(role, org), Duty::CaseWorker, &programme).is_err(),
                "{role:?} of {org}"
            );
        }
    }

    #[test]
    fn steps_go_to_the_case_team_or_to_people_of_organisations_the_programme_works_with() {
        let programme = organisation(1, &[2]);
        let step = |role, org, kind| fits(&party(role, org), Duty::Step(kind), &programme);
        assert!(step(PartyRole::SocialWorker, 1, StepKind::Medical).is_ok());
        assert!(step(PartyRole::Supervisor, 1, StepKind::ReintegrationSupport).is_ok());
        assert!(step(PartyRole::PartnerContact, 2, StepKind::FollowUp).is_ok());
        assert!(step(PartyRole::PartnerContact, 1, StepKind::OriginContact).is_ok());
        assert!(step(PartyRole::GovernmentLiaison, 2, StepKind::TravelDocument).is_ok());
        assert!(step(PartyRole::GovernmentLiaison, 2, StepKind::Legal).is_ok());
        // Not across organisations, not to an admin, not to a liaison outside their work.
        assert!(step(PartyRole::SocialWorker, 2, StepKind::Medical).is_err());
        assert!(step(PartyRole::PartnerContact, 3, StepKind::FollowUp).is_err());
        assert!(step(PartyRole::GovernmentLiaison, 3, StepKind::Legal).is_err());
        assert!(step(PartyRole::Admin, 1, StepKind::Medical).is_err());
        let medical = step(PartyRole::GovernmentLiaison, 2, StepKind::Medical);
        assert!(
            medical
                .as_ref()
                .is_err_and(|e| e.0.contains("travel documents")),
            "{medical:?}"
        );
    }

    #[test]
    fn a_deactivated_party_holds_no_new_duty() {
        let programme = organisation(1, &[2]);
        let gone = PartyRow {
            active: false,
            ..party(PartyRole::SocialWorker, 1)
        };
        for duty in [Duty::CaseWorker, Duty::Step(StepKind::Medical)] {
            let refused = fits(&gone, duty, &programme);
            assert!(
                refused.as_ref().is_err_and(|e| e.0.contains("deactivated")),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn a_supervisor_supervises_within_their_organisation() {
        let programme = organisation(1, &[2]);
        assert!(fits(
            &party(PartyRole::Supervisor, 1),
            Duty::Supervisor,
            &programme
        )
        .is_ok());
        assert!(fits(
            &party(PartyRole::Supervisor, 2),
            Duty::Supervisor,
            &programme
        )
        .is_err());
        assert!(fits(
            &party(PartyRole::SocialWorker, 1),
            Duty::Supervisor,
            &programme
        )
        .is_err());
    }

    #[test]
    fn case_roles_belong_to_organisations_of_the_kind_their_work_needs() {
        use OrganisationKind as K;
        assert!(may_belong(PartyRole::SocialWorker, K::Programme).is_ok());
        assert!(may_belong(PartyRole::SocialWorker, K::Partner).is_err());
        assert!(may_belong(PartyRole::Supervisor, K::Government).is_err());
        assert!(may_belong(PartyRole::GovernmentLiaison, K::Government).is_ok());
        assert!(may_belong(PartyRole::GovernmentLiaison, K::Partner).is_err());
        assert!(may_belong(PartyRole::PartnerContact, K::Partner).is_ok());
        assert!(may_belong(PartyRole::PartnerContact, K::Government).is_err());
        assert!(may_belong(PartyRole::Admin, K::Partner).is_ok());
    }
}
