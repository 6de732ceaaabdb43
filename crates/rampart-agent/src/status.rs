//! What the agent is doing, for `rampart agent status` and for people reading the state dir.

use serde::{Deserialize, Serialize};

use crate::state::write_atomic;
use crate::{AgentError, StateDir};

/// One assigned policy as the agent sees it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PolicyStatus {
    /// Policy id.
    pub policy_id: String,
    /// Version held.
    pub version: i64,
    /// Cron schedule.
    pub schedule: String,
    /// Last scan, RFC 3339.
    pub last_scan: Option<String>,
    /// Next scheduled scan, RFC 3339.
    pub next_scan: Option<String>,
}

/// The agent's own account of itself, rewritten at every loop.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AgentStatusReport {
    /// Agent id.
    pub agent_id: String,
    /// `idle`, `scanning`, `offline` (server unreachable, spooling), `certificate_expired`.
    pub state: String,
    /// Agent-port URL.
    pub server: String,
    /// Last acknowledged heartbeat, RFC 3339.
    pub last_heartbeat: Option<String>,
    /// Last error, if the last loop had one.
    pub last_error: Option<String>,
    /// Certificate expiry, RFC 3339.
    pub certificate_not_after: Option<String>,
    /// Planned renewal, RFC 3339.
    pub renew_at: Option<String>,
    /// Results waiting to be sent.
    pub spooled_runs: u64,
    /// Assigned policies.
    pub policies: Vec<PolicyStatus>,
    /// When this was written, RFC 3339.
    pub updated_at: String,
}

impl AgentStatusReport {
    /// Reads the status file.
    pub fn load(state: &StateDir) -> Result<AgentStatusReport, AgentError> {
        let path = state.status();
        let bytes = std::fs::read(&path).map_err(|e| AgentError::io(&path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| AgentError::corrupt(&path, e))
    }

    pub(crate) fn save(&self, state: &StateDir) -> Result<(), AgentError> {
        let json =
            serde_json::to_vec_pretty(self).map_err(|e| AgentError::corrupt(&state.status(), e))?;
        write_atomic(&state.status(), &json, 0o644)
    }
}
