//! `/api/sessions`: support sessions (create, list, close, info by code for the client, join
//! tickets for UDP viewers).

use axum::extract::{Path, State};
use axum::http::header::HOST;
use axum::http::HeaderMap;
use axum::Json;
use skyshift_proto::api::{ErrorBody, Message};
use skyshift_proto::sessions::{CreateSessionRequest, JoinTicket, Session, SessionInfo};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use crate::auth::{AuthUser, ClientAddr};
use crate::error::{ApiError, ApiResult};
use crate::{desk, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sessions, create_session))
        .routes(routes!(close_session))
        .routes(routes!(session_info))
        .routes(routes!(join_ticket))
}

/// The host the request came to, as the client named it.
pub(crate) fn request_host(headers: &HeaderMap) -> Option<&str> {
    headers.get(HOST)?.to_str().ok().filter(|h| !h.is_empty())
}

fn session_id(text: &str) -> ApiResult<i64> {
    text.parse()
        .map_err(|_| ApiError::NotFound("Session not found".into()))
}

/// Open a support session: a 9-digit code and a UDP port. With `customer_email` the code is
/// mailed in the background (`email_status`).
#[utoipa::path(post, path = "/api/sessions", tag = "sessions", security(("bearer" = [])),
    request_body = CreateSessionRequest,
    responses(
        (status = 200, body = Session),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, description = "Maximum concurrent sessions reached", body = ErrorBody),
        (status = 500, description = "Failed to allocate UDP port", body = ErrorBody),
    ))]
async fn create_session(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    addr: ClientAddr,
    headers: HeaderMap,
    ApiJson(request): ApiJson<CreateSessionRequest>,
) -> ApiResult<Json<Session>> {
    let host = state
        .config
        .public_host
        .clone()
        .or_else(|| request_host(&headers).map(str::to_owned))
        .unwrap_or_else(|| "this server".into());
    Ok(Json(
        desk::create(&state, &user, addr, request, &host).await?,
    ))
}

/// The newest 100 sessions: your own, or everyone's for an admin.
#[utoipa::path(get, path = "/api/sessions", tag = "sessions", security(("bearer" = [])),
    responses((status = 200, body = Vec<Session>), (status = 401, body = ErrorBody)))]
async fn list_sessions(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> ApiResult<Json<Vec<Session>>> {
    Ok(Json(desk::list(&state, &user).await?))
}

/// Close a session (yours, or any for an admin): the code stops working and the port is freed.
#[utoipa::path(delete, path = "/api/sessions/{session_id}", tag = "sessions",
    security(("bearer" = [])),
    params(("session_id" = i64, Path, description = "The session's id")),
    responses(
        (status = 200, body = Message),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not your session", body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
async fn close_session(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    addr: ClientAddr,
    Path(id): Path<String>,
) -> ApiResult<Json<Message>> {
    desk::close(&state, &user, addr, session_id(&id)?).await?;
    Ok(Json(Message::new("Session closed successfully")))
}

/// Session information by code, for the client (no authentication; failed look-ups are
/// limited per address and globally).
#[utoipa::path(get, path = "/api/sessions/{session_id}/info", tag = "sessions",
    params(("session_id" = String, Path, description = "The 9-digit session code")),
    responses(
        (status = 200, body = SessionInfo),
        (status = 404, body = ErrorBody),
        (status = 410, description = "Session has been closed", body = ErrorBody),
        (status = 429, description = "Too many failed look-ups", body = ErrorBody),
    ))]
async fn session_info(
    State(state): State<AppState>,
    addr: ClientAddr,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> ApiResult<Json<SessionInfo>> {
    Ok(Json(
        desk::info(&state, addr, &code, request_host(&headers)).await?,
    ))
}

/// A single-use ticket (valid 60 s) for one viewer to join the session's UDP relay.
#[utoipa::path(post, path = "/api/sessions/{session_id}/join-ticket", tag = "sessions",
    security(("bearer" = [])),
    params(("session_id" = i64, Path, description = "The session's id")),
    responses(
        (status = 200, body = JoinTicket),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Not running on this server", body = ErrorBody),
        (status = 410, body = ErrorBody),
    ))]
async fn join_ticket(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<JoinTicket>> {
    Ok(Json(
        desk::join_ticket(&state, &user, session_id(&id)?).await?,
    ))
}
