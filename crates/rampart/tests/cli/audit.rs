//! `rampart audit log|verify|proof` against a real server process, on SQLite and PostgreSQL:
//! an auditor searches, verifies and proves; a viewer is refused naming the permission; the
//! database is tampered with behind the server's back and `verify` says so, with exit 1.

use std::path::Path;
use std::time::{Duration, Instant};

use super::fleet::{PgSchema, ServerProc, free_port};
use super::harness::{code, stderr, stdout};

/// Runs SQL on the server's database directly, as an intruder with database access would.
fn tamper(server: &ServerProc, db: Option<&str>, sql: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::Connection as _;
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match db {
            Some(url) => {
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            }
            None => {
                let path = server.data.join("rampart.db");
                let mut c =
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                        .await
                        .unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            }
        }
    });
}

/// Waits until the latest checkpoint covers the whole log (the test server signs each second).
fn signed(server: &ServerProc, config: &Path) {
    let started = Instant::now();
    loop {
        let o = server.cli_logged_in(config, &["audit", "verify"]);
        if code(&o) == 0 && !stdout(&o).contains("not signed yet") {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never fully signed: {}{}",
            stdout(&o),
            stderr(&o)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn audit_from_the_cli(db: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServerProc::start_db(&data, free_port(), free_port(), db, true, &[]);
    let admin = server.admin_token.clone().unwrap();
    let mut otps = Vec::new();
    for (name, role) in [("audrey", "auditor"), ("victor", "viewer")] {
        let o = server.cli(&admin, &["users", "add", name, "--role", role]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        otps.push(stdout(&o).lines().nth(1).unwrap().trim().to_owned());
    }
    let audrey = dir.path().join("audrey-config");
    server.login(
        "audrey",
        &otps[0],
        "lantern over the quiet harbour",
        &audrey,
    );
    let victor = dir.path().join("victor-config");
    server.login("victor", &otps[1], "seven paper boats at dawn", &victor);

    // A viewer is refused, the missing permission named (exit 5: refused).
    let o = server.cli_logged_in(&victor, &["audit", "log"]);
    assert_eq!(code(&o), 5, "{}", stdout(&o));
    assert!(
        stderr(&o).contains("403 (permission_denied): this needs the audit_read permission"),
        "{}",
        stderr(&o)
    );

    // Search: JSON lines, newest first.
    let o = server.cli_logged_in(
        &audrey,
        &["audit", "log", "--action", "user.create", "--json"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{}", stdout(&o));
    assert_eq!(lines[0]["target"], "user:victor");
    assert_eq!(lines[1]["target"], "user:audrey");
    assert_eq!(lines[0]["actor"], "admin");
    let victor_created = lines[0]["index"].as_u64().unwrap();
    // A table, filtered by actor and time.
    let o = server.cli_logged_in(
        &audrey,
        &["audit", "log", "--actor", "victor", "--since", "1h"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("INDEX  TIME"), "{out}");
    assert!(
        out.contains("access.denied") && out.contains("denied"),
        "{out}"
    );
    let o = server.cli_logged_in(&audrey, &["audit", "log", "--since", "yesterday"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("--since \"yesterday\""),
        "{}",
        stderr(&o)
    );

    // The whole log verifies; the key is pinned at first use.
    signed(&server, &audrey);
    let trust: serde_json::Value =
        serde_json::from_slice(&std::fs::read(audrey.join("audit-trust.json")).unwrap()).unwrap();
    let pinned = trust["servers"][format!("https://localhost:{}", server.api)]["vkey"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(pinned.starts_with("rampart.audit/"), "{trust}");

    // One entry proved against the signed checkpoint.
    let idx = victor_created.to_string();
    let o = server.cli_logged_in(&audrey, &["audit", "proof", &idx]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains(&format!("included: entry {idx} is in the log of")),
        "{}",
        stdout(&o)
    );

    // An entry edited in the database: verify and proof both fail, saying where.
    tamper(
        &server,
        db,
        &format!(
            "UPDATE audit_entries SET body = REPLACE(body, '\"user:victor\"', '\"user:eve\"') WHERE seq = {idx}"
        ),
    );
    let o = server.cli_logged_in(&audrey, &["audit", "verify"]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    let out = stdout(&o);
    // Against the server's checkpoints, and against the one this auditor verified before.
    assert!(
        out.starts_with("audit log NOT verified: 2 problem(s)"),
        "{out}"
    );
    assert!(out.contains("do not match the checkpoint of size"), "{out}");
    assert!(
        out.contains("does not extend the checkpoint of size"),
        "{out}"
    );
    let o = server.cli_logged_in(&audrey, &["audit", "proof", &idx]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(stdout(&o).contains("NOT included"), "{}", stdout(&o));

    // Put back, it verifies again, and holds to the checkpoint verified before.
    tamper(
        &server,
        db,
        &format!(
            "UPDATE audit_entries SET body = REPLACE(body, '\"user:eve\"', '\"user:victor\"') WHERE seq = {idx}"
        ),
    );
    let o = server.cli_logged_in(&audrey, &["audit", "verify"]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(
        stdout(&o).contains("extends the checkpoint of size"),
        "{}",
        stdout(&o)
    );

    // The newest (signed) entry deleted.
    signed(&server, &audrey);
    tamper(
        &server,
        db,
        "DELETE FROM audit_entries WHERE seq = (SELECT MAX(seq) FROM audit_entries)",
    );
    let o = server.cli_logged_in(&audrey, &["audit", "verify"]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(
        stdout(&o).contains("entries at the end were deleted"),
        "{}",
        stdout(&o)
    );

    // A server presenting another key than the pinned one is refused outright.
    let o = server.cli_logged_in(
        &audrey,
        &[
            "audit",
            "verify",
            "--key",
            "rampart.audit/other+00000000+AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ],
    );
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("is not the trusted one"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn audit_from_the_cli_sqlite() {
    audit_from_the_cli(None);
}

#[test]
fn audit_from_the_cli_postgres() {
    let Some(schema) = PgSchema::new("audit CLI") else {
        return;
    };
    audit_from_the_cli(Some(&schema.url.clone()));
    schema.drop();
}
