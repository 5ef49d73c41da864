//! JSON bodies of the support-session and SMTP part of the REST API (`remote-access-api.md`),
//! plus the signaling WebSocket's messages.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/sessions`: both fields optional; with `customer_email` the code is mailed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CreateSessionRequest {
    #[serde(default)]
    pub customer_name: Option<String>,
    #[serde(default)]
    pub customer_email: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    /// Created, waiting for the client.
    Pending,
    /// The client is connected.
    Active,
    /// The client went away; it may come back.
    Disconnected,
    /// Closed by a technician or expired; the code is dead.
    Closed,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Pending => "pending",
            SessionStatus::Active => "active",
            SessionStatus::Disconnected => "disconnected",
            SessionStatus::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Self {
        match text {
            "active" => SessionStatus::Active,
            "disconnected" => SessionStatus::Disconnected,
            "closed" => SessionStatus::Closed,
            _ => SessionStatus::Pending,
        }
    }
}

/// Where the mail with the code stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EmailStatus {
    Pending,
    Sent,
    Failed,
}

impl EmailStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EmailStatus::Pending => "pending",
            EmailStatus::Sent => "sent",
            EmailStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(EmailStatus::Pending),
            "sent" => Some(EmailStatus::Sent),
            "failed" => Some(EmailStatus::Failed),
            _ => None,
        }
    }
}

/// The relay's counters for a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionStats {
    /// Frames the client sent.
    pub frames: u64,
    /// Bytes of frame packets the client sent.
    pub bytes: u64,
    /// Packets dropped: malformed, from addresses that did not join, or not allowed.
    pub dropped_packets: u64,
    /// Viewers watching now (UDP viewers and browser bridges).
    pub viewers: u64,
}

/// A support session as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Session {
    pub id: i64,
    pub session_code: String,
    /// The technician's user id.
    pub tech_user_id: String,
    pub customer_name: Option<String>,
    pub customer_email: Option<String>,
    pub status: SessionStatus,
    pub udp_port: u16,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    /// `null` without `customer_email`.
    pub email_status: Option<EmailStatus>,
    pub stats: SessionStats,
}

/// `GET /api/sessions/{session_code}/info`, for the client (no authentication).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionInfo {
    pub session_code: String,
    pub udp_port: u16,
    /// The address the client sends its UDP packets to.
    pub udp_host: String,
    pub status: SessionStatus,
}

/// `POST /api/sessions/{session_id}/join-ticket`: a single-use ticket for one UDP viewer join.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JoinTicket {
    pub ticket: String,
    /// Seconds the ticket stays valid.
    pub expires_in: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum SmtpSecurity {
    /// STARTTLS on a plain connection (usually port 587).
    #[serde(rename = "TLS")]
    Tls,
    /// Implicit TLS from the first byte (usually port 465).
    #[serde(rename = "SSL")]
    Ssl,
    /// No encryption (port 25, or a relay on the same host).
    #[serde(rename = "NONE")]
    None,
}

/// `POST /api/smtp/config`. Without `password`, a stored password is kept.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SmtpConfigRequest {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub security_type: SmtpSecurity,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    pub from_email: String,
    #[serde(default)]
    pub require_auth: bool,
}

/// `GET /api/smtp/config`: the settings without the password; `{"configured": false}` if none.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct SmtpConfigView {
    pub configured: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_type: Option<SmtpSecurity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_auth: Option<bool>,
}

/// `POST /api/smtp/test`: where to send the test mail.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SmtpTestRequest {
    #[serde(alias = "email", alias = "to")]
    pub to_email: String,
}

/// What the SMTP server answered to a test mail.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SmtpTestResult {
    pub message: String,
    /// The server's final reply, e.g. `250 2.0.0 Ok: queued as 12345`.
    pub smtp_response: String,
}

/// Messages on the signaling WebSocket `/ws/session/{code}` (JSON text, `{"type": …}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SignalMessage {
    Ping,
    Pong,
    /// The client leaves; the session becomes `disconnected`.
    Disconnect,
    /// The session was closed by a technician (server → client); the socket closes next.
    Closed,
}
