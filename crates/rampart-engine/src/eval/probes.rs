//! The SCA probes: files, directories, commands and processes, with the exact result and reason
//! rules of `wm_sca.c` (4.x) and the 5.x differences.

use super::pattern::{FOUND, INVALID, LineMode, NOT_FOUND, scan_lines};
use super::{Reason, RuleResult};
use crate::command::{CommandOutcome, break_lines};
use crate::context::ScanContext;
use rampart_core::{Observation, ObservationKind};
use rampart_policy::ir::{Dialect, NameFilter, Pattern};

/// Longest excerpt of text kept in evidence.
const EXCERPT: usize = 400;
/// Lines of command output kept in evidence when nothing matched.
const EXCERPT_LINES: usize = 6;
/// Observations kept per rule (directory walks can touch thousands of files).
const MAX_OBSERVATIONS: usize = 8;

fn clip(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    if s.len() <= EXCERPT {
        s.into_owned()
    } else {
        let mut end = EXCERPT;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    }
}

fn obs(
    kind: ObservationKind,
    target: &str,
    line: Option<u64>,
    text: Option<String>,
    detail: impl Into<String>,
) -> Observation {
    Observation {
        kind,
        target: target.to_string(),
        line,
        text,
        detail: Some(detail.into()),
    }
}

/// Records that `path` does not exist.
fn push_missing(r: &mut RuleResult, kind: ObservationKind, path: &str) {
    push(r, obs(kind, path, None, None, "does not exist"));
}

fn push(r: &mut RuleResult, o: Observation) {
    if r.observations.len() < MAX_OBSERVATIONS {
        r.observations.push(o);
    }
}

/// `f:` — a list of files, for existence or content.
pub fn files(
    ctx: &ScanContext,
    paths: &[String],
    content: Option<&Pattern>,
    dialect: Dialect,
    reason: &mut Reason,
) -> RuleResult {
    let mut r = RuleResult::new(NOT_FOUND);
    for path in paths {
        if not_in_image(ctx, ObservationKind::File, path, reason, &mut r) {
            continue;
        }
        let exists = existence(ctx, path, reason, &mut r);
        let Some(pattern) = content else {
            match exists {
                FOUND => {
                    r.value = FOUND;
                    break;
                }
                INVALID => r.value = INVALID,
                _ => {}
            }
            continue;
        };
        if exists == NOT_FOUND && dialect == Dialect::Native {
            // Native: a missing file has no matching line (Wazuh calls the rule not applicable).
            continue;
        }
        if exists != FOUND {
            r.value = INVALID;
            reason.set(format!("Could not open file '{path}'"));
            continue;
        }
        match contents(ctx, path, pattern, dialect, reason, &mut r) {
            FOUND => {
                r.value = FOUND;
                break;
            }
            INVALID => r.value = INVALID,
            _ => {}
        }
    }
    r
}

/// `wm_sca_resolve_symlink`: `realpath` inside the root. A missing path is not found (no
/// reason); any other failure is invalid, with Wazuh's reason.
fn resolve_symlink(
    ctx: &ScanContext,
    path: &str,
    kind: ObservationKind,
    reason: &mut Reason,
    r: &mut RuleResult,
) -> Result<std::path::PathBuf, i32> {
    match ctx.resolve(path) {
        Ok(h) => Ok(h),
        Err(e) if e.is_not_found() => {
            push_missing(r, kind, path);
            Err(NOT_FOUND)
        }
        Err(e) => {
            reason.set(format!(
                "Could not resolve the real path of '{path}': {}",
                e.strerror()
            ));
            push(r, obs(kind, path, None, None, e.strerror()));
            Err(INVALID)
        }
    }
}

/// Whether `path` names the running kernel's state (`/proc`, `/sys`): an image has none, so
/// under a root other than `/` such a rule cannot be judged.
pub fn is_live_kernel_path(path: &str) -> bool {
    let path = path.trim_start_matches('/');
    ["proc", "sys"]
        .iter()
        .any(|top| path == *top || path.strip_prefix(top).is_some_and(|r| r.starts_with('/')))
}

/// Under an image root, a live-kernel path that is not there is not available: the rule is not
/// applicable, and the evidence says why instead of calling the file missing. A procfs or sysfs
/// mounted into the tree (a host's root mounted into a container, with its `/proc`) is live
/// state and is read as usual. Returns whether the path was not available.
fn not_in_image(
    ctx: &ScanContext,
    kind: ObservationKind,
    path: &str,
    reason: &mut Reason,
    r: &mut RuleResult,
) -> bool {
    if ctx.root.is_host() || !is_live_kernel_path(path) {
        return false;
    }
    if ctx
        .resolve(path)
        .is_ok_and(|host| std::fs::symlink_metadata(host).is_ok())
    {
        return false;
    }
    reason.set(format!(
        "'{path}' is live kernel state, not available in an image"
    ));
    push(
        r,
        obs(
            kind,
            path,
            None,
            None,
            "not available in an image (live kernel state)",
        ),
    );
    r.value = INVALID;
    true
}

/// `wm_sca_check_file_existence`: FOUND for a regular file (after following symlinks).
fn existence(ctx: &ScanContext, path: &str, reason: &mut Reason, r: &mut RuleResult) -> i32 {
    let host = match resolve_symlink(ctx, path, ObservationKind::File, reason, r) {
        Ok(h) => h,
        Err(v) => return v,
    };
    match std::fs::symlink_metadata(&host) {
        Err(e) => {
            let e = crate::fsroot::FsError::from_io(&e);
            if e.is_not_found() {
                push_missing(r, ObservationKind::File, path);
                return NOT_FOUND;
            }
            reason.set(format!("Could not open '{path}': {}", e.strerror()));
            push(
                r,
                obs(ObservationKind::File, path, None, None, e.strerror()),
            );
            INVALID
        }
        Ok(m) if m.is_file() => {
            push(r, obs(ObservationKind::File, path, None, None, "exists"));
            FOUND
        }
        Ok(_) => {
            reason.set(format!(
                "FILE_EXISTS({path}) -> RETURN_INVALID: Not a regular file."
            ));
            push(
                r,
                obs(
                    ObservationKind::File,
                    path,
                    None,
                    None,
                    "exists but is not a regular file",
                ),
            );
            INVALID
        }
    }
}

/// `wm_sca_check_file_contents`.
fn contents(
    ctx: &ScanContext,
    path: &str,
    pattern: &Pattern,
    dialect: Dialect,
    reason: &mut Reason,
    r: &mut RuleResult,
) -> i32 {
    let host = match ctx.resolve(path) {
        Ok(h) => h,
        Err(_) => {
            reason.set(format!("Could not open file '{path}'"));
            return INVALID;
        }
    };
    let lines = match ctx.lines(&host) {
        Ok(l) => l,
        Err(e) => {
            reason.set(format!("Could not open file '{path}': {}", e.strerror()));
            push(
                r,
                obs(
                    ObservationKind::File,
                    path,
                    None,
                    None,
                    format!("cannot be read: {}", e.strerror()),
                ),
            );
            return INVALID;
        }
    };
    let texts: Vec<&[u8]> = lines.iter().map(|l| l.text.as_slice()).collect();
    let mode = match dialect {
        Dialect::Sca4 => LineMode::FirstNonZero,
        _ => LineMode::AnyLine,
    };
    let res = scan_lines(pattern, &texts, dialect, mode, reason);
    // Replace the existence note with what the content scan saw.
    if let Some(last) = r.observations.last()
        && last.target == path
        && last.detail.as_deref() == Some("exists")
    {
        r.observations.pop();
    }
    match res.decisive {
        Some(i) => {
            let detail = match res.value {
                FOUND => "line matches",
                INVALID => "line could not be evaluated",
                _ => "line violates the pattern",
            };
            push(
                r,
                obs(
                    ObservationKind::File,
                    path,
                    Some(lines[i].number),
                    Some(clip(&lines[i].text)),
                    detail,
                ),
            );
        }
        None => {
            let observation = match res.near_miss(pattern, dialect) {
                // The line that holds the setting, with the value that fails.
                Some(o) => obs(
                    ObservationKind::File,
                    path,
                    Some(lines[o.line].number),
                    Some(clip(&lines[o.line].text)),
                    format!(
                        "value {} (no line of {} matches)",
                        o.describe(),
                        lines.len()
                    ),
                ),
                None => obs(
                    ObservationKind::File,
                    path,
                    None,
                    None,
                    match res.value {
                        INVALID => format!("a line of {} could not be evaluated", lines.len()),
                        _ => format!("no line of {} matches", lines.len()),
                    },
                ),
            };
            push(r, observation);
        }
    }
    res.value
}

/// `d:` — directories, for existence or for files (searched recursively) whose names pass the
/// filter and, optionally, whose content matches.
pub fn dirs(
    ctx: &ScanContext,
    paths: &[String],
    filter: Option<&NameFilter>,
    content: Option<&Pattern>,
    dialect: Dialect,
    reason: &mut Reason,
) -> RuleResult {
    let mut r = RuleResult::new(NOT_FOUND);
    for dir in paths {
        if not_in_image(ctx, ObservationKind::Directory, dir, reason, &mut r) {
            continue;
        }
        if ctx.options.skip_nfs && is_network_fs(ctx, dir) {
            reason.set(format!(
                "Directory '{dir}' flagged as NFS and skip_nfs is enabled"
            ));
            push(
                &mut r,
                obs(
                    ObservationKind::Directory,
                    dir,
                    None,
                    None,
                    "on a network filesystem; skipped",
                ),
            );
            r.value = INVALID;
            continue;
        }
        let res = match filter {
            None => dir_existence(ctx, dir, reason, &mut r),
            Some(f) => {
                let spec = WalkSpec {
                    filter: f,
                    content,
                    dialect,
                };
                walk(ctx, dir, &spec, reason, &mut r, 0)
            }
        };
        match res {
            FOUND => {
                r.value = FOUND;
                break;
            }
            INVALID => r.value = INVALID,
            _ => {}
        }
    }
    r
}

fn is_network_fs(ctx: &ScanContext, dir: &str) -> bool {
    let Ok(host) = ctx.resolve(dir) else {
        return false;
    };
    // NFS (0x6969) and CIFS (0xFF534D42), as Wazuh's IsNFS.
    rustix::fs::statfs(&host).is_ok_and(|s| s.f_type == 0x6969 || s.f_type == 0xFF53_4D42)
}

fn dir_existence(ctx: &ScanContext, dir: &str, reason: &mut Reason, r: &mut RuleResult) -> i32 {
    let host = match resolve_symlink(ctx, dir, ObservationKind::Directory, reason, r) {
        Ok(h) => h,
        Err(v) => return v,
    };
    match std::fs::read_dir(&host) {
        Ok(_) => {
            push(
                r,
                obs(ObservationKind::Directory, dir, None, None, "exists"),
            );
            FOUND
        }
        Err(e) => {
            let e = crate::fsroot::FsError::from_io(&e);
            if e.is_not_found() {
                push_missing(r, ObservationKind::Directory, dir);
                return NOT_FOUND;
            }
            reason.set(format!(
                "Could not check directory existence for '{dir}': {}",
                e.strerror()
            ));
            push(
                r,
                obs(ObservationKind::Directory, dir, None, None, e.strerror()),
            );
            INVALID
        }
    }
}

fn filter_matches(filter: &NameFilter, name: &str) -> bool {
    match filter {
        NameFilter::Regex { regex, fallback } => {
            regex.is_match_plain(name.as_bytes()) || fallback.is_match(name.as_bytes())
        }
        NameFilter::Match(m) => m.is_match(name.as_bytes()),
        NameFilter::Matcher(m) => m.is_match(name.as_bytes()),
        NameFilter::Exact(s) => s == name,
    }
}

/// What a directory walk looks for.
struct WalkSpec<'a> {
    filter: &'a NameFilter,
    content: Option<&'a Pattern>,
    dialect: Dialect,
}

/// `wm_sca_check_dir`: recursive walk (symlinked directories are not followed).
fn walk(
    ctx: &ScanContext,
    dir: &str,
    spec: &WalkSpec<'_>,
    reason: &mut Reason,
    r: &mut RuleResult,
    depth: usize,
) -> i32 {
    let WalkSpec {
        filter,
        content,
        dialect,
    } = *spec;
    if ctx.remaining().is_some_and(|left| left.is_zero()) {
        reason.set(format!(
            "Directory walk of '{dir}' stopped: the scan deadline had passed"
        ));
        push(
            r,
            obs(
                ObservationKind::Directory,
                dir,
                None,
                None,
                "not walked: scan deadline passed",
            ),
        );
        r.timed_out = true;
        return INVALID;
    }
    if let Err(e) = ctx.resolve(dir) {
        if dialect == Dialect::Native && e.is_not_found() {
            // Native: a missing directory holds no matching file.
            push_missing(r, ObservationKind::Directory, dir);
            return NOT_FOUND;
        }
        reason.set(format!("Could not open dir '{dir}'"));
        push(
            r,
            obs(
                ObservationKind::Directory,
                dir,
                None,
                None,
                "cannot be opened",
            ),
        );
        return INVALID;
    }
    let entries = match ctx.list_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            reason.set(format!("Could not open '{dir}': {}", e.strerror()));
            push(
                r,
                obs(ObservationKind::Directory, dir, None, None, e.strerror()),
            );
            return INVALID;
        }
    };
    let mut acc = NOT_FOUND;
    let mut matched_any = false;
    for entry in entries.iter() {
        let f_name = format!("{dir}/{}", entry.name);
        let meta = match &entry.meta {
            Ok(m) => m,
            Err(_) => {
                reason.set(format!("Cannot check directory entry '{f_name}"));
                acc = INVALID;
                continue;
            }
        };
        let res = if meta.is_dir() {
            walk(ctx, &f_name, spec, reason, r, depth + 1)
        } else if filter_matches(filter, &entry.name) {
            matched_any = true;
            // Wazuh hands the entry to its file-list check, which splits on commas.
            let list: Vec<String> = if dialect == Dialect::Sca4 {
                f_name
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect()
            } else {
                vec![f_name.clone()]
            };
            files(ctx, &list, content, dialect, reason).also_into(r)
        } else {
            continue;
        };
        match res {
            FOUND => {
                acc = FOUND;
                break;
            }
            INVALID => acc = INVALID,
            _ => {}
        }
    }
    if acc == NOT_FOUND && !matched_any && depth == 0 {
        push(
            r,
            obs(
                ObservationKind::Directory,
                dir,
                None,
                None,
                "no file name passes the filter",
            ),
        );
    }
    acc
}

trait AlsoInto {
    fn also_into(self, r: &mut RuleResult) -> i32;
}

impl AlsoInto for RuleResult {
    /// Moves this sub-result's observations into `r` and returns its value.
    fn also_into(self, r: &mut RuleResult) -> i32 {
        for o in self.observations {
            push(r, o);
        }
        r.timed_out |= self.timed_out;
        self.value
    }
}

/// `c:` — a command and its output.
pub fn command(
    ctx: &ScanContext,
    command: &str,
    argv: &[String],
    output: Option<&Pattern>,
    dialect: Dialect,
    reason: &mut Reason,
) -> RuleResult {
    let mut r = RuleResult::new(NOT_FOUND);
    if !ctx.root.is_host() && !ctx.options.chroot_commands {
        reason.set(format!(
            "Command '{command}' not run: scanning root {} (commands would inspect the scanning host; use --chroot-commands)",
            ctx.root.path().display()
        ));
        push(
            &mut r,
            obs(
                ObservationKind::Command,
                command,
                None,
                None,
                "not run under --root",
            ),
        );
        r.value = INVALID;
        return r;
    }
    if output.is_none() && dialect == Dialect::Sca4 {
        // 4.x: a command rule without a pattern is FOUND and the command is not executed.
        push(
            &mut r,
            obs(
                ObservationKind::Command,
                command,
                None,
                None,
                "no pattern: found without running (Wazuh 4.x)",
            ),
        );
        r.value = FOUND;
        return r;
    }
    let outcome = ctx.command(argv);
    match outcome.as_ref() {
        CommandOutcome::DeadlinePassed => {
            reason.set(format!(
                "Command '{command}' not run: the scan deadline had passed"
            ));
            push(
                &mut r,
                obs(
                    ObservationKind::Command,
                    command,
                    None,
                    None,
                    "not run: scan deadline passed",
                ),
            );
            r.value = INVALID;
            r.timed_out = true;
            r
        }
        CommandOutcome::TimedOut => {
            reason.set(format!("Timeout overtaken running command '{command}'"));
            push(
                &mut r,
                obs(ObservationKind::Command, command, None, None, "timed out"),
            );
            r.value = INVALID;
            r.timed_out = true;
            r
        }
        CommandOutcome::NotStarted(_) | CommandOutcome::Exited { code: 127, .. } => {
            reason.set(format!(
                "Invalid path or wrong permissions to run command '{command}'"
            ));
            let detail = match outcome.as_ref() {
                CommandOutcome::NotStarted(e) => format!("could not be started: {e}"),
                _ => "exit status 127".to_string(),
            };
            push(
                &mut r,
                obs(ObservationKind::Command, command, None, None, detail),
            );
            r.value = INVALID;
            r
        }
        CommandOutcome::Exited { code, output: out } => {
            let Some(pattern) = output else {
                push(
                    &mut r,
                    obs(
                        ObservationKind::Command,
                        command,
                        None,
                        None,
                        format!("ran, exit status {code}"),
                    ),
                );
                r.value = FOUND;
                return r;
            };
            let pieces = break_lines(out);
            let texts: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
            let mode = match dialect {
                Dialect::Sca4 => LineMode::LastUnlessFound,
                _ => LineMode::AnyLine,
            };
            let res = scan_lines(pattern, &texts, dialect, mode, reason);
            match res.decisive {
                Some(i) => push(
                    &mut r,
                    obs(
                        ObservationKind::Command,
                        command,
                        Some(i as u64 + 1),
                        Some(clip(texts[i])),
                        format!(
                            "exit status {code}; line {}",
                            if res.value == FOUND {
                                "matches"
                            } else {
                                "violates the pattern"
                            }
                        ),
                    ),
                ),
                None if let Some(o) = res.near_miss(pattern, dialect) => {
                    push(
                        &mut r,
                        obs(
                            ObservationKind::Command,
                            command,
                            Some(o.line as u64 + 1),
                            Some(clip(texts[o.line])),
                            format!(
                                "exit status {code}; value {} (no line matches)",
                                o.describe()
                            ),
                        ),
                    );
                }
                None => {
                    let excerpt: Vec<String> = texts
                        .iter()
                        .take(EXCERPT_LINES)
                        .map(|l| String::from_utf8_lossy(l).into_owned())
                        .collect();
                    let more = texts.len().saturating_sub(EXCERPT_LINES);
                    let mut text = excerpt.join("\n");
                    if more > 0 {
                        text.push_str(&format!("\n… ({more} more lines)"));
                    }
                    push(
                        &mut r,
                        obs(
                            ObservationKind::Command,
                            command,
                            None,
                            Some(clip(text.as_bytes())),
                            format!("exit status {code}; no line matches"),
                        ),
                    );
                }
            }
            r.value = res.value;
            r
        }
    }
}

/// `p:` — running processes.
pub fn process(
    ctx: &ScanContext,
    pattern: &Pattern,
    dialect: Dialect,
    reason: &mut Reason,
) -> RuleResult {
    let mut r = RuleResult::new(NOT_FOUND);
    if !ctx.root.is_host() {
        reason.set(format!(
            "Process rule '{}' not evaluated: scanning root {}, whose processes are not running",
            pattern.text,
            ctx.root.path().display()
        ));
        r.value = INVALID;
        return r;
    }
    let procs = match ctx.processes() {
        Ok(p) => p,
        Err(e) => {
            reason.set(e);
            r.value = INVALID;
            return r;
        }
    };
    for p in procs.iter() {
        let hit = match dialect {
            Dialect::Sca4 => {
                super::pattern::line_value(pattern, p.name.as_bytes(), dialect, reason) != 0
            }
            _ => {
                super::pattern::line_value(pattern, p.name.as_bytes(), dialect, reason) == FOUND
                    || super::pattern::line_value(pattern, p.cmdline.as_bytes(), dialect, reason)
                        == FOUND
            }
        };
        if hit {
            push(
                &mut r,
                obs(
                    ObservationKind::Process,
                    &p.name,
                    None,
                    Some(clip(p.cmdline.as_bytes())),
                    format!("pid {}", p.pid),
                ),
            );
            r.value = FOUND;
            return r;
        }
    }
    push(
        &mut r,
        obs(
            ObservationKind::Process,
            &pattern.text,
            None,
            None,
            format!("no process of {} matches", procs.len()),
        ),
    );
    r
}
