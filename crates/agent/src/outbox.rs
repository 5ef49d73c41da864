//! Results not yet acknowledged by the server, one file each in `<stem>.outbox/`. A result is
//! written here before the first delivery attempt and removed only when the server answers
//! 200 (stored) or 409 (it already had it), so a server restart or a network cut loses nothing.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use skyshift_proto::agent::TaskResult;
use uuid::Uuid;

use crate::files::write_private_atomic;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// The agent identity the task belongs to; a result of a forgotten identity is dropped.
    pub agent_id: Uuid,
    pub task_id: Uuid,
    pub result: TaskResult,
}

#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(Outbox {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, task_id: Uuid) -> PathBuf {
        self.dir.join(format!("{task_id}.json"))
    }

    /// Durable once this returns (written, synced, renamed into place).
    pub fn put(&self, pending: &Pending) -> std::io::Result<()> {
        let json = serde_json::to_vec(pending).expect("result serialises");
        write_private_atomic(&self.path(pending.task_id), &json)
    }

    pub fn contains(&self, task_id: Uuid) -> bool {
        self.path(task_id).exists()
    }

    pub fn remove(&self, task_id: Uuid) {
        match std::fs::remove_file(self.path(task_id)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::error!(%task_id, error = %e, "cannot remove a delivered result from the outbox")
            }
        }
    }

    /// Every waiting result, oldest first. Damaged files are set aside (renamed `.bad`).
    pub fn list(&self) -> Vec<Pending> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let modified = entry.metadata().and_then(|m| m.modified()).ok();
            match std::fs::read(&path)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Pending>(&bytes).ok())
            {
                Some(pending) => found.push((modified, pending)),
                None => {
                    tracing::error!(path = %path.display(), "damaged outbox entry set aside");
                    let _ = std::fs::rename(&path, path.with_extension("bad"));
                }
            }
        }
        found.sort_by_key(|(modified, _)| *modified);
        found.into_iter().map(|(_, pending)| pending).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skyshift_proto::agent::TaskStatus;

    fn pending(output: &str) -> Pending {
        Pending {
            agent_id: Uuid::new_v4(),
            task_id: Uuid::new_v4(),
            result: TaskResult {
                status: TaskStatus::Completed,
                output: output.into(),
                error: None,
                exit_code: Some(0),
            },
        }
    }

    #[test]
    fn results_survive_reopening_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.outbox");
        let (a, b) = (pending("a"), pending(&"x".repeat(1 << 20)));
        {
            let outbox = Outbox::open(&path).unwrap();
            outbox.put(&a).unwrap();
            outbox.put(&b).unwrap();
            outbox.put(&b).unwrap(); // idempotent
        }
        let outbox = Outbox::open(&path).unwrap();
        let mut listed = outbox.list();
        listed.sort_by_key(|p| p.result.output.len());
        assert_eq!(listed, vec![a.clone(), b.clone()]);
        assert!(outbox.contains(a.task_id));
        outbox.remove(a.task_id);
        outbox.remove(a.task_id);
        assert_eq!(outbox.list(), vec![b]);
        assert!(!outbox.contains(a.task_id));
    }

    #[test]
    fn damaged_entries_are_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("broken.json"), "{").unwrap();
        outbox.put(&pending("ok")).unwrap();
        assert_eq!(outbox.list().len(), 1);
        assert!(dir.path().join("broken.bad").exists());
    }
}
