//! The web console's sign-in links and sessions on PostgreSQL (`sign_in_links`,
//! `console_sessions`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use homeward_store::projection::PartyRow;
use homeward_store::sessions::{ConsoleSessions, NewSession, NewSignInLink, SessionOwner};
use homeward_store::StoreError;
use uuid::Uuid;

use crate::PgStore;

#[async_trait]
impl ConsoleSessions for PgStore {
    async fn active_parties_with_email(&self, email: &str) -> Result<Vec<PartyRow>, StoreError> {
        Ok(self
            .read(|pool| async move {
                sqlx::query_as(
                    "SELECT party_id, version, display_name, email, role, organisation, country, \
               language, time_zone, supervisor, active \
             FROM party_view WHERE lower(email) = lower($1) AND active ORDER BY party_id",
                )
                .bind(email)
                .fetch_all(pool)
                .await
            })
            .await?)
    }

    async fn insert_sign_in_link(&self, link: &NewSignInLink) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        // One link of a party at a time: two asked for at once would each withdraw only the
        // ones committed before it, and both would stand.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('sign-in ' || $1::text, 0))")
            .bind(link.party_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE sign_in_links SET used_at = $2 WHERE party_id = $1 AND used_at IS NULL",
        )
        .bind(link.party_id)
        .bind(link.issued_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO sign_in_links (secret_hash, party_id, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&link.secret_hash)
        .bind(link.party_id)
        .bind(link.issued_at)
        .bind(link.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn sign_in_link_party(
        &self,
        secret_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError> {
        Ok(self
            .read(|pool| async move {
                sqlx::query_scalar(
                    "SELECT party_id FROM sign_in_links \
             WHERE secret_hash = $1 AND used_at IS NULL AND expires_at > $2",
                )
                .bind(secret_hash)
                .bind(now)
                .fetch_optional(pool)
                .await
            })
            .await?)
    }

    async fn use_sign_in_link(
        &self,
        secret_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError> {
        let mut tx = self.begin().await?;
        let party = sqlx::query_scalar(
            "UPDATE sign_in_links SET used_at = $2 \
             WHERE secret_hash = $1 AND used_at IS NULL AND expires_at > $2 \
             RETURNING party_id",
        )
        .bind(secret_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(party)
    }

    async fn insert_session(&self, session: &NewSession) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO console_sessions \
               (session_id, secret_hash, party_id, token_id, started_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $5, $6)",
        )
        .bind(session.session_id)
        .bind(&session.secret_hash)
        .bind(session.party_id)
        .bind(session.token_id)
        .bind(session.started_at)
        .bind(session.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session_owner(
        &self,
        secret_hash: &[u8],
        now: DateTime<Utc>,
        seen_after: DateTime<Utc>,
    ) -> Result<Option<SessionOwner>, StoreError> {
        Ok(self
            .read(|pool| async move {
                sqlx::query_as(
                    "SELECT s.session_id, s.token_id, s.last_seen_at, s.expires_at, p.party_id, \
               p.version, p.display_name, p.email, p.role, p.organisation, p.country, \
               p.language, p.time_zone, p.supervisor, p.active \
             FROM console_sessions s JOIN party_view p ON p.party_id = s.party_id \
             WHERE s.secret_hash = $1 AND s.ended_at IS NULL AND s.expires_at > $2 \
               AND s.last_seen_at > $3 AND p.active \
               AND (s.token_id IS NULL OR EXISTS ( \
                 SELECT 1 FROM api_tokens t WHERE t.token_id = s.token_id \
                   AND t.revoked_at IS NULL AND t.expires_at > $2 AND t.role = p.role))",
                )
                .bind(secret_hash)
                .bind(now)
                .bind(seen_after)
                .fetch_optional(pool)
                .await
            })
            .await?)
    }

    async fn touch_session(&self, session_id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.rerunnable_write(|pool| {
            sqlx::query(
                "UPDATE console_sessions SET last_seen_at = $2 \
                 WHERE session_id = $1 AND last_seen_at < $2",
            )
            .bind(session_id)
            .bind(at)
            .execute(pool)
        })
        .await?;
        Ok(())
    }

    async fn end_session(&self, secret_hash: &[u8], at: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let ended = sqlx::query(
            "UPDATE console_sessions SET ended_at = $2 \
             WHERE secret_hash = $1 AND ended_at IS NULL",
        )
        .bind(secret_hash)
        .bind(at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(ended > 0)
    }
}
