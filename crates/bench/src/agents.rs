//! `skyshift-bench agents`: N simulated agents in one process speaking the real protocol
//! (registration with a customer key, the agent WebSocket, heartbeats, results), and what the
//! server pays for them: connect time, memory per agent, command round trip, bulk fan-out and
//! heartbeat CPU; beside it, the same count of idle clients on `nats-server`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use skyshift_proto::agent::{AgentMessage, ServerMessage, TaskResult, TaskResultData, TaskStatus};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::api_client::{self, Api};
use crate::nats::{self, NatsReport};
use crate::procfs::{self, NofileLimit};
use crate::stats::Summary;
use crate::table::{num, Table};
use crate::{progress, Targets};

#[derive(Debug, clap::Args)]
pub struct AgentsArgs {
    /// The server's base URL (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// Agents to simulate.
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    /// The server's process id, to read its memory and CPU from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// The administrator's password.
    #[arg(long, env = "SKYSHIFT_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: String,
    /// Seconds between an agent's heartbeats (the agent's default is 30).
    #[arg(long, default_value_t = 30)]
    pub heartbeat_secs: u64,
    /// Seconds to watch the server's CPU while the agents only heartbeat (0: skip).
    #[arg(long, default_value_t = 30)]
    pub idle_secs: u64,
    /// Single commands to time for the round trip.
    #[arg(long, default_value_t = 300)]
    pub samples: usize,
    /// Registrations and connections in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Skip the nats-server reference.
    #[arg(long)]
    pub no_nats: bool,
    /// The nats-server binary.
    #[arg(long, default_value = "nats-server")]
    pub nats_server: PathBuf,
    /// Write the report here as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Default, Serialize)]
pub struct AgentsReport {
    pub count: usize,
    pub nofile: Option<NofileLimit>,
    pub warnings: Vec<String>,
    pub register_seconds: f64,
    pub connected: usize,
    pub connect_seconds: f64,
    pub connect_failures: usize,
    pub server_rss_before_bytes: Option<u64>,
    pub server_rss_after_bytes: Option<u64>,
    pub server_bytes_per_agent: Option<f64>,
    pub heartbeat_window_seconds: f64,
    pub heartbeats_acked: u64,
    pub heartbeat_cpu_percent_of_core: Option<f64>,
    /// POST command → task completed in the API.
    pub round_trip: Summary,
    /// POST command → the agent has the command.
    pub delivery: Summary,
    pub fanout: Option<Fanout>,
    pub nats: Option<NatsReport>,
    pub ratio_to_nats: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Fanout {
    pub agents: usize,
    /// The bulk POST answered (tasks stored).
    pub accepted_seconds: f64,
    /// Every agent had the command.
    pub all_received_seconds: f64,
    /// Every agent had sent its result.
    pub all_reported_seconds: f64,
    /// The last agents' tasks read back completed through the API.
    pub confirmed_seconds: f64,
    pub completed_in_api: usize,
    pub checked_in_api: usize,
}

/// What the simulated agents share with the driver.
#[derive(Default)]
struct Shared {
    connected: AtomicUsize,
    failed: AtomicUsize,
    reported: AtomicUsize,
    heartbeat_acks: AtomicU64,
    /// When each task reached its agent, and in which order results went out.
    received: Mutex<HashMap<Uuid, Instant>>,
    report_order: Mutex<Vec<(String, Uuid)>>,
    changed: Notify,
}

pub async fn run(args: AgentsArgs, targets: &Targets) -> anyhow::Result<()> {
    let mut report = AgentsReport {
        count: args.count,
        ..AgentsReport::default()
    };
    // Our agents' sockets (the NATS clients come after they close), the HTTP pool, slack.
    let nofile = procfs::raise_nofile(args.count as u64 + 1024)?;
    if let Some(warning) = &nofile.warning {
        eprintln!("warning: {warning}");
        report.warnings.push(warning.clone());
    }
    report.nofile = Some(nofile);
    if let Some(pid) = args.server_pid {
        if let Some(Some(soft)) = procfs::open_files_limit(pid) {
            if soft < args.count as u64 + 64 {
                let warning = format!(
                    "the server (pid {pid}) may open only {soft} files, fewer than {} agents \
                     need: start it after `ulimit -n {}`",
                    args.count,
                    args.count + 1024
                );
                eprintln!("warning: {warning}");
                report.warnings.push(warning);
            }
        }
    }

    let api = Api::login(&args.server, &args.admin_password).await?;
    let (customer, key) = api
        .customer_with_key(&format!("bench-{}", Uuid::new_v4()))
        .await?;

    // Registration.
    let bar = progress::bar(args.count as u64, "registering");
    let started = Instant::now();
    let semaphore = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut registrations = JoinSet::new();
    for i in 0..args.count {
        let (http, base, key, semaphore) = (
            api.http.clone(),
            api.base.clone(),
            key.clone(),
            semaphore.clone(),
        );
        registrations.spawn(async move {
            let _permit = semaphore.acquire_owned().await?;
            api_client::register_agent(&http, &base, &key, &format!("bench-{i:05}")).await
        });
    }
    let mut agents = Vec::with_capacity(args.count);
    while let Some(joined) = registrations.join_next().await {
        agents.push(joined??);
        bar.inc(1);
    }
    bar.finish_and_clear();
    report.register_seconds = started.elapsed().as_secs_f64();

    // Connection.
    let rss = |pid: Option<u32>| pid.and_then(|pid| procfs::rss_bytes(pid).ok());
    tokio::time::sleep(Duration::from_millis(500)).await;
    report.server_rss_before_bytes = rss(args.server_pid);
    let shared = Arc::new(Shared::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let bar = progress::bar(args.count as u64, "connecting");
    let started = Instant::now();
    let mut running = JoinSet::new();
    let heartbeat = Duration::from_secs(args.heartbeat_secs.max(1));
    for (i, (agent_id, token)) in agents.iter().cloned().enumerate() {
        let (shared, stop, semaphore) = (shared.clone(), stop_rx.clone(), semaphore.clone());
        let ws_base = api.base.replacen("http", "ws", 1);
        // Heartbeats spread evenly over the interval, as a real fleet's would be.
        let phase = heartbeat.mul_f64(i as f64 / args.count.max(1) as f64);
        running.spawn(async move {
            let socket = {
                let _permit = semaphore.acquire_owned().await;
                connect(&ws_base, &agent_id, &token).await
            };
            match socket {
                Ok(socket) => {
                    shared.connected.fetch_add(1, Ordering::Relaxed);
                    shared.changed.notify_waiters();
                    simulate(socket, agent_id, phase, heartbeat, &shared, stop).await;
                }
                Err(err) => {
                    if shared.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                        eprintln!("an agent could not connect: {err:#}");
                    }
                    shared.changed.notify_waiters();
                }
            }
        });
    }
    loop {
        let done = shared.connected.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed);
        bar.set_position(done as u64);
        if done >= args.count {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_millis(100), shared.changed.notified()).await;
    }
    bar.finish_and_clear();
    report.connect_seconds = started.elapsed().as_secs_f64();
    report.connected = shared.connected.load(Ordering::Relaxed);
    report.connect_failures = shared.failed.load(Ordering::Relaxed);
    if report.connected == 0 {
        bail!("no agent could connect");
    }

    // Memory once the connections settled.
    tokio::time::sleep(Duration::from_secs(2)).await;
    report.server_rss_after_bytes = rss(args.server_pid);
    if let (Some(before), Some(after)) = (
        report.server_rss_before_bytes,
        report.server_rss_after_bytes,
    ) {
        let per_agent = after.saturating_sub(before) as f64 / report.connected as f64;
        report.server_bytes_per_agent = Some(per_agent);
        if per_agent < 1024.0 {
            report.warnings.push(
                "the server's memory hardly grew: it is probably reusing memory freed by an \
                 earlier run; measure memory on a freshly started server"
                    .into(),
            );
        }
    }

    // Heartbeats only: the server's CPU over a window.
    if args.idle_secs > 0 {
        let bar = progress::spinner("heartbeats only (server CPU)");
        let acks_before = shared.heartbeat_acks.load(Ordering::Relaxed);
        let cpu_before = args
            .server_pid
            .and_then(|pid| procfs::cpu_seconds(pid).ok());
        let window = Instant::now();
        tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
        report.heartbeat_window_seconds = window.elapsed().as_secs_f64();
        report.heartbeats_acked = shared.heartbeat_acks.load(Ordering::Relaxed) - acks_before;
        let cpu_after = args
            .server_pid
            .and_then(|pid| procfs::cpu_seconds(pid).ok());
        if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
            report.heartbeat_cpu_percent_of_core =
                Some((after - before) / report.heartbeat_window_seconds * 100.0);
        }
        bar.finish_and_clear();
    }

    // Round trip: one command at a time to agents spread over the fleet.
    let bar = progress::bar(args.samples as u64, "round trips");
    let mut round_trips = Vec::with_capacity(args.samples);
    let mut deliveries = Vec::with_capacity(args.samples);
    for sample in 0..args.samples {
        let (agent_id, _) = &agents[(sample * 7919) % agents.len()];
        let started = Instant::now();
        let accepted = api.command(agent_id, "echo bench").await?;
        let task_id = accepted.task_id;
        loop {
            let task = api.task(agent_id, &task_id.to_string()).await?;
            if task.status.is_final() {
                if task.status != TaskStatus::Completed {
                    bail!("task {task_id} ended {:?}", task.status);
                }
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("task {task_id} did not complete within 30 s");
            }
        }
        round_trips.push(started.elapsed());
        if let Some(at) = shared.received.lock().unwrap().remove(&task_id) {
            deliveries.push(at - started);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    report.round_trip = Summary::of_durations(&round_trips);
    report.delivery = Summary::of_durations(&deliveries);

    // Fan-out: one bulk command to every agent of the customer.
    report.fanout = Some(fan_out(&api, &customer, &shared, report.connected).await?);

    // Done with our agents; then the reference.
    let _ = stop_tx.send(true);
    while running.join_next().await.is_some() {}
    if !args.no_nats {
        match nats::measure(&args.nats_server, report.connected).await {
            Ok(nats) => {
                if let Some(ours) = report.server_bytes_per_agent {
                    report.ratio_to_nats = Some(ours / nats.bytes_per_client);
                }
                report.nats = Some(nats);
            }
            Err(err) => {
                let warning = format!("no NATS reference: {err:#}");
                eprintln!("warning: {warning}");
                report.warnings.push(warning);
            }
        }
    }

    print!("{}", render(&report, targets));
    crate::table::write_json(args.json.as_deref(), &report)
}

async fn fan_out(
    api: &Api,
    customer: &str,
    shared: &Shared,
    agents: usize,
) -> anyhow::Result<Fanout> {
    let bar = progress::bar(agents as u64, "bulk command");
    let reported_before = shared.reported.load(Ordering::Relaxed);
    shared.report_order.lock().unwrap().clear();
    let started = Instant::now();
    let accepted = api.bulk_command(customer, "echo fan-out").await?;
    let mut fanout = Fanout {
        agents: accepted.tasks.len(),
        accepted_seconds: started.elapsed().as_secs_f64(),
        ..Fanout::default()
    };
    let ids: std::collections::HashSet<Uuid> = accepted.tasks.iter().map(|t| t.task_id).collect();
    let deadline = started + Duration::from_secs(300);
    loop {
        let reported = shared.reported.load(Ordering::Relaxed) - reported_before;
        bar.set_position(reported as u64);
        if fanout.all_received_seconds == 0.0 {
            let received = shared.received.lock().unwrap();
            if ids.iter().all(|id| received.contains_key(id)) {
                let last = ids.iter().filter_map(|id| received.get(id)).max().copied();
                fanout.all_received_seconds = last.map_or(0.0, |at| (at - started).as_secs_f64());
            }
        }
        if reported >= ids.len() {
            fanout.all_reported_seconds = started.elapsed().as_secs_f64();
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "only {reported} of {} agents reported within 300 s",
                ids.len()
            );
        }
        let _ = tokio::time::timeout(Duration::from_millis(20), shared.changed.notified()).await;
    }
    bar.finish_and_clear();
    // The API's view: the last 20 results sent must read back completed.
    let last: Vec<(String, Uuid)> = {
        let order = shared.report_order.lock().unwrap();
        order.iter().rev().take(20).cloned().collect()
    };
    fanout.checked_in_api = last.len();
    for (agent_id, task_id) in &last {
        loop {
            let task = api.task(agent_id, &task_id.to_string()).await?;
            if task.status.is_final() {
                if task.status == TaskStatus::Completed {
                    fanout.completed_in_api += 1;
                }
                break;
            }
            if Instant::now() > deadline {
                bail!("task {task_id} never completed in the API");
            }
        }
    }
    fanout.confirmed_seconds = started.elapsed().as_secs_f64();
    shared.received.lock().unwrap().clear();
    Ok(fanout)
}

type AgentSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(ws_base: &str, agent_id: &str, token: &str) -> anyhow::Result<AgentSocket> {
    let mut request = format!("{ws_base}/ws/agent/{agent_id}").into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    // Small buffers, as the server's side has: 10,000 agents × tungstenite's default 128 KiB
    // read buffer would be 1.3 GB in this process.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(4096);
    let (socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        .await
        .context("WebSocket")?;
    Ok(socket)
}

/// One agent: heartbeats on its own phase, a completed result for every command at once.
async fn simulate(
    socket: AgentSocket,
    agent_id: String,
    phase: Duration,
    every: Duration,
    shared: &Shared,
    mut stop: watch::Receiver<bool>,
) {
    let (mut sink, mut stream) = socket.split();
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + phase, every);
    let text = |message: &AgentMessage| {
        Message::Text(serde_json::to_string(message).unwrap_or_default().into())
    };
    loop {
        tokio::select! {
            _ = heartbeat.tick() => {
                if sink.send(text(&AgentMessage::Heartbeat { system_info: None })).await.is_err() {
                    break;
                }
            }
            incoming = stream.next() => {
                let Some(Ok(message)) = incoming else { break };
                let Message::Text(body) = message else { continue };
                match serde_json::from_str::<ServerMessage>(&body) {
                    Ok(ServerMessage::HeartbeatAck { .. }) => {
                        shared.heartbeat_acks.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(ServerMessage::Command(spec)) => {
                        shared.received.lock().unwrap().insert(spec.task_id, Instant::now());
                        let result = AgentMessage::TaskResult {
                            data: TaskResultData {
                                task_id: spec.task_id,
                                result: TaskResult {
                                    status: TaskStatus::Completed,
                                    output: "bench\n".into(),
                                    error: None,
                                    exit_code: Some(0),
                                },
                            },
                        };
                        if sink.send(text(&result)).await.is_err() {
                            break;
                        }
                        shared.report_order.lock().unwrap().push((agent_id.clone(), spec.task_id));
                        shared.reported.fetch_add(1, Ordering::Relaxed);
                        shared.changed.notify_waiters();
                    }
                    _ => {}
                }
            }
            _ = stop.changed() => {
                let _ = sink.send(Message::Close(None)).await;
                break;
            }
        }
    }
}

fn kib(bytes: f64) -> String {
    format!("{} KiB", num(bytes / 1024.0, 1))
}

pub fn render(report: &AgentsReport, targets: &Targets) -> String {
    let mut table = Table::new(&["measure", "value", "target", "met"]).text_only();
    let met = |ok: bool| if ok { "yes" } else { "NO" }.to_string();
    table.row(vec![
        "agents connected".into(),
        format!("{} of {}", report.connected, report.count),
        String::new(),
        String::new(),
    ]);
    table.row(vec![
        "register all".into(),
        format!(
            "{} s ({}/s)",
            num(report.register_seconds, 1),
            num(report.count as f64 / report.register_seconds.max(1e-9), 0)
        ),
        String::new(),
        String::new(),
    ]);
    table.row(vec![
        "connect all".into(),
        format!("{} s", num(report.connect_seconds, 2)),
        String::new(),
        String::new(),
    ]);
    if let Some(per_agent) = report.server_bytes_per_agent {
        table.row(vec![
            "server memory per agent".into(),
            kib(per_agent),
            format!("< {} KB", targets.bytes_per_agent / 1000),
            met(per_agent < targets.bytes_per_agent as f64),
        ]);
    }
    if let Some(nats) = &report.nats {
        table.row(vec![
            "nats-server memory per idle client".into(),
            kib(nats.bytes_per_client),
            String::new(),
            String::new(),
        ]);
    }
    if let Some(ratio) = report.ratio_to_nats {
        table.row(vec![
            "ours / NATS per connection".into(),
            format!("{}x", num(ratio, 2)),
            "< 1x".into(),
            met(ratio < 1.0),
        ]);
    }
    if let Some(cpu) = report.heartbeat_cpu_percent_of_core {
        table.row(vec![
            format!(
                "heartbeat CPU ({} acks in {} s)",
                report.heartbeats_acked,
                num(report.heartbeat_window_seconds, 0)
            ),
            format!("{} % of a core", num(cpu, 2)),
            "< 10 %".into(),
            met(cpu < 10.0),
        ]);
    }
    let rt = &report.round_trip;
    table.row(vec![
        format!("command round trip ({} samples)", rt.count),
        format!(
            "p50 {} / p95 {} / p99 {} ms",
            num(rt.p50_ms, 2),
            num(rt.p95_ms, 2),
            num(rt.p99_ms, 2)
        ),
        "p99 < 10 ms".into(),
        met(rt.count > 0 && rt.p99_ms < 10.0),
    ]);
    let d = &report.delivery;
    table.row(vec![
        "  of which POST → agent has it".into(),
        format!(
            "p50 {} / p95 {} / p99 {} ms",
            num(d.p50_ms, 2),
            num(d.p95_ms, 2),
            num(d.p99_ms, 2)
        ),
        String::new(),
        String::new(),
    ]);
    if let Some(f) = &report.fanout {
        table.row(vec![
            format!("bulk command to {} agents", f.agents),
            format!(
                "accepted {} s, all received {} s, all reported {} s, confirmed {} s",
                num(f.accepted_seconds, 2),
                num(f.all_received_seconds, 2),
                num(f.all_reported_seconds, 2),
                num(f.confirmed_seconds, 2)
            ),
            "< 2 s".into(),
            met(f.confirmed_seconds < 2.0),
        ]);
    }
    let mut out = table.render();
    for warning in &report.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    out
}
