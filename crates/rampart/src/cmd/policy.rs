//! `rampart policy lint | show | schema` (local); push, list and unassign live in `fleet`.

use crate::cli::PolicyCommand;
use crate::exit;
use anyhow::anyhow;
use rampart_policy::ir::{Policy, Probe};
use rampart_policy::{LoadOptions, PolicyError, lint::lint, load_file};
use std::process::ExitCode;

/// Runs a `policy` subcommand.
pub fn run(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Lint {
            files,
            deny_warnings,
            json,
        } => {
            let mut errors = 0;
            let mut warnings = 0;
            let mut reports = Vec::new();
            for f in &files {
                match load_file(f, LoadOptions::default()) {
                    Ok(p) => {
                        let diags = lint(&p);
                        warnings += diags.len();
                        if json {
                            reports.push(serde_json::json!({
                                "file": f.display().to_string(),
                                "valid": true,
                                "checks": p.checks.len(),
                                "diagnostics": diags,
                            }));
                            continue;
                        }
                        for d in &diags {
                            println!("{d}");
                        }
                        println!(
                            "{}: {} checks, {} warnings",
                            f.display(),
                            p.checks.len(),
                            diags.len()
                        );
                    }
                    Err(e) => {
                        errors += e.diagnostics().len().max(1);
                        if json {
                            reports.push(serde_json::json!({
                                "file": f.display().to_string(),
                                "valid": false,
                                "error": e.to_string(),
                                "diagnostics": e.diagnostics(),
                            }));
                        } else {
                            eprintln!("{e}");
                        }
                    }
                }
            }
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "files": reports,
                        "errors": errors,
                        "warnings": warnings,
                    }))?
                );
            }
            Ok(ExitCode::from(if errors > 0 {
                exit::USAGE
            } else if deny_warnings && warnings > 0 {
                exit::FAILURES
            } else {
                exit::OK
            }))
        }
        PolicyCommand::Show { file, json } => {
            let p = match &file {
                Some(f) => load_file(f, LoadOptions::default()),
                None => rampart_policy::builtin::linux_baseline(),
            }
            .map_err(|e: PolicyError| anyhow!("{e}"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&show_json(&p))?);
            } else {
                print!("{}", show_text(&p));
            }
            Ok(ExitCode::from(exit::OK))
        }
        PolicyCommand::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&rampart_policy::native::schema())?
            );
            Ok(ExitCode::from(exit::OK))
        }
        remote @ (PolicyCommand::Push { .. }
        | PolicyCommand::List { .. }
        | PolicyCommand::Unassign { .. }) => super::fleet::policy(remote),
    }
}

fn probe_kind(p: &Probe) -> &'static str {
    match p {
        Probe::File { .. } => "file",
        Probe::Directory { .. } => "directory",
        Probe::Command { .. } => "command",
        Probe::Process { .. } => "process",
        Probe::Registry { .. } => "registry",
        Probe::Stat(_) => "stat",
        Probe::Sysctl { .. } => "sysctl",
        Probe::Package { .. } => "package",
        Probe::Mount { .. } => "mount",
    }
}

fn show_text(p: &Policy) -> String {
    let mut out = format!(
        "{} ({})\n  format {}, {} checks, sha256 {}\n  {}\n",
        p.name,
        p.id,
        p.format.as_str(),
        p.checks.len(),
        p.sha256,
        p.file
    );
    if let Some(r) = &p.requirements {
        out.push_str(&format!(
            "  requirements ({}): {}\n",
            r.condition.as_str(),
            r.title
        ));
        for rule in &r.rules {
            out.push_str(&format!("    - {}\n", rule.text));
        }
    }
    for c in &p.checks {
        out.push_str(&format!(
            "\n{} [{}] {}\n  condition {} · {}:{}\n",
            c.id,
            c.severity,
            c.title,
            c.condition.as_str(),
            c.location.file,
            c.location.line
        ));
        if !c.compliance.is_empty() {
            let comp: Vec<String> = c
                .compliance
                .iter()
                .map(|(k, v)| format!("{k} {}", v.join(",")))
                .collect();
            out.push_str(&format!("  compliance: {}\n", comp.join("; ")));
        }
        for r in &c.applies_if {
            out.push_str(&format!(
                "  applies if {}: {}\n",
                probe_kind(&r.probe),
                r.text
            ));
        }
        for r in &c.rules {
            out.push_str(&format!(
                "  - {}{}: {}\n",
                if r.negated { "not " } else { "" },
                probe_kind(&r.probe),
                r.text
            ));
        }
    }
    out
}

fn show_json(p: &Policy) -> serde_json::Value {
    serde_json::json!({
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "file": p.file,
        "format": p.format.as_str(),
        "sha256": p.sha256,
        "requirements": p.requirements.as_ref().map(|r| serde_json::json!({
            "title": r.title,
            "condition": r.condition.as_str(),
            "rules": r.rules.iter().map(|x| x.text.clone()).collect::<Vec<_>>(),
        })),
        "checks": p.checks.iter().map(|c| serde_json::json!({
            "id": c.id,
            "title": c.title,
            "severity": c.severity,
            "condition": c.condition.as_str(),
            "line": c.location.line,
            "compliance": c.compliance,
            "mitre": c.mitre,
            "applies_if": c.applies_if.iter().map(|r| r.text.clone()).collect::<Vec<_>>(),
            "rules": c.rules.iter().map(|r| serde_json::json!({
                "text": r.text,
                "negated": r.negated,
                "probe": probe_kind(&r.probe),
                "line": r.location.line,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
