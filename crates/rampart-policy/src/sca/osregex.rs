//! OS_Regex, the regular-expression dialect of OSSEC and Wazuh 4.x, reproduced exactly.
//!
//! Wazuh SCA policies are written against this engine, quirks included: matching is
//! case-insensitive, `\s` is a space only, `\.` is any character, `.` is a literal dot, `+`/`*`
//! only follow an escape class, and there is a single level of parentheses used for captures. The
//! matcher is a greedy scanner with a small, bounded set of retry points rather than a backtracking
//! engine, so some patterns that "look" like they should match do not. A PCRE translation would
//! give different answers on real policies (see the tests), so this module implements the scanner's
//! behaviour itself, step for step.
//!
//! A compiled pattern is a list of alternatives (top-level `|`); each alternative is a byte program
//! in which an escape is the byte `\` followed by a class code, `(` and `)` are both stored as `(`,
//! and literal bytes are lower-cased.

use std::fmt;

/// Longest pattern OS_Regex accepts (`OS_PATTERN_MAXSIZE`).
pub const MAX_PATTERN_LEN: usize = 2048;

const BACKSLASH: u8 = b'\\';
const PAREN: u8 = b'(';

/// Why a pattern does not compile. OS_Regex reports no position; Rampart adds the byte offset so
/// a policy author can find the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OsRegexError {
    /// A backslash followed by a character that is not an OS_Regex escape.
    #[error(
        "unknown escape '\\{escape}' at offset {offset} (OS_Regex knows \\d \\w \\s \\p \\t \\. \\( \\) \\\\ \\$ \\| \\< and \\D \\W \\S)"
    )]
    BadEscape {
        /// The character after the backslash (or `end of pattern`).
        escape: String,
        /// Byte offset of the backslash.
        offset: usize,
    },
    /// Parentheses nested, unbalanced, or containing `|`.
    #[error(
        "bad parentheses at offset {offset}: OS_Regex allows one level, balanced, without '|' inside"
    )]
    BadParenthesis {
        /// Byte offset where the problem was detected.
        offset: usize,
    },
    /// Pattern longer than [`MAX_PATTERN_LEN`].
    #[error("pattern is {0} bytes long; OS_Regex accepts at most 2048")]
    TooLong(usize),
}

#[derive(Clone, PartialEq, Eq)]
struct Alternative {
    program: Vec<u8>,
    begin: bool,
    end: bool,
    /// Positions of `(` (open and close) in `program`, in order.
    parens: Vec<usize>,
}

/// A compiled OS_Regex pattern (always case-insensitive, as SCA compiles it).
#[derive(Clone, PartialEq, Eq)]
pub struct OsRegex {
    source: String,
    alternatives: Vec<Alternative>,
    /// The pattern has a closing parenthesis. SCA compiles with `OS_RETURN_SUBSTRING`, and
    /// OS_Regex then runs every alternative in "capturing" mode, which changes how the end of
    /// the subject is handled; without parentheses it does not.
    capturing: bool,
}

impl fmt::Debug for OsRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OsRegex({:?})", self.source)
    }
}

fn escape_code(c: u8) -> Option<u8> {
    Some(match c {
        b'd' => 1,
        b'w' => 2,
        b's' => 3,
        b'p' => 4,
        b'(' => 5,
        b')' => 6,
        b'\\' => 7,
        b'D' => 8,
        b'W' => 9,
        b'S' => 10,
        b'.' => 11,
        b't' => 12,
        b'$' => 13,
        b'|' => 14,
        b'<' => 15,
        _ => return None,
    })
}

/// Whether byte `c` belongs to the class with escape code `code` (OS_Regex's `regexmap`).
fn class_matches(code: u8, c: u8) -> bool {
    let is_w = |c: u8| c == b'-' || c == b'@' || c == b'_' || c.is_ascii_alphanumeric();
    match code {
        1 => c.is_ascii_digit(),
        2 => is_w(c),
        3 => c == b' ',
        4 => matches!(c, 33..=46 | 58..=63 | b'[' | b']' | b'{' | b'|' | b'}'),
        5 => c == b'(',
        6 => c == b')',
        7 => c == b'\\',
        8 => !c.is_ascii_digit(),
        9 => !is_w(c),
        10 => c != b' ',
        11 => true,
        12 => c == b'\t',
        13 => c == b'$',
        14 => c == b'|',
        15 => c == b'<',
        _ => false,
    }
}

fn is_plus(c: u8) -> bool {
    c == b'+' || c == b'*'
}

impl OsRegex {
    /// Compiles a pattern the way SCA does (`OS_RETURN_SUBSTRING`, never case-sensitive).
    pub fn new(pattern: &str) -> Result<OsRegex, OsRegexError> {
        let bytes = pattern.as_bytes();
        if bytes.len() > MAX_PATTERN_LEN {
            return Err(OsRegexError::TooLong(bytes.len()));
        }
        // First pass: translate escapes, check parentheses, lower-case literals.
        let mut work: Vec<u8> = Vec::with_capacity(bytes.len());
        let mut depth: i32 = 0;
        let mut capturing = false;
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            if c == BACKSLASH {
                let next = bytes.get(i + 1).copied();
                let code = next
                    .and_then(escape_code)
                    .ok_or_else(|| OsRegexError::BadEscape {
                        escape: next
                            .map(|n| (n as char).to_string())
                            .unwrap_or_else(|| "end of pattern".to_string()),
                        offset: i,
                    })?;
                work.push(BACKSLASH);
                work.push(code);
                i += 2;
                continue;
            }
            let mut b = c;
            if c == b'(' {
                depth += 1;
            } else if c == b')' {
                b = PAREN;
                depth -= 1;
                capturing = true;
            }
            if depth != 0 && depth != 1 {
                return Err(OsRegexError::BadParenthesis { offset: i });
            }
            let b = b.to_ascii_lowercase();
            if b == b'|' && depth != 0 {
                return Err(OsRegexError::BadParenthesis { offset: i });
            }
            work.push(b);
            i += 1;
        }
        if depth != 0 {
            return Err(OsRegexError::BadParenthesis {
                offset: bytes.len(),
            });
        }
        // Second pass: split top-level alternatives, strip ^ and $.
        let mut alternatives = Vec::new();
        let mut start = 0;
        let mut k = 0;
        loop {
            let at_end = k == work.len();
            // An escape code byte can never be '|' (codes are 1..=15), so a plain scan is safe.
            if at_end || work[k] == b'|' {
                let mut seg = &work[start..k];
                let mut begin = false;
                let mut end = false;
                if seg.first() == Some(&b'^') {
                    begin = true;
                    seg = &seg[1..];
                }
                if seg.last() == Some(&b'$') {
                    // `$` preceded by a backslash was turned into code 13, so this is a real `$`.
                    end = true;
                    seg = &seg[..seg.len() - 1];
                }
                let parens = seg
                    .iter()
                    .enumerate()
                    .filter(|(idx, b)| **b == PAREN && !is_escape_code_at(seg, *idx))
                    .map(|(idx, _)| idx)
                    .collect();
                alternatives.push(Alternative {
                    program: seg.to_vec(),
                    begin,
                    end,
                    parens,
                });
                if at_end {
                    break;
                }
                start = k + 1;
            }
            k += 1;
        }
        Ok(OsRegex {
            source: pattern.to_string(),
            alternatives,
            capturing,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the pattern matches somewhere in `subject` (read as a C string: up to the first
    /// NUL, as Wazuh sees every line), as SCA's `r:` and `n:` minterms match: compiled with
    /// `OS_RETURN_SUBSTRING`.
    pub fn is_match(&self, subject: &[u8]) -> bool {
        self.matches(subject, self.capturing)
    }

    /// Whether the pattern matches as Wazuh's one-shot `OS_Regex()` matches (compiled without
    /// `OS_RETURN_SUBSTRING`), which is how `d:` file-name filters are tested.
    pub fn is_match_plain(&self, subject: &[u8]) -> bool {
        self.matches(subject, false)
    }

    fn matches(&self, subject: &[u8], capturing: bool) -> bool {
        let subject = c_str(subject);
        self.alternatives.iter().any(|alt| {
            let mut slots: Vec<Option<isize>> = vec![None; alt.parens.len()];
            let caps = capturing.then_some(&mut slots);
            run(alt, subject, caps).is_some()
        })
    }

    /// Matches and returns the captured substrings of the first alternative that matches, or
    /// `None` when nothing matches. Captures come in open/close pairs as OS_Regex records them.
    pub fn captures(&self, subject: &[u8]) -> Option<Vec<Vec<u8>>> {
        let subject = c_str(subject);
        for alt in &self.alternatives {
            let mut slots: Vec<Option<isize>> = vec![None; alt.parens.len()];
            let caps = self.capturing.then_some(&mut slots);
            if run(alt, subject, caps).is_some() {
                let mut out = Vec::new();
                let mut j = 0;
                while j + 1 < slots.len() {
                    match (slots[j], slots[j + 1]) {
                        (Some(a), Some(b)) => {
                            let a = a.max(0) as usize;
                            let b = (b.max(0) as usize).min(subject.len());
                            out.push(if a <= b {
                                subject[a..b].to_vec()
                            } else {
                                Vec::new()
                            });
                        }
                        _ => break,
                    }
                    j += 2;
                }
                return Some(out);
            }
        }
        None
    }
}

/// The bytes before the first NUL.
fn c_str(s: &[u8]) -> &[u8] {
    match s.iter().position(|b| *b == 0) {
        Some(i) => &s[..i],
        None => s,
    }
}

/// Whether position `idx` of a compiled program is the code byte of an escape (so a `(` there is
/// not a parenthesis). Codes are 1..=15 and never equal `(`, so this is only a guard.
fn is_escape_code_at(seg: &[u8], idx: usize) -> bool {
    idx > 0 && seg[idx - 1] == BACKSLASH && seg[idx] <= 15
}

/// Runs one alternative over the subject. Returns the scanner's "return code" position when it
/// reports a match. Positions past either end read as NUL, as the C scanner's terminators do.
fn run(
    alt: &Alternative,
    subject: &[u8],
    mut caps: Option<&mut Vec<Option<isize>>>,
) -> Option<isize> {
    let prog = &alt.program;
    let pat = |i: usize| -> u8 { prog.get(i).copied().unwrap_or(0) };
    let sub = |i: isize| -> u8 {
        if i < 0 {
            0
        } else {
            subject.get(i as usize).copied().unwrap_or(0)
        }
    };
    let end_ok = |st: isize| !alt.end || sub(st) == 0;
    let record = |caps: &mut Option<&mut Vec<Option<isize>>>, at: usize, value: isize| {
        if let Some(slots) = caps.as_deref_mut()
            && let Some(slot) = alt.parens.iter().position(|p| *p == at)
        {
            slots[slot] = Some(value);
        }
    };

    let mut r_code: Option<isize> = None;
    let mut regex_matched = false;
    let mut st: isize = 0;
    let mut st_error: Option<isize> = None;
    let mut pt: usize = 0;
    let mut retry: [Option<(usize, isize)>; 4] = [None; 4];

    loop {
        'step: {
            match pat(pt) {
                0 if end_ok(st) => return r_code,
                PAREN => {
                    record(&mut caps, pt, st);
                    pt += 1;
                    if pat(pt) == 0 && end_ok(st) {
                        return r_code;
                    }
                }
                _ => {}
            }

            if pat(pt) == BACKSLASH {
                if class_matches(pat(pt + 1), sub(st)) {
                    let mut next_pt = pt + 2;
                    if !is_plus(pat(next_pt)) {
                        pt = next_pt;
                        if st_error.is_none() {
                            st_error = Some(st);
                        }
                        r_code = Some(st);
                        break 'step;
                    }
                    if pat(next_pt) == b'*' {
                        regex_matched = true;
                    }
                    if regex_matched {
                        next_pt += 1;
                        let mut ok_here: i32 = -1;
                        if pat(next_pt) == PAREN {
                            next_pt += 1;
                        }
                        if pat(next_pt) == 0 {
                            ok_here = 1;
                        } else if pat(next_pt) == BACKSLASH {
                            if class_matches(pat(next_pt + 1), sub(st)) {
                                ok_here = if !is_plus(pat(next_pt + 2)) { 2 } else { 0 };
                            }
                        } else if pat(next_pt) == sub(st).to_ascii_lowercase() {
                            regex_matched = false;
                            ok_here = 1;
                        }
                        if ok_here >= 0 {
                            if pat(next_pt - 1) == PAREN {
                                let v = if sub(st + 1) == 0 { st + 1 } else { st };
                                record(&mut caps, next_pt - 1, v);
                            }
                            if pat(next_pt) == 0 {
                                break 'step;
                            }
                            next_pt += ok_here as usize;
                            if let Some(slot) = retry.iter_mut().find(|s| s.is_none()) {
                                *slot = Some((pt, st));
                            }
                            pt = next_pt;
                        }
                    } else {
                        next_pt += 1;
                        if pat(next_pt) == PAREN {
                            let v = if sub(st + 1) == 0 { st + 1 } else { st };
                            record(&mut caps, next_pt, v);
                        }
                        regex_matched = true;
                    }
                    r_code = Some(st);
                    break 'step;
                } else if pat(pt + 3) == 0 && regex_matched && r_code.is_some() {
                    r_code = Some(st);
                    if end_ok(st) {
                        return r_code;
                    }
                } else if pat(pt + 2) == b'+' && regex_matched {
                    pt += 3;
                    st -= 1;
                    regex_matched = false;
                    break 'step;
                } else if pat(pt + 2) == b'*' {
                    pt += 3;
                    st -= 1;
                    r_code = Some(st);
                    regex_matched = false;
                    break 'step;
                }
                regex_matched = false;
            } else if pat(pt) == sub(st).to_ascii_lowercase() {
                pt += 1;
                if st_error.is_none() {
                    st_error = Some(st);
                }
                r_code = Some(st);
                break 'step;
            }

            // Mismatch: resume from the latest retry point, else restart the pattern.
            if let Some(slot) = retry.iter_mut().rev().find(|s| s.is_some()) {
                if let Some((p, s)) = slot.take() {
                    pt = p;
                    st = s;
                }
                break 'step;
            }
            if alt.begin {
                return None;
            }
            if let Some(s) = st_error.take() {
                st = s;
            }
            pt = 0;
            r_code = None;
        }
        st += 1;
        if sub(st) == 0 {
            break;
        }
    }

    // The subject is exhausted: record a trailing parenthesis, then accept if only optional
    // elements remain.
    if caps.is_some() {
        while pat(pt) != PAREN && pat(pt) != 0 {
            if pat(pt) == BACKSLASH && pat(pt + 2) == b'*' {
                pt += 3;
            } else {
                break;
            }
        }
        if pat(pt) == PAREN {
            record(&mut caps, pt, st);
        }
    }
    let mut p = pt;
    let at_end = |p: &mut usize| {
        if pat(*p) == PAREN {
            *p += 1;
        }
        pat(*p) == 0
    };
    // `\X*` followed by the end (a trailing parenthesis allowed): an optional element left over.
    let star_then_end = |p: &mut usize| {
        pat(*p) == BACKSLASH
            && {
                *p += 2;
                pat(*p) == b'*'
            }
            && {
                *p += 1;
                at_end(p)
            }
    };
    // The C evaluates these alternatives in order, each moving the same position on.
    let accept = at_end(&mut p)
        || (pat(p) == BACKSLASH
            && regex_matched
            && {
                p += 2;
                is_plus(pat(p))
            }
            && {
                p += 1;
                at_end(&mut p) || star_then_end(&mut p)
            })
        || star_then_end(&mut p);
    if accept { r_code } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        OsRegex::new(p).expect("compiles").is_match(s.as_bytes())
    }

    #[test]
    fn literals_are_case_insensitive_substrings() {
        assert!(m("Linux", "linux"));
        assert!(m("nodev", "tmpfs /tmp rw,NODEV,nosuid"));
        assert!(!m("nodev", "tmpfs /tmp rw,nosuid"));
    }

    #[test]
    fn dot_is_literal_and_escaped_dot_is_any() {
        assert!(m("12.", "12.11"));
        assert!(!m("a.c", "abc"));
        assert!(m("a\\.c", "abc"));
        assert!(m("a\\.c", "a.c"));
    }

    #[test]
    fn backslash_s_is_space_only() {
        assert!(m("^\\s*/tmp\\s", "/tmp tmpfs"));
        assert!(!m("a\\sb", "a\tb"));
        assert!(m("a\\tb", "a\tb"));
        assert!(m("^\\s*\\t*deny\\s*\\t*=", "\tdeny = 5"));
    }

    #[test]
    fn anchors_and_alternatives() {
        assert!(m("^active$|^enabled$", "enabled"));
        assert!(!m("^active$|^enabled$", "enabled-runtime"));
        assert!(m("masked|disabled", "Disabled"));
        assert!(!m("^#", "  # comment"));
        assert!(m("^#", "# comment"));
    }

    #[test]
    fn plus_and_star_follow_classes_only() {
        assert!(m("^\\d+$", "600"));
        assert!(!m("^\\d+$", "60a"));
        // A '+' after a literal is a literal plus.
        assert!(m("a+", "a+"));
        assert!(!m("a+", "aa"));
    }

    #[test]
    fn empty_and_anchor_only_patterns_never_match() {
        // The scanner returns its (unset) match position for an empty program.
        assert!(!m("", "anything"));
        assert!(!m("^", "anything"));
        assert!(!m("^$", ""));
    }

    #[test]
    fn captures_for_numeric_compare() {
        let r = OsRegex::new("^PASS_MAX_DAYS\\s+(\\d+)").expect("compiles");
        let caps = r.captures(b"PASS_MAX_DAYS   365").expect("matches");
        assert_eq!(caps, vec![b"365".to_vec()]);
        let r = OsRegex::new("minlen\\s*=\\s*(\\d+)").expect("compiles");
        assert_eq!(r.captures(b"minlen = 14").expect("m"), vec![b"14".to_vec()]);
    }

    #[test]
    fn d_plus_without_backslash_never_captures_digits() {
        // Stock Debian 12 checks use `(d+)`: a literal 'd' followed by a literal '+'.
        let r = OsRegex::new("^\\s*maxlogins\\s+(d+)").expect("compiles");
        assert!(r.captures(b"maxlogins 10").is_none());
    }

    #[test]
    fn compile_errors() {
        assert!(matches!(
            OsRegex::new("a\\qb"),
            Err(OsRegexError::BadEscape { offset: 1, .. })
        ));
        assert!(matches!(
            OsRegex::new("((a))"),
            Err(OsRegexError::BadParenthesis { .. })
        ));
        assert!(matches!(
            OsRegex::new("(a|b)"),
            Err(OsRegexError::BadParenthesis { .. })
        ));
        assert!(matches!(
            OsRegex::new("a)"),
            Err(OsRegexError::BadParenthesis { .. })
        ));
        assert!(matches!(
            OsRegex::new("a\\"),
            Err(OsRegexError::BadEscape { .. })
        ));
        assert!(OsRegex::new(&"a".repeat(2049)).is_err());
    }

    #[test]
    fn escaped_specials_are_literals() {
        assert!(m("\\$HOME", "echo $HOME"));
        assert!(m("a\\|b", "a|b"));
        assert!(m("\\(x\\)", "(x)"));
        assert!(m("c:\\\\", "c:\\"));
    }

    #[test]
    fn parentheses_anywhere_switch_the_end_of_subject_handling() {
        // Checked against Wazuh's C implementation: with OS_RETURN_SUBSTRING and a ')' in the
        // pattern, every alternative skips trailing `\X*` elements before the final test.
        assert!(!m("\\w*\\t+", "A"));
        assert!(m("(x)|\\w*\\t+", "A"));
        // `OS_Regex()` (d: file-name filters) compiles without substrings: no such switch.
        let plain = OsRegex::new("(x)|\\w*\\t+").expect("compiles");
        assert!(!plain.is_match_plain(b"A"));
    }

    #[test]
    fn subject_is_a_c_string() {
        assert!(!m("b", "a\0b"));
    }

    #[test]
    fn p_class() {
        assert!(m("^\\p$", "!"));
        assert!(m("^\\p$", "}"));
        assert!(!m("^\\p$", "/"));
        assert!(!m("^\\p$", "_"));
    }
}
