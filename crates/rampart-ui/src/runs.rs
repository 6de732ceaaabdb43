//! One run with every check result and its evidence, and what changed between two runs of
//! the same policy on one agent.

use askama::Template;

use crate::pages::{EvidenceLine, Page, Shell};

/// What a run page and a diff page say about a run.
#[derive(Debug, Clone)]
pub struct RunHeader {
    /// Its id.
    pub id: String,
    /// The agent's id and host name.
    pub agent_id: String,
    /// See `agent_id`.
    pub hostname: String,
    /// The policy and its version (when the server pushed it).
    pub policy_id: String,
    /// See `policy_id`.
    pub version: Option<i64>,
    /// What started it (`schedule`, `manual`, …).
    pub trigger: String,
    /// When it started and finished (UTC, to the minute).
    pub started: String,
    /// See `started`.
    pub finished: String,
    /// Passed, failed and other checks.
    pub passed: u32,
    /// See `passed`.
    pub failed: u32,
    /// See `passed`.
    pub other: u32,
    /// The score, as text.
    pub score: String,
}

/// One check result of a run.
#[derive(Debug, Clone)]
pub struct RunCheck {
    /// The check id.
    pub check_id: String,
    /// Its title.
    pub title: String,
    /// Its status.
    pub status: String,
    /// Why (not applicable, error), or the one-line explanation.
    pub reason: Option<String>,
    /// For a waived check: the waiver's id and who approved it.
    pub waiver: Option<String>,
    /// What the engine saw, rule by rule.
    pub evidence: Vec<EvidenceLine>,
}

/// An earlier or later run of the same policy on the same agent, to compare with.
#[derive(Debug, Clone)]
pub struct RunChoice {
    /// Its id.
    pub id: String,
    /// When it started.
    pub started: String,
}

/// `/ui/runs/{id}`: a run with every check and its evidence.
#[derive(Debug, Template)]
#[template(path = "run.html")]
pub struct RunPage {
    /// The signed-in user.
    pub shell: Shell,
    /// The run.
    pub run: RunHeader,
    /// Its checks, failing first, then in policy order.
    pub checks: Vec<RunCheck>,
    /// Other runs of the policy on the agent, newest first.
    pub others: Vec<RunChoice>,
}

impl Page for RunPage {
    const NAME: &'static str = "run";
}

/// One check that changed between two runs.
#[derive(Debug, Clone)]
pub struct DiffRow {
    /// The check id.
    pub check_id: String,
    /// Its title.
    pub title: String,
    /// Its status in the earlier run (`absent` when it was not in it).
    pub before: String,
    /// Its status in the later run (`absent` when it is not in it).
    pub after: String,
    /// What the engine saw in the earlier run.
    pub before_evidence: Vec<EvidenceLine>,
    /// What the engine saw in the later run.
    pub after_evidence: Vec<EvidenceLine>,
}

/// `/ui/diff?from=A&to=B`: what changed from run A to run B.
#[derive(Debug, Template)]
#[template(path = "diff.html")]
pub struct DiffPage {
    /// The signed-in user.
    pub shell: Shell,
    /// The earlier run.
    pub from: RunHeader,
    /// The later run.
    pub to: RunHeader,
    /// Not failing before, failing now.
    pub newly_failing: Vec<DiffRow>,
    /// Not passing before, passing now.
    pub newly_passing: Vec<DiffRow>,
    /// Other status changes, checks added or removed.
    pub other_changes: Vec<DiffRow>,
    /// The same status, different evidence.
    pub evidence_changed: Vec<DiffRow>,
}

impl Page for DiffPage {
    const NAME: &'static str = "diff";
}
