//! Command-line definition.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Rampart: security compliance scanning and threat intelligence.
#[derive(Debug, Parser)]
#[command(name = "rampart", version, about, long_about = None)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug). RAMPART_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log line format on stderr: text for people, json (one object per line, with the
    /// request id of every line logged while serving a request) for log shippers.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "RAMPART_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line: timestamp, level, target, fields, and the spans it was
    /// logged in (`request` with its id, method and route).
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Audit this host (or a root directory) against policies and report.
    Scan(ScanArgs),
    /// Re-render a saved JSON report (other format, waivers approved since, one framework).
    Report(ReportArgs),
    /// Print a JSON Schema: of the JSON report, or of the native policy format.
    Schema {
        /// Which document.
        #[arg(value_enum)]
        of: SchemaOf,
    },
    /// Policies: lint, show, schema locally; push, list, assign on a fleet server.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Run the fleet server (API port + mTLS agent port).
    Server(Box<ServerArgs>),
    /// Log in to a fleet server with a password; the API token it issues is kept (mode 0600)
    /// for the commands that follow.
    Login(LoginArgs),
    /// Users of a fleet server: list, add, role, disable, enable, reset-password (admin).
    #[command(subcommand)]
    Users(UsersCommand),
    /// One's own API tokens on a fleet server (or, for admins, anyone's): list, create, revoke.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Enrolment tokens (admin, through the server's API).
    #[command(subcommand)]
    Token(TokenCommand),
    /// The server's tamper-evident audit log: search it, verify it whole, prove an entry.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Signed compliance attestations: show, bundle for an auditor, verify offline.
    #[command(subcommand)]
    Attest(AttestCommand),
    /// Attestation signing keys (through the server's API).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Waivers governed on the server: request, approve, deny, list.
    #[command(subcommand)]
    Waivers(WaiversCommand),
    /// This host's agent: enrol, run, status, renew.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Enrolled agents (admin, through the server's API).
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// Results history (admin, through the server's API).
    #[command(subcommand)]
    Results(ResultsCommand),
    /// CA maintenance, run on the server host against its database.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Threat intelligence: feeds, ingestion, lookups, statistics (on the local store).
    #[command(subcommand)]
    Intel(IntelCommand),
    /// Benchmarks (figures recorded in docs/performance.md).
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// `rampart bench …`.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Starts a real `rampart server` process, enrols simulated agents over TLS, then measures
    /// heartbeat latency with every agent on its own mTLS identity, server RSS, and result
    /// ingestion rate.
    Fleet(BenchFleetArgs),
    /// Threat-intel index and ingestion: builds a synthetic indicator set, measures lookups per
    /// second (one thread and all cores) and index memory, then end-to-end ingestion of a
    /// generated feed into a fresh embedded store.
    Intel(BenchIntelArgs),
    /// What authentication and authorization cost an API call: a public call (the floor)
    /// against calls with an API token and with a group-limited one, open loop on a real server.
    Auth(BenchAuthArgs),
    /// The audit log: appends one and 64 per transaction beside their storage floor, then
    /// inclusion and consistency proofs on a large log beside an entry read.
    Audit(BenchAuditArgs),
    /// The dashboard with a large fleet: fills a real server's store with agents and their
    /// latest results, then times every page beside a request that reads nothing.
    Dashboard(BenchDashboardArgs),
    /// Events per second from the outbox to each kind of destination (webhook, Splunk HEC,
    /// syslog over TCP and UDP, Kafka with --kafka-brokers) beside the outbox's own floor.
    Events(BenchEventsArgs),
    /// Time from a run stored to its alert leaving for a chat webhook (a score rule firing and
    /// resolving), beside the same run's `run.stored` event reaching a webhook.
    Alerts(BenchAlertsArgs),
    /// Attestations per algorithm: JWS signed and verified per second beside the bare
    /// signature, offline bundles verified per second, and the bundle's size.
    Attest(BenchAttestArgs),
}

/// `rampart bench attest`.
#[derive(Debug, Args)]
pub struct BenchAttestArgs {
    /// A saved JSON scan report (`rampart scan --format json`) whose first policy is the run;
    /// default: 207 synthetic checks with evidence.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Seconds per phase.
    #[arg(long, default_value_t = 3)]
    pub seconds: u64,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `rampart bench audit`.
#[derive(Debug, Args)]
pub struct BenchAuditArgs {
    /// Entries in the log the proofs are made on.
    #[arg(long, default_value_t = 1_000_000)]
    pub entries: u64,
    /// Seconds per phase.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// PostgreSQL URL to benchmark instead of SQLite (use an empty database or schema).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `rampart bench dashboard`.
#[derive(Debug, clap::Args)]
pub struct BenchDashboardArgs {
    /// Agents in the store, each with one run of the benchmark policy.
    #[arg(long, default_value_t = 10_000)]
    pub agents: usize,
    /// Checks in the benchmark policy (latest results = agents × checks).
    #[arg(long, default_value_t = 100)]
    pub checks: usize,
    /// Requests per page (after two warm-up requests).
    #[arg(long, default_value_t = 20)]
    pub requests: usize,
    /// PostgreSQL URL to benchmark instead of SQLite (use an empty database or schema).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `rampart bench events`.
#[derive(Debug, Args)]
pub struct BenchEventsArgs {
    /// Events written for each sink.
    #[arg(long, default_value_t = 20_000)]
    pub events: usize,
    /// Only this sink (`webhook`, `splunk_hec`, `syslog_tcp`, `syslog_udp`, `kafka`).
    #[arg(long)]
    pub sink: Option<String>,
    /// A Kafka cluster's bootstrap brokers (`host:port,...`) to benchmark the Kafka sink on.
    #[arg(long)]
    pub kafka_brokers: Option<String>,
    /// The topic there (it must exist).
    #[arg(long, default_value = "rampart-bench")]
    pub kafka_topic: String,
    /// PostgreSQL URL to benchmark instead of SQLite (use an empty database or schema).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `rampart bench alerts`.
#[derive(Debug, Args)]
pub struct BenchAlertsArgs {
    /// Runs posted, each one changing the alert's state (firing, resolved, firing, …).
    #[arg(long, default_value_t = 60)]
    pub runs: usize,
    /// Check results per run.
    #[arg(long, default_value_t = 200)]
    pub checks: usize,
    /// PostgreSQL URL to benchmark instead of SQLite (use an empty database or schema).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `rampart bench auth`.
#[derive(Debug, Args)]
pub struct BenchAuthArgs {
    /// Requests a second, per call.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Seconds per call (after one second of warm-up).
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// PostgreSQL URL to benchmark instead of SQLite (use an empty database or schema).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `rampart bench intel`.
#[derive(Debug, Args)]
pub struct BenchIntelArgs {
    /// Indicators in the lookup index.
    #[arg(long, default_value_t = 5_000_000)]
    pub indicators: u64,
    /// Lookups per thread.
    #[arg(long, default_value_t = 10_000_000)]
    pub lookups: u64,
    /// Indicators in the generated feed for the ingestion phase (0 skips it).
    #[arg(long, default_value_t = 5_000_000)]
    pub ingest: u64,
    /// Ingest into this PostgreSQL database instead of a fresh SQLite file (use an empty one).
    #[arg(long)]
    pub database_url: Option<String>,
    /// After ingestion, lookups per second sent to a real server on the ingested store (0 skips).
    #[arg(long, default_value_t = 1_000)]
    pub api_rate: u64,
    /// How long the API phase lasts, seconds (after a one-second warm-up).
    #[arg(long, default_value_t = 20)]
    pub api_seconds: u64,
    /// A real feed file, as FORMAT=PATH (repeatable): its indicators join the lookup index
    /// and every tenth query, and after the generated feed it is ingested into the same store.
    #[arg(long = "feed", value_name = "FORMAT=PATH", value_parser = parse_bench_feed)]
    pub feeds: Vec<(rampart_intel::Format, PathBuf)>,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_bench_feed(arg: &str) -> Result<(rampart_intel::Format, PathBuf), String> {
    let (format, path) = arg
        .split_once('=')
        .ok_or_else(|| format!("`{arg}`: expected FORMAT=PATH, e.g. urlhaus-csv=recent.csv"))?;
    let format: rampart_intel::Format = format.parse().map_err(|e| format!("`{arg}`: {e}"))?;
    Ok((format, PathBuf::from(path)))
}

/// `rampart bench fleet`.
#[derive(Debug, Args)]
pub struct BenchFleetArgs {
    /// Simulated agents.
    #[arg(long, default_value_t = 10_000)]
    pub agents: usize,
    /// Heartbeat interval of every agent, seconds.
    #[arg(long, default_value_t = 60)]
    pub interval: u64,
    /// How long to measure heartbeats, seconds (at least one interval is sensible).
    #[arg(long, default_value_t = 120)]
    pub duration: u64,
    /// Concurrent enrolments.
    #[arg(long, default_value_t = 16)]
    pub enrol_concurrency: usize,
    /// Runs posted in the ingestion phase.
    #[arg(long, default_value_t = 3000)]
    pub runs: usize,
    /// Check results per run.
    #[arg(long, default_value_t = 121)]
    pub checks_per_run: usize,
    /// Concurrent uploaders in the ingestion phase.
    #[arg(long, default_value_t = 32)]
    pub uploaders: usize,
    /// PostgreSQL URL to benchmark instead of SQLite (use an empty database or schema).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Skip the heartbeat phase (ingestion only).
    #[arg(long)]
    pub skip_heartbeats: bool,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `rampart users …`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List users.
    List {
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
    /// Add a user; prints their one-time password (changed at their first login).
    Add {
        /// User name (lowercase letters, digits, '.', '_', '-', '@').
        name: String,
        /// Role: admin, operator, auditor or viewer.
        #[arg(long)]
        role: String,
        /// Agent groups the role is limited to (comma-separated); default: the whole fleet.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
    /// Change a user's role and group limit.
    Role {
        /// User name.
        name: String,
        /// Role: admin, operator, auditor or viewer.
        #[arg(long)]
        role: String,
        /// Agent groups the role is limited to (comma-separated); default: the whole fleet.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
    /// Disable a user: their tokens stop working and their sessions end.
    Disable {
        /// User name.
        name: String,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
    /// Enable a disabled user.
    Enable {
        /// User name.
        name: String,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
    /// Give a user a new one-time password (printed once).
    ResetPassword {
        /// User name.
        name: String,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
}

/// `rampart audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Search the log, newest first: a table, or JSON lines with --json.
    Log {
        /// Only this actor (a user name, agent:ID, system).
        #[arg(long)]
        actor: Option<String>,
        /// Only this action, or a prefix ending in * (token.*).
        #[arg(long)]
        action: Option<String>,
        /// Only this target (user:alice, agent:ID, policy:ID).
        #[arg(long)]
        target: Option<String>,
        /// Only this outcome: success, failure or denied.
        #[arg(long)]
        outcome: Option<String>,
        /// Only entries this recent (7d, 12h, 30m) or since an RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Only entries before this (same forms as --since).
        #[arg(long)]
        until: Option<String>,
        /// At most this many entries (newest first).
        #[arg(long, default_value_t = 100)]
        limit: u64,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
    /// Verify the whole log: every entry against every signed checkpoint, the key pinned at
    /// first use, and the checkpoint verified last time (no rewritten history).
    Verify {
        /// The verifier key to trust (NAME+ID+KEY, from `GET /api/v1/audit/key` on a trusted
        /// path); default: the one pinned at first use.
        #[arg(long)]
        key: Option<String>,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
    /// Prove one entry is in the log: its inclusion proof against a signed checkpoint.
    Proof {
        /// The entry's index.
        index: u64,
        /// Against the checkpoint of this size (default: the latest).
        #[arg(long)]
        size: Option<u64>,
        /// The verifier key to trust (default: the one pinned at first use).
        #[arg(long)]
        key: Option<String>,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
}

/// `rampart attest …`.
#[derive(Debug, Subcommand)]
pub enum AttestCommand {
    /// An agent's latest attestation per policy (or of one policy), decoded.
    Show {
        /// The agent id.
        agent: String,
        /// Only this policy.
        #[arg(long)]
        policy: Option<String>,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
    /// Write the offline bundle of an agent's latest attestation (JWS, key set, audit entry
    /// with its inclusion proof and signed checkpoint, evidence) to standard output or a file.
    Bundle {
        /// The agent id.
        agent: String,
        /// The policy (needed when the agent runs several).
        #[arg(long)]
        policy: Option<String>,
        /// This attestation instead of the latest (its jti).
        #[arg(long)]
        jti: Option<String>,
        /// Write here (atomically) instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
    /// Verify a bundle offline: signature and key, validity when it was logged, the audit
    /// entry's inclusion under a checkpoint signed by the trusted log key, the evidence.
    Verify {
        /// The bundle file (`-` for standard input).
        bundle: PathBuf,
        /// The audit-log verifier key to trust (NAME+ID+KEY, from `GET /api/v1/audit/key` on a
        /// trusted path); default: a key pinned by `rampart audit verify`.
        #[arg(long)]
        log_key: Option<String>,
        /// Print the verified claims as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `rampart waivers …`.
#[derive(Debug, Subcommand)]
pub enum WaiversCommand {
    /// Ask for a waiver; someone else with the auditor or admin role decides.
    Request {
        /// The check id or glob, optionally after a policy id and a colon (cis_debian12:3301*).
        #[arg(long)]
        check: String,
        /// Only this agent's runs.
        #[arg(long, conflicts_with_all = ["group", "fleet"])]
        agent: Option<String>,
        /// Only this group's agents' runs.
        #[arg(long, conflicts_with = "fleet")]
        group: Option<String>,
        /// Every agent's runs.
        #[arg(long)]
        fleet: bool,
        /// The last valid day (UTC), YYYY-MM-DD, within a year.
        #[arg(long)]
        until: String,
        /// Why the risk is accepted.
        #[arg(long)]
        why: String,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
    /// Approve a pending waiver (not one's own).
    Approve {
        /// The waiver's id.
        id: String,
        /// A note kept with the decision.
        #[arg(long)]
        note: Option<String>,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
    /// Deny a pending waiver (not one's own).
    Deny {
        /// The waiver's id.
        id: String,
        /// Why.
        #[arg(long)]
        why: Option<String>,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
    /// Waivers, newest request first.
    List {
        /// Only pending, approved, denied or expired ones.
        #[arg(long)]
        state: Option<String>,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
}

/// `rampart keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Every attestation signing key: next, current, retired.
    List {
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
    /// The next key (published since the last rotation) starts signing, the current one
    /// retires, a new next key is published.
    Rotate {
        /// Even though the next key was published less than ten minutes ago (verifiers that
        /// cache the key set may not know it yet).
        #[arg(long)]
        force: bool,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
}

/// `rampart tokens …` (API tokens; enrolment tokens are `rampart token`).
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// List one's own tokens (or, with --user, that user's: needs users_read).
    List {
        /// Whose tokens.
        #[arg(long)]
        user: Option<String>,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
    /// Create a token of one's own; printed once (or written to --output, mode 0600).
    Create {
        /// Its name, unique among one's live tokens.
        #[arg(long)]
        name: String,
        /// Role it carries, at most one's own (default: one's own).
        #[arg(long)]
        role: Option<String>,
        /// Groups it is limited to, within one's own (comma-separated; default: one's own).
        #[arg(long, value_delimiter = ',')]
        groups: Option<Vec<String>>,
        /// Lifetime: days with a d unit (1d to 365d).
        #[arg(long, default_value = "90d")]
        ttl: String,
        /// Write the token to this file (mode 0600) instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
    /// Revoke a token of one's own (or, with --user, that user's: needs users_manage).
    Revoke {
        /// The token's name.
        name: String,
        /// Whose token.
        #[arg(long)]
        user: Option<String>,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
}

/// `rampart login`.
#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// Server API base URL.
    #[arg(long, env = "RAMPART_SERVER", default_value = "https://localhost:8443")]
    pub server: String,
    /// Root CA certificate to trust (the server writes it to DATA_DIR/root-ca.pem).
    #[arg(
        long,
        env = "RAMPART_CA_FILE",
        default_value = "rampart-data/root-ca.pem"
    )]
    pub ca_file: PathBuf,
    /// User name (for a password login).
    #[arg(long, env = "RAMPART_USER", required_unless_present = "oidc")]
    pub user: Option<String>,
    /// Log in through the server's OpenID provider in a browser instead of with a password:
    /// the URL to open is printed, and the browser comes back to a port this command listens
    /// on for the moment of the login.
    #[arg(long, conflicts_with_all = ["user", "password_stdin"])]
    pub oidc: bool,
    /// Read the password from the first line of standard input (and, when the server asks
    /// for a new one, the new password from the second) instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
    /// Name of the token to ask for; logging in again with the same name replaces it.
    /// Default: cli-HOSTNAME.
    #[arg(long)]
    pub token_name: Option<String>,
    /// Token lifetime in days (1–365).
    #[arg(long, default_value_t = 90)]
    pub ttl_days: u32,
}

/// Where the server is and how to prove who is calling.
#[derive(Debug, Clone, Args)]
pub struct ServerConn {
    /// Server API base URL.
    #[arg(long, env = "RAMPART_SERVER", default_value = "https://localhost:8443")]
    pub server: String,
    /// File holding an API token (else RAMPART_TOKEN, else the token `rampart login` kept
    /// for this server).
    #[arg(long, visible_alias = "admin-token-file", env = "RAMPART_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Root CA certificate to trust (the server writes it to DATA_DIR/root-ca.pem).
    #[arg(
        long,
        env = "RAMPART_CA_FILE",
        default_value = "rampart-data/root-ca.pem"
    )]
    pub ca_file: PathBuf,
    /// Print JSON as the API returns it.
    #[arg(long)]
    pub json: bool,
}

/// `rampart server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Data directory (SQLite database, root-ca.pem).
    #[arg(long, env = "RAMPART_DATA_DIR", default_value = "rampart-data")]
    pub data_dir: PathBuf,
    /// PostgreSQL URL (postgres://…); default: SQLite in the data directory.
    #[arg(long, env = "RAMPART_DATABASE_URL")]
    pub database_url: Option<String>,
    /// API port address.
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub listen: std::net::SocketAddr,
    /// Agent (mTLS) port address.
    #[arg(long, default_value = "0.0.0.0:8444")]
    pub agent_listen: std::net::SocketAddr,
    /// Name (DNS or IP) for the server certificate; repeat for several. The first is used in URLs.
    #[arg(long = "name", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
    pub names: Vec<String>,
    /// Externally visible API URL (behind a TCP load balancer); tokens are bound to it.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Externally visible agent-port URL.
    #[arg(long)]
    pub agent_public_url: Option<String>,
    /// File with the CA passphrase (else RAMPART_CA_PASSPHRASE).
    #[arg(long, env = "RAMPART_CA_PASSPHRASE_FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Heartbeat interval agents keep, seconds.
    #[arg(long, default_value_t = 60)]
    pub heartbeat_secs: u64,
    /// Missed heartbeats before an agent shows as offline.
    #[arg(long, default_value_t = 3)]
    pub offline_after_missed: u32,
    /// Keep runs this many days.
    #[arg(long, default_value_t = 400)]
    pub retention_days: u32,
    /// Keep events this many days once no destination has them queued (live readers resume
    /// within it; dead letters keep theirs).
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..))]
    pub event_retention_days: u32,
    /// Failed authentications allowed per client address and minute; more are refused with
    /// 429 until the minute ends (raise it when many admins share one address).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_auth_failures: u32,
    /// Password logins and browser logins allowed per client address and minute (0: no limit).
    #[arg(long, default_value_t = 30)]
    pub rate_login: u32,
    /// Agent enrolments allowed per client address and minute (0: no limit).
    #[arg(long, default_value_t = 6_000)]
    pub rate_enrol: u32,
    /// Intel lookups and matches allowed per API token and minute (0: no limit).
    #[arg(long, default_value_t = 120_000)]
    pub rate_lookup: u32,
    /// Intel exports and TAXII object pages allowed per API token and minute (0: no limit).
    #[arg(long, default_value_t = 600)]
    pub rate_export: u32,
    /// Browser sessions end after this many minutes without a request.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=1440))]
    pub session_idle_minutes: u64,
    /// Browser sessions end this many hours after login, however active.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u64).range(1..=168))]
    pub session_max_hours: u64,
    /// The audit log signs a checkpoint after this many new entries.
    #[arg(long, env = "RAMPART_AUDIT_CHECKPOINT_ENTRIES", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub audit_checkpoint_entries: u64,
    /// The audit log signs a checkpoint at least this often (seconds) while there are new
    /// entries.
    #[arg(long, env = "RAMPART_AUDIT_CHECKPOINT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub audit_checkpoint_secs: u64,
    /// Algorithm of attestation keys created from now on (at first start and by
    /// `rampart keys rotate`): EdDSA, ES256 or RS256.
    #[arg(long, env = "RAMPART_ATTESTATION_ALG", default_value = "EdDSA", value_parser = |s: &str| s.parse::<rampart_attest::Alg>().map_err(|e| e.to_string()))]
    pub attestation_alg: rampart_attest::Alg,
    /// OpenID provider for browser logins: its issuer URL (discovery is at
    /// ISSUER/.well-known/openid-configuration). Register API_URL/api/v1/oidc/callback as the
    /// client's redirect URI there.
    #[arg(long, env = "RAMPART_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// This server's client id at the provider.
    #[arg(long, env = "RAMPART_OIDC_CLIENT_ID", default_value = "rampart")]
    pub oidc_client_id: String,
    /// File holding the client secret (else RAMPART_OIDC_CLIENT_SECRET).
    #[arg(long, env = "RAMPART_OIDC_CLIENT_SECRET_FILE")]
    pub oidc_client_secret_file: Option<PathBuf>,
    /// Scopes asked for, besides openid.
    #[arg(long, value_delimiter = ',', default_value = "profile,email,groups")]
    pub oidc_scopes: Vec<String>,
    /// The ID-token claim whose values map to roles.
    #[arg(long, default_value = "groups")]
    pub oidc_role_claim: String,
    /// A mapping VALUE=ROLE or VALUE=ROLE:GROUP,GROUP (repeatable; the first match wins), e.g.
    /// rampart-admins=admin, web-ops=operator:web.
    #[arg(long = "oidc-role", value_parser = parse_role_mapping)]
    pub oidc_roles: Vec<rampart_access::oidc::RoleMapping>,
    /// The role of accounts no mapping matches (ROLE or ROLE:GROUPS); default: refused.
    #[arg(long)]
    pub oidc_default_role: Option<String>,
}

fn parse_role_mapping(s: &str) -> Result<rampart_access::oidc::RoleMapping, String> {
    s.parse()
}

/// `rampart token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an enrolment token (printed once; store it in a file for the agent).
    Create {
        /// Group enrolled agents join.
        #[arg(long)]
        group: String,
        /// Label KEY=VALUE for enrolled agents; repeatable.
        #[arg(long = "label")]
        labels: Vec<String>,
        /// Lifetime: seconds or with a unit (90s, 15m, 1h, 2d); 10 s to 7 days (enrolment
        /// tokens are meant to be short-lived; the server refuses anything else).
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// Enrolments allowed.
        #[arg(long, default_value_t = 1)]
        max_uses: u32,
        /// Re-enrol this existing agent, keeping its identity.
        #[arg(long)]
        agent: Option<String>,
        /// Write the token to this file (mode 0600) instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
    /// List tokens.
    List {
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
    /// Revoke a token.
    Revoke {
        /// Token id (jti).
        jti: String,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
}

/// Where the agent keeps its identity and spool.
#[derive(Debug, Clone, Args)]
pub struct AgentState {
    /// Agent state directory.
    #[arg(
        long,
        env = "RAMPART_AGENT_DIR",
        default_value = "/var/lib/rampart-agent"
    )]
    pub state_dir: PathBuf,
}

/// `rampart agent …`.
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Enrol this host: generates a key here, sends a CSR with the one-time token.
    Enroll {
        /// Server API base URL (default: the token's audience).
        #[arg(long)]
        server: Option<String>,
        /// File holding the token; '-' reads stdin. Else RAMPART_ENROL_TOKEN. Never an argument.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// State directory.
        #[command(flatten)]
        state: AgentState,
        /// Print the identity as JSON (agent id, URLs, certificate).
        #[arg(long)]
        json: bool,
    },
    /// Run the agent daemon.
    Run {
        /// State directory.
        #[command(flatten)]
        state: AgentState,
        /// Directory to scan (default: the host).
        #[arg(long, default_value = "/")]
        scan_root: PathBuf,
        /// Per-command timeout, seconds.
        #[arg(long, default_value_t = 30)]
        command_timeout: u64,
        /// Spool bound, results.
        #[arg(long, default_value_t = 1000)]
        spool_max: usize,
        /// Run one pass and exit (status 0 when everything went through).
        #[arg(long)]
        once: bool,
        /// With --once: print the agent's status after the pass as JSON.
        #[arg(long, requires = "once")]
        json: bool,
    },
    /// Show what the agent is doing.
    Status {
        /// State directory.
        #[command(flatten)]
        state: AgentState,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Renew the client certificate now.
    Renew {
        /// State directory.
        #[command(flatten)]
        state: AgentState,
        /// Print the new certificate's serial and validity as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `rampart agents …`.
#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// List agents.
    List {
        /// Only this group.
        #[arg(long)]
        group: Option<String>,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
    /// Show one agent.
    Show {
        /// Agent id.
        id: String,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
    /// Revoke an agent: its certificates are refused from the next handshake on.
    Revoke {
        /// Agent id.
        id: String,
        /// Reason, kept with the certificates.
        #[arg(long, default_value = "revoked by an administrator")]
        reason: String,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
    /// Ask an agent to scan now.
    Scan {
        /// Agent id.
        id: String,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
    /// Threat-intel matches: connections, listeners and /etc/hosts entries agents reported
    /// that match an indicator, most recent first.
    Hits {
        /// Only this agent.
        id: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
}

/// `rampart results …`.
#[derive(Debug, Subcommand)]
pub enum ResultsCommand {
    /// An agent's runs; with --run one run's checks; with --diff what changed between two runs.
    Show {
        /// Agent id.
        agent: String,
        /// Only this policy.
        #[arg(long)]
        policy: Option<String>,
        /// How many runs.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        /// Show this run's checks.
        #[arg(long, conflicts_with = "diff")]
        run: Option<String>,
        /// Compare two runs.
        #[arg(long, num_args = 2, value_names = ["RUN_A", "RUN_B"])]
        diff: Option<Vec<String>>,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
    /// One check's history on an agent ("when did this start failing?").
    History {
        /// Agent id.
        agent: String,
        /// Policy id.
        policy: String,
        /// Check id.
        check: String,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
}

/// Where the intel commands find the store (the same one `rampart server` uses).
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Data directory (for the SQLite database).
    #[arg(long, env = "RAMPART_DATA_DIR", default_value = "rampart-data")]
    pub data_dir: PathBuf,
    /// PostgreSQL URL instead of the SQLite file.
    #[arg(long, env = "RAMPART_DATABASE_URL")]
    pub database_url: Option<String>,
}

/// `rampart intel …`.
#[derive(Debug, Subcommand)]
pub enum IntelCommand {
    /// Feed definitions.
    #[command(subcommand)]
    Feeds(FeedsCommand),
    /// Ingest files (plain, gzip or zip) as observations of a feed: for air-gapped sites and
    /// one-off imports.
    Ingest {
        /// Parser for the files (urlhaus-csv, threatfox-csv, stix, plain, …); defaults to the
        /// feed's format.
        #[arg(long)]
        format: Option<String>,
        /// Feed to attribute the observations to; created if missing (default `import-FORMAT`).
        #[arg(long)]
        feed: Option<String>,
        /// Reliability of a feed created here, 0–100.
        #[arg(long, default_value_t = 50)]
        reliability: u8,
        /// Files to ingest (`-` for standard input).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Fetch every due feed now (conditional GET, retries), or the named ones, and ingest them.
    Sync {
        /// Only these feeds (fetched whether due or not).
        #[arg(long = "feed")]
        feeds: Vec<String>,
        /// Fetch every feed with a URL, due or not.
        #[arg(long)]
        force: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Match a file of observables (one per line, free text refanged; `-` for standard input)
    /// against the index; prints one line (or JSON object) per match.
    Match {
        /// The file.
        file: PathBuf,
        /// Output: text or json (JSON lines, one object per match).
        #[arg(long, default_value = "text")]
        format: String,
        /// Include allowlisted matches (flagged) instead of leaving them out.
        #[arg(long)]
        include_allowlisted: bool,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Look values up: exact, network containment, parent domain, URL host. Free text is
    /// refanged first (`hxxp://evil[.]com`).
    Lookup {
        /// Values to look up.
        #[arg(required = true)]
        values: Vec<String>,
        /// Also list related indicators: named by the same source rows (hash sets, campaign
        /// infrastructure) and of the same malware family (capped).
        #[arg(long)]
        related: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Export live indicators: csv, blocklist-ip, blocklist-domain, urls, hosts, rpz, suricata, stix.
    Export {
        /// Output format.
        #[arg(long)]
        format: String,
        /// Only indicators scoring at least this (0–100).
        #[arg(long, default_value_t = 0)]
        min_score: u8,
        /// Write here (atomically: a reader sees the old file or the new one) instead of
        /// standard output.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Octal mode of the --output file (default: that of the file replaced, else 0666 less
        /// the umask, 0644 under umask 022).
        #[arg(long, value_parser = parse_mode, requires = "output")]
        mode: Option<u32>,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// MITRE ATT&CK names for technique, tactic, group and software ids.
    #[command(subcommand)]
    Attack(AttackCommand),
    /// Known-good values that must never alert.
    #[command(subcommand)]
    Allowlist(AllowlistCommand),
    /// How scores decay with age, per kind and threat type (docs/intel.md, "Scores").
    #[command(subcommand)]
    Decay(DecayCommand),
    /// Report a sighting of an indicator (a confirmed hit, or a false positive).
    Sighting {
        /// The indicator (exact value; free text is refanged).
        value: String,
        /// It was a false positive.
        #[arg(long)]
        false_positive: bool,
        /// Who or what saw it.
        #[arg(long, default_value = "analyst")]
        source: String,
        /// A note.
        #[arg(long)]
        note: Option<String>,
        /// Print the indicator's counters after the sighting as JSON.
        #[arg(long)]
        json: bool,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Really delete indicators that expired more than the retention ago, with their
    /// observations and the source rows nothing else refers to.
    Purge {
        /// How long expired indicators are kept (90s, 15m, 1h, 2d).
        #[arg(long, default_value = "90d")]
        retention: String,
        /// Print what was purged as JSON.
        #[arg(long)]
        json: bool,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Counts per kind and the health of every feed.
    Stats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `rampart intel attack …`.
#[derive(Debug, Subcommand)]
pub enum AttackCommand {
    /// Import an ATT&CK STIX bundle (e.g. enterprise-attack.json) or single STIX objects.
    Import {
        /// The files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `rampart intel allowlist …`.
#[derive(Debug, Subcommand)]
pub enum AllowlistCommand {
    /// Create or replace a list.
    Add {
        /// Unique name.
        name: String,
        /// Match type: cidr, hostname, string, substring, regex.
        #[arg(long = "type")]
        match_type: String,
        /// An entry; repeatable.
        #[arg(long = "entry")]
        entries: Vec<String>,
        /// A file with one entry per line (`#` comments).
        #[arg(long)]
        file: Option<PathBuf>,
        /// What the list is for.
        #[arg(long)]
        description: Option<String>,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Import a MISP warninglist file (`list.json`).
    Import {
        /// The file.
        file: PathBuf,
        /// Name to store it under (default: from the list's own name).
        #[arg(long)]
        name: Option<String>,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List allowlists (the built-in non-routable list is always active).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Remove a list.
    Remove {
        /// The list.
        name: String,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `rampart intel decay …`.
#[derive(Debug, Subcommand)]
pub enum DecayCommand {
    /// Every model in force: built in, or set by an operator.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set the model of a scope, replacing the built-in one. A running server applies it
    /// before its next lookup, match or export.
    Set {
        /// `kind:KIND` (kind:ipv4), `threat:TYPE` (threat:botnet_cc) or `default`.
        scope: String,
        /// Days until the score's decayed part reaches 0 (`30`, `7.5`), or `never`.
        #[arg(long)]
        lifetime: String,
        /// MISP's decay speed: 1 is linear, higher keeps the score up longer before it falls.
        #[arg(long, default_value_t = 2.0)]
        speed: f64,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Remove an operator's model: the built-in one applies again.
    Reset {
        /// The scope.
        scope: String,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `rampart intel feeds …`.
#[derive(Debug, Subcommand)]
pub enum FeedsCommand {
    /// Define a feed, or change a definition.
    Add {
        /// Unique name.
        name: String,
        /// Parser (urlhaus-csv, threatfox-csv, feodo-csv, kev-json, spamhaus-drop, stix, plain, …).
        #[arg(long)]
        format: String,
        /// Where to fetch it (omit for file-only sources).
        #[arg(long)]
        url: Option<String>,
        /// Fetch interval (90s, 15m, 1h, 2d).
        #[arg(long, default_value = "1h")]
        interval: String,
        /// How far the source is trusted, 0–100.
        #[arg(long, default_value_t = 50)]
        reliability: u8,
        /// TLP of its content: clear, green, amber, amber+strict, red.
        #[arg(long, default_value = "clear")]
        tlp: String,
        /// Licence or terms of use.
        #[arg(long)]
        terms: Option<String>,
        /// How long one observation keeps an indicator alive (default 30d).
        #[arg(long, default_value = "30d")]
        ttl: String,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List feeds with their health.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Remove a feed and its observations (indicators others reported stay).
    Remove {
        /// The feed.
        name: String,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `rampart ca …`.
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Replace the intermediate CA (same root). Restart the servers afterwards; agents keep
    /// working and move to the new intermediate at their next renewal.
    RotateIntermediate {
        /// Data directory (for the SQLite database).
        #[arg(long, env = "RAMPART_DATA_DIR", default_value = "rampart-data")]
        data_dir: PathBuf,
        /// PostgreSQL URL.
        #[arg(long, env = "RAMPART_DATABASE_URL")]
        database_url: Option<String>,
        /// File with the CA passphrase (else RAMPART_CA_PASSPHRASE).
        #[arg(long, env = "RAMPART_CA_PASSPHRASE_FILE")]
        passphrase_file: Option<PathBuf>,
        /// Print the new intermediate's fingerprint as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Documents with a published JSON Schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaOf {
    /// The JSON report (`rampart scan --format json`).
    Report,
    /// The native policy format (same as `rampart policy schema`).
    Policy,
    /// The event every destination receives (`rampart.event.v1`, docs/events.md).
    Event,
}

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Terminal report.
    Pretty,
    /// Rampart JSON report.
    Json,
    /// Wazuh 4.x SCA check and summary events (NDJSON).
    Wazuh,
    /// JUnit XML.
    Junit,
    /// CSV.
    Csv,
    /// Single-file HTML.
    Html,
    /// OSCAL 1.1 assessment results (JSON).
    Oscal,
    /// PDF report: executive summary, control table per framework, failed checks with
    /// remediation, waivers, attestations, evidence appendix.
    Pdf,
}

/// Colour choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    /// Colour when writing to a terminal and NO_COLOR is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// SCA schema choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScaVersionArg {
    /// Detect from the file.
    Auto,
    /// Wazuh 4.x semantics.
    #[value(name = "4")]
    V4,
    /// Wazuh 5.x semantics.
    #[value(name = "5")]
    V5,
}

/// `rampart scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Policy file (Rampart YAML or Wazuh SCA YAML); repeat for several. Default: the built-in
    /// Linux baseline.
    #[arg(short, long = "policy", value_name = "FILE")]
    pub policies: Vec<PathBuf>,
    /// Import the results of an OpenSCAP run (XCCDF 1.2 results or ARF) instead of scanning.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["policies", "root"])]
    pub import_oscap: Option<PathBuf>,
    /// Scan this directory as if it were `/` (a mounted image, a container rootfs).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// With --root, run command rules chrooted into the root (needs root privileges).
    #[arg(long, requires = "root")]
    pub chroot_commands: bool,
    /// How a policy's requirements are judged: `host` (every rule, as Wazuh does), `image`
    /// (with --root: the image's own files such as etc/os-release decide; rules reading the
    /// running system are left out) or `skip` (not evaluated; the report says so).
    #[arg(long, value_enum, default_value_t = RequirementsArg::Host)]
    pub requirements: RequirementsArg,
    /// What to report and where.
    #[command(flatten)]
    pub out: OutputArgs,
    /// Per-command timeout in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub command_timeout: u64,
    /// Overall deadline in seconds: commands not started by then are not run.
    #[arg(long, value_name = "SECS")]
    pub deadline: Option<u64>,
    /// Worker threads (default: 4 per core, 4 to 32).
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Commands that may keep a CPU busy at once; one that sleeps gives its place up
    /// (default: one per core).
    #[arg(long, value_name = "N")]
    pub command_slots: Option<usize>,
    /// Neither read nor update the command-costs cache ($XDG_CACHE_HOME/rampart, else
    /// ~/.cache/rampart), which lets a scan start the commands that took longest last time first.
    #[arg(long)]
    pub no_cost_cache: bool,
    /// Read SCA files as this Wazuh version.
    #[arg(long, value_enum, default_value_t = ScaVersionArg::Auto)]
    pub sca_version: ScaVersionArg,
    /// Evaluate directories on NFS/CIFS too (Wazuh skips them by default).
    #[arg(long)]
    pub no_skip_nfs: bool,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}

impl OutputArgs {
    /// The format asked for, or the one the output file's extension implies.
    pub fn effective_format(&self) -> FormatArg {
        if let Some(f) = self.format {
            return f;
        }
        let ext = self
            .output
            .as_ref()
            .and_then(|p| p.extension())
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("json") => FormatArg::Json,
            Some("html" | "htm") => FormatArg::Html,
            Some("csv") => FormatArg::Csv,
            Some("xml") => FormatArg::Junit,
            Some("ndjson" | "jsonl") => FormatArg::Wazuh,
            Some("pdf") => FormatArg::Pdf,
            _ => FormatArg::Pretty,
        }
    }
}

/// Output options shared by `scan` and `report`.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output format (default: from the --output extension — .json, .html, .csv, .xml for
    /// JUnit, .ndjson for Wazuh events, .pdf — else pretty).
    #[arg(short, long, value_enum)]
    pub format: Option<FormatArg>,
    /// Write the report to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Waivers file (YAML): accepted risks, excluded from the score.
    #[arg(long, value_name = "FILE")]
    pub waivers: Option<PathBuf>,
    /// Only report checks mapped to this compliance framework (e.g. nist_800_53, pci_dss_4.0,
    /// soc_2, cis).
    #[arg(long, value_name = "NAME")]
    pub framework: Option<String>,
    /// Exit with status 1 when the score is below this percentage.
    #[arg(long, value_name = "SCORE")]
    pub fail_under: Option<f64>,
    /// List every check in the terminal report, not only failures.
    #[arg(long)]
    pub show_all: bool,
    /// Colour in the terminal report.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    pub color: ColorArg,
}

/// `rampart report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A JSON report written by `rampart scan --format json`, or, when no such file exists, an
    /// agent id: the server's report of that agent's newest runs (`--format oscal` or `pdf`).
    #[arg(required_unless_present_any = ["group", "fleet"])]
    pub target: Option<String>,
    /// With an agent: only this policy's newest run.
    #[arg(long, value_name = "POLICY")]
    pub policy: Option<String>,
    /// The server's PDF report of this group (`--format pdf`).
    #[arg(long, value_name = "GROUP", conflicts_with_all = ["target", "fleet", "policy"])]
    pub group: Option<String>,
    /// The server's PDF report of every agent you may see (`--format pdf`).
    #[arg(long, conflicts_with_all = ["target", "policy"])]
    pub fleet: bool,
    /// What to report and where.
    #[command(flatten)]
    pub out: OutputArgs,
    /// Server connection (for an agent's report).
    #[command(flatten)]
    pub conn: ServerConn,
}

/// `rampart policy ...`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check policies for errors and for constructs that probably do not do what was meant.
    Lint {
        /// Policy files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Exit with status 1 when there are warnings.
        #[arg(long)]
        deny_warnings: bool,
        /// Print the findings as JSON (per file: checks, diagnostics with file, line, column,
        /// check, code and message).
        #[arg(long)]
        json: bool,
    },
    /// Print a policy's checks as Rampart understands them.
    Show {
        /// Policy file (default: the built-in baseline).
        file: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of Rampart's native policy format.
    Schema,
    /// Upload a policy to the server (validated there, stored as a new version) and assign it.
    Push {
        /// Policy file.
        file: PathBuf,
        /// Assign to this group.
        #[arg(long, conflicts_with = "agent")]
        group: Option<String>,
        /// Assign to this agent.
        #[arg(long)]
        agent: Option<String>,
        /// Cron schedule (UTC).
        #[arg(long, default_value = "0 */6 * * *")]
        schedule: String,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
    /// List the server's policies and assignments.
    List {
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
    /// Remove a policy's assignment from a group or agent.
    Unassign {
        /// Policy id.
        policy: String,
        /// The group.
        #[arg(long, conflicts_with = "agent", required_unless_present = "agent")]
        group: Option<String>,
        /// The agent.
        #[arg(long)]
        agent: Option<String>,
        /// Server connection.
        #[command(flatten)]
        conn: ServerConn,
    },
}

/// `--requirements`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RequirementsArg {
    /// Every rule, against the live host.
    Host,
    /// Against the image's own identity (needs --root).
    Image,
    /// Not evaluated.
    Skip,
}

/// An octal file mode (`644`, `0640`, `0o600`): permission bits only.
fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o777 && !digits.is_empty() => Ok(mode),
        _ => Err(format!(
            "`{text}` is not an octal file mode (permission bits, 000-777, e.g. 0644)"
        )),
    }
}
