//! SkyShift Remote server as a library: `AppState::open` builds the state from a `Config`,
//! `build_app` the router, `server::serve` runs it. `main.rs` and the tests start it the same way.

pub mod accounts;
pub mod api;
pub mod audit;
pub mod auth;
pub mod config;
pub mod desk;
pub mod error;
pub mod fleet;
pub mod hub;
pub mod jobs;
pub mod mail;
pub mod secrets;
pub mod server;
pub mod store;
pub mod tls;

use std::ops::Deref;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;

use crate::auth::jwt::JwtKeys;
use crate::auth::throttle::Throttle;
pub use crate::config::Config;
use crate::hub::Hub;
use crate::secrets::SecretBox;
use crate::store::Store;
use crate::tls::TlsFiles;

/// Everything a request handler may reach; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

pub struct Services {
    pub config: Config,
    pub store: Store,
    pub jwt: JwtKeys,
    /// Seals secrets the server must read back (API keys, SMTP password).
    pub secrets: SecretBox,
    /// The HTTPS certificate and its fingerprint (agents pin it).
    pub tls: TlsFiles,
    /// Live agent connections on this replica.
    pub hub: Hub,
    /// Failed sign-ins per account.
    pub account_throttle: Throttle,
    /// Failed sign-ins per client address.
    pub addr_throttle: Throttle,
    /// Support sessions running on this replica: relays, ports, code-guess limits.
    pub desk: desk::Desk,
}

impl Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

impl AppState {
    /// Creates the data dir, opens (and migrates) the database, loads the JWT secret, the
    /// secret-sealing key and the TLS certificate (generating what is missing).
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create the data dir {}", config.data_dir.display()))?;
        let store = Store::connect(&config.database_url()).await?;
        let secret = store
            .setting_or_insert("jwt_secret", &JwtKeys::generate_secret())
            .await?;
        let jwt = JwtKeys::new(secret.as_bytes(), config.jwt_ttl);
        let secrets = SecretBox::load_or_create(&config.data_dir)?;
        let tls = tls::prepare(&config)?;
        let desk = desk::Desk::new(&config)?;
        Ok(AppState(Arc::new(Services {
            account_throttle: Throttle::new(config.login_account_limit),
            addr_throttle: Throttle::new(config.login_addr_limit),
            desk,
            config,
            store,
            jwt,
            secrets,
            tls,
            hub: Hub::default(),
        })))
    }
}

impl AppState {
    /// Restarts the relays of sessions left open by a restart (before any request can take
    /// their ports), then starts the background jobs (agents gone silent, overdue tasks, expiry
    /// of pending sessions). `main.rs` and
    /// the test helper await it once after `open`, before serving.
    pub async fn start_background(&self) {
        if let Err(err) = desk::restore(self).await {
            tracing::warn!(
                error = format!("{err:#}"),
                "cannot restart the relays of open sessions"
            );
        }
        jobs::spawn(self.clone());
        desk::spawn_expiry(self.clone());
    }
}

/// The HTTP application (API, docs, and later the WebSockets and web UI).
pub fn build_app(state: AppState) -> Router {
    api::router(state)
}
