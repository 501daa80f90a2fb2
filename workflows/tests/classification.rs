//! Every field of every stored event form has a class (personal or safe), and every class names
//! a field that exists: a new field is decided on before it is stored.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use homeward_workflows::classification::{class_of, covers, FIELDS};
use homeward_workflows::upcast::current_schema_version;
use serde_json::Value;

/// The leaf paths of a payload (`goals[].aim`); an empty list or object is a leaf of its own.
fn leaves(value: &Value, path: &str, out: &mut BTreeSet<String>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, inner) in map {
                leaves(inner, &join(key), out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                leaves(item, &format!("{path}[]"), out);
            }
        }
        _ if path.is_empty() => {}
        _ => {
            out.insert(path.to_owned());
        }
    }
}

/// (event type, leaf path) of every current-version golden fixture.
fn stored_fields() -> BTreeSet<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut fields = BTreeSet::new();
    for dir in fs::read_dir(root).expect("the fixtures") {
        for file in fs::read_dir(dir.expect("a directory").path()).expect("a fixture directory") {
            let text = fs::read_to_string(file.expect("a file").path()).expect("a fixture");
            let json: Value = serde_json::from_str(&text).expect("JSON");
            let event_type = json["event_type"].as_str().expect("a type").to_owned();
            let version = json["schema_version"].as_i64().expect("a version");
            if version != i64::from(current_schema_version(&event_type)) {
                continue;
            }
            let mut paths = BTreeSet::new();
            leaves(&json["payload"], "", &mut paths);
            fields.extend(paths.into_iter().map(|p| (event_type.clone(), p)));
        }
    }
    fields
}

#[test]
fn every_stored_field_is_marked_personal_or_safe() {
    let fields = stored_fields();
    assert!(fields.len() > 100, "{} fields", fields.len());
    let unclassified: Vec<String> = fields
        .iter()
        .filter(|(t, p)| class_of(t, p).is_none())
        .map(|(t, p)| format!("{t}: {p}"))
        .collect();
    assert!(
        unclassified.is_empty(),
        "fields with no class in workflows/src/classification.rs (is each personal or safe?): \
         {unclassified:#?}"
    );
}

#[test]
fn every_class_names_a_stored_field() {
    let fields = stored_fields();
    let stale: Vec<String> = FIELDS
        .iter()
        .filter(|(t, p, _)| !fields.iter().any(|(ft, fp)| ft == t && covers(p, fp)))
        .map(|(t, p, _)| format!("{t}: {p}"))
        .collect();
    assert!(stale.is_empty(), "classes of no stored field: {stale:#?}");
}

#[test]
fn a_new_field_without_a_class_is_found() {
    let mut paths = BTreeSet::new();
    leaves(
        &serde_json::json!({ "goals": [{ "area": "health", "aim": "Rest", "colour": "blue" }] }),
        "",
        &mut paths,
    );
    let unclassified: Vec<&String> = paths
        .iter()
        .filter(|p| class_of("goals_set", p).is_none())
        .collect();
    assert_eq!(unclassified, vec!["goals[].colour"]);
}

/// Every personal path holds a `Personal` field: replaced by sealed text it still decodes, and
/// encodes back to that text (a personal path typed as a plain value would refuse the text or
/// lose it, and the engine could not seal it).
#[test]
fn every_personal_field_can_be_held_sealed() {
    use homeward_workflows::classification::{for_each_at, personal_paths};
    use homeward_workflows::organisation::OrganisationEvent;
    use homeward_workflows::party::PartyEvent;
    use homeward_workflows::person::PersonEvent;
    use homeward_workflows::plan::PlanEvent;
    use homeward_workflows::upcast::{decode, encode};

    fn round_trip<E: homeward_workflows::DomainEvent>(event_type: &str, payload: Value) -> Value {
        let version = current_schema_version(event_type);
        let event: E = decode(event_type, version, payload)
            .unwrap_or_else(|e| panic!("{event_type} with sealed text: {e}"));
        encode(&event).2
    }

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut sealed_paths = 0;
    for dir in fs::read_dir(root).expect("the fixtures") {
        let dir = dir.expect("a directory").path();
        let stream = dir.file_name().unwrap().to_string_lossy().into_owned();
        for file in fs::read_dir(&dir).expect("a fixture directory") {
            let text = fs::read_to_string(file.expect("a file").path()).expect("a fixture");
            let json: Value = serde_json::from_str(&text).expect("JSON");
            let event_type = json["event_type"].as_str().expect("a type").to_owned();
            if json["schema_version"].as_i64() != Some(current_schema_version(&event_type).into()) {
                continue;
            }
            let mut payload = json["payload"].clone();
            for path in personal_paths(&event_type) {
                for_each_at(&mut payload, path, &mut |v| {
                    *v = Value::String(format!("hwenc2:{event_type}:{path}"));
                    sealed_paths += 1;
                });
            }
            let back = match stream.as_str() {
                "plan" => round_trip::<PlanEvent>(&event_type, payload.clone()),
                "person" => round_trip::<PersonEvent>(&event_type, payload.clone()),
                "party" => round_trip::<PartyEvent>(&event_type, payload.clone()),
                "organisation" => round_trip::<OrganisationEvent>(&event_type, payload.clone()),
                other => panic!("fixtures of an unknown stream {other}"),
            };
            assert_eq!(
                back, payload,
                "{event_type}: sealed text must come back as it was"
            );
        }
    }
    assert!(sealed_paths >= 15, "{sealed_paths} sealed values");
}
