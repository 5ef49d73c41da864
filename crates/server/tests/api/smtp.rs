//! Mail against a real SMTP server written here (tokio, a real socket on 127.0.0.1:0, AUTH
//! PLAIN and LOGIN): the settings endpoints, the test mail, and the session-code mail.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(smtp_settings_and_test_mail, session_code_is_mailed);

const SMTP_PASSWORD: &str = "smtp-Secret-9";

/// One mail as the server received it.
#[derive(Debug, Clone, Default)]
struct Mail {
    /// (mechanism, username, password)
    auth: Option<(String, String, String)>,
    from: String,
    to: Vec<String>,
    data: String,
}

struct SmtpServer {
    port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    arrived: Arc<Notify>,
}

impl SmtpServer {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let arrived = Arc::new(Notify::new());
        let (store, notify) = (mails.clone(), arrived.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(converse(stream, store.clone(), notify.clone()));
            }
        });
        Self {
            port,
            mails,
            arrived,
        }
    }

    /// Waits for the `count`th mail.
    async fn mail(&self, count: usize) -> Mail {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let notified = self.arrived.notified();
                if let Some(mail) = self.mails.lock().unwrap().get(count - 1) {
                    return mail.clone();
                }
                notified.await;
            }
        })
        .await
        .expect("the mail arrives")
    }
}

fn decode(text: &str) -> String {
    String::from_utf8(BASE64.decode(text.trim()).unwrap()).unwrap()
}

async fn converse(
    stream: tokio::net::TcpStream,
    mails: Arc<Mutex<Vec<Mail>>>,
    arrived: Arc<Notify>,
) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let _ = write.write_all(b"220 smtp.test ESMTP ready\r\n").await;
    let mut mail = Mail::default();
    let mut auth = None;
    while let Ok(Some(line)) = lines.next_line().await {
        let upper = line.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            "250-smtp.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME".into()
        } else if upper.starts_with("HELO")
            || upper.starts_with("RSET")
            || upper.starts_with("NOOP")
        {
            "250 OK".into()
        } else if let Some(initial) = upper
            .strip_prefix("AUTH PLAIN")
            .map(|_| line[10..].trim().to_owned())
        {
            let encoded = if initial.is_empty() {
                let _ = write.write_all(b"334 \r\n").await;
                lines.next_line().await.ok().flatten().unwrap_or_default()
            } else {
                initial
            };
            let plain = decode(&encoded);
            let parts: Vec<&str> = plain.split('\0').collect();
            auth = Some(("PLAIN".to_owned(), parts[1].to_owned(), parts[2].to_owned()));
            "235 2.7.0 Authentication successful".into()
        } else if upper.starts_with("AUTH LOGIN") {
            let _ = write.write_all(b"334 VXNlcm5hbWU6\r\n").await;
            let user = decode(&lines.next_line().await.ok().flatten().unwrap_or_default());
            let _ = write.write_all(b"334 UGFzc3dvcmQ6\r\n").await;
            let pass = decode(&lines.next_line().await.ok().flatten().unwrap_or_default());
            auth = Some(("LOGIN".to_owned(), user, pass));
            "235 2.7.0 Authentication successful".into()
        } else if upper.starts_with("MAIL FROM:") {
            mail.from = line[10..].trim().to_owned();
            "250 2.1.0 OK".into()
        } else if upper.starts_with("RCPT TO:") {
            mail.to
                .push(line[8..].trim().trim_matches(['<', '>']).to_owned());
            "250 2.1.5 OK".into()
        } else if upper == "DATA" {
            let _ = write
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await;
            while let Ok(Some(data)) = lines.next_line().await {
                if data == "." {
                    break;
                }
                mail.data.push_str(&data);
                mail.data.push('\n');
            }
            mail.auth = auth.clone();
            mails.lock().unwrap().push(std::mem::take(&mut mail));
            arrived.notify_waiters();
            "250 2.0.0 Ok: queued as TEST42".into()
        } else if upper.starts_with("QUIT") {
            let _ = write.write_all(b"221 2.0.0 Bye\r\n").await;
            return;
        } else {
            "502 5.5.2 Command not recognized".into()
        };
        if write
            .write_all(format!("{reply}\r\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

fn settings(port: u16) -> Value {
    json!({
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "security_type": "NONE",
        "username": "mailer",
        "password": SMTP_PASSWORD,
        "from_email": "noreply@example.com",
        "require_auth": true,
    })
}

async fn smtp_settings_and_test_mail(app: TestApp) {
    let smtp = SmtpServer::start().await;
    let view = app
        .admin_get("/api/smtp/config")
        .await
        .expect(StatusCode::OK);
    assert_eq!(view, json!({"configured": false}));
    let not_configured = app
        .admin_post("/api/smtp/test", json!({"to_email": "x@example.com"}))
        .await;
    assert_eq!(not_configured.status, StatusCode::BAD_REQUEST);

    let (_, tech) = app.create_user("tina", "tina-pass-1", "tech").await;
    assert_eq!(
        app.get("/api/smtp/config", Some(&tech)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post("/api/smtp/config", Some(&tech), settings(smtp.port))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post(
            "/api/smtp/test",
            Some(&tech),
            json!({"to_email": "x@example.com"})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );

    let mut bad = settings(smtp.port);
    bad["security_type"] = json!("CARRIER_PIGEON");
    assert_eq!(
        app.admin_post("/api/smtp/config", bad).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let mut bad = settings(smtp.port);
    bad["from_email"] = json!("nobody");
    assert_eq!(
        app.admin_post("/api/smtp/config", bad).await.status,
        StatusCode::BAD_REQUEST
    );
    let mut bad = settings(smtp.port);
    bad.as_object_mut().unwrap().remove("password");
    assert_eq!(
        app.admin_post("/api/smtp/config", bad).await.status,
        StatusCode::BAD_REQUEST,
        "auth without a password"
    );

    let saved = app
        .admin_post("/api/smtp/config", settings(smtp.port))
        .await
        .expect(StatusCode::OK);
    assert_eq!(saved["message"], "SMTP configured successfully");
    let view = app
        .admin_get("/api/smtp/config")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        view,
        json!({"configured": true, "smtp_host": "127.0.0.1", "smtp_port": smtp.port,
               "security_type": "NONE", "username": "mailer",
               "from_email": "noreply@example.com", "require_auth": true})
    );
    let stored = app.state.store.setting("smtp").await.unwrap().unwrap();
    assert!(!stored.contains(SMTP_PASSWORD), "sealed at rest");

    let result = app
        .admin_post("/api/smtp/test", json!({"to_email": "tech@example.com"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(result["smtp_response"], "250 2.0.0 Ok: queued as TEST42");
    let mail = smtp.mail(1).await;
    assert_eq!(mail.to, vec!["tech@example.com"]);
    assert_eq!(mail.from, "<noreply@example.com>");
    assert_eq!(
        mail.auth,
        Some(("PLAIN".into(), "mailer".into(), SMTP_PASSWORD.into()))
    );
    assert!(mail.data.contains("Subject: SkyShift Remote test message"));

    // Saving without a password keeps the stored one.
    let mut again = settings(smtp.port);
    again.as_object_mut().unwrap().remove("password");
    app.admin_post("/api/smtp/config", again)
        .await
        .expect(StatusCode::OK);
    app.admin_post("/api/smtp/test", json!({"to_email": "tech@example.com"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(smtp.mail(2).await.auth.unwrap().2, SMTP_PASSWORD);

    // TLS that the server cannot do is an error the admin can read, not a hang or a 500.
    for security in ["TLS", "SSL"] {
        let mut tls = settings(smtp.port);
        tls["security_type"] = json!(security);
        app.admin_post("/api/smtp/config", tls)
            .await
            .expect(StatusCode::OK);
        let failed = app
            .admin_post("/api/smtp/test", json!({"to_email": "tech@example.com"}))
            .await;
        assert_eq!(failed.status, StatusCode::BAD_REQUEST, "{security}");
        assert!(
            failed.detail().starts_with("Test email failed"),
            "{:?}",
            failed.body
        );
        assert!(!failed.detail().contains(SMTP_PASSWORD));
    }

    // The password appears in no response and no audit entry.
    let audit = app
        .admin_get("/api/audit?action=smtp.")
        .await
        .expect(StatusCode::OK);
    assert!(audit.to_string().contains("smtp.configure"));
    assert!(!audit.to_string().contains(SMTP_PASSWORD));
}

async fn session_code_is_mailed(app: TestApp) {
    // Without SMTP settings the mail fails, the session does not.
    let unsent = app
        .create_session(
            &app.admin_token,
            json!({"customer_email": "first@example.com"}),
        )
        .await;
    assert_eq!(unsent["email_status"], "pending");
    app.wait_for_session(unsent["id"].as_i64().unwrap(), "a failed mail", |s| {
        s["email_status"] == "failed"
    })
    .await;

    let smtp = SmtpServer::start().await;
    app.admin_post("/api/smtp/config", settings(smtp.port))
        .await
        .expect(StatusCode::OK);
    let session = app
        .create_session(
            &app.admin_token,
            json!({"customer_name": "John Customer", "customer_email": "customer@example.com"}),
        )
        .await;
    assert_eq!(session["customer_email"], "customer@example.com");
    let code = session["session_code"].as_str().unwrap();
    let mail = smtp.mail(1).await;
    assert_eq!(mail.to, vec!["customer@example.com"]);
    assert!(mail.data.contains(code), "{}", mail.data);
    assert!(
        mail.data.contains("skyshift-client"),
        "how to join: {}",
        mail.data
    );
    assert_eq!(mail.auth.map(|a| a.1), Some("mailer".to_owned()));
    app.wait_for_session(session["id"].as_i64().unwrap(), "a sent mail", |s| {
        s["email_status"] == "sent"
    })
    .await;
}
