//! Commands and tasks: users and customers send commands (one agent or many), follow and cancel
//! tasks; agents fetch their pending commands and report progress and results.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures_util::Stream;
use serde_json::json;
use skyshift_proto::agent::{
    BulkCommandAccepted, BulkCommandRequest, CommandAccepted, CommandRequest, PendingCommands,
    Task, TaskList, TaskResult, TaskStatus, TaskStatusData,
};
use skyshift_proto::api::{ErrorBody, Message};
use tokio::sync::broadcast::error::RecvError;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::ApiJson;
use crate::audit::Actor;
use crate::auth::{AgentToken, Caller, ClientAddr};
use crate::error::ApiResult;
use crate::fleet::{agents, tasks};
use crate::AppState;

/// How long a live follower waits before looking at the task again without a notification.
const FOLLOW_POLL: Duration = Duration::from_secs(1);

pub fn router(output_cap: usize) -> OpenApiRouter<AppState> {
    // Results carry whole outputs: allow the output cap plus room for the JSON around it.
    let results = OpenApiRouter::new()
        .routes(routes!(submit_result))
        .routes(routes!(submit_status))
        .layer(DefaultBodyLimit::max(
            output_cap.saturating_mul(2).saturating_add(1 << 20),
        ));
    OpenApiRouter::new()
        .routes(routes!(send_command, pending_commands))
        .routes(routes!(send_bulk))
        .routes(routes!(list_tasks))
        .routes(routes!(get_task))
        .routes(routes!(stream_task))
        .routes(routes!(cancel_task))
        .merge(results)
}

/// Send a command to an agent. Stored first; sent at once when the agent is connected
/// (`accepted`), otherwise it waits (`pending`).
#[utoipa::path(post, path = "/api/agents/{agent_id}/commands", tag = "commands",
    security(("bearer" = []), ("api_key" = [])), params(("agent_id" = String, Path)), request_body = CommandRequest,
    responses((status = 200, body = CommandAccepted), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, description = "Too many commands waiting for the agent", body = ErrorBody)))]
async fn send_command(
    State(state): State<AppState>,
    caller: Caller,
    addr: ClientAddr,
    Path(agent_id): Path<String>,
    ApiJson(request): ApiJson<CommandRequest>,
) -> ApiResult<Json<CommandAccepted>> {
    let actor = Actor::caller(&caller, addr);
    Ok(Json(
        tasks::send_command(&state, &caller, &actor, &agent_id, request).await?,
    ))
}

/// The agent's unfinished tasks (HTTP agents poll this). Every poll returns each task until the
/// agent reports on it; `cancel` lists running tasks to stop.
#[utoipa::path(get, path = "/api/agents/{agent_id}/commands", tag = "agent protocol",
    security(("agent_token" = [])), params(("agent_id" = String, Path)),
    responses((status = 200, body = PendingCommands), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn pending_commands(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    AgentToken(token): AgentToken,
) -> ApiResult<Json<PendingCommands>> {
    agents::authenticate(&state, &agent_id, &token).await?;
    // Polling is a sign of life too.
    agents::heartbeat(&state, &agent_id, None).await?;
    Ok(Json(tasks::outstanding(&state, &agent_id).await?))
}

/// One command to many agents: `agent_ids`, or every agent of `customer_uuid`.
#[utoipa::path(post, path = "/api/commands", tag = "commands", security(("bearer" = []), ("api_key" = [])),
    request_body = BulkCommandRequest,
    responses((status = 200, body = BulkCommandAccepted), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn send_bulk(
    State(state): State<AppState>,
    caller: Caller,
    addr: ClientAddr,
    ApiJson(request): ApiJson<BulkCommandRequest>,
) -> ApiResult<Json<BulkCommandAccepted>> {
    let actor = Actor::caller(&caller, addr);
    Ok(Json(
        tasks::send_bulk(&state, &caller, &actor, request).await?,
    ))
}

/// The agent's newest tasks (up to 100).
#[utoipa::path(get, path = "/api/agents/{agent_id}/tasks", tag = "commands", security(("bearer" = []), ("api_key" = [])),
    params(("agent_id" = String, Path)),
    responses((status = 200, body = TaskList), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_tasks(
    State(state): State<AppState>,
    caller: Caller,
    Path(agent_id): Path<String>,
) -> ApiResult<Json<TaskList>> {
    Ok(Json(tasks::list(&state, &caller, &agent_id).await?))
}

/// One task with its complete output.
#[utoipa::path(get, path = "/api/agents/{agent_id}/tasks/{task_id}", tag = "commands",
    security(("bearer" = []), ("api_key" = [])), params(("agent_id" = String, Path), ("task_id" = String, Path)),
    responses((status = 200, body = Task), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_task(
    State(state): State<AppState>,
    caller: Caller,
    Path((agent_id, task_id)): Path<(String, String)>,
) -> ApiResult<Json<Task>> {
    Ok(Json(
        tasks::get(&state, &caller, &agent_id, &task_id).await?,
    ))
}

/// Cancel a pending (it never runs) or running (the agent is told to stop) task.
#[utoipa::path(post, path = "/api/agents/{agent_id}/tasks/{task_id}/cancel", tag = "commands",
    security(("bearer" = []), ("api_key" = [])), params(("agent_id" = String, Path), ("task_id" = String, Path)),
    responses((status = 200, body = Task), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The task already finished", body = ErrorBody)))]
async fn cancel_task(
    State(state): State<AppState>,
    caller: Caller,
    addr: ClientAddr,
    Path((agent_id, task_id)): Path<(String, String)>,
) -> ApiResult<Json<Task>> {
    let actor = Actor::caller(&caller, addr);
    Ok(Json(
        tasks::cancel(&state, &caller, &actor, &agent_id, &task_id).await?,
    ))
}

/// An agent reports a task's final result (HTTP agents). A second result answers 409.
#[utoipa::path(post, path = "/api/agents/{agent_id}/tasks/{task_id}/result", tag = "agent protocol",
    security(("agent_token" = [])), params(("agent_id" = String, Path), ("task_id" = String, Path)), request_body = TaskResult,
    responses((status = 200, body = Message), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "A result was already recorded", body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn submit_result(
    State(state): State<AppState>,
    Path((agent_id, task_id)): Path<(String, String)>,
    AgentToken(token): AgentToken,
    ApiJson(result): ApiJson<TaskResult>,
) -> ApiResult<Json<Message>> {
    agents::authenticate(&state, &agent_id, &token).await?;
    tasks::record_result(&state, &agent_id, &task_id, result).await?;
    Ok(Json(Message::new("Task result submitted successfully")))
}

/// Progress of a running task over HTTP: `output` is appended.
#[derive(serde::Deserialize, ToSchema)]
struct StatusBody {
    status: TaskStatus,
    #[serde(default)]
    output: String,
    #[serde(default)]
    error: Option<String>,
}

/// An agent reports progress of a running task (HTTP agents; WebSocket agents send `task_status`).
#[utoipa::path(post, path = "/api/agents/{agent_id}/tasks/{task_id}/status", tag = "agent protocol",
    security(("agent_token" = [])), params(("agent_id" = String, Path), ("task_id" = String, Path)), request_body = StatusBody,
    responses((status = 200, body = Message), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Unknown or finished task", body = ErrorBody)))]
async fn submit_status(
    State(state): State<AppState>,
    Path((agent_id, task_id)): Path<(String, String)>,
    AgentToken(token): AgentToken,
    ApiJson(body): ApiJson<StatusBody>,
) -> ApiResult<Json<Message>> {
    agents::authenticate(&state, &agent_id, &token).await?;
    let task_id = uuid::Uuid::parse_str(&task_id)
        .map_err(|_| crate::error::ApiError::NotFound("Task not found".into()))?;
    let status = TaskStatusData {
        task_id,
        status: body.status,
        output: body.output,
        error: body.error,
    };
    tasks::record_status(&state, &agent_id, &status).await?;
    Ok(Json(Message::new("Task status recorded")))
}

/// Follow a task live as server-sent events: `output` events (`{"output": "…"}`, in order) and
/// one final `status` event (`{"task_id", "status", "exit_code", "error"}`), then the stream ends.
#[utoipa::path(get, path = "/api/agents/{agent_id}/tasks/{task_id}/stream", tag = "commands",
    security(("bearer" = []), ("api_key" = [])), params(("agent_id" = String, Path), ("task_id" = String, Path)),
    responses((status = 200, description = "text/event-stream", content_type = "text/event-stream"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn stream_task(
    State(state): State<AppState>,
    caller: Caller,
    Path((agent_id, task_id)): Path<(String, String)>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    tasks::get(&state, &caller, &agent_id, &task_id).await?;
    let follower = Follower {
        changes: state.hub.follow_tasks(),
        state,
        agent_id,
        task_id,
        offset: 0,
        done: false,
    };
    let stream = futures_util::stream::unfold(follower, |mut follower| async move {
        let event = follower.next_event().await?;
        Some((Ok(event), follower))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Reads a task's new output from the store whenever it changes (or every second), so the
/// stream is right however the output arrived.
struct Follower {
    state: AppState,
    changes: tokio::sync::broadcast::Receiver<String>,
    agent_id: String,
    task_id: String,
    /// Characters of output already sent.
    offset: i64,
    done: bool,
}

impl Follower {
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            if self.done {
                return None;
            }
            let Ok(Some(task)) = self
                .state
                .store
                .task_progress(&self.agent_id, &self.task_id, self.offset)
                .await
            else {
                return None;
            };
            if !task.output.is_empty() {
                self.offset += task.output.chars().count() as i64;
                return Event::default()
                    .event("output")
                    .json_data(json!({"output": task.output}))
                    .ok();
            }
            if task.status == "completed" || task.status == "failed" {
                self.done = true;
                return Event::default()
                    .event("status")
                    .json_data(json!({
                        "task_id": task.id,
                        "status": task.status,
                        "exit_code": task.exit_code,
                        "error": task.error,
                        "late_result": task.late_result != 0,
                    }))
                    .ok();
            }
            self.wait_for_change().await;
        }
    }

    async fn wait_for_change(&mut self) {
        let wait = async {
            loop {
                match self.changes.recv().await {
                    Ok(id) if id == self.task_id => return,
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => return,
                    Err(RecvError::Closed) => return std::future::pending().await,
                }
            }
        };
        let _ = tokio::time::timeout(FOLLOW_POLL, wait).await;
    }
}
