//! An admin registers people and invites them; each creates their own token through the link
//! emailed to them. An admin never holds a token of a case role, and a changed address or
//! organisation is told to the party before it changes.
#![allow(clippy::unwrap_used)]

use std::time::Duration as StdDuration;

use chrono::Duration;
use homeward::app::Settings;
use homeward_tests::api::{error_code, TestApi};
use homeward_tests::smtp::{Caught, SmtpCatcher};
use serde_json::{json, Value};

const REGISTER: &str = "mutation($input: PartyInput!) { registerParty(input: $input) { id } }";
const INVITE: &str = "mutation($p: ID!) { inviteParty(party: $p) { sentTo expiresAt } }";
const UPDATE: &str =
    "mutation($id: ID!, $input: PartyInput!) { updateParty(id: $id, input: $input) { id email } }";

async fn with_smtp() -> (TestApi, SmtpCatcher) {
    let smtp = SmtpCatcher::start().await;
    let url = smtp.url();
    let api = TestApi::start_with(move |s| Settings {
        smtp_url: Some(url.into()),
        smtp_timeout: StdDuration::from_secs(2).into(),
        ..s
    })
    .await;
    (api, smtp)
}

fn amina(organisation: &str, email: &str) -> Value {
    json!({ "input": {
        "displayName": "Amina", "email": email, "role": "SOCIAL_WORKER",
        "organisation": organisation, "country": "FR", "language": "fr",
        "timeZone": "Europe/Paris" } })
}

/// The invitation link in a message (the line after its label).
fn invitation_link(mail: &Caught) -> String {
    let text = mail.part("text/plain").unwrap();
    text.lines()
        .find_map(|l| l.split_once(": http").map(|(_, url)| format!("http{url}")))
        .filter(|url| url.contains("/invitations/hwi_"))
        .unwrap_or_else(|| panic!("no invitation link in:\n{text}"))
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn post(url: &str) -> (u16, String) {
    let response = reqwest::Client::new().post(url).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The token the page shows.
fn shown_token(page: &str) -> String {
    let start = page
        .find("hw_")
        .unwrap_or_else(|| panic!("no token in {page}"));
    page[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

#[tokio::test]
async fn an_invited_party_creates_their_own_token_through_the_emailed_link() {
    let (api, smtp) = with_smtp().await;
    let safe_passage = api.organisation("Safe Passage").await;
    let registered = api
        .data(
            &api.admin,
            REGISTER,
            amina(&safe_passage, "amina@safe-passage.example"),
        )
        .await;
    let amina_id = registered["registerParty"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !registered.to_string().contains("hw"),
        "the admin is shown no secret: {registered}"
    );
    let mails = smtp.wait_for(1, StdDuration::from_secs(5)).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, vec!["<amina@safe-passage.example>".to_owned()]);
    assert!(mails[0].header("Subject").unwrap().contains("invitation"));
    let link = invitation_link(&mails[0]);

    // The admin cannot make one for her, and has none to see.
    let body = api
        .gql(
            &api.admin,
            "mutation($p: ID!) { createToken(party: $p) { secret } }",
            json!({ "p": amina_id }),
        )
        .await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");
    let listed = api
        .data(
            &api.admin,
            "query($p: ID!) { tokens(party: $p) { tokenId } }",
            json!({ "p": amina_id }),
        )
        .await;
    assert_eq!(listed["tokens"], json!([]));

    // Opening the link (a mail scanner does) uses nothing; the button does, once.
    for _ in 0..2 {
        let (status, page) = get(&link).await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("<form method=\"post\">"), "{page}");
        assert!(page.contains("lang=\"fr\""), "{page}");
    }
    let (status, page) = post(&link).await;
    assert_eq!(status, 200, "{page}");
    let token = shown_token(&page);
    let me = api
        .data(&token, "{ me { id displayName } }", json!({}))
        .await;
    assert_eq!(me["me"]["id"], amina_id.as_str());
    let listed = api
        .data(
            &token,
            "query($p: ID!) { tokens(party: $p) { issuedBy { displayName } } }",
            json!({ "p": amina_id }),
        )
        .await;
    assert_eq!(listed["tokens"][0]["issuedBy"]["displayName"], "Amina");
    for (status, page) in [post(&link).await, get(&link).await] {
        assert_eq!(status, 410, "{page}");
        assert!(!page.contains("hw_"), "{page}");
    }

    // A new invitation withdraws the one before; each lasts its days.
    let sent = api.data(&api.admin, INVITE, json!({ "p": amina_id })).await;
    assert_eq!(sent["inviteParty"]["sentTo"], "amina@safe-passage.example");
    let second = invitation_link(&smtp.wait_for(2, StdDuration::from_secs(5)).await[1]);
    api.data(&api.admin, INVITE, json!({ "p": amina_id })).await;
    let third = invitation_link(&smtp.wait_for(3, StdDuration::from_secs(5)).await[2]);
    assert_eq!(post(&second).await.0, 410);
    api.clock.advance(Duration::days(7));
    assert_eq!(post(&third).await.0, 410);
    // A made-up or altered link finds nothing.
    let forged = format!("{}0", &third[..third.len() - 1]);
    assert_eq!(get(&forged).await.0, 410);
    assert_eq!(api.db.count("SELECT count(*) FROM api_tokens").await, 2);
}

#[tokio::test]
async fn a_changed_address_or_organisation_is_told_before_it_changes() {
    let (api, smtp) = with_smtp().await;
    let safe_passage = api.organisation("Safe Passage").await;
    let shelter = api.organisation("Other Shelter").await;
    let id = api
        .data(
            &api.admin,
            REGISTER,
            amina(&safe_passage, "amina@safe-passage.example"),
        )
        .await["registerParty"]["id"]
        .clone();
    smtp.take_invitations(1);

    // The admin points her address at their own: the old address hears of it first.
    let updated = api
        .data(
            &api.admin,
            UPDATE,
            json!({ "id": id, "input": amina(&safe_passage, "ada@admin.example")["input"] }),
        )
        .await;
    assert_eq!(updated["updateParty"]["email"], "ada@admin.example");
    let told = smtp.take();
    assert_eq!(told.len(), 1, "{told:#?}");
    assert_eq!(told[0].to, vec!["<amina@safe-passage.example>".to_owned()]);
    let text = told[0].part("text/plain").unwrap();
    assert!(
        text.contains("ada@admin.example") && text.contains("Ada Admin"),
        "{text}"
    );

    // Moved to another organisation: she is told too.
    api.data(
        &api.admin,
        UPDATE,
        json!({ "id": id, "input": amina(&shelter, "ada@admin.example")["input"] }),
    )
    .await;
    let told = smtp.take();
    assert_eq!(told.len(), 1, "{told:#?}");
    let text = told[0].part("text/plain").unwrap();
    assert!(
        text.contains("Safe Passage") && text.contains("Other Shelter"),
        "{text}"
    );

    // When the notice cannot go out, nothing changes.
    smtp.set_down(true);
    let events = api.db.count("SELECT count(*) FROM events").await;
    let body = api
        .gql(
            &api.admin,
            UPDATE,
            json!({ "id": id, "input": amina(&shelter, "other@admin.example")["input"] }),
        )
        .await;
    assert_eq!(error_code(&body), Some("MAIL_NOT_SENT"), "{body}");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("nothing was changed"));
    assert_eq!(api.db.count("SELECT count(*) FROM events").await, events);
    let id = uuid::Uuid::parse_str(id.as_str().unwrap()).unwrap();
    let parties = api.db.backend().parties_by_id(&[id]).await.unwrap();
    assert_eq!(parties[0].email, "ada@admin.example");

    // A registration whose invitation cannot go out says so, and how to send it again.
    let body = api
        .gql(
            &api.admin,
            REGISTER,
            amina(&safe_passage, "binta@safe-passage.example"),
        )
        .await;
    assert_eq!(error_code(&body), Some("MAIL_NOT_SENT"), "{body}");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("inviteParty"));
    assert_eq!(
        api.db
            .count("SELECT count(*) FROM invitations WHERE used_at IS NULL AND party_id <> (SELECT party_id FROM party_view WHERE email = 'ada@admin.example')")
            .await,
        0,
        "an invitation that did not go out does not stand"
    );
}

#[tokio::test]
async fn without_smtp_the_invitation_goes_to_the_outbox() {
    let outbox =
        std::env::temp_dir().join(format!("homeward-invitations-{}", uuid::Uuid::new_v4()));
    let dir = outbox.clone();
    let api = TestApi::start_with(move |s| Settings {
        outbox_dir: dir,
        ..s
    })
    .await;
    let safe_passage = api.organisation("Safe Passage").await;
    api.data(
        &api.admin,
        REGISTER,
        amina(&safe_passage, "amina@safe-passage.example"),
    )
    .await;
    let files: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let eml = std::fs::read_to_string(&files[0]).unwrap();
    assert!(eml.contains("amina@safe-passage.example"));
    assert!(eml.contains("/invitations/hwi_"), "{eml}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "readable by the server's user only");
    }
    std::fs::remove_dir_all(&outbox).ok();
}

/// Who joins a case team is its supervisors' decision: an admin who could invite a social worker
/// could invite themselves under another name.
#[tokio::test]
async fn a_case_team_is_joined_on_its_supervisors_invitation() {
    let (api, smtp) = with_smtp().await;
    // The first supervisor of an organisation is invited by the admin.
    let sara = api.party("SUPERVISOR", "Sara", "Safe Passage").await;
    let worker = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    let binta = api.party("SOCIAL_WORKER", "Binta", "Safe Passage").await;
    let caught = smtp.take();
    assert_eq!(caught.len(), 1, "only Sara was invited: {caught:#?}");
    assert_eq!(caught[0].to, vec!["<sara@safe-passage.example>".to_owned()]);
    let safe_passage = api.organisation("Safe Passage").await;

    // A social worker the admin registers now is invited by Sara, not by the admin.
    let nia = api
        .data(
            &api.admin,
            REGISTER,
            amina(&safe_passage, "nia@safe-passage.example"),
        )
        .await["registerParty"]["id"]
        .clone();
    assert!(smtp.take().is_empty(), "no invitation from the admin");
    let body = api.gql(&api.admin, INVITE, json!({ "p": nia })).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");
    let body = api.gql(&worker.token, INVITE, json!({ "p": nia })).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");
    let sent = api.data(&sara.token, INVITE, json!({ "p": nia })).await;
    assert_eq!(sent["inviteParty"]["sentTo"], "nia@safe-passage.example");
    assert_eq!(smtp.take().len(), 1);
    // The admin still invites liaisons (who see only what a case team gives them).
    let luc = api
        .register_party("GOVERNMENT_LIAISON", "Luc", "Prefecture")
        .await;
    api.data(&api.admin, INVITE, json!({ "p": luc })).await;

    // Sara is the last supervisor of an organisation with open plans: she stays.
    api.open_plan(&worker.token, "Joy N.").await;
    let body = api
        .gql(
            &api.admin,
            "mutation($p: ID!) { deactivateParty(party: $p, reason: \"Left\") { id } }",
            json!({ "p": sara.id }),
        )
        .await;
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("last supervisor"));
    let shelter = api.organisation("Other Shelter").await;
    let moved = json!({ "id": sara.id, "input": {
        "displayName": "Sara", "email": "sara@safe-passage.example", "role": "SUPERVISOR",
        "organisation": shelter, "country": "FR", "language": "fr" } });
    let body = api.gql(&api.admin, UPDATE, moved).await;
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");

    // Binta moves to another organisation: her tokens end with it; its supervisor invites her.
    smtp.take();
    let body = api
        .data(
            &api.admin,
            UPDATE,
            json!({ "id": binta.id, "input": {
                "displayName": "Binta", "email": "binta@safe-passage.example",
                "role": "SOCIAL_WORKER", "organisation": shelter, "country": "FR",
                "language": "fr" } }),
        )
        .await;
    assert_eq!(body["updateParty"]["id"], binta.id.as_str());
    let (status, _) = api
        .post(Some(&binta.token), "{ me { id } }", json!({}))
        .await;
    assert_eq!(status, 401, "her token ended with the move");
}

/// An invitation is for the party as they were when it went out: made a social worker after a
/// liaison's invitation was sent (to an address the admin chose), the link no longer works.
#[tokio::test]
async fn a_new_role_withdraws_the_invitation_sent_for_the_old_one() {
    let (api, smtp) = with_smtp().await;
    let safe_passage = api.organisation("Safe Passage").await;
    let mut liaison = amina(&safe_passage, "me@admin.example");
    liaison["input"]["role"] = json!("GOVERNMENT_LIAISON");
    let id = api.data(&api.admin, REGISTER, liaison.clone()).await["registerParty"]["id"].clone();
    let link = invitation_link(&smtp.wait_for(1, StdDuration::from_secs(5)).await[0]);
    let mut worker = liaison;
    worker["input"]["role"] = json!("SOCIAL_WORKER");
    api.data(
        &api.admin,
        UPDATE,
        json!({ "id": id, "input": worker["input"] }),
    )
    .await;
    let (status, page) = post(&link).await;
    assert_eq!(status, 410, "{page}");
    assert_eq!(api.db.count("SELECT count(*) FROM api_tokens").await, 1);
}

/// With plans in it, an organisation never takes a member of its case team from an admin, even
/// once the admin has cleared its supervisors away.
#[tokio::test]
async fn an_admin_cannot_clear_a_case_team_and_invite_into_it() {
    let (api, smtp) = with_smtp().await;
    let sara = api.party("SUPERVISOR", "Sara", "Safe Passage").await;
    let worker = api.party("SOCIAL_WORKER", "Amina", "Safe Passage").await;
    api.open_plan(&worker.token, "Joy N.").await;
    smtp.take();
    let safe_passage = api.organisation("Safe Passage").await;
    let mut stand_in = amina(&safe_passage, "me@admin.example");
    stand_in["input"]["role"] = json!("SUPERVISOR");
    let stand_in = api.data(&api.admin, REGISTER, stand_in).await["registerParty"]["id"].clone();
    // Sara may go: another supervisor is there (never invited, but registered).
    api.data(
        &api.admin,
        "mutation($p: ID!) { deactivateParty(party: $p, reason: \"Left\") { id } }",
        json!({ "p": sara.id }),
    )
    .await;
    let body = api.gql(&api.admin, INVITE, json!({ "p": stand_in })).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");
    assert!(smtp.take().is_empty(), "no invitation went out");
}

/// A registration sent again with the same key (a retry after a lost answer) registers no one
/// new and sends no second invitation, which would withdraw the first; a stale update tells
/// nobody of a change that does not happen.
#[tokio::test]
async fn retries_and_stale_updates_send_nothing_twice() {
    let (api, smtp) = with_smtp().await;
    let safe_passage = api.organisation("Safe Passage").await;
    let register = "mutation($input: PartyInput!) { registerParty(input: $input, idempotencyKey: \"amina-1\") { id version } }";
    let input = amina(&safe_passage, "amina@safe-passage.example");
    let first = api.data(&api.admin, register, input.clone()).await;
    let again = api.data(&api.admin, register, input).await;
    assert_eq!(first["registerParty"]["id"], again["registerParty"]["id"]);
    smtp.take_invitations(1);
    let link_stands = api
        .db
        .count("SELECT count(*) FROM invitations WHERE used_at IS NULL")
        .await;
    assert_eq!(link_stands, 1);

    let stale = "mutation($id: ID!, $input: PartyInput!) { updateParty(id: $id, input: $input, expectedVersion: 7) { id } }";
    let body = api
        .gql(
            &api.admin,
            stale,
            json!({ "id": first["registerParty"]["id"],
                    "input": amina(&safe_passage, "ada@admin.example")["input"] }),
        )
        .await;
    assert_eq!(error_code(&body), Some("CONFLICT"), "{body}");
    assert!(smtp.take().is_empty(), "nobody was told");
}
