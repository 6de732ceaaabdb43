//! Small text helpers shared by the renderers.

use rampart_core::{CheckOutcome, Evidence, Observation};

/// One line describing an observation: `target:line: detail — text`.
pub fn observation_line(o: &Observation) -> String {
    let mut s = o.target.clone();
    if let Some(l) = o.line {
        s.push_str(&format!(":{l}"));
    }
    if let Some(d) = &o.detail {
        s.push_str(": ");
        s.push_str(d);
    }
    if let Some(t) = &o.text {
        let t = t.replace('\n', " ⏎ ");
        s.push_str(" — ");
        s.push_str(&t);
    }
    s
}

/// The evidence of a check as plain text, one rule per paragraph.
pub fn evidence_text(evidence: &[Evidence]) -> String {
    let mut out = String::new();
    for e in evidence {
        out.push_str(&format!("[{}] {}\n", verdict(e), e.rule));
        for o in &e.observations {
            out.push_str("    ");
            out.push_str(&observation_line(o));
            out.push('\n');
        }
    }
    out
}

/// A rule verdict as a word.
pub fn verdict(e: &Evidence) -> &'static str {
    match e.verdict {
        rampart_core::RuleVerdict::Found => "found",
        rampart_core::RuleVerdict::NotFound => "not found",
        rampart_core::RuleVerdict::Invalid => "not applicable",
        rampart_core::RuleVerdict::Skipped => "skipped",
    }
}

/// Compliance mappings as `key: a, b; key2: c`.
pub fn compliance_text(c: &CheckOutcome) -> String {
    c.compliance
        .iter()
        .map(|(k, v)| format!("{k}: {}", v.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The first `max` characters of `s` on one line.
pub fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}
