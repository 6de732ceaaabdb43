//! A single-file HTML report: no external stylesheet, font, script or image, so it can be mailed,
//! archived or attached to a ticket and still render. Every value is HTML-escaped by the template
//! engine.

use crate::ReportError;
use minijinja::{Environment, context};
use rampart_core::{ScanReport, Severity, Status, Summary};
use serde::Serialize;

const TEMPLATE: &str = include_str!("../templates/report.html");

#[derive(Serialize)]
struct Row<'a> {
    name: String,
    title: String,
    s: &'a Summary,
    score_text: String,
    bar: u32,
}

fn score_text(s: &Summary) -> String {
    if s.passed + s.failed == 0 {
        "–".to_string()
    } else {
        format!("{:.1}%", s.score)
    }
}

/// `2026-11-24 02:53:49 UTC`.
fn stamp(t: time::OffsetDateTime) -> String {
    let fmt =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_else(|_| t.to_string())
}

/// Renders the report as HTML.
pub fn render(report: &ScanReport) -> Result<Vec<u8>, ReportError> {
    let mut env = Environment::new();
    env.add_template("report.html", TEMPLATE)
        .map_err(|e| ReportError::Render(e.to_string()))?;
    let tmpl = env
        .get_template("report.html")
        .map_err(|e| ReportError::Render(e.to_string()))?;
    let policies: Vec<_> = report
        .policies
        .iter()
        .map(|p| {
            let frameworks: Vec<Row> = p
                .frameworks
                .iter()
                .map(|(f, s)| Row {
                    name: f.as_str().to_string(),
                    title: f.title().to_string(),
                    s,
                    score_text: score_text(s),
                    bar: (s.score * 1.2) as u32,
                })
                .collect();
            let severities: Vec<Row> = Severity::DESCENDING
                .iter()
                .filter_map(|sev| {
                    p.severities.get(sev).map(|s| Row {
                        name: sev.as_str().to_string(),
                        title: sev.as_str().to_string(),
                        s,
                        score_text: score_text(s),
                        bar: 0,
                    })
                })
                .collect();
            let score = p.summary.score;
            context! {
                policy => &p.policy,
                requirements => &p.requirements,
                summary => &p.summary,
                checks => &p.checks,
                frameworks => frameworks,
                severities => severities,
                score_text => score_text(&p.summary),
                score_class => if score >= 80.0 { "good" } else if score >= 50.0 { "mid" } else { "bad" },
            }
        })
        .collect();
    let statuses: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
    let html = tmpl
        .render(context! {
            host => &report.host,
            scan_id => &report.scan_id,
            started_at => stamp(report.started_at),
            finished_at => stamp(report.finished_at),
            generator => &report.generator,
            results_digest => &report.results_digest,
            warnings => &report.warnings,
            policies => policies,
            statuses => statuses,
        })
        .map_err(|e| ReportError::Render(e.to_string()))?;
    Ok(html.into_bytes())
}
