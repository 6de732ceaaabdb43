//! One audit-log entry and its bytes.
//!
//! The leaf of the Merkle tree is the entry's JSON text exactly as stored and exported, so an
//! auditor holding the JSON lines export recomputes every leaf hash without Rampart. The text
//! is written once, by [`Entry::to_leaf`]; verification hashes the stored bytes as they are and
//! never re-serialises them.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What came of the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "AuditOutcome")]
pub enum Outcome {
    /// It was done.
    Success,
    /// It was attempted and failed (a wrong password, an invalid enrolment token).
    Failure,
    /// The caller was not allowed to do it.
    Denied,
}

impl Outcome {
    /// The name in entries and queries.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

impl std::str::FromStr for Outcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Outcome, String> {
        match s {
            "success" => Ok(Outcome::Success),
            "failure" => Ok(Outcome::Failure),
            "denied" => Ok(Outcome::Denied),
            other => Err(format!(
                "unknown outcome {other:?} (success, failure or denied)"
            )),
        }
    }
}

/// What happened, as the code that saw it describes it; the log adds the index and the time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "AuditEvent")]
pub struct Event {
    /// Who: a user name, `agent:ID`, `system` (the server itself), or `-` when the caller
    /// could not be identified (a failed login names the attempted user in `target`).
    pub actor: String,
    /// The credential the actor used: `password`, `session`, `token:NAME`, `certificate`,
    /// `enrolment-token:JTI`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// The client's address, when the event came from a request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// What was done, dotted: `login`, `token.create`, `agent.revoke` (docs/audit.md lists them).
    pub action: String,
    /// What it was done to: `user:alice`, `token:alice/ci`, `agent:ID`, `policy:ID`, `feed:NAME`.
    pub target: String,
    /// What came of it.
    pub outcome: Outcome,
    /// Particulars (a role, a reason, a certificate serial), sorted by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub detail: BTreeMap<String, String>,
}

impl Event {
    /// An event with no via, source or detail.
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        target: impl Into<String>,
        outcome: Outcome,
    ) -> Event {
        Event {
            actor: actor.into(),
            via: None,
            source: None,
            action: action.into(),
            target: target.into(),
            outcome,
            detail: BTreeMap::new(),
        }
    }

    /// With the credential used.
    pub fn via(mut self, via: impl Into<String>) -> Event {
        self.via = Some(via.into());
        self
    }

    /// With the client address.
    pub fn source(mut self, source: impl Into<String>) -> Event {
        self.source = Some(source.into());
        self
    }

    /// With one particular.
    pub fn detail(mut self, key: &str, value: impl Into<String>) -> Event {
        self.detail.insert(key.to_owned(), value.into());
        self
    }
}

/// An entry of the log: its position, when it was appended, and the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "AuditEntry")]
pub struct Entry {
    /// Position in the log, from 0; part of the hashed text, so an entry cannot be moved.
    pub index: u64,
    /// When it was appended, UTC to the millisecond.
    #[serde(with = "millis")]
    #[schemars(with = "String")]
    pub time: OffsetDateTime,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// Why a stored entry could not be read.
#[derive(Debug, thiserror::Error)]
#[error("not an audit entry: {0}")]
pub struct EntryError(#[from] serde_json::Error);

impl Entry {
    /// The entry's text, the tree's leaf: compact JSON, fields in a fixed order.
    pub fn to_leaf(&self) -> String {
        // A struct of strings, maps of strings and integers always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads an entry's text.
    pub fn parse(leaf: &[u8]) -> Result<Entry, EntryError> {
        Ok(serde_json::from_slice(leaf)?)
    }

    /// The time truncated to what the entry keeps.
    pub fn now() -> OffsetDateTime {
        let t = OffsetDateTime::now_utc();
        t.replace_millisecond(t.millisecond()).unwrap_or(t)
    }
}

/// RFC 3339 UTC with exactly three fractional digits: one spelling per instant.
mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;
    use time::format_description::FormatItem;
    use time::macros::format_description;

    const FORMAT: &[FormatItem<'static>] =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        let t = t.to_offset(time::UtcOffset::UTC);
        s.serialize_str(&t.format(FORMAT).map_err(serde::ser::Error::custom)?)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let s = String::deserialize(d)?;
        time::PrimitiveDateTime::parse(&s, FORMAT)
            .map(|t| t.assume_utc())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leaf_text_is_fixed_and_reads_back() {
        let e = Entry {
            index: 7,
            time: OffsetDateTime::from_unix_timestamp_nanos(1_764_763_200_123_456_789).unwrap(),
            event: Event::new("alice", "token.create", "token:alice/ci", Outcome::Success)
                .via("password")
                .source("10.0.0.1")
                .detail("role", "viewer")
                .detail("expires", "2027-03-03"),
        };
        // Written by hand: field order as declared, detail keys sorted, milliseconds only.
        assert_eq!(
            e.to_leaf(),
            r#"{"index":7,"time":"2025-12-03T12:00:00.123Z","actor":"alice","via":"password","source":"10.0.0.1","action":"token.create","target":"token:alice/ci","outcome":"success","detail":{"expires":"2027-03-03","role":"viewer"}}"#
        );
        let back = Entry::parse(e.to_leaf().as_bytes()).unwrap();
        assert_eq!(back.index, 7);
        assert_eq!(back.event, e.event);
        assert_eq!(back.time.millisecond(), 123);
        // Optional parts are left out, not written as null.
        let bare = Entry {
            index: 0,
            time: back.time,
            event: Event::new("-", "login", "user:bob", Outcome::Failure),
        };
        assert_eq!(
            bare.to_leaf(),
            r#"{"index":0,"time":"2025-12-03T12:00:00.123Z","actor":"-","action":"login","target":"user:bob","outcome":"failure"}"#
        );
    }

    #[test]
    fn broken_entries_are_refused() {
        for bad in [
            &b"not json"[..],
            br#"{"index":1}"#,
            br#"{"index":-1,"time":"2025-12-03T12:00:00.123Z","actor":"a","action":"b","target":"c","outcome":"success"}"#,
            br#"{"index":1,"time":"yesterday","actor":"a","action":"b","target":"c","outcome":"success"}"#,
            br#"{"index":1,"time":"2025-12-03T12:00:00.123Z","actor":"a","action":"b","target":"c","outcome":"maybe"}"#,
        ] {
            assert!(Entry::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
