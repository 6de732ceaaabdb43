//! Attestation signing keys: generation, the public JWK, the RFC 7638 thumbprint that names a
//! key (`kid`), and signing.
//!
//! The key id is the key's own thumbprint, so a key set cannot be edited to put another key
//! under a trusted name: whoever checks a signature recomputes the thumbprint of the key they
//! were given and compares it with the `kid`.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::AttestError;

/// The JWS algorithms attestations can be signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Alg {
    /// Ed25519 (RFC 8037): the default; small, fast, deterministic.
    EdDSA,
    /// ECDSA on P-256 with SHA-256: for verifiers without Ed25519.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 and a 2048-bit key: for the oldest verifiers.
    RS256,
}

impl Alg {
    /// Every algorithm, default first.
    pub const ALL: [Alg; 3] = [Alg::EdDSA, Alg::ES256, Alg::RS256];

    /// The JWS `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::EdDSA => "EdDSA",
            Alg::ES256 => "ES256",
            Alg::RS256 => "RS256",
        }
    }

    /// jsonwebtoken's name for it.
    pub fn jws(self) -> Algorithm {
        match self {
            Alg::EdDSA => Algorithm::EdDSA,
            Alg::ES256 => Algorithm::ES256,
            Alg::RS256 => Algorithm::RS256,
        }
    }

    fn key_algorithm(self) -> KeyAlgorithm {
        match self {
            Alg::EdDSA => KeyAlgorithm::EdDSA,
            Alg::ES256 => KeyAlgorithm::ES256,
            Alg::RS256 => KeyAlgorithm::RS256,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Alg {
    type Err = AttestError;

    /// Case-insensitive: `eddsa`, `es256` and `rs256` are accepted as typed on a command line.
    fn from_str(s: &str) -> Result<Alg, AttestError> {
        Alg::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| AttestError::Key(format!("algorithm {s:?}: one of EdDSA, ES256, RS256")))
    }
}

/// A private signing key with its public JWK.
pub struct SigningKey {
    alg: Alg,
    /// PKCS#8 v1 DER: what is stored, encrypted with the operator's passphrase.
    pkcs8: Vec<u8>,
    encoding: EncodingKey,
    public: Jwk,
    kid: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new random key.
    pub fn generate(alg: Alg) -> Result<SigningKey, AttestError> {
        let failed = |what: &str| AttestError::Key(format!("cannot generate an {alg} key: {what}"));
        let pkcs8 = match alg {
            Alg::EdDSA => Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new())
                .map_err(|_| failed("Ed25519"))?
                .as_ref()
                .to_vec(),
            Alg::ES256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                    .map_err(|_| failed("P-256"))?
                    .as_ref()
                    .to_vec()
            }
            Alg::RS256 => {
                let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| failed("RSA"))?;
                let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> =
                    pair.as_der().map_err(|_| failed("RSA PKCS#8"))?;
                der.as_ref().to_vec()
            }
        };
        SigningKey::from_pkcs8(alg, &pkcs8)
    }

    /// A key from its PKCS#8 v1 DER.
    pub fn from_pkcs8(alg: Alg, pkcs8: &[u8]) -> Result<SigningKey, AttestError> {
        let rejected =
            |e: &dyn fmt::Display| AttestError::Key(format!("not an {alg} PKCS#8 key: {e}"));
        let encoding = match alg {
            Alg::EdDSA => {
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(|e| rejected(&e))?;
                EncodingKey::from_ed_der(pkcs8)
            }
            Alg::ES256 => {
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(|e| rejected(&e))?;
                EncodingKey::from_ec_der(pkcs8)
            }
            Alg::RS256 => {
                aws_lc_rs::rsa::KeyPair::from_pkcs8(pkcs8).map_err(|e| rejected(&e))?;
                // jsonwebtoken signs with the PKCS#1 key the PKCS#8 structure wraps.
                let info = pkcs8::PrivateKeyInfo::try_from(pkcs8).map_err(|e| rejected(&e))?;
                EncodingKey::from_rsa_der(info.private_key)
            }
        };
        let mut public = Jwk::from_encoding_key(&encoding, alg.jws())
            .map_err(|e| AttestError::Key(format!("the {alg} key's public half: {e}")))?;
        let kid = thumbprint(&public)?;
        public.common.key_id = Some(kid.clone());
        public.common.public_key_use = Some(PublicKeyUse::Signature);
        public.common.key_algorithm = Some(alg.key_algorithm());
        Ok(SigningKey {
            alg,
            pkcs8: pkcs8.to_vec(),
            encoding,
            public,
            kid,
        })
    }

    /// The algorithm.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The key id: the RFC 7638 SHA-256 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWK, with `kid`, `alg` and `use`.
    pub fn public_jwk(&self) -> &Jwk {
        &self.public
    }

    /// The private key as PKCS#8 v1 DER, to be stored encrypted.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// A compact JWS of `claims` with this key: `typ`, `alg` and `kid` in the header.
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, AttestError> {
        let mut header = Header::new(self.alg.jws());
        header.typ = Some(typ.to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| AttestError::Key(format!("signing with {}: {e}", self.kid)))
    }
}

/// RFC 7638 thumbprint (SHA-256, base64url) of a public JWK: only its required members count,
/// so `kid`, `alg` and `use` do not change it.
pub fn thumbprint(jwk: &Jwk) -> Result<String, AttestError> {
    jwk.thumbprint(ThumbprintHash::SHA256)
        .map_err(|e| AttestError::Key(format!("no RFC 7638 thumbprint for this key: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1: the RSA key and its thumbprint, as printed in the RFC.
        let jwk: Jwk = serde_json::from_str(
            r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        )
        .unwrap();
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn keys_of_every_algorithm_round_trip_through_pkcs8() {
        for alg in Alg::ALL {
            let key = SigningKey::generate(alg).unwrap();
            assert_eq!(key.kid(), thumbprint(key.public_jwk()).unwrap());
            assert_eq!(key.public_jwk().common.key_id.as_deref(), Some(key.kid()));
            let again = SigningKey::from_pkcs8(alg, key.pkcs8()).unwrap();
            assert_eq!(again.kid(), key.kid(), "{alg}");
            // No private member in the public JWK.
            let text = serde_json::to_string(key.public_jwk()).unwrap();
            assert!(!text.contains("\"d\""), "{alg}: {text}");
        }
    }

    #[test]
    fn a_key_of_another_algorithm_is_refused() {
        let ed = SigningKey::generate(Alg::EdDSA).unwrap();
        let err = SigningKey::from_pkcs8(Alg::ES256, ed.pkcs8()).unwrap_err();
        assert!(err.to_string().contains("not an ES256 PKCS#8 key"), "{err}");
        assert!("es256".parse::<Alg>().is_ok());
        assert!("HS256".parse::<Alg>().is_err());
    }
}
