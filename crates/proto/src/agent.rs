//! The agent side of `agent-manager-api.md`: agents, customers and their API keys, commands,
//! tasks, scripts, and the agent WebSocket messages. Field names are the spec's; additions
//! (tokens, cancellation, monitoring data, timestamps) are optional or extra fields, so a client
//! written against the spec keeps working.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The shell a command runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ShellType {
    Cmd,
    Powershell,
    Bash,
}

impl ShellType {
    pub fn as_str(self) -> &'static str {
        match self {
            ShellType::Cmd => "cmd",
            ShellType::Powershell => "powershell",
            ShellType::Bash => "bash",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "cmd" => Some(ShellType::Cmd),
            "powershell" => Some(ShellType::Powershell),
            "bash" => Some(ShellType::Bash),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    Online,
    Offline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    Pending,
    Running,
    Completed,
    Failed,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Running => "running",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(TaskStatus::Pending),
            "running" => Some(TaskStatus::Running),
            "completed" => Some(TaskStatus::Completed),
            "failed" => Some(TaskStatus::Failed),
            _ => None,
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, TaskStatus::Completed | TaskStatus::Failed)
    }
}

// ---------------------------------------------------------------- customers and keys

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CustomerRequest {
    pub name: String,
    #[serde(default)]
    pub address: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Customer {
    pub customer_uuid: Uuid,
    pub name: String,
    pub address: Option<String>,
    pub has_api_key: bool,
    pub agent_count: u64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyCreated {
    pub customer_uuid: Uuid,
    /// `sk_…`; shown this once.
    pub api_key: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyInfo {
    pub customer_uuid: Uuid,
    pub has_api_key: bool,
    pub api_key_created_at: Option<DateTime<Utc>>,
    pub api_key_last_used: Option<DateTime<Utc>>,
}

// ---------------------------------------------------------------- agents

/// What an agent reports of its machine with each heartbeat (capability `system_monitoring`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SystemInfo {
    pub os: Option<String>,
    pub uptime_secs: Option<u64>,
    pub cpu_percent: Option<f32>,
    pub memory_used_bytes: Option<u64>,
    pub memory_total_bytes: Option<u64>,
    pub disk_used_bytes: Option<u64>,
    pub disk_total_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentRegisterRequest {
    pub hostname: String,
    pub ip_address: String,
    pub port: i64,
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub customer_uuid: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentRegistered {
    pub agent_id: Uuid,
    pub status: String,
    pub message: String,
    /// The agent's own credential for heartbeat, commands, results and its WebSocket; shown
    /// this once.
    pub agent_token: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatRequest {
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub system_info: Option<SystemInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatAck {
    pub status: String,
    pub timestamp: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Agent {
    pub agent_id: Uuid,
    pub hostname: String,
    pub ip_address: String,
    pub port: i64,
    pub capabilities: Vec<String>,
    pub version: String,
    pub registered_at: DateTime<Utc>,
    pub last_heartbeat: Option<DateTime<Utc>>,
    pub status: AgentStatus,
    pub customer_uuid: Option<Uuid>,
    pub customer_name: Option<String>,
    pub websocket_connected: bool,
    pub system_info: Option<SystemInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentList {
    pub agents: Vec<Agent>,
    pub total: u64,
    pub online: u64,
    pub offline: u64,
}

// ---------------------------------------------------------------- commands and tasks

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CommandRequest {
    pub command: String,
    #[serde(default)]
    pub args: Option<Vec<String>>,
    pub shell_type: ShellType,
    /// Seconds, 1–86400; default 30.
    #[serde(default)]
    pub timeout: Option<u64>,
    #[serde(default)]
    pub working_directory: Option<String>,
    #[serde(default)]
    pub environment: Option<BTreeMap<String, String>>,
}

/// `POST /api/commands`: one command to many agents (`agent_ids`, or every agent of
/// `customer_uuid`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BulkCommandRequest {
    #[serde(flatten)]
    pub command: CommandRequest,
    #[serde(default)]
    pub agent_ids: Option<Vec<String>>,
    #[serde(default)]
    pub customer_uuid: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CommandAccepted {
    pub task_id: Uuid,
    /// `accepted` (sent over the agent's WebSocket) or `pending` (waiting for the agent).
    pub status: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BulkCommandAccepted {
    pub tasks: Vec<BulkTask>,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BulkTask {
    pub agent_id: Uuid,
    pub task_id: Uuid,
    pub status: String,
}

/// A command as an agent receives it (WebSocket `command` message, or `GET …/commands`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CommandSpec {
    pub task_id: Uuid,
    pub command: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    pub shell_type: ShellType,
    pub timeout: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PendingCommand {
    pub agent_id: Uuid,
    /// Always `command`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(flatten)]
    pub spec: CommandSpec,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PendingCommands {
    pub commands: Vec<PendingCommand>,
    pub count: u64,
    /// Running tasks the agent should stop (cancelled by a user).
    #[serde(default)]
    pub cancel: Vec<Uuid>,
}

/// A task's final report, from an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskResult {
    pub status: TaskStatus,
    #[serde(default)]
    pub output: String,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub exit_code: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Task {
    pub task_id: Uuid,
    pub agent_id: Uuid,
    pub status: TaskStatus,
    /// The complete output, never cut to its first line.
    pub output: String,
    pub error: Option<String>,
    pub exit_code: Option<i64>,
    pub command: String,
    pub shell_type: ShellType,
    pub timeout: u64,
    /// Who started it: `user:<name>` or `customer:<name>`.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The agent's result arrived after the server had already failed the task for its timeout.
    pub late_result: bool,
    /// The output reached the server's cap and was cut there.
    pub output_truncated: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TaskList {
    pub tasks: Vec<Task>,
    pub count: u64,
}

// ---------------------------------------------------------------- scripts

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScriptRequest {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub content: String,
    pub script_type: ShellType,
    #[serde(default)]
    pub customer_uuid: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Script {
    pub script_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub content: String,
    pub script_type: ShellType,
    /// None for a global script every customer sees.
    pub customer_uuid: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExecuteScriptRequest {
    pub agent_id: String,
    /// Reach the script as environment variables, never pasted into its text.
    #[serde(default)]
    pub parameters: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub timeout: Option<u64>,
}

// ---------------------------------------------------------------- agent WebSocket

/// Agent → server over `/ws/agent/{agent_id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentMessage {
    Heartbeat {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        system_info: Option<SystemInfo>,
    },
    TaskResult {
        data: TaskResultData,
    },
    TaskStatus {
        data: TaskStatusData,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskResultData {
    pub task_id: Uuid,
    #[serde(flatten)]
    pub result: TaskResult,
}

/// Progress of a running task; `output` is the new output since the last status (appended).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStatusData {
    pub task_id: Uuid,
    pub status: TaskStatus,
    #[serde(default)]
    pub output: String,
    #[serde(default)]
    pub error: Option<String>,
}

/// Server → agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    HeartbeatAck {
        timestamp: DateTime<Utc>,
    },
    Command(CommandSpec),
    /// Stop a running task at once.
    Cancel {
        task_id: Uuid,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_match_the_spec() {
        let heartbeat: AgentMessage = serde_json::from_value(json!({"type": "heartbeat"})).unwrap();
        assert_eq!(heartbeat, AgentMessage::Heartbeat { system_info: None });
        let id = Uuid::new_v4();
        let result: AgentMessage = serde_json::from_value(json!({
            "type": "task_result",
            "data": {"task_id": id, "status": "completed", "output": "hi", "exit_code": 0}
        }))
        .unwrap();
        let AgentMessage::TaskResult { data } = result else {
            panic!()
        };
        assert_eq!(data.task_id, id);
        assert_eq!(data.result.output, "hi");
        assert_eq!(data.result.exit_code, Some(0));

        let command = ServerMessage::Command(CommandSpec {
            task_id: id,
            command: "dir".into(),
            args: vec![],
            shell_type: ShellType::Cmd,
            timeout: 30,
            working_directory: None,
            environment: None,
        });
        assert_eq!(
            serde_json::to_value(&command).unwrap(),
            json!({"type": "command", "task_id": id, "command": "dir", "shell_type": "cmd", "timeout": 30})
        );
        let ack = serde_json::to_value(ServerMessage::HeartbeatAck {
            timestamp: Utc::now(),
        })
        .unwrap();
        assert_eq!(ack["type"], "heartbeat_ack");
    }
}
