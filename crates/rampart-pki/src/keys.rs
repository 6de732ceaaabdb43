//! Private keys at rest: PKCS#8 encrypted with a passphrase (scrypt + AES-256-CBC), the format
//! `openssl pkey` reads, so an operator can inspect or move keys with standard tools.

use pkcs8::der::pem::LineEnding;
use pkcs8::{EncryptedPrivateKeyInfo, PrivateKeyInfo};
use rand::rngs::OsRng;

use crate::PkiError;

const LABEL: &str = "ENCRYPTED PRIVATE KEY";

/// Encrypts a PKCS#8 DER private key; returns PEM.
pub fn encrypt_key(pkcs8_der: &[u8], passphrase: &[u8], what: &str) -> Result<String, PkiError> {
    let info = PrivateKeyInfo::try_from(pkcs8_der).map_err(|e| PkiError::corrupt(what, e))?;
    let doc = info
        .encrypt(OsRng, passphrase)
        .map_err(|e| PkiError::corrupt(what, e))?;
    doc.to_pem(LABEL, LineEnding::LF)
        .map(|p| p.to_string())
        .map_err(|e| PkiError::corrupt(what, e))
}

/// Decrypts an encrypted PKCS#8 PEM key; returns the PKCS#8 DER.
pub fn decrypt_key(pem: &str, passphrase: &[u8], what: &str) -> Result<Vec<u8>, PkiError> {
    let (label, doc) =
        pkcs8::SecretDocument::from_pem(pem).map_err(|e| PkiError::corrupt(what, e))?;
    if label != LABEL {
        return Err(PkiError::corrupt(
            what,
            format!("PEM label {label:?}, expected {LABEL:?}"),
        ));
    }
    let enc = EncryptedPrivateKeyInfo::try_from(doc.as_bytes())
        .map_err(|e| PkiError::corrupt(what, e))?;
    let plain = enc
        .decrypt(passphrase)
        .map_err(|_| PkiError::WrongPassphrase {
            what: what.to_string(),
        })?;
    // A wrong passphrase can, rarely, still yield valid CBC padding: only a key that parses is
    // accepted.
    PrivateKeyInfo::try_from(plain.as_bytes()).map_err(|_| PkiError::WrongPassphrase {
        what: what.to_string(),
    })?;
    Ok(plain.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_passphrase() {
        let key = rcgen::KeyPair::generate().unwrap();
        let pem = encrypt_key(&key.serialize_der(), b"correct horse", "root").unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        assert!(
            !pem.contains(&key.serialize_pem()),
            "no plaintext in the output"
        );
        assert_eq!(
            decrypt_key(&pem, b"correct horse", "root").unwrap(),
            key.serialize_der()
        );
        let err = decrypt_key(&pem, b"battery staple", "root").unwrap_err();
        assert!(matches!(err, PkiError::WrongPassphrase { .. }), "{err}");
        assert!(matches!(
            decrypt_key("not pem", b"x", "root"),
            Err(PkiError::Corrupt { .. })
        ));
    }
}
