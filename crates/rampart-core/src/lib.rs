//! Rampart's shared domain types.
//!
//! Every front-end (native policies, Wazuh SCA, imported OpenSCAP results) and every consumer
//! (terminal and file reports, later the fleet server and attestations) speaks this one model, so
//! that a check result means the same thing wherever it is shown, stored or signed. This crate does
//! no I/O.

pub mod digest;
pub mod fleet;
pub mod framework;
pub mod names;
pub mod report;
pub mod severity;
pub mod status;
pub mod timestamp;

pub use framework::Framework;
pub use report::{
    CheckOutcome, Evidence, HostInfo, Observation, ObservationKind, PolicyInfo, PolicyReport,
    RequirementsOutcome, RuleVerdict, ScanReport, Summary, WaiverInfo,
};
pub use severity::Severity;
pub use status::Status;
