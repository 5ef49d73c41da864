//! `/api/users`: the signed-in user's profile and password, and user management for admins.

use axum::extract::{Path, State};
use axum::Json;
use skyshift_proto::api::{
    ChangePasswordRequest, CreateUserRequest, ErrorBody, Message, UpdateProfileRequest, User,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use crate::auth::{AdminUser, AuthUser, ClientAddr};
use crate::error::ApiResult;
use crate::{accounts, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(profile, update_profile))
        .routes(routes!(change_password))
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, delete_user))
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/users/profile", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = ErrorBody)))]
async fn profile(AuthUser(user): AuthUser) -> Json<User> {
    Json(user.to_api())
}

/// Change the signed-in user's email or full name.
#[utoipa::path(put, path = "/api/users/profile", tag = "users", security(("bearer" = [])),
    request_body = UpdateProfileRequest,
    responses(
        (status = 200, body = User),
        (status = 400, description = "Email already registered", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
async fn update_profile(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    addr: ClientAddr,
    ApiJson(request): ApiJson<UpdateProfileRequest>,
) -> ApiResult<Json<User>> {
    Ok(Json(
        accounts::update_profile(&state, &user, addr, request).await?,
    ))
}

/// Change the signed-in user's password. Every token issued before stops working.
#[utoipa::path(post, path = "/api/users/change-password", tag = "users", security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 200, body = Message),
        (status = 400, description = "Current password is incorrect", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 422, description = "New password under 8 characters", body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
async fn change_password(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    addr: ClientAddr,
    ApiJson(request): ApiJson<ChangePasswordRequest>,
) -> ApiResult<Json<Message>> {
    accounts::change_password(&state, &user, addr, request).await?;
    Ok(Json(Message::new(
        "Password changed successfully; sign in again",
    )))
}

/// Every user (admin only).
#[utoipa::path(get, path = "/api/users", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<User>),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    ))]
async fn list_users(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(accounts::list_users(&state, None).await?))
}

/// Create an active user (admin only); `username` defaults to the email address.
#[utoipa::path(post, path = "/api/users", tag = "users", security(("bearer" = [])),
    request_body = CreateUserRequest,
    responses(
        (status = 200, body = User),
        (status = 400, description = "User already exists", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
async fn create_user(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    addr: ClientAddr,
    ApiJson(request): ApiJson<CreateUserRequest>,
) -> ApiResult<Json<User>> {
    Ok(Json(
        accounts::create_user(&state, &admin, addr, request).await?,
    ))
}

/// One user: yourself, or anyone for an admin.
#[utoipa::path(get, path = "/api/users/{user_id}", tag = "users", security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The user's UUID")),
    responses(
        (status = 200, body = User),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
async fn get_user(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(user_id): Path<String>,
) -> ApiResult<Json<User>> {
    Ok(Json(accounts::get_user(&state, &user, &user_id).await?))
}

/// Delete a user (admin only). The last administrator cannot be deleted.
#[utoipa::path(delete, path = "/api/users/{user_id}", tag = "users", security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The user's UUID")),
    responses(
        (status = 200, body = Message),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The last administrator", body = ErrorBody),
    ))]
async fn delete_user(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    addr: ClientAddr,
    Path(user_id): Path<String>,
) -> ApiResult<Json<Message>> {
    accounts::delete_user(&state, &admin, addr, &user_id).await?;
    Ok(Json(Message::new("User deleted successfully")))
}
