//! Probes only native Rampart policies use. They read the scan root directly (no commands), so
//! they give the same answers on a live host and on a mounted image.

use super::pattern::{FOUND, INVALID, NOT_FOUND, line_value};
use super::{Reason, RuleResult};
use crate::context::ScanContext;
use rampart_core::{Observation, ObservationKind};
use rampart_policy::ir::{Dialect, Pattern, StatTest};
use std::os::unix::fs::MetadataExt;

fn observe(
    r: &mut RuleResult,
    kind: ObservationKind,
    target: &str,
    text: Option<String>,
    detail: impl Into<String>,
) {
    r.observations.push(Observation {
        kind,
        target: target.to_string(),
        line: None,
        text,
        detail: Some(detail.into()),
    });
}

/// Looks up a numeric id in a passwd/group-format file of the scan root.
fn name_of(ctx: &ScanContext, file: &str, id: u32) -> Option<String> {
    let host = ctx.resolve(file).ok()?;
    let lines = ctx.lines(&host).ok()?;
    lines.iter().find_map(|l| {
        let text = String::from_utf8_lossy(&l.text);
        let mut fields = text.split(':');
        let name = fields.next()?;
        let _ = fields.next()?;
        let num: u32 = fields.next()?.parse().ok()?;
        (num == id).then(|| name.to_string())
    })
}

fn accepts(wanted: &[String], id: u32, name: Option<&str>) -> bool {
    wanted.is_empty()
        || wanted
            .iter()
            .any(|w| w.parse::<u32>().ok() == Some(id) || Some(w.as_str()) == name)
}

/// Mode, owner and group of a file (symlinks followed).
pub fn stat(ctx: &ScanContext, t: &StatTest, reason: &mut Reason) -> RuleResult {
    let mut r = RuleResult {
        value: NOT_FOUND,
        timed_out: false,
        observations: vec![],
    };
    let host = match ctx.resolve(&t.path) {
        Ok(h) => h,
        Err(e) if e.is_not_found() => {
            // Like native content rules: a missing file does not meet the constraints.
            observe(
                &mut r,
                ObservationKind::Metadata,
                &t.path,
                None,
                "does not exist",
            );
            return r;
        }
        Err(e) => {
            reason.set(format!("'{}' cannot be examined: {}", t.path, e.strerror()));
            observe(
                &mut r,
                ObservationKind::Metadata,
                &t.path,
                None,
                e.strerror(),
            );
            r.value = INVALID;
            return r;
        }
    };
    let meta = match std::fs::metadata(&host) {
        Ok(m) => m,
        Err(e) => {
            let e = crate::fsroot::FsError::from_io(&e);
            reason.set(format!("'{}' cannot be examined: {}", t.path, e.strerror()));
            r.value = INVALID;
            return r;
        }
    };
    let mode = meta.mode() & 0o7777;
    let owner = name_of(ctx, "/etc/passwd", meta.uid());
    let group = name_of(ctx, "/etc/group", meta.gid());
    let mode_ok = t.forbidden_mode_bits.is_none_or(|f| mode & f == 0);
    let owner_ok = accepts(&t.owners, meta.uid(), owner.as_deref());
    let group_ok = accepts(&t.groups, meta.gid(), group.as_deref());
    let seen = format!(
        "mode {mode:04o}, owner {}({}), group {}({})",
        owner.as_deref().unwrap_or("?"),
        meta.uid(),
        group.as_deref().unwrap_or("?"),
        meta.gid()
    );
    let mut problems = Vec::new();
    if !mode_ok {
        problems.push(format!(
            "mode {mode:04o} is more permissive than {:04o}",
            t.max_mode.unwrap_or(0)
        ));
    }
    if !owner_ok {
        problems.push(format!("owner is not one of {}", t.owners.join(", ")));
    }
    if !group_ok {
        problems.push(format!("group is not one of {}", t.groups.join(", ")));
    }
    let detail = if problems.is_empty() {
        "meets the constraints".to_string()
    } else {
        problems.join("; ")
    };
    observe(
        &mut r,
        ObservationKind::Metadata,
        &t.path,
        Some(seen),
        detail,
    );
    r.value = if problems.is_empty() {
        FOUND
    } else {
        NOT_FOUND
    };
    r
}

/// A kernel parameter from `<root>/proc/sys`.
pub fn sysctl(ctx: &ScanContext, key: &str, value: &Pattern, reason: &mut Reason) -> RuleResult {
    let mut r = RuleResult {
        value: NOT_FOUND,
        timed_out: false,
        observations: vec![],
    };
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    let lines = ctx.resolve(&path).and_then(|h| ctx.lines(&h));
    let lines = match lines {
        Ok(l) => l,
        Err(e) => {
            reason.set(format!(
                "kernel parameter {key} is not available ({path}: {})",
                e.strerror()
            ));
            observe(
                &mut r,
                ObservationKind::Other,
                key,
                None,
                format!("{path}: {}", e.strerror()),
            );
            r.value = INVALID;
            return r;
        }
    };
    let current = lines
        .first()
        .map(|l| String::from_utf8_lossy(&l.text).trim().to_string())
        .unwrap_or_default();
    // Multi-value parameters (e.g. ip_local_port_range) are tab-separated in /proc; normalise.
    let normalised: String = current.split_whitespace().collect::<Vec<_>>().join(" ");
    let v = line_value(value, normalised.as_bytes(), Dialect::Native, reason);
    r.value = if v == FOUND {
        FOUND
    } else if v == INVALID {
        INVALID
    } else {
        NOT_FOUND
    };
    let detail = if r.value == FOUND {
        "value matches"
    } else {
        "value does not match"
    };
    observe(
        &mut r,
        ObservationKind::Other,
        key,
        Some(normalised),
        detail,
    );
    r
}

/// Whether a package is installed: the dpkg status database of the root, else `rpm -q`.
pub fn package(ctx: &ScanContext, name: &str, reason: &mut Reason) -> RuleResult {
    let mut r = RuleResult {
        value: NOT_FOUND,
        timed_out: false,
        observations: vec![],
    };
    if let Ok(host) = ctx.resolve("/var/lib/dpkg/status") {
        match ctx.lines(&host) {
            Ok(lines) => {
                let status = dpkg_status(&lines, name);
                let installed = status.as_deref().is_some_and(|s| s.ends_with(" installed"));
                observe(
                    &mut r,
                    ObservationKind::Other,
                    "/var/lib/dpkg/status",
                    status
                        .clone()
                        .map(|s| format!("Package: {name} Status: {s}")),
                    match (installed, &status) {
                        (true, _) => format!("{name} is installed"),
                        (false, Some(_)) => format!("{name} is not installed"),
                        (false, None) => format!("{name} is not installed (not in the database)"),
                    },
                );
                r.value = if installed { FOUND } else { NOT_FOUND };
                return r;
            }
            Err(e) => {
                reason.set(format!("cannot read the dpkg database: {}", e.strerror()));
                r.value = INVALID;
                return r;
            }
        }
    }
    if ctx.resolve("/var/lib/rpm").is_ok() || ctx.resolve("/usr/lib/sysimage/rpm").is_ok() {
        let mut argv = vec!["rpm".to_string(), "-q".to_string()];
        if !ctx.root.is_host() {
            argv.push("--root".into());
            argv.push(ctx.root.path().display().to_string());
        }
        argv.push(name.to_string());
        let out = ctx.command(&argv);
        match out.as_ref() {
            crate::command::CommandOutcome::Exited { code, output } if *code != 127 => {
                let text = String::from_utf8_lossy(output).trim().to_string();
                r.value = if *code == 0 { FOUND } else { NOT_FOUND };
                observe(
                    &mut r,
                    ObservationKind::Command,
                    &argv.join(" "),
                    Some(text),
                    format!("exit status {code}"),
                );
            }
            _ => {
                reason.set("the RPM database exists but 'rpm' could not be run".to_string());
                r.value = INVALID;
            }
        }
        return r;
    }
    reason.set("no package database found (neither dpkg nor rpm)".to_string());
    r.value = INVALID;
    r
}

/// The `Status:` of a package in a dpkg status file.
fn dpkg_status(lines: &[crate::context::Line], name: &str) -> Option<String> {
    let mut current: Option<String> = None;
    for l in lines {
        let text = String::from_utf8_lossy(&l.text);
        if text.is_empty() {
            current = None;
        } else if let Some(p) = text.strip_prefix("Package: ") {
            current = Some(p.trim().to_string());
        } else if let Some(s) = text.strip_prefix("Status: ")
            && current.as_deref() == Some(name)
        {
            return Some(s.trim().to_string());
        }
    }
    None
}

/// Options of a mount point: live mounts (`/proc/mounts` under the root) when present, else the
/// configured ones (`/etc/fstab`).
pub fn mount(
    ctx: &ScanContext,
    point: &str,
    options: &[String],
    reason: &mut Reason,
) -> RuleResult {
    let mut r = RuleResult {
        value: NOT_FOUND,
        timed_out: false,
        observations: vec![],
    };
    let source = ["/proc/mounts", "/etc/fstab"].into_iter().find_map(|f| {
        ctx.resolve(f)
            .ok()
            .and_then(|h| ctx.lines(&h).ok())
            .map(|l| (f, l))
    });
    let Some((file, lines)) = source else {
        reason.set("neither /proc/mounts nor /etc/fstab is readable".to_string());
        r.value = INVALID;
        return r;
    };
    // The last entry for a mount point wins (it is the one on top).
    let entry = lines.iter().rev().find_map(|l| {
        let text = String::from_utf8_lossy(&l.text).to_string();
        if text.trim_start().starts_with('#') {
            return None;
        }
        let fields: Vec<&str> = text.split_whitespace().collect();
        (fields.len() >= 4 && fields[1] == point)
            .then(|| (l.number, fields[3].to_string(), text.clone()))
    });
    match entry {
        None => {
            observe(
                &mut r,
                ObservationKind::File,
                file,
                None,
                format!("{point} is not a separate mount"),
            );
            r.value = NOT_FOUND;
        }
        Some((line, opts, text)) => {
            let have: Vec<&str> = opts.split(',').collect();
            let missing: Vec<&String> = options
                .iter()
                .filter(|o| !have.contains(&o.as_str()))
                .collect();
            r.observations.push(Observation {
                kind: ObservationKind::File,
                target: file.to_string(),
                line: Some(line),
                text: Some(text),
                detail: Some(if missing.is_empty() {
                    format!("{point} is mounted with the required options")
                } else {
                    format!(
                        "{point} lacks {}",
                        missing
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }),
            });
            r.value = if missing.is_empty() { FOUND } else { NOT_FOUND };
        }
    }
    r
}
