//! Enrolment tokens: single-purpose ES256 JWTs modelled on step-ca's one-time tokens.
//!
//! The token names the server it is for (`aud`), the group and labels the agent will get, a
//! unique `jti` the server records to make it single-use (or `max_uses`), a short expiry, and
//! the SHA-256 of the root certificate (`sha`) so the agent can pin the CA before it trusts
//! anything the server says. The signing key is not the CA key.

use std::collections::BTreeMap;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rcgen::KeyPair;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::{CaFiles, PkiError, decrypt_key, encrypt_key};

/// Clock-skew allowance on `exp` and `nbf` (step-ca's value).
pub const TOKEN_LEEWAY: Duration = Duration::minutes(1);

/// Issuer claim of every Rampart enrolment token.
const ISSUER: &str = "rampart";

/// The claims of an enrolment token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrolmentClaims {
    /// Always `rampart`.
    pub iss: String,
    /// The enrolment URL of the server that accepts it.
    pub aud: String,
    /// Unique id; the server counts uses by it.
    pub jti: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Not before (Unix seconds).
    pub nbf: i64,
    /// Expires (Unix seconds).
    pub exp: i64,
    /// Group the agent joins.
    pub grp: String,
    /// Labels the agent gets.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// SHA-256 of the root CA certificate's DER, hex.
    pub sha: String,
    /// For a re-enrolment token: the agent id to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// Why a token was refused. Each reason is distinct so operators can tell a replay from a typo.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT at all, or its claims are missing or mistyped.
    #[error("malformed enrolment token: {0}")]
    Malformed(String),
    /// The signature does not verify with this server's token key: forged, altered, or from
    /// another Rampart server.
    #[error("enrolment token signature is invalid (forged, altered, or issued by another server)")]
    Forged,
    /// Past `exp` plus leeway.
    #[error("enrolment token expired at {0}")]
    Expired(String),
    /// Before `nbf` minus leeway.
    #[error("enrolment token is not valid before {0}")]
    NotYetValid(String),
    /// Issued for another server.
    #[error("enrolment token is for {got:?}, not this server ({expected:?})")]
    WrongAudience {
        /// This server's enrolment URL.
        expected: String,
        /// The token's `aud`.
        got: String,
    },
    /// Not a Rampart enrolment token.
    #[error("enrolment token issuer is {0:?}, expected \"rampart\"")]
    WrongIssuer(String),
}

fn rfc3339(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

/// Signs and verifies enrolment tokens.
pub struct TokenSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// A new signing key; returns it sealed for storage (`cert_pem` holds the public key).
    pub fn generate(passphrase: &[u8]) -> Result<(TokenSigner, CaFiles), PkiError> {
        let key = KeyPair::generate()?;
        let files = CaFiles {
            cert_pem: key.public_key_pem(),
            key_pem: encrypt_key(&key.serialize_der(), passphrase, "token-signer")?,
        };
        Ok((
            TokenSigner::from_parts(&key.serialize_der(), &files.cert_pem)?,
            files,
        ))
    }

    /// Loads a stored signing key.
    pub fn load(files: &CaFiles, passphrase: &[u8]) -> Result<TokenSigner, PkiError> {
        let der = decrypt_key(&files.key_pem, passphrase, "token-signer")?;
        TokenSigner::from_parts(&der, &files.cert_pem)
    }

    fn from_parts(pkcs8_der: &[u8], public_pem: &str) -> Result<TokenSigner, PkiError> {
        let decoding = DecodingKey::from_ec_pem(public_pem.as_bytes())
            .map_err(|e| PkiError::corrupt("token-signer public key", e))?;
        let kid = crate::fingerprint(public_pem.as_bytes())[..16].to_string();
        Ok(TokenSigner {
            encoding: EncodingKey::from_ec_der(pkcs8_der),
            decoding,
            kid,
        })
    }

    /// Builds and signs the claims of a new token.
    #[allow(clippy::too_many_arguments)]
    pub fn issue(
        &self,
        audience: &str,
        jti: &str,
        group: &str,
        labels: &BTreeMap<String, String>,
        root_sha: &str,
        agent: Option<&str>,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<(String, EnrolmentClaims), PkiError> {
        let claims = EnrolmentClaims {
            iss: ISSUER.into(),
            aud: audience.into(),
            jti: jti.into(),
            iat: now.unix_timestamp(),
            nbf: now.unix_timestamp(),
            exp: (now + ttl).unix_timestamp(),
            grp: group.into(),
            labels: labels.clone(),
            sha: root_sha.into(),
            agent: agent.map(str::to_string),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| PkiError::corrupt("token-signer", e))?;
        Ok((token, claims))
    }

    /// Verifies signature, issuer, audience and validity window at `now` (with
    /// [`TOKEN_LEEWAY`]). Single use is the store's business, by `jti`.
    pub fn verify(
        &self,
        token: &str,
        audience: &str,
        now: OffsetDateTime,
    ) -> Result<EnrolmentClaims, TokenError> {
        let mut v = Validation::new(Algorithm::ES256);
        // Times and audience are checked below against the caller's clock, with distinct errors.
        v.validate_exp = false;
        v.validate_nbf = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<EnrolmentClaims>(token.trim(), &self.decoding, &v)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                match e.kind() {
                    ErrorKind::InvalidSignature
                    | ErrorKind::InvalidAlgorithm
                    | ErrorKind::InvalidAlgorithmName
                    | ErrorKind::InvalidKeyFormat => TokenError::Forged,
                    _ => TokenError::Malformed(e.to_string()),
                }
            })?;
        let c = data.claims;
        if c.iss != ISSUER {
            return Err(TokenError::WrongIssuer(c.iss));
        }
        if c.aud != audience {
            return Err(TokenError::WrongAudience {
                expected: audience.into(),
                got: c.aud,
            });
        }
        let leeway = TOKEN_LEEWAY.whole_seconds();
        let t = now.unix_timestamp();
        if t > c.exp + leeway {
            return Err(TokenError::Expired(rfc3339(c.exp)));
        }
        if t < c.nbf - leeway {
            return Err(TokenError::NotYetValid(rfc3339(c.nbf)));
        }
        Ok(c)
    }
}

/// Reads a token's claims without verifying it: the agent needs `aud` (where to enrol) and
/// `sha` (which root to pin) before it can talk to anyone.
pub fn peek_claims(token: &str) -> Result<EnrolmentClaims, TokenError> {
    use base64::Engine;
    let mut parts = token.trim().split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed(
            "expected three dot-separated parts".into(),
        ));
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|e| TokenError::Malformed(format!("payload is not base64url: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| TokenError::Malformed(format!("claims: {e}")))
}
