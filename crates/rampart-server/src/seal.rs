//! Credentials the server must keep to use (a Splunk HEC token), sealed at rest.
//!
//! AES-256-GCM under a key derived from the operator's passphrase, which every replica holds
//! and the database does not: HMAC-SHA256 keyed with the passphrase over a label and the
//! installation's root CA fingerprint. The destination's name is the associated data, so a
//! sealed credential copied to another destination's row does not open. A copy of the
//! database alone reveals no credential.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Why a sealed credential did not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// Not something this version sealed.
    #[error("sealed credential is malformed")]
    Malformed,
    /// Sealed under another passphrase or installation, or for another destination, or
    /// altered.
    #[error("sealed credential does not open with this server's passphrase")]
    WontOpen,
    /// The cipher refused (never expected).
    #[error("sealing failed")]
    Cipher,
}

const PREFIX: &str = "v1.";

fn key(passphrase: &[u8], installation: &str) -> Result<LessSafeKey, SealError> {
    use hmac::Mac;
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(passphrase)
        .map_err(|_| SealError::Cipher)?;
    mac.update(b"rampart sealed credential v1\0");
    mac.update(installation.as_bytes());
    let bytes = mac.finalize().into_bytes();
    let unbound = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| SealError::Cipher)?;
    Ok(LessSafeKey::new(unbound))
}

/// Seals `plain` for `context` (say `event-destination:siem`).
pub fn seal(
    passphrase: &[u8],
    installation: &str,
    context: &str,
    plain: &str,
) -> Result<String, SealError> {
    use rand::RngCore;
    let key = key(passphrase, installation)?;
    let mut nonce = [0u8; NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut nonce);
    let mut in_out = plain.as_bytes().to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(context.as_bytes()),
        &mut in_out,
    )
    .map_err(|_| SealError::Cipher)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&in_out);
    Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
}

/// Opens what [`seal`] sealed for the same context.
pub fn open(
    passphrase: &[u8],
    installation: &str,
    context: &str,
    sealed: &str,
) -> Result<String, SealError> {
    let raw = sealed
        .strip_prefix(PREFIX)
        .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
        .ok_or(SealError::Malformed)?;
    if raw.len() < NONCE_LEN + AES_256_GCM.tag_len() {
        return Err(SealError::Malformed);
    }
    let (nonce, rest) = raw.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Malformed)?;
    let key = key(passphrase, installation)?;
    let mut in_out = rest.to_vec();
    let plain = key
        .open_in_place(nonce, Aad::from(context.as_bytes()), &mut in_out)
        .map_err(|_| SealError::WontOpen)?;
    String::from_utf8(plain.to_vec()).map_err(|_| SealError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_only_with_the_same_passphrase_installation_and_context() {
        let s = seal(b"pass", "root-fp", "event-destination:a", "hec-token").unwrap();
        assert!(s.starts_with("v1."));
        assert!(!s.contains("hec-token"));
        assert_eq!(
            open(b"pass", "root-fp", "event-destination:a", &s).unwrap(),
            "hec-token"
        );
        // Two seals of one credential differ (fresh nonce).
        assert_ne!(
            s,
            seal(b"pass", "root-fp", "event-destination:a", "hec-token").unwrap()
        );
        for (p, i, c) in [
            (&b"other"[..], "root-fp", "event-destination:a"),
            (b"pass", "other-fp", "event-destination:a"),
            (b"pass", "root-fp", "event-destination:b"),
        ] {
            assert_eq!(open(p, i, c, &s), Err(SealError::WontOpen), "{c}");
        }
        // A flipped bit anywhere is refused.
        let mut bytes = s.clone().into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(bytes).unwrap();
        assert!(open(b"pass", "root-fp", "event-destination:a", &altered).is_err());
        for bad in ["", "v1.", "v2.AAAA", "v1.!!!", "v1.AAAA"] {
            assert_eq!(
                open(b"pass", "root-fp", "x", bad),
                Err(SealError::Malformed),
                "{bad}"
            );
        }
    }
}
