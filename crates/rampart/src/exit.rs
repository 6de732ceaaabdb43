//! Exit codes, part of Rampart's command-line interface.

/// Every check passed or was waived (or the command succeeded).
pub const OK: u8 = 0;
/// At least one check failed, or the score is under `--fail-under`.
pub const FAILURES: u8 = 1;
/// Usage error, unreadable or invalid policy, waivers or input file.
pub const USAGE: u8 = 2;
/// The scan evaluated no check: every check was not applicable or not run (for example a
/// policy whose requirements the host or image does not meet). A gate must not pass on it.
pub const NOTHING_EVALUATED: u8 = 3;
/// The server could not be reached (connection, TLS, name resolution, timeout).
pub const UNREACHABLE: u8 = 4;
/// The server answered with an error (authentication, validation, not found, its own failure).
pub const REFUSED: u8 = 5;
/// This agent was revoked by an admin: it needs re-enrolment and does not retry.
pub const REVOKED: u8 = 6;
/// This agent's certificate expired while it could not renew: it needs re-enrolment.
pub const CERTIFICATE_EXPIRED: u8 = 7;

/// A failure of a call to the server's admin API, typed so the exit code can tell "could not
/// reach it" from "it said no".
#[derive(Debug, thiserror::Error)]
pub enum ApiFailure {
    /// No answer.
    #[error("cannot reach {url}: {detail}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// The cause chain.
        detail: String,
    },
    /// An error answer.
    #[error("server: {status} ({code}): {detail}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The problem's code.
        code: String,
        /// The problem's detail.
        detail: String,
    },
}

/// The exit code of a failed command: the first cause that has its own code decides, anything
/// else is a usage or input error.
pub fn code_for(e: &anyhow::Error) -> u8 {
    use rampart_agent::AgentError;
    for cause in e.chain() {
        if let Some(f) = cause.downcast_ref::<ApiFailure>() {
            return match f {
                ApiFailure::Unreachable { .. } => UNREACHABLE,
                ApiFailure::Refused { .. } => REFUSED,
            };
        }
        if let Some(a) = cause.downcast_ref::<AgentError>() {
            return match a {
                AgentError::Unreachable { .. } => UNREACHABLE,
                AgentError::Refused { .. } | AgentError::RootMismatch { .. } => REFUSED,
                AgentError::Revoked { .. } => REVOKED,
                AgentError::CertificateExpired { .. } => CERTIFICATE_EXPIRED,
                _ => USAGE,
            };
        }
    }
    USAGE
}
