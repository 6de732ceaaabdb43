//! Rampart's own public-key infrastructure.
//!
//! The server is its own CA: a root and an intermediate (ECDSA P-256) created at first start,
//! their keys encrypted at rest with an operator passphrase. The intermediate signs everything
//! day to day — the server's TLS certificate, agents' 24-hour client certificates issued from
//! CSRs, and the CRL — so it can be rotated without touching the root that agents and the
//! server trust (see `docs/fleet.md`). Enrolment tokens are ES256 JWTs signed by a separate
//! key, modelled on step-ca's one-time tokens. [`verifier`] checks client certificates at every
//! TLS handshake against the root and a live revocation list.
//!
//! Time is always a parameter: nothing here reads the clock, so expiry, backdating and leeway
//! are tested with the instants they are about.

mod ca;
mod error;
mod keys;
mod token;
pub mod verifier;

pub use ca::{
    AGENT_CERT_LIFETIME, AgentIdentity, BACKDATE, Ca, CaFiles, IssuedCert, ServerCert,
    agent_identity, certificate_serial, crl_lists_serial, fingerprint,
};
pub use error::PkiError;
pub use keys::{decrypt_key, encrypt_key};
pub use token::{EnrolmentClaims, TOKEN_LEEWAY, TokenError, TokenSigner, peek_claims};
