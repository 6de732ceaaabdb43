//! Errors: [`ServerError`] for starting the server, [`ApiError`] for requests (rendered as RFC
//! 9457 problem objects).

use std::net::SocketAddr;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Why the server could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The data directory could not be created.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// Path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Storage failure.
    #[error(transparent)]
    Store(#[from] rampart_store::StoreError),
    /// CA failure (wrong passphrase included).
    #[error(transparent)]
    Pki(#[from] rampart_pki::PkiError),
    /// TLS set-up failure.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The threat-intel index could not be built from the store.
    #[error("threat-intel index: {0}")]
    Intel(#[from] rampart_feeds::ingest::IngestError),
    /// Another replica is creating the CA and did not finish.
    #[error("the CA in the database is incomplete: {0}")]
    IncompleteCa(String),
    /// The OpenID Connect settings are not usable.
    #[error("OpenID Connect: {0}")]
    Oidc(String),
    /// The audit log key could not be made or loaded.
    #[error("audit log key: {0}")]
    AuditKey(String),
    /// The first admin's password could not be hashed.
    #[error("first admin password: {0}")]
    FirstAdmin(String),
}

/// A request failure, as the client sees it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    /// `WWW-Authenticate` of a 401.
    challenge: Option<&'static str>,
    /// `Retry-After` seconds of a 429.
    retry_after: Option<u64>,
}

impl ApiError {
    /// A failure with an HTTP status, a stable machine code and a human detail.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            detail: detail.into(),
            challenge: None,
            retry_after: None,
        }
    }

    /// The `WWW-Authenticate` challenge of a 401 (RFC 9110 §11.6.1 requires one).
    pub(crate) fn with_challenge(mut self, challenge: &'static str) -> ApiError {
        if self.status == StatusCode::UNAUTHORIZED {
            self.challenge = Some(challenge);
        }
        self
    }

    /// `Retry-After`, in seconds, of a 429 or 503.
    pub(crate) fn with_retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    /// Status, machine code and detail, for renderings other than a problem object (TAXII).
    pub(crate) fn parts(&self) -> (StatusCode, &'static str, &str) {
        (self.status, self.code, &self.detail)
    }

    pub(crate) fn bad_request(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub(crate) fn not_found(what: &str, id: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} {id:?} not found"),
        )
    }

    pub(crate) fn unauthorized(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, code, detail)
    }

    pub(crate) fn forbidden(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, code, detail)
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error; see the server log",
        )
    }
}

impl From<rampart_store::StoreError> for ApiError {
    fn from(e: rampart_store::StoreError) -> ApiError {
        match e {
            rampart_store::StoreError::NotFound { what, id } => ApiError::not_found(what, &id),
            e @ rampart_store::StoreError::Conflict { .. } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("error");
        let body = crate::api::Problem {
            kind: format!("urn:rampart:problem:{}", self.code),
            title: title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code.to_owned(),
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (
            self.status,
            [(axum::http::header::CONTENT_TYPE, "application/problem+json")],
            json,
        )
            .into_response();
        let headers = response.headers_mut();
        if let Some(challenge) = self.challenge {
            headers.insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(challenge),
            );
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}
