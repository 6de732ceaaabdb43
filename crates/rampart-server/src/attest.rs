//! Attestations as the server issues them: its signing keys (created at first start, rotated
//! on request, published as a JWKS), one attestation per stored run, and offline bundles.
//!
//! The issue is recorded in the audit log first, and the JWS names that entry and the signed
//! checkpoint that covers it: an attestation that is not in the log cannot be made to verify,
//! even by someone holding the signing key. Keys are separate from the CA and from the log key,
//! and stored encrypted with the operator's passphrase. Every replica reads which key is
//! current before signing, so a rotation on one replica is followed by all at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use rampart_attest::evidence::{self, Evidence, StoredRun};
use rampart_attest::{
    Alg, Bundle, Claims, JwkSet, KeyState, LogAnchor, LogClaim, SigningKey, claims,
};
use rampart_audit::{Event, Outcome};
use rampart_pki::AgentIdentity;
use rampart_store::{
    Assignment, AttestationKey, NewRun, Rotation, RunEvidence, StoredAttestation, Target,
};
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};

use crate::app::App;
use crate::error::ApiError;

/// How long after its agent certificate expires an attestation may stay valid: an agent renews
/// at two thirds of its certificate's life, so an hour covers a renewal delayed by a restart.
pub const CERT_GRACE: Duration = Duration::from_secs(3600);

/// The longest an attestation is ever valid, and so how long a retired key stays in the JWKS:
/// every attestation it signed has expired by then.
pub const MAX_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// The lifetime's base when the run's policy has no schedule (manual and on-demand runs).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// How long a next key must have been published before a rotation makes it sign (without
/// `force`): verifiers that cache the JWKS learn it before they meet a signature by it.
pub const MIN_PUBLISHED: Duration = Duration::from_secs(600);

/// Attestations issued in one batch at most.
const BATCH: usize = 256;

/// The signing keys this replica has decrypted, by kid, and the queue of runs to attest: under
/// load, one batch logs, signs and stores what many uploads queued (SQLite has one writer,
/// which the runs' own transactions also need).
pub(crate) struct Attestor {
    keys: Mutex<HashMap<String, Arc<SigningKey>>>,
    /// Held while a key is decrypted, so that the start's warm-up and a first batch racing it
    /// derive the passphrase's key once.
    opening: tokio::sync::Mutex<()>,
    drafts: mpsc::Sender<Draft>,
    drafts_rx: Mutex<Option<mpsc::Receiver<Draft>>>,
}

impl Attestor {
    pub(crate) fn new() -> Attestor {
        let (drafts, drafts_rx) = mpsc::channel(4 * BATCH);
        Attestor {
            keys: Mutex::new(HashMap::new()),
            opening: tokio::sync::Mutex::new(()),
            drafts,
            drafts_rx: Mutex::new(Some(drafts_rx)),
        }
    }

    /// Queues the attestation of a run just stored; the issuer logs, signs and stores it in a
    /// moment (the agent's receipt does not wait: the run is what must be durable first).
    pub(crate) async fn enqueue(&self, draft: Draft) -> Result<(), ApiError> {
        self.drafts
            .send(draft)
            .await
            .map_err(|_| ApiError::internal("the attestation issuer has stopped"))
    }

    fn cached(&self, kid: &str) -> Option<Arc<SigningKey>> {
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(kid)
            .cloned()
    }

    /// The key signing now: read from the store each time (rotations happen on any replica),
    /// decrypted once per replica.
    async fn current(&self, app: &App) -> Result<Arc<SigningKey>, ApiError> {
        let kid = match app.store.current_attestation_kid().await? {
            Some(kid) => kid,
            None => {
                ensure_keys(app).await?;
                app.store.current_attestation_kid().await?.ok_or_else(|| {
                    ApiError::internal("no current attestation key after creating one")
                })?
            }
        };
        if let Some(key) = self.cached(&kid) {
            return Ok(key);
        }
        let _opening = self.opening.lock().await;
        if let Some(key) = self.cached(&kid) {
            return Ok(key);
        }
        let row = app
            .store
            .attestation_key(&kid)
            .await?
            .ok_or_else(|| ApiError::internal(format!("attestation key {kid} disappeared")))?;
        // The key derivation (scrypt) holds a core for a few hundred milliseconds: not on a
        // thread that serves requests.
        let passphrase = app.config.passphrase.clone();
        let key = tokio::task::spawn_blocking(move || open_key(&row, &passphrase))
            .await
            .map_err(ApiError::internal)??;
        let key = Arc::new(key);
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(kid, key.clone());
        Ok(key)
    }
}

/// Decrypts a stored key and checks it is the key its row says: a swapped private key would
/// sign under another key's name.
fn open_key(row: &AttestationKey, passphrase: &[u8]) -> Result<SigningKey, ApiError> {
    let alg: Alg = row.alg.parse().map_err(ApiError::internal)?;
    let pkcs8 = rampart_pki::decrypt_key(&row.private_key, passphrase, "attestation key")
        .map_err(ApiError::internal)?;
    let key = SigningKey::from_pkcs8(alg, &pkcs8).map_err(ApiError::internal)?;
    if key.kid() != row.kid {
        return Err(ApiError::internal(format!(
            "the stored attestation key {} is another key ({}): the database was changed",
            row.kid,
            key.kid()
        )));
    }
    Ok(key)
}

/// A new key, encrypted for storage.
fn new_key(
    alg: Alg,
    state: &str,
    now: OffsetDateTime,
    passphrase: &[u8],
) -> Result<AttestationKey, ApiError> {
    let key = SigningKey::generate(alg).map_err(ApiError::internal)?;
    Ok(AttestationKey {
        kid: key.kid().to_owned(),
        alg: alg.as_str().to_owned(),
        state: state.to_owned(),
        public_jwk: serde_json::to_string(key.public_jwk()).map_err(ApiError::internal)?,
        private_key: rampart_pki::encrypt_key(key.pkcs8(), passphrase, "attestation key")
            .map_err(ApiError::internal)?,
        created_at: now,
        activated_at: (state == "current").then_some(now),
        retired_at: None,
    })
}

fn key_event(action: &str, key: &AttestationKey) -> Event {
    Event::new(
        "system",
        action,
        format!("attestation-key:{}", key.kid),
        Outcome::Success,
    )
    .detail("alg", key.alg.clone())
    .detail("state", key.state.clone())
    .detail("public_jwk", key.public_jwk.clone())
}

/// Decrypts the signing key once the server has started, so that the first uploads'
/// attestations do not wait for it: the passphrase's key derivation took ~4 % of the server's
/// CPU in the first seconds of `rampart bench fleet`'s ingestion (docs/performance.md, "Fleet
/// server"). Failing here is not fatal: the first attestation tries again and says why.
pub(crate) async fn open_signing_key(app: Arc<App>) {
    if let Err(e) = app.attest.current(&app).await {
        tracing::error!(error = ?e, "could not open the attestation signing key");
    }
}

/// Creates the first current and next keys unless there are some; records them in the audit
/// log when this replica's were the ones stored.
pub(crate) async fn ensure_keys(app: &App) -> Result<(), ApiError> {
    if app.store.current_attestation_kid().await?.is_some() {
        return Ok(());
    }
    let now = OffsetDateTime::now_utc();
    let alg = app.config.attestation_alg;
    let (current, next) = {
        let passphrase = app.config.passphrase.clone();
        tokio::task::spawn_blocking(move || {
            Ok::<_, ApiError>((
                new_key(alg, "current", now, &passphrase)?,
                new_key(alg, "next", now, &passphrase)?,
            ))
        })
        .await
        .map_err(ApiError::internal)??
    };
    if app.store.init_attestation_keys(&current, &next).await? {
        tracing::info!(current = %current.kid, next = %next.kid, %alg, "created the attestation signing keys");
        for k in [&current, &next] {
            app.audit
                .record(key_event("attestation.key.create", k))
                .await?;
        }
    }
    Ok(())
}

/// Rotates the keys: the next key signs, the current one retires, a new next key (of the
/// configured algorithm) is published. Without `force`, refused while the next key has been
/// published for less than [`MIN_PUBLISHED`].
pub(crate) async fn rotate(app: &App, by: Event, force: bool) -> Result<Rotation, ApiError> {
    let now = OffsetDateTime::now_utc();
    ensure_keys(app).await?;
    let alg = app.config.attestation_alg;
    let passphrase = app.config.passphrase.clone();
    let next = tokio::task::spawn_blocking(move || new_key(alg, "next", now, &passphrase))
        .await
        .map_err(ApiError::internal)??;
    let limit = (!force).then(|| now - MIN_PUBLISHED);
    let rotation = match app.store.rotate_attestation_keys(&next, now, limit).await {
        Ok(r) => r,
        Err(rampart_store::StoreError::Conflict { id, .. }) => {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "next_key_too_new",
                format!(
                    "{id}: a key signs only after it has been published for {} minutes (verifiers \
                     that cache the key set must see it first); wait, or rotate with force",
                    MIN_PUBLISHED.as_secs() / 60
                ),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let mut event = by
        .detail("current", rotation.current.clone())
        .detail("next", rotation.next.clone())
        .detail("public_jwk", next.public_jwk.clone());
    if let Some(r) = &rotation.retired {
        event = event.detail("retired", r.clone());
    }
    app.audit.record(event).await?;
    tracing::info!(current = %rotation.current, next = %rotation.next, retired = ?rotation.retired, "rotated the attestation keys");
    Ok(rotation)
}

/// Whether a key belongs in the published set now.
fn published(k: &AttestationKey, now: OffsetDateTime) -> bool {
    k.retired_at.is_none_or(|r| r + MAX_LIFETIME > now)
}

/// The published key set and the states of its keys, plus `always` (a bundle's signing key,
/// even once it left the published set).
pub(crate) async fn key_set(
    app: &App,
    always: Option<&str>,
) -> Result<(JwkSet, Vec<KeyState>, Vec<AttestationKey>), ApiError> {
    let now = OffsetDateTime::now_utc();
    let rows = app.store.attestation_keys().await?;
    let mut set = JwkSet { keys: Vec::new() };
    let mut states = Vec::new();
    for k in rows
        .iter()
        .filter(|k| published(k, now) || Some(k.kid.as_str()) == always)
    {
        set.keys
            .push(serde_json::from_str(&k.public_jwk).map_err(ApiError::internal)?);
        states.push(KeyState {
            kid: k.kid.clone(),
            alg: k.alg.parse().map_err(ApiError::internal)?,
            state: k.state.clone(),
            created_at: k.created_at.unix_timestamp(),
            activated_at: k.activated_at.map(OffsetDateTime::unix_timestamp),
            retired_at: k.retired_at.map(OffsetDateTime::unix_timestamp),
        });
    }
    Ok((set, states, rows))
}

/// The evidence document of a stored run, `None` once retention removed the run.
pub(crate) async fn evidence_document(app: &App, run_id: &str) -> Result<Option<String>, ApiError> {
    Ok(app.store.run_evidence(run_id).await?.map(|r| document(&r)))
}

fn document(r: &RunEvidence) -> String {
    let checks: Vec<&str> = r.checks.iter().map(String::as_str).collect();
    evidence::document(
        &StoredRun {
            run_id: &r.run_id,
            agent_id: &r.agent_id,
            policy_id: &r.policy_id,
            policy_version: r.policy_version,
            policy_sha256: &r.policy_digest,
            trigger: &r.trigger,
            started_at: r.started_at,
            finished_at: r.finished_at,
            generator: &r.generator,
            results_digest: &r.results_digest,
            host_json: &r.host,
            warnings_json: &r.warnings,
        },
        &checks,
    )
}

/// The schedule an agent runs a policy on: its own assignment of the policy, else its group's
/// (the rule of [`rampart_store::Store::assignments_for_agent`]), from every assignment read
/// once for a whole batch of drafts.
fn schedule_of<'a>(
    all: &'a [Assignment],
    agent_id: &str,
    group: &str,
    policy_id: &str,
) -> Option<&'a str> {
    let of = |target: &dyn Fn(&Target) -> bool| {
        all.iter()
            .find(|a| a.policy_id == policy_id && target(&a.target))
    };
    of(&|t| matches!(t, Target::Agent(a) if a == agent_id))
        .or_else(|| of(&|t| matches!(t, Target::Group(g) if g == group)))
        .map(|a| a.schedule.as_str())
}

/// Twice the policy's scan interval, when it has a schedule.
fn interval(schedule: Option<&str>, now: OffsetDateTime) -> Duration {
    let next = |expr: &str, after: OffsetDateTime| -> Option<OffsetDateTime> {
        let cron: croner::Cron = expr.parse().ok()?;
        let start = chrono::DateTime::<chrono::Utc>::from_timestamp(after.unix_timestamp(), 0)?;
        let t = cron.find_next_occurrence(&start, false).ok()?;
        OffsetDateTime::from_unix_timestamp(t.timestamp()).ok()
    };
    schedule
        .and_then(|s| {
            let a = next(s, now)?;
            let b = next(s, a)?;
            Duration::try_from(b - a).ok()
        })
        .unwrap_or(DEFAULT_INTERVAL)
}

/// An attestation ready to be logged and signed: every claim but the log position (the
/// evidence document's digest among them).
pub(crate) struct Draft {
    claims: Claims,
    run_id: String,
    /// The agent's group: its assignment's schedule sets the lifetime.
    group: String,
    /// The posting certificate's expiry, which the attestation may not outlive by more than
    /// [`CERT_GRACE`].
    cert_not_after: OffsetDateTime,
}

impl Draft {
    /// The attestation's id, known before it is signed.
    pub(crate) fn jti(&self) -> &str {
        &self.claims.jti
    }
}

/// Sets the times: issued now, valid for twice the schedule interval, capped.
fn time(assignments: &[Assignment], draft: &mut Draft) -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    let c = &mut draft.claims;
    let schedule = schedule_of(assignments, &c.sub, &draft.group, &c.policy.id);
    let lifetime = (2 * interval(schedule, now)).min(MAX_LIFETIME);
    let exp = (now + lifetime).min(draft.cert_not_after + CERT_GRACE);
    c.iat = now.unix_timestamp();
    c.nbf = c.iat;
    c.exp = exp.unix_timestamp();
    now
}

/// The issuer's part of the claims but the times, which [`time`] sets when it signs.
fn untimed<'a>(app: &'a App, jti: &'a str, cert_thumbprint: &'a str) -> evidence::Issue<'a> {
    evidence::Issue {
        issuer: &app.api_url,
        jti,
        issued_at: 0,
        expires_at: 0,
        cert_thumbprint,
        log_origin: app.audit.key().origin(),
    }
}

/// The draft of a run about to be stored: its evidence document from the texts it will be
/// stored with, its claims from the checks in memory (no second parse).
pub(crate) fn draft(
    app: &App,
    agent: &rampart_store::Agent,
    identity: &AgentIdentity,
    run: &NewRun,
) -> Result<Draft, ApiError> {
    let mut checks: Vec<(&str, &str)> = run
        .checks
        .iter()
        .zip(&run.check_texts)
        .map(|(c, t)| (c.id.as_str(), t.as_str()))
        .collect();
    checks.sort_by(|a, b| rampart_core::digest::natural_cmp(a.0, b.0));
    let texts: Vec<&str> = checks.into_iter().map(|(_, t)| t).collect();
    let host = serde_json::to_string(&run.host).map_err(ApiError::internal)?;
    let warnings = serde_json::to_string(&run.warnings).map_err(ApiError::internal)?;
    let facts = StoredRun {
        run_id: &run.id,
        agent_id: &run.agent_id,
        policy_id: &run.policy_id,
        policy_version: run.policy_version,
        policy_sha256: &run.policy_digest,
        trigger: &run.trigger,
        started_at: run.started_at.unix_timestamp(),
        finished_at: run.finished_at.unix_timestamp(),
        generator: &run.generator,
        results_digest: &run.results_digest,
        host_json: &host,
        warnings_json: &warnings,
    };
    let text = evidence::document(&facts, &texts);
    let cnf = B64URL.encode(hex::decode(&identity.fingerprint).map_err(ApiError::internal)?);
    let jti = uuid::Uuid::now_v7().to_string();
    let claims = evidence::claims_of(
        &facts,
        &run.host,
        &run.checks,
        &text,
        untimed(app, &jti, &cnf),
    );
    Ok(Draft {
        claims,
        run_id: run.id.clone(),
        group: agent.group.clone(),
        cert_not_after: identity.not_after,
    })
}

/// The jti of a resent run's attestation, if it has one yet; refused when the run id is
/// another agent's.
pub(crate) async fn resent(
    app: &App,
    agent_id: &str,
    run_id: &str,
) -> Result<Option<String>, ApiError> {
    let foreign = || {
        ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "run_id_taken",
            format!("run id {run_id:?} belongs to another agent's run; choose a new id"),
        )
    };
    if let Some(existing) = app.store.run_attestation(run_id).await? {
        return if existing.agent_id == agent_id {
            Ok(Some(existing.jti))
        } else {
            Err(foreign())
        };
    }
    match app.store.run(run_id).await? {
        Some(r) if r.run.agent_id != agent_id => Err(foreign()),
        _ => Ok(None),
    }
}

/// The draft of a stored run that has no attestation (its issue was lost to a crash), from
/// the stored texts and the certificate it was posted with.
async fn draft_from_store(app: &App, run_id: &str) -> Result<Option<Draft>, ApiError> {
    let Some(stored) = app.store.run_evidence(run_id).await? else {
        return Ok(None);
    };
    let Some(agent) = app.store.agent(&stored.agent_id).await? else {
        return Ok(None);
    };
    let text = document(&stored);
    let parsed = Evidence::parse(&text).map_err(|e| {
        ApiError::internal(format!("the stored run {run_id} does not read back: {e}"))
    })?;
    if stored.cert_not_after + CERT_GRACE <= OffsetDateTime::now_utc() {
        // The certificate it was posted with has expired: an attestation now would be born
        // expired; a later run will have one.
        return Ok(None);
    }
    let thumbprint = hex::decode(&stored.cert_sha256).map_err(ApiError::internal)?;
    let jti = uuid::Uuid::now_v7().to_string();
    let claims = parsed.claims(&text, untimed(app, &jti, &B64URL.encode(thumbprint)));
    Ok(Some(Draft {
        claims,
        run_id: run_id.to_owned(),
        group: agent.group,
        cert_not_after: stored.cert_not_after,
    }))
}

/// How old a stored run without an attestation must be before the sweep issues one (younger
/// ones may still be in a replica's queue).
const SWEEP_AFTER: Duration = Duration::from_secs(60);

/// The issuer: signs queued drafts a batch at a time (their audit entries, one checkpoint and
/// their rows in one transaction; a batch is what is queued and what arrives within
/// `attestation_window` of its first), and every `attestation_sweep` issues
/// the attestations a crash lost. On shutdown it issues what is queued, then stops.
pub(crate) async fn issuer(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let Some(mut rx) = app
        .attest
        .drafts_rx
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    else {
        return;
    };
    let mut sweep = tokio::time::interval(app.config.attestation_sweep);
    loop {
        let first = tokio::select! {
            _ = shutdown.changed() => {
                rx.close();
                let mut rest = Vec::new();
                while let Ok(d) = rx.try_recv() {
                    rest.push(d);
                }
                sign_all(&app, rest).await;
                return;
            }
            _ = sweep.tick() => {
                sweep_lost(&app).await;
                continue;
            }
            d = rx.recv() => match d { Some(d) => d, None => return },
        };
        // What arrives within the window joins the batch (`ServerConfig::attestation_window`;
        // a shutdown waits for it, then issues what is queued).
        let mut batch = vec![first];
        let until = tokio::time::Instant::now() + app.config.attestation_window;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some(d)) => batch.push(d),
                Ok(None) | Err(_) => break,
            }
        }
        sign_all(&app, batch).await;
    }
}

/// Issues a batch: one key read, then one transaction that appends the audit entries, signs
/// one checkpoint covering them, and stores the JWS that name them. What fails is left to the
/// sweep.
async fn sign_all(app: &App, drafts: Vec<Draft>) {
    if drafts.is_empty() {
        return;
    }
    let runs = drafts.len();
    if let Err(e) = try_sign_all(app, drafts).await {
        tracing::error!(runs, error = ?e, "could not issue a batch of attestations; the sweep tries again");
    }
}

async fn try_sign_all(app: &App, mut drafts: Vec<Draft>) -> Result<(), ApiError> {
    let key = app.attest.current(app).await?;
    // A schedule that cannot be read leaves the default lifetime, as for an unassigned policy.
    let assignments = app.store.assignments(None).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot read the assignments; attestations get the default lifetime");
        Vec::new()
    });
    let mut issued = Vec::with_capacity(drafts.len());
    for d in &mut drafts {
        issued.push(time(&assignments, d));
    }
    let events: Vec<Event> = drafts
        .iter()
        .map(|d| d.claims.issue_event(key.kid(), key.alg()))
        .collect();
    let log = app.audit.key();
    let verifier = rampart_audit::LogVerifier::new(log.vkey()).map_err(ApiError::internal)?;
    // Runs inside the transaction that appends the entries, once it knows their indexes and
    // the checkpoint covering them all: one checkpoint for the batch, its signature checked
    // once (an Ed25519 verification per run was 4 % of the server's CPU during result
    // ingestion; docs/performance.md).
    let sign = |first: u64,
                checkpoint: &rampart_store::StoredCheckpoint|
     -> Result<Vec<StoredAttestation>, rampart_store::SignError> {
        let opened = verifier.open(&checkpoint.note)?;
        let mut rows = Vec::with_capacity(drafts.len());
        for ((d, at), index) in drafts.into_iter().zip(issued).zip(first..) {
            let mut claims = d.claims;
            claims.log = LogClaim {
                origin: opened.origin.clone(),
                index,
                checkpoint_size: opened.size,
                checkpoint_root: B64.encode(opened.root),
            };
            let jws = key.sign(claims::TYP, &claims)?;
            rows.push(StoredAttestation {
                jti: claims.jti.clone(),
                run_id: d.run_id,
                agent_id: claims.sub.clone(),
                policy_id: claims.policy.id.clone(),
                kid: key.kid().to_owned(),
                status: claims.result.status.as_str().to_owned(),
                score: claims.result.counts.score,
                started_at: OffsetDateTime::from_unix_timestamp(claims.scan.started_at)?,
                issued_at: at,
                expires_at: OffsetDateTime::from_unix_timestamp(claims.exp)?,
                log_index: index,
                jws,
                stale: false,
            });
        }
        Ok(rows)
    };
    // A run that has one already (a sweep racing a replica's queue) keeps it; this one is
    // only in the log.
    let recorded = app
        .store
        .record_attestations(&events, log, OffsetDateTime::now_utc(), sign)
        .await;
    if recorded.is_ok() {
        // The entries are events of the stream too.
        app.wrote_events();
    }
    recorded?;
    Ok(())
}

async fn sweep_lost(app: &App) {
    let now = OffsetDateTime::now_utc();
    let lost = match app
        .store
        .unattested_runs(now - MAX_LIFETIME, now - SWEEP_AFTER, BATCH as u32)
        .await
    {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot look for runs without an attestation");
            return;
        }
    };
    let mut drafts = Vec::new();
    for run in lost {
        match draft_from_store(app, &run).await {
            Ok(Some(d)) => drafts.push(d),
            Ok(None) => {}
            Err(e) => tracing::error!(run = %run, error = ?e, "cannot draft a lost attestation"),
        }
    }
    if !drafts.is_empty() {
        tracing::info!(runs = drafts.len(), "issuing attestations a crash lost");
        sign_all(app, drafts).await;
    }
}

/// An attestation's offline bundle.
pub(crate) async fn bundle(app: &App, a: &StoredAttestation) -> Result<Bundle, ApiError> {
    let (_, claims) = rampart_attest::decode_unverified(&a.jws).map_err(ApiError::internal)?;
    let size = claims.log.checkpoint_size;
    let checkpoint = app.store.audit_checkpoint_at(size).await?.ok_or_else(|| {
        ApiError::internal(format!("the audit checkpoint of size {size} is missing"))
    })?;
    let entry = app
        .store
        .audit_entry(a.log_index)
        .await?
        .ok_or_else(|| ApiError::internal(format!("audit entry {} is missing", a.log_index)))?;
    let inclusion = app.store.audit_inclusion_proof(a.log_index, size).await?;
    let (jwks, keys, _) = key_set(app, Some(&a.kid)).await?;
    Ok(Bundle {
        format: rampart_attest::bundle::FORMAT.to_owned(),
        attestation: a.jws.clone(),
        jwks,
        keys,
        log: LogAnchor {
            vkey: app.audit.key().vkey().to_owned(),
            checkpoint: checkpoint.note,
            entry: entry.body,
            inclusion: inclusion.iter().map(|h| B64.encode(h)).collect(),
        },
        evidence: evidence_document(app, &a.run_id).await?,
    })
}
