//! Check evaluation: rules in order, aggregated by `all`/`any`/`none`, with the reasons and
//! evidence a reader needs.

pub mod native;
pub mod pattern;
pub mod probes;

use crate::context::ScanContext;
use pattern::{FOUND, INVALID, NOT_FOUND};
use rampart_core::{CheckOutcome, Evidence, Observation, RuleVerdict, Status};
use rampart_policy::ir::{Check, Condition, Dialect, Probe, Rule};

/// The first reason recorded while evaluating a check (Wazuh keeps the first one only).
#[derive(Debug, Default)]
pub struct Reason(Option<String>);

impl Reason {
    /// Records a reason unless one is already recorded.
    pub fn set(&mut self, msg: String) {
        if self.0.is_none() {
            self.0 = Some(msg);
        }
    }

    /// The recorded reason.
    pub fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// Outcome of one rule.
#[derive(Debug)]
pub struct RuleResult {
    /// FOUND / NOT_FOUND / INVALID (before `not`).
    pub value: i32,
    /// A command timed out (5.x reports such checks as not run).
    pub timed_out: bool,
    /// What was seen.
    pub observations: Vec<Observation>,
}

impl RuleResult {
    fn new(value: i32) -> RuleResult {
        RuleResult {
            value,
            timed_out: false,
            observations: Vec::new(),
        }
    }
}

/// Evaluates one rule (before negation).
pub fn eval_rule(
    ctx: &ScanContext,
    rule: &Rule,
    dialect: Dialect,
    reason: &mut Reason,
) -> RuleResult {
    match &rule.probe {
        Probe::File { paths, content } => {
            probes::files(ctx, paths, content.as_ref(), dialect, reason)
        }
        Probe::Directory {
            paths,
            filter,
            content,
        } => probes::dirs(
            ctx,
            paths,
            filter.as_ref(),
            content.as_ref(),
            dialect,
            reason,
        ),
        Probe::Command {
            command,
            argv,
            output,
        } => probes::command(ctx, command, argv, output.as_ref(), dialect, reason),
        Probe::Process { pattern } => probes::process(ctx, pattern, dialect, reason),
        Probe::Registry { key, .. } => {
            reason.set(format!(
                "Registry rules can only be evaluated on Windows hosts; '{key}' was not checked"
            ));
            let mut r = RuleResult::new(INVALID);
            r.observations.push(Observation {
                kind: rampart_core::ObservationKind::Registry,
                target: key.clone(),
                line: None,
                text: None,
                detail: Some("not a Windows host".into()),
            });
            r
        }
        Probe::Stat(t) => native::stat(ctx, t, reason),
        Probe::Sysctl { key, value } => native::sysctl(ctx, key, value, reason),
        Probe::Package { name } => native::package(ctx, name, reason),
        Probe::Mount { point, options } => native::mount(ctx, point, options, reason),
    }
}

/// The aggregated result of a list of rules.
pub struct Aggregate {
    /// FOUND / NOT_FOUND / INVALID.
    pub value: i32,
    /// A timeout made the result invalid.
    pub timed_out: bool,
    /// Evidence per rule, in order (skipped rules included).
    pub evidence: Vec<Evidence>,
    /// Index of the rule that decided the result.
    pub deciding_rule: Option<usize>,
    /// First reason recorded.
    pub reason: Option<String>,
}

/// Evaluates rules under a condition. 4.x and native short-circuit; 5.x runs every rule.
pub fn aggregate(
    ctx: &ScanContext,
    rules: &[Rule],
    condition: Condition,
    dialect: Dialect,
) -> Aggregate {
    let mut reason = Reason::default();
    let mut evidence = Vec::with_capacity(rules.len());
    let short_circuit = dialect != Dialect::Sca5;
    let mut g = match condition {
        Condition::All => FOUND,
        Condition::Any | Condition::None => NOT_FOUND,
    };
    let mut decided = false;
    let mut deciding_rule = None;
    let mut timed_out = false;
    let (mut any_found, mut any_not_found, mut any_invalid) = (false, false, false);
    for (i, rule) in rules.iter().enumerate() {
        if decided && short_circuit {
            evidence.push(Evidence {
                rule: rule.text.clone(),
                verdict: RuleVerdict::Skipped,
                observations: vec![],
            });
            continue;
        }
        let r = eval_rule(ctx, rule, dialect, &mut reason);
        let mut found = r.value;
        if found != INVALID && found != FOUND {
            found = NOT_FOUND;
        }
        if found != INVALID && rule.negated {
            found ^= 1;
        }
        timed_out |= r.timed_out && found == INVALID;
        evidence.push(Evidence {
            rule: rule.text.clone(),
            verdict: match found {
                FOUND => RuleVerdict::Found,
                INVALID => RuleVerdict::Invalid,
                _ => RuleVerdict::NotFound,
            },
            observations: r.observations,
        });
        match found {
            FOUND => any_found = true,
            INVALID => any_invalid = true,
            _ => any_not_found = true,
        }
        if decided {
            continue;
        }
        let breaks = match condition {
            Condition::All => found == NOT_FOUND,
            Condition::Any | Condition::None => found == FOUND,
        };
        if breaks {
            g = found;
            decided = true;
            deciding_rule = Some(i);
            continue;
        }
        if found == INVALID {
            g = INVALID;
        }
    }
    if dialect == Dialect::Sca5 {
        // The documented truth table, over every rule.
        g = match condition {
            Condition::All if any_not_found => NOT_FOUND,
            Condition::Any | Condition::None if any_found => FOUND,
            _ if any_invalid => INVALID,
            Condition::All => FOUND,
            _ => NOT_FOUND,
        };
    }
    if condition == Condition::None && g != INVALID {
        g ^= 1;
    }
    Aggregate {
        value: g,
        timed_out,
        evidence,
        deciding_rule,
        reason: reason.0,
    }
}

/// Evaluates one check into its outcome.
pub fn eval_check(ctx: &ScanContext, check: &Check) -> CheckOutcome {
    if !check.applies_if.is_empty() {
        let gate = aggregate(ctx, &check.applies_if, Condition::All, check.dialect);
        if gate.value != FOUND {
            let why = match gate.deciding_rule {
                Some(i) => format!("does not apply: {}", check.applies_if[i].text),
                None => format!(
                    "does not apply: {}",
                    gate.reason
                        .unwrap_or_else(|| "applicability rules could not be evaluated".into())
                ),
            };
            return outcome(check, Status::NotApplicable, Some(why), gate.evidence);
        }
    }
    let agg = aggregate(ctx, &check.rules, check.condition, check.dialect);
    let status = match agg.value {
        FOUND => Status::Pass,
        NOT_FOUND => Status::Fail,
        _ if agg.timed_out && check.dialect == Dialect::Sca5 => Status::NotRun,
        _ => Status::NotApplicable,
    };
    let reason = match status {
        Status::NotApplicable | Status::NotRun => {
            Some(agg.reason.unwrap_or_else(|| "Unknown reason".to_string()))
        }
        _ => agg.deciding_rule.map(|i| explain(check, i)),
    };
    outcome(check, status, reason, agg.evidence)
}

/// One line saying which rule decided a check.
fn explain(check: &Check, rule: usize) -> String {
    let text = &check.rules[rule].text;
    match check.condition {
        Condition::All => format!("rule {} did not hold: {text}", rule + 1),
        Condition::Any => format!("rule {} held: {text}", rule + 1),
        Condition::None => format!("rule {} held, which this check forbids: {text}", rule + 1),
    }
}

/// Builds a check outcome with the check's metadata.
pub fn outcome(
    check: &Check,
    status: Status,
    reason: Option<String>,
    evidence: Vec<Evidence>,
) -> CheckOutcome {
    CheckOutcome {
        id: check.id.clone(),
        title: check.title.clone(),
        description: check.description.clone(),
        rationale: check.rationale.clone(),
        remediation: check.remediation.clone(),
        severity: check.severity,
        references: check.references.clone(),
        compliance: check.compliance.clone(),
        mitre: check.mitre.clone(),
        condition: check.condition.as_str().to_string(),
        rules: check.rules.iter().map(|r| r.text.clone()).collect(),
        status,
        reason,
        evidence,
        waiver: None,
        original_status: None,
    }
}
