//! Rampart policies: the IR every front-end compiles to, and the front-ends themselves.
//!
//! * [`ir`] — the typed model the engine evaluates.
//! * [`sca`] — the Wazuh SCA dialect (4.x and 5.x), with faithful OS_Regex/OS_Match.
//! * [`lint`] — findings about policies that load but are probably wrong.
//!
//! Loading never panics on bad input: every problem is a [`PolicyError`] naming the file, line,
//! column and check.

pub mod builtin;
pub mod error;
pub mod ir;
pub mod lint;
pub mod native;
pub mod sca;
pub mod waiver;

pub use error::{Diagnostic, Level, Location, PolicyError};
pub use ir::Policy;
pub use sca::ScaVersion;
pub use waiver::Waivers;

use sha2::{Digest, Sha256};
use std::path::Path;

/// Largest policy file Rampart reads (the biggest stock Wazuh policy is ~1.2 MB).
pub const MAX_POLICY_BYTES: u64 = 32 * 1024 * 1024;

/// Options for loading a policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// SCA schema override.
    pub sca_version: ScaVersion,
}

/// Reads and compiles a policy file of any supported format.
pub fn load_file(path: &Path, options: LoadOptions) -> Result<Policy, PolicyError> {
    let display = path.display().to_string();
    let read_err = |source| PolicyError::Read {
        path: display.clone(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if meta.is_dir() {
        return Err(read_err(std::io::Error::other("is a directory")));
    }
    if meta.len() > MAX_POLICY_BYTES {
        return Err(read_err(std::io::Error::other(format!(
            "file is {} bytes; policies are limited to {MAX_POLICY_BYTES}",
            meta.len()
        ))));
    }
    let bytes = std::fs::read(path).map_err(read_err)?;
    load_bytes(&bytes, &display, options)
}

/// Compiles a policy from bytes; `name` is used in diagnostics and reports.
pub fn load_bytes(bytes: &[u8], name: &str, options: LoadOptions) -> Result<Policy, PolicyError> {
    let sha = hex::encode(Sha256::digest(bytes));
    let source = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = line_col(bytes, e.valid_up_to());
        PolicyError::at(
            Location::new(name, line, column),
            None,
            "encoding",
            "policy is not valid UTF-8",
        )
    })?;
    if native::is_native(source) {
        native::load_native(source, name, &sha)
    } else {
        sca::load_sca(source, name, &sha, options.sca_version)
    }
}

/// 1-based line and column of a byte offset.
fn line_col(bytes: &[u8], offset: usize) -> (u64, u64) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() as u64 + 1;
    let col = before.iter().rev().take_while(|b| **b != b'\n').count() as u64 + 1;
    (line, col)
}

/// Turns a YAML error into a located policy error.
pub(crate) fn yaml_error(file: &str, e: &serde_saphyr::Error) -> PolicyError {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let message = e.to_string();
    // serde-saphyr renders a snippet after the first line; keep the message to its first line.
    let first = message.lines().next().unwrap_or("invalid YAML").to_string();
    PolicyError::at(Location::new(file, line, column), None, "yaml", first)
}
