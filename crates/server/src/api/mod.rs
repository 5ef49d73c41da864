//! HTTP: one module per resource, each a router of handlers that parse the request, name the
//! principal they need, and call a service. This module assembles them with the cross-cutting
//! layers (body limit, JSON errors, request logs) and the OpenAPI document.

mod admin;
mod agent_ws;
mod agents;
mod audit;
mod auth;
mod customers;
mod desk_ws;
pub mod extract;
mod scripts;
mod sessions;
mod smtp;
mod tasks;
mod users;
mod utility;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use skyshift_proto::api::ErrorBody;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::ApiError;
use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "SkyShift Remote",
        description = "Remote support and RMM: users, agents, commands, scripts and support sessions."
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Registration and sign-in"),
        (name = "users", description = "Profiles and user management"),
        (name = "admin", description = "Approvals, roles and the audit log"),
        (name = "customers", description = "Customers, their API keys and id.ini"),
        (name = "customer", description = "What a customer sees with its API key"),
        (name = "agents", description = "Registering, listing and removing agents"),
        (name = "commands", description = "Commands and tasks: send, follow, cancel"),
        (name = "scripts", description = "Scripts and running them"),
        (name = "agent protocol", description = "What agents call with their agent token (also: WebSocket /ws/agent/{agent_id})"),
        (name = "utility", description = "Health and API root"),
        (name = "sessions", description = "Remote-support sessions, codes and join tickets"),
        (name = "smtp", description = "Mail settings"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "A customer's API key (sk_…); `Authorization: Bearer sk_…` works too",
            ))),
        );
        components.add_security_scheme(
            "agent_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The agent's token from registration"))
                    .build(),
            ),
        );
    }
}

/// The whole application: every route, its layers, and the docs at `/docs`.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(utility::router())
        .merge(auth::router())
        .merge(users::router())
        .merge(admin::router())
        .merge(audit::router())
        .merge(customers::router())
        .merge(agents::router())
        .merge(tasks::router(state.config.task_output_cap))
        .merge(scripts::router())
        .merge(sessions::router())
        .merge(smtp::router())
        .merge(desk_ws::router())
        .split_for_parts();
    let max_body = state.config.max_body_bytes;
    api.merge(agent_ws::router())
        .with_state(state)
        .merge(SwaggerUi::new("/docs").url("/api/openapi.json", openapi))
        .fallback(|| async { ApiError::NotFound("Not Found".into()) })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(json_errors))
        .layer(
            // Only method and path: query strings may carry tokens (`?token=`) and must never
            // reach a log line.
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    tracing::info_span!("http", method = %request.method(), path = %request.uri().path())
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
}

/// Turns error responses that axum or tower produced as plain text (405, 413 from the body
/// limit, …) into the API's `{"detail": …}` form, so every error a client sees is JSON.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let detail = status.canonical_reason().unwrap_or("Error").to_owned();
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = Json(ErrorBody { detail }).into_response().into_body();
    let mut rebuilt = Response::from_parts(parts, body);
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        rebuilt
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    rebuilt
}
