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
    /// A row holds something Rampart never writes (hand-edited database, newer version).
    #[error("corrupt {what} in database: {detail}")]
    Corrupt {
        /// Which column or record.
        what: &'static str,
        /// Why it could not be read.
        detail: String,
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

    pub(crate) fn not_found(what: &'static str, id: impl Into<String>) -> StoreError {
        StoreError::NotFound {
            what,
            id: id.into(),
        }
    }
}
