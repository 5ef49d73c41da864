//! Scripts: CRUD, who sees which, and running them with parameters as environment variables.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    script_crud_and_validation,
    customers_see_global_and_own_scripts,
    scripts_run_with_parameters_as_environment
);

async fn script_crud_and_validation(app: TestApp) {
    let created = app
        .admin_post("/api/scripts", json!({"name": "Disk usage", "description": "df", "content": "df -h", "script_type": "bash"}))
        .await
        .expect(StatusCode::OK);
    let id = created["script_id"].as_str().unwrap();
    assert_eq!(created["customer_uuid"], serde_json::Value::Null);
    let fetched = app
        .admin_get(&format!("/api/scripts/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(fetched["content"], "df -h");
    let updated = app
        .call(
            Method::PUT,
            &format!("/api/scripts/{id}"),
            Some(&app.admin_token),
            Some(json!({"name": "Disk", "content": "df -h /", "script_type": "bash"})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(updated["name"], "Disk");
    assert_eq!(updated["description"], serde_json::Value::Null);
    assert_eq!(
        app.admin_get("/api/scripts")
            .await
            .expect(StatusCode::OK)
            .as_array()
            .unwrap()
            .len(),
        1
    );

    for body in [
        json!({"name": "", "content": "x", "script_type": "bash"}),
        json!({"name": "n", "content": " ", "script_type": "bash"}),
        json!({"name": "n", "content": "x", "script_type": "fish"}),
        json!({"name": "n", "content": "x"}),
    ] {
        assert_eq!(
            app.admin_post("/api/scripts", body.clone()).await.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
    }
    let bad_customer = app
        .admin_post("/api/scripts", json!({"name": "n", "content": "x", "script_type": "bash", "customer_uuid": "00000000-0000-0000-0000-000000000000"}))
        .await;
    assert_eq!(bad_customer.status, StatusCode::NOT_FOUND);
    app.call(
        Method::DELETE,
        &format!("/api/scripts/{id}"),
        Some(&app.admin_token),
        None,
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(
        app.admin_get(&format!("/api/scripts/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/scripts", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

async fn customers_see_global_and_own_scripts(app: TestApp) {
    let (alpha, key_a) = app.customer_with_key("Alpha").await;
    let (_, key_b) = app.customer_with_key("Beta").await;
    let global = app
        .admin_post(
            "/api/scripts",
            json!({"name": "global", "content": "uname", "script_type": "bash"}),
        )
        .await
        .expect(StatusCode::OK);
    let global_id = global["script_id"].as_str().unwrap();
    let own = app
        .post(
            "/api/scripts",
            Some(&key_a),
            json!({"name": "alpha-only", "content": "id", "script_type": "bash"}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        own["customer_uuid"], alpha,
        "a customer's script is its own"
    );
    let own_id = own["script_id"].as_str().unwrap();
    app.post(
        "/api/scripts",
        Some(&key_b),
        json!({"name": "beta-only", "content": "id", "script_type": "bash"}),
    )
    .await
    .expect(StatusCode::OK);

    for path in ["/api/scripts", "/api/customer/scripts"] {
        let list = app.get(path, Some(&key_a)).await.expect(StatusCode::OK);
        let names: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["alpha-only", "global"], "{path}");
    }
    assert_eq!(
        app.admin_get("/api/scripts")
            .await
            .expect(StatusCode::OK)
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        app.get(&format!("/api/scripts/{own_id}"), Some(&key_b))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let edit_global = app
        .call(
            Method::PUT,
            &format!("/api/scripts/{global_id}"),
            Some(&key_a),
            Some(json!({"name": "mine now", "content": "x", "script_type": "bash"})),
        )
        .await;
    assert_eq!(edit_global.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.call(
            Method::DELETE,
            &format!("/api/scripts/{global_id}"),
            Some(&key_a),
            None
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(
            Method::DELETE,
            &format!("/api/scripts/{own_id}"),
            Some(&key_b),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    app.call(
        Method::DELETE,
        &format!("/api/scripts/{own_id}"),
        Some(&key_a),
        None,
    )
    .await
    .expect(StatusCode::OK);
}

async fn scripts_run_with_parameters_as_environment(app: TestApp) {
    let (_, key) = app.customer_with_key("Acme").await;
    let (agent, token) = app.register_agent(&key, "runner").await;
    let script = app
        .admin_post(
            "/api/scripts",
            json!({"name": "greet", "content": "echo \"Hello $NAME\"", "script_type": "bash"}),
        )
        .await
        .expect(StatusCode::OK);
    let id = script["script_id"].as_str().unwrap();
    let reply = app
        .admin_post(
            &format!("/api/scripts/{id}/execute"),
            json!({"agent_id": agent, "parameters": {"NAME": "world; rm -rf /"}}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(reply["status"], "pending");
    let poll = app
        .get(&format!("/api/agents/{agent}/commands"), Some(&token))
        .await
        .expect(StatusCode::OK);
    let command = &poll["commands"][0];
    assert_eq!(command["task_id"], reply["task_id"]);
    assert_eq!(
        command["command"], "echo \"Hello $NAME\"",
        "parameters never pasted into the text"
    );
    assert_eq!(command["environment"], json!({"NAME": "world; rm -rf /"}));
    assert_eq!(command["shell_type"], "bash");

    let bad = app
        .admin_post(
            &format!("/api/scripts/{id}/execute"),
            json!({"agent_id": agent, "parameters": {"BAD NAME": "x"}}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let no_agent = app
        .admin_post(
            &format!("/api/scripts/{id}/execute"),
            json!({"agent_id": "00000000-0000-0000-0000-000000000000"}),
        )
        .await;
    assert_eq!(no_agent.status, StatusCode::NOT_FOUND);
    let no_script = app
        .admin_post("/api/scripts/nope/execute", json!({"agent_id": agent}))
        .await;
    assert_eq!(no_script.status, StatusCode::NOT_FOUND);
    // The customer may run it on its own agent.
    let by_customer = app
        .post(
            &format!("/api/scripts/{id}/execute"),
            Some(&key),
            json!({"agent_id": agent}),
        )
        .await
        .expect(StatusCode::OK);
    let task = app
        .get(
            &format!(
                "/api/agents/{agent}/tasks/{}",
                by_customer["task_id"].as_str().unwrap()
            ),
            Some(&key),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(task["created_by"], "customer:Acme");

    let audit = app
        .admin_get("/api/audit?action=script.run")
        .await
        .expect(StatusCode::OK);
    assert_eq!(audit["total"], 2);
    assert_eq!(audit["entries"][0]["detail"], "greet");
    assert_eq!(audit["entries"][0]["actor"], "customer:Acme");
}
