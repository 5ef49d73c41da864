//! `/api/admin`: approving sign-ups and granting or removing the admin role.

use axum::extract::{Path, State};
use axum::Json;
use skyshift_proto::api::{ErrorBody, Role, User, UserStatus};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AdminUser, ClientAddr};
use crate::error::ApiResult;
use crate::{accounts, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(pending_users))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(make_admin))
        .routes(routes!(remove_admin))
}

/// Users waiting for approval.
#[utoipa::path(get, path = "/api/admin/pending-users", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<User>),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    ))]
async fn pending_users(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(
        accounts::list_users(&state, Some(UserStatus::Pending)).await?,
    ))
}

/// Approve a pending (or rejected) user: they can sign in.
#[utoipa::path(post, path = "/api/admin/users/{user_id}/approve", tag = "admin",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The user's UUID")),
    responses(
        (status = 200, body = User),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
async fn approve(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    addr: ClientAddr,
    Path(user_id): Path<String>,
) -> ApiResult<Json<User>> {
    Ok(Json(
        accounts::approve(&state, &admin, addr, &user_id).await?,
    ))
}

/// Reject a pending user: their sign-ins answer 403.
#[utoipa::path(post, path = "/api/admin/users/{user_id}/reject", tag = "admin",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The user's UUID")),
    responses(
        (status = 200, body = User),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The user is already active", body = ErrorBody),
    ))]
async fn reject(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    addr: ClientAddr,
    Path(user_id): Path<String>,
) -> ApiResult<Json<User>> {
    Ok(Json(
        accounts::reject(&state, &admin, addr, &user_id).await?,
    ))
}

/// Give a user the admin role.
#[utoipa::path(post, path = "/api/admin/users/{user_id}/make-admin", tag = "admin",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The user's UUID")),
    responses(
        (status = 200, body = User),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
async fn make_admin(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    addr: ClientAddr,
    Path(user_id): Path<String>,
) -> ApiResult<Json<User>> {
    Ok(Json(
        accounts::set_role(&state, &admin, addr, &user_id, Role::Admin).await?,
    ))
}

/// Take the admin role away; the user's tokens stop working at once.
#[utoipa::path(post, path = "/api/admin/users/{user_id}/remove-admin", tag = "admin",
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "The user's UUID")),
    responses(
        (status = 200, body = User),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The last administrator", body = ErrorBody),
    ))]
async fn remove_admin(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    addr: ClientAddr,
    Path(user_id): Path<String>,
) -> ApiResult<Json<User>> {
    Ok(Json(
        accounts::set_role(&state, &admin, addr, &user_id, Role::Tech).await?,
    ))
}
