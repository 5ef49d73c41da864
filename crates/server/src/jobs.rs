//! Background work: write the WebSocket heartbeats the hub collected, mark silent agents
//! offline, and fail delivered tasks whose timeout (plus grace) passed without a result.

use std::time::Duration;

use chrono::Utc;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::AppState;

/// How often overdue tasks are looked for; a timed-out task is failed at most this late.
const TASK_SWEEP: Duration = Duration::from_secs(1);
/// How often collected heartbeats are written: one transaction instead of one per heartbeat
/// (10,000 agents every 30 s would otherwise be 333 commits a second). `last_heartbeat` lags by
/// at most this, far below the offline threshold.
pub const HEARTBEAT_FLUSH: Duration = Duration::from_secs(2);

/// Starts the jobs; abort the handle to stop them.
pub fn spawn(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut agents = tokio::time::interval(state.config.agent_sweep_every);
        let mut tasks = tokio::time::interval(TASK_SWEEP);
        let mut heartbeats = tokio::time::interval(HEARTBEAT_FLUSH);
        for interval in [&mut agents, &mut tasks, &mut heartbeats] {
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        }
        loop {
            tokio::select! {
                _ = heartbeats.tick() => flush_heartbeats(&state).await,
                _ = agents.tick() => mark_agents_offline(&state).await,
                _ = tasks.tick() => fail_overdue_tasks(&state).await,
            }
        }
    })
}

async fn flush_heartbeats(state: &AppState) {
    let beats: Vec<(String, Option<String>)> = state.hub.take_heartbeats().into_iter().collect();
    if beats.is_empty() {
        return;
    }
    if let Err(err) = state.store.agents_heartbeat(&beats, Utc::now()).await {
        tracing::warn!(error = %err, count = beats.len(), "cannot record heartbeats");
    }
}

async fn mark_agents_offline(state: &AppState) {
    let offline_after =
        chrono::Duration::from_std(state.config.agent_offline_after).unwrap_or_default();
    match state
        .store
        .mark_agents_offline(Utc::now() - offline_after)
        .await
    {
        Ok(0) => {}
        Ok(count) => tracing::info!(count, "agents marked offline after missing heartbeats"),
        Err(err) => tracing::warn!(error = %err, "cannot mark silent agents offline"),
    }
}

async fn fail_overdue_tasks(state: &AppState) {
    match state.store.fail_overdue_tasks(Utc::now()).await {
        Ok(failed) => {
            for (agent, task) in failed {
                tracing::warn!(agent = %agent, task = %task, "task failed: no result within its timeout");
                state.hub.task_changed(&task);
            }
        }
        Err(err) => tracing::warn!(error = %err, "cannot fail overdue tasks"),
    }
}
