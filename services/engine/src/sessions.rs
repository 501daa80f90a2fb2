//! Signing in to the web console, and its sessions.
//!
//! A party signs in by a link emailed to their address (the link's page shows a button, and
//! only pressing it uses the link: mail scanners open links), or by pasting one of their
//! tokens. Either starts a session: a random secret in a cookie, stored only as a hash, ending
//! when the party signs out, after [`SessionSettings::idle`] without a request, at
//! [`SessionSettings::lifetime`] whatever happens, when the party is deactivated, or with the
//! token it was started by. Forms carry a token derived from the session's secret, which a
//! page of another site cannot read.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use homeward_store::projection::PartyRow;
use homeward_store::reads::ReadModels;
use homeward_store::sessions::{ConsoleSessions, NewSession, NewSignInLink};
use homeward_store::StoreError;
use homeward_workflows::party::PartyRole;
use homeward_workflows::{OrganisationId, PartyId};
use sha2::{Digest, Sha256};
use thiserror::Error;
use uuid::Uuid;

use crate::authz::Viewer;
use crate::i18n::Lang;
use crate::invitations::{render, NoticeBody};
use crate::mail::{MailError, Mailer};
use crate::reminders::local;
use crate::tokens;

/// Sign-in links' secrets start with this.
pub const LINK_PREFIX: &str = "hwl_";
/// Session secrets (the cookie's value) start with this.
pub const SESSION_PREFIX: &str = "hwc_";

/// How long sessions and sign-in links last.
#[derive(Debug, Clone, Copy)]
pub struct SessionSettings {
    /// How long an emailed link can be used.
    pub link_valid_for: Duration,
    /// A session without a request for this long ends.
    pub idle: Duration,
    /// A session ends this long after it started, however busy.
    pub lifetime: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            link_valid_for: Duration::minutes(15),
            idle: Duration::minutes(60),
            lifetime: Duration::hours(12),
        }
    }
}

#[derive(Debug, Error)]
pub enum SignInError {
    #[error("the email could not be sent: {0}")]
    NotSent(#[from] MailError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A session just started: the secret goes into the cookie and is never stored.
#[derive(Debug, Clone)]
pub struct Started {
    pub secret: String,
    pub party: PartyRow,
    pub expires_at: DateTime<Utc>,
}

/// A session that stands, and whose it is.
#[derive(Debug, Clone)]
pub struct Session {
    pub session_id: Uuid,
    pub viewer: Viewer,
    pub party: PartyRow,
    /// What this session's forms must carry.
    pub form_token: String,
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

fn random_secret(prefix: &str) -> String {
    // Two v4 UUIDs: 244 random bits from the operating system's generator.
    format!(
        "{prefix}{}{}",
        Uuid::new_v4().simple(),
        Uuid::new_v4().simple()
    )
}

/// The token a session's forms carry: derived from its secret, which only the session's cookie
/// holds (HttpOnly: no script reads it), so a page of another site cannot know it.
pub fn form_token(session_secret: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"homeward form token\0")
        .chain_update(session_secret.as_bytes())
        .finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `given` is the session's form token (compared in constant time).
pub fn form_token_matches(session_secret: &str, given: &str) -> bool {
    let expected = form_token(session_secret);
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The viewer a party is, if their role is one Homeward knows.
fn viewer_of(party: &PartyRow) -> Option<Viewer> {
    Some(Viewer {
        party: PartyId(party.party_id),
        role: PartyRole::parse(&party.role)?,
        organisation: OrganisationId(party.organisation),
    })
}

/// Signing in and sessions, for one server.
#[derive(Clone)]
pub struct SignIn {
    sessions: Arc<dyn ConsoleSessions>,
    reads: Arc<dyn ReadModels>,
    mailer: Arc<dyn Mailer>,
    base_url: String,
    /// The base URL's scheme, host and port: what a browser sends as `Origin` from its pages.
    origin: String,
    settings: SessionSettings,
}

/// `https://host:port` of a URL (its path left out).
fn origin_of(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    let after_scheme = trimmed.find("://").map_or(0, |i| i + 3);
    match trimmed[after_scheme..].find('/') {
        Some(slash) => trimmed[..after_scheme + slash].to_owned(),
        None => trimmed.to_owned(),
    }
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("base_url", &self.base_url)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SignIn {
    pub fn new(
        sessions: Arc<dyn ConsoleSessions>,
        reads: Arc<dyn ReadModels>,
        mailer: Arc<dyn Mailer>,
        base_url: String,
        settings: SessionSettings,
    ) -> Self {
        Self {
            sessions,
            reads,
            mailer,
            origin: origin_of(&base_url),
            base_url,
            settings,
        }
    }

    /// What a browser sends as `Origin` from this server's pages.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn settings(&self) -> SessionSettings {
        self.settings
    }

    /// The page a link's secret opens.
    pub fn link_url(&self, secret: &str) -> String {
        format!("{}/sign-in/{secret}", self.base_url.trim_end_matches('/'))
    }

    /// Emails a sign-in link to every active party with this address; how many. Whoever asks
    /// is told the same whatever the answer (an address's being known is not disclosed).
    pub async fn send_link(&self, email: &str, now: DateTime<Utc>) -> Result<usize, SignInError> {
        let email = email.trim();
        if email.is_empty() || email.len() > 254 || !email.contains('@') {
            return Ok(0);
        }
        let parties = self.sessions.active_parties_with_email(email).await?;
        for party in &parties {
            let secret = random_secret(LINK_PREFIX);
            let link = NewSignInLink {
                secret_hash: hash(&secret),
                party_id: party.party_id,
                issued_at: now,
                expires_at: now + self.settings.link_valid_for,
            };
            self.sessions.insert_sign_in_link(&link).await?;
            let lang = Lang::of(&party.language);
            let organisation = self
                .reads
                .organisations_by_id(&[party.organisation])
                .await?
                .into_iter()
                .next()
                .map(|o| o.name)
                .unwrap_or_default();
            let role = lang.text(&format!("role-{}", party.role));
            let body = NoticeBody {
                lang: lang.code(),
                greeting: lang.text_with(
                    "mail-greeting",
                    &[("name", party.display_name.as_str().into())],
                ),
                paragraphs: vec![lang.text_with(
                    "sign-in-line",
                    &[
                        ("role", role.into()),
                        ("organisation", organisation.into()),
                        ("expires", local(link.expires_at, &party.time_zone).into()),
                    ],
                )],
                link: Some((lang.text("sign-in-link"), self.link_url(&secret))),
                footer: lang.text("sign-in-footer"),
            };
            let mail = render(
                party,
                &party.email,
                lang.text("sign-in-subject"),
                body,
                format!("sign-in-{}@homeward", Uuid::new_v4()),
            );
            self.mailer.send(&mail).await?;
        }
        Ok(parties.len())
    }

    /// The party whose link this is, if it can still be used (its page's button is shown
    /// only then).
    pub async fn link_party(
        &self,
        secret: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<PartyRow>, StoreError> {
        if !secret.starts_with(LINK_PREFIX) || secret.len() > 100 {
            return Ok(None);
        }
        let Some(party) = self.sessions.sign_in_link_party(&hash(secret), now).await? else {
            return Ok(None);
        };
        self.active_party(party).await
    }

    async fn active_party(&self, party: Uuid) -> Result<Option<PartyRow>, StoreError> {
        Ok(self
            .reads
            .parties_by_id(&[party])
            .await?
            .into_iter()
            .next()
            .filter(|p| p.active))
    }

    /// Uses a link (once): a new session for its party, or `None` when the link cannot be
    /// used (used, withdrawn, expired, unknown, or its party deactivated).
    pub async fn use_link(
        &self,
        secret: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Started>, StoreError> {
        if !secret.starts_with(LINK_PREFIX) || secret.len() > 100 {
            return Ok(None);
        }
        let Some(party) = self.sessions.use_sign_in_link(&hash(secret), now).await? else {
            return Ok(None);
        };
        let Some(party) = self.active_party(party).await? else {
            return Ok(None);
        };
        self.start(party, None, now).await.map(Some)
    }

    /// A new session for the party of a token that stands; it ends with the token.
    pub async fn with_token(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Started>, StoreError> {
        let Some(opened) = tokens::check(self.reads.as_ref(), token.trim(), now).await? else {
            return Ok(None);
        };
        let Some(party) = self.active_party(opened.viewer.party.0).await? else {
            return Ok(None);
        };
        self.start(party, Some(opened.token_id), now)
            .await
            .map(Some)
    }

    async fn start(
        &self,
        party: PartyRow,
        token_id: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<Started, StoreError> {
        let secret = random_secret(SESSION_PREFIX);
        let session = NewSession {
            session_id: Uuid::new_v4(),
            secret_hash: hash(&secret),
            party_id: party.party_id,
            token_id,
            started_at: now,
            expires_at: now + self.settings.lifetime,
        };
        self.sessions.insert_session(&session).await?;
        Ok(Started {
            secret,
            party,
            expires_at: session.expires_at,
        })
    }

    /// The session of a cookie's secret, if it stands at `now`. When it was last seen is
    /// recorded at most once a minute, not on every request.
    pub async fn session(
        &self,
        secret: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, StoreError> {
        if !secret.starts_with(SESSION_PREFIX) || secret.len() > 100 {
            return Ok(None);
        }
        let Some(owner) = self
            .sessions
            .session_owner(&hash(secret), now, now - self.settings.idle)
            .await?
        else {
            return Ok(None);
        };
        let Some(viewer) = viewer_of(&owner.party) else {
            return Ok(None);
        };
        if now - owner.last_seen_at >= Duration::minutes(1) {
            if let Err(e) = self.sessions.touch_session(owner.session_id, now).await {
                tracing::warn!(error = %e, "a session's last request was not recorded");
            }
        }
        Ok(Some(Session {
            session_id: owner.session_id,
            viewer,
            party: owner.party,
            form_token: form_token(secret),
        }))
    }

    /// Ends the session of a cookie's secret (signing out).
    pub async fn sign_out(&self, secret: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        if !secret.starts_with(SESSION_PREFIX) || secret.len() > 100 {
            return Ok(false);
        }
        self.sessions.end_session(&hash(secret), now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_the_base_urls_scheme_host_and_port() {
        assert_eq!(
            origin_of("https://homeward.example.org/"),
            "https://homeward.example.org"
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080/homeward"),
            "http://127.0.0.1:8080"
        );
    }

    #[test]
    fn a_form_token_belongs_to_its_session() {
        let one = random_secret(SESSION_PREFIX);
        let other = random_secret(SESSION_PREFIX);
        assert!(form_token_matches(&one, &form_token(&one)));
        assert!(!form_token_matches(&one, &form_token(&other)));
        assert!(!form_token_matches(&one, ""));
        assert!(!form_token_matches(&one, &form_token(&one)[..31]));
        assert_ne!(form_token(&one), one, "the token is not the secret");
    }
}
