//! Policies: the list with the upload form, one policy's versions and assignments, a
//! version's content, and the line diff between two versions.

use askama::Template;

use crate::admin::Notice;
use crate::pages::{Page, Shell};

/// One policy in the list.
#[derive(Debug, Clone)]
pub struct PolicyRow {
    /// Its id and human name.
    pub id: String,
    /// See `id`.
    pub name: String,
    /// Versions kept, and the newest.
    pub versions: i64,
    /// See `versions`.
    pub latest: i64,
    /// The newest version's check count, format and upload time (UTC).
    pub checks: i64,
    /// See `checks`.
    pub format: String,
    /// See `checks`.
    pub uploaded: String,
    /// Targets it is assigned to.
    pub assignments: usize,
}

/// `/ui/policies`.
#[derive(Debug, Template)]
#[template(path = "policies.html")]
pub struct PoliciesPage {
    /// The signed-in user.
    pub shell: Shell,
    /// Why an upload was refused.
    pub notice: Option<Notice>,
    /// Every policy, by id.
    pub policies: Vec<PolicyRow>,
    /// Whether the viewer may upload (the form is shown).
    pub may_upload: bool,
}

impl Page for PoliciesPage {
    const NAME: &'static str = "policies";
}

/// One version of a policy.
#[derive(Debug, Clone)]
pub struct VersionRow {
    /// 1, 2, 3…
    pub version: i64,
    /// Source format, file name, the digest's first characters, checks, upload time (UTC).
    pub format: String,
    /// See `format`.
    pub file_name: String,
    /// See `format`.
    pub digest: String,
    /// See `format`.
    pub checks: i64,
    /// See `format`.
    pub uploaded: String,
}

/// One assignment of the policy.
#[derive(Debug, Clone)]
pub struct AssignmentRow {
    /// `group` or `agent`, and the group's name or the agent's id.
    pub kind: String,
    /// See `kind`.
    pub name: String,
    /// As shown: `group web`, `agent web-01`.
    pub shown: String,
    /// The version and schedule, and since when (UTC).
    pub version: i64,
    /// See `version`.
    pub schedule: String,
    /// See `version`.
    pub since: String,
    /// Whether the viewer may remove it.
    pub removable: bool,
}

/// The assignment form's values.
#[derive(Debug, Clone)]
pub struct AssignForm {
    /// `group` or `agent`, and the name or id.
    pub kind: String,
    /// See `kind`.
    pub name: String,
    /// The version chosen (none: the newest).
    pub version: Option<i64>,
    /// Cron expression, UTC.
    pub schedule: String,
}

impl Default for AssignForm {
    fn default() -> AssignForm {
        AssignForm {
            kind: "group".to_owned(),
            name: String::new(),
            version: None,
            schedule: "0 */6 * * *".to_owned(),
        }
    }
}

/// `/ui/policies/{id}`.
#[derive(Debug, Template)]
#[template(path = "policy.html")]
pub struct PolicyPage {
    /// The signed-in user.
    pub shell: Shell,
    /// After an action.
    pub notice: Option<Notice>,
    /// The policy's id and name.
    pub id: String,
    /// See `id`.
    pub name: String,
    /// Its versions, newest first.
    pub versions: Vec<VersionRow>,
    /// Its assignments on targets the viewer sees.
    pub assignments: Vec<AssignmentRow>,
    /// The assignment form, for a role that manages policies.
    pub assign: Option<AssignForm>,
}

impl Page for PolicyPage {
    const NAME: &'static str = "policy";
}

/// `/ui/policies/{id}/versions/{version}`: the content as uploaded.
#[derive(Debug, Template)]
#[template(path = "policy_content.html")]
pub struct PolicyContentPage {
    /// The signed-in user.
    pub shell: Shell,
    /// The policy, version and file name.
    pub id: String,
    /// See `id`.
    pub version: i64,
    /// See `id`.
    pub file_name: String,
    /// Its lines (invalid UTF-8 replaced).
    pub lines: Vec<String>,
}

impl Page for PolicyContentPage {
    const NAME: &'static str = "policy content";
}

/// One line of a diff.
#[derive(Debug, Clone)]
pub struct DiffLine {
    /// `add`, `del`, `same`, or `gap` (unchanged lines left out).
    pub tag: &'static str,
    /// Its number in the older and the newer version.
    pub old: Option<usize>,
    /// See `old`.
    pub new: Option<usize>,
    /// The text.
    pub text: String,
}

impl DiffLine {
    /// The mark in front of the line.
    pub fn mark(&self) -> &'static str {
        match self.tag {
            "add" => "+",
            "del" => "−",
            _ => " ",
        }
    }
}

/// `/ui/policies/{id}/diff?from=&to=`.
#[derive(Debug, Template)]
#[template(path = "policy_diff.html")]
pub struct PolicyDiffPage {
    /// The signed-in user.
    pub shell: Shell,
    /// The policy and the two versions.
    pub id: String,
    /// See `id`.
    pub from: i64,
    /// See `id`.
    pub to: i64,
    /// Lines added and removed.
    pub added: usize,
    /// See `added`.
    pub removed: usize,
    /// The changes with three lines of context.
    pub lines: Vec<DiffLine>,
}

impl Page for PolicyDiffPage {
    const NAME: &'static str = "policy diff";
}
