//! `/api` and `/api/health`.

use axum::Json;
use skyshift_proto::api::{AgentCounts, ApiRoot, Health};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
async fn health() -> Json<Health> {
    // Agents arrive with the RMM part; until then the fleet is empty.
    Json(Health {
        status: "healthy".into(),
        agents: AgentCounts {
            total: 0,
            online: 0,
            offline: 0,
        },
        websocket_connections: 0,
    })
}
