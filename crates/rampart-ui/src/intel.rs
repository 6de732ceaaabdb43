//! Threat intelligence: feed health, a lookup box, the fleet's matches, and one indicator with
//! every source that named it and its score explained.
//!
//! Feed values (descriptions, references, reporters, tags) come from outside: they are text
//! here, never links or markup.

use askama::Template;

use crate::pages::{Page, Shell};

/// One feed and its health.
#[derive(Debug, Clone)]
pub struct FeedRow {
    /// Its name.
    pub name: String,
    /// Its parser.
    pub format: String,
    /// Reliability, 0–100.
    pub reliability: i64,
    /// TLP marking.
    pub tlp: String,
    /// `healthy`, `failing`, `stale`, `never fetched`, `file only` or `disabled`.
    pub health: &'static str,
    /// Last successful fetch (UTC, to the minute); empty: never.
    pub last_success: String,
    /// Consecutive failures and the last error.
    pub failures: i64,
    /// See `failures`.
    pub last_error: Option<String>,
    /// Indicators in the last successful parse.
    pub indicators: Option<i64>,
    /// Rows rejected in it.
    pub problems: Option<i64>,
    /// How often it is fetched, as text.
    pub every: String,
}

impl FeedRow {
    /// The health as a class name.
    pub fn health_class(&self) -> &'static str {
        match self.health {
            "healthy" => "ok",
            "failing" => "bad",
            _ => "warn",
        }
    }
}

/// One fleet match.
#[derive(Debug, Clone)]
pub struct FleetHit {
    /// The agent and its host name.
    pub agent_id: String,
    /// See `agent_id`.
    pub hostname: String,
    /// The indicator matched, and its kind.
    pub indicator: String,
    /// See `indicator`.
    pub kind: String,
    /// What the agent reported, and where.
    pub observable: String,
    /// See `observable`.
    pub context: String,
    /// The feeds listing the indicator.
    pub feeds: String,
    /// Last seen (UTC, to the minute).
    pub last_seen: String,
    /// How many times.
    pub count: i64,
}

/// `/ui/intel`: feeds, the lookup box, the fleet's matches.
#[derive(Debug, Template)]
#[template(path = "intel.html")]
pub struct IntelPage {
    /// The signed-in user.
    pub shell: Shell,
    /// Indicators in the index, and its size in MiB.
    pub indexed: usize,
    /// See `indexed`.
    pub index_mib: String,
    /// Indicators expired and kept for history.
    pub expired: i64,
    /// Indicators per kind.
    pub kinds: Vec<(String, usize)>,
    /// The feeds.
    pub feeds: Vec<FeedRow>,
    /// The newest fleet matches on hosts the viewer sees.
    pub hits: Vec<FleetHit>,
}

impl Page for IntelPage {
    const NAME: &'static str = "intel";
}

/// A score term by term.
#[derive(Debug, Clone)]
pub struct ScoreTerms {
    /// The base, and the source it came from (feed, reliability, confidence).
    pub base: u8,
    /// See `base`.
    pub base_from: Option<String>,
    /// Days since a source or a sighting last saw it.
    pub age_days: String,
    /// The decay model's factor for that age, and the model.
    pub age_factor: String,
    /// See `age_factor`.
    pub model: String,
    /// Confirmed sightings and their bonus.
    pub sightings: u32,
    /// See `sightings`.
    pub sightings_bonus: u32,
    /// False positives and their penalty.
    pub false_positives: u32,
    /// See `false_positives`.
    pub false_positive_penalty: u32,
    /// The score.
    pub score: u8,
}

/// One source row that named the indicator.
#[derive(Debug, Clone)]
pub struct SourceRow {
    /// Feed, its reliability and TLP.
    pub feed: String,
    /// See `feed`.
    pub reliability: i64,
    /// See `feed`.
    pub tlp: String,
    /// What the row says, as text: threat type, families, tags, status, confidence.
    pub facts: Vec<String>,
    /// Who reported it and the reference it gives (text, never a link).
    pub reporter: Option<String>,
    /// See `reporter`.
    pub reference: Option<String>,
    /// Its description.
    pub description: Option<String>,
    /// First and last seen by the source; last fetched.
    pub first_seen: String,
    /// See `first_seen`.
    pub last_seen: String,
    /// See `first_seen`.
    pub last_fetched: String,
}

/// One indicator matching the value looked up.
#[derive(Debug, Clone)]
pub struct IndicatorMatch {
    /// `kind:value`.
    pub kind: String,
    /// See `kind`.
    pub value: String,
    /// How the value matched it (`exact`, `network`, `parent domain`, …).
    pub how: String,
    /// Its score now.
    pub score: Option<u8>,
    /// The allowlist entry covering it (`list: entry`).
    pub allowlisted: Option<String>,
    /// Threat type, family, status.
    pub threat_type: Option<String>,
    /// See `threat_type`.
    pub family: Option<String>,
    /// See `threat_type`.
    pub status: Option<String>,
    /// Feeds listing it.
    pub source_count: usize,
    /// First and last seen by any source, when it expires (UTC).
    pub first_seen: String,
    /// See `first_seen`.
    pub last_seen: String,
    /// See `first_seen`.
    pub expires: String,
    /// The score explained.
    pub terms: Option<ScoreTerms>,
    /// ATT&CK references, `id name`.
    pub attack: Vec<String>,
    /// Every source row, newest first.
    pub sources: Vec<SourceRow>,
}

/// `/ui/intel/lookup?value=…`: what is known about a value.
#[derive(Debug, Template)]
#[template(path = "lookup.html")]
pub struct LookupPage {
    /// The signed-in user.
    pub shell: Shell,
    /// The value as asked.
    pub query: String,
    /// Why it is not an indicator, when it is not one.
    pub not_an_indicator: Option<String>,
    /// The kind it was read as, and its canonical form.
    pub kind: String,
    /// See `kind`.
    pub canonical: String,
    /// Every match.
    pub matches: Vec<IndicatorMatch>,
}

impl Page for LookupPage {
    const NAME: &'static str = "lookup";
}
