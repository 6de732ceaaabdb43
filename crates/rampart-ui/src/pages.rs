//! The pages and what each shows. Fields are plain data the server fills in; the templates
//! under `templates/` lay them out.

use askama::Template;

use crate::svg::{Stack, Trend};

/// A page: a template with a name, for errors.
pub trait Page: Template {
    /// The page's name.
    const NAME: &'static str;
}

/// What every signed-in page carries: who is signed in, the session's CSRF token (every form
/// posts it back) and the sections this user's role may open. A section the role may not use is
/// not linked.
#[derive(Debug, Clone)]
pub struct Shell {
    /// The user's name.
    pub user: String,
    /// The user's role.
    pub role: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// The sections shown in the navigation, in order.
    pub nav: Vec<NavLink>,
}

/// A navigation link.
#[derive(Debug, Clone)]
pub struct NavLink {
    /// Where it goes.
    pub href: String,
    /// Its text.
    pub label: String,
    /// Whether it is the page being shown (`aria-current`).
    pub current: bool,
}

/// The sign-in page.
#[derive(Debug, Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    /// Why the last attempt failed, if one did.
    pub error: Option<String>,
    /// The user name to fill in again.
    pub user: String,
    /// Whether the user must choose a new password (a one-time password was used).
    pub new_password: bool,
    /// Whether an OpenID provider is configured (a second way in).
    pub oidc: bool,
}

impl Page for LoginPage {
    const NAME: &'static str = "login";
}

/// An error page for a signed-in user (403, 404) or anyone (400).
#[derive(Debug, Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// The navigation, when someone is signed in.
    pub shell: Option<Shell>,
    /// The HTTP status.
    pub status: u16,
    /// A short title.
    pub title: String,
    /// What happened.
    pub detail: String,
}

impl Page for ErrorPage {
    const NAME: &'static str = "error";
}

/// Agents by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentCounts {
    /// Heartbeating.
    pub online: u64,
    /// Missed heartbeats.
    pub offline: u64,
    /// Online, but no run stored for longer than the staleness limit.
    pub stale: u64,
    /// Revoked.
    pub revoked: u64,
}

impl AgentCounts {
    /// Every agent counted.
    pub fn total(&self) -> u64 {
        self.online + self.offline + self.revoked
    }
}

/// Passed over passed and failed, in percent, or `None` when nothing was judged.
fn score(passed: u64, failed: u64) -> Option<f64> {
    let judged = passed + failed;
    (judged > 0).then(|| passed as f64 / judged as f64 * 100.0)
}

/// [`score`] as a page shows it: one decimal, or a dash when nothing was judged.
fn score_text(passed: u64, failed: u64) -> String {
    score(passed, failed).map_or_else(|| "–".to_owned(), |s| format!("{s:.1} %"))
}

/// One policy across the (filtered) fleet, from the latest state of every check on every host.
#[derive(Debug, Clone)]
pub struct PolicyScore {
    /// The policy id.
    pub policy_id: String,
    /// Hosts that reported it.
    pub hosts: u64,
    /// Latest results that pass.
    pub passed: u64,
    /// Latest results that fail.
    pub failed: u64,
    /// The rest: not applicable, errors, not run, waived.
    pub other: u64,
    /// Score trend over the last days.
    pub trend: Trend,
}

impl PolicyScore {
    /// Passed over passed and failed, in percent (Wazuh's score), or `None` when nothing was
    /// judged.
    pub fn score(&self) -> Option<f64> {
        score(self.passed, self.failed)
    }

    /// The score as text.
    pub fn score_text(&self) -> String {
        score_text(self.passed, self.failed)
    }

    /// The stacked bar.
    pub fn stack(&self) -> Stack {
        Stack::of(self.passed, self.failed, self.other)
    }
}

/// A check and the hosts on which it fails now.
#[derive(Debug, Clone)]
pub struct FailingCheck {
    /// The policy.
    pub policy_id: String,
    /// The check.
    pub check_id: String,
    /// Hosts where its latest result is a failure.
    pub hosts: u64,
    /// The hour in which the most recent of them started failing (its start, UTC), where the
    /// list shows it (the newly failing checks).
    pub since: Option<String>,
}

/// A value the fleet can be filtered by, and whether it is the one chosen.
#[derive(Debug, Clone)]
pub struct Choice {
    /// The value.
    pub value: String,
    /// Whether the page shows it.
    pub selected: bool,
}

/// A filter's menu: its query parameter, its label, the text of its "no filter" entry and its
/// choices.
#[derive(Debug, Clone)]
pub struct Select {
    /// The query parameter (and the element's id).
    pub name: &'static str,
    /// The label.
    pub label: &'static str,
    /// The entry that removes the filter.
    pub any: &'static str,
    /// The values.
    pub choices: Vec<Choice>,
}

impl Select {
    /// A menu of `values` with `selected` marked.
    pub fn new(
        name: &'static str,
        label: &'static str,
        any: &'static str,
        values: impl IntoIterator<Item = String>,
        selected: Option<&str>,
    ) -> Select {
        Select {
            name,
            label,
            any,
            choices: values
                .into_iter()
                .map(|value| Choice {
                    selected: selected == Some(value.as_str()),
                    value,
                })
                .collect(),
        }
    }
}

/// The fleet overview.
#[derive(Debug, Template)]
#[template(path = "fleet.html")]
pub struct FleetPage {
    /// Navigation.
    pub shell: Shell,
    /// The filters: the groups the user may see, the operating systems reported.
    pub filters: Vec<Select>,
    /// Whether a filter is applied.
    pub filtered: bool,
    /// Agents by state.
    pub agents: AgentCounts,
    /// Per policy.
    pub policies: Vec<PolicyScore>,
    /// The checks failing on the most hosts.
    pub top_failing: Vec<FailingCheck>,
    /// Checks that started failing within the last day, by hosts.
    pub newly_failing: Vec<FailingCheck>,
    /// Per compliance framework the policies' checks map to.
    pub frameworks: Vec<FrameworkScore>,
    /// The time of the page, UTC.
    pub generated: String,
    /// The PDF report of what the page shows (the same filters).
    pub report_url: String,
}

/// One compliance framework across the (filtered) fleet: the latest results of every check
/// that maps to it, on every host.
#[derive(Debug, Clone)]
pub struct FrameworkScore {
    /// Its human title (`CIS Benchmarks`, `PCI DSS`, or the policy's own key).
    pub title: String,
    /// Checks mapped to it, over every policy.
    pub checks: usize,
    /// Latest results that pass, fail, and the rest.
    pub passed: u64,
    /// See `passed`.
    pub failed: u64,
    /// See `passed`.
    pub other: u64,
}

impl FrameworkScore {
    /// The score as text.
    pub fn score_text(&self) -> String {
        score_text(self.passed, self.failed)
    }

    /// The stacked bar.
    pub fn stack(&self) -> Stack {
        Stack::of(self.passed, self.failed, self.other)
    }
}

impl Page for FleetPage {
    const NAME: &'static str = "fleet";
}

/// An agent as the agent page heads it.
#[derive(Debug, Clone)]
pub struct AgentHeader {
    /// The agent id.
    pub id: String,
    /// The host name it enrolled with.
    pub hostname: String,
    /// Its group.
    pub group: String,
    /// Its operating system.
    pub os: String,
    /// `online`, `offline` or `revoked`.
    pub state: String,
    /// Its last heartbeat, UTC.
    pub last_seen: String,
    /// Its labels, `key=value`.
    pub labels: Vec<String>,
}

/// One policy's latest state on one agent.
#[derive(Debug, Clone)]
pub struct AgentPolicy {
    /// The policy.
    pub policy_id: String,
    /// Counts of the latest results.
    pub passed: u64,
    /// Failing.
    pub failed: u64,
    /// The rest.
    pub other: u64,
    /// Its newest run, UTC.
    pub last_run: String,
}

impl AgentPolicy {
    /// Passed over judged, as text.
    pub fn score_text(&self) -> String {
        score_text(self.passed, self.failed)
    }

    /// The stacked bar.
    pub fn stack(&self) -> Stack {
        Stack::of(self.passed, self.failed, self.other)
    }
}

/// A check whose latest result on the agent is not a pass.
#[derive(Debug, Clone)]
pub struct AgentCheck {
    /// The policy.
    pub policy_id: String,
    /// The check.
    pub check_id: String,
    /// Its status.
    pub status: String,
    /// Since when, UTC.
    pub since: String,
}

/// A stored run.
#[derive(Debug, Clone)]
pub struct RunRow {
    /// The run id.
    pub id: String,
    /// The policy.
    pub policy_id: String,
    /// When it started, UTC.
    pub started: String,
    /// Its score, as text.
    pub score: String,
    /// Passed checks.
    pub passed: u32,
    /// Failed checks.
    pub failed: u32,
}

/// A signed attestation of one of the agent's runs.
#[derive(Debug, Clone)]
pub struct AttestationRow {
    /// Its id (the JWS's `jti`).
    pub jti: String,
    /// The policy.
    pub policy_id: String,
    /// `compliant`, `noncompliant`, …, as signed.
    pub status: String,
    /// The signed score, as text.
    pub score: String,
    /// When it was issued, UTC.
    pub issued: String,
    /// When it expires, UTC.
    pub expires: String,
    /// `current`, `superseded` (a newer run of its policy has one), `expired`.
    pub state: String,
    /// Where its offline bundle is downloaded from.
    pub bundle_url: String,
}

/// A threat-intel match on the agent.
#[derive(Debug, Clone)]
pub struct HitRow {
    /// The indicator matched.
    pub indicator: String,
    /// Its kind.
    pub kind: String,
    /// What the agent reported (a connection, a listener, a hosts entry, …).
    pub observable: String,
    /// Where it was seen.
    pub context: String,
    /// The feeds listing the indicator.
    pub feeds: String,
    /// Last seen, UTC.
    pub last_seen: String,
    /// How many times.
    pub count: i64,
}

/// One agent.
#[derive(Debug, Template)]
#[template(path = "agent.html")]
pub struct AgentPage {
    /// Navigation.
    pub shell: Shell,
    /// The agent.
    pub agent: AgentHeader,
    /// Latest state per policy.
    pub policies: Vec<AgentPolicy>,
    /// Checks not passing now.
    pub failing: Vec<AgentCheck>,
    /// Newest runs first.
    pub runs: Vec<RunRow>,
    /// The newest attestations.
    pub attestations: Vec<AttestationRow>,
    /// Threat-intel matches, when the viewer may read intel (`None` otherwise: not shown).
    pub hits: Option<Vec<HitRow>>,
    /// After "scan now".
    pub notice: Option<crate::admin::Notice>,
    /// Whether the viewer may ask the agent to scan now (the button is shown).
    pub may_scan: bool,
}

impl Page for AgentPage {
    const NAME: &'static str = "agent";
}

/// An agent in the agent list.
#[derive(Debug, Clone)]
pub struct AgentRow {
    /// The agent id.
    pub id: String,
    /// Its host name.
    pub hostname: String,
    /// Its group.
    pub group: String,
    /// Its operating system.
    pub os: String,
    /// `online`, `offline` or `revoked`.
    pub state: String,
    /// Its last heartbeat, UTC.
    pub last_seen: String,
}

/// Every agent the user may see.
#[derive(Debug, Template)]
#[template(path = "agents.html")]
pub struct AgentsPage {
    /// Navigation.
    pub shell: Shell,
    /// The agents, by host name.
    pub agents: Vec<AgentRow>,
    /// The group filter, if any.
    pub group: Option<String>,
}

impl Page for AgentsPage {
    const NAME: &'static str = "agents";
}

/// One rule's evidence on one host.
#[derive(Debug, Clone)]
pub struct EvidenceLine {
    /// The rule as written in the policy.
    pub rule: String,
    /// What the rule found (`found`, `not_found`, …).
    pub verdict: String,
    /// What was looked at: file and line with the text, a command's output, …
    pub observations: Vec<String>,
}

/// One host's latest result of the check.
#[derive(Debug, Clone)]
pub struct HostResult {
    /// The agent id.
    pub agent_id: String,
    /// Its host name.
    pub hostname: String,
    /// Its group.
    pub group: String,
    /// Its operating system.
    pub os: String,
    /// The latest status.
    pub status: String,
    /// Since when, UTC.
    pub since: String,
    /// The run that reported it.
    pub run_id: String,
    /// Why it could not be judged, when it could not.
    pub reason: Option<String>,
    /// The evidence.
    pub evidence: Vec<EvidenceLine>,
}

/// Hosts per latest status of the check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    /// Passing.
    pub pass: u64,
    /// Failing.
    pub fail: u64,
    /// Not applicable.
    pub not_applicable: u64,
    /// Errors, not run, waived.
    pub other: u64,
}

/// One check across the fleet: which hosts pass, fail or are not applicable, since when, and
/// each host's evidence.
#[derive(Debug, Template)]
#[template(path = "check.html")]
pub struct CheckPage {
    /// Navigation.
    pub shell: Shell,
    /// The policy.
    pub policy_id: String,
    /// The check.
    pub check_id: String,
    /// Its title, from a stored result.
    pub title: String,
    /// How to fix it, from a stored result.
    pub remediation: String,
    /// Hosts per status (over the group filter, whatever the status filter).
    pub counts: StatusCounts,
    /// The filters: status (`pass`, `fail`, …) and group.
    pub filters: Vec<Select>,
    /// The hosts shown.
    pub hosts: Vec<HostResult>,
    /// Hosts matching the filters, over every page.
    pub matching: u64,
    /// The position of the first host shown among them (1-based; 0 when none is).
    pub first: u64,
    /// The query string of the previous page and of the next one, where there is one.
    pub previous: Option<String>,
    /// See `previous`.
    pub next: Option<String>,
    /// Whether the viewer may ask for a waiver (the page links the form, filled in).
    pub may_request_waiver: bool,
}

impl Page for CheckPage {
    const NAME: &'static str = "check";
}
