//! Wazuh SCA semantics on fixture trees, every expected result derived by hand from the tables
//! in `../shared/reference/wazuh-sca-format.md` (rule types, negation, patterns, numeric
//! comparisons and their 4.x quirks, aggregation, requirements, variables) and from `wm_sca.c`.

use super::harness::*;
use rampart_core::Status::{self, Fail, NotApplicable as Na, NotRun, Pass};
use rampart_engine::ScanOptions;
use std::time::Duration;

fn tree() -> Tree {
    let t = Tree::new();
    t.file("/etc/a.conf", "Port 22\n# comment\npermitrootlogin NO\n")
        .file("/etc/tabbed", "a\tb\n")
        .file("/etc/empty", "")
        .dir("/etc/dir")
        .symlink("/etc/link", "/etc/a.conf")
        .symlink("/etc/hostfile", "/etc/os-release")
        .file("/etc/login.defs", "PASS_MAX_DAYS 99999\nPASS_MIN_DAYS 1\n")
        .file("/etc/vars.txt", "$dir value\n")
        .file("/etc/d/one.conf", "x=1\n")
        .file("/etc/d/sub/two.rules", "-w /etc/passwd -p wa\n")
        .symlink("/etc/d/link_dir", "/etc/d/sub");
    t
}

fn run(checks: &[(u32, &str, &[&str])]) -> rampart_core::PolicyReport {
    let t = tree();
    let p = load(&sca4(checks));
    scan_root(&p, t.path())
}

fn expect(report: &rampart_core::PolicyReport, cases: &[(u32, Status)]) {
    for (id, want) in cases {
        let (got, reason) = result(report, &id.to_string());
        assert_eq!(
            got, *want,
            "check {id}: expected {want}, got {got} ({reason})"
        );
    }
}

#[test]
fn file_rules() {
    let r = run(&[
        (1, "all", &["f:/etc/a.conf"]),
        (2, "all", &["f:/etc/missing"]),
        (3, "all", &["f:/etc/dir"]),
        (4, "all", &["f:/etc/missing,/etc/a.conf"]),
        (5, "all", &["f:/etc/missing -> r:x"]),
        (6, "all", &["f:/etc/missing,/etc/a.conf -> r:^Port"]),
        (7, "all", &["f:/etc/a.conf -> r:^Port && r:22"]),
        (8, "all", &["f:/etc/a.conf -> r:^Port && r:23"]),
        (9, "all", &["f:/etc/a.conf -> !r:^#"]),
        (10, "all", &["not f:/etc/a.conf -> r:^#"]),
        (11, "all", &["f:/etc/a.conf -> PermitRootLogin no"]),
        (12, "all", &["f:/etc/a.conf -> PermitRootLogin"]),
        (13, "all", &["f:/etc/link -> r:^Port"]),
        (14, "all", &["f:/etc/hostfile"]),
        (15, "all", &["f:/etc/empty -> r:."]),
        (16, "all", &["f:/etc/empty -> !r:x"]),
    ]);
    expect(
        &r,
        &[
            (1, Pass),
            (2, Fail),
            (3, Na),
            (4, Pass),
            (5, Na),
            // A later FOUND wins over an earlier missing file.
            (6, Pass),
            (7, Pass),
            (8, Fail),
            // `!` applies per line: some line lacks '#'.
            (9, Pass),
            // `not` applies to the rule: some line has '#'.
            (10, Fail),
            // Literal minterms compare the whole line, case-insensitively (4.x).
            (11, Pass),
            (12, Fail),
            // Absolute symlinks resolve inside the scan root...
            (13, Pass),
            // ...so a link to a file that exists only on the scanning host is missing.
            (14, Fail),
            // An empty file has no line, so nothing matches, negated or not.
            (15, Fail),
            (16, Fail),
        ],
    );
    assert!(
        result(&r, "3").1.contains("Not a regular file"),
        "{}",
        result(&r, "3").1
    );
    assert_eq!(result(&r, "5").1, "Could not open file '/etc/missing'");
}

#[test]
fn os_regex_dialect() {
    let r = run(&[
        (1, "all", &[r"f:/etc/tabbed -> r:a\sb"]),
        (2, "all", &[r"f:/etc/tabbed -> r:a\tb"]),
        (3, "all", &[r"f:/etc/a.conf -> r:PORT\s22"]),
        (4, "all", &[r"f:/etc/a.conf -> r:Port.22"]),
        (5, "all", &[r"f:/etc/a.conf -> r:Port\.22"]),
        // An uncompilable regex never matches (and `!` of it always does).
        (6, "all", &[r"f:/etc/a.conf -> r:\q"]),
        (7, "all", &[r"f:/etc/a.conf -> !r:\q"]),
        // `R:` is a regex prefix too (case-insensitive prefix test).
        (8, "all", &[r"f:/etc/a.conf -> R:^port"]),
    ]);
    expect(
        &r,
        &[
            (1, Fail),
            (2, Pass),
            (3, Pass),
            (4, Fail),
            (5, Pass),
            (6, Fail),
            (7, Pass),
            (8, Pass),
        ],
    );
}

#[test]
fn numeric_comparisons_and_quirks() {
    let r = run(&[
        (
            1,
            "all",
            &[r"f:/etc/login.defs -> n:^PASS_MAX_DAYS\s*(\d+) compare <= 365"],
        ),
        (
            2,
            "all",
            &[r"f:/etc/login.defs -> n:^PASS_MAX_DAYS\s*(\d+) compare => 99999"],
        ),
        (
            3,
            "all",
            &[r"f:/etc/login.defs -> n:^PASS_MAX_DAYS\s*(\d+) compare =< 100000"],
        ),
        (
            4,
            "all",
            &[r"f:/etc/login.defs -> n:^PASS_MAX_DAYS\s*(\d+) compare <=100000"],
        ),
        (
            5,
            "all",
            &[r"f:/etc/login.defs -> n:^PASS_MIN_DAYS\s*(\d+) compare \!= 0"],
        ),
        (
            6,
            "all",
            &[r"f:/etc/login.defs -> n:^PASS_MIN_DAYS\s*(\d+) compare > -5"],
        ),
        (
            7,
            "all",
            &[r"f:/etc/login.defs -> n:^PASS_MAX_DAYS\s*(d+) compare >= 1"],
        ),
        (
            8,
            "all",
            &[r"f:/etc/login.defs -> n:^PASS_MAX_DAYS\s*\d+ compare >= 1"],
        ),
        (
            9,
            "all",
            &[r"f:/etc/login.defs -> n:^PASS_MAX_DAYS\s*(\d+)"],
        ),
        (
            10,
            "all",
            &[r"f:/etc/login.defs -> !n:^PASS_MAX_DAYS\s*\d+ compare >= 1"],
        ),
        (
            11,
            "all",
            &[r"f:/etc/login.defs -> n:^PASS_MAX_DAYS\s*(\d+) compare ~ 1"],
        ),
        (
            12,
            "all",
            &[r"f:/etc/login.defs -> n:^NOPE\s*(\d+) compare ~ 1"],
        ),
    ]);
    expect(
        &r,
        &[
            (1, Fail),
            // An operator starting with '=' means equality: `=>` 99999 holds, `=<` 100000 does not.
            (2, Pass),
            (3, Fail),
            // `<=100000` without a space still parses.
            (4, Pass),
            (5, Pass),
            // The value's sign is lost: `> -5` is `> 5`, and 1 > 5 is false.
            (6, Fail),
            // `(d+)` is a literal 'd' and '+': the regex never matches.
            (7, Fail),
            // A match without a capture group makes the rule not applicable...
            (8, Na),
            // ...as does a missing `compare` keyword, on any line.
            (9, Na),
            // ...and `!` of an invalid minterm is neither found nor invalid: the rule is not found.
            (10, Fail),
            // An unknown operator is only noticed when a line matches.
            (11, Na),
            (12, Fail),
        ],
    );
    assert!(result(&r, "8").1.contains("no string was captured"));
    assert!(result(&r, "9").1.starts_with("Keyword 'compare' not found"));
    assert!(result(&r, "11").1.starts_with("Unrecognized operation"));
}

#[test]
fn directory_rules() {
    let r = run(&[
        (1, "all", &["d:/etc/d"]),
        (2, "all", &["d:/etc/nope"]),
        (3, "all", &["d:/etc/nope -> r:x"]),
        (4, "all", &[r"d:/etc/d -> r:\.rules$ -> r:^-w"]),
        (5, "all", &["d:/etc/d -> .conf"]),
        (6, "all", &["d:/etc/d -> ^TWO.RULES$ -> r:passwd"]),
        (7, "all", &["d:/etc/d -> ^link_dir$"]),
        (8, "all", &["d:/etc/d/*"]),
        (9, "all", &["d:/etc/d/* -> .conf"]),
        (10, "all", &["d:/etc/nope,/etc/d"]),
        (11, "all", &["d:/etc/d -> .rules -> r:shadow"]),
        (12, "all", &["d:/etc/d -> *.conf"]),
    ]);
    expect(
        &r,
        &[
            (1, Pass),
            (2, Fail),
            // With a filter, a missing directory is not applicable (unlike the bare form).
            (3, Na),
            // Files are searched recursively.
            (4, Pass),
            // OS_Match: substring, case-insensitive, anchors.
            (5, Pass),
            (6, Pass),
            // A symlink to a directory is not descended into; as a "file" it is not regular.
            (7, Na),
            // Globs are literal paths.
            (8, Fail),
            (9, Na),
            (10, Pass),
            (11, Fail),
            (12, Fail),
        ],
    );
    assert_eq!(result(&r, "3").1, "Could not open dir '/etc/nope'");
}

#[test]
fn aggregation_truth_table() {
    // F = found (file exists), N = not found (missing), I = invalid (a directory).
    let (f, n, i) = ("f:/etc/a.conf", "f:/etc/missing", "f:/etc/dir");
    let r = run(&[
        (1, "all", &[f, f]),
        (2, "all", &[f, n]),
        (3, "all", &[f, i]),
        (4, "all", &[i, n]),
        (5, "any", &[n, f]),
        (6, "any", &[n, n]),
        (7, "any", &[i, n]),
        (8, "any", &[i, f]),
        (9, "none", &[n, n]),
        (10, "none", &[n, f]),
        (11, "none", &[i, n]),
        (12, "none", &[i, f]),
        (13, "all", &["not f:/etc/missing"]),
        (14, "all", &["not f:/etc/dir"]),
        (15, "any required", &[n, f]),
        (16, "all required", &[f, n]),
    ]);
    expect(
        &r,
        &[
            (1, Pass),
            (2, Fail),
            (3, Na),
            (4, Fail),
            (5, Pass),
            (6, Fail),
            (7, Na),
            (8, Pass),
            (9, Pass),
            (10, Fail),
            (11, Na),
            (12, Fail),
            (13, Pass),
            (14, Na),
            (15, Pass),
            (16, Fail),
        ],
    );
}

#[test]
fn short_circuit_skips_later_rules() {
    let t = tree();
    let p = load(&sca4(&[(
        1,
        "any",
        &["f:/etc/a.conf", "c:sh -c \"echo must-not-run\" -> r:x"],
    )]));
    let (r, ctx) = scan_with(&p, options(std::path::Path::new("/")));
    let _ = t;
    assert_eq!(
        status(&r, "1"),
        Fail,
        "/etc/a.conf does not exist on the host root"
    );
    // The host has no /etc/a.conf, so the command did run here; now the other way round:
    let t = tree();
    let (r, ctx2) = scan_with(&p, options(t.path()));
    assert_eq!(status(&r, "1"), Pass);
    assert_eq!(
        ctx2.counters
            .commands_run
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    let ev = &r.checks[0].evidence;
    assert_eq!(ev[1].verdict, rampart_core::RuleVerdict::Skipped);
    drop(ctx);
}

#[test]
fn requirements_gate_the_policy() {
    let t = tree();
    let unmet = format!(
        "{}requirements:\n  title: needs missing file\n  description: d\n  condition: all\n  rules:\n    - 'f:/etc/missing'\n",
        sca4(&[(1, "all", &["f:/etc/a.conf"])])
    );
    // Requirements must precede checks in the document only by convention; YAML order does not
    // matter to the loader.
    let p = load(&unmet);
    let r = scan_root(&p, t.path());
    let req = r.requirements.as_ref().expect("requirements outcome");
    assert!(!req.satisfied);
    assert!(r.checks.is_empty(), "4.x skips the whole policy");

    let met = unmet.replace("'f:/etc/missing'", "'f:/etc/a.conf -> r:^Port'");
    let r = scan_root(&load(&met), t.path());
    assert!(r.requirements.as_ref().is_some_and(|q| q.satisfied));
    assert_eq!(status(&r, "1"), Pass);

    // An invalid requirement is not "passed" either.
    let invalid = unmet.replace("'f:/etc/missing'", "'f:/etc/dir'");
    let r = scan_root(&load(&invalid), t.path());
    assert!(r.requirements.as_ref().is_some_and(|q| !q.satisfied));

    // 5.x reports every check not applicable instead.
    let v5 = format!(
        "{}requirements:\n  name: needs missing file\n  description: d\n  condition: all\n  rules:\n    - 'f:/etc/missing'\n",
        sca5(&[(1, "all", &["f:/etc/a.conf"])])
    );
    let r = scan_root(&load(&v5), t.path());
    assert_eq!(
        result(&r, "1"),
        (
            Na,
            "Policy requirements not met: needs missing file".to_string()
        )
    );
}

#[test]
fn variables_substitute_locations_only() {
    let t = tree();
    let y = sca4(&[
        (1, "all", &[r"f:$file -> r:^Port"]),
        (2, "all", &[r"f:/etc/vars.txt -> r:^\$dir"]),
        (3, "all", &[r"d:$dir -> .conf"]),
        (4, "all", &[r"f:$list -> r:^Port"]),
    ])
    .replace(
        "checks:\n",
        "variables:\n  $file: /etc/a.conf\n  $dir: /etc/d\n  $list: /etc/missing,/etc/a.conf\nchecks:\n",
    );
    let r = scan_root(&load(&y), t.path());
    expect(&r, &[(1, Pass), (2, Pass), (3, Pass), (4, Pass)]);
}

#[test]
fn commands_run_without_a_shell() {
    let p = load(&sca4(&[
        (
            1,
            "all",
            &[r#"c:sh -c "echo hello; echo world" -> r:^world$"#],
        ),
        (2, "all", &[r#"c:sh -c "echo oops 1>&2" -> r:oops"#]),
        (3, "all", &["c:echo a | grep b -> r:^a | grep b$"]),
        (4, "all", &["c:/nonexistent/rampart-cmd -> r:x"]),
        (5, "all", &[r#"c:sh -c "exit 127" -> r:x"#]),
        (
            6,
            "all",
            &[r#"c:sh -c "echo visible; exit 3" -> r:visible"#],
        ),
        (7, "all", &["c:/nonexistent/rampart-cmd"]),
        (8, "all", &[r#"c:sh -c "echo 'a  b'" -> r:^a  b$"#]),
        // Output ends with a newline, so the last line is empty: a line with an invalid numeric
        // minterm is overwritten by the empty last line (not found), unlike in a file.
        (
            9,
            "all",
            &[r#"c:sh -c "echo PASS 3" -> n:^PASS\s+\d+ compare > 1"#],
        ),
        (
            10,
            "all",
            &[r#"c:sh -c "printf 'x9\nother\n'" -> n:^x(\d+) compare > 5"#],
        ),
        (
            11,
            "all",
            &[r#"c:sh -c "printf 'PASS 3'" -> n:^PASS\s+\d+ compare > 1"#],
        ),
    ]));
    let (r, _) = scan_with(&p, options(std::path::Path::new("/")));
    expect(
        &r,
        &[
            (1, Pass),
            (2, Pass),
            (3, Pass),
            (4, Na),
            (5, Na),
            (6, Pass),
            // 4.x: a command rule without a pattern is found without running.
            (7, Pass),
            (8, Pass),
            (9, Fail),
            (10, Pass),
            (11, Na),
        ],
    );
    assert_eq!(
        result(&r, "4").1,
        "Invalid path or wrong permissions to run command '/nonexistent/rampart-cmd'"
    );
}

#[test]
fn each_command_runs_once_per_scan() {
    let p = load(&sca4(&[
        (1, "all", &[r#"c:sh -c "echo shared" -> r:shared"#]),
        (2, "all", &[r#"c:sh -c "echo shared" -> r:^shared$"#]),
        (3, "any", &[r#"not c:sh -c "echo shared" -> r:nothing"#]),
    ]));
    let (r, ctx) = scan_with(&p, options(std::path::Path::new("/")));
    expect(&r, &[(1, Pass), (2, Pass), (3, Pass)]);
    assert_eq!(
        ctx.counters
            .commands_run
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn each_file_is_read_once_per_scan() {
    let t = tree();
    let p = load(&sca4(&[
        (1, "all", &["f:/etc/a.conf -> r:^Port"]),
        (2, "all", &["f:/etc/a.conf -> r:^#"]),
        (3, "all", &["f:/etc/link -> r:NO$"]),
    ]));
    let (r, ctx) = scan_with(&p, options(t.path()));
    expect(&r, &[(1, Pass), (2, Pass), (3, Pass)]);
    assert_eq!(
        ctx.counters
            .files_read
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn timeouts_are_not_applicable_in_4x_and_not_run_in_5x() {
    let rules: &[&str] = &["c:sleep 5 -> r:x"];
    let opts = || ScanOptions {
        command_timeout: Duration::from_millis(300),
        ..options(std::path::Path::new("/"))
    };
    let (r, _) = scan_with(&load(&sca4(&[(1, "all", rules)])), opts());
    assert_eq!(
        result(&r, "1"),
        (
            Na,
            "Timeout overtaken running command 'sleep 5'".to_string()
        )
    );
    let (r, _) = scan_with(&load(&sca5(&[(1, "all", rules)])), opts());
    assert_eq!(status(&r, "1"), NotRun);
}

#[test]
fn the_overall_deadline_stops_new_commands() {
    let p = load(&sca4(&[
        (1, "all", &["c:echo never -> r:never"]),
        (2, "all", &["f:/etc/os-release"]),
        (3, "all", &[r"d:/etc -> r:\.conf$ -> r:x"]),
    ]));
    let opts = ScanOptions {
        deadline: Some(Duration::ZERO),
        ..options(std::path::Path::new("/"))
    };
    let (r, ctx) = scan_with(&p, opts);
    assert_eq!(
        result(&r, "1"),
        (
            Na,
            "Command 'echo never' not run: the scan deadline had passed".to_string()
        )
    );
    // File checks are cheap and bounded; they still run. Directory walks are not started.
    assert_ne!(status(&r, "2"), Na);
    assert_eq!(
        result(&r, "3"),
        (
            Na,
            "Directory walk of '/etc' stopped: the scan deadline had passed".to_string()
        )
    );
    assert_eq!(
        ctx.counters
            .commands_run
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[test]
fn commands_and_processes_under_root_are_not_applicable() {
    let t = tree();
    let p = load(&sca4(&[
        (1, "all", &["c:echo hi -> r:hi"]),
        (2, "all", &["p:init"]),
    ]));
    let r = scan_root(&p, t.path());
    let (s1, why1) = result(&r, "1");
    assert_eq!(s1, Na);
    assert!(why1.contains("--chroot-commands"), "{why1}");
    assert_eq!(status(&r, "2"), Na);
}

#[test]
fn chroot_commands_run_inside_the_root() {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1)
        != 0
    {
        eprintln!("SKIP chroot_commands_run_inside_the_root: needs root (chroot)");
        return;
    }
    // A minimal root: a shell and the libraries it needs, plus a marker file.
    let t = Tree::new();
    t.file("/etc/marker", "inside\n");
    let copy = |from: &str, to: &str| {
        let real = std::fs::canonicalize(from).expect("canonicalize");
        let dest = t.path().join(to.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        std::fs::copy(real, dest).expect("copy");
    };
    copy("/bin/sh", "/bin/sh");
    let ldd = std::process::Command::new("ldd")
        .arg("/bin/sh")
        .output()
        .expect("ldd");
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = line.split_whitespace().find(|w| w.starts_with('/'));
        if let Some(p) = path {
            copy(p, p);
        }
    }
    let p = load(&sca4(&[
        (
            1,
            "all",
            &[r#"c:sh -c "while read l; do echo got-$l; done < /etc/marker" -> r:^got-inside$"#],
        ),
        (2, "all", &["c:/bin/not-in-root -> r:x"]),
    ]));
    let opts = ScanOptions {
        chroot_commands: true,
        ..options(t.path())
    };
    let (r, _) = scan_with(&p, opts);
    expect(&r, &[(1, Pass), (2, Na)]);
}

#[test]
fn processes_match_by_name() {
    let me = std::fs::read_to_string("/proc/self/comm").expect("comm");
    let me = me.trim();
    let exact = format!("p:{me}");
    let upper = format!("p:{}", me.to_uppercase());
    let regex = format!("p:r:^{}", &me[..me.len().min(4)]);
    let prefix_literal = format!("p:{}", &me[..me.len().min(4)]);
    let p = load(&sca4(&[
        (1, "all", &[exact.as_str()]),
        (2, "all", &["p:rampart-no-such-process"]),
        (3, "none", &["p:rampart-no-such-process"]),
        // Literal process patterns are whole-name, case-insensitive comparisons (4.x).
        (4, "all", &[upper.as_str()]),
        (5, "all", &[regex.as_str()]),
        (6, "all", &[prefix_literal.as_str()]),
    ]));
    let (r, _) = scan_with(&p, options(std::path::Path::new("/")));
    expect(
        &r,
        &[
            (1, Pass),
            (2, Fail),
            (3, Pass),
            (4, Pass),
            (5, Pass),
            (6, Fail),
        ],
    );
}

#[test]
fn registry_rules_are_not_applicable_off_windows() {
    let t = tree();
    let p = load(&sca4(&[(
        1,
        "all",
        &[
            r"r:HKEY_LOCAL_MACHINE\System\CurrentControlSet\Control\Lsa -> LimitBlankPasswordUse -> 1",
        ],
    )]));
    let r = scan_root(&p, t.path());
    let (s, why) = result(&r, "1");
    assert_eq!(s, Na);
    assert!(why.contains("Windows"), "{why}");
}

#[test]
fn v5_semantics_differ_where_documented() {
    let t = tree();
    let p = load(&sca5(&[
        // A lone negated minterm means "no line matches".
        (1, "all", &["f:/etc/a.conf -> !r:^#"]),
        (2, "all", &["f:/etc/a.conf -> !r:^nothing"]),
        // Literals are case-sensitive exact.
        (3, "all", &["f:/etc/a.conf -> permitrootlogin NO"]),
        (4, "all", &["f:/etc/a.conf -> PermitRootLogin no"]),
        // PCRE2 (caseless): `\s` matches a tab, `.` is any character.
        (5, "all", &[r"f:/etc/tabbed -> r:a\sb"]),
        (6, "all", &[r"f:/etc/a.conf -> r:port.22"]),
        // Non-canonical operators are invalid; canonical ones work.
        (
            7,
            "all",
            &[r"f:/etc/login.defs -> n:^PASS_MAX_DAYS\s*(\d+) compare => 99999"],
        ),
        (
            8,
            "all",
            &[r"f:/etc/login.defs -> n:^PASS_MAX_DAYS\s*(\d+) compare >= 99999"],
        ),
        // Comma lists are not split.
        (9, "all", &["f:/etc/missing,/etc/a.conf"]),
    ]));
    let r = scan_root(&p, t.path());
    expect(
        &r,
        &[
            (1, Fail),
            (2, Pass),
            (3, Pass),
            (4, Fail),
            (5, Pass),
            (6, Pass),
            (7, Na),
            (8, Pass),
            (9, Fail),
        ],
    );
    // Every rule runs in 5.x (no short circuit): both rules carry a verdict.
    let p = load(&sca5(&[(1, "any", &["f:/etc/a.conf", "f:/etc/missing"])]));
    let r = scan_root(&p, t.path());
    assert!(
        r.checks[0]
            .evidence
            .iter()
            .all(|e| e.verdict != rampart_core::RuleVerdict::Skipped)
    );
}

#[test]
fn v5_commands_without_pattern_run() {
    let p = load(&sca5(&[
        (1, "all", &["c:/nonexistent/rampart-cmd"]),
        (2, "all", &["c:true"]),
    ]));
    let (r, _) = scan_with(&p, options(std::path::Path::new("/")));
    expect(&r, &[(1, Na), (2, Pass)]);
}
