//! Customers, API keys and id.ini.

use reqwest::{Method, StatusCode};
use serde_json::json;
use skyshift_proto::idini::IdIni;

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    customer_crud,
    api_keys_are_shown_once_replaced_and_revoked,
    download_config_is_a_pinned_id_ini
);

async fn customer_crud(app: TestApp) {
    let (_, tech) = app.create_user("tina", "tina-pass-123", "tech").await;
    let created = app
        .post(
            "/api/customers",
            Some(&tech),
            json!({"name": "Acme", "address": "1 Road"}),
        )
        .await
        .expect(StatusCode::OK);
    let id = created["customer_uuid"].as_str().unwrap();
    assert_eq!(created["name"], "Acme");
    assert_eq!(created["has_api_key"], false);
    assert_eq!(created["agent_count"], 0);

    let updated = app
        .call(
            Method::PUT,
            &format!("/api/customers/{id}"),
            Some(&tech),
            Some(json!({"name": "Acme Ltd"})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(updated["name"], "Acme Ltd");
    assert_eq!(updated["address"], serde_json::Value::Null);
    let list = app
        .get("/api/customers", Some(&tech))
        .await
        .expect(StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(
        app.get(&format!("/api/customers/{id}"), Some(&tech))
            .await
            .expect(StatusCode::OK)["name"],
        "Acme Ltd"
    );

    assert_eq!(
        app.post("/api/customers", Some(&tech), json!({"name": "  "}))
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.post("/api/customers", None, json!({"name": "X"}))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/customers/nope", Some(&tech)).await.status,
        StatusCode::NOT_FOUND
    );

    // A customer with agents cannot be deleted.
    let (with_agents, key) = app.customer_with_key("Busy").await;
    let (agent, _) = app.register_agent(&key, "busy-1").await;
    let reply = app
        .call(
            Method::DELETE,
            &format!("/api/customers/{with_agents}"),
            Some(&tech),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    app.call(
        Method::DELETE,
        &format!("/api/agents/{agent}"),
        Some(&tech),
        None,
    )
    .await
    .expect(StatusCode::OK);
    app.call(
        Method::DELETE,
        &format!("/api/customers/{with_agents}"),
        Some(&tech),
        None,
    )
    .await
    .expect(StatusCode::OK);
    app.call(
        Method::DELETE,
        &format!("/api/customers/{id}"),
        Some(&tech),
        None,
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(
        app.call(
            Method::DELETE,
            &format!("/api/customers/{id}"),
            Some(&tech),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
}

async fn api_keys_are_shown_once_replaced_and_revoked(app: TestApp) {
    let (id, first) = app.customer_with_key("Globex").await;
    assert!(first.starts_with("sk_"));
    let profile = app
        .get("/api/customer/profile", Some(&first))
        .await
        .expect(StatusCode::OK);
    assert_eq!(profile["name"], "Globex");
    assert_eq!(profile["has_api_key"], true);
    assert!(
        !profile.to_string().contains(&first),
        "the key is never shown again"
    );
    let info = app
        .admin_get(&format!("/api/customers/{id}/api-key-info"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(info["has_api_key"], true);
    assert!(info["api_key_created_at"].is_string());
    assert!(
        info["api_key_last_used"].is_string(),
        "the profile call used it"
    );

    // X-API-Key works as well as Bearer.
    let reply = app
        .client
        .get(format!("{}/api/customer/profile", app.base))
        .header("x-api-key", &first)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);

    let second = app
        .admin_post(&format!("/api/customers/{id}/generate-api-key"), json!({}))
        .await
        .expect(StatusCode::OK);
    let second = second["api_key"].as_str().unwrap();
    assert_ne!(second, first);
    assert_eq!(
        app.get("/api/customer/profile", Some(&first)).await.status,
        StatusCode::UNAUTHORIZED,
        "replaced at once"
    );
    app.get("/api/customer/profile", Some(second))
        .await
        .expect(StatusCode::OK);

    app.admin_post(&format!("/api/customers/{id}/revoke-api-key"), json!({}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        app.get("/api/customer/profile", Some(second)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.admin_post(&format!("/api/customers/{id}/revoke-api-key"), json!({}))
            .await
            .status,
        StatusCode::CONFLICT
    );
    let info = app
        .admin_get(&format!("/api/customers/{id}/api-key-info"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(info["has_api_key"], false);

    // Keys are admin business.
    let (_, tech) = app.create_user("tom", "tom-pass-1234", "tech").await;
    for path in ["generate-api-key", "revoke-api-key"] {
        assert_eq!(
            app.post(
                &format!("/api/customers/{id}/{path}"),
                Some(&tech),
                json!({})
            )
            .await
            .status,
            StatusCode::FORBIDDEN
        );
    }
    for path in ["api-key-info", "download-config"] {
        assert_eq!(
            app.get(&format!("/api/customers/{id}/{path}"), Some(&tech))
                .await
                .status,
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(
        app.admin_post("/api/customers/nope/generate-api-key", json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/customer/profile", Some("sk_forged"))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/customer/profile", Some(&app.admin_token))
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "a user token is not a key"
    );
}

async fn download_config_is_a_pinned_id_ini(app: TestApp) {
    let customer = app
        .admin_post("/api/customers", json!({"name": "Initech"}))
        .await
        .expect(StatusCode::OK);
    let id = customer["customer_uuid"].as_str().unwrap();
    let reply = app
        .admin_get(&format!("/api/customers/{id}/download-config"))
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert!(reply.detail().contains("generate"), "{}", reply.detail());

    let key = app
        .admin_post(&format!("/api/customers/{id}/generate-api-key"), json!({}))
        .await
        .expect(StatusCode::OK);
    let key = key["api_key"].as_str().unwrap();
    let response = app
        .client
        .get(format!("{}/api/customers/{id}/download-config", app.base))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("id.ini"));
    let text = response.text().await.unwrap();
    assert!(text.starts_with("# Remote Agent Configuration File"));
    let ini = IdIni::parse(&text).expect("the agent can read it");
    assert_eq!(ini.customer_id, id);
    assert_eq!(ini.api_key, key);
    assert_eq!(ini.hostname, None, "AUTO_DETECT");
    assert_eq!(
        ini.capabilities,
        ["command_execution", "file_transfer", "system_monitoring"]
    );
    assert!(ini.server_url.unwrap().starts_with("https://127.0.0.1:"));
    assert_eq!(
        ini.server_cert_sha256.as_deref(),
        Some(app.state.tls.fingerprint.as_str())
    );
}
