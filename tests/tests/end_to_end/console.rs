//! The web console over real HTTP: signing in (a pasted token, an emailed link caught by a real
//! SMTP server), the session's cookie and its ends, forms refused from another site or
//! without the session's form token, and the inbox showing what the API shows its viewer,
//! in words and in the viewer's language.
#![allow(clippy::unwrap_used)]

use std::time::Duration as StdDuration;

use chrono::Duration;
use homeward::app::Settings;
use homeward_tests::api::{Person, TestApi};
use homeward_tests::smtp::SmtpCatcher;
use serde_json::json;

/// A browser, as far as the console can tell: it keeps the session cookie and follows nothing
/// on its own, so that every redirect is seen.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn set_cookie(&self) -> Option<&str> {
        self.headers.get("set-cookie").and_then(|v| v.to_str().ok())
    }

    /// The value of the hidden input `name` of the first form sent to `action`.
    fn hidden(&self, action: &str, name: &str) -> String {
        self.hidden_if_any(action, name)
            .unwrap_or_else(|| panic!("no {name} in:\n{}", self.body))
    }

    /// As [`Page::hidden`], none when that form has no such input.
    fn hidden_if_any(&self, action: &str, name: &str) -> Option<String> {
        let form = self
            .body
            .find(&format!("method=\"post\" action=\"{action}\""))
            .unwrap_or_else(|| panic!("no form for {action} in:\n{}", self.body));
        let end = self.body[form..]
            .find("</form>")
            .map_or(self.body.len(), |e| e + form);
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body[form..end].find(&marker)? + form + marker.len();
        Some(
            self.body[start..]
                .split('"')
                .next()
                .unwrap()
                .replace("&#x2f;", "/")
                .replace("&#x3d;", "=")
                .replace("&#x3f;", "?")
                .replace("&amp;", "&"),
        )
    }
}

impl Browser {
    fn new(api: &TestApi) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: format!("http://{}", api.addr),
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn keep(&mut self, response: reqwest::Response) -> Page {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        for value in headers.get_all("set-cookie") {
            let value = value.to_str().unwrap();
            let pair = value.split(';').next().unwrap();
            let (name, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(k, _)| k != name);
            if !value.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), v.to_owned()));
            }
        }
        let body = response.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(response).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.post_with(path, form, &[]).await
    }

    async fn post_with(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .form(form);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        self.keep(response).await
    }

    /// Signs in with a token; the page it was sent on to.
    async fn sign_in(&mut self, token: &str) -> Page {
        let signed = self
            .post("/sign-in/token", &[("token", token), ("next", "/inbox")])
            .await;
        assert_eq!(signed.status, 303, "{}", signed.body);
        let to = signed.location().to_owned();
        self.get(&to).await
    }

    /// The form token of the page (every signed-in page carries it in its sign-out form).
    async fn form_token(&mut self) -> String {
        self.get("/inbox").await.hidden("/sign-out", "form_token")
    }
}

/// A social worker writing in English, and a plan of hers with two tasks of her own: one due
/// on 2026-03-05, one on 2026-03-20 (the test clock starts on 2026-03-01, 09:00 UTC).
pub(crate) async fn worker_with_tasks(api: &TestApi, name: &str) -> (Person, String) {
    let amina = api
        .party_in(
            "SOCIAL_WORKER",
            "Amina",
            "Safe Passage",
            "GB",
            "en",
            "Europe/London",
        )
        .await;
    let plan = api.open_plan(&amina.token, name).await;
    api.data(
        &amina.token,
        "mutation($id: ID!) { recordConsent(planId: $id, consent: { kind: RETURN }) { version } }",
        json!({ "id": plan }),
    )
    .await;
    for (key, title, due) in [
        ("call_family", "Call the family", "2026-03-05T10:00:00"),
        ("book_clinic", "Book the clinic", "2026-03-20T10:00:00"),
    ] {
        api.data(
            &amina.token,
            "mutation($id: ID!, $me: ID!, $key: String!, $title: String!, $due: String!) {
               addStep(planId: $id, step: { key: $key, kind: CUSTOM, title: $title, assignee: $me,
                 due: { at: { localDateTime: $due, timeZone: \"Europe/London\" } } }) { version } }",
            json!({ "id": plan, "me": amina.id, "key": key, "title": title, "due": due }),
        )
        .await;
    }
    (amina, plan.as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_pasted_token_starts_a_session_whose_cookie_no_script_can_read() {
    let api = TestApi::start().await;
    let (amina, plan) = worker_with_tasks(&api, "Ngozi Okafor").await;
    let mut browser = Browser::new(&api);

    let sign_in = browser.get("/sign-in").await;
    assert_eq!(sign_in.status, 200);
    assert!(sign_in.body.contains("action=\"/sign-in/token\""));

    let wrong = browser
        .post("/sign-in/token", &[("token", "hw_not_a_token")])
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("unknown, expired or revoked"));
    assert!(wrong.set_cookie().is_none(), "no session for a wrong token");

    let signed = browser
        .post("/sign-in/token", &[("token", &amina.token)])
        .await;
    assert_eq!(signed.status, 303);
    assert_eq!(signed.location(), "/inbox");
    let cookie = signed.set_cookie().unwrap();
    assert!(cookie.starts_with("homeward-session=hwc_"), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(
        !cookie.contains(&amina.token),
        "the cookie is not the token"
    );

    let inbox = browser.get("/inbox").await;
    assert_eq!(inbox.status, 200, "{}", inbox.body);
    assert_eq!(inbox.headers["cache-control"], "no-store");
    let csp = inbox.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(inbox.body.contains("<html lang=\"en\">"));
    assert!(inbox.body.contains("Signed in as") || inbox.body.contains("Amina"));
    assert!(inbox.body.contains("Call the family"));
    assert!(inbox.body.contains("Book the clinic"));
    assert!(inbox.body.contains("Ngozi Okafor"), "whom it is for");
    assert!(inbox.body.contains(&format!("href=\"/plans/{plan}")));
    // Soonest first.
    assert!(
        inbox.body.find("Call the family").unwrap() < inbox.body.find("Book the clinic").unwrap()
    );
    assert!(inbox.body.contains("Due in 4 days"), "{}", inbox.body);

    // The page's script and style are served from the binary.
    for asset in [
        "/console/assets/htmx-2.0.11.min.js",
        "/console/assets/console.css",
    ] {
        let page = browser.get(asset).await;
        assert_eq!(page.status, 200, "{asset}");
    }
}

#[tokio::test]
async fn another_workers_tasks_are_not_in_the_inbox() {
    let api = TestApi::start().await;
    worker_with_tasks(&api, "Ngozi Okafor").await;
    let other = api
        .party_in(
            "SOCIAL_WORKER",
            "Other",
            "Safe Passage",
            "GB",
            "en",
            "Europe/London",
        )
        .await;
    let inbox = Browser::new(&api).sign_in(&other.token).await;
    assert!(!inbox.body.contains("Call the family"));
    assert!(!inbox.body.contains("Ngozi Okafor"));
    assert!(inbox.body.contains("No task matches."));
}

#[tokio::test]
async fn an_overdue_task_says_by_how_many_days_and_comes_first() {
    let api = TestApi::start().await;
    let (amina, _) = worker_with_tasks(&api, "Ngozi Okafor").await;
    api.clock.advance(Duration::days(7));
    let mut browser = Browser::new(&api);
    let inbox = browser.sign_in(&amina.token).await;
    assert!(inbox.body.contains("Overdue by 3 days"), "{}", inbox.body);
    assert!(inbox.body.contains("Due in 12 days"));
    assert!(inbox.body.find("Overdue by 3 days").unwrap() < inbox.body.find("Due in 12").unwrap());

    let overdue_only = browser.get("/inbox?overdue=on").await;
    assert!(overdue_only.body.contains("Call the family"));
    assert!(!overdue_only.body.contains("Book the clinic"));
    let until = browser.get("/inbox?from=2026-03-15&until=2026-03-20").await;
    assert!(!until.body.contains("Call the family"));
    assert!(until.body.contains("Book the clinic"));
    let blocked = browser.get("/inbox?status=BLOCKED").await;
    assert!(blocked.body.contains("No task matches."));
}

#[tokio::test]
async fn a_bad_date_in_the_filters_is_explained_beside_it_and_kept() {
    let api = TestApi::start().await;
    let (amina, _) = worker_with_tasks(&api, "Ngozi Okafor").await;
    let mut browser = Browser::new(&api);
    browser.sign_in(&amina.token).await;
    let page = browser.get("/inbox?from=2026-13-45").await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("Give a date as year-month-day"));
    assert!(
        page.body.contains("value=\"2026-13-45\""),
        "what was typed is kept"
    );
    assert!(page.body.contains("aria-invalid=\"true\""));
    assert!(
        !page.body.contains("Call the family"),
        "no half-filtered list"
    );
}

#[tokio::test]
async fn an_ended_session_returns_to_sign_in_and_then_to_the_page() {
    let api = TestApi::start_with(|s| Settings {
        session_idle_minutes: 30,
        ..s
    })
    .await;
    let (amina, _) = worker_with_tasks(&api, "Ngozi Okafor").await;
    let mut browser = Browser::new(&api);

    // Not signed in: to the sign-in page, which remembers where to return.
    let away = browser.get("/inbox?status=READY").await;
    assert_eq!(away.status, 303);
    assert_eq!(away.location(), "/sign-in?next=%2Finbox%3Fstatus%3DREADY");
    let sign_in = browser.get(away.location()).await;
    assert_eq!(
        sign_in.hidden("/sign-in/token", "next"),
        "/inbox?status=READY"
    );
    let back = browser
        .post(
            "/sign-in/token",
            &[("token", &amina.token), ("next", "/inbox?status=READY")],
        )
        .await;
    assert_eq!(back.location(), "/inbox?status=READY");
    // Never on to another site.
    let mut elsewhere = Browser::new(&api);
    let off = elsewhere
        .post(
            "/sign-in/token",
            &[("token", &amina.token), ("next", "//evil.example/")],
        )
        .await;
    assert_eq!(off.location(), "/inbox");

    // Used within its idle limit, it stands; idle past it, it ends.
    api.clock.advance(Duration::minutes(20));
    assert_eq!(browser.get("/inbox").await.status, 200);
    api.clock.advance(Duration::minutes(20));
    assert_eq!(
        browser.get("/inbox").await.status,
        200,
        "the limit counts from the last request"
    );
    api.clock.advance(Duration::minutes(31));
    let ended = browser.get("/inbox").await;
    assert_eq!(ended.status, 303);
    assert!(ended.location().starts_with("/sign-in?next="));

    // A session started by a token ends when the token is revoked.
    browser.sign_in(&amina.token).await;
    assert_eq!(browser.get("/inbox").await.status, 200);
    let tokens = api
        .data(
            &amina.token,
            "query($p: ID!) { tokens(party: $p) { tokenId } }",
            json!({ "p": amina.id }),
        )
        .await;
    let token_id = tokens["tokens"][0]["tokenId"].clone();
    api.data(
        &api.admin,
        "mutation($t: ID!) { revokeToken(tokenId: $t) }",
        json!({ "t": token_id }),
    )
    .await;
    assert_eq!(browser.get("/inbox").await.status, 303);
}

#[tokio::test]
async fn a_form_from_another_site_or_without_the_form_token_changes_nothing() {
    let api = TestApi::start().await;
    let (amina, _) = worker_with_tasks(&api, "Ngozi Okafor").await;
    let mut browser = Browser::new(&api);
    browser.sign_in(&amina.token).await;
    let form_token = browser.form_token().await;
    assert_eq!(form_token.len(), 32);

    let cross_site = browser
        .post_with(
            "/sign-out",
            &[("form_token", &form_token)],
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(cross_site.status, 403);
    assert!(cross_site.body.contains("Nothing was changed"));
    let foreign_origin = browser
        .post_with(
            "/sign-out",
            &[("form_token", &form_token)],
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(foreign_origin.status, 403);
    let no_token = browser.post("/sign-out", &[]).await;
    assert_eq!(no_token.status, 403);
    let other_token = browser
        .post(
            "/sign-out",
            &[("form_token", "0123456789abcdef0123456789abcdef")],
        )
        .await;
    assert_eq!(other_token.status, 403);
    assert_eq!(
        browser.get("/inbox").await.status,
        200,
        "the session still stands"
    );
    // A signed-in page of another site cannot sign anyone in either (login CSRF).
    let mut stranger = Browser::new(&api);
    let planted = stranger
        .post_with(
            "/sign-in/token",
            &[("token", &amina.token)],
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(planted.status, 403);
    assert!(planted.set_cookie().is_none());

    let session = browser
        .cookies
        .iter()
        .find(|(k, _)| k == "homeward-session")
        .unwrap()
        .1
        .clone();
    let out = browser
        .post_with(
            "/sign-out",
            &[("form_token", &form_token)],
            &[("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location(), "/sign-in");
    assert!(out.set_cookie().unwrap().contains("Max-Age=0"));
    assert_eq!(browser.get("/inbox").await.status, 303);
    // Ended on the server, not only forgotten by the browser.
    let mut replay = Browser::new(&api);
    replay
        .cookies
        .push(("homeward-session".to_owned(), session));
    assert_eq!(replay.get("/inbox").await.status, 303);
}

#[tokio::test]
async fn a_sign_in_link_is_emailed_opened_without_being_used_and_used_once() {
    let smtp = SmtpCatcher::start().await;
    let url = smtp.url();
    let api = TestApi::start_with(move |s| Settings {
        smtp_url: Some(url.into()),
        smtp_timeout: StdDuration::from_secs(2).into(),
        ..s
    })
    .await;
    let (amina, _) = worker_with_tasks(&api, "Ngozi Okafor").await;
    let email = api.data(&amina.token, "{ me { email } }", json!({})).await["me"]["email"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut browser = Browser::new(&api);

    // An unknown address is told the same, and nothing is sent.
    let unknown = browser
        .post("/sign-in/link", &[("email", "nobody@example.org")])
        .await;
    let known = browser
        .post("/sign-in/link", &[("email", &email.to_uppercase())])
        .await;
    assert_eq!((unknown.status, known.status), (200, 200));
    assert_eq!(
        unknown.body.replace("nobody@example.org", "X"),
        known.body.replace(&email.to_uppercase(), "X"),
        "whether an address is known is not disclosed"
    );
    // Her invitation (sent when she was registered), then the link.
    let sign_in_mail = |mail: Vec<homeward_tests::smtp::Caught>| {
        mail.into_iter()
            .filter(|m| m.header("subject").is_some_and(|s| s.contains("sign-in")))
            .collect::<Vec<_>>()
    };
    let mail = sign_in_mail(smtp.wait_for(2, StdDuration::from_secs(10)).await);
    assert_eq!(mail.len(), 1, "one message, to the known address");
    let text = mail[0].part("text/plain").unwrap();
    let link = text
        .lines()
        .find_map(|l| l.split_once(": http").map(|(_, url)| format!("http{url}")))
        .filter(|url| url.contains("/sign-in/hwl_"))
        .unwrap_or_else(|| panic!("no sign-in link in:\n{text}"));
    let path = link.trim_start_matches(&browser.base).to_owned();

    // Opening it (as a mail scanner does) uses nothing.
    for _ in 0..2 {
        let opened = browser.get(&path).await;
        assert_eq!(opened.status, 200);
        assert!(opened.body.contains("<form method=\"post\">"));
        assert!(opened.set_cookie().is_none());
    }
    let used = browser.post(&path, &[]).await;
    assert_eq!(used.status, 303, "{}", used.body);
    assert_eq!(used.location(), "/inbox");
    assert!(used
        .set_cookie()
        .unwrap()
        .starts_with("homeward-session=hwc_"));
    assert!(browser.get("/inbox").await.body.contains("Call the family"));
    let again = Browser::new(&api).post(&path, &[]).await;
    assert_eq!(again.status, 410, "a link is used once");
    assert!(again.set_cookie().is_none());

    // A link unused for 15 minutes is spent.
    browser.post("/sign-in/link", &[("email", &email)]).await;
    let mail = sign_in_mail(smtp.wait_for(3, StdDuration::from_secs(10)).await);
    let text = mail[1].part("text/plain").unwrap();
    let late = text
        .lines()
        .find_map(|l| l.split_once(": http").map(|(_, url)| format!("http{url}")))
        .unwrap();
    api.clock.advance(Duration::minutes(15));
    let late = Browser::new(&api)
        .post(late.trim_start_matches(&browser.base), &[])
        .await;
    assert_eq!(late.status, 410);
}

#[tokio::test]
async fn the_inbox_shows_no_more_than_the_api_shows_the_same_viewer() {
    let api = TestApi::start().await;
    let (amina, plan) = worker_with_tasks(&api, "Ngozi Okafor").await;
    // A liaison of the prefecture, given the passport: the API shows the liaison the step,
    // not the survivor's name.
    let liaison = api
        .party_in(
            "GOVERNMENT_LIAISON",
            "Luc",
            "Prefecture",
            "FR",
            "en",
            "Europe/Paris",
        )
        .await;
    api.data(
        &amina.token,
        "mutation($id: ID!, $luc: ID!) { assignStep(planId: $id, step: \"passport\", assignee: $luc) { version } }",
        json!({ "id": plan, "luc": liaison.id }),
    )
    .await;
    let seen = api
        .data(
            &liaison.token,
            "{ tasks { nodes { key title plan { person { fullName } } } } }",
            json!({}),
        )
        .await;
    let nodes = seen["tasks"]["nodes"].as_array().unwrap().clone();
    assert!(!nodes.is_empty());
    let mut browser = Browser::new(&api);
    let inbox = browser.sign_in(&liaison.token).await;
    for node in &nodes {
        if let Some(title) = node["title"].as_str() {
            assert!(inbox.body.contains(title), "{title} is on the page");
        }
        match node["plan"]["person"]["fullName"].as_str() {
            Some(name) => assert!(inbox.body.contains(name)),
            None => assert!(!inbox.body.contains("Ngozi"), "{}", inbox.body),
        }
    }
    assert!(
        !inbox.body.contains("Call the family"),
        "not the liaison's task"
    );
}

#[tokio::test]
async fn what_the_inbox_shows_of_a_survivor_is_in_the_access_audit() {
    let api = TestApi::start().await;
    let (amina, plan) = worker_with_tasks(&api, "Ngozi Okafor").await;
    let supervisor = api
        .party_in(
            "SUPERVISOR",
            "Sofia",
            "Safe Passage",
            "GB",
            "en",
            "Europe/London",
        )
        .await;
    let mut browser = Browser::new(&api);
    browser.sign_in(&amina.token).await;
    let person = api.person_of_plan(&amina.token, &plan).await;
    let log = api
        .data(
            &supervisor.token,
            "query($p: ID!) { accessLog(personId: $p) { nodes { party { id } fields operation } } }",
            json!({ "p": person }),
        )
        .await;
    let entries = log["accessLog"]["nodes"].as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["party"]["id"] == json!(amina.id)
            && e["operation"]
                .as_str()
                .unwrap()
                .starts_with("console inbox")
            && e["fields"]
                .as_array()
                .unwrap()
                .contains(&json!("full_name"))),
        "{log:#}"
    );
}

#[tokio::test]
async fn pages_speak_the_partys_language_or_the_one_chosen() {
    let api = TestApi::start().await;
    // `party` registers French speakers.
    let claire = api.party("SOCIAL_WORKER", "Claire", "Safe Passage").await;
    let mut browser = Browser::new(&api);
    let inbox = browser.sign_in(&claire.token).await;
    assert!(inbox.body.contains("<html lang=\"fr\">"));
    assert!(inbox.body.contains("Aucune tâche ne correspond."));

    let chosen = browser
        .post("/language", &[("lang", "es"), ("next", "/inbox")])
        .await;
    assert_eq!(chosen.status, 303);
    assert_eq!(chosen.location(), "/inbox");
    let inbox = browser.get("/inbox").await;
    assert!(inbox.body.contains("<html lang=\"es\">"));
    assert!(inbox.body.contains("Ninguna tarea coincide."));

    // Before signing in: the browser's language.
    let anonymous = reqwest::Client::new()
        .get(format!("http://{}/sign-in", api.addr))
        .header("accept-language", "de-DE, fr;q=0.8")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(anonymous.contains("<html lang=\"fr\">"));
}

#[tokio::test]
async fn a_plan_page_draws_the_plan_on_a_time_axis_and_says_it_in_words() {
    let api = TestApi::start().await;
    let (amina, plan) = worker_with_tasks(&api, "Ngozi Okafor").await;
    api.clock.advance(Duration::days(7));
    let mut browser = Browser::new(&api);
    browser.sign_in(&amina.token).await;
    let page = browser.get(&format!("/plans/{plan}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.headers["cache-control"], "no-store");
    let body = &page.body;
    assert!(body.contains("Ngozi Okafor"), "the case team sees her name");
    // The picture, accessible: a titled, described image, and the same rows as a table.
    assert!(body.contains("role=\"img\""));
    assert!(body.contains("<title id=\"timeline-title\">Timeline</title>"));
    assert!(body.contains("<desc id=\"timeline-desc\">"));
    assert!(body.contains("class=\"timeline-table\""));
    assert!(body.contains("class=\"row overdue\""), "an overdue bar");
    assert!(
        body.contains("Overdue by 3 days"),
        "and it is said in words"
    );
    assert!(body.contains("class=\"today\""));
    assert!(
        body.contains("Consent to return"),
        "the consent as a milestone"
    );
    assert!(body.contains("id=\"step-call_family\""));
    // The case file: history in pages, oldest first.
    assert!(body.contains("Plan opened"));
    assert!(body.contains("Step added: Call the family"));
    assert!(body.contains("Consent recorded"));

    // Not a plan, or not one she may see: a page that says so, never a server error.
    for path in [
        "/plans/not-an-id",
        &format!("/plans/{}", uuid::Uuid::new_v4()),
    ] {
        let missing = browser.get(path).await;
        assert_eq!(missing.status, 404, "{path}");
        assert!(missing.body.contains("no plan with this id"));
    }
}

#[tokio::test]
async fn a_plan_page_shows_a_liaison_their_step_and_nothing_of_the_case_file() {
    let api = TestApi::start().await;
    let (amina, plan) = worker_with_tasks(&api, "Ngozi Okafor").await;
    let liaison = api
        .party_in(
            "GOVERNMENT_LIAISON",
            "Luc",
            "Prefecture",
            "FR",
            "en",
            "Europe/Paris",
        )
        .await;
    let mut browser = Browser::new(&api);
    browser.sign_in(&liaison.token).await;
    // Before a step of it is theirs, the plan is not theirs to see.
    assert_eq!(browser.get(&format!("/plans/{plan}")).await.status, 404);
    api.data(
        &amina.token,
        "mutation($id: ID!, $luc: ID!) { assignStep(planId: $id, step: \"passport\", assignee: $luc) { version } }",
        json!({ "id": plan, "luc": liaison.id }),
    )
    .await;
    let seen = api
        .data(
            &liaison.token,
            "query($id: ID!) { plan(id: $id) { person { fullName } steps { key title } } }",
            json!({ "id": plan }),
        )
        .await;
    let page = browser.get(&format!("/plans/{plan}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    // Their document tasks have a page of their own, and no plan is theirs to change.
    assert!(page.body.contains(">Travel documents</a>"), "{}", page.body);
    let documents = browser.get("/inbox?kind=TRAVEL_DOCUMENT").await;
    assert!(
        documents.body.contains("Passport") || documents.body.contains("passport"),
        "{}",
        documents.body
    );
    assert!(!page.body.contains("/new-step"), "{}", page.body);
    assert!(!page.body.contains("/steps/passport"), "{}", page.body);
    for step in seen["plan"]["steps"].as_array().unwrap() {
        assert!(page
            .body
            .contains(&format!("id=\"step-{}\"", step["key"].as_str().unwrap())));
    }
    assert_eq!(
        page.body.matches("<li id=\"step-").count(),
        seen["plan"]["steps"].as_array().unwrap().len(),
        "no step the API hides"
    );
    if seen["plan"]["person"]["fullName"].is_null() {
        assert!(!page.body.contains("Ngozi"));
    }
    assert!(!page.body.contains("Call the family"));
    assert!(!page.body.contains("id=\"history\""), "no case file");
    assert!(!page.body.contains("id=\"goals\""));
}

/// A step's status, as the API answers it.
async fn step_status(api: &TestApi, token: &str, plan: &str, step: &str) -> String {
    api.data(
        token,
        "query($id: ID!, $s: String!) { plan(id: $id) { step(key: $s) { status } } }",
        json!({ "id": plan, "s": step }),
    )
    .await["plan"]["step"]["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn plan_version(api: &TestApi, token: &str, plan: &str) -> u64 {
    api.data(
        token,
        "query($id: ID!) { plan(id: $id) { version } }",
        json!({ "id": plan }),
    )
    .await["plan"]["version"]
        .as_u64()
        .unwrap()
}

/// Sends the plan page's form `action` for `step` as the page gave it, with `extra` fields.
async fn send_form(
    browser: &mut Browser,
    plan: &str,
    action: &str,
    page: &Page,
    extra: &[(&str, &str)],
) -> Page {
    let path = format!("/plans/{plan}/{action}");
    // A step's buttons send the page's one form of hidden fields (its action is `start`);
    // consent and the milestones have forms of their own.
    let holder =
        if action.ends_with("consent") || ["departure", "arrival", "close"].contains(&action) {
            path.clone()
        } else {
            format!("/plans/{plan}/start")
        };
    let mut form = vec![
        ("form_token".to_owned(), page.hidden(&holder, "form_token")),
        ("version".to_owned(), page.hidden(&holder, "version")),
        ("key".to_owned(), page.hidden(&holder, "key")),
    ];
    for (k, v) in extra {
        form.push(((*k).to_owned(), (*v).to_owned()));
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    browser.post(&path, &form).await
}

#[tokio::test]
async fn a_step_is_started_and_done_from_its_plan_page_and_the_same_form_twice_counts_once() {
    let api = TestApi::start().await;
    let (amina, plan) = worker_with_tasks(&api, "Ngozi Okafor").await;
    let mut browser = Browser::new(&api);
    browser.sign_in(&amina.token).await;
    let page = browser.get(&format!("/plans/{plan}")).await;
    let started = send_form(
        &mut browser,
        &plan,
        "start",
        &page,
        &[("step", "call_family")],
    )
    .await;
    assert_eq!(started.status, 303, "{}", started.body);
    assert_eq!(
        started.location(),
        format!("/plans/{plan}#step-call_family")
    );
    assert_eq!(
        step_status(&api, &amina.token, &plan, "call_family").await,
        "IN_PROGRESS"
    );
    // Sent again (a double click, a retry after a lost answer): recorded once.
    let version = plan_version(&api, &amina.token, &plan).await;
    let again = send_form(
        &mut browser,
        &plan,
        "start",
        &page,
        &[("step", "call_family")],
    )
    .await;
    assert_eq!(again.status, 303, "{}", again.body);
    assert_eq!(plan_version(&api, &amina.token, &plan).await, version);

    let page = browser.get(&format!("/plans/{plan}")).await;
    let done = send_form(
        &mut browser,
        &plan,
        "complete",
        &page,
        &[("step", "call_family")],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        step_status(&api, &amina.token, &plan, "call_family").await,
        "DONE"
    );
}

#[tokio::test]
async fn a_form_based_on_an_old_version_is_refused_and_what_changed_is_shown() {
    let api = TestApi::start().await;
    let (amina, plan) = worker_with_tasks(&api, "Ngozi Okafor").await;
    let mut browser = Browser::new(&api);
    browser.sign_in(&amina.token).await;
    let page = browser.get(&format!("/plans/{plan}")).await;
    // Meanwhile, in another window: the clinic is blocked.
    api.data(
        &amina.token,
        "mutation($id: ID!) { blockStep(planId: $id, step: \"book_clinic\", reason: \"Clinic closed\") { version } }",
        json!({ "id": plan }),
    )
    .await;
    let version = plan_version(&api, &amina.token, &plan).await;
    let stale = send_form(
        &mut browser,
        &plan,
        "start",
        &page,
        &[("step", "call_family")],
    )
    .await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert!(stale.body.contains("Someone changed this plan"));
    // What changed, in the conflict's own section (the history below holds it too).
    let section = &stale.body[stale.body.find("class=\"conflict\"").unwrap()..];
    let section = &section[..section.find("</section>").unwrap()];
    assert!(
        section.contains("Step blocked: Book the clinic"),
        "{section}"
    );
    assert_eq!(
        section.matches("<li>").count(),
        1,
        "only what changed: {section}"
    );
    assert_eq!(
        plan_version(&api, &amina.token, &plan).await,
        version,
        "nothing written"
    );
    assert_eq!(
        step_status(&api, &amina.token, &plan, "call_family").await,
        "READY"
    );
    // Shown at the form's address, the page follows changes from its own.
    let own = format!("data-page=\"/plans/{plan}\"");
    assert!(
        stale.body.contains(&own) || stale.body.contains(&own.replace('/', "&#x2f;")),
        "{}",
        stale.body
    );
    // The page it answers is the plan as it is now: its forms carry the new version.
    assert_eq!(
        stale.hidden(&format!("/plans/{plan}/start"), "version"),
        version.to_string()
    );
}

#[tokio::test]
async fn a_form_with_bad_input_says_so_beside_the_field_keeps_what_was_typed_and_writes_nothing() {
    let api = TestApi::start().await;
    let (amina, plan) = worker_with_tasks(&api, "Ngozi Okafor").await;
    let mut browser = Browser::new(&api);
    browser.sign_in(&amina.token).await;
    let page = browser.get(&format!("/plans/{plan}")).await;
    let version = plan_version(&api, &amina.token, &plan).await;

    let blank = send_form(
        &mut browser,
        &plan,
        "block",
        &page,
        &[("step", "call_family"), ("reason", "   ")],
    )
    .await;
    assert_eq!(blank.status, 422);
    assert!(blank.body.contains("This is needed: write a few words."));
    assert!(blank.body.contains("id=\"block-call_family-error\""));
    let long = "x".repeat(2001);
    let too_long = send_form(
        &mut browser,
        &plan,
        "block",
        &page,
        &[("step", "call_family"), ("reason", &long)],
    )
    .await;
    assert_eq!(too_long.status, 422);
    assert!(too_long.body.contains("At most 2000 characters"));
    assert!(too_long.body.contains(&long), "what was typed is kept");
    let bad_status = send_form(
        &mut browser,
        &plan,
        "document",
        &page,
        &[("step", "passport"), ("status", "LOST")],
    )
    .await;
    assert_eq!(bad_status.status, 422);
    let unknown_step = send_form(&mut browser, &plan, "start", &page, &[("step", "nope")]).await;
    assert!(
        [404, 422].contains(&unknown_step.status),
        "{}",
        unknown_step.body
    );
    assert!(unknown_step.body.contains("Not recorded"));
    let unconfirmed = send_form(&mut browser, &plan, "withdraw-consent", &page, &[]).await;
    assert_eq!(unconfirmed.status, 422);
    assert!(unconfirmed.body.contains("Tick the box to confirm"));
    let foreign = browser
        .post_with(
            &format!("/plans/{plan}/start"),
            &[
                (
                    "form_token",
                    &page.hidden(&format!("/plans/{plan}/start"), "form_token"),
                ),
                ("version", &version.to_string()),
                ("step", "call_family"),
            ],
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(foreign.status, 403);
    let no_token = browser
        .post(
            &format!("/plans/{plan}/start"),
            &[("version", &version.to_string()), ("step", "call_family")],
        )
        .await;
    assert_eq!(no_token.status, 403);
    assert_eq!(
        plan_version(&api, &amina.token, &plan).await,
        version,
        "nothing written"
    );

    // Confirmed, the withdrawal suspends the plan, as the form said it would.
    let page = browser.get(&format!("/plans/{plan}")).await;
    assert!(page.body.contains("Withdrawing consent suspends the plan"));
    let withdrawn = send_form(
        &mut browser,
        &plan,
        "withdraw-consent",
        &page,
        &[("confirm", "on")],
    )
    .await;
    assert_eq!(withdrawn.status, 303, "{}", withdrawn.body);
    let suspended = api
        .data(
            &amina.token,
            "query($id: ID!) { plan(id: $id) { suspended } }",
            json!({ "id": plan }),
        )
        .await;
    assert_eq!(suspended["plan"]["suspended"], true);
}

/// Reads a server-sent event stream until an event named `name` comes, or `within` passes.
async fn next_event<B: AsRef<[u8]>>(
    stream: &mut (impl futures::Stream<Item = reqwest::Result<B>> + Unpin),
    seen: &mut String,
    name: &str,
    within: StdDuration,
) -> bool {
    use futures::StreamExt as _;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(at) = seen.find(&format!("event: {name}\n")) {
            seen.drain(..at + name.len() + 8);
            return true;
        }
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(chunk))) => seen.push_str(&String::from_utf8_lossy(chunk.as_ref())),
            _ => return false,
        }
    }
}

#[tokio::test]
async fn a_plan_page_hears_of_changes_and_of_its_session_ending() {
    let api = TestApi::start().await;
    let (amina, plan) = worker_with_tasks(&api, "Ngozi Okafor").await;
    let mut browser = Browser::new(&api);
    browser.sign_in(&amina.token).await;
    let page = browser.get(&format!("/plans/{plan}")).await;
    let version = plan_version(&api, &amina.token, &plan).await;
    let live = format!("/plans/{plan}/live?since={version}");
    assert!(
        page.body.contains(&format!(
            "data-live=\"{}\"",
            live.replace('/', "&#x2f;")
                .replace('=', "&#x3d;")
                .replace('?', "&#x3f;")
        )) || page.body.contains(&format!("data-live=\"{live}\"")),
        "{}",
        page.body
    );

    let response = browser
        .http
        .get(format!("{}{live}", browser.base))
        .header("cookie", browser.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = Box::pin(response.bytes_stream());
    let mut seen = String::new();
    api.data(
        &amina.token,
        "mutation($id: ID!) { startStep(planId: $id, step: \"call_family\") { version } }",
        json!({ "id": plan }),
    )
    .await;
    assert!(
        next_event(
            &mut stream,
            &mut seen,
            "changed",
            StdDuration::from_secs(10)
        )
        .await,
        "a change is told: {seen}"
    );
    // Later changes come through the plan's subscription, each told.
    tokio::time::sleep(StdDuration::from_millis(1500)).await;
    api.data(
        &amina.token,
        "mutation($id: ID!) { completeStep(planId: $id, step: \"call_family\") { version } }",
        json!({ "id": plan }),
    )
    .await;
    assert!(
        next_event(
            &mut stream,
            &mut seen,
            "changed",
            StdDuration::from_secs(10)
        )
        .await,
        "a later change is told: {seen}"
    );
    let form_token = browser.form_token().await;
    browser
        .post("/sign-out", &[("form_token", &form_token)])
        .await;
    assert!(
        next_event(&mut stream, &mut seen, "ended", StdDuration::from_secs(10)).await,
        "the end of the session is told: {seen}"
    );

    // Without a session, nothing to follow.
    let anonymous = reqwest::get(format!("{}/plans/{plan}/live", browser.base))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn a_survivor_is_registered_and_her_plan_opened_from_one_form_once() {
    let api = TestApi::start().await;
    let amina = api
        .party_in(
            "SOCIAL_WORKER",
            "Amina",
            "Safe Passage",
            "GB",
            "en",
            "Europe/London",
        )
        .await;
    let mut browser = Browser::new(&api);
    browser.sign_in(&amina.token).await;
    let form = browser.get("/plans/new").await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("value=\"standard-avr\""));
    let token = form.hidden("/plans/new", "form_token");
    let key = form.hidden("/plans/new", "key");
    let persons = || api.db.count("SELECT count(*) FROM person_view");

    let wrong = browser
        .post(
            "/plans/new",
            &[
                ("form_token", &token),
                ("key", &key),
                ("full_name", "  "),
                ("date_of_birth", "1999-02-31"),
                ("phone", "+234 801 234 5678"),
                ("origin_country", "Nigeria"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.body.contains("id=\"full_name-error\""));
    assert!(wrong.body.contains("id=\"date_of_birth-error\""));
    assert!(wrong.body.contains("two-letter ISO code"));
    assert!(
        wrong.body.contains("value=\"Nigeria\""),
        "what was typed is kept"
    );
    assert!(wrong.body.contains("+234 801 234 5678"));
    assert_eq!(persons().await, 0, "nothing written");

    let fields = [
        ("form_token", token.as_str()),
        ("key", key.as_str()),
        ("full_name", "Blessing Eze"),
        ("date_of_birth", "1999-02-14"),
        ("origin_country", "ng"),
        ("template", "standard-avr"),
    ];
    let opened = browser.post("/plans/new", &fields).await;
    assert_eq!(opened.status, 303, "{}", opened.body);
    let plan_path = opened.location().to_owned();
    assert!(plan_path.starts_with("/plans/"));
    let plan = browser.get(&plan_path).await;
    assert!(plan.body.contains("Blessing Eze"));
    assert!(plan.body.contains("<dd>NG</dd>"));
    // Sent again (the answer was lost): the same plan, one survivor.
    let again = browser.post("/plans/new", &fields).await;
    assert_eq!(again.location(), plan_path);
    assert_eq!(persons().await, 1);

    // The list shows it, and filters.
    let list = browser.get("/plans").await;
    assert!(list.body.contains("Blessing Eze"), "{}", list.body);
    assert!(list.body.contains(&format!("href=\"{plan_path}\"")));
    let elsewhere = browser.get("/plans?country=AL").await;
    assert!(!elsewhere.body.contains("Blessing Eze"));
    assert!(elsewhere.body.contains("No plan matches."));
    let nigeria = browser.get("/plans?country=ng&status=DRAFT").await;
    assert!(nigeria.body.contains("Blessing Eze"), "{}", nigeria.body);
    let bad = browser.get("/plans?country=N1G").await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("value=\"N1G\""));
}

#[tokio::test]
async fn her_record_is_corrected_with_a_reason_and_her_notes_are_added_from_her_page() {
    let api = TestApi::start().await;
    let (amina, plan) = worker_with_tasks(&api, "Ngozi Okafor").await;
    let mut browser = Browser::new(&api);
    browser.sign_in(&amina.token).await;
    let plan_page = browser.get(&format!("/plans/{plan}")).await;
    let start = plan_page.body.find("href=\"/persons/").unwrap() + 6;
    let record = plan_page.body[start..]
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let page = browser.get(&record).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("value=\"Ngozi Okafor\""));
    let correct = format!("{record}/correct");
    let token = page.hidden(&correct, "form_token");
    let version = page.hidden(&correct, "version");
    let key = page.hidden(&correct, "key");
    let person = record.trim_start_matches("/persons/").to_owned();
    let read_phone = || async {
        api.data(
            &amina.token,
            "query($p: ID!) { person(id: $p) { phone version } }",
            json!({ "p": person }),
        )
        .await["person"]
            .clone()
    };
    let before = read_phone().await;

    // No reason: said beside the field, the new phone kept, nothing written.
    let no_reason = browser
        .post(
            &correct,
            &[
                ("form_token", &token),
                ("version", &version),
                ("key", &key),
                ("full_name", "Ngozi Okafor"),
                ("phone", "+234 809 000 0000"),
                ("reason", ""),
            ],
        )
        .await;
    assert_eq!(no_reason.status, 422);
    assert!(no_reason.body.contains("id=\"reason-error\""));
    assert!(no_reason.body.contains("value=\"+234 809 000 0000\""));
    assert_eq!(read_phone().await, before);

    let corrected = browser
        .post(
            &correct,
            &[
                ("form_token", &token),
                ("version", &version),
                ("key", &key),
                ("full_name", "Ngozi Okafor"),
                ("phone", "+234 809 000 0000"),
                ("reason", "New number"),
            ],
        )
        .await;
    assert_eq!(corrected.status, 303, "{}", corrected.body);
    assert_eq!(read_phone().await["phone"], "+234 809 000 0000");

    // A second correction based on the page as first shown: someone changed her meanwhile.
    let stale = browser
        .post(
            &correct,
            &[
                ("form_token", &token),
                ("version", &version),
                ("key", "another"),
                ("full_name", "Ngozi Okafor"),
                ("phone", "+234 801 111 1111"),
                ("reason", "Typo"),
            ],
        )
        .await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert!(stale.body.contains("Her record was changed"));
    assert_eq!(read_phone().await["phone"], "+234 809 000 0000");

    let page = browser.get(&record).await;
    let note = format!("{record}/note");
    let empty = browser
        .post(
            &note,
            &[
                ("form_token", &page.hidden(&note, "form_token")),
                ("note", " "),
            ],
        )
        .await;
    assert_eq!(empty.status, 422);
    let added = browser
        .post(
            &note,
            &[
                ("form_token", &page.hidden(&note, "form_token")),
                ("key", &page.hidden(&note, "key")),
                ("note", "Prefers calls after 6 pm"),
            ],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    assert!(browser
        .get(&record)
        .await
        .body
        .contains("Prefers calls after 6 pm"));

    // Not a survivor of hers to see: a page that says so.
    let liaison = api.party("GOVERNMENT_LIAISON", "Luc", "Prefecture").await;
    let mut other = Browser::new(&api);
    other.sign_in(&liaison.token).await;
    assert_eq!(other.get(&record).await.status, 404);
}

#[tokio::test]
async fn departure_and_closing_are_recorded_from_the_plan_page_or_refused_with_why() {
    let api = TestApi::start().await;
    let (amina, plan) = worker_with_tasks(&api, "Ngozi Okafor").await;
    let mut browser = Browser::new(&api);
    browser.sign_in(&amina.token).await;
    let page = browser.get(&format!("/plans/{plan}")).await;
    assert!(page
        .body
        .contains(&format!("action=\"/plans/{plan}/departure\"")));
    let version = plan_version(&api, &amina.token, &plan).await;
    let bad_time = send_form(
        &mut browser,
        &plan,
        "departure",
        &page,
        &[("at", "tomorrow")],
    )
    .await;
    assert_eq!(bad_time.status, 422);
    assert!(bad_time.body.contains("Give a date and time"));
    // Her travel is not ready (the passport is not issued): the API refuses, the page says why.
    let not_ready = send_form(
        &mut browser,
        &plan,
        "departure",
        &page,
        &[("at", "2026-03-02T08:00")],
    )
    .await;
    assert_eq!(not_ready.status, 422, "{}", not_ready.body);
    assert!(
        not_ready.body.contains("Not recorded"),
        "{}",
        not_ready.body
    );
    assert_eq!(
        plan_version(&api, &amina.token, &plan).await,
        version,
        "nothing written"
    );

    // Ready: a contact designated, the passport issued. Her local time is recorded as such.
    api.data(
        &amina.token,
        "mutation($id: ID!) {
           contact: completeStep(planId: $id, step: \"origin_contact\") { version }
           passport: updateDocumentStatus(planId: $id, step: \"passport\", status: ISSUED) { version } }",
        json!({ "id": plan }),
    )
    .await;
    api.clock.advance(Duration::days(41));
    browser.sign_in(&amina.token).await;
    let page = browser.get(&format!("/plans/{plan}")).await;
    let departed = send_form(
        &mut browser,
        &plan,
        "departure",
        &page,
        &[("at", "2026-04-10T07:30")],
    )
    .await;
    assert_eq!(departed.status, 303, "{}", departed.body);
    let page = browser.get(&format!("/plans/{plan}")).await;
    assert!(page
        .body
        .contains(&format!("action=\"/plans/{plan}/arrival\"")));
    assert!(
        page.body.contains("Departure"),
        "a milestone on the timeline"
    );
    let arrived = send_form(
        &mut browser,
        &plan,
        "arrival",
        &page,
        &[("at", "2026-04-10T18:00")],
    )
    .await;
    assert_eq!(arrived.status, 303, "{}", arrived.body);
    let times = api
        .data(
            &amina.token,
            "query($id: ID!) { plan(id: $id) { departedAt arrivedAt } }",
            json!({ "id": plan }),
        )
        .await;
    // Europe/London is an hour ahead of UTC from 29 March.
    assert_eq!(times["plan"]["departedAt"], "2026-04-10T06:30:00+00:00");
    assert_eq!(times["plan"]["arrivedAt"], "2026-04-10T17:00:00+00:00");
    let page = browser.get(&format!("/plans/{plan}")).await;

    let closed = send_form(
        &mut browser,
        &plan,
        "close",
        &page,
        &[("close_reason", "OPTED_OUT")],
    )
    .await;
    assert_eq!(closed.status, 303, "{}", closed.body);
    let status = api
        .data(
            &amina.token,
            "query($id: ID!) { plan(id: $id) { status closeReason } }",
            json!({ "id": plan }),
        )
        .await;
    assert_eq!(status["plan"]["status"], "CLOSED");
    assert_eq!(status["plan"]["closeReason"], "OPTED_OUT");
    let page = browser.get(&format!("/plans/{plan}")).await;
    assert!(
        !page.body.contains("/close\""),
        "a closed plan offers no closing"
    );
}

#[tokio::test]
async fn a_supervisor_reads_who_saw_her_data_places_a_hold_and_erases_only_when_she_may() {
    let api = TestApi::start().await;
    let (amina, plan) = worker_with_tasks(&api, "Ngozi Okafor").await;
    let sofia = api
        .party_in(
            "SUPERVISOR",
            "Sofia",
            "Safe Passage",
            "GB",
            "en",
            "Europe/London",
        )
        .await;
    // Amina reads her through the console: that is in her access log.
    let mut amina_browser = Browser::new(&api);
    amina_browser.sign_in(&amina.token).await;
    let plan_page = amina_browser.get(&format!("/plans/{plan}")).await;
    let start = plan_page.body.find("href=\"/persons/").unwrap() + 6;
    let record = plan_page.body[start..]
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    // A social worker has no data-protection section.
    assert!(!amina_browser
        .get(&record)
        .await
        .body
        .contains("id=\"protection\""));

    let mut browser = Browser::new(&api);
    browser.sign_in(&sofia.token).await;
    let page = browser.get(&record).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("id=\"protection\""));
    assert!(page.body.contains("console plan: plan"), "{}", page.body);
    let token = page.hidden(&format!("{record}/hold"), "form_token");

    // A hold needs a reason; then it stops an erasure.
    let no_reason = browser
        .post(
            &format!("{record}/hold"),
            &[("form_token", &token), ("hold_reason", "")],
        )
        .await;
    assert_eq!(no_reason.status, 422);
    let held = browser
        .post(
            &format!("{record}/hold"),
            &[
                ("form_token", &token),
                ("key", "h1"),
                ("hold_reason", "Court case 2026/114"),
            ],
        )
        .await;
    assert_eq!(held.status, 303, "{}", held.body);
    let page = browser.get(&record).await;
    assert!(page.body.contains("On legal hold since"));
    assert!(page.body.contains("Court case 2026/114"));
    let unconfirmed = browser
        .post(
            &format!("{record}/erase"),
            &[
                ("form_token", &token),
                ("erasure_reason", "SURVIVOR_REQUEST"),
            ],
        )
        .await;
    assert_eq!(unconfirmed.status, 422);
    assert!(unconfirmed.body.contains("Tick the box"));
    let while_held = browser
        .post(
            &format!("{record}/erase"),
            &[
                ("form_token", &token),
                ("erasure_reason", "SURVIVOR_REQUEST"),
                ("confirm", "on"),
            ],
        )
        .await;
    assert_eq!(while_held.status, 422, "{}", while_held.body);
    assert!(
        while_held.body.contains("Not recorded"),
        "{}",
        while_held.body
    );
    let person = record.trim_start_matches("/persons/");
    let erased = || async {
        api.data(
            &sofia.token,
            "query($p: ID!) { person(id: $p) { erasedAt } }",
            json!({ "p": person }),
        )
        .await["person"]["erasedAt"]
            .clone()
    };
    assert!(erased().await.is_null(), "nothing erased");
    // Lifted, and her plan closed: erased.
    browser
        .post(
            &format!("{record}/lift"),
            &[
                ("form_token", &token),
                ("key", "l1"),
                ("hold_reason", "Case closed"),
            ],
        )
        .await;
    api.data(
        &amina.token,
        "mutation($id: ID!) { closePlan(planId: $id, reason: OPTED_OUT) { version } }",
        json!({ "id": plan }),
    )
    .await;
    let done = browser
        .post(
            &format!("{record}/erase"),
            &[
                ("form_token", &token),
                ("erasure_reason", "SURVIVOR_REQUEST"),
                ("confirm", "on"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(!erased().await.is_null());
    let page = browser.get(&record).await;
    assert!(page.body.contains("Her data was erased on"));
    assert!(!page.body.contains("Ngozi"));
}

#[tokio::test]
async fn a_survivor_is_found_by_a_posted_search_with_her_plans_and_nobody_else_finds_her() {
    let api = TestApi::start().await;
    let (amina, plan) = worker_with_tasks(&api, "Ngozi Okafor").await;
    let mut browser = Browser::new(&api);
    browser.sign_in(&amina.token).await;
    let list = browser.get("/plans").await;
    assert!(list
        .body
        .contains("action=\"/plans/search\" class=\"filters search\""));
    let token = list.hidden("/plans/search", "form_token");
    let found = browser
        .post(
            "/plans/search",
            &[("form_token", &token), ("name", "OKAFOR ngozi")],
        )
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert!(found.body.contains("Ngozi Okafor"));
    assert!(
        found.body.contains(&format!("href=\"/plans/{plan}\"")),
        "with her plan"
    );
    assert!(found.headers.get("location").is_none());
    let none = browser
        .post(
            "/plans/search",
            &[("form_token", &token), ("name", "Someone Else")],
        )
        .await;
    assert!(none.body.contains("Nobody of your organisation matches."));
    let nothing = browser
        .post("/plans/search", &[("form_token", &token)])
        .await;
    assert_eq!(nothing.status, 422);
    assert!(nothing
        .body
        .contains("Give a name, a date of birth, or both."));
    // Without the form token, or by someone outside the case team: nothing found.
    assert_eq!(
        browser
            .post("/plans/search", &[("name", "Ngozi")])
            .await
            .status,
        403
    );
    let liaison = api.party("GOVERNMENT_LIAISON", "Luc", "Prefecture").await;
    let mut other = Browser::new(&api);
    other.sign_in(&liaison.token).await;
    let token = other.form_token().await;
    let refused = other
        .post(
            "/plans/search",
            &[("form_token", &token), ("name", "Ngozi")],
        )
        .await;
    assert!(!refused.body.contains("Ngozi Okafor"));
    assert!([403, 422].contains(&refused.status), "{}", refused.status);
}

/// A plan two weeks after the survivor's return (the test clock on 2026-04-25): Amina its
/// case worker, Grace (a partner contact in Lagos, writing English) who received her and has
/// the first follow-up visit to make, with the survivor's consent to share her data.
pub(crate) async fn plan_in_follow_up(api: &TestApi) -> (Person, Person, String) {
    let amina = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let grace = api
        .party_in(
            "PARTNER_CONTACT",
            "Grace",
            "Hope Lagos",
            "NG",
            "en",
            "Africa/Lagos",
        )
        .await;
    let plan = api.open_plan(&amina.token, "Ngozi Okafor").await;
    let plan = plan.as_str().unwrap().to_owned();
    let v = json!({ "plan": plan, "grace": grace.id });
    api.data(
        &amina.token,
        "mutation($plan: ID!, $grace: ID!) {
           contact: assignStep(planId: $plan, step: \"origin_contact\", assignee: $grace) { version }
           visit: assignStep(planId: $plan, step: \"follow_up_1\", assignee: $grace) { version }
           consent: recordConsent(planId: $plan, consent: { kind: RETURN }) { version }
           sharing: recordConsent(planId: $plan, consent: { kind: DATA_SHARING, partner: $grace }) { version }
           passport: updateDocumentStatus(planId: $plan, step: \"passport\", status: ISSUED) { version } }",
        v.clone(),
    )
    .await;
    api.data(
        &grace.token,
        "mutation($plan: ID!) { completeStep(planId: $plan, step: \"origin_contact\") { version } }",
        v.clone(),
    )
    .await;
    api.clock.advance(Duration::days(41));
    api.data(
        &amina.token,
        "mutation($plan: ID!) { confirmDeparture(planId: $plan, departedAt: \"2026-04-10T06:00:00Z\") { version } }",
        v.clone(),
    )
    .await;
    api.data(
        &grace.token,
        "mutation($plan: ID!) { confirmArrival(planId: $plan, arrivedAt: \"2026-04-10T18:00:00Z\") { version } }",
        v.clone(),
    )
    .await;
    api.clock.advance(Duration::days(14));

    (amina, grace, plan)
}

#[tokio::test]
async fn a_partner_records_a_follow_up_visit_from_the_plan_page() {
    let api = TestApi::start().await;
    let (amina, grace, plan) = plan_in_follow_up(&api).await;
    let v = json!({ "plan": plan, "grace": grace.id });
    let mut browser = Browser::new(&api);
    browser.sign_in(&grace.token).await;
    let page = browser.get(&format!("/plans/{plan}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("name=\"visited_on-follow_up_1\""),
        "{}",
        page.body
    );
    let undated = send_form(
        &mut browser,
        &plan,
        "visit",
        &page,
        &[("step", "follow_up_1"), ("wellbeing-follow_up_1", "GOOD")],
    )
    .await;
    assert_eq!(undated.status, 422);
    assert!(undated.body.contains("Give the date of the visit"));
    let recorded = send_form(
        &mut browser,
        &plan,
        "visit",
        &page,
        &[
            ("step", "follow_up_1"),
            ("visited_on-follow_up_1", "2026-04-23"),
            ("wellbeing-follow_up_1", "FAIR"),
            ("concern-follow_up_1", "INCOME"),
            ("concern-follow_up_1", "HOUSING"),
        ],
    )
    .await;
    assert_eq!(recorded.status, 303, "{}", recorded.body);
    let outcome = api
        .data(
            &amina.token,
            "query($plan: ID!) { plan(id: $plan) { step(key: \"follow_up_1\") { outcome { visitedOn wellbeing concerns } } } }",
            v,
        )
        .await;
    let outcome = &outcome["plan"]["step"]["outcome"];
    assert_eq!(outcome["visitedOn"], "2026-04-23");
    assert_eq!(outcome["wellbeing"], "FAIR");
    let mut concerns: Vec<&str> = outcome["concerns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    concerns.sort_unstable();
    assert_eq!(concerns, ["HOUSING", "INCOME"]);
}

/// A step as the API answers it to its case worker.
async fn step_of(api: &TestApi, token: &str, plan: &str, step: &str) -> serde_json::Value {
    api.data(
        token,
        "query($id: ID!, $s: String!) { plan(id: $id) { step(key: $s) {
           status priority dependsOn assignee { id } followUpOn
           dueRule { localDateTime timeZone milestone days }
           reminderPolicy { beforeDueDays onDue overdueEveryDays escalateAfterDays } } } }",
        json!({ "id": plan, "s": step }),
    )
    .await["plan"]["step"]
        .clone()
}

/// Sends the form `action` of a page as it gave it (its hidden fields), with `extra` fields.
async fn send_page_form(
    browser: &mut Browser,
    action: &str,
    page: &Page,
    extra: &[(&str, &str)],
) -> Page {
    let mut form = vec![
        ("form_token".to_owned(), page.hidden(action, "form_token")),
        ("version".to_owned(), page.hidden(action, "version")),
        ("key".to_owned(), page.hidden(action, "key")),
    ];
    if let Some(taken) = page.hidden_if_any(action, "taken") {
        form.push(("taken".to_owned(), taken));
    }
    for (k, v) in extra {
        form.push(((*k).to_owned(), (*v).to_owned()));
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    browser.post(action, &form).await
}

#[tokio::test]
async fn a_step_is_rescheduled_assigned_chained_prioritised_and_given_reminders_from_its_page() {
    let api = TestApi::start().await;
    let (amina, plan) = worker_with_tasks(&api, "Ngozi Okafor").await;
    let liaison = api
        .party_in(
            "GOVERNMENT_LIAISON",
            "Kofi Mensah",
            "Safe Passage",
            "GB",
            "en",
            "Europe/London",
        )
        .await;
    let mut browser = Browser::new(&api);
    browser.sign_in(&amina.token).await;
    let plan_page = browser.get(&format!("/plans/{plan}")).await;
    let edit = format!("/plans/{plan}/steps/book_clinic");
    assert!(
        plan_page.body.contains(&format!("href=\"{edit}\"")),
        "{}",
        plan_page.body
    );
    let page = browser.get(&edit).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Kofi Mensah"), "{}", page.body);
    assert!(
        page.body.contains("value=\"2026-03-20T10:00\""),
        "{}",
        page.body
    );

    // A date that does not exist: said beside the field, kept, and nothing recorded.
    let version = plan_version(&api, &amina.token, &plan).await;
    let bad = send_page_form(
        &mut browser,
        &format!("{edit}/reschedule"),
        &page,
        &[
            ("due", "at"),
            ("due_at", "2026-02-30T10:00"),
            ("follow_up_on", ""),
        ],
    )
    .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(
        bad.body.contains("value=\"2026-02-30T10:00\""),
        "{}",
        bad.body
    );
    assert!(bad.body.contains("aria-invalid=\"true\""), "{}", bad.body);
    assert_eq!(plan_version(&api, &amina.token, &plan).await, version);

    let moved = send_page_form(
        &mut browser,
        &format!("{edit}/reschedule"),
        &page,
        &[
            ("due", "at"),
            ("due_at", "2026-04-02T11:30"),
            ("follow_up_on", "2026-04-09"),
        ],
    )
    .await;
    assert_eq!(moved.status, 303, "{}", moved.body);
    assert_eq!(moved.location(), format!("{edit}#reschedule"));
    let step = step_of(&api, &amina.token, &plan, "book_clinic").await;
    assert_eq!(step["dueRule"]["localDateTime"], "2026-04-02T11:30:00");
    assert_eq!(step["dueRule"]["timeZone"], "Europe/London");
    assert_eq!(step["followUpOn"], "2026-04-09");

    // The page's forms carry the version it showed: one sent after the change above is
    // based on an old version, refused, and what changed is said.
    let stale = send_page_form(
        &mut browser,
        &format!("{edit}/priority"),
        &page,
        &[("priority", "URGENT")],
    )
    .await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert!(stale.body.contains("class=\"conflict\""), "{}", stale.body);
    assert!(
        stale.body.contains("Rescheduled") || stale.body.contains("rescheduled"),
        "what changed is listed: {}",
        stale.body
    );
    assert!(
        stale.body.contains("<option value=\"URGENT\" selected>"),
        "what was chosen is kept: {}",
        stale.body
    );
    assert_eq!(
        step_of(&api, &amina.token, &plan, "book_clinic").await["priority"],
        "NORMAL"
    );

    // The API's rules stand: a liaison does not take a custom task, and the page says so
    // beside the form.
    let page = browser.get(&edit).await;
    let refused = send_page_form(
        &mut browser,
        &format!("{edit}/assign"),
        &page,
        &[("assignee", liaison.id.as_str()), ("group", "")],
    )
    .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body.contains("id=\"assign-error\"") && refused.body.contains("government liaison"),
        "{}",
        refused.body
    );
    let colleague = api
        .party_in(
            "SOCIAL_WORKER",
            "Bea Lindqvist",
            "Safe Passage",
            "GB",
            "en",
            "Europe/London",
        )
        .await;
    for (change, fields, check) in [
        (
            "assign",
            vec![("assignee", colleague.id.as_str()), ("group", "")],
            "assignee",
        ),
        ("depends", vec![("depends_on", "call_family")], "dependsOn"),
        ("priority", vec![("priority", "URGENT")], "priority"),
        (
            "reminders",
            vec![
                ("before_due_days", "2"),
                ("on_due", "on"),
                ("overdue_every_days", "3"),
                ("escalate_after_days", "7"),
            ],
            "reminderPolicy",
        ),
    ] {
        let page = browser.get(&edit).await;
        let sent = send_page_form(&mut browser, &format!("{edit}/{change}"), &page, &fields).await;
        assert_eq!(sent.status, 303, "{change}: {}", sent.body);
        let step = step_of(&api, &amina.token, &plan, "book_clinic").await;
        let expected = match check {
            "assignee" => json!({ "id": colleague.id }),
            "dependsOn" => json!(["call_family"]),
            "priority" => json!("URGENT"),
            _ => {
                json!({ "beforeDueDays": 2, "onDue": true, "overdueEveryDays": 3, "escalateAfterDays": 7 })
            }
        };
        assert_eq!(step[check], expected, "{change}");
    }
    // A number that is not one: said, kept, nothing recorded.
    let version = plan_version(&api, &amina.token, &plan).await;
    let page = browser.get(&edit).await;
    let bad = send_page_form(
        &mut browser,
        &format!("{edit}/reminders"),
        &page,
        &[("before_due_days", "two"), ("on_due", "on")],
    )
    .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body.contains("value=\"two\""), "{}", bad.body);
    assert_eq!(plan_version(&api, &amina.token, &plan).await, version);

    // Someone who does not run the case has no such page.
    let mut other = Browser::new(&api);
    other.sign_in(&liaison.token).await;
    assert_eq!(other.get(&edit).await.status, 404);
}

#[tokio::test]
async fn a_step_is_added_to_a_plan_and_one_not_started_is_removed_with_a_reason() {
    let api = TestApi::start().await;
    let (amina, plan) = worker_with_tasks(&api, "Ngozi Okafor").await;
    let mut browser = Browser::new(&api);
    browser.sign_in(&amina.token).await;
    let plan_page = browser.get(&format!("/plans/{plan}")).await;
    let add = format!("/plans/{plan}/new-step");
    assert!(
        plan_page.body.contains(&format!("href=\"{add}\"")),
        "{}",
        plan_page.body
    );
    let page = browser.get(&add).await;
    assert_eq!(page.status, 200, "{}", page.body);

    // Without a title: said beside it, the rest kept, nothing recorded.
    let version = plan_version(&api, &amina.token, &plan).await;
    let untitled = send_page_form(
        &mut browser,
        &add,
        &page,
        &[
            ("kind", "LEGAL"),
            ("title", " "),
            ("due", "at"),
            ("due_at", "2026-04-01T09:00"),
        ],
    )
    .await;
    assert_eq!(untitled.status, 422, "{}", untitled.body);
    assert!(
        untitled.body.contains("value=\"2026-04-01T09:00\""),
        "{}",
        untitled.body
    );
    assert_eq!(plan_version(&api, &amina.token, &plan).await, version);

    let fields = [
        ("kind", "LEGAL"),
        ("title", "Meet the lawyer"),
        ("assignee", amina.id.as_str()),
        ("priority", "HIGH"),
        ("due", "at"),
        ("due_at", "2026-04-01T09:00"),
        ("depends_on", "call_family"),
    ];
    let added = send_page_form(&mut browser, &add, &page, &fields).await;
    assert_eq!(added.status, 303, "{}", added.body);
    assert_eq!(
        added.location(),
        format!("/plans/{plan}#step-meet_the_lawyer")
    );
    let step = step_of(&api, &amina.token, &plan, "meet_the_lawyer").await;
    assert_eq!(step["priority"], "HIGH");
    assert_eq!(step["dependsOn"], json!(["call_family"]));
    assert_eq!(step["dueRule"]["localDateTime"], "2026-04-01T09:00:00");
    // The same form sent twice (a double click): one step.
    let version = plan_version(&api, &amina.token, &plan).await;
    let again = send_page_form(&mut browser, &add, &page, &fields).await;
    assert_eq!(again.status, 303, "{}", again.body);
    assert_eq!(plan_version(&api, &amina.token, &plan).await, version);
    // Another step of the same title gets a key of its own.
    let page = browser.get(&add).await;
    let second = send_page_form(&mut browser, &add, &page, &fields).await;
    assert_eq!(
        second.location(),
        format!("/plans/{plan}#step-meet_the_lawyer_2")
    );

    let edit = format!("/plans/{plan}/steps/meet_the_lawyer_2");
    let page = browser.get(&edit).await;
    let unexplained = send_page_form(
        &mut browser,
        &format!("{edit}/remove"),
        &page,
        &[("reason", "")],
    )
    .await;
    assert_eq!(unexplained.status, 422, "{}", unexplained.body);
    let removed = send_page_form(
        &mut browser,
        &format!("{edit}/remove"),
        &page,
        &[("reason", "Added twice")],
    )
    .await;
    assert_eq!(removed.status, 303, "{}", removed.body);
    assert_eq!(removed.location(), format!("/plans/{plan}#steps"));
    let steps = api
        .data(
            &amina.token,
            "query($id: ID!) { plan(id: $id) { steps { key } } }",
            json!({ "id": plan }),
        )
        .await;
    assert!(!steps.to_string().contains("meet_the_lawyer_2"), "{steps}");
}

#[tokio::test]
async fn a_supervisor_sees_late_steps_by_worker_with_escalations_and_hands_cases_over() {
    let smtp = SmtpCatcher::start().await;
    let url = smtp.url();
    let api = TestApi::start_with(move |s| Settings {
        no_scheduler: false,
        smtp_url: Some(url.into()),
        scheduler_max_sleep: StdDuration::from_millis(200).into(),
        ..s
    })
    .await;
    let sofia = api
        .party_in(
            "SUPERVISOR",
            "Sofia",
            "Safe Passage",
            "GB",
            "en",
            "Europe/London",
        )
        .await;
    let (amina, plan) = worker_with_tasks(&api, "Ngozi Okafor").await;
    let bea = api
        .party_in(
            "SOCIAL_WORKER",
            "Bea Lindqvist",
            "Safe Passage",
            "GB",
            "en",
            "Europe/London",
        )
        .await;
    // Amina answers to Sofia, and a late call to the family is escalated after a day.
    let organisation = api.organisation("Safe Passage").await;
    api.data(
        &api.admin,
        "mutation($id: ID!, $input: PartyInput!) { updateParty(id: $id, input: $input) { id } }",
        json!({ "id": amina.id, "input": {
            "displayName": "Amina", "email": "amina@safe-passage.example",
            "role": "SOCIAL_WORKER", "organisation": organisation, "country": "GB",
            "language": "en", "timeZone": "Europe/London", "supervisor": sofia.id } }),
    )
    .await;
    api.data(
        &amina.token,
        "mutation($id: ID!) { setReminderPolicy(planId: $id, step: \"call_family\",
           policy: { onDue: false, escalateAfterDays: 1 }) { version } }",
        json!({ "id": plan }),
    )
    .await;
    api.clock
        .set(chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 3, 7, 10, 0, 30).unwrap());
    let mut escalated = false;
    for _ in 0..100 {
        let step = step_of_sent(&api, &amina.token, &plan, "call_family").await;
        escalated = step.contains("ESCALATION");
        if escalated {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    assert!(escalated, "the late step is escalated");

    let mut browser = Browser::new(&api);
    browser.sign_in(&sofia.token).await;
    let team = browser.get("/team").await;
    assert_eq!(team.status, 200, "{}", team.body);
    assert!(team.body.contains("<h3>Amina</h3>"), "{}", team.body);
    assert!(team.body.contains("Call the family"), "{}", team.body);
    assert!(team.body.contains("Overdue by 2 days"), "{}", team.body);
    assert!(team.body.contains("escalated to you"), "{}", team.body);
    assert!(
        !team.body.contains("Book the clinic"),
        "not late: {}",
        team.body
    );
    assert!(
        team.body.contains("href=\"/team\""),
        "the nav names the page"
    );

    // The plans list filters by case worker.
    let listed = |page: &Page| page.body.contains(&format!("href=\"/plans/{plan}\""));
    let list = browser.get("/plans").await;
    assert!(
        list.body.contains("<option value=\"") && list.body.contains(">Bea Lindqvist</option>"),
        "{}",
        list.body
    );
    assert!(listed(
        &browser.get(&format!("/plans?worker={}", amina.id)).await
    ));
    assert!(!listed(
        &browser.get(&format!("/plans?worker={}", bea.id)).await
    ));

    // The same worker twice: said, nothing handed over.
    let token = team.hidden("/team/hand-over", "form_token");
    let same = browser
        .post(
            "/team/hand-over",
            &[
                ("form_token", &token),
                ("from", &amina.id),
                ("to", &amina.id),
            ],
        )
        .await;
    assert_eq!(same.status, 422, "{}", same.body);
    assert!(same.body.contains("two different"), "{}", same.body);
    let handed = browser
        .post(
            "/team/hand-over",
            &[("form_token", &token), ("from", &amina.id), ("to", &bea.id)],
        )
        .await;
    // Said at an address of its own: reloading it hands nothing over again.
    assert_eq!(handed.status, 303, "{}", handed.body);
    let said = browser.get(handed.location()).await;
    assert!(
        said.body.contains("One plan was handed over."),
        "{}",
        said.body
    );
    let worker = api
        .data(
            &sofia.token,
            "query($id: ID!) { plan(id: $id) { caseWorker { id } } }",
            json!({ "id": plan }),
        )
        .await;
    assert_eq!(worker["plan"]["caseWorker"]["id"], bea.id.as_str());
    assert!(!listed(
        &browser.get(&format!("/plans?worker={}", amina.id)).await
    ));
    assert!(listed(
        &browser.get(&format!("/plans?worker={}", bea.id)).await
    ));

    // A colleague is invited to sign in from the same page: an email with an invitation link.
    let before = smtp.messages().len();
    let token = said.hidden("/team/invite", "form_token");
    let bad = browser
        .post("/team/invite", &[("form_token", &token), ("party", "Bea")])
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body.contains("id=\"invite-error\""), "{}", bad.body);
    let invited = browser
        .post(
            "/team/invite",
            &[("form_token", &token), ("party", &bea.id)],
        )
        .await;
    assert_eq!(invited.status, 303, "{}", invited.body);
    assert_eq!(invited.location(), "/team?invited=1#invite");
    let said = browser.get("/team?invited=1").await;
    assert!(
        said.body.contains("An invitation was sent"),
        "{}",
        said.body
    );
    let mail = smtp.wait_for(before + 1, StdDuration::from_secs(10)).await;
    assert!(
        mail[before..]
            .iter()
            .any(|m| m.to.iter().any(|to| to.contains("bea.lindqvist"))
                && m.data.contains("/invitations/")),
        "Bea is emailed an invitation"
    );

    // A social worker has no such page, and cannot hand cases over.
    let mut amina_browser = Browser::new(&api);
    amina_browser.sign_in(&amina.token).await;
    assert_eq!(amina_browser.get("/team").await.status, 403);
    let token = amina_browser.form_token().await;
    let refused = amina_browser
        .post(
            "/team/hand-over",
            &[("form_token", &token), ("from", &bea.id), ("to", &amina.id)],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    api.stop().await;
}

/// The reminders sent for a step, as the API lists them.
async fn step_of_sent(api: &TestApi, token: &str, plan: &str, step: &str) -> String {
    api.data(
        token,
        "query($id: ID!, $s: String!) { plan(id: $id) { step(key: $s) { remindersSent { kind } } } }",
        json!({ "id": plan, "s": step }),
    )
    .await["plan"]["step"]["remindersSent"]
        .to_string()
}

#[tokio::test]
async fn an_admin_registers_organisations_and_people_sets_retention_and_manages_tokens() {
    let api = TestApi::start().await;
    let (amina, _) = worker_with_tasks(&api, "Ngozi Okafor").await;
    let mut browser = Browser::new(&api);
    browser.sign_in(&api.admin).await;
    assert_eq!(browser.get("/").await.location(), "/admin");
    let admin = browser.get("/admin").await;
    assert_eq!(admin.status, 200, "{}", admin.body);
    assert!(admin.body.contains("Safe Passage"), "{}", admin.body);
    let organisations = || {
        api.db
            .count("SELECT count(*) FROM events WHERE stream_id LIKE 'organisation-%'")
    };
    let before = organisations().await;

    // A country that is not a code: said beside it, kept, nothing recorded.
    let token = admin.hidden("/admin/organisations", "form_token");
    let key = admin.hidden("/admin/organisations", "key");
    let bad = browser
        .post(
            "/admin/organisations",
            &[
                ("form_token", &token),
                ("key", &key),
                ("name", "Hope Accra"),
                ("kind", "PARTNER"),
                ("country", "Ghana"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(
        bad.body.contains("id=\"organisation-country-error\""),
        "{}",
        bad.body
    );
    assert!(bad.body.contains("value=\"Ghana\""), "{}", bad.body);
    assert_eq!(organisations().await, before);
    let registered = browser
        .post(
            "/admin/organisations",
            &[
                ("form_token", &token),
                ("key", &key),
                ("name", "Hope Accra"),
                ("kind", "PARTNER"),
                ("country", "gh"),
            ],
        )
        .await;
    assert_eq!(registered.status, 303, "{}", registered.body);
    let hope = registered
        .location()
        .trim_start_matches("/admin#organisation-")
        .to_owned();
    let listed = api
        .data(
            &api.admin,
            "{ organisations(first: 100) { nodes { id name country retentionMonths } } }",
            json!({}),
        )
        .await;
    assert!(listed.to_string().contains("Hope Accra"), "{listed}");

    // Retention (of a programme; a partner keeps no survivor's data and has no such form):
    // months out of range are refused beside the field; in range, recorded.
    let admin = browser.get("/admin").await;
    assert!(!admin
        .body
        .contains(&format!("/admin/organisations/{hope}/retention")));
    let safe_passage = api.organisation("Safe Passage").await;
    let retention = format!("/admin/organisations/{safe_passage}/retention");
    let token = admin.hidden(&retention, "form_token");
    let version = admin.hidden(&retention, "version");
    let key = admin.hidden(&retention, "key");
    let with_months = |months: &'static str| {
        [
            ("form_token", token.clone()),
            ("version", version.clone()),
            ("key", key.clone()),
            ("months", months.to_owned()),
        ]
    };
    let zero = with_months("0");
    let zero: Vec<(&str, &str)> = zero.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = browser.post(&retention, &zero).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused
            .body
            .contains(&format!("id=\"months-{safe_passage}-error\"")),
        "{}",
        refused.body
    );
    let two_years = with_months("24");
    let two_years: Vec<(&str, &str)> = two_years.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let saved = browser.post(&retention, &two_years).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let months = api
        .data(
            &api.admin,
            "{ organisations(first: 100) { nodes { id retentionMonths } } }",
            json!({}),
        )
        .await["organisations"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == safe_passage.as_str())
        .unwrap()["retentionMonths"]
        .clone();
    assert_eq!(months, 24);

    // A person: a bad email is said beside it; then registered, invited, deactivated.
    let people = browser
        .get(&format!("/admin/parties?organisation={hope}"))
        .await;
    assert_eq!(people.status, 200, "{}", people.body);
    let token = people.hidden("/admin/parties", "form_token");
    let key = people.hidden("/admin/parties", "key");
    let mut fields = vec![
        ("form_token", token.as_str()),
        ("key", key.as_str()),
        ("display_name", "Kwame Asante"),
        ("email", "kwame at hope"),
        ("role", "PARTNER_CONTACT"),
        ("organisation", hope.as_str()),
        ("country", "GH"),
        ("language", "en"),
        ("time_zone", "Africa/Accra"),
    ];
    let bad = browser.post("/admin/parties", &fields).await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body.contains("id=\"email-error\""), "{}", bad.body);
    assert!(bad.body.contains("value=\"Kwame Asante\""), "{}", bad.body);
    fields[3] = ("email", "kwame@hope-accra.example");
    let registered = browser.post("/admin/parties", &fields).await;
    assert_eq!(registered.status, 303, "{}", registered.body);
    let party_page = registered.location().to_owned();
    let kwame = party_page.trim_start_matches("/admin/parties/").to_owned();
    let page = browser.get(&party_page).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Kwame Asante") && page.body.contains("Africa/Accra"),
        "{}",
        page.body
    );
    let listed = browser
        .get(&format!("/admin/parties?organisation={hope}"))
        .await;
    assert!(
        listed.body.contains(&format!("href=\"{party_page}\"")),
        "{}",
        listed.body
    );

    let token = page.hidden(&format!("{party_page}/invite"), "form_token");
    let invited = browser
        .post(
            &format!("{party_page}/invite"),
            &[("form_token", &token), ("key", "k1")],
        )
        .await;
    // Said at an address of its own: reloading it sends no second invitation.
    assert_eq!(invited.status, 303, "{}", invited.body);
    assert_eq!(invited.location(), format!("{party_page}?invited=1#invite"));
    let said = browser.get(&format!("{party_page}?invited=1")).await;
    assert!(
        said.body.contains("An invitation was sent"),
        "{}",
        said.body
    );

    let unexplained = browser
        .post(
            &format!("{party_page}/deactivate"),
            &[("form_token", &token), ("key", "k2"), ("reason", " ")],
        )
        .await;
    assert_eq!(unexplained.status, 422, "{}", unexplained.body);
    let deactivated = browser
        .post(
            &format!("{party_page}/deactivate"),
            &[
                ("form_token", &token),
                ("key", "k2"),
                ("reason", "Left the partner"),
            ],
        )
        .await;
    assert_eq!(deactivated.status, 303, "{}", deactivated.body);
    let active = |id: String| {
        let api = &api;
        async move {
            api.data(
                &api.admin,
                "query($id: ID!) { party(id: $id) { active } }",
                json!({ "id": id }),
            )
            .await["party"]["active"]
                .clone()
        }
    };
    assert_eq!(active(kwame.clone()).await, false);
    let reactivated = browser
        .post(
            &format!("{party_page}/reactivate"),
            &[("form_token", &token), ("key", "k3")],
        )
        .await;
    assert_eq!(reactivated.status, 303, "{}", reactivated.body);
    assert_eq!(active(kwame.clone()).await, true);

    // Amina's tokens: what is known of each, and revoking one ends her access.
    let amina_page = format!("/admin/parties/{}", amina.id);
    let page = browser.get(&amina_page).await;
    assert!(
        page.body.contains("admin-revoke") || page.body.contains(">Revoke</button>"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(&amina.token), "a token is never shown");
    let token_id = page.hidden(&format!("{amina_page}/revoke"), "token");
    let revoked = browser
        .post(
            &format!("{amina_page}/revoke"),
            &[("form_token", &token), ("token", &token_id)],
        )
        .await;
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    let (status, _) = api
        .post(Some(&amina.token), "{ me { id } }", json!({}))
        .await;
    assert_eq!(status, 401);

    // Nobody else has these pages.
    let colleague = api
        .party_in(
            "SUPERVISOR",
            "Sofia",
            "Safe Passage",
            "GB",
            "en",
            "Europe/London",
        )
        .await;
    let mut other = Browser::new(&api);
    other.sign_in(&colleague.token).await;
    assert_eq!(other.get("/admin").await.status, 403);
    assert_eq!(other.get(&amina_page).await.status, 403);
}

#[tokio::test]
async fn consent_to_contact_the_family_and_to_share_data_with_a_partner_is_recorded_and_withdrawn()
{
    let api = TestApi::start().await;
    let amina = api
        .party_in(
            "SOCIAL_WORKER",
            "Amina",
            "Safe Passage",
            "GB",
            "en",
            "Europe/London",
        )
        .await;
    let grace = api
        .party_in(
            "PARTNER_CONTACT",
            "Grace",
            "Hope Lagos",
            "NG",
            "en",
            "Africa/Lagos",
        )
        .await;
    let plan = api.open_plan(&amina.token, "Ngozi Okafor").await;
    let plan = plan.as_str().unwrap().to_owned();
    api.data(
        &amina.token,
        "mutation($plan: ID!, $grace: ID!) {
           assignStep(planId: $plan, step: \"origin_contact\", assignee: $grace) { version } }",
        json!({ "plan": plan, "grace": grace.id }),
    )
    .await;
    let consents = || async {
        api.data(
            &amina.token,
            "query($id: ID!) { plan(id: $id) { consents { kind partner given } } }",
            json!({ "id": plan }),
        )
        .await["plan"]["consents"]
            .clone()
    };
    let mut browser = Browser::new(&api);
    browser.sign_in(&amina.token).await;
    let page = browser.get(&format!("/plans/{plan}")).await;
    assert!(
        page.body.contains("Contact with the family"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("Sharing her data with Grace"),
        "{}",
        page.body
    );
    assert!(page
        .body
        .contains(&format!("id=\"consent-data_sharing-{}\"", grace.id)));

    let family = send_form(
        &mut browser,
        &plan,
        "consent",
        &page,
        &[("purpose", "FAMILY_CONTACT")],
    )
    .await;
    assert_eq!(family.status, 303, "{}", family.body);
    assert_eq!(
        consents().await,
        json!([{ "kind": "FAMILY_CONTACT", "partner": null, "given": true }])
    );

    // A partner that is not an id: said, nothing recorded.
    let page = browser.get(&format!("/plans/{plan}")).await;
    let bad = send_form(
        &mut browser,
        &plan,
        "consent",
        &page,
        &[("purpose", "DATA_SHARING"), ("partner", "Grace")],
    )
    .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    let sharing = [("purpose", "DATA_SHARING"), ("partner", grace.id.as_str())];
    let shared = send_form(&mut browser, &plan, "consent", &page, &sharing).await;
    assert_eq!(shared.status, 303, "{}", shared.body);
    let given = consents().await;
    assert!(
        given
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "DATA_SHARING"
                && c["partner"] == grace.id.as_str()
                && c["given"] == true),
        "{given}"
    );

    // Her step taken from her, the consent she was given stays on the page, to withdraw.
    api.data(
        &amina.token,
        "mutation($plan: ID!) { assignStep(planId: $plan, step: \"origin_contact\", assignee: null) { version } }",
        json!({ "plan": plan }),
    )
    .await;
    let page = browser.get(&format!("/plans/{plan}")).await;
    assert!(
        page.body.contains("a partner who no longer has a step"),
        "{}",
        page.body
    );

    // Withdrawing says what it does and asks to confirm; unconfirmed, nothing changes, and the
    // refusal is said beside that consent's form.
    assert!(
        page.body.contains("stops this partner seeing her details"),
        "{}",
        page.body
    );
    let unconfirmed = send_form(&mut browser, &plan, "withdraw-consent", &page, &sharing).await;
    assert_eq!(unconfirmed.status, 422, "{}", unconfirmed.body);
    assert!(
        unconfirmed
            .body
            .contains(&format!("id=\"consent-data_sharing-{}-error\"", grace.id)),
        "{}",
        unconfirmed.body
    );
    assert_eq!(consents().await, given);
    let mut confirmed = sharing.to_vec();
    confirmed.push(("confirm", "on"));
    let withdrawn = send_form(&mut browser, &plan, "withdraw-consent", &page, &confirmed).await;
    assert_eq!(withdrawn.status, 303, "{}", withdrawn.body);
    let now = consents().await;
    assert!(
        now.as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "DATA_SHARING" && c["given"] == false),
        "{now}"
    );
}

#[tokio::test]
async fn her_record_is_downloaded_whole_by_her_case_team_and_the_download_is_in_her_access_log() {
    let api = TestApi::start().await;
    let (amina, plan) = worker_with_tasks(&api, "Ngozi Okafor").await;
    let sofia = api
        .party_in(
            "SUPERVISOR",
            "Sofia",
            "Safe Passage",
            "GB",
            "en",
            "Europe/London",
        )
        .await;
    let person = api.person_of_plan(&amina.token, &plan).await;
    let mut browser = Browser::new(&api);
    browser.sign_in(&amina.token).await;
    let page = browser.get(&format!("/persons/{person}")).await;
    assert!(
        page.body
            .contains(&format!("href=\"/persons/{person}/export\"")),
        "{}",
        page.body
    );
    // Followed from another site, the link reads nothing (and so writes nothing in her log).
    let response = browser
        .http
        .get(format!("{}/persons/{person}/export", browser.base))
        .header("cookie", browser.cookie_header())
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    let foreign = browser.keep(response).await;
    assert_eq!(foreign.status, 403, "{}", foreign.body);
    assert!(!foreign.body.contains("Ngozi"));
    let download = browser.get(&format!("/persons/{person}/export")).await;
    assert_eq!(download.status, 200, "{}", download.body);
    assert!(download.headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert_eq!(download.headers["cache-control"], "no-store");
    let record: serde_json::Value = serde_json::from_str(&download.body).unwrap();
    assert!(record.to_string().contains("Ngozi Okafor"), "{record}");
    assert!(
        record.to_string().contains("Call the family"),
        "her plans are in it: {record}"
    );

    let log = api
        .data(
            &sofia.token,
            "query($p: ID!) { accessLog(personId: $p, first: 50) { nodes { operation party { displayName } } } }",
            json!({ "p": person }),
        )
        .await;
    let exports = log["accessLog"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["operation"]
                .as_str()
                .unwrap()
                .starts_with("console person export")
        })
        .count();
    assert_eq!(exports, 1, "one download, one entry: {log}");

    // Someone outside her case team gets nothing.
    let luc = api
        .party_in(
            "GOVERNMENT_LIAISON",
            "Luc",
            "Safe Passage",
            "GB",
            "en",
            "Europe/London",
        )
        .await;
    let mut other = Browser::new(&api);
    other.sign_in(&luc.token).await;
    let refused = other.get(&format!("/persons/{person}/export")).await;
    assert_eq!(refused.status, 404);
    assert!(!refused.body.contains("Ngozi"));
}

#[tokio::test]
async fn for_every_role_a_plan_page_and_a_persons_page_show_no_more_than_the_api_answers_them() {
    let api = TestApi::start().await;
    let (amina, grace, plan) = plan_in_follow_up(&api).await;
    let sofia = api.party("SUPERVISOR", "Sofia", "Safe Passage").await;
    let luc = api
        .party_in(
            "GOVERNMENT_LIAISON",
            "Luc",
            "Prefecture",
            "FR",
            "en",
            "Europe/Paris",
        )
        .await;
    let other_worker = api.party("SOCIAL_WORKER", "Bruno", "Other Shelter").await;
    // The liaison has a step; the survivor's details are richer than a name.
    api.data(
        &amina.token,
        "mutation($id: ID!, $luc: ID!) {
           assignStep(planId: $id, step: \"legal_clearance\", assignee: $luc) { version }
           setGoals(planId: $id, goals: [{ area: HOUSING, aim: \"A room near her sister\" }]) { version } }",
        json!({ "id": plan, "luc": luc.id }),
    )
    .await;
    let person = api.person_of_plan(&amina.token, &plan).await;
    api.data(
        &amina.token,
        "mutation($p: ID!) { updatePerson(personId: $p, input: { phone: \"+234 801 555 0101\", address: \"12 Allen Avenue, Ikeja\" }, reason: \"She called\") { id } }",
        json!({ "p": person }),
    )
    .await;
    let secrets = [
        "Ngozi Okafor",
        "+234 801 555 0101",
        "12 Allen Avenue",
        "A room near her sister",
    ];
    const SEEN: &str = "query($id: ID!) { plan(id: $id) {
        steps { key }
        person { fullName phone address }
        goals { aim } consents { kind } } }";

    for (role, token) in [
        ("social worker", &amina.token),
        ("supervisor", &sofia.token),
        ("liaison", &luc.token),
        ("partner", &grace.token),
        ("another organisation's social worker", &other_worker.token),
        ("admin", &api.admin),
    ] {
        let answer = api.gql(token, SEEN, json!({ "id": plan })).await;
        let seen = &answer["data"]["plan"];
        let mut browser = Browser::new(&api);
        browser.sign_in(token).await;
        let page = browser.get(&format!("/plans/{plan}")).await;
        if seen.is_null() {
            assert_eq!(page.status, 404, "{role}: {}", page.body);
        } else {
            assert_eq!(page.status, 200, "{role}: {}", page.body);
            let keys: Vec<&str> = seen["steps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["key"].as_str().unwrap())
                .collect();
            assert_eq!(
                page.body.matches("<li id=\"step-").count(),
                keys.len(),
                "{role}: the steps the API shows, no more"
            );
            for key in &keys {
                assert!(
                    page.body.contains(&format!("id=\"step-{key}\"")),
                    "{role}: {key}"
                );
            }
            for (section, field) in [("goals", "goals"), ("consents", "consents")] {
                if seen[field].is_null() {
                    assert!(
                        !page.body.contains(&format!("id=\"{section}\"")),
                        "{role}: no {section}"
                    );
                }
            }
        }
        // No value the API does not give this viewer.
        let given = answer.to_string();
        for secret in secrets {
            if !given.contains(secret) {
                assert!(
                    !page.body.contains(secret),
                    "{role} sees {secret} on the page"
                );
            }
        }

        // Her own page: as the API answers `person` to the same viewer.
        let answer = api
            .gql(
                token,
                "query($p: ID!) { person(id: $p) { fullName phone address } }",
                json!({ "p": person }),
            )
            .await;
        let record = browser.get(&format!("/persons/{person}")).await;
        if answer["data"].is_null() || answer["data"]["person"].is_null() {
            assert_eq!(record.status, 404, "{role}: {}", record.body);
        }
        let given = answer.to_string();
        for secret in secrets {
            if !given.contains(secret) {
                assert!(
                    !record.body.contains(secret),
                    "{role} sees {secret} on her page"
                );
            }
        }
    }
}
