//! Whole policy documents (native or SCA): an error or a policy, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_policy::{LoadOptions, load_bytes};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = load_bytes(data, "fuzz.yml", LoadOptions::default()) {
        let _ = rampart_policy::lint::lint(&p);
    }
});
