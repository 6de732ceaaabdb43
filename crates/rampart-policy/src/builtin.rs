//! Policies written by the Rampart project and embedded in the binary.
//!
//! The Linux baseline is what `rampart scan` runs when no `--policy` is given. It is Rampart's
//! own work (no third-party benchmark text is shipped) and is mapped to CIS, NIST SP 800-53,
//! PCI DSS 4.0 and SOC 2 where a control applies.

use crate::{LoadOptions, Policy, PolicyError, load_bytes};

/// Source of the built-in Linux baseline.
pub const LINUX_BASELINE_SOURCE: &str = include_str!("../policies/linux-baseline.yml");

/// Name the built-in baseline is reported under.
pub const LINUX_BASELINE_NAME: &str = "builtin:linux-baseline.yml";

/// The built-in Linux baseline, compiled.
pub fn linux_baseline() -> Result<Policy, PolicyError> {
    load_bytes(
        LINUX_BASELINE_SOURCE.as_bytes(),
        LINUX_BASELINE_NAME,
        LoadOptions::default(),
    )
}
