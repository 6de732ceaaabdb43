//! Upgrades of a store that already holds data: the schema as an earlier release left it,
//! filled through SQL, then opened by this release.

use std::path::{Path, PathBuf};

use sqlx::migrate::Migrator;
use sqlx::{AssertSqlSafe, Row};

use rampart_intel::IocKind;
use rampart_store::Store;
use rampart_store::testing::fresh_schema;

/// The migrations up to and including `last`, copied to a directory of their own.
fn migrations_until(backend: &str, last: &str, into: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let dst = into.join(backend);
    std::fs::create_dir_all(&dst).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if name.as_str() <= last {
            std::fs::copy(entry.path(), dst.join(&name)).unwrap();
        }
    }
    dst
}

/// Writes `rows` through SQL, on either backend.
async fn fill<'c, E>(conn: E, rows: &[&str])
where
    E: sqlx::Executor<'c> + Copy,
{
    for sql in rows {
        conn.execute(AssertSqlSafe(*sql)).await.unwrap();
    }
}

/// Brings a new SQLite database at `path` up to migration `last`, as an earlier release left
/// it, and writes `rows` into it through SQL; closed again, for this release to open.
async fn sqlite_release(path: &Path, last: &str, rows: &[&str]) {
    let dir = path.parent().unwrap();
    let old = Migrator::new(migrations_until("sqlite", last, dir))
        .await
        .unwrap();
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .foreign_keys(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    old.run(&pool).await.unwrap();
    fill(&pool, rows).await;
    pool.close().await;
}

/// [`sqlite_release`] on a fresh PostgreSQL schema: its scoped URL, the server's URL and the
/// schema's name, or `None` when there is no PostgreSQL to test against (the harness says so).
async fn postgres_release(last: &str, rows: &[&str]) -> Option<(String, String, String)> {
    let (scoped, url, schema) = fresh_schema().await?;
    let dir = tempfile::tempdir().unwrap();
    let old = Migrator::new(migrations_until("postgres", last, dir.path()))
        .await
        .unwrap();
    let pool = sqlx::PgPool::connect(&scoped).await.unwrap();
    old.run(&pool).await.unwrap();
    fill(&pool, rows).await;
    pool.close().await;
    Some((scoped, url, schema))
}

/// Intel rows as release 0003 stored them: record 1 names indicators 2 and 3 (anchor 2),
/// record 2 names indicator 1 and was deleted with it, indicator 4 (the newest) was deleted (so
/// the next indicator is 5), record 3 names indicator 3, record 4 was the newest and was
/// deleted (so the next record is 5, though the largest id left is 3).
const RELEASE_0003_ROWS: &[&str] = &[
    "INSERT INTO intel_feeds (name, format, interval_secs, reliability, tlp, ttl_secs, created_at) \
     VALUES ('f', 'plain', 3600, 80, 'clear', 86400, 1)",
    "INSERT INTO intel_indicators (kind, value, first_seen, last_seen, first_reported, last_reported, expires_at, base_score) \
     VALUES (1, '192.0.2.1', 1, 1, 1, 1, 99, 50), (1, '192.0.2.2', 1, 1, 1, 1, 99, 50), (1, '192.0.2.3', 1, 1, 1, 1, 99, 50), \
            (1, '192.0.2.4', 1, 1, 1, 1, 99, 50)",
    "INSERT INTO intel_records (hash, feed_id, malware, tags, attack, raw, first_fetched, last_fetched) \
     VALUES ('h1', 1, '[]', '[]', '[]', 'row one', 1, 1), ('h2', 1, '[]', '[]', '[]', 'row two', 1, 1), \
            ('h3', 1, '[]', '[]', '[]', 'row three', 1, 1), ('h4', 1, '[]', '[]', '[]', 'row four', 1, 1)",
    "INSERT INTO intel_observations (indicator_id, record_id) VALUES (3, 1), (2, 1), (1, 2), (3, 3)",
    "DELETE FROM intel_indicators WHERE id IN (1, 4)",
    "DELETE FROM intel_records WHERE id IN (2, 4)",
];

/// What release 0004 must show for the rows above: records and links intact, anchors set,
/// deletes still cascading.
async fn check_upgraded(store: &Store) {
    // Found by value: on SQLite through the key the upgrade computed for the old rows.
    let found = store
        .intel_indicator(IocKind::Ipv4, "192.0.2.2")
        .await
        .unwrap();
    assert_eq!(found.map(|i| i.id), Some(2));
    assert!(
        store
            .intel_indicator(IocKind::Ipv4, "192.0.2.1")
            .await
            .unwrap()
            .is_none()
    );
    let sources = store.intel_observations(2).await.unwrap();
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0].raw, "row one");
    let sources = store.intel_observations(3).await.unwrap();
    let mut raws: Vec<&str> = sources.iter().map(|o| o.raw.as_str()).collect();
    raws.sort_unstable();
    assert_eq!(raws, ["row one", "row three"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_intel_upgrade_keeps_rows_links_and_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rampart.db");
    sqlite_release(&path, "0003_intel_hits.sql", RELEASE_0003_ROWS).await;
    let store = Store::open_sqlite(&path).await.unwrap();
    check_upgraded(&store).await;
    store.close().await;

    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let anchors: Vec<(i64, i64)> = sqlx::query("SELECT id, anchor FROM intel_records ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(anchors, [(1, 2), (3, 3)]);
    let broken = sqlx::query("PRAGMA foreign_key_check")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(broken.is_empty(), "dangling references after the rebuild");
    // AUTOINCREMENT's high-water mark survived the rebuild: the next record is 5.
    let next: i64 = sqlx::query_scalar(
        "INSERT INTO intel_records (anchor, hash, feed_id, malware, tags, attack, raw, first_fetched, last_fetched) \
         VALUES (3, 'h5', 1, '[]', '[]', '[]', 'row five', 2, 2) RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(next, 5);
    let unkeyed: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM intel_indicators WHERE key IS NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(unkeyed, 0);
    // Every backfilled key is in the key table (migration 0007), under its indicator.
    let (indicators, keyed): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM intel_indicators), \
                (SELECT COUNT(*) FROM intel_indicators i JOIN intel_indicator_keys k ON k.id = i.id AND k.key = i.key)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(indicators > 0);
    assert_eq!(keyed, indicators);
    let next: i64 = sqlx::query_scalar(
        "INSERT INTO intel_indicators (key, kind, value, first_seen, last_seen, first_reported, last_reported, expires_at, base_score) \
         VALUES (0, 1, '192.0.2.5', 2, 2, 2, 2, 99, 50) RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        next, 5,
        "the indicators' high-water mark survived the rebuild"
    );
    // The observations' foreign key points at the rebuilt table: deleting cascades.
    sqlx::query("DELETE FROM intel_records WHERE id = 1")
        .execute(&pool)
        .await
        .unwrap();
    let links: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM intel_observations WHERE record_id = 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(links, 0);
    // A key goes with its indicator, whatever deletes it (migration 0007's trigger).
    let first: i64 = sqlx::query_scalar("SELECT MIN(id) FROM intel_indicators")
        .fetch_one(&pool)
        .await
        .unwrap();
    let keys_of = |id: i64| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM intel_indicator_keys WHERE id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(keys_of(first).await, 1);
    sqlx::query("DELETE FROM intel_indicators WHERE id = $1")
        .bind(first)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(keys_of(first).await, 0);
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_intel_upgrade_keeps_rows_and_links() {
    let Some((scoped, url, schema)) =
        postgres_release("0003_intel_hits.sql", RELEASE_0003_ROWS).await
    else {
        return;
    };
    let store = Store::open_postgres(&scoped).await.unwrap();
    check_upgraded(&store).await;
    store.close().await;

    let pool = sqlx::PgPool::connect(&scoped).await.unwrap();
    let anchors: Vec<(i64, i64)> = sqlx::query("SELECT id, anchor FROM intel_records ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(anchors, [(1, 2), (3, 3)]);
    pool.close().await;
    rampart_store::testing::drop_schema(&url, &schema).await;
}

/// A new SQLite store uses 16 KiB pages (the intel ingestion figures depend on it); an existing
/// file keeps the page size it was created with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_new_stores_get_16_kib_pages_and_old_ones_keep_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh.db");
    Store::open_sqlite(&fresh).await.unwrap().close().await;
    let old = dir.path().join("old.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&old)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    sqlx::query("CREATE TABLE t (x)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    Store::open_sqlite(&old).await.unwrap().close().await;
    for (path, expected) in [(&fresh, 16384), (&old, 4096)] {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        let size: i64 = sqlx::query_scalar("PRAGMA page_size")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(size, expected, "{}", path.display());
        pool.close().await;
    }
}

/// Admin tokens as releases before users stored them: two, made at 100 and 200.
const LEGACY_ADMIN_TOKENS: &str = "INSERT INTO admin_tokens (token_hash, label, created_at) \
     VALUES ('hash-first', 'initial admin token', 100), ('hash-second', 'ci', 200)";

/// What the users migration must make of them: a first admin holding both as ordinary,
/// live admin tokens that expire 90 days after the upgrade.
async fn check_legacy_admin_tokens(store: &Store, before: i64, after: i64) {
    let users = store.users().await.unwrap();
    assert_eq!(users.len(), 1);
    let admin = &users[0];
    assert_eq!(
        (admin.name.as_str(), admin.role),
        ("admin", rampart_access::Role::Admin)
    );
    assert!(admin.groups.is_empty() && !admin.has_password && admin.must_change_password);
    assert_eq!(admin.created_at.unix_timestamp(), 100);
    for (hash, name, created) in [
        ("hash-first", "legacy-admin-1", 100),
        ("hash-second", "legacy-admin-2", 200),
    ] {
        let found = store.api_token_by_hash(hash).await.unwrap().unwrap();
        let t = found.credential;
        assert_eq!(found.user.name, "admin");
        assert_eq!(
            (t.name.as_str(), t.role),
            (name, rampart_access::Role::Admin)
        );
        assert!(t.groups.is_empty());
        assert_eq!(t.created_at.unix_timestamp(), created);
        assert_eq!((t.revoked_at, t.last_used_at), (None, None));
        // 90 days from the moment of the upgrade, which lies between `before` and `after`.
        let expires = t.expires_at.unix_timestamp();
        assert!(
            (before + 90 * 86400..=after + 90 * 86400).contains(&expires),
            "{name} expires at {expires}, upgraded between {before} and {after}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_admin_tokens_become_tokens_of_a_first_admin() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rampart.db");
    sqlite_release(
        &path,
        "0007_intel_indicator_keys.sql",
        &[LEGACY_ADMIN_TOKENS],
    )
    .await;
    let before = time::OffsetDateTime::now_utc().unix_timestamp();
    let store = Store::open_sqlite(&path).await.unwrap();
    let after = time::OffsetDateTime::now_utc().unix_timestamp();
    check_legacy_admin_tokens(&store, before, after).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_admin_tokens_become_tokens_of_a_first_admin() {
    let Some((scoped, url, schema)) =
        postgres_release("0005_intel_versions_and_decay.sql", &[LEGACY_ADMIN_TOKENS]).await
    else {
        return;
    };
    let before = time::OffsetDateTime::now_utc().unix_timestamp();
    let store = Store::open_postgres(&scoped).await.unwrap();
    let after = time::OffsetDateTime::now_utc().unix_timestamp();
    check_legacy_admin_tokens(&store, before, after).await;
    store.close().await;
    rampart_store::testing::drop_schema(&url, &schema).await;
}

/// A store that never had an admin token gets no user from the migration (first start makes one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_store_has_no_users() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("fresh.db"))
        .await
        .unwrap();
    assert!(store.users().await.unwrap().is_empty());
    store.close().await;
}

/// The fleet as a release before the counters stored it: web-1 and web-2 in group web (env
/// prod and dev), db-1 revoked; their latest results of policy p, written directly.
const RELEASE_BEFORE_TALLIES: &[&str] = &[
    "INSERT INTO agents (id, hostname, os, arch, agent_version, labels, grp, cert_serial, \
     cert_not_after, enrolled_at, last_seen, status) VALUES \
     ('web-1', 'web-1', 'Debian', 'x86_64', '1', '{\"env\":\"prod\"}', 'web', 's1', 99, 1, 1, 'active'), \
     ('web-2', 'web-2', 'Debian', 'x86_64', '1', '{\"env\":\"dev\"}', 'web', 's2', 99, 1, 1, 'active'), \
     ('db-1', 'db-1', 'Debian', 'x86_64', '1', '{\"env\":\"prod\"}', 'db', 's3', 99, 1, 1, 'revoked')",
    "INSERT INTO latest_results (agent_id, policy_id, check_id, status, run_id, observed_at, since) VALUES \
     ('web-1', 'p', '1', 'fail', 'r1', 7200, 7200), ('web-1', 'p', '2', 'pass', 'r1', 7200, 0), \
     ('web-2', 'p', '1', 'fail', 'r2', 7200, 3600), ('web-2', 'p', '2', 'not_applicable', 'r2', 7200, 0), \
     ('db-1', 'p', '1', 'fail', 'r3', 7200, 7200)",
];

/// What the upgrade must count for the rows above, then keep counting.
async fn check_tallies_backfilled(store: &Store) {
    use rampart_store::FleetScope;
    let all = FleetScope::default();
    let mut checks: Vec<(String, u64, u64, u64)> = store
        .fleet_check_tallies(&all)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.check_id, t.passed, t.failed, t.not_applicable))
        .collect();
    checks.sort();
    // The revoked db-1 is left out.
    assert_eq!(
        checks,
        [("1".to_string(), 0, 2, 0), ("2".to_string(), 1, 0, 1)]
    );
    assert_eq!(
        store.fleet_policy_hosts(&all).await.unwrap(),
        [("p".to_string(), 2)]
    );
    let prod = FleetScope {
        label: Some(("env", "prod")),
        ..FleetScope::default()
    };
    assert_eq!(
        store.fleet_policy_hosts(&prod).await.unwrap(),
        [("p".to_string(), 1)]
    );
    // Failing since hour 2 (7200): web-1 only; since hour 1: both.
    let since = |h: i64| time::OffsetDateTime::from_unix_timestamp(h * 3600).unwrap();
    let newly = store
        .fleet_failing_checks(&all, since(2), 10)
        .await
        .unwrap();
    assert_eq!(newly.len(), 1);
    assert_eq!(newly[0].hosts, 1);
    let newly = store
        .fleet_failing_checks(&all, since(1), 10)
        .await
        .unwrap();
    assert_eq!(newly[0].hosts, 2);
    // Revoking web-2 after the upgrade moves its backfilled counts out.
    store.revoke_agent("web-2", "gone", since(3)).await.unwrap();
    assert_eq!(
        store.fleet_policy_hosts(&all).await.unwrap(),
        [("p".to_string(), 1)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_upgrade_counts_the_fleet_already_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rampart.db");
    sqlite_release(&path, "0013_waivers.sql", RELEASE_BEFORE_TALLIES).await;
    let store = Store::open_sqlite(&path).await.unwrap();
    check_tallies_backfilled(&store).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_upgrade_counts_the_fleet_already_stored() {
    let Some((scoped, url, schema)) =
        postgres_release("0011_waivers.sql", RELEASE_BEFORE_TALLIES).await
    else {
        return;
    };
    let store = Store::open_postgres(&scoped).await.unwrap();
    check_tallies_backfilled(&store).await;
    store.close().await;
    rampart_store::testing::drop_schema(&url, &schema).await;
}

/// Agents as a release before `agent_seen` stored them: a-1 silent since 1,000 s and not yet
/// announced offline, a-2 silent since 2,000 s and announced at 2,500 s, a-3 seen at 9,000 s.
const RELEASE_BEFORE_AGENT_SEEN: &str = "INSERT INTO agents (id, hostname, os, arch, \
     agent_version, labels, grp, cert_serial, cert_not_after, enrolled_at, last_seen, status, \
     offline_announced) VALUES \
     ('a-1', 'a-1', 'Debian', 'x86_64', '1', '{}', 'web', 's1', 99999, 1, 1000, 'active', NULL), \
     ('a-2', 'a-2', 'Debian', 'x86_64', '1', '{}', 'web', 's2', 99999, 1, 2000, 'active', 2500), \
     ('a-3', 'a-3', 'Debian', 'x86_64', '1', '{}', 'db', 's3', 99999, 1, 9000, 'active', NULL)";

/// What the upgrade must keep of the rows above: when each agent was last seen, and which
/// silence was already announced (announcing it again would page someone twice).
async fn check_seen_kept(store: &Store) {
    let at = |s: i64| time::OffsetDateTime::from_unix_timestamp(s).unwrap();
    let seen = |id: &'static str| async move { store.agent(id).await.unwrap().unwrap().last_seen };
    assert_eq!(seen("a-1").await, at(1000));
    assert_eq!(seen("a-2").await, at(2000));
    assert_eq!(seen("a-3").await, at(9000));
    let silent: Vec<String> = store
        .silent_agents(at(5000), None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.agent.id)
        .collect();
    assert_eq!(silent, ["a-1", "a-2"]);
    assert_eq!(
        store.announce_offline(at(10_000), at(5000)).await.unwrap(),
        1,
        "only a-1's silence is new"
    );
    assert_eq!(
        store.announce_offline(at(10_001), at(5000)).await.unwrap(),
        0
    );
    // Heartbeats after the upgrade land where the agents are read from.
    store
        .touch_agents(&std::collections::BTreeMap::from([(
            "a-1".to_string(),
            at(10_002),
        )]))
        .await
        .unwrap();
    assert_eq!(seen("a-1").await, at(10_002));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_upgrade_keeps_when_agents_were_seen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rampart.db");
    sqlite_release(&path, "0017_alerts.sql", &[RELEASE_BEFORE_AGENT_SEEN]).await;
    let store = Store::open_sqlite(&path).await.unwrap();
    check_seen_kept(&store).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_upgrade_keeps_when_agents_were_seen() {
    let Some((scoped, url, schema)) = postgres_release(
        "0017_check_results_without_row_check.sql",
        &[RELEASE_BEFORE_AGENT_SEEN],
    )
    .await
    else {
        return;
    };
    let store = Store::open_postgres(&scoped).await.unwrap();
    check_seen_kept(&store).await;
    store.close().await;
    rampart_store::testing::drop_schema(&url, &schema).await;
}

/// Latest states as a release before `policy_latest` stored them: web-1's run r2 (at 7,200 s)
/// dropped check 3, whose row from r1 (3,600 s) lingered and was counted; web-2's r5 holds one
/// check. The counters as that release kept them.
const RELEASE_BEFORE_POLICY_LATEST: &[&str] = &[
    // The first cohort of a new store: id 1 on both backends.
    "INSERT INTO cohorts (grp, os, labels, revoked) VALUES ('web', 'Debian', '{}', 0)",
    "INSERT INTO agents (id, hostname, os, arch, agent_version, labels, grp, cert_serial, \
     cert_not_after, enrolled_at, status, cohort_id) VALUES \
     ('web-1', 'web-1', 'Debian', 'x86_64', '1', '{}', 'web', 's1', 99999, 1, 'active', 1), \
     ('web-2', 'web-2', 'Debian', 'x86_64', '1', '{}', 'web', 's2', 99999, 1, 'active', 1)",
    "INSERT INTO agent_seen (agent_id, last_seen) VALUES ('web-1', 7200), ('web-2', 7200)",
    "INSERT INTO latest_results (agent_id, policy_id, check_id, status, run_id, observed_at, since) VALUES \
     ('web-1', 'p', '1', 'fail', 'r2', 7200, 3600), ('web-1', 'p', '2', 'pass', 'r2', 7200, 0), \
     ('web-1', 'p', '3', 'fail', 'r1', 3600, 3600), ('web-2', 'p', '1', 'pass', 'r5', 7200, 0)",
    "INSERT INTO cohort_checks (cohort_id, policy_id, check_id, status, hosts) VALUES \
     (1, 'p', '1', 'fail', 1), (1, 'p', '1', 'pass', 1), (1, 'p', '2', 'pass', 1), (1, 'p', '3', 'fail', 1)",
    "INSERT INTO cohort_policies (cohort_id, policy_id, hosts) VALUES (1, 'p', 2)",
    "INSERT INTO cohort_failing (cohort_id, policy_id, check_id, since_hour, hosts) VALUES \
     (1, 'p', '1', 1, 1), (1, 'p', '3', 1, 1)",
];

/// What the upgrade must make of the rows above: each pair's newest run and time kept, the
/// lingering check gone from the latest states and from every count, and a run after the
/// upgrade moving the run and time but not a kept status's `since`.
async fn check_policy_latest(store: &Store) {
    use rampart_store::FleetScope;
    let at = |s: i64| time::OffsetDateTime::from_unix_timestamp(s).unwrap();
    let state = |id: &'static str| async move {
        store
            .latest_results(id, None)
            .await
            .unwrap()
            .into_iter()
            .map(|l| (l.check_id, l.status, l.run_id, l.observed_at, l.since))
            .collect::<Vec<_>>()
    };
    use rampart_core::Status::{Fail, Pass};
    assert_eq!(
        state("web-1").await,
        [
            ("1".to_string(), Fail, "r2".to_string(), at(7200), at(3600)),
            ("2".to_string(), Pass, "r2".to_string(), at(7200), at(0)),
        ]
    );
    assert_eq!(
        state("web-2").await,
        [("1".to_string(), Pass, "r5".to_string(), at(7200), at(0))]
    );
    let all = FleetScope::default();
    let mut checks: Vec<(String, u64, u64)> = store
        .fleet_check_tallies(&all)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.check_id, t.passed, t.failed))
        .collect();
    checks.sort();
    assert_eq!(checks, [("1".to_string(), 1, 1), ("2".to_string(), 1, 0)]);
    assert_eq!(
        store.fleet_policy_hosts(&all).await.unwrap(),
        [("p".to_string(), 2)]
    );
    let failing: Vec<(String, u64)> = store
        .fleet_failing_checks(&all, at(0), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.check_id, f.hosts))
        .collect();
    assert_eq!(failing, [("1".to_string(), 1)]);
    let mut next = super::harness::run(
        "r3",
        "web-1",
        at(10_800),
        vec![
            super::harness::outcome("1", Fail),
            super::harness::outcome("2", Pass),
        ],
    );
    next.policy_id = "p".into();
    store.ingest_runs(&[next]).await.unwrap();
    assert_eq!(
        state("web-1").await,
        [
            (
                "1".to_string(),
                Fail,
                "r3".to_string(),
                at(10_800),
                at(3600)
            ),
            ("2".to_string(), Pass, "r3".to_string(), at(10_800), at(0)),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_upgrade_keeps_each_policys_newest_run_and_drops_lingering_checks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rampart.db");
    sqlite_release(&path, "0018_agent_seen.sql", RELEASE_BEFORE_POLICY_LATEST).await;
    let store = Store::open_sqlite(&path).await.unwrap();
    check_policy_latest(&store).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_upgrade_keeps_each_policys_newest_run_and_drops_lingering_checks() {
    let Some((scoped, url, schema)) =
        postgres_release("0018_agent_seen.sql", RELEASE_BEFORE_POLICY_LATEST).await
    else {
        return;
    };
    let store = Store::open_postgres(&scoped).await.unwrap();
    check_policy_latest(&store).await;
    store.close().await;
    rampart_store::testing::drop_schema(&url, &schema).await;
}

/// A check result as a release before `check_texts` stored it: the whole text, hand-written
/// here as that release's serde wrote it (policy words, then the host's part).
const WHOLE_RESULT: &str = r#"{"id":"5.2.10","title":"Ensure SSH root login is disabled","description":"","rationale":"","remediation":"Set PermitRootLogin no.","severity":"high","references":[],"compliance":{"cis":["5.2.10"]},"mitre":[],"condition":"all","rules":["f:/etc/ssh/sshd_config -> r:^PermitRootLogin\\s+no"],"status":"fail","evidence":[]}"#;

const RELEASE_BEFORE_CHECK_TEXTS: &[&str] = &[
    "INSERT INTO agents (id, hostname, os, arch, agent_version, labels, grp, cert_serial, \
     cert_not_after, enrolled_at, status) VALUES \
     ('web-1', 'web-1', 'Debian', 'x86_64', '1', '{}', 'web', 's1', 99999, 1, 'active')",
    "INSERT INTO runs (id, agent_id, policy_id, policy_version, policy_digest, run_trigger, \
     started_at, finished_at, received_at, passed, failed, not_applicable, not_run, errors, \
     waived, total, score, results_digest, host, warnings, generator, cert_sha256, cert_not_after) \
     VALUES ('r1', 'web-1', 'p', 1, 'd1', 'schedule', 3600, 3601, 3602, 0, 1, 0, 0, 0, 0, 1, 0.0, \
     'rd', '{\"hostname\":\"web-1\",\"os\":\"Debian\",\"kernel\":\"6.1\"}', '[]', 'rampart 0.1.0', \
     'cs', 99999)",
];

/// The result stored whole reads back as it was stored, beside a result stored split after
/// the upgrade.
async fn check_whole_results_read(store: &Store) {
    let old = store.run("r1").await.unwrap().unwrap();
    assert_eq!(old.checks.len(), 1);
    assert_eq!(old.checks[0].title, "Ensure SSH root login is disabled");
    assert_eq!(old.checks[0].status, rampart_core::Status::Fail);
    assert_eq!(old.checks[0].compliance["cis"], vec!["5.2.10".to_string()]);
    assert_eq!(
        store.run_evidence("r1").await.unwrap().unwrap().checks,
        [WHOLE_RESULT]
    );
    let at = time::OffsetDateTime::from_unix_timestamp(7200).unwrap();
    let check = super::harness::outcome("5.2.10", rampart_core::Status::Pass);
    let mut next = super::harness::run("r2", "web-1", at, vec![check.clone()]);
    next.policy_id = "p".into();
    store.ingest_runs(&[next]).await.unwrap();
    assert_eq!(store.run("r2").await.unwrap().unwrap().checks, [check]);
    assert_eq!(store.run("r1").await.unwrap().unwrap().checks, old.checks);
}

fn whole_result_rows() -> Vec<String> {
    let mut rows: Vec<String> = RELEASE_BEFORE_CHECK_TEXTS
        .iter()
        .map(|s| s.to_string())
        .collect();
    rows.push(format!(
        "INSERT INTO check_results (run_id, check_id, status, severity, title, outcome) VALUES \
         ('r1', '5.2.10', 'fail', 'high', 'Ensure SSH root login is disabled', '{}')",
        WHOLE_RESULT.replace('\'', "''")
    ));
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_upgrade_reads_results_stored_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rampart.db");
    let rows = whole_result_rows();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    sqlite_release(&path, "0019_policy_latest.sql", &rows).await;
    let store = Store::open_sqlite(&path).await.unwrap();
    check_whole_results_read(&store).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_upgrade_reads_results_stored_whole() {
    let rows = whole_result_rows();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let Some((scoped, url, schema)) = postgres_release("0019_policy_latest.sql", &rows).await
    else {
        return;
    };
    let store = Store::open_postgres(&scoped).await.unwrap();
    check_whole_results_read(&store).await;
    store.close().await;
    rampart_store::testing::drop_schema(&url, &schema).await;
}
