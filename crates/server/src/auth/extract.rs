//! Extractors that prove who is asking. A handler that takes `AuthUser` only runs for a signed-in,
//! active user whose token is still current; `AdminUser` adds the admin role.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use skyshift_proto::api::UserStatus;

use crate::error::ApiError;
use crate::store::UserRecord;
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
