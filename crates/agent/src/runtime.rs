//! The agent at work: registers (once, or again when the server forgot it), holds the WebSocket
//! or works over HTTP when it cannot, heartbeats, admits each task once, runs tasks in bounded
//! parallel, streams their output, and delivers results through the outbox until acknowledged.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::Url;
use skyshift_proto::agent::{
    AgentMessage, AgentRegisterRequest, CommandSpec, HeartbeatRequest, ServerMessage, SystemInfo,
    TaskResult, TaskStatus, TaskStatusData,
};
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::backoff::Backoff;
use crate::config::Settings;
use crate::executor::{self, ExecOptions, StopHandle};
use crate::ledger::{Admission, Ledger, Seen};
use crate::outbox::{Outbox, Pending};
use crate::state::Credentials;
use crate::sysmon::{self, Monitor};
use crate::transport::{Api, CallError, Ws};

/// The reason a task stopped by the server fails with.
pub const CANCELLED: &str = "cancelled";
const STOPPED: &str = "the agent was stopped while the task was running";
const INTERRUPTED: &str =
    "the agent stopped while the task was running; it was not run again after the restart";

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

enum SessionEnd {
    /// The server answered 401/404 for this agent: register again.
    UnknownAgent,
    /// The connection broke or the server cannot be reached.
    Lost(String),
    /// The HTTP window is over: try the WebSocket again.
    WindowOver,
}

impl From<CallError> for SessionEnd {
    fn from(error: CallError) -> Self {
        match error {
            CallError::UnknownAgent(_) => SessionEnd::UnknownAgent,
            other => SessionEnd::Lost(other.to_string()),
        }
    }
}

enum Delivery {
    Done,
    Retry,
}

pub struct Agent {
    settings: Settings,
    api: Api,
    credentials: Mutex<Option<Credentials>>,
    ledger: Mutex<Ledger>,
    outbox: Outbox,
    running: Mutex<HashMap<Uuid, StopHandle>>,
    /// Bounds the commands running at once (`--max-tasks`); the others wait for a slot.
    slots: Arc<Semaphore>,
    status_tx: mpsc::UnboundedSender<TaskStatusData>,
    status_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<TaskStatusData>>,
    /// Wakes the delivery loop: a result was written, or the server is back.
    deliver: Notify,
    /// Signalled whenever a task finishes.
    finished: Notify,
    server: AtomicUsize,
    monitor: Mutex<Option<Monitor>>,
    exec: ExecOptions,
}

impl Agent {
    pub fn new(settings: Settings, tls: Arc<rustls::ClientConfig>) -> anyhow::Result<Arc<Self>> {
        let api = Api::new(tls)?;
        let outbox = Outbox::open(&settings.paths.outbox)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", settings.paths.outbox.display()))?;
        let credentials = Credentials::load(&settings.paths.credentials);
        let ledger = Ledger::load(&settings.paths.ledger);
        let (status_tx, status_rx) = mpsc::unbounded_channel();
        Ok(Arc::new(Agent {
            slots: Arc::new(Semaphore::new(settings.max_tasks.max(1))),
            api,
            credentials: Mutex::new(credentials),
            ledger: Mutex::new(ledger),
            outbox,
            running: Mutex::new(HashMap::new()),
            status_tx,
            status_rx: tokio::sync::Mutex::new(status_rx),
            deliver: Notify::new(),
            finished: Notify::new(),
            server: AtomicUsize::new(0),
            monitor: Mutex::new(None),
            exec: ExecOptions::default(),
            settings,
        }))
    }

    /// Runs until `shutdown` resolves; then stops running tasks (their results go to the
    /// outbox) and makes one last delivery attempt.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        self.recover_interrupted();
        let delivery = tokio::spawn(self.clone().delivery_loop());
        tokio::select! {
            () = self.clone().connection_loop() => {}
            () = shutdown => tracing::info!("stopping"),
        }
        let running: Vec<StopHandle> = lock(&self.running).values().cloned().collect();
        for handle in running {
            handle.stop(STOPPED);
        }
        let drained = async {
            loop {
                let finished = self.finished.notified();
                if lock(&self.running).is_empty() {
                    break;
                }
                finished.await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), drained).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.deliver_once()).await;
        delivery.abort();
    }

    fn server(&self) -> Url {
        let servers = &self.settings.servers;
        servers[self.server.load(Ordering::Relaxed) % servers.len()].clone()
    }

    /// After a failure to reach the current server: the next one (failover).
    fn next_server(&self) {
        if self.settings.servers.len() > 1 {
            self.server.fetch_add(1, Ordering::Relaxed);
            tracing::info!(server = %self.server(), "trying the next server");
        }
    }

    /// Tasks that were running when the agent last stopped fail now; they are never re-run
    /// (a command may not be safe to run twice).
    fn recover_interrupted(&self) {
        let agent_id = lock(&self.credentials).as_ref().map(|c| c.agent_id);
        let mut ledger = lock(&self.ledger);
        let interrupted = ledger.running();
        for task_id in &interrupted {
            if let (Some(agent_id), false) = (agent_id, self.outbox.contains(*task_id)) {
                tracing::warn!(%task_id, "task interrupted by the last stop; reporting it failed");
                let pending = Pending {
                    agent_id,
                    task_id: *task_id,
                    result: TaskResult {
                        status: TaskStatus::Failed,
                        output: String::new(),
                        error: Some(INTERRUPTED.into()),
                        exit_code: None,
                    },
                };
                if let Err(e) = self.outbox.put(&pending) {
                    tracing::error!(%task_id, error = %e, "cannot write to the outbox");
                }
            }
            ledger.finish(*task_id);
        }
        if !interrupted.is_empty() {
            ledger.save();
        }
    }

    // ------------------------------------------------------------ identity

    async fn credentials(&self) -> Result<Credentials, CallError> {
        if let Some(credentials) = lock(&self.credentials).clone() {
            return Ok(credentials);
        }
        let base = self.server();
        let request = self.register_request(&base).await;
        let registered = self
            .api
            .register(&base, &self.settings.ini.api_key, &request)
            .await?;
        let credentials = Credentials {
            agent_id: registered.agent_id,
            agent_token: registered.agent_token,
        };
        if let Err(e) = credentials.save(&self.settings.paths.credentials) {
            tracing::error!(path = %self.settings.paths.credentials.display(), error = %e,
                "cannot save the agent state; a restart will register a new agent");
        }
        tracing::info!(agent_id = %credentials.agent_id, hostname = %request.hostname, "registered");
        *lock(&self.credentials) = Some(credentials.clone());
        Ok(credentials)
    }

    /// The server no longer knows `stale`: drop it so the next round registers again.
    fn forget(&self, stale: &Credentials) {
        let mut current = lock(&self.credentials);
        if current.as_ref() == Some(stale) {
            tracing::warn!(agent_id = %stale.agent_id, "the server no longer knows this agent; registering again");
            *current = None;
        }
    }

    async fn register_request(&self, base: &Url) -> AgentRegisterRequest {
        let ini = &self.settings.ini;
        let ip_address = match &ini.ip_address {
            Some(ip) => ip.clone(),
            None => local_ip(base).await,
        };
        AgentRegisterRequest {
            hostname: ini.hostname.clone().unwrap_or_else(sysmon::host_name),
            ip_address,
            port: i64::from(ini.port),
            capabilities: ini.capabilities.clone(),
            version: ini.version.clone(),
            customer_uuid: Some(ini.customer_id.clone()),
        }
    }

    fn system_info(&self) -> Option<SystemInfo> {
        if !self.settings.system_monitoring() {
            return None;
        }
        let mut monitor = lock(&self.monitor);
        Some(monitor.get_or_insert_with(Monitor::new).sample())
    }

    // ------------------------------------------------------------ tasks

    /// Admits a task the server sent: runs it unless it was seen before.
    fn offer(self: &Arc<Self>, spec: CommandSpec, agent_id: Uuid) {
        let task_id = spec.task_id;
        let admission = {
            let mut ledger = lock(&self.ledger);
            let admission = ledger.admit(task_id);
            if admission == Admission::New {
                ledger.save();
            }
            admission
        };
        match admission {
            Admission::New => {}
            Admission::Duplicate(Seen::Running) => {
                tracing::debug!(%task_id, "task delivered again while it runs; ignored");
                return;
            }
            Admission::Duplicate(Seen::Finished) => {
                tracing::debug!(%task_id, "task delivered again after it finished; not run again");
                if self.outbox.contains(task_id) {
                    self.deliver.notify_one();
                }
                return;
            }
        }
        let (handle, signal) = executor::stop_pair();
        lock(&self.running).insert(task_id, handle);
        let agent = self.clone();
        tokio::spawn(async move {
            let mut waiting = signal.clone();
            let result = tokio::select! {
                permit = agent.slots.clone().acquire_owned() => {
                    let _permit = permit;
                    tracing::info!(%task_id, shell = spec.shell_type.as_str(), timeout = spec.timeout, "running task");
                    executor::run(&spec, signal, Some(agent.status_tx.clone()), &agent.exec).await
                }
                reason = waiting.stopped() => TaskResult {
                    status: TaskStatus::Failed,
                    output: String::new(),
                    error: Some(reason),
                    exit_code: None,
                },
            };
            // Writing (and syncing) a result of many MiB is blocking work.
            let finisher = agent.clone();
            let written =
                tokio::task::spawn_blocking(move || finisher.finish(agent_id, task_id, result))
                    .await;
            if let Err(e) = written {
                tracing::error!(%task_id, error = %e, "recording the result failed");
                lock(&agent.running).remove(&task_id);
                agent.finished.notify_waiters();
            }
        });
    }

    fn finish(&self, agent_id: Uuid, task_id: Uuid, result: TaskResult) {
        tracing::info!(%task_id, status = result.status.as_str(), exit_code = ?result.exit_code,
            output_bytes = result.output.len(), "task finished");
        let pending = Pending {
            agent_id,
            task_id,
            result,
        };
        if let Err(e) = self.outbox.put(&pending) {
            tracing::error!(%task_id, error = %e, "cannot write the result to the outbox");
        }
        {
            let mut ledger = lock(&self.ledger);
            ledger.finish(task_id);
            ledger.save();
        }
        lock(&self.running).remove(&task_id);
        self.deliver.notify_one();
        self.finished.notify_waiters();
    }

    fn cancel(&self, task_id: Uuid) {
        match lock(&self.running).get(&task_id) {
            Some(handle) => {
                tracing::info!(%task_id, "cancelling task");
                handle.stop(CANCELLED);
            }
            None => tracing::debug!(%task_id, "cancel for a task that is not running"),
        }
    }

    fn is_running(&self, task_id: Uuid) -> bool {
        lock(&self.running).contains_key(&task_id)
    }

    fn on_server_text(self: &Arc<Self>, text: &str, agent_id: Uuid) {
        match decode(text) {
            Ok(ServerMessage::Command(spec)) => self.offer(spec, agent_id),
            Ok(ServerMessage::Cancel { task_id }) => self.cancel(task_id),
            Ok(ServerMessage::HeartbeatAck { .. }) => tracing::trace!("heartbeat acknowledged"),
            Err(skipped) => {
                tracing::warn!(%skipped, "skipped a server message the agent does not understand")
            }
        }
    }

    // ------------------------------------------------------------ connection

    async fn connection_loop(self: Arc<Self>) {
        let mut backoff = Backoff::reconnect();
        let mut over_http = false;
        // Kept across HTTP windows, so short windows do not heartbeat more often.
        let mut next_beat = Instant::now();
        loop {
            let credentials = match self.credentials().await {
                Ok(credentials) => credentials,
                Err(e) => {
                    tracing::warn!(server = %self.server(), error = %e, "cannot register");
                    if e.is_transient() {
                        self.next_server();
                    }
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue;
                }
            };
            if self.settings.websocket {
                match self.api.websocket(&self.server(), &credentials).await {
                    Ok(ws) => {
                        tracing::info!(server = %self.server(), "WebSocket connected");
                        over_http = false;
                        backoff.reset();
                        match self.ws_session(ws, &credentials).await {
                            SessionEnd::UnknownAgent => self.forget(&credentials),
                            SessionEnd::Lost(why) => {
                                tracing::warn!(reason = %why, "WebSocket lost; reconnecting")
                            }
                            SessionEnd::WindowOver => {}
                        }
                        tokio::time::sleep(backoff.next_delay()).await;
                        continue;
                    }
                    Err(CallError::UnknownAgent(status)) => {
                        // A 404 may also be a server without the WebSocket route: the HTTP
                        // heartbeat below tells which.
                        tracing::debug!(status, "WebSocket refused for this agent");
                    }
                    Err(e) => {
                        if !over_http {
                            tracing::warn!(error = %e, "WebSocket unavailable; working over HTTP");
                        }
                    }
                }
            }
            over_http = true;
            let window = if self.settings.websocket {
                backoff.next_delay()
            } else {
                Duration::from_secs(365 * 86_400)
            };
            match self
                .http_session(&credentials, window, &mut next_beat)
                .await
            {
                SessionEnd::WindowOver => {}
                SessionEnd::UnknownAgent => self.forget(&credentials),
                SessionEnd::Lost(why) => {
                    tracing::warn!(server = %self.server(), reason = %why, "server unreachable");
                    self.next_server();
                    over_http = false;
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }

    async fn ws_session(self: &Arc<Self>, ws: Ws, credentials: &Credentials) -> SessionEnd {
        let (mut sink, mut stream) = ws.split();
        let mut status_rx = self.status_rx.lock().await;
        let heartbeat = self.settings.heartbeat;
        let silence_limit = heartbeat * 2 + Duration::from_secs(10);
        let mut beat = tokio::time::interval(heartbeat);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        self.deliver.notify_one();
        loop {
            let outgoing = tokio::select! {
                _ = beat.tick() => {
                    if last_heard.elapsed() > silence_limit {
                        return SessionEnd::Lost(format!("nothing from the server for {} s", silence_limit.as_secs()));
                    }
                    AgentMessage::Heartbeat { system_info: self.system_info() }
                }
                incoming = stream.next() => {
                    match incoming {
                        None => return SessionEnd::Lost("closed by the server".into()),
                        Some(Err(e)) => return SessionEnd::Lost(e.to_string()),
                        Some(Ok(Message::Text(text))) => {
                            last_heard = Instant::now();
                            self.on_server_text(&text, credentials.agent_id);
                        }
                        Some(Ok(Message::Close(frame))) => {
                            return SessionEnd::Lost(format!("closed by the server ({frame:?})"));
                        }
                        Some(Ok(_)) => last_heard = Instant::now(),
                    }
                    continue;
                }
                Some(status) = status_rx.recv() => {
                    if !self.is_running(status.task_id) {
                        continue;
                    }
                    AgentMessage::TaskStatus { data: status }
                }
            };
            let json = serde_json::to_string(&outgoing).expect("agent messages serialise");
            if let Err(e) = sink.send(Message::text(json)).await {
                return SessionEnd::Lost(e.to_string());
            }
        }
    }

    async fn http_session(
        self: &Arc<Self>,
        credentials: &Credentials,
        window: Duration,
        next_beat: &mut Instant,
    ) -> SessionEnd {
        let base = self.server();
        let until = Instant::now() + window;
        let mut status_rx = self.status_rx.lock().await;
        let mut first = true;
        loop {
            if Instant::now() >= *next_beat {
                let request = HeartbeatRequest {
                    agent_id: Some(credentials.agent_id.to_string()),
                    status: Some("online".into()),
                    system_info: self.system_info(),
                };
                if let Err(e) = self.api.heartbeat(&base, credentials, &request).await {
                    return e.into();
                }
                *next_beat = Instant::now() + self.settings.heartbeat;
            }
            let pending = match self.api.poll(&base, credentials).await {
                Ok(pending) => pending,
                Err(e) => return e.into(),
            };
            if first {
                tracing::debug!(server = %base, "working over HTTP");
                self.deliver.notify_one();
                first = false;
            }
            for command in pending.commands {
                self.offer(command.spec, credentials.agent_id);
            }
            for task_id in pending.cancel {
                self.cancel(task_id);
            }
            let next_poll = (Instant::now() + self.settings.poll).min(until);
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(next_poll) => break,
                    Some(status) = status_rx.recv() => {
                        // Coalesce what is waiting: one request per task.
                        let mut chunks: BTreeMap<Uuid, String> = BTreeMap::new();
                        let mut add = |status: TaskStatusData| {
                            chunks.entry(status.task_id).or_default().push_str(&status.output);
                        };
                        add(status);
                        while let Ok(status) = status_rx.try_recv() {
                            add(status);
                        }
                        for (task_id, output) in chunks {
                            if !self.is_running(task_id) {
                                continue;
                            }
                            match self.api.post_status(&base, credentials, task_id, &output).await {
                                Ok(()) => {}
                                Err(CallError::Unreachable(why)) => return SessionEnd::Lost(why),
                                // A task the server finished (timeout, cancel) or forgot.
                                Err(e) => tracing::debug!(%task_id, error = %e, "status not taken"),
                            }
                        }
                    }
                }
            }
            if Instant::now() >= until {
                return SessionEnd::WindowOver;
            }
        }
    }

    // ------------------------------------------------------------ results

    async fn delivery_loop(self: Arc<Self>) {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let mut retry_at: Option<Instant> = Some(Instant::now());
        loop {
            match retry_at {
                Some(at) => tokio::select! {
                    () = self.deliver.notified() => {}
                    () = tokio::time::sleep_until(at) => {}
                },
                None => self.deliver.notified().await,
            }
            retry_at = match self.deliver_once().await {
                Delivery::Done => {
                    backoff.reset();
                    None
                }
                Delivery::Retry => Some(Instant::now() + backoff.next_delay()),
            };
        }
    }

    /// Sends every result in the outbox; each leaves it once the server has it.
    async fn deliver_once(&self) -> Delivery {
        let pending = self.outbox.list();
        if pending.is_empty() {
            return Delivery::Done;
        }
        let Some(credentials) = lock(&self.credentials).clone() else {
            return Delivery::Retry;
        };
        let base = self.server();
        for entry in pending {
            let task_id = entry.task_id;
            if entry.agent_id != credentials.agent_id {
                tracing::warn!(%task_id, former = %entry.agent_id,
                    "dropping the result of a task of this agent's former identity");
                self.outbox.remove(task_id);
                continue;
            }
            match self
                .api
                .post_result(&base, &credentials, task_id, &entry.result)
                .await
            {
                Ok(()) => {
                    self.outbox.remove(task_id);
                    tracing::info!(%task_id, "result delivered");
                }
                Err(CallError::Conflict) => {
                    self.outbox.remove(task_id);
                    tracing::info!(%task_id, "the server already had this result");
                }
                Err(CallError::UnknownAgent(404)) => {
                    tracing::warn!(%task_id, "the server does not know this task; result dropped");
                    self.outbox.remove(task_id);
                }
                Err(e) if e.is_transient() || matches!(e, CallError::UnknownAgent(_)) => {
                    tracing::debug!(%task_id, error = %e, "result not delivered yet");
                    return Delivery::Retry;
                }
                Err(e) => {
                    tracing::error!(%task_id, error = %e, "the server refused the result; dropped");
                    self.outbox.remove(task_id);
                }
            }
        }
        Delivery::Done
    }
}

/// Why a server message was skipped, without its content (a command may carry secrets in its
/// environment, and serde's messages quote the offending value).
#[derive(Debug, PartialEq, Eq)]
pub struct Skipped {
    pub kind: Option<String>,
    pub category: &'static str,
    pub column: usize,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Some(kind) => write!(f, "type {kind:?}: ")?,
            None => write!(f, "no type: ")?,
        }
        write!(f, "{} error at column {}", self.category, self.column)
    }
}

/// Parses one WebSocket text message from the server.
pub fn decode(text: &str) -> Result<ServerMessage, Skipped> {
    serde_json::from_str::<ServerMessage>(text).map_err(|e| Skipped {
        kind: serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| {
                v.get("type")?
                    .as_str()
                    .map(|t| t.chars().take(40).collect())
            }),
        category: match e.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "syntax",
            serde_json::error::Category::Data => "data",
            serde_json::error::Category::Eof => "truncated",
        },
        column: e.column(),
    })
}

/// The address this machine uses to reach the server (no packet is sent).
async fn local_ip(base: &Url) -> String {
    let fallback = || "127.0.0.1".to_owned();
    let (Some(host), Some(port)) = (base.host_str(), base.port_or_known_default()) else {
        return fallback();
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let Ok(mut addresses) = tokio::net::lookup_host((host, port)).await else {
        return fallback();
    };
    let Some(target) = addresses.next() else {
        return fallback();
    };
    let bind = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let Ok(socket) = std::net::UdpSocket::bind(bind) else {
        return fallback();
    };
    match socket.connect(target).and_then(|()| socket.local_addr()) {
        Ok(local) if !local.ip().is_unspecified() => local.ip().to_string(),
        _ => fallback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_messages_decode_and_garbage_is_skipped_without_its_content() {
        let id = Uuid::new_v4();
        let command = format!(
            r#"{{"type":"command","task_id":"{id}","command":"echo hi","shell_type":"bash","timeout":5,"agent_id":"x","future_field":1}}"#
        );
        let Ok(ServerMessage::Command(spec)) = decode(&command) else {
            panic!("a command with extra fields decodes")
        };
        assert_eq!((spec.task_id, spec.timeout), (id, 5));
        assert_eq!(
            decode(&format!(r#"{{"type":"cancel","task_id":"{id}"}}"#)),
            Ok(ServerMessage::Cancel { task_id: id })
        );

        let unknown = decode(r#"{"type":"reboot_now","secret":"hunter2"}"#).unwrap_err();
        assert_eq!(unknown.kind.as_deref(), Some("reboot_now"));
        let bad_value = decode(&format!(
            r#"{{"type":"command","task_id":"{id}","command":"x","shell_type":"bash","timeout":"hunter2"}}"#
        ))
        .unwrap_err();
        assert!(!bad_value.to_string().contains("hunter2"), "{bad_value}");
        assert_eq!(bad_value.category, "data");
        assert_eq!(decode("{not json").unwrap_err().category, "syntax");
        assert_eq!(decode("").unwrap_err().category, "truncated");
        assert_eq!(decode("[1,2]").unwrap_err().kind, None);
    }
}
