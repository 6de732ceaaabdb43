//! The certificate authority: root, intermediate, server and agent certificates, CRLs.

use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams,
    CertificateSigningRequestParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod,
    KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::{PkiError, decrypt_key, encrypt_key};

/// Lifetime of an agent's client certificate.
pub const AGENT_CERT_LIFETIME: Duration = Duration::hours(24);
/// How far back certificates' `notBefore` is set, so a peer whose clock is a little behind
/// still accepts a certificate issued "now" (step-ca's default).
pub const BACKDATE: Duration = Duration::minutes(1);
const ROOT_LIFETIME: Duration = Duration::days(3653);
const INTERMEDIATE_LIFETIME: Duration = Duration::days(730);
const SERVER_LIFETIME: Duration = Duration::days(90);

/// A signer as stored: certificate PEM and passphrase-encrypted PKCS#8 key PEM.
#[derive(Debug, Clone, PartialEq)]
pub struct CaFiles {
    /// Certificate, PEM.
    pub cert_pem: String,
    /// Encrypted private key, PEM.
    pub key_pem: String,
}

/// A loaded CA: root and intermediate with usable keys.
pub struct Ca {
    root_der: CertificateDer<'static>,
    root_pem: String,
    root_key: KeyPair,
    intermediate_der: CertificateDer<'static>,
    intermediate_pem: String,
    intermediate: Issuer<'static, KeyPair>,
    root_not_after: OffsetDateTime,
    intermediate_not_after: OffsetDateTime,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("root_fingerprint", &fingerprint(&self.root_der))
            .field(
                "intermediate_fingerprint",
                &fingerprint(&self.intermediate_der),
            )
            .finish_non_exhaustive()
    }
}

/// A certificate issued to an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuedCert {
    /// The leaf certificate, PEM.
    pub cert_pem: String,
    /// Leaf then intermediate, PEM: what the agent presents in its handshakes.
    pub chain_pem: String,
    /// Serial, lowercase hex.
    pub serial: String,
    /// SHA-256 of the leaf's DER, hex.
    pub fingerprint: String,
    /// Start of validity (backdated).
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

/// The server's TLS certificate and key. The key is generated at start and never written.
pub struct ServerCert {
    /// Leaf then intermediate.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key, PKCS#8 DER.
    pub key: PrivatePkcs8KeyDer<'static>,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

/// Who a client certificate says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentIdentity {
    /// Agent id (the subject CN).
    pub agent_id: String,
    /// Serial, lowercase hex.
    pub serial: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// SHA-256 of the DER, hex.
    pub fingerprint: String,
}

/// SHA-256 of a DER certificate, lowercase hex.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Serial number of a DER certificate, lowercase hex (as Rampart stores it).
pub fn certificate_serial(der: &[u8]) -> Result<String, PkiError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| PkiError::corrupt("certificate", e))?;
    Ok(hex::encode(cert.raw_serial()))
}

/// Whether a DER CRL lists the certificate with this serial (lowercase hex, as
/// [`certificate_serial`] gives it). The caller fetched the CRL over TLS from the server it
/// trusts, so its signature is not checked again here: what matters is the server's own word.
pub fn crl_lists_serial(crl_der: &[u8], serial_hex: &str) -> Result<bool, PkiError> {
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(crl_der)
        .map_err(|e| PkiError::corrupt("CRL", e))?;
    let wanted = hex::decode(serial_hex).map_err(|e| PkiError::corrupt("serial", e))?;
    let trim = |b: &[u8]| -> Vec<u8> { b.iter().copied().skip_while(|x| *x == 0).collect() };
    let wanted = trim(&wanted);
    Ok(crl
        .iter_revoked_certificates()
        .any(|r| trim(r.raw_serial()) == wanted))
}

/// When a DER certificate expires.
pub fn certificate_not_after(der: &[u8]) -> Result<OffsetDateTime, PkiError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| PkiError::corrupt("certificate", e))?;
    OffsetDateTime::from_unix_timestamp(cert.validity().not_after.timestamp())
        .map_err(|e| PkiError::corrupt("certificate", e))
}

/// Reads the agent identity out of a client certificate.
pub fn agent_identity(der: &[u8]) -> Result<AgentIdentity, PkiError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| PkiError::corrupt("certificate", e))?;
    let agent_id = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .ok_or_else(|| PkiError::corrupt("certificate", "no common name"))?
        .to_string();
    let not_after = OffsetDateTime::from_unix_timestamp(cert.validity().not_after.timestamp())
        .map_err(|e| PkiError::corrupt("certificate", e))?;
    let not_before = OffsetDateTime::from_unix_timestamp(cert.validity().not_before.timestamp())
        .map_err(|e| PkiError::corrupt("certificate", e))?;
    Ok(AgentIdentity {
        agent_id,
        serial: hex::encode(cert.raw_serial()),
        not_before,
        not_after,
        fingerprint: fingerprint(der),
    })
}

/// A random, positive, 128-bit serial whose DER encoding is exactly these 16 bytes.
fn random_serial() -> (SerialNumber, String) {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    (SerialNumber::from_slice(&bytes), hex::encode(bytes))
}

fn ca_params(cn: &str, path_len: u8, now: OffsetDateTime, lifetime: Duration) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(DnType::OrganizationName, "Rampart");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = now - BACKDATE;
    p.not_after = now + lifetime;
    p.serial_number = Some(random_serial().0);
    p.use_authority_key_identifier_extension = true;
    p.key_identifier_method = KeyIdMethod::Sha256;
    p
}

fn load_key(files: &CaFiles, passphrase: &[u8], what: &str) -> Result<KeyPair, PkiError> {
    let der = decrypt_key(&files.key_pem, passphrase, what)?;
    KeyPair::try_from(der.as_slice()).map_err(|e| PkiError::corrupt(what, e))
}

fn pem_to_der(pem: &str, what: &str) -> Result<CertificateDer<'static>, PkiError> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| PkiError::corrupt(what, e))
}

impl Ca {
    /// Creates a new root and intermediate. Returns the CA and both signers sealed with
    /// `passphrase` for storage.
    pub fn create(
        passphrase: &[u8],
        now: OffsetDateTime,
    ) -> Result<(Ca, CaFiles, CaFiles), PkiError> {
        let root_key = KeyPair::generate()?;
        let root_params = ca_params("Rampart Root CA", 1, now, ROOT_LIFETIME);
        let root_cert = root_params.self_signed(&root_key)?;
        let root_files = CaFiles {
            cert_pem: root_cert.pem(),
            key_pem: encrypt_key(&root_key.serialize_der(), passphrase, "root")?,
        };
        let root_issuer = Issuer::new(root_params, clone_key(&root_key)?);
        let (inter_files, inter_key) = Ca::new_intermediate(&root_issuer, passphrase, now)?;
        let ca = Ca::assemble(&root_files, root_key, &inter_files, inter_key)?;
        Ok((ca, root_files, inter_files))
    }

    fn new_intermediate(
        root: &Issuer<'_, KeyPair>,
        passphrase: &[u8],
        now: OffsetDateTime,
    ) -> Result<(CaFiles, KeyPair), PkiError> {
        let key = KeyPair::generate()?;
        let cn = format!("Rampart Intermediate CA {}", now.date());
        let cert = ca_params(&cn, 0, now, INTERMEDIATE_LIFETIME).signed_by(&key, root)?;
        let files = CaFiles {
            cert_pem: cert.pem(),
            key_pem: encrypt_key(&key.serialize_der(), passphrase, "intermediate")?,
        };
        Ok((files, key))
    }

    fn assemble(
        root: &CaFiles,
        root_key: KeyPair,
        intermediate: &CaFiles,
        intermediate_key: KeyPair,
    ) -> Result<Ca, PkiError> {
        let root_der = pem_to_der(&root.cert_pem, "root certificate")?;
        let intermediate_der = pem_to_der(&intermediate.cert_pem, "intermediate certificate")?;
        let issuer = Issuer::from_ca_cert_der(&intermediate_der, intermediate_key)?;
        let root_not_after = certificate_not_after(&root_der)?;
        let intermediate_not_after = certificate_not_after(&intermediate_der)?;
        Ok(Ca {
            root_not_after,
            intermediate_not_after,
            root_der,
            root_pem: root.cert_pem.clone(),
            root_key,
            intermediate_der,
            intermediate_pem: intermediate.cert_pem.clone(),
            intermediate: issuer,
        })
    }

    /// Loads a stored CA. A wrong passphrase is [`PkiError::WrongPassphrase`]: the server
    /// refuses to start rather than run without its CA.
    pub fn load(root: &CaFiles, intermediate: &CaFiles, passphrase: &[u8]) -> Result<Ca, PkiError> {
        let root_key = load_key(root, passphrase, "root")?;
        let intermediate_key = load_key(intermediate, passphrase, "intermediate")?;
        Ca::assemble(root, root_key, intermediate, intermediate_key)
    }

    /// A new intermediate signed by the same root. Agents trust the root, so certificates from
    /// the old intermediate stay valid until they expire (at most 24 h) and agents renew onto
    /// the new one without re-enrolling.
    pub fn rotate_intermediate(
        &self,
        passphrase: &[u8],
        now: OffsetDateTime,
    ) -> Result<(Ca, CaFiles), PkiError> {
        let root_issuer = Issuer::from_ca_cert_der(&self.root_der, clone_key(&self.root_key)?)?;
        let (files, key) = Ca::new_intermediate(&root_issuer, passphrase, now)?;
        let root_files = CaFiles {
            cert_pem: self.root_pem.clone(),
            key_pem: String::new(),
        };
        let ca = Ca::assemble(&root_files, clone_key(&self.root_key)?, &files, key)?;
        Ok((ca, files))
    }

    /// The root certificate, PEM: the trust anchor agents pin.
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// The root certificate, DER.
    pub fn root_der(&self) -> &CertificateDer<'static> {
        &self.root_der
    }

    /// SHA-256 of the root's DER, hex: what enrolment tokens carry so agents can pin it.
    pub fn root_fingerprint(&self) -> String {
        fingerprint(&self.root_der)
    }

    /// The intermediate certificate, PEM.
    pub fn intermediate_pem(&self) -> &str {
        &self.intermediate_pem
    }

    /// When the root certificate expires: every agent must then be given a new trust anchor.
    pub fn root_not_after(&self) -> OffsetDateTime {
        self.root_not_after
    }

    /// When the intermediate expires: it must be rotated well before (agents renew onto the
    /// new one without re-enrolling).
    pub fn intermediate_not_after(&self) -> OffsetDateTime {
        self.intermediate_not_after
    }

    /// Issues the server's TLS certificate for `names` (DNS names or IP addresses).
    pub fn issue_server(
        &self,
        names: &[String],
        now: OffsetDateTime,
    ) -> Result<ServerCert, PkiError> {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name
            .push(DnType::OrganizationName, "Rampart");
        p.distinguished_name.push(
            DnType::CommonName,
            names.first().map_or("rampart-server", |s| s.as_str()),
        );
        for n in names {
            let san = match n.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) if is_dns_name(n) => SanType::DnsName(
                    n.clone()
                        .try_into()
                        .map_err(|_| PkiError::BadName(n.clone()))?,
                ),
                Err(_) => return Err(PkiError::BadName(n.clone())),
            };
            p.subject_alt_names.push(san);
        }
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.not_before = now - BACKDATE;
        p.not_after = now + SERVER_LIFETIME;
        p.serial_number = Some(random_serial().0);
        p.use_authority_key_identifier_extension = true;
        let cert = p.signed_by(&key, &self.intermediate)?;
        Ok(ServerCert {
            chain: vec![cert.der().clone(), self.intermediate_der.clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
            not_after: p.not_after,
        })
    }

    /// Issues an agent's client certificate from its CSR. Only the CSR's public key (and its
    /// proof of possession, the CSR signature) is used: subject, names, key usages, extended
    /// key usages, validity and serial are all set here, whatever the CSR asked for.
    pub fn issue_agent(
        &self,
        csr_pem: &str,
        agent_id: &str,
        now: OffsetDateTime,
    ) -> Result<IssuedCert, PkiError> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| PkiError::BadCsr(e.to_string()))?;
        let mut p = CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name
            .push(DnType::OrganizationName, "Rampart agent");
        p.distinguished_name.push(DnType::CommonName, agent_id);
        p.subject_alt_names = vec![SanType::URI(
            format!("urn:rampart:agent:{agent_id}")
                .try_into()
                .map_err(|_| PkiError::BadCsr(format!("agent id {agent_id:?} is not URI-safe")))?,
        )];
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.not_before = now - BACKDATE;
        p.not_after = now + AGENT_CERT_LIFETIME;
        let (serial, serial_hex) = random_serial();
        p.serial_number = Some(serial);
        p.use_authority_key_identifier_extension = true;
        let cert = p.signed_by(&csr.public_key, &self.intermediate)?;
        let cert_pem = cert.pem();
        Ok(IssuedCert {
            chain_pem: format!("{cert_pem}{}", self.intermediate_pem),
            cert_pem,
            serial: serial_hex,
            fingerprint: fingerprint(cert.der()),
            not_before: p.not_before,
            not_after: p.not_after,
        })
    }

    /// A CRL signed by the intermediate listing `revoked` (serial hex, revocation time), valid
    /// until `next_update`.
    pub fn crl(
        &self,
        revoked: &[(String, OffsetDateTime)],
        number: u64,
        now: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<Vec<u8>, PkiError> {
        let mut revoked_certs = Vec::with_capacity(revoked.len());
        for (serial, at) in revoked {
            let bytes = hex::decode(serial).map_err(|e| PkiError::corrupt("serial", e))?;
            revoked_certs.push(RevokedCertParams {
                serial_number: SerialNumber::from_slice(&bytes),
                revocation_time: *at,
                reason_code: Some(RevocationReason::Unspecified),
                invalidity_date: None,
            });
        }
        let params = CertificateRevocationListParams {
            this_update: now,
            next_update,
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.intermediate)?.der().to_vec())
    }
}

/// A host name a TLS client will match: LDH labels of 1–63 characters, 253 in all, with an
/// optional leading `*.` wildcard.
fn is_dns_name(name: &str) -> bool {
    let name = name.strip_prefix("*.").unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn clone_key(key: &KeyPair) -> Result<KeyPair, PkiError> {
    KeyPair::try_from(key.serialize_der().as_slice()).map_err(|e| PkiError::corrupt("key", e))
}
