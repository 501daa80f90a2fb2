//! Invitations: how a party gets a token of their own without an admin ever seeing it, and the
//! notices that tell a party their account was changed.
//!
//! An admin registers a party; Homeward emails the party a single-use link (valid
//! [`InvitationSettings::valid_for`], stored only as a hash) to `/invitations/<secret>`. Opening
//! it shows a button (mail scanners open links, and must not use them); pressing it creates
//! the party's token and shows it once. A newer invitation withdraws the older ones. Without
//! SMTP the invitation goes to the outbox folder, which whoever runs the server can read.

use std::sync::Arc;

use askama::Template;
use chrono::{DateTime, Duration, Utc};
use homeward_store::projection::PartyRow;
use homeward_store::reads::{NewInvitation, ReadModels};
use homeward_store::StoreError;
use homeward_workflows::party::PartyRole;
use homeward_workflows::PartyId;
use sha2::{Digest, Sha256};
use thiserror::Error;
use uuid::Uuid;

use crate::i18n::Lang;
use crate::mail::{MailError, Mailer, OutgoingMail};
use crate::reminders::local;
use crate::tokens::{self, IssuedToken, TokenError, TokenRequest};

/// Invitation secrets start with this (as tokens start with `hw_`).
pub const INVITATION_PREFIX: &str = "hwi_";

/// How long an invitation stands unless the server says otherwise.
pub const DEFAULT_INVITATION_DAYS: i64 = 7;

/// Where invitations and notices are sent from, and where the links point.
#[derive(Clone)]
pub struct InvitationSettings {
    pub mailer: Arc<dyn Mailer>,
    /// The address parties reach the server at, e.g. `https://homeward.example.org`.
    pub base_url: String,
    pub valid_for: Duration,
}

impl std::fmt::Debug for InvitationSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvitationSettings")
            .field("base_url", &self.base_url)
            .field("valid_for", &self.valid_for)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Error)]
pub enum InvitationError {
    #[error("the email could not be sent: {0}")]
    NotSent(#[from] MailError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An invitation that went out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentInvitation {
    pub sent_to: String,
    pub expires_at: DateTime<Utc>,
}

/// Who a notice is from and about, as the recipient reads it.
#[derive(Debug, Clone)]
pub struct Notice<'a> {
    pub to: &'a PartyRow,
    /// The admin who made the change or sent the invitation.
    pub by: &'a str,
    pub organisation: &'a str,
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// What a notice says, laid out by `notice.txt` and `notice.html`.
pub(crate) struct NoticeBody {
    pub(crate) lang: &'static str,
    pub(crate) greeting: String,
    pub(crate) paragraphs: Vec<String>,
    pub(crate) link: Option<(String, String)>,
    pub(crate) footer: String,
}

#[derive(Template)]
#[template(path = "notice.txt")]
struct NoticeText<'a> {
    m: &'a NoticeBody,
}

#[derive(Template)]
#[template(path = "notice.html")]
struct NoticeHtml<'a> {
    m: &'a NoticeBody,
}

pub(crate) fn render(
    to: &PartyRow,
    to_address: &str,
    subject: String,
    body: NoticeBody,
    message_id: String,
) -> OutgoingMail {
    let rendered = |t: &dyn askama::DynTemplate| {
        t.dyn_render()
            .unwrap_or_else(|e| panic!("a notice template failed to render: {e}"))
    };
    OutgoingMail {
        to_name: to.display_name.clone(),
        to_address: to_address.to_owned(),
        subject,
        text: rendered(&NoticeText { m: &body }),
        html: rendered(&NoticeHtml { m: &body }),
        message_id,
        calendar: None,
    }
}

/// The invitations and notices of one server.
#[derive(Clone, Debug)]
pub struct Invitations {
    settings: InvitationSettings,
}

impl Invitations {
    pub fn new(settings: InvitationSettings) -> Self {
        Self { settings }
    }

    /// The page an invitation's secret opens.
    pub fn url(&self, secret: &str) -> String {
        format!(
            "{}/invitations/{secret}",
            self.settings.base_url.trim_end_matches('/')
        )
    }

    /// Stores a new invitation for `notice.to` (withdrawing older ones) and emails it. When the
    /// email cannot be sent the invitation is withdrawn again: send another.
    pub async fn send(
        &self,
        reads: &dyn ReadModels,
        notice: Notice<'_>,
        issued_by: PartyId,
        now: DateTime<Utc>,
    ) -> Result<SentInvitation, InvitationError> {
        let to = notice.to;
        // Two v4 UUIDs: 244 random bits from the operating system's generator.
        let secret = format!(
            "{INVITATION_PREFIX}{}{}",
            Uuid::new_v4().simple(),
            Uuid::new_v4().simple()
        );
        let invitation = NewInvitation {
            invitation_id: Uuid::new_v4(),
            secret_hash: hash(&secret),
            party_id: to.party_id,
            issued_by: Some(issued_by.0),
            issued_at: now,
            expires_at: now + self.settings.valid_for,
        };
        reads.insert_invitation(&invitation).await?;
        let lang = Lang::of(&to.language);
        let body = NoticeBody {
            lang: lang.code(),
            greeting: lang.text_with(
                "mail-greeting",
                &[("name", to.display_name.as_str().into())],
            ),
            paragraphs: vec![lang.text_with(
                "invitation-line",
                &[
                    ("admin", notice.by.into()),
                    ("organisation", notice.organisation.into()),
                    (
                        "expires",
                        local(invitation.expires_at, &to.time_zone).into(),
                    ),
                ],
            )],
            link: Some((lang.text("invitation-link"), self.url(&secret))),
            footer: lang.text("invitation-footer"),
        };
        let mail = render(
            to,
            &to.email,
            lang.text("invitation-subject"),
            body,
            format!("invitation-{}@homeward", invitation.invitation_id),
        );
        if let Err(e) = self.settings.mailer.send(&mail).await {
            reads.withdraw_invitations_of(to.party_id).await?;
            return Err(e.into());
        }
        Ok(SentInvitation {
            sent_to: to.email.clone(),
            expires_at: invitation.expires_at,
        })
    }

    /// The party whose invitation this is, if its link can still be used (the page's button
    /// is shown only then).
    pub async fn standing(
        &self,
        reads: &dyn ReadModels,
        secret: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<PartyRow>, StoreError> {
        if !secret.starts_with(INVITATION_PREFIX) || secret.len() > 100 {
            return Ok(None);
        }
        let Some(party) = reads.invitation_party(&hash(secret), now).await? else {
            return Ok(None);
        };
        Ok(reads
            .parties_by_id(&[party])
            .await?
            .into_iter()
            .next()
            .filter(|p| p.active))
    }

    /// Uses an invitation: the party's new token (shown once), or `None` when the link cannot
    /// be used (used, withdrawn, expired, unknown).
    pub async fn accept(
        &self,
        reads: &dyn ReadModels,
        secret: &str,
        now: DateTime<Utc>,
        max_days: i64,
    ) -> Result<Option<(PartyRow, IssuedToken)>, TokenError> {
        if !secret.starts_with(INVITATION_PREFIX) || secret.len() > 100 {
            return Ok(None);
        }
        let Some(party) = reads.use_invitation(&hash(secret), now).await? else {
            return Ok(None);
        };
        let Some(row) = reads
            .parties_by_id(&[party])
            .await?
            .into_iter()
            .next()
            .filter(|p| p.active)
        else {
            return Ok(None);
        };
        let role = PartyRole::parse(&row.role).ok_or(TokenError::UnknownParty(party))?;
        let request = TokenRequest {
            party: PartyId(party),
            role,
            days: tokens::DEFAULT_TOKEN_DAYS.min(max_days),
            max_days,
            // Created by the party themselves, through their invitation.
            issued_by: Some(PartyId(party)),
        };
        let token = tokens::issue(reads, request, now).await?;
        Ok(Some((row, token)))
    }

    /// Tells a party's former address that their address was changed (and by whom).
    pub async fn tell_address_changed(
        &self,
        notice: Notice<'_>,
        new_address: &str,
        now: DateTime<Utc>,
    ) -> Result<(), MailError> {
        let old = notice.to.email.clone();
        self.tell(notice, "address-changed", "address", &old, new_address, now)
            .await
    }

    /// Tells a party they were moved to another organisation (and by whom).
    pub async fn tell_organisation_changed(
        &self,
        notice: Notice<'_>,
        new_organisation: &str,
        now: DateTime<Utc>,
    ) -> Result<(), MailError> {
        let old = notice.organisation;
        self.tell(
            notice,
            "organisation-changed",
            "organisation",
            old,
            new_organisation,
            now,
        )
        .await
    }

    /// A notice to the party's current address that `notice.by` changed something of theirs
    /// from `old` to `new`: the catalogue's `<message>-subject` and `<message>-line`.
    async fn tell(
        &self,
        notice: Notice<'_>,
        message: &str,
        id_prefix: &str,
        old: &str,
        new: &str,
        now: DateTime<Utc>,
    ) -> Result<(), MailError> {
        let to = notice.to;
        let lang = Lang::of(&to.language);
        let body = NoticeBody {
            lang: lang.code(),
            greeting: lang.text_with(
                "mail-greeting",
                &[("name", to.display_name.as_str().into())],
            ),
            paragraphs: vec![lang.text_with(
                &format!("{message}-line"),
                &[
                    ("when", local(now, &to.time_zone).into()),
                    ("admin", notice.by.into()),
                    ("old", old.into()),
                    ("new", new.into()),
                ],
            )],
            link: None,
            footer: lang.text("notice-footer"),
        };
        let mail = render(
            to,
            &to.email,
            lang.text(&format!("{message}-subject")),
            body,
            format!("{id_prefix}-{}@homeward", Uuid::new_v4()),
        );
        self.settings.mailer.send(&mail).await
    }
}
