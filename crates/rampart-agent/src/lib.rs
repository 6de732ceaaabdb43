//! Rampart's agent runtime.
//!
//! `enroll` turns a one-time token into an identity: the key is generated here and never
//! leaves the host; the root CA is fetched and accepted only if its SHA-256 matches the one the
//! token carries. `run` is the daemon loop: heartbeat, renew the 24 h certificate at about two
//! thirds of its life (with jitter), fetch assigned policy versions by digest, scan on each
//! assignment's cron schedule or on demand, and post results — every result is written to the
//! spool *before* it is sent and removed only after the server acknowledged it, so a result is
//! delivered exactly once across crashes, restarts and outages (the server deduplicates by run
//! id).

mod client;
mod enrol;
mod error;
pub mod observe;
mod policies;
mod runner;
mod schedule;
mod spool;
mod state;
mod status;

pub use enrol::{EnrolOptions, enroll};
pub use error::AgentError;
pub use runner::{AgentOptions, renew_now, run, run_once};
pub use spool::Spool;
pub use state::{AgentIdentityFile, StateDir};
pub use status::AgentStatusReport;
