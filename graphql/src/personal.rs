//! Survivors' data as the API shows it: opened here, one field at a time, for a viewer the
//! resolver has already found entitled to it. A value that cannot be opened is an `UNREADABLE`
//! error for that field alone; an erased person's text reads `[erased]`, other values null.

use async_graphql::Context;
use homeward_engine::vault::{Opened, Vault, ERASED};
use homeward_store::person_keys::PersonKey;
use homeward_workflows::classification::{for_each_at, personal_paths};
use homeward_workflows::Personal;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::{loaders, services, ApiResult};

/// Where each personal value was recorded: its path in the event that recorded it, which its
/// seal is bound to.
pub(crate) mod field {
    pub const STEP_TITLE: &str = "step.title";
    pub const REASON: &str = "reason";
    pub const OVERRIDE_REASON: &str = "override_reason";
    pub const GOAL_AIM: &str = "goals[].aim";
    pub const WELLBEING: &str = "outcome.wellbeing";
    pub const CONCERNS: &str = "outcome.concerns";
    pub const FULL_NAME: &str = "full_name";
    pub const DATE_OF_BIRTH: &str = "date_of_birth";
    pub const PREFERRED_LANGUAGE: &str = "preferred_language";
    pub const PHONE: &str = "contact.phone";
    pub const EMAIL: &str = "contact.email";
    pub const ADDRESS: &str = "contact.address";
    pub const NOTE: &str = "note.text";
    pub const HOLD_REASON: &str = "hold.reason";
}

/// A personal value of `stream`, opened with what the store keeps of its person's key now.
pub(crate) async fn open<T: DeserializeOwned + Clone>(
    ctx: &Context<'_>,
    value: &Personal<T>,
    stream: &str,
    field: &str,
) -> ApiResult<Opened<T>> {
    open_known(ctx, value, stream, field, None).await
}

/// What the store kept of a person's key at the read this operation made of her (`None`: she
/// never had one).
#[derive(Debug, Clone)]
pub(crate) struct KeyAsRead {
    pub person: Uuid,
    pub kept: Option<PersonKey>,
}

/// As [`open`], with `known` (a key as this operation already read it) used for a value
/// sealed for its person, instead of asking the store again.
pub(crate) async fn open_known<T: DeserializeOwned + Clone>(
    ctx: &Context<'_>,
    value: &Personal<T>,
    stream: &str,
    field: &str,
    known: Option<&KeyAsRead>,
) -> ApiResult<Opened<T>> {
    let person = Vault::sealed_for(value);
    let kept = match (person, known) {
        (Some(person), Some(known)) if known.person == person => known.kept.clone(),
        (Some(person), _) => loaders(ctx).person_key(person).await?,
        (None, _) => None,
    };
    let opened = services(ctx).vault.open_with(value, stream, field, kept)?;
    // Shown: recorded for the audit, before the response leaves.
    if let (Some(person), Opened::Value(_)) = (person, &opened) {
        loaders(ctx).access.note(person, field, &operation(ctx));
    }
    Ok(opened)
}

/// The operation a field is read through: its root field (`plan`, `tasks`, `personRecord`).
fn operation(ctx: &Context<'_>) -> String {
    let mut node = ctx.path_node;
    let mut root = None;
    while let Some(n) = node {
        if let async_graphql::QueryPathSegment::Name(name) = n.segment {
            root = Some(name);
        }
        node = n.parent.copied();
    }
    root.unwrap_or("graphql").to_owned()
}

/// A personal text of `stream`, opened (`[erased]` once the person is); with `known`, her key
/// as this operation already read it, when it did.
pub(crate) async fn text(
    ctx: &Context<'_>,
    value: &Personal<String>,
    stream: &str,
    field: &str,
    known: Option<&KeyAsRead>,
) -> ApiResult<String> {
    Ok(open_known(ctx, value, stream, field, known).await?.text())
}

/// A step's title, opened; once the person is erased, a step from the plan's template keeps
/// the template's title (it never was hers), a step added for her reads `[erased]`.
pub(crate) async fn step_title(
    ctx: &Context<'_>,
    title: &Personal<String>,
    stream: &str,
    template: &homeward_workflows::plan::TemplateRef,
    key: &homeward_workflows::StepKey,
    kind: homeward_workflows::plan::StepKind,
    known: Option<&KeyAsRead>,
) -> ApiResult<String> {
    Ok(
        match open_known(ctx, title, stream, field::STEP_TITLE, known).await? {
            Opened::Value(title) => title,
            Opened::Erased => homeward_workflows::template::template_title(template, key, kind)
                .unwrap_or_else(|| ERASED.to_owned()),
        },
    )
}

/// A personal text kept in a read model's column, opened.
pub(crate) async fn stored_text(
    ctx: &Context<'_>,
    stored: &str,
    stream: &str,
    field: &str,
) -> ApiResult<String> {
    text(ctx, &Vault::stored(stored), stream, field, None).await
}

/// A personal value of `stream`, opened; `None` once the person is erased. `known` as for
/// [`text`].
pub(crate) async fn value<T: DeserializeOwned + Clone>(
    ctx: &Context<'_>,
    value: &Personal<T>,
    stream: &str,
    field: &str,
    known: Option<&KeyAsRead>,
) -> ApiResult<Option<T>> {
    Ok(open_known(ctx, value, stream, field, known).await?.value())
}

/// Opens every personal field of an event's payload in place: each becomes its value, or
/// `[erased]` once the person is erased.
pub(crate) async fn open_payload(
    ctx: &Context<'_>,
    event_type: &str,
    stream: &str,
    payload: &mut serde_json::Value,
) -> ApiResult<()> {
    for path in personal_paths(event_type) {
        let mut sealed = Vec::new();
        for_each_at(payload, path, &mut |v| sealed.push(v.clone()));
        let mut opened = Vec::with_capacity(sealed.len());
        for value in sealed {
            let value: Personal<serde_json::Value> =
                serde_json::from_value(value).map_err(|e| crate::ApiError::internal(&e))?;
            opened.push(match open(ctx, &value, stream, path).await? {
                Opened::Value(v) => v,
                Opened::Erased => serde_json::Value::String(ERASED.to_owned()),
            });
        }
        let mut opened = opened.into_iter();
        for_each_at(payload, path, &mut |v| {
            if let Some(plain) = opened.next() {
                *v = plain;
            }
        });
    }
    Ok(())
}
