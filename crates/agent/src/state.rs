//! Where the agent keeps what must survive a restart, beside its `id.ini`, and its identity:
//! `agent_id` + `agent_token` in `<stem>.agent.json` (mode 0600), so a restart is the same agent.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::files::write_private_atomic;

/// The files beside one config file: `id.ini` → `id.agent.json`, `id.tasks.json`, `id.outbox/`.
#[derive(Debug, Clone)]
pub struct StatePaths {
    pub credentials: PathBuf,
    pub ledger: PathBuf,
    pub outbox: PathBuf,
}

impl StatePaths {
    pub fn beside(config: &Path) -> Self {
        let dir = match config.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let stem = config
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "agent".into());
        StatePaths {
            credentials: dir.join(format!("{stem}.agent.json")),
            ledger: dir.join(format!("{stem}.tasks.json")),
            outbox: dir.join(format!("{stem}.outbox")),
        }
    }
}

/// The agent's identity on the server. `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub agent_id: Uuid,
    pub agent_token: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("agent_id", &self.agent_id)
            .field("agent_token", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// `None` when there is no file yet, or it cannot be read (the agent registers anew).
    pub fn load(path: &Path) -> Option<Self> {
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the agent state; registering again");
                return None;
            }
        };
        match serde_json::from_slice(&text) {
            Ok(credentials) => Some(credentials),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "the agent state is damaged; registering again");
                None
            }
        }
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("credentials serialise");
        write_private_atomic(path, &json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_sit_beside_the_config() {
        let paths = StatePaths::beside(Path::new("/etc/skyshift/id.ini"));
        assert_eq!(paths.credentials, Path::new("/etc/skyshift/id.agent.json"));
        assert_eq!(paths.outbox, Path::new("/etc/skyshift/id.outbox"));
        let paths = StatePaths::beside(Path::new("id.ini"));
        assert_eq!(paths.ledger, Path::new("./id.tasks.json"));
    }

    #[test]
    fn saved_private_loaded_back_token_never_in_debug() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.agent.json");
        assert_eq!(Credentials::load(&path), None);
        let credentials = Credentials {
            agent_id: Uuid::new_v4(),
            agent_token: "at_secret_value".into(),
        };
        credentials.save(&path).unwrap();
        assert_eq!(Credentials::load(&path), Some(credentials.clone()));
        assert!(!format!("{credentials:?}").contains("at_secret_value"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "state file must be 0600");
        }
        std::fs::write(&path, "not json").unwrap();
        assert_eq!(Credentials::load(&path), None);
    }
}
