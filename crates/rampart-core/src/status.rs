//! The verdict of one check.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Final status of a check.
///
/// `NotRun` exists because the Wazuh 5.x evaluator distinguishes a check that could not be
/// evaluated this time (a command timed out) from one that does not apply to the host; both are
/// excluded from the score.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The host meets the check.
    Pass,
    /// The host does not meet the check.
    Fail,
    /// The check does not apply (missing file, unmet requirement, probe unavailable).
    NotApplicable,
    /// The check could not be evaluated this time (5.x semantics for timeouts).
    NotRun,
    /// Rampart itself failed to evaluate the check (a bug or an unexpected I/O failure).
    Error,
    /// A valid waiver covers the check; it is excluded from the score.
    Waived,
}

impl Status {
    /// Every status, in report order.
    pub const ALL: [Status; 6] = [
        Status::Pass,
        Status::Fail,
        Status::NotApplicable,
        Status::NotRun,
        Status::Error,
        Status::Waived,
    ];

    /// Stable machine name, as used in JSON, CSV and JUnit.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::NotApplicable => "not_applicable",
            Status::NotRun => "not_run",
            Status::Error => "error",
            Status::Waived => "waived",
        }
    }

    /// The result string Wazuh 4.x puts in its check events (`passed`/`failed`, or empty with a
    /// `status: Not applicable`).
    pub fn wazuh_result(self) -> Option<&'static str> {
        match self {
            Status::Pass => Some("passed"),
            Status::Fail => Some("failed"),
            _ => None,
        }
    }
}

/// Error for a status word Rampart does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown status '{0}' (expected one of: pass, fail, not_applicable, not_run, error, waived)"
)]
pub struct UnknownStatus(pub String);

impl std::str::FromStr for Status {
    type Err = UnknownStatus;

    /// The inverse of [`Status::as_str`] (exact machine names only).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
