//! Input types and their checks. Values that GraphQL itself cannot check (ids in text, step
//! keys, time zones, page sizes) are checked here; text limits and the rules of a plan are the
//! domain's, and come back from `decide` with their own messages.

use async_graphql::{InputObject, OneofObject, ID};
use chrono::{NaiveDate, NaiveDateTime};
use homeward_workflows::plan::{self as domain, ConsentPurpose, NewStep};
use homeward_workflows::{PartyId, StepKey};
use uuid::Uuid;

use crate::types::{ConcernArea, ConsentKind, Milestone, Priority};
use crate::{ApiError, ApiResult, DEFAULT_PAGE_SIZE, MAX_INPUT_LIST, MAX_PAGE_SIZE};

/// Longest idempotency key a client may send.
pub const MAX_IDEMPOTENCY_KEY: usize = 200;

/// Parses an id argument (a UUID).
pub fn uuid(field: &str, id: &ID) -> ApiResult<Uuid> {
    Uuid::parse_str(id.as_str()).map_err(|_| {
        ApiError::validation(format!(
            "{field} must be a UUID such as 0b9e6a51-3f0c-4a39-9a53-4b9a0c1c7a10, not {:?}",
            truncate(id.as_str())
        ))
    })
}

pub fn party_id(field: &str, id: &ID) -> ApiResult<PartyId> {
    uuid(field, id).map(PartyId)
}

pub fn step_key(key: &str) -> ApiResult<StepKey> {
    StepKey::parse(key).map_err(|e| ApiError::validation(e.to_string()))
}

/// Shortens a bad value before it is quoted back in an error message.
pub fn truncate(s: &str) -> String {
    if s.chars().count() <= 60 {
        s.to_owned()
    } else {
        format!("{}...", s.chars().take(60).collect::<String>())
    }
}

pub fn list<T>(field: &str, items: Vec<T>) -> ApiResult<Vec<T>> {
    if items.len() > MAX_INPUT_LIST {
        return Err(ApiError::validation(format!(
            "{field} may hold at most {MAX_INPUT_LIST} items, not {}",
            items.len()
        )));
    }
    Ok(items)
}

/// A page request: `first` (1 to 100, default 20) items after the opaque cursor `after`.
pub fn page(first: Option<i32>, after: Option<&str>) -> ApiResult<homeward_store::reads::Page> {
    let limit = match first {
        None => DEFAULT_PAGE_SIZE,
        Some(n) if n >= 1 && n as usize <= MAX_PAGE_SIZE => n as usize,
        Some(n) => {
            return Err(ApiError::validation(format!(
                "first must be between 1 and {MAX_PAGE_SIZE}, not {n}"
            )))
        }
    };
    let offset = match after {
        None => 0,
        Some(cursor) => decode_cursor(cursor)?,
    };
    Ok(homeward_store::reads::Page {
        offset: offset as i64,
        limit: limit as i64,
    })
}

/// The complexity of a page: what one item costs, times the items it may hold.
pub fn page_complexity(first: Option<i32>, item: usize) -> usize {
    let items = first
        .unwrap_or(DEFAULT_PAGE_SIZE as i32)
        .clamp(1, MAX_PAGE_SIZE as i32);
    items as usize * item.max(1)
}

/// The page to ask the store for: one row more than wanted, to learn whether more follow.
pub fn probe(page: homeward_store::reads::Page) -> homeward_store::reads::Page {
    homeward_store::reads::Page {
        limit: page.limit + 1,
        ..page
    }
}

/// The rows of a page out of the rows of its [`probe`], and whether more follow.
pub fn split_page<R>(page: homeward_store::reads::Page, mut rows: Vec<R>) -> (Vec<R>, bool) {
    let has_next = rows.len() as i64 > page.limit;
    rows.truncate(page.limit as usize);
    (rows, has_next)
}

/// A Relay connection of a page's rows, each with its offset as cursor; rows that `node` turns
/// into `None` (not for this viewer) are left out.
pub fn connection<R, T: async_graphql::OutputType>(
    page: homeward_store::reads::Page,
    rows: Vec<R>,
    has_next: bool,
    mut node: impl FnMut(R) -> Option<T>,
) -> async_graphql::connection::Connection<String, T> {
    let mut connection = async_graphql::connection::Connection::new(page.offset > 0, has_next);
    for (i, row) in rows.into_iter().enumerate() {
        if let Some(node) = node(row) {
            connection.edges.push(async_graphql::connection::Edge::new(
                encode_cursor(page.offset as usize + i),
                node,
            ));
        }
    }
    connection
}

/// Cursors are opaque to clients; inside they are offsets.
pub fn encode_cursor(offset: usize) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("o:{offset}"))
}

fn decode_cursor(cursor: &str) -> ApiResult<usize> {
    use base64::Engine;
    let bad = || {
        ApiError::validation(
            "after must be a cursor from a previous page (its edges' cursor or pageInfo.endCursor)",
        )
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let n: usize = text
        .strip_prefix("o:")
        .and_then(|n| n.parse().ok())
        .ok_or_else(bad)?;
    // An offset past any real list: refused rather than scanned.
    if n > 10_000_000 {
        return Err(bad());
    }
    Ok(n + 1)
}

/// When a step is due: exactly one of the two forms.
#[derive(OneofObject, Debug, Clone)]
pub enum DueInput {
    /// A local date and time in an IANA time zone.
    At(DueAtInput),
    /// A number of days after a milestone (resolved when the milestone happens).
    After(DueAfterInput),
}

#[derive(InputObject, Debug, Clone)]
pub struct DueAtInput {
    /// For example `2026-12-01T09:00:00`.
    pub local_date_time: NaiveDateTime,
    /// An IANA time zone, for example `Africa/Lagos`.
    pub time_zone: String,
}

#[derive(InputObject, Debug, Clone)]
pub struct DueAfterInput {
    pub milestone: Milestone,
    pub days: u32,
}

impl DueInput {
    pub fn into_domain(self) -> domain::DueRule {
        match self {
            Self::At(at) => domain::DueRule::At {
                local: at.local_date_time,
                time_zone: at.time_zone,
            },
            Self::After(after) => domain::DueRule::After {
                milestone: after.milestone.into(),
                days: after.days,
            },
        }
    }
}

#[derive(InputObject, Debug, Clone)]
pub struct ReminderPolicyInput {
    /// Remind this many days before the due date (null: not before).
    pub before_due_days: Option<u32>,
    /// Remind on the due date.
    pub on_due: bool,
    /// Once overdue, remind every N days (null: no overdue reminders).
    pub overdue_every_days: Option<u32>,
    /// Escalate to the supervisor after M days overdue (null: never).
    pub escalate_after_days: Option<u32>,
}

impl From<ReminderPolicyInput> for domain::ReminderPolicy {
    fn from(p: ReminderPolicyInput) -> Self {
        Self {
            before_due_days: p.before_due_days,
            on_due: p.on_due,
            overdue_every_days: p.overdue_every_days,
            escalate_after_days: p.escalate_after_days,
        }
    }
}

#[derive(InputObject, Debug, Clone)]
pub struct NewStepInput {
    /// Unique within the plan: lowercase letters, digits, `_` and `-`.
    pub key: String,
    pub kind: crate::types::StepKind,
    pub title: String,
    pub assignee: Option<ID>,
    pub candidate_group: Option<String>,
    #[graphql(default_with = "Priority::Normal")]
    pub priority: Priority,
    pub due: Option<DueInput>,
    pub follow_up_on: Option<NaiveDate>,
    #[graphql(default)]
    pub depends_on: Vec<String>,
    pub reminder_policy: Option<ReminderPolicyInput>,
}

impl NewStepInput {
    pub fn into_domain(self) -> ApiResult<NewStep> {
        Ok(NewStep {
            key: step_key(&self.key)?,
            kind: self.kind.into(),
            title: self.title,
            assignee: self
                .assignee
                .as_ref()
                .map(|a| party_id("assignee", a))
                .transpose()?,
            candidate_group: self.candidate_group,
            priority: self.priority.into(),
            due: self.due.map(DueInput::into_domain),
            follow_up_on: self.follow_up_on,
            depends_on: list("dependsOn", self.depends_on)?
                .iter()
                .map(|k| step_key(k))
                .collect::<ApiResult<_>>()?,
            reminder_policy: self.reminder_policy.map(Into::into),
        })
    }
}

#[derive(InputObject, Debug, Clone)]
pub struct GoalInput {
    pub area: ConcernArea,
    /// What the survivor wants to reach, in a few words (no names or addresses: goals are
    /// shared with the case team).
    pub aim: String,
}

/// What a consent is for; `partner` is required for data sharing and refused otherwise.
#[derive(InputObject, Debug, Clone)]
pub struct ConsentInput {
    pub kind: ConsentKind,
    pub partner: Option<ID>,
}

impl ConsentInput {
    pub fn into_domain(self) -> ApiResult<ConsentPurpose> {
        match (self.kind, self.partner) {
            (ConsentKind::DataSharing, Some(p)) => Ok(ConsentPurpose::DataSharing {
                partner: party_id("partner", &p)?,
            }),
            (ConsentKind::DataSharing, None) => Err(ApiError::validation(
                "consent to data sharing names the partner it is given for: set partner",
            )),
            (_, Some(_)) => Err(ApiError::validation(
                "partner only applies to data sharing consent: leave it out",
            )),
            (ConsentKind::Return, None) => Ok(ConsentPurpose::Return),
            (ConsentKind::FamilyContact, None) => Ok(ConsentPurpose::FamilyContact),
        }
    }
}

#[derive(InputObject, Debug, Clone)]
pub struct OutcomeInput {
    pub visited_on: NaiveDate,
    pub wellbeing: crate::types::Wellbeing,
    #[graphql(default)]
    pub concerns: Vec<ConcernArea>,
}

#[derive(InputObject, Debug, Clone)]
pub struct OpenPlanInput {
    /// The survivor (from `registerPerson`).
    pub person_id: ID,
    #[graphql(default_with = "\"standard-avr\".to_owned()")]
    pub template: String,
    #[graphql(default = 1)]
    pub template_version: u32,
    /// Defaults to you.
    pub case_worker: Option<ID>,
    /// ISO 3166 alpha-2 code of the country of return.
    pub origin_country: String,
    /// Follow-up visits in days after arrival, when the programme differs from the template.
    pub follow_up_offsets_days: Option<Vec<u32>>,
}

#[derive(InputObject, Debug, Clone)]
pub struct PersonInput {
    pub full_name: String,
    pub date_of_birth: Option<NaiveDate>,
    /// BCP 47 language tag, for example `fr` or `pt-BR`.
    pub preferred_language: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
}

#[derive(InputObject, Debug, Clone)]
pub struct PartyInput {
    pub display_name: String,
    pub email: String,
    pub role: crate::types::PartyRole,
    /// The organisation's id (see the `organisations` query).
    pub organisation: ID,
    /// ISO 3166 alpha-2 code.
    pub country: String,
    /// BCP 47 language tag reminders are written in, for example `en`, `fr`, `es`.
    pub language: String,
    /// IANA time zone reminders are timed in, for example `Europe/Paris`. Left out: the
    /// programme's time zone for a new party (`HOMEWARD_TIME_ZONE`), the party's own on an
    /// update.
    pub time_zone: Option<String>,
    pub supervisor: Option<ID>,
}

impl PartyInput {
    /// The details, with `time_zone` where the input leaves it out.
    pub fn into_domain(
        self,
        time_zone: impl FnOnce() -> String,
    ) -> ApiResult<homeward_workflows::party::PartyDetails> {
        Ok(homeward_workflows::party::PartyDetails {
            display_name: self.display_name,
            email: self.email,
            role: self.role.into(),
            organisation: crate::organisations::organisation_id(
                "organisation",
                &self.organisation,
            )?,
            country: self.country,
            language: self.language,
            time_zone: self.time_zone.unwrap_or_else(time_zone),
            supervisor: self
                .supervisor
                .as_ref()
                .map(|s| party_id("supervisor", s))
                .transpose()?,
        })
    }
}

/// Quiet hours as two `HH:MM` times in the party's time zone; equal times mean none.
#[derive(InputObject, Debug, Clone)]
pub struct QuietHoursInput {
    pub start: String,
    pub end: String,
}

#[derive(InputObject, Debug, Clone)]
pub struct ReminderSettingsInput {
    /// ISO 639-1 language code reminders are written in: `en`, `fr` and `es` have their own
    /// text, any other gets English.
    pub language: String,
    /// IANA time zone, for example `Africa/Lagos`.
    pub time_zone: String,
    /// Default 20:00–08:00.
    pub quiet_hours: Option<QuietHoursInput>,
    /// A five-field cron expression (minute hour day-of-month month day-of-week, with 0 or 7 =
    /// Sunday, or names: `Mon`) in the party's time zone, at most hourly; none for no digest.
    pub digest_schedule: Option<String>,
}

impl ReminderSettingsInput {
    /// Validation happens in the domain, which says what to fix.
    pub fn into_domain(self) -> homeward_workflows::party::ReminderSettingsInput {
        homeward_workflows::party::ReminderSettingsInput {
            language: self.language,
            time_zone: self.time_zone,
            digest_cron: self.digest_schedule,
            quiet_hours: self.quiet_hours.map(|q| (q.start, q.end)),
        }
    }
}
