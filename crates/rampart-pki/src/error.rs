//! Errors of the PKI layer.

/// What can go wrong creating, loading or using the CA.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// The passphrase does not decrypt the stored keys.
    #[error("wrong CA passphrase: the stored {what} key cannot be decrypted with it")]
    WrongPassphrase {
        /// Which key.
        what: String,
    },
    /// A stored key or certificate is not what Rampart wrote.
    #[error("corrupt {what}: {detail}")]
    Corrupt {
        /// Which item.
        what: String,
        /// Why.
        detail: String,
    },
    /// The agent's certificate signing request is unusable.
    #[error("invalid certificate signing request: {0}")]
    BadCsr(String),
    /// Certificate generation failed.
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// A server name is neither a DNS name nor an IP address.
    #[error("invalid server name {0:?}")]
    BadName(String),
}

impl PkiError {
    pub(crate) fn corrupt(what: impl Into<String>, detail: impl std::fmt::Display) -> PkiError {
        PkiError::Corrupt {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}
