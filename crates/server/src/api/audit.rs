//! `/api/audit`: the audit log, for admins.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use skyshift_proto::api::{AuditPage, ErrorBody};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiQuery;
use crate::auth::AdminUser;
use crate::error::{ApiError, ApiResult};
use crate::store::AuditFilter;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

const MAX_PER_PAGE: u32 = 500;

#[derive(Debug, Deserialize, IntoParams)]
struct AuditQuery {
    /// Page number, from 1.
    page: Option<u32>,
    /// Entries per page (1–500, default 50).
    per_page: Option<u32>,
    /// Only entries by this actor (username or user id).
    actor: Option<String>,
    /// Only this action (`auth.login`), or every action under a prefix ending in `.` (`user.`).
    action: Option<String>,
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/api/audit", tag = "admin", security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, body = AuditPage),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
async fn list_audit(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    let page = query.page.unwrap_or(1);
    let per_page = query.per_page.unwrap_or(50);
    if page == 0 || per_page == 0 || per_page > MAX_PER_PAGE {
        return Err(ApiError::Unprocessable(format!(
            "page starts at 1 and per_page must be 1 to {MAX_PER_PAGE}"
        )));
    }
    let filter = AuditFilter {
        actor: query.actor.filter(|a| !a.is_empty()),
        action: query.action.filter(|a| !a.is_empty()),
    };
    let offset = u64::from(page - 1) * u64::from(per_page);
    let (entries, total) = state.store.list_audit(&filter, per_page, offset).await?;
    Ok(Json(AuditPage {
        entries,
        total,
        page,
        per_page,
    }))
}
