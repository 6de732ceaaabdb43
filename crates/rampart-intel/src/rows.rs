//! The threat-intelligence rows the store keeps, as typed values: what ingestion hands the
//! store and what reads give back. They are defined here, with the rest of the intel domain,
//! so that this crate stays pure (no store, no I/O) while the store persists its types. Kinds
//! are typed: the store turns them into their stable codes and back, and refuses a code this
//! version does not know rather than guess.

use serde::Serialize;

use crate::kind::IocKind;

/// A feed definition with its health.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct IntelFeed {
    /// Row id.
    pub id: i64,
    /// Unique name (`urlhaus`).
    pub name: String,
    /// Parser name (`urlhaus-csv`).
    pub format: String,
    /// Where to fetch it; `None` for file-only sources.
    pub url: Option<String>,
    /// Fetch interval, seconds.
    pub interval_secs: i64,
    /// How far the source is trusted, 0–100.
    pub reliability: i64,
    /// Traffic Light Protocol marking of the feed's content.
    pub tlp: String,
    /// Licence or terms of use.
    pub terms: Option<String>,
    /// How long one observation keeps an indicator alive, seconds.
    pub ttl_secs: i64,
    /// Whether `sync` fetches it.
    pub enabled: bool,
    /// Last `ETag` the server sent.
    pub etag: Option<String>,
    /// Last `Last-Modified` the server sent.
    pub last_modified: Option<String>,
    /// Last fetch attempt.
    pub last_attempt: Option<i64>,
    /// Last successful fetch (including "not modified").
    pub last_success: Option<i64>,
    /// Last error, cleared on success.
    pub last_error: Option<String>,
    /// Consecutive failures.
    pub failures: i64,
    /// Records in the last successful parse.
    pub last_records: Option<i64>,
    /// Indicators in the last successful parse.
    pub last_indicators: Option<i64>,
    /// Rejected rows in the last parse.
    pub last_problems: Option<i64>,
    /// When the feed was defined.
    pub created_at: i64,
}

/// What an admin sets when defining a feed.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIntelFeed {
    /// Unique name.
    pub name: String,
    /// Parser name.
    pub format: String,
    /// Where to fetch it.
    pub url: Option<String>,
    /// Fetch interval, seconds.
    pub interval_secs: i64,
    /// 0–100.
    pub reliability: i64,
    /// TLP marking.
    pub tlp: String,
    /// Licence or terms.
    pub terms: Option<String>,
    /// Observation lifetime, seconds.
    pub ttl_secs: i64,
}

/// One record to store with the indicators it names. `Default` is the empty record: no
/// optional field, no list entry, no indicator.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IntelRecordIn {
    /// Hex digest identifying the record within its feed.
    pub hash: String,
    /// The feed's own id of the row.
    pub source_ref: Option<String>,
    /// When the source first saw it.
    pub first_seen: Option<i64>,
    /// When the source last saw it.
    pub last_seen: Option<i64>,
    /// Validity end the source gave.
    pub valid_until: Option<i64>,
    /// Threat type.
    pub threat_type: Option<String>,
    /// Malware families.
    pub malware: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// ATT&CK technique ids.
    pub attack: Vec<String>,
    /// Source confidence.
    pub confidence: Option<i64>,
    /// Reporter.
    pub reporter: Option<String>,
    /// Reference URL.
    pub reference: Option<String>,
    /// Online/offline.
    pub status: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// The row verbatim.
    pub raw: String,
    /// The indicators: (kind, canonical value, base score 0–100).
    pub indicators: Vec<(IocKind, String, i64)>,
}

/// An indicator as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntelIndicator {
    /// Row id.
    pub id: i64,
    /// Its kind.
    pub kind: IocKind,
    /// Canonical value.
    pub value: String,
    /// Earliest source sighting.
    pub first_seen: i64,
    /// Latest source sighting.
    pub last_seen: i64,
    /// First ingestion.
    pub first_reported: i64,
    /// Latest ingestion.
    pub last_reported: i64,
    /// When it stops being live unless observed again.
    pub expires_at: i64,
    /// Score before decay and sightings.
    pub base_score: i64,
    /// Confirmed sightings.
    pub sightings: i64,
    /// Reported false positives.
    pub false_positives: i64,
    /// Last sighting of either type.
    pub last_sighting: Option<i64>,
    /// Threat type of its latest record that has one.
    pub threat_type: Option<String>,
    /// The stamp of its current version (TAXII's `date_added`), microseconds.
    pub version: i64,
}

/// One feed row that named an indicator, with its feed.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct IntelObservation {
    /// Feed name.
    pub feed: String,
    /// Feed reliability.
    pub reliability: i64,
    /// Feed TLP.
    pub tlp: String,
    /// Record hash.
    pub record: String,
    /// The feed's id of the row.
    pub source_ref: Option<String>,
    /// Source first seen.
    pub first_seen: Option<i64>,
    /// Source last seen.
    pub last_seen: Option<i64>,
    /// Threat type.
    pub threat_type: Option<String>,
    /// Families.
    pub malware: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// ATT&CK ids.
    pub attack: Vec<String>,
    /// Source confidence.
    pub confidence: Option<i64>,
    /// Reporter.
    pub reporter: Option<String>,
    /// Reference.
    pub reference: Option<String>,
    /// Status.
    pub status: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// The row verbatim.
    pub raw: String,
    /// First fetched.
    pub first_fetched: i64,
    /// Last fetched.
    pub last_fetched: i64,
}

/// What one ingest batch changed.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct IntelIngestCounts {
    /// Indicators that did not exist before.
    pub new_indicators: u64,
    /// Indicators that existed and were refreshed.
    pub updated_indicators: u64,
    /// Records written or refreshed.
    pub records: u64,
    /// Observation links that did not exist before.
    pub new_observations: u64,
}

/// An indicator as exported: its state and the latest record's threat type and family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntelExportRow {
    /// The indicator's state.
    pub indicator: IntelIndexRow,
    /// Earliest source sighting.
    pub first_seen: i64,
    /// Family of the most recently fetched record naming it that has one.
    pub family: Option<String>,
    /// ATT&CK technique ids of every record naming it, sorted.
    pub attack: Vec<String>,
    /// Every feed with a record naming it, by name, with the feed's TLP; sorted by name.
    pub feeds: Vec<(String, String)>,
    /// When Rampart first ingested it.
    pub first_reported: i64,
    /// The stamp of its current version (`intel_clock`), microseconds since the epoch.
    pub version: i64,
}

/// Where a page of export rows starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportCursor {
    /// In id order, after this row id (whole exports).
    AfterId(i64),
    /// In version order, rows whose objects may carry a stamp above this one: versions above
    /// `stamp - STAMPS_PER_VERSION` (TAXII's `added_after` and `next`).
    AfterStamp(i64),
}

/// Stamps each indicator version reserves: its STIX objects are added at `version + k`.
pub const STAMPS_PER_VERSION: i64 = 4;

/// A stored allowlist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntelAllowlist {
    /// Unique name.
    pub name: String,
    /// `cidr`, `hostname`, `string`, `substring` or `regex`.
    pub match_type: String,
    /// The entries.
    pub entries: Vec<String>,
    /// What the list is for.
    pub description: Option<String>,
    /// When it was stored.
    pub created_at: i64,
}

/// An indicator's state for the lookup index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntelIndexRow {
    /// Row id.
    pub id: i64,
    /// Its kind.
    pub kind: IocKind,
    /// Canonical value.
    pub value: String,
    /// Base score.
    pub base_score: i64,
    /// Latest source sighting.
    pub last_seen: i64,
    /// Confirmed sightings.
    pub sightings: i64,
    /// False positives.
    pub false_positives: i64,
    /// Latest confirmed sighting (hit); decay restarts from it.
    pub last_sighting: Option<i64>,
    /// Threat type of its latest record that has one (it chooses the decay model).
    pub threat_type: Option<String>,
}

/// An operator's decay model for one scope (`kind:ipv4`, `threat:botnet_cc`, `default`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntelDecayRow {
    /// What it applies to.
    pub scope: String,
    /// Days to reach 0; `None`: never decays.
    pub lifetime_days: Option<f64>,
    /// MISP's decay speed.
    pub speed: f64,
}

/// A match to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIntelHit {
    /// The indicator's row id.
    pub indicator_id: i64,
    /// `connection`, `listener` or `resolver`.
    pub observable_kind: String,
    /// The observable as reported.
    pub observable: String,
    /// Where the agent saw it.
    pub context: String,
    /// How it matched (`exact`, `network`, `parent_domain`, …).
    pub how: String,
    /// The indicator's score when it matched (decay and sightings applied), 0–100.
    pub score: u8,
}

/// A recorded match, with its indicator and the feeds that reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct IntelHit {
    /// Row id.
    pub id: i64,
    /// The agent.
    pub agent_id: String,
    /// Its host name.
    pub hostname: String,
    /// The indicator's kind.
    pub indicator_kind: IocKind,
    /// The indicator's canonical value.
    pub indicator: String,
    /// `connection`, `listener` or `resolver`.
    pub observable_kind: String,
    /// The observable as reported.
    pub observable: String,
    /// Where the agent saw it.
    pub context: String,
    /// How it matched.
    pub how: String,
    /// First report (Unix seconds).
    pub first_seen: i64,
    /// Latest report.
    pub last_seen: i64,
    /// The run that reported it last.
    pub last_run: String,
    /// Runs that reported it.
    pub count: i64,
    /// Feeds that list the indicator.
    pub feeds: Vec<String>,
}
