//! What is being scanned: host name, OS and kernel, read from the scan root.

use crate::context::ScanContext;
use rampart_core::HostInfo;

fn first_line(ctx: &ScanContext, path: &str) -> Option<String> {
    let host = ctx.resolve(path).ok()?;
    let lines = ctx.lines(&host).ok()?;
    lines
        .first()
        .map(|l| String::from_utf8_lossy(&l.text).trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Host facts from the root (`/etc/os-release`, `/etc/hostname`, `/proc/sys/kernel/*`).
pub fn host_info(ctx: &ScanContext) -> HostInfo {
    let os = ctx
        .resolve("/etc/os-release")
        .ok()
        .and_then(|h| ctx.lines(&h).ok())
        .and_then(|lines| {
            lines.iter().find_map(|l| {
                let t = String::from_utf8_lossy(&l.text);
                t.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "unknown".to_string());
    let live = ctx.root.is_host();
    let hostname = if live {
        first_line(ctx, "/proc/sys/kernel/hostname")
    } else {
        None
    }
    .or_else(|| first_line(ctx, "/etc/hostname"))
    .unwrap_or_else(|| "unknown".to_string());
    let kernel = if live {
        first_line(ctx, "/proc/sys/kernel/osrelease")
    } else {
        None
    }
    .unwrap_or_else(|| "unknown".to_string());
    HostInfo {
        hostname,
        os,
        kernel,
        root: (!live).then(|| ctx.root.path().display().to_string()),
    }
}
