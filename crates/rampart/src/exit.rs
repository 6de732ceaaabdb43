//! Exit codes, part of Rampart's command-line interface.

/// Every check passed or was waived (or the command succeeded).
pub const OK: u8 = 0;
/// At least one check failed, or the score is under `--fail-under`.
pub const FAILURES: u8 = 1;
/// Usage error, unreadable or invalid policy, waivers or input file.
pub const USAGE: u8 = 2;
