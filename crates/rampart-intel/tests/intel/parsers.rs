//! Every fixture under `../shared/fixtures/intel` parses, with expectations read off the files
//! by hand (or counted independently with Python's csv module, as noted).

use rampart_intel::{Format, IocKind};

use crate::harness::{parse_fixture, parse_ok, values};

#[test]
fn urlhaus_csv_recent() {
    let (records, summary) =
        parse_fixture(Format::UrlhausCsv, "abusech/urlhaus_csv_recent.excerpt.csv");
    assert_eq!(summary.problems, 0, "{:?}", summary.problem_samples);
    assert_eq!(records.len(), 10);
    let first = &records[0];
    assert_eq!(first.line, 10);
    assert_eq!(first.source_ref.as_deref(), Some("3786237"));
    assert_eq!(
        values(&records[..1]),
        ["url:http://182.126.120.150:58801/i"]
    );
    assert_eq!(first.first_seen, Some(1_772_107_520)); // 2026-02-26 12:05:20 UTC
    assert_eq!(first.tags, ["32-bit", "elf", "mips", "mozi"]);
    assert_eq!(first.status.as_deref(), Some("online"));
    assert_eq!(first.threat_type.as_deref(), Some("malware_download"));
    assert!(first.raw.starts_with("\"3786237\",\"2026-02-26 12:05:20\""));
    let last = &records[9];
    assert_eq!(last.tags, Vec::<String>::new(), "`None` is no tag");
    assert_eq!(last.last_seen, None, "empty last_online");
    assert_eq!(last.status.as_deref(), Some("offline"));
    assert!(values(&records[9..])[0].starts_with("url:https://www.dropbox.com/scl/fi/"));
}

#[test]
fn urlhaus_json_lines() {
    let (records, summary) = parse_fixture(
        Format::UrlhausJson,
        "abusech/elastic_test-abusechurl-fulljson.log",
    );
    assert_eq!(summary.problems, 0);
    assert_eq!(
        values(&records),
        [
            "url:http://178.141.56.23:57421/Mozi.m",
            "url:http://117.211.221.233:56051/bin.sh",
            "url:http://112.248.143.138:49487/i"
        ]
    );
    assert_eq!(records[0].first_seen, Some(1_710_355_750)); // 2024-03-13 18:49:10 UTC
    assert_eq!(records[1].line, 2);
    assert_eq!(records[1].tags, ["32-bit", "elf", "mips", "mozi"]);
}

#[test]
fn threatfox_csv_without_header_uses_the_documented_layout_and_reports_junk() {
    let (records, summary) = parse_fixture(
        Format::ThreatfoxCsv,
        "abusech/threatfox_csv_full.excerpt.csv",
    );
    assert_eq!(
        values(&records),
        ["ip_port:8.223.20.63:443", "ipv4:8.223.20.63"]
    );
    let r = &records[0];
    assert_eq!(r.line, 8);
    assert_eq!(r.source_ref.as_deref(), Some("1301606"));
    assert_eq!(r.malware, ["win.cobalt_strike"]);
    assert_eq!(r.confidence, Some(100));
    assert_eq!(r.threat_type.as_deref(), Some("botnet_cc"));
    assert_eq!(r.tags, ["cobaltstrike"]);
    assert_eq!(r.reporter.as_deref(), Some("abuse_ch"));
    // The README's "[...more records...]" line is not a row.
    assert_eq!(summary.problems, 1);
    assert_eq!(summary.problem_samples[0].line, 9);
    assert!(
        summary.notes.iter().any(|n| n.contains("no header line")),
        "{:?}",
        summary.notes
    );
}

#[test]
fn threatfox_api_objects_split_ipv6_ip_port_on_the_last_colon() {
    let (records, summary) = parse_fixture(
        Format::ThreatfoxJson,
        "abusech/elastic_test-threatfox-ndjson.excerpt.log",
    );
    assert_eq!(summary.problems, 0, "{:?}", summary.problem_samples);
    assert_eq!(records.len(), 4);
    assert_eq!(
        values(&records[..1]),
        ["ip_port:[2a02:cf40:1::5]:40669", "ipv6:2a02:cf40:1::5"]
    );
    assert_eq!(records[0].malware, ["win.redline_stealer"]);
    assert_eq!(records[0].first_seen, Some(1_659_699_615)); // 2022-08-05 11:40:15 UTC
    assert_eq!(values(&records[1..2]), ["url:http://malaikahlowry33.top/"]);
    assert_eq!(records[1].confidence, Some(80));
}

#[test]
fn threatfox_json_export_keyed_by_id() {
    let doc = br#"{
 "1301606": [
  {"ioc_value": "8.223.20.63:443", "ioc_type": "ip:port", "threat_type": "botnet_cc", "malware": "win.cobalt_strike",
   "malware_printable": "Cobalt Strike", "first_seen_utc": "2024-07-16 05:25:33", "last_seen_utc": null,
   "confidence_level": 100, "reference": null, "reporter": "abuse_ch", "tags": "CobaltStrike,c2"}
 ],
 "1301607": [
  {"ioc_value": "EVIL.example.com", "ioc_type": "domain", "malware_printable": "Unknown malware", "tags": null}
 ]
}"#;
    let (records, summary) = parse_ok(Format::ThreatfoxJson, doc);
    assert_eq!(summary.problems, 0);
    assert_eq!(
        values(&records),
        [
            "ip_port:8.223.20.63:443",
            "ipv4:8.223.20.63",
            "domain:evil.example.com"
        ]
    );
    assert_eq!(records[0].source_ref.as_deref(), Some("1301606"));
    assert_eq!(records[0].line, 3);
    assert_eq!(records[0].tags, ["cobaltstrike", "c2"]);
    assert_eq!(records[1].source_ref.as_deref(), Some("1301607"));
    assert_eq!(records[1].line, 8);
    assert!(records[1].malware.is_empty());
}

#[test]
fn feodo_csv_uncommented_header() {
    let (records, summary) = parse_fixture(
        Format::FeodoCsv,
        "abusech/feodo_ipblocklist_csv.excerpt_2021.csv",
    );
    assert_eq!(summary.problems, 0);
    assert_eq!(records.len(), 6);
    assert_eq!(
        values(&records[..1]),
        ["ipv4:67.213.75.205", "ip_port:67.213.75.205:443"]
    );
    assert_eq!(records[0].malware, ["dridex"]);
    assert_eq!(records[0].status.as_deref(), Some("offline"));
    assert_eq!(records[0].last_seen, Some(1_629_244_800)); // 2021-08-18
}

#[test]
fn feodo_json_array() {
    let doc = br#"[
{"ip_address":"51.178.161.32","port":4643,"status":"online","hostname":null,"as_number":16276,"as_name":"OVH","country":"FR","first_seen":"2021-01-17 07:44:46","last_online":"2021-08-18","malware":"Dridex"},
{"ip_address":"not-an-ip","port":1,"malware":"Dridex"}
]"#;
    let (records, summary) = parse_ok(Format::FeodoJson, doc);
    assert_eq!(
        values(&records),
        ["ipv4:51.178.161.32", "ip_port:51.178.161.32:4643"]
    );
    assert_eq!(summary.problems, 1);
    assert_eq!(summary.problem_samples[0].line, 3);
    assert_eq!(
        summary.problem_samples[0].field.as_deref(),
        Some("ip_address")
    );
}

#[test]
fn malwarebazaar_rows_are_hash_equivalence_sets() {
    let (records, summary) = parse_fixture(
        Format::MalwarebazaarCsv,
        "abusech/malwarebazaar_csv_full.dump_20260226.csv",
    );
    assert_eq!(summary.problems, 0, "{:?}", summary.problem_samples);
    // Counted with Python's csv module (skipinitialspace): 39 rows, 209 non-null hashes.
    assert_eq!(records.len(), 39);
    assert_eq!(summary.indicators, 209);
    let first = &records[0];
    let kinds: Vec<IocKind> = first.indicators.iter().map(|i| i.kind).collect();
    assert_eq!(
        kinds,
        [
            IocKind::Sha256,
            IocKind::Md5,
            IocKind::Sha1,
            IocKind::Ssdeep,
            IocKind::Tlsh
        ]
    );
    assert_eq!(
        first.indicators[1].value,
        "9363fa2625198beb1fcce0ef07f558ff"
    );
    assert_eq!(
        first.indicators[3].value,
        "3072:pNvCknyrs4RvRYNth2oWtyWQhJDyG3h4UkHIqmDzqVIjbitLgJ8yIk3:rqrs0vR8CyWwJDyGR4ejDzmLcik3",
        "ssdeep keeps its case"
    );
    assert!(first.indicators[4].value.starts_with("t199f33ad7"));
    assert!(first.malware.is_empty(), "signature n/a");
    let mirai = records.iter().filter(|r| r.malware == ["mirai"]).count();
    assert_eq!(mirai, 17);
}

#[test]
fn sslbl_certificate_fingerprints() {
    let (records, summary) = parse_fixture(Format::SslblCsv, "abusech/sslbl_sslblacklist_1.csv");
    assert_eq!(summary.problems, 0);
    assert_eq!(records.len(), 285); // `grep -c '^20'`
    assert_eq!(
        values(&records[..1]),
        ["x509_sha1:854c68ab7ad70b6f95f76ec64b8a46c145997629"]
    );
    assert_eq!(records[0].malware, ["asyncrat"]);
    assert_eq!(records[0].threat_type.as_deref(), Some("botnet_cc"));
}

#[test]
fn kev_json_full_catalogue() {
    let (records, summary) =
        parse_fixture(Format::KevJson, "kev/known_exploited_vulnerabilities.json");
    assert_eq!(summary.problems, 0);
    assert_eq!(records.len(), 1404);
    // 293 entries say knownRansomwareCampaignUse = Known (reference notes).
    assert_eq!(
        records
            .iter()
            .filter(|r| r.tags.iter().any(|t| t == "ransomware"))
            .count(),
        293
    );
    assert_eq!(values(&records[..1]), ["cve:CVE-2025-48384"]);
    assert_eq!(
        records[0].description.as_deref(),
        Some("Git Git: Git Link Following Vulnerability")
    );
    assert_eq!(records[0].tags, ["cwe-59", "cwe-436"]);
    assert_eq!(records[0].first_seen, Some(1_756_080_000)); // 2025-08-25
    assert_eq!(records[0].line, 7);
}

#[test]
fn kev_json_head_and_csv_agree() {
    let (json, _) = parse_fixture(
        Format::KevJson,
        "kev/known_exploited_vulnerabilities.head5.json",
    );
    let (csv, summary) = parse_fixture(
        Format::KevCsv,
        "kev/known_exploited_vulnerabilities.head5.csv",
    );
    assert_eq!(summary.problems, 0);
    assert_eq!(values(&json), values(&csv));
    assert_eq!(json.len(), 5);
    for (j, c) in json.iter().zip(&csv) {
        assert_eq!(j.description, c.description);
        assert_eq!(j.tags, c.tags);
        assert_eq!(j.first_seen, c.first_seen);
        assert_eq!(j.reference, c.reference);
    }
}

#[test]
fn otx_pulses_and_export_lines() {
    let (records, summary) = parse_fixture(
        Format::OtxJson,
        "other/intelmq_alienvault_test_parser_otx.data",
    );
    let kinds: std::collections::BTreeSet<IocKind> = records
        .iter()
        .flat_map(|r| r.indicators.iter().map(|i| i.kind))
        .collect();
    assert!(
        kinds.contains(&IocKind::Url)
            && kinds.contains(&IocKind::Cve)
            && kinds.contains(&IocKind::Email)
    );
    assert_eq!(values(&records[..1]), ["url:http://107.6.172.54/woolen/"]);
    assert!(
        records[0]
            .description
            .as_deref()
            .unwrap_or_default()
            .starts_with("The Spy Kittens Are Back: Rocket Kitten 2")
    );
    for p in &summary.problem_samples {
        assert!(p.field.as_deref() == Some("indicator"), "{p}");
    }
    let (lines, summary) = parse_fixture(
        Format::OtxJson,
        "other/elastic_test-otx-sample-ndjson.excerpt.log",
    );
    assert_eq!(summary.problems, 0);
    assert_eq!(
        values(&lines),
        [
            "ipv4:89.160.20.156",
            "md5:90421f8531f963d81cf54245b72cde80",
            "domain:ip.anysrc.net",
            "sha256:d8c70ca70fd3555a0828fede6cc1f59e2c320ede80157039b6a2f09c336d5f7a",
            "sha1:a5b59f7d133e354dfc73f40517aab730f322f0ef",
            "domain:maper.info",
            "url:http://www.playboysplus.com/"
        ]
    );
}

#[test]
fn phishtank_json_entry_and_csv() {
    let entry = String::from_utf8(crate::harness::read(
        "other/phishtank_online-valid.entry.json",
    ))
    .unwrap_or_default();
    // The fixture is one entry cut out of the array, with its trailing comma.
    let doc = format!("[{}]", entry.trim().trim_end_matches(','));
    let (records, summary) = parse_ok(Format::PhishtankJson, doc.as_bytes());
    assert_eq!(summary.problems, 0);
    assert_eq!(records.len(), 1);
    assert!(
        values(&records)[0]
            .starts_with("url:https://srllawyers.com/10e099145e3c91cd94ccb9bdc50d0495/")
    );
    assert_eq!(records[0].source_ref.as_deref(), Some("9353620"));
    assert_eq!(records[0].threat_type.as_deref(), Some("phishing"));
    assert!(
        records[0].raw.contains("104.21.57.191"),
        "hosting details stay in the raw record"
    );
    let csv = b"phish_id,url,phish_detail_url,submission_time,verified,verification_time,online,target\n\
123,https://login.example-bank.com/x,http://www.phishtank.com/phish_detail.php?phish_id=123,2026-02-25T11:12:28+00:00,yes,2026-02-25T11:22:24+00:00,yes,Example Bank\n";
    let (records, summary) = parse_ok(Format::PhishtankCsv, csv);
    assert_eq!(summary.problems, 0);
    assert_eq!(values(&records), ["url:https://login.example-bank.com/x"]);
    assert_eq!(records[0].tags, ["target:example bank"]);
}

#[test]
fn openphish_rejects_empty_labels() {
    let (records, summary) = parse_fixture(Format::Openphish, "other/intelmq_openphish_feed.txt");
    assert!(records.is_empty());
    assert_eq!(summary.problems, 2);
    assert_eq!(summary.problem_samples[0].line, 1);
    assert!(
        summary.problem_samples[0].message.contains("empty label"),
        "{}",
        summary.problem_samples[0]
    );
}

#[test]
fn spamhaus_drop_text_and_json_lines() {
    let (records, summary) = parse_fixture(Format::SpamhausDrop, "other/intelmq_spamhaus_drop.txt");
    assert_eq!(summary.problems, 0);
    assert_eq!(values(&records), ["cidr:1.4.0.0/17", "cidr:2a06:e480::/29"]);
    assert_eq!(records[0].source_ref.as_deref(), Some("SBL256893"));
    let (records, _) = parse_fixture(Format::SpamhausDrop, "other/intelmq_spamhaus_asndrop.txt");
    assert_eq!(values(&records), ["asn:AS260", "asn:AS10516"]);
    assert_eq!(
        records[0].description.as_deref(),
        Some("AE | XCONNECT24 - Xconnect24 Inc., US")
    );
    let lines = br#"{"cidr":"1.10.16.0/20","sblid":"SBL256894","rir":"apnic"}
{"cidr":"1.10.16.0/20","sblid":"SBL256894","rir":"apnic"}
{"asn":6939,"rir":"arin","domain":"he.net","cc":"US","asname":"HURRICANE"}
{"type":"metadata","timestamp":1700000000,"size":100,"records":2,"copyright":"x","terms":"y"}
"#;
    let (records, summary) = parse_ok(Format::SpamhausDrop, lines);
    assert_eq!(summary.problems, 0);
    assert_eq!(
        values(&records),
        ["cidr:1.10.16.0/20", "cidr:1.10.16.0/20", "asn:AS6939"]
    );
}

#[test]
fn plain_lists() {
    for (rel, count, first) in [
        (
            "other/cinsscore_cinsscore_sample.txt",
            10,
            "ipv4:1.0.164.165",
        ),
        (
            "other/ipsum_ipsum_level_8_sample.txt",
            20,
            "ipv4:45.148.10.151",
        ),
        (
            "other/vxvault_vxvault_sample.txt",
            10,
            "url:https://cloudaxis.cc/gsmft/yueu/fkvqld/tvqqwh/ushu/22.exe",
        ),
    ] {
        let (records, summary) = parse_fixture(Format::Plain, rel);
        assert_eq!(summary.problems, 0, "{rel}: {:?}", summary.problem_samples);
        assert_eq!(records.len(), count, "{rel}");
        assert_eq!(values(&records)[0], first, "{rel}");
    }
    let text = b"# comment\n; another\n\n1.2.3.4 # inline\nhxxp://evil[.]example/x\nevil[.]example\n10.0.0.0/8\tnote\nnot a value\n";
    let (records, summary) = parse_ok(Format::Plain, text);
    assert_eq!(
        values(&records),
        [
            "ipv4:1.2.3.4",
            "url:http://evil.example/x",
            "domain:evil.example",
            "cidr:10.0.0.0/8"
        ]
    );
    assert_eq!(summary.problems, 1);
    assert_eq!(summary.problem_samples[0].line, 8);
}

#[test]
fn generic_csv_by_header_name() {
    let (records, summary) = parse_fixture(Format::Csv, "other/viriback_dump.csv");
    assert_eq!(summary.problems, 0, "{:?}", summary.problem_samples);
    assert_eq!(records.len(), 10);
    assert_eq!(
        values(&records[..1]),
        [
            "url:http://officeman.tk/images/admin.php",
            "ipv4:207.180.230.128"
        ]
    );
    assert_eq!(records[0].malware, ["pony"]);
    assert_eq!(records[0].first_seen, Some(1_767_398_400)); // 03-01-2026, day first
}

#[test]
fn misp_feed_event_takes_only_ids_attributes() {
    let (records, summary) = parse_fixture(
        Format::MispEvent,
        "misp/57c4445b-c548-4654-af0b-4be3950d210f.json",
    );
    assert_eq!(summary.problems, 0);
    assert_eq!(
        values(&records),
        [
            "filename:3Z4wnG9603it23y.exe",
            "md5:0749bae92ca336a02c83d126e04ec628",
            "sha1:77b0c41b7d340b8a3d903f21347bbf06aa766b5b",
            "sha256:b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68",
            "other:Software\\Wow6432Node\\Microsoft\\Windows\\CurrentVersion\\Run|%TEMP%\\3Z4wnG9603it23y.exe"
        ]
    );
    assert_eq!(
        records[1].description.as_deref(),
        Some("Ransomware - Xorist")
    );
    assert!(records[1].tags.contains(&"tlp:white".to_owned()));
    assert!(
        records[1]
            .tags
            .contains(&"circl:incident-classification=\"malware\"".to_owned())
    );
    assert!(
        summary
            .notes
            .iter()
            .any(|n| n.contains("4 attribute(s) not flagged to_ids")),
        "{:?}",
        summary.notes
    );
    let (records, _) = parse_fixture(Format::MispEvent, "misp/misp_event.json");
    assert!(records.is_empty(), "both attributes are to_ids=false");
}

#[test]
fn misp_composite_attributes() {
    let doc = br#"{"Event":{"info":"c2","Attribute":[
      {"type":"ip-dst|port","value":"1.2.3.4|8080","to_ids":true,"uuid":"a"},
      {"type":"domain|ip","value":"evil.example|5.6.7.8","to_ids":true,"uuid":"b"},
      {"type":"filename|sha256","value":"x.exe|B3C4AE251F8094FA15B510051835C657EAEF2A6CEA46075D3AEC964B14A99F68","to_ids":true},
      {"type":"ip-dst","value":"10.0.0.0/8","to_ids":"1"},
      {"type":"ip-dst|port","value":"1.2.3.4","to_ids":true}
    ],"Tag":[{"name":"misp-galaxy:mitre-attack-pattern=\"Spearphishing Link - T1566.002\""}]}}"#;
    let (records, summary) = parse_ok(Format::MispEvent, doc);
    assert_eq!(
        values(&records),
        [
            "ipv4:1.2.3.4",
            "ip_port:1.2.3.4:8080",
            "domain:evil.example",
            "ipv4:5.6.7.8",
            "filename:x.exe",
            "sha256:b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68",
            "cidr:10.0.0.0/8"
        ]
    );
    assert_eq!(records[0].attack, ["T1566.002"]);
    assert_eq!(summary.problems, 1, "the composite without `|`");
}

#[test]
fn stix_poisonivy_report() {
    let (records, summary) = parse_fixture(Format::Stix, "stix/poisonivy.json");
    // 25 indicators and 6 CVE vulnerabilities; one pattern holds `domain autuo.xicp.net`, a
    // value with a space.
    assert_eq!(records.len(), 31);
    let cves = records
        .iter()
        .filter(|r| r.threat_type.as_deref() == Some("vulnerability"))
        .count();
    assert_eq!(cves, 6);
    assert!(values(&records).contains(&"cve:CVE-2012-0158".to_owned()));
    assert_eq!(summary.problems, 1);
    assert!(
        summary.problem_samples[0]
            .message
            .contains("domain autuo.xicp.net")
    );
    let all = values(&records);
    assert!(all.contains(&"domain:www.webserver.freetcp.com".to_owned()));
    assert!(all.contains(&"ipv4:219.90.112.203".to_owned()));
    // 23 of the 25 indicators `indicate` one of the report's "PIVY Variant (…)" malware objects
    // (counted with Python over the relationships); one indicates only a campaign, one nothing.
    let pivy = records
        .iter()
        .filter(|r| r.malware.iter().any(|m| m.starts_with("pivy variant (")))
        .count();
    assert_eq!(pivy, 23);
    assert!(
        records
            .iter()
            .any(|r| r.malware.is_empty() && r.tags.iter().any(|t| t.starts_with("campaign:")))
    );
    // OR fan-out: the microsofta… pattern names 4 domains and 7 addresses.
    let big = records
        .iter()
        .find(|r| {
            r.indicators
                .iter()
                .any(|i| i.value == "microsofta.byinter.net")
        })
        .map(|r| r.indicators.len());
    assert_eq!(big, Some(11));
}

#[test]
fn stix_examples_simple_and_complex_patterns() {
    let (records, summary) = parse_fixture(Format::Stix, "stix/indicator-for-c2-ip-address.json");
    assert_eq!(summary.problems, 0);
    assert_eq!(values(&records), ["ipv4:10.0.0.0"]);
    assert_eq!(
        records[0].source_ref.as_deref(),
        Some("indicator--33fe3b22-0201-47cf-85d0-97c02164528d")
    );
    let (records, summary) = parse_fixture(
        Format::Stix,
        "stix/malicious-email-indicator-with-attachment.json",
    );
    assert_eq!(summary.problems, 0);
    let all = values(&records);
    assert!(
        all.iter().all(|v| v.starts_with("stix_pattern:")),
        "{all:?}"
    );
    assert!(
        all.iter()
            .any(|v| v.contains("MATCHES '^Final Report.+\\\\.exe$'")),
        "{all:?}"
    );
    for rel in [
        "stix/indicator-to-campaign-relationship.json",
        "stix/indicators-for-C2-with-COA.json",
        "stix/infrastructure.json",
    ] {
        let (_, summary) = parse_fixture(Format::Stix, rel);
        assert_eq!(summary.problems, 0, "{rel}");
    }
    let (records, _) = parse_fixture(Format::Stix, "stix/indicator-to-campaign-relationship.json");
    assert!(
        records
            .iter()
            .all(|r| r.tags.iter().any(|t| t.starts_with("campaign:"))),
        "{records:?}"
    );
}

/// Every fixture file and the format its parser reads it with.
const FIXTURES: &[(Format, &str)] = &[
    (Format::UrlhausCsv, "abusech/urlhaus_csv_recent.excerpt.csv"),
    (
        Format::UrlhausJson,
        "abusech/elastic_test-abusechurl-fulljson.log",
    ),
    (
        Format::ThreatfoxCsv,
        "abusech/threatfox_csv_full.excerpt.csv",
    ),
    (
        Format::ThreatfoxJson,
        "abusech/elastic_test-threatfox-ndjson.excerpt.log",
    ),
    (
        Format::FeodoCsv,
        "abusech/feodo_ipblocklist_csv.excerpt_2021.csv",
    ),
    (
        Format::MalwarebazaarCsv,
        "abusech/malwarebazaar_csv_full.dump_20260226.csv",
    ),
    (Format::SslblCsv, "abusech/sslbl_sslblacklist_1.csv"),
    (Format::KevJson, "kev/known_exploited_vulnerabilities.json"),
    (
        Format::KevJson,
        "kev/known_exploited_vulnerabilities.head5.json",
    ),
    (
        Format::KevCsv,
        "kev/known_exploited_vulnerabilities.head5.csv",
    ),
    (
        Format::OtxJson,
        "other/intelmq_alienvault_test_parser_otx.data",
    ),
    (
        Format::OtxJson,
        "other/elastic_test-otx-sample-ndjson.excerpt.log",
    ),
    (Format::Plain, "other/cinsscore_cinsscore_sample.txt"),
    (Format::Plain, "other/ipsum_ipsum_level_8_sample.txt"),
    (Format::Plain, "other/vxvault_vxvault_sample.txt"),
    (Format::Openphish, "other/intelmq_openphish_feed.txt"),
    (Format::SpamhausDrop, "other/intelmq_spamhaus_drop.txt"),
    (Format::SpamhausDrop, "other/intelmq_spamhaus_asndrop.txt"),
    (Format::Csv, "other/viriback_dump.csv"),
    (
        Format::MispEvent,
        "misp/57c4445b-c548-4654-af0b-4be3950d210f.json",
    ),
    (Format::MispEvent, "misp/misp_event.json"),
    (Format::Stix, "stix/poisonivy.json"),
    (Format::Stix, "stix/indicator-for-c2-ip-address.json"),
    (Format::Stix, "stix/indicator-to-campaign-relationship.json"),
    (Format::Stix, "stix/indicators-for-C2-with-COA.json"),
    (Format::Stix, "stix/infrastructure.json"),
    (
        Format::Stix,
        "stix/malicious-email-indicator-with-attachment.json",
    ),
    (Format::Stix, "stix/bundle.json"),
    (Format::Stix, "misp/stix2.json"),
];

#[test]
fn every_fixture_file_parses_in_its_format() {
    let cases = FIXTURES;
    for (format, rel) in cases {
        let result = rampart_intel::parse_bytes(
            *format,
            &crate::harness::read(rel),
            &rampart_intel::Limits::default(),
        );
        // stix/bundle.json is the JSON *schema* of a bundle, not a bundle: a clear shape error.
        match (rel, result) {
            (&"stix/bundle.json", Err(e)) => {
                assert!(
                    e.to_string()
                        .contains("top-level `type` is \"object\": expected a bundle"),
                    "{e}"
                )
            }
            (_, Ok(_)) => {}
            (_, Err(e)) => panic!("{rel}: {e}"),
        }
    }
}

#[test]
fn stix_single_objects_and_taxii_envelopes_are_read() {
    let indicator = r#"{"type": "indicator", "spec_version": "2.1",
        "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "created": "2026-01-05T10:00:00.000Z", "modified": "2026-01-05T10:00:00.000Z",
        "pattern": "[domain-name:value = 'evil.example']", "pattern_type": "stix",
        "valid_from": "2026-01-05T10:00:00Z"}"#;
    let (records, summary) = parse_ok(Format::Stix, indicator.as_bytes());
    assert_eq!(summary.problems, 0);
    assert_eq!(values(&records), ["domain:evil.example"]);
    // A TAXII 2.1 envelope, as a collection's objects endpoint returns it.
    let envelope = format!(
        r#"{{"more": false, "objects": [{indicator}, {}]}}"#,
        indicator
            .replace("8e2e2d2b", "9e2e2d2b")
            .replace("evil.example", "worse.example")
    );
    let (records, _) = parse_ok(Format::Stix, envelope.as_bytes());
    assert_eq!(
        values(&records),
        ["domain:evil.example", "domain:worse.example"]
    );
    // An object whose id is not of its type is neither.
    let odd = r#"{"type": "indicator", "id": "malware--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"}"#;
    let err = rampart_intel::parse_bytes(
        Format::Stix,
        odd.as_bytes(),
        &rampart_intel::Limits::default(),
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(
        err.contains("expected a bundle, a TAXII envelope (`objects`) or one STIX object"),
        "{err}"
    );
}

/// `intel ingest` without `--format` sniffs the format: every real fixture is recognised as the
/// format its parser test reads it with (OpenPhish's list is plain lines, and says so).
#[test]
fn every_fixture_is_detected_as_its_format() {
    use rampart_intel::parse::{Detected, detect_format};
    for &(format, rel) in FIXTURES {
        if rel == "stix/bundle.json" {
            continue; // a JSON schema, not a feed: below
        }
        // OpenPhish's feed is plain lines; only its name says they are all phishing.
        let expected = if format == Format::Openphish {
            Format::Plain
        } else {
            format
        };
        match detect_format(&crate::harness::read(rel)) {
            Detected::Format(found, _) => assert_eq!(found, expected, "{rel}"),
            other => panic!("{rel}: {other:?}"),
        }
    }
    // The JSON *schema* of a bundle is JSON of no known feed: the candidates are named.
    match detect_format(&crate::harness::read("stix/bundle.json")) {
        Detected::Undecided { candidates, .. } => assert!(candidates.contains(&Format::Stix)),
        other => panic!("{other:?}"),
    }
}
