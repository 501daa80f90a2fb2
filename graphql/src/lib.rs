//! The Homeward GraphQL schema, split by area and merged: plans (queries, commands, history),
//! the task inbox, parties and tokens, and subscriptions. No HTTP here: the server crate mounts
//! the schema on axum and puts the authenticated [`Viewer`] into each request.
//!
//! Every resolver asks the engine's one authorisation function (`homeward_engine::authz`) before
//! it reads or changes anything, and every failure goes through [`error`], which gives it an
//! `extensions.code`.
#![forbid(unsafe_code)]

pub mod cost;
pub mod error;
mod events;
mod idempotency;
mod inputs;
mod loaders;
mod organisations;
mod parties;
mod personal;
mod persons;
mod plans;
mod subscriptions;
mod tasks;
mod types;

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextRequest};
use async_graphql::{Context, MergedObject, Response, Schema};
use futures::stream::BoxStream;
use futures::StreamExt;
use homeward_engine::authz::Viewer;
use homeward_engine::{Clock, CommandHandler};
use homeward_store::reads::ReadModels;
use homeward_store::EventStore;

pub use error::{ApiError, ApiResult, Code};
pub use events::EventHub;
pub use idempotency::{Idempotency, DEFAULT_RETENTION_HOURS as DEFAULT_IDEMPOTENCY_HOURS};
pub use loaders::Loaders;

/// At most this many items per page of any list.
pub const MAX_PAGE_SIZE: usize = 100;
/// Page size when `first` is not given.
pub const DEFAULT_PAGE_SIZE: usize = 20;
/// Deepest selection a query may have.
pub const MAX_DEPTH: usize = 12;
/// Deepest selection of a query that asks only for the schema (`__schema`, `__type`): the
/// introspection query of GraphiQL, Apollo, gql and graphql-codegen nests `ofType` nine deep
/// (depth 14), and a little more leaves room for their next versions.
pub const MAX_INTROSPECTION_DEPTH: usize = 20;
/// Complexity budget of one query (each field costs 1, lists multiply by their page size).
pub const MAX_COMPLEXITY: usize = 20_000;
/// Longest list any input may carry (goals, dependencies, concerns, ...).
pub const MAX_INPUT_LIST: usize = 100;

/// What the resolvers work with: the command handler, the read models and the clock.
#[derive(Clone)]
pub struct Services {
    pub handler: CommandHandler<dyn EventStore>,
    /// Opens survivors' data for the viewers entitled to it (the handler seals with it).
    pub vault: Arc<homeward_engine::vault::Vault>,
    /// Writes the access audit (see `homeward_engine::audit`).
    pub audit: homeward_engine::audit::AuditWriter,
    /// Reads the access audit.
    pub access_log: Arc<dyn homeward_store::access_log::AccessLog>,
    pub reads: Arc<dyn ReadModels>,
    pub clock: Arc<dyn Clock>,
    pub events: EventHub,
    pub idempotency: Idempotency,
    /// The programme's IANA time zone, for a party registered without one.
    pub default_time_zone: String,
    /// The longest a token may live, in days (`HOMEWARD_TOKEN_MAX_DAYS`).
    pub token_max_days: i64,
    /// Invitation emails and account notices.
    pub invitations: homeward_engine::invitations::Invitations,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").finish_non_exhaustive()
    }
}

#[derive(MergedObject, Default, Debug)]
pub struct Query(
    plans::PlanQuery,
    tasks::TaskQuery,
    parties::PartyQuery,
    organisations::OrganisationQuery,
    persons::PersonQuery,
);

#[derive(MergedObject, Default, Debug)]
pub struct Mutation(
    plans::PlanMutation,
    plans::StepMutation,
    parties::PartyMutation,
    organisations::OrganisationMutation,
    persons::PersonMutation,
);

pub type Subscription = subscriptions::Subscription;

pub type HomewardSchema = Schema<Query, Mutation, Subscription>;

/// The schema with its limits and the error-code extension.
pub fn schema(services: Services) -> HomewardSchema {
    with_limits(services, MAX_DEPTH)
}

/// The same schema for queries that ask only for the schema itself (see [`is_introspection`]):
/// its depth limit fits the standard introspection query; the other limits are the same.
pub fn introspection_schema(services: Services) -> HomewardSchema {
    with_limits(services, MAX_INTROSPECTION_DEPTH)
}

fn with_limits(services: Services, depth: usize) -> HomewardSchema {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .data(services)
    .limit_depth(depth)
    .limit_complexity(MAX_COMPLEXITY)
    .limit_recursive_depth(32)
    .limit_directives(8)
    .extension(cost::FieldBound)
    .extension(ErrorCodes)
    .extension(OperationMetrics::default())
    .finish()
}

/// Whether the operation to run selects only introspection fields (`__schema`, `__type`,
/// `__typename`) at its root: a client reading the schema, which may go deeper than data
/// queries may. A query that does not parse is not (the normal schema reports the error).
pub fn is_introspection(query: &str, operation_name: Option<&str>) -> bool {
    use async_graphql::parser::types::{DocumentOperations, Selection, SelectionSet};
    if !query.contains("__schema") && !query.contains("__type") {
        return false;
    }
    let Ok(document) = async_graphql::parser::parse_query(query) else {
        return false;
    };
    let operation = match (&document.operations, operation_name) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => match ops.get(name) {
            Some(op) => op,
            None => return false,
        },
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => match ops.values().next() {
            Some(op) => op,
            None => return false,
        },
        (DocumentOperations::Multiple(_), None) => return false,
    };
    fn only_meta(
        set: &SelectionSet,
        fragments: &std::collections::HashMap<
            async_graphql::Name,
            async_graphql::Positioned<async_graphql::parser::types::FragmentDefinition>,
        >,
        depth: usize,
    ) -> bool {
        depth < 8
            && set.items.iter().all(|item| match &item.node {
                Selection::Field(field) => field.node.name.node.starts_with("__"),
                Selection::InlineFragment(inline) => {
                    only_meta(&inline.node.selection_set.node, fragments, depth + 1)
                }
                Selection::FragmentSpread(spread) => fragments
                    .get(&spread.node.fragment_name.node)
                    .is_some_and(|f| only_meta(&f.node.selection_set.node, fragments, depth + 1)),
            })
    }
    operation.node.ty == async_graphql::parser::types::OperationType::Query
        && only_meta(&operation.node.selection_set.node, &document.fragments, 0)
}

/// The schema's SDL, as committed in `graphql/schema.graphql`.
pub fn sdl() -> String {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .finish()
    .sdl()
}

/// The cursor of `planHistory` that pages from the event after stream version `version`: what
/// a client that knows the version it saw passes as `after` to read what happened since (none
/// for version 0: from the start). A cursor names an entry, and paging goes on after it: the
/// entry of version `version` is the one at offset `version - 1`.
pub fn history_after_version(version: u64) -> Option<String> {
    let entry = usize::try_from(version)
        .unwrap_or(usize::MAX)
        .checked_sub(1)?;
    Some(inputs::encode_cursor(entry))
}

#[cfg(test)]
mod history_cursor_tests {
    use super::history_after_version;

    #[test]
    fn paging_after_a_version_starts_with_the_next_event() {
        assert_eq!(history_after_version(0), None);
        for version in [1, 16, 17, 500] {
            let cursor = history_after_version(version);
            let page = crate::inputs::page(Some(10), cursor.as_deref()).unwrap();
            // Stream versions start at 1: offset `version` holds the event of `version + 1`.
            assert_eq!(page.offset, version as i64, "after version {version}");
        }
    }
}

/// The per-request data the server adds: who is asking, and the request's batch loaders.
pub fn request_data(services: &Services, viewer: Viewer) -> (Viewer, Loaders) {
    let loaders = Loaders::new(services);
    (viewer, loaders)
}

pub(crate) fn services<'a>(ctx: &Context<'a>) -> &'a Services {
    ctx.data_unchecked::<Services>()
}

/// The viewer of this request; every resolver starts here.
pub(crate) fn viewer<'a>(ctx: &Context<'a>) -> ApiResult<&'a Viewer> {
    ctx.data_opt::<Viewer>()
        .ok_or_else(ApiError::unauthenticated)
}

pub(crate) fn loaders<'a>(ctx: &Context<'a>) -> &'a Loaders {
    ctx.data_unchecked::<Loaders>()
}

/// Counts and times each root field a request resolves (`completeStep`, `tasks`, ...): a
/// label per field of the schema, never a name the client chose. Also counts the queries
/// validated and every field resolved, so what a refused query did not cost can be seen.
#[derive(Default)]
struct OperationMetrics {
    /// Fields this request resolved, at any depth (one instance per request).
    fields: std::sync::atomic::AtomicU64,
}

impl ExtensionFactory for OperationMetrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(OperationMetrics::default())
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for OperationMetrics {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let response = next.run(ctx).await;
        let fields = self.fields.load(std::sync::atomic::Ordering::Relaxed);
        metrics::counter!("homeward_graphql_fields_resolved_total").increment(fields);
        response
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: async_graphql::extensions::NextValidation<'_>,
    ) -> Result<async_graphql::ValidationResult, Vec<async_graphql::ServerError>> {
        metrics::counter!("homeward_graphql_validations_total").increment(1);
        next.run(ctx).await
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: async_graphql::extensions::ResolveInfo<'_>,
        next: async_graphql::extensions::NextResolve<'_>,
    ) -> async_graphql::ServerResult<Option<async_graphql::Value>> {
        self.fields
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if info.path_node.parent.is_some() {
            return next.run(ctx, info).await;
        }
        let operation = info.name.to_owned();
        let started = std::time::Instant::now();
        let result = next.run(ctx, info).await;
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::histogram!("homeward_graphql_request_duration_seconds", "operation" => operation.clone())
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("homeward_graphql_requests_total", "operation" => operation, "outcome" => outcome)
            .increment(1);
        result
    }
}

/// Gives every error a code, including those raised before resolvers run.
struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodes)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for ErrorCodes {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        error::ensure_codes(&mut response.errors);
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: async_graphql::extensions::NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(ctx, stream)
            .map(|mut response| {
                error::ensure_codes(&mut response.errors);
                response
            })
            .boxed()
    }
}
