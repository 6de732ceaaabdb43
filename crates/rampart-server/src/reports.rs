//! PDF compliance reports of one agent, a group or the fleet: the facts read from the store
//! here, laid out by `rampart-pdf`. The API and the dashboard both call these, so a report
//! downloaded from either is the same document.

use std::collections::BTreeMap;

use rampart_pdf::{
    AttestationRow, CheckResult, Report, ReportInput, Subject, SubjectKind, TrendPoint, WaiverRow,
};
use rampart_store::{AgentStatus, FleetScope, WaiverScope};
use time::{Duration, OffsetDateTime};
use tokio::sync::Semaphore;

use crate::app::App;
use crate::error::ApiError;

/// How far back a report's trend goes.
const TREND_DAYS: i64 = 30;
/// Failing checks whose hosts' evidence a group or fleet report samples, and hosts per check.
const SAMPLED_CHECKS: usize = 25;
/// See [`SAMPLED_CHECKS`].
const SAMPLED_HOSTS: u32 = 3;
/// Hosts whose attestations a group or fleet report lists.
const ATTESTED_HOSTS: usize = 100;
/// Layouts at once per server: each holds a core for up to seconds, and the rest of the API
/// must keep answering.
static LAYOUTS: Semaphore = Semaphore::const_new(2);

/// The media type of what these return.
pub(crate) const PDF: &str = "application/pdf";

/// A laid-out report and the name to save it under.
pub(crate) struct Document {
    /// The PDF.
    pub bytes: Vec<u8>,
    /// `rampart-report-web-01-2026-12-04.pdf`.
    pub file_name: String,
}

/// Lays a report out off the async workers, a bounded number at a time.
async fn lay_out(input: ReportInput, stem: &str) -> Result<Document, ApiError> {
    let date = input.generated_at.date();
    let _slot = LAYOUTS
        .acquire()
        .await
        .map_err(|_| ApiError::internal("report layout closed"))?;
    let pdf = tokio::task::spawn_blocking(move || rampart_pdf::render(&Report::build(input)))
        .await
        .map_err(|e| ApiError::internal(format!("report layout: {e}")))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let stem: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    Ok(Document {
        bytes: pdf.bytes,
        file_name: format!("rampart-report-{stem}-{date}.pdf"),
    })
}

fn generator() -> String {
    format!("rampart {}", env!("CARGO_PKG_VERSION"))
}

fn waiver_row(w: rampart_store::StoredWaiver) -> WaiverRow {
    let (policy_id, check) = match w.check.split_once(':') {
        Some((p, c)) => (p.to_owned(), c.to_owned()),
        None => ("*".to_owned(), w.check.clone()),
    };
    WaiverRow {
        applies_to: match &w.scope {
            WaiverScope::Agent(a) => format!("agent {a}"),
            WaiverScope::Group(g) => format!("group {g}"),
            WaiverScope::Fleet => "every agent".to_owned(),
        },
        id: w.id,
        policy_id,
        check,
        justification: w.justification,
        approved_by: w.decided_by.unwrap_or_default(),
        expires: w.expires_on,
    }
}

/// An attestation as a report lists it; `results_digest` when the run is at hand (empty
/// otherwise: a stored attestation does not keep the digest apart from its JWS).
fn attestation_row(
    host: &str,
    a: rampart_store::StoredAttestation,
    results_digest: &str,
) -> AttestationRow {
    let rfc3339 = |t: OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    AttestationRow {
        host: host.to_owned(),
        issued_at: rfc3339(a.issued_at),
        expires_at: rfc3339(a.expires_at),
        policy_id: a.policy_id,
        id: a.jti,
        key_id: a.kid,
        status: a.status,
        results_digest: results_digest.to_owned(),
    }
}

/// No run to report: of `policy` on the agent, or of any policy.
pub(crate) fn no_runs(agent_id: &str, policy: Option<&str>) -> ApiError {
    let what = match policy {
        Some(p) => format!("of policy {p} on agent {agent_id}"),
        None => format!("on agent {agent_id}"),
    };
    ApiError::not_found("run", &what)
}

/// Sums per-policy buckets into one score per day.
fn daily(points: impl IntoIterator<Item = (OffsetDateTime, u64, u64)>) -> Vec<TrendPoint> {
    let mut by: BTreeMap<time::Date, (u64, u64)> = BTreeMap::new();
    for (at, passed, failed) in points {
        let d = by
            .entry(at.to_offset(time::UtcOffset::UTC).date())
            .or_default();
        d.0 += passed;
        d.1 += failed;
    }
    by.into_iter()
        .map(|(date, (passed, failed))| TrendPoint {
            date,
            passed,
            failed,
        })
        .collect()
}

/// One agent: the newest run of each policy (or of `policy`) with every result and its
/// evidence, the waivers in force for it, each run's attestation, and the score per day over
/// the last 30 days (the last run of each policy on each day).
pub(crate) async fn agent(
    app: &App,
    agent_id: &str,
    policy: Option<&str>,
) -> Result<Document, ApiError> {
    let agent = app
        .store
        .agent(agent_id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent", agent_id))?;
    let now = OffsetDateTime::now_utc();
    let latest = app.store.latest_runs(agent_id, policy).await?;
    if latest.is_empty() {
        return Err(no_runs(agent_id, policy));
    }
    let mut results = rampart_pdf::HostResults::default();
    let mut attestations = Vec::new();
    let mut digests = Vec::new();
    for summary in &latest {
        let detail = app
            .store
            .run(&summary.id)
            .await?
            .ok_or_else(|| ApiError::not_found("run", &summary.id))?;
        digests.push(format!(
            "{}: {}",
            detail.run.policy_id, detail.run.results_digest
        ));
        results.add_run(&detail.run.policy_id, &detail.checks, &agent.hostname);
        if let Some(a) = app.store.run_attestation(&summary.id).await? {
            attestations.push(attestation_row(
                &agent.hostname,
                a,
                &detail.run.results_digest,
            ));
        }
    }
    let (checks, evidence) = results.finish();
    let missing = latest.len() - attestations.len();
    let attestation_note = (missing > 0).then(|| {
        format!(
            "{missing} of {} runs reported here carry no attestation (the server signs each run \
             as it stores it; a run stored before signing was set up has none).",
            latest.len()
        )
    });

    let since = now - Duration::days(TREND_DAYS);
    let runs = app.store.agent_runs(agent_id, policy, 10_000).await?;
    // The last run of each policy on each day.
    let mut last: BTreeMap<(time::Date, &str), &rampart_store::RunSummary> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.started_at >= since) {
        let key = (r.started_at.date(), r.policy_id.as_str());
        if last.get(&key).is_none_or(|s| s.started_at < r.started_at) {
            last.insert(key, r);
        }
    }
    let trend = daily(last.values().map(|r| {
        (
            r.started_at,
            u64::from(r.summary.passed),
            u64::from(r.summary.failed),
        )
    }));

    let waivers = app
        .store
        .waivers_in_force(agent_id, &agent.group, now)
        .await?
        .into_iter()
        .map(waiver_row)
        .collect();
    let mut details = vec![
        ("Agent".to_owned(), agent.id.clone()),
        ("Group".to_owned(), agent.group.clone()),
        ("Operating system".to_owned(), agent.os.clone()),
    ];
    if !agent.labels.is_empty() {
        details.push((
            "Labels".to_owned(),
            agent
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    if agent.status == AgentStatus::Revoked {
        details.push(("Status".to_owned(), "revoked".to_owned()));
    }
    details.push(("Results digests".to_owned(), digests.join("; ")));
    let input = ReportInput {
        subject: Subject {
            kind: SubjectKind::Host,
            name: agent.hostname.clone(),
            hosts: 1,
            details,
        },
        generated_at: now,
        generator: generator(),
        source: match policy {
            Some(p) => format!("Rampart server: the newest run of policy {p}"),
            None => "Rampart server: the newest run of each policy".to_owned(),
        },
        checks,
        trend,
        evidence,
        evidence_note: Some("Every check's evidence, failed checks first.".to_owned()),
        waivers,
        attestations,
        attestation_note,
    };
    lay_out(input, &agent.hostname).await
}

/// A group or the fleet: the latest result of every check on every agent covered, the checks'
/// titles and mappings from their policies' newest versions (as the dashboard scores them),
/// the evidence of a few failing hosts for the checks failing most, the waivers that reach
/// the hosts, and the newest attestation of the first hosts by name.
///
/// `scope` is the caller's groups narrowed like the dashboard's overview; `filters` name the
/// narrowing on the cover.
pub(crate) async fn fleet(
    app: &App,
    scope: &FleetScope<'_>,
    filters: Vec<(String, String)>,
) -> Result<Document, ApiError> {
    let now = OffsetDateTime::now_utc();
    app.flush_heartbeats().await;
    let mut agents: Vec<_> = app
        .store
        .agents(scope.group)
        .await?
        .into_iter()
        .filter(|a| {
            a.status != AgentStatus::Revoked
                && scope.visible.is_none_or(|v| v.contains(&a.group))
                && scope.narrows_to(a)
        })
        .collect();
    agents.sort_by(|a, b| a.hostname.cmp(&b.hostname).then_with(|| a.id.cmp(&b.id)));

    let tallies = app.store.fleet_check_tallies(scope).await?;
    let policies = app.store.policies().await?;
    let mut metas = std::collections::HashMap::new();
    for p in &policies {
        if let Some(m) = app.policy_checks(&p.id, p.latest.version).await? {
            metas.insert(p.id.clone(), m);
        }
    }
    let mut checks: Vec<CheckResult> = tallies
        .into_iter()
        .map(|t| {
            let meta = metas.get(&t.policy_id).and_then(|m| m.get(&t.check_id));
            CheckResult {
                title: meta.map(|m| m.title.clone()).unwrap_or_default(),
                severity: meta.map(|m| m.severity).unwrap_or_default(),
                rationale: meta.map(|m| m.rationale.clone()).unwrap_or_default(),
                remediation: meta.map(|m| m.remediation.clone()).unwrap_or_default(),
                compliance: meta.map(|m| m.compliance.clone()).unwrap_or_default(),
                policy_id: t.policy_id,
                check_id: t.check_id,
                passed: t.passed,
                failed: t.failed,
                waived: t.waived,
                other: t.not_applicable + t.other,
            }
        })
        .collect();

    // Evidence of the checks failing on most hosts; a check of a policy the server does not
    // hold (an agent's local policy) takes its title and remediation from a host's result.
    let mut failing: Vec<usize> = (0..checks.len())
        .filter(|&i| checks[i].failed > 0)
        .collect();
    failing.sort_by(|&a, &b| {
        checks[b].failed.cmp(&checks[a].failed).then_with(|| {
            (&checks[a].policy_id, &checks[a].check_id)
                .cmp(&(&checks[b].policy_id, &checks[b].check_id))
        })
    });
    let mut evidence = Vec::new();
    for &i in failing.iter().take(SAMPLED_CHECKS) {
        let hosts = app
            .store
            .fleet_check(
                scope,
                &checks[i].policy_id,
                &checks[i].check_id,
                Some(rampart_core::Status::Fail),
                SAMPLED_HOSTS,
                0,
            )
            .await?;
        for h in hosts {
            let Some(outcome) = h.outcome else { continue };
            let c = &mut checks[i];
            if c.title.is_empty() {
                c.title = outcome.title.clone();
                c.severity = outcome.severity;
                c.rationale = outcome.rationale.clone();
                c.remediation = outcome.remediation.clone();
                c.compliance = outcome.compliance.clone();
            }
            evidence.push(rampart_pdf::evidence_sample(
                &c.policy_id,
                &outcome,
                &h.hostname,
            ));
        }
    }
    let evidence_note: Option<String> = Some(format!(
        "A sample an auditor can check: for each of the {SAMPLED_CHECKS} checks failing on the \
         most hosts, the evidence of up to {SAMPLED_HOSTS} failing hosts, first by host name. \
         Each host's own report holds all of its evidence."
    ));

    let trend = daily(
        app.store
            .fleet_trends(scope, now - Duration::days(TREND_DAYS), 86_400)
            .await?
            .into_iter()
            .map(|p| (p.bucket_start, p.passed, p.failed)),
    );

    let groups: std::collections::BTreeSet<&str> =
        agents.iter().map(|a| a.group.as_str()).collect();
    let ids: std::collections::BTreeSet<&str> = agents.iter().map(|a| a.id.as_str()).collect();
    let today = now.date().to_string();
    let waivers = app
        .store
        .waivers(Some("approved"), 10_000)
        .await?
        .into_iter()
        .filter(|w| w.expires_on >= today && w.decided_at.is_some_and(|d| d <= now))
        .filter(|w| match &w.scope {
            WaiverScope::Fleet => true,
            WaiverScope::Group(g) => groups.contains(g.as_str()),
            WaiverScope::Agent(a) => ids.contains(a.as_str()),
        })
        .map(waiver_row)
        .collect();

    let mut attestations = Vec::new();
    for a in agents.iter().take(ATTESTED_HOSTS) {
        for att in app.store.agent_attestations(&a.id, None, 50).await? {
            if att.stale
                || attestations
                    .iter()
                    .any(|r: &AttestationRow| r.id == att.jti)
            {
                continue;
            }
            attestations.push(attestation_row(&a.hostname, att, ""));
        }
    }
    let attestation_note = Some(if agents.len() > ATTESTED_HOSTS {
        format!(
            "The current attestation of each policy on the first {ATTESTED_HOSTS} of {} hosts by \
             name; each host's own report lists its attestations with the results digests they sign.",
            agents.len()
        )
    } else if attestations.is_empty() {
        "No signed attestation covers these hosts' current results.".to_owned()
    } else {
        "The current attestation of each policy on each host; each host's own report lists \
         them with the results digests they sign."
            .to_owned()
    });

    let (kind, name, stem) = match scope.group {
        Some(g) => (SubjectKind::Group, g.to_owned(), format!("group-{g}")),
        None => (
            SubjectKind::Fleet,
            "the fleet".to_owned(),
            "fleet".to_owned(),
        ),
    };
    let input = ReportInput {
        subject: Subject {
            kind,
            name,
            hosts: agents.len() as u64,
            details: filters,
        },
        generated_at: now,
        generator: generator(),
        source: "Rampart server: the latest result of every check on every agent covered \
                 (revoked agents left out)"
            .to_owned(),
        checks,
        trend,
        evidence,
        evidence_note,
        waivers,
        attestations,
        attestation_note,
    };
    lay_out(input, &stem).await
}
