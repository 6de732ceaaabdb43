//! Server settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything `rampart server` can be told.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Data directory (SQLite database when no URL is given).
    pub data_dir: PathBuf,
    /// `postgres://…` to use PostgreSQL; `None` for the embedded SQLite file.
    pub database_url: Option<String>,
    /// API port address.
    pub listen: SocketAddr,
    /// Agent (mTLS) port address.
    pub agent_listen: SocketAddr,
    /// Names (DNS or IP) in the server certificate; the first is used in URLs.
    pub names: Vec<String>,
    /// Externally visible API base URL, when it differs from `https://NAME:PORT`
    /// (behind a TCP load balancer). Enrolment tokens are bound to it.
    pub public_url: Option<String>,
    /// Externally visible agent-port base URL.
    pub agent_public_url: Option<String>,
    /// Passphrase that encrypts the CA keys at rest.
    pub passphrase: Vec<u8>,
    /// Heartbeat interval agents are told to keep.
    pub heartbeat: Duration,
    /// An agent is offline after this many missed heartbeats.
    pub offline_after_missed: u32,
    /// Runs older than this are deleted.
    pub retention_days: u32,
    /// Events no destination still has queued are deleted this many days after they happened
    /// (live readers resume within this window; dead letters keep theirs).
    pub event_retention_days: u32,
    /// How often revocations made elsewhere (another replica) are picked up.
    pub revocation_refresh: Duration,
    /// TLS handshake timeout.
    pub handshake_timeout: Duration,
    /// Time allowed to send request headers.
    pub header_timeout: Duration,
    /// Largest request body accepted (after decompression for result uploads).
    pub max_body_bytes: usize,
    /// Failed authentications allowed per client address and minute before it is refused
    /// (429) until the minute ends. Raise it when many admins share one address (a NAT).
    pub max_auth_failures: u32,
    /// Requests a minute per client for logins, enrolments, lookups and exports.
    pub rate_limits: crate::routes::rate_limit::RateLimits,
    /// A browser session ends after this long without a request (idle timeout).
    pub session_idle: Duration,
    /// A browser session ends this long after its login, however active (absolute timeout).
    pub session_max: Duration,
    /// How fast request bodies must arrive on both listeners.
    pub body_pace: crate::pace::BodyPace,
    /// Fetch threat-intel feeds when they are due (off: only on request, e.g. air-gapped).
    pub intel_sync: bool,
    /// How often feeds are checked for being due.
    pub intel_sync_check: Duration,
    /// How often the threat-intel index is rebuilt from the store (expiry, score decay, other
    /// replicas' ingests).
    pub intel_refresh: Duration,
    /// When the audit log signs checkpoints.
    pub audit_checkpoints: crate::audit::CheckpointPolicy,
    /// Browser logins through an OpenID provider, when configured.
    pub oidc: Option<crate::oidc::OidcConfig>,
    /// The algorithm of attestation keys created from now on (first start, rotations).
    pub attestation_alg: rampart_attest::Alg,
    /// How often the issuer looks for stored runs whose attestation a crash lost.
    pub attestation_sweep: Duration,
    /// How long the issuer gathers runs' drafts after the first before signing them as one
    /// batch. Each batch is a transaction of its own on SQLite's one write turn, which result
    /// batches wait for, and most of a small batch's time there is its commit: signing what
    /// arrives in 100 ms at once cut the transactions on the turn by 40 % and raised result
    /// ingestion by 6–11 % (docs/performance.md). An attestation is issued that much later;
    /// nothing waits for it (the receipt names it before it is signed).
    pub attestation_window: Duration,
    /// How often alert rules measure agents' silence and judge again what fires or is owed
    /// (events are judged as they come).
    pub alert_sweep: Duration,
}

impl ServerConfig {
    /// Defaults for a data directory: SQLite, ports 8443 (API) and 8444 (agents) on all
    /// interfaces, certificate for `localhost`.
    pub fn new(data_dir: PathBuf, passphrase: Vec<u8>) -> ServerConfig {
        ServerConfig {
            data_dir,
            database_url: None,
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            agent_listen: SocketAddr::from(([0, 0, 0, 0], 8444)),
            names: vec!["localhost".into(), "127.0.0.1".into()],
            public_url: None,
            agent_public_url: None,
            passphrase,
            heartbeat: Duration::from_secs(60),
            offline_after_missed: 3,
            retention_days: 400,
            event_retention_days: 7,
            revocation_refresh: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            max_body_bytes: 256 * 1024 * 1024,
            max_auth_failures: crate::routes::auth_limit::DEFAULT_MAX_FAILURES,
            // OWASP's session guidance for sensitive applications: 15–30 minutes idle, an
            // absolute end within a working day.
            rate_limits: crate::routes::rate_limit::RateLimits::default(),
            session_idle: Duration::from_secs(30 * 60),
            session_max: Duration::from_secs(12 * 3600),
            // A 256 MiB feed upload at 1 MiB/s fits in 10 minutes; a body trickled at less than
            // 1 KiB/s on average is cut after 10 s of grace.
            body_pace: crate::pace::BodyPace {
                total: Duration::from_secs(600),
                grace: Duration::from_secs(10),
                min_rate: 1024,
            },
            intel_sync: true,
            intel_sync_check: Duration::from_secs(60),
            intel_refresh: Duration::from_secs(15 * 60),
            audit_checkpoints: crate::audit::CheckpointPolicy::default(),
            oidc: None,
            attestation_alg: rampart_attest::Alg::EdDSA,
            attestation_sweep: Duration::from_secs(30),
            attestation_window: Duration::from_millis(100),
            alert_sweep: Duration::from_secs(15),
        }
    }

    /// Loopback-only settings on ephemeral ports, for tests and benchmarks.
    pub fn for_test(data_dir: PathBuf) -> ServerConfig {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            agent_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            names: vec!["127.0.0.1".into(), "localhost".into()],
            // Tests sync feeds explicitly.
            intel_sync: false,
            ..ServerConfig::new(data_dir, b"test passphrase".to_vec())
        }
    }
}
