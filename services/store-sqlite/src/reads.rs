//! The API's reads on SQLite: plan lists, inboxes, parties and tokens. The same queries as on
//! PostgreSQL, in SQLite's SQL: lists of values are bound one by one (`IN (?, ?, …)`), and the
//! retention's month arithmetic is done in Rust.

use async_trait::async_trait;
use chrono::{DateTime, Months, Utc};
use homeward_store::projection::{OrganisationRow, PartyRow, PersonRow, PlanRow, StepRow};
use homeward_store::reads::*;
use homeward_store::StoreError;
use homeward_workflows::plan::StepKind;
use sqlx::{Encode, QueryBuilder, Sqlite, Type};
use tokio::sync::broadcast::{self, error::RecvError};
use uuid::Uuid;

use crate::SqliteStore;

/// How often a listener looks in the file for tokens revoked by another process (`homeward
/// token revoke` beside the server).
const REVOCATION_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Tokens revoked, as they are: at once those this process revokes, and within
/// [`REVOCATION_POLL`] those another process writing to the file revokes.
#[derive(Debug)]
struct RevocationReceiver {
    announced: broadcast::Receiver<Uuid>,
    pool: sqlx::SqlitePool,
    /// Revocations at or after this are looked for (a little before the latest seen, so that
    /// one committed late with an earlier time is not missed).
    since: DateTime<Utc>,
    /// Those already given, with when they were revoked, until they fall behind `since`.
    given: std::collections::HashMap<Uuid, DateTime<Utc>>,
    found: std::collections::VecDeque<Uuid>,
}

impl RevocationReceiver {
    fn give(&mut self, token: Uuid, at: DateTime<Utc>) -> bool {
        self.given.insert(token, at).is_none()
    }

    async fn look(&mut self) -> Result<(), StoreError> {
        let rows: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(
            "SELECT token_id, revoked_at FROM api_tokens WHERE revoked_at >= ? ORDER BY revoked_at",
        )
        .bind(self.since)
        .fetch_all(&self.pool)
        .await?;
        for (token, at) in rows {
            if self.give(token, at) {
                self.found.push_back(token);
            }
            self.since = self.since.max(at - chrono::Duration::seconds(5));
        }
        let since = self.since;
        self.given.retain(|_, at| *at >= since);
        Ok(())
    }
}

#[async_trait]
impl Revocations for RevocationReceiver {
    async fn next(&mut self) -> Result<Uuid, StoreError> {
        loop {
            if let Some(token) = self.found.pop_front() {
                return Ok(token);
            }
            tokio::select! {
                announced = self.announced.recv() => match announced {
                    Ok(token) => {
                        if self.give(token, Utc::now()) {
                            return Ok(token);
                        }
                    }
                    // The receiver has moved on past what it missed: the caller checks its
                    // tokens again, and the next call goes on from there.
                    Err(RecvError::Lagged(missed)) => {
                        return Err(StoreError::Unexpected(format!(
                            "{missed} token revocations were missed while busy"
                        )))
                    }
                    Err(RecvError::Closed) => {
                        return Err(StoreError::Unexpected(
                            "the store announcing revocations was closed".to_owned(),
                        ))
                    }
                },
                _ = tokio::time::sleep(REVOCATION_POLL) => self.look().await?,
            }
        }
    }
}

const PLAN_COLUMNS: &str = "p.plan_id, p.version, p.person_id, p.template_name, \
    p.template_version, p.case_worker, p.organisation, p.origin_country, p.status, p.suspended, \
    p.opened_at, p.departed_at, p.arrived_at, p.closed_at, p.close_reason, p.next_due_at, \
    p.steps_total, p.steps_open, p.steps_done, p.steps_blocked";

const STEP_COLUMNS: &str = "s.plan_id, s.step_key, s.position, s.kind, s.title, s.status, \
    s.assignee, s.candidate_group, s.priority, s.due_at, s.follow_up_on, s.document_status, \
    s.status_reason";

const PARTY_COLUMNS: &str = "party_id, version, display_name, email, role, organisation, \
    country, language, time_zone, supervisor, active";

const ORGANISATION_COLUMNS: &str =
    "organisation_id, version, name, kind, country, works_with, retention_months";

/// Pushes ` IN (?, ?, …)`, one bind per value: SQLite has no arrays. An empty list matches
/// nothing, as `= ANY('{}')` does on PostgreSQL.
fn push_in<'a, T>(q: &mut QueryBuilder<'a, Sqlite>, values: impl IntoIterator<Item = T>)
where
    T: 'a + Encode<'a, Sqlite> + Type<Sqlite>,
{
    q.push(" IN (");
    let mut list = q.separated(", ");
    for value in values {
        list.push_bind(value);
    }
    list.push_unseparated(")");
}

fn kind_names<'a>(kinds: &'a [StepKind]) -> impl Iterator<Item = &'a str> + 'a {
    kinds.iter().map(|k| k.as_str())
}

/// The SQL of a plan list.
fn plans_query<'a>(
    scope: &'a PlanScope,
    filter: &'a PlanFilter,
    now: DateTime<Utc>,
    page: Page,
) -> QueryBuilder<'a, Sqlite> {
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
                q.push(" AND s.kind");
                push_in(&mut q, kind_names(kinds));
            }
            q.push(")");
        }
    }
    if !filter.statuses.is_empty() {
        q.push(" AND p.status");
        push_in(&mut q, filter.statuses.iter().map(String::as_str));
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
                q.push(" AND o.kind");
                push_in(&mut q, kind_names(kinds));
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

/// The SQL of the inbox.
fn tasks_query<'a>(
    scope: &'a TaskScope,
    filter: &'a TaskFilter,
    now: DateTime<Utc>,
    page: Page,
) -> QueryBuilder<'a, Sqlite> {
    let mut q = QueryBuilder::new(format!("SELECT {STEP_COLUMNS} FROM step_view s"));
    if scope.organisation.is_some() {
        q.push(" JOIN plan_view p ON p.plan_id = s.plan_id");
    }
    q.push(" WHERE s.assignee = ").push_bind(scope.assignee.0);
    if let Some(org) = &scope.organisation {
        q.push(" AND p.organisation = ").push_bind(*org);
    }
    if let Some(kinds) = &scope.kinds {
        q.push(" AND s.kind");
        push_in(&mut q, kind_names(kinds));
    }
    if filter.statuses.is_empty() {
        // Matches the inbox index's predicate.
        q.push(" AND s.status NOT IN ('done', 'cancelled')");
    } else {
        q.push(" AND s.status");
        push_in(&mut q, filter.statuses.iter().map(String::as_str));
    }
    if !filter.kinds.is_empty() {
        q.push(" AND s.kind");
        push_in(&mut q, filter.kinds.iter().map(String::as_str));
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
         s.plan_id, s.position LIMIT ",
    )
    .push_bind(page.limit)
    .push(" OFFSET ")
    .push_bind(page.offset);
    q
}

/// An organisation's row as stored: `works_with` is a JSON array of ids.
#[derive(Debug, sqlx::FromRow)]
struct StoredOrganisation {
    organisation_id: Uuid,
    version: i64,
    name: String,
    kind: String,
    country: String,
    works_with: String,
    retention_months: i32,
}

impl TryFrom<StoredOrganisation> for OrganisationRow {
    type Error = StoreError;

    fn try_from(o: StoredOrganisation) -> Result<Self, StoreError> {
        let works_with = serde_json::from_str(&o.works_with).map_err(|e| {
            StoreError::Unexpected(format!(
                "organisation {}'s partners are not a JSON array of ids: {e}",
                o.organisation_id
            ))
        })?;
        Ok(OrganisationRow {
            organisation_id: o.organisation_id,
            version: o.version,
            name: o.name,
            kind: o.kind,
            country: o.country,
            works_with,
            retention_months: o.retention_months,
        })
    }
}

fn organisation_rows(stored: Vec<StoredOrganisation>) -> Result<Vec<OrganisationRow>, StoreError> {
    stored.into_iter().map(OrganisationRow::try_from).collect()
}

/// A survivor not erased whose plans are all closed, as stored.
#[derive(Debug, sqlx::FromRow)]
struct Closed {
    person_id: Uuid,
    held_since: Option<DateTime<Utc>>,
    last_closed_at: Option<DateTime<Utc>>,
    retention_months: i32,
}

/// `months` after `t`, as PostgreSQL's `+ make_interval(months => n)` reckons it: the same day
/// of the month, or the month's last day when it has no such day.
fn add_months(t: DateTime<Utc>, months: i32) -> Option<DateTime<Utc>> {
    let n = Months::new(months.unsigned_abs());
    if months >= 0 {
        t.checked_add_months(n)
    } else {
        t.checked_sub_months(n)
    }
}

/// A page's offset and limit as counts (a negative one is none).
fn page_bounds(page: Page) -> (usize, usize) {
    (
        usize::try_from(page.offset).unwrap_or(0),
        usize::try_from(page.limit).unwrap_or(0),
    )
}

/// The SQL of a uuid column as text, hyphenated and in lower case as Rust writes it: the form
/// of the ids in stream names (`plan-<uuid>`).
fn uuid_text(column: &str) -> String {
    let hex = format!("hex({column})");
    format!(
        "lower(substr({hex}, 1, 8) || '-' || substr({hex}, 9, 4) || '-' || \
         substr({hex}, 13, 4) || '-' || substr({hex}, 17, 4) || '-' || substr({hex}, 21))"
    )
}

impl SqliteStore {
    /// Every survivor not erased whose plans are all closed (of one organisation, if given):
    /// when her organisation's retention erases her, and whether a hold stops it; soonest
    /// first. The date is reckoned here because SQLite's `+N months` rolls a missing day over
    /// into the next month where PostgreSQL takes the month's last day.
    async fn retention(
        &self,
        organisation: Option<Uuid>,
    ) -> Result<Vec<UpcomingErasure>, StoreError> {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT v.person_id, v.held_since, max(p.closed_at) AS last_closed_at, \
               o.retention_months \
             FROM person_view v \
             JOIN plan_view p ON p.person_id = v.person_id \
             JOIN organisation_view o ON o.organisation_id = v.organisation \
             WHERE v.erased_at IS NULL",
        );
        if let Some(org) = organisation {
            q.push(" AND v.organisation = ").push_bind(org);
        }
        q.push(
            " GROUP BY v.person_id, v.held_since, o.retention_months \
             HAVING min(p.status = 'closed') = 1",
        );
        let closed: Vec<Closed> = q.build_query_as().fetch_all(self.read_pool()).await?;
        let mut due = Vec::with_capacity(closed.len());
        for c in closed {
            // Closed plans without a closing time end no retention (as NULL compares on
            // PostgreSQL).
            let Some(last_closed_at) = c.last_closed_at else {
                continue;
            };
            let erase_at = add_months(last_closed_at, c.retention_months).ok_or_else(|| {
                StoreError::Unexpected(format!(
                    "person {}'s retention ends out of the range of dates",
                    c.person_id
                ))
            })?;
            due.push(UpcomingErasure {
                person_id: c.person_id,
                last_closed_at,
                erase_at,
                held_since: c.held_since,
            });
        }
        due.sort_by_key(|d| (d.erase_at, d.person_id));
        Ok(due)
    }

    /// Revokes the unrevoked tokens whose `column` (`token_id` or `party_id`) is `id`, then
    /// announces each once the revocation is written. The ids revoked.
    async fn revoke_where(&self, column: &'static str, id: Uuid) -> Result<Vec<Uuid>, StoreError> {
        let revoked: Vec<Uuid> = {
            let mut writer = self.writer().await;
            sqlx::query_scalar(&format!(
                "UPDATE api_tokens SET revoked_at = ? \
                 WHERE {column} = ? AND revoked_at IS NULL RETURNING token_id"
            ))
            .bind(Utc::now())
            .bind(id)
            .fetch_all(&mut *writer)
            .await?
        };
        for token in &revoked {
            self.announce_revocation(*token);
        }
        Ok(revoked)
    }
}

#[async_trait]
impl ReadModels for SqliteStore {
    async fn plans(
        &self,
        scope: &PlanScope,
        filter: &PlanFilter,
        now: DateTime<Utc>,
        page: Page,
    ) -> Result<Vec<PlanRow>, StoreError> {
        Ok(plans_query(scope, filter, now, page)
            .build_query_as()
            .fetch_all(self.read_pool())
            .await?)
    }

    async fn tasks(
        &self,
        scope: &TaskScope,
        filter: &TaskFilter,
        now: DateTime<Utc>,
        page: Page,
    ) -> Result<Vec<StepRow>, StoreError> {
        Ok(tasks_query(scope, filter, now, page)
            .build_query_as()
            .fetch_all(self.read_pool())
            .await?)
    }

    async fn plan_row(&self, plan_id: Uuid) -> Result<Option<PlanRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {PLAN_COLUMNS} FROM plan_view p WHERE p.plan_id = ?"
        ))
        .bind(plan_id)
        .fetch_optional(self.read_pool())
        .await?)
    }

    async fn plans_of_person(&self, person: Uuid) -> Result<Vec<PlanRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {PLAN_COLUMNS} FROM plan_view p WHERE p.person_id = ? ORDER BY p.opened_at"
        ))
        .bind(person)
        .fetch_all(self.read_pool())
        .await?)
    }

    async fn persons_by_id(&self, ids: &[Uuid]) -> Result<Vec<PersonRow>, StoreError> {
        let mut q = QueryBuilder::new(
            "SELECT person_id, version, organisation, erased_at, held_since FROM person_view \
             WHERE person_id",
        );
        push_in(&mut q, ids.iter().copied());
        Ok(q.build_query_as().fetch_all(self.read_pool()).await?)
    }

    async fn retention_ended(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Uuid>, StoreError> {
        let limit = usize::try_from(limit).unwrap_or(0);
        Ok(self
            .retention(None)
            .await?
            .into_iter()
            .filter(|r| r.erase_at <= now && r.held_since.is_none())
            .take(limit)
            .map(|r| r.person_id)
            .collect())
    }

    async fn upcoming_erasures(
        &self,
        organisation: Uuid,
        until: DateTime<Utc>,
        page: Page,
    ) -> Result<Vec<UpcomingErasure>, StoreError> {
        let (offset, limit) = page_bounds(page);
        Ok(self
            .retention(Some(organisation))
            .await?
            .into_iter()
            .filter(|r| r.erase_at < until)
            .skip(offset)
            .take(limit)
            .collect())
    }

    async fn persons_to_review(
        &self,
        organisation: Uuid,
        before: DateTime<Utc>,
        page: Page,
    ) -> Result<Vec<PersonToReview>, StoreError> {
        // The last event of her stream and of each of her plans' streams: one backward index
        // probe each. SQLite's two-argument `max` is NULL if either is (PostgreSQL's `greatest`
        // skips NULLs), hence the `coalesce`s.
        let person_stream = uuid_text("v.person_id");
        let plan_stream = uuid_text("p.plan_id");
        Ok(sqlx::query_as(&format!(
            "SELECT person_id, held_since, drafts, last_activity_at FROM ( \
               SELECT person_id, held_since, drafts, \
                 max(coalesce(person_last, plans_last), coalesce(plans_last, person_last)) \
                   AS last_activity_at \
               FROM ( \
                 SELECT v.person_id, v.held_since, \
                   (SELECT count(*) FROM plan_view p \
                     WHERE p.person_id = v.person_id AND p.status = 'draft') AS drafts, \
                   (SELECT e.occurred_at FROM events e \
                     WHERE e.stream_id = 'person-' || {person_stream} \
                     ORDER BY e.stream_version DESC LIMIT 1) AS person_last, \
                   (SELECT max((SELECT e.occurred_at FROM events e \
                                 WHERE e.stream_id = 'plan-' || {plan_stream} \
                                 ORDER BY e.stream_version DESC LIMIT 1)) \
                      FROM plan_view p WHERE p.person_id = v.person_id) AS plans_last \
                 FROM person_view v \
                 WHERE v.organisation = ? AND v.erased_at IS NULL \
                   AND NOT EXISTS (SELECT 1 FROM plan_view p WHERE p.person_id = v.person_id \
                                    AND p.status NOT IN ('draft', 'closed')) \
               ) a \
             ) r \
             WHERE (r.drafts > 0 OR NOT EXISTS (SELECT 1 FROM plan_view p \
                                                 WHERE p.person_id = r.person_id)) \
               AND r.last_activity_at < ? \
             ORDER BY r.last_activity_at, r.person_id LIMIT ? OFFSET ?"
        ))
        .bind(organisation)
        .bind(before)
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(self.read_pool())
        .await?)
    }

    async fn persons_matching(
        &self,
        organisation: Uuid,
        terms: &[Vec<u8>],
        limit: i64,
    ) -> Result<Vec<Uuid>, StoreError> {
        // A term asked for twice is one term to have, as in PostgreSQL's `@>`.
        let mut terms: Vec<&[u8]> = terms.iter().map(Vec::as_slice).collect();
        terms.sort_unstable();
        terms.dedup();
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let wanted = terms.len() as i64;
        // One row per (organisation, term, person): she has them all when she has as many rows
        // as there are terms. An erased person's key is gone, and with it her right to be
        // found, whatever rows are left.
        let mut q = QueryBuilder::new(
            "SELECT t.person_id FROM person_terms t \
             JOIN person_keys k ON k.person_id = t.person_id \
             WHERE t.organisation = ",
        );
        q.push_bind(organisation).push(" AND t.term");
        push_in(&mut q, terms);
        q.push(" AND k.wrapped_key IS NOT NULL GROUP BY t.person_id HAVING count(*) = ")
            .push_bind(wanted)
            .push(" ORDER BY t.person_id LIMIT ")
            .push_bind(limit);
        Ok(q.build_query_scalar().fetch_all(self.read_pool()).await?)
    }

    async fn plans_with_open_steps_of(&self, party: Uuid) -> Result<Vec<Uuid>, StoreError> {
        // The inbox index covers it: assignee first, open steps only.
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT plan_id FROM step_view \
             WHERE assignee = ? AND status NOT IN ('done', 'cancelled')",
        )
        .bind(party)
        .fetch_all(self.read_pool())
        .await?)
    }

    async fn parties_by_id(&self, ids: &[Uuid]) -> Result<Vec<PartyRow>, StoreError> {
        let mut q = QueryBuilder::new(format!(
            "SELECT {PARTY_COLUMNS} FROM party_view WHERE party_id"
        ));
        push_in(&mut q, ids.iter().copied());
        Ok(q.build_query_as().fetch_all(self.read_pool()).await?)
    }

    async fn parties(
        &self,
        organisation: Option<Uuid>,
        page: Page,
    ) -> Result<Vec<PartyRow>, StoreError> {
        let mut q = QueryBuilder::new(format!("SELECT {PARTY_COLUMNS} FROM party_view"));
        if let Some(org) = organisation {
            q.push(" WHERE organisation = ").push_bind(org);
        }
        q.push(" ORDER BY display_name, party_id LIMIT ")
            .push_bind(page.limit)
            .push(" OFFSET ")
            .push_bind(page.offset);
        Ok(q.build_query_as().fetch_all(self.read_pool()).await?)
    }

    async fn organisations_by_id(&self, ids: &[Uuid]) -> Result<Vec<OrganisationRow>, StoreError> {
        let mut q = QueryBuilder::new(format!(
            "SELECT {ORGANISATION_COLUMNS} FROM organisation_view WHERE organisation_id"
        ));
        push_in(&mut q, ids.iter().copied());
        organisation_rows(q.build_query_as().fetch_all(self.read_pool()).await?)
    }

    async fn organisations(&self, page: Page) -> Result<Vec<OrganisationRow>, StoreError> {
        organisation_rows(
            sqlx::query_as(&format!(
                "SELECT {ORGANISATION_COLUMNS} FROM organisation_view \
                 ORDER BY name, organisation_id LIMIT ? OFFSET ?"
            ))
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(self.read_pool())
            .await?,
        )
    }

    async fn party_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM party_view")
            .fetch_one(self.read_pool())
            .await?)
    }

    async fn insert_token(&self, token: &NewToken) -> Result<(), StoreError> {
        let mut writer = self.writer().await;
        sqlx::query(
            "INSERT INTO api_tokens \
               (token_id, token_hash, party_id, role, created_at, issued_by, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(token.token_id)
        .bind(&token.token_hash)
        .bind(token.party_id)
        .bind(&token.role)
        .bind(token.issued_at)
        .bind(token.issued_by)
        .bind(token.expires_at)
        .execute(&mut *writer)
        .await?;
        Ok(())
    }

    async fn revoke_token(&self, token_id: Uuid) -> Result<bool, StoreError> {
        Ok(!self.revoke_where("token_id", token_id).await?.is_empty())
    }

    async fn revocations(&self) -> Result<Box<dyn Revocations>, StoreError> {
        Ok(Box::new(RevocationReceiver {
            announced: self.inner.revoked.subscribe(),
            pool: self.read_pool().clone(),
            since: Utc::now() - chrono::Duration::seconds(5),
            given: Default::default(),
            found: Default::default(),
        }))
    }

    async fn tokens_of(&self, party: Uuid) -> Result<Vec<TokenRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT token_id, party_id, role, created_at AS issued_at, issued_by, expires_at, \
               last_used_at, revoked_at \
             FROM api_tokens WHERE party_id = ? ORDER BY created_at DESC, token_id",
        )
        .bind(party)
        .fetch_all(self.read_pool())
        .await?)
    }

    async fn revoke_tokens_of(&self, party: Uuid) -> Result<Vec<Uuid>, StoreError> {
        self.revoke_where("party_id", party).await
    }

    async fn insert_invitation(&self, invitation: &NewInvitation) -> Result<(), StoreError> {
        // The one writer makes the two statements one step: no other invitation of the party
        // can be stored between them.
        let mut writer = self.writer().await;
        let mut tx = sqlx::Connection::begin_with(&mut *writer, "BEGIN IMMEDIATE").await?;
        sqlx::query("UPDATE invitations SET used_at = ? WHERE party_id = ? AND used_at IS NULL")
            .bind(invitation.issued_at)
            .bind(invitation.party_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO invitations \
               (invitation_id, secret_hash, party_id, issued_by, issued_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
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
        let mut writer = self.writer().await;
        Ok(sqlx::query_scalar(
            "UPDATE invitations SET used_at = ?1 \
             WHERE secret_hash = ?2 AND used_at IS NULL AND expires_at > ?1 \
             RETURNING party_id",
        )
        .bind(now)
        .bind(secret_hash)
        .fetch_optional(&mut *writer)
        .await?)
    }

    async fn invitation_party(
        &self,
        secret_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT party_id FROM invitations \
             WHERE secret_hash = ? AND used_at IS NULL AND expires_at > ?",
        )
        .bind(secret_hash)
        .bind(now)
        .fetch_optional(self.read_pool())
        .await?)
    }

    async fn withdraw_invitations_of(&self, party: Uuid) -> Result<u64, StoreError> {
        let mut writer = self.writer().await;
        Ok(
            sqlx::query(
                "UPDATE invitations SET used_at = ? WHERE party_id = ? AND used_at IS NULL",
            )
            .bind(Utc::now())
            .bind(party)
            .execute(&mut *writer)
            .await?
            .rows_affected(),
        )
    }

    async fn record_token_use(
        &self,
        token_id: Uuid,
        hour: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut writer = self.writer().await;
        sqlx::query(
            "UPDATE api_tokens SET last_used_at = ?1 \
             WHERE token_id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)",
        )
        .bind(hour)
        .bind(token_id)
        .execute(&mut *writer)
        .await?;
        Ok(())
    }

    async fn token_owner(
        &self,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<TokenOwner>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT t.token_id, t.role AS token_role, t.expires_at, t.last_used_at, p.party_id, \
               p.version, p.display_name, p.email, p.role, p.organisation, p.country, \
               p.language, p.time_zone, p.supervisor, p.active \
             FROM api_tokens t JOIN party_view p ON p.party_id = t.party_id \
             WHERE t.token_hash = ? AND t.revoked_at IS NULL AND t.expires_at > ? \
               AND p.active",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(self.read_pool())
        .await?)
    }
}
