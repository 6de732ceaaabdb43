//! Errors of the storage layer.

/// What can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or reached.
    #[error("cannot open database {target}: {source}")]
    Connect {
        /// Path or redacted URL.
        target: String,
        /// Driver error.
        source: sqlx::Error,
    },
    /// A migration failed; the schema is left as the last successful migration made it.
    #[error("database migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
    /// The SQLite connection result ingestion writes through could not be opened.
    #[error("cannot open database {target}: {source}")]
    OpenIngest {
        /// Path.
        target: String,
        /// Driver error.
        source: rusqlite::Error,
    },
    /// The store was closed (the server is shutting down).
    #[error("the database is closed")]
    Closed,
    /// A statement of result ingestion's SQLite transaction failed.
    #[error("database query failed: {0}")]
    Ingest(#[from] rusqlite::Error),
    /// A batch of attestations could not be signed inside its transaction, which was rolled
    /// back: neither their audit entries nor their rows were stored.
    #[error("cannot sign a batch of attestations: {0}")]
    Attest(#[source] crate::SignError),
    /// A row holds something Rampart never writes (hand-edited database, newer version).
    #[error("corrupt {what} in database: {detail}")]
    Corrupt {
        /// Which column or record.
        what: &'static str,
        /// Why it could not be read.
        detail: String,
    },
    /// A record with this name already exists.
    #[error("{what} {id:?} already exists")]
    Conflict {
        /// Kind of record.
        what: &'static str,
        /// Its name.
        id: String,
    },
    /// The named record does not exist.
    #[error("{what} {id:?} not found")]
    NotFound {
        /// Kind of record.
        what: &'static str,
        /// Its identifier.
        id: String,
    },
}

impl StoreError {
    pub(crate) fn corrupt(what: &'static str, e: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            what,
            detail: e.to_string(),
        }
    }

    /// A unique-constraint violation as [`StoreError::Conflict`] on `what` `id`; any other
    /// error as it is.
    pub(crate) fn conflict_or(e: sqlx::Error, what: &'static str, id: &str) -> StoreError {
        match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict {
                what,
                id: id.to_owned(),
            },
            _ => StoreError::Query(e),
        }
    }

    pub(crate) fn not_found(what: &'static str, id: impl Into<String>) -> StoreError {
        StoreError::NotFound {
            what,
            id: id.into(),
        }
    }
}
