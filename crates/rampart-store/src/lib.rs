//! Rampart's fleet storage.
//!
//! One [`Store`] over two backends: SQLite (a file in the server's data directory, the embedded
//! default) and PostgreSQL (production, and the only backend several server replicas may share).
//! Each backend has its own migrations (`migrations/sqlite`, `migrations/postgres`), kept in step;
//! the queries themselves are written once and compiled against both pool types by [`on_pool!`],
//! so a behaviour cannot drift between backends without the shared test suite noticing.
//!
//! Times are Unix seconds (UTC) in the database and [`time::OffsetDateTime`] at this crate's edge.
//! The store knows nothing of HTTP, certificates or policies' meaning: callers hand it validated
//! records.

mod agents;
mod alerts;
mod attest;
mod audit;
mod batch;
mod ca;
mod census;
mod dashboard;
mod error;
mod events;
mod intel;
mod live;
mod policies;
mod records;
mod runs;
mod tallies;
#[cfg(feature = "testing")]
pub mod testing;
mod texts;
mod tokens;
mod users;
mod waivers;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::ConnectOptions as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use agents::GroupOf;
pub use alerts::{SilentAgent, StoredAlertState, StoredRule, TurnOutcome};
pub use attest::{AttestationKey, Rotation, RunEvidence, SignError, StoredAttestation};
pub use audit::{AuditQuery, AuditRow, StoredCheckpoint};
pub use census::{AgentCensus, AgentState, GroupAgents, GroupPolicyTally};
pub use dashboard::{
    CheckOnHost, CheckTally, FailingTally, FleetScope, PolicyTally, TrendPoint, policy_tallies,
};
pub use error::StoreError;
pub use events::{Backlog, Claimed, DeadLetter, Destination, Failed, NewDestination, StoredEvent};
pub use live::{RUNS_CHANNEL, RunListener, RunNotice};
pub use policies::NewPolicyVersion;
pub use rampart_intel::rows::{
    ExportCursor, IntelAllowlist, IntelDecayRow, IntelExportRow, IntelFeed, IntelHit,
    IntelIndexRow, IntelIndicator, IntelIngestCounts, IntelObservation, IntelRecordIn,
    NewIntelFeed, NewIntelHit, STAMPS_PER_VERSION,
};
pub use records::*;
pub use texts::{CheckText, split as split_check_text};
pub use users::{
    ApiToken, Authenticated, NewApiToken, NewUser, OidcExchange, OidcLogin, Session, User,
};
pub use waivers::{StoredWaiver, WaiverScope};

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

#[derive(Clone)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same expression against whichever pool the store holds. The expression is compiled
/// twice, once per concrete pool type, which is what lets one SQL text serve both backends
/// (both accept `$N` placeholders, `ON CONFLICT` and `RETURNING`).
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::Db::Sqlite($pool) => $body,
            $crate::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// [`on_pool!`] for the point reads every API request makes (its credential, the intel rules'
/// generation, a lookup's matches): on SQLite they go through one of the store's own
/// [`Readers`], one hand-off to the connection's thread, instead of the pool, whose
/// connections also take a round trip to that thread each time they go back.
macro_rules! on_reader {
    ($store:expr, $conn:ident => $body:expr) => {
        match (&$store.db, &$store.readers) {
            ($crate::Db::Sqlite(pool), Some(readers)) => {
                let mut guard = readers.get().await;
                match guard.as_mut() {
                    Some($conn) => $body,
                    // Closed: what is left of a closing store's work goes through the pool.
                    None => {
                        let $conn = pool;
                        $body
                    }
                }
            }
            ($crate::Db::Sqlite($conn), None) => $body,
            ($crate::Db::Postgres($conn), _) => $body,
        }
    };
}
pub(crate) use on_reader;

/// [`on_pool!`] for the hot writers (audit entries and checkpoints, attestation rows, last-seen
/// times, event deliveries, alert turns): takes this process's turn to write
/// ([`Store::write_turn`]) and, on SQLite, writes through the store's one writer connection.
/// (Result batches take the same turn and write through a connection of their own, `batch.rs`.)
///
/// Why one connection: SQLite discards a connection's page cache whenever another connection
/// has changed the file, so writers rotating over the pool's eight connections each started
/// cold and read the indexes they update back through `pread`; one connection that does all
/// the hot writing keeps them in its cache (docs/performance.md, "Fleet server").
///
/// The second form takes one body per backend, for a writer whose PostgreSQL statements differ
/// (row locks SQLite does not have) but whose SQLite side keeps the same rule.
macro_rules! on_writer {
    ($store:expr, $pool:ident => $body:expr) => {
        $crate::on_writer!($store, sqlite $pool => $body, postgres $pool => $body)
    };
    ($store:expr, sqlite $sqlite:ident => $sqlite_body:expr, postgres $pg:ident => $pg_body:expr) => {{
        let _turn = $store.write_turn().await;
        match &$store.db {
            $crate::Db::Sqlite(pool) => {
                let $sqlite = $store.sqlite_writer(pool);
                $sqlite_body
            }
            $crate::Db::Postgres($pg) => $pg_body,
        }
    }};
}
pub(crate) use on_writer;

/// A few SQLite connections kept outside the pool for short point reads on the request path.
///
/// Why: sqlx runs each SQLite connection on its own thread, and a pooled connection pings
/// that thread whenever it is released, so a one-row read costs two round trips between
/// threads; on two cores shared with the TLS and HTTP work those hand-offs were most of an
/// API lookup's CPU (docs/performance.md). A connection taken here is held only for one
/// statement; a statement abandoned mid-way (the request dropped) ends when its result
/// channel closes, so the connection is clean for the next one.
///
/// There are more of them than cores: a read of a page that is not in memory waits for the
/// disk, and on the machines this was measured on a disk read took up to a quarter of a
/// second at times (the kernel there pages out file pages no process has mapped after a
/// minute unused). With two connections, two such reads at once held up every request
/// behind them, including the many that needed no disk at all (token checks, misses).
///
/// They read with `pread`, not through a memory map: in WAL mode a connection whose next
/// read finds that another connection has committed drops its cache *and unmaps its whole
/// map* (SQLite's `pagerBeginReadTransaction`), and tearing down a map of a large store took
/// each reader 20–26 ms, every request behind them waiting, after every commit of the fleet
/// (docs/performance.md). The pages a lookup needs are kept mapped by [`Pin`] instead.
struct Readers {
    conns: Vec<tokio::sync::Mutex<Option<sqlx::SqliteConnection>>>,
    /// One permit per connection: a request waits for whichever connection frees first.
    free: tokio::sync::Semaphore,
}

/// A reader lent to one statement.
pub(crate) struct Reader<'a> {
    // Declared first so it is dropped first: when the permit comes back, the connection is
    // already free for whoever takes the permit.
    conn: tokio::sync::MutexGuard<'a, Option<sqlx::SqliteConnection>>,
    _permit: Option<tokio::sync::SemaphorePermit<'a>>,
}

impl std::ops::Deref for Reader<'_> {
    type Target = Option<sqlx::SqliteConnection>;
    fn deref(&self) -> &Self::Target {
        &self.conn
    }
}

impl std::ops::DerefMut for Reader<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.conn
    }
}

impl Readers {
    /// Connections: two per core the requests run on, so one or two waiting for the disk
    /// leave the others serving.
    const COUNT: usize = 4;

    async fn open(options: &SqliteConnectOptions) -> Result<Readers, sqlx::Error> {
        let options = options.clone().pragma("mmap_size", "0");
        let mut conns = Vec::with_capacity(Self::COUNT);
        for _ in 0..Self::COUNT {
            conns.push(tokio::sync::Mutex::new(Some(options.connect().await?)));
        }
        Ok(Readers {
            conns,
            free: tokio::sync::Semaphore::new(Self::COUNT),
        })
    }

    /// The first free connection, waiting for one when all are busy.
    async fn get(&self) -> Reader<'_> {
        // Err only if the semaphore were closed, which nothing does: then the first
        // connection's own lock is the queue.
        let permit = self.free.acquire().await.ok();
        // A permit means at most COUNT - 1 others hold a connection, and each gives its
        // connection back before its permit: one of these is free.
        for conn in &self.conns {
            if let Ok(conn) = conn.try_lock() {
                return Reader {
                    conn,
                    _permit: permit,
                };
            }
        }
        Reader {
            conn: self.conns[0].lock().await,
            _permit: permit,
        }
    }

    async fn close(&self) {
        use sqlx::Connection as _;
        for conn in &self.conns {
            if let Some(conn) = conn.lock().await.take() {
                // Nothing to recover from at shutdown: the database is consistent either way.
                let _ = conn.close().await;
            }
        }
    }
}

/// A SQLite connection that reads the pages the request path's lookups need through a memory
/// map and then stays idle, so that they stay mapped in this process
/// ([`Store::intel_map_lookup_pages`]).
///
/// Why a connection of its own: SQLite keeps a connection's map only until that connection
/// next begins a read after another connection's commit (see [`Readers`]). Used for nothing
/// else, this one begins a read only to map the pages, at start and after each index build;
/// its map outlives every commit in between.
type Pin = Arc<tokio::sync::Mutex<Option<sqlx::SqliteConnection>>>;

/// The fleet's persistent state. Cheap to clone (pools are reference-counted).
#[derive(Clone)]
pub struct Store {
    db: Db,
    /// SQLite only: the connection bulk intel ingestion writes through (`intel::ingest`).
    intel_writer: Option<Arc<batch::BatchConnection>>,
    /// SQLite only: connections for the request path's point reads ([`on_reader!`]).
    readers: Option<Arc<Readers>>,
    /// SQLite only: the connection that keeps a lookup's pages mapped ([`Pin`]).
    pin: Option<Pin>,
    /// SQLite only: this process's turn to write ([`Store::write_turn`]).
    write_gate: Option<Arc<tokio::sync::Mutex<()>>>,
    /// SQLite only: the one connection the hot writers write through ([`on_writer!`]).
    writer: Option<SqlitePool>,
    /// SQLite only: the connection result batches write through (`batch.rs`), with the turn.
    ingest: Option<Arc<batch::BatchConnection>>,
    /// Recent results' policy texts, so that result ingestion splits a run with comparisons.
    texts: Arc<texts::TextCache>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .finish()
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// On SQLite, waits for this process's turn to write and holds it while the guard lives;
    /// on PostgreSQL, nothing (its writers do not exclude each other).
    ///
    /// Why: SQLite has one writer at a time, and a connection that finds the write lock taken
    /// waits in SQLite's busy handler, which sleeps in steps of up to 100 ms between retries.
    /// With several tasks writing steadily (result batches, audit entries and checkpoints,
    /// attestation rows, last-seen times) the lock then sits free while the waiters sleep:
    /// statements of a millisecond were logged taking 1–3 s and result ingestion fell to
    /// 22,500–30,000 check results/s (docs/performance.md). A fair in-process queue hands the
    /// lock over the moment it is free. The hot writers take a turn; rare ones (enrolment,
    /// policy uploads) still rely on the busy timeout.
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.write_gate {
            Some(gate) => Some(gate.lock().await),
            None => None,
        }
    }

    /// The connection result batches and attestation batches write through on SQLite
    /// (`batch.rs`); [`StoreError::Closed`] once the store is closed or on PostgreSQL.
    pub(crate) fn ingest(&self) -> Result<&batch::BatchConnection, StoreError> {
        self.ingest.as_deref().ok_or(StoreError::Closed)
    }

    /// The pool a hot writer holding its turn writes through on SQLite: the writer connection
    /// ([`on_writer!`]), or `main` in a store without one.
    pub(crate) fn sqlite_writer<'a>(&'a self, main: &'a SqlitePool) -> &'a SqlitePool {
        self.writer.as_ref().unwrap_or(main)
    }

    /// Opens (creating if needed) the SQLite database at `path` and applies pending migrations.
    ///
    /// WAL mode with `synchronous = FULL`: a result the server has acknowledged survives a crash
    /// of the process and of the machine.
    pub async fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            // For a new file only (SQLite keeps an existing database's page size): 16 KiB
            // pages make the intel key index shallower and each commit writes fewer, fuller
            // pages (docs/performance.md).
            .page_size(16384)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(SQLITE_BUSY_TIMEOUT);
        // No ping before each acquire: a SQLite connection is a thread of this process, not a
        // socket that can drop, and the ping is a round trip to that thread: a third of the
        // hand-offs of a one-query request (sqlx still pings once on release).
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(|e| StoreError::Connect {
                target: path.display().to_string(),
                source: e,
            })?;
        SQLITE_MIGRATIONS
            .run(&pool)
            .await
            .map_err(StoreError::Migrate)?;
        intel::sqlite_backfill_indicator_keys(&pool).await?;
        // One connection, taken only with the write turn; its cache holds the indexes the
        // fleet's writes update (latest results, counters, audit tree) between transactions.
        let writer = one_connection(
            options
                .clone()
                .pragma("cache_size", WRITER_CACHE_SIZE)
                // Result batches write through a connection of their own (`batch.rs`), and
                // SQLite drops this connection's page cache after each: with the file mapped,
                // the pages read again come from the mapping instead of `pread`.
                .pragma("mmap_size", SQLITE_MMAP_BYTES)
                // The log is copied into the database by `checkpoint_wal`, off the write turn;
                // this connection does it only if that falls far behind (see there).
                .pragma("wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES)
                // Room for the hot writers' multi-row texts (runs.rs `pieces`), so none is
                // prepared twice.
                .statement_cache_capacity(512),
        );
        let readers = Readers::open(&options)
            .await
            .map_err(|e| StoreError::Connect {
                target: path.display().to_string(),
                source: e,
            })?;
        let pin = options
            .clone()
            .pragma("mmap_size", SQLITE_MMAP_BYTES)
            .connect()
            .await
            .map_err(|e| StoreError::Connect {
                target: path.display().to_string(),
                source: e,
            })?;
        let ingest = batch::BatchConnection::open(path, batch::Purpose::Fleet)?;
        // Bulk intel ingestion gets its own connection (`intel::ingest`): SQLite has one
        // writer anyway, and its cache, durability and statements are its own.
        let intel_writer = batch::BatchConnection::open(path, batch::Purpose::Intel)?;
        Ok(Store {
            db: Db::Sqlite(pool),
            intel_writer: Some(Arc::new(intel_writer)),
            readers: Some(Arc::new(readers)),
            pin: Some(Arc::new(tokio::sync::Mutex::new(Some(pin)))),
            write_gate: Some(Arc::new(tokio::sync::Mutex::new(()))),
            writer: Some(writer),
            ingest: Some(Arc::new(ingest)),
            texts: Arc::default(),
        })
    }

    /// Connects to PostgreSQL at `url` and applies pending migrations. Several servers may do
    /// this at once: sqlx serialises migrations with an advisory lock.
    pub async fn open_postgres(url: &str) -> Result<Store, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(|e| StoreError::Connect {
            target: redact_url(url),
            source: e,
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Connect {
                target: redact_url(url),
                source: e,
            })?;
        POSTGRES_MIGRATIONS
            .run(&pool)
            .await
            .map_err(StoreError::Migrate)?;
        Ok(Store {
            db: Db::Postgres(pool),
            intel_writer: None,
            readers: None,
            pin: None,
            write_gate: None,
            writer: None,
            ingest: None,
            texts: Arc::default(),
        })
    }

    /// Opens a store from a URL: `postgres://…`/`postgresql://…`, or `sqlite://PATH` / a plain path.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Store::open_postgres(url).await
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            Store::open_sqlite(Path::new(path)).await
        }
    }

    /// SQLite only: copies what the write-ahead log holds into the database file as far as no
    /// reader still needs it (a passive checkpoint), without the write turn; `None` on
    /// PostgreSQL. The server calls it a few times a second.
    ///
    /// Why: SQLite otherwise checkpoints inside the commit that grows the log past 1,000 pages,
    /// so one result batch in seven paid the copy and its syncs (12–16 ms against 2–3 ms) while
    /// holding the one write turn every other writer waits for; under result ingestion these
    /// checkpoints were a tenth of the turn's time. Run here, on a pooled connection, the copy
    /// runs beside the writer (SQLite lets a checkpoint and a writer proceed together). The
    /// writer connection still checkpoints itself past [`WRITER_AUTOCHECKPOINT_PAGES`], so the
    /// log stays bounded in a process that never calls this.
    pub async fn checkpoint_wal(&self) -> Result<Option<WalCheckpoint>, StoreError> {
        let Db::Sqlite(pool) = &self.db else {
            return Ok(None);
        };
        let (busy, frames, copied): (i64, i64, i64) =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(pool)
                .await?;
        Ok(Some(WalCheckpoint {
            busy: busy != 0,
            frames: u64::try_from(frames).unwrap_or(0),
            copied: u64::try_from(copied).unwrap_or(0),
        }))
    }

    /// Which backend this store uses.
    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes every pooled connection, waiting for queries in flight — but not for ever.
    ///
    /// A pool's `close` waits until every checked-out connection is returned; one task that
    /// holds a connection and never finishes (a stuck client, a bug) would then stop a server's
    /// shutdown for good, and a service manager's stop would end in SIGKILL anyway. After
    /// [`CLOSE_GRACE`] the remaining connections are left to be dropped with the pool.
    pub async fn close(&self) {
        let closing = async {
            if let Some(writer) = &self.intel_writer {
                // Waits for an intel batch in flight, if any: one transaction of seconds at most.
                writer.close();
            }
            if let Some(writer) = &self.writer {
                writer.close().await;
            }
            if let Some(ingest) = &self.ingest {
                // With the turn: no batch is running on it.
                let _turn = self.write_turn().await;
                ingest.close();
            }
            if let Some(readers) = &self.readers {
                readers.close().await;
            }
            if let Some(pin) = &self.pin {
                let conn = pin.lock().await.take();
                if let Some(conn) = conn {
                    use sqlx::Connection as _;
                    // As for the readers: nothing to recover at shutdown.
                    let _ = conn.close().await;
                }
            }
            on_pool!(&self.db, p => p.close().await)
        };
        if tokio::time::timeout(CLOSE_GRACE, closing).await.is_err() {
            tracing::warn!(
                grace_secs = CLOSE_GRACE.as_secs(),
                "store connections still in use at shutdown; not waiting for them"
            );
        }
    }
}

/// How far the writer connection lets the write-ahead log grow (pages; 64 MiB at this store's
/// 16 KiB pages) before checkpointing it itself: the backstop of [`Store::checkpoint_wal`].
const WRITER_AUTOCHECKPOINT_PAGES: &str = "4096";

/// How long a SQLite connection waits for another's write lock before failing: every writer
/// without the turn (enrolment, policy uploads) relies on it.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The page cache of the connections the hot writers write through (`PRAGMA cache_size`, in
/// KiB when negative: 64 MiB), holding the indexes they update between transactions.
const WRITER_CACHE_SIZE: &str = "-65536";

/// How much of a SQLite database file the intel writer and [`Pin`] map into memory
/// (`PRAGMA mmap_size`): the most SQLite maps on Linux (its compile-time
/// `SQLITE_MAX_MMAP_SIZE`, 2 GiB less 64 KiB, to which it silently cuts anything larger).
/// Pages past it are read with `pread`.
const SQLITE_MMAP_BYTES: &str = "2147418112";

/// What a passive checkpoint of SQLite's write-ahead log did ([`Store::checkpoint_wal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalCheckpoint {
    /// Another connection was checkpointing: this one copied nothing.
    pub busy: bool,
    /// Frames in the log.
    pub frames: u64,
    /// Of them, those now in the database file.
    pub copied: u64,
}

/// A pool of one SQLite connection, opened at its first use (a server that never needs it
/// never pays its cache): for a dedicated writer, which SQLite's single write lock makes one
/// connection anyway.
fn one_connection(options: SqliteConnectOptions) -> SqlitePool {
    SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .test_before_acquire(false)
        .connect_lazy_with(options)
}

/// How long [`Store::close`] waits for connections in use.
pub const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// A database URL fit for logs and error messages: the password is replaced by `***`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Unix seconds of a timestamp.
pub(crate) fn secs(t: time::OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

/// A timestamp from Unix seconds; out-of-range values (never written by Rampart) clamp to the epoch.
pub(crate) fn from_secs(s: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(s).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::{Readers, Store, redact_url};

    async fn sqlite_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Store::open_sqlite(&dir.path().join("readers.db"))
            .await
            .expect("open the store");
        (dir, store)
    }

    /// A read waiting for a connection takes the first one given back, whichever it is: a
    /// connection stuck on a slow disk read must not hold up the requests queued after it.
    #[tokio::test]
    async fn a_waiting_read_takes_whichever_reader_frees_first() {
        let (_dir, store) = sqlite_store().await;
        let readers = store.readers.as_ref().expect("a SQLite store has readers");
        let mut held = Vec::new();
        for _ in 0..Readers::COUNT {
            held.push(readers.get().await);
        }
        let waiting = readers.get();
        tokio::pin!(waiting);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), &mut waiting)
                .await
                .is_err(),
            "every reader is lent: the next one must wait"
        );
        // Not the first connection, nor the last: the one in the middle comes back.
        drop(held.remove(Readers::COUNT / 2));
        let reader = tokio::time::timeout(std::time::Duration::from_secs(10), &mut waiting)
            .await
            .expect("the read takes the connection that was given back");
        assert!(reader.is_some());
        drop(reader);
        drop(held);
        // All given back: every one can be taken again at once.
        let mut again = Vec::new();
        for _ in 0..Readers::COUNT {
            again.push(readers.get().await);
        }
        assert!(again.iter().all(|r| r.is_some()));
    }

    /// The request path's readers read with `pread`; the pin connection through a memory map.
    #[tokio::test]
    async fn only_the_pin_connection_reads_through_a_memory_map() {
        let (_dir, store) = sqlite_store().await;
        let readers = store.readers.as_ref().expect("a SQLite store has readers");
        let mut reader = readers.get().await;
        let conn = reader.as_mut().expect("an open connection");
        let mapped: i64 = sqlx::query_scalar("PRAGMA mmap_size")
            .fetch_one(conn)
            .await
            .expect("PRAGMA mmap_size");
        assert_eq!(mapped, 0);
        let pin = store
            .pin
            .as_ref()
            .expect("a SQLite store has a pin connection");
        let mut pin = pin.lock().await;
        let conn = pin.as_mut().expect("an open connection");
        let mapped: i64 = sqlx::query_scalar("PRAGMA mmap_size")
            .fetch_one(conn)
            .await
            .expect("PRAGMA mmap_size");
        assert_eq!(mapped.to_string(), super::SQLITE_MMAP_BYTES);
    }

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(redact_url("postgres://db/x"), "postgres://db/x");
        assert_eq!(redact_url("postgres://u@db/x"), "postgres://u@db/x");
    }
}
