//! Refang, detection and canonicalisation must never panic, and canonical values must be
//! fixed points (canonicalising a canonical value changes nothing).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let refanged = rampart_intel::fang::refang(text);
    let _ = rampart_intel::fang::defang(text);
    if let Ok(ioc) = rampart_intel::detect(&refanged) {
        let again = rampart_intel::canonicalize(ioc.kind, &ioc.value);
        assert_eq!(again.as_ref(), Ok(&ioc), "{ioc} is not a fixed point");
    }
});
