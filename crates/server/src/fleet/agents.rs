//! Agents: registration (by a customer's key or a user), the agent's own token, heartbeats,
//! listing within the caller's scope, and removal.

use std::net::IpAddr;

use skyshift_proto::agent::{
    Agent, AgentList, AgentRegisterRequest, AgentRegistered, AgentStatus, HeartbeatRequest,
    SystemInfo,
};

use super::{required_text, time, uuid};
use crate::audit::{self, Actor, Event};
use crate::auth::{keys, Caller};
use crate::error::{ApiError, ApiResult};
use crate::store::{from_micros, AgentRecord, NewAgent};
use crate::AppState;

pub mod action {
    pub const REGISTER: &str = "agent.register";
    pub const DELETE: &str = "agent.delete";
}

fn not_found() -> ApiError {
    ApiError::NotFound("Agent not found".into())
}

pub fn to_api(state: &AppState, record: &AgentRecord) -> Agent {
    Agent {
        agent_id: uuid(&record.id),
        hostname: record.hostname.clone(),
        ip_address: record.ip_address.clone(),
        port: record.port,
        capabilities: serde_json::from_str(&record.capabilities).unwrap_or_default(),
        version: record.version.clone(),
        registered_at: from_micros(record.registered_at),
        last_heartbeat: time(record.last_heartbeat),
        status: if record.status == "online" {
            AgentStatus::Online
        } else {
            AgentStatus::Offline
        },
        customer_uuid: record.customer_id.as_deref().map(uuid),
        customer_name: record.customer_name.clone(),
        websocket_connected: state.hub.is_connected(&record.id),
        system_info: record
            .system_info
            .as_deref()
            .and_then(|info| serde_json::from_str(info).ok()),
    }
}

/// The agent, if the caller may see it (a customer only its own; otherwise 404, never its data).
pub async fn visible(state: &AppState, caller: &Caller, agent_id: &str) -> ApiResult<AgentRecord> {
    let agent = state.store.agent(agent_id).await?.ok_or_else(not_found)?;
    match caller.customer_scope() {
        Some(customer) if agent.customer_id.as_deref() != Some(customer) => Err(not_found()),
        _ => Ok(agent),
    }
}

/// Checks an agent's token against the agent in the path: 404 if the agent is gone (it should
/// register again), 401 if the token is not its.
pub async fn authenticate(state: &AppState, agent_id: &str, token: &str) -> ApiResult<()> {
    let hash = state
        .store
        .agent_token_hash(agent_id)
        .await?
        .ok_or_else(not_found)?;
    if hash != keys::digest(token) {
        return Err(ApiError::Unauthorized("Invalid agent token".into()));
    }
    Ok(())
}

pub async fn register(
    state: &AppState,
    caller: &Caller,
    actor: &Actor,
    request: AgentRegisterRequest,
) -> ApiResult<AgentRegistered> {
    let hostname = required_text(&request.hostname, "hostname", 253)?;
    let ip_address: IpAddr = request.ip_address.trim().parse().map_err(|_| {
        ApiError::Unprocessable(format!(
            "ip_address `{}` is not an IP address",
            request.ip_address
        ))
    })?;
    if !(1..=65535).contains(&request.port) {
        return Err(ApiError::Unprocessable("port must be 1 to 65535".into()));
    }
    if request.capabilities.len() > 64
        || request
            .capabilities
            .iter()
            .any(|c| c.is_empty() || c.len() > 64)
    {
        return Err(ApiError::Unprocessable(
            "capabilities must be at most 64 names of 1 to 64 characters".into(),
        ));
    }
    if request.version.len() > 64 {
        return Err(ApiError::Unprocessable(
            "version must be at most 64 characters".into(),
        ));
    }
    let requested_customer = request
        .customer_uuid
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let customer_id = match caller {
        Caller::Customer(customer) => {
            if requested_customer.is_some_and(|c| c != customer.id) {
                return Err(ApiError::Forbidden(
                    "An API key registers agents only into its own customer".into(),
                ));
            }
            Some(customer.id.clone())
        }
        Caller::User(_) => match requested_customer {
            Some(id) => Some(super::customers::fetch(state, id).await?.id),
            None => None,
        },
    };
    let agent_id = uuid::Uuid::new_v4();
    let token = keys::generate(keys::AGENT_TOKEN_PREFIX);
    let capabilities = serde_json::to_string(&request.capabilities).map_err(anyhow::Error::from)?;
    let agent = state
        .store
        .insert_agent(NewAgent {
            id: &agent_id.to_string(),
            customer_id: customer_id.as_deref(),
            token_hash: &keys::digest(&token),
            hostname,
            ip_address: &ip_address.to_string(),
            port: request.port,
            capabilities: &capabilities,
            version: request.version.trim(),
        })
        .await?;
    audit::record(
        &state.store,
        actor,
        Event::ok(action::REGISTER, Some(&agent.id)).detail(&agent.hostname),
    )
    .await?;
    tracing::info!(agent = %agent.id, hostname = %agent.hostname, "agent registered");
    Ok(AgentRegistered {
        agent_id,
        status: "registered".into(),
        message: "Agent registered successfully".into(),
        agent_token: token,
    })
}

pub async fn heartbeat(
    state: &AppState,
    agent_id: &str,
    system_info: Option<&SystemInfo>,
) -> ApiResult<()> {
    let info = system_info
        .map(serde_json::to_string)
        .transpose()
        .map_err(anyhow::Error::from)?;
    if !state
        .store
        .agent_heartbeat(agent_id, info.as_deref())
        .await?
    {
        return Err(not_found());
    }
    Ok(())
}

pub async fn http_heartbeat(
    state: &AppState,
    agent_id: &str,
    request: &HeartbeatRequest,
) -> ApiResult<()> {
    if request.agent_id.as_deref().is_some_and(|id| id != agent_id) {
        return Err(ApiError::Unprocessable(
            "agent_id in the body does not match the path".into(),
        ));
    }
    heartbeat(state, agent_id, request.system_info.as_ref()).await
}

/// The caller's agents (all for users), or only the online ones, with the counts.
pub async fn list(
    state: &AppState,
    scope: Option<&str>,
    online_only: bool,
) -> ApiResult<AgentList> {
    let agents = state.store.list_agents(scope, online_only).await?;
    let (total, online) = state.store.agent_counts(scope).await?;
    Ok(AgentList {
        agents: agents.iter().map(|agent| to_api(state, agent)).collect(),
        total,
        online,
        offline: total.saturating_sub(online),
    })
}

/// Removes the agent, its tasks, and its live connection.
pub async fn unregister(
    state: &AppState,
    caller: &Caller,
    actor: &Actor,
    agent_id: &str,
) -> ApiResult<()> {
    let agent = visible(state, caller, agent_id).await?;
    if !state.store.delete_agent(&agent.id).await? {
        return Err(not_found());
    }
    state.hub.kick(&agent.id);
    audit::record(
        &state.store,
        actor,
        Event::ok(action::DELETE, Some(&agent.id)).detail(&agent.hostname),
    )
    .await?;
    tracing::info!(agent = %agent.id, "agent unregistered");
    Ok(())
}
