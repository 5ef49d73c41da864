//! Approvals and roles.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    pending_users_are_listed_and_decided,
    roles_change,
    admin_endpoints_need_an_admin
);

async fn pending_users_are_listed_and_decided(app: TestApp) {
    let quinn = app.register("quinn", "quinn-pass-1").await;
    let rae = app.register("rae", "rae-pass-123").await;
    let pending = app
        .admin_get("/api/admin/pending-users")
        .await
        .expect(StatusCode::OK);
    let names: Vec<&str> = pending
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["quinn", "rae"]);
    assert_eq!(pending[0]["is_active"], false);

    let approved = app
        .admin_post(&format!("/api/admin/users/{quinn}/approve"), json!({}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(approved["status"], "active");
    app.admin_post(&format!("/api/admin/users/{rae}/reject"), json!({}))
        .await
        .expect(StatusCode::OK);
    let pending = app
        .admin_get("/api/admin/pending-users")
        .await
        .expect(StatusCode::OK);
    assert_eq!(pending, json!([]));

    // An active user is not "rejected"; it is deleted.
    let reply = app
        .admin_post(&format!("/api/admin/users/{quinn}/reject"), json!({}))
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    // A rejected user can still be approved later.
    app.admin_post(&format!("/api/admin/users/{rae}/approve"), json!({}))
        .await
        .expect(StatusCode::OK);
    app.login("rae", "rae-pass-123").await;

    for action in ["approve", "reject", "make-admin", "remove-admin"] {
        let reply = app
            .admin_post(
                &format!("/api/admin/users/00000000-0000-0000-0000-000000000000/{action}"),
                json!({}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{action}");
        assert_eq!(reply.detail(), "User not found");
    }
}

async fn roles_change(app: TestApp) {
    let (sam, sam_token) = app.create_user("sam", "sam-pass-123", "tech").await;
    assert_eq!(
        app.get("/api/users", Some(&sam_token)).await.status,
        StatusCode::FORBIDDEN
    );
    let promoted = app
        .admin_post(&format!("/api/admin/users/{sam}/make-admin"), json!({}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(promoted["role"], "admin");
    assert_eq!(promoted["is_admin"], true);
    // The role is read on every request: the same token now may do admin things.
    app.get("/api/users", Some(&sam_token))
        .await
        .expect(StatusCode::OK);

    let demoted = app
        .admin_post(&format!("/api/admin/users/{sam}/remove-admin"), json!({}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(demoted["role"], "tech");
    // A demotion revokes the tokens issued before it.
    assert_eq!(
        app.get("/api/users/profile", Some(&sam_token)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let token = app.login("sam", "sam-pass-123").await;
    assert_eq!(
        app.get("/api/users", Some(&token)).await.status,
        StatusCode::FORBIDDEN
    );
}

async fn admin_endpoints_need_an_admin(app: TestApp) {
    let (tess, token) = app.create_user("tess", "tess-pass-12", "tech").await;
    let get_paths = ["/api/admin/pending-users", "/api/audit", "/api/users"];
    for path in get_paths {
        assert_eq!(
            app.get(path, Some(&token)).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
        assert_eq!(
            app.get(path, None).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    for action in ["approve", "reject", "make-admin", "remove-admin"] {
        let path = format!("/api/admin/users/{tess}/{action}");
        assert_eq!(
            app.post(&path, Some(&token), json!({})).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
        assert_eq!(
            app.post(&path, None, json!({})).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
}
