//! Parties (the people who do the work) and their tokens.

use async_graphql::connection::Connection;
use async_graphql::{Context, Object, ID};
use homeward_engine::authz::{self, Action};
use homeward_engine::duties::{self, Duty};
use homeward_engine::invitations::{InvitationError, Notice};
use homeward_engine::tokens;
use homeward_store::projection::PartyRow;
use homeward_workflows::organisation::OrganisationKind;
use homeward_workflows::party::{Party, PartyCommand, PartyDetails, PartyRole};
use homeward_workflows::OrganisationId;
use homeward_workflows::PartyId;

use crate::error::command_error;
use crate::idempotency;
use crate::inputs::{self, party_id, uuid, PartyInput, ReminderSettingsInput};
use crate::organisations::{self, organisation_id};
use crate::types::{party, CreatedToken, Invitation, PartyObject, TokenInfo};
use crate::{services, viewer, ApiError, ApiResult, Code};

#[derive(Default, Debug)]
pub struct PartyQuery;

#[Object]
impl PartyQuery {
    /// Who you are.
    async fn me(&self, ctx: &Context<'_>) -> ApiResult<PartyObject> {
        let viewer = viewer(ctx)?;
        party(ctx, Some(viewer.party.0))
            .await?
            .ok_or_else(|| ApiError::not_found("party", viewer.party))
    }

    /// One party, by id (as in `parties`: not for partner contacts); null when there is none.
    async fn party(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<PartyObject>> {
        let id = party_id("id", &id)?;
        authz::authorize(viewer(ctx)?, Action::ReadParties)?;
        party(ctx, Some(id.0)).await
    }

    /// A party's tokens, the newest first: when each was issued and by whom, until when it is
    /// valid, when it was last used (to the hour) and whether it was revoked; never the token
    /// itself. Your own, or (admins) anyone's.
    async fn tokens(&self, ctx: &Context<'_>, party: ID) -> ApiResult<Vec<TokenInfo>> {
        let id = party_id("party", &party)?;
        authz::authorize(viewer(ctx)?, Action::ReadTokens(id))?;
        let records = services(ctx).reads.tokens_of(id.0).await?;
        Ok(records.into_iter().map(TokenInfo).collect())
    }

    /// The parties steps can be assigned to, by name; all organisations unless one is given
    /// (by id).
    #[graphql(complexity = "crate::inputs::page_complexity(first, child_complexity)")]
    async fn parties(
        &self,
        ctx: &Context<'_>,
        organisation: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, PartyObject>> {
        authz::authorize(viewer(ctx)?, Action::ReadParties)?;
        let page = inputs::page(first, after.as_deref())?;
        let organisation = organisation
            .map(|o| organisation_id("organisation", &o))
            .transpose()?;
        let rows = services(ctx)
            .reads
            .parties(organisation.map(|o| o.0), inputs::probe(page))
            .await?;
        let (rows, has_next) = inputs::split_page(page, rows);
        Ok(inputs::connection(page, rows, has_next, |row| {
            Some(PartyObject(std::sync::Arc::new(row)))
        }))
    }
}

#[derive(Default, Debug)]
pub struct PartyMutation;

/// Who a notice says it is from, and the name of an organisation, as the recipient reads them.
async fn names(ctx: &Context<'_>, organisation: uuid::Uuid) -> ApiResult<(String, String)> {
    let viewer = viewer(ctx)?;
    let by = crate::loaders(ctx)
        .party(viewer.party.0)
        .await?
        .map(|p| p.display_name.clone())
        .unwrap_or_default();
    let organisation = organisations::existing(ctx, OrganisationId(organisation))
        .await?
        .name
        .clone();
    Ok((by, organisation))
}

fn mail_not_sent(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        Code::MailNotSent,
        format!("the email could not be sent ({e})"),
    )
}

/// A party as the database has it now: decisions about who may do what never use a row a
/// long-lived socket's loader read earlier.
pub(crate) async fn fresh_party(
    ctx: &Context<'_>,
    party: PartyId,
) -> ApiResult<Option<std::sync::Arc<PartyRow>>> {
    Ok(services(ctx)
        .reads
        .parties_by_id(&[party.0])
        .await?
        .into_iter()
        .next()
        .map(std::sync::Arc::new))
}

/// Whether `organisation` holds or held any plan.
async fn has_plans(ctx: &Context<'_>, organisation: uuid::Uuid) -> ApiResult<bool> {
    let scope = homeward_store::reads::PlanScope::Organisation(organisation);
    let page = homeward_store::reads::Page {
        offset: 0,
        limit: 1,
    };
    let s = services(ctx);
    Ok(!s
        .reads
        .plans(
            &scope,
            &homeward_store::reads::PlanFilter::default(),
            s.clock.now(),
            page,
        )
        .await?
        .is_empty())
}

/// Whether `organisation` has an active supervisor other than `except`.
async fn has_supervisor(
    ctx: &Context<'_>,
    organisation: uuid::Uuid,
    except: Option<uuid::Uuid>,
) -> ApiResult<bool> {
    let reads = &services(ctx).reads;
    let mut offset = 0;
    loop {
        let page = homeward_store::reads::Page { offset, limit: 500 };
        let rows = reads.parties(Some(organisation), page).await?;
        if rows.iter().any(|p| {
            p.role == PartyRole::Supervisor.as_str() && p.active && Some(p.party_id) != except
        }) {
            return Ok(true);
        }
        if rows.len() < 500 {
            return Ok(false);
        }
        offset += 500;
    }
}

/// The organisation of open plans keeps a supervisor (escalations go to them, and only they
/// bring new people into its case team): `current`, a supervisor about to leave it (moved,
/// made another role, deactivated), may not be the last.
async fn keeps_a_supervisor(ctx: &Context<'_>, current: &PartyRow) -> ApiResult<()> {
    if current.role != PartyRole::Supervisor.as_str() || !current.active {
        return Ok(());
    }
    let scope = homeward_store::reads::PlanScope::Organisation(current.organisation);
    if crate::plans::open_plans_of(ctx, &scope, None, 1)
        .await?
        .is_empty()
        || has_supervisor(ctx, current.organisation, Some(current.party_id)).await?
    {
        return Ok(());
    }
    Err(ApiError::validation(format!(
        "{} is the last supervisor of an organisation with open plans: register and invite \
         another supervisor first",
        current.display_name
    )))
}

/// A social worker who is the case worker of open plans keeps them until they are handed over:
/// refused, saying what to do first and then `then`.
async fn handed_over(ctx: &Context<'_>, current: &PartyRow, then: &str) -> ApiResult<()> {
    if current.role != PartyRole::SocialWorker.as_str() {
        return Ok(());
    }
    let scope = homeward_store::reads::PlanScope::Organisation(current.organisation);
    let party = PartyId(current.party_id);
    if crate::plans::open_plans_of(ctx, &scope, Some(party), 1)
        .await?
        .is_empty()
    {
        return Ok(());
    }
    Err(ApiError::validation(format!(
        "{} is the case worker of open plans: hand them over first (handOverCases), then {then}",
        current.display_name
    )))
}

/// Whether the viewer may invite `party` (see [`Action::InviteParty`]).
async fn may_invite(ctx: &Context<'_>, party: &PartyRow) -> ApiResult<Result<(), ApiError>> {
    let role = PartyRole::parse(&party.role)
        .ok_or_else(|| ApiError::internal(&"a party of an unknown role"))?;
    // The invitee aside: the first supervisor of an organisation is invited by an admin, before
    // it holds any plan. One that has (or had) plans never takes a member from an admin, even
    // with no supervisor left: an admin could otherwise clear the way and invite themselves.
    let organisation_has_supervisor = has_supervisor(ctx, party.organisation, Some(party.party_id))
        .await?
        || has_plans(ctx, party.organisation).await?;
    let action = Action::InviteParty {
        role,
        organisation: OrganisationId(party.organisation),
        organisation_has_supervisor,
    };
    Ok(authz::authorize(viewer(ctx)?, action).map_err(ApiError::from))
}

/// Sends `party` a new invitation.
async fn invite(ctx: &Context<'_>, party: &PartyRow) -> ApiResult<Invitation> {
    let (by, organisation) = names(ctx, party.organisation).await?;
    let s = services(ctx);
    let notice = Notice {
        to: party,
        by: &by,
        organisation: &organisation,
    };
    let sent = s
        .invitations
        .send(s.reads.as_ref(), notice, viewer(ctx)?.party, s.clock.now())
        .await
        .map_err(|e| match e {
            InvitationError::NotSent(e) => mail_not_sent(e),
            InvitationError::Store(e) => e.into(),
        })?;
    Ok(Invitation {
        sent_to: sent.sent_to,
        expires_at: sent.expires_at,
    })
}

/// Before a party's address or organisation changes: the former address is told of a new
/// address, the party of a new organisation. Nothing changes unless the notice went out.
async fn tell_of_change(
    ctx: &Context<'_>,
    current: &PartyRow,
    details: &PartyDetails,
) -> ApiResult<()> {
    let new_address = !details.email.eq_ignore_ascii_case(&current.email);
    let moved = details.organisation.0 != current.organisation;
    if !new_address && !moved {
        return Ok(());
    }
    let (by, organisation) = names(ctx, current.organisation).await?;
    let s = services(ctx);
    let notice = || Notice {
        to: current,
        by: &by,
        organisation: &organisation,
    };
    let now = s.clock.now();
    if new_address {
        s.invitations
            .tell_address_changed(notice(), &details.email, now)
            .await
            .map_err(|e| mail_not_sent(format!("{e}; nothing was changed")))?;
    }
    if moved {
        let to = organisations::existing(ctx, details.organisation).await?;
        s.invitations
            .tell_organisation_changed(notice(), &to.name, now)
            .await
            .map_err(|e| mail_not_sent(format!("{e}; nothing was changed")))?;
    }
    Ok(())
}

/// A party's organisation exists and suits their role, and their supervisor (if any) is a
/// supervisor of it. `party` is the party being updated (`None`: a registration).
async fn fits_organisation(
    ctx: &Context<'_>,
    details: &PartyDetails,
    party: Option<PartyId>,
) -> ApiResult<()> {
    let organisation = organisations::existing(ctx, details.organisation).await?;
    let kind = OrganisationKind::parse(&organisation.kind)
        .ok_or_else(|| ApiError::internal(&"an organisation of an unknown kind"))?;
    duties::may_belong(details.role, kind).map_err(|e| ApiError::validation(e.to_string()))?;
    if let Some(supervisor) = details.supervisor {
        if Some(supervisor) == party {
            // The domain says why.
            return Ok(());
        }
        let row = fresh_party(ctx, supervisor)
            .await?
            .ok_or_else(|| ApiError::not_found("supervisor", supervisor))?;
        duties::fits(&row, Duty::Supervisor, &organisation)
            .map_err(|e| ApiError::validation(e.to_string()))?;
    }
    Ok(())
}

/// Runs a party command for the viewer, idempotent by key. `party` is the party it changes, or
/// `None` for a registration, whose id comes from [`Begun::new_id`].
async fn run(
    ctx: &Context<'_>,
    action: Action<'_>,
    party: Option<PartyId>,
    command: impl FnOnce(PartyId) -> PartyCommand,
    expected_version: Option<u64>,
    idempotency_key: Option<String>,
) -> ApiResult<PartyObject> {
    let (party, _) = run_replayed(
        ctx,
        action,
        party,
        command,
        expected_version,
        idempotency_key,
    )
    .await?;
    Ok(party)
}

/// [`run`], saying whether the result is a replay of an earlier request with the same key.
async fn run_replayed(
    ctx: &Context<'_>,
    action: Action<'_>,
    party: Option<PartyId>,
    command: impl FnOnce(PartyId) -> PartyCommand,
    expected_version: Option<u64>,
    idempotency_key: Option<String>,
) -> ApiResult<(PartyObject, bool)> {
    let viewer = viewer(ctx)?;
    authz::authorize(viewer, action)?;
    let target = party.map(|p| p.stream_id());
    let begun = idempotency::begin(ctx, target.as_deref(), idempotency_key.as_deref())?;
    let party = party.unwrap_or(PartyId(begun.new_id()));
    let command = command(party);
    let handler = &services(ctx).handler;
    let mut meta = begun.meta(viewer.party);
    meta.expected_version = expected_version;
    let outcome = handler
        .handle::<Party>(&party.stream_id(), &command, meta)
        .await
        .map_err(|e| {
            command_error(e, |e| match e {
                homeward_workflows::party::PartyError::NotRegistered => {
                    ApiError::not_found("party", party)
                }
                other => ApiError::validation(other.to_string()),
            })
        });
    let handled = begun.finish(ctx, outcome).await?;
    Ok((
        PartyObject(std::sync::Arc::new(homeward_store::projection::party_row(
            &handled.state,
        ))),
        handled.duplicate,
    ))
}

#[Object]
impl PartyMutation {
    /// Registers a party (admins).
    async fn register_party(
        &self,
        ctx: &Context<'_>,
        input: PartyInput,
        idempotency_key: Option<String>,
    ) -> ApiResult<PartyObject> {
        authz::authorize(viewer(ctx)?, Action::ManageParties)?;
        let programme = &crate::services(ctx).default_time_zone;
        let details = input.into_domain(|| programme.clone())?;
        fits_organisation(ctx, &details, None).await?;
        let command = |party_id| PartyCommand::Register { party_id, details };
        let (registered, replayed) = run_replayed(
            ctx,
            Action::ManageParties,
            None,
            command,
            None,
            idempotency_key,
        )
        .await?;
        // Into a case team with a supervisor, the supervisor invites (inviteParty). A replay
        // sends nothing again: the first invitation stands.
        if !replayed && may_invite(ctx, &registered.0).await?.is_ok() {
            invite(ctx, &registered.0).await.map_err(|e| {
                ApiError::new(
                    e.code,
                    format!(
                        "{} is registered (id {}), but {}; send the invitation again with \
                         inviteParty",
                        registered.0.display_name, registered.0.party_id, e.message
                    ),
                )
            })?;
        }
        Ok(registered)
    }

    /// Emails a party a new invitation: a link, valid once for `HOMEWARD_INVITATION_DAYS`,
    /// through which they create their own token. A supervisor invites the social workers and
    /// supervisors of their organisation; an admin invites admins, liaisons, partner contacts
    /// and the first supervisor of an organisation that has none. It withdraws the
    /// party's earlier invitations.
    async fn invite_party(&self, ctx: &Context<'_>, party: ID) -> ApiResult<Invitation> {
        let party = party_id("party", &party)?;
        let row = fresh_party(ctx, party)
            .await?
            .ok_or_else(|| ApiError::not_found("party", party))?;
        may_invite(ctx, &row).await??;
        if !row.active {
            return Err(ApiError::validation(format!(
                "{} is deactivated: reactivate them first (reactivateParty)",
                row.display_name
            )));
        }
        invite(ctx, &row).await
    }

    /// Deactivates a party (admins), with the reason: their tokens are revoked at once (open
    /// WebSockets closed in every replica), their invitations withdrawn, their links stop
    /// working, and they get no reminders (a reminder due to them is recorded as failed, for the
    /// case team to reassign the step) and no new duties. A social worker who is the case
    /// worker of open plans is deactivated only once they are handed over.
    async fn deactivate_party(
        &self,
        ctx: &Context<'_>,
        party: ID,
        reason: String,
        idempotency_key: Option<String>,
    ) -> ApiResult<PartyObject> {
        let id = party_id("party", &party)?;
        authz::authorize(viewer(ctx)?, Action::ManageParties)?;
        let current = fresh_party(ctx, id)
            .await?
            .ok_or_else(|| ApiError::not_found("party", id))?;
        keeps_a_supervisor(ctx, &current).await?;
        handed_over(ctx, &current, "deactivate them").await?;
        let command = PartyCommand::Deactivate { reason };
        let deactivated = run(
            ctx,
            Action::ManageParties,
            Some(id),
            |_| command,
            None,
            idempotency_key,
        )
        .await?;
        // After the event: a token check meanwhile already finds the party inactive.
        let s = services(ctx);
        s.reads.revoke_tokens_of(id.0).await?;
        s.reads.withdraw_invitations_of(id.0).await?;
        Ok(deactivated)
    }

    /// Reactivates a party (admins); invite them again (`inviteParty`) for a token.
    async fn reactivate_party(
        &self,
        ctx: &Context<'_>,
        party: ID,
        idempotency_key: Option<String>,
    ) -> ApiResult<PartyObject> {
        let id = party_id("party", &party)?;
        run(
            ctx,
            Action::ManageParties,
            Some(id),
            |_| PartyCommand::Reactivate,
            None,
            idempotency_key,
        )
        .await
    }

    /// Replaces a party's details (admins).
    async fn update_party(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: PartyInput,
        expected_version: Option<u64>,
        idempotency_key: Option<String>,
    ) -> ApiResult<PartyObject> {
        let party = party_id("id", &id)?;
        authz::authorize(viewer(ctx)?, Action::ManageParties)?;
        let services = crate::services(ctx);
        let current = fresh_party(ctx, party).await?;
        let time_zone = current.as_ref().map(|row| row.time_zone.clone());
        let details = input
            .into_domain(|| time_zone.unwrap_or_else(|| services.default_time_zone.clone()))?;
        fits_organisation(ctx, &details, Some(party)).await?;
        // A case worker's plans stay with their organisation: moving the worker, or changing
        // their role, would leave the plans without one. They are handed over first.
        if let Some(current) = &current {
            let moves = details.organisation.0 != current.organisation
                || details.role != PartyRole::SocialWorker;
            if moves {
                handed_over(ctx, current, "change their organisation or role").await?;
            }
        }
        // Leaving the case team: moved to another organisation, or given another role.
        let leaves = current.as_ref().is_some_and(|row| {
            details.organisation.0 != row.organisation || details.role.as_str() != row.role
        });
        if let Some(current) = &current {
            // Nobody is told of a change that is refused as stale.
            if let Some(expected) = expected_version {
                let actual = current.version as u64;
                if actual != expected {
                    return Err(ApiError::new(
                        Code::Conflict,
                        format!(
                            "this party changed meanwhile (it is at version {actual}, you \
                             expected {expected}): reload and try again"
                        ),
                    ));
                }
            }
            if leaves {
                keeps_a_supervisor(ctx, current).await?;
            }
            // What the update would record must be valid before anyone is told of it.
            homeward_workflows::party::validate(party, &details)
                .map_err(|e| ApiError::validation(e.to_string()))?;
            tell_of_change(ctx, current, &details).await?;
        }
        // An invitation is for the party as they were when it was sent: a new role, address or
        // organisation withdraws it (before the change, so that a failure leaves none standing),
        // and a move to another organisation ends their tokens too (its own people decide who
        // joins its work: they are invited anew).
        if let Some(current) = &current {
            let moved = details.organisation.0 != current.organisation;
            if moved
                || details.role.as_str() != current.role
                || !details.email.eq_ignore_ascii_case(&current.email)
            {
                services.reads.withdraw_invitations_of(party.0).await?;
            }
            if moved {
                services.reads.revoke_tokens_of(party.0).await?;
            }
        }
        let command = PartyCommand::Update { details };
        run(
            ctx,
            Action::ManageParties,
            Some(party),
            |_| command,
            expected_version,
            idempotency_key,
        )
        .await
    }

    /// Sets when and how a party hears from Homeward, replacing all of it: the language and
    /// time zone reminders are written in, quiet hours (default 20:00–08:00 in that zone) and an
    /// optional digest of open and overdue tasks on a cron schedule in that zone, e.g.
    /// `0 8 * * Mon` for Mondays at 08:00. Each party sets their own; admins anyone's.
    async fn set_reminder_settings(
        &self,
        ctx: &Context<'_>,
        party: ID,
        input: ReminderSettingsInput,
        expected_version: Option<u64>,
        idempotency_key: Option<String>,
    ) -> ApiResult<PartyObject> {
        let party = party_id("party", &party)?;
        let command = PartyCommand::SetReminderSettings(input.into_domain());
        run(
            ctx,
            Action::SetReminderSettings(party),
            Some(party),
            |_| command,
            expected_version,
            idempotency_key,
        )
        .await
    }

    /// Creates a token with the party's role: your own, or (admins) another admin's. The secret
    /// is shown once. Others are invited (`inviteParty`) and create their own.
    async fn create_token(
        &self,
        ctx: &Context<'_>,
        party: ID,
        #[graphql(default = 90)] days: i64,
    ) -> ApiResult<CreatedToken> {
        let viewer = viewer(ctx)?;
        let party = party_id("party", &party)?;
        let s = services(ctx);
        let row = s
            .reads
            .parties_by_id(&[party.0])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::not_found("party", party))?;
        let role = PartyRole::parse(&row.role)
            .ok_or_else(|| ApiError::internal(&"party with an unknown role"))?;
        authz::authorize(viewer, Action::CreateToken { party, role })?;
        let request = tokens::TokenRequest {
            party,
            role,
            days,
            max_days: s.token_max_days,
            issued_by: Some(viewer.party),
        };
        let issued = tokens::issue(s.reads.as_ref(), request, s.clock.now())
            .await
            .map_err(|e| match e {
                tokens::TokenError::Store(e) => e.into(),
                tokens::TokenError::UnknownParty(_) => ApiError::not_found("party", party),
                other => ApiError::validation(other.to_string()),
            })?;
        Ok(CreatedToken {
            token_id: ID(issued.token_id.to_string()),
            secret: issued.secret,
            expires_at: issued.expires_at,
        })
    }

    /// Revokes every token of a party at once, open WebSockets included, in every replica
    /// (admins); how many were still standing.
    async fn revoke_tokens(&self, ctx: &Context<'_>, party: ID) -> ApiResult<i32> {
        authz::authorize(viewer(ctx)?, Action::ManageTokens)?;
        let id = party_id("party", &party)?;
        let revoked = services(ctx).reads.revoke_tokens_of(id.0).await?;
        Ok(i32::try_from(revoked.len()).unwrap_or(i32::MAX))
    }

    /// Revokes a token at once (admins).
    async fn revoke_token(&self, ctx: &Context<'_>, token_id: ID) -> ApiResult<bool> {
        authz::authorize(viewer(ctx)?, Action::ManageTokens)?;
        let id = uuid("tokenId", &token_id)?;
        if services(ctx).reads.revoke_token(id).await? {
            Ok(true)
        } else {
            Err(ApiError::new(
                Code::NotFound,
                format!("no active token with id {id}"),
            ))
        }
    }
}
