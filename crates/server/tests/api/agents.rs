//! Agent registration, heartbeats, listing, liveness and removal.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{spawn_app_with, Db, TestApp};
use crate::on_both_backends;

on_both_backends!(
    agents_register_and_report,
    registration_is_validated,
    unregister_closes_the_websocket,
    customers_see_only_their_own
);

async fn agents_register_and_report(app: TestApp) {
    let (customer, key) = app.customer_with_key("Acme").await;
    let registered = app
        .post(
            "/api/agents/register",
            Some(&key),
            json!({"hostname": "web01", "ip_address": "192.168.1.20", "port": 3002,
                   "capabilities": ["command_execution"], "version": "1.0.0"}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(registered["status"], "registered");
    let agent_id = registered["agent_id"].as_str().unwrap();
    let token = registered["agent_token"].as_str().unwrap();
    assert!(token.starts_with("at_"));

    let agent = app
        .admin_get(&format!("/api/agents/{agent_id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(agent["hostname"], "web01");
    assert_eq!(agent["customer_uuid"], customer);
    assert_eq!(agent["customer_name"], "Acme");
    assert_eq!(agent["status"], "online");
    assert_eq!(agent["websocket_connected"], false);
    assert!(
        !agent.to_string().contains(token),
        "the token is shown only once"
    );

    // Heartbeat over HTTP with the agent's token, carrying monitoring data.
    let info = json!({"os": "Debian 12", "uptime_secs": 3600, "cpu_percent": 12.5,
                      "memory_used_bytes": 1024, "memory_total_bytes": 4096,
                      "disk_used_bytes": 10, "disk_total_bytes": 100});
    let ack = app
        .post(
            &format!("/api/agents/{agent_id}/heartbeat"),
            Some(token),
            json!({"agent_id": agent_id, "status": "online", "system_info": info}),
        )
        .await
        .expect(StatusCode::OK);
    assert!(ack["timestamp"].is_string());
    let agent = app
        .admin_get(&format!("/api/agents/{agent_id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(agent["system_info"], info);
    // The spec's body without monitoring data works too.
    app.post(
        &format!("/api/agents/{agent_id}/heartbeat"),
        Some(token),
        json!({"agent_id": agent_id, "status": "online"}),
    )
    .await
    .expect(StatusCode::OK);

    let wrong = app
        .post(
            &format!("/api/agents/{agent_id}/heartbeat"),
            Some("at_wrong"),
            json!({}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let no_token = app
        .post(
            &format!("/api/agents/{agent_id}/heartbeat"),
            None,
            json!({}),
        )
        .await;
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);
    let unknown = app
        .post(
            "/api/agents/00000000-0000-0000-0000-000000000000/heartbeat",
            Some(token),
            json!({}),
        )
        .await;
    assert_eq!(
        unknown.status,
        StatusCode::NOT_FOUND,
        "an unknown agent should register again"
    );
    // An agent token is not a user's.
    assert_eq!(
        app.get("/api/agents", Some(token)).await.status,
        StatusCode::UNAUTHORIZED
    );

    // A user registers an agent without a customer, or into one.
    let body = app
        .admin_post(
            "/api/agents/register",
            json!({"hostname": "lab", "ip_address": "::1", "port": 1}),
        )
        .await
        .expect(StatusCode::OK);
    let lab = body["agent_id"].as_str().unwrap();
    let lab_agent = app
        .admin_get(&format!("/api/agents/{lab}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(lab_agent["customer_uuid"], serde_json::Value::Null);

    let list = app.admin_get("/api/agents").await.expect(StatusCode::OK);
    assert_eq!(list["total"], 2);
    assert_eq!(list["online"], 2);
    assert_eq!(list["offline"], 0);
    let online = app
        .admin_get("/api/agents/online")
        .await
        .expect(StatusCode::OK);
    assert_eq!(online["agents"].as_array().unwrap().len(), 2);
    let health = app.get("/api/health", None).await.expect(StatusCode::OK);
    assert_eq!(health["agents"]["total"], 2);
}

async fn registration_is_validated(app: TestApp) {
    let (_, key) = app.customer_with_key("Acme").await;
    let (other, _) = app.customer_with_key("Other").await;
    let base = json!({"hostname": "h", "ip_address": "10.0.0.1", "port": 3002, "capabilities": [], "version": "1"});
    for (field, value) in [
        ("hostname", json!("")),
        ("ip_address", json!("not-an-ip")),
        ("port", json!(0)),
        ("port", json!(65536)),
        ("port", json!("x")),
    ] {
        let mut body = base.clone();
        body[field] = value.clone();
        let reply = app.post("/api/agents/register", Some(&key), body).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field} = {value}"
        );
    }
    assert_eq!(
        app.post("/api/agents/register", None, base.clone())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let mut body = base.clone();
    body["customer_uuid"] = json!(other);
    assert_eq!(
        app.post("/api/agents/register", Some(&key), body)
            .await
            .status,
        StatusCode::FORBIDDEN,
        "a key registers only into its own customer"
    );
    let mut body = base.clone();
    body["customer_uuid"] = json!("00000000-0000-0000-0000-000000000000");
    assert_eq!(
        app.admin_post("/api/agents/register", body).await.status,
        StatusCode::NOT_FOUND
    );
    let list = app.admin_get("/api/agents").await.expect(StatusCode::OK);
    assert_eq!(list["total"], 0, "nothing was stored");
}

async fn unregister_closes_the_websocket(app: TestApp) {
    let (_, key) = app.customer_with_key("Acme").await;
    let (agent_id, token) = app.register_agent(&key, "doomed").await;
    let mut agent = app.connect_agent(&agent_id, &token).await;
    agent.send(json!({"type": "heartbeat"})).await;
    agent.recv_type("heartbeat_ack").await;
    let health = app.get("/api/health", None).await.expect(StatusCode::OK);
    assert_eq!(health["websocket_connections"], 1);
    assert_eq!(
        app.admin_get(&format!("/api/agents/{agent_id}"))
            .await
            .expect(StatusCode::OK)["websocket_connected"],
        true
    );

    app.call(
        Method::DELETE,
        &format!("/api/agents/{agent_id}"),
        Some(&key),
        None,
    )
    .await
    .expect(StatusCode::OK);
    assert!(
        agent.recv().await.is_none(),
        "the server closed the agent's socket"
    );
    assert_eq!(
        app.admin_get(&format!("/api/agents/{agent_id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let reply = app
        .post(
            &format!("/api/agents/{agent_id}/heartbeat"),
            Some(&token),
            json!({}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.call(
            Method::DELETE,
            &format!("/api/agents/{agent_id}"),
            Some(&key),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
}

async fn customers_see_only_their_own(app: TestApp) {
    let (_, key_a) = app.customer_with_key("Alpha").await;
    let (_, key_b) = app.customer_with_key("Beta").await;
    let (agent_a, _) = app.register_agent(&key_a, "alpha-1").await;
    let (agent_b, _) = app.register_agent(&key_b, "beta-1").await;

    for path in ["/api/agents", "/api/customer/agents"] {
        let list = app.get(path, Some(&key_a)).await.expect(StatusCode::OK);
        let hosts: Vec<&str> = list["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["hostname"].as_str().unwrap())
            .collect();
        assert_eq!(hosts, ["alpha-1"], "{path}");
        assert_eq!(list["total"], 1);
    }
    app.get(&format!("/api/agents/{agent_a}"), Some(&key_a))
        .await
        .expect(StatusCode::OK);
    // Another customer's agent does not exist for this key, whatever is asked of it.
    let reply = app
        .get(&format!("/api/agents/{agent_b}"), Some(&key_a))
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(!reply.body.to_string().contains("beta-1"));
    for (method, path, body) in [
        (
            Method::POST,
            format!("/api/agents/{agent_b}/commands"),
            Some(json!({"command": "id", "shell_type": "bash"})),
        ),
        (Method::GET, format!("/api/agents/{agent_b}/tasks"), None),
        (Method::DELETE, format!("/api/agents/{agent_b}"), None),
    ] {
        let reply = app.call(method.clone(), &path, Some(&key_a), body).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    let bulk = app
        .post(
            "/api/commands",
            Some(&key_a),
            json!({"command": "id", "shell_type": "bash", "agent_ids": [agent_a, agent_b]}),
        )
        .await;
    assert_eq!(bulk.status, StatusCode::NOT_FOUND);
    // Users see everything.
    assert_eq!(
        app.admin_get("/api/agents").await.expect(StatusCode::OK)["total"],
        2
    );
}

#[tokio::test]
async fn silent_agents_go_offline() {
    let app = spawn_app_with(Db::Sqlite, |config| {
        config.agent_offline_after = Duration::from_secs(1);
        config.agent_sweep_every = Duration::from_millis(200);
    })
    .await;
    let (_, key) = app.customer_with_key("Acme").await;
    let (agent_id, token) = app.register_agent(&key, "quiet").await;
    assert_eq!(
        app.admin_get(&format!("/api/agents/{agent_id}"))
            .await
            .expect(StatusCode::OK)["status"],
        "online"
    );
    let mut status = String::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        status = app
            .admin_get(&format!("/api/agents/{agent_id}"))
            .await
            .expect(StatusCode::OK)["status"]
            .as_str()
            .unwrap()
            .to_owned();
        if status == "offline" {
            break;
        }
    }
    assert_eq!(status, "offline");
    let list = app.admin_get("/api/agents").await.expect(StatusCode::OK);
    assert_eq!(
        (list["online"].as_u64(), list["offline"].as_u64()),
        (Some(0), Some(1))
    );
    // A heartbeat brings it back.
    app.post(
        &format!("/api/agents/{agent_id}/heartbeat"),
        Some(&token),
        json!({}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(
        app.admin_get(&format!("/api/agents/{agent_id}"))
            .await
            .expect(StatusCode::OK)["status"],
        "online"
    );
}
