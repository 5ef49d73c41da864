//! skyshift-bench: measures fleet scale, command latency, the API and screen streaming, each
//! beside a reference peer (nats-server, ffmpeg), on loopback only. Figures go to a table on
//! stdout and to JSON; targets live here and in BENCHMARKS.md, never in tests.

pub mod agents;
pub mod api;
pub mod api_client;
pub mod desk;
pub mod nats;
pub mod procfs;
pub mod progress;
pub mod scenes;
pub mod stats;
pub mod table;

/// The goals of issue 8 on a 2-core machine, shown beside the figures.
#[derive(Debug, Clone)]
pub struct Targets {
    /// Server memory per connected agent.
    pub bytes_per_agent: u64,
}

impl Default for Targets {
    fn default() -> Self {
        Self {
            bytes_per_agent: 16_000,
        }
    }
}
