//! The tasks this agent has seen, so a task delivered twice runs once — also across a restart.
//! Sans-IO core (`Ledger`) plus load/save; bounded, oldest entries forgotten first.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::files::write_private_atomic;

/// How many task ids are remembered. The server redelivers only unfinished tasks, and a finished
/// one leaves its redelivery window within minutes, so a few thousand is plenty.
pub const CAPACITY: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Seen {
    /// Accepted and started (or queued); no result written yet.
    Running,
    /// Its result is in the outbox or delivered.
    Finished,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Never seen: run it.
    New,
    /// Already running or finished: do not run it again.
    Duplicate(Seen),
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    id: Uuid,
    seen: Seen,
}

#[derive(Debug)]
pub struct Ledger {
    order: VecDeque<Uuid>,
    seen: HashMap<Uuid, Seen>,
    capacity: usize,
    path: Option<PathBuf>,
}

impl Ledger {
    pub fn in_memory(capacity: usize) -> Self {
        Ledger {
            order: VecDeque::new(),
            seen: HashMap::new(),
            capacity: capacity.max(1),
            path: None,
        }
    }

    /// Reads the ledger at `path` (empty if there is none or it is damaged); `save` writes it back.
    pub fn load(path: &Path) -> Self {
        let mut ledger = Ledger::in_memory(CAPACITY);
        ledger.path = Some(path.to_path_buf());
        match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<Vec<Entry>>(&bytes) {
                Ok(entries) => {
                    for entry in entries {
                        ledger.insert(entry.id, entry.seen);
                    }
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "task ledger damaged; starting empty")
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the task ledger")
            }
        }
        ledger
    }

    pub fn save(&self) {
        let Some(path) = &self.path else { return };
        let entries: Vec<Entry> = self
            .order
            .iter()
            .map(|id| Entry {
                id: *id,
                seen: self.seen[id],
            })
            .collect();
        let json = serde_json::to_vec(&entries).expect("ledger serialises");
        if let Err(e) = write_private_atomic(path, &json) {
            tracing::error!(path = %path.display(), error = %e, "cannot write the task ledger");
        }
    }

    fn insert(&mut self, id: Uuid, seen: Seen) {
        if self.seen.insert(id, seen).is_none() {
            self.order.push_back(id);
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.seen.remove(&old);
                }
            }
        }
    }

    /// Records `id` as running if it is new.
    pub fn admit(&mut self, id: Uuid) -> Admission {
        match self.seen.get(&id) {
            Some(seen) => Admission::Duplicate(*seen),
            None => {
                self.insert(id, Seen::Running);
                Admission::New
            }
        }
    }

    pub fn finish(&mut self, id: Uuid) {
        self.insert(id, Seen::Finished);
    }

    pub fn get(&self, id: Uuid) -> Option<Seen> {
        self.seen.get(&id).copied()
    }

    /// Tasks recorded as running: after a restart, these were interrupted.
    pub fn running(&self) -> Vec<Uuid> {
        self.order
            .iter()
            .filter(|id| self.seen[id] == Seen::Running)
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_is_admitted_once() {
        let mut ledger = Ledger::in_memory(10);
        let id = Uuid::new_v4();
        assert_eq!(ledger.admit(id), Admission::New);
        assert_eq!(ledger.admit(id), Admission::Duplicate(Seen::Running));
        ledger.finish(id);
        assert_eq!(ledger.admit(id), Admission::Duplicate(Seen::Finished));
    }

    #[test]
    fn bounded_oldest_forgotten_first() {
        let mut ledger = Ledger::in_memory(3);
        let ids: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
        for id in &ids {
            ledger.admit(*id);
        }
        assert_eq!(ledger.get(ids[0]), None);
        assert_eq!(ledger.get(ids[3]), Some(Seen::Running));
        // Finishing an entry does not move or duplicate it.
        ledger.finish(ids[1]);
        assert_eq!(ledger.order.len(), 3);
    }

    #[test]
    fn survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.tasks.json");
        let (done, interrupted) = (Uuid::new_v4(), Uuid::new_v4());
        {
            let mut ledger = Ledger::load(&path);
            ledger.admit(done);
            ledger.finish(done);
            ledger.admit(interrupted);
            ledger.save();
        }
        let mut ledger = Ledger::load(&path);
        assert_eq!(ledger.admit(done), Admission::Duplicate(Seen::Finished));
        assert_eq!(ledger.running(), vec![interrupted]);
        std::fs::write(&path, "garbage").unwrap();
        assert_eq!(Ledger::load(&path).running(), Vec::<Uuid>::new());
    }
}
