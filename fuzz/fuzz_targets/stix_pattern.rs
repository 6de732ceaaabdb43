//! The STIX pattern parser must never panic, and its canonical rendering must be a fixed point:
//! rendering, parsing and rendering again gives the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_intel::stix_pattern;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(obs) = stix_pattern::parse(text) {
        let canonical = obs.to_string();
        match stix_pattern::parse(&canonical) {
            Ok(again) => assert_eq!(again.to_string(), canonical),
            Err(e) => panic!("canonical form {canonical:?} does not parse: {e}"),
        }
    }
});
