//! A SQLite connection for result ingestion's transaction, driven from the calling thread; and
//! one more of the kind, tuned for it, for bulk intel ingestion ([`Purpose::Intel`]).
//!
//! Why not sqlx here: sqlx runs each SQLite connection on a thread of its own and hands every
//! statement and its answer across. A batch of results was a dozen multi-row statements, each
//! built as a text of up to a thousand rows and bound value by value, and between them the
//! connection's thread waited for a runtime worker that was busy parsing the next uploads;
//! that whole time counted against SQLite's one write turn, which the batches, the audit log
//! and the attestation issuer share. A profile of fleet ingestion on a slow 2 vCPU machine put
//! the write turn at 95 % busy with the batch's statements taking 1.75 times what SQLite's own
//! prepared statements take for the same rows (docs/performance.md, "Fleet server"). Here the
//! whole transaction runs on one thread, through single-row statements prepared once (rusqlite,
//! the C API's statements, as the benchmark's storage floor uses).
//!
//! The connection takes the same turn as every other hot writer ([`crate::Store::write_turn`]),
//! and maps the file as the readers do: SQLite drops a connection's page cache when another
//! connection has written, and the audit and attestation writers write between batches
//! through the sqlx writer connection; with the file mapped, the pages read again come from
//! the mapping instead of `pread`.

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use crate::{Store, StoreError};

/// An ingestion connection (SQLite only); `None` once the store is closed.
pub(crate) struct BatchConnection(Mutex<Option<rusqlite::Connection>>);

/// What a [`BatchConnection`] writes, which decides how durable its commits are and how much
/// it caches.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Purpose {
    /// Result and attestation batches: the settings of the store's fleet connections, synced
    /// on every commit (an acknowledged result survives a crash).
    Fleet,
    /// Bulk intel ingestion (`intel::ingest`): a large page cache for its random-key table
    /// (the indicators' keys, otherwise one `pread` per page miss), temporary data in memory,
    /// foreign keys not looked up again row by row, and commits synced only at checkpoints.
    /// WAL with `synchronous = NORMAL` cannot corrupt the database; a power cut may lose the
    /// last batches, which the next fetch of the feed brings back (ingestion is idempotent).
    Intel,
}

impl BatchConnection {
    /// Opens the database at `path`, which the store's migrations have already brought up to
    /// date, in write-ahead-log mode, tuned for `purpose`; foreign keys are enforced on the
    /// fleet's connection (see [`Purpose::Intel`] for why not on intel's).
    pub(crate) fn open(path: &Path, purpose: Purpose) -> Result<BatchConnection, StoreError> {
        let conn = rusqlite::Connection::open(path).map_err(|e| StoreError::OpenIngest {
            target: path.display().to_string(),
            source: e,
        })?;
        conn.busy_timeout(crate::SQLITE_BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "mmap_size", crate::SQLITE_MMAP_BYTES)?;
        match purpose {
            Purpose::Fleet => {
                conn.pragma_update(None, "foreign_keys", "ON")?;
                conn.pragma_update(None, "synchronous", "FULL")?;
                conn.pragma_update(None, "cache_size", crate::WRITER_CACHE_SIZE)?;
                // As the writer connection: `Store::checkpoint_wal` copies the log beside the
                // writers.
                conn.pragma_update(
                    None,
                    "wal_autocheckpoint",
                    crate::WRITER_AUTOCHECKPOINT_PAGES,
                )?;
                // Every statement of a batch, with room to spare.
                conn.set_prepared_statement_cache_capacity(32);
            }
            Purpose::Intel => {
                // Every row this connection writes refers to rows its own transaction has
                // just found or inserted under the write lock, and to the batch's feed, which
                // the transaction checks first (`intel::ingest`); it never deletes. Enforced,
                // each observation looked its indicator and its record up again and each
                // record its feed: about 10 % of the transaction's time in a 2 M ingest
                // (docs/performance.md). Deletions, and their cascades, run on the store's
                // other connections, which enforce foreign keys.
                conn.pragma_update(None, "foreign_keys", "OFF")?;
                conn.pragma_update(None, "synchronous", "NORMAL")?;
                // 1 GiB at most; SQLite takes the memory as pages are read, so a server that
                // never ingests a feed never pays it.
                conn.pragma_update(None, "cache_size", -1_048_576_i64)?;
                conn.pragma_update(None, "temp_store", "MEMORY")?;
                // Up to six statement sizes of each of an intel batch's eleven statements.
                conn.set_prepared_statement_cache_capacity(96);
            }
        }
        Ok(BatchConnection(Mutex::new(Some(conn))))
    }

    /// Runs `work` in one transaction on the connection and commits it if `work` succeeds
    /// (dropping it rolls back otherwise). On a multi-threaded runtime the calling worker hands
    /// its other tasks to another thread first ([`tokio::task::block_in_place`]), so the
    /// uploads keep being served while the transaction runs; elsewhere (a single-threaded
    /// runtime, as in tests) it simply runs.
    ///
    /// `BEGIN IMMEDIATE`: every batch reads stored state before its first write, so it takes
    /// the write lock first. A deferred transaction would read a snapshot, and a writer without
    /// the turn (an enrolment, another connection's batch) committing in between would make
    /// its first write fail at once with `SQLITE_BUSY_SNAPSHOT` instead of waiting.
    pub(crate) fn transaction<R>(
        &self,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let go = || {
            // A panic in an earlier batch dropped its transaction, which rolled it back: the
            // connection is usable.
            let mut conn = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            let conn = conn.as_mut().ok_or(StoreError::Closed)?;
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let out = work(&tx)?;
            tx.commit()?;
            Ok(out)
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(go)
            }
            _ => go(),
        }
    }

    /// Closes the connection (the store is closing); later batches fail with
    /// [`StoreError::Closed`].
    pub(crate) fn close(&self) {
        let conn = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(conn) = conn {
            // Nothing to recover from at shutdown: the database is consistent either way.
            let _ = conn.close();
        }
    }
}

impl Store {
    /// Runs `work` in one transaction on the ingestion connection, holding the write turn
    /// ([`BatchConnection::transaction`]). Result batches and attestation batches write this
    /// way.
    pub(crate) async fn in_batch_transaction<R>(
        &self,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let _turn = self.write_turn().await;
        self.ingest()?.transaction(work)
    }
}
