//! The server around the schema: health checks, GraphiQL, task updates over WebSocket, and a
//! graceful stop.
#![allow(clippy::unwrap_used)]

use homeward::app::Settings;
use homeward_tests::api::TestApi;
use serde_json::json;

/// The headers every response must carry, whatever answered it.
fn assert_guarded(what: &str, response: &reqwest::Response, https: bool) {
    let headers = response.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(headers["referrer-policy"], "no-referrer", "{what}");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert_eq!(
        headers
            .get("strict-transport-security")
            .map(|v| v.to_str().unwrap()),
        https.then_some("max-age=31536000"),
        "{what}"
    );
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_hsts_once_public_over_https() {
    for https in [false, true] {
        let api = TestApi::start_with(|s| Settings {
            public_url: https.then(|| "https://homeward.example.org".to_owned()),
            ..s
        })
        .await;
        let url = |path: &str| format!("http://{}{path}", api.addr);
        let responses = [
            (
                "health",
                api.http.get(url("/healthz")).send().await.unwrap(),
            ),
            (
                "GraphiQL",
                api.http.get(url("/graphql")).send().await.unwrap(),
            ),
            (
                "an unknown path",
                api.http.get(url("/nope")).send().await.unwrap(),
            ),
            (
                "a partner link",
                api.http.get(url("/l/AAAA.BBBB")).send().await.unwrap(),
            ),
            (
                "a query",
                api.http
                    .post(url("/graphql"))
                    .bearer_auth(&api.admin)
                    .json(&json!({ "query": "{ me { id } }" }))
                    .send()
                    .await
                    .unwrap(),
            ),
            (
                "a refused query",
                api.http
                    .post(url("/graphql"))
                    .json(&json!({ "query": "{ me { id } }" }))
                    .send()
                    .await
                    .unwrap(),
            ),
        ];
        for (what, response) in &responses {
            assert_guarded(what, response, https);
        }
        api.stop().await;
    }
}

#[tokio::test]
async fn graphiql_is_off_unless_listening_on_loopback_only_or_turned_on() {
    for (listen, graphiql, served) in [
        ("127.0.0.1:0", None, true),
        ("127.0.0.1:0", Some(false), false),
        ("0.0.0.0:0", None, false),
        ("0.0.0.0:0", Some(true), true),
    ] {
        let api = TestApi::start_with(|s| Settings {
            listen: listen.parse().unwrap(),
            graphiql,
            ..s
        })
        .await;
        let port = api.addr.port();
        let get = |path: &str| {
            api.http
                .get(format!("http://127.0.0.1:{port}{path}"))
                .send()
        };
        let page = get("/graphql").await.unwrap();
        let asset = get("/graphiql/3.8.3/start.js").await.unwrap();
        let what = format!("{listen} with HOMEWARD_GRAPHIQL {graphiql:?}");
        if served {
            assert_eq!(page.status(), 200, "{what}");
            assert_eq!(asset.status(), 200, "{what}");
        } else {
            assert_eq!(page.status(), 404, "{what}");
            assert_eq!(asset.status(), 404, "{what}");
            assert!(
                page.text()
                    .await
                    .unwrap()
                    .contains("HOMEWARD_GRAPHIQL=true"),
                "{what}"
            );
        }
        // The API answers either way.
        let (status, _) = api.post(Some(&api.admin), "{ me { id } }", json!({})).await;
        assert_eq!(status, 200, "{what}");
        api.stop().await;
    }
}

#[tokio::test]
async fn health_checks_and_graphiql_answer() {
    let api = TestApi::start().await;
    let get = |path: &str| api.http.get(format!("http://{}{path}", api.addr)).send();
    let health = get("/healthz").await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = get("/readyz").await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.unwrap(), "ready");
    let graphiql = get("/graphql").await.unwrap();
    assert_eq!(graphiql.status(), 200);
    let csp = graphiql.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
    let page = graphiql.text().await.unwrap();
    assert!(page.contains("id=\"graphiql\""));
    // Everything the page loads comes from this server: it works without internet.
    assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("//unpkg"));
    let assets: Vec<&str> = page
        .split(['"', '\''])
        .filter(|s| s.starts_with("/graphiql/"))
        .collect();
    assert_eq!(assets.len(), 5, "{assets:?}");
    for path in assets {
        let asset = get(path).await.unwrap();
        assert_eq!(asset.status(), 200, "{path}");
        let kind = asset.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(
            kind.starts_with("text/javascript") || kind.starts_with("text/css"),
            "{path}: {kind}"
        );
        // reqwest does not decompress here: a gzipped asset arrives as sent.
        let bytes = asset.bytes().await.unwrap();
        assert!(bytes.len() > 100, "{path}");
        if path.ends_with("start.js") {
            let script = String::from_utf8(bytes.to_vec()).unwrap();
            assert!(
                script.contains("Authorization"),
                "the headers editor offers the token"
            );
            assert!(script.contains("shouldPersistHeaders: false"));
        } else {
            assert_eq!(&bytes[..2], &[0x1f, 0x8b], "{path} is gzipped");
        }
    }
    assert_eq!(get("/graphiql/3.8.3/nope.js").await.unwrap().status(), 404);
    api.stop().await;
}

#[tokio::test]
async fn a_partner_hears_of_the_task_assigned_to_her_as_it_happens() {
    let api = TestApi::start().await;
    let worker = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let partner = api.party("PARTNER_CONTACT", "Grace", "Hope Lagos").await;
    let mut updates = api
        .subscribe(
            &partner.token,
            "subscription { taskUpdates { change planId key task { status title } } }",
            json!({}),
        )
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    let person = api.register_person(&worker.token, "Joy N.").await;
    let plan = api
        .data(&worker.token, "mutation($p: ID!) { openPlan(input: { personId: $p, originCountry: \"NG\" }) { plan { id } } }", json!({ "p": person }))
        .await["openPlan"]["plan"]["id"]
        .clone();
    api.data(
        &worker.token,
        "mutation($id: ID!, $who: ID!) { assignStep(planId: $id, step: \"origin_contact\", assignee: $who) { version } }",
        json!({ "id": plan, "who": partner.id }),
    )
    .await;
    let update = updates.next().await;
    assert_eq!(update["taskUpdates"]["change"], "CHANGED");
    assert_eq!(update["taskUpdates"]["planId"], plan);
    assert_eq!(update["taskUpdates"]["key"], "origin_contact");
    assert_eq!(update["taskUpdates"]["task"]["status"], "READY");

    // An admin's subscription to a plan's events is answered as if there were no such plan;
    // the partner's (who sees the plan) stands, for the events of her steps.
    let mut refused = api
        .subscribe(
            &api.admin,
            "subscription($id: ID!) { planEvents(planId: $id) { version } }",
            json!({ "id": plan }),
        )
        .await;
    let message = refused.next_message().await;
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(
        message["payload"]["data"],
        serde_json::Value::Null,
        "{message}"
    );
    assert_eq!(
        message["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{message}"
    );
    let mut hers = api
        .subscribe(
            &partner.token,
            "subscription($id: ID!) { planEvents(planId: $id) { version type } }",
            json!({ "id": plan }),
        )
        .await;
    assert!(
        hers.stays_quiet(std::time::Duration::from_millis(500))
            .await
    );
    api.data(
        &worker.token,
        "mutation($id: ID!) { prioritiseStep(planId: $id, step: \"origin_contact\", priority: URGENT) { version } }",
        json!({ "id": plan }),
    )
    .await;
    assert_eq!(hers.next().await["planEvents"]["type"], "step_prioritised");
    api.stop().await;
}

#[tokio::test]
async fn stopping_finishes_cleanly_and_closes_the_port() {
    let api = TestApi::start().await;
    let addr = api.addr;
    assert!(api
        .gql(&api.admin, "{ me { id } }", json!({}))
        .await
        .get("errors")
        .is_none());
    api.stop().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// A replica started with another master key than the one the database's data is sealed under,
/// or another search key than its index was built with, stops before serving anything, and
/// says which setting is wrong.
#[tokio::test]
async fn a_replica_with_another_master_key_does_not_start() {
    let api = TestApi::start().await;
    let refusal = |master: String, search: String| {
        let settings = homeward::app::Settings {
            no_scheduler: true,
            master_key: Some(master.into()),
            search_key: Some(search.into()),
            outbox_dir: std::env::temp_dir()
                .join(format!("homeward-outbox-{}", uuid::Uuid::new_v4())),
            ..homeward::app::Settings::new(api.db.url.clone(), "127.0.0.1:0".parse().unwrap())
        };
        let clock = api.clock.clone();
        async move {
            match homeward::app::Application::build_with_clock(settings, clock).await {
                Ok(_) => panic!("a replica with another key started"),
                Err(refused) => refused.to_string(),
            }
        }
    };
    let (master, search) = (
        homeward_tests::TEST_MASTER_KEY.to_owned(),
        homeward_tests::TEST_SEARCH_KEY.to_owned(),
    );
    let message = refusal(
        homeward_engine::keys::MasterKey::generate().to_base64(),
        search,
    )
    .await;
    assert!(
        message.contains("HOMEWARD_MASTER_KEY") && message.contains("key check value"),
        "{message}"
    );
    // Nor one with the right master key and another search key: its terms would find nobody.
    let message = refusal(
        master,
        homeward_engine::search::SearchKey::generate().to_base64(),
    )
    .await;
    assert!(
        message.contains("HOMEWARD_SEARCH_KEY") && message.contains("key check value"),
        "{message}"
    );
    // The replica with the right keys starts.
    let _same = api.second_replica().await;
}

/// When PostgreSQL ends the server's connections (a restart, a failover, a network failure),
/// the reads that follow are answered: a pooled connection the server ended is dropped by the
/// pool, and a read that found it gone runs once more on another.
#[tokio::test]
async fn reads_are_answered_after_postgresql_ended_every_connection() {
    let api = TestApi::start().await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let plan = api.open_plan(&amina.token, "Joy N.").await;
    let read = "query($id: ID!) { plan(id: $id) { id status person { fullName }
        steps { key title } }
        planHistory(id: $id, first: 5) { edges { node { __typename } } }
        tasks(first: 5) { edges { node { key } } } }";
    let variables = json!({ "id": plan });
    // Several reads at once, so that the pool holds several connections.
    let reads: Vec<_> = (0..4)
        .map(|_| api.gql(&amina.token, read, variables.clone()))
        .collect();
    for answer in futures::future::join_all(reads).await {
        assert!(answer.get("errors").is_none(), "{answer}");
    }

    // As a restart would: every connection to the database is ended.
    let ended = api.db.end_connections_that_ran("%").await;
    assert!(ended >= 4, "the server's connections were ended: {ended}");
    for round in 0..6 {
        let answer = api.gql(&amina.token, read, variables.clone()).await;
        assert!(answer.get("errors").is_none(), "read {round}: {answer}");
        assert_eq!(answer["data"]["plan"]["person"]["fullName"], "Joy N.");
    }
}

/// The same for writes outside the log (tokens revoked, here): a transaction whose pooled
/// connection the server ended fails at `BEGIN`, before anything ran, and starts again on a
/// checked connection; no request is refused for it.
#[tokio::test]
async fn writes_are_answered_after_postgresql_ended_every_connection() {
    let api = TestApi::start().await;
    let mut workers = Vec::new();
    for n in 0..10 {
        let name = format!("Worker {n}");
        workers.push(api.party("SOCIAL_WORKER", &name, "Safe Passage").await);
    }
    let revoke = "mutation($p: ID!) { revokeTokens(party: $p) }";
    // Several at once, so that the pool holds several connections used just now.
    let first: Vec<_> = workers[..4]
        .iter()
        .map(|w| api.gql(&api.admin, revoke, json!({ "p": w.id })))
        .collect();
    for answer in futures::future::join_all(first).await {
        assert_eq!(answer["data"]["revokeTokens"], 1, "{answer}");
    }

    let ended = api.db.end_connections_that_ran("%").await;
    assert!(ended >= 4, "the server's connections were ended: {ended}");
    for worker in &workers[4..] {
        let answer = api.gql(&api.admin, revoke, json!({ "p": worker.id })).await;
        assert_eq!(answer["data"]["revokeTokens"], 1, "{answer}");
        let refused = api
            .post(Some(&worker.token), "{ me { id } }", json!({}))
            .await;
        assert_eq!(
            refused.0, 401,
            "a revoked token is refused: {:?}",
            refused.1
        );
    }
}
