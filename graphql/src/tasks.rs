//! The inbox: the steps assigned to a party, soonest due first.

use async_graphql::connection::Connection;
use async_graphql::{Context, InputObject, Object, ID};
use chrono::{DateTime, Utc};
use homeward_engine::authz;
use homeward_store::reads::TaskFilter;

use crate::inputs::{self, list, party_id};
use crate::types::{StepKind, StepStatus, Task};
use crate::{services, viewer, ApiResult};

#[derive(InputObject, Debug, Clone, Default)]
pub struct TaskFilterInput {
    /// Whose tasks: you when left out. Supervisors may look at their organisation's people.
    pub assignee: Option<ID>,
    #[graphql(default)]
    pub kinds: Vec<StepKind>,
    /// Statuses to show; the open ones (not done, not cancelled) when left out.
    #[graphql(default)]
    pub statuses: Vec<StepStatus>,
    /// Only overdue tasks (true) or only tasks not overdue (false).
    pub overdue: Option<bool>,
    /// Due at or after this instant ...
    pub due_from: Option<DateTime<Utc>>,
    /// ... and before this one.
    pub due_before: Option<DateTime<Utc>>,
}

#[derive(Default, Debug)]
pub struct TaskQuery;

#[Object]
impl TaskQuery {
    /// Tasks by due date, then follow-up date, then priority.
    #[graphql(complexity = "crate::inputs::page_complexity(first, child_complexity)")]
    async fn tasks(
        &self,
        ctx: &Context<'_>,
        filter: Option<TaskFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, Task>> {
        let viewer = viewer(ctx)?;
        let filter = filter.unwrap_or_default();
        let assignee = match &filter.assignee {
            Some(a) => party_id("assignee", a)?,
            None => viewer.party,
        };
        let scope = authz::task_scope(viewer, assignee)?;
        let task_filter = TaskFilter {
            kinds: list("kinds", filter.kinds)?
                .into_iter()
                .map(|k| {
                    homeward_workflows::plan::StepKind::from(k)
                        .as_str()
                        .to_owned()
                })
                .collect(),
            statuses: list("statuses", filter.statuses)?
                .into_iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            overdue: filter.overdue,
            due_from: filter.due_from,
            due_before: filter.due_before,
        };
        let page = inputs::page(first, after.as_deref())?;
        let s = services(ctx);
        let rows = s
            .reads
            .tasks(&scope, &task_filter, s.clock.now(), inputs::probe(page))
            .await?;
        let (rows, has_next) = inputs::split_page(page, rows);
        Ok(inputs::connection(page, rows, has_next, |row| {
            Some(Task::new(row))
        }))
    }
}
