//! `rampart waivers request|approve|deny|list` against a real server: an operator asks, cannot
//! approve their own request, an admin approves; the list shows who did what.

use super::fleet::{ServerProc, free_port};
use super::harness::{code, stderr, stdout};

#[test]
fn waivers_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProc::start(&dir.path().join("data"), free_port(), free_port());
    let admin = server.config_dir();
    let o = server.cli_logged_in(&admin, &["users", "add", "olga", "--role", "operator"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let otp = stdout(&o).lines().nth(1).unwrap().trim().to_owned();
    let olga = dir.path().join("olga-config");
    server.login("olga", &otp, "ferry lights over grey water", &olga);

    let until = (time::OffsetDateTime::now_utc() + time::Duration::days(60))
        .date()
        .to_string();
    // Whom it covers must be said.
    let o = server.cli_logged_in(
        &olga,
        &[
            "waivers",
            "request",
            "--check",
            "cis_debian12:3301*",
            "--until",
            &until,
            "--why",
            "tmpfs",
        ],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--agent ID, --group NAME or --fleet"),
        "{}",
        stderr(&o)
    );
    let o = server.cli_logged_in(
        &olga,
        &[
            "waivers",
            "request",
            "--check",
            "cis_debian12:3301*",
            "--group",
            "web",
            "--until",
            &until,
            "--why",
            "/tmp is a tmpfs on this fleet",
            "--json",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let w: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let id = w["id"].as_str().unwrap().to_owned();
    assert_eq!(w["state"], "pending");

    // Not by the one who asked (exit 5: refused, with the server's reason).
    let o = server.cli_logged_in(&olga, &["waivers", "approve", &id]);
    assert_eq!(code(&o), 5, "{}", stdout(&o));
    assert!(stderr(&o).contains("403"), "{}", stderr(&o));
    let o = server.cli_logged_in(&admin, &["waivers", "approve", &id, "--note", "reviewed"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!(
            "waiver {id} approved: cis_debian12:3301* on group web until {until}"
        )),
        "{}",
        stdout(&o)
    );

    let o = server.cli_logged_in(&admin, &["waivers", "list", "--state", "approved"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&id) && out.contains(" olga ") && out.contains(" admin "),
        "{out}"
    );
    let o = server.cli_logged_in(&admin, &["waivers", "list", "--state", "pending"]);
    assert!(!stdout(&o).contains(&id), "{}", stdout(&o));
}
