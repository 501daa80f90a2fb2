//! The web console in a real browser (headless Chromium): signing in through a link caught by a
//! real SMTP server, the inbox and a plan's timeline, in English and French, on an office screen
//! and a phone; axe-core finds no serious or critical problem on any page, and every page is
//! saved as a screenshot under `target/console-screenshots/`.
#![allow(clippy::unwrap_used)]

use std::time::Duration as StdDuration;

use chrono::Duration;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use homeward::app::Settings;
use homeward_tests::api::TestApi;
use homeward_tests::browser::{accessibility_violations, screenshot, text, Driver, Screen};
use homeward_tests::smtp::SmtpCatcher;

use super::console::{plan_in_follow_up, worker_with_tasks};

/// Waits until the browser is on `path` (its path and query).
async fn arrives_at(client: &Client, path: &str) {
    for _ in 0..100 {
        let url = client.current_url().await.unwrap();
        let here = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        if here == path {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    panic!(
        "the browser did not arrive at {path}: it is at {}",
        client.current_url().await.unwrap()
    );
}

/// Clicks `css` and waits for the page it loads (the one shown before is gone).
async fn submit(client: &Client, css: &str) {
    let before = client.find(Locator::Css("html")).await.unwrap();
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap();
    for _ in 0..100 {
        if before.tag_name().await.is_err() {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    panic!("pressing {css} loaded no page");
}

/// Clicks `css`, which htmx answers by swapping in the page's main part: waits until the
/// main part shown before is gone, and checks that the page itself was not reloaded.
async fn swaps(client: &Client, css: &str) {
    client
        .execute("window.notReloaded = true;", vec![])
        .await
        .unwrap();
    let before = client.find(Locator::Css("main")).await.unwrap();
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap();
    for _ in 0..100 {
        if before.tag_name().await.is_err() {
            let kept = client
                .execute("return window.notReloaded === true;", vec![])
                .await
                .unwrap();
            assert_eq!(
                kept,
                serde_json::json!(true),
                "{css}: the page was reloaded"
            );
            // htmx settles what it swapped in before the next step looks at it.
            tokio::time::sleep(StdDuration::from_millis(100)).await;
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    panic!("pressing {css} swapped in nothing");
}

/// Checks the page shown now with axe-core and saves it as a screenshot (from its top).
async fn look_at(client: &Client, name: &str) {
    client
        .execute("window.scrollTo(0, 0);", vec![])
        .await
        .unwrap();
    screenshot(client, name).await;
    let violations = accessibility_violations(client).await;
    assert!(
        violations.is_empty(),
        "{name}: axe-core found serious or critical problems:\n{}",
        violations.join("\n")
    );
}

#[tokio::test]
async fn a_social_worker_signs_in_by_an_emailed_link_and_reads_her_inbox_and_a_timeline() {
    let smtp = SmtpCatcher::start().await;
    let url = smtp.url();
    let api = TestApi::start_with(move |s| Settings {
        smtp_url: Some(url.into()),
        smtp_timeout: StdDuration::from_secs(2).into(),
        ..s
    })
    .await;
    let (amina, plan) = worker_with_tasks(&api, "Ngozi Okafor").await;
    api.clock.advance(Duration::days(7));
    let email = api
        .data(&amina.token, "{ me { email } }", serde_json::json!({}))
        .await["me"]["email"]
        .as_str()
        .unwrap()
        .to_owned();
    let base = format!("http://{}", api.addr);
    let driver = Driver::start().await;
    let browser = driver.browser(Screen::Desktop, "en").await;

    browser.goto(&format!("{base}/inbox")).await.unwrap();
    arrives_at(&browser, "/sign-in?next=%2Finbox").await;
    browser
        .find(Locator::Id("email"))
        .await
        .unwrap()
        .send_keys(&email)
        .await
        .unwrap();
    browser
        .find(Locator::Css("form[action='/sign-in/link'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    arrives_at(&browser, "/sign-in/link").await;
    assert_eq!(text(&browser, "h1").await, "Check your email");

    let mail = smtp.wait_for(2, StdDuration::from_secs(10)).await;
    let link = mail
        .iter()
        .filter_map(|m| m.part("text/plain"))
        .find_map(|text| {
            text.lines()
                .find_map(|l| l.split_once(": http").map(|(_, url)| format!("http{url}")))
                .filter(|url| url.contains("/sign-in/hwl_"))
        })
        .expect("a sign-in link");
    browser.goto(&link).await.unwrap();
    look_at(&browser, "sign-in-link-en-desktop").await;
    browser
        .find(Locator::Css("main form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    arrives_at(&browser, "/inbox").await;
    let inbox = text(&browser, "main").await;
    assert!(inbox.contains("Call the family"), "{inbox}");
    assert!(inbox.contains("Overdue by 3 days"), "{inbox}");

    browser
        .find(Locator::LinkText("Call the family"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    arrives_at(&browser, &format!("/plans/{plan}")).await;
    assert!(browser
        .find(Locator::Css("figure.timeline svg[role='img']"))
        .await
        .unwrap()
        .is_displayed()
        .await
        .unwrap());

    // Signing out ends the session: the inbox asks to sign in again.
    browser
        .find(Locator::Css("form[action='/sign-out'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    arrives_at(&browser, "/sign-in").await;
    browser.goto(&format!("{base}/inbox")).await.unwrap();
    arrives_at(&browser, "/sign-in?next=%2Finbox").await;
    browser.close().await.unwrap();
}

#[tokio::test]
async fn every_page_in_english_and_french_on_an_office_screen_and_a_phone_passes_axe() {
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
    api.clock.advance(Duration::days(7));
    let base = format!("http://{}", api.addr);
    let driver = Driver::start().await;
    let reference = plan.replace('-', "")[..8].to_owned();
    for (lang, screen) in [
        ("en", Screen::Desktop),
        ("en", Screen::Phone),
        ("fr", Screen::Desktop),
        ("fr", Screen::Phone),
    ] {
        let name = |page: &str| format!("{page}-{lang}-{}", screen.name());
        let browser = driver.browser(screen, lang).await;
        // Before signing in, the browser's language.
        browser.goto(&format!("{base}/sign-in")).await.unwrap();
        let title = text(&browser, "h1").await;
        assert_eq!(
            title,
            if lang == "fr" {
                "Se connecter à Homeward"
            } else {
                "Sign in to Homeward"
            }
        );
        look_at(&browser, &name("sign-in")).await;
        // Chosen on the page, it outlasts signing in (her profile says English).
        browser
            .find(Locator::Id("language-choice"))
            .await
            .unwrap()
            .select_by_value(lang)
            .await
            .unwrap();
        submit(&browser, "form[action='/language'] button").await;
        arrives_at(&browser, "/sign-in").await;
        browser
            .find(Locator::Id("token"))
            .await
            .unwrap()
            .send_keys(&amina.token)
            .await
            .unwrap();
        browser
            .find(Locator::Css("form[action='/sign-in/token'] button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        arrives_at(&browser, "/inbox").await;
        let late = if lang == "fr" {
            "En retard de 3 jours"
        } else {
            "Overdue by 3 days"
        };
        let inbox = text(&browser, "main").await;
        assert!(inbox.contains(late), "{inbox}");
        look_at(&browser, &name("inbox")).await;

        browser.goto(&format!("{base}/plans/{plan}")).await.unwrap();
        assert_eq!(text(&browser, "h1").await, format!("Plan {reference}"));
        let picture = browser
            .find(Locator::Css("figure.timeline"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap();
        assert_eq!(
            picture,
            screen == Screen::Desktop,
            "the picture on an office screen, the list on a phone"
        );
        let list = text(&browser, "table.timeline-table").await;
        assert!(list.contains(late), "{list}");
        look_at(&browser, &name("plan")).await;

        // Every other page of hers.
        let person = browser
            .find(Locator::Css("a[href^='/persons/']"))
            .await
            .unwrap()
            .attr("href")
            .await
            .unwrap()
            .unwrap();
        for (page, path) in [
            ("plans", "/plans".to_owned()),
            ("new-plan", "/plans/new".to_owned()),
            ("person", person),
            ("step", format!("/plans/{plan}/steps/book_clinic")),
            ("new-step", format!("/plans/{plan}/new-step")),
            (
                "not-found",
                "/plans/00000000-0000-0000-0000-000000000000".to_owned(),
            ),
        ] {
            browser.goto(&format!("{base}{path}")).await.unwrap();
            look_at(&browser, &name(page)).await;
        }
        // A search's answer (sent as a form, never in the address).
        browser.goto(&format!("{base}/plans")).await.unwrap();
        browser
            .find(Locator::Css(
                "form[action='/plans/search'] input[name='name']",
            ))
            .await
            .unwrap()
            .send_keys("Ngozi")
            .await
            .unwrap();
        submit(&browser, "form[action='/plans/search'] button").await;
        arrives_at(&browser, "/plans/search").await;
        assert!(text(&browser, "main").await.contains("Ngozi Okafor"));
        look_at(&browser, &name("search")).await;

        // A supervisor's page and the administration, each in its own session.
        for (token, pages) in [
            (&sofia.token, vec![("team", "/team".to_owned())]),
            (
                &api.admin,
                vec![
                    ("admin", "/admin".to_owned()),
                    ("admin-parties", "/admin/parties".to_owned()),
                    ("admin-party", format!("/admin/parties/{}", amina.id)),
                ],
            ),
        ] {
            submit(&browser, "form[action='/sign-out'] button").await;
            sign_in_with_token(&browser, &base, token).await;
            for (page, path) in pages {
                browser.goto(&format!("{base}{path}")).await.unwrap();
                look_at(&browser, &name(page)).await;
                if page == "team" {
                    let team = text(&browser, "main").await;
                    assert!(team.contains("Call the family"), "{team}");
                }
            }
        }
        browser.close().await.unwrap();
    }
}

/// Signs in with a token through the sign-in page's form.
async fn sign_in_with_token(client: &Client, base: &str, token: &str) {
    client.goto(&format!("{base}/sign-in")).await.unwrap();
    client
        .find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(token)
        .await
        .unwrap();
    submit(client, "form[action='/sign-in/token'] button").await;
    arrives_at(client, "/inbox").await;
}

#[tokio::test]
async fn a_change_made_in_a_second_browser_arrives_without_a_reload() {
    let api = TestApi::start().await;
    let (amina, plan) = worker_with_tasks(&api, "Ngozi Okafor").await;
    let base = format!("http://{}", api.addr);
    let driver = Driver::start().await;
    let watching = driver.browser(Screen::Desktop, "en").await;
    let acting = driver.browser(Screen::Desktop, "en").await;
    sign_in_with_token(&watching, &base, &amina.token).await;
    sign_in_with_token(&acting, &base, &amina.token).await;
    watching
        .goto(&format!("{base}/plans/{plan}"))
        .await
        .unwrap();
    acting.goto(&format!("{base}/plans/{plan}")).await.unwrap();
    // A mark that a reload would wipe.
    watching
        .execute("window.notReloaded = true;", vec![])
        .await
        .unwrap();
    tokio::time::sleep(StdDuration::from_millis(1500)).await;
    submit(&acting, "#step-call_family button[formaction$='/start']").await;
    let mut status = String::new();
    for _ in 0..100 {
        status = text(&watching, "#step-call_family").await;
        if status.contains("In progress") {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    assert!(status.contains("In progress"), "{status}");
    let kept = watching
        .execute("return window.notReloaded === true;", vec![])
        .await
        .unwrap();
    assert_eq!(
        kept,
        serde_json::json!(true),
        "the page was updated, not reloaded"
    );
    watching.close().await.unwrap();
    acting.close().await.unwrap();
}

#[tokio::test]
async fn a_liaison_moves_the_passport_to_issued_from_the_plan_page_and_the_timeline_follows() {
    let api = TestApi::start().await;
    let (amina, plan) = worker_with_tasks(&api, "Ngozi Okafor").await;
    let luc = api
        .party_in(
            "GOVERNMENT_LIAISON",
            "Luc",
            "Prefecture",
            "FR",
            "fr",
            "Europe/Paris",
        )
        .await;
    api.data(
        &amina.token,
        "mutation($id: ID!, $luc: ID!) { assignStep(planId: $id, step: \"passport\", assignee: $luc) { version } }",
        serde_json::json!({ "id": plan, "luc": luc.id }),
    )
    .await;
    let base = format!("http://{}", api.addr);
    let driver = Driver::start().await;
    let browser = driver.browser(Screen::Desktop, "fr").await;
    sign_in_with_token(&browser, &base, &luc.token).await;
    // His inbox, documents only.
    browser
        .find(Locator::Id("kind"))
        .await
        .unwrap()
        .select_by_value("TRAVEL_DOCUMENT")
        .await
        .unwrap();
    // The filters swap in the list (htmx), and the address says what it shows.
    swaps(&browser, "form.filters button").await;
    arrives_at(&browser, "/inbox?kind=TRAVEL_DOCUMENT&status=&from=&until=").await;
    let inbox = text(&browser, "main").await;
    assert!(inbox.contains("Document de voyage"), "{inbox}");
    assert!(!inbox.contains("Call the family"), "{inbox}");
    submit(&browser, ".task .title a").await;
    arrives_at(&browser, &format!("/plans/{plan}")).await;
    for (status, shown) in [
        ("SUBMITTED_TO_AUTHORITY", "Déposé auprès de l'autorité"),
        ("ISSUED", "Délivré"),
    ] {
        browser
            .find(Locator::Id("document-passport"))
            .await
            .unwrap()
            .select_by_value(status)
            .await
            .unwrap();
        submit(&browser, "#step-passport button[formaction$='/document']").await;
        let step = text(&browser, "#step-passport").await;
        assert!(step.contains(shown), "{step}");
    }
    submit(&browser, "#step-passport button[formaction$='/start']").await;
    submit(&browser, "#step-passport button[formaction$='/complete']").await;
    let row = text(&browser, "table.timeline-table").await;
    assert!(
        row.contains("Faite"),
        "the timeline says the passport is done: {row}"
    );
    let status = api
        .data(
            &amina.token,
            "query($id: ID!) { plan(id: $id) { step(key: \"passport\") { status documentStatus } } }",
            serde_json::json!({ "id": plan }),
        )
        .await;
    assert_eq!(status["plan"]["step"]["status"], "DONE");
    assert_eq!(status["plan"]["step"]["documentStatus"], "ISSUED");
    look_at(&browser, "plan-liaison-fr-desktop").await;
    browser.close().await.unwrap();
}

/// Presses `key` on whatever has the focus.
async fn press(client: &Client, key: Key) {
    let actions = KeyActions::new("keyboard".to_owned())
        .then(KeyAction::Down { value: key.into() })
        .then(KeyAction::Up { value: key.into() });
    client.perform_actions(actions).await.unwrap();
}

/// Moves the focus with Tab, from where it is, until it is on `css`: as a person without a
/// mouse reaches a field or a button.
async fn tab_to(client: &Client, css: &str) {
    for _ in 0..400 {
        press(client, Key::Tab).await;
        let there = client
            .execute(
                "return document.activeElement !== null && document.activeElement.matches(arguments[0]);",
                vec![serde_json::json!(css)],
            )
            .await
            .unwrap();
        if there == serde_json::json!(true) {
            return;
        }
    }
    panic!("Tab never reached {css}");
}

/// Types `text` into the field that has the focus.
async fn type_here(client: &Client, text: &str) {
    client
        .active_element()
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

/// Presses Enter on what has the focus and waits for the page it loads.
async fn enter_and_wait(client: &Client) {
    let before = client.find(Locator::Css("html")).await.unwrap();
    press(client, Key::Enter).await;
    for _ in 0..100 {
        if before.tag_name().await.is_err() {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    panic!("Enter loaded no page");
}

#[tokio::test]
async fn a_social_worker_registers_opens_personalises_and_records_consent_in_french_on_a_phone_by_keyboard_alone(
) {
    let api = TestApi::start().await;
    let amina = api
        .party_in(
            "SOCIAL_WORKER",
            "Amina",
            "Safe Passage",
            "FR",
            "fr",
            "Europe/Paris",
        )
        .await;
    let base = format!("http://{}", api.addr);
    let driver = Driver::start().await;
    let browser = driver.browser(Screen::Phone, "fr").await;

    browser.goto(&format!("{base}/sign-in")).await.unwrap();
    // The first Tab reaches the link that skips to the content.
    press(&browser, Key::Tab).await;
    let skip = browser
        .execute("return document.activeElement.className;", vec![])
        .await
        .unwrap();
    assert_eq!(skip, serde_json::json!("skip"));
    tab_to(&browser, "#token").await;
    type_here(&browser, &amina.token).await;
    enter_and_wait(&browser).await;
    arrives_at(&browser, "/inbox").await;

    tab_to(&browser, "nav a[href='/plans']").await;
    enter_and_wait(&browser).await;
    arrives_at(&browser, "/plans").await;
    look_at(&browser, "plans-fr-phone").await;
    tab_to(&browser, "a[href='/plans/new']").await;
    enter_and_wait(&browser).await;
    look_at(&browser, "new-plan-fr-phone").await;
    tab_to(&browser, "#full_name").await;
    type_here(&browser, "Aïcha Diallo").await;
    tab_to(&browser, "#origin_country").await;
    type_here(&browser, "SN").await;
    enter_and_wait(&browser).await;
    let plan = browser.current_url().await.unwrap().path().to_owned();
    assert!(plan.starts_with("/plans/"), "{plan}");
    let page = text(&browser, "main").await;
    assert!(page.contains("Aïcha Diallo"), "{page}");
    // The template's steps in her language.
    assert!(
        page.contains("Obtenir un passeport ou un laissez-passer"),
        "{page}"
    );
    assert!(!page.contains("Obtain a passport"), "{page}");
    let timeline = |client: &Client| {
        let client = client.clone();
        async move { text(&client, "table.timeline-table").await }
    };
    let drafted = timeline(&browser).await;

    // Consent to return, by keyboard: the timeline gains its marker.
    tab_to(&browser, "#consent-return button").await;
    enter_and_wait(&browser).await;
    let consent = text(&browser, "#consent-return").await;
    assert!(consent.contains("Donné le"), "{consent}");
    let consented = timeline(&browser).await;
    assert_ne!(consented, drafted);
    assert!(consented.contains("Consentement au retour"), "{consented}");

    // Personalised: a step of her own, due ten days after her arrival.
    tab_to(&browser, "a[href$='/new-step']").await;
    enter_and_wait(&browser).await;
    look_at(&browser, "new-step-fr-phone").await;
    tab_to(&browser, "#add-title").await;
    type_here(&browser, "Rendez-vous chez l'avocate").await;
    // Into the group of due-date choices, at the one chosen, and one further down.
    tab_to(&browser, "input[name='due']").await;
    press(&browser, Key::Down).await;
    tab_to(&browser, "#add-days").await;
    type_here(&browser, "10").await;
    tab_to(&browser, "form[action$='/new-step'] button[type='submit']").await;
    enter_and_wait(&browser).await;
    let step = "#step-rendez_vous_chez_l_avocate";
    assert!(
        text(&browser, step)
            .await
            .contains("Rendez-vous chez l'avocate"),
        "the step is on her plan"
    );
    let added = timeline(&browser).await;
    assert!(added.contains("Rendez-vous chez l'avocate"), "{added}");
    let rule = api
        .data(
            &amina.token,
            "query($id: ID!) { plan(id: $id) { step(key: \"rendez_vous_chez_l_avocate\") {
               dueRule { milestone days } } } }",
            serde_json::json!({ "id": plan.trim_start_matches("/plans/") }),
        )
        .await;
    assert_eq!(
        rule["plan"]["step"]["dueRule"],
        serde_json::json!({ "milestone": "ARRIVAL", "days": 10 })
    );

    // Started from the plan page, by keyboard.
    tab_to(&browser, &format!("{step} button[formaction$='/start']")).await;
    enter_and_wait(&browser).await;
    let started = text(&browser, step).await;
    assert!(started.contains("En cours"), "{started}");
    assert_ne!(timeline(&browser).await, added, "the timeline follows");
    look_at(&browser, "plan-personalised-fr-phone").await;
    browser.close().await.unwrap();
}

#[tokio::test]
async fn a_partner_records_a_follow_up_visit_in_a_browser_and_the_timeline_shows_it_done() {
    let api = TestApi::start().await;
    let (amina, grace, plan) = plan_in_follow_up(&api).await;
    let base = format!("http://{}", api.addr);
    let driver = Driver::start().await;
    let browser = driver.browser(Screen::Desktop, "en").await;
    sign_in_with_token(&browser, &base, &grace.token).await;
    // Her visits have a page of their own.
    submit(&browser, "nav a[href='/inbox?kind=FOLLOW_UP']").await;
    let visits = text(&browser, "main").await;
    assert!(visits.contains("Follow-up visit 1"), "{visits}");
    submit(&browser, ".task .title a").await;
    arrives_at(&browser, &format!("/plans/{plan}")).await;
    look_at(&browser, "plan-partner-en-desktop").await;
    // A date field is typed in the browser's own format; its value is set as a date picker
    // would set it.
    browser
        .execute(
            "document.getElementById('visited-follow_up_1').value = '2026-04-23';",
            vec![],
        )
        .await
        .unwrap();
    browser
        .find(Locator::Id("wellbeing-follow_up_1"))
        .await
        .unwrap()
        .select_by_value("FAIR")
        .await
        .unwrap();
    browser
        .find(Locator::Css(
            "input[name='concern-follow_up_1'][value='INCOME']",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    submit(&browser, "#step-follow_up_1 button[formaction$='/visit']").await;
    let row = text(&browser, "table.timeline-table").await;
    let visit = row
        .lines()
        .skip_while(|l| !l.contains("Follow-up visit 1"))
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        visit.contains("Done"),
        "the timeline says the visit is done: {row}"
    );
    let outcome = api
        .data(
            &amina.token,
            "query($plan: ID!) { plan(id: $plan) { step(key: \"follow_up_1\") { status outcome { visitedOn wellbeing concerns } } } }",
            serde_json::json!({ "plan": plan }),
        )
        .await;
    assert_eq!(outcome["plan"]["step"]["status"], "DONE");
    assert_eq!(
        outcome["plan"]["step"]["outcome"],
        serde_json::json!({ "visitedOn": "2026-04-23", "wellbeing": "FAIR", "concerns": ["INCOME"] })
    );
    browser.close().await.unwrap();
}

#[tokio::test]
async fn a_form_sent_after_someone_else_changed_the_plan_is_refused_with_the_change_explained() {
    let api = TestApi::start().await;
    let (amina, plan) = worker_with_tasks(&api, "Ngozi Okafor").await;
    let base = format!("http://{}", api.addr);
    let driver = Driver::start().await;
    let typing = driver.browser(Screen::Desktop, "en").await;
    let acting = driver.browser(Screen::Desktop, "en").await;
    sign_in_with_token(&typing, &base, &amina.token).await;
    sign_in_with_token(&acting, &base, &amina.token).await;
    typing.goto(&format!("{base}/plans/{plan}")).await.unwrap();
    acting.goto(&format!("{base}/plans/{plan}")).await.unwrap();
    tokio::time::sleep(StdDuration::from_millis(1500)).await;
    // She is writing why the call is blocked when a colleague starts it.
    typing
        .find(Locator::Id("block-call_family"))
        .await
        .unwrap()
        .send_keys("Waiting for the interpreter")
        .await
        .unwrap();
    submit(&acting, "#step-call_family button[formaction$='/start']").await;
    // Her page does not change under her hands: it says it changed.
    let notice = typing.find(Locator::Id("changed-notice")).await.unwrap();
    let mut shown = false;
    for _ in 0..100 {
        shown = notice.is_displayed().await.unwrap();
        if shown {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    assert!(shown, "the page says it changed");
    submit(&typing, "#step-call_family button[formaction$='/block']").await;
    let conflict = text(&typing, "section.conflict").await;
    assert!(
        conflict.contains("Someone changed this plan")
            && conflict.contains("Step started: Call the family"),
        "{conflict}"
    );
    let kept = typing
        .find(Locator::Id("block-call_family"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(
        kept.as_deref(),
        Some("Waiting for the interpreter"),
        "what she typed is kept"
    );
    look_at(&typing, "plan-conflict-en-desktop").await;
    let status = api
        .data(
            &amina.token,
            "query($id: ID!) { plan(id: $id) { step(key: \"call_family\") { status } } }",
            serde_json::json!({ "id": plan }),
        )
        .await;
    assert_eq!(
        status["plan"]["step"]["status"], "IN_PROGRESS",
        "nothing overwritten"
    );
    typing.close().await.unwrap();
    acting.close().await.unwrap();
}
