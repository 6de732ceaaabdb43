//! Rampart's native policy format.
//!
//! The Wazuh SCA dialect packs probe, location and matchers into one string
//! (`not c:sshd -T -> !r:^# && n:maxauthtries\s+(\d+) compare <= 4`) whose quirks (case-folding,
//! `\s` meaning a space, per-line negation) surprise authors. Native rules are structured YAML
//! instead: one key names the probe, the others say what to expect, regexes are Rust `regex`
//! syntax (linear-time, case-sensitive unless `(?i)`), and negation is spelled out
//! (`no_match`, `exists: false`, `installed: false`). See `docs/policy-format.md`; the JSON Schema
//! comes from [`schema`].

use crate::error::{Diagnostic, Level, Location, PolicyError};
use crate::ir::{
    Check, Compare, Condition, Dialect, Matcher, Minterm, NameFilter, Pattern, Policy,
    PolicyFormat, Probe, Requirements, Rule, StatTest, Test,
};
use crate::sca::rule::parse_compare_v5;
use crate::sca::tokenize::tokenize;
use rampart_core::Severity;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A value with its source location; the schema is the inner value's.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct Located<T>(pub Spanned<T>);

impl<T: JsonSchema> JsonSchema for Located<T> {
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
    fn inline_schema() -> bool {
        T::inline_schema()
    }
}

/// A Rampart policy file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Rampart policy")]
pub struct NativeDoc {
    /// Format version; must be 1. Its presence marks the file as a Rampart policy.
    pub rampart: u32,
    /// Policy header.
    pub policy: NativeHeader,
    /// Rules that decide whether the policy applies to the host at all.
    #[serde(default)]
    pub requirements: Option<NativeRequirements>,
    /// The checks.
    pub checks: Vec<Located<NativeCheck>>,
}

/// Policy header.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NativeHeader {
    /// Unique policy id (letters, digits, `-`, `_`, `.`).
    pub id: String,
    /// Human name.
    pub name: String,
    /// What the policy covers.
    #[serde(default)]
    pub description: String,
    /// Reference URLs or documents.
    #[serde(default)]
    pub references: Vec<String>,
    /// Platforms the policy is written for (informational; use `requirements` to gate).
    #[serde(default)]
    pub platforms: Vec<String>,
}

/// A requirements gate.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NativeRequirements {
    /// What the gate checks.
    pub title: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// How rules combine (default `all`).
    #[serde(default)]
    pub condition: Option<String>,
    /// Rules.
    pub rules: Vec<Located<NativeRule>>,
}

/// One check.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NativeCheck {
    /// Unique id within the policy (letters, digits, `-`, `_`, `.`).
    pub id: Located<String>,
    /// One-line title.
    pub title: String,
    /// `critical`, `high`, `medium`, `low` or `info`.
    pub severity: Located<String>,
    /// What is checked.
    #[serde(default)]
    pub description: String,
    /// Why it matters.
    #[serde(default)]
    pub rationale: String,
    /// How to fix a failure.
    #[serde(default)]
    pub remediation: String,
    /// Side effects of the remediation.
    #[serde(default)]
    pub impact: String,
    /// References.
    #[serde(default)]
    pub references: Vec<String>,
    /// Framework → control ids, e.g. `cis: ["5.2.4"]`, `nist_800_53: [AC-17]`,
    /// `pci_dss_4.0: ["2.2.6"]`, `soc_2: [CC6.1]`.
    #[serde(default)]
    pub compliance: BTreeMap<String, Vec<String>>,
    /// MITRE ATT&CK ids (techniques, tactics, mitigations).
    #[serde(default)]
    pub mitre: Vec<String>,
    /// Rules that must all hold for the check to apply; otherwise it is not applicable.
    #[serde(default)]
    pub applies_if: Vec<Located<NativeRule>>,
    /// How rules combine: `all` (default), `any`, `none`.
    #[serde(default)]
    pub condition: Option<Located<String>>,
    /// Rules.
    pub rules: Vec<Located<NativeRule>>,
}

/// A rule: exactly one probe key (`file`, `dir`, `command`, `process`, `stat`, `sysctl`,
/// `package`, `mount`) plus the expectations that probe accepts.
#[derive(Debug, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct NativeRule {
    /// Probe: a file (or several). Alone, the rule holds when one exists as a regular file.
    pub file: Option<OneOrMany>,
    /// Probe: a directory, searched recursively for files whose names match `files`.
    pub dir: Option<String>,
    /// Probe: a command (argument list, or a string split like Wazuh does; no shell).
    pub command: Option<OneOrMany>,
    /// Probe: a running process, by exact name.
    pub process: Option<String>,
    /// Probe: file metadata (with `mode`, `owner`, `group`).
    pub stat: Option<String>,
    /// Probe: a kernel parameter (`net.ipv4.ip_forward`), with `equals` or `match`.
    pub sysctl: Option<String>,
    /// Probe: an installed package (dpkg or rpm).
    pub package: Option<String>,
    /// Probe: a mount point (with `options`).
    pub mount: Option<String>,

    /// `file`/`dir`: whether the file/directory must exist (default true).
    pub exists: Option<bool>,
    /// `dir`: file-name filter (regex).
    pub files: Option<String>,
    /// Some line (output line, value) matches this regex.
    #[serde(rename = "match")]
    pub match_: Option<String>,
    /// No line matches this regex.
    pub no_match: Option<String>,
    /// With `match`/`no_match`: lines that also match this regex are ignored (e.g.
    /// `no_match: '^[^:]*:[^:]*:0:'` with `except: '^root:'`).
    pub except: Option<String>,
    /// With `match`: compare the first capture group as an integer, e.g. `"<= 4"`.
    pub compare: Option<String>,
    /// `sysctl`: the value equals this text exactly.
    pub equals: Option<String>,
    /// `stat`: most permissive mode allowed, octal (e.g. `"0640"`).
    pub mode: Option<String>,
    /// `stat`: acceptable owners.
    pub owner: Option<OneOrMany>,
    /// `stat`: acceptable groups.
    pub group: Option<OneOrMany>,
    /// `package`: whether it must be installed (default true).
    pub installed: Option<bool>,
    /// `mount`: options that must all be set.
    pub options: Option<Vec<String>>,
}

/// A single string or a list of strings.
#[derive(Debug, Deserialize, JsonSchema, Clone)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One value.
    One(String),
    /// Several values.
    Many(Vec<String>),
}

impl OneOrMany {
    fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// The JSON Schema of the native format.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(NativeDoc)).unwrap_or(serde_json::Value::Null)
}

/// Whether a document looks like a native Rampart policy (has a top-level `rampart:` key).
pub fn is_native(source: &str) -> bool {
    source
        .lines()
        .any(|l| l.starts_with("rampart:") || l.starts_with("\"rampart\":"))
}

struct Ctx<'a> {
    file: &'a str,
    diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn at<T>(&self, s: &Spanned<T>) -> Location {
        Location::new(self.file, s.referenced.line(), s.referenced.column())
    }
    fn error(
        &mut self,
        at: Location,
        check: Option<&str>,
        code: &'static str,
        msg: impl Into<String>,
    ) {
        self.diags.push(Diagnostic {
            level: Level::Error,
            location: at,
            check: check.map(str::to_string),
            code,
            message: msg.into(),
        });
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Parses and compiles a native policy.
pub fn load_native(source: &str, file: &str, sha256: &str) -> Result<Policy, PolicyError> {
    let doc: NativeDoc = serde_saphyr::from_str(source).map_err(|e| crate::yaml_error(file, &e))?;
    let mut ctx = Ctx {
        file,
        diags: Vec::new(),
    };
    let top = Location::new(file, 1, 1);
    if doc.rampart != 1 {
        ctx.error(
            top.clone(),
            None,
            "bad-version",
            format!(
                "rampart: {} is not a supported format version (expected 1)",
                doc.rampart
            ),
        );
    }
    if doc.checks.is_empty() {
        ctx.error(
            top.clone(),
            None,
            "missing-field",
            "a policy needs at least one check",
        );
    }
    if !valid_id(&doc.policy.id) {
        ctx.error(
            top.clone(),
            None,
            "bad-id",
            format!(
                "policy.id '{}' must be letters, digits, '-', '_' or '.'",
                doc.policy.id
            ),
        );
    }
    let requirements = doc.requirements.map(|r| {
        let condition = match r.condition.as_deref() {
            None => Condition::All,
            Some(c) => parse_condition(c).unwrap_or_else(|| {
                ctx.error(
                    top.clone(),
                    None,
                    "bad-condition",
                    format!("requirements.condition '{c}' must be all, any or none"),
                );
                Condition::All
            }),
        };
        let rules = r
            .rules
            .iter()
            .filter_map(|rule| compile_rule(&mut ctx, rule, None))
            .collect();
        Requirements {
            title: r.title,
            description: r.description,
            condition,
            rules,
        }
    });
    let mut seen: BTreeMap<String, Location> = BTreeMap::new();
    let mut checks = Vec::new();
    for c in &doc.checks {
        let cloc = ctx.at(&c.0);
        let c = &c.0.value;
        let id = c.id.0.value.clone();
        let id_loc = ctx.at(&c.id.0);
        if !valid_id(&id) {
            ctx.error(
                id_loc.clone(),
                Some(&id),
                "bad-id",
                "check id must be letters, digits, '-', '_' or '.'",
            );
        }
        if let Some(first) = seen.get(&id) {
            let msg = format!("duplicate check id (first defined at {first})");
            ctx.error(id_loc, Some(&id), "duplicate-id", msg);
            continue;
        }
        seen.insert(id.clone(), cloc.clone());
        let severity = match c.severity.0.value.parse::<Severity>() {
            Ok(s) => s,
            Err(e) => {
                let at = ctx.at(&c.severity.0);
                ctx.error(at, Some(&id), "bad-severity", e.to_string());
                Severity::Unknown
            }
        };
        let condition = match &c.condition {
            None => Condition::All,
            Some(cond) => match parse_condition(&cond.0.value) {
                Some(x) => x,
                None => {
                    let at = ctx.at(&cond.0);
                    ctx.error(
                        at,
                        Some(&id),
                        "bad-condition",
                        format!("condition '{}' must be all, any or none", cond.0.value),
                    );
                    Condition::All
                }
            },
        };
        if c.rules.is_empty() {
            ctx.error(
                cloc.clone(),
                Some(&id),
                "missing-field",
                "a check needs at least one rule",
            );
        }
        for key in c.compliance.keys() {
            let f = rampart_core::Framework::from_key(key);
            if !f.is_known() && !rampart_core::Framework::is_mitre_key(key) {
                ctx.error(
                    cloc.clone(),
                    Some(&id),
                    "unknown-framework",
                    format!(
                        "unknown compliance framework '{key}' (known: {})",
                        rampart_core::Framework::known_names().join(", ")
                    ),
                );
            }
        }
        let mut rules: Vec<Rule> = Vec::new();
        // `applies_if` rules run first; if one does not hold the check is not applicable. They
        // are compiled as a leading `all` block that the engine evaluates before the check.
        let gate: Vec<Rule> = c
            .applies_if
            .iter()
            .filter_map(|r| compile_rule(&mut ctx, r, Some(&id)))
            .collect();
        rules.extend(
            c.rules
                .iter()
                .filter_map(|r| compile_rule(&mut ctx, r, Some(&id))),
        );
        checks.push(Check {
            id,
            title: c.title.clone(),
            description: c.description.clone(),
            rationale: c.rationale.clone(),
            remediation: c.remediation.clone(),
            impact: c.impact.clone(),
            severity,
            references: c.references.clone(),
            compliance: c.compliance.clone(),
            mitre: c.mitre.clone(),
            condition,
            rules,
            dialect: Dialect::Native,
            location: cloc,
            applies_if: gate,
        });
    }
    if !ctx.diags.is_empty() {
        return Err(PolicyError::Invalid(ctx.diags));
    }
    Ok(Policy {
        id: doc.policy.id,
        name: doc.policy.name,
        description: doc.policy.description,
        file: file.to_string(),
        format: PolicyFormat::Rampart,
        sha256: sha256.to_string(),
        references: doc.policy.references,
        requirements,
        checks,
    })
}

fn parse_condition(c: &str) -> Option<Condition> {
    match c {
        "all" => Some(Condition::All),
        "any" => Some(Condition::Any),
        "none" => Some(Condition::None),
        _ => None,
    }
}

fn regex(
    ctx: &mut Ctx,
    at: &Location,
    check: Option<&str>,
    field: &str,
    re: &str,
) -> Option<Matcher> {
    match regex::bytes::RegexBuilder::new(re)
        .size_limit(1 << 20)
        .build()
    {
        Ok(r) => Some(Matcher::Rust(r)),
        Err(e) => {
            let msg = e.to_string();
            let first = msg
                .lines()
                .last()
                .unwrap_or("invalid regex")
                .trim()
                .to_string();
            ctx.error(
                at.clone(),
                check,
                "bad-regex",
                format!("{field}: invalid regex '{re}': {first}"),
            );
            None
        }
    }
}

/// Builds the line pattern from `match` + `compare`.
fn line_pattern(
    ctx: &mut Ctx,
    at: &Location,
    check: Option<&str>,
    re: &str,
    compare: Option<&str>,
) -> Option<Pattern> {
    let m = regex(ctx, at, check, "match", re)?;
    let test = match compare {
        None => Test::Regex(m),
        Some(cmp) => {
            let c = parse_compare_v5(cmp);
            if let Compare::Invalid(msg) = &c {
                ctx.error(
                    at.clone(),
                    check,
                    "bad-compare",
                    format!("compare: {msg} (write e.g. \"<= 4\")"),
                );
                return None;
            }
            Test::Numeric {
                regex: m,
                compare: c,
                text: cmp.to_string(),
            }
        }
    };
    Some(Pattern {
        text: match compare {
            None => re.to_string(),
            Some(c) => format!("{re} compare {c}"),
        },
        minterms: vec![Minterm {
            negated: false,
            test,
        }],
    })
}

fn compile_rule(ctx: &mut Ctx, rule: &Located<NativeRule>, check: Option<&str>) -> Option<Rule> {
    let at = ctx.at(&rule.0);
    let r = &rule.0.value;
    let probes: Vec<&str> = [
        ("file", r.file.is_some()),
        ("dir", r.dir.is_some()),
        ("command", r.command.is_some()),
        ("process", r.process.is_some()),
        ("stat", r.stat.is_some()),
        ("sysctl", r.sysctl.is_some()),
        ("package", r.package.is_some()),
        ("mount", r.mount.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, present)| present.then_some(k))
    .collect();
    if probes.len() != 1 {
        ctx.error(at, check, "bad-rule", format!(
            "a rule needs exactly one probe key (file, dir, command, process, stat, sysctl, package, mount); found {}",
            if probes.is_empty() { "none".to_string() } else { probes.join(", ") }
        ));
        return None;
    }
    let probe_key = probes[0];
    // Which expectation keys each probe accepts.
    let allowed: &[&str] = match probe_key {
        "file" => &["exists", "match", "no_match", "compare", "except"],
        "dir" => &["exists", "files", "match", "no_match", "compare", "except"],
        "command" => &["match", "no_match", "compare", "except"],
        "process" => &[],
        "stat" => &["mode", "owner", "group"],
        "sysctl" => &["equals", "match"],
        "package" => &["installed"],
        _ => &["options"],
    };
    let given: Vec<&str> = [
        ("exists", r.exists.is_some()),
        ("files", r.files.is_some()),
        ("match", r.match_.is_some()),
        ("no_match", r.no_match.is_some()),
        ("compare", r.compare.is_some()),
        ("except", r.except.is_some()),
        ("equals", r.equals.is_some()),
        ("mode", r.mode.is_some()),
        ("owner", r.owner.is_some()),
        ("group", r.group.is_some()),
        ("installed", r.installed.is_some()),
        ("options", r.options.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, present)| present.then_some(k))
    .collect();
    if let Some(bad) = given.iter().find(|g| !allowed.contains(g)) {
        ctx.error(
            at,
            check,
            "bad-rule",
            format!(
                "'{bad}' cannot be used with '{probe_key}' (allowed: {})",
                allowed.join(", ")
            ),
        );
        return None;
    }
    if r.match_.is_some() && r.no_match.is_some() {
        ctx.error(
            at,
            check,
            "bad-rule",
            "use either 'match' or 'no_match' in one rule, not both (write two rules)",
        );
        return None;
    }
    if r.except.is_some() && r.match_.is_none() && r.no_match.is_none() {
        ctx.error(
            at,
            check,
            "bad-rule",
            "'except' needs 'match' or 'no_match'",
        );
        return None;
    }
    if r.compare.is_some() && r.match_.is_none() {
        ctx.error(
            at,
            check,
            "bad-rule",
            "'compare' needs 'match' with a capture group",
        );
        return None;
    }
    let content = |ctx: &mut Ctx| -> Option<Option<Pattern>> {
        let mut pattern = match (&r.match_, &r.no_match) {
            (Some(m), None) => line_pattern(ctx, &at, check, m, r.compare.as_deref())?,
            (None, Some(m)) => line_pattern(ctx, &at, check, m, None)?,
            _ => return Some(None),
        };
        if let Some(ex) = &r.except {
            let m = regex(ctx, &at, check, "except", ex)?;
            pattern.text.push_str(&format!(" except {ex}"));
            pattern.minterms.push(Minterm {
                negated: true,
                test: Test::Regex(m),
            });
        }
        Some(Some(pattern))
    };
    let mut negated = r.no_match.is_some();
    let (probe, text) = match probe_key {
        "file" => {
            let paths = r.file.as_ref().map(OneOrMany::to_vec).unwrap_or_default();
            let content = content(ctx)?;
            if content.is_none() && r.exists == Some(false) {
                negated = true;
            }
            let text = describe("file", &paths.join(","), r);
            (Probe::File { paths, content }, text)
        }
        "dir" => {
            let dir = r.dir.clone().unwrap_or_default();
            let filter = match &r.files {
                Some(f) => Some(NameFilter::Matcher(regex(ctx, &at, check, "files", f)?)),
                None => None,
            };
            let content = content(ctx)?;
            if filter.is_none() && content.is_some() {
                ctx.error(
                    at,
                    check,
                    "bad-rule",
                    "'match' on a dir needs 'files' to choose which files",
                );
                return None;
            }
            if filter.is_none() && r.exists == Some(false) {
                negated = true;
            }
            let text = describe("dir", &dir, r);
            (
                Probe::Directory {
                    paths: vec![dir],
                    filter,
                    content,
                },
                text,
            )
        }
        "command" => {
            let argv = match r.command.as_ref() {
                Some(OneOrMany::One(s)) => tokenize(s),
                Some(OneOrMany::Many(v)) => v.clone(),
                None => vec![],
            };
            if argv.is_empty() {
                ctx.error(at, check, "bad-rule", "command is empty");
                return None;
            }
            let Some(output) = content(ctx)? else {
                ctx.error(
                    at,
                    check,
                    "bad-rule",
                    "a command rule needs 'match' or 'no_match'",
                );
                return None;
            };
            let command = argv.join(" ");
            let text = describe("command", &command, r);
            (
                Probe::Command {
                    command,
                    argv,
                    output: Some(output),
                },
                text,
            )
        }
        "process" => {
            let name = r.process.clone().unwrap_or_default();
            let pattern = Pattern {
                text: name.clone(),
                minterms: vec![Minterm {
                    negated: false,
                    test: Test::Literal {
                        text: name.clone(),
                        case_sensitive: true,
                    },
                }],
            };
            (
                Probe::Process { pattern },
                format!("process {name} is running"),
            )
        }
        "stat" => {
            let path = r.stat.clone().unwrap_or_default();
            let (forbidden, max_mode) = match &r.mode {
                None => (None, None),
                Some(m) => match u32::from_str_radix(m.trim_start_matches("0o"), 8) {
                    Ok(v) if v <= 0o7777 => (Some(0o7777 & !v), Some(v)),
                    _ => {
                        ctx.error(
                            at,
                            check,
                            "bad-rule",
                            format!("mode '{m}' is not an octal mode like \"0640\""),
                        );
                        return None;
                    }
                },
            };
            if r.mode.is_none() && r.owner.is_none() && r.group.is_none() {
                ctx.error(
                    at,
                    check,
                    "bad-rule",
                    "'stat' needs at least one of mode, owner, group",
                );
                return None;
            }
            let text = describe("stat", &path, r);
            (
                Probe::Stat(StatTest {
                    path,
                    forbidden_mode_bits: forbidden,
                    max_mode,
                    owners: r.owner.as_ref().map(OneOrMany::to_vec).unwrap_or_default(),
                    groups: r.group.as_ref().map(OneOrMany::to_vec).unwrap_or_default(),
                }),
                text,
            )
        }
        "sysctl" => {
            let key = r.sysctl.clone().unwrap_or_default();
            let value = match (&r.equals, &r.match_) {
                (Some(eq), None) => Pattern {
                    text: eq.clone(),
                    minterms: vec![Minterm {
                        negated: false,
                        test: Test::Literal {
                            text: eq.clone(),
                            case_sensitive: true,
                        },
                    }],
                },
                (None, Some(m)) => line_pattern(ctx, &at, check, m, None)?,
                _ => {
                    ctx.error(
                        at,
                        check,
                        "bad-rule",
                        "'sysctl' needs exactly one of 'equals' or 'match'",
                    );
                    return None;
                }
            };
            let text = describe("sysctl", &key, r);
            (Probe::Sysctl { key, value }, text)
        }
        "package" => {
            let name = r.package.clone().unwrap_or_default();
            if r.installed == Some(false) {
                negated = true;
            }
            let text = describe("package", &name, r);
            (Probe::Package { name }, text)
        }
        _ => {
            let point = r.mount.clone().unwrap_or_default();
            let text = describe("mount", &point, r);
            (
                Probe::Mount {
                    point,
                    options: r.options.clone().unwrap_or_default(),
                },
                text,
            )
        }
    };
    Some(Rule {
        text,
        negated,
        probe,
        location: at,
    })
}

/// A one-line rendering of a native rule for reports.
fn describe(key: &str, target: &str, r: &NativeRule) -> String {
    let mut s = format!("{key}: {target}");
    let mut add = |k: &str, v: &str| s.push_str(&format!(" {k} '{v}'"));
    if let Some(f) = &r.files {
        add("files", f);
    }
    if let Some(m) = &r.match_ {
        add("match", m);
    }
    if let Some(m) = &r.no_match {
        add("no_match", m);
    }
    if let Some(c) = &r.compare {
        add("compare", c);
    }
    if let Some(e) = &r.except {
        add("except", e);
    }
    if let Some(e) = &r.equals {
        add("equals", e);
    }
    if let Some(m) = &r.mode {
        add("mode", m);
    }
    if let Some(o) = &r.owner {
        add("owner", &o.to_vec().join("|"));
    }
    if let Some(g) = &r.group {
        add("group", &g.to_vec().join("|"));
    }
    if let Some(o) = &r.options {
        add("options", &o.join(","));
    }
    if r.exists == Some(false) {
        s.push_str(" exists: false");
    }
    if r.installed == Some(false) {
        s.push_str(" installed: false");
    }
    s
}
