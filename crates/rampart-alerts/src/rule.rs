//! What an operator can ask to be told about, and the checks on what they wrote.

use rampart_core::Severity;
use rampart_core::names::{NAME_PATTERN, check_name};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The longest quiet period: a week.
pub const MAX_QUIET_MINUTES: u32 = 7 * 24 * 60;
/// Destinations one rule may notify.
pub const MAX_NOTIFY: usize = 8;

/// An alert rule as stored and as the API takes it (its name is the URL's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    /// What it watches.
    pub condition: Condition,
    /// The severity its alerts carry while firing (resolved alerts are `info`). Default
    /// `high`.
    #[serde(default = "high")]
    pub severity: Severity,
    /// After a notification about a subject, further changes of that subject within this
    /// many minutes are not told one by one: the next notification counts them, and a
    /// subject's state that differs from the last one told is told when the period ends
    /// (0–10080, default 60).
    #[serde(default = "sixty")]
    #[schemars(range(max = 10080))]
    pub quiet_minutes: u32,
    /// The event destinations that receive its alerts (1–8 names). Chat and e-mail
    /// destinations take alerts only from rules that name them; SIEM destinations take every
    /// `alert` event their filter admits.
    #[schemars(length(min = 1, max = 8), inner(regex(pattern = NAME_PATTERN)))]
    pub notify: Vec<String>,
    /// Whether a subject that stops firing is told too (default true).
    #[serde(default = "yes")]
    pub notify_resolved: bool,
    /// Whether the rule is judged at all (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn high() -> Severity {
    Severity::High
}
fn sixty() -> u32 {
    60
}
fn yes() -> bool {
    true
}
fn day() -> u32 {
    24
}

/// What a rule watches. Groups and policies narrow it; absent, it covers the fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// The score of a group (or of the whole fleet) for a policy (or for each policy) is below
    /// `threshold` percent: passed over passed and failed latest results of its agents,
    /// revoked agents left out, as the dashboard shows it. Judged after every run of the
    /// scope; one subject per policy.
    ScoreBelow {
        /// Percent, 0–100.
        #[schemars(range(min = 0, max = 100))]
        threshold: f64,
        /// Only this group's agents (default: the fleet's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = NAME_PATTERN))]
        group: Option<String>,
        /// Only this policy (default: each policy).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 128))]
        policy: Option<String>,
    },
    /// A check newly fails on at least `hosts` agents: agents whose latest result of it fails
    /// and that started failing it within the last `within_hours`. Judged whenever a check
    /// starts or stops failing on an agent of the scope, and each minute while it fires;
    /// one subject per check.
    CheckFailing {
        /// Agents, at least 1.
        #[schemars(range(min = 1, max = 1000000))]
        hosts: u32,
        /// Hours (1–720, default 24; counted from the hour they started failing).
        #[serde(default = "day")]
        #[schemars(range(min = 1, max = 720))]
        within_hours: u32,
        /// Only this group's agents.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = NAME_PATTERN))]
        group: Option<String>,
        /// Only this policy's checks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 128))]
        policy: Option<String>,
        /// Only this check (with `policy`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 128))]
        check: Option<String>,
    },
    /// An agent (not revoked) has sent no heartbeat for `minutes`. One subject per agent;
    /// resolved when it is heard from again or revoked.
    AgentOffline {
        /// Minutes, 1–43200.
        #[schemars(range(min = 1, max = 43200))]
        minutes: u32,
        /// Only this group's agents.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = NAME_PATTERN))]
        group: Option<String>,
    },
    /// An agent reported an observable matching a threat-intel indicator scored at least
    /// `min_score`. Each hit is an occurrence (nothing to resolve); one subject per agent and
    /// indicator.
    IntelHit {
        /// 0–100.
        #[schemars(range(max = 100))]
        min_score: u8,
        /// Only this group's agents.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = NAME_PATTERN))]
        group: Option<String>,
    },
    /// An agent's attestation for a policy was issued not `compliant` (`noncompliant` or
    /// `partial`); resolved by a compliant one. One subject per agent and policy.
    AttestationNoncompliant {
        /// Only this group's agents.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = NAME_PATTERN))]
        group: Option<String>,
        /// Only this policy.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 128))]
        policy: Option<String>,
    },
}

impl Condition {
    /// The kind's name, as events carry it.
    pub fn kind(&self) -> &'static str {
        match self {
            Condition::ScoreBelow { .. } => "score_below",
            Condition::CheckFailing { .. } => "check_failing",
            Condition::AgentOffline { .. } => "agent_offline",
            Condition::IntelHit { .. } => "intel_hit",
            Condition::AttestationNoncompliant { .. } => "attestation_noncompliant",
        }
    }

    /// The group it is limited to.
    pub fn group(&self) -> Option<&str> {
        match self {
            Condition::ScoreBelow { group, .. }
            | Condition::CheckFailing { group, .. }
            | Condition::AgentOffline { group, .. }
            | Condition::IntelHit { group, .. }
            | Condition::AttestationNoncompliant { group, .. } => group.as_deref(),
        }
    }

    /// Whether its subjects are occurrences (told each time, never resolved) rather than
    /// states that start and stop holding.
    pub fn is_occurrence(&self) -> bool {
        matches!(self, Condition::IntelHit { .. })
    }

    /// The threshold a measured value is compared with.
    pub fn threshold(&self) -> Option<f64> {
        match self {
            Condition::ScoreBelow { threshold, .. } => Some(*threshold),
            Condition::CheckFailing { hosts, .. } => Some(f64::from(*hosts)),
            Condition::AgentOffline { minutes, .. } => Some(f64::from(*minutes)),
            Condition::IntelHit { min_score, .. } => Some(f64::from(*min_score)),
            Condition::AttestationNoncompliant { .. } => None,
        }
    }

    /// Whether a measured value (a score, a number of hosts, minutes of silence) makes the
    /// condition hold.
    pub fn holds(&self, value: f64) -> bool {
        match self {
            Condition::ScoreBelow { threshold, .. } => value < *threshold,
            Condition::CheckFailing { hosts, .. } => value >= f64::from(*hosts),
            Condition::AgentOffline { minutes, .. } => value >= f64::from(*minutes),
            Condition::IntelHit { min_score, .. } => value >= f64::from(*min_score),
            Condition::AttestationNoncompliant { .. } => value > 0.0,
        }
    }
}

/// Why a definition was refused: the field and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

fn text_field(field: &str, v: &Option<String>) -> Result<(), Invalid> {
    if let Some(v) = v
        && (v.is_empty() || v.len() > 128 || v.chars().any(char::is_control))
    {
        return Err(Invalid(format!(
            "{field}: 1 to 128 characters, no control characters"
        )));
    }
    Ok(())
}

fn group_field(field: &str, g: &Option<String>) -> Result<(), Invalid> {
    match g {
        Some(g) => check_name(field, g).map_err(Invalid),
        None => Ok(()),
    }
}

impl RuleDef {
    /// Checks what an operator wrote; the first problem, naming its field.
    pub fn check(&self) -> Result<(), Invalid> {
        match &self.condition {
            Condition::ScoreBelow {
                threshold,
                group,
                policy,
            } => {
                if !threshold.is_finite() || !(0.0..=100.0).contains(threshold) {
                    return Err(Invalid("condition.threshold: 0 to 100 (percent)".into()));
                }
                group_field("condition.group", group)?;
                text_field("condition.policy", policy)?;
            }
            Condition::CheckFailing {
                hosts,
                within_hours,
                group,
                policy,
                check,
            } => {
                if !(1..=1_000_000).contains(hosts) {
                    return Err(Invalid("condition.hosts: 1 to 1000000".into()));
                }
                if !(1..=720).contains(within_hours) {
                    return Err(Invalid("condition.within_hours: 1 to 720".into()));
                }
                group_field("condition.group", group)?;
                text_field("condition.policy", policy)?;
                text_field("condition.check", check)?;
                if check.is_some() && policy.is_none() {
                    return Err(Invalid(
                        "condition.check: name its policy too (condition.policy)".into(),
                    ));
                }
            }
            Condition::AgentOffline { minutes, group } => {
                if !(1..=43_200).contains(minutes) {
                    return Err(Invalid("condition.minutes: 1 to 43200 (30 days)".into()));
                }
                group_field("condition.group", group)?;
            }
            Condition::IntelHit { min_score, group } => {
                if *min_score > 100 {
                    return Err(Invalid("condition.min_score: 0 to 100".into()));
                }
                group_field("condition.group", group)?;
            }
            Condition::AttestationNoncompliant { group, policy } => {
                group_field("condition.group", group)?;
                text_field("condition.policy", policy)?;
            }
        }
        if self.quiet_minutes > MAX_QUIET_MINUTES {
            return Err(Invalid(format!(
                "quiet_minutes: 0 to {MAX_QUIET_MINUTES} (a week)"
            )));
        }
        if self.notify.is_empty() || self.notify.len() > MAX_NOTIFY {
            return Err(Invalid(format!(
                "notify: 1 to {MAX_NOTIFY} event destination names"
            )));
        }
        for (i, n) in self.notify.iter().enumerate() {
            check_name("notify", n).map_err(Invalid)?;
            if self.notify[..i].contains(n) {
                return Err(Invalid(format!("notify: {n:?} named twice")));
            }
        }
        Ok(())
    }

    /// The quiet period.
    pub fn quiet(&self) -> time::Duration {
        time::Duration::minutes(i64::from(self.quiet_minutes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(condition: Condition) -> RuleDef {
        RuleDef {
            condition,
            severity: Severity::High,
            quiet_minutes: 60,
            notify: vec!["ops-slack".into()],
            notify_resolved: true,
            enabled: true,
        }
    }

    #[test]
    fn defaults_fill_what_an_operator_leaves_out() {
        let r: RuleDef = serde_json::from_str(
            r#"{"condition":{"kind":"score_below","threshold":80,"group":"web"},"notify":["ops"]}"#,
        )
        .unwrap();
        assert_eq!(r.severity, Severity::High);
        assert_eq!(r.quiet_minutes, 60);
        assert!(r.notify_resolved && r.enabled);
        assert_eq!(r.condition.kind(), "score_below");
        assert_eq!(r.condition.group(), Some("web"));
        let c: Condition = serde_json::from_str(r#"{"kind":"check_failing","hosts":3}"#).unwrap();
        assert!(matches!(
            c,
            Condition::CheckFailing {
                within_hours: 24,
                ..
            }
        ));
        assert!(
            serde_json::from_str::<Condition>(r#"{"kind":"score_below","threshold":1,"x":1}"#)
                .is_err(),
            "unknown fields refused"
        );
    }

    #[test]
    fn thresholds_decide_as_documented() {
        let score = Condition::ScoreBelow {
            threshold: 80.0,
            group: None,
            policy: None,
        };
        assert!(score.holds(79.9) && !score.holds(80.0));
        let failing = Condition::CheckFailing {
            hosts: 3,
            within_hours: 24,
            group: None,
            policy: None,
            check: None,
        };
        assert!(failing.holds(3.0) && !failing.holds(2.0));
        let offline = Condition::AgentOffline {
            minutes: 10,
            group: None,
        };
        assert!(offline.holds(10.0) && !offline.holds(9.9));
        assert!(
            Condition::IntelHit {
                min_score: 70,
                group: None
            }
            .is_occurrence()
        );
    }

    #[test]
    fn bad_definitions_name_their_field() {
        let cases = [
            (
                rule(Condition::ScoreBelow {
                    threshold: 101.0,
                    group: None,
                    policy: None,
                }),
                "condition.threshold",
            ),
            (
                rule(Condition::ScoreBelow {
                    threshold: f64::NAN,
                    group: None,
                    policy: None,
                }),
                "condition.threshold",
            ),
            (
                rule(Condition::CheckFailing {
                    hosts: 0,
                    within_hours: 24,
                    group: None,
                    policy: None,
                    check: None,
                }),
                "condition.hosts",
            ),
            (
                rule(Condition::CheckFailing {
                    hosts: 2,
                    within_hours: 24,
                    group: None,
                    policy: None,
                    check: Some("1.1".into()),
                }),
                "condition.check",
            ),
            (
                rule(Condition::AgentOffline {
                    minutes: 0,
                    group: None,
                }),
                "condition.minutes",
            ),
            (
                rule(Condition::AgentOffline {
                    minutes: 5,
                    group: Some("no spaces".into()),
                }),
                "condition.group",
            ),
            (
                rule(Condition::IntelHit {
                    min_score: 101,
                    group: None,
                }),
                "condition.min_score",
            ),
        ];
        for (r, field) in cases {
            let e = r.check().unwrap_err().0;
            assert!(e.starts_with(field), "{field}: {e}");
        }
        let mut r = rule(Condition::IntelHit {
            min_score: 50,
            group: None,
        });
        r.notify.clear();
        assert!(r.check().unwrap_err().0.starts_with("notify"));
        r.notify = vec!["a".into(), "a".into()];
        assert!(r.check().unwrap_err().0.contains("named twice"));
        r.notify = vec!["a".into()];
        r.quiet_minutes = MAX_QUIET_MINUTES + 1;
        assert!(r.check().unwrap_err().0.starts_with("quiet_minutes"));
        r.quiet_minutes = 0;
        assert_eq!(r.check(), Ok(()));
    }
}
