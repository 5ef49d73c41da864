//! Live agent connections on this replica, and task-change notifications for live followers.
//!
//! The hub only moves messages; what to send is decided by `fleet::tasks` from the store, so a
//! message the hub cannot deliver is never lost: the task stays stored and unfinished and is
//! sent again when the agent (re)connects or polls. Each connection's queue is bounded; a full
//! queue counts as "not delivered now".

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use skyshift_proto::agent::ServerMessage;
use tokio::sync::{broadcast, mpsc};

/// Messages queued per connection before the agent counts as not keeping up.
const QUEUE: usize = 1024;

struct Connection {
    id: u64,
    tx: mpsc::Sender<ServerMessage>,
}

/// A new connection's handle: its id (to disconnect only itself) and its outgoing queue.
pub struct Registration {
    pub id: u64,
    pub rx: mpsc::Receiver<ServerMessage>,
}

pub struct Hub {
    connections: Mutex<HashMap<String, Connection>>,
    next_id: AtomicU64,
    task_changes: broadcast::Sender<String>,
    /// WebSocket heartbeats since the last flush: agent id → its latest system information
    /// (JSON), if it sent any. `jobs` writes them in one transaction every few seconds.
    heartbeats: Mutex<HashMap<String, Option<String>>>,
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            connections: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            task_changes: broadcast::channel(1024).0,
            heartbeats: Mutex::new(HashMap::new()),
        }
    }
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Connection>> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a connection for `agent_id`, replacing (and so closing) an earlier one.
    pub fn connect(&self, agent_id: &str) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(QUEUE);
        if self
            .lock()
            .insert(agent_id.to_owned(), Connection { id, tx })
            .is_some()
        {
            tracing::info!(
                agent = agent_id,
                "a new connection replaces the agent's earlier one"
            );
        }
        Registration { id, rx }
    }

    /// Forgets connection `id` of `agent_id`, unless a newer one replaced it.
    pub fn disconnect(&self, agent_id: &str, id: u64) {
        let mut connections = self.lock();
        if connections.get(agent_id).is_some_and(|c| c.id == id) {
            connections.remove(agent_id);
        }
    }

    /// Drops the agent's connection, whichever it is (the agent was deleted).
    pub fn kick(&self, agent_id: &str) {
        self.lock().remove(agent_id);
    }

    /// Queues a message for a connected agent; false when it is not connected here or its queue
    /// is full.
    pub fn send(&self, agent_id: &str, message: ServerMessage) -> bool {
        let connections = self.lock();
        match connections.get(agent_id) {
            Some(connection) => connection.tx.try_send(message).is_ok(),
            None => false,
        }
    }

    pub fn is_connected(&self, agent_id: &str) -> bool {
        self.lock().contains_key(agent_id)
    }

    pub fn connection_count(&self) -> usize {
        self.lock().len()
    }

    /// Notes a heartbeat for the next flush, keeping the newest system information.
    pub fn note_heartbeat(&self, agent_id: &str, system_info: Option<String>) {
        let mut heartbeats = self.heartbeats.lock().unwrap_or_else(|e| e.into_inner());
        let latest = heartbeats.entry(agent_id.to_owned()).or_default();
        if system_info.is_some() {
            *latest = system_info;
        }
    }

    /// The heartbeats noted since the last call.
    pub fn take_heartbeats(&self) -> HashMap<String, Option<String>> {
        std::mem::take(&mut *self.heartbeats.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Tells live followers that a task's output or status changed.
    pub fn task_changed(&self, task_id: &str) {
        let _ = self.task_changes.send(task_id.to_owned());
    }

    pub fn follow_tasks(&self) -> broadcast::Receiver<String> {
        self.task_changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn ack() -> ServerMessage {
        ServerMessage::HeartbeatAck {
            timestamp: Utc::now(),
        }
    }

    #[tokio::test]
    async fn a_new_connection_replaces_the_old() {
        let hub = Hub::default();
        let mut first = hub.connect("a");
        let mut second = hub.connect("a");
        assert!(
            first.rx.recv().await.is_none(),
            "the first connection's queue closed"
        );
        assert!(hub.send("a", ack()));
        assert!(second.rx.recv().await.is_some());
        // The old connection ending does not remove the new one.
        hub.disconnect("a", first.id);
        assert!(hub.is_connected("a"));
        hub.disconnect("a", second.id);
        assert!(!hub.is_connected("a"));
        assert!(!hub.send("a", ack()));
    }

    #[test]
    fn heartbeats_keep_the_newest_system_information() {
        let hub = Hub::default();
        hub.note_heartbeat("a", Some("one".into()));
        hub.note_heartbeat("a", None);
        hub.note_heartbeat("b", None);
        let taken = hub.take_heartbeats();
        assert_eq!(taken.get("a"), Some(&Some("one".to_owned())));
        assert_eq!(taken.get("b"), Some(&None));
        assert!(hub.take_heartbeats().is_empty());
    }

    #[tokio::test]
    async fn a_full_queue_is_not_delivered() {
        let hub = Hub::default();
        let _registration = hub.connect("a");
        for _ in 0..QUEUE {
            assert!(hub.send("a", ack()));
        }
        assert!(!hub.send("a", ack()));
        assert_eq!(hub.connection_count(), 1);
    }
}
