//! The ingestion pipeline against real stores: SQLite and PostgreSQL (fresh schema per test).

use std::sync::RwLock;

use rampart_feeds::ingest::{LiveIndex, ingest, load_allowlists, load_decay_models, load_index};
use rampart_intel::score::DecayModels;
use rampart_intel::{Format, Index, IocKind, Limits, canonicalize};
use rampart_store::{IntelFeed, NewIntelFeed, Store};

use crate::harness::read;

const NOW: i64 = 1_780_000_000;
const DAY: i64 = 86_400;

/// Runs `async fn name(store: &Store)` on both backends.
macro_rules! backend_test {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let t = rampart_store::testing::sqlite().await;
                super::$name(&t.store).await;
                t.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(t) = rampart_store::testing::postgres().await else {
                    return;
                };
                super::$name(&t.store).await;
                t.finish().await;
            }
        }
    };
}

async fn feed(store: &Store, name: &str, format: &str, reliability: i64) -> IntelFeed {
    feed_tlp(store, name, format, reliability, "clear").await
}

async fn feed_tlp(
    store: &Store,
    name: &str,
    format: &str,
    reliability: i64,
    tlp: &str,
) -> IntelFeed {
    store
        .intel_put_feed(
            &NewIntelFeed {
                name: name.into(),
                format: format.into(),
                url: None,
                interval_secs: 3600,
                reliability,
                tlp: tlp.into(),
                terms: None,
                ttl_secs: 30 * DAY,
            },
            NOW,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn run(
    store: &Store,
    feed: &IntelFeed,
    format: Format,
    bytes: Vec<u8>,
    now: i64,
    index: Option<LiveIndex<'_>>,
) -> rampart_feeds::ingest::IngestReport {
    ingest(
        store,
        feed,
        format,
        Box::new(std::io::Cursor::new(bytes)),
        Limits::default(),
        now,
        index,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

async fn reingest_is_idempotent_and_counts_are_exact(store: &Store) {
    let urlhaus = feed(store, "urlhaus", "urlhaus-csv", 80).await;
    let bytes = read("abusech/urlhaus_csv_recent.excerpt.csv");
    let first = run(
        store,
        &urlhaus,
        Format::UrlhausCsv,
        bytes.clone(),
        NOW,
        None,
    )
    .await;
    assert_eq!(first.parse.records, 10);
    assert_eq!(first.stored.new_indicators, 10);
    assert_eq!(first.stored.new_observations, 10);
    assert_eq!(first.stored.records, 10);
    let again = run(store, &urlhaus, Format::UrlhausCsv, bytes, NOW + 3600, None).await;
    assert_eq!(again.stored.new_indicators, 0);
    assert_eq!(again.stored.updated_indicators, 10);
    assert_eq!(again.stored.new_observations, 0);
    let counts = store
        .intel_counts(NOW + 3600)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(counts, [(IocKind::Url, 10, 0)]);
}
backend_test!(reingest_is_idempotent_and_counts_are_exact);

/// A blocklist of `range` addresses, one per line.
fn addresses(range: std::ops::Range<u32>) -> Vec<u8> {
    range
        .map(|i| format!("45.{}.{}.7\n", i / 256, i % 256))
        .collect::<String>()
        .into_bytes()
}

/// Thousands of rows go to SQLite as several multi-row statements of different sizes: every
/// row is stored once, and a re-fetch and a second feed find exactly the rows already there.
async fn batches_of_thousands_are_stored_exactly(store: &Store) {
    let a = feed(store, "list-a", "plain", 70).await;
    let b = feed(store, "list-b", "plain", 70).await;
    let first = run(store, &a, Format::Plain, addresses(0..2_500), NOW, None).await;
    assert_eq!(first.stored.new_indicators, 2_500);
    assert_eq!(first.stored.records, 2_500);
    assert_eq!(first.stored.new_observations, 2_500);
    // The same feed again, half old and half new lines.
    let again = run(
        store,
        &a,
        Format::Plain,
        addresses(1_250..3_750),
        NOW + 3600,
        None,
    )
    .await;
    assert_eq!(again.stored.new_indicators, 1_250);
    assert_eq!(again.stored.updated_indicators, 1_250);
    assert_eq!(again.stored.records, 2_500);
    assert_eq!(again.stored.new_observations, 1_250);
    // Another feed listing old values: no new indicator, a new source for each.
    let other = run(
        store,
        &b,
        Format::Plain,
        addresses(0..2_100),
        NOW + 7200,
        None,
    )
    .await;
    assert_eq!(other.stored.new_indicators, 0);
    assert_eq!(other.stored.updated_indicators, 2_100);
    assert_eq!(other.stored.new_observations, 2_100);
    let counts = store
        .intel_counts(NOW + 7200)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(counts, [(IocKind::Ipv4, 3_750, 0)]);
}
backend_test!(batches_of_thousands_are_stored_exactly);

async fn one_indicator_many_sources(store: &Store) {
    let a = feed(store, "list-a", "plain", 90).await;
    let b = feed(store, "list-b", "plain", 40).await;
    run(
        store,
        &a,
        Format::Plain,
        b"1.2.3.4\n5.6.7.8\n".to_vec(),
        NOW,
        None,
    )
    .await;
    let report = run(
        store,
        &b,
        Format::Plain,
        b"1.2.3.4 # seen here too\n".to_vec(),
        NOW + 10,
        None,
    )
    .await;
    assert_eq!(report.stored.new_indicators, 0);
    assert_eq!(report.stored.new_observations, 1);
    let ind = store
        .intel_indicator(IocKind::Ipv4, "1.2.3.4")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("stored"));
    // Base score is the best observation: reliability 90 × default confidence 75 → 68.
    assert_eq!(ind.base_score, 68);
    assert_eq!(ind.first_reported, NOW);
    assert_eq!(ind.last_reported, NOW + 10);
    let obs = store
        .intel_observations(ind.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let feeds: Vec<&str> = obs.iter().map(|o| o.feed.as_str()).collect();
    assert_eq!(feeds, ["list-b", "list-a"], "newest fetch first");
    assert_eq!(
        obs[0].raw, "1.2.3.4 # seen here too",
        "raw line kept losslessly"
    );
    // What a lookup reads: the indicator and its sources in one query, the same order.
    let (with, sources) = store
        .intel_indicator_with_sources(IocKind::Ipv4, "1.2.3.4")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("stored"));
    assert_eq!((with.id, with.base_score), (ind.id, 68));
    assert_eq!((with.first_reported, with.last_reported), (NOW, NOW + 10));
    let described: Vec<(&str, i64, &str)> = sources
        .iter()
        .map(|o| (o.feed.as_str(), o.reliability, o.raw.as_str()))
        .collect();
    assert_eq!(
        described,
        [
            ("list-b", 40, "1.2.3.4 # seen here too"),
            ("list-a", 90, "1.2.3.4")
        ]
    );
    let (_, single) = store
        .intel_indicator_with_sources(IocKind::Ipv4, "5.6.7.8")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("stored"));
    assert_eq!(single.len(), 1, "only its own source");
    assert!(
        store
            .intel_indicator_with_sources(IocKind::Ipv4, "9.9.9.9")
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .is_none()
    );
}
backend_test!(one_indicator_many_sources);

async fn equivalence_sets_and_families_are_found_on_demand(store: &Store) {
    let mb = feed(store, "malwarebazaar", "malwarebazaar-csv", 90).await;
    run(
        store,
        &mb,
        Format::MalwarebazaarCsv,
        read("abusech/malwarebazaar_csv_full.dump_20260226.csv"),
        NOW,
        None,
    )
    .await;
    let md5 = store
        .intel_indicator(IocKind::Md5, "9363fa2625198beb1fcce0ef07f558ff")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("stored"));
    let related = store
        .intel_related_by_record(md5.id, 100)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let kinds: Vec<IocKind> = related.iter().map(|(k, _)| *k).collect();
    let expected = [
        IocKind::Sha1,
        IocKind::Sha256,
        IocKind::Ssdeep,
        IocKind::Tlsh,
    ];
    assert_eq!(kinds, expected);
    assert!(
        related
            .iter()
            .any(|(_, v)| v == "19d854caf81bc884c677bd941abc50b33716e188fa723991820b0ffa3ea7e93e")
    );
    // 17 Mirai rows; their hashes counted in full, listed up to the cap.
    let (total, listed) = store
        .intel_by_family("mirai", 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(total > 17, "{total}");
    assert_eq!(listed.len(), 10);
}
backend_test!(equivalence_sets_and_families_are_found_on_demand);

async fn the_index_is_rebuilt_from_the_store_and_updated_on_ingest(store: &Store) {
    let drop_feed = feed(store, "drop", "spamhaus-drop", 95).await;
    let index = RwLock::new(Index::new());
    let allow = load_allowlists(store)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let decay = DecayModels::builtin();
    let live = LiveIndex {
        index: &index,
        allow: &allow,
        decay: &decay,
    };
    run(
        store,
        &drop_feed,
        Format::SpamhausDrop,
        read("other/intelmq_spamhaus_drop.txt"),
        NOW,
        Some(live),
    )
    .await;
    let query = canonicalize(IocKind::Ipv4, "1.4.1.1").unwrap_or_else(|e| panic!("{e}"));
    {
        let live = index.read().unwrap_or_else(|e| panic!("{e}"));
        let hit = live
            .first(&query)
            .unwrap_or_else(|| panic!("1.4.1.1 is inside 1.4.0.0/17"));
        assert_eq!(
            live.ioc(hit.entry).map(|i| i.value),
            Some("1.4.0.0/17".into())
        );
        assert!(live.score(hit.entry).unwrap_or(0) > 60);
        assert!(!live.is_allowlisted(hit.entry));
    }
    // A feed listing a documentation address: the running index marks it allowlisted at once,
    // as a rebuild would, and the routable one beside it not.
    let plain = feed(store, "plain", "plain", 60).await;
    run(
        store,
        &plain,
        Format::Plain,
        b"192.0.2.44\n203.0.114.9\n".to_vec(),
        NOW,
        Some(live),
    )
    .await;
    {
        let guard = index.read().unwrap_or_else(|e| panic!("{e}"));
        for (value, allowlisted) in [("192.0.2.44", true), ("203.0.114.9", false)] {
            let q = canonicalize(IocKind::Ipv4, value).unwrap_or_else(|e| panic!("{e}"));
            let entry = guard
                .get(&q)
                .unwrap_or_else(|| panic!("{value} is indexed"));
            assert_eq!(guard.is_allowlisted(entry), allowlisted, "{value}");
        }
    }
    let rebuilt = load_index(
        store,
        NOW + DAY,
        &load_allowlists(store)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        &decay,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rebuilt.len(), 4);
    assert!(rebuilt.first(&query).is_some());
    // 30 days later nothing was observed again: expired, not loaded, then purged for real.
    let later = load_index(
        store,
        NOW + 31 * DAY,
        &load_allowlists(store)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        &decay,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(later.len(), 0);
    let counts = store
        .intel_counts(NOW + 31 * DAY)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(counts, [(IocKind::Ipv4, 0, 2), (IocKind::Cidr, 0, 2)]);
    let (indicators, records) = store
        .intel_purge(NOW + 31 * DAY)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Two networks (two DROP rows) and two addresses (one plain line each).
    assert_eq!((indicators, records), (4, 4));
    assert!(
        store
            .intel_counts(NOW + 31 * DAY)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .is_empty()
    );
}
backend_test!(the_index_is_rebuilt_from_the_store_and_updated_on_ingest);

async fn garbage_never_wipes_what_a_feed_delivered(store: &Store) {
    let f = feed(store, "feodo", "feodo-csv", 80).await;
    run(
        store,
        &f,
        Format::FeodoCsv,
        read("abusech/feodo_ipblocklist_csv.excerpt_2021.csv"),
        NOW,
        None,
    )
    .await;
    // An HTML error page where the CSV should be: every row rejected, nothing removed.
    let html = b"<html><body>502 Bad Gateway</body></html>\n".to_vec();
    let report = run(store, &f, Format::FeodoCsv, html, NOW + 60, None).await;
    assert_eq!(report.parse.records, 0);
    assert_eq!(report.parse.problems, 1);
    let counts = store
        .intel_counts(NOW + 60)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let live: i64 = counts.iter().map(|(_, live, _)| live).sum();
    assert_eq!(live, 12, "6 addresses and 6 ip:port pairs remain");
    // A truncated gzip download is an error, and also removes nothing.
    let result = ingest(
        store,
        &f,
        Format::FeodoCsv,
        Box::new(std::io::Cursor::new(vec![0x1f, 0x8b, 8, 0, 0])),
        Limits::default(),
        NOW + 120,
        None,
    )
    .await;
    assert!(result.is_err());
    let counts = store
        .intel_counts(NOW + 120)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(counts.iter().map(|(_, live, _)| live).sum::<i64>(), 12);
}
backend_test!(garbage_never_wipes_what_a_feed_delivered);

/// Technique ids, feeds and the strictest TLP from every source row reach the CSV export (each backend aggregates
/// them in its own JSON dialect).
async fn exports_carry_attack_techniques(store: &Store) {
    use rampart_feeds::export::export_all;
    use rampart_intel::export::ExportFormat;
    let a = feed(store, "tags-a", "csv", 80).await;
    let b = feed_tlp(store, "tags-b", "csv", 60, "amber").await;
    let csv_a =
        "url,tags,family\nhttp://dump.example/m.exe,\"T1003,attack.t1059.001,stealer\",Rover\n";
    let csv_b = "url,tags\nhttp://dump.example/m.exe,T1105\nhttp://plain.example/x,nothing\n";
    run(store, &a, Format::Csv, csv_a.into(), NOW, None).await;
    run(store, &b, Format::Csv, csv_b.into(), NOW, None).await;
    let allow = load_allowlists(store)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    let summary = export_all(
        store,
        &allow,
        &DecayModels::builtin(),
        ExportFormat::Csv,
        0,
        NOW,
        &mut out,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.written, 2);
    let text = String::from_utf8(out).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].ends_with(",malware,attack,feeds,tlp,sources"),
        "{text}"
    );
    let dump = lines
        .iter()
        .find(|l| l.contains("dump.example"))
        .unwrap_or(&"");
    // Both feeds, the stricter TLP of the two, two sources.
    assert!(
        dump.ends_with(",T1003;T1059.001;T1105,tags-a;tags-b,amber,2"),
        "{text}"
    );
    let plain = lines
        .iter()
        .find(|l| l.contains("plain.example"))
        .unwrap_or(&"");
    assert!(
        plain.ends_with(",,tags-b,amber,1"),
        "no techniques: empty field: {text}"
    );
}
backend_test!(exports_carry_attack_techniques);

/// A record is identified by its digest and its anchor, the smallest id among the indicators
/// it names. When a purge removes the anchor but the record lives on through its other
/// indicators, the record must move to the next anchor, or the next ingest of the same row
/// would store it a second time.
async fn a_record_outliving_its_anchor_is_recognised_after_a_purge(store: &Store) {
    let bazaar = feed(store, "bazaar", "malwarebazaar-csv", 80).await;
    let keeper = feed(store, "keeper", "plain", 60).await;
    // The header block and the first sample of the real dump: one record, three hashes.
    let dump = String::from_utf8(read("abusech/malwarebazaar_csv_full.dump_20260226.csv"))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut one_row: String = dump
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let sample = dump
        .lines()
        .find(|l| !l.starts_with('#'))
        .unwrap_or_else(|| panic!("no data row"));
    one_row.push_str(sample);
    one_row.push('\n');
    let first = run(
        store,
        &bazaar,
        Format::MalwarebazaarCsv,
        one_row.clone().into_bytes(),
        NOW,
        None,
    )
    .await;
    // Every hash of the sample (sha256, md5, sha1, ssdeep, tlsh…), as the parser reads them.
    let (parsed, _) = crate::harness::parse_ok(Format::MalwarebazaarCsv, one_row.as_bytes());
    let named = &parsed[0].indicators;
    assert!(named.len() >= 3, "{named:?}");
    assert_eq!(
        (first.stored.new_indicators, first.stored.records),
        (named.len() as u64, 1)
    );
    let mut stored = Vec::new();
    for ioc in named {
        let row = store
            .intel_indicator(ioc.kind, &ioc.value)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("{} stored", ioc.value));
        stored.push((row.id, ioc.kind, ioc.value.as_str()));
    }
    stored.sort();
    let anchor_value = stored[0].2;
    // Another feed keeps the plain hashes other than the anchor alive; the anchor (and the
    // fuzzy hashes, which a plain list cannot name) are not listed again.
    let others: Vec<(i64, &str)> = stored[1..]
        .iter()
        .filter(|(_, kind, _)| matches!(kind, IocKind::Md5 | IocKind::Sha1 | IocKind::Sha256))
        .map(|(id, _, value)| (*id, *value))
        .collect();
    assert!(!others.is_empty());
    let expiring = (named.len() - others.len()) as u64;
    let kept: String = others.iter().map(|(_, v)| format!("{v}\n")).collect();
    run(
        store,
        &keeper,
        Format::Plain,
        kept.into_bytes(),
        NOW + 20 * DAY,
        None,
    )
    .await;
    let (purged, orphans) = store
        .intel_purge(NOW + 31 * DAY)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (purged, orphans),
        (expiring, 0),
        "{anchor_value} and the unlisted hashes expired; the record lives on"
    );
    // The same row again: its anchor comes back with a new id, the record is the same one.
    let again = run(
        store,
        &bazaar,
        Format::MalwarebazaarCsv,
        one_row.into_bytes(),
        NOW + 32 * DAY,
        None,
    )
    .await;
    assert_eq!(
        (again.stored.new_indicators, again.stored.new_observations),
        (expiring, expiring)
    );
    for (id, value) in &others {
        let sources = store
            .intel_observations(*id)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let feeds: Vec<&str> = sources.iter().map(|o| o.feed.as_str()).collect();
        assert_eq!(
            feeds.len(),
            2,
            "{value}: one record per feed, got {feeds:?}"
        );
        assert!(
            feeds.contains(&"bazaar") && feeds.contains(&"keeper"),
            "{feeds:?}"
        );
    }
}
backend_test!(a_record_outliving_its_anchor_is_recognised_after_a_purge);

/// Every field of a feed row survives the store: what `intel_observations` returns for each
/// record equals what the parser made of it (the oracle), for feeds that fill different
/// fields (URLhaus: threat type, tags, reporter, reference, status; ThreatFox: malware,
/// confidence; STIX: description, ATT&CK ids; Spamhaus: almost nothing).
async fn stored_sources_keep_every_field_of_the_record(store: &Store) {
    let cases = [
        (
            Format::UrlhausCsv,
            "urlhaus-csv",
            "abusech/urlhaus_csv_recent.excerpt.csv",
        ),
        (
            Format::ThreatfoxCsv,
            "threatfox-csv",
            "abusech/threatfox_csv_full.excerpt.csv",
        ),
        (Format::Stix, "stix", "stix/poisonivy.json"),
        (
            Format::SpamhausDrop,
            "spamhaus-drop",
            "other/intelmq_spamhaus_drop.txt",
        ),
    ];
    let mut checked = 0;
    for (format, format_name, rel) in cases {
        let f = feed(store, format_name, format_name, 70).await;
        let bytes = read(rel);
        run(store, &f, format, bytes.clone(), NOW, None).await;
        let (records, _) = crate::harness::parse_ok(format, &bytes);
        for record in &records {
            let hash = rampart_feeds::ingest::record_hash(f.id, &record.raw);
            for ioc in &record.indicators {
                let stored = store
                    .intel_indicator(ioc.kind, &ioc.value)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
                    .unwrap_or_else(|| panic!("{rel}: {} stored", ioc.value));
                let sources = store
                    .intel_observations(stored.id)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                let o = sources
                    .iter()
                    .find(|o| o.record == hash)
                    .unwrap_or_else(|| panic!("{rel}: {} has no source row {hash}", ioc.value));
                let parsed = (
                    (
                        record.source_ref.clone(),
                        record.first_seen,
                        record.last_seen,
                        record.threat_type.clone(),
                        record.malware.clone(),
                        record.tags.clone(),
                    ),
                    (
                        record.attack.clone(),
                        record.confidence.map(i64::from),
                        record.reporter.clone(),
                        record.reference.clone(),
                        record.status.clone(),
                        record.description.clone(),
                        record.raw.clone(),
                    ),
                );
                let kept = (
                    (
                        o.source_ref.clone(),
                        o.first_seen,
                        o.last_seen,
                        o.threat_type.clone(),
                        o.malware.clone(),
                        o.tags.clone(),
                    ),
                    (
                        o.attack.clone(),
                        o.confidence,
                        o.reporter.clone(),
                        o.reference.clone(),
                        o.status.clone(),
                        o.description.clone(),
                        o.raw.clone(),
                    ),
                );
                assert_eq!(kept, parsed, "{rel}: {}", ioc.value);
                assert_eq!(o.feed, format_name);
                checked += 1;
            }
        }
    }
    assert!(checked > 40, "{checked} observations compared");
}
backend_test!(stored_sources_keep_every_field_of_the_record);

/// Scores decay by what an indicator is (the measurement: every KEV entry and every
/// MalwareBazaar hash scored 0 because every kind decayed like an address): an exploited CVE
/// from 2021 and a hash keep their base score, the same feed's 2021 C2 addresses have decayed
/// to 0, the threat type chosen the model is stored on the indicator, and an operator's model
/// from the store replaces the built-in one.
async fn scores_decay_by_kind_and_threat_type(store: &Store) {
    let kev = feed(store, "kev", "kev-json", 95).await;
    run(
        store,
        &kev,
        Format::KevJson,
        read("kev/known_exploited_vulnerabilities.json"),
        NOW,
        None,
    )
    .await;
    let bazaar = feed(store, "bazaar", "malwarebazaar-csv", 90).await;
    run(
        store,
        &bazaar,
        Format::MalwarebazaarCsv,
        read("abusech/malwarebazaar_csv_full.dump_20260226.csv"),
        NOW,
        None,
    )
    .await;
    let feodo = feed(store, "feodo", "feodo-csv", 90).await;
    run(
        store,
        &feodo,
        Format::FeodoCsv,
        read("abusech/feodo_ipblocklist_csv.excerpt_2021.csv"),
        NOW,
        None,
    )
    .await;
    let allow = load_allowlists(store)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let score_of = |index: &Index, kind: IocKind, value: &str| {
        let q = canonicalize(kind, value).unwrap_or_else(|e| panic!("{e}"));
        let entry = index
            .get(&q)
            .unwrap_or_else(|| panic!("{value} is indexed"));
        index.score(entry).unwrap_or(0)
    };
    let builtin = load_decay_models(store)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let index = load_index(store, NOW, &allow, &builtin)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Log4Shell, added to KEV on 2021-12-10: base 95 × 75 (no confidence given) = 71.
    assert_eq!(score_of(&index, IocKind::Cve, "CVE-2021-44228"), 71);
    // A sample first seen three months before NOW: base 90 × 75 = 68, undecayed.
    let (sha, _) = first_bazaar_sha256();
    assert_eq!(score_of(&index, IocKind::Sha256, &sha), 68);
    // A Feodo C2 address last online in 2021: decayed to nothing.
    assert_eq!(score_of(&index, IocKind::Ipv4, "67.213.75.205"), 0);
    let stored = store
        .intel_indicator(IocKind::Ipv4, "67.213.75.205")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("stored"));
    assert_eq!(stored.threat_type.as_deref(), Some("botnet_cc"));
    // An operator decides CVEs do age, over 30 days: the 2021 entry is at 0 after a rebuild.
    store
        .intel_put_decay_model(&rampart_store::IntelDecayRow {
            scope: "kind:cve".into(),
            lifetime_days: Some(30.0),
            speed: 2.0,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let operator = load_decay_models(store)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let index = load_index(store, NOW, &allow, &operator)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(score_of(&index, IocKind::Cve, "CVE-2021-44228"), 0);
    assert_eq!(score_of(&index, IocKind::Sha256, &sha), 68);
    // A scope the store holds but cannot parse is an error naming it, not a silent default.
    store
        .intel_put_decay_model(&rampart_store::IntelDecayRow {
            scope: "kind:nonsense".into(),
            lifetime_days: None,
            speed: 1.0,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let err = load_decay_models(store).await.err().map(|e| e.to_string());
    assert!(
        err.as_deref().is_some_and(|e| e.contains("nonsense")),
        "{err:?}"
    );
}
backend_test!(scores_decay_by_kind_and_threat_type);

/// The sha256 and first-seen date of the dump's first sample row.
fn first_bazaar_sha256() -> (String, String) {
    let dump = String::from_utf8(read("abusech/malwarebazaar_csv_full.dump_20260226.csv"))
        .unwrap_or_default();
    let row = dump
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .unwrap_or_default();
    let fields: Vec<&str> = row.split(',').map(|f| f.trim().trim_matches('"')).collect();
    (fields[1].to_owned(), fields[0].to_owned())
}
