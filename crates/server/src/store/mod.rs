//! The only place that speaks SQL. One `Store` over sqlx's `Any` driver: SQLite (a file in the
//! data dir) by default, PostgreSQL when the URL says `postgres://`. The SQL is written once in
//! the dialect both accept (`$n` parameters, TEXT ids, BIGINT microsecond times); only the
//! migrations differ per backend.

mod agents;
mod audit;
mod customers;
mod scripts;
mod sessions;
mod settings;
mod tasks;
mod users;

use std::str::FromStr;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

pub use agents::{AgentRecord, NewAgent};
pub use audit::{AuditFilter, NewAuditEntry};
pub use customers::{CustomerDelete, CustomerRecord};
pub use scripts::{ScriptFields, ScriptRecord};
pub use sessions::{FinalCounters, NewSession, SessionRecord};
pub use tasks::{CancelOutcome, NewTask, ReportOutcome, ResultReport, TaskRecord};
pub use users::{NewUser, UserRecord};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

#[cfg(test)]
mod tests {
    #[test]
    fn multi_row_placeholders() {
        assert_eq!(super::value_rows(2, 2, None), "($1, $2), ($3, $4)");
        assert_eq!(
            super::value_rows(1, 3, Some((2, "'x'"))),
            "($1, $2, 'x', $3)"
        );
        assert_eq!(super::placeholders(3, 3), "$3, $4, $5");
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            bail!("unsupported database URL: use sqlite://PATH or postgres://…")
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key already holds this value; names the field ("Username", "Email").
    #[error("{0} already registered")]
    Duplicate(&'static str),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects, creating a SQLite file if needed, and brings the schema up to date.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let options = AnyConnectOptions::from_str(url).context("invalid database URL")?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the one writer; NORMAL sync is safe in WAL.
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .context("cannot open the database")?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&pool)
            .await
            .context("cannot migrate the database")?;
        Ok(Store { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Waits for queries in flight and closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Rows per multi-row statement: far below SQLite's 32,766 bound parameters.
const BATCH_ROWS: usize = 500;

/// `($n, $n+1, …)` groups for a multi-row `VALUES`, numbering from `$1`.
fn value_rows(rows: usize, columns: usize, literal_after: Option<(usize, &str)>) -> String {
    let mut sql = String::new();
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", row * columns + column + 1));
            if let Some((after, literal)) = literal_after {
                if column + 1 == after {
                    sql.push_str(", ");
                    sql.push_str(literal);
                }
            }
        }
        sql.push(')');
    }
    sql
}

/// `$first, $first+1, …` for an `IN (…)` list of `count` values.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Maps a unique-key violation to `Duplicate`, naming the field by the index it hit.
fn unique_violation(err: sqlx::Error, fields: &[(&str, &'static str)]) -> StoreError {
    if let Some(db) = err.as_database_error() {
        if db.is_unique_violation() {
            let text = db
                .constraint()
                .map(str::to_owned)
                .unwrap_or_else(|| db.message().to_owned());
            for (needle, field) in fields {
                if text.contains(needle) {
                    return StoreError::Duplicate(field);
                }
            }
        }
    }
    StoreError::Database(err)
}

/// Times are stored as microseconds since the Unix epoch.
pub fn to_micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

pub fn from_micros(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}
