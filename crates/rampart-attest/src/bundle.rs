//! The offline bundle: one file an auditor verifies with nothing but the audit log's public
//! key, pinned beforehand.
//!
//! The chain of trust runs: pinned log key → signed checkpoint → inclusion proof → the audit
//! entry that recorded the issue (its `jti`, `kid` and the SHA-256 of every other claim) → the
//! JWS, whose signature checks against the key the `kid` names (a thumbprint, so the key set
//! cannot substitute another key) → the evidence, by digest, and the result recomputed from it.
//! Time is judged at the checkpoint's signing time, when the log proves the attestation
//! existed, not by the verifier's clock: an attestation verifies long after the agent's 24-hour
//! certificate and the attestation itself expired, and the answer says whether it was valid
//! when it was logged.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use rampart_audit::{Entry, LogVerifier, merkle};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::claims::{Claims, ISSUE_ACTION, TYP};
use crate::evidence::{self, Evidence};
use crate::key::{Alg, thumbprint};

/// The bundle's `format`.
pub const FORMAT: &str = "rampart-attestation-bundle/1";

/// Clock difference tolerated between the replica that signed and the one that checkpointed.
pub const LEEWAY_SECS: i64 = 60;

/// Everything needed to verify one attestation offline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Bundle {
    /// [`FORMAT`].
    pub format: String,
    /// The attestation, a compact JWS.
    pub attestation: String,
    /// The server's published key set when the bundle was made.
    #[schemars(with = "serde_json::Value")]
    pub jwks: JwkSet,
    /// The keys' states then: when each began signing and when it was retired.
    pub keys: Vec<KeyState>,
    /// The audit-log anchor.
    pub log: LogAnchor,
    /// The evidence document's exact text (absent when the run was removed by retention).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

/// A signing key's life, as the server records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeyState {
    /// Key id (thumbprint).
    pub kid: String,
    /// Algorithm.
    pub alg: Alg,
    /// `next` (published, not yet signing), `current` or `retired`.
    pub state: String,
    /// Published (Unix seconds).
    pub created_at: i64,
    /// Began signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated_at: Option<i64>,
    /// Stopped signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<i64>,
}

/// The audit entry recording the issue, its inclusion proof and the checkpoint it is proven in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LogAnchor {
    /// The log's verifier key, as the server has it (informative: verification uses the
    /// pinned one).
    pub vkey: String,
    /// The signed checkpoint (C2SP signed note).
    pub checkpoint: String,
    /// The entry's exact text (the leaf).
    pub entry: String,
    /// The RFC 9162 audit path, base64 hashes.
    pub inclusion: Vec<String>,
}

/// Why a bundle does not verify. Each reason is its own variant, so a caller can tell a forged
/// claim from an expired one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not a bundle, or a part of it cannot be read.
    #[error("malformed bundle: {0}")]
    Malformed(String),
    /// The signature does not hold, or the claims are not what the log recorded.
    #[error("tampered claim: {0}")]
    TamperedClaim(String),
    /// The `kid` names no key of the set, or the key under it is another key.
    #[error("unknown key: {0}")]
    UnknownKey(String),
    /// The key had been retired before the attestation was logged.
    #[error("retired key: {0}")]
    RetiredKey(String),
    /// The attestation was not valid when it was logged.
    #[error("expired: {0}")]
    Expired(String),
    /// The checkpoint is not one that covers the attestation.
    #[error("stale checkpoint: {0}")]
    StaleCheckpoint(String),
    /// The checkpoint is not signed by the pinned log key.
    #[error("untrusted checkpoint: {0}")]
    UntrustedCheckpoint(String),
    /// The evidence is not what the attestation signed.
    #[error("evidence mismatch: {0}")]
    EvidenceMismatch(String),
    /// The entry is not proven in the checkpoint.
    #[error("proof mismatch: {0}")]
    ProofMismatch(String),
}

impl Refusal {
    /// A short stable name for scripts (`tampered_claim`, `expired`…).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Malformed(_) => "malformed",
            Refusal::TamperedClaim(_) => "tampered_claim",
            Refusal::UnknownKey(_) => "unknown_key",
            Refusal::RetiredKey(_) => "retired_key",
            Refusal::Expired(_) => "expired",
            Refusal::StaleCheckpoint(_) => "stale_checkpoint",
            Refusal::UntrustedCheckpoint(_) => "untrusted_checkpoint",
            Refusal::EvidenceMismatch(_) => "evidence_mismatch",
            Refusal::ProofMismatch(_) => "proof_mismatch",
        }
    }
}

/// What a verified bundle established.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// The claims, signature and log entry checked.
    pub claims: Claims,
    /// The signing key.
    pub kid: String,
    /// Its algorithm.
    pub alg: Alg,
    /// When the log proves the attestation existed (the checkpoint's time).
    pub logged_at: OffsetDateTime,
    /// The checkpoint's size.
    pub checkpoint_size: u64,
    /// Whether the evidence was included and matched (absent evidence is not a failure, but
    /// the answer says so).
    pub evidence_checked: bool,
}

impl Bundle {
    /// Reads a bundle.
    pub fn parse(text: &str) -> Result<Bundle, Refusal> {
        let mut de = serde_json::Deserializer::from_str(text);
        let b: Bundle = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| Refusal::Malformed(format!("{}: {}", e.path(), e.inner())))?;
        if b.format != FORMAT {
            return Err(Refusal::Malformed(format!(
                "format {:?}, expected {FORMAT:?}",
                b.format
            )));
        }
        Ok(b)
    }

    /// Verifies the bundle against the pinned log key.
    pub fn verify(&self, log: &LogVerifier) -> Result<Verified, Refusal> {
        // The JWS: header, key by thumbprint, signature.
        let header = jsonwebtoken::decode_header(&self.attestation)
            .map_err(|e| Refusal::Malformed(format!("attestation: {e}")))?;
        if header.typ.as_deref() != Some(TYP) {
            return Err(Refusal::TamperedClaim(format!(
                "the JWS typ is {:?}, not {TYP:?}",
                header.typ
            )));
        }
        let alg = Alg::ALL
            .into_iter()
            .find(|a| a.jws() == header.alg)
            .ok_or_else(|| {
                Refusal::TamperedClaim(format!(
                    "algorithm {:?} is not one Rampart signs with",
                    header.alg
                ))
            })?;
        let kid = header
            .kid
            .clone()
            .ok_or_else(|| Refusal::UnknownKey("the JWS names no key (kid)".into()))?;
        let jwk = self
            .jwks
            .find(&kid)
            .ok_or_else(|| Refusal::UnknownKey(format!("{kid} is not in the bundle's key set")))?;
        let actual = thumbprint(jwk).map_err(|e| Refusal::UnknownKey(format!("{kid}: {e}")))?;
        if actual != kid {
            return Err(Refusal::UnknownKey(format!(
                "the key published as {kid} is another key (thumbprint {actual})"
            )));
        }
        let key = DecodingKey::from_jwk(jwk)
            .map_err(|e| Refusal::UnknownKey(format!("{kid} cannot verify: {e}")))?;
        let mut validation = Validation::new(alg.jws());
        // Times are judged below against the checkpoint, not the verifier's clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Claims>(&self.attestation, &key, &validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                match e.kind() {
                    K::InvalidSignature => Refusal::TamperedClaim(format!(
                        "the signature does not hold under key {kid}"
                    )),
                    _ => Refusal::TamperedClaim(format!("the attestation cannot be read: {e}")),
                }
            })?
            .claims;

        // The checkpoint, under the pinned key.
        let checkpoint = log
            .open(&self.log.checkpoint)
            .map_err(|e| Refusal::UntrustedCheckpoint(e.to_string()))?;
        let index = claims.log.index;
        if checkpoint.size <= index || checkpoint.size < claims.log.checkpoint_size {
            return Err(Refusal::StaleCheckpoint(format!(
                "the checkpoint covers {} entries; the attestation was logged at index {index} under a checkpoint of {}",
                checkpoint.size, claims.log.checkpoint_size
            )));
        }
        if checkpoint.size != claims.log.checkpoint_size {
            return Err(Refusal::Malformed(format!(
                "the bundle's checkpoint ({} entries) is not the one the attestation names ({})",
                checkpoint.size, claims.log.checkpoint_size
            )));
        }
        let root = B64.encode(checkpoint.root);
        if root != claims.log.checkpoint_root || checkpoint.origin != claims.log.origin {
            return Err(Refusal::ProofMismatch(format!(
                "the attestation names root {} of log {:?}; the signed checkpoint has {root} of {:?}",
                claims.log.checkpoint_root, claims.log.origin, checkpoint.origin
            )));
        }

        // The entry, proven in the checkpoint.
        let path = self
            .log
            .inclusion
            .iter()
            .map(|h| {
                B64.decode(h)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| Refusal::Malformed(format!("inclusion hash {h:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (Ok(at), Ok(size)) = (usize::try_from(index), usize::try_from(checkpoint.size)) else {
            return Err(Refusal::ProofMismatch("the index is out of range".into()));
        };
        merkle::verify_inclusion(
            &merkle::leaf_hash(self.log.entry.as_bytes()),
            at,
            size,
            &path,
            &checkpoint.root,
        )
        .map_err(|e| {
            Refusal::ProofMismatch(format!(
                "the entry is not proven at index {index} of the checkpoint: {e}"
            ))
        })?;
        let entry = Entry::parse(self.log.entry.as_bytes())
            .map_err(|e| Refusal::Malformed(format!("log entry: {e}")))?;
        if entry.index != index {
            return Err(Refusal::ProofMismatch(format!(
                "the proven entry is entry {}, the attestation names {index}",
                entry.index
            )));
        }

        // The log recorded exactly these claims under this key.
        let detail = |k: &str| entry.event.detail.get(k).map(String::as_str);
        if entry.event.action != ISSUE_ACTION
            || detail("jti") != Some(claims.jti.as_str())
            || detail("kid") != Some(kid.as_str())
        {
            return Err(Refusal::TamperedClaim(format!(
                "the log entry at index {index} does not record the issue of {} with key {kid}",
                claims.jti
            )));
        }
        let logged = claims.logged_sha256();
        if detail("claims_sha256") != Some(logged.as_str()) {
            return Err(Refusal::TamperedClaim(format!(
                "the claims differ from those the log recorded at index {index}"
            )));
        }

        // The key was signing when the attestation was logged (within the leeway: a replica
        // that read the current key just before another rotated it signs a moment later).
        if let Some(state) = self.keys.iter().find(|k| k.kid == kid) {
            let logged_ts = entry.time.unix_timestamp();
            if let Some(retired) = state.retired_at.filter(|&r| r + LEEWAY_SECS < logged_ts) {
                return Err(Refusal::RetiredKey(format!(
                    "{kid} was retired at {} and the attestation logged at {}",
                    rfc3339(retired),
                    rfc3339(logged_ts)
                )));
            }
        }

        // Valid when logged.
        let t = checkpoint.time.unix_timestamp();
        if t + LEEWAY_SECS < claims.iat.max(claims.nbf) {
            return Err(Refusal::StaleCheckpoint(format!(
                "the checkpoint was signed at {}, before the attestation was issued at {}",
                rfc3339(t),
                rfc3339(claims.iat)
            )));
        }
        if t > claims.exp + LEEWAY_SECS {
            return Err(Refusal::Expired(format!(
                "it expired at {} and was first logged in a checkpoint signed at {}",
                rfc3339(claims.exp),
                rfc3339(t)
            )));
        }

        // The evidence.
        let evidence_checked = match &self.evidence {
            None => false,
            Some(text) => {
                let digest = evidence::digest(text);
                if digest != claims.evidence.sha256 {
                    return Err(Refusal::EvidenceMismatch(format!(
                        "the included evidence has SHA-256 {digest}, the attestation signed {}",
                        claims.evidence.sha256
                    )));
                }
                let e = Evidence::parse(text)
                    .map_err(|e| Refusal::EvidenceMismatch(format!("the evidence: {e}")))?;
                let differences = e.disagreements(&claims);
                if !differences.is_empty() {
                    return Err(Refusal::EvidenceMismatch(differences.join("; ")));
                }
                true
            }
        };
        Ok(Verified {
            claims,
            kid,
            alg,
            logged_at: checkpoint.time,
            checkpoint_size: checkpoint.size,
            evidence_checked,
        })
    }
}

fn rfc3339(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}
