//! Signed compliance attestations, pure: no store, no network, no clock.
//!
//! An attestation is a JWS (compact JWT) a server signs for each stored run: which policy
//! content was evaluated on which host, the score and what failed, the waivers in force, the
//! digest of the full evidence, and the audit-log entry and signed checkpoint that recorded the
//! issue (`claims`). Keys are the server's own, named by their RFC 7638 thumbprint (`key`). The
//! evidence document is rebuilt byte for byte from what the store keeps (`evidence`). A bundle
//! carries all of it, and verifies offline against nothing but the audit log's pinned key
//! (`bundle`); interoperability is the JWS itself, which any JOSE library verifies from the
//! published JWKS alone.

pub mod bundle;
pub mod claims;
pub mod evidence;
pub mod key;
pub mod sample;

#[cfg(test)]
mod tests;

pub use bundle::{Bundle, KeyState, LogAnchor, Refusal, Verified};
pub use claims::{
    Claims, ComplianceStatus, Confirmation, EvidenceClaim, FrameworkResult, HostClaim, LogClaim,
    PolicyClaim, ResultClaim, ScanClaim, WaiverClaim,
};
pub use jsonwebtoken::jwk::{Jwk, JwkSet};
pub use key::{Alg, SigningKey, thumbprint};

/// Keys that cannot be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    /// What went wrong with which key.
    #[error("attestation key: {0}")]
    Key(String),
}

/// The claims and header of an attestation, read without verifying anything: for display of
/// what a server answered, never for a decision.
pub fn decode_unverified(jws: &str) -> Result<(jsonwebtoken::Header, Claims), String> {
    let header = jsonwebtoken::decode_header(jws).map_err(|e| e.to_string())?;
    let claims = jsonwebtoken::dangerous::insecure_decode::<Claims>(jws)
        .map_err(|e| e.to_string())?
        .claims;
    Ok((header, claims))
}
