//! `rampart scan` and `rampart report`.

use crate::cli::{ColorArg, FormatArg, OutputArgs, RequirementsArg, ScaVersionArg, ScanArgs};
use crate::exit;
use anyhow::{Context, anyhow};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rampart_core::{Framework, ScanReport, Status};
use rampart_engine::costs::CommandCosts;
use rampart_engine::{RequirementsMode, ScanContext, ScanOptions};
use rampart_policy::{LoadOptions, Policy, ScaVersion, Waivers};
use rampart_report::{Format, PrettyOptions};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use time::OffsetDateTime;

/// Output options checked before any work is done.
struct Prepared {
    framework: Option<Framework>,
    waivers: Option<Waivers>,
}

fn prepare(out: &OutputArgs) -> anyhow::Result<Prepared> {
    let framework = match &out.framework {
        None => None,
        Some(name) => Some(Framework::parse_known(name).ok_or_else(|| {
            anyhow!(
                "--framework: unknown framework '{name}' (known: {})",
                Framework::known_names().join(", ")
            )
        })?),
    };
    if let Some(s) = out.fail_under
        && !(0.0..=100.0).contains(&s)
    {
        return Err(anyhow!(
            "--fail-under: {s} is not a percentage between 0 and 100"
        ));
    }
    let waivers = match &out.waivers {
        Some(path) => Some(Waivers::load(path).map_err(|e| anyhow!("{e}"))?),
        None => None,
    };
    Ok(Prepared { framework, waivers })
}

/// Runs a scan (or an import) and writes the report.
pub fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    // Validate everything the user gave us before doing any work.
    let prepared = prepare(&args.out)?;
    if args.jobs == Some(0) {
        return Err(anyhow!("--jobs: must be at least 1"));
    }
    if args.command_slots == Some(0) {
        return Err(anyhow!("--command-slots: must be at least 1"));
    }
    if args.requirements == RequirementsArg::Image && args.root.is_none() {
        return Err(anyhow!(
            "--requirements image: needs --root (the image whose own files judge the requirements)"
        ));
    }
    if args.command_timeout == 0 || args.command_timeout > 3600 {
        return Err(anyhow!(
            "--command-timeout: {} is outside 1..=3600 seconds",
            args.command_timeout
        ));
    }
    let (report, source) = if let Some(path) = &args.import_oscap {
        (
            rampart_report::oscap::import_file(path).map_err(|e| anyhow!("{e}"))?,
            format!("OpenSCAP results {}", path.display()),
        )
    } else {
        let policies = load_policies(&args)?;
        (
            scan(&args, &policies)?,
            "rampart scan on this host".to_owned(),
        )
    };
    finish(report, &args.out, prepared, &source)
}

/// `rampart report`: re-renders a saved JSON report, applying waivers and a framework filter.
pub fn rerender(input: &Path, out: &OutputArgs) -> anyhow::Result<ExitCode> {
    let prepared = prepare(out)?;
    let bytes =
        std::fs::read(input).with_context(|| format!("{}: cannot read", input.display()))?;
    let report =
        rampart_report::json::parse(&bytes).map_err(|e| anyhow!("{}: {e}", input.display()))?;
    finish(
        report,
        out,
        prepared,
        &format!("scan report {}", input.display()),
    )
}

/// Applies waivers and the framework filter, renders, writes, and picks the exit code.
fn finish(
    mut report: ScanReport,
    out: &OutputArgs,
    prepared: Prepared,
    source: &str,
) -> anyhow::Result<ExitCode> {
    if let Some(w) = &prepared.waivers {
        let today = OffsetDateTime::now_utc().date();
        let warnings = w.apply(&mut report, today);
        for msg in &warnings {
            eprintln!("rampart: warning: {msg}");
        }
        report.warnings.extend(warnings);
    }
    if let Some(f) = &prepared.framework {
        for p in &mut report.policies {
            p.checks.retain(|c| c.frameworks().contains(f));
        }
        report.refresh();
    }

    let color = match out.color {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => {
            out.output.is_none()
                && std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none()
        }
    };
    let chosen = out.effective_format();
    if chosen == FormatArg::Pdf && out.output.is_none() && std::io::stdout().is_terminal() {
        return Err(anyhow!(
            "--format pdf: a PDF is binary; name a file with --output or redirect standard output"
        ));
    }
    let format = match chosen {
        FormatArg::Pdf => None,
        FormatArg::Pretty => Some(Format::Pretty),
        FormatArg::Json => Some(Format::Json),
        FormatArg::Wazuh => Some(Format::Wazuh),
        FormatArg::Junit => Some(Format::Junit),
        FormatArg::Csv => Some(Format::Csv),
        FormatArg::Html => Some(Format::Html),
        FormatArg::Oscal => Some(Format::Oscal),
    };
    let bytes = match format {
        Some(format) => rampart_report::render(
            &report,
            format,
            PrettyOptions {
                color,
                verbose: out.show_all,
            },
        )?,
        None => {
            let pdf = rampart_pdf::Report::build(rampart_pdf::from_scan(&report, source));
            rampart_pdf::render(&pdf)?.bytes
        }
    };
    match &out.output {
        Some(path) => super::write_atomic(path, &bytes)?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&bytes)
                .context("cannot write the report")?;
            stdout.flush().ok();
        }
    }
    if out.output.is_some() && chosen != FormatArg::Pretty {
        let t = report.totals();
        eprintln!(
            "rampart: {} checks: {} passed, {} failed, {} not applicable, {} waived; score {:.1}%",
            t.total,
            t.passed,
            t.failed,
            t.not_applicable + t.not_run,
            t.waived,
            t.score
        );
    }
    let code = exit_code(&report, out.fail_under);
    if code == exit::NOTHING_EVALUATED {
        for line in nothing_evaluated(&report) {
            eprintln!("rampart: {line}");
        }
    }
    Ok(ExitCode::from(code))
}

/// Why a scan evaluated no check, and what to do about it, as lines for stderr.
fn nothing_evaluated(report: &ScanReport) -> Vec<String> {
    let t = report.totals();
    let mut lines = vec![format!(
        "no check was evaluated ({} checks, none passed or failed): the score means nothing and the scan is not a success",
        t.total
    )];
    let mut unmet = false;
    for p in &report.policies {
        if let Some(req) = p.requirements.as_ref().filter(|r| !r.satisfied) {
            unmet = true;
            lines.push(format!(
                "policy {}: requirements not met ({}): {}",
                p.policy.id,
                req.title,
                req.reason.as_deref().unwrap_or("")
            ));
        }
    }
    if unmet && report.host.root.is_some() {
        lines.push(
            "this scans an image, which has no running kernel (/proc, /sys): judge the requirements against its own files with --requirements image, or skip them with --requirements skip".into(),
        );
    } else if unmet {
        lines.push("the policy is not meant for this host (or use --requirements skip)".into());
    } else if t.total > 0 {
        lines.push(
            "every check was not applicable (under --root, command and process rules need --chroot-commands; see the report's reasons)".into(),
        );
    }
    lines
}

/// 3 when no check was evaluated; 1 when a check failed or errored, or the score is under
/// `--fail-under`; else 0.
fn exit_code(report: &ScanReport, fail_under: Option<f64>) -> u8 {
    let totals = report.totals();
    if totals.passed + totals.failed + totals.waived + totals.error == 0 {
        return exit::NOTHING_EVALUATED;
    }
    if let Some(min) = fail_under {
        return if totals.score < min {
            exit::FAILURES
        } else {
            exit::OK
        };
    }
    let bad = report
        .policies
        .iter()
        .flat_map(|p| &p.checks)
        .any(|c| matches!(c.status, Status::Fail | Status::Error));
    if bad { exit::FAILURES } else { exit::OK }
}

fn load_policies(args: &ScanArgs) -> anyhow::Result<Vec<Policy>> {
    let options = LoadOptions {
        sca_version: match args.sca_version {
            ScaVersionArg::Auto => ScaVersion::Auto,
            ScaVersionArg::V4 => ScaVersion::V4,
            ScaVersionArg::V5 => ScaVersion::V5,
        },
    };
    if args.policies.is_empty() {
        return Ok(vec![
            rampart_policy::builtin::linux_baseline().map_err(|e| anyhow!("{e}"))?,
        ]);
    }
    let mut out: Vec<Policy> = Vec::new();
    for path in &args.policies {
        let p = rampart_policy::load_file(path, options).map_err(|e| anyhow!("{e}"))?;
        if let Some(prev) = out.iter().find(|q| q.id == p.id) {
            return Err(anyhow!(
                "{}: policy id '{}' is already used by {}",
                path.display(),
                p.id,
                prev.file
            ));
        }
        out.push(p);
    }
    Ok(out)
}

fn scan(args: &ScanArgs, policies: &[Policy]) -> anyhow::Result<ScanReport> {
    let root = match &args.root {
        Some(r) => {
            let meta = std::fs::metadata(r).with_context(|| format!("--root {}", r.display()))?;
            if !meta.is_dir() {
                return Err(anyhow!("--root {}: not a directory", r.display()));
            }
            std::fs::canonicalize(r).with_context(|| format!("--root {}", r.display()))?
        }
        None => "/".into(),
    };
    if args.chroot_commands && !rustix::process::geteuid().is_root() {
        return Err(anyhow!("--chroot-commands needs root privileges"));
    }
    let options = ScanOptions {
        root,
        chroot_commands: args.chroot_commands,
        command_timeout: Duration::from_secs(args.command_timeout),
        deadline: args.deadline.map(Duration::from_secs),
        jobs: args
            .jobs
            .unwrap_or_else(rampart_engine::context::default_jobs),
        command_slots: args
            .command_slots
            .unwrap_or_else(rampart_engine::context::default_command_slots),
        skip_nfs: !args.no_skip_nfs,
        requirements: match args.requirements {
            RequirementsArg::Host => RequirementsMode::Host,
            RequirementsArg::Image => RequirementsMode::Image,
            RequirementsArg::Skip => RequirementsMode::Skip,
        },
    };
    let cache = (!args.no_cost_cache).then(cost_cache_path).flatten();
    let mut costs = CommandCosts::new();
    if let Some(path) = &cache {
        match CommandCosts::load(path) {
            Ok(c) => costs = c,
            Err(e) => eprintln!("rampart: warning: ignoring the command-costs cache: {e}"),
        }
    }
    let ctx = ScanContext::new(options).with_command_costs(costs);
    let started_at = OffsetDateTime::now_utc();
    let show_progress = !args.quiet && std::io::stderr().is_terminal();
    let bar = ProgressBar::with_draw_target(
        None,
        if show_progress {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template("{spinner} scanning [{bar:30}] {pos}/{len} checks {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let report = rampart_engine::scan_report(&ctx, policies, &progress, new_scan_id(started_at));
    bar.finish_and_clear();
    let saved = cache
        .as_ref()
        .and_then(|path| ctx.updated_costs().map(|costs| costs.save(path)));
    if let Some(Err(e)) = saved {
        eprintln!("rampart: warning: cannot update the command-costs cache: {e}");
    }
    {
        use std::sync::atomic::Ordering::Relaxed;
        let c = &ctx.counters;
        tracing::info!(
            checks = report
                .policies
                .iter()
                .map(|r| r.checks.len())
                .sum::<usize>(),
            commands_run = c.commands_run.load(Relaxed),
            files_read = c.files_read.load(Relaxed),
            dirs_listed = c.dirs_listed.load(Relaxed),
            "scan finished"
        );
    }
    // The terminal report prints warnings itself; other formats go to files or pipes.
    if args.out.effective_format() != FormatArg::Pretty {
        for msg in &report.warnings {
            eprintln!("rampart: warning: {msg}");
        }
    }
    Ok(report)
}

/// The command-costs cache: `$XDG_CACHE_HOME/rampart/command-costs.json`, else
/// `$HOME/.cache/rampart/command-costs.json` (the XDG base directory rules); none when neither
/// variable is set to an absolute path, and none for root when the path lies in another user's
/// tree (see [`foreign_to_root`]).
fn cost_cache_path() -> Option<PathBuf> {
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let path = absolute("XDG_CACHE_HOME")
        .or_else(|| absolute("HOME").map(|h| h.join(".cache")))
        .map(|dir| dir.join("rampart").join("command-costs.json"))?;
    if rustix::process::geteuid().is_root()
        && let Some(owner) = foreign_to_root(&path)
    {
        tracing::debug!(
            path = %path.display(),
            owner,
            "not using the command-costs cache: run as root in a directory owned by another user"
        );
        return None;
    }
    Some(path)
}

/// The owner of the nearest existing directory on `path`, when it is not root.
///
/// `sudo -E rampart scan` keeps the invoking user's `HOME`; without this check root would leave
/// a root-owned `~/.cache/rampart` in that user's home, which the user's own scans then could
/// not update. The cache only orders work, so root simply scans without one there.
fn foreign_to_root(path: &std::path::Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let meta = path
        .ancestors()
        .skip(1)
        .find_map(|dir| std::fs::metadata(dir).ok())?;
    (meta.uid() != 0).then_some(meta.uid())
}

/// A random scan id (128 bits, hex), from the process's randomly keyed hasher and the clock.
fn new_scan_id(now: OffsetDateTime) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for salt in 0..2u8 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_i128(now.unix_timestamp_nanos());
        h.write_u32(std::process::id());
        h.write_u8(salt);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}
