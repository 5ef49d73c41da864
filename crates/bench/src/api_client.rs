//! The server's REST API as the bench uses it: sign in as the administrator, a customer with an
//! API key, agent registration, commands, tasks and sessions. Loopback only.

use anyhow::{bail, Context};
use reqwest::{Client, Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use skyshift_proto::agent::{
    AgentRegisterRequest, AgentRegistered, ApiKeyCreated, BulkCommandAccepted, BulkCommandRequest,
    CommandAccepted, CommandRequest, Customer, CustomerRequest, ShellType, Task,
};
use skyshift_proto::api::LoginRequest;
use skyshift_proto::sessions::{CreateSessionRequest, JoinTicket, Session};

/// A signed-in administrator on one server.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: Client,
    pub token: String,
}

/// Refuses anything but a loopback address: the bench aims its traffic nowhere else.
pub fn check_loopback(base: &str) -> anyhow::Result<String> {
    let url = reqwest::Url::parse(base).with_context(|| format!("not a URL: {base}"))?;
    let host = url.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!("the bench only runs against a server on loopback (127.0.0.1, ::1, localhost), not {host}");
    }
    Ok(base.trim_end_matches('/').to_string())
}

pub fn http_client(pool: usize) -> anyhow::Result<Client> {
    Ok(Client::builder()
        .pool_max_idle_per_host(pool)
        .tcp_nodelay(true)
        .build()?)
}

impl Api {
    pub async fn login(base: &str, password: &str) -> anyhow::Result<Self> {
        let base = check_loopback(base)?;
        let http = http_client(256)?;
        let token = login_token(&http, &base, "admin", password).await?;
        Ok(Self { base, http, token })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> anyhow::Result<T> {
        let mut request = self
            .http
            .request(method.clone(), self.url(path))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            bail!("{method} {path}: {status} {text}");
        }
        Ok(response.json().await?)
    }

    /// A new customer with a fresh API key (`sk_…`).
    pub async fn customer_with_key(&self, name: &str) -> anyhow::Result<(String, String)> {
        let customer: Customer = self
            .call(
                Method::POST,
                "/api/customers",
                Some(&CustomerRequest {
                    name: name.to_string(),
                    address: None,
                }),
            )
            .await?;
        let id = customer.customer_uuid.to_string();
        let key: ApiKeyCreated = self
            .call(
                Method::POST,
                &format!("/api/customers/{id}/generate-api-key"),
                None::<&()>,
            )
            .await?;
        Ok((id, key.api_key))
    }

    pub async fn command(&self, agent_id: &str, command: &str) -> anyhow::Result<CommandAccepted> {
        self.call(
            Method::POST,
            &format!("/api/agents/{agent_id}/commands"),
            Some(&command_request(command)),
        )
        .await
    }

    pub async fn bulk_command(
        &self,
        customer_uuid: &str,
        command: &str,
    ) -> anyhow::Result<BulkCommandAccepted> {
        self.call(
            Method::POST,
            "/api/commands",
            Some(&BulkCommandRequest {
                command: command_request(command),
                agent_ids: None,
                customer_uuid: Some(customer_uuid.to_string()),
            }),
        )
        .await
    }

    pub async fn task(&self, agent_id: &str, task_id: &str) -> anyhow::Result<Task> {
        self.call(
            Method::GET,
            &format!("/api/agents/{agent_id}/tasks/{task_id}"),
            None::<&()>,
        )
        .await
    }

    pub async fn create_session(&self) -> anyhow::Result<Session> {
        self.call(
            Method::POST,
            "/api/sessions",
            Some(&CreateSessionRequest {
                customer_name: Some("skyshift-bench".into()),
                customer_email: None,
            }),
        )
        .await
    }

    pub async fn join_ticket(&self, session_id: i64) -> anyhow::Result<String> {
        let ticket: JoinTicket = self
            .call(
                Method::POST,
                &format!("/api/sessions/{session_id}/join-ticket"),
                None::<&()>,
            )
            .await?;
        Ok(ticket.ticket)
    }

    pub async fn close_session(&self, session_id: i64) -> anyhow::Result<()> {
        self.http
            .delete(self.url(&format!("/api/sessions/{session_id}")))
            .bearer_auth(&self.token)
            .send()
            .await?;
        Ok(())
    }
}

pub async fn login_token(
    http: &Client,
    base: &str,
    username: &str,
    password: &str,
) -> anyhow::Result<String> {
    #[derive(serde::Deserialize)]
    struct Token {
        access_token: String,
    }
    let response = http
        .post(format!("{base}/api/auth/login"))
        .json(&LoginRequest {
            username: Some(username.to_string()),
            email: None,
            password: password.to_string(),
        })
        .send()
        .await
        .with_context(|| format!("cannot reach {base}"))?;
    if response.status() == StatusCode::UNAUTHORIZED {
        bail!("sign-in as {username} refused: pass --admin-password (or SKYSHIFT_ADMIN_PASSWORD)");
    }
    let status = response.status();
    if !status.is_success() {
        bail!(
            "sign-in: {status} {}",
            response.text().await.unwrap_or_default()
        );
    }
    Ok(response.json::<Token>().await?.access_token)
}

pub fn command_request(command: &str) -> CommandRequest {
    CommandRequest {
        command: command.to_string(),
        args: None,
        shell_type: ShellType::Bash,
        timeout: Some(60),
        working_directory: None,
        environment: None,
    }
}

/// Registers one agent with a customer's API key: (agent_id, agent_token).
pub async fn register_agent(
    http: &Client,
    base: &str,
    api_key: &str,
    hostname: &str,
) -> anyhow::Result<(String, String)> {
    let response = http
        .post(format!("{base}/api/agents/register"))
        .bearer_auth(api_key)
        .json(&AgentRegisterRequest {
            hostname: hostname.to_string(),
            ip_address: "127.0.0.1".into(),
            port: 8080,
            capabilities: vec!["bash".into()],
            version: "skyshift-bench".into(),
            customer_uuid: None,
        })
        .send()
        .await?;
    let status = response.status();
    if !status.is_success() {
        bail!(
            "register: {status} {}",
            response.text().await.unwrap_or_default()
        );
    }
    let registered: AgentRegistered = response.json().await?;
    Ok((registered.agent_id.to_string(), registered.agent_token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback() {
        assert_eq!(
            check_loopback("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(check_loopback("http://localhost:1").is_ok());
        assert!(check_loopback("http://[::1]:1").is_ok());
        assert!(check_loopback("http://10.0.0.1:8080").is_err());
        assert!(check_loopback("http://example.com").is_err());
    }
}
