//! OpenID Connect, the parts that judge rather than fetch: PKCE (RFC 7636), ID-token
//! validation (OIDC Core §3.1.3.7) against a JWKS the caller fetched, and the operator's
//! mapping from a claim's values to a role. The server does the HTTP (discovery, JWKS, the
//! token request); everything that decides whether someone gets in is here, with no I/O.
//!
//! Signatures and the `iss`/`aud` checks are `jsonwebtoken`'s; times are judged here against
//! the `now` the caller passes, so one clock decides and tests can ask about any instant.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
pub use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{Role, Scope};

/// Asymmetric algorithms only: an HMAC-signed ID token would be signed with the client secret,
/// which the relying party holds too.
const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// How far clocks may disagree, in seconds.
pub const LEEWAY_SECS: i64 = 60;

/// A PKCE pair: the verifier kept by the relying party, the S256 challenge sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkce {
    /// 43 characters of base64url (256 random bits).
    pub verifier: String,
    /// BASE64URL(SHA-256(verifier)).
    pub challenge: String,
}

impl Pkce {
    /// A new random pair.
    pub fn new() -> Pkce {
        Pkce::from_verifier(crate::secret::random_urlsafe(32))
    }

    /// The pair for a given verifier.
    pub fn from_verifier(verifier: String) -> Pkce {
        let challenge = B64URL.encode(Sha256::digest(verifier.as_bytes()));
        Pkce {
            verifier,
            challenge,
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Pkce::new()
    }
}

/// What an ID token must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected<'a> {
    /// The issuer, exactly as discovery gave it.
    pub issuer: &'a str,
    /// This relying party's client id (an audience, and `azp` when there are several).
    pub client_id: &'a str,
    /// The nonce sent with the authorization request.
    pub nonce: &'a str,
    /// Unix seconds.
    pub now: i64,
}

/// The claims Rampart reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct IdClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the account at the issuer, stable and never reassigned.
    pub sub: String,
    /// Expiry.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before (rare in ID tokens).
    #[serde(default)]
    pub nbf: Option<i64>,
    /// The nonce echoed.
    #[serde(default)]
    pub nonce: Option<String>,
    /// Authorized party.
    #[serde(default)]
    pub azp: Option<String>,
    /// Audience(s).
    pub aud: Audience,
    /// Every other claim (names, e-mail, groups), for the role mapping.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// `aud`: one string or several.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl Audience {
    fn len(&self) -> usize {
        match self {
            Audience::One(_) => 1,
            Audience::Many(v) => v.len(),
        }
    }
}

/// Why an ID token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, or a header or claim that cannot be read.
    #[error("the ID token is malformed: {0}")]
    Malformed(String),
    /// An algorithm Rampart does not accept (none, HMAC, unknown).
    #[error("the ID token is signed with {0}, which is not accepted (asymmetric algorithms only)")]
    Algorithm(String),
    /// No key of the provider's JWKS has the token's `kid`.
    #[error("no key {0:?} in the provider's JWKS")]
    UnknownKey(String),
    /// The signature does not verify with the provider's key.
    #[error("the ID token's signature does not verify")]
    Signature,
    /// Another issuer.
    #[error("the ID token is from another issuer")]
    Issuer,
    /// Not for this client.
    #[error("the ID token is not for this client (audience or azp)")]
    Audience,
    /// Past its expiry.
    #[error("the ID token expired")]
    Expired,
    /// Issued in the future, or not yet valid.
    #[error("the ID token is not valid yet (issued in the future)")]
    NotYetValid,
    /// Missing or another nonce: a replayed or injected token.
    #[error("the ID token's nonce is not the one this login sent")]
    Nonce,
}

/// Validates an ID token: signature through the JWKS key named by `kid` (the only key, when
/// the JWKS has one and the token names none), issuer, audience and `azp`, times, nonce.
pub fn validate(
    token: &str,
    jwks: &JwkSet,
    expected: &Expected<'_>,
) -> Result<IdClaims, TokenError> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(TokenError::Algorithm(format!("{:?}", header.alg)));
    }
    let jwk = match &header.kid {
        Some(kid) => jwks
            .find(kid)
            .ok_or_else(|| TokenError::UnknownKey(kid.clone()))?,
        None if jwks.keys.len() == 1 => &jwks.keys[0],
        None => return Err(TokenError::UnknownKey("(none named)".into())),
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|e| TokenError::Malformed(e.to_string()))?;
    let mut v = Validation::new(header.alg);
    v.set_issuer(&[expected.issuer]);
    v.set_audience(&[expected.client_id]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    // Times are judged below against the caller's clock.
    v.validate_exp = false;
    v.validate_nbf = false;
    let data = jsonwebtoken::decode::<IdClaims>(token, &key, &v).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidSignature => TokenError::Signature,
            K::InvalidIssuer => TokenError::Issuer,
            K::InvalidAudience => TokenError::Audience,
            K::InvalidAlgorithm | K::InvalidAlgorithmName => {
                TokenError::Algorithm(format!("{:?}", header.alg))
            }
            _ => TokenError::Malformed(e.to_string()),
        }
    })?;
    let c = data.claims;
    if c.aud.len() > 1 && c.azp.as_deref() != Some(expected.client_id) {
        return Err(TokenError::Audience);
    }
    if let Some(azp) = &c.azp
        && azp != expected.client_id
    {
        return Err(TokenError::Audience);
    }
    if expected.now > c.exp + LEEWAY_SECS {
        return Err(TokenError::Expired);
    }
    if c.iat > expected.now + LEEWAY_SECS
        || c.nbf.is_some_and(|nbf| nbf > expected.now + LEEWAY_SECS)
    {
        return Err(TokenError::NotYetValid);
    }
    if c.nonce.as_deref() != Some(expected.nonce) {
        return Err(TokenError::Nonce);
    }
    Ok(c)
}

/// One line of the operator's mapping: accounts whose claim holds `value` get `role`
/// (limited to `groups`, when given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleMapping {
    /// The claim value (a group name at the provider).
    pub value: String,
    /// The role it grants.
    pub role: Role,
    /// The agent groups it is limited to; empty: the whole fleet.
    pub groups: Vec<String>,
}

impl std::str::FromStr for RoleMapping {
    type Err = String;

    /// `VALUE=ROLE` or `VALUE=ROLE:GROUP,GROUP` (`rampart-admins=admin`,
    /// `web-ops=operator:web,db`).
    fn from_str(s: &str) -> Result<RoleMapping, String> {
        let (value, grant) = s
            .rsplit_once('=')
            .ok_or_else(|| format!("{s:?}: expected VALUE=ROLE or VALUE=ROLE:GROUP,GROUP"))?;
        if value.is_empty() {
            return Err(format!("{s:?}: the claim value is empty"));
        }
        let (role, groups) = match grant.split_once(':') {
            Some((r, g)) => (r, g.split(',').map(str::to_owned).collect::<Vec<_>>()),
            None => (grant, Vec::new()),
        };
        let role: Role = role.parse().map_err(|e| format!("{s:?}: {e}"))?;
        Scope::from_groups(groups.iter().cloned()).map_err(|e| format!("{s:?}: {e}"))?;
        Ok(RoleMapping {
            value: value.to_owned(),
            role,
            groups,
        })
    }
}

/// The values of `claim` (a string or an array of strings; anything else counts as none).
pub fn claim_values(claims: &IdClaims, claim: &str) -> Vec<String> {
    match claims.other.get(claim) {
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// The role for an account: the first mapping (in the operator's order) whose value the
/// account's claim holds, else `default`, else none (the login is refused).
pub fn map_role<'a>(
    values: &[String],
    mappings: &'a [RoleMapping],
    default: Option<&'a RoleMapping>,
) -> Option<&'a RoleMapping> {
    mappings
        .iter()
        .find(|m| values.contains(&m.value))
        .or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        let p = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into());
        assert_eq!(p.challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        let fresh = Pkce::new();
        assert_eq!(fresh.verifier.len(), 43);
        assert_ne!(fresh.verifier, Pkce::new().verifier);
    }

    #[test]
    fn mappings_parse_and_pick_the_first_match() {
        let m: Vec<RoleMapping> = [
            "rampart-admins=admin",
            "web-ops=operator:web,db",
            "everyone=viewer",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        assert_eq!(m[1].role, Role::Operator);
        assert_eq!(m[1].groups, ["web", "db"]);
        let pick = |vals: &[&str]| {
            let vals: Vec<String> = vals.iter().map(|s| s.to_string()).collect();
            map_role(&vals, &m, None).map(|r| r.role)
        };
        assert_eq!(pick(&["everyone", "rampart-admins"]), Some(Role::Admin));
        assert_eq!(pick(&["web-ops", "everyone"]), Some(Role::Operator));
        assert_eq!(pick(&["contractors"]), None);
        let fallback: RoleMapping = "*=viewer".parse().unwrap();
        assert_eq!(
            map_role(&[], &m, Some(&fallback)).map(|r| r.role),
            Some(Role::Viewer)
        );
        for bad in ["admins", "=admin", "x=emperor", "x=operator:bad group"] {
            assert!(bad.parse::<RoleMapping>().is_err(), "{bad}");
        }
    }

    #[test]
    fn malformed_and_unsigned_tokens_are_refused() {
        let jwks = JwkSet { keys: Vec::new() };
        let e = Expected {
            issuer: "https://idp",
            client_id: "rampart",
            nonce: "n",
            now: 0,
        };
        assert!(matches!(
            validate("not a jwt", &jwks, &e),
            Err(TokenError::Malformed(_))
        ));
        // alg "none": {"alg":"none"} . {"sub":"x"} . (no signature)
        let none = format!(
            "{}.{}.",
            B64URL.encode(br#"{"alg":"none","typ":"JWT"}"#),
            B64URL.encode(br#"{"sub":"x"}"#)
        );
        assert!(validate(&none, &jwks, &e).is_err());
        // HS256, even with a valid-looking shape.
        let hs = format!(
            "{}.{}.{}",
            B64URL.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
            B64URL.encode(br#"{"sub":"x"}"#),
            B64URL.encode(b"sig")
        );
        assert_eq!(
            validate(&hs, &jwks, &e),
            Err(TokenError::Algorithm("HS256".into()))
        );
    }
}
