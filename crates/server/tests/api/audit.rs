//! The audit log records who did what, and admins can page and filter it.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    audit_log_records_account_events,
    audit_log_pages_and_filters,
    audit_log_records_fleet_events
);

async fn audit_log_records_account_events(app: TestApp) {
    let uma = app.register("uma", "uma-pass-123").await;
    let vic = app.register("vic", "vic-pass-123").await;
    app.admin_post(&format!("/api/admin/users/{uma}/approve"), json!({}))
        .await
        .expect(StatusCode::OK);
    app.admin_post(&format!("/api/admin/users/{vic}/reject"), json!({}))
        .await
        .expect(StatusCode::OK);
    app.admin_post(&format!("/api/admin/users/{uma}/make-admin"), json!({}))
        .await
        .expect(StatusCode::OK);
    let uma_token = app.login("uma", "uma-pass-123").await;
    app.post(
        "/api/users/change-password",
        Some(&uma_token),
        json!({"current_password": "uma-pass-123", "new_password": "uma-pass-456"}),
    )
    .await
    .expect(StatusCode::OK);
    app.post(
        "/api/auth/login",
        None,
        json!({"username": "uma", "password": "wrong-one!"}),
    )
    .await;
    app.post(
        "/api/auth/login",
        None,
        json!({"username": "typo-Secret123", "password": "wrong-one!"}),
    )
    .await;
    app.call(
        Method::DELETE,
        &format!("/api/users/{vic}"),
        Some(&app.admin_token),
        None,
    )
    .await
    .expect(StatusCode::OK);

    let page = app
        .admin_get("/api/audit?per_page=100")
        .await
        .expect(StatusCode::OK);
    let entries = page["entries"].as_array().unwrap();
    let seen: Vec<(String, String, Option<String>, bool)> = entries
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
                e["target"].as_str().map(str::to_owned),
                e["success"].as_bool().unwrap(),
            )
        })
        .collect();
    let has = |actor: &str, action: &str, target: Option<&str>, success: bool| {
        seen.contains(&(actor.into(), action.into(), target.map(Into::into), success))
    };
    assert!(has("uma", "user.register", Some("uma"), true), "{seen:?}");
    assert!(has("admin", "user.approve", Some("uma"), true));
    assert!(has("admin", "user.reject", Some("vic"), true));
    assert!(has("admin", "user.role_change", Some("uma"), true));
    assert!(has("uma", "user.password_change", Some("uma"), true));
    assert!(has("uma", "auth.login", Some("uma"), false));
    assert!(has("uma", "auth.login", Some("uma"), true));
    assert!(has("admin", "user.delete", Some("vic"), true));
    // An unknown name is not recorded: it may be a password typed in the wrong field.
    assert!(has("anonymous", "auth.login", None, false));
    assert!(!page.to_string().contains("typo-Secret123"));

    // Newest first, with when and from where.
    assert_eq!(entries[0]["action"], "user.delete");
    let ids: Vec<i64> = entries.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]));
    let login = entries
        .iter()
        .find(|e| e["action"] == "auth.login")
        .unwrap();
    assert_eq!(login["client_addr"], "127.0.0.1");
    assert!(login["at"].as_str().unwrap().starts_with("20"));
}

async fn audit_log_pages_and_filters(app: TestApp) {
    for n in 0..5 {
        app.register(&format!("walt{n}"), "walt-pass-123").await;
    }
    let all = app
        .admin_get("/api/audit?action=user.register")
        .await
        .expect(StatusCode::OK);
    assert_eq!(all["total"], 5);
    let page1 = app
        .admin_get("/api/audit?action=user.register&per_page=2&page=1")
        .await
        .expect(StatusCode::OK);
    let page3 = app
        .admin_get("/api/audit?action=user.register&per_page=2&page=3")
        .await
        .expect(StatusCode::OK);
    assert_eq!(page1["entries"].as_array().unwrap().len(), 2);
    assert_eq!(page1["entries"][0]["target"], "walt4");
    assert_eq!(page3["entries"].as_array().unwrap().len(), 1);
    assert_eq!(page3["entries"][0]["target"], "walt0");
    assert_eq!(page3["total"], 5);

    let by_actor = app
        .admin_get("/api/audit?actor=walt2")
        .await
        .expect(StatusCode::OK);
    assert_eq!(by_actor["total"], 1);
    let prefix = app
        .admin_get("/api/audit?action=user.")
        .await
        .expect(StatusCode::OK);
    assert!(
        prefix["total"].as_u64().unwrap() >= 6,
        "registrations and the initial admin"
    );
    let logins = app
        .admin_get("/api/audit?action=auth.login&actor=admin")
        .await
        .expect(StatusCode::OK);
    assert_eq!(logins["total"], 1);

    for bad in ["page=0", "per_page=0", "per_page=501", "page=abc"] {
        let reply = app.admin_get(&format!("/api/audit?{bad}")).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}

async fn audit_log_records_fleet_events(app: TestApp) {
    let (customer, key) = app.customer_with_key("Acme").await;
    let (agent, _) = app.register_agent(&key, "audited").await;
    app.command(&agent, "shutdown -r now").await;
    app.admin_post(
        &format!("/api/customers/{customer}/revoke-api-key"),
        json!({}),
    )
    .await
    .expect(StatusCode::OK);
    app.call(
        Method::DELETE,
        &format!("/api/agents/{agent}"),
        Some(&app.admin_token),
        None,
    )
    .await
    .expect(StatusCode::OK);

    let page = app
        .admin_get("/api/audit?per_page=100")
        .await
        .expect(StatusCode::OK);
    let find = |action: &str| {
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {page}"))
            .clone()
    };
    assert_eq!(find("customer.create")["target"], "Acme");
    assert_eq!(find("customer.api_key_generate")["actor"], "admin");
    assert_eq!(find("customer.api_key_revoke")["target"], "Acme");
    let registered = find("agent.register");
    assert_eq!(registered["actor"], "customer:Acme");
    assert_eq!(registered["target"], agent);
    assert_eq!(registered["detail"], "audited");
    let command = find("command.run");
    assert_eq!(command["actor"], "admin");
    assert_eq!(command["target"], agent);
    assert_eq!(command["detail"], "shutdown -r now");
    assert_eq!(find("agent.delete")["target"], agent);
    assert!(
        !page.to_string().contains(&key),
        "the key itself is never recorded"
    );
}
