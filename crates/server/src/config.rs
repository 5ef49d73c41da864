//! The server's configuration: command-line flags over `SKYSHIFT_*` environment variables over
//! defaults, in one struct.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
pub use skyshift_proto::duration::parse_duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// SkyShift Remote server: RMM and remote support in one binary.
#[derive(Debug, Clone, Parser)]
#[command(name = "skyshift-server", version, about)]
pub struct Config {
    /// Directory for the SQLite database, TLS certificate and other state; created if missing.
    #[arg(long, env = "SKYSHIFT_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Address both listeners bind to.
    #[arg(long, env = "SKYSHIFT_BIND", default_value = "0.0.0.0")]
    pub bind: IpAddr,

    /// Port of the plain HTTP listener (0 picks a free port).
    #[arg(long, env = "SKYSHIFT_HTTP_PORT", default_value_t = 80)]
    pub http_port: u16,

    /// Port of the HTTPS listener (0 picks a free port).
    #[arg(long, env = "SKYSHIFT_HTTPS_PORT", default_value_t = 443)]
    pub https_port: u16,

    /// `sqlite://…` or `postgres://…`; defaults to `<data-dir>/skyshift.db`.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Lifetime of sign-in tokens, e.g. `30m`, `2h`, `90s`.
    #[arg(long, env = "SKYSHIFT_JWT_TTL", default_value = "30m", value_parser = parse_duration)]
    pub jwt_ttl: Duration,

    /// The host name clients reach this server by; added to the generated certificate.
    #[arg(long, env = "SKYSHIFT_PUBLIC_HOST")]
    pub public_host: Option<String>,

    /// TLS certificate chain (PEM) to use instead of the generated one.
    #[arg(long, env = "SKYSHIFT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM) for `--tls-cert`.
    #[arg(long, env = "SKYSHIFT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Log line format.
    #[arg(long, env = "SKYSHIFT_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Address of a reverse proxy whose `X-Forwarded-For` is believed (repeatable, or
    /// comma-separated in the environment). Without it the header is ignored.
    #[arg(long, env = "SKYSHIFT_TRUSTED_PROXY", value_delimiter = ',')]
    pub trusted_proxy: Vec<IpAddr>,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "SKYSHIFT_MAX_BODY", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Agents without a heartbeat (HTTP or WebSocket) for this long are marked offline.
    #[arg(long, env = "SKYSHIFT_AGENT_OFFLINE_AFTER", default_value = "90s", value_parser = parse_duration)]
    pub agent_offline_after: Duration,

    /// How often to look for agents that went silent.
    #[arg(long, env = "SKYSHIFT_AGENT_SWEEP_EVERY", default_value = "60s", value_parser = parse_duration)]
    pub agent_sweep_every: Duration,

    /// Time after a delivered task's own timeout before the server fails it for want of a result.
    #[arg(long, env = "SKYSHIFT_TASK_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub task_grace: Duration,

    /// Largest task output kept, in bytes; output past it is cut and the task marked truncated.
    #[arg(long, env = "SKYSHIFT_TASK_OUTPUT_CAP", default_value_t = 64 * 1024 * 1024)]
    pub task_output_cap: usize,

    /// Commands waiting for one agent before more are refused with 429.
    #[arg(long, env = "SKYSHIFT_MAX_PENDING_COMMANDS", default_value_t = 1000)]
    pub max_pending_commands: u32,

    /// Failed sign-ins for one account before it is slowed down.
    #[arg(long, env = "SKYSHIFT_LOGIN_ACCOUNT_LIMIT", default_value_t = 5)]
    pub login_account_limit: u32,

    /// Failed sign-ins from one client address before it is slowed down.
    #[arg(long, env = "SKYSHIFT_LOGIN_ADDR_LIMIT", default_value_t = 20)]
    pub login_addr_limit: u32,

    /// UDP ports support sessions may use, `FIRST-LAST`; each open session binds one.
    #[arg(long, env = "SKYSHIFT_UDP_PORT_RANGE", default_value = "50000-60000", value_parser = parse_port_range)]
    pub udp_port_range: PortRange,

    /// How long a session nobody joined stays pending before it closes, e.g. `1h`.
    #[arg(long, env = "SKYSHIFT_SESSION_EXPIRY", default_value = "1h", value_parser = parse_duration)]
    pub session_expiry: Duration,

    /// How long the relay remembers a UDP peer that sends nothing (viewers send pings).
    #[arg(long, env = "SKYSHIFT_PEER_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub peer_timeout: Duration,

    /// Failed session-code look-ups (info, WebSocket, UDP hello) one client address may make
    /// per minute before it gets 429.
    #[arg(long, env = "SKYSHIFT_CODE_GUESS_ADDR_LIMIT", default_value_t = 10)]
    pub code_guess_addr_limit: u32,

    /// Failed session-code look-ups per minute across all addresses before every look-up gets
    /// 429 for the rest of the minute (slows a guess spread over many addresses).
    #[arg(long, env = "SKYSHIFT_CODE_GUESS_GLOBAL_LIMIT", default_value_t = 300)]
    pub code_guess_global_limit: u32,
}

/// An inclusive range of UDP ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn ports(self) -> std::ops::RangeInclusive<u16> {
        self.first..=self.last
    }
}

/// Parses `50000-60000` (or one port, `50000`).
pub fn parse_port_range(text: &str) -> Result<PortRange, String> {
    let (first, last) = text.trim().split_once('-').unwrap_or((text, text));
    let port = |part: &str| {
        part.trim()
            .parse::<u16>()
            .ok()
            .filter(|&port| port != 0)
            .ok_or_else(|| format!("`{text}` is not a port range like 50000-60000"))
    };
    let (first, last) = (port(first)?, port(last)?);
    if first > last {
        return Err(format!("`{text}`: the first port is above the last"));
    }
    Ok(PortRange { first, last })
}

impl Config {
    /// The database URL in use: the configured one, or SQLite in the data dir.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("skyshift.db").display()
            ),
        }
    }

    /// A configuration for tests and embedding: defaults, data in `data_dir`, ports picked by
    /// the OS.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let mut config = Config::parse_from(["skyshift-server"]);
        config.data_dir = data_dir.into();
        config.bind = IpAddr::from([127, 0, 0, 1]);
        config.http_port = 0;
        config.https_port = 0;
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_parse() {
        assert_eq!(
            parse_port_range("50000-60000").unwrap(),
            PortRange {
                first: 50000,
                last: 60000
            }
        );
        assert_eq!(parse_port_range("7").unwrap().ports().count(), 1);
        assert!(parse_port_range("60000-50000").is_err());
        assert!(parse_port_range("0-10").is_err());
        assert!(parse_port_range("a-b").is_err());
    }
}
