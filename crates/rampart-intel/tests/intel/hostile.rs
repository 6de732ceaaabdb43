//! Hostile and broken input: bounded, reported, never a panic; compressed input read
//! transparently.

use std::io::Write;

use rampart_intel::{Format, Limits, ParseError, parse, parse_bytes};

use crate::harness::{parse_ok, read, values};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap_or_else(|e| panic!("{e}"));
    enc.finish().unwrap_or_else(|e| panic!("{e}"))
}

fn zip(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in members {
        out.start_file(*name, options)
            .unwrap_or_else(|e| panic!("{e}"));
        out.write_all(bytes).unwrap_or_else(|e| panic!("{e}"));
    }
    out.finish().unwrap_or_else(|e| panic!("{e}")).into_inner()
}

#[test]
fn gzip_and_zip_are_read_transparently() {
    let csv = read("abusech/urlhaus_csv_recent.excerpt.csv");
    let (plain, _) = parse_ok(Format::UrlhausCsv, &csv);
    let (gz, _) = parse_ok(Format::UrlhausCsv, &gzip(&csv));
    assert_eq!(values(&plain), values(&gz));
    let (zipped, summary) = parse_ok(Format::UrlhausCsv, &zip(&[("csv.txt", &csv)]));
    assert_eq!(values(&plain), values(&zipped));
    assert_eq!(summary.documents, 1);
    let (two, summary) = parse_ok(
        Format::Plain,
        &zip(&[("a.txt", b"1.2.3.4\n"), ("b.txt", b"5.6.7.8\n")]),
    );
    assert_eq!(values(&two), ["ipv4:1.2.3.4", "ipv4:5.6.7.8"]);
    assert_eq!(summary.documents, 2);
}

#[test]
fn decompression_bombs_stop_at_the_limit() {
    let limits = Limits {
        max_decompressed: 10 << 20,
        ..Limits::default()
    };
    // 64 MiB of newlines compress to about 64 KiB.
    let bomb = vec![b'\n'; 64 << 20];
    for input in [gzip(&bomb), zip(&[("bomb.txt", &bomb)])] {
        assert!(input.len() < 1 << 20);
        match parse_bytes(Format::Plain, &input, &limits) {
            Err(ParseError::TooLarge { limit, .. }) => assert_eq!(limit, 10 << 20),
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }
}

#[test]
fn corrupt_containers_are_errors() {
    let mut broken = gzip(b"1.2.3.4\n5.6.7.8\n");
    let n = broken.len();
    broken[n / 2] ^= 0xff;
    broken.truncate(n - 4);
    assert!(parse_bytes(Format::Plain, &broken, &Limits::default()).is_err());
    let mut z = zip(&[("a.txt", b"1.2.3.4\n")]);
    z.truncate(z.len() / 2);
    match parse_bytes(Format::Plain, &z, &Limits::default()) {
        Err(ParseError::Corrupt(m)) => assert!(m.contains("zip"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn huge_lines_and_invalid_utf8_are_skipped_with_their_line_numbers() {
    let limits = Limits {
        max_line: 1024,
        ..Limits::default()
    };
    let mut input = b"1.2.3.4\n".to_vec();
    input.extend(std::iter::repeat_n(b'a', 5 << 20));
    input.extend(b"\n\xff\xfe1.1.1.1\n5.6.7.8\n");
    let mut records = Vec::new();
    let summary = parse(Format::Plain, &mut &input[..], &limits, &mut |r| {
        records.push(r)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(values(&records), ["ipv4:1.2.3.4", "ipv4:5.6.7.8"]);
    assert_eq!(summary.problems, 2);
    assert_eq!(summary.problem_samples[0].line, 2);
    assert!(
        summary.problem_samples[0]
            .message
            .contains("exceeds the limit of 1024")
    );
    assert_eq!(summary.problem_samples[1].line, 3);
    assert!(summary.problem_samples[1].message.contains("UTF-8"));
}

#[test]
fn json_nesting_bombs_and_broken_json_are_located_errors() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    for format in [
        Format::FeodoJson,
        Format::KevJson,
        Format::Stix,
        Format::MispEvent,
    ] {
        // Either the document is refused, or the nested value is reported as a bad record;
        // never a stack overflow, never a record.
        match parse_bytes(format, deep.as_bytes(), &Limits::default()) {
            Err(ParseError::Json { .. } | ParseError::Shape { .. }) => {}
            Ok((records, summary)) => {
                assert!(records.is_empty(), "{format}");
                assert_eq!(summary.problems, 1, "{format}");
            }
            Err(other) => panic!("{format}: {other:?}"),
        }
    }
    match parse_bytes(
        Format::KevJson,
        b"{\n  \"vulnerabilities\": [\n    {\"cveID\": }\n  ]\n}",
        &Limits::default(),
    ) {
        Err(ParseError::Json { line, column, .. }) => assert_eq!((line, column), (3, 15)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn broken_lines_in_json_lines_feeds_do_not_lose_the_rest() {
    let doc = b"{\"id\":\"1\",\"ioc\":\"1.2.3.4:80\",\"ioc_type\":\"ip:port\"}\n{broken\n{\"id\":\"2\",\"ioc\":\"evil.example\",\"ioc_type\":\"domain\"}\n";
    let (records, summary) = parse_ok(Format::ThreatfoxJson, doc);
    assert_eq!(
        values(&records),
        ["ip_port:1.2.3.4:80", "ipv4:1.2.3.4", "domain:evil.example"]
    );
    assert_eq!(summary.problems, 1);
    assert_eq!(summary.problem_samples[0].line, 2);
}

#[test]
fn csv_rows_with_the_wrong_shape_are_reported_and_skipped() {
    let doc = b"# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n\
\"1\",\"2026-01-01 00:00:00\",\"http://a.example/\",\"online\",\"\",\"malware_download\",\"None\",\"x\",\"y\"\n\
\"2\",\"2026-01-01 00:00:00\",\"http://b.example/\"\n\
\"3\",\"2026-01-01 00:00:00\",\"http://c.example/,\"online\",\"\",\"malware_download\",\"None\",\"x\",\"y\"\n\
\"4\",\"2026-01-01 00:00:00\",\"http://d.example/\",\"online\",\"\",\"malware_download\",\"None\",\"x\",\"y\"\n";
    let (records, summary) = parse_ok(Format::UrlhausCsv, doc);
    assert_eq!(
        values(&records),
        ["url:http://a.example/", "url:http://d.example/"]
    );
    assert_eq!(summary.problems, 2);
    assert_eq!(summary.problem_samples[0].line, 3);
    assert!(
        summary.problem_samples[0]
            .message
            .contains("expected 9 fields")
    );
    assert_eq!(summary.problem_samples[1].line, 4);
}

#[test]
fn the_record_limit_truncates_and_says_so() {
    let limits = Limits {
        max_records: 3,
        ..Limits::default()
    };
    let input: String = (1..=10).map(|i| format!("10.0.0.{i}\n")).collect();
    let (records, summary) =
        parse_bytes(Format::Plain, input.as_bytes(), &limits).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(records.len(), 3);
    assert!(summary.truncated);
    assert!(
        summary
            .problem_samples
            .iter()
            .any(|p| p.message.contains("record limit of 3"))
    );
}

#[test]
fn problem_samples_are_capped_but_counted() {
    let limits = Limits {
        max_problems_kept: 5,
        ..Limits::default()
    };
    let input = "junk value\n".repeat(100);
    let (_, summary) =
        parse_bytes(Format::Plain, input.as_bytes(), &limits).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.problems, 100);
    assert_eq!(summary.problem_samples.len(), 5);
}

#[test]
fn arbitrary_bytes_never_panic_in_any_format() {
    // A cheap deterministic sweep; the fuzz targets go much further.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let alphabet = b"[]{}\",:'\n\r#;01234.abcdefAS/|\\ \t\xff";
    for _ in 0..300 {
        let len = (seed % 300) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                alphabet[(seed % alphabet.len() as u64) as usize]
            })
            .collect();
        for format in Format::ALL {
            let _ = parse_bytes(format, &bytes, &Limits::default());
        }
    }
}
