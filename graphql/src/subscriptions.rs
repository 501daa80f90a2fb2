//! Subscriptions: a plan's events as they happen, and changes to the viewer's own tasks.

use std::sync::Arc;

use async_graphql::{Context, Subscription as GqlSubscription, ID};
use futures::Stream;
use homeward_engine::authz::{self, Action, Viewer};
use homeward_store::projection::step_rows;
use homeward_store::RecordedEvent;
use homeward_workflows::plan::{Plan, PlanEvent};
use tokio::sync::broadcast;

use crate::inputs::uuid;
use crate::loaders::PlanAt;
use crate::types::{PlanHistoryEntry, Task};
use crate::{loaders, services, viewer, ApiError, ApiResult, Code, Services};

#[derive(Default, Debug)]
pub struct Subscription;

/// The events of the hub as a stream; ends with an error if the subscriber fell behind.
fn events(
    rx: broadcast::Receiver<Arc<RecordedEvent>>,
) -> impl Stream<Item = ApiResult<Arc<RecordedEvent>>> {
    futures::stream::unfold(Some(rx), |rx| async move {
        let mut rx = rx?;
        match rx.recv().await {
            Ok(e) => Some((Ok(e), Some(rx))),
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

/// The viewer's tasks an event changed: the step it is about, or all of theirs in the plan
/// when it is about the plan as a whole (arrival moves every follow-up date).
async fn touched_tasks(
    services: &Services,
    viewer: &Viewer,
    event: &RecordedEvent,
) -> ApiResult<Vec<Task>> {
    if !event.stream_id.starts_with("plan-") {
        return Ok(Vec::new());
    }
    let decoded: PlanEvent = event.decode()?;
    let plan = services
        .handler
        .load_latest::<Plan>(&event.stream_id)
        .await?;
    let Some(plan) = plan.state else {
        return Ok(Vec::new());
    };
    let rows = step_rows(&plan);
    Ok(plan
        .steps
        .iter()
        .zip(rows)
        .filter(|(step, _)| {
            step.assignee == Some(viewer.party)
                && decoded.step().is_none_or(|key| *key == step.key)
                && authz::authorize(viewer, Action::ReadStep(&plan, step)).is_ok()
        })
        .map(|(_, row)| Task::new(row))
        .collect())
}

#[GqlSubscription]
impl Subscription {
    /// The events of one plan as they are recorded (case file).
    async fn plan_events(
        &self,
        ctx: &Context<'_>,
        plan_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = ApiResult<PlanHistoryEntry>>> {
        let viewer = viewer(ctx)?;
        let id = uuid("planId", &plan_id)?;
        // Subscribe before checking, so that nothing recorded in between is missed.
        let rx = services(ctx).events.subscribe();
        let plan = loaders(ctx)
            .plan(PlanAt::latest(id))
            .await?
            .ok_or_else(|| ApiError::not_found("plan", id))?;
        // Through ApiError, so that the refusal keeps its code.
        authz::authorize(viewer, Action::ReadCaseFile(&plan)).map_err(ApiError::from)?;
        let stream_id = plan.id.stream_id();
        let after = plan.version;
        Ok(futures::StreamExt::filter_map(events(rx), move |e| {
            let keep = match &e {
                Ok(e) => e.stream_id == stream_id && e.stream_version > after,
                Err(_) => true,
            };
            async move { keep.then(|| e.and_then(|e| PlanHistoryEntry::from_recorded(&e))) }
        }))
    }

    /// Your tasks as they change: assigned to you, rescheduled, started, completed, ...
    async fn task_updates(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = ApiResult<Task>>> {
        let viewer = viewer(ctx)?.clone();
        authz::task_scope(&viewer, viewer.party).map_err(ApiError::from)?;
        let services = services(ctx).clone();
        let rx = services.events.subscribe();
        let tasks = futures::StreamExt::then(events(rx), move |e| {
            let services = services.clone();
            let viewer = viewer.clone();
            async move {
                match e {
                    Ok(e) => touched_tasks(&services, &viewer, &e).await,
                    Err(e) => Err(e),
                }
            }
        });
        Ok(futures::StreamExt::flat_map(tasks, |r| {
            futures::stream::iter(match r {
                Ok(tasks) => tasks.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(e) => vec![Err(e)],
            })
        }))
    }
}
