//! Agent errors.

/// What can stop the agent or one of its steps.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A state file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// A state file holds something unreadable.
    #[error("{path}: {detail}")]
    Corrupt {
        /// File.
        path: String,
        /// Why.
        detail: String,
    },
    /// Not enrolled yet.
    #[error(
        "this agent is not enrolled (no identity in {0}); run `rampart agent enroll --server URL --token-file FILE` first"
    )]
    NotEnrolled(String),
    /// The enrolment token is unusable.
    #[error(transparent)]
    Token(#[from] rampart_pki::TokenError),
    /// The root the server presented is not the one the token pins.
    #[error(
        "the server's root CA has SHA-256 {got}, but the enrolment token pins {expected}: refusing to trust it (wrong server, or a machine in the middle)"
    )]
    RootMismatch {
        /// From the token.
        expected: String,
        /// From the server.
        got: String,
    },
    /// The server could not be reached or the connection failed.
    #[error("cannot reach {url}: {detail}")]
    Unreachable {
        /// URL.
        url: String,
        /// Cause chain.
        detail: String,
    },
    /// The server answered with an error.
    #[error("server refused {what} ({status}, {code}): {detail}")]
    Refused {
        /// Which call.
        what: String,
        /// HTTP status.
        status: u16,
        /// Problem code.
        code: String,
        /// Problem detail.
        detail: String,
    },
    /// The client certificate expired while the agent could not renew it.
    #[error(
        "the agent certificate expired at {at}; the server will refuse it. Recovery: ask an admin for a re-enrolment token that keeps this agent's identity (`rampart token create --agent {agent_id} --group GROUP`), then run `rampart agent enroll --server URL --token-file FILE` on this host"
    )]
    CertificateExpired {
        /// Expiry.
        at: String,
        /// Agent id.
        agent_id: String,
    },
    /// The server refused the agent's certificate as revoked (TLS `certificate_revoked`).
    #[error(
        "the server at {url} refuses this agent's certificate: an admin revoked this agent. It will not retry; its spooled results are kept. Recovery: ask an admin for a re-enrolment token for this agent (`rampart token create --agent ID --group GROUP`), then run `rampart agent enroll --server URL --token-file FILE` on this host"
    )]
    Revoked {
        /// The URL that refused it.
        url: String,
    },
    /// Key or CSR generation failed.
    #[error("key generation: {0}")]
    Key(String),
    /// The TLS client could not be built.
    #[error("TLS client: {0}")]
    Tls(String),
}

impl AgentError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> AgentError {
        AgentError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    pub(crate) fn corrupt(path: &std::path::Path, detail: impl std::fmt::Display) -> AgentError {
        AgentError::Corrupt {
            path: path.display().to_string(),
            detail: detail.to_string(),
        }
    }

    /// Whether the failure is the network's (retry later, spool) rather than ours.
    pub fn is_transient(&self) -> bool {
        match self {
            AgentError::Unreachable { .. } => true,
            AgentError::Refused { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}
