//! Import of OpenSCAP results: an XCCDF 1.2 results document (`oscap xccdf eval --results`) or
//! an ARF report (`--results-arf`), mapped into Rampart's report model so the same renderers,
//! waivers and scores apply.
//!
//! Rule metadata (title, description, severity, references) comes from the benchmark when the
//! file carries it (ARF always does; `--results` files do too); result-only files still import,
//! with rule ids as titles.

use rampart_core::digest::sha256_hex;
use rampart_core::{
    CheckOutcome, Evidence, HostInfo, Observation, ObservationKind, PolicyInfo, PolicyReport,
    RuleVerdict, ScanReport, Severity, Status, Summary,
};
use roxmltree::{Document, Node, ParsingOptions};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// File.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Not well-formed XML.
    #[error("{path}:{line}:{column}: not well-formed XML: {message}")]
    Xml {
        /// File.
        path: String,
        /// Line.
        line: u32,
        /// Column.
        column: u32,
        /// Parser message.
        message: String,
    },
    /// Well-formed, but not XCCDF results.
    #[error("{path}: {message}")]
    Content {
        /// File.
        path: String,
        /// What is missing.
        message: String,
    },
}

/// Reads an XCCDF results or ARF file.
pub fn import_file(path: &Path) -> Result<ScanReport, ImportError> {
    let display = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ImportError::Read {
        path: display.clone(),
        source,
    })?;
    import_bytes(&bytes, &display, OffsetDateTime::now_utc())
}

fn local<'a>(n: &Node<'a, '_>) -> &'a str {
    n.tag_name().name()
}

fn child<'a, 'i>(n: &Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    n.children().find(|c| c.is_element() && local(c) == name)
}

fn text_of(n: &Node) -> String {
    let s: String = n
        .descendants()
        .filter(|d| d.is_text())
        .filter_map(|d| d.text())
        .collect();
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Imports from bytes; `now` is used only when the file carries no times.
pub fn import_bytes(
    bytes: &[u8],
    name: &str,
    now: OffsetDateTime,
) -> Result<ScanReport, ImportError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ImportError::Content {
        path: name.to_string(),
        message: format!("not UTF-8 (byte {})", e.valid_up_to()),
    })?;
    let opts = ParsingOptions {
        allow_dtd: false,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(text, opts).map_err(|e| {
        let pos = e.pos();
        ImportError::Xml {
            path: name.to_string(),
            line: pos.row,
            column: pos.col,
            message: e.to_string(),
        }
    })?;
    let content = |message: &str| ImportError::Content {
        path: name.to_string(),
        message: message.to_string(),
    };
    let results: Vec<Node> = doc
        .descendants()
        .filter(|n| n.is_element() && local(n) == "TestResult")
        .collect();
    let Some(tr) = results.last().copied() else {
        return Err(content(
            "no XCCDF <TestResult> found: this is not an `oscap xccdf eval` results or ARF file",
        ));
    };
    let ns = tr.tag_name().namespace().unwrap_or("");
    if ns != "http://checklists.nist.gov/xccdf/1.2" {
        return Err(content(&format!(
            "TestResult is in namespace '{ns}'; only XCCDF 1.2 is supported"
        )));
    }

    // Rule metadata from the benchmark(s) in the file.
    let rules: HashMap<&str, Node> = doc
        .descendants()
        .filter(|n| n.is_element() && local(n) == "Rule" && n.tag_name().namespace() == Some(ns))
        .filter_map(|n| n.attribute("id").map(|id| (id, n)))
        .collect();
    let benchmark = doc.descendants().find(|n| {
        n.is_element() && local(n) == "Benchmark" && n.tag_name().namespace() == Some(ns)
    });

    let mut checks = Vec::new();
    for rr in tr
        .children()
        .filter(|c| c.is_element() && local(c) == "rule-result")
    {
        let Some(idref) = rr.attribute("idref") else {
            return Err(content("a <rule-result> has no idref attribute"));
        };
        let result = child(&rr, "result")
            .map(|r| text_of(&r))
            .unwrap_or_default();
        let (status, reason) = match result.as_str() {
            "pass" | "fixed" => (Status::Pass, None),
            "fail" => (Status::Fail, Some("OpenSCAP: fail".to_string())),
            "error" => (
                Status::Error,
                Some("OpenSCAP could not evaluate this rule (error)".to_string()),
            ),
            "unknown" => (Status::Error, Some("OpenSCAP result: unknown".to_string())),
            "notapplicable" => (
                Status::NotApplicable,
                Some("OpenSCAP: not applicable to this platform".to_string()),
            ),
            "notchecked" => (
                Status::NotRun,
                Some("OpenSCAP: not checked (no automated check)".to_string()),
            ),
            "informational" => (
                Status::NotApplicable,
                Some("OpenSCAP: informational".to_string()),
            ),
            "notselected" => continue,
            other => {
                return Err(content(&format!(
                    "rule-result {idref}: unknown result '{other}'"
                )));
            }
        };
        let rule = rules.get(idref);
        let severity = rr
            .attribute("severity")
            .or_else(|| rule.and_then(|r| r.attribute("severity")))
            .and_then(|s| s.parse::<Severity>().ok())
            .unwrap_or_default();
        let title = rule
            .and_then(|r| child(r, "title"))
            .map(|t| text_of(&t))
            .unwrap_or_else(|| idref.to_string());
        let field = |n: &str| {
            rule.and_then(|r| child(r, n))
                .map(|t| text_of(&t))
                .unwrap_or_default()
        };
        let mut references = Vec::new();
        let mut compliance: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if let Some(r) = rule {
            for rf in r
                .children()
                .filter(|c| c.is_element() && local(c) == "reference")
            {
                let href = rf.attribute("href").unwrap_or("");
                let t = text_of(&rf);
                if let Some(key) = framework_for(href) {
                    compliance.entry(key.to_string()).or_default().extend(
                        t.split(',')
                            .map(|s| s.trim().trim_start_matches("Req-").to_string())
                            .filter(|s| !s.is_empty()),
                    );
                } else if !t.is_empty() {
                    references.push(if href.is_empty() {
                        t
                    } else {
                        format!("{href} {t}")
                    });
                }
            }
        }
        for ident in rr
            .children()
            .filter(|c| c.is_element() && local(c) == "ident")
        {
            references.push(text_of(&ident));
        }
        let remediation = rule
            .and_then(|r| child(r, "fixtext").or_else(|| child(r, "fix")))
            .map(|f| {
                let t = text_of(&f);
                if t.len() > 2000 {
                    format!(
                        "{}…",
                        &t[..t.char_indices().nth(2000).map_or(t.len(), |(i, _)| i)]
                    )
                } else {
                    t
                }
            })
            .unwrap_or_default();
        let mut observations = Vec::new();
        for chk in rr
            .children()
            .filter(|c| c.is_element() && local(c) == "check")
        {
            let system = chk.attribute("system").unwrap_or("");
            for cref in chk
                .children()
                .filter(|c| c.is_element() && local(c) == "check-content-ref")
            {
                observations.push(Observation {
                    kind: ObservationKind::Other,
                    target: format!(
                        "{} {}",
                        cref.attribute("href").unwrap_or(""),
                        cref.attribute("name").unwrap_or("")
                    )
                    .trim()
                    .to_string(),
                    line: None,
                    text: None,
                    detail: Some(format!("{system}: {result}")),
                });
            }
        }
        for msg in rr
            .children()
            .filter(|c| c.is_element() && local(c) == "message")
        {
            observations.push(Observation {
                kind: ObservationKind::Other,
                target: "oscap".into(),
                line: None,
                text: Some(text_of(&msg)),
                detail: msg.attribute("severity").map(str::to_string),
            });
        }
        checks.push(CheckOutcome {
            id: idref.to_string(),
            title,
            description: field("description"),
            rationale: field("rationale"),
            remediation,
            severity,
            references,
            compliance,
            mitre: vec![],
            condition: "all".into(),
            rules: vec![],
            status,
            reason,
            evidence: vec![Evidence {
                rule: format!("xccdf rule {idref}"),
                verdict: match status {
                    Status::Pass => RuleVerdict::Found,
                    Status::Fail => RuleVerdict::NotFound,
                    _ => RuleVerdict::Invalid,
                },
                observations,
            }],
            waiver: None,
            original_status: None,
        });
    }
    if checks.is_empty() {
        return Err(content("the TestResult has no selected rule results"));
    }

    let profile = child(&tr, "profile")
        .and_then(|p| p.attribute("idref"))
        .unwrap_or("(default profile)");
    let bench_id = benchmark
        .and_then(|b| b.attribute("id"))
        .unwrap_or("xccdf-benchmark");
    let bench_title = benchmark
        .and_then(|b| child(&b, "title"))
        .map(|t| text_of(&t))
        .or_else(|| child(&tr, "title").map(|t| text_of(&t)))
        .unwrap_or_else(|| bench_id.to_string());
    let parse_time = |attr: &str| {
        tr.attribute(attr)
            .and_then(|t| {
                OffsetDateTime::parse(t, &Rfc3339).ok().or_else(|| {
                    // oscap writes local times without an offset; read them as UTC.
                    time::PrimitiveDateTime::parse(
                        t,
                        &time::macros::format_description!(
                            "[year]-[month]-[day]T[hour]:[minute]:[second]"
                        ),
                    )
                    .ok()
                    .map(|p| p.assume_utc())
                })
            })
            .unwrap_or(now)
    };
    let hostname = child(&tr, "target")
        .map(|t| text_of(&t))
        .unwrap_or_else(|| "unknown".into());
    let mut warnings = Vec::new();
    for score in tr
        .children()
        .filter(|c| c.is_element() && local(c) == "score")
    {
        warnings.push(format!(
            "OpenSCAP reported score {} ({}); Rampart's score is passed / (passed + failed)",
            text_of(&score),
            score.attribute("system").unwrap_or("default")
        ));
    }
    let mut policy = PolicyReport {
        policy: PolicyInfo {
            id: format!("{bench_id}:{profile}"),
            name: format!("{bench_title} — {profile}"),
            description: format!(
                "Imported from OpenSCAP results ({})",
                tr.attribute("id").unwrap_or("TestResult")
            ),
            file: name.to_string(),
            format: "xccdf-results".into(),
            sha256: sha256_hex(bytes),
            references: vec![],
        },
        requirements: None,
        checks,
        summary: Summary::default(),
        frameworks: BTreeMap::new(),
        severities: BTreeMap::new(),
    };
    policy.refresh();
    let mut report = ScanReport {
        schema_version: rampart_core::report::REPORT_SCHEMA_VERSION,
        generator: format!("rampart {} (oscap import)", env!("CARGO_PKG_VERSION")),
        scan_id: tr.attribute("id").unwrap_or("oscap").to_string(),
        host: HostInfo {
            hostname,
            os: "unknown".into(),
            kernel: "unknown".into(),
            root: None,
        },
        started_at: parse_time("start-time"),
        finished_at: parse_time("end-time"),
        policies: vec![policy],
        warnings,
        results_digest: String::new(),
    };
    report.refresh();
    Ok(report)
}

/// Maps an XCCDF reference URL to a compliance framework key.
fn framework_for(href: &str) -> Option<&'static str> {
    let h = href.to_ascii_lowercase();
    if h.contains("800-53") {
        Some("nist_800_53")
    } else if h.contains("800-171") {
        Some("nist_800_171")
    } else if h.contains("pcisecuritystandards") {
        if h.contains("v4") {
            Some("pci_dss_4.0")
        } else {
            Some("pci_dss_3.2.1")
        }
    } else if h.contains("cisecurity.org") {
        Some("cis")
    } else if h.contains("hipaa") || h.contains("ecfr.gov") && h.contains("164") {
        Some("hipaa")
    } else if h.contains("iso.org") && h.contains("27001") {
        Some("iso_27001")
    } else {
        None
    }
}
