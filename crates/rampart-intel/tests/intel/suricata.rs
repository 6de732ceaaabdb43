//! Suricata judges the Suricata export: every rule file loads in `suricata -T` with no error and
//! no warning, and over a pcap of real conversations (written by `scripts/suricata-traffic.py`
//! with scapy) exactly the listed values alert, each with the sids of its own rules, and every
//! near miss stays silent.
//!
//! Suricata 7 comes from Debian bookworm-backports and scapy from PyPI, both installed by
//! `scripts/setup-test-deps.sh`; a missing one fails these tests (it never skips them).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use rampart_intel::export::{Excluded, ExportFormat, Exported, suricata, write_export};
use rampart_intel::{Format, Ioc, IocKind};
use serde_json::{Value, json};

use crate::harness::parse_fixture;

const GENERATED: i64 = 1_772_105_424;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/suricata-traffic.py")
}

fn item(id: u64, kind: IocKind, value: &str, threat: Option<&str>) -> Exported {
    Exported {
        id,
        ioc: Ioc::new(kind, value),
        score: 75,
        first_seen: GENERATED,
        last_seen: GENERATED,
        threat_type: threat.map(str::to_owned),
        family: None,
        attack: Vec::new(),
        feeds: Vec::new(),
        tlp: None,
        version: 0,
    }
}

fn write_rules(dir: &Path, items: &[Exported]) -> (PathBuf, String) {
    let mut out = Vec::new();
    write_export(
        ExportFormat::Suricata,
        items,
        Excluded::default(),
        GENERATED,
        &mut out,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8(out).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join("rampart.rules");
    std::fs::write(&path, &text).unwrap_or_else(|e| panic!("{e}"));
    (path, text)
}

fn run(cmd: &mut Command) -> std::process::Output {
    cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?} (scripts/setup-test-deps.sh installs it): {e}")
    })
}

/// `suricata -T -v` on the file: it must load every rule, with no error or warning line.
fn suricata_loads(rules: &Path, dir: &Path, expected_rules: usize) {
    let out = run(Command::new("suricata")
        .args(["-T", "-v", "-S"])
        .arg(rules)
        .arg("-l")
        .arg(dir));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "suricata -T failed:\n{text}");
    let complaints: Vec<&str> = text
        .lines()
        .filter(|l| {
            ["E:", "W:", "Error:", "Warning:"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect();
    assert!(complaints.is_empty(), "suricata -T complained:\n{text}");
    assert!(
        text.contains(&format!(
            "{expected_rules} rules successfully loaded, 0 rules failed"
        )),
        "expected {expected_rules} rules loaded:\n{text}"
    );
}

fn rule_count(text: &str) -> usize {
    text.lines().filter(|l| l.starts_with("alert ")).count()
}

#[test]
fn exports_of_real_feeds_load_without_errors_or_warnings() {
    let mut items = Vec::new();
    for (format, rel) in [
        (Format::UrlhausCsv, "abusech/urlhaus_csv_recent.excerpt.csv"),
        (
            Format::ThreatfoxCsv,
            "abusech/threatfox_csv_full.excerpt.csv",
        ),
        (
            Format::FeodoCsv,
            "abusech/feodo_ipblocklist_csv.excerpt_2021.csv",
        ),
        (Format::SslblCsv, "abusech/sslbl_sslblacklist_1.csv"),
        (Format::Openphish, "other/intelmq_openphish_feed.txt"),
        (Format::SpamhausDrop, "other/intelmq_spamhaus_drop.txt"),
        (Format::Csv, "other/viriback_dump.csv"),
        (Format::MispEvent, "misp/misp_event.json"),
        (
            Format::ThreatfoxJson,
            "abusech/elastic_test-threatfox-ndjson.excerpt.log",
        ),
        (
            Format::OtxJson,
            "other/elastic_test-otx-sample-ndjson.excerpt.log",
        ),
        (Format::Stix, "stix/poisonivy.json"),
    ] {
        let (records, _) = parse_fixture(format, rel);
        for r in records {
            for ioc in r.indicators {
                let id = items.len() as u64 + 1;
                items.push(Exported {
                    id,
                    ioc,
                    score: 60,
                    first_seen: GENERATED,
                    last_seen: GENERATED,
                    threat_type: r.threat_type.clone(),
                    family: r.malware.first().cloned(),
                    attack: Vec::new(),
                    feeds: Vec::new(),
                    tlp: None,
                    version: 0,
                });
            }
        }
    }
    // Hand-made values with every byte Suricata treats specially.
    let n = items.len() as u64;
    for (i, v) in [
        "http://odd.example/a|b\"c;d\\e f",
        "http://odd.example/%7Cpipe%22?q=%3B",
        "http://odd.example:8080/x/../y",
        "http://[2001:db8::7]/gate.php",
        "https://odd.example/",
        "https://[2001:db8::8]:8443/",
    ]
    .iter()
    .enumerate()
    {
        items.push(item(n + 1 + i as u64, IocKind::Url, v, Some("payload")));
    }
    items.push(item(n + 10, IocKind::Ipv6, "2001:db8::1", None));
    items.push(item(n + 11, IocKind::Cidr, "2001:db8:bad::/48", None));
    items.push(item(n + 12, IocKind::IpPort, "[2001:db8::2]:4444", None));
    items.push(item(
        n + 13,
        IocKind::Ja3,
        "29d829fe69486c5df0e94ca8816ef1b6",
        None,
    ));

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (path, text) = write_rules(dir.path(), &items);
    let kinds: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.split_once("rampart_kind ").map(|(_, r)| r))
        .filter_map(|r| r.split(',').next())
        .collect();
    // The real feeds bring URLs, domains, addresses, networks, ip:port pairs and certificate
    // fingerprints; all of them are in the file.
    for kind in [
        "url",
        "domain",
        "ipv4",
        "ipv6",
        "cidr",
        "ip_port",
        "x509_sha1",
        "ja3",
    ] {
        assert!(kinds.contains(kind), "no {kind} rule in:\n{text}");
    }
    suricata_loads(&path, dir.path(), rule_count(&text));
}

/// One conversation of the pcap, and the rules that must alert on it (none for a near miss).
struct Case {
    conversation: Value,
    alerts: BTreeSet<u64>,
}

fn case(conversation: Value, alerts: &[u64]) -> Case {
    Case {
        conversation,
        alerts: alerts.iter().copied().collect(),
    }
}

/// Every case whose alerts differ from what it expects, described.
fn wrong_alerts(cases: &[Case], alerts: &BTreeMap<usize, BTreeSet<u64>>) -> Vec<String> {
    cases
        .iter()
        .enumerate()
        .filter_map(|(i, case)| {
            let got = alerts.get(&i).cloned().unwrap_or_default();
            (got != case.alerts).then(|| {
                format!(
                    "{}: expected {:?}, got {got:?}",
                    case.conversation, case.alerts
                )
            })
        })
        .collect()
}

#[test]
fn exactly_the_listed_values_alert_on_real_traffic() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cert = dir.path().join("server.der");
    let out = run(Command::new("python3").arg(script()).arg("cert").arg(&cert));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cert_sha1 = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let other_cert = dir.path().join("other.der");
    let out = run(Command::new("python3")
        .arg(script())
        .arg("cert")
        .arg(&other_cert));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The JA3 of the script's fixed client hello, computed by hand from its fields:
    // md5("771,49199-47,0-10-11,23-24,0") (with an SNI; the extension 0 is the SNI).
    let ja3_with_sni = "29d829fe69486c5df0e94ca8816ef1b6";
    let items = vec![
        item(1, IocKind::Domain, "evil.cy", Some("botnet_cc")),
        item(2, IocKind::Ipv4, "86.54.24.29", None),
        item(3, IocKind::Ipv6, "2001:db8:bad::1", None),
        item(
            4,
            IocKind::Url,
            "http://files.example/i",
            Some("malware_download"),
        ),
        item(5, IocKind::Url, "http://pipe.example/a|b\"c;d", None),
        item(6, IocKind::Url, "http://enc.example/a%20b", None),
        item(7, IocKind::Url, "https://share.example/payload.exe", None),
        item(8, IocKind::Url, "https://c2.example/", None),
        item(9, IocKind::IpPort, "198.51.100.7:4444", None),
        item(10, IocKind::X509Sha1, &cert_sha1, None),
        item(11, IocKind::Url, "http://203.0.113.9:8080/gate.php", None),
        item(12, IocKind::Cidr, "192.0.2.128/25", None),
    ];
    let (rules_path, text) = write_rules(dir.path(), &items);
    suricata_loads(&rules_path, dir.path(), rule_count(&text));
    assert!(
        text.contains("# left out: 1 https URLs with a path"),
        "{text}"
    );
    // The JA3 rule needs its own file: the ClientHello of every TLS case carries the same JA3.
    let sid = |id: u64, n: u64| suricata::sid(id, n).unwrap_or_else(|| panic!("sid {id}/{n}"));

    let srv = "198.18.0.1"; // an address no rule lists (benchmarking range, RFC 2544)
    let dns = |name: &str| json!({"kind": "dns", "dst": srv, "name": name});
    let http = |dst: &str, port: u16, host: &str, target: &str| json!({"kind": "http", "dst": dst, "port": port, "host": host, "target": target});
    let tls = |dst: &str, sni: Option<&str>, cert: &Path| json!({"kind": "tls", "dst": dst, "port": 443, "sni": sni, "cert": cert});
    let cases = vec![
        // Domains: on a label boundary, in DNS, TLS SNI and the HTTP host.
        case(dns("evil.cy"), &[sid(1, 0)]),
        case(dns("sub.evil.cy"), &[sid(1, 0)]),
        case(dns("notevil.cy"), &[]),
        case(dns("evil.cy.example"), &[]),
        case(tls(srv, Some("WWW.Evil.CY"), &other_cert), &[sid(1, 1)]),
        case(tls(srv, Some("notevil.cy"), &other_cert), &[]),
        case(http(srv, 80, "evil.cy", "/anything"), &[sid(1, 2)]),
        case(http(srv, 80, "notevil.cy", "/anything"), &[]),
        // Addresses and networks: in the IP header, never as text.
        case(
            json!({"kind": "tcp", "dst": "86.54.24.29", "port": 80}),
            &[sid(2, 0)],
        ),
        case(
            json!({"kind": "tcp", "dst": "186.54.24.29", "port": 80}),
            &[],
        ),
        case(http(srv, 80, "86.54.24.29", "/"), &[]),
        case(tls(srv, Some("186.54.24.29.example"), &other_cert), &[]),
        case(
            json!({"kind": "udp", "dst": "2001:db8:bad::1", "port": 53, "src6": true}),
            &[sid(3, 0)],
        ),
        case(
            json!({"kind": "udp", "dst": "2001:db8:bad::2", "port": 53, "src6": true}),
            &[],
        ),
        case(
            json!({"kind": "tcp", "dst": "192.0.2.200", "port": 22}),
            &[sid(12, 0)],
        ),
        case(
            json!({"kind": "tcp", "dst": "192.0.2.100", "port": 22}),
            &[],
        ),
        // http URLs: exact host, exact target, the right buffer for escapes.
        case(http(srv, 80, "files.example", "/i"), &[sid(4, 0)]),
        case(http(srv, 80, "files.example", "/index.php"), &[]),
        case(http(srv, 80, "files.example", "/i?x=1"), &[]),
        case(http(srv, 80, "www.files.example", "/i"), &[]),
        case(http(srv, 80, "pipe.example", "/a|b\"c;d"), &[sid(5, 0)]),
        case(http(srv, 80, "pipe.example", "/a|b"), &[]),
        case(http(srv, 80, "enc.example", "/a%20b"), &[sid(6, 0)]),
        case(http(srv, 80, "enc.example", "/a%2520b"), &[]),
        case(
            http("203.0.113.9", 8080, "203.0.113.9:8080", "/gate.php"),
            &[sid(11, 0)],
        ),
        case(http("203.0.113.9", 80, "203.0.113.9", "/gate.php"), &[]),
        // https: a URL with a path gets no host-wide rule; a host-only URL matches its SNI.
        case(tls(srv, Some("share.example"), &other_cert), &[]),
        case(tls(srv, Some("c2.example"), &other_cert), &[sid(8, 0)]),
        case(tls(srv, Some("x.c2.example"), &other_cert), &[]),
        // ip:port: that port only, TCP and UDP.
        case(
            json!({"kind": "tcp", "dst": "198.51.100.7", "port": 4444}),
            &[sid(9, 0)],
        ),
        case(
            json!({"kind": "udp", "dst": "198.51.100.7", "port": 4444}),
            &[sid(9, 1)],
        ),
        case(
            json!({"kind": "tcp", "dst": "198.51.100.7", "port": 4445}),
            &[],
        ),
        // Certificates: the listed one alerts, another does not.
        case(tls(srv, None, &cert), &[sid(10, 0)]),
        case(tls(srv, None, &other_cert), &[]),
    ];
    let wrong = wrong_alerts(&cases, &alerts_on(dir.path(), &rules_path, &cases));
    assert!(wrong.is_empty(), "{}\nrules:\n{text}", wrong.join("\n"));

    // JA3: a rule for the hash of this client hello alerts on every conversation that sends it
    // with an SNI, and on nothing else.
    let ja3_dir = dir.path().join("ja3");
    std::fs::create_dir_all(&ja3_dir).unwrap_or_else(|e| panic!("{e}"));
    let (ja3_rules, ja3_text) =
        write_rules(&ja3_dir, &[item(20, IocKind::Ja3, ja3_with_sni, None)]);
    suricata_loads(&ja3_rules, &ja3_dir, 1);
    let ja3_cases = vec![
        case(tls(srv, Some("any.example"), &other_cert), &[sid(20, 0)]),
        case(tls(srv, None, &other_cert), &[]),
        case(http(srv, 80, "any.example", "/"), &[]),
    ];
    let wrong = wrong_alerts(&ja3_cases, &alerts_on(&ja3_dir, &ja3_rules, &ja3_cases));
    assert!(wrong.is_empty(), "{}\nrules:\n{ja3_text}", wrong.join("\n"));
}

/// Writes the cases as a pcap (each from its own client address), runs `suricata -r` with the
/// rules, and returns the sids that alerted per case.
fn alerts_on(dir: &Path, rules: &Path, cases: &[Case]) -> BTreeMap<usize, BTreeSet<u64>> {
    let mut clients = Vec::new();
    let spec: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut conv = c.conversation.clone();
            let six = conv["src6"].as_bool().unwrap_or(false)
                || conv["dst"].as_str().unwrap_or_default().contains(':');
            let src = if six {
                format!("fd00::{:x}", i + 1)
            } else {
                format!("10.0.{}.{}", i / 200, i % 200 + 1)
            };
            clients.push(src.clone());
            conv["src"] = json!(src);
            conv
        })
        .collect();
    let spec_path = dir.join("spec.json");
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    let pcap = dir.join("traffic.pcap");
    let out = run(Command::new("python3")
        .arg(script())
        .arg("pcap")
        .arg(&spec_path)
        .arg(&pcap));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap_or_else(|e| panic!("{e}"));
    let out = run(Command::new("suricata")
        .arg("-r")
        .arg(&pcap)
        .arg("-S")
        .arg(rules)
        .arg("-l")
        .arg(&logs)
        .args([
            "-k",
            "none",
            "--runmode",
            "single",
            "--set",
            "vars.address-groups.HOME_NET=[10.0.0.0/8,fd00::/8]",
        ]));
    assert!(
        out.status.success(),
        "suricata -r failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let eve = std::fs::read_to_string(logs.join("eve.json")).unwrap_or_else(|e| panic!("{e}"));
    let mut alerts: BTreeMap<usize, BTreeSet<u64>> = BTreeMap::new();
    for line in eve.lines() {
        let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if event["event_type"] != "alert" {
            continue;
        }
        let sid = event["alert"]["signature_id"].as_u64().unwrap_or(0);
        let ends = [event["src_ip"].as_str(), event["dest_ip"].as_str()];
        let case = clients.iter().position(|c| {
            let c: std::net::IpAddr = c.parse().unwrap_or_else(|e| panic!("{e}"));
            ends.iter()
                .flatten()
                .any(|e| e.parse::<std::net::IpAddr>().ok() == Some(c))
        });
        let case = case.unwrap_or_else(|| panic!("alert from no case: {line}"));
        alerts.entry(case).or_default().insert(sid);
    }
    alerts
}
