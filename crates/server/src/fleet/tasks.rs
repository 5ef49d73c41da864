//! Commands and tasks. A command is validated, stored as a pending task, and only then offered
//! to the agent; a task stays unfinished (and is offered again on every reconnect or poll)
//! until the agent reports on it, it is cancelled, or its timeout plus grace passes.

use std::collections::BTreeMap;

use skyshift_proto::agent::{
    BulkCommandAccepted, BulkCommandRequest, BulkTask, CommandAccepted, CommandRequest,
    CommandSpec, PendingCommand, PendingCommands, ServerMessage, ShellType, Task, TaskList,
    TaskResult, TaskStatus, TaskStatusData,
};
use uuid::Uuid;

use super::{time, uuid, valid_env_name};
use crate::audit::{self, Actor, Event};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::store::{
    from_micros, AgentRecord, CancelOutcome, NewAuditEntry, NewTask, ReportOutcome, ResultReport,
    TaskRecord,
};
use crate::AppState;

pub mod action {
    pub const COMMAND: &str = "command.run";
    pub const SCRIPT: &str = "script.run";
    pub const CANCEL: &str = "task.cancel";
}

pub const DEFAULT_TIMEOUT: u64 = 30;
pub const MAX_TIMEOUT: u64 = 86_400;
const MAX_COMMAND_BYTES: usize = 1024 * 1024;
/// Tasks listed per agent.
const LIST_LIMIT: i64 = 100;

/// A command that passed validation, ready to store.
#[derive(Debug, Clone)]
pub struct ValidCommand {
    pub command: String,
    pub args: Vec<String>,
    pub shell_type: ShellType,
    pub timeout: u64,
    pub working_directory: Option<String>,
    pub environment: Option<BTreeMap<String, String>>,
}

pub fn validate_timeout(timeout: Option<u64>) -> ApiResult<u64> {
    let timeout = timeout.unwrap_or(DEFAULT_TIMEOUT);
    if !(1..=MAX_TIMEOUT).contains(&timeout) {
        return Err(ApiError::Unprocessable(format!(
            "timeout must be 1 to {MAX_TIMEOUT} seconds"
        )));
    }
    Ok(timeout)
}

pub fn validate_environment(
    environment: Option<BTreeMap<String, String>>,
    what: &str,
) -> ApiResult<Option<BTreeMap<String, String>>> {
    if let Some(bad) = environment
        .iter()
        .flatten()
        .map(|(k, _)| k)
        .find(|k| !valid_env_name(k))
    {
        return Err(ApiError::Unprocessable(format!(
            "{what} name `{bad}` is not a valid environment variable name (letters, digits, _; not starting with a digit)"
        )));
    }
    Ok(environment.filter(|env| !env.is_empty()))
}

impl TryFrom<CommandRequest> for ValidCommand {
    type Error = ApiError;

    fn try_from(request: CommandRequest) -> ApiResult<Self> {
        if request.command.trim().is_empty() {
            return Err(ApiError::Unprocessable("command must not be empty".into()));
        }
        if request.command.len() > MAX_COMMAND_BYTES {
            return Err(ApiError::Unprocessable("command is too long".into()));
        }
        Ok(ValidCommand {
            command: request.command,
            args: request.args.unwrap_or_default(),
            shell_type: request.shell_type,
            timeout: validate_timeout(request.timeout)?,
            working_directory: request
                .working_directory
                .filter(|dir| !dir.trim().is_empty()),
            environment: validate_environment(request.environment, "environment")?,
        })
    }
}

fn spec(record: &TaskRecord) -> CommandSpec {
    CommandSpec {
        task_id: uuid(&record.id),
        command: record.command.clone(),
        args: serde_json::from_str(&record.args).unwrap_or_default(),
        shell_type: ShellType::parse(&record.shell_type).unwrap_or(ShellType::Bash),
        timeout: record.timeout.max(1) as u64,
        working_directory: record.working_directory.clone(),
        environment: record
            .environment
            .as_deref()
            .and_then(|env| serde_json::from_str(env).ok()),
    }
}

pub fn to_api(record: &TaskRecord) -> Task {
    Task {
        task_id: uuid(&record.id),
        agent_id: uuid(&record.agent_id),
        status: TaskStatus::parse(&record.status).unwrap_or(TaskStatus::Pending),
        output: record.output.clone(),
        error: record.error.clone(),
        exit_code: record.exit_code,
        command: record.command.clone(),
        shell_type: ShellType::parse(&record.shell_type).unwrap_or(ShellType::Bash),
        timeout: record.timeout.max(0) as u64,
        created_by: record.created_by.clone(),
        created_at: from_micros(record.created_at),
        started_at: time(record.started_at),
        finished_at: time(record.finished_at),
        late_result: record.late_result != 0,
        output_truncated: record.output_truncated != 0,
    }
}

fn task_not_found() -> ApiError {
    ApiError::NotFound("Task not found".into())
}

/// What became of one agent's task when a command was started.
#[derive(Debug, Clone, Copy)]
enum Started {
    /// Stored and sent over the agent's live connection.
    Sent(Uuid),
    /// Stored; waits until the agent connects or polls.
    Queued(Uuid),
    /// Not stored: too many commands already wait for this agent.
    QueueFull,
}

/// Stores one task per agent (with its audit row) in a single transaction, then offers each to
/// its agent's live connection and marks the sent ones delivered. Agents whose queue is full
/// get no task.
async fn start_tasks(
    state: &AppState,
    caller: &Caller,
    actor: &Actor,
    agents: &[AgentRecord],
    command: &ValidCommand,
    audit_action: &str,
    audit_detail: &str,
) -> ApiResult<Vec<Started>> {
    let agent_ids: Vec<&str> = agents.iter().map(|agent| agent.id.as_str()).collect();
    let waiting = state.store.pending_task_counts(&agent_ids).await?;
    let cap = i64::from(state.config.max_pending_commands);
    let task_ids: Vec<Option<Uuid>> = agents
        .iter()
        .map(|agent| (waiting.get(&agent.id).copied().unwrap_or(0) < cap).then(Uuid::new_v4))
        .collect();
    let ids: Vec<Option<String>> = task_ids
        .iter()
        .map(|id| id.map(|id| id.to_string()))
        .collect();

    let args = serde_json::to_string(&command.args).map_err(anyhow::Error::from)?;
    let environment = command
        .environment
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(anyhow::Error::from)?;
    let created_by = caller.label();
    let detail: String = audit_detail.chars().take(500).collect();
    let now = chrono::Utc::now();
    let stored: Vec<(&AgentRecord, &String)> = agents
        .iter()
        .zip(&ids)
        .filter_map(|(agent, id)| id.as_ref().map(|id| (agent, id)))
        .collect();
    let tasks: Vec<NewTask> = stored
        .iter()
        .map(|(agent, id)| NewTask {
            id,
            agent_id: &agent.id,
            command: &command.command,
            args: &args,
            shell_type: command.shell_type.as_str(),
            timeout: command.timeout as i64,
            working_directory: command.working_directory.as_deref(),
            environment: environment.as_deref(),
            created_by: &created_by,
        })
        .collect();
    let audit_rows: Vec<NewAuditEntry> = stored
        .iter()
        .map(|(agent, _)| {
            audit::entry(
                actor,
                Event::ok(audit_action, Some(&agent.id)).detail(&detail),
                now,
            )
        })
        .collect();
    state.store.insert_tasks(&tasks, &audit_rows).await?;

    // Stored: only now may they be sent.
    let mut delivered = Vec::new();
    let started = agents
        .iter()
        .zip(task_ids)
        .map(|(agent, task_id)| {
            let Some(task_id) = task_id else {
                return Started::QueueFull;
            };
            let message = ServerMessage::Command(CommandSpec {
                task_id,
                command: command.command.clone(),
                args: command.args.clone(),
                shell_type: command.shell_type,
                timeout: command.timeout,
                working_directory: command.working_directory.clone(),
                environment: command.environment.clone(),
            });
            if state.hub.send(&agent.id, message) {
                delivered.push(task_id.to_string());
                Started::Sent(task_id)
            } else {
                Started::Queued(task_id)
            }
        })
        .collect();
    state
        .store
        .mark_tasks_delivered(&delivered, state.config.task_grace)
        .await?;
    Ok(started)
}

/// One command to one agent: `accepted` when sent, `pending` when it waits, 429 when the
/// agent's queue is full.
async fn start_one(
    state: &AppState,
    caller: &Caller,
    actor: &Actor,
    agent: AgentRecord,
    command: &ValidCommand,
    audit_action: &str,
    audit_detail: &str,
) -> ApiResult<(Uuid, &'static str)> {
    let started = start_tasks(
        state,
        caller,
        actor,
        std::slice::from_ref(&agent),
        command,
        audit_action,
        audit_detail,
    )
    .await?;
    match started.first().copied().unwrap_or(Started::QueueFull) {
        Started::Sent(task_id) => Ok((task_id, "accepted")),
        Started::Queued(task_id) => Ok((task_id, "pending")),
        Started::QueueFull => Err(ApiError::TooManyRequests {
            detail: format!(
                "Agent {} already has {} commands waiting; it must catch up first",
                agent.id, state.config.max_pending_commands
            ),
            retry_after_secs: 30,
        }),
    }
}

pub async fn send_command(
    state: &AppState,
    caller: &Caller,
    actor: &Actor,
    agent_id: &str,
    request: CommandRequest,
) -> ApiResult<CommandAccepted> {
    let agent = super::agents::visible(state, caller, agent_id).await?;
    let command = ValidCommand::try_from(request)?;
    let (task_id, status) = start_one(
        state,
        caller,
        actor,
        agent,
        &command,
        action::COMMAND,
        &command.command,
    )
    .await?;
    Ok(CommandAccepted {
        task_id,
        status: status.into(),
        message: if status == "accepted" {
            "Command sent to the agent".into()
        } else {
            "Agent is not connected; the command waits until it connects or polls".into()
        },
    })
}

/// Runs a script's content as a task; its parameters become environment variables.
pub async fn run_script(
    state: &AppState,
    caller: &Caller,
    actor: &Actor,
    agent_id: &str,
    command: &ValidCommand,
    script_name: &str,
) -> ApiResult<CommandAccepted> {
    let agent = super::agents::visible(state, caller, agent_id).await?;
    let (task_id, status) = start_one(
        state,
        caller,
        actor,
        agent,
        command,
        action::SCRIPT,
        script_name,
    )
    .await?;
    Ok(CommandAccepted {
        task_id,
        status: status.into(),
        message: format!(
            "Script `{script_name}` {}",
            if status == "accepted" {
                "sent"
            } else {
                "queued"
            }
        ),
    })
}

/// One command to many agents: those listed, or every agent of a customer. One transaction
/// stores all the tasks before any is sent.
pub async fn send_bulk(
    state: &AppState,
    caller: &Caller,
    actor: &Actor,
    request: BulkCommandRequest,
) -> ApiResult<BulkCommandAccepted> {
    let command = ValidCommand::try_from(request.command)?;
    let agents = match (request.agent_ids, request.customer_uuid) {
        (Some(ids), None) if !ids.is_empty() => {
            let mut agents = Vec::with_capacity(ids.len());
            for id in ids {
                agents.push(super::agents::visible(state, caller, &id).await?);
            }
            agents
        }
        (None, Some(customer)) => {
            if caller.customer_scope().is_some_and(|own| own != customer) {
                return Err(ApiError::NotFound("Customer not found".into()));
            }
            let customer = super::customers::fetch(state, &customer).await?;
            state.store.list_agents(Some(&customer.id), false).await?
        }
        _ => {
            return Err(ApiError::Unprocessable(
                "give either a non-empty agent_ids or a customer_uuid".into(),
            ))
        }
    };
    let started = start_tasks(
        state,
        caller,
        actor,
        &agents,
        &command,
        action::COMMAND,
        &command.command,
    )
    .await?;
    let tasks: Vec<BulkTask> = agents
        .iter()
        .zip(started)
        .map(|(agent, started)| {
            let (task_id, status) = match started {
                Started::Sent(task_id) => (task_id, "accepted"),
                Started::Queued(task_id) => (task_id, "pending"),
                Started::QueueFull => (Uuid::nil(), "rejected: too many commands waiting"),
            };
            BulkTask {
                agent_id: uuid(&agent.id),
                task_id,
                status: status.into(),
            }
        })
        .collect();
    Ok(BulkCommandAccepted {
        count: tasks.len() as u64,
        tasks,
    })
}

/// What an agent must run now: every unfinished task (marked delivered), and the running tasks
/// it must stop. Used by the HTTP poll and when a WebSocket connects.
pub async fn outstanding(state: &AppState, agent_id: &str) -> ApiResult<PendingCommands> {
    let tasks = state.store.unfinished_tasks(agent_id).await?;
    let pending: Vec<String> = tasks
        .iter()
        .filter(|task| task.status == "pending")
        .map(|task| task.id.clone())
        .collect();
    state
        .store
        .mark_tasks_delivered(&pending, state.config.task_grace)
        .await?;
    let cancel = state.store.tasks_to_cancel(agent_id).await?;
    Ok(PendingCommands {
        count: tasks.len() as u64,
        commands: tasks
            .iter()
            .map(|task| PendingCommand {
                agent_id: uuid(agent_id),
                kind: "command".into(),
                spec: spec(task),
            })
            .collect(),
        cancel: cancel.iter().map(|id| uuid(id)).collect(),
    })
}

/// The agent's final report. A second report answers 409 and changes nothing.
pub async fn record_result(
    state: &AppState,
    agent_id: &str,
    task_id: &str,
    result: TaskResult,
) -> ApiResult<()> {
    if !result.status.is_final() {
        return Err(ApiError::Unprocessable(
            "a result's status is completed or failed".into(),
        ));
    }
    let (output, truncated) = cap_output(&result.output, state.config.task_output_cap);
    let outcome = state
        .store
        .record_task_result(
            agent_id,
            task_id,
            ResultReport {
                status: result.status.as_str(),
                output,
                output_truncated: truncated,
                error: result.error.as_deref(),
                exit_code: result.exit_code,
            },
        )
        .await?;
    match outcome {
        ReportOutcome::Recorded => {
            state.hub.task_changed(task_id);
            tracing::debug!(
                agent = agent_id,
                task = task_id,
                status = result.status.as_str(),
                "task result recorded"
            );
            Ok(())
        }
        ReportOutcome::AlreadyReported => Err(ApiError::Conflict(
            "A result for this task was already recorded".into(),
        )),
        ReportOutcome::NotFound => Err(task_not_found()),
    }
}

/// Progress of a running task: appends the new output.
pub async fn record_status(
    state: &AppState,
    agent_id: &str,
    status: &TaskStatusData,
) -> ApiResult<()> {
    let task_id = status.task_id.to_string();
    let cap = i64::try_from(state.config.task_output_cap).unwrap_or(i64::MAX);
    if state
        .store
        .append_task_output(agent_id, &task_id, &status.output, cap)
        .await?
    {
        state.hub.task_changed(&task_id);
        Ok(())
    } else {
        Err(ApiError::Conflict(
            "Task is unknown or already finished".into(),
        ))
    }
}

/// Cuts `output` to at most `cap` bytes on a character boundary.
fn cap_output(output: &str, cap: usize) -> (&str, bool) {
    if output.len() <= cap {
        return (output, false);
    }
    let mut end = cap;
    while !output.is_char_boundary(end) {
        end -= 1;
    }
    (&output[..end], true)
}

pub async fn cancel(
    state: &AppState,
    caller: &Caller,
    actor: &Actor,
    agent_id: &str,
    task_id: &str,
) -> ApiResult<Task> {
    let agent = super::agents::visible(state, caller, agent_id).await?;
    match state
        .store
        .cancel_task(&agent.id, task_id, &caller.label())
        .await?
    {
        CancelOutcome::Cancelled { was_running } => {
            if was_running {
                if let Ok(id) = Uuid::parse_str(task_id) {
                    state
                        .hub
                        .send(&agent.id, ServerMessage::Cancel { task_id: id });
                }
            }
            state.hub.task_changed(task_id);
            audit::record(
                &state.store,
                actor,
                Event::ok(action::CANCEL, Some(&agent.id)).detail(task_id),
            )
            .await?;
        }
        CancelOutcome::AlreadyFinished => {
            return Err(ApiError::Conflict(
                "Task already finished; nothing to cancel".into(),
            ))
        }
        CancelOutcome::NotFound => return Err(task_not_found()),
    }
    get(state, caller, agent_id, task_id).await
}

pub async fn get(
    state: &AppState,
    caller: &Caller,
    agent_id: &str,
    task_id: &str,
) -> ApiResult<Task> {
    let agent = super::agents::visible(state, caller, agent_id).await?;
    let task = state
        .store
        .task(&agent.id, task_id)
        .await?
        .ok_or_else(task_not_found)?;
    Ok(to_api(&task))
}

pub async fn list(state: &AppState, caller: &Caller, agent_id: &str) -> ApiResult<TaskList> {
    let agent = super::agents::visible(state, caller, agent_id).await?;
    let tasks = state.store.list_tasks(&agent.id, LIST_LIMIT).await?;
    Ok(TaskList {
        count: tasks.len() as u64,
        tasks: tasks.iter().map(to_api).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_cut_on_a_character_boundary() {
        assert_eq!(cap_output("hello", 10), ("hello", false));
        assert_eq!(cap_output("hello", 3), ("hel", true));
        assert_eq!(cap_output("héllo", 2), ("h", true));
    }

    #[test]
    fn commands_are_validated() {
        let request = |command: &str, timeout: Option<u64>, env: &[(&str, &str)]| CommandRequest {
            command: command.into(),
            args: None,
            shell_type: ShellType::Bash,
            timeout,
            working_directory: None,
            environment: Some(
                env.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        };
        assert!(ValidCommand::try_from(request("echo", None, &[])).is_ok());
        assert_eq!(
            ValidCommand::try_from(request("echo", None, &[]))
                .unwrap()
                .timeout,
            30
        );
        assert!(ValidCommand::try_from(request("  ", None, &[])).is_err());
        assert!(ValidCommand::try_from(request("echo", Some(0), &[])).is_err());
        assert!(ValidCommand::try_from(request("echo", Some(86_401), &[])).is_err());
        assert!(ValidCommand::try_from(request("echo", None, &[("BAD-NAME", "x")])).is_err());
    }
}
