//! The audit log as the server keeps it: one writer task per replica appends what handlers
//! record, in batches, and signs checkpoints every N entries or T seconds with the log key.
//!
//! A handler's `record` returns once its entry is committed, so an action the API reports as
//! done is in the log (or the caller is told it could not be recorded). Batching makes that
//! cheap under load: entries queued while a transaction commits go into the next one. The log
//! key is Rampart's own Ed25519 key, created at first start, stored in the database encrypted
//! with the operator's passphrase like the CA keys, and separate from them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rampart_audit::{Event, LogKey, Outcome};
use rampart_store::{AuditQuery, CaMaterial, Store};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot, watch};

use crate::ServerConfig;
use crate::app::App;
use crate::error::{ApiError, ServerError};

/// The name of the log key's row among the signing material.
const KEY_ROW: &str = "audit-log";

/// RFC 8410's PKCS#8 v1 prefix of an Ed25519 private key: the 32-byte seed follows. The key
/// is stored in the same passphrase-encrypted PKCS#8 form as the CA's.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Entries written in one transaction at most.
const BATCH: usize = 256;

/// When checkpoints are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// After this many new entries.
    pub every_entries: u64,
    /// At least this often while there are new entries.
    pub every: Duration,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy {
            every_entries: 1000,
            every: Duration::from_secs(10),
        }
    }
}

struct Pending {
    event: Event,
    done: oneshot::Sender<Result<u64, String>>,
}

/// What handlers append through.
pub(crate) struct AuditLog {
    key: LogKey,
    tx: mpsc::Sender<Pending>,
    rx: Mutex<Option<mpsc::Receiver<Pending>>>,
    /// Held while a whole-log verification runs: one at a time per replica, as each reads
    /// every entry.
    verifying: tokio::sync::Mutex<()>,
}

/// What a verification of the stored log found: the entries recomputed into the tree and
/// compared with every signed checkpoint, each checkpoint's signature checked with the log
/// key. It shows that the database holds what the log signed; an auditor who does not trust
/// this server runs `rampart audit verify` with the key they pinned.
#[derive(Debug, Clone)]
pub(crate) struct Verification {
    /// Entries read.
    pub entries: u64,
    /// Checkpoints read, and those whose root matched.
    pub checkpoints: u64,
    /// See `checkpoints`.
    pub checkpoints_matched: u64,
    /// The largest checkpoint's size and time.
    pub latest: Option<(u64, OffsetDateTime)>,
    /// Entries after it (not yet signed).
    pub unsigned: u64,
    /// Everything wrong, in log order; empty when the log is intact.
    pub problems: Vec<String>,
    /// How long it took.
    pub took: Duration,
}

impl AuditLog {
    pub(crate) fn new(key: LogKey) -> AuditLog {
        let (tx, rx) = mpsc::channel(4 * BATCH);
        AuditLog {
            key,
            tx,
            rx: Mutex::new(Some(rx)),
            verifying: tokio::sync::Mutex::new(()),
        }
    }

    /// Verifies the whole stored log as far as it reached when this began. `None` when
    /// another verification is running on this replica.
    pub(crate) async fn verify_stored(
        &self,
        store: &Store,
    ) -> Result<Option<Verification>, ApiError> {
        let Ok(_running) = self.verifying.try_lock() else {
            return Ok(None);
        };
        let began = std::time::Instant::now();
        let end = store.audit_size().await?;
        let verifier =
            rampart_audit::LogVerifier::new(self.key.vkey()).map_err(ApiError::internal)?;
        let mut problems = Vec::new();
        let mut signed = Vec::new();
        let mut after = 0;
        loop {
            let page = store.audit_checkpoints(after, 1000).await?;
            let full = page.len() == 1000;
            for c in page {
                after = c.size;
                // Checkpoints signed after the verification began cover entries it does not
                // read.
                if c.size > end {
                    continue;
                }
                match verifier.open(&c.note) {
                    Ok(cp) if cp.size == c.size => signed.push(cp),
                    Ok(cp) => problems.push(format!(
                        "checkpoint listed as size {} signs size {}",
                        c.size, cp.size
                    )),
                    Err(e) => problems.push(format!("checkpoint of size {}: {e}", c.size)),
                }
            }
            if !full {
                break;
            }
        }
        let checkpoints = signed.len() as u64;
        let mut check = rampart_audit::LogCheck::new(signed, None);
        let mut from = 0;
        while from < end {
            let limit = u32::try_from((end - from).min(1000)).unwrap_or(1000);
            let rows = store.audit_entries(from, limit).await?;
            let Some(last) = rows.last() else { break };
            from = last.index + 1;
            for r in &rows {
                check.push(r.body.as_bytes());
            }
        }
        let report = check.finish();
        problems.extend(report.problems.iter().map(ToString::to_string));
        Ok(Some(Verification {
            entries: report.entries,
            checkpoints,
            checkpoints_matched: report.checkpoints_matched,
            latest: report.latest.as_ref().map(|c| (c.size, c.time)),
            unsigned: report.unsigned,
            problems,
            took: began.elapsed(),
        }))
    }

    /// The log key (its public half is what auditors pin).
    pub(crate) fn key(&self) -> &LogKey {
        &self.key
    }

    /// Appends `event` and waits until it is committed; returns its index.
    pub(crate) async fn record(&self, event: Event) -> Result<u64, ApiError> {
        self.append(event).await
    }

    async fn append(&self, event: Event) -> Result<u64, ApiError> {
        let action = event.action.clone();
        let (done, answer) = oneshot::channel();
        let failed = |why: String| {
            tracing::error!(action = %action, error = %why, "audit log write failed");
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                "the audit log could not record this request; see the server log",
            )
        };
        self.tx
            .send(Pending { event, done })
            .await
            .map_err(|_| failed("the audit writer has stopped".into()))?;
        match answer.await {
            Ok(Ok(index)) => Ok(index),
            Ok(Err(e)) => Err(failed(e)),
            Err(_) => Err(failed("the audit writer has stopped".into())),
        }
    }
}

/// The writer: batches, appends, checkpoints. On shutdown it keeps serving until the queue has
/// been quiet for a moment (requests still finishing record their entries), then signs a last
/// checkpoint so the whole log is covered.
pub(crate) async fn writer(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let Some(mut rx) = app
        .audit
        .rx
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    else {
        return;
    };
    let policy = app.config.audit_checkpoints;
    let mut tick = tokio::time::interval(policy.every);
    let mut signed = match app.store.audit_latest_checkpoint().await {
        Ok(c) => c.map_or(0, |c| c.size),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the latest audit checkpoint");
            0
        }
    };
    let mut stopping = false;
    loop {
        let first = if stopping {
            match tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
                Ok(Some(p)) => p,
                _ => break,
            }
        } else {
            tokio::select! {
                _ = shutdown.changed() => { stopping = true; continue }
                _ = tick.tick() => {
                    checkpoint(&app, 1).await;
                    continue;
                }
                p = rx.recv() => match p { Some(p) => p, None => break },
            }
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let events: Vec<Event> = batch.iter().map(|p| p.event.clone()).collect();
        let appended = app
            .store
            .audit_append(&events, OffsetDateTime::now_utc())
            .await;
        match appended {
            Ok(first) => {
                app.wrote_events();
                let size = first + events.len() as u64;
                for (i, p) in batch.into_iter().enumerate() {
                    let _ = p.done.send(Ok(first + i as u64));
                }
                if size.saturating_sub(signed) >= policy.every_entries {
                    checkpoint(&app, policy.every_entries).await;
                    // Signed here or by another replica: either way counted from here.
                    signed = size;
                }
            }
            Err(e) => {
                let why = e.to_string();
                for p in batch {
                    let _ = p.done.send(Err(why.clone()));
                }
            }
        }
    }
    checkpoint(&app, 1).await;
}

async fn checkpoint(app: &App, min_new: u64) {
    match app
        .store
        .audit_checkpoint(app.audit.key(), OffsetDateTime::now_utc(), min_new)
        .await
    {
        Ok(Some(c)) => tracing::debug!(size = c.size, "audit checkpoint signed"),
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "audit checkpoint failed"),
    }
}

/// Loads the log key, creating it on first start (a replica that loses the race loads the
/// winner's). Its public half is stored beside it and must match: a swapped row would let
/// whoever swapped it sign checkpoints.
pub(crate) async fn load_or_create_key(
    store: &Store,
    passphrase: &[u8],
    root_fingerprint: &str,
) -> Result<LogKey, ServerError> {
    // The log's name: unique to this installation (its CA), stable across restarts.
    let origin = format!(
        "rampart.audit/{}",
        &root_fingerprint[..root_fingerprint.len().min(16)]
    );
    if store.ca_material(KEY_ROW).await?.is_none() {
        let key = LogKey::generate(&origin).map_err(|e| ServerError::AuditKey(e.to_string()))?;
        let pkcs8 = [&ED25519_PKCS8_PREFIX[..], key.seed()].concat();
        let material = CaMaterial {
            name: KEY_ROW.into(),
            cert_pem: key.vkey().to_owned(),
            key_pem: rampart_pki::encrypt_key(&pkcs8, passphrase, KEY_ROW)?,
            created_at: OffsetDateTime::now_utc(),
        };
        if store.insert_ca_material_if_absent(&material).await? {
            tracing::info!(vkey = %key.vkey(), "created the audit log key");
        }
    }
    let row = store
        .ca_material(KEY_ROW)
        .await?
        .ok_or_else(|| ServerError::AuditKey("the key row disappeared".into()))?;
    let pkcs8 = rampart_pki::decrypt_key(&row.key_pem, passphrase, KEY_ROW)?;
    let seed: [u8; 32] = pkcs8
        .strip_prefix(&ED25519_PKCS8_PREFIX[..])
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| ServerError::AuditKey("the stored key is not an Ed25519 key".into()))?;
    let key = LogKey::from_seed(&origin, seed).map_err(|e| ServerError::AuditKey(e.to_string()))?;
    if key.vkey() != row.cert_pem {
        return Err(ServerError::AuditKey(format!(
            "the stored public key {:?} is not the private key's {:?}: the database was changed",
            row.cert_pem,
            key.vkey()
        )));
    }
    Ok(key)
}

/// The settings an auditor would want to see change, as text (never the passphrase).
fn settings(config: &ServerConfig) -> BTreeMap<String, String> {
    let mut s = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        s.insert(k.to_owned(), v);
    };
    put(
        "database",
        config
            .database_url
            .as_deref()
            .map_or_else(|| "sqlite".to_owned(), rampart_store::redact_url),
    );
    put("listen", config.listen.to_string());
    put("agent_listen", config.agent_listen.to_string());
    put("names", config.names.join(","));
    put("public_url", config.public_url.clone().unwrap_or_default());
    put(
        "agent_public_url",
        config.agent_public_url.clone().unwrap_or_default(),
    );
    put("heartbeat_secs", config.heartbeat.as_secs().to_string());
    put(
        "offline_after_missed",
        config.offline_after_missed.to_string(),
    );
    put("retention_days", config.retention_days.to_string());
    put(
        "event_retention_days",
        config.event_retention_days.to_string(),
    );
    put("max_body_bytes", config.max_body_bytes.to_string());
    put("max_auth_failures", config.max_auth_failures.to_string());
    put("rate_limits", format!("{:?}", config.rate_limits));
    put(
        "session_idle_secs",
        config.session_idle.as_secs().to_string(),
    );
    put("session_max_secs", config.session_max.as_secs().to_string());
    put("intel_sync", config.intel_sync.to_string());
    put(
        "audit_checkpoint_entries",
        config.audit_checkpoints.every_entries.to_string(),
    );
    put(
        "audit_checkpoint_secs",
        config.audit_checkpoints.every.as_secs().to_string(),
    );
    s
}

/// Records this start with its settings and, when they differ from the last start's, what
/// changed: configuration lives in flags and files, so each start is where it can change.
pub(crate) async fn record_start(app: &App) -> Result<(), ApiError> {
    let now = settings(&app.config);
    let last = app
        .store
        .audit_search(&AuditQuery {
            action: Some("server.start".into()),
            limit: 1,
            ..AuditQuery::default()
        })
        .await?;
    let before = last
        .first()
        .and_then(|row| rampart_audit::Entry::parse(row.body.as_bytes()).ok())
        .map(|e| e.event.detail);
    let mut start = Event::new("system", "server.start", "server", Outcome::Success)
        .detail("version", env!("CARGO_PKG_VERSION"));
    start.detail.extend(now.clone());
    app.audit.record(start).await?;
    if let Some(mut before) = before {
        before.remove("version");
        let mut change = Event::new("system", "config.change", "server", Outcome::Success);
        for (k, v) in &now {
            let old = before.get(k).map_or("", String::as_str);
            if old != v {
                change.detail.insert(k.clone(), format!("{old} → {v}"));
            }
        }
        if !change.detail.is_empty() {
            app.audit.record(change).await?;
        }
    }
    Ok(())
}
