//! Scripts: global ones (no customer) every customer sees, and customer-specific ones.

use super::{to_micros, Store, StoreResult};
use chrono::Utc;

const SCRIPT_COLUMNS: &str =
    "id, name, description, content, script_type, customer_id, created_at, updated_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScriptRecord {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub content: String,
    pub script_type: String,
    pub customer_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub struct ScriptFields<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub content: &'a str,
    pub script_type: &'a str,
    pub customer_id: Option<&'a str>,
}

impl Store {
    pub async fn insert_script(&self, script: ScriptFields<'_>) -> StoreResult<ScriptRecord> {
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO scripts (id, name, description, content, script_type, customer_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(&id)
        .bind(script.name)
        .bind(script.description)
        .bind(script.content)
        .bind(script.script_type)
        .bind(script.customer_id)
        .bind(to_micros(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(self.script(&id).await?.ok_or(sqlx::Error::RowNotFound)?)
    }

    pub async fn script(&self, id: &str) -> StoreResult<Option<ScriptRecord>> {
        let sql = format!("SELECT {SCRIPT_COLUMNS} FROM scripts WHERE id = $1");
        Ok(sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Every script, or what one customer sees: the global ones and its own.
    pub async fn list_scripts(&self, customer: Option<&str>) -> StoreResult<Vec<ScriptRecord>> {
        let sql = format!(
            "SELECT {SCRIPT_COLUMNS} FROM scripts \
             WHERE ($1 IS NULL OR customer_id IS NULL OR customer_id = $1) ORDER BY name, created_at"
        );
        Ok(sqlx::query_as(&sql)
            .bind(customer)
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn update_script(&self, id: &str, script: ScriptFields<'_>) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE scripts SET name = $2, description = $3, content = $4, script_type = $5, \
             customer_id = $6, updated_at = $7 WHERE id = $1",
        )
        .bind(id)
        .bind(script.name)
        .bind(script.description)
        .bind(script.content)
        .bind(script.script_type)
        .bind(script.customer_id)
        .bind(to_micros(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delete_script(&self, id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM scripts WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
