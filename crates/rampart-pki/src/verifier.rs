//! Client-certificate checks at every TLS handshake of the agent port.
//!
//! rustls' WebPKI verifier checks the chain up to Rampart's root, validity and key usage. Its
//! CRL support is fixed when the verifier is built, so instead the serial is then looked up in
//! a [`RevocationSet`] that the server updates in place: a revocation applies to the very next
//! handshake, without restarting or rebuilding the TLS acceptor.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};

use crate::{PkiError, certificate_serial};

/// Serials (lowercase hex) of revoked, unexpired certificates, shared between the handshake
/// path and whatever keeps it current.
#[derive(Debug, Default)]
pub struct RevocationSet {
    serials: RwLock<Arc<HashSet<String>>>,
}

impl RevocationSet {
    /// An empty set.
    pub fn new() -> RevocationSet {
        RevocationSet::default()
    }

    /// Replaces the whole set (periodic reload from the database, so revocations made by
    /// another replica reach this one).
    pub fn replace(&self, serials: HashSet<String>) {
        let mut guard = self.serials.write().unwrap_or_else(|p| p.into_inner());
        *guard = Arc::new(serials);
    }

    /// Adds serials at once (a revocation made by this process).
    pub fn extend(&self, serials: impl IntoIterator<Item = String>) {
        let mut guard = self.serials.write().unwrap_or_else(|p| p.into_inner());
        let mut next = (**guard).clone();
        next.extend(serials);
        *guard = Arc::new(next);
    }

    /// Whether a serial is revoked.
    pub fn contains(&self, serial: &str) -> bool {
        let guard = self.serials.read().unwrap_or_else(|p| p.into_inner());
        guard.contains(serial)
    }

    /// How many serials are listed.
    pub fn len(&self) -> usize {
        self.serials.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The agent port's client verifier: chain to the root, then not revoked.
#[derive(Debug)]
pub struct AgentCertVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    revoked: Arc<RevocationSet>,
}

impl AgentCertVerifier {
    /// A verifier trusting `root` and refusing serials in `revoked`.
    pub fn new(
        root: CertificateDer<'static>,
        revoked: Arc<RevocationSet>,
        provider: Arc<CryptoProvider>,
    ) -> Result<AgentCertVerifier, PkiError> {
        let mut roots = RootCertStore::empty();
        roots
            .add(root)
            .map_err(|e| PkiError::corrupt("root certificate", e))?;
        let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| PkiError::corrupt("client verifier", e))?;
        Ok(AgentCertVerifier { inner, revoked })
    }
}

impl ClientCertVerifier for AgentCertVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let serial = certificate_serial(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if self.revoked.contains(&serial) {
            tracing::warn!(%serial, "refused revoked client certificate");
            return Err(rustls::Error::InvalidCertificate(CertificateError::Revoked));
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
