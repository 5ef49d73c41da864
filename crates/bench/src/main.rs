//! The `skyshift-bench` command line: one subcommand per benchmark.

use clap::{Parser, Subcommand};
use skyshift_bench::{agents, api, desk, Targets};

/// Benchmarks for SkyShift Remote, against a server on loopback.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// N simulated agents: connect time, server memory per agent, command round trip, fan-out,
    /// heartbeat CPU; nats-server idle clients as the reference.
    Agents(agents::AgentsArgs),
    /// Requests/s and latency of health, agent list, task status and sign-in.
    Api(api::ApiArgs),
    /// Capture + encode on synthetic 1080p desktops in Xvfb, the relay end to end, ffmpeg as the
    /// reference.
    Desk(desk::DeskArgs),
}

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let targets = Targets::default();
    match cli.command {
        Command::Agents(args) => runtime.block_on(agents::run(args, &targets)),
        Command::Api(args) => runtime.block_on(api::run(args)),
        Command::Desk(args) => runtime.block_on(desk::run(args)),
    }
}
