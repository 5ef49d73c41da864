//! The example clients of `agent-manager-api.md` ("Example Usage"), step by step, with the
//! security additions the architecture names (approval, agent token).

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    python_user_client,
    python_customer_client,
    websocket_agent_client
);

async fn python_user_client(app: TestApp) {
    let (_, key) = app.customer_with_key("Example").await;
    let (agent_id, _) = app.register_agent(&key, "example-agent").await;

    let register_data = json!({"username": "testuser", "email": "test@example.com",
                               "password": "password123", "full_name": "Test User"});
    let response = app
        .post("/api/auth/register", None, register_data)
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        response["message"].as_str().unwrap().split(';').next(),
        Some("User registered successfully")
    );
    // The addition: an admin approves new users before they sign in.
    app.admin_post(
        &format!(
            "/api/admin/users/{}/approve",
            response["user_id"].as_str().unwrap()
        ),
        json!({}),
    )
    .await
    .expect(StatusCode::OK);

    let login = app
        .post(
            "/api/auth/login",
            None,
            json!({"username": "testuser", "password": "password123"}),
        )
        .await
        .expect(StatusCode::OK);
    let token = login["access_token"].as_str().unwrap();

    let agents = app
        .get("/api/agents", Some(token))
        .await
        .expect(StatusCode::OK);
    assert_eq!(agents["agents"][0]["agent_id"], agent_id);
    assert_eq!(agents["total"], 1);

    let command_data = json!({"command": "dir", "shell_type": "cmd", "timeout": 30});
    let result = app
        .post(
            &format!("/api/agents/{agent_id}/commands"),
            Some(token),
            command_data,
        )
        .await
        .expect(StatusCode::OK);
    assert!(result["task_id"].is_string());
    assert!(["accepted", "pending"].contains(&result["status"].as_str().unwrap()));
    assert!(result["message"].is_string());
}

async fn python_customer_client(app: TestApp) {
    let (_, api_key) = app.customer_with_key("Example").await;
    app.register_agent(&api_key, "customer-agent").await;
    app.admin_post(
        "/api/scripts",
        json!({"name": "shared", "content": "true", "script_type": "bash"}),
    )
    .await
    .expect(StatusCode::OK);

    for header in ["authorization", "x-api-key"] {
        let value = if header == "authorization" {
            format!("Bearer {api_key}")
        } else {
            api_key.clone()
        };
        let get = |path: &'static str| {
            let request = app
                .client
                .get(format!("{}{path}", app.base))
                .header(header, value.clone());
            async move {
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), StatusCode::OK, "{path} with {header}");
                response.json::<serde_json::Value>().await.unwrap()
            }
        };
        let profile = get("/api/customer/profile").await;
        assert_eq!(profile["name"], "Example");
        let agents = get("/api/customer/agents").await;
        assert_eq!(agents["agents"][0]["hostname"], "customer-agent");
        let scripts = get("/api/customer/scripts").await;
        assert_eq!(scripts[0]["name"], "shared");
    }
}

async fn websocket_agent_client(app: TestApp) {
    let (_, key) = app.customer_with_key("Example").await;
    let (agent_id, agent_token) = app.register_agent(&key, "ws-example").await;
    let (task_id, _) = app.command(&agent_id, "echo queued").await;

    let mut websocket = app.connect_agent(&agent_id, &agent_token).await;
    websocket.send(json!({"type": "heartbeat"})).await;
    loop {
        let data = websocket.recv().await.expect("connection open");
        if data["type"] == "command" {
            let result = json!({"type": "task_result", "data": {
                "task_id": data["task_id"], "status": "completed",
                "output": "Command output here", "exit_code": 0}});
            websocket.send(result).await;
            break;
        }
    }
    let task = app.wait_for_task(&agent_id, &task_id, "completed").await;
    assert_eq!(task["output"], "Command output here");
}
