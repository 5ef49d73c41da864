//! The real server in-process (SQLite in a temp dir, behind a `Proxy` so it can be cut or
//! restarted) with a customer and its `id.ini`, the real `skyshift-agent` binary as a child
//! process, and waits on conditions the API shows — never fixed sleeps.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use skyshift_server::{accounts, build_app, jobs, AppState, Config};
use tokio::sync::Mutex;

use crate::proxy::Proxy;

pub const ADMIN_PASSWORD: &str = "admin-pass-Agent5";
/// Every wait gives up after this long.
const PATIENCE: Duration = Duration::from_secs(30);

struct Instance {
    addr: SocketAddr,
    serve: tokio::task::JoinHandle<()>,
    jobs: tokio::task::JoinHandle<()>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.serve.abort();
        self.jobs.abort();
    }
}

pub struct Server {
    /// The URL agents use: the proxy, which can cut them off. The tests' own requests go to
    /// the current instance directly, so a cut never fails a test's request.
    pub base: String,
    pub proxy: Proxy,
    pub client: reqwest::Client,
    pub admin_token: String,
    pub customer_uuid: String,
    /// `id.ini` as the server hands it out (download-config).
    pub id_ini: String,
    dir: tempfile::TempDir,
    instance: Mutex<Instance>,
}

async fn launch(data_dir: &Path) -> (Instance, SocketAddr) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = Config::for_data_dir(data_dir);
    let state = AppState::open(config).await.expect("open state");
    accounts::ensure_admin(&state, Some(ADMIN_PASSWORD.into()), data_dir)
        .await
        .expect("create admin");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = build_app(state.clone());
    let jobs = jobs::spawn(state.clone());
    let serve = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    (Instance { addr, serve, jobs }, addr)
}

impl Server {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (instance, addr) = launch(dir.path()).await;
        let proxy = Proxy::start(addr).await;
        let mut server = Server {
            base: format!("http://{}", proxy.addr),
            proxy,
            client: reqwest::Client::new(),
            admin_token: String::new(),
            customer_uuid: String::new(),
            id_ini: String::new(),
            dir,
            instance: Mutex::new(instance),
        };
        let login = server
            .call(
                Method::POST,
                "/api/auth/login",
                Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
            )
            .await;
        server.admin_token = login.1["access_token"].as_str().unwrap().to_owned();
        let customer = server
            .expect(
                Method::POST,
                "/api/customers",
                Some(json!({"name": "Acme"})),
            )
            .await;
        server.customer_uuid = customer["customer_uuid"].as_str().unwrap().to_owned();
        let path = format!("/api/customers/{}/generate-api-key", server.customer_uuid);
        server.expect(Method::POST, &path, None).await;
        let path = format!("/api/customers/{}/download-config", server.customer_uuid);
        let response = server
            .client
            .get(format!("http://{addr}{path}"))
            .bearer_auth(&server.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        server.id_ini = response.text().await.unwrap();
        server
    }

    /// Stops this server instance: every connection cut, new ones closed at once.
    pub async fn stop(&self) {
        let instance = self.instance.lock().await;
        self.proxy.cut();
        instance.serve.abort();
        instance.jobs.abort();
    }

    /// Starts a new instance on the same data directory behind the same address, as a
    /// restarted server process would be.
    pub async fn start_again(&self) {
        let mut instance = self.instance.lock().await;
        let (fresh, addr) = launch(self.dir.path()).await;
        *instance = fresh;
        self.proxy.resume(addr);
    }

    /// A network cut: every connection drops, the same server instance stays.
    pub async fn cut_connections(&self) {
        let instance = self.instance.lock().await;
        self.proxy.cut();
        self.proxy.resume(instance.addr);
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let addr = self.instance.lock().await.addr;
        let mut request = self
            .client
            .request(method, format!("http://{addr}{path}"))
            .bearer_auth(&self.admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    pub async fn expect(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, body) = self.call(method, path, body).await;
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    pub async fn agents(&self) -> Vec<Value> {
        let list = self.expect(Method::GET, "/api/agents", None).await;
        list["agents"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until an agent matches `check`; returns it.
    pub async fn wait_agent(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(agent) = self.agents().await.into_iter().find(|a| check(a)) {
                return agent;
            }
            assert!(
                Instant::now() < deadline,
                "no agent {what}: {:?}",
                self.agents().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends a command; returns its task id.
    pub async fn command(&self, agent_id: &str, body: Value) -> String {
        let path = format!("/api/agents/{agent_id}/commands");
        let accepted = self.expect(Method::POST, &path, Some(body)).await;
        accepted["task_id"].as_str().unwrap().to_owned()
    }

    pub async fn task(&self, agent_id: &str, task_id: &str) -> Value {
        self.expect(
            Method::GET,
            &format!("/api/agents/{agent_id}/tasks/{task_id}"),
            None,
        )
        .await
    }

    /// Waits until the task matches `check`.
    pub async fn wait_task(
        &self,
        agent_id: &str,
        task_id: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let task = self.task(agent_id, task_id).await;
            if check(&task) {
                return task;
            }
            assert!(Instant::now() < deadline, "task never {what}: {task}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn finished(&self, agent_id: &str, task_id: &str) -> Value {
        self.wait_task(agent_id, task_id, "finished", |t| {
            matches!(t["status"].as_str(), Some("completed" | "failed"))
        })
        .await
    }

    /// Runs `command` in bash on the agent and waits for the result.
    pub async fn run(&self, agent_id: &str, body: Value) -> Value {
        let task_id = self.command(agent_id, body).await;
        self.finished(agent_id, &task_id).await
    }
}

pub struct AgentProcess {
    child: tokio::process::Child,
    pub log: PathBuf,
}

impl AgentProcess {
    /// Starts `skyshift-agent` on the server's `id.ini` in `dir`, with quick heartbeats.
    pub fn start(server: &Server, dir: &Path, extra: &[&str]) -> Self {
        let config = dir.join("id.ini");
        if !config.exists() {
            std::fs::write(&config, &server.id_ini).unwrap();
        }
        let log = dir.join("agent.log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_skyshift-agent"))
            .arg("--config")
            .arg(&config)
            .args([
                "--server",
                &server.base,
                "--heartbeat",
                "1s",
                "--poll",
                "200ms",
                "-v",
            ])
            .args(extra)
            .env("RUST_LOG", "skyshift_agent=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .expect("start the agent");
        AgentProcess { child, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `needle` appears `count` times in the agent's log.
    pub async fn wait_log(&self, needle: &str, count: usize) {
        let deadline = Instant::now() + PATIENCE;
        while self.log().matches(needle).count() < count {
            assert!(
                Instant::now() < deadline,
                "`{needle}` never seen {count} times:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: the agent dies without any chance to clean up.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// SIGTERM, then waits for it to exit.
    pub async fn stop(&mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("the agent stops on SIGTERM")
            .unwrap()
    }
}

pub use crate::processes::processes_with;

/// Waits until `processes_with(mark)` has at least `count` entries (the check can fail).
pub async fn wait_processes(mark: &str, count: usize) {
    let deadline = Instant::now() + PATIENCE;
    while processes_with(mark).len() < count {
        assert!(
            Instant::now() < deadline,
            "the marked processes never showed up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (at most `within`) until no marked process is left.
pub async fn assert_none_left(mark: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let left = processes_with(mark);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "processes left behind: {left:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
