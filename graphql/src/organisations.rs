//! Organisations: registered by admins, named by id everywhere, and the partnerships that let a
//! programme give steps to another organisation's people.

use std::sync::Arc;

use async_graphql::connection::Connection;
use async_graphql::{Context, InputObject, Object, ID};
use homeward_engine::authz::{self, Action};
use homeward_store::projection::OrganisationRow;
use homeward_workflows::organisation::{Organisation, OrganisationCommand, OrganisationError};
use homeward_workflows::OrganisationId;

use crate::error::command_error;
use crate::idempotency;
use crate::inputs::{self, uuid};
use crate::types::{OrganisationKind, OrganisationObject};
use crate::{loaders, services, viewer, ApiError, ApiResult};

/// Reads an organisation id argument.
pub fn organisation_id(field: &str, id: &ID) -> ApiResult<OrganisationId> {
    uuid(field, id).map(OrganisationId)
}

/// The organisation with this id, or `NOT_FOUND` naming the argument.
pub async fn existing(ctx: &Context<'_>, id: OrganisationId) -> ApiResult<Arc<OrganisationRow>> {
    loaders(ctx)
        .organisation(id.0)
        .await?
        .ok_or_else(|| ApiError::not_found("organisation", id))
}

#[derive(Default, Debug)]
pub struct OrganisationQuery;

#[Object]
impl OrganisationQuery {
    /// Every organisation, by name (everyone but partner contacts).
    #[graphql(complexity = "crate::inputs::page_complexity(first, child_complexity)")]
    async fn organisations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, OrganisationObject>> {
        authz::authorize(viewer(ctx)?, Action::ReadOrganisations)?;
        let page = inputs::page(first, after.as_deref())?;
        let rows = services(ctx)
            .reads
            .organisations(inputs::probe(page))
            .await?;
        let (rows, has_next) = inputs::split_page(page, rows);
        Ok(inputs::connection(page, rows, has_next, |row| {
            Some(OrganisationObject(Arc::new(row)))
        }))
    }
}

#[derive(InputObject, Debug, Clone)]
pub struct OrganisationInput {
    pub name: String,
    pub kind: OrganisationKind,
    /// ISO 3166 alpha-2 code.
    pub country: String,
}

#[derive(Default, Debug)]
pub struct OrganisationMutation;

/// Runs an organisation command for an admin, idempotent by key.
async fn run(
    ctx: &Context<'_>,
    organisation: Option<OrganisationId>,
    command: impl FnOnce(OrganisationId) -> OrganisationCommand,
    expected_version: Option<u64>,
    idempotency_key: Option<String>,
) -> ApiResult<OrganisationObject> {
    let viewer = viewer(ctx)?;
    authz::authorize(viewer, Action::ManageParties)?;
    let target = organisation.map(|o| o.stream_id());
    let begun = idempotency::begin(ctx, target.as_deref(), idempotency_key.as_deref())?;
    let id = organisation.unwrap_or(OrganisationId(begun.new_id()));
    let command = command(id);
    let mut meta = begun.meta(viewer.party);
    meta.expected_version = expected_version;
    let outcome = services(ctx)
        .handler
        .handle::<Organisation>(&id.stream_id(), &command, meta)
        .await
        .map_err(|e| {
            command_error(e, |e| match e {
                OrganisationError::NotRegistered => ApiError::not_found("organisation", id),
                other => ApiError::validation(other.to_string()),
            })
        });
    let handled = begun.finish(ctx, outcome).await?;
    Ok(OrganisationObject(Arc::new(
        homeward_store::projection::organisation_row(&handled.state),
    )))
}

#[Object]
impl OrganisationMutation {
    /// Registers an organisation (admins): a programme that runs return plans, a government
    /// office, or a partner in a country of origin. Two may share a name; they share nothing
    /// else.
    async fn register_organisation(
        &self,
        ctx: &Context<'_>,
        input: OrganisationInput,
        idempotency_key: Option<String>,
    ) -> ApiResult<OrganisationObject> {
        let command = |organisation_id| OrganisationCommand::Register {
            organisation_id,
            name: input.name,
            kind: input.kind.into(),
            country: input.country,
        };
        run(ctx, None, command, None, idempotency_key).await
    }

    /// Renames an organisation (admins). Everything refers to it by id, so nothing else moves.
    async fn rename_organisation(
        &self,
        ctx: &Context<'_>,
        id: ID,
        name: String,
        expected_version: Option<u64>,
        idempotency_key: Option<String>,
    ) -> ApiResult<OrganisationObject> {
        let id = organisation_id("id", &id)?;
        let command = OrganisationCommand::Rename { name };
        run(
            ctx,
            Some(id),
            |_| command,
            expected_version,
            idempotency_key,
        )
        .await
    }

    /// Records that a programme works with another organisation (admins): from now on the
    /// other's liaisons and partner contacts can be given steps of the programme's plans.
    async fn start_partnership(
        &self,
        ctx: &Context<'_>,
        organisation: ID,
        partner: ID,
        idempotency_key: Option<String>,
    ) -> ApiResult<OrganisationObject> {
        let organisation = organisation_id("organisation", &organisation)?;
        let partner = organisation_id("partner", &partner)?;
        authz::authorize(viewer(ctx)?, Action::ManageParties)?;
        existing(ctx, partner).await?;
        let command = OrganisationCommand::StartWorkingWith { partner };
        run(ctx, Some(organisation), |_| command, None, idempotency_key).await
    }

    /// Sets how many months a programme keeps a survivor's data after her last plan closes
    /// (admins; 1 to 600, five years unless set). The retention rule then erases it, unless a
    /// supervisor placed a legal hold. A shorter period erases, at the next sweep, everyone
    /// whose plans closed longer ago than it.
    async fn set_retention_period(
        &self,
        ctx: &Context<'_>,
        organisation: ID,
        months: i32,
        expected_version: Option<u64>,
        idempotency_key: Option<String>,
    ) -> ApiResult<OrganisationObject> {
        let organisation = organisation_id("organisation", &organisation)?;
        let months = u32::try_from(months).map_err(|_| {
            ApiError::validation(format!(
                "months is the number of months data is kept, from 1 to {}; {months} is not",
                homeward_workflows::organisation::MAX_RETENTION_MONTHS
            ))
        })?;
        let command = OrganisationCommand::SetRetention { months };
        run(
            ctx,
            Some(organisation),
            |_| command,
            expected_version,
            idempotency_key,
        )
        .await
    }

    /// Ends a partnership (admins): no new steps go to the other's people. Steps they already
    /// hold stay theirs until the case team reassigns them.
    async fn end_partnership(
        &self,
        ctx: &Context<'_>,
        organisation: ID,
        partner: ID,
        idempotency_key: Option<String>,
    ) -> ApiResult<OrganisationObject> {
        let organisation = organisation_id("organisation", &organisation)?;
        let partner = organisation_id("partner", &partner)?;
        let command = OrganisationCommand::StopWorkingWith { partner };
        run(ctx, Some(organisation), |_| command, None, idempotency_key).await
    }
}
