//! JSON bodies of the REST API, as both specs in `shared/spec/` define them (merged where the
//! specs meet; see ARCHITECTURE.md).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Every error response: `{"detail": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub detail: String,
}

/// A plain acknowledgement.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Message {
    pub message: String,
}

impl Message {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// What a user may do: `admin` may do everything, `tech` works with agents and sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Tech,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Tech => "tech",
        }
    }
}

/// Where a user's account stands: self-registered accounts wait for an admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    Pending,
    Active,
    Rejected,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Pending => "pending",
            UserStatus::Active => "active",
            UserStatus::Rejected => "rejected",
        }
    }
}

/// A user as the API shows it (never with a password or hash).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub full_name: Option<String>,
    pub role: Role,
    pub is_admin: bool,
    pub is_active: bool,
    pub status: UserStatus,
    pub max_sessions: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegisterRequest {
    pub username: String,
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub full_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegisterResponse {
    pub user_id: Uuid,
    /// `pending` until an admin approves the account.
    pub status: UserStatus,
    pub message: String,
}

/// Sign in with `username` (agent-manager spec) or `email` (remote-access spec).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct LoginRequest {
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    pub access_token: String,
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
    pub user: User,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UpdateProfileRequest {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub full_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

/// An admin creates an account that is active at once (`POST /api/users`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateUserRequest {
    /// Defaults to the email address.
    #[serde(default)]
    pub username: Option<String>,
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub full_name: Option<String>,
    /// Defaults to `tech`.
    #[serde(default)]
    pub role: Option<Role>,
    /// Defaults to 10.
    #[serde(default)]
    pub max_sessions: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentCounts {
    pub total: u64,
    pub online: u64,
    pub offline: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub agents: AgentCounts,
    pub websocket_connections: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiRoot {
    pub name: String,
    pub version: String,
    pub docs: String,
    pub openapi: String,
}

/// One record of the audit log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// Who acted: a user id, or none for anonymous requests.
    pub actor_id: Option<Uuid>,
    /// The actor's username at the time (or `anonymous`).
    pub actor: String,
    /// What happened, e.g. `auth.login`, `user.approve`.
    pub action: String,
    /// What it happened to, e.g. a user's username.
    pub target: Option<String>,
    pub success: bool,
    pub detail: Option<String>,
    pub client_addr: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub total: u64,
    pub page: u32,
    pub per_page: u32,
}
