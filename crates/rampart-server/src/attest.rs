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
use rampart_attest::{Alg, Bundle, JwkSet, KeyState, LogAnchor, LogClaim, SigningKey, claims};
use rampart_audit::{Event, Outcome};
use rampart_pki::AgentIdentity;
use rampart_store::{AttestationKey, Rotation, RunEvidence, StoredAttestation};
use time::OffsetDateTime;

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

/// The signing keys this replica has decrypted, by kid.
pub(crate) struct Attestor {
    keys: Mutex<HashMap<String, Arc<SigningKey>>>,
}

impl Attestor {
    pub(crate) fn new() -> Attestor {
        Attestor {
            keys: Mutex::new(HashMap::new()),
        }
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
        let row = app
            .store
            .attestation_key(&kid)
            .await?
            .ok_or_else(|| ApiError::internal(format!("attestation key {kid} disappeared")))?;
        let key = Arc::new(open_key(&row, &app.config.passphrase)?);
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

/// Twice the policy's scan interval on this agent, when it has a schedule.
async fn interval(
    app: &App,
    agent_id: &str,
    group: &str,
    policy_id: &str,
    now: OffsetDateTime,
) -> Duration {
    let schedule = app
        .store
        .assignments_for_agent(agent_id, group)
        .await
        .ok()
        .and_then(|a| a.into_iter().find(|a| a.policy_id == policy_id))
        .map(|a| a.schedule);
    let next = |expr: &str, after: OffsetDateTime| -> Option<OffsetDateTime> {
        let cron: croner::Cron = expr.parse().ok()?;
        let start = chrono::DateTime::<chrono::Utc>::from_timestamp(after.unix_timestamp(), 0)?;
        let t = cron.find_next_occurrence(&start, false).ok()?;
        OffsetDateTime::from_unix_timestamp(t.timestamp()).ok()
    };
    schedule
        .and_then(|s| {
            let a = next(&s, now)?;
            let b = next(&s, a)?;
            Duration::try_from(b - a).ok()
        })
        .unwrap_or(DEFAULT_INTERVAL)
}

/// The attestation of a stored run: the existing one, or a new one issued now.
pub(crate) async fn issue(
    app: &App,
    agent: &rampart_store::Agent,
    identity: &AgentIdentity,
    run_id: &str,
) -> Result<StoredAttestation, ApiError> {
    let foreign = || {
        ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "run_id_taken",
            format!("run id {run_id:?} belongs to another agent's run; choose a new id"),
        )
    };
    if let Some(existing) = app.store.run_attestation(run_id).await? {
        return if existing.agent_id == agent.id {
            Ok(existing)
        } else {
            Err(foreign())
        };
    }
    let stored = app
        .store
        .run_evidence(run_id)
        .await?
        .ok_or_else(|| ApiError::not_found("run", run_id))?;
    if stored.agent_id != agent.id {
        return Err(foreign());
    }
    let text = document(&stored);
    let parsed = Evidence::parse(&text).map_err(|e| {
        ApiError::internal(format!("the stored run {run_id} does not read back: {e}"))
    })?;
    let key = app.attest.current(app).await?;
    let now = OffsetDateTime::now_utc();
    let iat = now.unix_timestamp();
    let lifetime = (2 * interval(app, &agent.id, &agent.group, &parsed.policy_id, now).await)
        .min(MAX_LIFETIME);
    let exp = (now + lifetime).min(identity.not_after + CERT_GRACE);
    let thumbprint = hex::decode(&identity.fingerprint).map_err(ApiError::internal)?;
    let jti = uuid::Uuid::now_v7().to_string();
    let cert_thumbprint = B64URL.encode(thumbprint);
    let mut claims = parsed.claims(
        &text,
        evidence::Issue {
            issuer: &app.api_url,
            jti: &jti,
            issued_at: iat,
            expires_at: exp.unix_timestamp(),
            cert_thumbprint: &cert_thumbprint,
            log_origin: app.audit.key().origin(),
        },
    );
    let (index, checkpoint) = app
        .audit
        .record_anchored(&app.store, claims.issue_event(key.kid(), key.alg()))
        .await?;
    let opened = rampart_audit::LogVerifier::new(app.audit.key().vkey())
        .and_then(|v| v.open(&checkpoint.note))
        .map_err(ApiError::internal)?;
    claims.log = LogClaim {
        origin: opened.origin,
        index,
        checkpoint_size: opened.size,
        checkpoint_root: B64.encode(opened.root),
    };
    let jws = key.sign(claims::TYP, &claims).map_err(ApiError::internal)?;
    let row = StoredAttestation {
        jti: claims.jti.clone(),
        run_id: run_id.to_owned(),
        agent_id: agent.id.clone(),
        policy_id: claims.policy.id.clone(),
        kid: key.kid().to_owned(),
        status: claims.result.status.as_str().to_owned(),
        score: claims.result.score,
        started_at: OffsetDateTime::from_unix_timestamp(parsed.started_at)
            .map_err(ApiError::internal)?,
        issued_at: now,
        expires_at: exp,
        log_index: index,
        jws,
        stale: false,
    };
    if app.store.insert_attestation(&row).await? {
        return Ok(app.store.run_attestation(run_id).await?.unwrap_or(row));
    }
    // A retried post issued one meanwhile: that one stands (this one is only in the log).
    app.store
        .run_attestation(run_id)
        .await?
        .ok_or_else(|| ApiError::internal(format!("the attestation of run {run_id} disappeared")))
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
