//! `/api` and `/api/health`.

use axum::extract::State;
use axum::Json;
use skyshift_proto::api::{AgentCounts, ApiRoot, Health};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiResult;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(root))
        .routes(routes!(health))
}

/// What this API is and where its description lives.
#[utoipa::path(get, path = "/api", tag = "utility", responses((status = 200, body = ApiRoot)))]
async fn root() -> Json<ApiRoot> {
    Json(ApiRoot {
        name: "SkyShift Remote".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        docs: "/docs".into(),
        openapi: "/api/openapi.json".into(),
    })
}

/// Liveness and a summary of the fleet.
#[utoipa::path(get, path = "/api/health", tag = "utility", responses((status = 200, body = Health)))]
async fn health(State(state): State<AppState>) -> ApiResult<Json<Health>> {
    let (total, online) = state.store.agent_counts(None).await?;
    Ok(Json(Health {
        status: "healthy".into(),
        agents: AgentCounts {
            total,
            online,
            offline: total.saturating_sub(online),
        },
        websocket_connections: state.hub.connection_count() as u64,
    }))
}
