//! The OS_Regex compiler and scanner must never panic or loop, whatever the pattern and subject.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_policy::sca::osregex::OsRegex;

fuzz_target!(|data: &[u8]| {
    // First line: the pattern; the rest: the subject.
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let (pat, subject) = data.split_at(split);
    let Ok(pat) = std::str::from_utf8(pat) else { return };
    if let Ok(re) = OsRegex::new(pat) {
        let m = re.is_match(subject);
        let c = re.captures(subject);
        assert_eq!(m, c.is_some(), "is_match and captures disagree on {pat:?}");
    }
});
