//! Idempotency keys: a client that repeats a mutation with the same `idempotencyKey` (a retry
//! after a lost answer) gets the first result, and nothing is done twice.
//!
//! A key belongs to the party that sent it and stands for one request: the operation, its
//! target (the plan or party it changes) and its arguments. The same key with the same request
//! returns the first result, for a creating mutation the id it created; with any other request
//! it is refused (`IDEMPOTENCY_KEY_REUSED`, saying what differs) and nothing is written. Keys
//! are remembered for a while (24 hours by default), stored as keyed hashes (HMAC) with a keyed
//! fingerprint of the request and its command id: never what the client sent, which may hold
//! personal data.
//!
//! The command id is derived from the party, the key and the fingerprint, and so is the id of
//! anything a keyed request creates. The key is recorded in the same transaction as the
//! request's events, so a fresh key costs no round trip of its own: a repeat of the request
//! finds its command's events (the first result), and another request with the key finds the
//! key taken and writes nothing. A request that is refused, or that changes nothing, writes
//! nothing and leaves its key free.

use std::sync::Arc;

use async_graphql::Context;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use homeward_engine::CommandMeta;
use homeward_store::idempotency::{IdempotencyKeys, KeyClaim, KeyRecord};
use homeward_workflows::PartyId;
use sha2::Sha256;
use uuid::Uuid;

use crate::inputs::MAX_IDEMPOTENCY_KEY;
use crate::{services, viewer, ApiError, ApiResult, Code};

/// How long a key is remembered by default.
pub const DEFAULT_RETENTION_HOURS: i64 = 24;

/// Namespace of command ids (and created ids) derived from keys.
const NAMESPACE: Uuid = Uuid::from_u128(0x6b1f_3c2e_9a4d_4e8b_8f57_2d1c_0a9e_b3f4);

/// Where keys are kept and how they are hashed.
#[derive(Clone)]
pub struct Idempotency {
    pub keys: Arc<dyn IdempotencyKeys>,
    /// The HMAC key for key hashes and fingerprints (a server secret shared by the replicas).
    pub secret: Arc<[u8]>,
    pub retention: chrono::Duration,
}

impl std::fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idempotency")
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl Idempotency {
    fn mac(&self, parts: &[&[u8]]) -> Vec<u8> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes a key of any length");
        for part in parts {
            // Length-prefixed, so that no two different requests hash alike.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }
}

/// How a mutation goes ahead: with or without an idempotency key.
#[derive(Debug)]
pub(crate) enum Begun {
    Unkeyed,
    Keyed(KeyClaim),
}

impl Begun {
    /// The command's metadata: its command id derived from the key when there is one.
    pub(crate) fn meta(&self, actor: PartyId) -> CommandMeta {
        let meta = CommandMeta::new(actor);
        match self {
            Self::Keyed(claim) => meta.with_idempotency_key(claim.clone()),
            Self::Unkeyed => meta,
        }
    }

    /// The id of what a creating request creates: derived from the key when there is one, so
    /// that a repeat creates nothing new.
    pub(crate) fn new_id(&self) -> Uuid {
        match self {
            Self::Keyed(claim) => Uuid::new_v5(&NAMESPACE, claim.record.command_id.as_bytes()),
            Self::Unkeyed => Uuid::new_v4(),
        }
    }

    /// The request's outcome, or the refusal of its key when the key was first used for another
    /// request: that refusal comes first, whatever else stopped this request.
    pub(crate) async fn finish<T>(&self, ctx: &Context<'_>, outcome: ApiResult<T>) -> ApiResult<T> {
        let (Self::Keyed(claim), Err(e)) = (self, &outcome) else {
            return outcome;
        };
        if e.code == Code::Internal {
            return outcome;
        }
        let idempotency = &services(ctx).idempotency;
        let now = &claim.record;
        match idempotency
            .keys
            .find_key(now.party, &now.key_hash, claim.not_before)
            .await?
        {
            Some(first) if first.fingerprint != now.fingerprint => Err(reused(&first, now)),
            _ => outcome,
        }
    }
}

/// Reads the request's idempotency key, if it has one: `target` is the stream the mutation
/// changes (`None` for one that creates).
pub(crate) fn begin(
    ctx: &Context<'_>,
    target: Option<&str>,
    key: Option<&str>,
) -> ApiResult<Begun> {
    let Some(key) = key else {
        return Ok(Begun::Unkeyed);
    };
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(ApiError::validation(format!(
            "idempotencyKey must be 1 to {MAX_IDEMPOTENCY_KEY} characters"
        )));
    }
    homeward_workflows::text::check_characters(
        "idempotencyKey",
        key,
        homeward_workflows::text::Lines::One,
    )
    .map_err(|e| ApiError::validation(e.to_string()))?;
    let party = viewer(ctx)?.party.0;
    let services = services(ctx);
    let idempotency = &services.idempotency;
    let field = ctx.field();
    let operation = field.name().to_owned();
    let arguments = field
        .arguments()
        .map_err(|e| ApiError::validation(e.message))?;
    let mut request = String::new();
    for (name, value) in arguments {
        if name.as_str() == "idempotencyKey" {
            continue;
        }
        request.push_str(name.as_str());
        request.push('=');
        canonical(&value.into_json().unwrap_or_default(), &mut request);
        request.push('\n');
    }
    let key_hash = idempotency.mac(&[b"key", party.as_bytes(), key.as_bytes()]);
    let fingerprint = idempotency.mac(&[
        b"request",
        operation.as_bytes(),
        target.unwrap_or_default().as_bytes(),
        request.as_bytes(),
    ]);
    let mut command = key_hash.clone();
    command.extend_from_slice(&fingerprint);
    let now: DateTime<Utc> = services.clock.now();
    Ok(Begun::Keyed(KeyClaim {
        record: KeyRecord {
            party,
            key_hash,
            operation,
            target: target.map(str::to_owned),
            fingerprint,
            command_id: Uuid::new_v5(&NAMESPACE, &command),
            created_at: now,
        },
        not_before: now - idempotency.retention,
    }))
}

/// What differs between the first request with a key and this one.
fn reused(first: &KeyRecord, now: &KeyRecord) -> ApiError {
    let what = if first.operation != now.operation {
        format!("for {}", first.operation)
    } else if first.target != now.target {
        match first.target.as_deref().and_then(|t| t.split_once('-')) {
            Some((kind, id)) => format!("for {} on another {kind} ({id})", first.operation),
            None => format!("for {} on another target", first.operation),
        }
    } else {
        format!("for {} with other arguments", first.operation)
    };
    ApiError::new(
        Code::IdempotencyKeyReused,
        format!(
            "this idempotencyKey was already used {what}; nothing was changed. Send a new key \
             with each new request, and the same key only to repeat the same request"
        ),
    )
}

/// Writes a JSON value with object keys sorted, so that the same arguments give the same text
/// however the client ordered them.
fn canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push(':');
                canonical(v, out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a = serde_json::json!({ "b": 1, "a": { "y": [1, { "d": 2, "c": 3 }], "x": "s" } });
        let b = serde_json::json!({ "a": { "x": "s", "y": [1, { "c": 3, "d": 2 }] }, "b": 1 });
        let (mut left, mut right) = (String::new(), String::new());
        canonical(&a, &mut left);
        canonical(&b, &mut right);
        assert_eq!(left, right);
        assert_eq!(left, r#"{"a":{"x":"s","y":[1,{"c":3,"d":2}]},"b":1}"#);
    }
}
