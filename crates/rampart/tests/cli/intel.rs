//! `rampart intel …` end to end: real binary, real SQLite store in a temporary data directory.

use super::harness::{code, rampart, s, shared, stderr, stdout, write};

fn intel(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["intel"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--data-dir", s(dir)]);
    rampart(&all)
}

/// Runs rampart under a given umask (a shell sets it, then becomes rampart).
fn rampart_umask(umask: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .output()
        .expect("sh")
}

fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o7777
}

/// Ingests shared fixture files, each as `(format, path under ../shared)`.
fn ingest_fixtures(dir: &std::path::Path, files: &[(&str, &str)]) {
    for (format, rel) in files {
        let out = intel(dir, &["ingest", "--format", format, s(&shared(rel))]);
        assert_eq!(code(&out), 0, "{rel}: {}", stderr(&out));
    }
}

#[test]
fn feeds_ingest_lookup_and_stats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let urlhaus = shared("fixtures/intel/abusech/urlhaus_csv_recent.excerpt.csv");
    let drop = shared("fixtures/intel/other/intelmq_spamhaus_drop.txt");
    let out = intel(
        d,
        &[
            "feeds",
            "add",
            "urlhaus",
            "--format",
            "urlhaus-csv",
            "--url",
            "https://urlhaus.abuse.ch/downloads/csv_recent/",
            "--reliability",
            "80",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = intel(d, &["ingest", "--feed", "urlhaus", s(&urlhaus)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "10 records, 10 indicators (10 new, 0 refreshed), 10 new observations, 0 rejected"
        ),
        "{}",
        stderr(&out)
    );
    let out = intel(
        d,
        &[
            "ingest",
            "--format",
            "spamhaus-drop",
            "--reliability",
            "95",
            s(&drop),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // Defanged input, network containment, a miss.
    let out = intel(d, &["lookup", "hxxp://182.126.120.150:58801/i", "1.4.77.1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("exact url http://182.126.120.150:58801/i"),
        "{text}"
    );
    assert!(text.contains("urlhaus #3786237"), "{text}");
    assert!(text.contains("network cidr 1.4.0.0/17"), "{text}");
    assert!(text.contains("import-spamhaus-drop #SBL256893"), "{text}");

    let out = intel(d, &["lookup", "www.dropbox.com", "--json"]);
    assert_eq!(code(&out), 1, "a miss exits 1: {}", stdout(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(
        v[0]["matches"],
        serde_json::json!([]),
        "the host of a listed URL is not itself listed"
    );

    let out = intel(d, &["lookup", "not an indicator"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("not recognised"), "{}", stderr(&out));

    let out = intel(d, &["stats", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let live: i64 = v["kinds"]
        .as_array()
        .expect("kinds")
        .iter()
        .map(|k| k["live"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(live, 12);
    assert_eq!(v["feeds"].as_array().map(Vec::len), Some(2));
}

#[test]
fn bad_input_is_named_and_nothing_is_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let out = intel(d, &["feeds", "add", "x", "--format", "nope"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("unknown feed format `nope`"),
        "{}",
        stderr(&out)
    );
    let out = intel(
        d,
        &[
            "feeds",
            "add",
            "x",
            "--format",
            "plain",
            "--reliability",
            "101",
        ],
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let out = intel(
        d,
        &[
            "feeds",
            "add",
            "x",
            "--format",
            "plain",
            "--interval",
            "soon",
        ],
    );
    assert!(
        stderr(&out).contains("--interval \"soon\""),
        "{}",
        stderr(&out)
    );

    let good = write(d, "good.txt", "1.2.3.4\n");
    let out = intel(d, &["ingest", "--format", "plain", s(&good)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let broken = write(
        d,
        "broken.json",
        "{\n  \"vulnerabilities\": [ {\"cveID\": } ]\n}\n",
    );
    let out = intel(d, &["ingest", "--format", "kev-json", s(&broken)]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("invalid JSON at line 2, column"),
        "{}",
        stderr(&out)
    );
    let out = intel(
        d,
        &["ingest", "--format", "plain", s(&d.join("missing.txt"))],
    );
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("missing.txt"), "{}", stderr(&out));
    let mixed = write(d, "mixed.txt", "5.6.7.8\nwww..bad.example\n");
    let out = intel(d, &["ingest", "--format", "plain", s(&mixed)]);
    assert_eq!(code(&out), 0);
    assert!(stderr(&out).contains("mixed.txt:line 2, field `value`: `www..bad.example` rejected: not a domain name: empty label"), "{}", stderr(&out));
    let out = intel(d, &["lookup", "1.2.3.4", "5.6.7.8"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert_eq!(
        stdout(&out).matches("exact ipv4").count(),
        2,
        "{}",
        stdout(&out)
    );
}

#[test]
fn exports_round_trip_through_stix_and_feed_firewalls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    ingest_fixtures(
        d,
        &[
            (
                "urlhaus-csv",
                "fixtures/intel/abusech/urlhaus_csv_recent.excerpt.csv",
            ),
            (
                "spamhaus-drop",
                "fixtures/intel/other/intelmq_spamhaus_drop.txt",
            ),
            (
                "spamhaus-drop",
                "fixtures/intel/other/intelmq_spamhaus_asndrop.txt",
            ),
            (
                "kev-json",
                "fixtures/intel/kev/known_exploited_vulnerabilities.head5.json",
            ),
            (
                "malwarebazaar-csv",
                "fixtures/intel/abusech/malwarebazaar_csv_full.dump_20260226.csv",
            ),
            ("stix", "fixtures/intel/stix/poisonivy.json"),
        ],
    );
    // A feed with a TLP (ThreatFox's ip:port values), and a YARA rule kept as `other` (a single
    // STIX object, not a bundle).
    let out = intel(
        d,
        &[
            "feeds",
            "add",
            "tf",
            "--format",
            "threatfox-json",
            "--tlp",
            "amber",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = intel(
        d,
        &[
            "ingest",
            "--feed",
            "tf",
            s(&shared(
                "fixtures/intel/abusech/elastic_test-threatfox-ndjson.excerpt.log",
            )),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let sigma = write(
        d,
        "sigma.json",
        r#"{"type": "indicator", "spec_version": "2.1", "id": "indicator--1d6b7a1e-5d3c-4b1a-9f77-0c2a4f1e9a01",
            "created": "2026-01-05T10:00:00.000Z", "modified": "2026-01-05T10:00:00.000Z",
            "pattern_type": "yara", "valid_from": "2026-01-05T10:00:00Z",
            "pattern": "rule odd { strings: $a = \"C:\\x.exe\" condition: $a } // it's odd"}"#,
    );
    let out = intel(d, &["ingest", "--format", "stix", s(&sigma)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stats = |dir: &std::path::Path| -> serde_json::Value {
        let out = intel(dir, &["stats", "--json"]);
        serde_json::from_str(&stdout(&out)).expect("stats json")
    };
    let before = stats(d);
    for kind in ["ip_port", "other", "tlsh", "cve", "asn"] {
        assert!(
            before["kinds"].to_string().contains(&format!("\"{kind}\"")),
            "no {kind} in {}",
            before["kinds"]
        );
    }

    // STIX out of one store, into a fresh one: the same indicators.
    let bundle = d.join("export.json");
    let out = intel(d, &["export", "--format", "stix", "--output", s(&bundle)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // The OASIS validator finds no error, stix2 parses it without custom content, and every
    // object carries its feed's TLP 2.0 marking.
    let check = std::process::Command::new("python3")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/stix-check.py"))
        .arg(&bundle)
        .output()
        .expect("python3");
    assert!(check.status.success(), "{}", stderr(&check));
    let verdict: serde_json::Value = serde_json::from_slice(&check.stdout).expect("json");
    assert_eq!(verdict["errors"], serde_json::json!([]), "{verdict}");
    // The warnings docs/intel.md explains: deterministic (UUIDv5) ids, and `based-on` an
    // observable the vocabulary does not suggest.
    for code in verdict["warnings"].as_object().expect("warnings").keys() {
        assert!(["103", "202"].contains(&code.as_str()), "{verdict}");
    }
    assert_eq!(verdict["unmarked"], serde_json::json!([]), "{verdict}");
    let amber = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421";
    let clear = "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487";
    // ThreatFox (counted by hand in the fixture): 3 ip:port values, an indicator each (no
    // single observable); their 2 distinct addresses and 1 URL, an indicator, an observable and
    // a relationship each: 3 + 3 x 3 = 12 objects marked amber.
    assert_eq!(verdict["markings"][amber], 12, "{verdict}");
    assert!(verdict["markings"][clear].as_u64() > Some(100), "{verdict}");
    assert_eq!(verdict["types"]["marking-definition"], 2, "{verdict}");
    let other = tempfile::tempdir().expect("tempdir");
    let out = intel(other.path(), &["ingest", "--format", "stix", s(&bundle)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains(" 0 rejected"), "{}", stderr(&out));
    assert_eq!(stats(other.path())["kinds"], before["kinds"]);

    // Firewall and resolver formats.
    let out = intel(d, &["export", "--format", "blocklist-ip"]);
    let ips: Vec<String> = stdout(&out)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    assert!(
        ips.contains(&"1.4.0.0/17".to_owned()) && ips.contains(&"2a06:e480::/29".to_owned()),
        "{ips:?}"
    );
    assert!(ips.contains(&"219.90.112.203".to_owned()));
    let out = intel(d, &["export", "--format", "rpz"]);
    assert!(
        stdout(&out)
            .contains("\nwww.webserver.freetcp.com CNAME .\n*.www.webserver.freetcp.com CNAME .\n"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("\n17.0.0.4.1.rpz-ip CNAME .\n"));
    // IPv6 networks too: 2a06:e480::/29, words reversed, the zero run as `zz` (BIND's form).
    assert!(
        stdout(&out).contains("\n29.zz.e480.2a06.rpz-ip CNAME .\n"),
        "{}",
        stdout(&out)
    );

    // Written atomically to a file a daemon can read (0666 less the umask), and BIND loads it.
    let zone = d.join("rampart.rpz");
    let out = rampart_umask(
        "022",
        &[
            "intel",
            "export",
            "--format",
            "rpz",
            "--output",
            s(&zone),
            "--data-dir",
            s(d),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(mode_of(&zone), 0o644);
    let check = std::process::Command::new("named-checkzone")
        .args(["-k", "fail", "-i", "local", "rpz.rampart.test", s(&zone)])
        .output()
        .expect("named-checkzone (bind9-utils, installed by scripts/setup-test-deps.sh)");
    assert!(
        check.status.success() && stdout(&check).contains("OK"),
        "named-checkzone refused the RPZ export:\n{}{}",
        stdout(&check),
        stderr(&check)
    );
    let out = intel(
        d,
        &[
            "export",
            "--format",
            "rpz",
            "--output",
            s(&zone),
            "--mode",
            "0600",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(mode_of(&zone), 0o600);
    // Replacing the file keeps its mode unless one is asked for.
    let out = intel(d, &["export", "--format", "rpz", "--output", s(&zone)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(mode_of(&zone), 0o600);
    for bad in ["9", "01000", "rw"] {
        let out = intel(
            d,
            &[
                "export",
                "--format",
                "rpz",
                "--output",
                s(&zone),
                "--mode",
                bad,
            ],
        );
        assert_eq!(code(&out), 2, "--mode {bad}");
        assert!(
            stderr(&out).contains(&format!("`{bad}` is not an octal file mode")),
            "{}",
            stderr(&out)
        );
    }
    let out = intel(d, &["export", "--format", "suricata"]);
    let rules = stdout(&out);
    assert!(
        rules
            .lines()
            .filter(|l| l.starts_with("alert "))
            .all(|l| l.contains("sid:") && l.ends_with("rev:1;)"))
    );
    assert!(rules.contains("alert dns $HOME_NET any -> any any (msg:\"Rampart intel domain www.webserver.freetcp.com"), "{rules}");
    let out = intel(d, &["export", "--format", "yaml"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("unknown export format `yaml`"));
}

#[test]
fn allowlists_stop_known_good_values_and_sightings_move_scores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let list = write(
        d,
        "list.txt",
        "10.1.2.3\n8.8.4.4\nmail.google.com\nevil.example\n",
    );
    let out = intel(
        d,
        &[
            "ingest",
            "--format",
            "plain",
            "--reliability",
            "80",
            s(&list),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = intel(
        d,
        &[
            "allowlist",
            "add",
            "top-sites",
            "--type",
            "hostname",
            "--entry",
            "google.com",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = intel(
        d,
        &[
            "allowlist",
            "import",
            s(&shared(
                "fixtures/intel/misp/warninglists/rfc1918.list.json",
            )),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("allowlist list-of-rfc-1918-cidr-blocks (cidr, 3 entries)"),
        "{}",
        stderr(&out)
    );
    let out = intel(
        d,
        &[
            "allowlist",
            "add",
            "bad",
            "--type",
            "cidr",
            "--entry",
            "10.0.0.0/8",
            "--entry",
            "300.1.1.1",
        ],
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("allowlist bad, entry 1 `300.1.1.1`"),
        "{}",
        stderr(&out)
    );

    let out = intel(
        d,
        &["lookup", "10.1.2.3", "mail.google.com", "evil.example"],
    );
    let text = stdout(&out);
    assert!(text.contains("10.1.2.3: exact ipv4 10.1.2.3 (score 60, allowlisted by builtin-non-routable: 10.0.0.0/8)"), "{text}");
    assert!(text.contains("mail.google.com: exact domain mail.google.com (score 60, allowlisted by top-sites: google.com)"), "{text}");
    assert!(
        text.contains("evil.example: exact domain evil.example (score 60)"),
        "{text}"
    );

    let out = intel(d, &["export", "--format", "blocklist-ip"]);
    let text = stdout(&out);
    let ips: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(ips, ["8.8.4.4"]);
    assert!(
        stderr(&out).contains("left out: 2 allowlisted"),
        "{}",
        stderr(&out)
    );

    // A false positive costs 25 points; a confirmed sighting restarts the clock and adds 5.
    let out = intel(
        d,
        &[
            "sighting",
            "8.8.4.4",
            "--false-positive",
            "--note",
            "Google DNS",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = intel(d, &["sighting", "hxxp://evil[.]example"]);
    assert_eq!(code(&out), 2, "not an indicator we hold: {}", stderr(&out));
    let out = intel(d, &["sighting", "evil[.]example", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("sighting --json");
    assert_eq!(
        (
            v["recorded"].as_str(),
            v["sightings"].as_i64(),
            v["false_positives"].as_i64()
        ),
        (Some("hit"), Some(1), Some(0)),
        "{v}"
    );
    let out = intel(d, &["allowlist", "list", "--json"]);
    let lists: serde_json::Value =
        serde_json::from_str(&stdout(&out)).expect("allowlist list --json");
    assert_eq!(lists[0]["name"], "builtin-non-routable", "{lists}");
    assert_eq!(lists[0]["builtin"], true);
    assert!(lists.as_array().is_some_and(|l| l.len() > 1), "{lists}");
    let out = intel(d, &["lookup", "8.8.4.4", "evil.example", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(v[0]["matches"][0]["score"], 35);
    assert_eq!(v[1]["matches"][0]["score"], 65);
}

#[test]
fn attack_ids_from_tags_resolve_to_imported_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let feed = write(
        d,
        "feed.csv",
        "url,tags,family\nhttp://dump.example/m.exe,\"T1003,attack.t1059.001,stealer\",Rover\n",
    );
    let out = intel(d, &["ingest", "--format", "csv", s(&feed)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let objects = shared("fixtures/intel/stix/attack_from_cti-python-stix2");
    let mut files: Vec<String> = std::fs::read_dir(&objects)
        .expect("fixtures")
        .map(|e| e.expect("entry").path().display().to_string())
        .collect();
    files.sort();
    let mut args = vec!["attack", "import"];
    args.extend(files.iter().map(String::as_str));
    let out = intel(d, &args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // T1003 (technique), G0009 (group), S0090 (software); the mitigation has no ATT&CK id
    // in this old sample and the relationship is not an entry.
    assert!(
        stderr(&out).contains("3 ATT&CK entries imported from 5 file(s)"),
        "{}",
        stderr(&out)
    );
    let out = intel(d, &["lookup", "http://dump.example/m.exe"]);
    let text = stdout(&out);
    assert!(
        text.contains("    ATT&CK T1003 Credential Dumping [credential-access]"),
        "{text}"
    );
    assert!(
        text.contains("    ATT&CK T1059.001 (not imported)"),
        "{text}"
    );
    let out = intel(d, &["lookup", "http://dump.example/m.exe", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(
        v[0]["matches"][0]["attack"][0]["name"],
        "Credential Dumping"
    );
    let broken = write(d, "broken.json", "{\"objects\": [");
    let out = intel(d, &["attack", "import", s(&broken)]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("broken.json: invalid JSON at line 1"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bulk_match_and_related_indicators() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    ingest_fixtures(
        d,
        &[
            (
                "malwarebazaar-csv",
                "fixtures/intel/abusech/malwarebazaar_csv_full.dump_20260226.csv",
            ),
            (
                "spamhaus-drop",
                "fixtures/intel/other/intelmq_spamhaus_drop.txt",
            ),
            (
                "plain",
                "fixtures/intel/other/cinsscore_cinsscore_sample.txt",
            ),
        ],
    );
    let observables = write(
        d,
        "obs.txt",
        "# remote addresses seen on a host\n1.4.9.9\n1[.]0[.]164[.]165\n9.9.9.9\n9363FA2625198BEB1FCCE0EF07F558FF\nnot an observable\n",
    );
    let out = intel(d, &["match", s(&observables), "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let hits: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let summary: Vec<(u64, &str, &str)> = hits
        .iter()
        .map(|h| {
            (
                h["line"].as_u64().unwrap_or(0),
                h["indicator"]["value"].as_str().unwrap_or(""),
                h["how"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (2, "1.4.0.0/17", "network"),
            (3, "1.0.164.165", "exact"),
            (5, "9363fa2625198beb1fcce0ef07f558ff", "exact")
        ]
    );
    assert!(
        stderr(&out).contains("5 observables, 3 matches, 1 not indicators"),
        "{}",
        stderr(&out)
    );
    let none = write(d, "none.txt", "9.9.9.9\n");
    assert_eq!(code(&intel(d, &["match", s(&none)])), 1);

    // The MD5's sample: its other hashes (same MalwareBazaar row); its family is not set.
    let out = intel(
        d,
        &[
            "lookup",
            "--related",
            "--json",
            "9363fa2625198beb1fcce0ef07f558ff",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let same: Vec<&str> = v[0]["matches"][0]["related"]["same_record"]
        .as_array()
        .expect("related")
        .iter()
        .filter_map(|x| x.as_str())
        .collect();
    assert_eq!(same.len(), 4, "{same:?}");
    assert!(
        same.contains(&"sha256:19d854caf81bc884c677bd941abc50b33716e188fa723991820b0ffa3ea7e93e")
    );
    // A Mirai sample: the family relation counts every Mirai hash (17 rows, 85 non-null hashes,
    // counted with Python's csv module) and lists at most 50.
    let out = intel(
        d,
        &[
            "lookup",
            "--related",
            "--json",
            "601dd90719729f87caf388d4a9bc9be91d5443c3181f1fb3b337a21df5de4bb9",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let mirai = &v[0]["matches"][0]["related"]["same_family"]["mirai"];
    assert_eq!(mirai["total"], 85, "{v}");
    assert_eq!(mirai["capped"], true);
    assert_eq!(mirai["listed"].as_array().map(Vec::len), Some(50));
}

#[test]
fn expired_indicators_are_purged_after_the_retention() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // A feed whose observations keep indicators alive for one second.
    let out = intel(
        d,
        &["feeds", "add", "short", "--format", "plain", "--ttl", "1s"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let list = write(d, "l.txt", "1.2.3.4\nevil.example\n");
    let out = intel(d, &["ingest", "--feed", "short", s(&list)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let out = intel(d, &["stats", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let expired: i64 = v["kinds"]
        .as_array()
        .expect("kinds")
        .iter()
        .map(|k| k["expired"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(expired, 2, "{v}");
    assert_eq!(
        code(&intel(d, &["lookup", "1.2.3.4"])),
        1,
        "expired indicators do not match"
    );
    // Kept while within the retention, deleted after it.
    let out = intel(d, &["purge", "--retention", "1h"]);
    assert!(
        stderr(&out).contains("purged 0 indicators"),
        "{}",
        stderr(&out)
    );
    let out = intel(d, &["purge", "--retention", "0s", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("purge --json");
    assert_eq!(
        (v["indicators"].as_u64(), v["records"].as_u64()),
        (Some(2), Some(2)),
        "{v}"
    );
    let out = intel(d, &["stats", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(v["kinds"], serde_json::json!([]));
}

/// `rampart bench intel --feed`: a real feed joins the index and is ingested after the
/// generated one into the same store, deduplicated against it; a malformed `--feed` is a usage
/// error naming the flag's value.
#[test]
fn bench_intel_takes_real_feeds() {
    let drop = shared("fixtures/intel/other/intelmq_spamhaus_drop.txt");
    let feed = format!("spamhaus-drop={}", s(&drop));
    let out = rampart(&[
        "bench",
        "intel",
        "--indicators",
        "1000",
        "--lookups",
        "1000",
        "--ingest",
        "1000",
        "--api-rate",
        "20",
        "--api-seconds",
        "1",
        "--feed",
        &feed,
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let figures: serde_json::Value =
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    // The fixture lists two networks, 1.4.0.0/17 and 2a06:e480::/29.
    assert_eq!(figures["feed_indicators"], 2);
    assert_eq!(figures["indicators"], 1002);
    let ingested = &figures["feed_ingest"][0];
    assert_eq!(ingested["format"], "spamhaus-drop");
    assert_eq!(ingested["records"], 2);
    assert_eq!(ingested["new_indicators"], 2);
    // Beside the ingest rate, SQLite's own inserts of the same rows, measured in the same run.
    let floor = figures["floor_sqlite_prepared_inserts_per_minute"]
        .as_f64()
        .unwrap_or(0.0);
    let rate = figures["ingest_indicators_per_minute"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(floor > 0.0 && rate > 0.0, "{figures}");
    let ratio = figures["ingest_vs_sqlite_floor"].as_f64().unwrap_or(0.0);
    assert!((ratio - rate / floor).abs() < 1e-9, "{figures}");
    // The API phase: a real server on that store, answering every lookup.
    let api = &figures["api_lookup"];
    assert_eq!(api["errors"], 0, "{figures}");
    assert!(api["requests"].as_u64().unwrap_or(0) >= 20, "{figures}");
    // The slowest requests, slowest first: the first is the maximum.
    let slowest = api["slowest"].as_array().expect("slowest requests");
    assert!((1..=10).contains(&slowest.len()), "{figures}");
    assert_eq!(slowest[0]["ms"], api["max_ms"], "{figures}");
    assert!(
        slowest
            .windows(2)
            .all(|w| w[0]["ms"].as_f64() >= w[1]["ms"].as_f64()),
        "{figures}"
    );
    // Beside the latencies, what the machine and the client added: the hiccup meter slept a
    // millisecond at a time through the phase (its 40 requests over `achieved_rate`), so at
    // most once per millisecond of it (and a few more while it was stopped), and each slow
    // request names the largest hiccup within its time in flight, never more than the largest
    // seen.
    let hiccups = &api["machine_hiccups"];
    let sleeps = hiccups["sleeps"].as_f64().unwrap_or(0.0);
    let phase_ms = 40.0 / api["achieved_rate"].as_f64().expect("achieved rate") * 1000.0;
    assert!(
        sleeps >= phase_ms / 20.0 && sleeps <= phase_ms + 5.0,
        "{figures}"
    );
    let max = hiccups["max_ms"].as_f64().expect("largest hiccup");
    assert!(
        hiccups["p99_ms"].as_f64().expect("hiccup p99") <= max,
        "{figures}"
    );
    for listed in hiccups["over_2ms"].as_array().expect("listed hiccups") {
        let ms = listed["ms"].as_f64().unwrap_or(0.0);
        assert!((2.0..=max).contains(&ms), "{figures}");
    }
    for s in slowest {
        let h = s["machine_hiccup_ms"].as_f64().expect("hiccup per request");
        assert!((0.0..=max).contains(&h), "{figures}");
    }
    let lag = api["send_lag_p99_ms"].as_f64().expect("send lag p99");
    assert!(
        lag <= api["send_lag_max_ms"].as_f64().expect("send lag max"),
        "{figures}"
    );

    let out = rampart(&["bench", "intel", "--feed", "no-such-format=x"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no-such-format=x"),
        "{}",
        stderr(&out)
    );
    let out = rampart(&["bench", "intel", "--feed", "plain"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("expected FORMAT=PATH"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn ingest_without_format_detects_it_or_names_the_candidates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let urlhaus = shared("fixtures/intel/abusech/urlhaus_csv_recent.excerpt.csv");
    let out = intel(d, &["ingest", s(&urlhaus)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("detected format urlhaus-csv (the URLhaus banner)"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("10 records"), "{}", stderr(&out));

    let empty = write(d, "empty.txt", "\n");
    let out = intel(d, &["ingest", s(&empty)]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("empty.txt: cannot tell the format: the file is empty"),
        "{}",
        stderr(&out)
    );
    let odd = write(d, "odd.json", "{\"hello\": \"world\"}\n");
    let out = intel(d, &["ingest", s(&odd)]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains(
            "JSON, but none of the keys of a known feed; pass --format, one of: stix, misp-event"
        ),
        "{}",
        stderr(&out)
    );
    // A file that yields nothing says why instead of a silent zero.
    let identity = "{\"type\":\"bundle\",\"id\":\"bundle--1f0c7b5e-0c2a-4d52-9d1a-111111111111\",\"objects\":[{\"type\":\"identity\",\"spec_version\":\"2.1\",\"id\":\"identity--1f0c7b5e-0c2a-4d52-9d1a-222222222222\",\"created\":\"2020-01-01T00:00:00.000Z\",\"modified\":\"2020-01-01T00:00:00.000Z\",\"name\":\"x\"}]}\n";
    for (name, format, content, why) in [
        (
            "comments.txt",
            "plain",
            "# nothing here\n\n# still nothing\n",
            "comments.txt: no indicator: its 3 lines are blank or comments",
        ),
        (
            "header.csv",
            "csv",
            "url,tags\n",
            "header.csv: no indicator: only a header row: no data rows",
        ),
        (
            "identity.json",
            "stix",
            identity,
            "identity.json: note: stix: none of its 1 objects is an indicator or a vulnerability (identity ×1)",
        ),
    ] {
        let path = write(d, name, content);
        let out = intel(d, &["ingest", "--format", format, s(&path)]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert!(stderr(&out).contains(why), "{why:?} in {}", stderr(&out));
    }
}

/// `intel lookup` says what an analyst acts on and explains the score; `intel decay` shows,
/// sets and resets the models that score decays by, refusing bad scopes and lifetimes.
#[test]
fn lookups_explain_scores_and_decay_models_are_set_by_operators() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let out = intel(
        d,
        &[
            "ingest",
            "--format",
            "kev-json",
            "--reliability",
            "95",
            s(&shared(
                "fixtures/intel/kev/known_exploited_vulnerabilities.json",
            )),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Log4Shell, in KEV since 2021-12-10, ransomware use known: it does not age.
    let out = intel(d, &["lookup", "CVE-2021-44228"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    for line in [
        "exact cve CVE-2021-44228 (score 71)",
        "threat type exploited_vulnerability · family unknown · status unknown · 1 source",
        "first seen 2021-12-10 · last seen 2021-12-10",
        "score 71 = base 71 (import-kev-json: reliability 95 × confidence 75 assumed) × age factor 1.0",
        "kind:cve model: never decays) + 0 for 0 sighting(s) − 0 for 0 false positive(s)",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
    let out = intel(d, &["decay", "list"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("kind:cve                         builtin   never decays"),
        "{}",
        stdout(&out)
    );

    // The operator decides CVEs age over 30 days, linearly: five years on it scores 0.
    let out = intel(
        d,
        &[
            "decay",
            "set",
            "kind:cve",
            "--lifetime",
            "30",
            "--speed",
            "1",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = intel(d, &["lookup", "CVE-2021-44228", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let explained = &v[0]["matches"][0]["score_explained"];
    assert_eq!(explained["score"], 0, "{explained}");
    assert_eq!(explained["model_scope"], "kind:cve");
    assert_eq!(explained["model"]["lifetime_days"], 30.0);
    assert_eq!(explained["age_factor"], 0.0);
    assert_eq!(explained["base_from"]["reliability"], 95);
    assert_eq!(v[0]["matches"][0]["source_count"], 1);
    let out = intel(d, &["decay", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert!(
        list.as_array()
            .expect("list")
            .iter()
            .any(|m| m["scope"] == "kind:cve" && m["source"] == "operator"),
        "{list}"
    );
    let out = intel(d, &["decay", "reset", "kind:cve"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = intel(d, &["lookup", "CVE-2021-44228"]);
    assert!(stdout(&out).contains("(score 71)"), "{}", stdout(&out));

    // Bad scopes and models are refused with the reason, and nothing is stored.
    for (args, why) in [
        (
            &["decay", "set", "kind:nope", "--lifetime", "3"][..],
            "kind:nope",
        ),
        (
            &["decay", "set", "ipv4", "--lifetime", "3"][..],
            "kind:KIND",
        ),
        (
            &["decay", "set", "kind:ipv4", "--lifetime", "soon"][..],
            "--lifetime \"soon\"",
        ),
        (
            &["decay", "set", "kind:ipv4", "--lifetime", "0"][..],
            "lifetime 0 days",
        ),
        (
            &["decay", "reset", "kind:ipv4"][..],
            "no operator's decay model",
        ),
    ] {
        let out = intel(d, args);
        assert_ne!(code(&out), 0, "{args:?}");
        assert!(stderr(&out).contains(why), "{args:?}: {}", stderr(&out));
    }
    let out = intel(d, &["decay", "list", "--json"]);
    assert!(!stdout(&out).contains("\"operator\""), "{}", stdout(&out));
}
