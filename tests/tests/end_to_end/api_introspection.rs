//! Standard clients read the schema: the introspection queries that GraphiQL, Apollo and
//! graphql-codegen (graphql-js) and gql (graphql-core) send run within the limits for an
//! authenticated caller, while data queries keep their depth limit.
#![allow(clippy::unwrap_used)]

use homeward_tests::api::TestApi;
use serde_json::json;

const GRAPHIQL: &str = include_str!("../../fixtures/introspection-graphiql.graphql");
const GQL: &str = include_str!("../../fixtures/introspection-gql.graphql");

#[tokio::test]
async fn the_standard_introspection_queries_work_and_data_queries_keep_their_limits() {
    let api = TestApi::start().await;
    let worker = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    for (client, query) in [("graphiql", GRAPHIQL), ("gql", GQL)] {
        let body = api.gql(&worker.token, query, json!({})).await;
        assert!(body.get("errors").is_none(), "{client}: {body}");
        let types = body["data"]["__schema"]["types"].as_array().unwrap();
        assert!(
            types.iter().any(|t| t["name"] == "Plan"),
            "{client}: the schema's types"
        );
        assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
    }
    // Not without a token.
    let (status, _) = api.post(None, GRAPHIQL, json!({})).await;
    assert_eq!(status, 401);
    // A query that also reads data is a data query: the introspection part does not lift its
    // depth limit.
    let mixed = GRAPHIQL.replacen("__schema {", "me { id } __schema {", 1);
    let body = api.gql(&worker.token, &mixed, json!({})).await;
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("nested too deep"), "{body}");
}
