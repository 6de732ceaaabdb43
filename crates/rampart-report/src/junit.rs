//! JUnit XML: one `<testsuite>` per policy, one `<testcase>` per check, so CI systems show
//! compliance failures like test failures.

use crate::ReportError;
use crate::text::evidence_text;
use quick_xml::Writer;
use quick_xml::events::{BytesCData, BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use rampart_core::{ScanReport, Status};

/// Renders the report as JUnit XML.
pub fn render(report: &ScanReport) -> Result<Vec<u8>, ReportError> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    let e = |err: std::io::Error| ReportError::Render(err.to_string());
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
        .map_err(e)?;
    let totals = report.totals();
    let mut suites = BytesStart::new("testsuites");
    suites.push_attribute(("name", "rampart"));
    suites.push_attribute(("tests", totals.total.to_string().as_str()));
    suites.push_attribute(("failures", totals.failed.to_string().as_str()));
    suites.push_attribute(("errors", totals.error.to_string().as_str()));
    let skipped = totals.not_applicable + totals.not_run + totals.waived;
    suites.push_attribute(("skipped", skipped.to_string().as_str()));
    w.write_event(Event::Start(suites)).map_err(e)?;
    for p in &report.policies {
        let s = &p.summary;
        let mut suite = BytesStart::new("testsuite");
        suite.push_attribute(("name", p.policy.id.as_str()));
        suite.push_attribute(("tests", s.total.to_string().as_str()));
        suite.push_attribute(("failures", s.failed.to_string().as_str()));
        suite.push_attribute(("errors", s.error.to_string().as_str()));
        let skipped = s.not_applicable + s.not_run + s.waived;
        suite.push_attribute(("skipped", skipped.to_string().as_str()));
        suite.push_attribute(("timestamp", report.started_at.to_string().as_str()));
        suite.push_attribute(("hostname", report.host.hostname.as_str()));
        w.write_event(Event::Start(suite)).map_err(e)?;
        w.write_event(Event::Start(BytesStart::new("properties")))
            .map_err(e)?;
        for (k, v) in [
            ("policy.name", p.policy.name.as_str()),
            ("policy.file", p.policy.file.as_str()),
            ("policy.sha256", p.policy.sha256.as_str()),
            ("score", &format!("{:.2}", s.score)),
        ] {
            let mut prop = BytesStart::new("property");
            prop.push_attribute(("name", k));
            prop.push_attribute(("value", v));
            w.write_event(Event::Empty(prop)).map_err(e)?;
        }
        w.write_event(Event::End(BytesEnd::new("properties")))
            .map_err(e)?;
        for c in &p.checks {
            let mut tc = BytesStart::new("testcase");
            tc.push_attribute(("classname", p.policy.id.as_str()));
            tc.push_attribute(("name", format!("{}: {}", c.id, c.title).as_str()));
            w.write_event(Event::Start(tc)).map_err(e)?;
            let reason = c.reason.clone().unwrap_or_default();
            let body = evidence_text(&c.evidence);
            let (tag, message) = match c.status {
                Status::Pass => (None, String::new()),
                Status::Fail => (Some("failure"), reason),
                Status::Error => (Some("error"), reason),
                Status::NotApplicable | Status::NotRun => {
                    (Some("skipped"), format!("{}: {reason}", c.status))
                }
                Status::Waived => (
                    Some("skipped"),
                    format!(
                        "waived: {}",
                        c.waiver.as_ref().map_or("", |w| w.justification.as_str())
                    ),
                ),
            };
            if let Some(tag) = tag {
                let mut el = BytesStart::new(tag);
                el.push_attribute(("message", message.as_str()));
                if c.status == Status::Fail {
                    el.push_attribute(("type", c.severity.as_str()));
                }
                if tag == "skipped" {
                    w.write_event(Event::Empty(el)).map_err(e)?;
                } else {
                    w.write_event(Event::Start(el)).map_err(e)?;
                    let mut text = body.clone();
                    if c.status == Status::Fail && !c.remediation.is_empty() {
                        text.push_str("\nRemediation: ");
                        text.push_str(&c.remediation);
                    }
                    write_cdata(&mut w, &text).map_err(e)?;
                    w.write_event(Event::End(BytesEnd::new(tag))).map_err(e)?;
                }
            }
            if !body.is_empty() && c.status != Status::Fail && c.status != Status::Error {
                w.write_event(Event::Start(BytesStart::new("system-out")))
                    .map_err(e)?;
                w.write_event(Event::Text(BytesText::new(&body)))
                    .map_err(e)?;
                w.write_event(Event::End(BytesEnd::new("system-out")))
                    .map_err(e)?;
            }
            w.write_event(Event::End(BytesEnd::new("testcase")))
                .map_err(e)?;
        }
        w.write_event(Event::End(BytesEnd::new("testsuite")))
            .map_err(e)?;
    }
    w.write_event(Event::End(BytesEnd::new("testsuites")))
        .map_err(e)?;
    let mut out = w.into_inner();
    out.push(b'\n');
    Ok(out)
}

/// Writes text as CDATA, splitting any `]]>` so the section stays well-formed.
fn write_cdata(w: &mut Writer<Vec<u8>>, text: &str) -> std::io::Result<()> {
    for (i, part) in text.split("]]>").enumerate() {
        if i > 0 {
            w.write_event(Event::CData(BytesCData::new("]]")))?;
            w.write_event(Event::Text(BytesText::new(">")))?;
        }
        w.write_event(Event::CData(BytesCData::new(part)))?;
    }
    Ok(())
}
