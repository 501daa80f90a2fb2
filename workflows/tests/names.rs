//! Every enum stored by name has one spelling: the name a value is stored under in the read
//! models (`as_str`) is the one it has in the event log (serde), and a party's role reads back.
#![allow(clippy::unwrap_used)]

use homeward_workflows::party::PartyRole;
use homeward_workflows::plan::{PlanStatus, ReminderKind, StepKind};

fn serde_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn the_stored_name_of_each_value_is_its_name_in_the_log() {
    for role in [
        PartyRole::SocialWorker,
        PartyRole::Supervisor,
        PartyRole::GovernmentLiaison,
        PartyRole::PartnerContact,
        PartyRole::Admin,
    ] {
        assert_eq!(role.as_str(), serde_name(&role));
        assert_eq!(PartyRole::parse(role.as_str()), Some(role));
    }
    assert_eq!(PartyRole::parse("Social_Worker"), None);
    assert_eq!(PartyRole::SocialWorker.as_str(), "social_worker");
    for status in [
        PlanStatus::Draft,
        PlanStatus::Active,
        PlanStatus::Travelling,
        PlanStatus::Returned,
        PlanStatus::Monitoring,
        PlanStatus::Closed,
    ] {
        assert_eq!(status.as_str(), serde_name(&status));
    }
    for kind in [
        StepKind::TravelDocument,
        StepKind::Travel,
        StepKind::FamilyMediation,
        StepKind::OriginContact,
        StepKind::FollowUp,
        StepKind::Medical,
        StepKind::Legal,
        StepKind::ReintegrationSupport,
        StepKind::Custom,
    ] {
        assert_eq!(kind.as_str(), serde_name(&kind));
    }
    assert_eq!(StepKind::TravelDocument.as_str(), "travel_document");
    for kind in [
        ReminderKind::BeforeDue,
        ReminderKind::OnDue,
        ReminderKind::Overdue,
        ReminderKind::Escalation,
        ReminderKind::ReintegrationPlanDue,
    ] {
        assert_eq!(kind.as_str(), serde_name(&kind));
    }
    assert_eq!(
        ReminderKind::ReintegrationPlanDue.as_str(),
        "reintegration_plan_due"
    );
}
