//! The agent WebSocket: authentication, cross-site upgrades, bad messages, replacement.

use reqwest::StatusCode;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    agent_socket_needs_its_token,
    bad_messages_are_skipped,
    a_second_connection_replaces_the_first
);

async fn agent_socket_needs_its_token(app: TestApp) {
    let (_, key) = app.customer_with_key("Acme").await;
    let (agent, token) = app.register_agent(&key, "ws").await;
    let url = format!("{}/ws/agent/{agent}", app.base.replace("http://", "ws://"));
    let status_of = |request: tokio_tungstenite::tungstenite::handshake::client::Request| async move {
        match tokio_tungstenite::connect_async(request).await {
            Ok(_) => StatusCode::SWITCHING_PROTOCOLS,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                StatusCode::from_u16(response.status().as_u16()).unwrap()
            }
            Err(err) => panic!("{err}"),
        }
    };
    // A browser page on another site, riding whatever cookies the browser holds: refused.
    let mut cross_site = url.clone().into_client_request().unwrap();
    cross_site
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    cross_site
        .headers_mut()
        .insert("cookie", "session=anything".parse().unwrap());
    assert_eq!(status_of(cross_site).await, StatusCode::UNAUTHORIZED);
    let mut wrong = url.clone().into_client_request().unwrap();
    wrong
        .headers_mut()
        .insert("authorization", "Bearer at_wrong".parse().unwrap());
    assert_eq!(status_of(wrong).await, StatusCode::UNAUTHORIZED);
    let mut user_token = url.clone().into_client_request().unwrap();
    user_token.headers_mut().insert(
        "authorization",
        format!("Bearer {}", app.admin_token).parse().unwrap(),
    );
    assert_eq!(status_of(user_token).await, StatusCode::UNAUTHORIZED);
    let unknown = format!(
        "{}/ws/agent/00000000-0000-0000-0000-000000000000?token={token}",
        app.base.replace("http://", "ws://")
    );
    assert_eq!(
        status_of(unknown.into_client_request().unwrap()).await,
        StatusCode::NOT_FOUND
    );
    // The token in the query works for clients that cannot set headers.
    let with_query = format!("{url}?token={token}")
        .into_client_request()
        .unwrap();
    assert_eq!(status_of(with_query).await, StatusCode::SWITCHING_PROTOCOLS);
}

async fn bad_messages_are_skipped(app: TestApp) {
    let (_, key) = app.customer_with_key("Acme").await;
    let (agent, token) = app.register_agent(&key, "noisy").await;
    let mut socket = app.connect_agent(&agent, &token).await;
    socket.send_raw("{not json").await;
    socket.send(json!({"type": "launch_missiles"})).await;
    socket
        .send(json!({"type": "task_result", "data": {"task_id": "not-a-uuid"}}))
        .await;
    socket.send(json!({"type": "task_result", "data": {"task_id": "00000000-0000-0000-0000-000000000000", "status": "completed", "output": ""}})).await;
    socket
        .send(json!({"type": "heartbeat", "system_info": {"os": "Linux", "cpu_percent": 3.5}}))
        .await;
    socket.recv_type("heartbeat_ack").await;
    // WebSocket heartbeats are written in batches (every 2 s): wait for this one.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(6);
    let agent_json = loop {
        let agent_json = app
            .admin_get(&format!("/api/agents/{agent}"))
            .await
            .expect(StatusCode::OK);
        if agent_json["system_info"].is_object() || std::time::Instant::now() > deadline {
            break agent_json;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(agent_json["system_info"]["os"], "Linux");
    assert_eq!(agent_json["system_info"]["cpu_percent"], 3.5);
    assert_eq!(agent_json["websocket_connected"], true);
}

async fn a_second_connection_replaces_the_first(app: TestApp) {
    let (_, key) = app.customer_with_key("Acme").await;
    let (agent, token) = app.register_agent(&key, "twice").await;
    let mut first = app.connect_agent(&agent, &token).await;
    first.send(json!({"type": "heartbeat"})).await;
    first.recv_type("heartbeat_ack").await;
    let mut second = app.connect_agent(&agent, &token).await;
    assert!(
        first.recv().await.is_none(),
        "the first connection was closed"
    );
    let (task, status) = app.command(&agent, "id").await;
    assert_eq!(status, "accepted");
    assert_eq!(second.recv_type("command").await["task_id"], task);
    let health = app.get("/api/health", None).await.expect(StatusCode::OK);
    assert_eq!(health["websocket_connections"], 1);
}
