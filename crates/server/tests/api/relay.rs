//! The desktop path end to end: a UDP client and viewer written here exchange frames and input
//! through the server's relay (with lost chunks and strangers' packets), and the browser bridge
//! hands whole JPEGs to a WebSocket and input back to the client.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use skyshift_proto::desk::{
    chunk_frame, Control, Join, KeyEvent, MouseButton, MouseEvent, Packet, PeerRole, Reassembler,
};
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{TestApp, Ws};
use crate::on_both_backends;

on_both_backends!(client_and_viewer_over_udp, browser_bridge);

const WAIT: Duration = Duration::from_secs(5);

struct Peer {
    socket: UdpSocket,
}

impl Peer {
    async fn new(port: u64) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        socket.connect(("127.0.0.1", port as u16)).await.unwrap();
        Self { socket }
    }

    async fn send(&self, packet: &Packet) {
        self.socket.send(&packet.encode()).await.unwrap();
    }

    async fn recv(&self) -> Packet {
        let mut buf = vec![0; 65_536];
        let len = tokio::time::timeout(WAIT, self.socket.recv(&mut buf))
            .await
            .expect("a datagram in time")
            .unwrap();
        Packet::decode(&buf[..len]).expect("a valid packet")
    }

    /// Nothing arrives for a little while.
    async fn quiet(&self) -> bool {
        let mut buf = vec![0; 65_536];
        tokio::time::timeout(Duration::from_millis(200), self.socket.recv(&mut buf))
            .await
            .is_err()
    }

    async fn control(&self) -> Control {
        match self.recv().await {
            Packet::Control(json) => Control::parse(&json).expect("a known control message"),
            other => panic!("expected a control packet, got {other:?}"),
        }
    }

    async fn hello(&self, join: Join) -> Control {
        self.send(&Packet::control(&Control::Hello { join })).await;
        self.control().await
    }
}

async fn ticket(app: &TestApp, id: i64, token: &str) -> String {
    app.post(
        &format!("/api/sessions/{id}/join-ticket"),
        Some(token),
        json!({}),
    )
    .await
    .expect(StatusCode::OK)["ticket"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn mouse() -> Packet {
    Packet::Mouse(MouseEvent {
        x: 640,
        y: 360,
        button: MouseButton::Left,
        down: true,
    })
}

async fn client_and_viewer_over_udp(app: TestApp) {
    let session = app.create_session(&app.admin_token, json!({})).await;
    let id = session["id"].as_i64().unwrap();
    let code = session["session_code"].as_str().unwrap().to_owned();
    let port = session["udp_port"].as_u64().unwrap();

    let client = Peer::new(port).await;
    let wrong = if code == "111111111" {
        "222222222"
    } else {
        "111111111"
    };
    let refused = client.hello(Join::Client { code: wrong.into() }).await;
    assert!(matches!(refused, Control::Error { .. }), "{refused:?}");
    let ack = client.hello(Join::Client { code: code.clone() }).await;
    assert_eq!(
        ack,
        Control::HelloAck {
            role: PeerRole::Client,
            session_id: id
        }
    );
    app.wait_for_session(id, "active", |s| s["status"] == "active")
        .await;

    let viewer = Peer::new(port).await;
    let used = ticket(&app, id, &app.admin_token).await;
    let ack = viewer
        .hello(Join::Viewer {
            ticket: used.clone(),
        })
        .await;
    assert_eq!(
        ack,
        Control::HelloAck {
            role: PeerRole::Viewer,
            session_id: id
        }
    );
    // The ticket was single use.
    let thief = Peer::new(port).await;
    let refused = thief.hello(Join::Viewer { ticket: used }).await;
    assert!(matches!(refused, Control::Error { .. }));

    // Frame 1 loses a chunk; frame 2 arrives whole. The viewer shows frame 2 only.
    let first: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let second: Vec<u8> = (0..7000u32).map(|i| (i % 241) as u8).collect();
    let first_chunks = chunk_frame(1, &first, 1451).unwrap();
    let second_chunks = chunk_frame(2, &second, 1451).unwrap();
    for (index, chunk) in first_chunks.iter().enumerate() {
        if index != 1 {
            client.send(&Packet::Frame(chunk.clone())).await;
        }
    }
    // A stranger's frame is not relayed.
    let stranger = Peer::new(port).await;
    stranger
        .send(&Packet::Frame(
            chunk_frame(3, b"evil", 1451).unwrap().remove(0),
        ))
        .await;
    for chunk in second_chunks.iter().rev() {
        client.send(&Packet::Frame(chunk.clone())).await;
    }
    let expected = first_chunks.len() - 1 + second_chunks.len();
    let mut reassembler = Reassembler::new();
    let mut frames = Vec::new();
    for _ in 0..expected {
        match viewer.recv().await {
            Packet::Frame(chunk) => {
                assert_ne!(chunk.frame_id, 3, "a stranger's frame came through");
                frames.extend(reassembler.push(chunk));
            }
            other => panic!("expected frame chunks, got {other:?}"),
        }
    }
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].frame_id, 2);
    assert_eq!(frames[0].image, second);
    assert!(viewer.quiet().await);

    // Input goes from the viewer to the client; control both ways.
    viewer.send(&mouse()).await;
    assert_eq!(client.recv().await, mouse());
    let key = Packet::Keyboard(KeyEvent {
        key: 0x41,
        down: false,
    });
    viewer.send(&key).await;
    assert_eq!(client.recv().await, key);
    client
        .send(&Packet::control(&Control::ScreenInfo {
            width: 1920,
            height: 1080,
        }))
        .await;
    assert_eq!(
        viewer.control().await,
        Control::ScreenInfo {
            width: 1920,
            height: 1080
        }
    );
    // A stranger's input never reaches the client.
    stranger.send(&mouse()).await;
    assert!(client.quiet().await);
    viewer.send(&Packet::control(&Control::Ping)).await;
    assert_eq!(viewer.control().await, Control::Pong);

    let stats = app
        .wait_for_session(id, "its counters", |s| s["stats"]["dropped_packets"] == 2)
        .await["stats"]
        .clone();
    assert_eq!(stats["frames"], 2);
    assert_eq!(stats["viewers"], 1);
    let sent_bytes: usize = first_chunks
        .iter()
        .enumerate()
        .filter(|(index, _)| *index != 1)
        .map(|(_, c)| c)
        .chain(&second_chunks)
        .map(|c| Packet::Frame(c.clone()).encode().len())
        .sum();
    assert_eq!(stats["bytes"], sent_bytes as u64);

    // Closing tells both peers.
    app.delete(&format!("/api/sessions/{id}"), Some(&app.admin_token))
        .await
        .expect(StatusCode::OK);
    assert_eq!(client.control().await, Control::Closed);
    assert_eq!(viewer.control().await, Control::Closed);
    let closed = app.session(id).await;
    assert_eq!(
        closed["stats"]["frames"], 2,
        "counters are kept after close"
    );
}

async fn next_binary(ws: &mut Ws) -> Vec<u8> {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("the socket is open")
            .unwrap();
        match message {
            Message::Binary(data) => return data.to_vec(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected a frame, got {other:?}"),
        }
    }
}

/// Waits until the server closes the socket.
async fn closes(ws: &mut Ws, within: Duration) -> Option<Value> {
    let mut last_text = None;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("the socket closes in time");
        match next {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return last_text,
            Some(Ok(Message::Text(text))) => last_text = serde_json::from_str(&text).ok(),
            Some(Ok(_)) => {}
        }
    }
}

async fn browser_bridge(app: TestApp) {
    let (_, alice) = app.create_user("alice", "alice-pass-1", "tech").await;
    let (_, bob) = app.create_user("bob", "bob-pass-12", "tech").await;
    let session = app.create_session(&alice, json!({})).await;
    let id = session["id"].as_i64().unwrap();
    let code = session["session_code"].as_str().unwrap().to_owned();
    let client = Peer::new(session["udp_port"].as_u64().unwrap()).await;
    client.hello(Join::Client { code }).await;

    let path = format!("/ws/sessions/{id}/view");
    assert_eq!(
        app.ws(&path, &[]).await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        app.ws(&format!("{path}?token={bob}"), &[]).await.err(),
        Some(StatusCode::FORBIDDEN),
        "another tech's session"
    );
    assert_eq!(
        app.ws(
            &format!("{path}?token={alice}"),
            &[("origin", "https://evil.example.net")]
        )
        .await
        .err(),
        Some(StatusCode::FORBIDDEN),
        "cross-site"
    );
    let host = app.base.trim_start_matches("http://").to_owned();
    let mut browser = app
        .ws(
            &format!("{path}?token={alice}"),
            &[("origin", &format!("http://{host}"))],
        )
        .await
        .expect("same-origin browser");
    let auth = format!("Bearer {}", app.admin_token);
    let mut admin_browser = app
        .ws(&path, &[("authorization", &auth)])
        .await
        .expect("an admin with the header");
    app.wait_for_session(id, "two viewers", |s| s["stats"]["viewers"] == 2)
        .await;

    // Whole JPEGs, one binary message each, with a chunk of another frame lost on the way.
    let jpeg: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let lost = chunk_frame(10, &[1; 3000], 1451).unwrap();
    client.send(&Packet::Frame(lost[0].clone())).await;
    for chunk in chunk_frame(11, &jpeg, 1451).unwrap() {
        client.send(&Packet::Frame(chunk)).await;
    }
    assert_eq!(next_binary(&mut browser).await, jpeg);
    assert_eq!(next_binary(&mut admin_browser).await, jpeg);

    // Browser input reaches the client as packets; nonsense is skipped.
    browser
        .send(Message::Text("not json".into()))
        .await
        .unwrap();
    browser
        .send(Message::Text(
            json!({"type": "mouse", "x": 640, "y": 360, "button": "left", "down": true})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    assert_eq!(client.recv().await, mouse());
    browser
        .send(Message::Text(
            json!({"type": "key", "key": 13, "down": true})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    assert_eq!(
        client.recv().await,
        Packet::Keyboard(KeyEvent {
            key: 13,
            down: true
        })
    );

    // A password change ends alice's token: her bridge closes within a second (plus slack).
    let started = tokio::time::Instant::now();
    app.post(
        "/api/users/change-password",
        Some(&alice),
        json!({"current_password": "alice-pass-1", "new_password": "alice-pass-2"}),
    )
    .await
    .expect(StatusCode::OK);
    closes(&mut browser, Duration::from_secs(3)).await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );

    // Closing the session ends the admin's bridge with a `closed` message.
    app.delete(&format!("/api/sessions/{id}"), Some(&app.admin_token))
        .await
        .expect(StatusCode::OK);
    let last = closes(&mut admin_browser, Duration::from_secs(3)).await;
    assert_eq!(last, Some(json!({"type": "closed"})));
}

/// A browser that does not read does not make the server queue frames: it later gets far fewer
/// frames than were sent, then the newest. (SQLite only: the store plays no part.)
#[tokio::test]
async fn slow_browser_skips_frames() {
    let app = crate::helpers::spawn_app(crate::helpers::Db::Sqlite).await;
    let session = app.create_session(&app.admin_token, json!({})).await;
    let id = session["id"].as_i64().unwrap();
    let client = Peer::new(session["udp_port"].as_u64().unwrap()).await;
    client
        .hello(Join::Client {
            code: session["session_code"].as_str().unwrap().into(),
        })
        .await;
    let mut browser = app
        .ws(
            &format!("/ws/sessions/{id}/view?token={}", app.admin_token),
            &[],
        )
        .await
        .unwrap();
    app.wait_for_session(id, "a viewer", |s| s["stats"]["viewers"] == 1)
        .await;

    // 24 frames of 1 MB, paced so the relay keeps up, while the browser reads nothing: more
    // than the socket buffers between server and browser can hold.
    const SENT: u64 = 24;
    for frame_id in 1..=SENT {
        let image = vec![frame_id as u8; 1_000_000];
        for (index, chunk) in chunk_frame(frame_id, &image, 8192)
            .unwrap()
            .into_iter()
            .enumerate()
        {
            client.send(&Packet::Frame(chunk)).await;
            // Small bursts: the relay's socket buffer holds only so many datagrams.
            if index % 8 == 7 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Now read, and keep offering a small final frame until it shows up.
    let mut received = Vec::new();
    let mut final_id = 1000;
    'outer: loop {
        final_id += 1;
        for chunk in chunk_frame(final_id, b"final", 1451).unwrap() {
            client.send(&Packet::Frame(chunk)).await;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, browser.next()).await {
            if let Message::Binary(data) = message {
                if &data[..] == b"final" {
                    break 'outer;
                }
                assert_eq!(data.len(), 1_000_000, "only whole frames");
                received.push(data[0]);
            }
        }
        assert!(final_id < 1100, "the final frame never arrived");
    }
    println!("slow browser got frames {received:?} of 1..={SENT}");
    assert!(
        received.windows(2).all(|pair| pair[0] < pair[1]),
        "frames in order: {received:?}"
    );
    assert!(
        (received.len() as u64) < SENT,
        "a slow browser skips frames instead of queueing them all: got {received:?}"
    );
}
