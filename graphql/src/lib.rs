//! The Homeward GraphQL schema, split by area and merged: plans (queries, commands, history),
//! the task inbox, parties and tokens, and subscriptions. No HTTP here: the server crate mounts
//! the schema on axum and puts the authenticated [`Viewer`] into each request.
//!
//! Every resolver asks the engine's one authorisation function (`homeward_engine::authz`) before
//! it reads or changes anything, and every failure goes through [`error`], which gives it an
//! `extensions.code`.
#![forbid(unsafe_code)]

pub mod error;
mod events;
mod idempotency;
mod inputs;
mod loaders;
mod parties;
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
/// Complexity budget of one query (each field costs 1, lists multiply by their page size).
pub const MAX_COMPLEXITY: usize = 20_000;
/// Longest list any input may carry (goals, dependencies, concerns, ...).
pub const MAX_INPUT_LIST: usize = 100;

/// What the resolvers work with: the command handler, the read models and the clock.
#[derive(Clone)]
pub struct Services {
    pub handler: CommandHandler<dyn EventStore>,
    pub reads: Arc<dyn ReadModels>,
    pub clock: Arc<dyn Clock>,
    pub events: EventHub,
    pub idempotency: Idempotency,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").finish_non_exhaustive()
    }
}

#[derive(MergedObject, Default, Debug)]
pub struct Query(plans::PlanQuery, tasks::TaskQuery, parties::PartyQuery);

#[derive(MergedObject, Default, Debug)]
pub struct Mutation(
    plans::PlanMutation,
    plans::StepMutation,
    parties::PartyMutation,
);

pub type Subscription = subscriptions::Subscription;

pub type HomewardSchema = Schema<Query, Mutation, Subscription>;

/// The schema with its limits and the error-code extension.
pub fn schema(services: Services) -> HomewardSchema {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .data(services)
    .limit_depth(MAX_DEPTH)
    .limit_complexity(MAX_COMPLEXITY)
    .limit_recursive_depth(32)
    .limit_directives(8)
    .extension(ErrorCodes)
    .finish()
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
