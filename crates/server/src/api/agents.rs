//! `/api/agents`: registration, listing, status and removal (users and customers, each within
//! their scope), and the agent's own heartbeat.

use axum::extract::{Path, State};
use axum::Json;
use chrono::Utc;
use skyshift_proto::agent::{
    Agent, AgentList, AgentRegisterRequest, AgentRegistered, HeartbeatAck, HeartbeatRequest,
};
use skyshift_proto::api::{ErrorBody, Message};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use crate::audit::Actor;
use crate::auth::{AgentToken, Caller, ClientAddr};
use crate::error::ApiResult;
use crate::fleet::agents;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(list_agents))
        .routes(routes!(online_agents))
        .routes(routes!(get_agent, unregister))
        .routes(routes!(heartbeat))
}

/// Register an agent. With a customer API key it joins that customer; with a user token it
/// joins `customer_uuid` if given. The response's `agent_token` is shown only this once.
#[utoipa::path(post, path = "/api/agents/register", tag = "agents",
    security(("api_key" = []), ("bearer" = [])), request_body = AgentRegisterRequest,
    responses((status = 200, body = AgentRegistered), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "Unknown customer_uuid", body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn register(
    State(state): State<AppState>,
    caller: Caller,
    addr: ClientAddr,
    ApiJson(request): ApiJson<AgentRegisterRequest>,
) -> ApiResult<Json<AgentRegistered>> {
    let actor = Actor::caller(&caller, addr);
    Ok(Json(
        agents::register(&state, &caller, &actor, request).await?,
    ))
}

/// Every agent the caller may see, with counts.
#[utoipa::path(get, path = "/api/agents", tag = "agents", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = AgentList), (status = 401, body = ErrorBody)))]
async fn list_agents(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<AgentList>> {
    Ok(Json(
        agents::list(&state, caller.customer_scope(), false).await?,
    ))
}

/// The online agents the caller may see (counts cover all of them).
#[utoipa::path(get, path = "/api/agents/online", tag = "agents", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = AgentList), (status = 401, body = ErrorBody)))]
async fn online_agents(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<AgentList>> {
    Ok(Json(
        agents::list(&state, caller.customer_scope(), true).await?,
    ))
}

/// One agent.
#[utoipa::path(get, path = "/api/agents/{agent_id}", tag = "agents", security(("bearer" = []), ("api_key" = [])),
    params(("agent_id" = String, Path)),
    responses((status = 200, body = Agent), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_agent(
    State(state): State<AppState>,
    caller: Caller,
    Path(agent_id): Path<String>,
) -> ApiResult<Json<Agent>> {
    let agent = agents::visible(&state, &caller, &agent_id).await?;
    Ok(Json(agents::to_api(&state, &agent)))
}

/// Unregister an agent: its tasks go with it and its WebSocket is closed.
#[utoipa::path(delete, path = "/api/agents/{agent_id}", tag = "agents", security(("bearer" = []), ("api_key" = [])),
    params(("agent_id" = String, Path)),
    responses((status = 200, body = Message), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn unregister(
    State(state): State<AppState>,
    caller: Caller,
    addr: ClientAddr,
    Path(agent_id): Path<String>,
) -> ApiResult<Json<Message>> {
    let actor = Actor::caller(&caller, addr);
    agents::unregister(&state, &caller, &actor, &agent_id).await?;
    Ok(Json(Message::new("Agent unregistered successfully")))
}

/// The agent says it is alive (HTTP agents), with its system information if it reports any.
#[utoipa::path(post, path = "/api/agents/{agent_id}/heartbeat", tag = "agent protocol",
    security(("agent_token" = [])), params(("agent_id" = String, Path)), request_body = HeartbeatRequest,
    responses((status = 200, body = HeartbeatAck), (status = 401, body = ErrorBody),
        (status = 404, description = "Unknown agent: register again", body = ErrorBody)))]
async fn heartbeat(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    AgentToken(token): AgentToken,
    ApiJson(request): ApiJson<HeartbeatRequest>,
) -> ApiResult<Json<HeartbeatAck>> {
    agents::authenticate(&state, &agent_id, &token).await?;
    agents::http_heartbeat(&state, &agent_id, &request).await?;
    Ok(Json(HeartbeatAck {
        status: "ok".into(),
        timestamp: Utc::now(),
    }))
}
