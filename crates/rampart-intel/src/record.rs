//! What a parser hands on: one [`Record`] per source row or object, already canonical.

use serde::Serialize;

use crate::canon::Ioc;

/// One row of a feed (a CSV line, a JSON object, a STIX indicator), with every indicator it
/// names and what the feed said about them.
///
/// Several indicators in one record are related by that record: a MalwareBazaar row's hashes are
/// one sample (an equivalence set), a STIX `OR` pattern lists one campaign's infrastructure, a
/// Feodo row names an address and its port. The store keeps the record once per indicator as an
/// observation, with the same raw text, which is how those relations are found again on demand.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Record {
    /// 1-based line of the row (or of the start of the object) in its document.
    pub line: u64,
    /// The feed's own id for the row (URLhaus id, ThreatFox ioc_id, MISP uuid, STIX id).
    pub source_ref: Option<String>,
    /// The indicators, canonical and deduplicated within the record.
    pub indicators: Vec<Ioc>,
    /// When the source first saw it (Unix seconds, UTC).
    pub first_seen: Option<i64>,
    /// When the source last saw it (Unix seconds, UTC).
    pub last_seen: Option<i64>,
    /// Until when the source says it is valid (STIX `valid_until`).
    pub valid_until: Option<i64>,
    /// What it is used for (`botnet_cc`, `payload_delivery`, `phishing`, …), lowercase.
    pub threat_type: Option<String>,
    /// Malware families (Malpedia ids where the feed gives them), lowercase.
    pub malware: Vec<String>,
    /// Tags, lowercase unless namespaced (`ns:pred="v"` kept verbatim).
    pub tags: Vec<String>,
    /// ATT&CK technique ids (`T1059.001`).
    pub attack: Vec<String>,
    /// The source's confidence, 0–100.
    pub confidence: Option<u8>,
    /// Who reported it to the source.
    pub reporter: Option<String>,
    /// A reference URL (the feed's page for the row, a report).
    pub reference: Option<String>,
    /// Online / offline / … as the feed says.
    pub status: Option<String>,
    /// Free text (KEV vulnerability name, OTX pulse name, STIX indicator name).
    pub description: Option<String>,
    /// The row exactly as the feed wrote it (a line, or a JSON object's text).
    pub raw: String,
}

impl Record {
    /// Adds an indicator unless the record already holds it.
    pub fn push(&mut self, ioc: Ioc) {
        if !self.indicators.contains(&ioc) {
            self.indicators.push(ioc);
        }
    }

    /// Adds a tag, normalised (see [`normalize_tag`]), unless present. A tag that is an
    /// ATT&CK technique id (`T1059.001`, `attack.t1059`) also lands in [`Record::attack`].
    pub fn tag(&mut self, tag: &str) {
        let bare = tag.trim();
        let bare = bare
            .strip_prefix("attack.")
            .or_else(|| bare.strip_prefix("mitre-attack:"))
            .unwrap_or(bare);
        if let Ok(t) = crate::canon::canonicalize(crate::kind::IocKind::AttackTechnique, bare)
            && !self.attack.contains(&t.value)
        {
            self.attack.push(t.value);
        }
        if let Some(tag) = normalize_tag(tag)
            && !self.tags.contains(&tag)
        {
            self.tags.push(tag);
        }
    }

    /// Adds a malware family, lowercase, unless present or empty.
    pub fn family(&mut self, name: &str) {
        let name = name.trim();
        if is_null(name) {
            return;
        }
        let name = name.to_lowercase();
        if !self.malware.contains(&name) {
            self.malware.push(name);
        }
    }
}

/// The feeds' spellings of "no value": empty, `None`, `n/a`, `null`, `-`.
pub fn is_null(value: &str) -> bool {
    let v = value.trim();
    v.is_empty()
        || v.eq_ignore_ascii_case("none")
        || v.eq_ignore_ascii_case("n/a")
        || v.eq_ignore_ascii_case("null")
        || v == "-"
}

/// Trims, drops null spellings, and lowercases a tag unless it is a namespaced machine tag
/// (`misp-galaxy:threat-actor="APT 28"`), whose value is case-sensitive.
pub fn normalize_tag(tag: &str) -> Option<String> {
    let tag = tag.trim();
    if is_null(tag) {
        return None;
    }
    if tag.contains(':') && tag.contains('=') {
        Some(tag.to_owned())
    } else {
        Some(tag.to_lowercase())
    }
}

/// A row or value a parser could not use, and why. The rest of the document is still parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Problem {
    /// 1-based line in the document (0 when the document has no lines, e.g. a zip member list).
    pub line: u64,
    /// The field or JSON path concerned, if one.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}", self.line)?;
        if let Some(field) = &self.field {
            write!(f, ", field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}
