//! Events built from what the server knows when something happens: the facts are the
//! caller's, the severity and the one-line summary are decided here, once, for every
//! destination.

use rampart_audit::{Entry, Outcome};
use rampart_core::{Severity, Status};
use time::OffsetDateTime;

use crate::event::{
    AgentOffline, AgentRef, Body, CheckChanged, Event, FromAudit, IntelHit, RunStored, SCHEMA,
};

fn event(
    id: String,
    time: OffsetDateTime,
    severity: Severity,
    summary: String,
    agent: Option<AgentRef>,
    body: Body,
) -> Event {
    Event {
        schema: SCHEMA.to_owned(),
        id,
        seq: 0,
        time,
        severity,
        summary,
        agent,
        body,
    }
}

fn who(agent: &AgentRef) -> &str {
    if agent.hostname.is_empty() {
        &agent.id
    } else {
        &agent.hostname
    }
}

/// `run.stored`: informational; what a run changed is told by its `check.changed` events.
pub fn run_stored(id: String, time: OffsetDateTime, agent: AgentRef, run: RunStored) -> Event {
    let summary = format!(
        "{}: {} scored {:.1} % ({} failed)",
        who(&agent),
        run.policy,
        run.score,
        run.failed
    );
    event(
        id,
        time,
        Severity::Info,
        summary,
        Some(agent),
        Body::RunStored(run),
    )
}

/// `check.changed`: a check that starts failing carries its own severity (unknown counts as
/// medium); any other change is informational.
pub fn check_changed(
    id: String,
    time: OffsetDateTime,
    agent: AgentRef,
    change: CheckChanged,
) -> Event {
    let severity = if change.to == Status::Fail {
        match change.check_severity {
            Severity::Unknown => Severity::Medium,
            s => s,
        }
    } else {
        Severity::Info
    };
    let was = change.from.map_or_else(
        || "first report".to_owned(),
        |s| format!("was {}", s.as_str()),
    );
    let summary = format!(
        "{}: {} {} \"{}\" now {} ({was})",
        who(&agent),
        change.policy,
        change.check,
        change.title,
        change.to.as_str()
    );
    event(
        id,
        time,
        severity,
        summary,
        Some(agent),
        Body::CheckChanged(change),
    )
}

/// `agent.offline`.
pub fn agent_offline(
    id: String,
    time: OffsetDateTime,
    agent: AgentRef,
    last_seen: OffsetDateTime,
) -> Event {
    let summary = format!(
        "{} (group {}) offline: no heartbeat since {}",
        who(&agent),
        agent.group,
        crate::event::millis::format(last_seen)
    );
    event(
        id,
        time,
        Severity::Medium,
        summary,
        Some(agent),
        Body::AgentOffline(AgentOffline { last_seen }),
    )
}

/// `intel.hit`: the indicator's score decides: 80 and more critical, 60 high, 40 medium, else
/// low.
pub fn intel_hit(id: String, time: OffsetDateTime, agent: AgentRef, hit: IntelHit) -> Event {
    let severity = match hit.score {
        80.. => Severity::Critical,
        60..=79 => Severity::High,
        40..=59 => Severity::Medium,
        _ => Severity::Low,
    };
    let what = hit
        .threat_type
        .as_deref()
        .or(hit.family.as_deref())
        .unwrap_or("malicious");
    let summary = format!(
        "{}: {} {} matches {} indicator {} (score {})",
        who(&agent),
        hit.observable_kind,
        hit.observable,
        what,
        hit.indicator,
        hit.score
    );
    event(
        id,
        time,
        severity,
        summary,
        Some(agent),
        Body::IntelHit(hit),
    )
}

/// The event of an audit-log entry: typed for the entries a SOC follows (enrolments,
/// revocations, waivers, attestations), `audit` for the rest. `agent` is the agent the entry's
/// target names, as the store knows it.
pub fn from_audit(id: String, entry: &Entry, agent: Option<AgentRef>) -> Event {
    let e = &entry.event;
    let facts = FromAudit {
        audit_index: entry.index,
        actor: e.actor.clone(),
        via: e.via.clone(),
        source: e.source.clone(),
        action: e.action.clone(),
        target: e.target.clone(),
        outcome: e.outcome.as_str().to_owned(),
        detail: e.detail.clone(),
    };
    let detail = |k: &str| e.detail.get(k).map_or("", String::as_str);
    let agent_name = agent
        .as_ref()
        .map_or_else(|| e.target.clone(), |a| who(a).to_owned());
    let failed = e.outcome != Outcome::Success;
    let (severity, summary, body) = match e.action.as_str() {
        "agent.enrol" if failed => (
            Severity::Medium,
            format!("enrolment of {agent_name} refused: {}", detail("reason")),
            Body::AgentEnrolled(facts),
        ),
        "agent.enrol" => (
            Severity::Info,
            format!("{agent_name} enrolled in group {}", detail("group")),
            Body::AgentEnrolled(facts),
        ),
        "agent.revoke" => (
            Severity::Medium,
            format!("{agent_name} revoked by {}: {}", e.actor, detail("reason")),
            Body::AgentRevoked(facts),
        ),
        a if a.starts_with("waiver.") => {
            let verb = match a {
                "waiver.request" => "requested",
                "waiver.approve" => "approved",
                "waiver.deny" => "denied",
                "waiver.expire" => "expired",
                other => other,
            };
            let severity = if a == "waiver.approve" {
                Severity::Low
            } else {
                Severity::Info
            };
            (
                severity,
                format!(
                    "{} {verb} by {}: {} for {} until {}",
                    e.target,
                    e.actor,
                    detail("check"),
                    detail("scope"),
                    detail("until")
                ),
                Body::WaiverChanged(facts),
            )
        }
        "attestation.issue" => {
            let status = detail("status");
            let severity = if status == "compliant" {
                Severity::Info
            } else {
                Severity::Medium
            };
            (
                severity,
                format!(
                    "attestation of {agent_name} for {}: {status}",
                    detail("policy")
                ),
                Body::AttestationIssued(facts),
            )
        }
        _ => {
            // Refusals and failures (a wrong password, a denied request) are what a SOC
            // correlates; successful administration is a record.
            let severity = if failed {
                Severity::Medium
            } else {
                Severity::Info
            };
            (
                severity,
                format!(
                    "{} {} {}: {}",
                    e.actor,
                    e.action,
                    e.target,
                    e.outcome.as_str()
                ),
                Body::Audit(facts),
            )
        }
    };
    event(id, entry.time, severity, summary, agent, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_audit::Event as AuditEvent;

    fn t() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap()
    }

    fn web01() -> AgentRef {
        AgentRef {
            id: "a-1".into(),
            hostname: "web-01".into(),
            group: "web".into(),
        }
    }

    fn change(from: Option<Status>, to: Status, sev: Severity) -> CheckChanged {
        CheckChanged {
            run: "r1".into(),
            policy: "cis".into(),
            check: "3301".into(),
            title: "Root login disabled".into(),
            check_severity: sev,
            from,
            to,
        }
    }

    #[test]
    fn a_check_that_starts_failing_carries_its_severity() {
        let e = check_changed(
            "e1".into(),
            t(),
            web01(),
            change(Some(Status::Pass), Status::Fail, Severity::High),
        );
        assert_eq!(e.severity, Severity::High);
        assert_eq!(
            e.summary,
            "web-01: cis 3301 \"Root login disabled\" now fail (was pass)"
        );
        let fixed = check_changed(
            "e2".into(),
            t(),
            web01(),
            change(Some(Status::Fail), Status::Pass, Severity::High),
        );
        assert_eq!(fixed.severity, Severity::Info);
        let unknown = check_changed(
            "e3".into(),
            t(),
            web01(),
            change(None, Status::Fail, Severity::Unknown),
        );
        assert_eq!(unknown.severity, Severity::Medium);
        assert!(unknown.summary.ends_with("now fail (first report)"));
    }

    #[test]
    fn hits_are_as_severe_as_their_score() {
        let hit = |score| IntelHit {
            observable_kind: "connection".into(),
            observable: "203.0.113.9:443".into(),
            context: String::new(),
            indicator_kind: "ip_port".into(),
            indicator: "203.0.113.9:443".into(),
            how: "exact".into(),
            score,
            threat_type: Some("botnet_cc".into()),
            family: None,
            run: "r1".into(),
        };
        let sev = |s| intel_hit("e".into(), t(), web01(), hit(s)).severity;
        assert_eq!(
            [
                sev(100),
                sev(80),
                sev(79),
                sev(60),
                sev(59),
                sev(40),
                sev(39),
                sev(0)
            ],
            [
                Severity::Critical,
                Severity::Critical,
                Severity::High,
                Severity::High,
                Severity::Medium,
                Severity::Medium,
                Severity::Low,
                Severity::Low
            ]
        );
        assert_eq!(
            intel_hit("e".into(), t(), web01(), hit(85)).summary,
            "web-01: connection 203.0.113.9:443 matches botnet_cc indicator 203.0.113.9:443 (score 85)"
        );
    }

    fn entry(action: &str, outcome: Outcome, detail: &[(&str, &str)]) -> Entry {
        let mut e = AuditEvent::new("alice", action, "agent:a-1", outcome);
        for (k, v) in detail {
            e = e.detail(k, *v);
        }
        Entry {
            index: 41,
            time: t(),
            event: e,
        }
    }

    #[test]
    fn audit_entries_become_typed_events_where_a_soc_follows_them() {
        let revoke = from_audit(
            "e".into(),
            &entry("agent.revoke", Outcome::Success, &[("reason", "stolen")]),
            Some(web01()),
        );
        assert_eq!(revoke.body.kind(), "agent.revoked");
        assert_eq!(revoke.severity, Severity::Medium);
        assert_eq!(revoke.summary, "web-01 revoked by alice: stolen");
        let Body::AgentRevoked(f) = &revoke.body else {
            panic!("{revoke:?}")
        };
        assert_eq!((f.audit_index, f.detail["reason"].as_str()), (41, "stolen"));

        let att = from_audit(
            "e".into(),
            &entry(
                "attestation.issue",
                Outcome::Success,
                &[("status", "noncompliant"), ("policy", "cis")],
            ),
            Some(web01()),
        );
        assert_eq!(
            (att.body.kind(), att.severity),
            ("attestation.issued", Severity::Medium)
        );
        let login = from_audit("e".into(), &entry("login", Outcome::Failure, &[]), None);
        assert_eq!(
            (login.body.kind(), login.severity),
            ("audit", Severity::Medium)
        );
        assert_eq!(login.summary, "alice login agent:a-1: failure");
        let approve = from_audit(
            "e".into(),
            &entry("waiver.approve", Outcome::Success, &[("check", "cis:33*")]),
            None,
        );
        assert_eq!(
            (approve.body.kind(), approve.severity),
            ("waiver.changed", Severity::Low)
        );
        assert_eq!(approve.time, t());
    }

    #[test]
    fn the_json_schema_names_every_kind() {
        let text = crate::event::schema().to_string();
        for kind in Body::KINDS {
            assert!(text.contains(&format!("\"{kind}\"")), "{kind} missing");
        }
        assert!(text.contains("\"schema\"") && text.contains("\"seq\""));
    }

    #[test]
    fn the_json_names_schema_kind_and_data_and_reads_back() {
        let e = run_stored(
            "0190-x".into(),
            t(),
            web01(),
            RunStored {
                run: "r1".into(),
                policy: "cis".into(),
                policy_version: Some(3),
                trigger: "schedule".into(),
                score: 72.5,
                passed: 29,
                failed: 11,
                not_applicable: 2,
                waived: 1,
                other: 0,
                started_at: t(),
                finished_at: t() + time::Duration::milliseconds(1500),
            },
        );
        let text = e.to_json();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["schema"], "rampart.event.v1");
        assert_eq!(v["kind"], "run.stored");
        assert_eq!(v["time"], "2026-09-21T14:13:20.000Z");
        assert_eq!(v["severity"], "info");
        assert_eq!(v["agent"]["group"], "web");
        assert_eq!(v["data"]["finished_at"], "2026-09-21T14:13:21.500Z");
        assert_eq!(v["data"]["failed"], 11);
        assert_eq!(Event::from_json(&text).unwrap(), e);
    }
}
