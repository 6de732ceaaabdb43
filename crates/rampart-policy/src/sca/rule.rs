//! Parsing of SCA rule strings (`f:`, `d:`, `c:`, `p:`, `r:`) and their patterns into the IR,
//! following `wm_sca.c` (4.x) and the 5.x parser where they differ.

use super::osmatch::OsMatch;
use super::osregex::OsRegex;
use super::tokenize::tokenize;
use crate::ir::{Compare, CompareOp, Dialect, Matcher, Minterm, NameFilter, Pattern, Probe, Test};

/// Regex engine a check uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegexEngine {
    /// OS_Regex (4.x default).
    OsRegex,
    /// PCRE2, compiled case-sensitively without flags (4.x `regex_type: pcre2`).
    Pcre2,
    /// PCRE2 caseless + multiline (5.x).
    Pcre2Caseless,
}

/// The result of parsing one rule string.
#[derive(Debug)]
pub struct ParsedRule {
    /// `not ` prefix.
    pub negated: bool,
    /// The probe with its compiled pattern.
    pub probe: Probe,
}

/// A rule that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError(pub String);

/// Splits at the first `" -> "` (space, dash, greater-than, space), as `wm_sca_get_pattern`.
pub fn split_arrow(s: &str) -> (&str, Option<&str>) {
    match s.find(" -> ") {
        Some(i) => (&s[..i], Some(&s[i + 4..])),
        None => (s, None),
    }
}

/// Splits on a multi-character delimiter, skipping empty tokens at the start and between
/// consecutive delimiters, like Wazuh's `w_strtok_r_str_delim`.
pub fn split_str_delim<'a>(s: &'a str, delim: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        while rest.starts_with(delim) {
            rest = &rest[delim.len()..];
        }
        if rest.is_empty() {
            break;
        }
        match rest.find(delim) {
            Some(i) => {
                out.push(&rest[..i]);
                rest = &rest[i + delim.len()..];
            }
            None => {
                out.push(rest);
                break;
            }
        }
    }
    out
}

/// Replaces variables in `text`, longest name first (so `$a_b` is not clobbered by `$a`).
pub fn substitute(text: &str, variables: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = variables.iter().collect();
    sorted.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
    let mut out = text.to_string();
    for (name, value) in sorted {
        if out.contains(name.as_str()) {
            out = out.replace(name.as_str(), value);
        }
    }
    out
}

/// Parses one rule. `variables` are substituted where the dialect says so (4.x: the location part
/// of `f:`, `c:` and `d:` only; 5.x substitutes the whole document before we get here).
pub fn parse_rule(
    raw: &str,
    dialect: Dialect,
    engine: RegexEngine,
    variables: &[(String, String)],
) -> Result<ParsedRule, RuleError> {
    let (negated, body) = if raw.starts_with("not ") || raw.starts_with("NOT ") {
        (true, &raw[4..])
    } else {
        (false, raw)
    };
    let Some(colon) = body.find(':') else {
        return Err(RuleError(format!(
            "rule '{raw}' has no type prefix (expected f:, d:, c:, p: or r:)"
        )));
    };
    let kind = &body[..colon];
    // `get_value` drops one leading '!' from the type; the policy validator rejects such rules
    // before they are evaluated, so we reject them here too.
    let value = &body[colon + 1..];
    let split_lists = dialect == Dialect::Sca4;
    let list = |s: &str| -> Vec<String> {
        if split_lists {
            s.split(',')
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect()
        } else {
            vec![s.to_string()]
        }
    };
    let probe = match kind {
        "f" => {
            let (loc, pat) = split_arrow(value);
            let loc = substitute(loc, variables);
            Probe::File {
                paths: list(&loc),
                content: pat.map(|p| parse_pattern(p, dialect, engine)).transpose()?,
            }
        }
        "d" => {
            let (loc, rest) = split_arrow(value);
            let loc = substitute(loc, variables);
            let (filter, pat) = match rest {
                Some(r) => {
                    let (f, p) = split_arrow(r);
                    (Some(f), p)
                }
                None => (None, None),
            };
            let dirs = if split_lists {
                split_str_delim(&loc, ",")
                    .into_iter()
                    .map(str::to_string)
                    .collect()
            } else {
                vec![loc.clone()]
            };
            Probe::Directory {
                paths: dirs,
                filter: filter.map(|f| parse_name_filter(f, dialect)).transpose()?,
                content: pat.map(|p| parse_pattern(p, dialect, engine)).transpose()?,
            }
        }
        "c" => {
            let (cmd, pat) = split_arrow(value);
            let cmd = substitute(cmd, variables);
            Probe::Command {
                argv: tokenize(&cmd),
                command: cmd,
                output: pat.map(|p| parse_pattern(p, dialect, engine)).transpose()?,
            }
        }
        "p" => Probe::Process {
            // 4.x passes the whole value as the pattern (no `->` split).
            pattern: parse_pattern(value, dialect, engine)?,
        },
        "r" => {
            let (key, rest) = split_arrow(value);
            let (val, pat) = match rest {
                Some(r) => {
                    let (v, p) = split_arrow(r);
                    (Some(v.to_string()), p)
                }
                None => (None, None),
            };
            Probe::Registry {
                key: key.to_string(),
                value: val,
                data: pat.map(|p| parse_pattern(p, dialect, engine)).transpose()?,
            }
        }
        other => {
            return Err(RuleError(format!(
                "unknown rule type '{other}:' in '{raw}' (expected f:, d:, c:, p: or r:)"
            )));
        }
    };
    Ok(ParsedRule { negated, probe })
}

fn compile(pattern: &str, engine: RegexEngine) -> Matcher {
    match engine {
        RegexEngine::OsRegex => match OsRegex::new(pattern) {
            Ok(r) => Matcher::Os(r),
            Err(e) => Matcher::Broken {
                pattern: pattern.to_string(),
                error: e.to_string(),
            },
        },
        RegexEngine::Pcre2 | RegexEngine::Pcre2Caseless => {
            let mut b = pcre2::bytes::RegexBuilder::new();
            if engine == RegexEngine::Pcre2Caseless {
                b.caseless(true).multi_line(true);
            }
            b.jit_if_available(true);
            match b.build(pattern) {
                Ok(r) => Matcher::Pcre(std::sync::Arc::new(r)),
                Err(e) => Matcher::Broken {
                    pattern: pattern.to_string(),
                    error: e.to_string(),
                },
            }
        }
    }
}

/// Parses a pattern: minterms separated by `" && "`, each optionally negated with `!`.
pub fn parse_pattern(
    text: &str,
    dialect: Dialect,
    engine: RegexEngine,
) -> Result<Pattern, RuleError> {
    let mut minterms = Vec::new();
    for raw in split_str_delim(text, " && ") {
        let (negated, m) = match raw.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        let prefix = m.get(..2).map(str::to_ascii_lowercase);
        let test = match prefix.as_deref() {
            Some("r:") => Test::Regex(compile(&m[2..], engine)),
            Some("n:") => parse_numeric(&m[2..], dialect, engine),
            _ => Test::Literal {
                text: m.to_string(),
                case_sensitive: dialect == Dialect::Sca5,
            },
        };
        minterms.push(Minterm { negated, test });
    }
    Ok(Pattern {
        text: text.to_string(),
        minterms,
    })
}

fn parse_numeric(body: &str, dialect: Dialect, engine: RegexEngine) -> Test {
    let Some(i) = body.find(" compare ") else {
        return Test::Numeric {
            regex: compile(body, engine),
            compare: Compare::NoKeyword(format!(
                "Keyword 'compare' not found. Did you forget adding 'compare COMPARATOR VALUE' to your rule?' {body}'"
            )),
            text: String::new(),
        };
    };
    let regex_text = &body[..i];
    let cmp_text = &body[i + 9..];
    let compare = match dialect {
        Dialect::Sca5 => parse_compare_v5(cmp_text),
        _ => parse_compare_v4(cmp_text),
    };
    Test::Numeric {
        regex: compile(regex_text, engine),
        compare,
        text: cmp_text.to_string(),
    }
}

/// 4.x: the value is the first run of digits (sign lost); an operator starting with `=` means
/// equality; otherwise the first of `!=`, `<=`, `>=`, `<`, `>` found anywhere in the text.
pub fn parse_compare_v4(text: &str) -> Compare {
    let digits: String = text
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    if digits.is_empty() {
        return Compare::Invalid(format!(
            "No integer was found within the comparison '{text}' "
        ));
    }
    let Ok(value) = digits.parse::<i64>() else {
        return Compare::Invalid(format!(
            "Conversion error. Cannot convert '{digits}' to integer."
        ));
    };
    let op = if text.starts_with('=') {
        CompareOp::Eq
    } else if text.contains("!=") {
        CompareOp::Ne
    } else if text.contains("<=") {
        CompareOp::Le
    } else if text.contains(">=") {
        CompareOp::Ge
    } else if text.contains('<') {
        CompareOp::Lt
    } else if text.contains('>') {
        CompareOp::Gt
    } else {
        return Compare::Invalid(format!("Unrecognized operation: '{text}'"));
    };
    Compare::Op(op, value)
}

/// 5.x: `OP VALUE` separated by whitespace, with a canonical operator.
pub fn parse_compare_v5(text: &str) -> Compare {
    let mut parts = text.split_whitespace();
    let (Some(op), Some(value), None) = (parts.next(), parts.next(), parts.next()) else {
        return Compare::Invalid(format!(
            "Invalid comparison '{text}': expected 'OPERATOR VALUE'"
        ));
    };
    let op = match op {
        "==" => CompareOp::Eq,
        "!=" => CompareOp::Ne,
        "<" => CompareOp::Lt,
        "<=" => CompareOp::Le,
        ">" => CompareOp::Gt,
        ">=" => CompareOp::Ge,
        other => return Compare::Invalid(format!("Invalid comparison operator '{other}'")),
    };
    match value.parse::<i64>() {
        Ok(v) => Compare::Op(op, v),
        Err(_) => Compare::Invalid(format!("Invalid comparison value '{value}'")),
    }
}

fn parse_name_filter(f: &str, dialect: Dialect) -> Result<NameFilter, RuleError> {
    Ok(match dialect {
        Dialect::Sca5 => match f.strip_prefix("r:") {
            Some(re) => NameFilter::Matcher(compile(re, RegexEngine::Pcre2Caseless)),
            None => NameFilter::Exact(f.to_string()),
        },
        _ => {
            // 4.x: an `r:` filter that does not match still falls back to OS_Match of the whole
            // text; `NameFilter::Regex` keeps the whole text for that fallback.
            if f.as_bytes()
                .get(..2)
                .is_some_and(|p| p.eq_ignore_ascii_case(b"r:"))
            {
                match OsRegex::new(&f[2..]) {
                    Ok(regex) => NameFilter::Regex {
                        regex,
                        fallback: OsMatch::new(f),
                    },
                    Err(_) => NameFilter::Match(OsMatch::new(f)),
                }
            } else {
                NameFilter::Match(OsMatch::new(f))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_v4_quirks() {
        assert_eq!(parse_compare_v4("= 0"), Compare::Op(CompareOp::Eq, 0));
        assert_eq!(parse_compare_v4("=> 5"), Compare::Op(CompareOp::Eq, 5));
        assert_eq!(parse_compare_v4("=< 5"), Compare::Op(CompareOp::Eq, 5));
        assert_eq!(parse_compare_v4("<=15"), Compare::Op(CompareOp::Le, 15));
        assert_eq!(parse_compare_v4("\\!= 0"), Compare::Op(CompareOp::Ne, 0));
        assert_eq!(parse_compare_v4(">= -3"), Compare::Op(CompareOp::Ge, 3));
        assert!(matches!(parse_compare_v4("is 5"), Compare::Invalid(_)));
        assert!(matches!(parse_compare_v4("<"), Compare::Invalid(_)));
    }

    #[test]
    fn compare_v5_is_strict() {
        assert_eq!(parse_compare_v5("<= 15"), Compare::Op(CompareOp::Le, 15));
        assert!(matches!(parse_compare_v5("<=15"), Compare::Invalid(_)));
        assert!(matches!(parse_compare_v5("= 1"), Compare::Invalid(_)));
        assert!(matches!(parse_compare_v5("=> 1"), Compare::Invalid(_)));
    }

    #[test]
    fn arrow_and_delimiters() {
        assert_eq!(split_arrow("c:a -> r:b -> c"), ("c:a", Some("r:b -> c")));
        assert_eq!(split_arrow("f:/a->b"), ("f:/a->b", None));
        assert_eq!(split_str_delim("r:a && r:b", " && "), ["r:a", "r:b"]);
        assert_eq!(
            split_str_delim(" && r:a &&  && r:b", " && "),
            ["r:a", "r:b"]
        );
        assert_eq!(split_str_delim("", " && "), Vec::<&str>::new());
    }

    #[test]
    fn double_space_before_and_makes_literal() {
        // `r:a  && r:b` splits into "r:a " and "r:b"; `r:a &&  r:b` into "r:a" and " r:b", which
        // is a literal minterm.
        let p = parse_pattern("r:a &&  r:b", Dialect::Sca4, RegexEngine::OsRegex).expect("ok");
        assert!(matches!(&p.minterms[1].test, Test::Literal { text, .. } if text == " r:b"));
        let p = parse_pattern("r:a  && r:b", Dialect::Sca4, RegexEngine::OsRegex).expect("ok");
        assert_eq!(p.minterms.len(), 2);
    }

    #[test]
    fn variables_longest_first() {
        let vars = vec![
            ("$a".to_string(), "X".to_string()),
            ("$a_b".to_string(), "Y".to_string()),
        ];
        assert_eq!(substitute("$a_b $a", &vars), "Y X");
    }

    #[test]
    fn comma_lists_split_in_v4_only() {
        let r =
            parse_rule("f:/a,,/b -> r:x", Dialect::Sca4, RegexEngine::OsRegex, &[]).expect("ok");
        assert!(matches!(r.probe, Probe::File { ref paths, .. } if paths == &["/a", "/b"]));
        let r = parse_rule("f:/a,/b", Dialect::Sca5, RegexEngine::Pcre2Caseless, &[]).expect("ok");
        assert!(matches!(r.probe, Probe::File { ref paths, .. } if paths == &["/a,/b"]));
    }

    #[test]
    fn multibyte_text_never_splits_inside_a_character() {
        for rule in [
            "d:/x -> \u{20ac}abc",
            "d:/x -> \u{20ac}",
            "f:/x -> \u{20ac}",
            "c:x -> !\u{20ac}",
            "d:/x -> r",
        ] {
            assert!(
                parse_rule(rule, Dialect::Sca4, RegexEngine::OsRegex, &[]).is_ok(),
                "{rule}"
            );
        }
    }

    #[test]
    fn process_value_is_whole_pattern() {
        let r = parse_rule("p:sshd", Dialect::Sca4, RegexEngine::OsRegex, &[]).expect("ok");
        assert!(
            matches!(&r.probe, Probe::Process { pattern } if matches!(&pattern.minterms[0].test, Test::Literal { text, .. } if text == "sshd"))
        );
    }

    #[test]
    fn negation_prefix_and_bad_type() {
        let r =
            parse_rule("NOT c:ls -> r:x", Dialect::Sca4, RegexEngine::OsRegex, &[]).expect("ok");
        assert!(r.negated);
        assert!(parse_rule("x:foo", Dialect::Sca4, RegexEngine::OsRegex, &[]).is_err());
        assert!(parse_rule("file:/etc", Dialect::Sca4, RegexEngine::OsRegex, &[]).is_err());
        assert!(parse_rule("no colon", Dialect::Sca4, RegexEngine::OsRegex, &[]).is_err());
    }
}
