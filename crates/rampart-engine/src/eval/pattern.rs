//! Matching patterns against lines, with each dialect's rules for combining minterms and lines.
//!
//! Values follow `wm_sca.c`: 1 = found, 0 = not found, 2 = invalid; a negated minterm XORs its
//! value with 1 (so a negated invalid becomes 3) and a pattern's value is the product of its
//! minterms'. Callers compare the product with exactly 1 or 2, as Wazuh does, so odd products
//! (3, 4, 6) behave as they do there.

use super::Reason;
use rampart_policy::ir::{Compare, CompareOp, Dialect, Matcher, Minterm, Pattern, Test};

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
    let value = match capture_number(regex, line, dialect) {
        Captured::NoMatch => return NOT_FOUND,
        Captured::NoGroup => {
            reason.set(format!(
                "Regex '{}' matched, but no string was captured by it. Did you forget specifying a capture group?",
                regex.as_str()
            ));
            return INVALID;
        }
        Captured::NotANumber(text) => {
            reason.set(format!(
                "Conversion error. Cannot convert '{}' to integer.",
                String::from_utf8_lossy(&text)
            ));
            return INVALID;
        }
        Captured::Number(v) => v,
    };
    match compare {
        Compare::Op(op, rhs) => i32::from(op.apply(value, *rhs)),
        Compare::Invalid(msg) | Compare::NoKeyword(msg) => {
            reason.set(msg.clone());
            INVALID
        }
    }
}

/// What an `n:` regex captured on a line.
enum Captured {
    NoMatch,
    /// It matched but captured nothing (4.x: invalid).
    NoGroup,
    NotANumber(Vec<u8>),
    Number(i64),
}

fn capture_number(regex: &Matcher, line: &[u8], dialect: Dialect) -> Captured {
    let captured = match (regex.first_capture(line), dialect) {
        (None, _) => return Captured::NoMatch,
        (Some(Some(c)), _) => c,
        // 5.x falls back to the whole match when there is no group.
        (Some(None), Dialect::Sca5) => match whole_match(regex, line) {
            Some(m) => m,
            None => return Captured::NoMatch,
        },
        (Some(None), _) => return Captured::NoGroup,
    };
    match c_strtol(&captured) {
        Some(v) => Captured::Number(v),
        None => Captured::NotANumber(captured),
    }
}

/// A line that satisfies every part of a pattern except an `n:` comparison: the evidence a
/// reader needs when "no line matches" hides a value out of range (`PASS_MAX_DAYS 99999`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfRange {
    /// Index into the lines.
    pub line: usize,
    /// The number the line holds.
    pub value: i64,
    /// The comparison it fails.
    pub op: CompareOp,
    /// The comparison's right-hand side.
    pub bound: i64,
}

impl OutOfRange {
    /// "99999 is not <= 365".
    pub fn describe(&self) -> String {
        format!("{} is not {} {}", self.value, self.op.symbol(), self.bound)
    }
}

/// The first line on which only `n:` comparisons of `p` fail, if any. Evidence only: called
/// after a scan found no line, it never changes a value (and records no reason).
pub fn out_of_range(p: &Pattern, lines: &[&[u8]], dialect: Dialect) -> Option<OutOfRange> {
    let has_comparison = p.minterms.iter().any(|m| {
        !m.negated
            && matches!(
                m.test,
                Test::Numeric {
                    compare: Compare::Op(..),
                    ..
                }
            )
    });
    if !has_comparison {
        return None;
    }
    let mut scratch = Reason::default();
    lines.iter().enumerate().find_map(|(i, line)| {
        let mut miss = None;
        for m in &p.minterms {
            match (&m.test, m.negated) {
                (
                    Test::Numeric {
                        regex,
                        compare: Compare::Op(op, bound),
                        ..
                    },
                    false,
                ) => {
                    let Captured::Number(value) = capture_number(regex, line, dialect) else {
                        return None;
                    };
                    if miss.is_none() && !op.apply(value, *bound) {
                        miss = Some(OutOfRange {
                            line: i,
                            value,
                            op: *op,
                            bound: *bound,
                        });
                    }
                }
                _ => {
                    let v = positive(m, line, dialect, &mut scratch);
                    if (if m.negated { v ^ 1 } else { v }) != FOUND {
                        return None;
                    }
                }
            }
        }
        miss
    })
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

impl LinesResult<'_> {
    /// For a scan that found no line at all: the line that failed only an `n:` comparison
    /// ([`out_of_range`]), the evidence a reader needs. Evidence only; never changes `value`.
    pub fn near_miss(&self, p: &Pattern, dialect: Dialect) -> Option<OutOfRange> {
        (self.value == NOT_FOUND && self.decisive.is_none())
            .then(|| out_of_range(p, self.lines, dialect))
            .flatten()
    }
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
    fn out_of_range_finds_the_line_that_fails_only_its_comparison() {
        let p = pat(r"n:^PASS_MAX_DAYS\s+(\d+) compare <= 365");
        let lines: Vec<&[u8]> = vec![
            b"# PASS_MAX_DAYS 30 is a comment",
            b"PASS_MAX_DAYS 99999",
            b"PASS_MAX_DAYS 400",
        ];
        let o = out_of_range(&p, &lines, Dialect::Sca4).expect("near miss");
        assert_eq!(
            (o.line, o.value, o.op, o.bound),
            (1, 99999, CompareOp::Le, 365)
        );
        assert_eq!(o.describe(), "99999 is not <= 365");
        // A value in range is no near miss (the caller only asks after no line matched, but
        // the answer must still be right).
        let ok: Vec<&[u8]> = vec![b"PASS_MAX_DAYS 90"];
        assert_eq!(out_of_range(&p, &ok, Dialect::Sca4), None);
        // Every other minterm must hold on the line, negated ones included.
        let p = pat(r"n:^MaxAuthTries\s+(\d+) compare <= 4 && !r:#");
        let lines: Vec<&[u8]> = vec![b"MaxAuthTries 6 # too many", b"MaxAuthTries 10"];
        let o = out_of_range(&p, &lines, Dialect::Sca4).expect("near miss");
        assert_eq!((o.line, o.value), (1, 10));
        let p = pat(r"n:^MaxAuthTries\s+(\d+) compare <= 4 && r:sshd");
        assert_eq!(out_of_range(&p, &lines, Dialect::Sca4), None);
        // Nothing to say without a comparison, or when the capture is not a number.
        assert_eq!(
            out_of_range(&pat(r"r:^MaxAuthTries"), &lines, Dialect::Sca4),
            None
        );
        let p = pat(r"n:^MaxAuthTries\s+(\S+) compare <= 4");
        let words: Vec<&[u8]> = vec![b"MaxAuthTries many"];
        assert_eq!(out_of_range(&p, &words, Dialect::Sca4), None);
        // 5.x compares the whole match when there is no group.
        let p = parse_pattern(
            r"n:\d+ compare < 3",
            Dialect::Sca5,
            RegexEngine::Pcre2Caseless,
        )
        .expect("p");
        let lines: Vec<&[u8]> = vec![b"retries 7"];
        let o = out_of_range(&p, &lines, Dialect::Sca5).expect("near miss");
        assert_eq!((o.value, o.op, o.bound), (7, CompareOp::Lt, 3));
    }

    #[test]
    fn strtol() {
        assert_eq!(c_strtol(b" 42abc"), Some(42));
        assert_eq!(c_strtol(b"-7"), Some(-7));
        assert_eq!(c_strtol(b"abc"), None);
        assert_eq!(c_strtol(b"99999999999999999999"), None);
    }
}
