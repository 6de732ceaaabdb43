//! The fleet overview, the agent list and one agent's page.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, Query, Request, State};
use rampart_access::{Permission, Target};
use rampart_store::AgentStatus;
use rampart_ui::svg::Trend;
use rampart_ui::{
    AgentCheck, AgentCounts, AgentHeader, AgentPage, AgentPolicy, AgentRow, AgentsPage,
    AttestationRow, FailingCheck, FleetPage, FrameworkScore, HitRow, Notice, PolicyScore, RunRow,
    Select,
};
use serde::Deserialize;
use time::{Duration, OffsetDateTime};

use super::{AppState, PageResult, Refusal, Scope, Viewer, html, when};
use crate::error::ApiError;

/// An agent with no stored run for this long is stale: it heartbeats but does not scan.
const STALE_AFTER: Duration = Duration::days(2);

/// How far back the overview's trends go, and their bucket.
const TREND_DAYS: i64 = 30;

/// Rows of the overview's check lists.
const TOP: usize = 10;

/// The overview's filters.
#[derive(Deserialize)]
pub(super) struct FleetQuery {
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    label: Option<String>,
}

/// Label choices offered in the overview's menu, at most.
const LABEL_CHOICES: usize = 200;

/// A filter value from a query string: empty means none; anything else must be a valid name
/// (groups) or short text (operating systems).
pub(super) fn filter(
    name: &str,
    value: Option<String>,
    group: bool,
) -> Result<Option<String>, Refusal> {
    let Some(v) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if group {
        rampart_core::names::check_name(name, &v)
            .map_err(|e| Refusal::from(ApiError::bad_request("invalid_query", e)))?;
        return Ok(Some(v));
    }
    Ok(crate::routes::text_param(name, Some(v))?)
}

/// The `n` checks failing on the most hosts (then by policy and check id), from the per-check
/// tallies the overview loads anyway: one row per agent and check, so a check's failed count
/// is its failing hosts, and no second scan of the latest results is needed.
fn top_failing(checks: &[rampart_store::CheckTally], n: usize) -> Vec<FailingCheck> {
    let mut failing: Vec<_> = checks.iter().filter(|c| c.failed > 0).collect();
    failing.sort_by(|a, b| {
        b.failed
            .cmp(&a.failed)
            .then_with(|| a.policy_id.cmp(&b.policy_id))
            .then_with(|| a.check_id.cmp(&b.check_id))
    });
    failing
        .into_iter()
        .take(n)
        .map(|c| FailingCheck {
            policy_id: c.policy_id.clone(),
            check_id: c.check_id.clone(),
            hosts: c.failed,
            since: None,
        })
        .collect()
}

/// Per framework, the latest results of the checks mapped to it, over every policy. A check's
/// frameworks are those its policy's newest version states (a check id keeps its mappings
/// from version to version in practice; a check dropped since maps to nothing).
async fn framework_scores(
    app: &crate::app::App,
    checks: Vec<rampart_store::CheckTally>,
    policies: &[rampart_store::PolicySummary],
) -> Result<Vec<FrameworkScore>, ApiError> {
    let mut maps = std::collections::HashMap::new();
    for p in policies {
        if let Some(m) = app.policy_checks(&p.id, p.latest.version).await? {
            maps.insert(p.id.as_str(), m);
        }
    }
    let mut by: BTreeMap<rampart_core::Framework, FrameworkScore> = BTreeMap::new();
    for c in checks {
        let Some(frameworks) = maps
            .get(c.policy_id.as_str())
            .and_then(|m| m.get(&c.check_id))
        else {
            continue;
        };
        for f in &frameworks.frameworks {
            let s = by.entry(f.clone()).or_insert_with(|| FrameworkScore {
                title: f.title().to_owned(),
                checks: 0,
                passed: 0,
                failed: 0,
                other: 0,
            });
            s.checks += 1;
            s.passed += c.passed;
            s.failed += c.failed;
            s.other += c.not_applicable + c.waived + c.other;
        }
    }
    Ok(by.into_values().collect())
}

/// `online`, `offline` or `revoked`, as the API says it.
fn state(app: &crate::app::App, agent: &rampart_store::Agent, now: OffsetDateTime) -> &'static str {
    if agent.status == AgentStatus::Revoked {
        "revoked"
    } else if now - agent.last_seen > app.offline_after() {
        "offline"
    } else {
        "online"
    }
}

/// `GET /ui/`: the fleet at a glance, for the groups the viewer may see.
pub(super) async fn overview(
    State(app): AppState,
    Query(q): Query<FleetQuery>,
    req: Request,
) -> PageResult {
    let (parts, _) = req.into_parts();
    let viewer = Viewer::of(&app, &parts, "/ui/").await?;
    viewer.require(Permission::ResultsRead, Target::Listing)?;
    let asked = Scope::of(&viewer, q.group, q.os, q.label)?;
    let scope = asked.store();
    let (group, os) = (&asked.group, &asked.os);
    let now = OffsetDateTime::now_utc();
    app.flush_heartbeats().await;
    let load = async {
        let agents = app.store.agents(None).await?;
        let last_runs = app.store.agents_last_run().await?;
        let hosts = app.store.fleet_policy_hosts(&scope).await?;
        let trends = app
            .store
            .fleet_trends(&scope, now - Duration::days(TREND_DAYS), 86_400)
            .await?;
        let newly = app
            .store
            .fleet_failing_checks(&scope, now - Duration::DAY, TOP as u32)
            .await?;
        let oses = app.store.fleet_oses(&scope).await?;
        let checks = app.store.fleet_check_tallies(&scope).await?;
        let policies = app.store.policies().await?;
        Ok::<_, rampart_store::StoreError>((
            agents, last_runs, hosts, trends, newly, oses, checks, policies,
        ))
    };
    let (agents, last_runs, hosts, trends, newly, oses, checks, policies) =
        load.await.map_err(|e| viewer.refuse(ApiError::from(e)))?;
    let tallies = rampart_store::policy_tallies(&hosts, &checks);
    let top = top_failing(&checks, TOP);
    let frameworks = framework_scores(&app, checks, &policies)
        .await
        .map_err(|e| viewer.refuse(e))?;
    let label = &asked.label;

    let mut counts = AgentCounts::default();
    let mut groups = BTreeSet::new();
    let mut labels = BTreeSet::new();
    for a in agents.iter().filter(|a| viewer.caller.sees(&a.group)) {
        groups.insert(a.group.clone());
        if labels.len() < LABEL_CHOICES {
            labels.extend(a.labels.iter().map(|(k, v)| format!("{k}={v}")));
        }
        if !scope.narrows_to(a) {
            continue;
        }
        match state(&app, a, now) {
            "revoked" => counts.revoked += 1,
            "offline" => counts.offline += 1,
            _ => {
                counts.online += 1;
                if last_runs.get(&a.id).is_none_or(|t| now - *t > STALE_AFTER) {
                    counts.stale += 1;
                }
            }
        }
    }
    let mut by_policy: BTreeMap<String, Trend> = BTreeMap::new();
    for p in trends {
        let judged = p.passed + p.failed;
        if judged == 0 {
            continue;
        }
        let t = p.bucket_start.to_offset(time::UtcOffset::UTC).date();
        by_policy
            .entry(p.policy_id)
            .or_default()
            .points
            .push((t.to_string(), p.passed as f64 / judged as f64 * 100.0));
    }
    let failing = |rows: Vec<rampart_store::FailingTally>| {
        rows.into_iter()
            .map(|f| FailingCheck {
                policy_id: f.policy_id,
                check_id: f.check_id,
                hosts: f.hosts,
                since: Some(when(f.latest_hour)),
            })
            .collect()
    };
    let page = FleetPage {
        shell: viewer.shell,
        filters: vec![
            Select::new("group", "Group", "All groups", groups, group.as_deref()),
            Select::new("os", "Operating system", "All", oses, os.as_deref()),
            Select::new(
                "label",
                "Label",
                "Any",
                labels,
                label.as_ref().map(|(k, v)| format!("{k}={v}")).as_deref(),
            ),
        ],
        filtered: group.is_some() || os.is_some() || label.is_some(),
        frameworks,
        agents: counts,
        policies: tallies
            .into_iter()
            .map(|t| PolicyScore {
                trend: by_policy.remove(&t.policy_id).unwrap_or_default(),
                other: t.total.saturating_sub(t.passed + t.failed),
                policy_id: t.policy_id,
                hosts: t.hosts,
                passed: t.passed,
                failed: t.failed,
            })
            .collect(),
        top_failing: top,
        newly_failing: failing(newly),
        generated: when(now),
        report_url: format!(
            "/api/v1/report?{}",
            serde_urlencoded::to_string([
                ("format", Some("pdf".to_owned())),
                ("group", group.clone()),
                ("os", os.clone()),
                ("label", label.as_ref().map(|(k, v)| format!("{k}={v}"))),
            ])
            .unwrap_or_default()
        ),
    };
    html(&page)
}

/// `?group=` of the agent list.
#[derive(Deserialize)]
pub(super) struct AgentsQuery {
    #[serde(default)]
    group: Option<String>,
}

/// `GET /ui/agents`: every agent the viewer may see.
pub(super) async fn agents(
    State(app): AppState,
    Query(q): Query<AgentsQuery>,
    req: Request,
) -> PageResult {
    let (parts, _) = req.into_parts();
    let viewer = Viewer::of(&app, &parts, "/ui/agents").await?;
    viewer.require(Permission::AgentsRead, Target::Listing)?;
    let group = filter("group", q.group, true).map_err(|e| viewer.refuse(e))?;
    app.flush_heartbeats().await;
    let now = OffsetDateTime::now_utc();
    let mut agents = app
        .store
        .agents(group.as_deref())
        .await
        .map_err(|e| viewer.refuse(ApiError::from(e)))?;
    agents.retain(|a| viewer.caller.sees(&a.group));
    agents.sort_by(|a, b| a.hostname.cmp(&b.hostname).then_with(|| a.id.cmp(&b.id)));
    let page = AgentsPage {
        agents: agents
            .iter()
            .map(|a| AgentRow {
                id: a.id.clone(),
                hostname: a.hostname.clone(),
                group: a.group.clone(),
                os: a.os.clone(),
                state: state(&app, a, now).to_owned(),
                last_seen: when(a.last_seen),
            })
            .collect(),
        group,
        shell: viewer.shell,
    };
    html(&page)
}

/// `GET /ui/agents/{id}`: one agent's latest state, failing checks and runs.
pub(super) async fn agent(
    State(app): AppState,
    Path(id): Path<String>,
    Query(q): Query<super::DoneQuery>,
    req: Request,
) -> PageResult {
    let (parts, _) = req.into_parts();
    let viewer = Viewer::of(&app, &parts, "/ui/agents").await?;
    viewer.require(Permission::ResultsRead, Target::Listing)?;
    app.flush_heartbeats().await;
    let not_found = || viewer.refuse(ApiError::not_found("agent", &id));
    let agent = app
        .store
        .agent(&id)
        .await
        .map_err(|e| viewer.refuse(ApiError::from(e)))?
        .ok_or_else(not_found)?;
    // Another group's agent is as absent as a missing one.
    if !viewer.caller.sees(&agent.group) {
        return Err(not_found());
    }
    let now = OffsetDateTime::now_utc();
    // Intel matches only for a viewer who may read intel; otherwise the section is not there.
    let reads_intel = viewer
        .caller
        .check(Permission::IntelRead, Target::Fleet)
        .is_ok();
    let (latest, runs, attestations, hits) = async {
        Ok::<_, rampart_store::StoreError>((
            app.store.latest_results(&id, None).await?,
            app.store.agent_runs(&id, None, 50).await?,
            app.store.agent_attestations(&id, None, 10).await?,
            if reads_intel {
                Some(app.store.intel_hits(Some(&id), 0, 50).await?)
            } else {
                None
            },
        ))
    }
    .await
    .map_err(|e| viewer.refuse(ApiError::from(e)))?;
    let mut policies: BTreeMap<String, AgentPolicy> = BTreeMap::new();
    let mut failing = Vec::new();
    for l in &latest {
        let p = policies
            .entry(l.policy_id.clone())
            .or_insert_with(|| AgentPolicy {
                policy_id: l.policy_id.clone(),
                passed: 0,
                failed: 0,
                other: 0,
                last_run: String::new(),
            });
        match l.status {
            rampart_core::Status::Pass => p.passed += 1,
            rampart_core::Status::Fail => p.failed += 1,
            _ => p.other += 1,
        }
        if !matches!(
            l.status,
            rampart_core::Status::Pass | rampart_core::Status::NotApplicable
        ) {
            failing.push(AgentCheck {
                policy_id: l.policy_id.clone(),
                check_id: l.check_id.clone(),
                status: l.status.as_str().to_owned(),
                since: when(l.since),
            });
        }
    }
    for r in &runs {
        if let Some(p) = policies.get_mut(&r.policy_id)
            && p.last_run.is_empty()
        {
            p.last_run = when(r.started_at);
        }
    }
    let mut labels: Vec<String> = agent
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    labels.sort();
    let may_scan = agent.status != AgentStatus::Revoked
        && viewer
            .caller
            .check(Permission::AgentsManage, Target::Group(&agent.group))
            .is_ok();
    let page = AgentPage {
        notice: (q.done.as_deref() == Some("scan")).then(|| {
            Notice::Done(
                "Asked: the agent scans at its next heartbeat, and the run appears here."
                    .to_owned(),
            )
        }),
        may_scan,
        agent: AgentHeader {
            state: state(&app, &agent, now).to_owned(),
            last_seen: when(agent.last_seen),
            id: agent.id,
            hostname: agent.hostname,
            group: agent.group,
            os: agent.os,
            labels,
        },
        policies: policies.into_values().collect(),
        failing,
        runs: runs
            .iter()
            .map(|r| RunRow {
                id: r.id.clone(),
                policy_id: r.policy_id.clone(),
                started: when(r.started_at),
                score: format!("{:.1} %", r.summary.score),
                passed: r.summary.passed,
                failed: r.summary.failed,
            })
            .collect(),
        attestations: attestations
            .into_iter()
            .map(|a| AttestationRow {
                bundle_url: format!(
                    "/api/v1/agents/{}/attestations/{}/bundle",
                    a.agent_id, a.jti
                ),
                state: if a.expires_at <= now {
                    "expired"
                } else if a.stale {
                    "superseded"
                } else {
                    "current"
                }
                .to_owned(),
                score: format!("{:.1} %", a.score),
                issued: when(a.issued_at),
                expires: when(a.expires_at),
                jti: a.jti,
                policy_id: a.policy_id,
                status: a.status,
            })
            .collect(),
        hits: hits.map(|hits| {
            hits.into_iter()
                .map(|h| HitRow {
                    indicator: h.indicator,
                    kind: h.indicator_kind.as_str().to_owned(),
                    observable: h.observable,
                    context: h.context,
                    feeds: h.feeds.join(", "),
                    last_seen: time::OffsetDateTime::from_unix_timestamp(h.last_seen)
                        .map_or_else(|_| h.last_seen.to_string(), when),
                    count: h.count,
                })
                .collect()
        }),
        shell: viewer.shell,
    };
    html(&page)
}

#[cfg(test)]
mod tests {
    use rampart_store::CheckTally;

    fn tally(policy: &str, check: &str, failed: u64) -> CheckTally {
        CheckTally {
            policy_id: policy.into(),
            check_id: check.into(),
            passed: 1,
            failed,
            not_applicable: 0,
            waived: 0,
            other: 0,
        }
    }

    #[test]
    fn the_top_failing_checks_are_most_hosts_first_then_by_name_without_passing_ones() {
        let checks = [
            tally("b", "1", 3),
            tally("a", "2", 3),
            tally("a", "1", 0),
            tally("a", "3", 7),
            tally("a", "0", 1),
        ];
        let top: Vec<_> = super::top_failing(&checks, 3)
            .into_iter()
            .map(|c| (c.policy_id, c.check_id, c.hosts))
            .collect();
        let want = |p: &str, c: &str, h| (p.to_owned(), c.to_owned(), h);
        assert_eq!(
            top,
            [want("a", "3", 7), want("a", "2", 3), want("b", "1", 3)]
        );
    }
}
