//! The signaling WebSocket `/ws/session/{code}`: the spec's lifecycle.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{TestApp, Ws};
use crate::on_both_backends;

on_both_backends!(signaling_lifecycle, closing_tells_the_client);

async fn send(ws: &mut Ws, value: Value) {
    ws.send(Message::Text(value.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON text message, or `None` when the socket closes.
async fn next_json(ws: &mut Ws) -> Option<Value> {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message in time");
        match next {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return None,
            Some(Ok(Message::Text(text))) => return Some(serde_json::from_str(&text).unwrap()),
            Some(Ok(_)) => {}
        }
    }
}

async fn signaling_lifecycle(app: TestApp) {
    let session = app.create_session(&app.admin_token, json!({})).await;
    let id = session["id"].as_i64().unwrap();
    let code = session["session_code"].as_str().unwrap().to_owned();
    let path = format!("/ws/session/{code}");

    let mut ws = app.ws(&path, &[]).await.expect("connects");
    app.wait_for_session(id, "active", |s| s["status"] == "active")
        .await;
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next_json(&mut ws).await, Some(json!({"type": "pong"})));
    // Nonsense is skipped, the socket stays usable.
    ws.send(Message::Text("{not json".into())).await.unwrap();
    send(&mut ws, json!({"type": "no_such_type"})).await;
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next_json(&mut ws).await, Some(json!({"type": "pong"})));

    send(&mut ws, json!({"type": "disconnect"})).await;
    assert_eq!(next_json(&mut ws).await, None, "the server closes");
    app.wait_for_session(id, "disconnected", |s| s["status"] == "disconnected")
        .await;

    let mut ws = app.ws(&path, &[]).await.expect("reconnects");
    app.wait_for_session(id, "active again", |s| s["status"] == "active")
        .await;
    ws.close(None).await.unwrap();
    app.wait_for_session(id, "disconnected", |s| s["status"] == "disconnected")
        .await;

    // An oversized message ends the connection instead of being buffered.
    let mut ws = app.ws(&path, &[]).await.expect("reconnects");
    app.wait_for_session(id, "active again", |s| s["status"] == "active")
        .await;
    let _ = ws.send(Message::Text("x".repeat(200 * 1024).into())).await;
    assert_eq!(next_json(&mut ws).await, None);
    app.wait_for_session(id, "disconnected", |s| s["status"] == "disconnected")
        .await;

    assert_eq!(
        app.ws("/ws/session/000000000", &[]).await.err(),
        Some(StatusCode::NOT_FOUND)
    );
}

async fn closing_tells_the_client(app: TestApp) {
    let session = app.create_session(&app.admin_token, json!({})).await;
    let id = session["id"].as_i64().unwrap();
    let path = format!("/ws/session/{}", session["session_code"].as_str().unwrap());
    let mut ws = app.ws(&path, &[]).await.expect("connects");
    app.wait_for_session(id, "active", |s| s["status"] == "active")
        .await;
    app.delete(&format!("/api/sessions/{id}"), Some(&app.admin_token))
        .await
        .expect(StatusCode::OK);
    assert_eq!(next_json(&mut ws).await, Some(json!({"type": "closed"})));
    assert_eq!(next_json(&mut ws).await, None, "then the socket closes");
    assert_eq!(app.session(id).await["status"], "closed", "not revived");
    assert_eq!(app.ws(&path, &[]).await.err(), Some(StatusCode::GONE));
}
