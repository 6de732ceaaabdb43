//! OS_Match ("sregex"), the simple matcher Wazuh 4.x uses for `d:` file-name filters.
//!
//! Alternatives are separated by `|`; each is a case-insensitive substring, a prefix (`^x`), a
//! suffix (`x$`), an exact name (`^x$`), or always true when empty. No other character is special:
//! `.` and `*` are literal, so `d:/etc/profile.d -> .sh` means "name contains `.sh`".

/// One alternative of an OS_Match pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Alt {
    /// `^x$`: whole name, case-insensitive.
    Exact(Vec<u8>),
    /// `^x`: prefix, case-insensitive.
    Prefix(Vec<u8>),
    /// `x$`: suffix, case-insensitive.
    Suffix(Vec<u8>),
    /// `x`: substring, case-insensitive.
    Contains(Vec<u8>),
    /// Empty alternative: matches everything.
    Any,
    /// A pattern containing byte 0xE3 switches OS_Match to a case-sensitive substring search.
    ContainsExact(Vec<u8>),
}

/// A compiled OS_Match pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsMatch {
    source: String,
    alts: Vec<Alt>,
}

impl OsMatch {
    /// Compiles a pattern (OS_Match never fails to compile short patterns).
    pub fn new(pattern: &str) -> OsMatch {
        let lowered: Vec<u8> = pattern.bytes().map(|b| b.to_ascii_lowercase()).collect();
        let exact_substring = lowered.contains(&0xE3);
        let alts = lowered
            .split(|b| *b == b'|')
            .map(|seg| {
                let begins = seg.first() == Some(&b'^');
                let ends = seg.last() == Some(&b'$');
                if begins && ends && seg.len() >= 2 {
                    Alt::Exact(seg[1..seg.len() - 1].to_vec())
                } else if begins && ends {
                    // "^" alone: a zero-length prefix, always true.
                    Alt::Prefix(Vec::new())
                } else if seg.is_empty() {
                    Alt::Any
                } else if ends {
                    Alt::Suffix(seg[..seg.len() - 1].to_vec())
                } else if begins {
                    Alt::Prefix(seg[1..].to_vec())
                } else if exact_substring {
                    Alt::ContainsExact(seg.to_vec())
                } else {
                    Alt::Contains(seg.to_vec())
                }
            })
            .collect();
        OsMatch {
            source: pattern.to_string(),
            alts,
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `name` matches any alternative.
    pub fn is_match(&self, name: &[u8]) -> bool {
        let lower: Vec<u8> = name.iter().map(|b| b.to_ascii_lowercase()).collect();
        self.alts.iter().any(|alt| match alt {
            Alt::Exact(p) => lower == *p,
            Alt::Prefix(p) => lower.starts_with(p),
            Alt::Suffix(p) => lower.ends_with(p),
            Alt::Contains(p) => contains(&lower, p),
            Alt::ContainsExact(p) => contains(name, p),
            Alt::Any => true,
        })
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert!(OsMatch::new(".sh").is_match(b"Z99-cloud.SH"));
        assert!(OsMatch::new(".sh").is_match(b"bash_completion.sh"));
        assert!(!OsMatch::new(".sh").is_match(b"xsh"));
        assert!(OsMatch::new("^.mysql_history$").is_match(b".mysql_history"));
        assert!(!OsMatch::new("^.mysql_history$").is_match(b".mysql_history.bak"));
        assert!(OsMatch::new("^audit").is_match(b"audit.rules"));
        assert!(OsMatch::new(".rules$").is_match(b"audit.rules"));
        assert!(!OsMatch::new(".rules$").is_match(b"audit.rules~"));
        assert!(OsMatch::new("a|b").is_match(b"xb"));
        assert!(OsMatch::new("a||b").is_match(b"zzz"));
        // `*` is literal: a glob does not work as a glob.
        assert!(!OsMatch::new("*.conf").is_match(b"x.conf"));
    }
}
