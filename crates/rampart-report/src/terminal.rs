//! The terminal report: what failed and how to fix it first, then the tables.

use crate::PrettyOptions;
use crate::text::{observation_line, one_line};
use rampart_core::{CheckOutcome, RuleVerdict, ScanReport, Severity, Status, Summary};
use std::fmt::Write;

struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn status(&self, st: Status) -> String {
        let (label, code) = match st {
            Status::Pass => ("PASS ", "32"),
            Status::Fail => ("FAIL ", "1;31"),
            Status::NotApplicable => ("N/A  ", "2"),
            Status::NotRun => ("NORUN", "33"),
            Status::Error => ("ERROR", "1;35"),
            Status::Waived => ("WAIVE", "36"),
        };
        self.wrap(code, label)
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
    fn score(&self, score: f64) -> String {
        self.colour_score(score, &format!("{score:.1}%"))
    }
    fn colour_score(&self, score: f64, text: &str) -> String {
        let code = if score >= 80.0 {
            "1;32"
        } else if score >= 50.0 {
            "1;33"
        } else {
            "1;31"
        };
        self.wrap(code, text)
    }
}

/// Renders the report for a terminal.
pub fn render(report: &ScanReport, opts: PrettyOptions) -> String {
    let p = Paint { on: opts.color };
    let mut out = String::new();
    let h = &report.host;
    let _ = writeln!(
        out,
        "{} {} — {} ({}, kernel {})",
        p.bold("Rampart scan"),
        report.scan_id,
        h.hostname,
        h.os,
        h.kernel
    );
    if let Some(root) = &h.root {
        let _ = writeln!(out, "root: {root}");
    }
    for pr in &report.policies {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{} {} ({}, {})",
            p.bold("Policy"),
            pr.policy.name,
            pr.policy.id,
            pr.policy.format
        );
        let _ = writeln!(out, "  {}", p.dim(&pr.policy.file));
        if let Some(req) = &pr.requirements {
            if req.satisfied {
                let _ = writeln!(out, "  requirements met: {}", req.title);
            } else {
                let _ = writeln!(
                    out,
                    "  {} {} — {}",
                    p.wrap("33", "requirements NOT met:"),
                    req.title,
                    req.reason.as_deref().unwrap_or("")
                );
            }
            if let Some(note) = &req.note {
                let _ = writeln!(out, "  {}", p.dim(&format!("requirements {note}")));
            }
        }
        let _ = writeln!(out);
        for c in &pr.checks {
            let show = opts.verbose || matches!(c.status, Status::Fail | Status::Error);
            if show {
                check_block(&mut out, &p, c, opts.verbose);
            }
        }
        if !opts.verbose {
            let hidden = pr
                .checks
                .iter()
                .filter(|c| !matches!(c.status, Status::Fail | Status::Error))
                .count();
            if hidden > 0 {
                let _ = writeln!(
                    out,
                    "  {}",
                    p.dim(&format!("({hidden} passed, not applicable or waived checks not shown; --show-all lists them)"))
                );
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "  {}", p.bold("By severity"));
        table_header(&mut out, "severity");
        for sev in Severity::DESCENDING {
            if let Some(s) = pr.severities.get(&sev) {
                table_row(&mut out, &p, sev.as_str(), s);
            }
        }
        if !pr.frameworks.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(out, "  {}", p.bold("By framework"));
            table_header(&mut out, "framework");
            for (f, s) in &pr.frameworks {
                table_row(&mut out, &p, f.as_str(), s);
            }
        }
        let s = &pr.summary;
        let _ = writeln!(out);
        // Wazuh's formula gives 0 % when nothing passed or failed; a number would read as a
        // verdict on a policy that was never evaluated.
        let score = if s.passed + s.failed == 0 {
            p.wrap("33", "none (no check evaluated)")
        } else {
            p.score(s.score)
        };
        let _ = writeln!(
            out,
            "  {} {}  ({} passed, {} failed, {} not applicable, {} not run, {} waived, {} errors; {} checks)",
            p.bold("Score"),
            score,
            s.passed,
            s.failed,
            s.not_applicable,
            s.not_run,
            s.waived,
            s.error,
            s.total
        );
    }
    for w in &report.warnings {
        let _ = writeln!(out, "{} {w}", p.wrap("33", "warning:"));
    }
    out
}

fn check_block(out: &mut String, p: &Paint, c: &CheckOutcome, verbose: bool) {
    let sev = if c.severity == Severity::Unknown {
        String::new()
    } else {
        format!(" [{}]", c.severity)
    };
    let _ = writeln!(
        out,
        "  {} {:>6}  {}{}",
        p.status(c.status),
        c.id,
        c.title,
        p.dim(&sev)
    );
    if let Some(r) = &c.reason {
        let _ = writeln!(out, "         why: {}", one_line(r, 160));
    }
    if let Some(w) = &c.waiver {
        let _ = writeln!(
            out,
            "         waived: {} (approver {}, expires {})",
            one_line(&w.justification, 120),
            w.approver.as_deref().unwrap_or("-"),
            w.expires.as_deref().unwrap_or("never")
        );
    }
    if matches!(c.status, Status::Fail | Status::Error) || verbose {
        for e in c
            .evidence
            .iter()
            .filter(|e| e.verdict != RuleVerdict::Skipped)
        {
            for o in e.observations.iter().take(3) {
                let _ = writeln!(out, "         saw: {}", one_line(&observation_line(o), 160));
            }
        }
    }
    if c.status == Status::Fail && !c.remediation.is_empty() {
        let _ = writeln!(out, "         fix: {}", one_line(&c.remediation, 200));
    }
}

fn table_header(out: &mut String, first: &str) {
    let _ = writeln!(
        out,
        "    {first:<16} {:>5} {:>5} {:>5} {:>6} {:>6} {:>6} {:>7}",
        "pass", "fail", "n/a", "notrun", "waived", "error", "score"
    );
}

fn table_row(out: &mut String, p: &Paint, name: &str, s: &Summary) {
    let _ = writeln!(
        out,
        "    {name:<16} {:>5} {:>5} {:>5} {:>6} {:>6} {:>6} {}",
        s.passed,
        s.failed,
        s.not_applicable,
        s.not_run,
        s.waived,
        s.error,
        if s.passed + s.failed == 0 {
            format!("{:>7}", "-")
        } else {
            // Pad before colouring: escape codes would count towards the width.
            let text = format!("{:>7}", format!("{:.1}%", s.score));
            if p.on {
                p.colour_score(s.score, &text)
            } else {
                text
            }
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_core::{CheckOutcome, PolicyInfo, ScanReport};

    fn report() -> ScanReport {
        let check = |id: &str, status: Status, sev: Severity| {
            let mut c = CheckOutcome::new(id, format!("check {id}"), status);
            c.severity = sev;
            c.remediation = "do the thing".into();
            c.reason = Some("because".into());
            c.compliance = [("nist_800_53".to_string(), vec!["AC-1".to_string()])].into();
            c
        };
        let checks = vec![
            check("1", Status::Pass, Severity::High),
            check("2", Status::Fail, Severity::High),
            check("3", Status::NotApplicable, Severity::Low),
        ];
        ScanReport::single(
            PolicyInfo::default(),
            checks,
            time::OffsetDateTime::UNIX_EPOCH,
        )
    }

    fn strip_ansi(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for d in chars.by_ref() {
                    if d == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn colour_changes_nothing_but_colour() {
        let r = report();
        let plain = render(
            &r,
            PrettyOptions {
                color: false,
                verbose: true,
            },
        );
        let coloured = render(
            &r,
            PrettyOptions {
                color: true,
                verbose: true,
            },
        );
        assert_ne!(plain, coloured);
        assert_eq!(strip_ansi(&coloured), plain);
        assert!(!plain.contains('\x1b'));
    }

    #[test]
    fn failures_show_reason_and_fix_and_others_are_counted() {
        let out = render(&report(), PrettyOptions::default());
        assert!(out.contains("FAIL       2  check 2 [high]"), "{out}");
        assert!(out.contains("fix: do the thing"));
        assert!(
            !out.contains("check 1"),
            "passing checks are hidden without --show-all"
        );
        assert!(out.contains(
            "(2 passed, not applicable or waived checks not shown; --show-all lists them)"
        ));
        assert!(out.contains("Score 50.0%"));
        assert!(out.contains("nist_800_53"));
    }
}
