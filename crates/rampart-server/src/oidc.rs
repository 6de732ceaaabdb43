//! OpenID Connect logins, the I/O half: discovery, the provider's JWKS (fetched again when a
//! token names a key it does not have: the provider rotated), the authorization URL and the
//! token request. What decides whether someone gets in (the ID token's validity, the role) is
//! `rampart_access::oidc`.
//!
//! Discovery happens at the first login, not at start: a provider that is down must not keep
//! the server from starting, and password logins keep working meanwhile.

use std::time::Duration;

use rampart_access::oidc::{Expected, IdClaims, JwkSet, RoleMapping, TokenError};
use serde::Deserialize;
use tokio::sync::RwLock;

/// What the operator configures.
#[derive(Clone)]
pub struct OidcConfig {
    /// The issuer URL (`https://`, or `http://` on a loopback address for tests).
    pub issuer: String,
    /// This server's client id at the provider.
    pub client_id: String,
    /// Its client secret (sent with HTTP Basic at the token endpoint).
    pub client_secret: String,
    /// Scopes asked for (`openid` is always added).
    pub scopes: Vec<String>,
    /// The claim whose values map to roles (`groups`, Keycloak's `groups` or `roles`).
    pub role_claim: String,
    /// Claim value → role, first match wins.
    pub mappings: Vec<RoleMapping>,
    /// The role of an account no mapping matches; `None`: such logins are refused.
    pub default_role: Option<RoleMapping>,
}

/// Everything but the client secret, which no log or panic message may carry.
impl std::fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("scopes", &self.scopes)
            .field("role_claim", &self.role_claim)
            .field("mappings", &self.mappings)
            .field("default_role", &self.default_role)
            .finish()
    }
}

impl OidcConfig {
    /// Checks the issuer URL: https, or http only to a loopback address.
    pub fn check(&self) -> Result<(), String> {
        let url = reqwest::Url::parse(&self.issuer)
            .map_err(|e| format!("--oidc-issuer {:?}: {e}", self.issuer))?;
        let host = url.host_str().unwrap_or("");
        let loopback = host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => {
                return Err(format!(
                    "--oidc-issuer {:?}: must be https (http only on a loopback address)",
                    self.issuer
                ));
            }
        }
        if self.client_id.is_empty() || self.client_secret.is_empty() {
            return Err(
                "--oidc-client-id and the client secret are required with --oidc-issuer".into(),
            );
        }
        Ok(())
    }
}

/// Why an OIDC login failed, before or after the ID token.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider could not be reached or answered nonsense.
    #[error("the OpenID provider: {0}")]
    Provider(String),
    /// The ID token was refused.
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// The discovery document's parts Rampart uses.
#[derive(Debug, Clone, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

/// The relying party.
pub(crate) struct Oidc {
    pub config: OidcConfig,
    /// Where the provider sends the browser back.
    pub redirect_uri: String,
    http: reqwest::Client,
    metadata: RwLock<Option<Metadata>>,
    jwks: RwLock<Option<JwkSet>>,
}

impl Oidc {
    pub(crate) fn new(config: OidcConfig, api_url: &str) -> Result<Oidc, String> {
        config.check()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Oidc {
            redirect_uri: format!("{api_url}/api/v1/oidc/callback"),
            config,
            http,
            metadata: RwLock::new(None),
            jwks: RwLock::new(None),
        })
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(&self, url: &str) -> Result<T, OidcError> {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("{url}: {e}")))?;
        if !resp.status().is_success() {
            return Err(OidcError::Provider(format!(
                "{url}: HTTP {}",
                resp.status()
            )));
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| OidcError::Provider(format!("{url}: {e}")))?;
        serde_json::from_slice(&bytes).map_err(|e| OidcError::Provider(format!("{url}: {e}")))
    }

    /// The provider's metadata, discovered once.
    async fn metadata(&self) -> Result<Metadata, OidcError> {
        if let Some(m) = self.metadata.read().await.as_ref() {
            return Ok(m.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let m: Metadata = self.get_json(&url).await?;
        // OIDC Discovery §4.3: the issuer in the document must be exactly the one configured.
        if m.issuer != self.config.issuer {
            return Err(OidcError::Provider(format!(
                "discovery names issuer {:?}, not the configured {:?}",
                m.issuer, self.config.issuer
            )));
        }
        *self.metadata.write().await = Some(m.clone());
        Ok(m)
    }

    /// The provider's keys: the cached set, or fetched again when `refresh`. A refresh happens
    /// only for a token the token endpoint itself returned naming an unknown key (a rotation),
    /// at most once per login, and logins are rate-limited.
    async fn keys(&self, refresh: bool) -> Result<JwkSet, OidcError> {
        if !refresh && let Some(set) = self.jwks.read().await.as_ref() {
            return Ok(set.clone());
        }
        let m = self.metadata().await?;
        let set: JwkSet = self.get_json(&m.jwks_uri).await?;
        *self.jwks.write().await = Some(set.clone());
        Ok(set)
    }

    /// Where to send the browser: the authorization endpoint with the code flow's parameters.
    pub(crate) async fn authorization_url(
        &self,
        state: &str,
        nonce: &str,
        challenge: &str,
    ) -> Result<String, OidcError> {
        let m = self.metadata().await?;
        let mut scopes = vec!["openid".to_owned()];
        scopes.extend(
            self.config
                .scopes
                .iter()
                .filter(|s| *s != "openid")
                .cloned(),
        );
        let mut url = reqwest::Url::parse(&m.authorization_endpoint)
            .map_err(|e| OidcError::Provider(format!("authorization_endpoint: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    /// Exchanges the code for tokens and validates the ID token.
    pub(crate) async fn finish(
        &self,
        code: &str,
        verifier: &str,
        nonce: &str,
    ) -> Result<IdClaims, OidcError> {
        let m = self.metadata().await?;
        let resp = self
            .http
            .post(&m.token_endpoint)
            .basic_auth(&self.config.client_id, Some(&self.config.client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &self.redirect_uri),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("token endpoint: {e}")))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| OidcError::Provider(format!("token endpoint: {e}")))?;
        if !status.is_success() {
            return Err(OidcError::Provider(format!(
                "token endpoint: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
                    .chars()
                    .take(300)
                    .collect::<String>()
            )));
        }
        let tokens: TokenResponse = serde_json::from_slice(&bytes)
            .map_err(|e| OidcError::Provider(format!("token endpoint: {e}")))?;
        let id_token = tokens
            .id_token
            .ok_or_else(|| OidcError::Provider("token endpoint: no id_token".into()))?;
        self.validate(&id_token, nonce).await
    }

    /// Validates an ID token, fetching the JWKS again once if the token names an unknown key.
    pub(crate) async fn validate(
        &self,
        id_token: &str,
        nonce: &str,
    ) -> Result<IdClaims, OidcError> {
        let expected = Expected {
            issuer: &self.config.issuer,
            client_id: &self.config.client_id,
            nonce,
            now: time::OffsetDateTime::now_utc().unix_timestamp(),
        };
        let keys = self.keys(false).await?;
        match rampart_access::oidc::validate(id_token, &keys, &expected) {
            Err(TokenError::UnknownKey(_)) => {
                let keys = self.keys(true).await?;
                Ok(rampart_access::oidc::validate(id_token, &keys, &expected)?)
            }
            other => Ok(other?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(issuer: &str) -> OidcConfig {
        OidcConfig {
            issuer: issuer.into(),
            client_id: "rampart".into(),
            client_secret: "s3cret-value".into(),
            scopes: Vec::new(),
            role_claim: "groups".into(),
            mappings: Vec::new(),
            default_role: None,
        }
    }

    #[test]
    fn the_secret_never_reaches_debug_output() {
        let text = format!("{:?}", config("https://idp.example"));
        assert!(!text.contains("s3cret-value"), "{text}");
        assert!(text.contains("https://idp.example"), "{text}");
    }

    #[test]
    fn issuers_must_be_https_but_on_loopback() {
        assert!(config("https://idp.example/realms/ops").check().is_ok());
        assert!(config("http://127.0.0.1:8080").check().is_ok());
        assert!(config("http://localhost:8080").check().is_ok());
        assert!(config("http://[::1]:8080").check().is_ok());
        for bad in [
            "http://idp.example",
            "ftp://idp.example",
            "not a url",
            "http://10.0.0.1",
        ] {
            assert!(config(bad).check().is_err(), "{bad}");
        }
        let mut no_secret = config("https://idp.example");
        no_secret.client_secret.clear();
        assert!(no_secret.check().is_err());
    }
}
