//! Tasks: commands stored before they are sent, their delivery, output, result, cancellation
//! and timeout. The rules that need the row's current state (late results, cancelled tasks,
//! second results) are single statements, so concurrent reports cannot interleave.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{to_micros, NewAuditEntry, Store, StoreResult};

const TASK_COLUMNS: &str = "id, agent_id, command, args, shell_type, timeout, working_directory, \
     environment, status, output, error, exit_code, output_truncated, reported, late_result, \
     cancelled_by, created_by, created_at, started_at, finished_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TaskRecord {
    pub id: String,
    pub agent_id: String,
    pub command: String,
    /// JSON array.
    pub args: String,
    pub shell_type: String,
    pub timeout: i64,
    pub working_directory: Option<String>,
    /// JSON object.
    pub environment: Option<String>,
    pub status: String,
    pub output: String,
    pub error: Option<String>,
    pub exit_code: Option<i64>,
    pub output_truncated: i64,
    pub reported: i64,
    pub late_result: i64,
    pub cancelled_by: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

pub struct NewTask<'a> {
    pub id: &'a str,
    pub agent_id: &'a str,
    pub command: &'a str,
    pub args: &'a str,
    pub shell_type: &'a str,
    pub timeout: i64,
    pub working_directory: Option<&'a str>,
    pub environment: Option<&'a str>,
    pub created_by: &'a str,
}

/// The agent's final report.
pub struct ResultReport<'a> {
    pub status: &'a str,
    pub output: &'a str,
    pub output_truncated: bool,
    pub error: Option<&'a str>,
    pub exit_code: Option<i64>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ReportOutcome {
    Recorded,
    AlreadyReported,
    NotFound,
}

#[derive(Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    /// Cancelled; `was_running` when the agent already had it.
    Cancelled {
        was_running: bool,
    },
    AlreadyFinished,
    NotFound,
}

impl Store {
    /// Stores tasks and their audit rows in one transaction: a command to 10,000 agents is one
    /// commit, not 20,000.
    pub async fn insert_tasks(
        &self,
        tasks: &[NewTask<'_>],
        audit: &[NewAuditEntry<'_>],
    ) -> StoreResult<()> {
        let now = to_micros(Utc::now());
        let mut tx = self.pool.begin().await?;
        for chunk in tasks.chunks(super::BATCH_ROWS) {
            let sql = format!(
                "INSERT INTO tasks (id, agent_id, command, args, shell_type, timeout, working_directory, \
                 environment, status, created_by, created_at) VALUES {}",
                super::value_rows(chunk.len(), 10, Some((8, "'pending'")))
            );
            let mut query = sqlx::query(&sql);
            for task in chunk {
                query = query
                    .bind(task.id)
                    .bind(task.agent_id)
                    .bind(task.command)
                    .bind(task.args)
                    .bind(task.shell_type)
                    .bind(task.timeout)
                    .bind(task.working_directory)
                    .bind(task.environment)
                    .bind(task.created_by)
                    .bind(now);
            }
            query.execute(&mut *tx).await?;
        }
        super::audit::insert_audit_rows(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// How many tasks wait (pending) for each of these agents; agents with none are absent.
    pub async fn pending_task_counts(
        &self,
        agent_ids: &[&str],
    ) -> StoreResult<HashMap<String, i64>> {
        let mut counts = HashMap::new();
        for chunk in agent_ids.chunks(super::BATCH_ROWS) {
            let sql = format!(
                "SELECT agent_id, COUNT(*) FROM tasks WHERE status = 'pending' AND agent_id IN ({}) \
                 GROUP BY agent_id",
                super::placeholders(1, chunk.len())
            );
            let mut query = sqlx::query_as::<_, (String, i64)>(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            counts.extend(query.fetch_all(&self.pool).await?);
        }
        Ok(counts)
    }

    pub async fn task(&self, agent_id: &str, task_id: &str) -> StoreResult<Option<TaskRecord>> {
        let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1 AND agent_id = $2");
        Ok(sqlx::query_as(&sql)
            .bind(task_id)
            .bind(agent_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The agent's newest tasks first.
    pub async fn list_tasks(&self, agent_id: &str, limit: i64) -> StoreResult<Vec<TaskRecord>> {
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE agent_id = $1 ORDER BY created_at DESC, id LIMIT $2"
        );
        Ok(sqlx::query_as(&sql)
            .bind(agent_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Tasks the agent must (still) run: pending ones, and delivered ones it has not reported
    /// on. Oldest first.
    pub async fn unfinished_tasks(&self, agent_id: &str) -> StoreResult<Vec<TaskRecord>> {
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE agent_id = $1 AND reported = 0 \
             AND (status = 'pending' OR status = 'running') ORDER BY created_at, id"
        );
        Ok(sqlx::query_as(&sql)
            .bind(agent_id)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Delivered, cancelled, and not yet reported: the agent should stop these.
    pub async fn tasks_to_cancel(&self, agent_id: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM tasks WHERE agent_id = $1 AND cancelled_by IS NOT NULL AND reported = 0 \
             AND started_at IS NOT NULL ORDER BY created_at",
        )
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Pending tasks were handed to their agents: they are running, and fail if no result
    /// comes by their timeout plus `grace`. One statement per few hundred tasks.
    pub async fn mark_tasks_delivered(
        &self,
        task_ids: &[String],
        grace: std::time::Duration,
    ) -> StoreResult<()> {
        let now = to_micros(Utc::now());
        let grace = i64::try_from(grace.as_micros()).unwrap_or(i64::MAX / 4);
        for chunk in task_ids.chunks(super::BATCH_ROWS) {
            let sql = format!(
                "UPDATE tasks SET status = 'running', started_at = $1, \
                 deadline = $1 + timeout * 1000000 + $2 WHERE status = 'pending' AND id IN ({})",
                super::placeholders(3, chunk.len())
            );
            let mut query = sqlx::query(&sql).bind(now).bind(grace);
            for id in chunk {
                query = query.bind(id);
            }
            query.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Appends partial output of a running task, up to `cap` characters in all; returns false
    /// when the task is unknown or already final.
    pub async fn append_task_output(
        &self,
        agent_id: &str,
        task_id: &str,
        chunk: &str,
        cap: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE tasks SET \
             output = output || substr($3, 1, CAST(CASE WHEN $4 - length(output) > 0 THEN $4 - length(output) ELSE 0 END AS INTEGER)), \
             output_truncated = CASE WHEN length(output) + length($3) > $4 THEN 1 ELSE output_truncated END, \
             status = 'running', started_at = COALESCE(started_at, $5) \
             WHERE id = $1 AND agent_id = $2 AND reported = 0 AND (status = 'pending' OR status = 'running')",
        )
        .bind(task_id)
        .bind(agent_id)
        .bind(chunk)
        .bind(cap)
        .bind(to_micros(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the agent's result once. A task the server already failed for its timeout takes
    /// the agent's result and is marked late; a cancelled task stays failed, naming who
    /// cancelled it, with the agent's output.
    pub async fn record_task_result(
        &self,
        agent_id: &str,
        task_id: &str,
        report: ResultReport<'_>,
    ) -> StoreResult<ReportOutcome> {
        let done = sqlx::query(
            "UPDATE tasks SET \
             status = CASE WHEN cancelled_by IS NOT NULL THEN 'failed' ELSE $3 END, \
             late_result = CASE WHEN status = 'failed' AND cancelled_by IS NULL THEN 1 ELSE 0 END, \
             error = CASE WHEN cancelled_by IS NOT NULL THEN 'cancelled by ' || cancelled_by ELSE $4 END, \
             output = $5, output_truncated = $6, exit_code = $7, finished_at = $8, \
             started_at = COALESCE(started_at, $8), reported = 1 \
             WHERE id = $1 AND agent_id = $2 AND reported = 0",
        )
        .bind(task_id)
        .bind(agent_id)
        .bind(report.status)
        .bind(report.error)
        .bind(report.output)
        .bind(i64::from(report.output_truncated))
        .bind(report.exit_code)
        .bind(to_micros(Utc::now()))
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(ReportOutcome::Recorded);
        }
        Ok(match self.task(agent_id, task_id).await? {
            Some(_) => ReportOutcome::AlreadyReported,
            None => ReportOutcome::NotFound,
        })
    }

    /// Cancels a pending or running task: it ends failed, naming `by`.
    pub async fn cancel_task(
        &self,
        agent_id: &str,
        task_id: &str,
        by: &str,
    ) -> StoreResult<CancelOutcome> {
        let Some(task) = self.task(agent_id, task_id).await? else {
            return Ok(CancelOutcome::NotFound);
        };
        if task.status != "pending" && task.status != "running" {
            return Ok(CancelOutcome::AlreadyFinished);
        }
        let done = sqlx::query(
            "UPDATE tasks SET status = 'failed', cancelled_by = $3, error = 'cancelled by ' || $3, \
             finished_at = $4 WHERE id = $1 AND agent_id = $2 AND status = $5",
        )
        .bind(task_id)
        .bind(agent_id)
        .bind(by)
        .bind(to_micros(Utc::now()))
        .bind(&task.status)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            // It finished (or was delivered) in between; look again.
            return Box::pin(self.cancel_task(agent_id, task_id, by)).await;
        }
        Ok(CancelOutcome::Cancelled {
            was_running: task.status == "running",
        })
    }

    /// Fails delivered tasks whose deadline passed without a result; returns (agent, task) ids.
    pub async fn fail_overdue_tasks(
        &self,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<(String, String)>> {
        let now = to_micros(now);
        Ok(sqlx::query_as(
            "UPDATE tasks SET status = 'failed', finished_at = $1, \
             error = 'timed out: no result from the agent within ' || CAST(timeout AS TEXT) || ' s and the grace period' \
             WHERE status = 'running' AND reported = 0 AND deadline < $1 RETURNING agent_id, id",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Output from character `offset` on, the status, and whether the task is final — what a
    /// live follower needs.
    pub async fn task_progress(
        &self,
        agent_id: &str,
        task_id: &str,
        offset: i64,
    ) -> StoreResult<Option<TaskRecord>> {
        let sql = format!(
            "SELECT {} FROM tasks WHERE id = $1 AND agent_id = $2",
            TASK_COLUMNS.replace(
                " output,",
                " substr(output, CAST($3 AS INTEGER)) AS output,"
            )
        );
        Ok(sqlx::query_as(&sql)
            .bind(task_id)
            .bind(agent_id)
            .bind(offset + 1)
            .fetch_optional(&self.pool)
            .await?)
    }
}
