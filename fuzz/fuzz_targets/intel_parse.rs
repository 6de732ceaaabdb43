//! Every feed parser must survive any input: no panic, no unbounded memory (small limits here
//! make the caps themselves part of what is fuzzed).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_intel::{Format, Limits, parse_bytes};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let format = Format::ALL[usize::from(selector) % Format::ALL.len()];
    let limits = Limits {
        max_line: 4096,
        max_document: 1 << 20,
        max_decompressed: 4 << 20,
        max_records: 10_000,
        max_problems_kept: 16,
    };
    if let Ok((records, summary)) = parse_bytes(format, body, &limits) {
        assert_eq!(records.len() as u64, summary.records);
        for r in &records {
            assert!(!r.indicators.is_empty(), "records without indicators are dropped");
            for ioc in &r.indicators {
                // Whatever a parser stores must already be canonical.
                let again = rampart_intel::canonicalize(ioc.kind, &ioc.value);
                assert_eq!(again.as_ref(), Ok(ioc), "{ioc} is not canonical");
            }
        }
    }
});
