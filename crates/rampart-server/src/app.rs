//! Shared server state and the background tasks that keep it current.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rampart_pki::verifier::RevocationSet;
use rampart_pki::{Ca, TokenSigner};
use rampart_store::Store;
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};

use crate::ServerConfig;
use crate::error::ApiError;
use crate::ingest::IngestJob;
use crate::intel::Intel;

/// Everything request handlers share.
pub(crate) struct App {
    pub store: Store,
    ca: RwLock<Arc<Ca>>,
    pub tokens: TokenSigner,
    pub revoked: Arc<RevocationSet>,
    pub config: ServerConfig,
    /// Base URL of the API port.
    pub api_url: String,
    /// Base URL of the agent port.
    pub agent_url: String,
    /// Audience enrolment tokens are bound to.
    pub enrol_audience: String,
    /// Heartbeats not yet written: flushed in batches so heartbeats cost no write each.
    beats: Mutex<BTreeMap<String, OffsetDateTime>>,
    pub ingest_tx: mpsc::Sender<IngestJob>,
    pub ingest_rx: Mutex<Option<mpsc::Receiver<IngestJob>>>,
    /// Threat intelligence: the lookup index and feed state.
    pub intel: Intel,
    /// Failed authentications per client address (logged and rate-limited).
    pub auth_failures: crate::routes::auth_limit::AuthFailures,
    /// Request rates per client (logins, enrolments, lookups, exports).
    pub rates: crate::routes::rate_limit::RateLimiter,
    /// Turns at an argon2id password check (memory- and CPU-hard: bounded).
    pub password_checks: tokio::sync::Semaphore,
    /// The tamper-evident audit log.
    pub audit: crate::audit::AuditLog,
    /// The OpenID provider's relying party, when configured.
    pub oidc: Option<crate::oidc::Oidc>,
    /// Attestation signing keys, as decrypted by this replica.
    pub attest: crate::attest::Attestor,
    /// Dashboards watching for runs.
    pub live: crate::live::Live,
    /// Prometheus metrics.
    pub metrics: crate::metrics::Metrics,
    /// Wakes this replica's event dispatcher when it wrote events.
    pub events_wake: tokio::sync::Notify,
    /// Counts this replica's writes of events: live streams (`GET /api/v1/events`) wait on it
    /// (and poll for other replicas' writes).
    pub events_written: tokio::sync::watch::Sender<u64>,
    /// The client webhooks are sent with: no redirects (a destination is the URL an admin
    /// gave, not wherever it points), no cookies.
    pub events_http: reqwest::Client,
    /// SHA-256 of policy versions already looked up (versions never change).
    policy_digests: Mutex<std::collections::HashMap<(String, i64), String>>,
    /// Per policy version, what each check states (versions never change).
    policy_checks: Mutex<std::collections::HashMap<(String, i64), Arc<PolicyChecks>>>,
}

/// Check id → what one policy version states of the check.
pub type PolicyChecks = std::collections::HashMap<String, CheckMeta>;

/// What the server knows of a check from its policy's stored content: what a report prints
/// beside its results, and the frameworks its scores count towards.
#[derive(Debug, Clone)]
pub struct CheckMeta {
    /// Title.
    pub title: String,
    /// Severity.
    pub severity: rampart_core::Severity,
    /// Why it matters.
    pub rationale: String,
    /// How to fix a failure.
    pub remediation: String,
    /// Compliance mappings as written: key → control ids.
    pub compliance: std::collections::BTreeMap<String, Vec<String>>,
    /// The frameworks those keys name (MITRE left out), sorted, once each.
    pub frameworks: Vec<rampart_core::Framework>,
}

impl App {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        ca: Ca,
        tokens: TokenSigner,
        config: ServerConfig,
        api_url: String,
        agent_url: String,
        intel: Intel,
        audit_key: rampart_audit::LogKey,
        oidc: Option<crate::oidc::Oidc>,
    ) -> App {
        let (ingest_tx, ingest_rx) = mpsc::channel(1024);
        let store_backend = store.backend();
        App {
            store,
            ca: RwLock::new(Arc::new(ca)),
            tokens,
            revoked: Arc::new(RevocationSet::new()),
            enrol_audience: format!("{api_url}/api/v1/enrol"),
            auth_failures: crate::routes::auth_limit::AuthFailures::new(config.max_auth_failures),
            rates: crate::routes::rate_limit::RateLimiter::new(config.rate_limits),
            password_checks: tokio::sync::Semaphore::new(crate::routes::CONCURRENT_PASSWORD_CHECKS),
            config,
            api_url,
            agent_url,
            beats: Mutex::new(BTreeMap::new()),
            ingest_tx,
            ingest_rx: Mutex::new(Some(ingest_rx)),
            intel,
            audit: crate::audit::AuditLog::new(audit_key),
            oidc,
            attest: crate::attest::Attestor::new(),
            live: crate::live::Live::new(),
            metrics: crate::metrics::Metrics::new(store_backend),
            events_wake: tokio::sync::Notify::new(),
            events_written: tokio::sync::watch::Sender::new(0),
            events_http: reqwest::Client::builder()
                .user_agent(concat!("rampart/", env!("CARGO_PKG_VERSION")))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            policy_digests: Mutex::new(std::collections::HashMap::new()),
            policy_checks: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Wakes the dispatcher and the live streams: this replica wrote events.
    pub fn wrote_events(&self) {
        self.events_wake.notify_one();
        self.events_written.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The SHA-256 of a policy version's content, `None` when it does not exist. Versions are
    /// immutable, so a digest once read is kept (up to a bound), and posting runs costs no
    /// read of the policy each time.
    pub async fn policy_digest(
        &self,
        policy_id: &str,
        version: i64,
    ) -> Result<Option<String>, rampart_store::StoreError> {
        let key = (policy_id.to_owned(), version);
        if let Some(d) = self
            .policy_digests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(Some(d.clone()));
        }
        let found = self
            .store
            .policy_versions(policy_id)
            .await?
            .into_iter()
            .find(|v| v.version == version)
            .map(|v| v.digest);
        if let Some(d) = &found {
            let mut cache = self
                .policy_digests
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if cache.len() >= 10_000 {
                cache.clear();
            }
            cache.insert(key, d.clone());
        }
        Ok(found)
    }

    /// Every check of a policy version as its stored content states it (read and parsed once
    /// per version); `None` when the version does not exist.
    pub async fn policy_checks(
        &self,
        policy_id: &str,
        version: i64,
    ) -> Result<Option<Arc<PolicyChecks>>, ApiError> {
        let key = (policy_id.to_owned(), version);
        if let Some(m) = self
            .policy_checks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(Some(m.clone()));
        }
        let Some((v, content)) = self.store.policy_version(policy_id, version).await? else {
            return Ok(None);
        };
        let policy = rampart_policy::load_bytes(
            &content,
            &v.file_name,
            rampart_policy::LoadOptions::default(),
        )
        .map_err(|e| ApiError::internal(format!("stored policy {policy_id}@{version}: {e}")))?;
        let map: PolicyChecks = policy
            .checks
            .into_iter()
            .map(|c| {
                let mut frameworks: Vec<_> = c
                    .compliance
                    .keys()
                    .filter(|k| !rampart_core::Framework::is_mitre_key(k))
                    .map(|k| rampart_core::Framework::from_key(k))
                    .collect();
                frameworks.sort();
                frameworks.dedup();
                let meta = CheckMeta {
                    title: c.title,
                    severity: c.severity,
                    rationale: c.rationale,
                    remediation: c.remediation,
                    compliance: c.compliance,
                    frameworks,
                };
                (c.id, meta)
            })
            .collect();
        let map = Arc::new(map);
        let mut cache = self.policy_checks.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= 1000 {
            cache.clear();
        }
        cache.insert(key, map.clone());
        Ok(Some(map))
    }

    /// The CA in use.
    pub fn ca(&self) -> Arc<Ca> {
        self.ca.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Records a heartbeat in memory.
    pub fn beat(&self, agent_id: &str, at: OffsetDateTime) {
        self.beats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(agent_id.to_string(), at);
    }

    /// Writes pending heartbeats.
    pub async fn flush_heartbeats(&self) {
        let pending = std::mem::take(&mut *self.beats.lock().unwrap_or_else(|p| p.into_inner()));
        if pending.is_empty() {
            return;
        }
        if let Err(e) = self.store.touch_agents(&pending).await {
            tracing::warn!(error = %e, agents = pending.len(), "could not record heartbeats; will retry");
            // They wait for the next flush, unless a newer beat came in.
            let mut beats = self.beats.lock().unwrap_or_else(|p| p.into_inner());
            for (id, at) in pending {
                beats.entry(id).or_insert(at);
            }
        }
    }

    /// Reloads the revocation set from the store (revocations made by other replicas).
    pub async fn refresh_revocations(&self) -> Result<(), rampart_store::StoreError> {
        let now = OffsetDateTime::now_utc();
        let serials: HashSet<String> = self
            .store
            .revoked_certificates(now)
            .await?
            .into_iter()
            .map(|r| r.serial)
            .collect();
        self.revoked.replace(serials);
        Ok(())
    }

    /// After how long without a heartbeat an agent counts as offline.
    pub fn offline_after(&self) -> time::Duration {
        let secs =
            self.config.heartbeat.as_secs() * u64::from(self.config.offline_after_missed.max(1));
        time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX))
    }
}

/// SQLite's write-ahead log copied into the database a few times a second, beside the writer
/// instead of inside one of its commits ([`rampart_store::Store::checkpoint_wal`]). Nothing to
/// do on PostgreSQL.
pub(crate) async fn wal_checkpoints(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    if app.store.backend() != rampart_store::Backend::Sqlite {
        return;
    }
    // At the fleet's full ingestion rate the log grows by a few MiB in this time: a copy of a
    // few milliseconds on the other core, far below the writer's own backstop.
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => match app.store.checkpoint_wal().await {
                Ok(_) => failing = false,
                // Once per run of failures: the writer's own checkpoints still bound the log.
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "could not checkpoint the SQLite write-ahead log; the writer will");
                }
                Err(_) => {}
            },
        }
    }
}

/// Heartbeat flushing, revocation refresh and retention, until shutdown.
pub(crate) async fn background(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let mut flush = tokio::time::interval(Duration::from_secs(1));
    let mut revocations = tokio::time::interval(app.config.revocation_refresh);
    let mut retention = tokio::time::interval(Duration::from_secs(3600));
    // Silence is noticed within a heartbeat interval, at most 15 s after the threshold.
    let mut offline = tokio::time::interval(app.config.heartbeat.min(Duration::from_secs(15)));
    let started = OffsetDateTime::now_utc();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = flush.tick() => app.flush_heartbeats().await,
            _ = revocations.tick() => {
                if let Err(e) = app.refresh_revocations().await {
                    tracing::warn!(error = %e, "could not refresh the revocation list; keeping the last one");
                }
            }
            _ = offline.tick() => {
                let now = OffsetDateTime::now_utc();
                // Agents cannot beat while the server is down: only once it has been up for a
                // whole offline threshold is silence theirs, not the server's.
                if now - started >= app.offline_after() {
                    app.flush_heartbeats().await;
                    match app.store.announce_offline(now, now - app.offline_after()).await {
                        Ok(0) => {}
                        Ok(n) => {
                            tracing::info!(agents = n, "agents went offline");
                            app.wrote_events();
                        }
                        Err(e) => tracing::warn!(error = %e, "could not announce offline agents"),
                    }
                }
            }
            _ = retention.tick() => {
                let before = OffsetDateTime::now_utc() - time::Duration::days(i64::from(app.config.retention_days));
                match app.store.prune_runs(before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(runs = n, retention_days = app.config.retention_days, "pruned old runs"),
                    Err(e) => tracing::warn!(error = %e, "retention pruning failed"),
                }
                let before = OffsetDateTime::now_utc() - time::Duration::days(i64::from(app.config.event_retention_days));
                match app.store.prune_events(before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(events = n, event_retention_days = app.config.event_retention_days, "pruned old events"),
                    Err(e) => tracing::warn!(error = %e, "event pruning failed"),
                }
            }
        }
    }
}
