//! Console sign-in sessions, stored server-side so they can be revoked: one row per signed-in
//! browser, keyed by the sha256 of its cookie token, carrying the producer and the session's
//! CSRF token. A session ends on sign-out, when idle too long, or when too old.

use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Database, StoreError, new_token};

/// How long sessions live, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A session unused this long is over.
    pub idle_ms: i64,
    /// A session this old is over however busy it is.
    pub max_age_ms: i64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        // Half an hour idle is OWASP's upper bound for low-risk apps; a working day caps a session.
        SessionPolicy { idle_ms: 30 * 60 * 1000, max_age_ms: 12 * 3600 * 1000 }
    }
}

/// `last_seen_at` is written at most this often: a page view is then a read, not a write, on
/// SQLite's single writer that the event path shares.
const TOUCH_EVERY_MS: i64 = 60 * 1000;

/// A session just created: the cookie token (given to the browser, never stored) and its CSRF token.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub token: String,
    pub csrf: String,
}

/// A live session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub producer_id: String,
    pub producer_name: String,
    pub csrf: String,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Database {
    /// Start a session for a producer (and clear sessions that are over, so the table holds
    /// live ones only).
    pub async fn create_session(
        &self,
        producer_id: &str,
        policy: SessionPolicy,
        now: i64,
    ) -> Result<NewSession, StoreError> {
        sqlx::query("DELETE FROM console_sessions WHERE last_seen_at < $1 OR created_at < $2")
            .bind(now.saturating_sub(policy.idle_ms))
            .bind(now.saturating_sub(policy.max_age_ms))
            .execute(&self.pool)
            .await?;
        // 128 bits each, from the OS generator.
        let session = NewSession { token: new_token(), csrf: new_token() };
        sqlx::query(
            "INSERT INTO console_sessions (token_hash, producer_id, csrf_token, created_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(hash(&session.token))
        .bind(producer_id)
        .bind(&session.csrf)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(session)
    }

    /// The live session of a cookie token, its idle clock restarted; `None` (and the row
    /// deleted) when it is unknown, idle too long or too old.
    pub async fn session(&self, token: &str, policy: SessionPolicy, now: i64) -> Result<Option<Session>, StoreError> {
        let token_hash = hash(token);
        let row = sqlx::query(
            "SELECT s.producer_id, s.csrf_token, s.created_at, s.last_seen_at, p.name FROM console_sessions s
             JOIN producers p ON p.id = s.producer_id WHERE s.token_hash = $1",
        )
        .bind(&token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let created_at: i64 = row.try_get("created_at")?;
        let last_seen_at: i64 = row.try_get("last_seen_at")?;
        if now - last_seen_at > policy.idle_ms || now - created_at > policy.max_age_ms {
            self.end_session(token).await?;
            return Ok(None);
        }
        if now - last_seen_at >= TOUCH_EVERY_MS {
            sqlx::query("UPDATE console_sessions SET last_seen_at = $1 WHERE token_hash = $2")
                .bind(now)
                .bind(&token_hash)
                .execute(&self.pool)
                .await?;
        }
        Ok(Some(Session {
            producer_id: row.try_get("producer_id")?,
            producer_name: row.try_get("name")?,
            csrf: row.try_get("csrf_token")?,
        }))
    }

    /// End one session (sign-out).
    pub async fn end_session(&self, token: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1").bind(hash(token)).execute(&self.pool).await?;
        Ok(())
    }

    /// End every session of a producer (sign out everywhere); returns how many ended.
    pub async fn end_producer_sessions(&self, producer_id: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM console_sessions WHERE producer_id = $1")
            .bind(producer_id)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
