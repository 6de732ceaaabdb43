//! Enrolment: token + locally generated key → 24 h client certificate.

use rampart_core::fleet::{EnrolRequest, EnrolResponse};
use rcgen::{CertificateParams, DnType, KeyPair};
use sha2::{Digest, Sha256};

use crate::client::{api_client, check, fetch_unverified_root, unreachable};
use crate::state::write_atomic;
use crate::{AgentError, AgentIdentityFile, StateDir};

/// What `rampart agent enroll` needs besides the token.
#[derive(Debug, Clone)]
pub struct EnrolOptions {
    /// Server API base URL; when `None`, taken from the token's audience.
    pub server: Option<String>,
    /// Host name reported to the server.
    pub hostname: String,
    /// Operating system reported.
    pub os: String,
    /// Architecture reported.
    pub arch: String,
}

/// A fresh P-256 key and a CSR for it (the server sets the subject; the CN is informative).
pub(crate) fn key_and_csr(hostname: &str) -> Result<(String, String), AgentError> {
    let key = KeyPair::generate().map_err(|e| AgentError::Key(e.to_string()))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, hostname);
    let csr = params
        .serialize_request(&key)
        .and_then(|c| c.pem())
        .map_err(|e| AgentError::Key(e.to_string()))?;
    Ok((key.serialize_pem(), csr))
}

/// Enrols this host. The token is checked locally first (shape, audience), the root CA is
/// pinned by the token's hash, and the key is generated here. On success the identity, key,
/// certificate chain and root are written to `state`.
pub async fn enroll(
    state: &StateDir,
    token: &str,
    opts: &EnrolOptions,
) -> Result<AgentIdentityFile, AgentError> {
    let token = token.trim();
    let claims = rampart_pki::peek_claims(token)?;
    let from_token = claims
        .aud
        .strip_suffix("/api/v1/enrol")
        .ok_or_else(|| {
            rampart_pki::TokenError::Malformed(format!(
                "audience {:?} is not a Rampart enrolment URL",
                claims.aud
            ))
        })?
        .to_string();
    let api_url = opts
        .server
        .clone()
        .map_or(from_token.clone(), |s| s.trim_end_matches('/').to_string());
    if api_url != from_token {
        return Err(rampart_pki::TokenError::WrongAudience {
            expected: format!("{api_url}/api/v1/enrol"),
            got: claims.aud,
        }
        .into());
    }
    let root_pem = fetch_unverified_root(&api_url).await?;
    let root_der = rustls::pki_types::pem::PemObject::from_pem_slice(root_pem.as_bytes())
        .map(|d: rustls::pki_types::CertificateDer<'_>| d.to_vec())
        .map_err(|e| AgentError::Tls(format!("root CA is not a PEM certificate: {e}")))?;
    let got = hex::encode(Sha256::digest(&root_der));
    if !got.eq_ignore_ascii_case(&claims.sha) {
        return Err(AgentError::RootMismatch {
            expected: claims.sha,
            got,
        });
    }
    let (key_pem, csr_pem) = key_and_csr(&opts.hostname)?;
    let client = api_client(&root_pem)?;
    let url = format!("{api_url}/api/v1/enrol");
    let req = EnrolRequest {
        token: token.to_string(),
        csr_pem,
        hostname: opts.hostname.clone(),
        os: opts.os.clone(),
        arch: opts.arch.clone(),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let resp = client
        .post(&url)
        .json(&req)
        .send()
        .await
        .map_err(|e| unreachable(&url, &e))?;
    let resp: EnrolResponse = check(resp, "enrolment")
        .await?
        .json()
        .await
        .map_err(|e| unreachable(&url, &e))?;
    if resp.root_pem.trim() != root_pem.trim() {
        return Err(AgentError::RootMismatch {
            expected: got,
            got: "a different root in the enrolment answer".into(),
        });
    }
    let identity = AgentIdentityFile {
        agent_id: resp.agent_id,
        api_url,
        agent_url: resp.agent_url,
        heartbeat_secs: resp.heartbeat_secs,
    };
    write_atomic(&state.key(), key_pem.as_bytes(), 0o600)?;
    write_atomic(&state.cert(), resp.certificate_chain_pem.as_bytes(), 0o644)?;
    write_atomic(&state.root_ca(), root_pem.as_bytes(), 0o644)?;
    let json = serde_json::to_vec_pretty(&identity)
        .map_err(|e| AgentError::corrupt(&state.identity(), e))?;
    write_atomic(&state.identity(), &json, 0o644)?;
    tracing::info!(agent = %identity.agent_id, server = %identity.api_url, "enrolled");
    Ok(identity)
}
