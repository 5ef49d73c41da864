//! Profiles, passwords and user management.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, ADMIN_PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    profile_can_be_read_and_updated,
    password_change_revokes_old_tokens,
    admins_create_and_list_users,
    users_see_only_themselves,
    delete_user,
    last_admin_cannot_be_deleted_or_demoted,
);

async fn profile_can_be_read_and_updated(app: TestApp) {
    let (_, token) = app.create_user("ivy", "ivy-pass-12", "tech").await;
    let me = app
        .get("/api/users/profile", Some(&token))
        .await
        .expect(StatusCode::OK);
    assert_eq!(me["username"], "ivy");
    assert_eq!(me["email"], "ivy@example.com");

    let updated = app
        .call(
            Method::PUT,
            "/api/users/profile",
            Some(&token),
            Some(json!({"email": "Ivy.New@Example.com", "full_name": "Ivy Newname"})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(updated["email"], "ivy.new@example.com");
    assert_eq!(updated["full_name"], "Ivy Newname");

    // Only what is given changes.
    let updated = app
        .call(
            Method::PUT,
            "/api/users/profile",
            Some(&token),
            Some(json!({"full_name": "Ivy"})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(updated["email"], "ivy.new@example.com");
    assert_eq!(updated["full_name"], "Ivy");

    let taken = app
        .call(
            Method::PUT,
            "/api/users/profile",
            Some(&token),
            Some(json!({"email": "admin@localhost"})),
        )
        .await;
    assert_eq!(taken.status, StatusCode::BAD_REQUEST);
    assert_eq!(taken.detail(), "Email already registered");
    let invalid = app
        .call(
            Method::PUT,
            "/api/users/profile",
            Some(&token),
            Some(json!({"email": "nope"})),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    let anonymous = app.get("/api/users/profile", None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.detail(), "Not authenticated");
}

async fn password_change_revokes_old_tokens(app: TestApp) {
    let (_, token) = app.create_user("jack", "jack-pass-12", "tech").await;
    let wrong = app
        .post(
            "/api/users/change-password",
            Some(&token),
            json!({"current_password": "not-it-at-all", "new_password": "jack-pass-new"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    let short = app
        .post(
            "/api/users/change-password",
            Some(&token),
            json!({"current_password": "jack-pass-12", "new_password": "short"}),
        )
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Neither attempt changed anything.
    app.get("/api/users/profile", Some(&token))
        .await
        .expect(StatusCode::OK);

    app.post(
        "/api/users/change-password",
        Some(&token),
        json!({"current_password": "jack-pass-12", "new_password": "jack-pass-new"}),
    )
    .await
    .expect(StatusCode::OK);
    let old = app.get("/api/users/profile", Some(&token)).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    let reply = app
        .post(
            "/api/auth/login",
            None,
            json!({"username": "jack", "password": "jack-pass-12"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let token = app.login("jack", "jack-pass-new").await;
    app.get("/api/users/profile", Some(&token))
        .await
        .expect(StatusCode::OK);
}

async fn admins_create_and_list_users(app: TestApp) {
    // The remote-access spec's shape: no username, a role and max_sessions.
    let user = app
        .admin_post(
            "/api/users",
            json!({"email": "newuser@example.com", "password": "securepass123",
                   "full_name": "Jane Smith", "role": "tech", "max_sessions": 7}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(user["email"], "newuser@example.com");
    assert_eq!(user["username"], "newuser@example.com");
    assert_eq!(user["full_name"], "Jane Smith");
    assert_eq!(user["role"], "tech");
    assert_eq!(user["max_sessions"], 7);
    assert_eq!(user["is_active"], true);
    assert!(user["created_at"].as_str().is_some());
    // Active at once: no approval needed.
    app.post(
        "/api/auth/login",
        None,
        json!({"email": "newuser@example.com", "password": "securepass123"}),
    )
    .await
    .expect(StatusCode::OK);

    let again = app
        .admin_post(
            "/api/users",
            json!({"email": "newuser@example.com", "password": "securepass123"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    let bad_role = app
        .admin_post(
            "/api/users",
            json!({"email": "x@example.com", "password": "securepass123", "role": "root"}),
        )
        .await;
    assert_eq!(bad_role.status, StatusCode::UNPROCESSABLE_ENTITY);

    let admin = app
        .admin_post(
            "/api/users",
            json!({"email": "boss@example.com", "password": "securepass123", "role": "admin"}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(admin["is_admin"], true);

    let users = app.admin_get("/api/users").await.expect(StatusCode::OK);
    let emails: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        ["admin@localhost", "newuser@example.com", "boss@example.com"]
    );
    assert_eq!(users[0]["full_name"], "System Administrator");
    assert_eq!(users[0]["role"], "admin");

    let (_, tech) = app.create_user("kim", "kim-pass-123", "tech").await;
    assert_eq!(
        app.get("/api/users", Some(&tech)).await.status,
        StatusCode::FORBIDDEN
    );
    let reply = app
        .post(
            "/api/users",
            Some(&tech),
            json!({"email": "y@example.com", "password": "securepass123"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.detail(), "Admin access required");
    assert_eq!(
        app.get("/api/users", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

async fn users_see_only_themselves(app: TestApp) {
    let (lee, lee_token) = app.create_user("lee", "lee-pass-123", "tech").await;
    let (max, _) = app.create_user("max", "max-pass-123", "tech").await;
    let me = app
        .get(&format!("/api/users/{lee}"), Some(&lee_token))
        .await
        .expect(StatusCode::OK);
    assert_eq!(me["username"], "lee");
    assert_eq!(
        app.get(&format!("/api/users/{max}"), Some(&lee_token))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let other = app
        .admin_get(&format!("/api/users/{max}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(other["username"], "max");
    assert_eq!(
        app.admin_get("/api/users/not-a-user").await.status,
        StatusCode::NOT_FOUND
    );
}

async fn delete_user(app: TestApp) {
    let (nia, nia_token) = app.create_user("nia", "nia-pass-123", "tech").await;
    let (oz, oz_token) = app.create_user("oz", "oz-pass-1234", "tech").await;
    let reply = app
        .call(
            Method::DELETE,
            &format!("/api/users/{oz}"),
            Some(&nia_token),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    app.call(
        Method::DELETE,
        &format!("/api/users/{oz}"),
        Some(&app.admin_token),
        None,
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(
        app.admin_get(&format!("/api/users/{oz}")).await.status,
        StatusCode::NOT_FOUND
    );
    // The deleted user's token dies with the account.
    assert_eq!(
        app.get("/api/users/profile", Some(&oz_token)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let again = app
        .call(
            Method::DELETE,
            &format!("/api/users/{oz}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    app.get(&format!("/api/users/{nia}"), Some(&nia_token))
        .await
        .expect(StatusCode::OK);
}

async fn last_admin_cannot_be_deleted_or_demoted(app: TestApp) {
    let me = app
        .get("/api/users/profile", Some(&app.admin_token))
        .await
        .expect(StatusCode::OK);
    let admin_id = me["id"].as_str().unwrap().to_owned();
    let reply = app
        .call(
            Method::DELETE,
            &format!("/api/users/{admin_id}"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    let reply = app
        .admin_post(
            &format!("/api/admin/users/{admin_id}/remove-admin"),
            json!({}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    app.login("admin", ADMIN_PASSWORD).await;

    // With a second admin the first may step down.
    let (second, second_token) = app.create_user("pat", "pat-pass-123", "admin").await;
    app.admin_post(
        &format!("/api/admin/users/{admin_id}/remove-admin"),
        json!({}),
    )
    .await
    .expect(StatusCode::OK);
    // ...after which pat is the last one.
    let reply = app
        .post(
            &format!("/api/admin/users/{second}/remove-admin"),
            Some(&second_token),
            json!({}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    let reply = app
        .call(
            Method::DELETE,
            &format!("/api/users/{second}"),
            Some(&second_token),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
}
