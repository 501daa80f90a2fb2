//! Finding a survivor by name and date of birth through the blind index: accents and case
//! folded, the name's parts in any order, only in one's own organisation, never through
//! plaintext; corrections move her terms and erasure removes them.
#![allow(clippy::unwrap_used)]

use homeward_tests::api::{error_code, Person, TestApi};
use serde_json::json;

const SEARCH: &str = "query($n: String, $d: NaiveDate) { searchPersons(name: $n, dateOfBirth: $d) {
    id fullName } }";

async fn register(api: &TestApi, worker: &Person, name: &str, born: Option<&str>) -> String {
    api.data(
        &worker.token,
        "mutation($n: String!, $d: NaiveDate) { registerPerson(input: { fullName: $n, dateOfBirth: $d }) }",
        json!({ "n": name, "d": born }),
    )
    .await["registerPerson"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn found(
    api: &TestApi,
    worker: &Person,
    name: Option<&str>,
    born: Option<&str>,
) -> Vec<String> {
    let body = api
        .data(&worker.token, SEARCH, json!({ "n": name, "d": born }))
        .await;
    let mut names: Vec<String> = body["searchPersons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["fullName"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_social_worker_finds_her_organisations_survivors_by_folded_name_parts_and_birth_date() {
    let api = TestApi::start().await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let sade = api.party("SUPERVISOR", "Sade", "Safe Passage").await;
    let olu = api.party("SOCIAL_WORKER", "Olu", "Other Shelter").await;
    let luc = api.party("GOVERNMENT_LIAISON", "Luc", "Prefecture").await;
    let ngozi = register(&api, &amina, "Ngozi Adébáyọ̀", Some("1999-04-12")).await;
    register(&api, &amina, "Ngozi Okafor", None).await;
    register(&api, &olu, "Ngozi Adebayo", Some("1999-04-12")).await;

    let mine = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        found(&api, &amina, Some("ADEBAYO  ngozi"), None).await,
        mine(&["Ngozi Adébáyọ̀"]),
        "any order, accents and case folded, one organisation"
    );
    assert_eq!(
        found(&api, &amina, Some("ngozi"), None).await,
        mine(&["Ngozi Adébáyọ̀", "Ngozi Okafor"])
    );
    assert_eq!(
        found(&api, &amina, Some("Ngozi"), Some("1999-04-12")).await,
        mine(&["Ngozi Adébáyọ̀"])
    );
    assert_eq!(
        found(&api, &sade, None, Some("1999-04-12")).await,
        mine(&["Ngozi Adébáyọ̀"]),
        "by date of birth alone, for the whole case team"
    );
    assert!(
        found(&api, &amina, Some("Ade"), None).await.is_empty(),
        "whole parts only"
    );
    assert_eq!(
        found(&api, &olu, Some("adebayo"), None).await,
        mine(&["Ngozi Adebayo"]),
        "the other organisation finds only its own"
    );
    for (vars, code) in [
        (json!({}), "VALIDATION"),
        (json!({ "n": " - " }), "VALIDATION"),
        (json!({ "n": "a b c d e f g h i j k l m" }), "VALIDATION"),
        (json!({ "n": "x".repeat(201) }), "VALIDATION"),
        (json!({ "d": "1999-02-30" }), "VALIDATION"),
    ] {
        let body = api.gql(&amina.token, SEARCH, vars.clone()).await;
        assert_eq!(error_code(&body), Some(code), "{vars}: {body}");
    }
    let body = api.gql(&luc.token, SEARCH, json!({ "n": "ngozi" })).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");

    // Nothing of her name is stored where it could be searched: only keyed hashes.
    let terms: Vec<Vec<u8>> = api
        .db
        .backend()
        .export_kept()
        .await
        .unwrap()
        .person_keys
        .into_iter()
        .flat_map(|k| k.terms)
        .collect();
    assert_eq!(
        terms.len(),
        3 + 2 + 3,
        "a term per name part and date of birth"
    );
    // Keyed hashes of 128 bits.
    assert!(terms.iter().all(|t| t.len() == 16), "{terms:?}");
    // (SQLite's LIKE folds ASCII case, as ILIKE does.)
    let plain = api
        .db
        .count(if homeward_tests::servers_on_sqlite() {
            "SELECT count(*) FROM events WHERE payload LIKE '%ngozi%' OR payload LIKE '%okafor%'"
        } else {
            "SELECT count(*) FROM events WHERE payload::text ILIKE '%ngozi%' \
             OR payload::text ILIKE '%okafor%'"
        })
        .await;
    assert_eq!(plain, 0);

    // A corrected name is found by its new parts only; a corrected date of birth keeps the
    // name (sealed in the record, opened to index it) findable.
    let correct = "mutation($p: ID!, $i: PersonCorrectionInput!) { updatePerson(personId: $p,
        input: $i, reason: \"Spelling\") { version } }";
    api.data(
        &amina.token,
        correct,
        json!({ "p": ngozi, "i": { "fullName": "Ngozi Adéyẹmí" } }),
    )
    .await;
    assert!(found(&api, &amina, Some("adebayo"), None).await.is_empty());
    assert_eq!(
        found(&api, &amina, Some("adeyemi ngozi"), Some("1999-04-12")).await,
        mine(&["Ngozi Adéyẹmí"])
    );
    api.data(
        &amina.token,
        correct,
        json!({ "p": ngozi, "i": { "dateOfBirth": "1999-04-13" } }),
    )
    .await;
    assert!(found(&api, &amina, None, Some("1999-04-12"))
        .await
        .is_empty());
    assert_eq!(
        found(&api, &amina, Some("Adeyemi"), Some("1999-04-13")).await,
        mine(&["Ngozi Adéyẹmí"])
    );

    // Erasure takes her terms with her key.
    api.data(
        &sade.token,
        "mutation($p: ID!) { erasePerson(personId: $p, reason: SURVIVOR_REQUEST) { erasedAt } }",
        json!({ "p": ngozi }),
    )
    .await;
    assert_eq!(
        found(&api, &amina, Some("ngozi"), None).await,
        mine(&["Ngozi Okafor"])
    );
    let ngozi = uuid::Uuid::parse_str(&ngozi).unwrap();
    let kept = api.db.backend().export_kept().await.unwrap();
    let left = kept.person_keys.iter().find(|k| k.person == ngozi).unwrap();
    assert_eq!(left.terms, Vec::<Vec<u8>>::new());
}
