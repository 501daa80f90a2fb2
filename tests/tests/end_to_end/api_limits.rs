//! Limits a slow or greedy client cannot get past, tried from outside through the real server:
//! trickled headers and bodies, idle connections, a token or an address asking too often, and
//! more requests at once than the server serves.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use homeward::app::Settings;
use homeward::limits::TrustedProxies;
use homeward_tests::api::{error_code, Subscription, TestApi};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ME: &str = "{ me { id } }";

/// Reads from `stream` until the server closes it or `within` passes; what it sent, and
/// whether it closed.
async fn read_until_closed(
    stream: &mut (impl AsyncRead + Unpin),
    within: Duration,
) -> (String, bool) {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&received).into(), true),
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => return (String::from_utf8_lossy(&received).into(), false),
        }
    }
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_cut_off_while_others_are_served() {
    let api = TestApi::start_with(|s| Settings {
        header_timeout: Duration::from_secs(1).into(),
        ..s
    })
    .await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;

    // A byte every 300 ms: the headers never finish.
    let mut slow = TcpStream::connect(api.addr).await.unwrap();
    let started = Instant::now();
    let trickle = async {
        let request = format!(
            "POST /graphql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n",
            amina.token
        );
        for byte in request.bytes() {
            if slow.write_all(&[byte]).await.is_err() {
                break;
            }
            let (_, closed) = read_until_closed(&mut slow, Duration::from_millis(300)).await;
            if closed {
                break;
            }
        }
        started.elapsed()
    };
    // Meanwhile another client is served, and a connection that sends nothing is closed too.
    let others = async {
        let mut idle = TcpStream::connect(api.addr).await.unwrap();
        assert_eq!(
            api.data(&amina.token, ME, json!({})).await["me"]["id"],
            amina.id.as_str()
        );
        let (_, closed) = read_until_closed(&mut idle, Duration::from_secs(3)).await;
        assert!(closed, "an idle connection is closed at the header timeout");
    };
    let (cut_off_after, ()) = tokio::join!(trickle, others);
    assert!(
        cut_off_after < Duration::from_secs(3),
        "the trickling client held its connection for {cut_off_after:?}"
    );
}

/// Sends a POST's headers with a body of `length` bytes announced, and `sent` of them.
async fn post_head(api: &TestApi, token: Option<&str>, length: usize, sent: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(api.addr).await.unwrap();
    let authorization = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         {authorization}Content-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(sent).await.unwrap();
    stream
}

/// The status and JSON body of the first response on `stream`.
async fn response(stream: &mut (impl AsyncRead + Unpin), within: Duration) -> (u16, Value) {
    let (text, _) = read_until_closed(stream, within).await;
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no response within {within:?}: {text:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    // The body may be chunked: the JSON is between the first { and the last }.
    let json = match (body.find('{'), body.rfind('}')) {
        (Some(start), Some(end)) => serde_json::from_str(&body[start..=end]).unwrap(),
        _ => Value::Null,
    };
    (status, json)
}

#[tokio::test]
async fn a_body_is_read_only_after_the_token_and_only_for_so_long() {
    let api = TestApi::start_with(|s| Settings {
        body_timeout: Duration::from_secs(1).into(),
        ..s
    })
    .await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;

    // Without a token, the answer comes before the body is sent.
    let mut anonymous = post_head(&api, None, 100_000, b"").await;
    let (status, body) = response(&mut anonymous, Duration::from_secs(2)).await;
    assert_eq!(status, 401);
    assert_eq!(error_code(&body), Some("UNAUTHENTICATED"));

    // With one, a body that trickles in is cut off at the body timeout.
    let query = json!({ "query": ME }).to_string();
    let slow = post_head(
        &api,
        Some(&amina.token),
        query.len(),
        &query.as_bytes()[..3],
    )
    .await;
    let (mut reader, mut writer) = slow.into_split();
    let started = Instant::now();
    let trickle = async {
        for byte in &query.as_bytes()[3..] {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if writer.write_all(&[*byte]).await.is_err() {
                break;
            }
        }
    };
    let (status, body) = tokio::select! {
        answer = response(&mut reader, Duration::from_secs(5)) => answer,
        () = trickle => panic!("the whole body was read"),
    };
    assert_eq!(status, 408, "{body}");
    assert_eq!(error_code(&body), Some("TIMEOUT"));
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_thousand_requests_in_a_second_from_one_token_are_limited_and_others_are_not() {
    // The defaults.
    let api = TestApi::start_with(|s| Settings {
        rate_limit: 20,
        rate_burst: 100,
        ..s
    })
    .await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let luc = api
        .party("GOVERNMENT_LIAISON", "Luc Martin", "Prefecture")
        .await;
    let http = reqwest::Client::new();
    let started = Instant::now();
    let answers = futures::future::join_all((0..1000).map(|_| {
        http.post(api.url())
            .bearer_auth(&amina.token)
            .json(&json!({ "query": ME }))
            .send()
    }))
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut served = 0;
    let mut limited = 0;
    for answer in answers {
        let answer = answer.unwrap();
        match answer.status().as_u16() {
            200 => served += 1,
            429 => {
                limited += 1;
                let retry: u64 = answer.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=5).contains(&retry), "Retry-After: {retry}");
                let body: Value = answer.json().await.unwrap();
                assert_eq!(error_code(&body), Some("RATE_LIMITED"), "{body}");
                assert_eq!(body["errors"][0]["extensions"]["retryAfterSeconds"], retry);
            }
            other => panic!("status {other}"),
        }
    }
    // Bursts of 100, then 20 a second.
    let allowed = 100.0 + 20.0 * elapsed;
    assert!(
        served >= 100 && f64::from(served) <= allowed + 1.0,
        "{served} served in {elapsed:.2} s"
    );
    assert_eq!(served + limited, 1000);
    // Another token is served at once.
    assert_eq!(
        api.data(&luc.token, ME, json!({})).await["me"]["id"],
        luc.id.as_str()
    );
}

#[tokio::test]
async fn an_address_guessing_tokens_is_refused_before_they_are_looked_up() {
    let api = TestApi::start_with(|s| Settings {
        rate_limit: 5,
        rate_burst: 10,
        trusted_proxies: TrustedProxies::parse("127.0.0.1").unwrap(),
        ..s
    })
    .await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let http = reqwest::Client::new();
    let post = |token: &str, from: &str| {
        http.post(api.url())
            .bearer_auth(token)
            .header("X-Forwarded-For", from)
            .json(&json!({ "query": ME }))
            .send()
    };
    let mut statuses = Vec::new();
    for n in 0..30 {
        let answer = post(&format!("hw_guess{n}"), "198.51.100.7").await.unwrap();
        statuses.push(answer.status().as_u16());
    }
    assert!(statuses[..10].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[12..].iter().all(|s| *s == 429), "{statuses:?}");
    // The guessing address is refused even with a good token; others are not.
    assert_eq!(
        post(&amina.token, "198.51.100.7").await.unwrap().status(),
        429
    );
    assert_eq!(
        post(&amina.token, "198.51.100.8").await.unwrap().status(),
        200
    );
    assert_eq!(
        post("hw_wrong", "198.51.100.9").await.unwrap().status(),
        401
    );
}

#[tokio::test]
async fn a_sockets_operations_count_against_its_tokens_rate() {
    let api = TestApi::start_with(|s| Settings {
        rate_limit: 1,
        rate_burst: 3,
        ..s
    })
    .await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    // One HTTP request, one subscription: the third operation is the last of the burst.
    api.data(&amina.token, ME, json!({})).await;
    let mut socket = Subscription::open(
        api.addr,
        &amina.token,
        "subscription { taskUpdates { planId } }",
        json!({}),
    )
    .await;
    socket.send_operation("2", ME).await;
    let answer = socket.next_message().await;
    assert_eq!(answer["id"], "2", "{answer}");
    assert_eq!(answer["type"], "next", "{answer}");
    socket.send_operation("3", ME).await;
    let mut refusal = socket.next_message().await;
    while refusal["type"] == "complete" {
        refusal = socket.next_message().await;
    }
    assert_eq!(refusal["id"], "3", "{refusal}");
    assert_eq!(refusal["type"], "error", "{refusal}");
    assert_eq!(refusal["payload"][0]["extensions"]["code"], "RATE_LIMITED");
    assert_eq!(refusal["payload"][0]["extensions"]["retryAfterSeconds"], 1);
}

#[tokio::test]
async fn requests_wait_for_a_place_and_are_stopped_at_the_request_timeout() {
    let api = TestApi::start_with(|s| Settings {
        max_concurrent_requests: 1,
        request_timeout: Duration::from_secs(1).into(),
        body_timeout: Duration::from_secs(30).into(),
        ..s
    })
    .await;
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    // Three requests whose bodies never finish: one holds the only place, two wait for it.
    let started = Instant::now();
    let mut holders = Vec::new();
    for _ in 0..3 {
        holders.push(post_head(&api, Some(&amina.token), 1000, b"{").await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Health answers meanwhile; a request waits for the place, then is served.
    let health = reqwest::get(format!("http://{}/healthz", api.addr))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let asked = Instant::now();
    assert_eq!(
        api.data(&amina.token, ME, json!({})).await["me"]["id"],
        amina.id.as_str()
    );
    assert!(
        asked.elapsed() >= Duration::from_millis(600),
        "served after {:?}, while the only place was held",
        asked.elapsed()
    );
    // Every holder, the one served and the two waiting, is stopped at the request timeout.
    for holder in &mut holders {
        let (status, body) = response(holder, Duration::from_secs(3)).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(error_code(&body), Some("TIMEOUT"));
    }
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_partner_page_checks_its_link_before_it_reads_the_form() {
    let api = TestApi::start().await;
    // A form of 10,000 bytes announced, a few sent, for a link that is not one.
    let mut stream = TcpStream::connect(api.addr).await.unwrap();
    stream
        .write_all(
            b"POST /l/AAAA.BBBB.CCCC HTTP/1.1\r\nHost: x\r\n\
              Content-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 10000\r\n\r\nwellbeing=",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let (text, _) = read_until_closed(&mut stream, Duration::from_secs(3)).await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(2));
}
