//! The Wazuh SCA policy dialect, 4.x and 5.x schemas.
//!
//! Real SCA files run unmodified: the loader accepts exactly what Wazuh's validator
//! (`wm_sca_check_policy`) accepts and rejects, with a file:line:column and check id instead of
//! Wazuh's "skipping policy". Known defects of stock policies that Wazuh silently tolerates are
//! reported by [`crate::lint`], not refused.

pub mod osmatch;
pub mod osregex;
pub mod rule;
pub mod tokenize;

use crate::error::{Diagnostic, Level, Location, PolicyError};
use crate::ir::{Check, Condition, Dialect, Policy, PolicyFormat, Requirements, Rule};
use rampart_core::Severity;
use rule::{RegexEngine, parse_rule, substitute};
use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

/// Which SCA schema to read a file as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScaVersion {
    /// Decide from the document (`name` vs `title`, map vs list `compliance`, `mitre`).
    #[default]
    Auto,
    /// Wazuh 4.x.
    V4,
    /// Wazuh 5.x.
    V5,
}

#[derive(Deserialize)]
struct RawDoc {
    policy: Option<Spanned<RawHeader>>,
    requirements: Option<Spanned<RawRequirements>>,
    variables: Option<Spanned<BTreeMap<String, Value>>>,
    checks: Option<Spanned<Vec<Spanned<RawCheck>>>>,
}

#[derive(Deserialize)]
struct RawHeader {
    id: Option<Value>,
    file: Option<Value>,
    name: Option<Value>,
    description: Option<Value>,
    references: Option<Vec<Value>>,
    regex_type: Option<Value>,
}

#[derive(Deserialize)]
struct RawRequirements {
    title: Option<Value>,
    name: Option<Value>,
    description: Option<Value>,
    condition: Option<Value>,
    rules: Option<Vec<Spanned<Value>>>,
}

#[derive(Deserialize)]
struct RawCheck {
    id: Option<Spanned<Value>>,
    title: Option<Value>,
    name: Option<Value>,
    description: Option<Value>,
    rationale: Option<Value>,
    remediation: Option<Value>,
    impact: Option<Value>,
    references: Option<Vec<Value>>,
    compliance: Option<Value>,
    mitre: Option<Value>,
    regex_type: Option<Value>,
    condition: Option<Spanned<Value>>,
    rules: Option<Spanned<Vec<Spanned<Value>>>>,
}

fn text(v: &Option<Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    }
}

fn scalar_list(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .iter()
            .filter_map(|i| text(&Some(i.clone())))
            .collect(),
        other => text(&Some(other.clone())).into_iter().collect(),
    }
}

struct Ctx<'a> {
    file: &'a str,
    diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn loc(&self, l: &serde_saphyr::Location) -> Location {
        Location::new(self.file, l.line(), l.column())
    }
    fn error(&mut self, at: Location, check: Option<&str>, code: &'static str, msg: String) {
        self.diags.push(Diagnostic {
            level: Level::Error,
            location: at,
            check: check.map(str::to_string),
            code,
            message: msg,
        });
    }
}

/// Parses an SCA policy document. `file` names the source in diagnostics; `sha256` is the
/// digest of the bytes.
pub fn load_sca(
    source: &str,
    file: &str,
    sha256: &str,
    version: ScaVersion,
) -> Result<Policy, PolicyError> {
    let doc: RawDoc = serde_saphyr::from_str(source).map_err(|e| crate::yaml_error(file, &e))?;
    let mut ctx = Ctx {
        file,
        diags: Vec::new(),
    };
    let top = Location::new(file, 1, 1);

    let Some(header) = doc.policy else {
        return Err(PolicyError::at(
            top,
            None,
            "missing-field",
            "section 'policy' not found",
        ));
    };
    let hloc = ctx.loc(&header.referenced);
    let header = header.value;
    let Some(checks) = doc.checks else {
        return Err(PolicyError::at(
            top,
            None,
            "missing-field",
            "section 'checks' not found",
        ));
    };

    let version = match version {
        ScaVersion::Auto => {
            detect_version(&checks.value, doc.requirements.as_ref().map(|r| &r.value))
        }
        v => v,
    };
    let dialect = if version == ScaVersion::V5 {
        Dialect::Sca5
    } else {
        Dialect::Sca4
    };

    let required = |field: &str, v: &Option<Value>, ctx: &mut Ctx| -> String {
        match text(v) {
            Some(s) => s,
            None => {
                ctx.error(
                    hloc.clone(),
                    None,
                    "missing-field",
                    format!("policy: field '{field}' not found or not a string"),
                );
                String::new()
            }
        }
    };
    let id = required("id", &header.id, &mut ctx);
    let name = required("name", &header.name, &mut ctx);
    let description = required("description", &header.description, &mut ctx);
    if version == ScaVersion::V4 {
        let _ = required("file", &header.file, &mut ctx);
    }
    let policy_engine = text(&header.regex_type).unwrap_or_default();

    let mut variables: Vec<(String, String)> = Vec::new();
    if let Some(vars) = &doc.variables {
        let vloc = ctx.loc(&vars.referenced);
        for (k, v) in &vars.value {
            if !k.starts_with('$') {
                ctx.error(
                    vloc.clone(),
                    None,
                    "bad-variable",
                    format!("invalid variable '{k}': variable names must start with '$'"),
                );
                continue;
            }
            match text(&Some(v.clone())) {
                Some(s) => variables.push((k.clone(), s)),
                None => ctx.error(
                    vloc.clone(),
                    None,
                    "bad-variable",
                    format!("variable '{k}' must be a string"),
                ),
            }
        }
    }
    // 5.x substitutes variables in every string of the document; 4.x only in rule locations.
    let doc_subst = |s: String| -> String {
        if dialect == Dialect::Sca5 {
            substitute(&s, &variables)
        } else {
            s
        }
    };

    let engine_for = |rt: Option<String>| -> RegexEngine {
        if dialect == Dialect::Sca5 {
            return RegexEngine::Pcre2Caseless;
        }
        let rt = rt.unwrap_or_else(|| policy_engine.clone());
        if rt == "pcre2" {
            RegexEngine::Pcre2
        } else {
            RegexEngine::OsRegex
        }
    };

    let requirements = match doc.requirements {
        None => None,
        Some(req) => {
            let rloc = ctx.loc(&req.referenced);
            let req = req.value;
            let title = text(&req.title).or_else(|| {
                if dialect == Dialect::Sca5 {
                    text(&req.name)
                } else {
                    None
                }
            });
            if title.is_none() {
                ctx.error(
                    rloc.clone(),
                    None,
                    "missing-field",
                    "requirements: field 'title' not found".into(),
                );
            }
            if text(&req.description).is_none() {
                ctx.error(
                    rloc.clone(),
                    None,
                    "missing-field",
                    "requirements: field 'description' not found".into(),
                );
            }
            let condition = match text(&req.condition) {
                Some(c) => parse_condition(&c).unwrap_or_else(|| {
                    ctx.error(
                        rloc.clone(),
                        None,
                        "bad-condition",
                        format!(
                            "requirements: invalid condition '{c}' (expected all, any or none)"
                        ),
                    );
                    Condition::All
                }),
                None => {
                    ctx.error(
                        rloc.clone(),
                        None,
                        "missing-field",
                        "requirements: field 'condition' not found".into(),
                    );
                    Condition::All
                }
            };
            let mut rules = Vec::new();
            match req.rules {
                None => ctx.error(
                    rloc.clone(),
                    None,
                    "missing-field",
                    "requirements: field 'rules' must be an array".into(),
                ),
                Some(list) => {
                    for r in list {
                        let at = ctx.loc(&r.referenced);
                        let Some(s) = text(&Some(r.value)) else {
                            ctx.error(
                                at,
                                None,
                                "bad-rule",
                                "requirements: rule must be a string".into(),
                            );
                            continue;
                        };
                        let s = doc_subst(s);
                        match parse_rule(&s, dialect, engine_for(None), &variables) {
                            Ok(p) => rules.push(Rule {
                                text: s,
                                negated: p.negated,
                                probe: p.probe,
                                location: at,
                            }),
                            Err(e) => {
                                ctx.error(at, None, "bad-rule", format!("requirements: {}", e.0))
                            }
                        }
                    }
                }
            }
            Some(Requirements {
                title: doc_subst(title.unwrap_or_default()),
                description: doc_subst(text(&req.description).unwrap_or_default()),
                condition,
                rules,
            })
        }
    };

    let mut out_checks = Vec::new();
    let mut seen: BTreeMap<String, Location> = BTreeMap::new();
    if checks.value.is_empty() {
        ctx.error(
            ctx.loc(&checks.referenced),
            None,
            "missing-field",
            "section 'checks' is empty".into(),
        );
    }
    for (index, c) in checks.value.into_iter().enumerate() {
        let cloc = ctx.loc(&c.referenced);
        let c = c.value;
        let id = match &c.id {
            None => {
                ctx.error(
                    cloc.clone(),
                    None,
                    "missing-field",
                    format!("check #{}: field 'id' not found", index + 1),
                );
                continue;
            }
            Some(sid) => {
                let at = ctx.loc(&sid.referenced);
                match (&sid.value, dialect) {
                    (Value::Number(n), _)
                        if n.as_u64().is_some_and(|v| v > 0 && v <= i32::MAX as u64) =>
                    {
                        n.to_string()
                    }
                    (Value::String(s), Dialect::Sca5) if !s.trim().is_empty() => s.clone(),
                    (other, _) => {
                        ctx.error(at, None, "bad-id", format!("check #{}: invalid check id {other} (Wazuh 4.x needs a positive integer)", index + 1));
                        continue;
                    }
                }
            }
        };
        if let Some(first) = seen.get(&id) {
            let msg = format!("duplicate check id {id} (first defined at {first})");
            ctx.error(cloc.clone(), Some(&id), "duplicate-id", msg);
            continue;
        }
        seen.insert(id.clone(), cloc.clone());

        let title = text(&c.title).or_else(|| text(&c.name));
        let Some(title) = title else {
            ctx.error(
                cloc.clone(),
                Some(&id),
                "missing-field",
                "field 'title' not found".into(),
            );
            continue;
        };
        let condition = match &c.condition {
            None => {
                ctx.error(
                    cloc.clone(),
                    Some(&id),
                    "missing-field",
                    "field 'condition' not found".into(),
                );
                continue;
            }
            Some(sc) => {
                let at = ctx.loc(&sc.referenced);
                match text(&Some(sc.value.clone()))
                    .as_deref()
                    .and_then(parse_condition)
                {
                    Some(cond) => cond,
                    None => {
                        ctx.error(
                            at,
                            Some(&id),
                            "bad-condition",
                            format!("invalid condition {} (expected all, any or none)", sc.value),
                        );
                        continue;
                    }
                }
            }
        };
        let engine = engine_for(text(&c.regex_type));
        let mut rules = Vec::new();
        match c.rules {
            None => {
                ctx.error(
                    cloc.clone(),
                    Some(&id),
                    "missing-field",
                    "no rules found".into(),
                );
                continue;
            }
            Some(list) => {
                let lloc = ctx.loc(&list.referenced);
                if list.value.is_empty() {
                    ctx.error(
                        lloc.clone(),
                        Some(&id),
                        "missing-field",
                        "no rules found".into(),
                    );
                }
                if list.value.len() > 255 {
                    ctx.error(
                        lloc,
                        Some(&id),
                        "too-many-rules",
                        format!("{} rules; the maximum is 255", list.value.len()),
                    );
                }
                for r in list.value {
                    let at = ctx.loc(&r.referenced);
                    let Some(s) = text(&Some(r.value)) else {
                        ctx.error(at, Some(&id), "bad-rule", "rule must be a string".into());
                        continue;
                    };
                    let s = doc_subst(s);
                    let after_not = s
                        .strip_prefix("not ")
                        .or_else(|| s.strip_prefix("NOT "))
                        .unwrap_or(&s);
                    match after_not.chars().next() {
                        None => {
                            ctx.error(at, Some(&id), "bad-rule", "empty rule".into());
                            continue;
                        }
                        Some('f' | 'd' | 'p' | 'c' | 'r') => {}
                        Some(_) => {
                            ctx.error(at, Some(&id), "bad-rule", format!("invalid rule format '{s}' (a rule starts with f:, d:, c:, p: or r:, optionally after 'not ')"));
                            continue;
                        }
                    }
                    match parse_rule(&s, dialect, engine, &variables) {
                        Ok(p) => rules.push(Rule {
                            text: s,
                            negated: p.negated,
                            probe: p.probe,
                            location: at,
                        }),
                        Err(e) => ctx.error(at, Some(&id), "bad-rule", e.0),
                    }
                }
            }
        }
        let (compliance, mut mitre) = parse_compliance(c.compliance.as_ref());
        mitre.extend(parse_mitre(c.mitre.as_ref()));
        mitre.dedup();
        out_checks.push(Check {
            id: id.clone(),
            title: doc_subst(title),
            description: doc_subst(text(&c.description).unwrap_or_default()),
            rationale: doc_subst(text(&c.rationale).unwrap_or_default()),
            remediation: doc_subst(text(&c.remediation).unwrap_or_default()),
            impact: doc_subst(text(&c.impact).unwrap_or_default()),
            severity: Severity::Unknown,
            references: c
                .references
                .iter()
                .flatten()
                .filter_map(|v| text(&Some(v.clone())))
                .collect(),
            compliance,
            mitre,
            condition,
            rules,
            dialect,
            location: cloc,
            applies_if: Vec::new(),
        });
    }

    if !ctx.diags.is_empty() {
        return Err(PolicyError::Invalid(ctx.diags));
    }
    Ok(Policy {
        id,
        name,
        description,
        file: file.to_string(),
        format: if dialect == Dialect::Sca5 {
            PolicyFormat::WazuhSca5
        } else {
            PolicyFormat::WazuhSca4
        },
        sha256: sha256.to_string(),
        references: header
            .references
            .iter()
            .flatten()
            .filter_map(|v| text(&Some(v.clone())))
            .collect(),
        requirements,
        checks: out_checks,
    })
}

fn parse_condition(c: &str) -> Option<Condition> {
    match c {
        "all" | "all required" => Some(Condition::All),
        "any" | "any required" => Some(Condition::Any),
        "none" => Some(Condition::None),
        _ => None,
    }
}

fn detect_version(checks: &[Spanned<RawCheck>], req: Option<&RawRequirements>) -> ScaVersion {
    let v5_check = checks.iter().any(|c| {
        let c = &c.value;
        (c.title.is_none() && c.name.is_some())
            || matches!(c.compliance, Some(Value::Object(_)))
            || c.mitre.is_some()
    });
    let v5_req = req.is_some_and(|r| r.title.is_none() && r.name.is_some());
    if v5_check || v5_req {
        ScaVersion::V5
    } else {
        ScaVersion::V4
    }
}

/// Compliance in either form: a list of single-key maps (4.x) or a map (5.x). MITRE keys are
/// split off into the MITRE list.
fn parse_compliance(v: Option<&Value>) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut mitre = Vec::new();
    let mut add = |k: &str, vals: &Value| {
        let list = scalar_list(vals);
        if rampart_core::Framework::is_mitre_key(k) {
            mitre.extend(list.iter().cloned());
        }
        map.entry(k.to_string()).or_default().extend(list);
    };
    match v {
        Some(Value::Array(items)) => {
            for item in items {
                if let Value::Object(o) = item {
                    for (k, vals) in o {
                        add(k, vals);
                    }
                }
            }
        }
        Some(Value::Object(o)) => {
            for (k, vals) in o {
                add(k, vals);
            }
        }
        _ => {}
    }
    (map, mitre)
}

/// 5.x `mitre: {tactic|technique|subtechnique: {id: [..], name: [..]}}` → ids.
fn parse_mitre(v: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(Value::Object(o)) = v {
        for kind in o.values() {
            if let Value::Object(inner) = kind
                && let Some(ids) = inner.get("id")
            {
                out.extend(scalar_list(ids));
            }
        }
    }
    out
}
