//! Storage form of events: a stable type name, a schema version and a JSON payload.
//!
//! Events are always written at their current schema version. Older stored versions are upcast
//! on read, on the JSON, one version step at a time; they are never rewritten in the log. Golden
//! fixtures of every stored version (`workflows/tests/fixtures/`) must keep loading.

use serde_json::Value;
use thiserror::Error;

use crate::aggregate::DomainEvent;

#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("event {event_type} has schema version {version}, newer than this build knows ({current}); upgrade Homeward")]
    FromTheFuture {
        event_type: String,
        version: i16,
        current: i16,
    },
    #[error("event {event_type} v{version} cannot be upcast: {message}")]
    Upcast {
        event_type: String,
        version: i16,
        message: String,
    },
    #[error("event {event_type} does not decode: {source}")]
    Json {
        event_type: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The schema version every event type is written at today.
pub fn current_schema_version(event_type: &str) -> i16 {
    match event_type {
        // v2: `country` became `origin_country`, and `organisation` (a name) was added.
        // v3: `organisation` is an id.
        "plan_opened" => 3,
        // v2: `profile.organisation` is an id.
        "party_registered" | "party_updated" => 2,
        // v2: the registering `organisation` was added.
        "person_registered" => 2,
        _ => 1,
    }
}

/// Splits an event into its storage form: (type, schema version, payload).
///
/// # Panics
/// When the event's serde variant name is not its [`DomainEvent::event_type`]: such an event
/// would be stored under one name and decoded under another (or not at all). That is a defect
/// of the event type, caught by any test that encodes the variant.
pub fn encode<E: DomainEvent>(event: &E) -> (&'static str, i16, Value) {
    let event_type = event.event_type();
    let payload = match serde_json::to_value(event).expect("events serialise to JSON") {
        // `{"<variant name>": payload}`: the externally tagged form of a variant with data.
        Value::Object(mut map) if map.len() == 1 => {
            let payload = map.remove(event_type);
            payload.unwrap_or_else(|| {
                panic!(
                    "event_type() is {event_type:?} but the event serialises as {:?}",
                    map.keys().next()
                )
            })
        }
        // Unit variants serialise as their bare name and carry no payload.
        Value::String(name) => {
            assert_eq!(
                name, event_type,
                "event_type() differs from the serde name of the unit variant"
            );
            Value::Null
        }
        other => panic!(
            "event {event_type:?} must be an externally tagged enum variant, but serialises as {other}"
        ),
    };
    (event_type, current_schema_version(event_type), payload)
}

/// Decodes a stored event, upcasting older payloads first.
pub fn decode<E: DomainEvent>(
    event_type: &str,
    schema_version: i16,
    payload: Value,
) -> Result<E, DecodeError> {
    let payload = upcast(event_type, schema_version, payload)?;
    let tagged = Value::Object(serde_json::Map::from_iter([(
        event_type.to_owned(),
        payload,
    )]));
    serde_json::from_value(tagged).map_err(|source| DecodeError::Json {
        event_type: event_type.to_owned(),
        source,
    })
}

/// Decodes a stored event from its JSON text. The current version is parsed straight into the
/// event type, without an intermediate `Value`: this is the path rebuilds and stream loads take.
pub fn decode_str<E: DomainEvent>(
    event_type: &str,
    schema_version: i16,
    payload: &str,
) -> Result<E, DecodeError> {
    let json_error = |source| DecodeError::Json {
        event_type: event_type.to_owned(),
        source,
    };
    if schema_version == current_schema_version(event_type) {
        let mut tagged = String::with_capacity(payload.len() + event_type.len() + 6);
        tagged.push_str("{\"");
        tagged.push_str(event_type);
        tagged.push_str("\":");
        tagged.push_str(payload);
        tagged.push('}');
        serde_json::from_str(&tagged).map_err(json_error)
    } else {
        let value: Value = serde_json::from_str(payload).map_err(json_error)?;
        decode(event_type, schema_version, value)
    }
}

/// Brings a payload from `version` up to the current version of its type.
pub fn upcast(
    event_type: &str,
    mut version: i16,
    mut payload: Value,
) -> Result<Value, DecodeError> {
    let current = current_schema_version(event_type);
    if version > current {
        return Err(DecodeError::FromTheFuture {
            event_type: event_type.to_owned(),
            version,
            current,
        });
    }
    while version < current {
        payload =
            upcast_one(event_type, version, payload).map_err(|message| DecodeError::Upcast {
                event_type: event_type.to_owned(),
                version,
                message,
            })?;
        version += 1;
    }
    Ok(payload)
}

/// One step of the upcaster chain, keyed by (type, from version).
fn upcast_one(event_type: &str, from: i16, mut payload: Value) -> Result<Value, String> {
    match (event_type, from) {
        ("plan_opened", 1) => {
            let obj = payload
                .as_object_mut()
                .ok_or("plan_opened v1 payload is not an object")?;
            let country = obj
                .remove("country")
                .ok_or("plan_opened v1 has no country")?;
            obj.insert("origin_country".to_owned(), country);
            obj.entry("organisation")
                .or_insert_with(|| Value::String("unknown".to_owned()));
            Ok(payload)
        }
        ("plan_opened", 2) => {
            let obj = payload
                .as_object_mut()
                .ok_or("plan_opened v2 payload is not an object")?;
            name_to_id(obj.get_mut("organisation"))?;
            Ok(payload)
        }
        ("party_registered" | "party_updated", 1) => {
            name_to_id(
                payload
                    .get_mut("profile")
                    .and_then(|p| p.get_mut("organisation")),
            )?;
            Ok(payload)
        }
        // The registering organisation was not recorded: no organisation may plan for such a
        // person (the nil id belongs to none).
        ("person_registered", 1) => {
            let obj = payload
                .as_object_mut()
                .ok_or("person_registered v1 payload is not an object")?;
            obj.insert(
                "organisation".to_owned(),
                Value::String(uuid::Uuid::nil().to_string()),
            );
            Ok(payload)
        }
        _ => Err(format!("no upcaster from version {from}")),
    }
}

/// An organisation once named by free text becomes the id [`legacy_organisation`] gives that
/// name, so what shared a name before still shares it and nothing else does.
fn name_to_id(organisation: Option<&mut Value>) -> Result<(), String> {
    let value = organisation.ok_or("no organisation")?;
    let name = value.as_str().ok_or("organisation is not a name")?;
    *value = Value::String(legacy_organisation(name).to_string());
    Ok(())
}

/// The id of an organisation that events written before organisations had ids named `name`.
pub fn legacy_organisation(name: &str) -> crate::OrganisationId {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6f72_6761_6e69_7361_7469_6f6e_2d76_3100);
    crate::OrganisationId(uuid::Uuid::new_v5(&NAMESPACE, name.as_bytes()))
}
