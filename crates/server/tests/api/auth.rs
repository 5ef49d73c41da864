//! Registration and sign-in.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, ADMIN_PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    registered_users_wait_for_approval,
    rejected_users_cannot_sign_in,
    duplicate_username_or_email_is_400,
    registration_is_validated,
    login_by_username_or_email,
    unknown_user_and_wrong_password_look_the_same,
    failed_sign_ins_are_throttled_per_account,
    failed_sign_ins_are_throttled_per_address,
);

async fn registered_users_wait_for_approval(app: TestApp) {
    let body = app
        .post(
            "/api/auth/register",
            None,
            json!({"username": "carol", "email": "carol@example.com", "password": "carol-pass-1"}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(body["status"], "pending");
    assert!(body["message"].as_str().unwrap().contains("registered"));
    let id = body["user_id"].as_str().unwrap();

    let reply = app
        .post(
            "/api/auth/login",
            None,
            json!({"username": "carol", "password": "carol-pass-1"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(
        reply.detail().contains("pending approval"),
        "{}",
        reply.detail()
    );

    app.admin_post(&format!("/api/admin/users/{id}/approve"), json!({}))
        .await
        .expect(StatusCode::OK);
    let body = app
        .post(
            "/api/auth/login",
            None,
            json!({"username": "carol", "password": "carol-pass-1"}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["user"]["id"], id);
    assert_eq!(body["user"]["username"], "carol");
    assert_eq!(body["user"]["email"], "carol@example.com");
    assert_eq!(body["user"]["role"], "tech");
    assert_eq!(body["user"]["is_active"], true);
    assert_eq!(body["user"]["max_sessions"], 10);
    assert!(body["user"].get("password_hash").is_none());
}

async fn rejected_users_cannot_sign_in(app: TestApp) {
    let id = app.register("dave", "dave-pass-1").await;
    let user = app
        .admin_post(&format!("/api/admin/users/{id}/reject"), json!({}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(user["status"], "rejected");
    let reply = app
        .post(
            "/api/auth/login",
            None,
            json!({"username": "dave", "password": "dave-pass-1"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.detail().contains("rejected"));
    // The wrong password still says nothing about the account's state.
    let reply = app
        .post(
            "/api/auth/login",
            None,
            json!({"username": "dave", "password": "not-his-pass"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

async fn duplicate_username_or_email_is_400(app: TestApp) {
    app.register("erin", "erin-pass-1").await;
    let reply = app
        .post(
            "/api/auth/register",
            None,
            json!({"username": "ERIN", "email": "other@example.com", "password": "erin-pass-1"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.detail(), "Username already registered");
    let reply = app
        .post(
            "/api/auth/register",
            None,
            json!({"username": "erin2", "email": "Erin@Example.com", "password": "erin-pass-1"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.detail(), "Email already registered");
}

async fn registration_is_validated(app: TestApp) {
    let cases = [
        json!({"username": "frank", "email": "frank@example.com", "password": "short"}),
        json!({"username": "frank", "email": "not-an-email", "password": "long-enough"}),
        json!({"username": "has space", "email": "frank@example.com", "password": "long-enough"}),
        json!({"username": "frank", "password": "long-enough"}),
        json!({"username": 5, "email": "frank@example.com", "password": "long-enough"}),
    ];
    for body in cases {
        let reply = app.post("/api/auth/register", None, body.clone()).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(!reply.detail().is_empty());
    }
    let reply = app
        .post("/api/auth/register", None, json!({"password": "x"}))
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Nothing was stored by the refused attempts.
    let users = app.admin_get("/api/users").await.expect(StatusCode::OK);
    assert_eq!(users.as_array().unwrap().len(), 1);
}

async fn login_by_username_or_email(app: TestApp) {
    app.create_user("gina", "gina-pass-1", "tech").await;
    for body in [
        json!({"username": "gina", "password": "gina-pass-1"}),
        json!({"username": "GINA", "password": "gina-pass-1"}),
        json!({"email": "gina@example.com", "password": "gina-pass-1"}),
        json!({"username": "gina@example.com", "password": "gina-pass-1"}),
    ] {
        let reply = app.post("/api/auth/login", None, body.clone()).await;
        assert_eq!(reply.status, StatusCode::OK, "{body}");
        assert_eq!(reply.body["user"]["username"], "gina");
        assert_eq!(reply.body["expires_in"], 1800);
    }
    let reply = app
        .post("/api/auth/login", None, json!({"password": "gina-pass-1"}))
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn unknown_user_and_wrong_password_look_the_same(app: TestApp) {
    let wrong_password = app
        .post(
            "/api/auth/login",
            None,
            json!({"username": "admin", "password": "wrong-password"}),
        )
        .await;
    let unknown_user = app
        .post(
            "/api/auth/login",
            None,
            json!({"username": "nobody", "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(wrong_password.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_user.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_password.body, unknown_user.body);
}

async fn failed_sign_ins_are_throttled_per_account(app: TestApp) {
    app.create_user("hank", "hank-pass-1", "tech").await;
    for _ in 0..5 {
        let reply = app
            .post(
                "/api/auth/login",
                None,
                json!({"username": "hank", "password": "guess-guess"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    // Now even the right password waits.
    let reply = app
        .post(
            "/api/auth/login",
            None,
            json!({"username": "hank", "password": "hank-pass-1"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after));
    // Other accounts are not affected.
    app.login("admin", ADMIN_PASSWORD).await;
    // After the wait the right password works and clears the count.
    tokio::time::sleep(std::time::Duration::from_secs(retry_after)).await;
    app.login("hank", "hank-pass-1").await;
}

async fn failed_sign_ins_are_throttled_per_address(app: TestApp) {
    for n in 0..20 {
        let reply = app
            .post(
                "/api/auth/login",
                None,
                json!({"username": format!("nobody{n}"), "password": "guess-guess"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let reply = app
        .post(
            "/api/auth/login",
            None,
            json!({"username": "admin", "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(reply.headers.contains_key("retry-after"));
}
