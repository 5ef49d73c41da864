//! Forged, expired and revoked tokens are refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    forged_and_expired_tokens_are_refused,
    malformed_credentials_are_refused
);

fn claims(user_id: &str, exp_offset: i64) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": user_id, "ver": 0, "iat": now, "exp": now + exp_offset})
}

async fn forged_and_expired_tokens_are_refused(app: TestApp) {
    let me = app
        .get("/api/users/profile", Some(&app.admin_token))
        .await
        .expect(StatusCode::OK);
    let admin_id = me["id"].as_str().unwrap();
    let secret = app
        .state
        .store
        .setting_or_insert("jwt_secret", "unused")
        .await
        .unwrap();

    // Sanity: a token we sign with the real secret and good claims is accepted, so the
    // refusals below are about what each one changes.
    let genuine = encode(
        &Header::default(),
        &claims(admin_id, 600),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    app.get("/api/users/profile", Some(&genuine))
        .await
        .expect(StatusCode::OK);

    let expired = encode(
        &Header::default(),
        &claims(admin_id, -10),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    let other_key = encode(
        &Header::default(),
        &claims(admin_id, 600),
        &EncodingKey::from_secret(b"someone else's secret"),
    )
    .unwrap();
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims(admin_id, 600).to_string())
    );
    let hs512 = encode(
        &Header::new(jsonwebtoken::Algorithm::HS512),
        &claims(admin_id, 600),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    let mut stale_claims = claims(admin_id, 600);
    stale_claims["ver"] = json!(-1);
    let stale_version = encode(
        &Header::default(),
        &stale_claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    let unknown_user = encode(
        &Header::default(),
        &claims("00000000-0000-0000-0000-000000000000", 600),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();

    for (what, token) in [
        ("expired", &expired),
        ("signed with another key", &other_key),
        ("alg none", &alg_none),
        ("another algorithm", &hs512),
        ("stale token version", &stale_version),
        ("unknown user", &unknown_user),
    ] {
        let reply = app.get("/api/users/profile", Some(token)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(reply.detail(), "Could not validate credentials", "{what}");
        assert_eq!(reply.headers["www-authenticate"], "Bearer");
    }
}

async fn malformed_credentials_are_refused(app: TestApp) {
    for header in [
        "Bearer",
        "Bearer not.a.jwt",
        "Basic YWRtaW46YWRtaW4=",
        "garbage",
    ] {
        let reply = app
            .client
            .get(format!("{}/api/users/profile", app.base))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::UNAUTHORIZED, "{header}");
    }
}
