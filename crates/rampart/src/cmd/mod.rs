//! Subcommand implementations.

mod attest;
mod audit;
mod bench;
mod bench_alerts;
mod bench_attest;
mod bench_audit;
mod bench_auth;
mod bench_dashboard;
mod bench_events;
mod bench_intel;
mod fleet;
mod intel;
mod login;
mod policy;
mod report;
mod scan;
mod server;
mod users;
mod waivers;

use crate::cli::{Cli, Command};
use std::path::Path;
use std::process::ExitCode;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Scan(args) => scan::run(args),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Report(args) => report::run(args),
        Command::Server(args) => server::run(*args),
        Command::Login(args) => login::run(args),
        Command::Users(cmd) => users::users(cmd),
        Command::Tokens(cmd) => users::tokens(cmd),
        Command::Ca(cmd) => server::ca(cmd),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Intel(cmd) => intel::run(cmd),
        Command::Token(cmd) => fleet::token(cmd),
        Command::Audit(cmd) => audit::run(cmd),
        Command::Attest(cmd) => attest::run(cmd),
        Command::Keys(cmd) => attest::keys(cmd),
        Command::Waivers(cmd) => waivers::run(cmd),
        Command::Agent(cmd) => fleet::agent(cmd),
        Command::Agents(cmd) => fleet::agents(cmd),
        Command::Results(cmd) => fleet::results(cmd),
        Command::Schema { of } => {
            let schema = match of {
                crate::cli::SchemaOf::Report => rampart_core::report::report_schema(),
                crate::cli::SchemaOf::Policy => rampart_policy::native::schema(),
                crate::cli::SchemaOf::Event => rampart_events::schema(),
            };
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(ExitCode::from(crate::exit::OK))
        }
    }
}

/// Writes a report to `path`, with the mode a new file gets from `open(2)` (0666 less the umask)
/// or the mode of the file it replaces. See [`write_atomic_mode`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_atomic_mode(path, bytes, None)
}

/// Writes `bytes` to `path`.
///
/// A regular file (or a new one) is replaced atomically: a temporary file in the same directory,
/// then a rename, so a failed or interrupted run never leaves a truncated file behind, and a
/// daemon reading the file never sees half of it. A symlink is followed, so the link survives
/// and its target is replaced. Anything else that exists — a device such as `/dev/null` or
/// `/dev/stdout`, a FIFO, a socket — is opened and written in place: renaming over it would
/// destroy it.
///
/// The file gets `mode` when given; otherwise the mode of the file it replaces, or for a new
/// file 0666 less the umask, as a shell redirection would (0644 under umask 022), so that a
/// daemon running as another user (Suricata, BIND) can read an export.
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: Option<u32>) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path)
            .with_context(|| format!("cannot resolve {}", path.display()))?,
        _ => path.to_path_buf(),
    };
    let existing = std::fs::metadata(&target).ok();
    match &existing {
        Some(m) if !m.is_file() => {
            if m.is_dir() {
                anyhow::bail!("--output {}: is a directory", path.display());
            }
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(&target)
                .with_context(|| format!("cannot open {}", path.display()))?;
            f.write_all(bytes)
                .and_then(|()| f.flush())
                .with_context(|| format!("cannot write {}", path.display()))?;
            return Ok(());
        }
        _ => {}
    }
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // Created 0666 less the umask (the kernel applies it), like any new file.
    let mut tmp = tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.flush())
        .with_context(|| format!("cannot write {}", path.display()))?;
    let chosen = match (mode, &existing) {
        (Some(mode), _) => Some(mode),
        (None, Some(m)) => Some(m.permissions().mode() & 0o7777),
        (None, None) => None,
    };
    if let Some(mode) = chosen {
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    }
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(&target)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
