//! The session WebSockets (plain axum routes, outside the OpenAPI document):
//!
//! - `GET /ws/session/{code}` — signaling for the customer's client, no authentication (the
//!   code is the secret; failed look-ups are limited like `info`). Connect → `active`;
//!   `{"type":"ping"}` → `{"type":"pong"}`; `{"type":"disconnect"}` or closing the socket →
//!   `disconnected`; closing the session from the API sends `{"type":"closed"}` and closes.
//!   Unknown or closed codes are refused (404 / 410) before the upgrade; invalid messages are
//!   logged and skipped.
//! - `GET /ws/sessions/{id}/view` — the browser bridge for a technician (JWT via `?token=` or
//!   `Authorization: Bearer`; owner or admin). Each complete frame goes out as one binary
//!   message (the JPEG); a slow browser gets the newest frame and skips the rest. JSON text
//!   messages (`{"type":"mouse",…}`, `{"type":"key",…}`) become input packets for the client.
//!   `Origin`, when present, must be this server's own; the socket closes within a second once
//!   the token stops being valid.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::header::{AUTHORIZATION, ORIGIN};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use skyshift_proto::desk::BrowserInput;
use skyshift_proto::sessions::SignalMessage;
use tokio::sync::watch;
use utoipa_axum::router::OpenApiRouter;

use super::extract::ApiQuery;
use super::sessions::request_host;
use crate::auth::ClientAddr;
use crate::desk::{self, LiveSession};
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// How often the browser bridge re-checks its token.
const RECHECK: Duration = Duration::from_millis(500);
/// Close code for "policy violation" (the token is no longer valid).
const POLICY_VIOLATION: u16 = 1008;
const NORMAL: u16 = 1000;
/// Largest message either WebSocket accepts: both carry small JSON only (axum allows 64 MiB).
const MAX_MESSAGE: usize = 64 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .route("/ws/session/{code}", get(signaling))
        .route("/ws/sessions/{session_id}/view", get(bridge))
}

/// Resolves when `rx` turns true or its sender is gone; never with `None`.
async fn became_true(rx: Option<&mut watch::Receiver<bool>>) {
    match rx {
        Some(rx) => {
            let _ = rx.wait_for(|value| *value).await;
        }
        None => std::future::pending().await,
    }
}

fn text(message: &impl serde::Serialize) -> Message {
    Message::Text(serde_json::to_string(message).unwrap_or_default().into())
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }));
    let _ = tokio::time::timeout(Duration::from_millis(200), socket.send(frame)).await;
}

async fn signaling(
    State(state): State<AppState>,
    addr: ClientAddr,
    Path(code): Path<String>,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    let record = desk::lookup(&state, addr, &code).await?;
    let live = state.desk.live(record.id);
    Ok(ws
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| signal_loop(socket, state, record.id, live)))
}

async fn signal_loop(
    mut socket: WebSocket,
    state: AppState,
    id: i64,
    live: Option<Arc<LiveSession>>,
) {
    desk::signal_connected(&state, id).await;
    let mut closed = live.as_ref().map(|live| live.closed());
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(Message::Text(body))) => match serde_json::from_str::<SignalMessage>(&body) {
                    Ok(SignalMessage::Ping) => {
                        if socket.send(text(&SignalMessage::Pong)).await.is_err() {
                            break;
                        }
                    }
                    Ok(SignalMessage::Disconnect) => {
                        close(&mut socket, NORMAL, "disconnected").await;
                        break;
                    }
                    Ok(other) => {
                        tracing::info!(session = id, message = ?other, "signaling message ignored");
                    }
                    Err(err) => {
                        tracing::info!(session = id, error = %err, "invalid signaling message skipped");
                    }
                },
                Some(Ok(_)) => {}
            },
            () = became_true(closed.as_mut()) => {
                let _ = socket.send(text(&SignalMessage::Closed)).await;
                close(&mut socket, NORMAL, "session closed").await;
                break;
            }
        }
    }
    desk::signal_disconnected(&state, id).await;
}

#[derive(Debug, Deserialize)]
struct ViewQuery {
    token: Option<String>,
}

/// A browser's `Origin` must name this server: the host it connected to, or `--public-host`.
/// No `Origin` (not a browser) is allowed: such clients carry their token explicitly.
fn origin_allowed(headers: &HeaderMap, public_host: Option<&str>) -> bool {
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let Some(authority) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    let authority = authority.trim_end_matches('/');
    request_host(headers).is_some_and(|host| host.eq_ignore_ascii_case(authority))
        || public_host
            .is_some_and(|public| desk::host_without_port(authority).eq_ignore_ascii_case(public))
}

fn header_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|token| !token.is_empty())
}

async fn bridge(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ViewQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    if !origin_allowed(&headers, state.config.public_host.as_deref()) {
        tracing::warn!("cross-site WebSocket to the browser bridge refused");
        return Err(ApiError::Forbidden("Cross-site WebSocket refused".into()));
    }
    let token = query
        .token
        .filter(|t| !t.is_empty())
        .or_else(|| header_token(&headers))
        .ok_or_else(ApiError::unauthorized)?;
    let user = state.user_for_token(&token).await?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::NotFound("Session not found".into()))?;
    let live = desk::viewable(&state, &user, id).await?;
    Ok(ws
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| bridge_loop(socket, state, live, token)))
}

/// Counts a browser viewer while it lives.
struct ViewerCount(Arc<LiveSession>);

impl Drop for ViewerCount {
    fn drop(&mut self) {
        self.0
            .counters
            .bridge_viewers
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Stops a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn bridge_loop(
    mut socket: WebSocket,
    state: AppState,
    live: Arc<LiveSession>,
    token: String,
) {
    live.counters.bridge_viewers.fetch_add(1, Ordering::Relaxed);
    let _count = ViewerCount(live.clone());
    let mut frames = live.frames();
    if frames.borrow().is_some() {
        frames.mark_changed();
    }
    let mut closed = live.closed();
    let (revoked_tx, mut revoked) = watch::channel(false);
    let _checker = AbortOnDrop(tokio::spawn(recheck_token(
        state,
        token,
        live.clone(),
        revoked_tx,
    )));
    loop {
        tokio::select! {
            changed = frames.changed() => {
                if changed.is_err() {
                    break;
                }
                let frame = frames.borrow_and_update().clone();
                let Some(frame) = frame else { continue };
                // While the browser takes this frame, newer ones replace each other in the
                // watch: a slow browser skips frames instead of queueing them.
                tokio::select! {
                    sent = socket.send(Message::Binary(frame.jpeg)) => if sent.is_err() { break },
                    () = became_true(Some(&mut revoked)) => {
                        close(&mut socket, POLICY_VIOLATION, "token no longer valid").await;
                        break;
                    }
                    () = became_true(Some(&mut closed)) => {
                        close(&mut socket, NORMAL, "session closed").await;
                        break;
                    }
                }
            }
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(Message::Text(body))) => match serde_json::from_str::<BrowserInput>(&body) {
                    Ok(input) => live.send_input(input.to_packet()),
                    Err(err) => tracing::info!(session = live.id, error = %err, "invalid browser input skipped"),
                },
                Some(Ok(_)) => {}
            },
            () = became_true(Some(&mut revoked)) => {
                close(&mut socket, POLICY_VIOLATION, "token no longer valid").await;
                break;
            }
            () = became_true(Some(&mut closed)) => {
                let _ = socket.send(text(&SignalMessage::Closed)).await;
                close(&mut socket, NORMAL, "session closed").await;
                break;
            }
        }
    }
}

/// Re-checks the bridge's token (expiry, password change, demotion, deletion) and that its user
/// may still watch; flags `revoked` when not.
async fn recheck_token(
    state: AppState,
    token: String,
    live: Arc<LiveSession>,
    revoked: watch::Sender<bool>,
) {
    let mut ticks = tokio::time::interval(RECHECK);
    loop {
        ticks.tick().await;
        let still_valid = match state.user_for_token(&token).await {
            Ok(user) => desk::may_view(&user, &live),
            // A database hiccup is not a revoked token; the next tick decides.
            Err(ApiError::Internal(_)) => true,
            Err(_) => false,
        };
        if !still_valid {
            revoked.send_replace(true);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn origins_must_be_our_own() {
        let headers = |origin: Option<&'static str>| {
            let mut headers = HeaderMap::new();
            headers.insert("host", HeaderValue::from_static("remote.example.com:8443"));
            if let Some(origin) = origin {
                headers.insert(ORIGIN, HeaderValue::from_static(origin));
            }
            headers
        };
        assert!(origin_allowed(&headers(None), None));
        assert!(origin_allowed(
            &headers(Some("https://remote.example.com:8443")),
            None
        ));
        assert!(!origin_allowed(
            &headers(Some("https://evil.example.net")),
            None
        ));
        assert!(!origin_allowed(&headers(Some("null")), None));
        assert!(!origin_allowed(
            &headers(Some("https://remote.example.com")),
            None
        ));
        assert!(origin_allowed(
            &headers(Some("https://remote.example.com")),
            Some("remote.example.com")
        ));
    }
}
