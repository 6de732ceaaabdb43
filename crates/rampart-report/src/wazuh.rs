//! Wazuh 4.x SCA events: one `check` event per check and a `summary` per policy, as the Wazuh
//! agent sends them (`wm_sca_build_event`, `wm_sca_send_summary`), one JSON object per line. This
//! lets Rampart feed pipelines and dashboards built for Wazuh.

use crate::ReportError;
use rampart_core::digest::{natural_cmp, sha256_hex};
use rampart_core::{RuleVerdict, ScanReport, Status};
use serde_json::{Map, Value, json};

/// Renders Wazuh-compatible NDJSON.
pub fn render(report: &ScanReport) -> Result<Vec<u8>, ReportError> {
    let scan_id = scan_id_int(&report.scan_id);
    let mut out = Vec::new();
    let mut line = |v: Value| -> Result<(), ReportError> {
        serde_json::to_writer(&mut out, &v).map_err(|e| ReportError::Render(e.to_string()))?;
        out.push(b'\n');
        Ok(())
    };
    for p in &report.policies {
        for c in &p.checks {
            let mut check = Map::new();
            check.insert("id".into(), id_value(&c.id));
            check.insert("title".into(), json!(c.title));
            for (k, v) in [
                ("description", &c.description),
                ("rationale", &c.rationale),
                ("remediation", &c.remediation),
            ] {
                if !v.is_empty() {
                    check.insert(k.into(), json!(v));
                }
            }
            if !c.compliance.is_empty() {
                let comp: Map<String, Value> = c
                    .compliance
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v.join(","))))
                    .collect();
                check.insert("compliance".into(), Value::Object(comp));
            }
            check.insert("rules".into(), json!(c.rules));
            check.insert("condition".into(), json!(c.condition));
            if !c.references.is_empty() {
                check.insert("references".into(), json!(c.references.join(",")));
            }
            // Locations actually evaluated (short-circuited rules excluded), by type.
            let mut by_kind: [(&str, Vec<String>); 4] = [
                ("file", vec![]),
                ("directory", vec![]),
                ("process", vec![]),
                ("command", vec![]),
            ];
            for e in c
                .evidence
                .iter()
                .filter(|e| e.verdict != RuleVerdict::Skipped)
            {
                let body = e
                    .rule
                    .strip_prefix("not ")
                    .or_else(|| e.rule.strip_prefix("NOT "))
                    .unwrap_or(&e.rule);
                let (kind, rest) = body.split_at(body.find(':').unwrap_or(0));
                let loc = rest
                    .trim_start_matches(':')
                    .split(" -> ")
                    .next()
                    .unwrap_or("")
                    .to_string();
                let slot = match kind {
                    "f" => 0,
                    "d" => 1,
                    "p" => 2,
                    "c" => 3,
                    _ => continue,
                };
                by_kind[slot].1.push(loc);
            }
            for (k, v) in by_kind {
                if !v.is_empty() {
                    check.insert(k.into(), json!(v.join(",")));
                }
            }
            match c.status.wazuh_result() {
                Some(r) => {
                    check.insert("result".into(), json!(r));
                }
                None => {
                    let status = match c.status {
                        Status::Waived => "Waived",
                        Status::Error => "Error",
                        _ => "Not applicable",
                    };
                    check.insert("status".into(), json!(status));
                    check.insert("reason".into(), json!(c.reason.clone().unwrap_or_default()));
                }
            }
            line(json!({
                "type": "check",
                "id": scan_id,
                "policy": p.policy.name,
                "check": Value::Object(check),
                "policy_id": p.policy.id,
            }))?;
        }
        let mut ordered: Vec<_> = p.checks.iter().collect();
        ordered.sort_by(|a, b| natural_cmp(&a.id, &b.id));
        let joined = ordered
            .iter()
            .map(|c| c.status.wazuh_result().unwrap_or(""))
            .collect::<Vec<_>>()
            .join(":");
        let s = &p.summary;
        line(json!({
            "type": "summary",
            "scan_id": scan_id,
            "name": p.policy.name,
            "policy_id": p.policy.id,
            "file": p.policy.file,
            "description": p.policy.description,
            "references": p.policy.references.join(","),
            "passed": s.passed,
            "failed": s.failed,
            "invalid": s.not_applicable + s.not_run + s.error,
            "total_checks": s.total,
            "score": s.score,
            "start_time": report.started_at.unix_timestamp(),
            "end_time": report.finished_at.unix_timestamp(),
            "hash": sha256_hex(joined.as_bytes()),
            "hash_file": p.policy.sha256,
        }))?;
    }
    Ok(out)
}

fn id_value(id: &str) -> Value {
    id.parse::<u64>().map_or_else(|_| json!(id), |n| json!(n))
}

fn scan_id_int(id: &str) -> i64 {
    let hex: String = id.chars().filter(char::is_ascii_hexdigit).take(7).collect();
    i64::from_str_radix(&hex, 16).unwrap_or(0)
}
