//! The API's reads on PostgreSQL: plan lists, inboxes, parties and tokens.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use homeward_store::projection::{OrganisationRow, PartyRow, PersonRow, PlanRow, StepRow};
use homeward_store::reads::*;
use homeward_store::StoreError;
use homeward_workflows::plan::StepKind;
use sqlx::postgres::PgListener;
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use crate::PgStore;

/// The channel a revoked token's id is announced on (by the trigger `api_tokens_revoked`).
const REVOCATIONS_CHANNEL: &str = "homeward_revoked_tokens";

/// `LISTEN` on [`REVOCATIONS_CHANNEL`].
#[derive(Debug)]
struct RevocationListener(PgListener);

#[async_trait::async_trait]
impl Revocations for RevocationListener {
    async fn next(&mut self) -> Result<Uuid, StoreError> {
        // `try_recv` says when the connection was lost (and notifications with it), where
        // `recv` would reconnect silently; the listener reconnects on the next call.
        match self.0.try_recv().await? {
            Some(notification) => Uuid::parse_str(notification.payload())
                .map_err(|_| StoreError::Unexpected("a revocation without a token id".to_owned())),
            None => Err(StoreError::Unexpected(
                "the connection listening for revocations was lost".to_owned(),
            )),
        }
    }
}

const PLAN_COLUMNS: &str = "p.plan_id, p.version, p.person_id, p.template_name, \
    p.template_version, p.case_worker, p.organisation, p.origin_country, p.status, p.suspended, \
    p.opened_at, p.departed_at, p.arrived_at, p.closed_at, p.close_reason, p.next_due_at, \
    p.steps_total, p.steps_open, p.steps_done, p.steps_blocked";

/// Every survivor not erased whose plans are all closed: when her organisation's retention
/// erases her (`erase_at`), and whether a hold stops it.
const RETENTION: &str = "SELECT v.person_id, v.organisation, v.held_since, \
        max(p.closed_at) AS last_closed_at, \
        max(p.closed_at) + make_interval(months => o.retention_months) AS erase_at \
      FROM person_view v \
      JOIN plan_view p ON p.person_id = v.person_id \
      JOIN organisation_view o ON o.organisation_id = v.organisation \
     WHERE v.erased_at IS NULL \
     GROUP BY v.person_id, v.organisation, v.held_since, o.retention_months \
    HAVING bool_and(p.status = 'closed')";

const STEP_COLUMNS: &str = "s.plan_id, s.step_key, s.position, s.kind, s.title, s.status, \
    s.assignee, s.candidate_group, s.priority, s.due_at, s.follow_up_on, s.document_status, \
    s.status_reason";

const PARTY_COLUMNS: &str = "party_id, version, display_name, email, role, organisation, \
    country, language, time_zone, supervisor, active";

const ORGANISATION_COLUMNS: &str =
    "organisation_id, version, name, kind, country, works_with, retention_months";

fn kind_names(kinds: &[StepKind]) -> Vec<String> {
    kinds.iter().map(|k| k.as_str().to_owned()).collect()
}

/// The SQL of a plan list (shared by the API and the benchmark's bare handler).
pub fn plans_query<'a>(
    scope: &'a PlanScope,
    filter: &'a PlanFilter,
    now: DateTime<Utc>,
    page: Page,
) -> QueryBuilder<'a, Postgres> {
    let mut q = QueryBuilder::new(format!("SELECT {PLAN_COLUMNS} FROM plan_view p WHERE "));
    match scope {
        PlanScope::Organisation(org) => {
            q.push("p.organisation = ").push_bind(*org);
        }
        PlanScope::AssignedTo { party, kinds } => {
            q.push(
                "EXISTS (SELECT 1 FROM step_view s WHERE s.plan_id = p.plan_id AND s.assignee = ",
            )
            .push_bind(party.0);
            if let Some(kinds) = kinds {
                q.push(" AND s.kind = ANY(")
                    .push_bind(kind_names(kinds))
                    .push(")");
            }
            q.push(")");
        }
    }
    if !filter.statuses.is_empty() {
        q.push(" AND p.status = ANY(")
            .push_bind(filter.statuses.clone())
            .push(")");
    }
    if let Some(cw) = filter.case_worker {
        q.push(" AND p.case_worker = ").push_bind(cw);
    }
    if let Some(c) = &filter.origin_country {
        q.push(" AND p.origin_country = ").push_bind(c.as_str());
    }
    match (scope, filter.has_overdue_steps) {
        (_, None) => {}
        // The whole plan is the organisation's to see: its earliest open due date says it.
        (PlanScope::Organisation(_), Some(true)) => {
            q.push(" AND p.next_due_at < ").push_bind(now);
        }
        (PlanScope::Organisation(_), Some(false)) => {
            q.push(" AND (p.next_due_at IS NULL OR p.next_due_at >= ")
                .push_bind(now)
                .push(")");
        }
        // Only the steps in scope count: another's overdue step is not the viewer's to know of.
        (PlanScope::AssignedTo { party, kinds }, Some(overdue)) => {
            q.push(if overdue {
                " AND EXISTS"
            } else {
                " AND NOT EXISTS"
            })
            .push(" (SELECT 1 FROM step_view o WHERE o.plan_id = p.plan_id AND o.assignee = ")
            .push_bind(party.0);
            if let Some(kinds) = kinds {
                q.push(" AND o.kind = ANY(")
                    .push_bind(kind_names(kinds))
                    .push(")");
            }
            q.push(" AND o.status NOT IN ('done', 'cancelled') AND o.due_at < ")
                .push_bind(now)
                .push(")");
        }
    }
    if let Some(t) = filter.opened_from {
        q.push(" AND p.opened_at >= ").push_bind(t);
    }
    if let Some(t) = filter.opened_before {
        q.push(" AND p.opened_at < ").push_bind(t);
    }
    q.push(" ORDER BY p.opened_at DESC, p.plan_id DESC LIMIT ")
        .push_bind(page.limit)
        .push(" OFFSET ")
        .push_bind(page.offset);
    q
}

/// The SQL of the inbox (shared by the API and the benchmark's bare handler).
pub fn tasks_query<'a>(
    scope: &'a TaskScope,
    filter: &'a TaskFilter,
    now: DateTime<Utc>,
    page: Page,
) -> QueryBuilder<'a, Postgres> {
    let mut q = QueryBuilder::new(format!("SELECT {STEP_COLUMNS} FROM step_view s"));
    if scope.organisation.is_some() {
        q.push(" JOIN plan_view p ON p.plan_id = s.plan_id");
    }
    q.push(" WHERE s.assignee = ").push_bind(scope.assignee.0);
    if let Some(org) = &scope.organisation {
        q.push(" AND p.organisation = ").push_bind(*org);
    }
    if let Some(kinds) = &scope.kinds {
        q.push(" AND s.kind = ANY(")
            .push_bind(kind_names(kinds))
            .push(")");
    }
    if filter.statuses.is_empty() {
        // Matches the inbox index's predicate.
        q.push(" AND s.status NOT IN ('done', 'cancelled')");
    } else {
        q.push(" AND s.status = ANY(")
            .push_bind(filter.statuses.clone())
            .push(")");
    }
    if !filter.kinds.is_empty() {
        q.push(" AND s.kind = ANY(")
            .push_bind(filter.kinds.clone())
            .push(")");
    }
    match filter.overdue {
        Some(true) => {
            q.push(" AND s.status NOT IN ('done', 'cancelled') AND s.due_at < ")
                .push_bind(now);
        }
        Some(false) => {
            q.push(" AND (s.due_at IS NULL OR s.due_at >= ")
                .push_bind(now)
                .push(")");
        }
        None => {}
    }
    if let Some(t) = filter.due_from {
        q.push(" AND s.due_at >= ").push_bind(t);
    }
    if let Some(t) = filter.due_before {
        q.push(" AND s.due_at < ").push_bind(t);
    }
    q.push(
        " ORDER BY s.due_at ASC NULLS LAST, s.follow_up_on ASC NULLS LAST, s.priority ASC, \
         s.plan_id, s.position",
    );
    push_page(&mut q, page);
    q
}

/// The inbox's page, written into the SQL rather than bound. As parameters, a generic plan
/// cannot know the page's size and assumes a far larger one; it never looked as cheap as a plan
/// made for the values (the order by due date is a sort over her open tasks), so PostgreSQL
/// planned the inbox afresh at every call, at more than the cost of running it. Written in,
/// each page size is planned once per connection. (Two integers: nothing to escape.) The plan
/// list, read in order from its index, keeps its generic plan with the page bound.
fn push_page(q: &mut QueryBuilder<'_, Postgres>, page: Page) {
    q.push(" LIMIT ")
        .push(page.limit)
        .push(" OFFSET ")
        .push(page.offset);
}

impl PgStore {
    /// Revokes the unrevoked tokens whose `column` (`token_id` or `party_id`) is `id`, and
    /// announces each: the notifications go out when the revocation commits, in the same
    /// statement. The ids revoked.
    async fn revoke_where(&self, column: &'static str, id: Uuid) -> Result<Vec<Uuid>, StoreError> {
        // Announced by the trigger `api_tokens_revoked` (see the SQL functions).
        let mut tx = self.begin().await?;
        let revoked = sqlx::query_scalar(&format!(
            "UPDATE api_tokens SET revoked_at = now() \
             WHERE {column} = $1 AND revoked_at IS NULL RETURNING token_id"
        ))
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(revoked)
    }
}

#[async_trait]
impl ReadModels for PgStore {
    async fn plans(
        &self,
        scope: &PlanScope,
        filter: &PlanFilter,
        now: DateTime<Utc>,
        page: Page,
    ) -> Result<Vec<PlanRow>, StoreError> {
        Ok(self
            .read(|pool| async move {
                plans_query(scope, filter, now, page)
                    .build_query_as()
                    .fetch_all(pool)
                    .await
            })
            .await?)
    }

    async fn tasks(
        &self,
        scope: &TaskScope,
        filter: &TaskFilter,
        now: DateTime<Utc>,
        page: Page,
    ) -> Result<Vec<StepRow>, StoreError> {
        Ok(self
            .read(|pool| async move {
                tasks_query(scope, filter, now, page)
                    .build_query_as()
                    .fetch_all(pool)
                    .await
            })
            .await?)
    }

    async fn plan_row(&self, plan_id: Uuid) -> Result<Option<PlanRow>, StoreError> {
        Ok(self
            .read(|pool| async move {
                sqlx::query_as(&format!(
                    "SELECT {PLAN_COLUMNS} FROM plan_view p WHERE p.plan_id = $1"
                ))
                .bind(plan_id)
                .fetch_optional(pool)
                .await
            })
            .await?)
    }

    async fn plans_of_person(&self, person: Uuid) -> Result<Vec<PlanRow>, StoreError> {
        Ok(self
            .read(|pool| async move {
                sqlx::query_as(&format!(
            "SELECT {PLAN_COLUMNS} FROM plan_view p WHERE p.person_id = $1 ORDER BY p.opened_at"
        ))
                .bind(person)
                .fetch_all(pool)
                .await
            })
            .await?)
    }

    async fn persons_by_id(&self, ids: &[Uuid]) -> Result<Vec<PersonRow>, StoreError> {
        Ok(self
            .read(|pool| async move {
                sqlx::query_as(
            "SELECT person_id, version, organisation, erased_at, held_since FROM person_view \
             WHERE person_id = ANY($1)",
        )
        .bind(ids)
        .fetch_all(pool).await
            })
            .await?)
    }

    async fn retention_ended(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Uuid>, StoreError> {
        Ok(self
            .read(|pool| async move {
                sqlx::query_scalar(&format!(
            "SELECT person_id FROM ({RETENTION}) r WHERE r.erase_at <= $1 AND r.held_since IS NULL \
             ORDER BY r.erase_at LIMIT $2"
        ))
                .bind(now)
                .bind(limit)
                .fetch_all(pool)
                .await
            })
            .await?)
    }

    async fn upcoming_erasures(
        &self,
        organisation: Uuid,
        until: DateTime<Utc>,
        page: Page,
    ) -> Result<Vec<UpcomingErasure>, StoreError> {
        Ok(self
            .read(|pool| async move {
                sqlx::query_as(&format!(
                    "SELECT person_id, last_closed_at, erase_at, held_since FROM ({RETENTION}) r \
             WHERE r.organisation = $1 AND r.erase_at < $2 \
             ORDER BY r.erase_at, r.person_id OFFSET $3 LIMIT $4"
                ))
                .bind(organisation)
                .bind(until)
                .bind(page.offset)
                .bind(page.limit)
                .fetch_all(pool)
                .await
            })
            .await?)
    }

    async fn persons_to_review(
        &self,
        organisation: Uuid,
        before: DateTime<Utc>,
        page: Page,
    ) -> Result<Vec<PersonToReview>, StoreError> {
        // The last event of her stream and of each of her plans' streams: one backward index
        // probe each.
        Ok(self.read(|pool| async move { sqlx::query_as(
            "SELECT * FROM ( \
               SELECT v.person_id, v.held_since, \
                 (SELECT count(*) FROM plan_view p \
                   WHERE p.person_id = v.person_id AND p.status = 'draft') AS drafts, \
                 greatest( \
                   (SELECT e.occurred_at FROM events e WHERE e.stream_id = 'person-' || v.person_id \
                     ORDER BY e.stream_version DESC LIMIT 1), \
                   (SELECT max((SELECT e.occurred_at FROM events e \
                                 WHERE e.stream_id = 'plan-' || p.plan_id \
                                 ORDER BY e.stream_version DESC LIMIT 1)) \
                      FROM plan_view p WHERE p.person_id = v.person_id)) AS last_activity_at \
               FROM person_view v \
               WHERE v.organisation = $1 AND v.erased_at IS NULL \
                 AND NOT EXISTS (SELECT 1 FROM plan_view p WHERE p.person_id = v.person_id \
                                  AND p.status NOT IN ('draft', 'closed')) \
             ) r \
             WHERE (r.drafts > 0 OR NOT EXISTS (SELECT 1 FROM plan_view p \
                                                 WHERE p.person_id = r.person_id)) \
               AND r.last_activity_at < $2 \
             ORDER BY r.last_activity_at, r.person_id OFFSET $3 LIMIT $4",
        )
        .bind(organisation)
        .bind(before)
        .bind(page.offset)
        .bind(page.limit)
        .fetch_all(pool).await }).await?)
    }

    async fn persons_matching(
        &self,
        organisation: Uuid,
        terms: &[Vec<u8>],
        limit: i64,
    ) -> Result<Vec<Uuid>, StoreError> {
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let terms: Vec<String> = terms.iter().map(|t| crate::batch::hex(t)).collect();
        let terms = &terms;
        Ok(self
            .read(|pool| async move {
                sqlx::query_scalar(
                    "SELECT person_id FROM person_keys \
             WHERE organisation = $1 AND search_terms @> $2 AND search_terms IS NOT NULL \
             ORDER BY person_id LIMIT $3",
                )
                .bind(organisation)
                .bind(terms)
                .bind(limit)
                .fetch_all(pool)
                .await
            })
            .await?)
    }

    async fn plans_with_open_steps_of(&self, party: Uuid) -> Result<Vec<Uuid>, StoreError> {
        // The inbox index covers it: assignee first, open steps only.
        Ok(self
            .read(|pool| async move {
                sqlx::query_scalar(
                    "SELECT DISTINCT plan_id FROM step_view \
             WHERE assignee = $1 AND status NOT IN ('done', 'cancelled')",
                )
                .bind(party)
                .fetch_all(pool)
                .await
            })
            .await?)
    }

    async fn parties_by_id(&self, ids: &[Uuid]) -> Result<Vec<PartyRow>, StoreError> {
        Ok(self
            .read(|pool| async move {
                sqlx::query_as(&format!(
                    "SELECT {PARTY_COLUMNS} FROM party_view WHERE party_id = ANY($1)"
                ))
                .bind(ids)
                .fetch_all(pool)
                .await
            })
            .await?)
    }

    async fn parties(
        &self,
        organisation: Option<Uuid>,
        page: Page,
    ) -> Result<Vec<PartyRow>, StoreError> {
        Ok(self
            .read(|pool| async move {
                sqlx::query_as(&format!(
                    "SELECT {PARTY_COLUMNS} FROM party_view \
             WHERE ($1::uuid IS NULL OR organisation = $1) \
             ORDER BY display_name, party_id LIMIT $2 OFFSET $3"
                ))
                .bind(organisation)
                .bind(page.limit)
                .bind(page.offset)
                .fetch_all(pool)
                .await
            })
            .await?)
    }

    async fn organisations_by_id(&self, ids: &[Uuid]) -> Result<Vec<OrganisationRow>, StoreError> {
        Ok(self
            .read(|pool| async move {
                sqlx::query_as(&format!(
            "SELECT {ORGANISATION_COLUMNS} FROM organisation_view WHERE organisation_id = ANY($1)"
        ))
                .bind(ids)
                .fetch_all(pool)
                .await
            })
            .await?)
    }

    async fn organisations(&self, page: Page) -> Result<Vec<OrganisationRow>, StoreError> {
        Ok(self
            .read(|pool| async move {
                sqlx::query_as(&format!(
                    "SELECT {ORGANISATION_COLUMNS} FROM organisation_view \
             ORDER BY name, organisation_id LIMIT $1 OFFSET $2"
                ))
                .bind(page.limit)
                .bind(page.offset)
                .fetch_all(pool)
                .await
            })
            .await?)
    }

    async fn party_count(&self) -> Result<i64, StoreError> {
        Ok(self
            .read(|pool| async move {
                sqlx::query_scalar("SELECT count(*) FROM party_view")
                    .fetch_one(pool)
                    .await
            })
            .await?)
    }

    async fn insert_token(&self, token: &NewToken) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO api_tokens \
               (token_id, token_hash, party_id, role, created_at, issued_by, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(token.token_id)
        .bind(&token.token_hash)
        .bind(token.party_id)
        .bind(&token.role)
        .bind(token.issued_at)
        .bind(token.issued_by)
        .bind(token.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn revoke_token(&self, token_id: Uuid) -> Result<bool, StoreError> {
        Ok(!self.revoke_where("token_id", token_id).await?.is_empty())
    }

    async fn tokens_of(&self, party: Uuid) -> Result<Vec<TokenRecord>, StoreError> {
        Ok(self
            .read(|pool| async move {
                sqlx::query_as(
            "SELECT token_id, party_id, role, created_at AS issued_at, issued_by, expires_at, \
               last_used_at, revoked_at \
             FROM api_tokens WHERE party_id = $1 ORDER BY created_at DESC, token_id",
        )
        .bind(party)
        .fetch_all(pool).await
            })
            .await?)
    }

    async fn revoke_tokens_of(&self, party: Uuid) -> Result<Vec<Uuid>, StoreError> {
        self.revoke_where("party_id", party).await
    }

    async fn insert_invitation(&self, invitation: &NewInvitation) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        // One invitation of a party at a time: two sent at once would each withdraw only the
        // ones committed before it, and both would stand.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))")
            .bind(invitation.party_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE invitations SET used_at = $2 WHERE party_id = $1 AND used_at IS NULL")
            .bind(invitation.party_id)
            .bind(invitation.issued_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO invitations \
               (invitation_id, secret_hash, party_id, issued_by, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(invitation.invitation_id)
        .bind(&invitation.secret_hash)
        .bind(invitation.party_id)
        .bind(invitation.issued_by)
        .bind(invitation.issued_at)
        .bind(invitation.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn use_invitation(
        &self,
        secret_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError> {
        let mut tx = self.begin().await?;
        let party = sqlx::query_scalar(
            "UPDATE invitations SET used_at = $2 \
             WHERE secret_hash = $1 AND used_at IS NULL AND expires_at > $2 \
             RETURNING party_id",
        )
        .bind(secret_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(party)
    }

    async fn invitation_party(
        &self,
        secret_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError> {
        Ok(self
            .read(|pool| async move {
                sqlx::query_scalar(
                    "SELECT party_id FROM invitations \
             WHERE secret_hash = $1 AND used_at IS NULL AND expires_at > $2",
                )
                .bind(secret_hash)
                .bind(now)
                .fetch_optional(pool)
                .await
            })
            .await?)
    }

    async fn withdraw_invitations_of(&self, party: Uuid) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let withdrawn = sqlx::query(
            "UPDATE invitations SET used_at = now() WHERE party_id = $1 AND used_at IS NULL",
        )
        .bind(party)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(withdrawn)
    }

    async fn record_token_use(
        &self,
        token_id: Uuid,
        hour: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.rerunnable_write(|pool| {
            sqlx::query(
                "UPDATE api_tokens SET last_used_at = $2 \
                 WHERE token_id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
            )
            .bind(token_id)
            .bind(hour)
            .execute(pool)
        })
        .await?;
        Ok(())
    }

    async fn revocations(&self) -> Result<Box<dyn Revocations>, StoreError> {
        let mut listener = PgListener::connect_with(self.pool()).await?;
        listener.listen(REVOCATIONS_CHANNEL).await?;
        Ok(Box::new(RevocationListener(listener)))
    }

    async fn token_owner(
        &self,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<TokenOwner>, StoreError> {
        // On the token lane: every request asks this first.
        let token_hash = token_hash.to_vec();
        let owner = self
            .tokens
            .read(move |connection| {
                let token_hash = token_hash.clone();
                Box::pin(async move {
                    sqlx::query_as(
                        "SELECT t.token_id, t.role AS token_role, t.expires_at, \
                           t.last_used_at, p.party_id, p.version, p.display_name, p.email, \
                           p.role, p.organisation, p.country, p.language, p.time_zone, \
                           p.supervisor, p.active \
                         FROM api_tokens t JOIN party_view p ON p.party_id = t.party_id \
                         WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > $2 \
                           AND p.active",
                    )
                    .bind(token_hash)
                    .bind(now)
                    .fetch_optional(connection)
                    .await
                })
            })
            .await?;
        Ok(owner)
    }
}
