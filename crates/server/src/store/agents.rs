//! Agents: registration, heartbeats, liveness, and the hash of each agent's token.

use super::{to_micros, Store, StoreResult};
use chrono::{DateTime, Utc};

const AGENT_COLUMNS: &str =
    "a.id, a.customer_id, c.name AS customer_name, a.hostname, a.ip_address, \
     a.port, a.capabilities, a.version, a.registered_at, a.last_heartbeat, a.status, a.system_info";
const AGENT_FROM: &str = "agents a LEFT JOIN customers c ON c.id = a.customer_id";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AgentRecord {
    pub id: String,
    pub customer_id: Option<String>,
    pub customer_name: Option<String>,
    pub hostname: String,
    pub ip_address: String,
    pub port: i64,
    /// JSON array.
    pub capabilities: String,
    pub version: String,
    pub registered_at: i64,
    pub last_heartbeat: Option<i64>,
    pub status: String,
    /// JSON object, the latest `SystemInfo`.
    pub system_info: Option<String>,
}

pub struct NewAgent<'a> {
    pub id: &'a str,
    pub customer_id: Option<&'a str>,
    pub token_hash: &'a str,
    pub hostname: &'a str,
    pub ip_address: &'a str,
    pub port: i64,
    pub capabilities: &'a str,
    pub version: &'a str,
}

impl Store {
    pub async fn insert_agent(&self, agent: NewAgent<'_>) -> StoreResult<AgentRecord> {
        let now = to_micros(Utc::now());
        sqlx::query(
            "INSERT INTO agents (id, customer_id, token_hash, hostname, ip_address, port, capabilities, \
             version, registered_at, last_heartbeat, status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, 'online')",
        )
        .bind(agent.id)
        .bind(agent.customer_id)
        .bind(agent.token_hash)
        .bind(agent.hostname)
        .bind(agent.ip_address)
        .bind(agent.port)
        .bind(agent.capabilities)
        .bind(agent.version)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(self
            .agent(agent.id)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?)
    }

    pub async fn agent(&self, id: &str) -> StoreResult<Option<AgentRecord>> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM {AGENT_FROM} WHERE a.id = $1");
        Ok(sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn agent_token_hash(&self, id: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT token_hash FROM agents WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Agents of one customer (or all), optionally only the online ones, by host name.
    pub async fn list_agents(
        &self,
        customer: Option<&str>,
        online_only: bool,
    ) -> StoreResult<Vec<AgentRecord>> {
        let sql = format!(
            "SELECT {AGENT_COLUMNS} FROM {AGENT_FROM} WHERE ($1 IS NULL OR a.customer_id = $1) \
             AND ($2 = 0 OR a.status = 'online') ORDER BY a.hostname, a.registered_at"
        );
        Ok(sqlx::query_as(&sql)
            .bind(customer)
            .bind(i64::from(online_only))
            .fetch_all(&self.pool)
            .await?)
    }

    /// (total, online) agents of one customer or all.
    pub async fn agent_counts(&self, customer: Option<&str>) -> StoreResult<(u64, u64)> {
        let (total, online): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN status = 'online' THEN 1 ELSE 0 END), 0) \
             FROM agents WHERE ($1 IS NULL OR customer_id = $1)",
        )
        .bind(customer)
        .fetch_one(&self.pool)
        .await?;
        Ok((total.max(0) as u64, online.max(0) as u64))
    }

    pub async fn delete_agent(&self, id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM agents WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks the agent alive now; keeps the latest system information when given.
    pub async fn agent_heartbeat(&self, id: &str, system_info: Option<&str>) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE agents SET last_heartbeat = $2, status = 'online', \
             system_info = COALESCE($3, system_info) WHERE id = $1",
        )
        .bind(id)
        .bind(to_micros(Utc::now()))
        .bind(system_info)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks many agents alive at `at` in one transaction, with their latest system information
    /// where given (WebSocket heartbeats, flushed in batches).
    pub async fn agents_heartbeat(
        &self,
        beats: &[(String, Option<String>)],
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let at = to_micros(at);
        let mut tx = self.pool.begin().await?;
        let plain: Vec<&str> = beats
            .iter()
            .filter(|(_, info)| info.is_none())
            .map(|(id, _)| id.as_str())
            .collect();
        for chunk in plain.chunks(super::BATCH_ROWS) {
            let sql = format!(
                "UPDATE agents SET last_heartbeat = $1, status = 'online' WHERE id IN ({})",
                super::placeholders(2, chunk.len())
            );
            let mut query = sqlx::query(&sql).bind(at);
            for id in chunk {
                query = query.bind(*id);
            }
            query.execute(&mut *tx).await?;
        }
        for (id, info) in beats.iter().filter(|(_, info)| info.is_some()) {
            sqlx::query("UPDATE agents SET last_heartbeat = $1, status = 'online', system_info = $2 WHERE id = $3")
                .bind(at)
                .bind(info.as_deref())
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Marks agents whose last heartbeat is older than `before` offline; returns how many.
    pub async fn mark_agents_offline(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE agents SET status = 'offline' WHERE status = 'online' \
             AND (last_heartbeat IS NULL OR last_heartbeat < $1)",
        )
        .bind(to_micros(before))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
