//! HTTPS clients: one that trusts only Rampart's root (optionally presenting the agent's client
//! certificate), and one used exactly once, at enrolment, to fetch the root before it can be
//! trusted — its content is then accepted only if it matches the hash the token pins.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Deserialize;

use crate::AgentError;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn tls_err(e: impl std::fmt::Display) -> AgentError {
    AgentError::Tls(e.to_string())
}

fn build(config: rustls::ClientConfig) -> Result<reqwest::Client, AgentError> {
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(120))
        .pool_idle_timeout(Duration::from_secs(90))
        .build()
        .map_err(tls_err)
}

fn roots(root_pem: &str) -> Result<RootCertStore, AgentError> {
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(root_pem.as_bytes()) {
        store.add(cert.map_err(tls_err)?).map_err(tls_err)?;
    }
    if store.is_empty() {
        return Err(AgentError::Tls("no root certificate".into()));
    }
    Ok(store)
}

/// A client trusting only `root_pem`, without a client certificate (enrolment).
pub(crate) fn api_client(root_pem: &str) -> Result<reqwest::Client, AgentError> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_root_certificates(roots(root_pem)?)
        .with_no_client_auth();
    build(config)
}

/// A client trusting only `root_pem` and presenting the agent's certificate chain.
pub(crate) fn agent_client(
    root_pem: &str,
    chain_pem: &str,
    key_pem: &str,
) -> Result<reqwest::Client, AgentError> {
    let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(tls_err)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(tls_err)?;
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_root_certificates(roots(root_pem)?)
        .with_client_auth_cert(chain, key)
        .map_err(tls_err)?;
    build(config)
}

/// Accepts any server certificate but still checks handshake signatures. Used only to download
/// the root CA at enrolment; the download is then checked against the token's pinned hash.
#[derive(Debug)]
struct PinnedLater(Arc<CryptoProvider>);

impl ServerCertVerifier for PinnedLater {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Downloads the server's root certificate without trusting anything yet.
pub(crate) async fn fetch_unverified_root(api_url: &str) -> Result<String, AgentError> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedLater(provider())))
        .with_no_client_auth();
    let client = build(config)?;
    let url = format!("{api_url}/api/v1/ca/root.pem");
    let resp = client
        .get(&url)
        .send()
        .await
        .map_err(|e| unreachable(&url, &e))?;
    let resp = check(resp, "root CA download").await?;
    resp.text().await.map_err(|e| unreachable(&url, &e))
}

/// Whether the server ended the TLS session with a `certificate_revoked` alert: it refuses this
/// agent's certificate as revoked, which no retry will change.
fn revoked_alert(e: &reqwest::Error) -> bool {
    let is_revoked = |r: &rustls::Error| {
        matches!(
            r,
            rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRevoked)
        )
    };
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<rustls::Error>()
            && is_revoked(r)
        {
            return true;
        }
        // An io::Error hides the error it wraps from `source()`; `get_ref` reaches it.
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(r) = inner.downcast_ref::<rustls::Error>()
            && is_revoked(r)
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// A network-level failure with its whole cause chain (reqwest hides the TLS reason inside),
/// or the server's refusal of a revoked certificate.
pub(crate) fn unreachable(url: &str, e: &reqwest::Error) -> AgentError {
    if revoked_alert(e) {
        return AgentError::Revoked {
            url: url.to_string(),
        };
    }
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    AgentError::Unreachable {
        url: url.to_string(),
        detail,
    }
}

#[derive(Deserialize)]
struct Problem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    detail: String,
}

/// Turns an error response into [`AgentError::Refused`] with the server's problem details.
pub(crate) async fn check(
    resp: reqwest::Response,
    what: &str,
) -> Result<reqwest::Response, AgentError> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status().as_u16();
    let body = resp.bytes().await.unwrap_or_default();
    let problem: Problem = serde_json::from_slice(&body).unwrap_or(Problem {
        code: "http_error".into(),
        detail: String::from_utf8_lossy(&body).chars().take(500).collect(),
    });
    Err(AgentError::Refused {
        what: what.to_string(),
        status,
        code: problem.code,
        detail: problem.detail,
    })
}
