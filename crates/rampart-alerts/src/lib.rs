//! Operator alert rules, pure (no store, no network, no clock).
//!
//! A rule ([`RuleDef`]) names a [`Condition`] — a score below a threshold, a check newly
//! failing on enough hosts, an agent offline too long, an IOC hit scored high enough, a
//! noncompliant attestation — and the destinations to notify. The server's evaluator reads
//! the event stream: [`trigger`] says what an event means for a rule (a subject to measure, or
//! an observation already made); [`judge`] decides, per rule and subject, whether to tell
//! (deduplication, quiet periods); [`notice`] writes the `alert` event that the event
//! destinations deliver — Slack, Discord, e-mail, SIEMs.

pub mod judge;
pub mod rule;

use rampart_core::{Severity, Status};
use rampart_events::{AgentRef, Alert, AlertState, Body, Event, SCHEMA};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use judge::{Observation, SubjectState, Told, active, due, idle, judge};
pub use rule::{Condition, Invalid, RuleDef};

/// What a subject is: the particulars its messages and its next measurement need.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct About {
    /// The agent, for subjects that are an agent's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentRef>,
    /// The group measured (none: the fleet; for an agent's subject, its group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The policy and check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// See `policy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// A check's title; an IOC hit's observable and indicator; an attestation's status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl About {
    /// The subject's key within its rule: what deduplication and quiet periods are kept per.
    pub fn subject(&self, condition: &Condition) -> String {
        let agent = self.agent.as_ref().map_or("", |a| a.id.as_str());
        let policy = self.policy.as_deref().unwrap_or("");
        match condition {
            Condition::ScoreBelow { .. } => {
                format!("{}/{policy}", self.group.as_deref().unwrap_or("*fleet*"))
            }
            Condition::CheckFailing { .. } => {
                format!("{policy}/{}", self.check.as_deref().unwrap_or(""))
            }
            Condition::AgentOffline { .. } => agent.to_owned(),
            Condition::IntelHit { .. } => {
                format!("{agent}/{}", self.check.as_deref().unwrap_or(""))
            }
            Condition::AttestationNoncompliant { .. } => format!("{agent}/{policy}"),
        }
    }
}

/// What an event means for a rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// The score of `about.group` (the fleet when none) for `about.policy` must be measured.
    Score(About),
    /// The hosts newly failing `about.policy`/`about.check` in the rule's scope must be
    /// counted.
    Failing(About),
    /// A run of `about.policy` was stored: every check of the policy newly failing in the
    /// rule's scope must be counted (an agent's first results are no `check.changed`, yet
    /// its failures count). `policy_version` names the checks' titles.
    FailingChecks {
        /// The scope and policy.
        about: About,
        /// The run's policy version, when it came from an assignment.
        policy_version: Option<i64>,
    },
    /// The event is itself the observation.
    Observed(About, Observation),
}

fn in_group(rule_group: Option<&str>, agent: Option<&AgentRef>) -> bool {
    rule_group.is_none_or(|g| agent.is_some_and(|a| a.group == g))
}

fn some_eq(want: Option<&String>, have: &str) -> bool {
    want.is_none_or(|w| w == have)
}

/// What `e` means for a rule with `condition`, if anything. Offline agents are not events a
/// rule reads (the evaluator measures silence itself, against each rule's own time).
pub fn trigger(condition: &Condition, e: &Event) -> Option<Trigger> {
    let agent = e.agent.as_ref();
    if !in_group(condition.group(), agent) {
        return None;
    }
    match (condition, &e.body) {
        (Condition::ScoreBelow { group, policy, .. }, Body::RunStored(r))
            if some_eq(policy.as_ref(), &r.policy) =>
        {
            Some(Trigger::Score(About {
                group: group.clone(),
                policy: Some(r.policy.clone()),
                ..About::default()
            }))
        }
        (Condition::CheckFailing { group, policy, .. }, Body::RunStored(r))
            if some_eq(policy.as_ref(), &r.policy) =>
        {
            Some(Trigger::FailingChecks {
                about: About {
                    group: group.clone(),
                    policy: Some(r.policy.clone()),
                    ..About::default()
                },
                policy_version: r.policy_version,
            })
        }
        (
            Condition::CheckFailing {
                group,
                policy,
                check,
                ..
            },
            Body::CheckChanged(c),
        ) if some_eq(policy.as_ref(), &c.policy)
            && some_eq(check.as_ref(), &c.check)
            && (c.to == Status::Fail || c.from == Some(Status::Fail)) =>
        {
            Some(Trigger::Failing(About {
                group: group.clone(),
                policy: Some(c.policy.clone()),
                check: Some(c.check.clone()),
                detail: Some(c.title.clone()),
                ..About::default()
            }))
        }
        (Condition::IntelHit { min_score, .. }, Body::IntelHit(h)) if h.score >= *min_score => {
            Some(Trigger::Observed(
                About {
                    agent: agent.cloned(),
                    group: agent.map(|a| a.group.clone()),
                    check: Some(format!("{}:{}", h.indicator_kind, h.indicator)),
                    detail: Some(format!(
                        "{} {} matches {} ({}{})",
                        h.observable_kind,
                        h.observable,
                        h.indicator,
                        h.threat_type.as_deref().unwrap_or("malicious"),
                        h.family
                            .as_deref()
                            .map(|f| format!(", {f}"))
                            .unwrap_or_default()
                    )),
                    ..About::default()
                },
                Observation::Occurrence {
                    value: Some(f64::from(h.score)),
                },
            ))
        }
        (Condition::AttestationNoncompliant { policy, .. }, Body::AttestationIssued(a))
            if a.outcome == "success" =>
        {
            let attested = a.detail.get("policy")?;
            let status = a.detail.get("status")?;
            if !some_eq(policy.as_ref(), attested) {
                return None;
            }
            Some(Trigger::Observed(
                About {
                    agent: agent.cloned(),
                    group: agent.map(|x| x.group.clone()),
                    policy: Some(attested.clone()),
                    detail: Some(status.clone()),
                    ..About::default()
                },
                Observation::Level {
                    holds: status != "compliant",
                    value: None,
                },
            ))
        }
        _ => None,
    }
}

/// Where the dashboard shows a subject.
pub fn link(condition: &Condition, about: &About, dashboard: &str) -> String {
    use rampart_events::chat::path_segment;
    let base = dashboard.trim_end_matches('/');
    match (condition, &about.agent) {
        (Condition::CheckFailing { .. }, _) => format!(
            "{base}/ui/checks/{}/{}",
            path_segment(about.policy.as_deref().unwrap_or("")),
            path_segment(about.check.as_deref().unwrap_or(""))
        ),
        (Condition::ScoreBelow { .. }, _) | (_, None) => match &about.group {
            Some(g) => format!("{base}/ui/?group={}", path_segment(g)),
            None => format!("{base}/ui/"),
        },
        (_, Some(a)) => format!("{base}/ui/agents/{}", path_segment(&a.id)),
    }
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn hosts(n: f64) -> String {
    if n == 1.0 {
        "1 host".into()
    } else {
        format!("{} hosts", number(n))
    }
}

/// The one line a notification leads with.
fn summary(rule: &RuleDef, about: &About, state: &SubjectState, firing: bool) -> String {
    let who = about
        .agent
        .as_ref()
        .map(|a| {
            if a.hostname.is_empty() {
                a.id.clone()
            } else {
                a.hostname.clone()
            }
        })
        .unwrap_or_default();
    let policy = about.policy.as_deref().unwrap_or("");
    let value = state.value.unwrap_or(0.0);
    match &rule.condition {
        Condition::ScoreBelow { threshold, .. } => {
            let scope = about
                .group
                .as_deref()
                .map_or_else(|| "the fleet".to_owned(), |g| format!("group {g}"));
            if firing {
                format!(
                    "{policy} score of {scope} is {value:.1} %, below {} %",
                    number(*threshold)
                )
            } else {
                format!(
                    "{policy} score of {scope} is back to {value:.1} % (threshold {} %)",
                    number(*threshold)
                )
            }
        }
        Condition::CheckFailing { within_hours, .. } => {
            let check = format!(
                "{policy} {} \"{}\"",
                about.check.as_deref().unwrap_or(""),
                about.detail.as_deref().unwrap_or("")
            );
            let scope = about
                .group
                .as_deref()
                .map(|g| format!(" in group {g}"))
                .unwrap_or_default();
            let verb = if firing {
                "newly failing on"
            } else {
                "now newly failing on only"
            };
            format!(
                "{check} {verb} {}{scope} (within {within_hours} h)",
                hosts(value)
            )
        }
        Condition::AgentOffline { minutes, .. } => {
            let group = about.group.as_deref().unwrap_or("");
            if firing {
                format!(
                    "{who} (group {group}) offline: no heartbeat for {} min (threshold {minutes} min)",
                    number(value.floor())
                )
            } else {
                format!("{who} (group {group}) is back (or revoked)")
            }
        }
        Condition::IntelHit { .. } => format!(
            "{who}: {} (score {})",
            about.detail.as_deref().unwrap_or(""),
            number(value)
        ),
        Condition::AttestationNoncompliant { .. } => {
            let status = about.detail.as_deref().unwrap_or("");
            if firing {
                format!("{who}: attestation for {policy} is {status}")
            } else {
                format!("{who}: attestation for {policy} is compliant again")
            }
        }
    }
}

/// The `alert` event telling a subject's state: `id` unique, `now` when it is told.
#[allow(clippy::too_many_arguments)]
pub fn notice(
    id: String,
    now: OffsetDateTime,
    rule_name: &str,
    rule: &RuleDef,
    subject: &str,
    state: &SubjectState,
    told: Told,
    dashboard: &str,
) -> Event {
    let about = &state.about;
    let severity = if told.firing {
        rule.severity
    } else {
        Severity::Info
    };
    let mut line = format!("{rule_name}: {}", summary(rule, about, state, told.firing));
    if told.suppressed > 0 {
        let what = if rule.condition.is_occurrence() {
            "more hits"
        } else {
            "changes"
        };
        line.push_str(&format!(
            " ({} {what} during the quiet period)",
            told.suppressed
        ));
    }
    Event {
        schema: SCHEMA.to_owned(),
        id,
        seq: 0,
        time: now,
        severity,
        summary: line,
        agent: about.agent.clone(),
        body: Body::Alert(Alert {
            rule: rule_name.to_owned(),
            condition: rule.condition.kind().to_owned(),
            state: if told.firing {
                AlertState::Firing
            } else {
                AlertState::Resolved
            },
            subject: subject.to_owned(),
            group: about.group.clone(),
            policy: about.policy.clone(),
            check: about.check.clone(),
            value: state.value,
            threshold: rule.condition.threshold(),
            since: state.since,
            suppressed: told.suppressed,
            link: link(&rule.condition, about, dashboard),
            notify: rule.notify.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_events::{CheckChanged, FromAudit, IntelHit, RunStored};

    fn web01() -> AgentRef {
        AgentRef {
            id: "a-1".into(),
            hostname: "web-01".into(),
            group: "web".into(),
        }
    }

    fn t() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap()
    }

    fn ev(body: Body) -> Event {
        Event {
            schema: SCHEMA.into(),
            id: "e".into(),
            seq: 1,
            time: t(),
            severity: Severity::Info,
            summary: String::new(),
            agent: Some(web01()),
            body,
        }
    }

    fn rule(condition: Condition) -> RuleDef {
        RuleDef {
            condition,
            severity: Severity::Critical,
            quiet_minutes: 0,
            notify: vec!["ops".into()],
            notify_resolved: true,
            enabled: true,
        }
    }

    fn run(policy: &str) -> Body {
        Body::RunStored(RunStored {
            run: "r".into(),
            policy: policy.into(),
            policy_version: None,
            trigger: "schedule".into(),
            score: 50.0,
            passed: 1,
            failed: 1,
            not_applicable: 0,
            waived: 0,
            other: 0,
            started_at: t(),
            finished_at: t(),
        })
    }

    fn change(from: Option<Status>, to: Status) -> Body {
        Body::CheckChanged(CheckChanged {
            run: "r".into(),
            policy: "cis".into(),
            check: "1.1".into(),
            title: "Root login".into(),
            check_severity: Severity::High,
            from,
            to,
        })
    }

    #[test]
    fn runs_of_the_scope_ask_for_a_score() {
        let c = Condition::ScoreBelow {
            threshold: 80.0,
            group: Some("web".into()),
            policy: Some("cis".into()),
        };
        let Some(Trigger::Score(about)) = trigger(&c, &ev(run("cis"))) else {
            panic!("a run of the group's policy is judged")
        };
        assert_eq!(
            (about.group.as_deref(), about.policy.as_deref()),
            (Some("web"), Some("cis"))
        );
        assert_eq!(about.subject(&c), "web/cis");
        assert_eq!(trigger(&c, &ev(run("other"))), None, "another policy");
        let mut db = ev(run("cis"));
        db.agent.as_mut().unwrap().group = "db".into();
        assert_eq!(trigger(&c, &db), None, "another group");
        let fleet = Condition::ScoreBelow {
            threshold: 80.0,
            group: None,
            policy: None,
        };
        let Some(Trigger::Score(about)) = trigger(&fleet, &db) else {
            panic!()
        };
        assert_eq!(
            about.group, None,
            "the fleet's score, not the agent's group's"
        );
        assert_eq!(about.subject(&fleet), "*fleet*/cis");
    }

    #[test]
    fn checks_starting_or_stopping_to_fail_ask_for_a_count() {
        let c = Condition::CheckFailing {
            hosts: 3,
            within_hours: 24,
            group: None,
            policy: Some("cis".into()),
            check: None,
        };
        for (from, to, judged) in [
            (Some(Status::Pass), Status::Fail, true),
            (None, Status::Fail, true),
            (Some(Status::Fail), Status::Pass, true),
            (Some(Status::Pass), Status::NotApplicable, false),
            (None, Status::Pass, false),
        ] {
            let got = trigger(&c, &ev(change(from, to)));
            assert_eq!(
                matches!(got, Some(Trigger::Failing(_))),
                judged,
                "{from:?} → {to:?}"
            );
        }
        assert_eq!(
            trigger(&c, &ev(run("cis"))),
            Some(Trigger::FailingChecks {
                about: About {
                    policy: Some("cis".into()),
                    ..About::default()
                },
                policy_version: None,
            }),
            "a run of the policy: its newly failing checks are counted"
        );
        assert_eq!(trigger(&c, &ev(run("other"))), None);
        let Some(Trigger::Failing(about)) = trigger(&c, &ev(change(None, Status::Fail))) else {
            panic!()
        };
        assert_eq!(about.subject(&c), "cis/1.1");
        assert_eq!(
            link(&c, &about, "https://r.example/"),
            "https://r.example/ui/checks/cis/1.1"
        );
    }

    fn hit(score: u8) -> Body {
        Body::IntelHit(IntelHit {
            observable_kind: "connection".into(),
            observable: "203.0.113.9:443".into(),
            context: String::new(),
            indicator_kind: "ip".into(),
            indicator: "203.0.113.9".into(),
            how: "exact".into(),
            score,
            threat_type: Some("botnet_cc".into()),
            family: Some("Emotet".into()),
            run: "r".into(),
        })
    }

    #[test]
    fn hits_at_or_above_the_score_are_occurrences_per_agent_and_indicator() {
        let c = Condition::IntelHit {
            min_score: 70,
            group: None,
        };
        assert_eq!(trigger(&c, &ev(hit(69))), None);
        let Some(Trigger::Observed(about, obs)) = trigger(&c, &ev(hit(70))) else {
            panic!()
        };
        assert_eq!(obs, Observation::Occurrence { value: Some(70.0) });
        assert_eq!(about.subject(&c), "a-1/ip:203.0.113.9");
        let r = rule(c);
        let (state, told) = judge(&r, None, obs, about, t());
        let e = notice(
            "n1".into(),
            t(),
            "c2",
            &r,
            "a-1/ip:203.0.113.9",
            &state,
            told.unwrap(),
            "https://r.example",
        );
        assert_eq!(e.severity, Severity::Critical);
        assert_eq!(
            e.summary,
            "c2: web-01: connection 203.0.113.9:443 matches 203.0.113.9 (botnet_cc, Emotet) (score 70)"
        );
        let Body::Alert(a) = &e.body else { panic!() };
        assert_eq!(a.link, "https://r.example/ui/agents/a-1");
        assert_eq!((a.value, a.threshold), (Some(70.0), Some(70.0)));
        assert_eq!(a.notify, vec!["ops".to_owned()]);
        assert_eq!(e.group(), Some("web"));
    }

    fn attested(status: &str, policy: &str) -> Body {
        Body::AttestationIssued(FromAudit {
            audit_index: 3,
            actor: "server".into(),
            via: None,
            source: None,
            action: "attestation.issue".into(),
            target: "agent:a-1".into(),
            outcome: "success".into(),
            detail: [("policy", policy), ("status", status)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        })
    }

    #[test]
    fn attestations_fire_unless_compliant_and_resolve_when_compliant() {
        let c = Condition::AttestationNoncompliant {
            group: Some("web".into()),
            policy: None,
        };
        let r = rule(c.clone());
        let mut state = None;
        let mut told = Vec::new();
        for status in ["compliant", "noncompliant", "partial", "compliant"] {
            let Some(Trigger::Observed(about, obs)) = trigger(&c, &ev(attested(status, "cis")))
            else {
                panic!()
            };
            let subject = about.subject(&c);
            let (s, news) = judge(&r, state, obs, about, t());
            if let Some(x) = news {
                let e = notice("n".into(), t(), "att", &r, &subject, &s, x, "https://r");
                told.push((e.severity, e.summary));
            }
            state = Some(s);
        }
        assert_eq!(
            told,
            vec![
                (
                    Severity::Critical,
                    "att: web-01: attestation for cis is noncompliant".to_owned()
                ),
                (
                    Severity::Info,
                    "att: web-01: attestation for cis is compliant again".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn notices_say_what_was_measured_against_what() {
        let c = Condition::ScoreBelow {
            threshold: 80.0,
            group: Some("web".into()),
            policy: None,
        };
        let r = rule(c.clone());
        let about = About {
            group: Some("web".into()),
            policy: Some("cis".into()),
            ..About::default()
        };
        let (s, told) = judge(
            &r,
            None,
            Observation::Level {
                holds: true,
                value: Some(72.44),
            },
            about.clone(),
            t(),
        );
        let e = notice(
            "n".into(),
            t(),
            "web-score",
            &r,
            "web/cis",
            &s,
            told.unwrap(),
            "https://r",
        );
        assert_eq!(
            e.summary,
            "web-score: cis score of group web is 72.4 %, below 80 %"
        );
        let Body::Alert(a) = &e.body else { panic!() };
        assert_eq!(a.link, "https://r/ui/?group=web");
        assert_eq!(a.state, AlertState::Firing);
        assert!(e.agent.is_none());
        let (s, told) = judge(
            &r,
            Some(s),
            Observation::Level {
                holds: false,
                value: Some(85.0),
            },
            about,
            t(),
        );
        let told = told.unwrap();
        let e = notice(
            "n2".into(),
            t(),
            "web-score",
            &r,
            "web/cis",
            &s,
            told,
            "https://r",
        );
        assert_eq!(
            e.summary,
            "web-score: cis score of group web is back to 85.0 % (threshold 80 %)"
        );
        assert_eq!(e.severity, Severity::Info);
        let offline = rule(Condition::AgentOffline {
            minutes: 10,
            group: None,
        });
        let who = About {
            agent: Some(web01()),
            group: Some("web".into()),
            ..About::default()
        };
        let (s, told) = judge(
            &offline,
            None,
            Observation::Level {
                holds: true,
                value: Some(12.7),
            },
            who,
            t(),
        );
        let e = notice(
            "n3".into(),
            t(),
            "gone",
            &offline,
            "a-1",
            &s,
            told.unwrap(),
            "https://r",
        );
        assert_eq!(
            e.summary,
            "gone: web-01 (group web) offline: no heartbeat for 12 min (threshold 10 min)"
        );
    }
}
