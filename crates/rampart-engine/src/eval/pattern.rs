//! Matching patterns against lines, with each dialect's rules for combining minterms and lines.
//!
//! Values follow `wm_sca.c`: 1 = found, 0 = not found, 2 = invalid; a negated minterm XORs its
//! value with 1 (so a negated invalid becomes 3) and a pattern's value is the product of its
//! minterms'. Callers compare the product with exactly 1 or 2, as Wazuh does, so odd products
//! (3, 4, 6) behave as they do there.

use super::Reason;
use rampart_policy::ir::{Compare, Dialect, Matcher, Minterm, Pattern, Test};

/// Wazuh's FOUND.
pub const FOUND: i32 = 1;
/// Wazuh's NOT_FOUND.
pub const NOT_FOUND: i32 = 0;
/// Wazuh's INVALID.
pub const INVALID: i32 = 2;

/// Value of one pattern on one line.
pub fn line_value(p: &Pattern, line: &[u8], dialect: Dialect, reason: &mut Reason) -> i32 {
    let mut result = FOUND;
    for m in &p.minterms {
        let v = positive(m, line, dialect, reason);
        result *= if m.negated { v ^ 1 } else { v };
    }
    result
}

/// Value of a minterm before its `!`.
pub fn positive(m: &Minterm, line: &[u8], dialect: Dialect, reason: &mut Reason) -> i32 {
    match &m.test {
        Test::Regex(re) => i32::from(re.is_match(line)),
        Test::Literal {
            text,
            case_sensitive,
        } => {
            let eq = if *case_sensitive {
                text.as_bytes() == line
            } else {
                text.as_bytes().eq_ignore_ascii_case(line)
            };
            i32::from(eq)
        }
        Test::Numeric {
            regex,
            compare,
            text: _,
        } => numeric(regex, compare, line, dialect, reason),
    }
}

fn numeric(
    regex: &Matcher,
    compare: &Compare,
    line: &[u8],
    dialect: Dialect,
    reason: &mut Reason,
) -> i32 {
    if let Compare::NoKeyword(msg) = compare {
        reason.set(msg.clone());
        return INVALID;
    }
    if let Matcher::Broken { pattern, .. } = regex {
        reason.set(format!("Cannot compile regex '{pattern}'"));
        return INVALID;
    }
    let capture = match regex.first_capture(line) {
        None => return NOT_FOUND,
        Some(c) => c,
    };
    let captured = match (capture, dialect) {
        (Some(c), _) => c,
        // 5.x falls back to the whole match when there is no group.
        (None, Dialect::Sca5) => match whole_match(regex, line) {
            Some(m) => m,
            None => return NOT_FOUND,
        },
        (None, _) => {
            reason.set(format!(
                "Regex '{}' matched, but no string was captured by it. Did you forget specifying a capture group?",
                regex.as_str()
            ));
            return INVALID;
        }
    };
    let Some(value) = c_strtol(&captured) else {
        reason.set(format!(
            "Conversion error. Cannot convert '{}' to integer.",
            String::from_utf8_lossy(&captured)
        ));
        return INVALID;
    };
    match compare {
        Compare::Op(op, rhs) => i32::from(op.apply(value, *rhs)),
        Compare::Invalid(msg) | Compare::NoKeyword(msg) => {
            reason.set(msg.clone());
            INVALID
        }
    }
}

fn whole_match(regex: &Matcher, line: &[u8]) -> Option<Vec<u8>> {
    match regex {
        Matcher::Pcre(r) => r.find(line).ok().flatten().map(|m| m.as_bytes().to_vec()),
        Matcher::Rust(r) => r.find(line).map(|m| m.as_bytes().to_vec()),
        _ => None,
    }
}

/// `strtol(s, &end, 10)` with the error cases Wazuh checks: no digits, or out of range.
pub fn c_strtol(s: &[u8]) -> Option<i64> {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut v: i64 = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        let d = i64::from(s[i] - b'0');
        v = v.checked_mul(10)?;
        v = if neg {
            v.checked_sub(d)?
        } else {
            v.checked_add(d)?
        };
        i += 1;
    }
    (i > start).then_some(v)
}

/// What scanning a sequence of lines produced.
pub struct LinesResult<'a> {
    /// Wazuh-style value.
    pub value: i32,
    /// The line that decided it (index into the input), when one did.
    pub decisive: Option<usize>,
    /// The lines, for evidence.
    pub lines: &'a [&'a [u8]],
}

/// How a probe combines per-line values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineMode {
    /// 4.x files: stop at the first non-zero value and return it.
    FirstNonZero,
    /// 4.x commands: stop at the first FOUND; otherwise the last line's value.
    LastUnlessFound,
    /// 5.x and native: FOUND if a line is found, else INVALID if one was invalid, else NOT_FOUND;
    /// in 5.x a lone negated minterm means "no line matches".
    AnyLine,
}

/// Scans lines with a pattern.
pub fn scan_lines<'a>(
    p: &Pattern,
    lines: &'a [&'a [u8]],
    dialect: Dialect,
    mode: LineMode,
    reason: &mut Reason,
) -> LinesResult<'a> {
    match mode {
        LineMode::FirstNonZero => {
            for (i, l) in lines.iter().enumerate() {
                let v = line_value(p, l, dialect, reason);
                if v != 0 {
                    return LinesResult {
                        value: v,
                        decisive: Some(i),
                        lines,
                    };
                }
            }
            LinesResult {
                value: NOT_FOUND,
                decisive: None,
                lines,
            }
        }
        LineMode::LastUnlessFound => {
            let mut value = NOT_FOUND;
            let mut decisive = None;
            for (i, l) in lines.iter().enumerate() {
                value = line_value(p, l, dialect, reason);
                if value == FOUND {
                    decisive = Some(i);
                    break;
                }
            }
            LinesResult {
                value,
                decisive,
                lines,
            }
        }
        LineMode::AnyLine => {
            if dialect == Dialect::Sca5 && p.minterms.len() == 1 && p.minterms[0].negated {
                let mut invalid = false;
                for (i, l) in lines.iter().enumerate() {
                    match positive(&p.minterms[0], l, dialect, reason) {
                        FOUND => {
                            return LinesResult {
                                value: NOT_FOUND,
                                decisive: Some(i),
                                lines,
                            };
                        }
                        INVALID => invalid = true,
                        _ => {}
                    }
                }
                let value = if invalid { INVALID } else { FOUND };
                return LinesResult {
                    value,
                    decisive: None,
                    lines,
                };
            }
            let mut invalid = false;
            for (i, l) in lines.iter().enumerate() {
                match line_value(p, l, dialect, reason) {
                    FOUND => {
                        return LinesResult {
                            value: FOUND,
                            decisive: Some(i),
                            lines,
                        };
                    }
                    INVALID => invalid = true,
                    _ => {}
                }
            }
            let value = if invalid { INVALID } else { NOT_FOUND };
            LinesResult {
                value,
                decisive: None,
                lines,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_policy::sca::rule::{RegexEngine, parse_pattern};

    fn pat(s: &str) -> Pattern {
        parse_pattern(s, Dialect::Sca4, RegexEngine::OsRegex).expect("pattern")
    }

    #[test]
    fn negated_minterm_is_per_line_in_v4() {
        let p = pat("!r:X");
        let mut r = Reason::default();
        let lines: Vec<&[u8]> = vec![b"X here", b"nothing"];
        // Some line lacks X, so the 4.x rule is FOUND.
        let res = scan_lines(&p, &lines, Dialect::Sca4, LineMode::FirstNonZero, &mut r);
        assert_eq!(res.value, FOUND);
        assert_eq!(res.decisive, Some(1));
    }

    #[test]
    fn single_negated_minterm_means_no_line_in_v5() {
        let p = parse_pattern("!r:X", Dialect::Sca5, RegexEngine::Pcre2Caseless).expect("p");
        let mut r = Reason::default();
        let lines: Vec<&[u8]> = vec![b"x here", b"nothing"];
        let res = scan_lines(&p, &lines, Dialect::Sca5, LineMode::AnyLine, &mut r);
        assert_eq!(res.value, NOT_FOUND);
        let lines: Vec<&[u8]> = vec![b"nothing"];
        assert_eq!(
            scan_lines(&p, &lines, Dialect::Sca5, LineMode::AnyLine, &mut r).value,
            FOUND
        );
    }

    #[test]
    fn numeric_compare_and_invalid_products() {
        let mut r = Reason::default();
        let p = pat(r"n:^PASS_MAX_DAYS\s*\t*(\d+) compare <= 365");
        assert_eq!(
            line_value(&p, b"PASS_MAX_DAYS 99999", Dialect::Sca4, &mut r),
            NOT_FOUND
        );
        assert_eq!(
            line_value(&p, b"PASS_MAX_DAYS 90", Dialect::Sca4, &mut r),
            FOUND
        );
        // No capture group: invalid, and a negated invalid is 3 (neither found nor invalid).
        let p = pat(r"n:^PASS\s+\d+ compare <= 365");
        assert_eq!(line_value(&p, b"PASS 3", Dialect::Sca4, &mut r), INVALID);
        assert!(
            r.get()
                .is_some_and(|m| m.contains("no string was captured"))
        );
        let p = pat(r"!n:^PASS\s+\d+ compare <= 365");
        assert_eq!(line_value(&p, b"PASS 3", Dialect::Sca4, &mut r), 3);
        // Missing `compare` is invalid on every line, before the regex is tried.
        let mut r = Reason::default();
        let p = pat(r"n:^nothing(\d+)");
        assert_eq!(line_value(&p, b"zzz", Dialect::Sca4, &mut r), INVALID);
        assert!(
            r.get()
                .is_some_and(|m| m.starts_with("Keyword 'compare' not found"))
        );
    }

    #[test]
    fn literal_minterm_is_whole_line_case_insensitive_in_v4() {
        let mut r = Reason::default();
        let p = pat("Linux");
        assert_eq!(line_value(&p, b"linux", Dialect::Sca4, &mut r), FOUND);
        assert_eq!(
            line_value(&p, b"Linux kernel", Dialect::Sca4, &mut r),
            NOT_FOUND
        );
    }

    #[test]
    fn commands_return_last_line_value() {
        let mut r = Reason::default();
        let p = pat(r"n:^x(\d+) compare > 5");
        // The first line matches with a value, the last (empty) line does not match at all.
        let lines: Vec<&[u8]> = vec![b"x3", b""];
        let res = scan_lines(&p, &lines, Dialect::Sca4, LineMode::LastUnlessFound, &mut r);
        assert_eq!(res.value, NOT_FOUND);
    }

    #[test]
    fn strtol() {
        assert_eq!(c_strtol(b" 42abc"), Some(42));
        assert_eq!(c_strtol(b"-7"), Some(-7));
        assert_eq!(c_strtol(b"abc"), None);
        assert_eq!(c_strtol(b"99999999999999999999"), None);
    }
}
