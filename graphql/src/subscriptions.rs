//! Subscriptions: a plan's events as they happen, and changes to the viewer's own tasks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use async_graphql::{Context, Subscription as GqlSubscription, ID};
use futures::Stream;
use homeward_engine::authz::{self, Action, Following, Viewer};
use homeward_store::projection::{step_rows, StepRow};
use homeward_store::{ReadUntil, RecordedEvent};
use homeward_workflows::plan::{Plan, PlanEvent, PlanStatus, StepStatus};
use homeward_workflows::Aggregate;
use tokio::sync::broadcast;

use crate::inputs::uuid;
use crate::loaders::PlanAt;
use crate::types::{PlanHistoryEntry, TaskUpdate};
use crate::{loaders, services, viewer, ApiError, ApiResult, Code, Services};

#[derive(Default, Debug)]
pub struct Subscription;

/// One open subscription, counted in `homeward_subscriptions` while it lives.
struct Open;

impl Open {
    fn new() -> Self {
        metrics::gauge!("homeward_subscriptions").increment(1.0);
        Self
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        metrics::gauge!("homeward_subscriptions").decrement(1.0);
    }
}

/// The events of the hub as a stream; ends with an error if the subscriber fell behind.
fn events(
    rx: broadcast::Receiver<Arc<RecordedEvent>>,
) -> impl Stream<Item = ApiResult<Arc<RecordedEvent>>> {
    futures::stream::unfold(Some((rx, Open::new())), |state| async move {
        let (mut rx, open) = state?;
        match rx.recv().await {
            Ok(e) => Some((Ok(e), Some((rx, open)))),
            Err(broadcast::error::RecvError::Closed) => None,
            Err(broadcast::error::RecvError::Lagged(n)) => Some((
                Err(ApiError::new(
                    Code::Internal,
                    format!("this subscription fell {n} events behind and ended: subscribe again"),
                )),
                None,
            )),
        }
    })
}

/// What a `taskUpdates` subscription follows: the plans that can change the viewer's inbox
/// (an open step of theirs, or an event that gives them one), each folded as of the last event
/// seen, so that each event is shown as it left the plan (not as the plan is when the update
/// is sent). Every other plan's events are passed over without loading anything.
struct Followed {
    viewer: homeward_workflows::PartyId,
    /// Stream ids of the plans with an open step of the viewer's.
    concerned: HashSet<String>,
    plans: HashMap<String, (Option<Arc<Plan>>, u64)>,
}

/// Plans a subscription keeps folded; beyond it, it forgets them all and reloads as needed.
const FOLLOWED_PLANS: usize = 1_000;

impl Followed {
    /// Starts from the plans in which the viewer has open steps now.
    async fn start(services: &Services, viewer: &Viewer) -> ApiResult<Self> {
        let plans = services
            .reads
            .plans_with_open_steps_of(viewer.party.0)
            .await?;
        Ok(Self {
            viewer: viewer.party,
            concerned: plans
                .into_iter()
                .map(|id| homeward_workflows::PlanId(id).stream_id())
                .collect(),
            plans: HashMap::new(),
        })
    }

    /// Whether `event` may change the viewer's inbox: its plan has an open step of theirs, or
    /// it gives them one.
    fn concerns(&self, event: &RecordedEvent, decoded: &PlanEvent) -> bool {
        if self.concerned.contains(&event.stream_id) {
            return true;
        }
        match decoded {
            PlanEvent::StepAdded { step } => step.assignee == Some(self.viewer),
            PlanEvent::StepAssigned { assignee, .. } => *assignee == Some(self.viewer),
            _ => false,
        }
    }

    /// The plan just before `event` and just after it, if the event may change the viewer's
    /// inbox.
    async fn advance(
        &mut self,
        services: &Services,
        event: &RecordedEvent,
    ) -> ApiResult<Option<(Option<Arc<Plan>>, Option<Arc<Plan>>)>> {
        let decoded: PlanEvent = event.decode()?;
        if !self.concerns(event, &decoded) {
            self.plans.remove(&event.stream_id);
            return Ok(None);
        }
        let version = event.stream_version;
        let before = match self.plans.remove(&event.stream_id) {
            Some((state, seen)) if seen + 1 == version => state,
            _ => {
                metrics::counter!("homeward_subscription_plan_loads_total").increment(1);
                services
                    .handler
                    .load::<Plan>(&event.stream_id, ReadUntil::Version(version - 1))
                    .await?
                    .state
            }
        };
        let after = Plan::apply(before.as_deref().cloned(), &decoded).map(Arc::new);
        let still_concerned = after.as_deref().is_some_and(|plan| {
            plan.steps.iter().any(|step| {
                step.assignee == Some(self.viewer)
                    && !matches!(step.status, StepStatus::Done | StepStatus::Cancelled { .. })
            })
        });
        if still_concerned {
            self.concerned.insert(event.stream_id.clone());
            if self.plans.len() >= FOLLOWED_PLANS {
                self.plans.clear();
            }
            self.plans
                .insert(event.stream_id.clone(), (after.clone(), version));
        } else {
            self.concerned.remove(&event.stream_id);
        }
        Ok(Some((before, after)))
    }
}

/// The viewer's inbox in a plan: the open steps assigned to them that they may read, in a plan
/// that is neither suspended nor closed (what `tasks` lists).
fn inbox(viewer: &Viewer, plan: Option<&Plan>) -> BTreeMap<String, StepRow> {
    let Some(plan) = plan else {
        return BTreeMap::new();
    };
    if plan.suspended || plan.status == PlanStatus::Closed {
        return BTreeMap::new();
    }
    plan.steps
        .iter()
        .zip(step_rows(plan))
        .filter(|(step, _)| {
            step.assignee == Some(viewer.party)
                && !matches!(step.status, StepStatus::Done | StepStatus::Cancelled { .. })
                && authz::authorize(viewer, Action::ReadStep(plan, step)).is_ok()
        })
        .map(|(step, row)| (step.key.to_string(), row))
        .collect()
}

/// What one event changed in the viewer's inbox: each task it changed or added, as it left
/// it, and each task it took out.
async fn inbox_changes(
    services: &Services,
    viewer: &Viewer,
    followed: &mut Followed,
    event: &RecordedEvent,
) -> ApiResult<Vec<TaskUpdate>> {
    if !event.stream_id.starts_with("plan-") {
        return Ok(Vec::new());
    }
    let Some((before, after)) = followed.advance(services, event).await? else {
        return Ok(Vec::new());
    };
    let before = inbox(viewer, before.as_deref());
    let mut after = inbox(viewer, after.as_deref());
    let mut updates = Vec::new();
    for (key, row) in &before {
        if !after.contains_key(key) {
            updates.push(TaskUpdate::removed(row, event.stream_version));
        }
    }
    for (key, row) in std::mem::take(&mut after) {
        if before.get(&key) != Some(&row) {
            updates.push(TaskUpdate::changed(row, event.stream_version));
        }
    }
    Ok(updates)
}

fn no_longer_followed() -> ApiError {
    ApiError::new(
        Code::Forbidden,
        "you may no longer follow this plan (a step of yours was reassigned, or the survivor \
         withdrew consent to sharing data with you)",
    )
}

/// Brings `plan` to the state `event` left it in (folding it when it is the next event, loading
/// it as of the event otherwise) and decides what the event is to the viewer.
async fn follow(
    services: &Services,
    viewer: &Viewer,
    plan: &mut Arc<Plan>,
    event: &RecordedEvent,
) -> ApiResult<Following> {
    let decoded: PlanEvent = event.decode()?;
    let next = if event.stream_version == plan.version + 1 {
        Plan::apply(Some((**plan).clone()), &decoded).map(Arc::new)
    } else {
        services
            .handler
            .load::<Plan>(&event.stream_id, ReadUntil::Version(event.stream_version))
            .await?
            .state
    };
    let Some(next) = next else {
        return Ok(Following::Ended);
    };
    *plan = next;
    Ok(authz::following(viewer, plan, &decoded))
}

#[GqlSubscription]
impl Subscription {
    /// The events of one plan as they are recorded: all of them for its case team; for a
    /// liaison or partner, those of the steps they may see. Each event is checked on the plan
    /// as it left it: when the viewer may no longer follow the plan (their last step there was
    /// reassigned, or their data-sharing consent withdrawn) the flow ends with `FORBIDDEN`.
    async fn plan_events(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = ApiResult<PlanHistoryEntry>>> {
        let viewer = viewer(ctx)?.clone();
        let id = uuid("planId", &plan_id)?;
        let services = services(ctx).clone();
        // Subscribe before checking, so that nothing recorded in between is missed.
        let rx = services.events.subscribe();
        let plan = loaders(ctx)
            .plan(PlanAt::latest(id))
            .await?
            .ok_or_else(|| ApiError::not_found("plan", id))?;
        // A plan the viewer may not see is one that does not exist; through ApiError, so that
        // the refusal keeps its code.
        if authz::authorize(&viewer, Action::ReadPlan(&plan)).is_err() {
            return Err(ApiError::not_found("plan", id).into());
        }
        if !authz::may_follow(&viewer, &plan) {
            return Err(no_longer_followed().into());
        }
        let source = Box::pin(events(rx));
        Ok(futures::stream::unfold(
            Some((source, plan)),
            move |state| {
                let viewer = viewer.clone();
                let services = services.clone();
                async move {
                    let (mut source, mut plan) = state?;
                    loop {
                        let event = match futures::StreamExt::next(&mut source).await? {
                            Ok(event) => event,
                            Err(e) => return Some((Err(e), None)),
                        };
                        if event.stream_id != plan.id.stream_id()
                            || event.stream_version <= plan.version
                        {
                            continue;
                        }
                        let decided = follow(&services, &viewer, &mut plan, &event).await;
                        match decided {
                            Ok(Following::Hidden) => continue,
                            Ok(Following::Shown) => {
                                let entry = PlanHistoryEntry::from_recorded(&event);
                                return Some((entry, Some((source, plan))));
                            }
                            Ok(Following::Ended) => return Some((Err(no_longer_followed()), None)),
                            Err(e) => return Some((Err(e), None)),
                        }
                    }
                }
            },
        ))
    }

    /// Your inbox as it changes, one update per task an event changed: `CHANGED` with the
    /// task as that event left it (assigned to you, rescheduled, started, ...), `REMOVED` when
    /// it left your inbox (done, cancelled, reassigned to someone else, its plan suspended or
    /// closed, or no longer shared with you).
    async fn task_updates(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = ApiResult<TaskUpdate>>> {
        let viewer = viewer(ctx)?.clone();
        authz::task_scope(&viewer, viewer.party).map_err(ApiError::from)?;
        let services = services(ctx).clone();
        // Subscribe before reading which plans concern the viewer, so that no event in between
        // is missed.
        let rx = services.events.subscribe();
        let followed = Arc::new(tokio::sync::Mutex::new(
            Followed::start(&services, &viewer).await?,
        ));
        let updates = futures::StreamExt::then(events(rx), move |e| {
            let services = services.clone();
            let viewer = viewer.clone();
            let followed = followed.clone();
            async move {
                match e {
                    Ok(e) => {
                        let mut followed = followed.lock().await;
                        inbox_changes(&services, &viewer, &mut followed, &e).await
                    }
                    Err(e) => Err(e),
                }
            }
        });
        Ok(futures::StreamExt::flat_map(updates, |r| {
            futures::stream::iter(match r {
                Ok(updates) => updates.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(e) => vec![Err(e)],
            })
        }))
    }
}
