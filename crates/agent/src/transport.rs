//! The server as the agent sees it: its HTTP endpoints (register, heartbeat, poll, status,
//! result) and the WebSocket handshake, over one rustls configuration. Statuses become
//! `CallError`s the runtime acts on; no credential ever reaches a log line or an error.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{StatusCode, Url};
use rustls::pki_types::ServerName;
use serde::de::DeserializeOwned;
use skyshift_proto::agent::{
    AgentRegisterRequest, AgentRegistered, HeartbeatRequest, PendingCommands, TaskResult,
    TaskStatus,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::WebSocketStream;
use uuid::Uuid;

use crate::state::Credentials;

/// Every HTTP request and the WebSocket handshake give up after this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// 401 or 404 on an agent endpoint: the server no longer knows this agent or its token.
    #[error("the server does not know this agent (HTTP {0})")]
    UnknownAgent(u16),
    /// 409: it already has what was sent (a result reported before).
    #[error("the server already has it (HTTP 409)")]
    Conflict,
    /// Any other status: the server answered but refused.
    #[error("the server answered HTTP {status}: {detail}")]
    Refused { status: u16, detail: String },
    /// No answer: connection refused, reset, timed out, TLS failure, upgrade refused.
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
}

impl CallError {
    /// Worth trying again later (as opposed to a definite answer).
    pub fn is_transient(&self) -> bool {
        match self {
            CallError::Unreachable(_) => true,
            CallError::Refused { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// A stream the WebSocket runs over: plain TCP or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub type Ws = WebSocketStream<Box<dyn Io>>;

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    tls: Arc<rustls::ClientConfig>,
}

/// `reqwest`'s error with its cause chain, without the URL. A body that does not decode is
/// described without serde's message, which may quote the body (commands carry secrets).
fn describe(error: reqwest::Error) -> String {
    if error.is_decode() {
        return "the response body is not the expected JSON".into();
    }
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl Api {
    pub fn new(tls: Arc<rustls::ClientConfig>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("skyshift-agent/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Api { http, tls })
    }

    fn url(base: &Url, path: &str) -> Url {
        base.join(path.trim_start_matches('/'))
            .expect("a path joined to a valid base URL")
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, CallError> {
        let response = request
            .send()
            .await
            .map_err(|e| CallError::Unreachable(describe(e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::NOT_FOUND => {
                CallError::UnknownAgent(status.as_u16())
            }
            StatusCode::CONFLICT => CallError::Conflict,
            _ => {
                let body = response.text().await.unwrap_or_default();
                let detail = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["detail"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| body.chars().take(200).collect());
                CallError::Refused {
                    status: status.as_u16(),
                    detail,
                }
            }
        })
    }

    async fn json<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, CallError> {
        response
            .json()
            .await
            .map_err(|e| CallError::Unreachable(describe(e)))
    }

    /// `POST /api/agents/register` with the customer API key. A 401 here is a bad key, not an
    /// unknown agent: it comes back as `Refused`.
    pub async fn register(
        &self,
        base: &Url,
        api_key: &str,
        request: &AgentRegisterRequest,
    ) -> Result<AgentRegistered, CallError> {
        let response = self
            .send(
                self.http
                    .post(Self::url(base, "api/agents/register"))
                    .bearer_auth(api_key)
                    .json(request),
            )
            .await
            .map_err(|e| match e {
                CallError::UnknownAgent(status) => CallError::Refused {
                    status,
                    detail: "the API key in id.ini was refused".into(),
                },
                other => other,
            })?;
        Self::json(response).await
    }

    pub async fn heartbeat(
        &self,
        base: &Url,
        credentials: &Credentials,
        request: &HeartbeatRequest,
    ) -> Result<(), CallError> {
        let path = format!("api/agents/{}/heartbeat", credentials.agent_id);
        self.send(
            self.http
                .post(Self::url(base, &path))
                .bearer_auth(&credentials.agent_token)
                .json(request),
        )
        .await
        .map(drop)
    }

    pub async fn poll(
        &self,
        base: &Url,
        credentials: &Credentials,
    ) -> Result<PendingCommands, CallError> {
        let path = format!("api/agents/{}/commands", credentials.agent_id);
        let response = self
            .send(
                self.http
                    .get(Self::url(base, &path))
                    .bearer_auth(&credentials.agent_token),
            )
            .await?;
        Self::json(response).await
    }

    /// Partial output of a running task (appended by the server).
    pub async fn post_status(
        &self,
        base: &Url,
        credentials: &Credentials,
        task_id: Uuid,
        output: &str,
    ) -> Result<(), CallError> {
        let path = format!("api/agents/{}/tasks/{task_id}/status", credentials.agent_id);
        let body = serde_json::json!({
            "status": TaskStatus::Running,
            "output": output,
            "error": null,
        });
        self.send(
            self.http
                .post(Self::url(base, &path))
                .bearer_auth(&credentials.agent_token)
                .json(&body),
        )
        .await
        .map(drop)
    }

    /// A task's final result. `Ok` when stored now; `Err(Conflict)` when it was stored before.
    pub async fn post_result(
        &self,
        base: &Url,
        credentials: &Credentials,
        task_id: Uuid,
        result: &TaskResult,
    ) -> Result<(), CallError> {
        let path = format!("api/agents/{}/tasks/{task_id}/result", credentials.agent_id);
        self.send(
            self.http
                .post(Self::url(base, &path))
                .bearer_auth(&credentials.agent_token)
                .json(result),
        )
        .await
        .map(drop)
    }

    /// Opens `/ws/agent/{id}` with the token in the `Authorization` header.
    pub async fn websocket(&self, base: &Url, credentials: &Credentials) -> Result<Ws, CallError> {
        let mut url = Self::url(base, &format!("ws/agent/{}", credentials.agent_id));
        let tls = url.scheme() == "https";
        url.set_scheme(if tls { "wss" } else { "ws" })
            .expect("ws and wss are valid schemes");
        let host = url
            .host_str()
            .ok_or_else(|| CallError::Unreachable("the server URL has no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| CallError::Unreachable(format!("bad WebSocket URL: {e}")))?;
        let bearer = HeaderValue::from_str(&format!("Bearer {}", credentials.agent_token))
            .map_err(|_| CallError::Unreachable("the agent token is not a valid header".into()))?;
        request.headers_mut().insert("Authorization", bearer);

        let connect = async {
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|e| CallError::Unreachable(format!("TCP connect: {e}")))?;
            let _ = tcp.set_nodelay(true);
            let stream: Box<dyn Io> = if tls {
                let name = ServerName::try_from(host.clone())
                    .map_err(|_| CallError::Unreachable(format!("bad server name {host}")))?;
                let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
                Box::new(
                    connector
                        .connect(name, tcp)
                        .await
                        .map_err(|e| CallError::Unreachable(format!("TLS: {e}")))?,
                )
            } else {
                Box::new(tcp)
            };
            let (ws, _response) = tokio_tungstenite::client_async(request, stream)
                .await
                .map_err(|e| match e {
                    tokio_tungstenite::tungstenite::Error::Http(response) => {
                        match response.status().as_u16() {
                            status @ (401 | 404) => CallError::UnknownAgent(status),
                            status => CallError::Refused {
                                status,
                                detail: "WebSocket upgrade refused".into(),
                            },
                        }
                    }
                    other => CallError::Unreachable(format!("WebSocket handshake: {other}")),
                })?;
            Ok(ws)
        };
        tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| CallError::Unreachable("WebSocket connect timed out".into()))?
    }
}
