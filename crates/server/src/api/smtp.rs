//! `/api/smtp`: mail settings and a test mail (admin only).

use axum::extract::State;
use axum::Json;
use skyshift_proto::api::{ErrorBody, Message};
use skyshift_proto::sessions::{
    SmtpConfigRequest, SmtpConfigView, SmtpTestRequest, SmtpTestResult,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use crate::auth::{AdminUser, ClientAddr};
use crate::error::ApiResult;
use crate::{mail, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_config, set_config))
        .routes(routes!(test_mail))
}

/// Configure SMTP. `security_type`: `TLS` (STARTTLS), `SSL` (implicit TLS) or `NONE`. The
/// password is stored encrypted and never returned; leave it out to keep the stored one.
#[utoipa::path(post, path = "/api/smtp/config", tag = "smtp", security(("bearer" = [])),
    request_body = SmtpConfigRequest,
    responses(
        (status = 200, body = Message),
        (status = 400, description = "Invalid configuration", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
async fn set_config(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    addr: ClientAddr,
    ApiJson(request): ApiJson<SmtpConfigRequest>,
) -> ApiResult<Json<Message>> {
    mail::configure(&state, &admin, addr, request).await?;
    Ok(Json(Message::new("SMTP configured successfully")))
}

/// The SMTP settings without the password (`{"configured": false}` when none).
#[utoipa::path(get, path = "/api/smtp/config", tag = "smtp", security(("bearer" = [])),
    responses(
        (status = 200, body = SmtpConfigView),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    ))]
async fn get_config(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> ApiResult<Json<SmtpConfigView>> {
    Ok(Json(mail::view(&state).await?))
}

/// Send a test mail to `to_email`; answers what the SMTP server said.
#[utoipa::path(post, path = "/api/smtp/test", tag = "smtp", security(("bearer" = [])),
    request_body = SmtpTestRequest,
    responses(
        (status = 200, body = SmtpTestResult),
        (status = 400, description = "Not configured, or the SMTP server refused", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
async fn test_mail(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiJson(request): ApiJson<SmtpTestRequest>,
) -> ApiResult<Json<SmtpTestResult>> {
    Ok(Json(mail::send_test(&state, &request.to_email).await?))
}
