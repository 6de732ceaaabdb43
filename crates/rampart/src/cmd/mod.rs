//! Subcommand implementations.

mod bench;
mod bench_intel;
mod fleet;
mod intel;
mod policy;
mod scan;
mod server;

use crate::cli::{Cli, Command};
use std::path::Path;
use std::process::ExitCode;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Scan(args) => scan::run(args),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Report(args) => scan::rerender(args),
        Command::Server(args) => server::run(args),
        Command::Ca(cmd) => server::ca(cmd),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Intel(cmd) => intel::run(cmd),
        Command::Token(cmd) => fleet::token(cmd),
        Command::Agent(cmd) => fleet::agent(cmd),
        Command::Agents(cmd) => fleet::agents(cmd),
        Command::Results(cmd) => fleet::results(cmd),
        Command::Schema { of } => {
            let schema = match of {
                crate::cli::SchemaOf::Report => rampart_core::report::report_schema(),
                crate::cli::SchemaOf::Policy => rampart_policy::native::schema(),
            };
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(ExitCode::from(crate::exit::OK))
        }
    }
}

/// Writes a report to `path`.
///
/// A regular file (or a new one) is replaced atomically: a temporary file in the same directory,
/// then a rename, so a failed or interrupted run never leaves a truncated report behind. A symlink
/// is followed, so the link survives and its target is replaced. Anything else that exists — a
/// device such as `/dev/null` or `/dev/stdout`, a FIFO, a socket — is opened and written in place:
/// renaming over it would destroy it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write;
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path)
            .with_context(|| format!("cannot resolve {}", path.display()))?,
        _ => path.to_path_buf(),
    };
    match std::fs::metadata(&target) {
        Ok(m) if !m.is_file() => {
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
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.flush())
        .with_context(|| format!("cannot write {}", path.display()))?;
    // Keep the mode of the file being replaced (NamedTempFile creates 0600).
    if let Ok(m) = std::fs::metadata(&target) {
        let _ = std::fs::set_permissions(tmp.path(), m.permissions());
    } else {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644));
    }
    tmp.persist(&target)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
