//! Every error is JSON; bad bodies are 422, big ones 413; the API describes itself.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    errors_are_json,
    bodies_are_checked,
    openapi_describes_every_endpoint
);

async fn errors_are_json(app: TestApp) {
    let reply = app.get("/api/no-such-thing", None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.detail(), "Not Found");
    let reply = app.get("/definitely/not/here", None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.body.get("detail").is_some());

    let reply = app
        .call(reqwest::Method::DELETE, "/api/health", None, None)
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.detail(), "Method Not Allowed");
    assert_eq!(reply.headers["content-type"], "application/json");
}

async fn bodies_are_checked(app: TestApp) {
    let url = format!("{}/api/auth/login", app.base);
    let send = |body: Vec<u8>, content_type: &'static str| {
        let request = app
            .client
            .post(&url)
            .header("content-type", content_type)
            .body(body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, body)
        }
    };
    let (status, body) = send(b"{not json".to_vec(), "application/json").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["detail"].as_str().is_some());
    let (status, _) = send(br#"{"username": "admin"}"#.to_vec(), "application/json").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "password missing");
    let (status, _) = send(
        br#"{"username": "admin", "password": "x"}"#.to_vec(),
        "text/plain",
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "not declared JSON"
    );

    let big = format!(
        r#"{{"username": "admin", "password": "{}"}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let (status, body) = send(big.into_bytes(), "application/json").await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(body["detail"].as_str().is_some());
}

async fn openapi_describes_every_endpoint(app: TestApp) {
    let doc = app
        .get("/api/openapi.json", None)
        .await
        .expect(StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/api", "get"),
        ("/api/health", "get"),
        ("/api/auth/register", "post"),
        ("/api/auth/login", "post"),
        ("/api/users/profile", "get"),
        ("/api/users/profile", "put"),
        ("/api/users/change-password", "post"),
        ("/api/users", "get"),
        ("/api/users", "post"),
        ("/api/users/{user_id}", "get"),
        ("/api/users/{user_id}", "delete"),
        ("/api/admin/pending-users", "get"),
        ("/api/admin/users/{user_id}/approve", "post"),
        ("/api/admin/users/{user_id}/reject", "post"),
        ("/api/admin/users/{user_id}/make-admin", "post"),
        ("/api/admin/users/{user_id}/remove-admin", "post"),
        ("/api/audit", "get"),
        ("/api/customers", "get"),
        ("/api/customers", "post"),
        ("/api/customers/{customer_uuid}", "get"),
        ("/api/customers/{customer_uuid}", "put"),
        ("/api/customers/{customer_uuid}", "delete"),
        ("/api/customers/{customer_uuid}/generate-api-key", "post"),
        ("/api/customers/{customer_uuid}/revoke-api-key", "post"),
        ("/api/customers/{customer_uuid}/api-key-info", "get"),
        ("/api/customers/{customer_uuid}/download-config", "get"),
        ("/api/customer/profile", "get"),
        ("/api/customer/agents", "get"),
        ("/api/customer/scripts", "get"),
        ("/api/agents/register", "post"),
        ("/api/agents", "get"),
        ("/api/agents/online", "get"),
        ("/api/agents/{agent_id}", "get"),
        ("/api/agents/{agent_id}", "delete"),
        ("/api/agents/{agent_id}/heartbeat", "post"),
        ("/api/agents/{agent_id}/commands", "post"),
        ("/api/agents/{agent_id}/commands", "get"),
        ("/api/commands", "post"),
        ("/api/agents/{agent_id}/tasks", "get"),
        ("/api/agents/{agent_id}/tasks/{task_id}", "get"),
        ("/api/agents/{agent_id}/tasks/{task_id}/stream", "get"),
        ("/api/agents/{agent_id}/tasks/{task_id}/cancel", "post"),
        ("/api/agents/{agent_id}/tasks/{task_id}/result", "post"),
        ("/api/agents/{agent_id}/tasks/{task_id}/status", "post"),
        ("/api/scripts", "get"),
        ("/api/scripts", "post"),
        ("/api/scripts/{script_id}", "get"),
        ("/api/scripts/{script_id}", "put"),
        ("/api/scripts/{script_id}", "delete"),
        ("/api/scripts/{script_id}/execute", "post"),
        ("/api/sessions", "get"),
        ("/api/sessions", "post"),
        ("/api/sessions/{session_id}", "delete"),
        ("/api/sessions/{session_id}/info", "get"),
        ("/api/sessions/{session_id}/join-ticket", "post"),
        ("/api/smtp/config", "get"),
        ("/api/smtp/config", "post"),
        ("/api/smtp/test", "post"),
    ];
    for (path, method) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    assert_eq!(
        paths
            .values()
            .map(|p| p.as_object().unwrap().len())
            .sum::<usize>(),
        expected.len(),
        "the document lists exactly the served endpoints"
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    let docs = app
        .client
        .get(format!("{}/docs/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs
        .text()
        .await
        .unwrap()
        .to_lowercase()
        .contains("swagger"));

    let root = app.get("/api", None).await.expect(StatusCode::OK);
    assert_eq!(root["openapi"], "/api/openapi.json");
    let health = app.get("/api/health", None).await.expect(StatusCode::OK);
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["agents"]["total"], 0);
}
