//! One `spawn_app` for every API test: a real server on 127.0.0.1:0 with a fresh database
//! (a SQLite file in a temp dir, or a new PostgreSQL database), its first admin signed in.

use std::net::SocketAddr;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use skyshift_server::{accounts, build_app, AppState, Config};
use sqlx::{Connection, Executor, PgConnection};

pub const ADMIN_PASSWORD: &str = "admin-pass-Quartz9";

#[derive(Debug, Clone, Copy)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Generates one test per backend from `async fn name(app: TestApp)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::helpers::spawn_app($crate::helpers::Db::Sqlite).await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::helpers::spawn_app($crate::helpers::Db::Postgres).await).await
                }
            )*
        }
    };
}

/// A response: status, headers and the body as JSON (`Null` when it is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn detail(&self) -> &str {
        self.body["detail"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub fn expect(self, status: StatusCode) -> Value {
        assert_eq!(self.status, status, "unexpected reply: {:?}", self.body);
        self.body
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub admin_token: String,
    _dir: tempfile::TempDir,
    _pg: Option<PgDatabase>,
}

pub async fn spawn_app(db: Db) -> TestApp {
    spawn_app_with(db, |_| {}).await
}

/// `spawn_app` with the configuration adjusted first (short timeouts, small caps…).
pub async fn spawn_app_with(db: Db, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::for_data_dir(dir.path());
    adjust(&mut config);
    let pg = match db {
        Db::Sqlite => None,
        Db::Postgres => {
            let pg = PgDatabase::create().await;
            config.database_url = Some(pg.url.clone());
            Some(pg)
        }
    };
    let state = AppState::open(config).await.expect("open state");
    accounts::ensure_admin(&state, Some(ADMIN_PASSWORD.into()), dir.path())
        .await
        .expect("create admin");
    state.start_background().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = build_app(state.clone());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let mut app = TestApp {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        state,
        admin_token: String::new(),
        _dir: dir,
        _pg: pg,
    };
    app.admin_token = app.login("admin", ADMIN_PASSWORD).await;
    app
}

impl TestApp {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap_or_default();
        Reply {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::DELETE, path, token, None).await
    }

    pub async fn admin_get(&self, path: &str) -> Reply {
        self.get(path, Some(&self.admin_token)).await
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> Reply {
        self.post(path, Some(&self.admin_token), body).await
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        let body = self
            .post(
                "/api/auth/login",
                None,
                json!({"username": username, "password": password}),
            )
            .await
            .expect(StatusCode::OK);
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// An active user made by the admin; returns its id and a token.
    pub async fn create_user(
        &self,
        username: &str,
        password: &str,
        role: &str,
    ) -> (String, String) {
        let user = self
            .admin_post(
                "/api/users",
                json!({
                    "username": username,
                    "email": format!("{username}@example.com"),
                    "password": password,
                    "role": role,
                }),
            )
            .await
            .expect(StatusCode::OK);
        let token = self.login(username, password).await;
        (user["id"].as_str().unwrap().to_owned(), token)
    }

    /// A self-registered (pending) user; returns its id.
    pub async fn register(&self, username: &str, password: &str) -> String {
        let body = self
            .post(
                "/api/auth/register",
                None,
                json!({
                    "username": username,
                    "email": format!("{username}@example.com"),
                    "password": password,
                    "full_name": "Test User",
                }),
            )
            .await
            .expect(StatusCode::OK);
        body["user_id"].as_str().unwrap().to_owned()
    }
}

impl TestApp {
    /// A customer with an API key; returns (customer id, key).
    pub async fn customer_with_key(&self, name: &str) -> (String, String) {
        let customer = self
            .admin_post(
                "/api/customers",
                json!({"name": name, "address": "1 Main St"}),
            )
            .await
            .expect(StatusCode::OK);
        let id = customer["customer_uuid"].as_str().unwrap().to_owned();
        let key = self
            .admin_post(&format!("/api/customers/{id}/generate-api-key"), json!({}))
            .await
            .expect(StatusCode::OK);
        (id, key["api_key"].as_str().unwrap().to_owned())
    }

    /// Registers an agent with a customer key; returns (agent id, agent token).
    pub async fn register_agent(&self, key: &str, hostname: &str) -> (String, String) {
        let body = self
            .post(
                "/api/agents/register",
                Some(key),
                json!({"hostname": hostname, "ip_address": "10.0.0.7", "port": 3002,
                       "capabilities": ["command_execution", "system_monitoring"], "version": "1.2.3"}),
            )
            .await
            .expect(StatusCode::OK);
        (
            body["agent_id"].as_str().unwrap().to_owned(),
            body["agent_token"].as_str().unwrap().to_owned(),
        )
    }

    /// Sends a command as the admin; returns (task id, status).
    pub async fn command(&self, agent_id: &str, command: &str) -> (String, String) {
        let body = self
            .admin_post(
                &format!("/api/agents/{agent_id}/commands"),
                json!({"command": command, "shell_type": "bash"}),
            )
            .await
            .expect(StatusCode::OK);
        (
            body["task_id"].as_str().unwrap().to_owned(),
            body["status"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn task(&self, agent_id: &str, task_id: &str) -> Value {
        self.admin_get(&format!("/api/agents/{agent_id}/tasks/{task_id}"))
            .await
            .expect(StatusCode::OK)
    }

    /// Waits (up to 10 s) until the task's status is `status`.
    pub async fn wait_for_task(&self, agent_id: &str, task_id: &str, status: &str) -> Value {
        for _ in 0..200 {
            let task = self.task(agent_id, task_id).await;
            if task["status"] == status {
                return task;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "task {task_id} never became {status}: {:?}",
            self.task(agent_id, task_id).await
        )
    }

    pub async fn connect_agent(&self, agent_id: &str, token: &str) -> WsAgent {
        let url = format!(
            "{}/ws/agent/{agent_id}",
            self.base.replace("http://", "ws://")
        );
        let mut request =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
                .unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("agent WebSocket");
        WsAgent { socket }
    }
}

/// An agent speaking the WebSocket protocol by hand, as the spec's example client does.
pub struct WsAgent {
    pub socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl WsAgent {
    pub async fn send(&mut self, message: Value) {
        use futures_util::SinkExt;
        self.socket
            .send(tokio_tungstenite::tungstenite::Message::Text(
                message.to_string().into(),
            ))
            .await
            .unwrap();
    }

    pub async fn send_raw(&mut self, text: &str) {
        use futures_util::SinkExt;
        self.socket
            .send(tokio_tungstenite::tungstenite::Message::Text(text.into()))
            .await
            .unwrap();
    }

    /// The next JSON message (5 s at most); `None` when the server closed the connection.
    pub async fn recv(&mut self) -> Option<Value> {
        use futures_util::StreamExt;
        loop {
            let next = tokio::time::timeout(std::time::Duration::from_secs(5), self.socket.next())
                .await
                .expect("a message within 5 s");
            match next {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) => {
                    return Some(serde_json::from_str(&text).unwrap())
                }
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_)))
                | None
                | Some(Err(_)) => return None,
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The next message of `kind`, skipping others.
    pub async fn recv_type(&mut self, kind: &str) -> Value {
        loop {
            let message = self
                .recv()
                .await
                .unwrap_or_else(|| panic!("closed while waiting for {kind}"));
            if message["type"] == kind {
                return message;
            }
        }
    }

    pub async fn result(&mut self, task_id: &str, output: &str, exit_code: i64) {
        self.send(json!({"type": "task_result", "data": {
            "task_id": task_id, "status": if exit_code == 0 { "completed" } else { "failed" },
            "output": output, "exit_code": exit_code}}))
            .await;
    }
}

/// A PostgreSQL database of its own for one test, dropped afterwards.
pub struct PgDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl PgDatabase {
    pub async fn create() -> Self {
        let admin_url = std::env::var("SKYSHIFT_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!("skyshift_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin_url).await.unwrap_or_else(|err| {
            panic!("PostgreSQL at {admin_url} is needed for these tests (scripts/test starts it): {err}")
        });
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create test database");
        let (base, _) = admin_url
            .rsplit_once('/')
            .expect("database URL with a path");
        Self {
            url: format!("{base}/{name}"),
            admin_url,
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop cannot await; a short-lived runtime on its own thread can.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&admin_url).await {
                    let _ = conn.execute(sql.as_str()).await;
                }
            });
        })
        .join();
    }
}

/// A WebSocket to the test server.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl TestApp {
    /// Opens a support session as `token`'s user.
    pub async fn create_session(&self, token: &str, body: Value) -> Value {
        self.post("/api/sessions", Some(token), body)
            .await
            .expect(StatusCode::OK)
    }

    /// The session as `GET /api/sessions` shows it to the admin.
    pub async fn session(&self, id: i64) -> Value {
        let list = self.admin_get("/api/sessions").await.expect(StatusCode::OK);
        list.as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("session {id} not listed"))
    }

    /// Waits (up to 10 s) until the session's JSON satisfies `check`; returns it.
    pub async fn wait_for_session(
        &self,
        id: i64,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let session = self.session(id).await;
            if check(&session) {
                return session;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "session {id} never got {what}: {session}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.base.replacen("http://", "ws://", 1))
    }

    /// Opens a WebSocket; `Err(status)` when the server refuses the upgrade.
    pub async fn ws(&self, path: &str, headers: &[(&str, &str)]) -> Result<Ws, StatusCode> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = self.ws_url(path).into_client_request().unwrap();
        for (name, value) in headers {
            request.headers_mut().insert(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((ws, _)) => Ok(ws),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(StatusCode::from_u16(response.status().as_u16()).unwrap())
            }
            Err(err) => panic!("WebSocket to {path} failed: {err}"),
        }
    }
}
