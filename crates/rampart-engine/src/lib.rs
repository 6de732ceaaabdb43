//! Rampart's scan engine: evaluates compiled policies against a host or a root directory.
//!
//! * Checks run in parallel on a bounded pool of worker threads.
//! * Each distinct file read, directory listing and command runs once per scan and is shared by
//!   every check that needs it ([`context::ScanContext`]).
//! * Commands run without a shell, with a per-command timeout and an overall deadline, so no
//!   check can hang a scan.
//! * `--root` scans a mounted image exactly like the live host, never escaping the root.
//!
//! The engine never touches the network or a database.

pub mod command;
pub mod context;
pub mod costs;
pub mod eval;
pub mod fsroot;
pub mod host;
pub mod process;
pub mod report;
pub mod slots;

pub use context::{RequirementsMode, ScanContext, ScanOptions};
pub use report::scan_report;

use eval::pattern::FOUND;
use rampart_core::{PolicyInfo, PolicyReport, RequirementsOutcome, Status, Summary};
use rampart_policy::ir::{Dialect, Policy};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Progress callback: (checks done, checks total).
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// Judges a policy's requirements as [`ScanOptions::requirements`] says.
fn requirements(
    ctx: &ScanContext,
    req: &rampart_policy::ir::Requirements,
    dialect: Dialect,
) -> RequirementsOutcome {
    let outcome =
        |satisfied: bool, reason: Option<String>, note: Option<String>| RequirementsOutcome {
            title: req.title.clone(),
            satisfied,
            reason,
            note,
        };
    let rules: Vec<rampart_policy::ir::Rule>;
    let (rules, note) = match ctx.options.requirements {
        RequirementsMode::Skip => {
            return outcome(true, None, Some("not evaluated: skipped on request".into()));
        }
        RequirementsMode::Host => (&req.rules[..], None),
        RequirementsMode::Image => {
            let (live, own): (Vec<_>, Vec<_>) = req
                .rules
                .iter()
                .cloned()
                .partition(|r| reads_running_system(ctx, r));
            rules = own;
            let left_out: Vec<&str> = live.iter().map(|r| r.text.as_str()).collect();
            if rules.is_empty() {
                return outcome(
                    false,
                    Some(format!(
                        "no requirement can be judged against an image: every rule reads the running system ({})",
                        left_out.join("; ")
                    )),
                    None,
                );
            }
            let note = if left_out.is_empty() {
                "judged against the image's own files".to_owned()
            } else {
                format!(
                    "judged against the image's own files; left out, as they read the running system: {}",
                    left_out.join("; ")
                )
            };
            (&rules[..], Some(note))
        }
    };
    let agg = eval::aggregate(ctx, rules, req.condition, dialect);
    let satisfied = agg.value == FOUND;
    let reason = (!satisfied).then(|| {
        agg.reason
            .unwrap_or_else(|| "the host does not meet the policy's requirements".into())
    });
    outcome(satisfied, reason, note)
}

/// Whether a rule looks at the running system rather than at files of the scanned tree.
fn reads_running_system(ctx: &ScanContext, rule: &rampart_policy::ir::Rule) -> bool {
    use rampart_policy::ir::Probe;
    match &rule.probe {
        Probe::File { paths, .. } | Probe::Directory { paths, .. } => {
            paths.iter().all(|p| eval::probes::is_live_kernel_path(p))
        }
        Probe::Command { .. } => !ctx.options.chroot_commands,
        Probe::Process { .. } | Probe::Sysctl { .. } | Probe::Mount { .. } => true,
        Probe::Registry { .. } | Probe::Stat(_) | Probe::Package { .. } => false,
    }
}

/// Evaluates policies; returns one report per policy, in the order given.
pub fn scan(ctx: &ScanContext, policies: &[Policy], progress: Progress<'_>) -> Vec<PolicyReport> {
    // Requirements first: a policy whose requirements fail is not evaluated at all (4.x) or has
    // every check reported not applicable (5.x).
    let mut reports: Vec<PolicyReport> = Vec::with_capacity(policies.len());
    let mut work: Vec<(usize, usize)> = Vec::new();
    for (pi, p) in policies.iter().enumerate() {
        let dialect = p.checks.first().map_or(Dialect::Sca4, |c| c.dialect);
        let requirements = p
            .requirements
            .as_ref()
            .map(|req| requirements(ctx, req, dialect));
        let applies = requirements.as_ref().is_none_or(|r| r.satisfied);
        let mut checks = Vec::new();
        if applies {
            work.extend((0..p.checks.len()).map(|ci| (pi, ci)));
        } else if p.checks.first().is_some_and(|c| c.dialect != Dialect::Sca4) {
            let why = format!(
                "Policy requirements not met: {}",
                requirements.as_ref().map_or("", |r| r.title.as_str())
            );
            checks = p
                .checks
                .iter()
                .map(|c| eval::outcome(c, Status::NotApplicable, Some(why.clone()), vec![]))
                .collect();
        }
        reports.push(PolicyReport {
            policy: policy_info(p),
            requirements,
            checks,
            summary: Summary::default(),
            frameworks: Default::default(),
            severities: Default::default(),
        });
    }

    // Longest work first. Checks whose commands took longest in earlier scans of this host lead
    // (see `costs`); then, and on a first scan, checks whose first rule runs a command, those
    // with the most command rules (the longest sequential chains) ahead; cheap file checks fill
    // in at the end. Results are put back in policy order afterwards.
    work.sort_by_cached_key(|&(pi, ci)| {
        let rules = &policies[pi].checks[ci].rules;
        fn command(r: &rampart_policy::ir::Rule) -> Option<&[String]> {
            match &r.probe {
                rampart_policy::ir::Probe::Command { argv, .. } => Some(argv),
                _ => None,
            }
        }
        let first_is_cmd = rules.first().and_then(command).is_some();
        let chain: std::time::Duration = rules
            .iter()
            .filter_map(command)
            .filter_map(|argv| ctx.expected_cost(argv))
            .sum();
        (
            std::cmp::Reverse(chain),
            !first_is_cmd,
            std::cmp::Reverse(rules.iter().filter_map(command).count()),
        )
    });
    let total = work.len();
    let results: Vec<Mutex<Option<rampart_core::CheckOutcome>>> =
        (0..total).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let workers = ctx.options.jobs.clamp(1, 256).min(total.max(1));
    progress(0, total);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let (pi, ci) = work[i];
                    let outcome = eval::eval_check(ctx, &policies[pi].checks[ci]);
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(outcome);
                    }
                    let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                    progress(d, total);
                }
            });
        }
    });
    let mut ordered: Vec<(usize, usize, rampart_core::CheckOutcome)> = Vec::with_capacity(total);
    for (i, slot) in results.into_iter().enumerate() {
        let (pi, ci) = work[i];
        let outcome = slot.into_inner().ok().flatten().unwrap_or_else(|| {
            // A worker panicked while evaluating this check: report it, never lose it.
            let c = &policies[pi].checks[ci];
            eval::outcome(
                c,
                Status::Error,
                Some("internal error while evaluating this check".into()),
                vec![],
            )
        });
        ordered.push((pi, ci, outcome));
    }
    ordered.sort_by_key(|(pi, ci, _)| (*pi, *ci));
    for (pi, _, outcome) in ordered {
        reports[pi].checks.push(outcome);
    }
    for r in &mut reports {
        r.refresh();
    }
    reports
}

fn policy_info(p: &Policy) -> PolicyInfo {
    PolicyInfo {
        id: p.id.clone(),
        name: p.name.clone(),
        description: p.description.clone(),
        file: p.file.clone(),
        format: p.format.as_str().to_string(),
        sha256: p.sha256.clone(),
        references: p.references.clone(),
    }
}
