//! The audit log: append-only records of who did what, on what, from where.

use chrono::{DateTime, Utc};
use skyshift_proto::api::AuditEntry;
use uuid::Uuid;

use super::{from_micros, to_micros, Store, StoreResult};

pub struct NewAuditEntry<'a> {
    pub at: DateTime<Utc>,
    pub actor_id: Option<&'a str>,
    pub actor: &'a str,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub success: bool,
    pub detail: Option<&'a str>,
    pub client_addr: Option<&'a str>,
}

#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    /// Matches the actor's username or id.
    pub actor: Option<String>,
    /// Matches the action exactly, or every action under a prefix ending in `.` (`user.`).
    pub action: Option<String>,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    at: i64,
    actor_id: Option<String>,
    actor: String,
    action: String,
    target: Option<String>,
    success: i64,
    detail: Option<String>,
    client_addr: Option<String>,
}

/// Appends audit rows on `conn` (inside the caller's transaction, if any).
pub(super) async fn insert_audit_rows(
    conn: &mut sqlx::AnyConnection,
    entries: &[NewAuditEntry<'_>],
) -> StoreResult<()> {
    for chunk in entries.chunks(super::BATCH_ROWS) {
        let sql = format!(
            "INSERT INTO audit_log (at, actor_id, actor, action, target, success, detail, \
             client_addr) VALUES {}",
            super::value_rows(chunk.len(), 8, None)
        );
        let mut query = sqlx::query(&sql);
        for entry in chunk {
            query = query
                .bind(to_micros(entry.at))
                .bind(entry.actor_id)
                .bind(entry.actor)
                .bind(entry.action)
                .bind(entry.target)
                .bind(i64::from(entry.success))
                .bind(entry.detail)
                .bind(entry.client_addr);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

// `$1` actor, `$2` exact action, `$3` action prefix pattern.
const AUDIT_WHERE: &str = "WHERE ($1 IS NULL OR actor = $1 OR actor_id = $1) \
                           AND ($2 IS NULL OR action = $2 OR action LIKE $3)";

impl Store {
    pub async fn insert_audit(&self, entry: NewAuditEntry<'_>) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await?;
        insert_audit_rows(&mut conn, std::slice::from_ref(&entry)).await
    }

    /// One page of the log, newest first, and the number of entries the filter matches.
    pub async fn list_audit(
        &self,
        filter: &AuditFilter,
        limit: u32,
        offset: u64,
    ) -> StoreResult<(Vec<AuditEntry>, u64)> {
        let prefix = filter
            .action
            .as_deref()
            .filter(|action| action.ends_with('.'))
            .map(|action| format!("{}%", action.replace(['%', '_'], "")));
        let count_sql = format!("SELECT COUNT(*) FROM audit_log {AUDIT_WHERE}");
        let total: i64 = sqlx::query_scalar(&count_sql)
            .bind(filter.actor.as_deref())
            .bind(filter.action.as_deref())
            .bind(prefix.as_deref())
            .fetch_one(&self.pool)
            .await?;
        let page_sql = format!(
            "SELECT id, at, actor_id, actor, action, target, success, detail, client_addr \
             FROM audit_log {AUDIT_WHERE} ORDER BY id DESC LIMIT $4 OFFSET $5"
        );
        let rows: Vec<AuditRow> = sqlx::query_as(&page_sql)
            .bind(filter.actor.as_deref())
            .bind(filter.action.as_deref())
            .bind(prefix.as_deref())
            .bind(i64::from(limit))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        let entries = rows
            .into_iter()
            .map(|row| AuditEntry {
                id: row.id,
                at: from_micros(row.at),
                actor_id: row.actor_id.and_then(|id| Uuid::parse_str(&id).ok()),
                actor: row.actor,
                action: row.action,
                target: row.target,
                success: row.success != 0,
                detail: row.detail,
                client_addr: row.client_addr,
            })
            .collect();
        Ok((entries, u64::try_from(total).unwrap_or(0)))
    }
}
