//! Cron schedules (UTC) and when each assigned policy last ran.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::state::write_atomic;
use crate::{AgentError, StateDir};

/// The next time `expr` fires strictly after `after`, or `None` for an invalid expression or
/// one that never fires again.
pub(crate) fn next_after(expr: &str, after: OffsetDateTime) -> Option<OffsetDateTime> {
    let cron: croner::Cron = expr.parse().ok()?;
    let start = chrono::DateTime::<chrono::Utc>::from_timestamp(after.unix_timestamp(), 0)?;
    let next = cron.find_next_occurrence(&start, false).ok()?;
    OffsetDateTime::from_unix_timestamp(next.timestamp()).ok()
}

/// Per policy: the digest last scanned and when.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct ScheduleState {
    /// policy id → (digest, unix seconds of the last scan or of the first sighting).
    pub last: BTreeMap<String, (String, i64)>,
}

impl ScheduleState {
    pub fn load(state: &StateDir) -> ScheduleState {
        std::fs::read(state.schedule())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, state: &StateDir) -> Result<(), AgentError> {
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| AgentError::corrupt(&state.schedule(), e))?;
        write_atomic(&state.schedule(), &json, 0o644)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_occurrence_in_utc() {
        let t = OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap(); // 2026-09-21T14:13:20Z
        let n = next_after("0 */6 * * *", t).unwrap();
        assert_eq!(n.unix_timestamp(), 1_790_013_600); // 18:00:00Z
        assert_eq!(
            next_after("*/5 * * * *", t).unwrap().unix_timestamp(),
            1_790_000_100
        );
        assert!(next_after("not cron", t).is_none());
    }
}
