//! Users: accounts, their role and approval status, and the token version that revokes every
//! token issued before a password change, a demotion or a deletion.

use chrono::{DateTime, Utc};
use skyshift_proto::api::{Role, User, UserStatus};
use uuid::Uuid;

use super::{from_micros, to_micros, unique_violation, Store, StoreResult};

const USER_COLUMNS: &str = "id, username, email, full_name, password_hash, role, status, \
                            max_sessions, token_version, created_at";
const USER_UNIQUE_KEYS: &[(&str, &str)] = &[("username", "Username"), ("email", "Email")];

/// A user row, hash included; it never leaves the server as is (see `to_api`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRecord {
    pub id: String,
    pub username: String,
    pub email: String,
    pub full_name: Option<String>,
    pub password_hash: String,
    pub role: String,
    pub status: String,
    pub max_sessions: i64,
    pub token_version: i64,
    pub created_at: i64,
}

impl UserRecord {
    pub fn uuid(&self) -> Uuid {
        Uuid::parse_str(&self.id).unwrap_or_default()
    }

    pub fn role(&self) -> Role {
        if self.role == "admin" {
            Role::Admin
        } else {
            Role::Tech
        }
    }

    pub fn status(&self) -> UserStatus {
        match self.status.as_str() {
            "active" => UserStatus::Active,
            "rejected" => UserStatus::Rejected,
            _ => UserStatus::Pending,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role() == Role::Admin
    }

    pub fn to_api(&self) -> User {
        let status = self.status();
        User {
            id: self.uuid(),
            username: self.username.clone(),
            email: self.email.clone(),
            full_name: self.full_name.clone(),
            role: self.role(),
            is_admin: self.is_admin(),
            is_active: status == UserStatus::Active,
            status,
            max_sessions: self.max_sessions,
            created_at: from_micros(self.created_at),
        }
    }
}

pub struct NewUser<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub full_name: Option<&'a str>,
    pub password_hash: &'a str,
    pub role: Role,
    pub status: UserStatus,
    pub max_sessions: i64,
    pub created_at: DateTime<Utc>,
}

impl Store {
    pub async fn insert_user(&self, user: NewUser<'_>) -> StoreResult<UserRecord> {
        let id = Uuid::new_v4().to_string();
        let at = to_micros(user.created_at);
        sqlx::query(
            "INSERT INTO users (id, username, email, full_name, password_hash, role, status, \
             max_sessions, token_version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $9)",
        )
        .bind(&id)
        .bind(user.username)
        .bind(user.email)
        .bind(user.full_name)
        .bind(user.password_hash)
        .bind(user.role.as_str())
        .bind(user.status.as_str())
        .bind(user.max_sessions)
        .bind(at)
        .execute(&self.pool)
        .await
        .map_err(|err| unique_violation(err, USER_UNIQUE_KEYS))?;
        Ok(self
            .user_by_id(&id)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?)
    }

    pub async fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        Ok(sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE lower(username) = lower($1)");
        Ok(sqlx::query_as(&sql)
            .bind(username)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE lower(email) = lower($1)");
        Ok(sqlx::query_as(&sql)
            .bind(email)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Every user, oldest first; or only those with `status`.
    pub async fn list_users(&self, status: Option<UserStatus>) -> StoreResult<Vec<UserRecord>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE ($1 IS NULL OR status = $1) \
             ORDER BY created_at, username"
        );
        Ok(sqlx::query_as(&sql)
            .bind(status.map(UserStatus::as_str))
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn count_users(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn update_profile(
        &self,
        id: &str,
        email: Option<&str>,
        full_name: Option<&str>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE users SET email = COALESCE($2, email), full_name = COALESCE($3, full_name), \
             updated_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(email)
        .bind(full_name)
        .bind(to_micros(Utc::now()))
        .execute(&self.pool)
        .await
        .map_err(|err| unique_violation(err, USER_UNIQUE_KEYS))?;
        Ok(())
    }

    /// Sets a new password hash and revokes every token issued before.
    pub async fn set_password(&self, id: &str, password_hash: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE users SET password_hash = $2, token_version = token_version + 1, \
             updated_at = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(password_hash)
        .bind(to_micros(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Sets the approval status; returns false when the user does not exist. Leaving `active`
    /// revokes the user's tokens.
    pub async fn set_status(&self, id: &str, status: UserStatus) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE users SET status = $2, updated_at = $3, token_version = token_version + \
             (CASE WHEN status = 'active' AND $2 <> 'active' THEN 1 ELSE 0 END) WHERE id = $1",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(to_micros(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Changes the role. A demotion revokes the user's tokens, and only happens while another
    /// active admin remains; returns false when it would have removed the last one.
    pub async fn set_role(&self, id: &str, role: Role) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE users SET role = $2, updated_at = $3, token_version = token_version + \
             (CASE WHEN $2 = 'tech' THEN 1 ELSE 0 END) \
             WHERE id = $1 AND ($2 = 'admin' OR EXISTS (SELECT 1 FROM users other \
             WHERE other.role = 'admin' AND other.status = 'active' AND other.id <> $1))",
        )
        .bind(id)
        .bind(role.as_str())
        .bind(to_micros(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a user unless it is the last active admin; returns false when nothing was
    /// deleted.
    pub async fn delete_user(&self, id: &str) -> StoreResult<bool> {
        let done = sqlx::query(
            "DELETE FROM users WHERE id = $1 AND (role <> 'admin' OR EXISTS (SELECT 1 FROM users \
             other WHERE other.role = 'admin' AND other.status = 'active' AND other.id <> $1))",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
