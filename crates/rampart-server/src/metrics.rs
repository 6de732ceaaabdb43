//! Prometheus metrics (`GET /metrics`).
//!
//! Two kinds. What this replica counts as it works (HTTP requests by route and status, runs and
//! check results stored, scan durations the agents' runs report, heartbeat handling, ingestion
//! errors, threat-intel syncs and the indicators they brought): counters and histograms that
//! start at zero with the process, so Prometheus sums them over replicas. And what the fleet is
//! (agents by group and state, scores per policy and group, certificate expiry, feed health,
//! index and audit-log size): gauges read from the store at each scrape, the same on every
//! replica, since the store is shared.
//!
//! Label values are bounded so that no fleet can make a scrape unbounded: routes are the route
//! table's templates (never a raw path), statuses and states are closed sets, policies and
//! groups are the operator's own names, and beyond [`MAX_GROUPS`] groups or [`MAX_POLICIES`]
//! policies the smallest are folded into one `_other` series (docs/metrics.md).
//!
//! Served as OpenMetrics to clients that accept it (Prometheus does) and as the Prometheus
//! text format 0.0.4 to the rest (`promtool check metrics`, curl).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use rampart_feeds::ingest::IngestReport;
use rampart_feeds::sync::SyncOutcome;
use rampart_store::{IngestOutcome, NewRun};
use time::OffsetDateTime;

use crate::app::App;

/// Groups reported one by one; the rest are summed into `_other`.
pub(crate) const MAX_GROUPS: usize = 500;
/// Policies reported one by one; the rest are summed into `_other`.
pub(crate) const MAX_POLICIES: usize = 200;
/// The label value of what the bounds fold together.
pub(crate) const OTHER: &str = "_other";

/// The media type of an OpenMetrics exposition.
pub(crate) const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The media type of the Prometheus text format.
pub(crate) const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    port: &'static str,
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabels {
    policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupStateLabels {
    group: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupPolicyLabels {
    group: String,
    policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupPolicyStatusLabels {
    group: String,
    policy: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeedLabels {
    feed: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeedOutcomeLabels {
    feed: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DestinationOutcomeLabels {
    destination: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DestinationLabels {
    destination: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CertificateLabels {
    certificate: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    backend: &'static str,
}

/// The replica's instruments and the fleet's gauges, in one registry.
pub(crate) struct Metrics {
    registry: Registry,
    /// One scrape at a time: the fleet's gauges are cleared and refilled for each.
    scrape: tokio::sync::Mutex<()>,
    http: Family<HttpLabels, Histogram>,
    runs: Family<OutcomeLabels, Counter>,
    results: Family<StatusLabels, Counter>,
    ingest_errors: Family<StageLabels, Counter>,
    scan_duration: Family<PolicyLabels, Histogram>,
    heartbeat: Histogram,
    intel_syncs: Family<FeedOutcomeLabels, Counter>,
    intel_indicators: Family<FeedLabels, Counter>,
    intel_rejected: Family<FeedLabels, Counter>,
    events_sent: Family<DestinationOutcomeLabels, Counter>,
    alerts_told: Counter,
    fleet: Fleet,
}

/// The gauges read from the store at each scrape.
struct Fleet {
    agents: Family<GroupStateLabels, Gauge>,
    agent_cert_earliest: Gauge,
    agent_certs_expired: Gauge,
    policy_score: Family<PolicyLabels, FloatGauge>,
    group_score: Family<GroupPolicyLabels, FloatGauge>,
    policy_hosts: Family<GroupPolicyLabels, Gauge>,
    policy_results: Family<GroupPolicyStatusLabels, Gauge>,
    index_entries: Gauge,
    index_bytes: Gauge,
    indicators: Family<KindLabels, Gauge>,
    feed_up: Family<FeedLabels, Gauge>,
    feed_last_success: Family<FeedLabels, Gauge>,
    feed_interval: Family<FeedLabels, Gauge>,
    feed_failures: Family<FeedLabels, Gauge>,
    audit_entries: Gauge,
    ca_expiry: Family<CertificateLabels, Gauge>,
    omitted: Family<KindLabels, Gauge>,
    collect_seconds: FloatGauge,
    events_pending: Family<DestinationLabels, Gauge>,
    events_dead: Family<DestinationLabels, Gauge>,
    events_oldest: Family<DestinationLabels, Gauge>,
    destination_up: Family<DestinationLabels, Gauge>,
}

fn http_histogram() -> Histogram {
    Histogram::new(HTTP_BUCKETS.iter().copied())
}

fn scan_histogram() -> Histogram {
    Histogram::new(SCAN_BUCKETS.iter().copied())
}

/// HTTP handling: a millisecond to half a minute (PDF reports, feed uploads).
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// A heartbeat is a memory write and an assignment read: well under a millisecond to 100 ms.
const HEARTBEAT_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
];
/// A scan: under a second (a small policy) to half an hour (a full CIS benchmark on a slow
/// host with many files).
const SCAN_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

impl Metrics {
    pub(crate) fn new(backend: rampart_store::Backend) -> Metrics {
        let mut registry = Registry::with_prefix("rampart");
        let http = Family::new_with_constructor(http_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP request, until its response headers, by port, method, route template and status",
            Unit::Seconds,
            http.clone(),
        );
        let runs = Family::default();
        registry.register(
            "runs_received",
            "Runs agents posted, by outcome: stored, duplicate (already stored; a retry), failed (not stored)",
            runs.clone(),
        );
        let results = Family::default();
        registry.register(
            "check_results_stored",
            "Check results stored with new runs, by status",
            results.clone(),
        );
        let ingest_errors = Family::default();
        registry.register(
            "ingest_errors",
            "Result ingestion failures: stage batch (a batch's transaction failed; its runs were retried one by one), run (a run could not be stored)",
            ingest_errors.clone(),
        );
        let scan_duration = Family::new_with_constructor(scan_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "scan_duration",
            "How long the agents' stored runs took to scan, by policy (ad_hoc: runs not from an assignment)",
            Unit::Seconds,
            scan_duration.clone(),
        );
        let heartbeat = Histogram::new(HEARTBEAT_BUCKETS.iter().copied());
        registry.register_with_unit(
            "heartbeat_duration",
            "Time to answer an agent's heartbeat",
            Unit::Seconds,
            heartbeat.clone(),
        );
        let intel_syncs = Family::default();
        registry.register(
            "intel_feed_syncs",
            "Threat-intel feed fetches and uploads, by feed and outcome: ingested, not_modified, failed",
            intel_syncs.clone(),
        );
        let intel_indicators = Family::default();
        registry.register(
            "intel_indicators_ingested",
            "Indicators read from feed downloads and uploads, by feed",
            intel_indicators.clone(),
        );
        let intel_rejected = Family::default();
        registry.register(
            "intel_rows_rejected",
            "Feed rows or values rejected while parsing, by feed",
            intel_rejected.clone(),
        );
        registry.register(
            "build",
            "The server's version and storage backend",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                backend: match backend {
                    rampart_store::Backend::Sqlite => "sqlite",
                    rampart_store::Backend::Postgres => "postgres",
                },
            }),
        );
        let events_sent = Family::default();
        registry.register(
            "events_sent",
            "Event deliveries this replica attempted, by destination and outcome: delivered (acknowledged, or not taken by its filter), failed (to be retried, or a dead letter)",
            events_sent.clone(),
        );
        let alerts_told = Counter::default();
        registry.register(
            "alerts_told",
            "Alert events this replica's evaluator wrote (a subject of an alert rule starting or stopping to fire, or hits counted during a quiet period), to be delivered to the rules' destinations",
            alerts_told.clone(),
        );
        // Series that alerts and dashboards compute rates of exist from the start, at zero:
        // `increase` over a series that appears with its first error would miss that error.
        for outcome in ["stored", "duplicate", "failed"] {
            let _ = runs.get_or_create(&OutcomeLabels { outcome });
        }
        for stage in ["batch", "run"] {
            let _ = ingest_errors.get_or_create(&StageLabels { stage });
        }
        let fleet = Fleet::register(&mut registry);
        Metrics {
            registry,
            scrape: tokio::sync::Mutex::new(()),
            http,
            runs,
            results,
            ingest_errors,
            scan_duration,
            heartbeat,
            intel_syncs,
            intel_indicators,
            intel_rejected,
            events_sent,
            alerts_told,
            fleet,
        }
    }

    /// One HTTP request answered.
    pub(crate) fn http_request(
        &self,
        port: &'static str,
        method: &axum::http::Method,
        route: &str,
        status: u16,
        seconds: f64,
    ) {
        let method = match *method {
            axum::http::Method::GET => "GET",
            axum::http::Method::POST => "POST",
            axum::http::Method::PUT => "PUT",
            axum::http::Method::DELETE => "DELETE",
            axum::http::Method::HEAD => "HEAD",
            axum::http::Method::OPTIONS => "OPTIONS",
            axum::http::Method::PATCH => "PATCH",
            _ => "other",
        };
        self.http
            .get_or_create(&HttpLabels {
                port,
                method,
                route: route.to_owned(),
                status,
            })
            .observe(seconds);
    }

    /// A heartbeat answered after `seconds`.
    pub(crate) fn heartbeat(&self, seconds: f64) {
        self.heartbeat.observe(seconds);
    }

    /// What ingestion made of runs: each outcome, and for the stored ones their results and
    /// scan durations.
    pub(crate) fn runs(&self, runs: &[NewRun], outcomes: &[IngestOutcome]) {
        for (run, outcome) in runs.iter().zip(outcomes) {
            match outcome {
                IngestOutcome::Duplicate => self.run_outcome("duplicate"),
                IngestOutcome::Stored => {
                    self.run_outcome("stored");
                    let mut by: BTreeMap<&'static str, u64> = BTreeMap::new();
                    for c in &run.checks {
                        *by.entry(c.status.as_str()).or_default() += 1;
                    }
                    for (status, n) in by {
                        self.results
                            .get_or_create(&StatusLabels { status })
                            .inc_by(n);
                    }
                    let policy = if run.policy_version.is_some() {
                        run.policy_id.clone()
                    } else {
                        "ad_hoc".to_owned()
                    };
                    let took = (run.finished_at - run.started_at).as_seconds_f64().max(0.0);
                    self.scan_duration
                        .get_or_create(&PolicyLabels { policy })
                        .observe(took);
                }
            }
        }
    }

    /// A run that could not be stored.
    pub(crate) fn run_failed(&self) {
        self.run_outcome("failed");
        self.ingest_error("run");
    }

    fn run_outcome(&self, outcome: &'static str) {
        self.runs.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// An ingestion failure at `stage` (`batch` or `run`).
    pub(crate) fn ingest_error(&self, stage: &'static str) {
        self.ingest_errors
            .get_or_create(&StageLabels { stage })
            .inc();
    }

    /// Deliveries to a destination settled.
    pub(crate) fn events_sent(&self, destination: &str, delivered: u64, failed: u64) {
        for (outcome, n) in [("delivered", delivered), ("failed", failed)] {
            self.events_sent
                .get_or_create(&DestinationOutcomeLabels {
                    destination: destination.to_owned(),
                    outcome,
                })
                .inc_by(n);
        }
    }

    /// Alert events written by the evaluator.
    pub(crate) fn alerts_told(&self, n: u64) {
        self.alerts_told.inc_by(n);
    }

    /// A feed fetched.
    pub(crate) fn feed_synced(&self, feed: &str, outcome: &SyncOutcome) {
        match outcome {
            SyncOutcome::NotModified => self.feed_outcome(feed, "not_modified"),
            SyncOutcome::Failed { .. } => self.feed_outcome(feed, "failed"),
            SyncOutcome::Ingested { report, .. } => self.feed_ingested(feed, report),
        }
    }

    /// A feed's file ingested (download or upload).
    pub(crate) fn feed_ingested(&self, feed: &str, report: &IngestReport) {
        self.feed_outcome(feed, "ingested");
        let labels = FeedLabels {
            feed: feed.to_owned(),
        };
        self.intel_indicators
            .get_or_create(&labels)
            .inc_by(report.parse.indicators);
        self.intel_rejected
            .get_or_create(&labels)
            .inc_by(report.parse.problems);
    }

    /// A feed's fetch or upload that failed before a report.
    pub(crate) fn feed_failed(&self, feed: &str) {
        self.feed_outcome(feed, "failed");
    }

    fn feed_outcome(&self, feed: &str, outcome: &'static str) {
        self.intel_syncs
            .get_or_create(&FeedOutcomeLabels {
                feed: feed.to_owned(),
                outcome,
            })
            .inc();
    }
}

impl Fleet {
    fn register(registry: &mut Registry) -> Fleet {
        let f = Fleet {
            agents: Family::default(),
            agent_cert_earliest: Gauge::default(),
            agent_certs_expired: Gauge::default(),
            policy_score: Family::default(),
            group_score: Family::default(),
            policy_hosts: Family::default(),
            policy_results: Family::default(),
            index_entries: Gauge::default(),
            index_bytes: Gauge::default(),
            indicators: Family::default(),
            feed_up: Family::default(),
            feed_last_success: Family::default(),
            feed_interval: Family::default(),
            feed_failures: Family::default(),
            audit_entries: Gauge::default(),
            ca_expiry: Family::default(),
            omitted: Family::default(),
            collect_seconds: FloatGauge::default(),
            events_pending: Family::default(),
            events_dead: Family::default(),
            events_oldest: Family::default(),
            destination_up: Family::default(),
        };
        registry.register(
            "agents",
            "Enrolled agents by group and state: online (a heartbeat within the offline threshold), offline, revoked",
            f.agents.clone(),
        );
        registry.register_with_unit(
            "agent_certificate_earliest_expiry_timestamp",
            "When the first of the current agent certificates (of agents not revoked) expires, Unix time",
            Unit::Seconds,
            f.agent_cert_earliest.clone(),
        );
        registry.register(
            "agent_certificates_expired",
            "Agents, not revoked, whose certificate has expired: they cannot renew and must enrol again",
            f.agent_certs_expired.clone(),
        );
        registry.register(
            "policy_score_ratio",
            "A policy's fleet-wide score, 0 to 1: passed over passed and failed latest results of agents not revoked",
            f.policy_score.clone(),
        );
        registry.register(
            "group_policy_score_ratio",
            "A policy's score within one agent group, 0 to 1",
            f.group_score.clone(),
        );
        registry.register(
            "policy_hosts",
            "Agents of a group (not revoked) that reported a policy",
            f.policy_hosts.clone(),
        );
        registry.register(
            "policy_results",
            "Latest check results of a policy in a group, by status",
            f.policy_results.clone(),
        );
        registry.register(
            "intel_index_entries",
            "Indicators in this replica's lookup index",
            f.index_entries.clone(),
        );
        registry.register_with_unit(
            "intel_index_memory",
            "Memory the lookup index holds",
            Unit::Bytes,
            f.index_bytes.clone(),
        );
        registry.register(
            "intel_indicators",
            "Live indicators in the lookup index, by kind",
            f.indicators.clone(),
        );
        registry.register(
            "intel_feed_up",
            "1 when a feed's last fetch succeeded (or it has none yet), 0 when it failed",
            f.feed_up.clone(),
        );
        registry.register_with_unit(
            "intel_feed_last_success_timestamp",
            "A feed's last successful fetch (not-modified included), Unix time; 0 when never",
            Unit::Seconds,
            f.feed_last_success.clone(),
        );
        registry.register_with_unit(
            "intel_feed_interval",
            "How often a feed is due (feeds fetched on a schedule only)",
            Unit::Seconds,
            f.feed_interval.clone(),
        );
        registry.register(
            "intel_feed_consecutive_failures",
            "A feed's failed fetches since its last success",
            f.feed_failures.clone(),
        );
        registry.register(
            "audit_log_entries",
            "Entries in the tamper-evident audit log",
            f.audit_entries.clone(),
        );
        registry.register_with_unit(
            "ca_certificate_expiry_timestamp",
            "When the server's root and intermediate CA certificates expire, Unix time",
            Unit::Seconds,
            f.ca_expiry.clone(),
        );
        registry.register(
            "metrics_series_folded",
            "Groups or policies beyond the bounds whose series were summed into _other (kind: group, policy)",
            f.omitted.clone(),
        );
        registry.register(
            "events_pending",
            "Events queued for a destination and not yet delivered (due or backing off)",
            f.events_pending.clone(),
        );
        registry.register(
            "events_dead_letters",
            "A destination's dead letters: deliveries out of attempts, waiting for an operator",
            f.events_dead.clone(),
        );
        registry.register_with_unit(
            "events_oldest_pending_timestamp",
            "When the oldest event still queued for a destination happened, Unix time; 0 when none",
            Unit::Seconds,
            f.events_oldest.clone(),
        );
        registry.register(
            "event_destination_up",
            "1 when a destination's last attempt succeeded (or none was made), 0 when it failed",
            f.destination_up.clone(),
        );
        registry.register_with_unit(
            "metrics_collection_duration",
            "Time the last scrape spent reading the store",
            Unit::Seconds,
            f.collect_seconds.clone(),
        );
        f
    }
}

/// The error a scrape can meet.
pub(crate) type ScrapeError = rampart_store::StoreError;

/// Reads the fleet's gauges from the store and encodes every metric, as OpenMetrics when
/// `openmetrics`, else as the Prometheus text format.
pub(crate) async fn scrape(app: &App, openmetrics: bool) -> Result<String, ScrapeError> {
    let m = &app.metrics;
    let _one = m.scrape.lock().await;
    let started = Instant::now();
    let now = OffsetDateTime::now_utc();
    let census = app
        .store
        .agent_census(now, now - app.offline_after())
        .await?;
    let tallies = app.store.group_policy_tallies().await?;
    let feeds = app.store.intel_feeds().await?;
    let audit = app.store.audit_size().await?;
    let f = &m.fleet;

    // Agents: the largest groups one by one, the rest together.
    let mut by_group: BTreeMap<&str, u64> = BTreeMap::new();
    for g in &census.groups {
        *by_group.entry(g.group.as_str()).or_default() += g.agents;
    }
    let kept_groups = largest(&by_group, MAX_GROUPS);
    f.agents.clear();
    for g in &census.groups {
        let group = keep_or_other(&kept_groups, &g.group);
        f.agents
            .get_or_create(&GroupStateLabels {
                group,
                state: g.state.as_str(),
            })
            .inc_by(i64::try_from(g.agents).unwrap_or(i64::MAX));
    }
    f.agent_cert_earliest.set(
        census
            .earliest_cert_expiry
            .map_or(0, |t| t.unix_timestamp()),
    );
    f.agent_certs_expired
        .set(i64::try_from(census.expired_certs).unwrap_or(i64::MAX));

    // Scores: fleet-wide per policy over every group, per group for the kept ones.
    let mut by_policy: BTreeMap<&str, u64> = BTreeMap::new();
    for t in &tallies {
        *by_policy.entry(t.policy_id.as_str()).or_default() += t.hosts;
    }
    let kept_policies = largest(&by_policy, MAX_POLICIES);
    let mut fleet: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut groups: BTreeMap<(String, String), [u64; 6]> = BTreeMap::new();
    for t in &tallies {
        let policy = keep_or_other(&kept_policies, &t.policy_id);
        let group = keep_or_other(&kept_groups, &t.group);
        let e = fleet.entry(policy.clone()).or_default();
        e.0 += t.passed;
        e.1 += t.failed;
        let g = groups.entry((group, policy)).or_default();
        for (slot, n) in g.iter_mut().zip([
            t.hosts,
            t.passed,
            t.failed,
            t.not_applicable,
            t.waived,
            t.other,
        ]) {
            *slot += n;
        }
    }
    f.policy_score.clear();
    for (policy, (passed, failed)) in &fleet {
        if let Some(r) = ratio(*passed, *failed) {
            f.policy_score
                .get_or_create(&PolicyLabels {
                    policy: policy.clone(),
                })
                .set(r);
        }
    }
    f.group_score.clear();
    f.policy_hosts.clear();
    f.policy_results.clear();
    for ((group, policy), [hosts, passed, failed, na, waived, other]) in &groups {
        let labels = GroupPolicyLabels {
            group: group.clone(),
            policy: policy.clone(),
        };
        if let Some(r) = ratio(*passed, *failed) {
            f.group_score.get_or_create(&labels).set(r);
        }
        f.policy_hosts.get_or_create(&labels).set(gauge(*hosts));
        for (status, n) in [
            ("pass", passed),
            ("fail", failed),
            ("not_applicable", na),
            ("waived", waived),
            ("other", other),
        ] {
            f.policy_results
                .get_or_create(&GroupPolicyStatusLabels {
                    group: group.clone(),
                    policy: policy.clone(),
                    status,
                })
                .set(gauge(*n));
        }
    }
    f.omitted.clear();
    for (kind, all, kept) in [
        ("group", by_group.len(), kept_groups.len()),
        ("policy", by_policy.len(), kept_policies.len()),
    ] {
        f.omitted
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .set(i64::try_from(all.saturating_sub(kept)).unwrap_or(i64::MAX));
    }

    // Threat intel.
    let (entries, bytes, kinds) = app
        .intel
        .with_index(|i| (i.len(), i.memory_bytes(), i.count_by_kind()));
    f.index_entries.set(gauge(entries as u64));
    f.index_bytes.set(gauge(bytes as u64));
    f.indicators.clear();
    for (kind, live) in kinds {
        f.indicators
            .get_or_create(&KindLabels {
                kind: kind.as_str().to_owned(),
            })
            .set(gauge(live as u64));
    }
    f.feed_up.clear();
    f.feed_last_success.clear();
    f.feed_interval.clear();
    f.feed_failures.clear();
    for feed in &feeds {
        let labels = FeedLabels {
            feed: feed.name.clone(),
        };
        f.feed_up
            .get_or_create(&labels)
            .set(i64::from(feed.last_error.is_none()));
        f.feed_last_success
            .get_or_create(&labels)
            .set(feed.last_success.unwrap_or(0));
        // Only feeds fetched on a schedule are due: a file-only or disabled feed never goes
        // stale, and leaving its interval out keeps it out of the staleness alert.
        if feed.url.is_some() && feed.enabled {
            f.feed_interval
                .get_or_create(&labels)
                .set(feed.interval_secs);
        }
        f.feed_failures.get_or_create(&labels).set(feed.failures);
    }
    f.audit_entries.set(gauge(audit));
    let destinations = app.store.destinations().await?;
    let backlogs: BTreeMap<String, rampart_store::Backlog> =
        app.store.backlogs().await?.into_iter().collect();
    f.events_pending.clear();
    f.events_dead.clear();
    f.events_oldest.clear();
    f.destination_up.clear();
    for d in &destinations {
        let labels = DestinationLabels {
            destination: d.def.name.clone(),
        };
        let b = backlogs.get(&d.def.name).copied().unwrap_or_default();
        f.events_pending
            .get_or_create(&labels)
            .set(gauge(b.pending));
        f.events_dead.get_or_create(&labels).set(gauge(b.dead));
        f.events_oldest
            .get_or_create(&labels)
            .set(b.oldest.map_or(0, |t| t.unix_timestamp()));
        f.destination_up
            .get_or_create(&labels)
            .set(i64::from(d.last_error.is_none()));
    }
    let ca = app.ca();
    f.ca_expiry.clear();
    for (certificate, at) in [
        ("root", ca.root_not_after()),
        ("intermediate", ca.intermediate_not_after()),
    ] {
        f.ca_expiry
            .get_or_create(&CertificateLabels { certificate })
            .set(at.unix_timestamp());
    }
    f.collect_seconds.set(started.elapsed().as_secs_f64());

    let mut out = String::new();
    let encoded = if openmetrics {
        prometheus_client::encoding::text::encode(&mut out, &m.registry)
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut out, &m.registry)
    };
    // Writing into a String cannot fail; an encoder error would be a bug, not the client's.
    if encoded.is_err() {
        tracing::error!("encoding the metrics failed");
    }
    Ok(out)
}

/// The `n` keys with the largest values (ties by name), the ones reported on their own.
fn largest<'a>(by: &BTreeMap<&'a str, u64>, n: usize) -> std::collections::HashSet<&'a str> {
    if by.len() <= n {
        return by.keys().copied().collect();
    }
    let mut all: Vec<(&str, u64)> = by.iter().map(|(k, v)| (*k, *v)).collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    all.into_iter().take(n).map(|(k, _)| k).collect()
}

fn keep_or_other(kept: &std::collections::HashSet<&str>, name: &str) -> String {
    if kept.contains(name) {
        name.to_owned()
    } else {
        OTHER.to_owned()
    }
}

/// Passed over decided, 0 to 1; none when nothing was decided (a missing series, not a 0 that
/// would fire a score alert).
fn ratio(passed: u64, failed: u64) -> Option<f64> {
    let decided = passed + failed;
    (decided > 0).then(|| passed as f64 / decided as f64)
}

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_is_passed_over_decided_and_absent_without_decisions() {
        assert_eq!(ratio(3, 1), Some(0.75));
        assert_eq!(ratio(0, 4), Some(0.0));
        assert_eq!(ratio(0, 0), None);
    }

    #[test]
    fn the_largest_are_kept_and_ties_go_by_name() {
        let by: BTreeMap<&str, u64> = [("a", 1), ("b", 5), ("c", 5), ("d", 2)].into();
        let kept = largest(&by, 2);
        assert!(kept.contains("b") && kept.contains("c") && kept.len() == 2);
        let kept = largest(&by, 3);
        assert!(kept.contains("d") && !kept.contains("a"));
        assert_eq!(largest(&by, 10).len(), 4);
        assert_eq!(keep_or_other(&kept, "a"), OTHER);
        assert_eq!(keep_or_other(&kept, "b"), "b");
    }
}
