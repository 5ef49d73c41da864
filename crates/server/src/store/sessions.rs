//! Support sessions: rows of `sessions` (code, owner, status, UDP port, mail status, counters
//! written at close). A code is unique among open sessions (a partial unique index).

use chrono::{DateTime, Utc};

use super::{to_micros, Store, StoreResult};

const SESSION_COLUMNS: &str = "id, code, tech_user_id, customer_name, customer_email, status, \
                               udp_port, email_status, frames, bytes, dropped_packets, \
                               created_at, closed_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRecord {
    pub id: i64,
    pub code: String,
    pub tech_user_id: String,
    pub customer_name: Option<String>,
    pub customer_email: Option<String>,
    pub status: String,
    pub udp_port: i64,
    pub email_status: Option<String>,
    pub frames: i64,
    pub bytes: i64,
    pub dropped_packets: i64,
    pub created_at: i64,
    pub closed_at: Option<i64>,
}

impl SessionRecord {
    pub fn is_closed(&self) -> bool {
        self.status == "closed"
    }
}

pub struct NewSession<'a> {
    pub code: &'a str,
    pub tech_user_id: &'a str,
    pub customer_name: Option<&'a str>,
    pub customer_email: Option<&'a str>,
    pub udp_port: u16,
    pub email_status: Option<&'a str>,
    pub created_at: DateTime<Utc>,
    /// The replica that binds the session's port.
    pub replica: &'a str,
}

/// Counters as they stood when the session closed.
#[derive(Debug, Clone, Copy, Default)]
pub struct FinalCounters {
    pub frames: u64,
    pub bytes: u64,
    pub dropped_packets: u64,
}

fn as_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Store {
    /// Inserts an open session; `Duplicate("Session code")` when an open session holds the code.
    pub async fn insert_session(&self, new: NewSession<'_>) -> StoreResult<SessionRecord> {
        sqlx::query_as(&format!(
            "INSERT INTO sessions (code, tech_user_id, customer_name, customer_email, status, \
             udp_port, email_status, created_at, replica) \
             VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8) RETURNING {SESSION_COLUMNS}"
        ))
        .bind(new.code)
        .bind(new.tech_user_id)
        .bind(new.customer_name)
        .bind(new.customer_email)
        .bind(i64::from(new.udp_port))
        .bind(new.email_status)
        .bind(to_micros(new.created_at))
        .bind(new.replica)
        .fetch_one(&self.pool)
        .await
        .map_err(|err| super::unique_violation(err, &[("code", "Session code")]))
    }

    /// Whether `code` is open, or was issued or closed after `since` (codes rest a day).
    pub async fn session_code_in_use(&self, code: &str, since: DateTime<Utc>) -> StoreResult<bool> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM sessions WHERE code = $1 \
             AND (status <> 'closed' OR created_at > $2 OR closed_at > $2) LIMIT 1",
        )
        .bind(code)
        .bind(to_micros(since))
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    pub async fn session_by_id(&self, id: i64) -> StoreResult<Option<SessionRecord>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The newest session issued with `code`.
    pub async fn session_by_code(&self, code: &str) -> StoreResult<Option<SessionRecord>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE code = $1 ORDER BY id DESC LIMIT 1"
        ))
        .bind(code)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The newest `limit` sessions, of one technician or of everyone.
    pub async fn list_sessions(
        &self,
        tech_user_id: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<SessionRecord>> {
        let query = match tech_user_id {
            Some(_) => format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE tech_user_id = $1 \
                 ORDER BY id DESC LIMIT $2"
            ),
            None => format!("SELECT {SESSION_COLUMNS} FROM sessions ORDER BY id DESC LIMIT $1"),
        };
        let mut query = sqlx::query_as(&query);
        if let Some(user) = tech_user_id {
            query = query.bind(user);
        }
        Ok(query.bind(limit).fetch_all(&self.pool).await?)
    }

    /// Open sessions (pending, active, disconnected) of one technician.
    pub async fn count_open_sessions(&self, tech_user_id: &str) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM sessions WHERE tech_user_id = $1 AND status <> 'closed'",
        )
        .bind(tech_user_id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Moves an open session to `status` (never out of `closed`); false if it was closed.
    pub async fn set_session_status(&self, id: i64, status: &str) -> StoreResult<bool> {
        debug_assert_ne!(status, "closed", "use close_session");
        let done =
            sqlx::query("UPDATE sessions SET status = $1 WHERE id = $2 AND status <> 'closed'")
                .bind(status)
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Closes an open session; false if it was already closed (or does not exist).
    pub async fn close_session(
        &self,
        id: i64,
        at: DateTime<Utc>,
        counters: FinalCounters,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE sessions SET status = 'closed', closed_at = $1, frames = $2, bytes = $3, \
             dropped_packets = $4 WHERE id = $5 AND status <> 'closed'",
        )
        .bind(to_micros(at))
        .bind(as_i64(counters.frames))
        .bind(as_i64(counters.bytes))
        .bind(as_i64(counters.dropped_packets))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Open sessions whose port `replica` binds (to restart their relays after a restart).
    pub async fn open_sessions_of_replica(&self, replica: &str) -> StoreResult<Vec<SessionRecord>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE replica = $1 AND status <> 'closed' \
             ORDER BY id"
        ))
        .bind(replica)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Pending sessions created before `before`.
    pub async fn stale_pending_sessions(
        &self,
        before: DateTime<Utc>,
    ) -> StoreResult<Vec<SessionRecord>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE status = 'pending' AND created_at < $1 \
             ORDER BY id"
        ))
        .bind(to_micros(before))
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn set_session_email_status(&self, id: i64, status: &str) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET email_status = $1 WHERE id = $2")
            .bind(status)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
