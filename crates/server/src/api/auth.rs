//! `/api/auth`: registration and sign-in.

use axum::extract::State;
use axum::Json;
use skyshift_proto::api::{
    ErrorBody, LoginRequest, LoginResponse, RegisterRequest, RegisterResponse,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use crate::auth::ClientAddr;
use crate::error::ApiResult;
use crate::{accounts, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
}

/// Register a user account; it waits for an admin's approval before it can sign in.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 200, body = RegisterResponse),
        (status = 400, description = "Username or email already registered", body = ErrorBody),
        (status = 422, description = "Invalid body, password under 8 characters", body = ErrorBody),
    ))]
async fn register(
    State(state): State<AppState>,
    addr: ClientAddr,
    ApiJson(request): ApiJson<RegisterRequest>,
) -> ApiResult<Json<RegisterResponse>> {
    Ok(Json(accounts::register(&state, addr, request).await?))
}

/// Sign in with `username` or `email` and a password; returns a bearer token.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, body = LoginResponse),
        (status = 401, description = "Wrong username or password", body = ErrorBody),
        (status = 403, description = "Account pending approval or rejected", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, description = "Too many failed attempts; see Retry-After", body = ErrorBody),
    ))]
async fn login(
    State(state): State<AppState>,
    addr: ClientAddr,
    ApiJson(request): ApiJson<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    Ok(Json(accounts::login(&state, addr, request).await?))
}
