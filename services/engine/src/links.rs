//! Partner links: a reminder to a partner contact carries signed, expiring, single-use links to
//! acknowledge the task or confirm that a follow-up visit took place, so that a partner in the
//! country of origin can answer from a phone without an account.
//!
//! A link is `<key id>.<payload>.<mac>`, the last two in base64url: the payload names the link,
//! the plan, the step, the partner, the action and the expiry; the MAC is HMAC-SHA256 over the
//! key id and the payload with the key the id names. It names no person. Using a link records the action as a command whose id is the link's id, so a
//! link is used at most once: the event log keeps command ids, and a second use finds the first.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use hmac::{Hmac, Mac};
use homeward_store::{EventStore, StoreError};
use homeward_workflows::party::{Party, PartyRole};
use homeward_workflows::plan::{
    ConcernArea, ConsentPurpose, Plan, PlanCommand, Step, StepKind, Wellbeing,
};
use homeward_workflows::{PartyId, PlanId, StepKey};
use sha2::Sha256;
use thiserror::Error;
use uuid::Uuid;

use crate::authz::{authorize, Action, PlanField, Viewer};
use crate::{CommandError, CommandHandler, CommandMeta};

/// How long a link in a reminder stays valid unless the server says otherwise
/// (`HOMEWARD_LINK_DAYS`): long enough for the visit it asks about, short enough that a
/// forwarded or leaked email does not open a plan for months.
pub const DEFAULT_LINK_DAYS: u32 = 7;

const LINK_NAMESPACE: Uuid = Uuid::from_u128(0x2a7c_41e0_9b3d_4f6a_8e21_5c0d_7b94_e3a1);

/// What a link lets its partner do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkAction {
    /// "I have seen this task and taken it on."
    Acknowledge,
    /// "The follow-up visit took place", with what it found.
    ConfirmVisit,
}

impl LinkAction {
    fn code(self) -> u8 {
        match self {
            Self::Acknowledge => 1,
            Self::ConfirmVisit => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Acknowledge),
            2 => Some(Self::ConfirmVisit),
            _ => None,
        }
    }
}

/// The claims a link carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerLink {
    /// Also the id of the command the link records: one use only.
    pub id: Uuid,
    pub plan_id: PlanId,
    pub step: StepKey,
    pub party: PartyId,
    pub action: LinkAction,
    pub expires_at: DateTime<Utc>,
}

impl PartnerLink {
    /// The link for `action` in the reminder of timer `timer_id`: the same reminder always
    /// carries the same link ids, so a resent email does not make a link usable twice.
    pub fn for_reminder(
        timer_id: Uuid,
        plan_id: PlanId,
        step: StepKey,
        party: PartyId,
        action: LinkAction,
        expires_at: DateTime<Utc>,
    ) -> Self {
        let mut name = timer_id.as_bytes().to_vec();
        name.push(action.code());
        Self {
            id: Uuid::new_v5(&LINK_NAMESPACE, &name),
            plan_id,
            step,
            party,
            action,
            expires_at,
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(57 + self.step.as_str().len());
        out.extend_from_slice(self.id.as_bytes());
        out.extend_from_slice(self.plan_id.0.as_bytes());
        out.extend_from_slice(self.party.0.as_bytes());
        out.push(self.action.code());
        out.extend_from_slice(&self.expires_at.timestamp().to_be_bytes());
        out.extend_from_slice(self.step.as_str().as_bytes());
        out
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let uuid = |range: std::ops::Range<usize>| {
            Some(Uuid::from_bytes(bytes.get(range)?.try_into().ok()?))
        };
        let expires = i64::from_be_bytes(bytes.get(49..57)?.try_into().ok()?);
        Some(Self {
            id: uuid(0..16)?,
            plan_id: PlanId(uuid(16..32)?),
            party: PartyId(uuid(32..48)?),
            action: LinkAction::from_code(*bytes.get(48)?)?,
            expires_at: Utc.timestamp_opt(expires, 0).single()?,
            step: StepKey::parse(std::str::from_utf8(bytes.get(57..)?).ok()?).ok()?,
        })
    }
}

/// Why a link cannot be used. Each is shown to the partner as a page; none records anything.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LinkRefusal {
    #[error("this link is incomplete or damaged")]
    Malformed,
    #[error("this link was not issued by Homeward or was changed")]
    Tampered,
    #[error("this link expired on {0}")]
    Expired(DateTime<Utc>),
    #[error("this link was already used")]
    Used,
    #[error("this task is no longer open")]
    NoLongerOpen,
    #[error("this task is no longer yours")]
    NotYours,
    #[error("this was already recorded")]
    AlreadyDone,
    #[error("{0}")]
    Rejected(String),
}

/// Signs links with the current key and checks them with any key still in use: after a
/// rotation, links issued under the previous key keep working until they expire.
#[derive(Clone)]
pub struct LinkSigner {
    /// The key that signs first, then the previous keys, which only verify.
    keys: Vec<LinkKey>,
}

#[derive(Clone)]
struct LinkKey {
    /// Named in every token it signs, so that the right key checks it.
    id: String,
    secret: Vec<u8>,
}

impl LinkKey {
    fn new(secret: &[u8]) -> Self {
        Self {
            id: key_id(secret),
            secret: secret.to_vec(),
        }
    }

    fn mac(&self, id: &str, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes a key of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(payload);
        mac
    }
}

/// A key's id: eight hex digits of a hash of it, which tell keys apart and reveal nothing of
/// them.
pub fn key_id(secret: &[u8]) -> String {
    use sha2::Digest as _;
    let digest = Sha256::new()
        .chain_update(b"homeward partner link key id\0")
        .chain_update(secret)
        .finalize();
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("LinkSigner").field("key_ids", &ids).finish()
    }
}

impl LinkSigner {
    /// One key, signing and checking.
    pub fn new(secret: &[u8]) -> Self {
        Self::rotated(secret, &[])
    }

    /// `current` signs; it and each of `previous` check.
    pub fn rotated(current: &[u8], previous: &[&[u8]]) -> Self {
        let mut keys = vec![LinkKey::new(current)];
        keys.extend(previous.iter().map(|secret| LinkKey::new(secret)));
        Self { keys }
    }

    /// The id of the key that signs.
    pub fn key_id(&self) -> &str {
        &self.keys[0].id
    }

    /// The ids of the keys that check, the signing one first.
    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    /// The token to put in a URL: `<key id>.<payload>.<mac>`.
    pub fn sign(&self, link: &PartnerLink) -> String {
        let key = &self.keys[0];
        let payload = link.to_bytes();
        let tag = key.mac(&key.id, &payload).finalize().into_bytes();
        format!(
            "{}.{}.{}",
            key.id,
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The link a token stands for, if it is intact, signed by a key in use, and not expired
    /// at `now`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<PartnerLink, LinkRefusal> {
        if token.len() > 512 {
            return Err(LinkRefusal::Malformed);
        }
        let mut parts = token.splitn(3, '.');
        let (Some(id), Some(payload), Some(tag)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(LinkRefusal::Malformed);
        };
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| LinkRefusal::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| LinkRefusal::Malformed)?;
        // A key no longer in use checks nothing: its links read as not issued here.
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or(LinkRefusal::Tampered)?;
        key.mac(id, &payload)
            .verify_slice(&tag)
            .map_err(|_| LinkRefusal::Tampered)?;
        let link = PartnerLink::from_bytes(&payload).ok_or(LinkRefusal::Malformed)?;
        if now > link.expires_at {
            return Err(LinkRefusal::Expired(link.expires_at));
        }
        Ok(link)
    }
}

/// What the page behind a link shows: the step and the action, nothing about the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkView {
    pub action: LinkAction,
    pub step_title: String,
    pub step_kind: StepKind,
    pub due_at: Option<DateTime<Utc>>,
    /// The first eight hex digits of the plan id, as in the reminder.
    pub plan_reference: String,
    /// The partner's language and time zone, for the page.
    pub language: String,
    pub time_zone: String,
    /// The earliest visit date the plan accepts (arrival), when the partner may see it.
    pub arrived_on: Option<NaiveDate>,
}

/// What a follow-up confirmation says about the visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitReport {
    pub visited_on: NaiveDate,
    pub wellbeing: Wellbeing,
    pub concerns: Vec<ConcernArea>,
}

/// The pages' logic: check a link, show its step, record its action once.
#[derive(Clone)]
pub struct LinkService {
    signer: LinkSigner,
    handler: CommandHandler<dyn EventStore>,
}

impl std::fmt::Debug for LinkService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkService").finish_non_exhaustive()
    }
}

/// A link that checked out, with what it refers to as it is now.
struct Checked {
    link: PartnerLink,
    party: Arc<Party>,
    plan: Arc<Plan>,
}

impl LinkService {
    pub fn new(signer: LinkSigner, handler: CommandHandler<dyn EventStore>) -> Self {
        Self { signer, handler }
    }

    pub fn signer(&self) -> &LinkSigner {
        &self.signer
    }

    /// The party's language for a token that verifies (even if it can no longer be used), so
    /// a refusal can be written in it; English otherwise.
    pub async fn language_of(&self, token: &str) -> String {
        let party = match self.signer.verify(token, DateTime::<Utc>::MIN_UTC) {
            Ok(link) => self
                .handler
                .load_latest::<Party>(&link.party.stream_id())
                .await
                .ok()
                .and_then(|l| l.state),
            Err(_) => None,
        };
        party.map_or_else(
            || "en".to_owned(),
            |p| p.profile.language.as_str().to_owned(),
        )
    }

    async fn check(&self, token: &str) -> Result<Checked, LinkError> {
        let now = self.handler.now();
        let link = self.signer.verify(token, now)?;
        if self
            .handler
            .store()
            .command_result(link.id)
            .await?
            .is_some()
        {
            return Err(LinkRefusal::Used.into());
        }
        let party = self
            .handler
            .load_latest::<Party>(&link.party.stream_id())
            .await?
            .state
            .filter(|p| p.is_active())
            .ok_or(LinkRefusal::NotYours)?;
        let plan = self
            .handler
            .load_latest::<Plan>(&link.plan_id.stream_id())
            .await?
            .state
            .ok_or(LinkRefusal::NoLongerOpen)?;
        let step = plan.step(&link.step).ok_or(LinkRefusal::NoLongerOpen)?;
        // A suspended plan, or a partner whose data-sharing consent was withdrawn, gets nothing
        // about the case, not even why.
        let sharing_withdrawn = plan
            .consent(ConsentPurpose::DataSharing { partner: party.id })
            .is_some_and(|c| !c.given);
        if !step.status.is_open() || plan.closed_at.is_some() || plan.suspended || sharing_withdrawn
        {
            return Err(LinkRefusal::NoLongerOpen.into());
        }
        let viewer = viewer_of(&party);
        if authorize(&viewer, Action::ReadStep(&plan, step)).is_err() {
            return Err(LinkRefusal::NotYours.into());
        }
        if link.action == LinkAction::Acknowledge && step.acknowledged {
            return Err(LinkRefusal::AlreadyDone.into());
        }
        Ok(Checked { link, party, plan })
    }

    /// What the page shows for a token.
    pub async fn view(&self, token: &str) -> Result<LinkView, LinkError> {
        let Checked { link, party, plan } = self.check(token).await?;
        let step = plan.step(&link.step).ok_or(LinkRefusal::NoLongerOpen)?;
        Ok(view_of(&link, &party, &plan, step))
    }

    /// Records the link's action (once) with the partner as actor.
    pub async fn act(
        &self,
        token: &str,
        visit: Option<VisitReport>,
    ) -> Result<LinkView, LinkError> {
        let Checked { link, party, plan } = self.check(token).await?;
        let command = match (link.action, visit) {
            (LinkAction::Acknowledge, _) => PlanCommand::AcknowledgeStep {
                step: link.step.clone(),
            },
            (LinkAction::ConfirmVisit, Some(v)) => PlanCommand::RecordFollowUp {
                step: link.step.clone(),
                visited_on: v.visited_on,
                wellbeing: v.wellbeing,
                concerns: v.concerns,
            },
            (LinkAction::ConfirmVisit, None) => {
                return Err(LinkRefusal::Rejected(
                    "say when the visit took place and how she is".into(),
                )
                .into())
            }
        };
        let viewer = viewer_of(&party);
        let meta = CommandMeta::new(party.id).through_partner_link(link.id);
        let allowed = |state: Option<&Plan>| match state {
            Some(p) => authorize(&viewer, Action::Command(p, &command)),
            None => Ok(()),
        };
        let stream = link.plan_id.stream_id();
        match self
            .handler
            .handle_authorized::<Plan>(&stream, &command, meta, &allowed)
            .await
        {
            Ok(handled) if handled.duplicate => Err(LinkRefusal::Used.into()),
            Ok(_) => {
                let step = plan.step(&link.step).ok_or(LinkRefusal::NoLongerOpen)?;
                Ok(view_of(&link, &party, &plan, step))
            }
            Err(CommandError::Rejected(e)) => Err(LinkRefusal::Rejected(e.to_string()).into()),
            Err(CommandError::Denied(_)) => Err(LinkRefusal::NotYours.into()),
            Err(CommandError::Conflict { .. } | CommandError::Busy { .. }) => Err(
                LinkRefusal::Rejected("the plan changed meanwhile: open the link again".into())
                    .into(),
            ),
            Err(CommandError::Sealing(e)) => Err(LinkRefusal::Rejected(e.to_string()).into()),
            Err(CommandError::Store(e)) => Err(e.into()),
        }
    }
}

fn viewer_of(party: &Party) -> Viewer {
    Viewer {
        party: party.id,
        role: party.profile.role,
        organisation: party.profile.organisation,
    }
}

fn view_of(link: &PartnerLink, party: &Party, plan: &Plan, step: &Step) -> LinkView {
    LinkView {
        action: link.action,
        step_title: crate::i18n::step_name(
            &plan.template,
            &step.key,
            step.kind,
            crate::i18n::Lang::of(party.profile.language.as_str()),
        ),
        step_kind: step.kind,
        due_at: step.due_at,
        plan_reference: crate::reminders::plan_reference(plan.id.0),
        language: party.profile.language.as_str().to_owned(),
        time_zone: party.profile.time_zone.clone(),
        // As in the API: the arrival date only for whom it may show (the date field then has
        // no lower bound on the page; the plan still refuses a visit before arrival).
        arrived_on: authorize(
            &viewer_of(party),
            Action::ReadPlanField(plan, PlanField::TravelDates),
        )
        .is_ok()
        .then(|| plan.arrived_at.map(|a| a.date_naive()))
        .flatten(),
    }
}

/// The actions a reminder about `step` to a party with `role` carries links for.
pub fn actions_for(role: PartyRole, step: &Step) -> Vec<LinkAction> {
    if role != PartyRole::PartnerContact {
        return Vec::new();
    }
    let mut actions = Vec::new();
    if !step.acknowledged {
        actions.push(LinkAction::Acknowledge);
    }
    if step.kind == StepKind::FollowUp {
        actions.push(LinkAction::ConfirmVisit);
    }
    actions
}

#[derive(Debug, Error)]
pub enum LinkError {
    #[error(transparent)]
    Refused(#[from] LinkRefusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(expires_at: DateTime<Utc>) -> PartnerLink {
        PartnerLink::for_reminder(
            Uuid::from_u128(1),
            PlanId(Uuid::from_u128(2)),
            StepKey::parse("follow_up_1").unwrap(),
            PartyId(Uuid::from_u128(3)),
            LinkAction::ConfirmVisit,
            expires_at,
        )
    }

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, 9, 0, 0).unwrap()
    }

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let signer = LinkSigner::new(b"secret");
        let l = link(at(10));
        let token = signer.sign(&l);
        assert_eq!(signer.verify(&token, at(1)), Ok(l.clone()));
        assert_eq!(signer.verify(&token, at(10)), Ok(l));
        assert_eq!(
            signer.verify(&token, at(11)),
            Err(LinkRefusal::Expired(at(10)))
        );
    }

    #[test]
    fn a_changed_link_or_another_key_is_refused() {
        let signer = LinkSigner::new(b"secret");
        let token = signer.sign(&link(at(10)));
        // Any change to the payload breaks the MAC.
        let parts: Vec<&str> = token.split('.').collect();
        let [id, payload, tag] = parts[..] else {
            panic!("{token}")
        };
        let mut bytes = URL_SAFE_NO_PAD.decode(payload).unwrap();
        bytes[20] ^= 1; // another plan
        let forged = format!("{id}.{}.{tag}", URL_SAFE_NO_PAD.encode(&bytes));
        assert_eq!(signer.verify(&forged, at(1)), Err(LinkRefusal::Tampered));
        // Nor can the key id be swapped for another key's.
        let other_id = LinkSigner::new(b"other").key_id().to_owned();
        let renamed = format!("{other_id}.{payload}.{tag}");
        assert_eq!(
            LinkSigner::rotated(b"other", &[b"secret"]).verify(&renamed, at(1)),
            Err(LinkRefusal::Tampered)
        );
        assert_eq!(
            LinkSigner::new(b"other").verify(&token, at(1)),
            Err(LinkRefusal::Tampered)
        );
        for junk in ["", "abc", "abc.def", "!!.!!", &"a".repeat(600)] {
            assert!(
                matches!(
                    signer.verify(junk, at(1)),
                    Err(LinkRefusal::Malformed | LinkRefusal::Tampered)
                ),
                "{junk}"
            );
        }
    }

    #[test]
    fn after_a_rotation_links_under_the_previous_key_still_verify_until_it_is_dropped() {
        let before = LinkSigner::new(b"the key of last year");
        let issued = link(at(10));
        let token = before.sign(&issued);
        let rotated = LinkSigner::rotated(b"the key of this year", &[b"the key of last year"]);
        assert_eq!(rotated.verify(&token, at(1)), Ok(issued.clone()));
        // New links are signed with the new key, which the old signer does not know.
        let fresh = rotated.sign(&issued);
        assert!(
            fresh.starts_with(&format!("{}.", rotated.key_id())),
            "{fresh}"
        );
        assert_ne!(rotated.key_id(), before.key_id());
        assert_eq!(before.verify(&fresh, at(1)), Err(LinkRefusal::Tampered));
        // Once the previous key is dropped, its links are refused.
        let dropped = LinkSigner::new(b"the key of this year");
        assert_eq!(dropped.verify(&token, at(1)), Err(LinkRefusal::Tampered));
        assert_eq!(rotated.key_ids(), vec![rotated.key_id(), before.key_id()]);
    }

    #[test]
    fn the_same_reminder_always_carries_the_same_link_ids() {
        let a = link(at(10));
        let b = link(at(12));
        assert_eq!(a.id, b.id);
        let ack = PartnerLink::for_reminder(
            Uuid::from_u128(1),
            a.plan_id,
            a.step.clone(),
            a.party,
            LinkAction::Acknowledge,
            at(10),
        );
        assert_ne!(a.id, ack.id);
    }
}
