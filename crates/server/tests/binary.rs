//! The real `skyshift-server` binary: HTTPS with the generated certificate, restarts that keep
//! state, graceful shutdown, start-up errors, the first admin's password, and logs free of
//! secrets.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_skyshift-server");
const ADMIN_PASSWORD: &str = "first-admin-Pw-7731";

/// A running server process whose output is collected.
struct Server {
    child: Child,
    http: String,
    https: String,
    output: Arc<Mutex<String>>,
}

fn start(data_dir: &Path, admin_password: Option<&str>, extra: &[&str]) -> Server {
    let mut command = Command::new(BIN);
    command
        .args(["--data-dir", data_dir.to_str().unwrap()])
        .args([
            "--bind",
            "127.0.0.1",
            "--http-port",
            "0",
            "--https-port",
            "0",
        ])
        .args(["--log-format", "json"])
        .args(extra)
        .env("RUST_LOG", "debug")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match admin_password {
        Some(password) => command.env("SKYSHIFT_ADMIN_PASSWORD", password),
        None => command.env_remove("SKYSHIFT_ADMIN_PASSWORD"),
    };
    let mut child = command.spawn().expect("start skyshift-server");
    let output = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    for stream in [
        Box::new(stdout) as Box<dyn std::io::Read + Send>,
        Box::new(stderr),
    ] {
        let output = output.clone();
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if let Ok(entry) = serde_json::from_str::<Value>(&line) {
                    let fields = &entry["fields"];
                    if fields["message"] == "skyshift-server listening" {
                        let _ = tx.send((
                            fields["http"].as_str().unwrap().to_owned(),
                            fields["https"].as_str().unwrap().to_owned(),
                        ));
                    }
                }
                let mut output = output.lock().unwrap();
                output.push_str(&line);
                output.push('\n');
            }
        });
    }
    let (http, https) = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("server did not start:\n{}", output.lock().unwrap())
        });
    Server {
        child,
        http: format!("http://{http}"),
        https: format!("https://localhost:{}", https.rsplit(':').next().unwrap()),
        output,
    }
}

impl Server {
    /// SIGTERM, then the exit status.
    fn stop(mut self) -> (ExitStatus, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let status = wait_timeout(&mut self.child, Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(100)); // let the readers drain
        let output = self.output.lock().unwrap().clone();
        (status, output)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn wait_timeout(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(std::time::Instant::now() < deadline, "process did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn trusting(cert: &Path) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pem = std::fs::read(cert).unwrap();
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap()
}

async fn post(
    client: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut request = client.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn https_restart_and_no_secrets_in_logs() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), Some(ADMIN_PASSWORD), &[]);
    let cert_path = dir.path().join("tls/cert.pem");
    let cert_before = std::fs::read(&cert_path).unwrap();
    let client = trusting(&cert_path);

    // HTTPS answers with the generated certificate, and a client trusting only the system
    // roots refuses it.
    let health = client
        .get(format!("{}/api/health", server.https))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let stranger = reqwest::Client::builder().build().unwrap();
    assert!(stranger
        .get(format!("{}/api/health", server.https))
        .send()
        .await
        .is_err());
    // Same app on plain HTTP.
    let health = client
        .get(format!("{}/api/health", server.http))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    let (status, body) = post(
        &client,
        format!("{}/api/auth/login", server.https),
        None,
        json!({"username": "admin", "password": ADMIN_PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let admin_token = body["access_token"].as_str().unwrap().to_owned();

    // A walk through the secrets a server sees: passwords, tokens, failed attempts.
    let user_password = "user-Secret-5521";
    let new_password = "user-Secret-9902";
    let typo_password = "Typed-Into-Username-0042";
    let (status, _) = post(
        &client,
        format!("{}/api/users", server.https),
        Some(&admin_token),
        json!({"username": "yara", "email": "yara@example.com", "password": user_password}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = post(
        &client,
        format!("{}/api/auth/login", server.https),
        None,
        json!({"username": "yara", "password": user_password}),
    )
    .await;
    let user_token = body["access_token"].as_str().unwrap().to_owned();
    let (status, _) = post(
        &client,
        format!("{}/api/users/change-password", server.https),
        Some(&user_token),
        json!({"current_password": user_password, "new_password": new_password}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = post(
        &client,
        format!("{}/api/auth/login", server.http),
        None,
        json!({"username": typo_password, "password": "wrong-password-1"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = post(
        &client,
        format!("{}/api/auth/register", server.http),
        None,
        json!({"username": "zed", "email": "zed@example.com", "password": "short"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let response = client
        .get(format!(
            "{}/api/users/profile?token={admin_token}",
            server.http
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let (status, first_output) = server.stop();
    assert!(
        status.success(),
        "graceful shutdown exits 0: {status:?}\n{first_output}"
    );
    assert!(first_output.contains("shutting down"));

    // A restart keeps the certificate, the users and the JWT secret.
    let server = start(dir.path(), None, &[]);
    assert_eq!(std::fs::read(&cert_path).unwrap(), cert_before);
    let profile = client
        .get(format!("{}/api/users/profile", server.https))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        profile.status(),
        StatusCode::OK,
        "a token from before the restart still works"
    );
    let (status, _) = post(
        &client,
        format!("{}/api/auth/login", server.https),
        None,
        json!({"username": "yara", "password": new_password}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !dir.path().join("initial-admin-password").exists(),
        "no password was generated"
    );
    let (_, second_output) = server.stop();

    let logs = format!("{first_output}{second_output}");
    assert!(
        logs.contains("signed in"),
        "the log is the server's own:\n{logs}"
    );
    for secret in [
        ADMIN_PASSWORD,
        user_password,
        new_password,
        typo_password,
        "short",
        &admin_token,
        &user_token,
    ] {
        assert!(!logs.contains(secret), "the log carries a secret: {secret}");
    }
    let jwt_signature = admin_token.rsplit('.').next().unwrap();
    assert!(!logs.contains(jwt_signature));
}

#[tokio::test]
async fn first_start_generates_the_admin_password() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), None, &[]);
    let file = dir.path().join("initial-admin-password");
    let password = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert!(password.len() >= 20);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let key = dir.path().join("tls/key.pem");
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let client = trusting(&dir.path().join("tls/cert.pem"));
    let (status, body) = post(
        &client,
        format!("{}/api/auth/login", server.https),
        None,
        json!({"email": "admin@localhost", "password": password}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"]["full_name"], "System Administrator");
    let (_, output) = server.stop();
    // Printed exactly once, on stdout, never in a log line.
    assert_eq!(output.matches(password.as_str()).count(), 1, "{output}");
    let line = output
        .lines()
        .find(|l| l.contains(password.as_str()))
        .unwrap();
    assert!(line.starts_with("Created the administrator"), "{line}");
}

#[test]
fn a_port_in_use_is_one_clear_line_and_exit_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args([
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--bind",
            "127.0.0.1",
        ])
        .args(["--http-port", &port, "--https-port", "0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(lines[0].contains("--http-port"), "{stderr}");
}

#[test]
fn a_bad_database_url_is_one_clear_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args([
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--bind",
            "127.0.0.1",
        ])
        .args([
            "--http-port",
            "0",
            "--https-port",
            "0",
            "--database-url",
            "mysql://nope",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unsupported database URL"), "{stderr}");
}

#[tokio::test]
async fn operator_certificate_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_path, key_path) = (
        dir.path().join("op-cert.pem"),
        dir.path().join("op-key.pem"),
    );
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let data = dir.path().join("data");
    let server = start(
        &data,
        Some(ADMIN_PASSWORD),
        &[
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
        ],
    );
    let client = trusting(&cert_path);
    let health = client
        .get(format!("{}/api/health", server.https))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(
        !data.join("tls/cert.pem").exists(),
        "no certificate generated beside the operator's"
    );
    server.stop();
}

/// Open sessions survive a restart: the relay comes back on the session's own port, so the code
/// and port the customer was given keep working.
#[tokio::test]
async fn sessions_survive_a_restart() {
    use skyshift_proto::desk::{Control, Join, Packet};

    let dir = tempfile::tempdir().unwrap();
    // A range of its own, away from the 50000-60000 the API tests share.
    let range = ["--udp-port-range", "61150-61159"];
    let server = start(dir.path(), Some(ADMIN_PASSWORD), &range);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let (_, body) = post(
        &client,
        format!("{}/api/auth/login", server.http),
        None,
        json!({"username": "admin", "password": ADMIN_PASSWORD}),
    )
    .await;
    let token = body["access_token"].as_str().unwrap().to_owned();
    let (status, session) = post(
        &client,
        format!("{}/api/sessions", server.http),
        Some(&token),
        json!({"customer_name": "Restart Customer"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let code = session["session_code"].as_str().unwrap().to_owned();
    let port = session["udp_port"].as_u64().unwrap() as u16;
    let (status, output) = server.stop();
    assert!(status.success(), "{output}");

    let server = start(dir.path(), None, &range);
    let info: Value = client
        .get(format!("{}/api/sessions/{code}/info", server.http))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["udp_port"], port);
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp.connect(("127.0.0.1", port)).await.unwrap();
    let hello = Packet::control(&Control::Hello {
        join: Join::Client { code },
    })
    .encode();
    let mut buf = [0u8; 2048];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let reply = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no relay on port {port} after the restart:\n{}",
            server.output.lock().unwrap()
        );
        // Until the relay is back, the port refuses (an error on receive) or stays silent.
        let _ = udp.send(&hello).await;
        if let Ok(Ok(len)) =
            tokio::time::timeout(Duration::from_millis(200), udp.recv(&mut buf)).await
        {
            break Packet::decode(&buf[..len]).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let Packet::Control(json) = reply else {
        panic!("expected a control packet");
    };
    assert!(
        matches!(Control::parse(&json), Some(Control::HelloAck { .. })),
        "{json}"
    );
}
