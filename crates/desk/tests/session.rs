//! The whole desktop path with real processes: Xvfb, the server, `skyshift-client` sharing the
//! Xvfb screen, and `skyshift-viewer` (or the browser bridge) watching and driving it.

mod xvfb;

use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use skyshift_desk::encode::decode;
use skyshift_server::config::PortRange;
use skyshift_server::{accounts, build_app, AppState, Config};
use x11rb::protocol::xproto::EventMask;
use x11rb::protocol::Event;
use xvfb::{Painter, Xvfb};

const CLIENT: &str = env!("CARGO_BIN_EXE_skyshift-client");
const VIEWER: &str = env!("CARGO_BIN_EXE_skyshift-viewer");
const ADMIN_PASSWORD: &str = "desk-admin-pass-1";

struct Stack {
    xvfb: Xvfb,
    base: String,
    token: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start() -> Stack {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _ = tracing_subscriber::fmt()
        .with_env_filter("skyshift_server=info")
        .try_init();
    let xvfb = Xvfb::start(320, 240);
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_data_dir(dir.path());
    config.udp_port_range = PortRange {
        first: 41000,
        last: 41999,
    };
    let state = AppState::open(config).await.unwrap();
    accounts::ensure_admin(&state, Some(ADMIN_PASSWORD.into()), dir.path())
        .await
        .unwrap();
    state.start_background().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = build_app(state);
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Stack {
        xvfb,
        base,
        token: login["access_token"].as_str().unwrap().to_owned(),
        http,
        _dir: dir,
    }
}

impl Stack {
    /// A new session: (id, code).
    async fn session(&self) -> (i64, String) {
        let session: Value = self
            .http
            .post(format!("{}/api/sessions", self.base))
            .bearer_auth(&self.token)
            .json(&json!({"customer_name": "Test Customer"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            session["id"].as_i64().unwrap(),
            session["session_code"].as_str().unwrap().to_owned(),
        )
    }

    async fn session_json(&self, id: i64) -> Value {
        let list: Value = self
            .http
            .get(format!("{}/api/sessions", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap()
            .clone()
    }

    /// Starts `skyshift-client` on the Xvfb screen and waits until the session is active.
    async fn client(&self, id: i64, code: &str) -> Child {
        let child = Command::new(CLIENT)
            .args([
                "--server",
                &self.base,
                "--display",
                &self.xvfb.display,
                code,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.session_json(id).await["status"] != "active" {
            assert!(
                Instant::now() < deadline,
                "the client never made the session active"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Joined the relay too: frames are flowing.
        while self.session_json(id).await["stats"]["frames"]
            .as_u64()
            .unwrap_or(0)
            == 0
        {
            assert!(Instant::now() < deadline, "no frames from the client");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        child
    }

    fn viewer(&self, id: i64, args: &[&str]) -> Output {
        let output = Command::new(VIEWER)
            .args([
                "--server",
                &self.base,
                "--token",
                &self.token,
                "--session",
                &id.to_string(),
                "--seconds",
                "20",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "viewer failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }
}

fn close_to((r, g, b): (u8, u8, u8), (er, eg, eb): (u8, u8, u8)) -> bool {
    r.abs_diff(er) <= 16 && g.abs_diff(eg) <= 16 && b.abs_diff(eb) <= 16
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "process did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_sees_the_screen_and_its_changes() {
    let stack = start().await;
    let painter = Painter::connect(&stack.xvfb.display);
    painter.fill(0, 0, 320, 240, 0x00_d0_30_30);
    let (id, code) = stack.session().await;
    let mut client = stack.client(id, &code).await;

    let frames = tempfile::tempdir().unwrap();
    let output = stack.viewer(
        id,
        &[
            "--frames",
            "2",
            "--save-frames",
            frames.path().to_str().unwrap(),
        ],
    );
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(report.contains("2 frames"), "{report}");
    let picture = decode(&std::fs::read(frames.path().join("frame-000001.jpg")).unwrap()).unwrap();
    assert_eq!((picture.width, picture.height), (320, 240));
    assert!(
        close_to(picture.pixel(160, 120), (0xd0, 0x30, 0x30)),
        "{:?}",
        picture.pixel(160, 120)
    );

    // A change is seen within a few frames.
    painter.fill(0, 0, 320, 240, 0x00_20_c0_40);
    let changed = tempfile::tempdir().unwrap();
    stack.viewer(
        id,
        &[
            "--frames",
            "4",
            "--save-frames",
            changed.path().to_str().unwrap(),
        ],
    );
    let seen = (1..=4).any(|n| {
        let jpeg = std::fs::read(changed.path().join(format!("frame-{n:06}.jpg"))).unwrap();
        close_to(decode(&jpeg).unwrap().pixel(10, 10), (0x20, 0xc0, 0x40))
    });
    assert!(seen, "the new colour never arrived");
    let _ = client.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_screen_costs_almost_nothing() {
    let stack = start().await;
    let painter = Painter::connect(&stack.xvfb.display);
    painter.fill(0, 0, 320, 240, 0x00_40_40_40);
    let (id, code) = stack.session().await;
    let mut client = stack.client(id, &code).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = stack.session_json(id).await["stats"]["frames"]
        .as_u64()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let static_frames = stack.session_json(id).await["stats"]["frames"]
        .as_u64()
        .unwrap()
        - before;
    // 4 s at 15 fps would be 60 frames; only the keyframe (every 3 s) is sent.
    assert!(
        static_frames <= 2,
        "{static_frames} frames for a still screen"
    );

    // A moving screen is sent every frame.
    let moving_before = stack.session_json(id).await["stats"]["frames"]
        .as_u64()
        .unwrap();
    for step in 0..20u16 {
        painter.fill((step * 10) as i16, 0, 10, 10, 0x00_ff_ff_ff);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let moving = stack.session_json(id).await["stats"]["frames"]
        .as_u64()
        .unwrap()
        - moving_before;
    assert!(
        moving >= 10,
        "only {moving} frames while the screen changed"
    );
    let _ = client.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicks_and_typing_reach_the_customers_screen() {
    let stack = start().await;
    let painter = Painter::connect(&stack.xvfb.display);
    painter.window(EventMask::BUTTON_PRESS | EventMask::KEY_PRESS);
    let (id, code) = stack.session().await;
    let mut client = stack.client(id, &code).await;

    stack.viewer(
        id,
        &["--frames", "1", "--click", "100,50", "--type", "Hi there"],
    );
    let press = painter.events(1);
    match &press[0] {
        Event::ButtonPress(event) => {
            assert_eq!((event.detail, event.root_x, event.root_y), (1, 100, 50));
        }
        other => panic!("expected a click, got {other:?}"),
    }
    assert_eq!(painter.typed_until("Hi there"), "Hi there");
    let _ = client.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_session_ends_the_client_with_success() {
    let stack = start().await;
    let (id, code) = stack.session().await;
    let mut client = stack.client(id, &code).await;
    let response = stack
        .http
        .delete(format!("{}/api/sessions/{id}", stack.base))
        .bearer_auth(&stack.token)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let status = wait_exit(&mut client, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    let mut stdout = String::new();
    std::io::Read::read_to_string(client.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    assert!(stdout.contains("ended the session"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_disconnects_cleanly() {
    let stack = start().await;
    let (id, code) = stack.session().await;
    let mut client = stack.client(id, &code).await;
    let status = Command::new("kill")
        .args(["-INT", &client.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        wait_exit(&mut client, Duration::from_secs(10)).code(),
        Some(0)
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while stack.session_json(id).await["status"] != "disconnected" {
        assert!(
            Instant::now() < deadline,
            "the session never became disconnected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_code_is_one_clear_sentence_and_a_failure() {
    let stack = start().await;
    let output = Command::new(CLIENT)
        .args([
            "--server",
            &stack.base,
            "--display",
            &stack.xvfb.display,
            "123456789",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("no session with code 123456789"),
        "{stderr}"
    );

    let output = Command::new(CLIENT)
        .args([
            "--server",
            "http://127.0.0.1:9",
            "--display",
            &stack.xvfb.display,
            "123456789",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot reach the server"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_bridge_carries_the_same_stream() {
    use futures_util::StreamExt;
    let stack = start().await;
    let painter = Painter::connect(&stack.xvfb.display);
    painter.fill(0, 0, 320, 240, 0x00_30_30_d0);
    let (id, code) = stack.session().await;
    let mut client = stack.client(id, &code).await;
    let url = format!(
        "{}/ws/sessions/{id}/view?token={}",
        stack.base.replace("http://", "ws://"),
        stack.token
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let jpeg = loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Binary(bytes) = message {
            break bytes;
        }
    };
    let picture = decode(&jpeg).unwrap();
    assert_eq!((picture.width, picture.height), (320, 240));
    assert!(close_to(picture.pixel(50, 50), (0x30, 0x30, 0xd0)));
    let _ = client.kill();
}
