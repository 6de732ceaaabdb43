//! Test support shared by every crate whose tests need a real store (feature `testing`):
//! a fresh SQLite file, or a fresh schema on the PostgreSQL server named by `DATABASE_URL`.
//!
//! Helpers panic on set-up failure: they only run inside tests, where a panic is the report.
#![allow(clippy::expect_used, clippy::panic)]

use crate::Store;

/// A store that removes its files or PostgreSQL schema when the test calls [`TestStore::finish`].
pub struct TestStore {
    /// The store under test.
    pub store: Store,
    /// What [`Store::open`] takes to open the same database again (a second replica).
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_schema: Option<(String, String)>,
}

impl TestStore {
    /// Runs SQL on the database behind the store's back, as an intruder with database access
    /// would (tampering tests).
    pub async fn tamper(&self, sql: &str) {
        tamper(&self.database(), sql).await;
    }

    /// The database as a URL: `postgres://…` (scoped to the schema), or `sqlite://PATH`.
    fn database(&self) -> String {
        match self.pg_schema {
            Some(_) => self.url.clone(),
            None => format!("sqlite://{}", self.url),
        }
    }

    /// The number a counting query (`SELECT COUNT(*) …`) gives, read behind the store's back:
    /// for tests of what the store writes, not only of what it reads back.
    pub async fn count(&self, sql: &str) -> i64 {
        use sqlx::Connection as _;
        let url = self.database();
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        if url.starts_with("sqlite:") {
            let mut c = sqlx::SqliteConnection::connect(&url)
                .await
                .expect("connect");
            let n: i64 = sqlx::query_scalar(sql)
                .fetch_one(&mut c)
                .await
                .expect("count");
            c.close().await.expect("close");
            n
        } else {
            let mut c = sqlx::PgConnection::connect(&url).await.expect("connect");
            let n: i64 = sqlx::query_scalar(sql)
                .fetch_one(&mut c)
                .await
                .expect("count");
            c.close().await.expect("close");
            n
        }
    }

    /// Closes the store and drops its PostgreSQL schema.
    pub async fn finish(self) {
        self.store.close().await;
        if let Some((url, schema)) = self.pg_schema {
            drop_schema(&url, &schema).await;
        }
    }
}

/// Runs SQL on the database at `url` (`postgres://…`, or `sqlite://PATH`) behind its store's
/// back, as an intruder with database access would (tampering tests).
pub async fn tamper(url: &str, sql: &str) {
    use sqlx::Connection as _;
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.expect("connect");
        sqlx::raw_sql(sql).execute(&mut c).await.expect("tamper");
        c.close().await.expect("close");
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.expect("connect");
        sqlx::raw_sql(sql).execute(&mut c).await.expect("tamper");
        c.close().await.expect("close");
    }
}

/// A store on a new SQLite file in a temporary directory.
pub async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rampart.db");
    let store = Store::open_sqlite(&path).await.expect("open sqlite");
    TestStore {
        store,
        url: path.display().to_string(),
        _dir: Some(dir),
        pg_schema: None,
    }
}

/// `DATABASE_URL`, or this machine's default test database.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A new empty schema on the PostgreSQL server: `(url scoped to it, server url, schema name)`,
/// or `None` (after printing `SKIP` and the reason) when the server is unreachable and
/// `RAMPART_REQUIRE_POSTGRES` is not `1`.
pub async fn fresh_schema() -> Option<(String, String, String)> {
    let url = database_url();
    let admin = match sqlx::PgPool::connect(&url).await {
        Ok(a) => a,
        Err(e) => {
            if std::env::var("RAMPART_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("PostgreSQL required but unreachable at {url}: {e}");
            }
            eprintln!("SKIP: PostgreSQL backend test: cannot reach {url}: {e}");
            return None;
        }
    };
    let schema = format!("rampart_t_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
        .execute(&admin)
        .await
        .expect("create schema");
    admin.close().await;
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    Some((scoped, url, schema))
}

/// Drops a schema made by [`fresh_schema`].
pub async fn drop_schema(url: &str, schema: &str) {
    let admin = sqlx::PgPool::connect(url).await.expect("reconnect");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{schema}\" CASCADE"
    )))
    .execute(&admin)
    .await
    .expect("drop schema");
    admin.close().await;
}

/// A store on a fresh PostgreSQL schema, or `None` when skipped (see [`fresh_schema`]).
pub async fn postgres() -> Option<TestStore> {
    let (scoped, url, schema) = fresh_schema().await?;
    let store = Store::open_postgres(&scoped).await.expect("open postgres");
    Some(TestStore {
        store,
        url: scoped,
        _dir: None,
        pg_schema: Some((url, schema)),
    })
}
