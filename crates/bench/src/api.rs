//! `skyshift-bench api`: requests/s and latency percentiles of the REST API under a fixed number
//! of concurrent clients: health, the agent list (with N agents registered), a task's status,
//! and sign-in (argon2id, whose cost it reports).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use reqwest::Client;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::api_client::{self, Api};
use crate::progress;
use crate::stats::Summary;
use crate::table::{num, Table};

#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// The server's base URL (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// The administrator's password.
    #[arg(long, env = "SKYSHIFT_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: String,
    /// Agents to register first, so the agent list has something to list.
    #[arg(long, default_value_t = 1000)]
    pub agents: usize,
    /// Seconds to drive each endpoint.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Write the report here as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct EndpointReport {
    pub name: String,
    pub requests: usize,
    pub errors: usize,
    pub seconds: f64,
    pub requests_per_second: f64,
    pub response_bytes: usize,
    pub latency: Summary,
}

#[derive(Debug, Serialize)]
pub struct ApiReport {
    pub concurrency: usize,
    pub agents_listed: usize,
    pub endpoints: Vec<EndpointReport>,
    pub password_hash: &'static str,
}

/// What the server's `auth/password` uses: argon2 0.5's `Argon2::default()`.
const PASSWORD_HASH: &str =
    "argon2id v19, m = 19 MiB, t = 2, p = 1 (the argon2 crate's defaults), \
                             hashed off the runtime under a semaphore";

pub async fn run(args: ApiArgs) -> anyhow::Result<()> {
    let api = Api::login(&args.server, &args.admin_password).await?;
    let (_customer, key) = api
        .customer_with_key(&format!("bench-api-{}", Uuid::new_v4()))
        .await?;
    let bar = progress::bar(args.agents as u64, "registering agents");
    let semaphore = Arc::new(Semaphore::new(32));
    let mut set = JoinSet::new();
    for i in 0..args.agents {
        let (http, base, key, semaphore) = (
            api.http.clone(),
            api.base.clone(),
            key.clone(),
            semaphore.clone(),
        );
        set.spawn(async move {
            let _permit = semaphore.acquire_owned().await?;
            api_client::register_agent(&http, &base, &key, &format!("bench-api-{i:05}")).await
        });
    }
    let mut first_agent = None;
    while let Some(joined) = set.join_next().await {
        let (agent_id, _) = joined??;
        first_agent.get_or_insert(agent_id);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let Some(agent_id) = first_agent else {
        bail!("--agents must be at least 1 (the task status needs one)");
    };
    let task_id = api
        .command(&agent_id, "echo status")
        .await?
        .task_id
        .to_string();
    #[derive(serde::Deserialize)]
    struct Listed {
        total: usize,
    }
    let listed: Listed = api
        .call(reqwest::Method::GET, "/api/agents", None::<&()>)
        .await?;

    let duration = Duration::from_secs(args.seconds.max(1));
    let token = api.token.clone();
    let base = api.base.clone();
    let mut endpoints = Vec::new();
    {
        let base = base.clone();
        endpoints.push(
            drive(
                "health",
                &api.http,
                args.concurrency,
                duration,
                move |http| {
                    let request = http.get(format!("{base}/api/health"));
                    async move { fetch(request).await }
                },
            )
            .await,
        );
    }
    {
        let (base, token) = (base.clone(), token.clone());
        endpoints.push(
            drive(
                &format!("agent list ({} agents)", listed.total),
                &api.http,
                args.concurrency,
                duration,
                move |http| {
                    let request = http.get(format!("{base}/api/agents")).bearer_auth(&token);
                    async move { fetch(request).await }
                },
            )
            .await,
        );
    }
    {
        let (base, token) = (base.clone(), token.clone());
        endpoints.push(
            drive(
                "task status",
                &api.http,
                args.concurrency,
                duration,
                move |http| {
                    let request = http
                        .get(format!("{base}/api/agents/{agent_id}/tasks/{task_id}"))
                        .bearer_auth(&token);
                    async move { fetch(request).await }
                },
            )
            .await,
        );
    }
    {
        let (base, password) = (base.clone(), args.admin_password.clone());
        endpoints.push(
            drive(
                "login (argon2id)",
                &api.http,
                args.concurrency,
                duration,
                move |http| {
                    let request = http
                        .post(format!("{base}/api/auth/login"))
                        .json(&serde_json::json!({"username": "admin", "password": password}));
                    async move { fetch(request).await }
                },
            )
            .await,
        );
    }
    let report = ApiReport {
        concurrency: args.concurrency,
        agents_listed: listed.total,
        endpoints,
        password_hash: PASSWORD_HASH,
    };
    print!("{}", render(&report));
    crate::table::write_json(args.json.as_deref(), &report)
}

/// Sends one request; the body's size on success.
async fn fetch(request: reqwest::RequestBuilder) -> anyhow::Result<usize> {
    let response = request.send().await?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() {
        bail!("{status}");
    }
    Ok(body.len())
}

/// `concurrency` workers sending `make`'s requests back to back for `duration`.
async fn drive<F, Fut>(
    name: &str,
    http: &Client,
    concurrency: usize,
    duration: Duration,
    make: F,
) -> EndpointReport
where
    F: Fn(&Client) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<usize>> + Send,
{
    let bar = progress::spinner(name);
    let make = Arc::new(make);
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (make, http) = (make.clone(), http.clone());
        workers.spawn(async move {
            let (mut latencies, mut errors, mut bytes) = (Vec::new(), 0usize, 0usize);
            while Instant::now() < deadline {
                let sent = Instant::now();
                match make(&http).await {
                    Ok(size) => {
                        latencies.push(sent.elapsed());
                        bytes = size;
                    }
                    Err(_) => errors += 1,
                }
            }
            (latencies, errors, bytes)
        });
    }
    let (mut latencies, mut errors, mut response_bytes) = (Vec::new(), 0, 0);
    while let Some(Ok((mut worker, worker_errors, bytes))) = workers.join_next().await {
        latencies.append(&mut worker);
        errors += worker_errors;
        response_bytes = response_bytes.max(bytes);
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    EndpointReport {
        name: name.to_string(),
        requests: latencies.len(),
        errors,
        seconds,
        requests_per_second: latencies.len() as f64 / seconds,
        response_bytes,
        latency: Summary::of_durations(&latencies),
    }
}

pub fn render(report: &ApiReport) -> String {
    let mut table = Table::new(&[
        "endpoint", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "bytes",
    ]);
    for e in &report.endpoints {
        table.row(vec![
            e.name.clone(),
            num(e.requests_per_second, 0),
            num(e.latency.p50_ms, 2),
            num(e.latency.p95_ms, 2),
            num(e.latency.p99_ms, 2),
            e.errors.to_string(),
            e.response_bytes.to_string(),
        ]);
    }
    format!(
        "{}{} requests in flight; password hash: {}\n",
        table.render(),
        report.concurrency,
        report.password_hash
    )
}
