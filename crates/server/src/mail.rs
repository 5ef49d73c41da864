//! Mail: the SMTP settings (`POST/GET /api/smtp/config`, stored as the `smtp` setting with the
//! password sealed by `secrets`, never returned), sending through lettre over rustls (STARTTLS,
//! implicit TLS, or none), the test mail, and the session-code mail sent in the background.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use skyshift_proto::sessions::{
    EmailStatus, SmtpConfigRequest, SmtpConfigView, SmtpSecurity, SmtpTestResult,
};

use crate::audit::{self, Actor, Event};
use crate::auth::ClientAddr;
use crate::error::{ApiError, ApiResult};
use crate::store::UserRecord;
use crate::AppState;

const SETTING: &str = "smtp";
/// How long one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

pub mod action {
    pub const CONFIGURE: &str = "smtp.configure";
}

/// The stored settings; `password_sealed` is `SecretBox::seal` output.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSmtp {
    host: String,
    port: u16,
    security: SmtpSecurity,
    username: Option<String>,
    password_sealed: Option<String>,
    from_email: String,
    require_auth: bool,
}

/// Whether `text` is one email address.
pub fn is_address(text: &str) -> bool {
    text.parse::<Mailbox>().is_ok() && text.contains('@') && !text.contains(['<', '>', ','])
}

async fn load(state: &AppState) -> ApiResult<Option<StoredSmtp>> {
    let Some(json) = state.store.setting(SETTING).await? else {
        return Ok(None);
    };
    let stored = serde_json::from_str(&json)
        .map_err(|err| ApiError::Internal(anyhow::anyhow!("stored SMTP settings: {err}")))?;
    Ok(Some(stored))
}

/// Stores new settings (admin). A missing password keeps the stored one.
pub async fn configure(
    state: &AppState,
    admin: &UserRecord,
    addr: ClientAddr,
    request: SmtpConfigRequest,
) -> ApiResult<()> {
    let host = request.smtp_host.trim().to_owned();
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(ApiError::BadRequest(
            "Invalid configuration: smtp_host".into(),
        ));
    }
    if request.smtp_port == 0 {
        return Err(ApiError::BadRequest(
            "Invalid configuration: smtp_port".into(),
        ));
    }
    if !is_address(request.from_email.trim()) {
        return Err(ApiError::BadRequest(
            "Invalid configuration: from_email is not an email address".into(),
        ));
    }
    let username = request
        .username
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty());
    let password_sealed = match request.password.filter(|p| !p.is_empty()) {
        Some(password) => Some(state.secrets.seal(&password)?),
        None => load(state).await?.and_then(|old| old.password_sealed),
    };
    if request.require_auth && (username.is_none() || password_sealed.is_none()) {
        return Err(ApiError::BadRequest(
            "Invalid configuration: require_auth needs a username and a password".into(),
        ));
    }
    let stored = StoredSmtp {
        host,
        port: request.smtp_port,
        security: request.security_type,
        username,
        password_sealed,
        from_email: request.from_email.trim().to_owned(),
        require_auth: request.require_auth,
    };
    let json = serde_json::to_string(&stored)
        .map_err(|err| ApiError::Internal(anyhow::anyhow!("{err}")))?;
    state.store.set_setting(SETTING, &json).await?;
    let detail = format!("{}:{} {:?}", stored.host, stored.port, stored.security);
    audit::record(
        &state.store,
        &Actor::user(admin, addr),
        Event::ok(action::CONFIGURE, None).detail(&detail),
    )
    .await?;
    Ok(())
}

/// The settings without the password.
pub async fn view(state: &AppState) -> ApiResult<SmtpConfigView> {
    Ok(match load(state).await? {
        None => SmtpConfigView::default(),
        Some(stored) => SmtpConfigView {
            configured: true,
            smtp_host: Some(stored.host),
            smtp_port: Some(stored.port),
            security_type: Some(stored.security),
            username: stored.username,
            from_email: Some(stored.from_email),
            require_auth: Some(stored.require_auth),
        },
    })
}

/// Why a mail was not sent; never contains the password.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("SMTP is not configured")]
    NotConfigured,
    #[error("{0}")]
    Invalid(String),
    #[error("SMTP failed: {0}")]
    Smtp(String),
    #[error(transparent)]
    Internal(#[from] ApiError),
}

/// Sends one plain-text mail; returns the server's final reply (`250 …`).
pub async fn send(
    state: &AppState,
    to: &str,
    subject: &str,
    body: String,
) -> Result<String, SendError> {
    let stored = load(state).await?.ok_or(SendError::NotConfigured)?;
    let from: Mailbox = stored
        .from_email
        .parse()
        .map_err(|_| SendError::Invalid("from_email is not an address".into()))?;
    let to: Mailbox = to
        .parse()
        .map_err(|_| SendError::Invalid("not an email address".into()))?;
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .body(body)
        .map_err(|err| SendError::Invalid(err.to_string()))?;
    let builder = match stored.security {
        SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&stored.host)
            .map_err(|err| SendError::Smtp(err.to_string()))?,
        SmtpSecurity::Ssl => AsyncSmtpTransport::<Tokio1Executor>::relay(&stored.host)
            .map_err(|err| SendError::Smtp(err.to_string()))?,
        SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&stored.host),
    };
    let mut builder = builder.port(stored.port).timeout(Some(SMTP_TIMEOUT));
    if stored.require_auth {
        let password = match &stored.password_sealed {
            Some(sealed) => state.secrets.open(sealed).map_err(ApiError::Internal)?,
            None => return Err(SendError::Invalid("no SMTP password stored".into())),
        };
        builder = builder.credentials(Credentials::new(
            stored.username.clone().unwrap_or_default(),
            password,
        ));
    }
    let response = builder
        .build()
        .send(message)
        .await
        .map_err(|err| SendError::Smtp(err.to_string()))?;
    Ok(format!(
        "{} {}",
        response.code(),
        response.message().collect::<Vec<_>>().join(" ")
    ))
}

/// `POST /api/smtp/test`: a test mail to `to`, and what the server said.
pub async fn send_test(state: &AppState, to: &str) -> ApiResult<SmtpTestResult> {
    let to = to.trim();
    if !is_address(to) {
        return Err(ApiError::Unprocessable(
            "to_email is not an email address".into(),
        ));
    }
    let body = "This is a test message from SkyShift Remote: mail from this server works.\n";
    match send(state, to, "SkyShift Remote test message", body.into()).await {
        Ok(reply) => Ok(SmtpTestResult {
            message: format!("Test email sent to {to}"),
            smtp_response: reply,
        }),
        Err(SendError::Internal(err)) => Err(err),
        Err(err) => Err(ApiError::BadRequest(format!("Test email failed: {err}"))),
    }
}

/// Mails a session's code in the background and records the outcome in `email_status`;
/// a failure never fails the session.
pub fn spawn_session_mail(
    state: AppState,
    session_id: i64,
    to: String,
    code: String,
    host: String,
) {
    tokio::spawn(async move {
        let body = format!(
            "A technician has opened a remote support session for you.\n\n\
             Your session code: {code}\n\n\
             To join, start the SkyShift Remote client and enter this code, or run:\n\n    \
             skyshift-client --server {host} --code {code}\n\n\
             The code works until the technician closes the session. If you did not ask for \
             help, ignore this message.\n"
        );
        let status = match send(&state, &to, "Your remote support session code", body).await {
            Ok(reply) => {
                tracing::info!(session = session_id, reply = %reply, "session code mailed");
                EmailStatus::Sent
            }
            Err(err) => {
                tracing::warn!(session = session_id, error = %err, "cannot mail the session code");
                EmailStatus::Failed
            }
        };
        if let Err(err) = state
            .store
            .set_session_email_status(session_id, status.as_str())
            .await
        {
            tracing::warn!(session = session_id, error = %err, "cannot record the mail status");
        }
    });
}
