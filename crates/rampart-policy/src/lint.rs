//! Findings about policies that load but probably do not do what their author meant.
//!
//! Most come from real stock Wazuh policies (see `../shared/reference/wazuh-sca-format.md` §6):
//! Wazuh evaluates them silently, and the checks quietly never match. Rampart evaluates them
//! exactly as Wazuh does, and tells the author here.

use crate::error::{Diagnostic, Level};
use crate::ir::{Check, Compare, Dialect, Matcher, NameFilter, Pattern, Policy, Probe, Rule, Test};

/// Lints a compiled policy; findings are warnings, sorted by position.
pub fn lint(policy: &Policy) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if let Some(req) = &policy.requirements {
        for r in &req.rules {
            lint_rule(r, None, Dialect::Sca4, &mut out);
        }
    }
    for c in &policy.checks {
        for r in c.rules.iter().chain(&c.applies_if) {
            lint_rule(r, Some(c), c.dialect, &mut out);
        }
    }
    out.sort_by(|a, b| {
        (a.location.line, a.location.column).cmp(&(b.location.line, b.location.column))
    });
    out
}

fn warn(
    out: &mut Vec<Diagnostic>,
    rule: &Rule,
    check: Option<&Check>,
    code: &'static str,
    message: String,
) {
    out.push(Diagnostic {
        level: Level::Warning,
        location: rule.location.clone(),
        check: check.map(|c| c.id.clone()),
        code,
        message,
    });
}

fn lint_rule(rule: &Rule, check: Option<&Check>, dialect: Dialect, out: &mut Vec<Diagnostic>) {
    let pattern = match &rule.probe {
        Probe::File { content, .. } => content.as_ref(),
        Probe::Directory {
            paths,
            filter,
            content,
        } => {
            for p in paths {
                if p.contains(['*', '?', '[']) {
                    warn(
                        out,
                        rule,
                        check,
                        "sca-dir-glob",
                        format!(
                            "directory '{p}' contains glob characters; d: rules take literal paths, so this directory never exists (the rule is not applicable)"
                        ),
                    );
                }
            }
            if let Some(f) = filter {
                let text = match f {
                    NameFilter::Regex { fallback, .. } => fallback.as_str().to_string(),
                    NameFilter::Match(m) => m.as_str().to_string(),
                    NameFilter::Matcher(m) => m.as_str().to_string(),
                    NameFilter::Exact(s) => s.clone(),
                };
                if text.contains(" && ") || text.starts_with('!') {
                    warn(
                        out,
                        rule,
                        check,
                        "sca-filter-is-pattern",
                        format!(
                            "file-name filter '{text}' looks like a content pattern; the filter is matched against file names (and `&&`/`!` are not operators there), so no file is selected"
                        ),
                    );
                } else if matches!(f, NameFilter::Match(_)) && text.contains(['\\', '*']) {
                    warn(
                        out,
                        rule,
                        check,
                        "sca-filter-literal",
                        format!(
                            "file-name filter '{text}' has no 'r:' prefix, so it is a plain substring match: '\\' and '*' are literal characters"
                        ),
                    );
                }
            }
            content.as_ref()
        }
        Probe::Command { output, .. } => output.as_ref(),
        Probe::Process { pattern } => Some(pattern),
        Probe::Registry { data, .. } => data.as_ref(),
        _ => None,
    };
    if let Some(p) = pattern {
        lint_pattern(p, rule, check, dialect, out);
    }
}

fn lint_pattern(
    p: &Pattern,
    rule: &Rule,
    check: Option<&Check>,
    dialect: Dialect,
    out: &mut Vec<Diagnostic>,
) {
    if p.text.contains("  && ") || p.text.contains(" &&  ") {
        warn(
            out,
            rule,
            check,
            "sca-double-space",
            format!(
                "pattern '{}' has a double space around '&&': minterms are split on exactly \" && \", so a space becomes part of a minterm",
                p.text
            ),
        );
    }
    let several = p.minterms.len() > 1;
    for m in &p.minterms {
        match &m.test {
            Test::Literal { text, .. } => {
                if text.starts_with(' ') || text.contains("r:") || text.contains("n:") {
                    warn(
                        out,
                        rule,
                        check,
                        "sca-literal-prefix",
                        format!(
                            "minterm '{text}' is a literal (whole-line) comparison because it does not start with 'r:' or 'n:'"
                        ),
                    );
                } else if several || looks_like_regex(text) {
                    warn(
                        out,
                        rule,
                        check,
                        "sca-literal-minterm",
                        format!(
                            "minterm '{text}' has no 'r:' prefix, so it only matches a line that is exactly '{text}'; add 'r:' for a regex"
                        ),
                    );
                }
            }
            Test::Regex(re) => lint_regex(re, false, rule, check, out),
            Test::Numeric {
                regex,
                compare,
                text,
            } => {
                lint_regex(regex, true, rule, check, out);
                let src = regex.as_str();
                if !src.contains('(') {
                    warn(
                        out,
                        rule,
                        check,
                        "sca-no-capture",
                        format!(
                            "'{src}' has no capture group; n: compares the first group, so matching lines make the rule not applicable"
                        ),
                    );
                }
                match compare {
                    Compare::NoKeyword(msg) | Compare::Invalid(msg) => {
                        warn(out, rule, check, "sca-bad-compare", msg.clone());
                    }
                    Compare::Op(..) if dialect == Dialect::Sca4 => {
                        let canonical = ["==", "!=", "<=", ">=", "<", ">"];
                        let op = text.split_whitespace().next().unwrap_or("");
                        if !canonical.contains(&op) || text.split_whitespace().count() != 2 {
                            warn(
                                out,
                                rule,
                                check,
                                "sca-compare-operator",
                                format!(
                                    "comparison '{text}' is accepted by Wazuh 4.x (as {}) but is not 'OPERATOR VALUE' with a canonical operator; Wazuh 5.x rejects it",
                                    describe_v4(compare)
                                ),
                            );
                        }
                    }
                    Compare::Op(..) => {}
                }
            }
        }
    }
}

fn describe_v4(c: &Compare) -> String {
    match c {
        Compare::Op(op, v) => format!("{op:?} {v}"),
        _ => "invalid".into(),
    }
}

fn looks_like_regex(text: &str) -> bool {
    text.contains('\\') || text.starts_with('^') || text.ends_with('$') || text.contains(".*")
}

/// Regex findings; `numeric` says the regex feeds an `n:` comparison.
fn lint_regex(
    re: &Matcher,
    numeric: bool,
    rule: &Rule,
    check: Option<&Check>,
    out: &mut Vec<Diagnostic>,
) {
    match re {
        Matcher::Broken { pattern, error } => warn(
            out,
            rule,
            check,
            "bad-regex",
            format!(
                "regex '{pattern}' does not compile ({error}); Wazuh silently treats it as never matching"
            ),
        ),
        Matcher::Os(r) => {
            let src = r.as_str();
            if src.contains("(d+)") {
                let effect = if numeric {
                    "so it never captures digits and this rule never matches"
                } else {
                    "not digits"
                };
                warn(
                    out,
                    rule,
                    check,
                    "sca-d-plus",
                    format!(
                        "'{src}': '(d+)' is a literal 'd' followed by a literal '+', {effect}; write '(\\d+)'"
                    ),
                );
            }
            if src.contains("|r:") || src.contains("| r:") {
                warn(
                    out,
                    rule,
                    check,
                    "sca-or-prefix",
                    format!(
                        "regex '{src}' contains 'r:' after '|': alternatives of one regex do not take a prefix, so 'r:' is matched literally"
                    ),
                );
            }
        }
        _ => {}
    }
}
