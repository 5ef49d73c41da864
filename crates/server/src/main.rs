//! `skyshift-server`: parse the configuration, open the store, make sure an admin exists, bind
//! HTTP and HTTPS, serve until SIGINT/SIGTERM.

use std::process::ExitCode;

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;
use clap::Parser;
use skyshift_server::config::LogFormat;
use skyshift_server::server::{self, Listeners};
use skyshift_server::{accounts, build_app, AppState, Config};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let config = Config::parse();
    init_logging(config.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("skyshift-server: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("skyshift-server: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Bind first: a port we cannot have is the most common start-up failure.
    let listeners = Listeners::bind(config.bind, config.http_port, config.https_port)?;
    // Ports given as 0 were picked by the OS; the state (id.ini's server_url) needs the real one.
    let mut config = config;
    config.https_port = listeners.https.local_addr()?.port();
    config.http_port = listeners.http.local_addr()?.port();
    let state = AppState::open(config.clone()).await?;
    let admin_password = std::env::var("SKYSHIFT_ADMIN_PASSWORD").ok();
    if let Some(generated) =
        accounts::ensure_admin(&state, admin_password, &config.data_dir).await?
    {
        // Printed once, on purpose not through the log.
        println!(
            "Created the administrator `admin` with password: {generated}\n\
             (also saved to {}; change it after signing in)",
            config.data_dir.join("initial-admin-password").display()
        );
    }
    let tls = RustlsConfig::from_pem_file(&state.tls.cert, &state.tls.key)
        .await
        .context("cannot load the TLS certificate and key")?;
    state.start_background().await;
    tracing::info!(
        http = %listeners.http.local_addr()?,
        https = %listeners.https.local_addr()?,
        database = ?state.store.backend(),
        cert_sha256 = %state.tls.fingerprint,
        "skyshift-server listening"
    );
    let app = build_app(state.clone());
    server::serve(app, listeners, tls, shutdown_signal()).await?;
    state.store.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
