//! The agent's configuration: command-line flags over `SKYSHIFT_AGENT_*` environment variables
//! over `id.ini`, checked once into `Settings`. Any problem is one `ConfigError` line (exit 2).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgAction, Parser};
use skyshift_proto::duration::parse_duration;
use skyshift_proto::idini::IdIni;

use crate::state::StatePaths;
use crate::tls::Trust;

/// SkyShift Remote agent: registers this machine with the server, keeps a WebSocket open
/// (HTTP polling when it cannot), runs the commands and scripts it is sent and reports results.
#[derive(Debug, Clone, Parser)]
#[command(name = "skyshift-agent", version, about)]
pub struct Cli {
    /// The agent's configuration file (downloaded from the server: download-config).
    #[arg(long, env = "SKYSHIFT_AGENT_CONFIG", default_value = "id.ini")]
    pub config: PathBuf,

    /// Server base URL, e.g. `https://rmm.example.com:8443`; overrides `server_url` in the file.
    /// Repeatable (comma-separated in the environment): tried in turn, for failover.
    #[arg(long = "server", env = "SKYSHIFT_AGENT_SERVER", value_delimiter = ',')]
    pub servers: Vec<String>,

    /// Trust server certificates issued by the CA(s) in this PEM file (instead of the pin).
    #[arg(long, env = "SKYSHIFT_AGENT_CA_CERT")]
    pub ca_cert: Option<PathBuf>,

    /// Accept any server certificate. Encrypts but proves nothing: for tests only.
    #[arg(long, env = "SKYSHIFT_AGENT_INSECURE")]
    pub insecure: bool,

    /// Time between heartbeats, e.g. `30s`, `1m`, `500ms`.
    #[arg(long, env = "SKYSHIFT_AGENT_HEARTBEAT", default_value = "30s", value_parser = parse_duration)]
    pub heartbeat: Duration,

    /// Time between two polls for commands when working over HTTP.
    #[arg(long, env = "SKYSHIFT_AGENT_POLL", default_value = "5s", value_parser = parse_duration)]
    pub poll: Duration,

    /// Commands run at the same time; more wait their turn.
    #[arg(long, env = "SKYSHIFT_AGENT_MAX_TASKS", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub max_tasks: u16,

    /// Never open the WebSocket: heartbeat, poll and report over HTTP only.
    #[arg(long, env = "SKYSHIFT_AGENT_NO_WEBSOCKET")]
    pub no_websocket: bool,

    /// Print a systemd unit that runs this agent as a service, and exit.
    #[arg(long)]
    pub print_service: bool,

    /// More log detail (-v debug, -vv trace). `RUST_LOG` overrides.
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,
}

/// What is wrong with the configuration: printed as one line, exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Everything the agent needs, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub ini: IdIni,
    pub config_path: PathBuf,
    /// At least one; tried in turn.
    pub servers: Vec<reqwest::Url>,
    pub trust: Trust,
    pub heartbeat: Duration,
    pub poll: Duration,
    pub max_tasks: usize,
    pub websocket: bool,
    pub paths: StatePaths,
}

impl Settings {
    pub fn load(cli: &Cli) -> Result<Self, ConfigError> {
        let path = &cli.config;
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!(
                "cannot read {}: {e} (download id.ini from the server's download-config)",
                path.display()
            ))
        })?;
        let ini =
            IdIni::parse(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        let raw_servers: Vec<String> = if cli.servers.is_empty() {
            ini.server_url.iter().cloned().collect()
        } else {
            cli.servers.clone()
        };
        if raw_servers.is_empty() {
            return Err(ConfigError(format!(
                "{}: `server_url` is missing and no --server was given",
                path.display()
            )));
        }
        let servers = raw_servers
            .iter()
            .map(|raw| parse_server(raw, path))
            .collect::<Result<Vec<_>, _>>()?;
        let trust = if cli.insecure {
            Trust::Insecure
        } else if let Some(ca) = &cli.ca_cert {
            Trust::CaFile(ca.clone())
        } else if let Some(pin) = &ini.server_cert_sha256 {
            Trust::pin_from_hex(pin)
                .map_err(|e| ConfigError(format!("{}: `server_cert_sha256` {e}", path.display())))?
        } else {
            Trust::WebRoots
        };
        Ok(Settings {
            config_path: path.clone(),
            paths: StatePaths::beside(path),
            servers,
            trust,
            heartbeat: cli.heartbeat,
            poll: cli.poll,
            max_tasks: usize::from(cli.max_tasks),
            websocket: !cli.no_websocket,
            ini,
        })
    }

    pub fn system_monitoring(&self) -> bool {
        self.ini
            .capabilities
            .iter()
            .any(|c| c == "system_monitoring")
    }
}

fn parse_server(raw: &str, config: &Path) -> Result<reqwest::Url, ConfigError> {
    let bad = |why: &str| {
        ConfigError(format!(
            "server URL `{raw}` {why} (from --server or `server_url` in {})",
            config.display()
        ))
    };
    let mut url = reqwest::Url::parse(raw.trim()).map_err(|_| bad("is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must start with http:// or https://"));
    }
    if url.host_str().is_none() {
        return Err(bad("has no host"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// A systemd unit that runs this binary with this config as a service.
pub fn systemd_unit(config: &Path) -> String {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok())
        .unwrap_or_else(|| PathBuf::from("/usr/local/bin/skyshift-agent"));
    let config = std::path::absolute(config).unwrap_or_else(|_| config.to_path_buf());
    let dir = config
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/etc/skyshift"));
    format!(
        "# /etc/systemd/system/skyshift-agent.service\n\
         # Install: save as above, then `systemctl daemon-reload && systemctl enable --now skyshift-agent`\n\
         [Unit]\n\
         Description=SkyShift Remote agent\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={exe} --config {config}\n\
         WorkingDirectory={dir}\n\
         Restart=always\n\
         RestartSec=5\n\
         # A bad id.ini exits 2: do not restart in a loop until it is fixed.\n\
         RestartPreventExitStatus=2\n\
         KillMode=control-group\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        exe = exe.display(),
        config = config.display(),
        dir = dir.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "6f1c1f7e-4d8a-4c2e-9a53-2f8f0c3b9d11";

    fn cli(args: &[&str]) -> Cli {
        let mut argv = vec!["skyshift-agent"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap()
    }

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("id.ini");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn servers_from_the_file_or_the_flags() {
        let dir = tempfile::tempdir().unwrap();
        let pin = "ab".repeat(32);
        let path = write(
            dir.path(),
            &format!(
                "customer_id = {ID}\napi_key = sk_k\nserver_url = https://a.test:8443\nserver_cert_sha256 = {pin}\n"
            ),
        );
        let config = path.to_str().unwrap();
        let settings = Settings::load(&cli(&["--config", config])).unwrap();
        assert_eq!(settings.servers[0].as_str(), "https://a.test:8443/");
        assert_eq!(settings.trust, Trust::Pin([0xab; 32]));
        assert!(settings.websocket);
        assert_eq!(settings.paths.credentials, dir.path().join("id.agent.json"));

        let settings = Settings::load(&cli(&[
            "--config",
            config,
            "--server",
            "http://b.test",
            "--server",
            "http://c.test/base",
            "--insecure",
            "--no-websocket",
        ]))
        .unwrap();
        let servers: Vec<&str> = settings.servers.iter().map(|u| u.as_str()).collect();
        assert_eq!(servers, ["http://b.test/", "http://c.test/base/"]);
        assert_eq!(settings.trust, Trust::Insecure);
        assert!(!settings.websocket);
    }

    #[test]
    fn every_problem_is_one_line_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.ini");
        let err = Settings::load(&cli(&["--config", missing.to_str().unwrap()])).unwrap_err();
        assert!(
            err.0.contains("cannot read") && err.0.contains("nope.ini"),
            "{err}"
        );

        for (text, key) in [
            ("api_key = sk_x\n".to_owned(), "customer_id"),
            (format!("customer_id = {ID}\n"), "api_key"),
            (
                format!("customer_id = {ID}\napi_key = sk_x\n"),
                "server_url",
            ),
            (
                format!("customer_id = {ID}\napi_key = sk_x\nserver_url = ftp://x\n"),
                "server_url",
            ),
            (
                format!("customer_id = {ID}\napi_key = sk_x\nserver_url = http://x\nport = 0\n"),
                "port",
            ),
        ] {
            let path = write(dir.path(), &text);
            let err = Settings::load(&cli(&["--config", path.to_str().unwrap()])).unwrap_err();
            assert!(err.0.contains(key), "{key}: {err}");
            assert!(!err.0.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn the_unit_runs_this_config() {
        let unit = systemd_unit(Path::new("/etc/skyshift/id.ini"));
        assert!(unit.contains("--config /etc/skyshift/id.ini"));
        assert!(unit.contains("[Install]"));
    }
}
