//! `skyshift-agent`: parses the command line, loads `id.ini` (one line and exit code 2 when it
//! is wrong), sets up logging and TLS, and runs the agent until SIGINT or SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use skyshift_agent::config::{systemd_unit, Cli, Settings};
use skyshift_agent::runtime::Agent;
use skyshift_agent::tls::{self, Trust};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.print_service {
        print!("{}", systemd_unit(&cli.config));
        return ExitCode::SUCCESS;
    }
    let level = match cli.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "warn,skyshift_agent={level},skyshift_proto={level}"
        ))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let settings = match Settings::load(&cli) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("skyshift-agent: {e}");
            return ExitCode::from(2);
        }
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = match tls::client_config(&settings.trust) {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("skyshift-agent: {e:#}");
            return ExitCode::from(2);
        }
    };
    if settings.trust == Trust::Insecure {
        tracing::warn!("!!! --insecure: ANY server certificate is accepted. Anyone on the network path can impersonate the server and run commands on this machine. Use the id.ini pin or --ca-cert instead. !!!");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("skyshift-agent: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let agent = match Agent::new(settings, tls) {
            Ok(agent) => agent,
            Err(e) => {
                eprintln!("skyshift-agent: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            "skyshift-agent started"
        );
        agent.run(shutdown_signal()).await;
        ExitCode::SUCCESS
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
