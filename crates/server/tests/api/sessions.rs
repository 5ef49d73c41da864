//! `/api/sessions`: create, list, close, info by code, join tickets, the per-user cap, port
//! allocation, expiry and the limit on guessing codes.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use skyshift_proto::desk::{Control, Join, Packet};
use skyshift_server::config::PortRange;
use skyshift_server::store::FinalCounters;

use crate::helpers::{spawn_app_with, Db, TestApp};
use crate::on_both_backends;

on_both_backends!(
    session_lifecycle,
    owners_and_admins,
    per_user_cap,
    join_tickets,
    bad_requests
);

fn id_of(session: &Value) -> i64 {
    session["id"].as_i64().unwrap()
}

async fn session_lifecycle(app: TestApp) {
    let session = app
        .create_session(&app.admin_token, json!({"customer_name": "John Customer"}))
        .await;
    let code = session["session_code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 9);
    assert!(code.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(session["status"], "pending");
    assert_eq!(session["customer_name"], "John Customer");
    assert_eq!(session["customer_email"], Value::Null);
    assert_eq!(session["email_status"], Value::Null);
    assert_eq!(session["stats"]["frames"], 0);
    let port = session["udp_port"].as_u64().unwrap();
    assert!((50000..=60000).contains(&port));
    // The server really holds the port.
    assert!(std::net::UdpSocket::bind(("127.0.0.1", port as u16)).is_err());

    let info = app
        .get(&format!("/api/sessions/{code}/info"), None)
        .await
        .expect(StatusCode::OK);
    assert_eq!(info["session_code"], code.as_str());
    assert_eq!(info["udp_port"], port);
    assert_eq!(info["udp_host"], "127.0.0.1");
    assert_eq!(info["status"], "pending");

    let list = app.admin_get("/api/sessions").await.expect(StatusCode::OK);
    assert_eq!(list[0]["id"], session["id"]);

    let id = id_of(&session);
    let reply = app
        .delete(&format!("/api/sessions/{id}"), Some(&app.admin_token))
        .await
        .expect(StatusCode::OK);
    assert_eq!(reply["message"], "Session closed successfully");
    // Closing freed the port at once.
    std::net::UdpSocket::bind(("127.0.0.1", port as u16)).expect("port freed on close");
    let gone = app.get(&format!("/api/sessions/{code}/info"), None).await;
    assert_eq!(gone.status, StatusCode::GONE);
    let closed = app.session(id).await;
    assert_eq!(closed["status"], "closed");
    assert!(closed["closed_at"].is_string());

    let audit = app
        .admin_get("/api/audit?action=session.open")
        .await
        .expect(StatusCode::OK);
    assert!(audit.to_string().contains("session.open"), "{audit}");
    let audit = app
        .admin_get("/api/audit?action=session.close")
        .await
        .expect(StatusCode::OK);
    assert!(audit.to_string().contains(&id.to_string()), "{audit}");
}

async fn owners_and_admins(app: TestApp) {
    let (_, alice) = app.create_user("alice", "alice-pass-1", "tech").await;
    let (_, bob) = app.create_user("bob", "bob-pass-12", "tech").await;
    let theirs = app.create_session(&alice, json!({})).await;
    let mine = app.create_session(&bob, json!({})).await;

    let bobs = app
        .get("/api/sessions", Some(&bob))
        .await
        .expect(StatusCode::OK);
    let ids: Vec<i64> = bobs.as_array().unwrap().iter().map(id_of).collect();
    assert_eq!(ids, vec![id_of(&mine)], "a tech sees only their own");
    let all = app.admin_get("/api/sessions").await.expect(StatusCode::OK);
    assert_eq!(all.as_array().unwrap().len(), 2, "an admin sees all");
    assert_eq!(all[0]["id"], mine["id"], "newest first");

    let path = format!("/api/sessions/{}", id_of(&theirs));
    let denied = app.delete(&path, Some(&bob)).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let denied = app
        .post(&format!("{path}/join-ticket"), Some(&bob), json!({}))
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    app.delete(&path, Some(&app.admin_token))
        .await
        .expect(StatusCode::OK);
    app.delete(&format!("/api/sessions/{}", id_of(&mine)), Some(&bob))
        .await
        .expect(StatusCode::OK);
}

async fn per_user_cap(app: TestApp) {
    app.admin_post(
        "/api/users",
        json!({"username": "carol", "email": "carol@example.com", "password": "carol-pass-1",
               "role": "tech", "max_sessions": 2}),
    )
    .await
    .expect(StatusCode::OK);
    let carol = app.login("carol", "carol-pass-1").await;
    let first = app.create_session(&carol, json!({})).await;
    let second = app.create_session(&carol, json!({})).await;
    assert_ne!(first["session_code"], second["session_code"]);
    assert_ne!(first["udp_port"], second["udp_port"]);
    let refused = app.post("/api/sessions", Some(&carol), json!({})).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.detail().contains("Maximum concurrent sessions"));
    // A closed session no longer counts.
    app.delete(&format!("/api/sessions/{}", id_of(&first)), Some(&carol))
        .await
        .expect(StatusCode::OK);
    app.create_session(&carol, json!({})).await;
}

async fn join_tickets(app: TestApp) {
    let session = app.create_session(&app.admin_token, json!({})).await;
    let path = format!("/api/sessions/{}/join-ticket", id_of(&session));
    let one = app
        .admin_post(&path, json!({}))
        .await
        .expect(StatusCode::OK);
    let two = app
        .admin_post(&path, json!({}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(one["expires_in"], 60);
    let ticket = one["ticket"].as_str().unwrap();
    assert_eq!(ticket.len(), 64);
    assert_ne!(one["ticket"], two["ticket"]);
    let anonymous = app.post(&path, None, json!({})).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let missing = app
        .admin_post("/api/sessions/999999/join-ticket", json!({}))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    app.delete(
        &format!("/api/sessions/{}", id_of(&session)),
        Some(&app.admin_token),
    )
    .await
    .expect(StatusCode::OK);
    let closed = app.admin_post(&path, json!({})).await;
    assert_eq!(closed.status, StatusCode::GONE);
}

async fn bad_requests(app: TestApp) {
    assert_eq!(
        app.get("/api/sessions", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.post("/api/sessions", None, json!({})).await.status,
        StatusCode::UNAUTHORIZED
    );
    let bad_email = app
        .admin_post("/api/sessions", json!({"customer_email": "not an address"}))
        .await;
    assert_eq!(bad_email.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bad_type = app
        .admin_post("/api/sessions", json!({"customer_name": 5}))
        .await;
    assert_eq!(bad_type.status, StatusCode::UNPROCESSABLE_ENTITY);
    for path in ["/api/sessions/424242", "/api/sessions/not-a-number"] {
        let missing = app.delete(path, Some(&app.admin_token)).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{path}");
    }
    let unknown = app.get("/api/sessions/000000000/info", None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.detail(), "Session not found");
}

// Tests with their own configuration: each backend gets its own tiny port range, far from the
// default 50000-60000, so parallel tests never compete for them.

mod with_config {
    use super::*;

    #[tokio::test]
    async fn port_exhaustion_and_reuse_sqlite() {
        port_exhaustion_and_reuse(Db::Sqlite, 61_101).await;
    }

    #[tokio::test]
    async fn port_exhaustion_and_reuse_postgres() {
        port_exhaustion_and_reuse(Db::Postgres, 61_111).await;
    }

    #[tokio::test]
    async fn pending_sessions_expire_sqlite() {
        pending_sessions_expire(Db::Sqlite).await;
    }

    #[tokio::test]
    async fn pending_sessions_expire_postgres() {
        pending_sessions_expire(Db::Postgres).await;
    }

    #[tokio::test]
    async fn code_guessing_is_limited_sqlite() {
        code_guessing_is_limited(Db::Sqlite).await;
    }

    #[tokio::test]
    async fn code_guessing_is_limited_postgres() {
        code_guessing_is_limited(Db::Postgres).await;
    }

    #[tokio::test]
    async fn distributed_guessing_is_limited_sqlite() {
        distributed_guessing_is_limited(Db::Sqlite).await;
    }

    #[tokio::test]
    async fn distributed_guessing_is_limited_postgres() {
        distributed_guessing_is_limited(Db::Postgres).await;
    }
}

async fn port_exhaustion_and_reuse(db: Db, first: u16) {
    let app = spawn_app_with(db, |config| {
        config.udp_port_range = PortRange {
            first,
            last: first + 1,
        };
    })
    .await;
    let one = app.create_session(&app.admin_token, json!({})).await;
    let two = app.create_session(&app.admin_token, json!({})).await;
    let mut ports = [
        one["udp_port"].as_u64().unwrap(),
        two["udp_port"].as_u64().unwrap(),
    ];
    ports.sort();
    assert_eq!(ports, [u64::from(first), u64::from(first) + 1]);

    let none_free = app.admin_post("/api/sessions", json!({})).await;
    assert_eq!(none_free.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        none_free.detail().contains("Failed to allocate UDP port"),
        "{:?}",
        none_free.body
    );

    app.delete(
        &format!("/api/sessions/{}", id_of(&one)),
        Some(&app.admin_token),
    )
    .await
    .expect(StatusCode::OK);
    let three = app.create_session(&app.admin_token, json!({})).await;
    assert_eq!(
        three["udp_port"], one["udp_port"],
        "the freed port is reused"
    );
}

async fn pending_sessions_expire(db: Db) {
    let app = spawn_app_with(db, |config| {
        config.session_expiry = Duration::from_secs(1);
    })
    .await;
    let session = app.create_session(&app.admin_token, json!({})).await;
    let id = id_of(&session);
    let closed = app
        .wait_for_session(id, "closed", |s| s["status"] == "closed")
        .await;
    assert!(closed["closed_at"].is_string());
    let code = session["session_code"].as_str().unwrap();
    let gone = app.get(&format!("/api/sessions/{code}/info"), None).await;
    assert_eq!(gone.status, StatusCode::GONE);
    let audit = app
        .admin_get("/api/audit?action=session.expire")
        .await
        .expect(StatusCode::OK);
    assert!(audit.to_string().contains(&id.to_string()), "{audit}");

    // A session closed by another replica (straight in the database): this one stops its relay
    // and frees the port on its next round.
    let other = app.create_session(&app.admin_token, json!({})).await;
    let port = other["udp_port"].as_u64().unwrap() as u16;
    assert!(std::net::UdpSocket::bind(("127.0.0.1", port)).is_err());
    app.state
        .store
        .close_session(id_of(&other), chrono::Utc::now(), FinalCounters::default())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while std::net::UdpSocket::bind(("127.0.0.1", port)).is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "port {port} never freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Requests from "other addresses": the test server trusts 127.0.0.1 as a proxy, so
/// `X-Forwarded-For` names the client.
async fn info_from(app: &TestApp, code: &str, client: &str) -> StatusCode {
    app.client
        .get(format!("{}/api/sessions/{code}/info", app.base))
        .header("x-forwarded-for", client)
        .send()
        .await
        .unwrap()
        .status()
}

async fn code_guessing_is_limited(db: Db) {
    let app = spawn_app_with(db, |config| {
        config.trusted_proxy = vec!["127.0.0.1".parse().unwrap()];
        config.code_guess_addr_limit = 3;
        config.code_guess_global_limit = 1000;
    })
    .await;
    let session = app.create_session(&app.admin_token, json!({})).await;
    let code = session["session_code"].as_str().unwrap();
    let wrong = if code == "111111111" {
        "222222222"
    } else {
        "111111111"
    };
    for _ in 0..2 {
        assert_eq!(
            info_from(&app, wrong, "198.51.100.1").await,
            StatusCode::NOT_FOUND
        );
    }
    // The third failure over the WebSocket counts too.
    let refused = app
        .ws(
            &format!("/ws/session/{wrong}"),
            &[("x-forwarded-for", "198.51.100.1")],
        )
        .await
        .err();
    assert_eq!(refused, Some(StatusCode::NOT_FOUND));
    let limited = app
        .client
        .get(format!("{}/api/sessions/{code}/info", app.base))
        .header("x-forwarded-for", "198.51.100.1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        limited.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right code"
    );
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(
        info_from(&app, code, "198.51.100.2").await,
        StatusCode::OK,
        "others go on"
    );

    // Wrong codes in UDP hellos count against the sender's address too (127.0.0.1 here):
    // past the limit even the right code is refused, and so is `info` from that address.
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = session["udp_port"].as_u64().unwrap() as u16;
    udp.connect(("127.0.0.1", port)).await.unwrap();
    let hello = |code: &str| {
        Packet::control(&Control::Hello {
            join: Join::Client { code: code.into() },
        })
        .encode()
    };
    let mut buf = [0u8; 2048];
    for attempt in [wrong, wrong, wrong, code] {
        udp.send(&hello(attempt)).await.unwrap();
        let len = tokio::time::timeout(Duration::from_secs(5), udp.recv(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        let Ok(Packet::Control(reply)) = Packet::decode(&buf[..len]) else {
            panic!("not a control packet");
        };
        assert!(
            matches!(Control::parse(&reply), Some(Control::Error { .. })),
            "{attempt}: {reply}"
        );
    }
    let local = app.get(&format!("/api/sessions/{code}/info"), None).await;
    assert_eq!(local.status, StatusCode::TOO_MANY_REQUESTS);
}

async fn distributed_guessing_is_limited(db: Db) {
    let app = spawn_app_with(db, |config| {
        config.trusted_proxy = vec!["127.0.0.1".parse().unwrap()];
        config.code_guess_addr_limit = 100;
        config.code_guess_global_limit = 4;
    })
    .await;
    let session = app.create_session(&app.admin_token, json!({})).await;
    let code = session["session_code"].as_str().unwrap();
    let wrong = if code == "111111111" {
        "222222222"
    } else {
        "111111111"
    };
    for client in 1..=4 {
        let addr = format!("203.0.113.{client}");
        assert_eq!(info_from(&app, wrong, &addr).await, StatusCode::NOT_FOUND);
    }
    assert_eq!(
        info_from(&app, code, "203.0.113.99").await,
        StatusCode::TOO_MANY_REQUESTS,
        "a guess spread over many addresses is slowed for everyone"
    );
}
