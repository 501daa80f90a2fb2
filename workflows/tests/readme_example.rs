//! The domain example of the README, kept compiling and true.

use homeward_workflows::plan::{PlanCommand, PlanError, PlanStatus};
use homeward_workflows::text::CountryCode;
use homeward_workflows::StepKey;
use homeward_workflows::{
    plan::Plan, template, Aggregate, Context, OrganisationId, PartyId, PersonId, PlanId,
};

#[test]
fn the_readme_example_holds() -> Result<(), Box<dyn std::error::Error>> {
    let social_worker = PartyId::new();
    let survivor = PersonId::new();
    let safe_passage = OrganisationId::new();
    let ctx = Context {
        now: chrono::Utc::now(),
        actor: social_worker,
    };
    let opened = Plan::decide(
        None,
        &PlanCommand::OpenPlan {
            plan_id: PlanId::new(),
            person: survivor,
            template: Box::new(template::find("standard-avr", 1)?),
            case_worker: social_worker,
            organisation: safe_passage, // an OrganisationId: never a name
            origin_country: CountryCode::parse("NG")?,
            follow_up_offsets_days: None,
        },
        &ctx,
    )?;
    let plan = Plan::fold(&opened).ok_or("the plan opens")?;
    assert_eq!(plan.status, PlanStatus::Draft);
    let refused = Plan::decide(
        Some(&plan),
        &PlanCommand::StartStep {
            step: StepKey::parse("travel")?,
            override_reason: None,
        },
        &ctx,
    );
    assert!(matches!(refused, Err(PlanError::DependenciesNotDone(_))));
    Ok(())
}
