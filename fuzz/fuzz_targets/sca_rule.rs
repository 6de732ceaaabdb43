//! The SCA rule parser must turn any string into a rule or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_policy::ir::Dialect;
use rampart_policy::sca::rule::{RegexEngine, parse_pattern, parse_rule};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let vars = vec![("$x".to_string(), "/etc/x,/etc/y".to_string())];
    for (dialect, engine) in [
        (Dialect::Sca4, RegexEngine::OsRegex),
        (Dialect::Sca4, RegexEngine::Pcre2),
        (Dialect::Sca5, RegexEngine::Pcre2Caseless),
    ] {
        let _ = parse_rule(s, dialect, engine, &vars);
        let _ = parse_pattern(s, dialect, engine);
    }
});
