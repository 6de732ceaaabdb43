//! Exit codes, part of Rampart's command-line interface.

/// Every check passed or was waived (or the command succeeded).
pub const OK: u8 = 0;
/// At least one check failed, or the score is under `--fail-under`.
pub const FAILURES: u8 = 1;
/// Usage error, unreadable or invalid policy, waivers or input file.
pub const USAGE: u8 = 2;
/// The scan evaluated no check: every check was not applicable or not run (for example a
/// policy whose requirements the host or image does not meet). A gate must not pass on it.
pub const NOTHING_EVALUATED: u8 = 3;
