//! Shared helpers: the real fixture files and a parse that must succeed.

use std::path::PathBuf;

use rampart_intel::{Format, Limits, Record, Summary, parse_bytes};

/// `../shared/fixtures/intel/<rel>` (read in place, never copied into the repository).
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/intel")
        .join(rel)
}

pub fn read(rel: &str) -> Vec<u8> {
    let path = fixture(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Parses a fixture file; the document itself must be readable.
pub fn parse_fixture(format: Format, rel: &str) -> (Vec<Record>, Summary) {
    parse_ok(format, &read(rel))
}

pub fn parse_ok(format: Format, bytes: &[u8]) -> (Vec<Record>, Summary) {
    parse_bytes(format, bytes, &Limits::default()).unwrap_or_else(|e| panic!("{format}: {e}"))
}

/// Every `kind:value` of the records, in order.
pub fn values(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .flat_map(|r| {
            r.indicators
                .iter()
                .map(|i| format!("{}:{}", i.kind, i.value))
        })
        .collect()
}
