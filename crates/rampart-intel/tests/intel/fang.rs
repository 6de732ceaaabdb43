//! Refanging against ioc-fanger's paired sample files.

use rampart_intel::fang::{defang, refang};

use crate::harness::read;

#[test]
fn defanged_samples_refang_to_the_fanged_samples_line_for_line() {
    let defanged = String::from_utf8(read("fang/sample_text_defanged.txt")).unwrap_or_default();
    let fanged = String::from_utf8(read("fang/sample_text_fanged.txt")).unwrap_or_default();
    let pairs: Vec<(&str, &str)> = defanged.lines().zip(fanged.lines()).collect();
    assert_eq!(pairs.len(), 1017);
    for (i, (d, f)) in pairs.iter().enumerate() {
        assert_eq!(refang(d), *f, "line {}", i + 1);
    }
}

#[test]
fn fanged_samples_defang_to_the_defanged_samples() {
    let defanged = String::from_utf8(read("fang/sample_text_defanged.txt")).unwrap_or_default();
    let fanged = String::from_utf8(read("fang/sample_text_fanged.txt")).unwrap_or_default();
    for (i, (d, f)) in defanged.lines().zip(fanged.lines()).enumerate() {
        assert_eq!(defang(f), d, "line {}", i + 1);
        // And back again.
        assert_eq!(refang(&defang(f)), f, "line {}", i + 1);
    }
}
