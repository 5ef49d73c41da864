//! The agent over HTTPS against the server's own (generated) certificate: trusted by the
//! `server_cert_sha256` pin that `download-config` puts in `id.ini`, refused with a wrong pin.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use skyshift_server::server::{serve, Listeners};
use skyshift_server::{accounts, build_app, AppState, Config};

use crate::harness::ADMIN_PASSWORD;

struct Https {
    http: String,
    https_port: u16,
    token: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Https {
    async fn start() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let state = AppState::open(Config::for_data_dir(dir.path()))
            .await
            .unwrap();
        accounts::ensure_admin(&state, Some(ADMIN_PASSWORD.into()), dir.path())
            .await
            .unwrap();
        let listeners = Listeners::bind(IpAddr::V4(Ipv4Addr::LOCALHOST), 0, 0).unwrap();
        let http = format!("http://{}", listeners.http.local_addr().unwrap());
        let https_port = listeners.https.local_addr().unwrap().port();
        let tls =
            axum_server::tls_rustls::RustlsConfig::from_pem_file(&state.tls.cert, &state.tls.key)
                .await
                .unwrap();
        let app = build_app(state.clone());
        tokio::spawn(serve(app, listeners, tls, std::future::pending()));
        let client = reqwest::Client::new();
        let login: Value = client
            .post(format!("{http}/api/auth/login"))
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Https {
            token: login["access_token"].as_str().unwrap().to_owned(),
            http,
            https_port,
            client,
            _dir: dir,
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let response = self
            .client
            .post(format!("{}{path}", self.http))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        let response = self
            .client
            .get(format!("{}{path}", self.http))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response
    }

    /// `id.ini` for a new customer, as download-config hands it out.
    async fn id_ini(&self) -> String {
        let customer = self.post("/api/customers", json!({"name": "Pinned"})).await;
        let id = customer["customer_uuid"].as_str().unwrap();
        self.post(&format!("/api/customers/{id}/generate-api-key"), json!({}))
            .await;
        self.get(&format!("/api/customers/{id}/download-config"))
            .await
            .text()
            .await
            .unwrap()
    }

    async fn agents(&self) -> Vec<Value> {
        let list: Value = self.get("/api/agents").await.json().await.unwrap();
        list["agents"].as_array().cloned().unwrap_or_default()
    }
}

fn start_agent(dir: &std::path::Path, ini: &str, https_port: u16) -> tokio::process::Child {
    std::fs::write(dir.join("id.ini"), ini).unwrap();
    let log = std::fs::File::create(dir.join("agent.log")).unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_skyshift-agent"))
        .arg("--config")
        .arg(dir.join("id.ini"))
        .args([
            "--server",
            &format!("https://127.0.0.1:{https_port}"),
            "--heartbeat",
            "1s",
        ])
        .env("RUST_LOG", "skyshift_agent=debug")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_trusted_by_the_pin_from_id_ini_and_refused_with_another() {
    let server = Https::start().await;
    let ini = server.id_ini().await;
    assert!(ini.contains("server_cert_sha256"), "{ini}");

    let good = tempfile::tempdir().unwrap();
    let _agent = start_agent(good.path(), &ini, server.https_port);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server
        .agents()
        .await
        .iter()
        .any(|a| a["websocket_connected"] == true)
    {
        let log = std::fs::read_to_string(good.path().join("agent.log")).unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "never connected over wss:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let wrong_pin: String = ini
        .lines()
        .map(|line| {
            if line.starts_with("server_cert_sha256") {
                format!("server_cert_sha256 = {}", "00".repeat(32))
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let bad = tempfile::tempdir().unwrap();
    let _impostor_check = start_agent(bad.path(), &wrong_pin, server.https_port);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = std::fs::read_to_string(bad.path().join("agent.log")).unwrap_or_default();
        if log.contains("not the pinned") {
            break;
        }
        assert!(Instant::now() < deadline, "no pin failure logged:\n{log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        server.agents().await.len(),
        1,
        "the agent with the wrong pin never registered"
    );
}
