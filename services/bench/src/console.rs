//! `homeward-bench --phases console`: the web console's pages against the API, in one run.
//!
//! A social worker's plan is built through the API to 50 steps and at least 200 history
//! entries, with 25 tasks of hers in the inbox. Then, through the real server over HTTP:
//! - the plan's page, 4 clients, three rounds of the measurement's seconds: its rate and
//!   p50/p95/p99 latency (target: p95 under 100 ms), and its weight (target: under 100 KB,
//!   htmx apart);
//! - the inbox page against the GraphQL `tasks` query with the same fields, 16 clients, three
//!   rounds alternated (target: the page at least 0.5 times the query's rate);
//! - the plan's page in headless Chromium: DOMContentLoaded of five loads (target: under 1 s).
//!
//! Results are printed as Markdown for BENCHMARKS.md.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{json, Value};

use crate::api::{guarded, start_server};

const PAGE_CLIENTS: usize = 4;
const INBOX_CLIENTS: usize = 16;
const ROUNDS: usize = 3;

const INBOX_QUERY: &str = "query($first: Int) { tasks(first: $first) {
  pageInfo { hasNextPage endCursor }
  nodes { planId key kind title status priority dueAt followUpOn overdue documentStatus
          assignee { displayName } plan { person { fullName } } } } }";

struct Measured {
    rate: f64,
    p50: Duration,
    p95: Duration,
    p99: Duration,
}

/// `clients` loops sending `request` for `duration`; the rate and latency percentiles.
async fn measure(
    clients: usize,
    duration: Duration,
    request: impl Fn() -> reqwest::RequestBuilder + Clone + Send + 'static,
) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let deadline = started + duration;
    let loops: Vec<_> = (0..clients)
        .map(|_| {
            let request = request.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let began = Instant::now();
                    let response = request().send().await?;
                    anyhow::ensure!(
                        response.status().is_success(),
                        "answered {}",
                        response.status()
                    );
                    response.bytes().await?;
                    latencies.push(began.elapsed());
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for result in futures::future::join_all(loops).await {
        latencies.extend(result??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pick = |q: f64| {
        let i = ((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(i).copied().unwrap_or_default()
    };
    Ok(Measured {
        rate: latencies.len() as f64 / elapsed,
        p50: pick(0.50),
        p95: pick(0.95),
        p99: pick(0.99),
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Sends a GraphQL request that must succeed; its data.
pub(crate) async fn gql(
    http: &reqwest::Client,
    addr: SocketAddr,
    token: &str,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let body: Value = http
        .post(format!("http://{addr}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await?
        .json()
        .await?;
    anyhow::ensure!(body.get("errors").is_none(), "{query}: {body}");
    Ok(body["data"].clone())
}

pub async fn run(url: &str, seconds: u64) -> anyhow::Result<()> {
    let (addr, stop, server) = start_server(guarded(url)?).await?;
    let store = std::sync::Arc::new(homeward_store_postgres::PgStore::connect(url, 4).await?);
    let handler = homeward_engine::CommandHandler::new(
        store.clone(),
        std::sync::Arc::new(homeward_engine::SystemClock),
    )
    .with_vault(crate::bench_vault(store.clone()));
    // The social worker's organisation, a programme, as an admin would register it.
    handler
        .handle::<homeward_workflows::organisation::Organisation>(
            &crate::BENCH_ORGANISATION.stream_id(),
            &homeward_workflows::organisation::OrganisationCommand::Register {
                organisation_id: crate::BENCH_ORGANISATION,
                name: "Bench Programme".to_owned(),
                kind: homeward_workflows::organisation::OrganisationKind::Programme,
                country: "FR".to_owned(),
            },
            homeward_engine::CommandMeta::new(homeward_workflows::PartyId::new()),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (party, token) = crate::api::social_worker(&store, &handler, "Page Reader").await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;

    // A plan of 50 steps and 200 entries or more, its added steps hers.
    let person = gql(
        &http,
        addr,
        &token,
        "mutation { registerPerson(input: { fullName: \"Bench Person\" }) }",
        json!({}),
    )
    .await?["registerPerson"]
        .clone();
    let plan = gql(&http, addr, &token, "mutation($p: ID!) { openPlan(input: { personId: $p, originCountry: \"NG\" }) { plan { id steps { key } } } }", json!({ "p": person })).await?["openPlan"]["plan"].clone();
    let plan_id = plan["id"].as_str().context("a plan id")?.to_owned();
    let template_steps = plan["steps"].as_array().map_or(0, Vec::len);
    gql(
        &http,
        addr,
        &token,
        "mutation($id: ID!) { recordConsent(planId: $id, consent: { kind: RETURN }) { version } }",
        json!({ "id": plan_id }),
    )
    .await?;
    for i in template_steps..50 {
        gql(
            &http,
            addr,
            &token,
            "mutation($id: ID!, $me: ID!, $key: String!, $due: String!) {
            addStep(planId: $id, step: { key: $key, kind: CUSTOM, title: $key, assignee: $me,
              due: { at: { localDateTime: $due, timeZone: \"UTC\" } } }) { version } }",
            json!({ "id": plan_id, "me": party.to_string(), "key": format!("task_{i}"),
                    "due": format!("2027-{:02}-{:02}T09:00:00", 1 + i % 12, 1 + i % 28) }),
        )
        .await?;
    }
    let mut version = 0;
    let mut n = 0;
    while version < 200 {
        let priority = ["HIGH", "NORMAL"][n % 2];
        version = gql(&http, addr, &token, "mutation($id: ID!, $s: String!, $p: Priority!) { prioritiseStep(planId: $id, step: $s, priority: $p) { version } }",
            json!({ "id": plan_id, "s": format!("task_{}", 49 - n % 10), "p": priority })).await?["prioritiseStep"]["version"]
            .as_u64()
            .unwrap_or(0);
        n += 1;
    }
    println!("\nconsole: a plan of 50 steps and {version} history entries, at http://{addr}");

    // A session, as a browser gets one.
    let signed = http
        .post(format!("http://{addr}/sign-in/token"))
        .form(&[("token", token.as_str())])
        .send()
        .await?;
    let cookie = signed
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("a session cookie")?
        .to_owned();

    let page_url = format!("http://{addr}/plans/{plan_id}");
    let weight = |url: String| {
        let http = http.clone();
        let cookie = cookie.clone();
        async move {
            let body = http
                .get(url)
                .header("cookie", cookie)
                .send()
                .await?
                .bytes()
                .await?;
            anyhow::Ok(body.len())
        }
    };
    let plan_bytes = weight(page_url.clone()).await?;
    let inbox_bytes = weight(format!("http://{addr}/inbox")).await?;
    let css_bytes = http
        .get(format!("http://{addr}/console/assets/console.css"))
        .send()
        .await?
        .bytes()
        .await?
        .len();
    let js_bytes = http
        .get(format!("http://{addr}/console/assets/live.js"))
        .send()
        .await?
        .bytes()
        .await?
        .len();

    let duration = Duration::from_secs(seconds);
    let page_request = {
        let http = http.clone();
        let cookie = cookie.clone();
        let url = page_url.clone();
        move || http.get(&url).header("cookie", &cookie)
    };
    // Warm both sides before measuring.
    measure(PAGE_CLIENTS, Duration::from_secs(1), page_request.clone()).await?;
    let mut pages = Vec::new();
    for _ in 0..ROUNDS {
        pages.push(measure(PAGE_CLIENTS, duration, page_request.clone()).await?);
    }

    let inbox_page = {
        let http = http.clone();
        let cookie = cookie.clone();
        let url = format!("http://{addr}/inbox");
        move || http.get(&url).header("cookie", &cookie)
    };
    let inbox_query = {
        let http = http.clone();
        let token = token.clone();
        let url = format!("http://{addr}/graphql");
        move || {
            http.post(&url)
                .bearer_auth(&token)
                .json(&json!({ "query": INBOX_QUERY, "variables": { "first": 25 } }))
        }
    };
    measure(INBOX_CLIENTS, Duration::from_secs(1), inbox_query.clone()).await?;
    measure(INBOX_CLIENTS, Duration::from_secs(1), inbox_page.clone()).await?;
    let mut rounds = Vec::new();
    for _ in 0..ROUNDS {
        let query = measure(INBOX_CLIENTS, duration, inbox_query.clone()).await?;
        let page = measure(INBOX_CLIENTS, duration, inbox_page.clone()).await?;
        rounds.push((query.rate, page.rate));
    }
    let mut ratios: Vec<f64> = rounds.iter().map(|(q, p)| p / q).collect();
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];

    // In a browser: DOMContentLoaded of the plan's page, five loads after a first.
    let driver = homeward_tests::browser::Driver::start().await;
    let browser = driver
        .browser(homeward_tests::browser::Screen::Desktop, "en")
        .await;
    browser.goto(&format!("http://{addr}/sign-in")).await?;
    browser
        .find(fantoccini::Locator::Id("token"))
        .await?
        .send_keys(&token)
        .await?;
    browser
        .find(fantoccini::Locator::Css(
            "form[action='/sign-in/token'] button",
        ))
        .await?
        .click()
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    browser.goto(&page_url).await?;
    let mut loads = Vec::new();
    for _ in 0..5 {
        browser.goto(&page_url).await?;
        loads.push(homeward_tests::browser::dom_content_loaded_ms(&browser).await);
    }
    browser.close().await?;
    loads.sort_by(f64::total_cmp);

    println!("\n| measurement | result | target |");
    println!("|---|---|---|");
    let each: Vec<String> = pages
        .iter()
        .map(|p| {
            format!(
                "{:.0}/s, p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms",
                p.rate,
                ms(p.p50),
                ms(p.p95),
                ms(p.p99)
            )
        })
        .collect();
    let mut p95s: Vec<f64> = pages.iter().map(|p| ms(p.p95)).collect();
    p95s.sort_by(f64::total_cmp);
    println!(
        "| plan page (50 steps, {version} entries), {PAGE_CLIENTS} clients | {} | median p95 {:.1} ms (< 100 ms) |",
        each.join(" · "),
        p95s[p95s.len() / 2]
    );
    println!(
        "| plan page weight | {:.1} KB (page) + {:.1} KB (css) + {:.1} KB (live.js); inbox page {:.1} KB | < 100 KB, htmx apart |",
        plan_bytes as f64 / 1024.0,
        css_bytes as f64 / 1024.0,
        js_bytes as f64 / 1024.0,
        inbox_bytes as f64 / 1024.0
    );
    let each: Vec<String> = rounds
        .iter()
        .map(|(q, p)| format!("{p:.0} / {q:.0} = {:.2}", p / q))
        .collect();
    println!(
        "| inbox page / GraphQL inbox, {INBOX_CLIENTS} clients | {} | median {median:.2} (≥ 0.5) |",
        each.join(" · ")
    );
    println!(
        "| plan page in Chromium, DOMContentLoaded | {} ms (median {:.0} ms) | < 1000 ms |",
        loads
            .iter()
            .map(|l| format!("{l:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        loads[loads.len() / 2]
    );
    let _ = stop.send(());
    server.await??;
    Ok(())
}
