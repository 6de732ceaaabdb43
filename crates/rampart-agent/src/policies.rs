//! Assigned policies held on disk, fetched only when their digest changes.

use std::fs;
use std::path::PathBuf;

use rampart_core::fleet::AssignedPolicy;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::client::{check, unreachable};
use crate::state::write_atomic;
use crate::{AgentError, StateDir};

/// A policy version held locally.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct HeldPolicy {
    pub policy_id: String,
    pub version: i64,
    pub digest: String,
    pub schedule: String,
}

fn base(state: &StateDir, policy_id: &str) -> PathBuf {
    // Policy ids are the policy authors' choice: hex keeps any of them a safe file name.
    state.policies().join(hex::encode(policy_id.as_bytes()))
}

pub(crate) fn content_path(state: &StateDir, policy_id: &str) -> PathBuf {
    base(state, policy_id).with_extension("yml")
}

fn meta_path(state: &StateDir, policy_id: &str) -> PathBuf {
    base(state, policy_id).with_extension("json")
}

/// Every policy held.
pub(crate) fn held(state: &StateDir) -> Vec<HeldPolicy> {
    let Ok(rd) = fs::read_dir(state.policies()) else {
        return Vec::new();
    };
    let mut out: Vec<HeldPolicy> = rd
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice(&b).ok())
        .collect();
    out.sort_by(|a, b| a.policy_id.cmp(&b.policy_id));
    out
}

/// Makes the local set match the assignments: downloads versions whose digest differs (and
/// checks the download against it), updates schedules, removes what is no longer assigned.
/// Returns the ids whose content changed.
pub(crate) async fn sync(
    state: &StateDir,
    client: &reqwest::Client,
    agent_url: &str,
    assignments: &[AssignedPolicy],
) -> Result<Vec<String>, AgentError> {
    let current = held(state);
    let mut changed = Vec::new();
    for a in assignments {
        let have = current.iter().find(|h| h.policy_id == a.policy_id);
        let content_ok = content_path(state, &a.policy_id).exists();
        if have.is_none_or(|h| h.digest != a.digest) || !content_ok {
            let url = format!(
                "{agent_url}/agent/v1/policies/{}/versions/{}",
                a.policy_id, a.version
            );
            let resp = client
                .get(&url)
                .send()
                .await
                .map_err(|e| unreachable(&url, &e))?;
            let bytes = check(resp, "policy download")
                .await?
                .bytes()
                .await
                .map_err(|e| unreachable(&url, &e))?;
            let digest = hex::encode(Sha256::digest(&bytes));
            if digest != a.digest {
                return Err(AgentError::Refused {
                    what: "policy download".into(),
                    status: 200,
                    code: "digest_mismatch".into(),
                    detail: format!(
                        "policy {} version {}: content has SHA-256 {digest}, assignment says {}",
                        a.policy_id, a.version, a.digest
                    ),
                });
            }
            write_atomic(&content_path(state, &a.policy_id), &bytes, 0o644)?;
            changed.push(a.policy_id.clone());
            tracing::info!(policy = %a.policy_id, version = a.version, "fetched policy version");
        }
        if have.is_none_or(|h| {
            h.digest != a.digest || h.schedule != a.schedule || h.version != a.version
        }) {
            let meta = HeldPolicy {
                policy_id: a.policy_id.clone(),
                version: a.version,
                digest: a.digest.clone(),
                schedule: a.schedule.clone(),
            };
            let json = serde_json::to_vec_pretty(&meta)
                .map_err(|e| AgentError::corrupt(&meta_path(state, &a.policy_id), e))?;
            write_atomic(&meta_path(state, &a.policy_id), &json, 0o644)?;
        }
    }
    for h in current {
        if !assignments.iter().any(|a| a.policy_id == h.policy_id) {
            let _ = fs::remove_file(content_path(state, &h.policy_id));
            let _ = fs::remove_file(meta_path(state, &h.policy_id));
            tracing::info!(policy = %h.policy_id, "policy unassigned; removed");
        }
    }
    Ok(changed)
}
