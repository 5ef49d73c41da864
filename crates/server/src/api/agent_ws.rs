//! `GET /ws/agent/{agent_id}`: the agent's WebSocket. The agent proves itself with its token
//! (`Authorization: Bearer` or `?token=`) before the upgrade — no cookie is ever consulted, so a
//! cross-site page cannot ride a browser's session into it. On connect the agent gets every
//! unfinished task; then heartbeats, results and progress flow in, commands and cancels out.
//! Bad messages are logged and skipped; the connection stays.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use futures_util::{SinkExt, StreamExt};
use skyshift_proto::agent::{AgentMessage, ServerMessage};

use crate::auth::AgentToken;
use crate::error::{ApiError, ApiResult};
use crate::fleet::{agents, tasks};
use crate::AppState;

/// Small buffers: an idle agent connection should cost a few KiB, not tungstenite's default
/// 128 KiB read buffer.
const BUFFER: usize = 4 * 1024;

pub fn router() -> Router<AppState> {
    Router::new().route("/ws/agent/{agent_id}", get(upgrade))
}

async fn upgrade(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    AgentToken(token): AgentToken,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    agents::authenticate(&state, &agent_id, &token).await?;
    let max_message = state
        .config
        .task_output_cap
        .saturating_mul(2)
        .saturating_add(1 << 20);
    Ok(ws
        .read_buffer_size(BUFFER)
        .write_buffer_size(BUFFER)
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .on_upgrade(move |socket| serve(state, agent_id, socket)))
}

fn text(message: &ServerMessage) -> Option<Message> {
    serde_json::to_string(message)
        .ok()
        .map(|json| Message::Text(json.into()))
}

async fn serve(state: AppState, agent_id: String, socket: WebSocket) {
    let mut registration = state.hub.connect(&agent_id);
    let (mut sink, mut stream) = socket.split();
    tracing::info!(agent = %agent_id, "agent connected");
    if let Err(err) = agents::heartbeat(&state, &agent_id, None).await {
        tracing::warn!(agent = %agent_id, error = %err, "agent vanished as it connected");
        state.hub.disconnect(&agent_id, registration.id);
        return;
    }
    // Everything it has not reported on, again: it deduplicates by task id.
    match tasks::outstanding(&state, &agent_id).await {
        Ok(outstanding) => {
            let messages = outstanding
                .commands
                .into_iter()
                .map(|command| ServerMessage::Command(command.spec))
                .chain(
                    outstanding
                        .cancel
                        .into_iter()
                        .map(|task_id| ServerMessage::Cancel { task_id }),
                );
            for message in messages {
                if let Some(frame) = text(&message) {
                    if sink.send(frame).await.is_err() {
                        break;
                    }
                }
            }
        }
        Err(err) => {
            tracing::warn!(agent = %agent_id, error = %err, "cannot load the agent's outstanding tasks")
        }
    }

    // A peer that vanished without closing is dropped once it misses heartbeats.
    let idle_limit = state.config.agent_offline_after;
    let idle = tokio::time::sleep(idle_limit);
    tokio::pin!(idle);
    loop {
        tokio::select! {
            outgoing = registration.rx.recv() => {
                let Some(message) = outgoing else {
                    tracing::info!(agent = %agent_id, "agent connection replaced or agent removed");
                    break;
                };
                if let Some(frame) = text(&message) {
                    if sink.send(frame).await.is_err() {
                        break;
                    }
                }
            }
            incoming = stream.next() => {
                idle.as_mut().reset(tokio::time::Instant::now() + idle_limit);
                match incoming {
                    Some(Ok(Message::Text(body))) => {
                        if let Some(frame) = handle(&state, &agent_id, &body).await.as_ref().and_then(text) {
                            if sink.send(frame).await.is_err() {
                                break;
                            }
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                }
            }
            () = &mut idle => {
                tracing::info!(agent = %agent_id, "agent silent too long; closing its connection");
                break;
            }
        }
    }
    let _ = sink.send(Message::Close(None)).await;
    state.hub.disconnect(&agent_id, registration.id);
    tracing::info!(agent = %agent_id, "agent disconnected");
}

/// Applies one message from the agent; returns the reply, if any.
async fn handle(state: &AppState, agent_id: &str, body: &str) -> Option<ServerMessage> {
    let message: AgentMessage = match serde_json::from_str(body) {
        Ok(message) => message,
        Err(err) => {
            // The body may carry command output: log the reason, never the body.
            tracing::warn!(agent = agent_id, error = %err, "skipped an invalid message from an agent");
            return None;
        }
    };
    match message {
        AgentMessage::Heartbeat { system_info } => {
            // Noted in memory and written with the others by `jobs` within seconds; a deleted
            // agent's connection is closed by the hub, so there is nothing to look up here.
            let info = system_info.and_then(|info| serde_json::to_string(&info).ok());
            state.hub.note_heartbeat(agent_id, info);
            Some(ServerMessage::HeartbeatAck {
                timestamp: Utc::now(),
            })
        }
        AgentMessage::TaskResult { data } => {
            match tasks::record_result(state, agent_id, &data.task_id.to_string(), data.result)
                .await
            {
                Ok(()) => {}
                Err(ApiError::Conflict(_)) => {
                    tracing::debug!(agent = agent_id, task = %data.task_id, "duplicate result ignored")
                }
                Err(err) => {
                    tracing::warn!(agent = agent_id, task = %data.task_id, error = %err, "result not recorded")
                }
            }
            None
        }
        AgentMessage::TaskStatus { data } => {
            if let Err(err) = tasks::record_status(state, agent_id, &data).await {
                tracing::debug!(agent = agent_id, task = %data.task_id, error = %err, "progress not recorded");
            }
            None
        }
    }
}
