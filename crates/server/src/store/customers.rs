//! Customers and their single API key (hash for look-up, sealed copy for `id.ini`).

use super::{to_micros, Store, StoreResult};
use chrono::Utc;

const CUSTOMER_COLUMNS: &str = "c.id, c.name, c.address, c.api_key_hash, c.api_key_sealed, \
     c.api_key_created_at, c.api_key_last_used, c.created_at, \
     (SELECT COUNT(*) FROM agents a WHERE a.customer_id = c.id) AS agent_count";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CustomerRecord {
    pub id: String,
    pub name: String,
    pub address: Option<String>,
    pub api_key_hash: Option<String>,
    pub api_key_sealed: Option<String>,
    pub api_key_created_at: Option<i64>,
    pub api_key_last_used: Option<i64>,
    pub created_at: i64,
    pub agent_count: i64,
}

/// How a delete went.
#[derive(Debug, PartialEq, Eq)]
pub enum CustomerDelete {
    Deleted,
    NotFound,
    HasAgents,
}

impl Store {
    pub async fn insert_customer(
        &self,
        name: &str,
        address: Option<&str>,
    ) -> StoreResult<CustomerRecord> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = to_micros(Utc::now());
        sqlx::query(
            "INSERT INTO customers (id, name, address, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(&id)
        .bind(name)
        .bind(address)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(self.customer(&id).await?.ok_or(sqlx::Error::RowNotFound)?)
    }

    pub async fn customer(&self, id: &str) -> StoreResult<Option<CustomerRecord>> {
        let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers c WHERE c.id = $1");
        Ok(sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn customer_by_key_hash(&self, hash: &str) -> StoreResult<Option<CustomerRecord>> {
        let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers c WHERE c.api_key_hash = $1");
        Ok(sqlx::query_as(&sql)
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn list_customers(&self) -> StoreResult<Vec<CustomerRecord>> {
        let sql =
            format!("SELECT {CUSTOMER_COLUMNS} FROM customers c ORDER BY c.name, c.created_at");
        Ok(sqlx::query_as(&sql).fetch_all(&self.pool).await?)
    }

    pub async fn update_customer(
        &self,
        id: &str,
        name: &str,
        address: Option<&str>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE customers SET name = $2, address = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(name)
        .bind(address)
        .bind(to_micros(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a customer that has no agents left.
    pub async fn delete_customer(&self, id: &str) -> StoreResult<CustomerDelete> {
        let done = sqlx::query(
            "DELETE FROM customers WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM agents WHERE customer_id = $1)",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(CustomerDelete::Deleted);
        }
        Ok(match self.customer(id).await? {
            Some(_) => CustomerDelete::HasAgents,
            None => CustomerDelete::NotFound,
        })
    }

    /// Replaces the customer's key; the old one stops working with this statement.
    pub async fn set_api_key(&self, id: &str, hash: &str, sealed: &str) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE customers SET api_key_hash = $2, api_key_sealed = $3, api_key_created_at = $4, \
             api_key_last_used = NULL, updated_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(hash)
        .bind(sealed)
        .bind(to_micros(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn revoke_api_key(&self, id: &str) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE customers SET api_key_hash = NULL, api_key_sealed = NULL, api_key_created_at = NULL, \
             api_key_last_used = NULL, updated_at = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(to_micros(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a use of the key, at most once a minute per customer (a write per request would
    /// make every API-key request a database write).
    pub async fn touch_api_key(&self, id: &str) -> StoreResult<()> {
        let now = to_micros(Utc::now());
        sqlx::query(
            "UPDATE customers SET api_key_last_used = $2 WHERE id = $1 \
             AND (api_key_last_used IS NULL OR api_key_last_used < $3)",
        )
        .bind(id)
        .bind(now)
        .bind(now - 60_000_000)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
