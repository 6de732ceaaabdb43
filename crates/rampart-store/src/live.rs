//! Telling every replica that runs were stored, so dashboards update live wherever the run
//! arrived: PostgreSQL `NOTIFY` on one channel, `LISTEN` on each replica. No extra service;
//! SQLite serves one server, which tells itself.

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;

use crate::{Db, Store, StoreError};

/// The channel runs are announced on.
pub const RUNS_CHANNEL: &str = "rampart_runs";

/// A run stored by some replica: enough for a page to know whether it shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunNotice {
    /// The agent that posted it.
    pub agent: String,
    /// The run's id.
    pub run: String,
    /// The policy evaluated.
    pub policy: String,
}

impl Store {
    /// Announces stored runs to every listening replica (this one included); nothing on
    /// SQLite, where there is one server. A notice is tiny (ids only), far below PostgreSQL's
    /// 8,000-byte payload limit.
    pub async fn notify_runs(&self, runs: &[RunNotice]) -> Result<(), StoreError> {
        let Db::Postgres(pool) = &self.db else {
            return Ok(());
        };
        if runs.is_empty() {
            return Ok(());
        }
        let payloads = runs
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::corrupt("run notice", e))?;
        // One round trip for a whole ingestion batch.
        sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
            .bind(RUNS_CHANNEL)
            .bind(payloads)
            .execute(pool)
            .await?;
        Ok(())
    }

    /// Listens for runs any replica announces; `None` on SQLite.
    pub async fn listen_runs(&self) -> Result<Option<RunListener>, StoreError> {
        let Db::Postgres(pool) = &self.db else {
            return Ok(None);
        };
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(RUNS_CHANNEL).await?;
        Ok(Some(RunListener(listener)))
    }
}

/// Notices as they arrive (the connection is re-established by sqlx when it drops).
pub struct RunListener(PgListener);

impl RunListener {
    /// The next notice; a payload that is not one is an error for the caller to log.
    pub async fn next(&mut self) -> Result<RunNotice, StoreError> {
        let n = self.0.recv().await?;
        serde_json::from_str(n.payload()).map_err(|e| StoreError::corrupt("run notice", e))
    }
}
