//! The event: one JSON document per thing that happened, the same for every destination.
//!
//! Versioned by [`SCHEMA`]: fields are only ever added within a version; a renamed or removed
//! field, or a changed meaning, is a new version. `id` is unique and stays the same on every
//! redelivery (delivery is at least once), so consumers deduplicate on it; `seq` orders the
//! events of one server database.

use std::collections::BTreeMap;

use rampart_core::{Severity, Status};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The schema every event names in `schema`.
pub const SCHEMA: &str = "rampart.event.v1";

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    /// Always [`SCHEMA`] for this shape.
    pub schema: String,
    /// Unique, the same on every redelivery: deduplicate on it.
    pub id: String,
    /// Position in the server's event log (increasing; gaps are possible).
    pub seq: i64,
    /// When it happened, UTC, RFC 3339 to the millisecond.
    #[serde(with = "millis")]
    #[schemars(with = "String")]
    pub time: OffsetDateTime,
    /// How much it matters: info, low, medium, high, critical.
    pub severity: Severity,
    /// One line for people (a SIEM's event name, a chat message).
    pub summary: String,
    /// The agent it concerns, when it concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentRef>,
    /// What happened: `kind` names it, `data` holds its particulars.
    #[serde(flatten)]
    pub body: Body,
}

/// The agent an event concerns, as the server knew it when the event was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AgentRef {
    /// Agent id.
    pub id: String,
    /// Its host name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// Its group: what role-limited readers are filtered by.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", content = "data")]
pub enum Body {
    /// An agent's run was stored.
    #[serde(rename = "run.stored")]
    RunStored(RunStored),
    /// A check's latest result on an agent changed status (or was reported for the first time).
    #[serde(rename = "check.changed")]
    CheckChanged(CheckChanged),
    /// An agent enrolled (or enrolled again), or a genuine enrolment token was refused.
    #[serde(rename = "agent.enrolled")]
    AgentEnrolled(FromAudit),
    /// An agent and its certificates were revoked.
    #[serde(rename = "agent.revoked")]
    AgentRevoked(FromAudit),
    /// An agent stopped sending heartbeats.
    #[serde(rename = "agent.offline")]
    AgentOffline(AgentOffline),
    /// A waiver was requested, approved, denied or expired.
    #[serde(rename = "waiver.changed")]
    WaiverChanged(FromAudit),
    /// A run's attestation was issued (its `status` says compliant or not).
    #[serde(rename = "attestation.issued")]
    AttestationIssued(FromAudit),
    /// An observable an agent reported matched a threat-intel indicator.
    #[serde(rename = "intel.hit")]
    IntelHit(IntelHit),
    /// Any other audit-log entry (logins, users, tokens, policies, feeds, keys, settings).
    #[serde(rename = "audit")]
    Audit(FromAudit),
    /// An operator's alert rule started or stopped firing for one subject (docs/alerts.md).
    #[serde(rename = "alert")]
    Alert(Alert),
}

/// `alert`: what an alert rule found, for a chat channel, a mailbox or a SIEM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Alert {
    /// The rule's name.
    pub rule: String,
    /// Its condition's kind (`score_below`, `check_failing`, `agent_offline`, `intel_hit`,
    /// `attestation_noncompliant`).
    pub condition: String,
    /// `firing`, or `resolved` when the condition no longer holds.
    pub state: AlertState,
    /// What the rule fired for, unique within the rule: a group and policy, a check, an
    /// agent, an agent and indicator. Deduplication and quiet periods are per subject.
    pub subject: String,
    /// The group it concerns (none: the whole fleet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The policy and check it concerns, when it concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// See `policy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// What was measured (a score in percent, a number of hosts, minutes offline, an
    /// indicator's score) and the rule's threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// See `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// When the condition started to hold (or stopped, once resolved).
    #[serde(with = "millis")]
    #[schemars(with = "String")]
    pub since: OffsetDateTime,
    /// Changes or occurrences during the rule's quiet period that were not told one by one.
    #[serde(default)]
    pub suppressed: u32,
    /// Where the dashboard shows it.
    pub link: String,
    /// The destinations the rule notifies (chat and e-mail destinations take an alert only
    /// when named here).
    #[serde(default)]
    pub notify: Vec<String>,
}

/// Whether an alert's condition holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// It holds (or, for conditions that are occurrences, it happened).
    Firing,
    /// It no longer holds.
    Resolved,
}

impl AlertState {
    /// The state's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// `run.stored`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunStored {
    /// Run id.
    pub run: String,
    /// Policy.
    pub policy: String,
    /// Its version, when the run came from an assignment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<i64>,
    /// `schedule`, `on_demand`, `policy_update`, `manual`.
    pub trigger: String,
    /// Score in percent: passed over passed and failed.
    pub score: f64,
    /// Results by status.
    pub passed: u32,
    /// See `passed`.
    pub failed: u32,
    /// See `passed`.
    pub not_applicable: u32,
    /// See `passed`.
    pub waived: u32,
    /// Errors and checks not run.
    pub other: u32,
    /// When the scan started and finished.
    #[serde(with = "millis")]
    #[schemars(with = "String")]
    pub started_at: OffsetDateTime,
    /// See `started_at`.
    #[serde(with = "millis")]
    #[schemars(with = "String")]
    pub finished_at: OffsetDateTime,
}

/// `check.changed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CheckChanged {
    /// The run that reported the new status.
    pub run: String,
    /// Policy and check.
    pub policy: String,
    /// See `policy`.
    pub check: String,
    /// The check's title.
    pub title: String,
    /// The check's severity, as its policy states it.
    pub check_severity: Severity,
    /// The status before; none when the agent reports the check for the first time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Status>,
    /// The status now.
    pub to: Status,
}

/// An event the audit log recorded, with the entry's particulars.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FromAudit {
    /// The entry's position in the audit log (its inclusion can be proven).
    pub audit_index: u64,
    /// Who.
    pub actor: String,
    /// The credential used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// The client's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The audit action (`agent.revoke`, `waiver.approve`, `login`, …; docs/audit.md).
    pub action: String,
    /// What it was done to.
    pub target: String,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    /// The entry's particulars.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub detail: BTreeMap<String, String>,
}

/// `agent.offline`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AgentOffline {
    /// Its last heartbeat.
    #[serde(with = "millis")]
    #[schemars(with = "String")]
    pub last_seen: OffsetDateTime,
}

/// `intel.hit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IntelHit {
    /// What the agent reported: `connection`, `listener`, `resolver`.
    pub observable_kind: String,
    /// The value it reported.
    pub observable: String,
    /// Where it was seen (process, port, file).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub context: String,
    /// The indicator matched: its kind and canonical value.
    pub indicator_kind: String,
    /// See `indicator_kind`.
    pub indicator: String,
    /// How it matched (`exact`, `parent domain`, `network`).
    pub how: String,
    /// The indicator's score, 0–100.
    pub score: u8,
    /// Its threat type and malware family, when a feed said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threat_type: Option<String>,
    /// See `threat_type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// The run whose observables matched.
    pub run: String,
}

impl Body {
    /// The kind's name (`run.stored`): the `kind` field, a syslog MSGID, a CEF event class.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::RunStored(_) => "run.stored",
            Body::CheckChanged(_) => "check.changed",
            Body::AgentEnrolled(_) => "agent.enrolled",
            Body::AgentRevoked(_) => "agent.revoked",
            Body::AgentOffline(_) => "agent.offline",
            Body::WaiverChanged(_) => "waiver.changed",
            Body::AttestationIssued(_) => "attestation.issued",
            Body::IntelHit(_) => "intel.hit",
            Body::Audit(_) => "audit",
            Body::Alert(_) => "alert",
        }
    }

    /// Every kind, for documents and filters.
    pub const KINDS: [&'static str; 10] = [
        "run.stored",
        "check.changed",
        "agent.enrolled",
        "agent.revoked",
        "agent.offline",
        "waiver.changed",
        "attestation.issued",
        "intel.hit",
        "audit",
        "alert",
    ];
}

/// The JSON Schema of the event document (`rampart schema event`).
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Event)).unwrap_or(serde_json::Value::Null)
}

impl Event {
    /// The agent group the event concerns: its agent's, or the group an alert is about.
    /// What role-limited readers and destination filters go by; none for fleet-wide events.
    pub fn group(&self) -> Option<&str> {
        match (&self.agent, &self.body) {
            (Some(a), _) if !a.group.is_empty() => Some(&a.group),
            (_, Body::Alert(a)) => a.group.as_deref(),
            _ => None,
        }
    }

    /// The event's JSON text, as every JSON destination receives it.
    pub fn to_json(&self) -> String {
        // Strings, numbers and maps of strings always serialise.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads an event's JSON text.
    pub fn from_json(text: &str) -> Result<Event, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// RFC 3339 UTC with exactly three fractional digits.
pub(crate) mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;
    use time::format_description::FormatItem;
    use time::macros::format_description;

    const FORMAT: &[FormatItem<'static>] =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

    /// The text of an instant.
    pub fn format(t: OffsetDateTime) -> String {
        t.to_offset(time::UtcOffset::UTC)
            .format(FORMAT)
            .unwrap_or_default()
    }

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(d)?;
        OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
            .map_err(serde::de::Error::custom)
    }
}
