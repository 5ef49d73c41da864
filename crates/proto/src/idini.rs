//! `id.ini`, the agent's configuration file as `agent-manager-api.md` shows it: `key = value`
//! lines, `#` comments, `AUTO_DETECT` for host name and address, and a capabilities list.
//! The server renders it (`download-config`); the agent parses it.

use std::fmt;

pub const AUTO_DETECT: &str = "AUTO_DETECT";
pub const DEFAULT_PORT: u16 = 3002;
pub const DEFAULT_CAPABILITIES: [&str; 3] =
    ["command_execution", "file_transfer", "system_monitoring"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdIni {
    pub customer_id: String,
    pub api_key: String,
    /// `None` for `AUTO_DETECT`.
    pub hostname: Option<String>,
    /// `None` for `AUTO_DETECT`.
    pub ip_address: Option<String>,
    pub port: u16,
    pub version: String,
    pub capabilities: Vec<String>,
    pub server_url: Option<String>,
    /// SHA-256 of the server's certificate (hex), for the agent to pin.
    pub server_cert_sha256: Option<String>,
}

/// What is wrong with a file, naming the line and the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdIniError {
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

impl fmt::Display for IdIniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: `{}` {}", self.key, self.message),
            None => write!(f, "`{}` {}", self.key, self.message),
        }
    }
}

impl std::error::Error for IdIniError {}

fn error(line: Option<usize>, key: &str, message: impl Into<String>) -> IdIniError {
    IdIniError {
        line,
        key: key.to_owned(),
        message: message.into(),
    }
}

/// Strips one pair of matching quotes.
fn unquote(value: &str) -> &str {
    let value = value.trim();
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

/// `["a", "b"]`, `[a, b]` or `a, b`.
fn parse_list(value: &str) -> Vec<String> {
    let value = value.trim();
    let inner = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    inner
        .split(',')
        .map(|item| unquote(item).trim().to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

fn auto(value: &str) -> Option<String> {
    (!value.is_empty() && !value.eq_ignore_ascii_case(AUTO_DETECT)).then(|| value.to_owned())
}

impl IdIni {
    pub fn parse(text: &str) -> Result<Self, IdIniError> {
        let mut customer_id = None;
        let mut api_key = None;
        let mut ini = IdIni {
            customer_id: String::new(),
            api_key: String::new(),
            hostname: None,
            ip_address: None,
            port: DEFAULT_PORT,
            version: "1.0.0".into(),
            capabilities: DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect(),
            server_url: None,
            server_cert_sha256: None,
        };
        for (index, raw) in text.lines().enumerate() {
            let number = Some(index + 1);
            let line = raw.trim();
            if line.is_empty()
                || line.starts_with('#')
                || line.starts_with(';')
                || line.starts_with('[')
            {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(error(number, line, "is not a `key = value` line"));
            };
            let key = key.trim();
            let value = unquote(value);
            match key {
                "customer_id" => customer_id = Some(value.to_owned()),
                "api_key" => api_key = Some(value.to_owned()),
                "hostname" => ini.hostname = auto(value),
                "ip_address" => {
                    ini.ip_address = auto(value);
                    if let Some(ip) = &ini.ip_address {
                        if ip.parse::<std::net::IpAddr>().is_err() {
                            return Err(error(
                                number,
                                key,
                                format!("`{ip}` is not an IP address or AUTO_DETECT"),
                            ));
                        }
                    }
                }
                "port" => {
                    ini.port = value
                        .parse()
                        .ok()
                        .filter(|port| *port != 0)
                        .ok_or_else(|| {
                            error(
                                number,
                                key,
                                format!("`{value}` is not a port number 1–65535"),
                            )
                        })?;
                }
                "version" => ini.version = value.to_owned(),
                "capabilities" => ini.capabilities = parse_list(value),
                "server_url" => {
                    ini.server_url =
                        (!value.is_empty()).then(|| value.trim_end_matches('/').to_owned())
                }
                "server_cert_sha256" => {
                    let hex: String = value
                        .chars()
                        .filter(|c| *c != ':')
                        .collect::<String>()
                        .to_lowercase();
                    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                        return Err(error(
                            number,
                            key,
                            "must be 64 hexadecimal digits (a SHA-256)",
                        ));
                    }
                    ini.server_cert_sha256 = Some(hex);
                }
                // Unknown keys are kept for forward compatibility, not an error.
                _ => {}
            }
        }
        ini.customer_id = customer_id
            .filter(|id| !id.is_empty() && !id.starts_with('<'))
            .ok_or_else(|| error(None, "customer_id", "is missing"))?;
        if uuid::Uuid::parse_str(&ini.customer_id).is_err() {
            return Err(error(
                None,
                "customer_id",
                format!("`{}` is not a UUID", ini.customer_id),
            ));
        }
        ini.api_key = api_key
            .filter(|key| key.starts_with("sk_") && key.len() > 3)
            .ok_or_else(|| error(None, "api_key", "is missing or does not start with sk_"))?;
        Ok(ini)
    }

    /// The file as the server hands it out.
    pub fn render(&self) -> String {
        let capabilities = self
            .capabilities
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let mut text = format!(
            "# Remote Agent Configuration File\n\
             # Copy this file to id.ini and update with your actual values\n\
             \n\
             # Customer UUID - Required\n\
             # This identifies your customer account\n\
             customer_id = {}\n\
             \n\
             # API Key - Required for authentication\n\
             # Format: sk_<random_string>\n\
             # Get this from your admin via POST /api/customers/{{customer_uuid}}/generate-api-key\n\
             api_key = {}\n\
             \n\
             # Agent Configuration - Optional\n\
             # These will be auto-detected if not specified\n\
             hostname = {}\n\
             ip_address = {}\n\
             port = {}\n\
             version = {}\n\
             \n\
             # Capabilities - Optional\n\
             # List of what this agent can do\n\
             capabilities = [{capabilities}]\n",
            self.customer_id,
            self.api_key,
            self.hostname.as_deref().unwrap_or(AUTO_DETECT),
            self.ip_address.as_deref().unwrap_or(AUTO_DETECT),
            self.port,
            self.version,
        );
        if self.server_url.is_some() || self.server_cert_sha256.is_some() {
            text.push_str("\n# Server - where the agent connects, and the certificate it pins\n");
        }
        if let Some(url) = &self.server_url {
            text.push_str(&format!("server_url = {url}\n"));
        }
        if let Some(sha) = &self.server_cert_sha256 {
            text.push_str(&format!("server_cert_sha256 = {sha}\n"));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "6f1c1f7e-4d8a-4c2e-9a53-2f8f0c3b9d11";

    fn sample() -> IdIni {
        IdIni {
            customer_id: ID.into(),
            api_key: "sk_abc".into(),
            hostname: None,
            ip_address: None,
            port: DEFAULT_PORT,
            version: "1.0.0".into(),
            capabilities: DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect(),
            server_url: Some("https://example.test:8443".into()),
            server_cert_sha256: Some("ab".repeat(32)),
        }
    }

    #[test]
    fn render_then_parse() {
        let ini = sample();
        let text = ini.render();
        assert!(text.contains("hostname = AUTO_DETECT"));
        assert!(text.contains(
            r#"capabilities = ["command_execution", "file_transfer", "system_monitoring"]"#
        ));
        assert_eq!(IdIni::parse(&text).unwrap(), ini);
    }

    #[test]
    fn errors_name_the_key() {
        let err = IdIni::parse("api_key = sk_x\n").unwrap_err();
        assert_eq!(err.key, "customer_id");
        let err = IdIni::parse(&format!(
            "customer_id = {ID}\napi_key = sk_x\nport = 99999\n"
        ))
        .unwrap_err();
        assert_eq!((err.key.as_str(), err.line), ("port", Some(3)));
        assert!(err.to_string().contains("port"));
        let err = IdIni::parse(&format!("customer_id = {ID}\napi_key = nope\n")).unwrap_err();
        assert_eq!(err.key, "api_key");
        let err = IdIni::parse(&format!("customer_id = {ID}\nthis line is wrong\n")).unwrap_err();
        assert_eq!(err.line, Some(2));
        let err = IdIni::parse("customer_id = <customer_uuid>\napi_key = sk_x\n").unwrap_err();
        assert_eq!(err.key, "customer_id");
    }

    #[test]
    fn explicit_values_and_lists() {
        let text = format!(
            "customer_id = \"{ID}\"\napi_key = sk_y\nhostname = web01\nip_address = 10.0.0.5\n\
             capabilities = command_execution, system_monitoring\n"
        );
        let ini = IdIni::parse(&text).unwrap();
        assert_eq!(ini.hostname.as_deref(), Some("web01"));
        assert_eq!(ini.ip_address.as_deref(), Some("10.0.0.5"));
        assert_eq!(ini.capabilities, ["command_execution", "system_monitoring"]);
    }
}
