//! Extractors that prove who is asking. A handler that takes `AuthUser` only runs for a signed-in,
//! active user whose token is still current; `AdminUser` adds the admin role; `CustomerKey` is a
//! customer's API key; `Caller` is either a user or a customer; `AgentToken` carries an agent's
//! token for the service to check against the agent in the path.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use skyshift_proto::api::UserStatus;

use crate::auth::keys;
use crate::error::ApiError;
use crate::store::{CustomerRecord, UserRecord};
use crate::AppState;

/// The bearer token of a request, from `Authorization: Bearer …`.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// The credential of a request: `Authorization: Bearer …`, else `X-API-Key`.
fn credential(parts: &Parts) -> Option<&str> {
    bearer_token(parts).or_else(|| {
        parts
            .headers
            .get("x-api-key")?
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|key| !key.is_empty())
    })
}

/// A customer proven by its API key (`sk_…`).
#[derive(Debug, Clone)]
pub struct CustomerKey(pub CustomerRecord);

impl FromRequestParts<AppState> for CustomerKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = credential(parts).ok_or_else(ApiError::unauthorized)?;
        Ok(CustomerKey(state.customer_for_key(key).await?))
    }
}

/// A user (JWT) or a customer (API key): who may work with agents, tasks and scripts.
#[derive(Debug, Clone)]
pub enum Caller {
    User(UserRecord),
    Customer(CustomerRecord),
}

impl Caller {
    /// The customer whose resources alone this caller may see; `None` for users (all).
    pub fn customer_scope(&self) -> Option<&str> {
        match self {
            Caller::User(_) => None,
            Caller::Customer(customer) => Some(&customer.id),
        }
    }

    /// `user:<name>` or `customer:<name>`, as tasks record who started them.
    pub fn label(&self) -> String {
        match self {
            Caller::User(user) => format!("user:{}", user.username),
            Caller::Customer(customer) => format!("customer:{}", customer.name),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let credential = credential(parts).ok_or_else(ApiError::unauthorized)?;
        if credential.starts_with(keys::API_KEY_PREFIX) {
            Ok(Caller::Customer(state.customer_for_key(credential).await?))
        } else {
            Ok(Caller::User(state.user_for_token(credential).await?))
        }
    }
}

/// An agent's token, from `Authorization: Bearer …` or (for WebSockets, which browsers and
/// some libraries cannot give headers) `?token=`. Checked by the agent service against the
/// agent named in the path.
#[derive(Debug, Clone)]
pub struct AgentToken(pub String);

impl FromRequestParts<AppState> for AgentToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, ApiError> {
        if let Some(token) = bearer_token(parts) {
            return Ok(AgentToken(token.to_owned()));
        }
        query_token(parts)
            .map(AgentToken)
            .ok_or_else(ApiError::unauthorized)
    }
}

/// `token` from the query string.
pub fn query_token(parts: &Parts) -> Option<String> {
    let query = parts.uri.query()?;
    url_pairs(query)
        .find(|(key, _)| key == "token")
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

fn url_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .unwrap_or_default()
        .into_iter()
}

/// A signed-in user with an active account and a current token.
#[derive(Debug, Clone)]
pub struct AuthUser(pub UserRecord);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts).ok_or_else(ApiError::unauthorized)?;
        let user = state.user_for_token(token).await?;
        Ok(AuthUser(user))
    }
}

impl AppState {
    /// The user a token stands for, if the token is genuine, unexpired and still current.
    pub async fn user_for_token(&self, token: &str) -> Result<UserRecord, ApiError> {
        let invalid = || ApiError::Unauthorized("Could not validate credentials".into());
        let claims = self.jwt.verify(token).ok_or_else(invalid)?;
        let user = self
            .store
            .user_by_id(&claims.sub)
            .await?
            .ok_or_else(invalid)?;
        if user.status() != UserStatus::Active || user.token_version != claims.ver {
            return Err(invalid());
        }
        Ok(user)
    }
}

impl AppState {
    /// The customer an API key belongs to; records the use.
    pub async fn customer_for_key(&self, key: &str) -> Result<CustomerRecord, ApiError> {
        let customer = self
            .store
            .customer_by_key_hash(&keys::digest(key))
            .await?
            .ok_or_else(|| ApiError::Unauthorized("Invalid API key".into()))?;
        self.store.touch_api_key(&customer.id).await?;
        Ok(customer)
    }
}

/// A signed-in user with the admin role.
#[derive(Debug, Clone)]
pub struct AdminUser(pub UserRecord);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AuthUser(user) = AuthUser::from_request_parts(parts, state).await?;
        if !user.is_admin() {
            return Err(ApiError::admin_only());
        }
        Ok(AdminUser(user))
    }
}

/// The client's address: the peer's, or, only when the peer is a trusted proxy, the nearest
/// untrusted address in `X-Forwarded-For`.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl ClientAddr {
    pub fn to_text(self) -> Option<String> {
        self.0.map(|ip| ip.to_string())
    }
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(ClientAddr(resolve_client(
            peer,
            parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|value| value.to_str().ok()),
            &state.config.trusted_proxy,
        )))
    }
}

fn resolve_client<'a>(
    peer: Option<IpAddr>,
    forwarded: impl Iterator<Item = &'a str>,
    trusted: &[IpAddr],
) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let hops: Vec<IpAddr> = forwarded
        .flat_map(|value| value.split(','))
        .filter_map(|hop| hop.trim().parse().ok())
        .collect();
    // Walk back from the proxy: the first hop it did not add itself is the client.
    Some(
        hops.into_iter()
            .rev()
            .find(|hop| !trusted.contains(hop))
            .unwrap_or(peer),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let proxy = ip("10.0.0.1");
        let header = ["203.0.113.9, 198.51.100.7"];
        assert_eq!(
            resolve_client(Some(ip("192.0.2.1")), header.into_iter(), &[proxy]),
            Some(ip("192.0.2.1")),
            "an untrusted peer's header is ignored"
        );
        assert_eq!(
            resolve_client(Some(proxy), header.into_iter(), &[proxy]),
            Some(ip("198.51.100.7")),
            "the hop nearest the proxy wins; earlier hops could be forged"
        );
        assert_eq!(
            resolve_client(Some(proxy), std::iter::empty(), &[proxy]),
            Some(proxy)
        );
    }
}
