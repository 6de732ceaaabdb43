//! A check's policy text, stored once: the part of a stored check result that the policy, not
//! the host, decides.
//!
//! A check result's JSON ([`CheckOutcome`]) opens with what the policy says of the check (id,
//! title, description, rationale, remediation, severity, references, compliance, MITRE, the
//! condition and the rules) and ends with what the host gave (status, reason, evidence,
//! waiver). The first part is the same in every agent's result of a policy version and is most
//! of the bytes: over half of the fleet benchmark's rows, and several times the host's part for
//! the CIS policies, whose descriptions and rationales run to paragraphs. Writing it once per
//! distinct text (`check_texts`, keyed by its SHA-256) instead of once per result is the
//! largest cut there is in what result ingestion writes (docs/performance.md).
//!
//! The split is made on the stored text itself, so the text read back is the text stored,
//! byte for byte (attestations' evidence documents are digests of it): the policy part is
//! `{…}` over the leading fields, the host part `{…}` over the rest, and a result's text is the
//! first without its closing brace, a comma, and the second without its opening one. A text
//! that does not start with its policy part as this module serialises it (a field order this
//! module does not know) is stored whole, as every result was before migration 0020.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use rampart_core::{CheckOutcome, Severity};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::StoreError;

/// The policy's part of a check result, in [`CheckOutcome`]'s field order and with its field
/// names: serialised, it is the leading part of the result's text.
#[derive(Serialize)]
struct PolicyPart<'a> {
    id: &'a str,
    title: &'a str,
    description: &'a str,
    rationale: &'a str,
    remediation: &'a str,
    severity: Severity,
    references: &'a [String],
    compliance: &'a BTreeMap<String, Vec<String>>,
    mitre: &'a [String],
    condition: &'a str,
    rules: &'a [String],
}

/// A check's policy text and its key in `check_texts`.
#[derive(Debug, PartialEq, Eq)]
pub struct CheckText {
    /// SHA-256 of `text`.
    pub id: [u8; 32],
    /// The policy's part of a result's JSON: an object of the leading fields.
    pub text: String,
}

/// A check result as stored.
#[derive(Debug)]
pub enum StoredOutcome<'a> {
    /// The policy's part in `check_texts`, the host's part here.
    Split {
        /// The policy's part.
        text: Arc<CheckText>,
        /// The host's part: an object of the fields after the policy's.
        rest: String,
    },
    /// The whole text (a field order this module does not know).
    Whole(&'a str),
}

impl StoredOutcome<'_> {
    /// The `check_texts` key, when split.
    pub fn text_id(&self) -> Option<&[u8]> {
        match self {
            StoredOutcome::Split { text, .. } => Some(&text.id),
            StoredOutcome::Whole(_) => None,
        }
    }

    /// What goes into `check_results.outcome`.
    pub fn column(&self) -> &str {
        match self {
            StoredOutcome::Split { rest, .. } => rest,
            StoredOutcome::Whole(full) => full,
        }
    }
}

/// The host's part of `full` if `full` opens with `text` (minus its closing brace) and a comma.
fn rest_after(text: &str, full: &str) -> Option<String> {
    let head = text.strip_suffix('}')?;
    let tail = full.strip_prefix(head)?.strip_prefix(',')?;
    Some(format!("{{{tail}"))
}

/// Splits a result's text (`full`, the serialisation of `c`) into its policy and host parts;
/// `None` when `full` does not open with the policy part as serialised here.
pub fn split(c: &CheckOutcome, full: &str) -> Option<(CheckText, String)> {
    let part = PolicyPart {
        id: &c.id,
        title: &c.title,
        description: &c.description,
        rationale: &c.rationale,
        remediation: &c.remediation,
        severity: c.severity,
        references: &c.references,
        compliance: &c.compliance,
        mitre: &c.mitre,
        condition: &c.condition,
        rules: &c.rules,
    };
    let text = serde_json::to_string(&part).ok()?;
    let rest = rest_after(&text, full)?;
    let id = Sha256::digest(text.as_bytes()).into();
    Some((CheckText { id, text }, rest))
}

/// A stored result's text from its columns: `outcome` alone, or the policy's part (`text`, from
/// `check_texts` by `text_id`) joined to the host's part in `outcome`.
pub(crate) fn joined(
    outcome: String,
    text_id: Option<Vec<u8>>,
    text: Option<String>,
) -> Result<String, StoreError> {
    let text = match (text_id, text) {
        (None, _) => return Ok(outcome),
        (Some(id), None) => {
            return Err(StoreError::corrupt(
                "check_results.text_id",
                format!("no check text {}", hex::encode(&id)),
            ));
        }
        (Some(_), Some(text)) => text,
    };
    let (Some(head), Some(tail)) = (text.strip_suffix('}'), outcome.strip_prefix('{')) else {
        return Err(StoreError::corrupt(
            "check_results.outcome",
            "a split result's parts are not two JSON objects",
        ));
    };
    let mut full = String::with_capacity(head.len() + 1 + tail.len());
    full.push_str(head);
    full.push(',');
    full.push_str(tail);
    Ok(full)
}

/// How many policy texts [`TextCache`] keeps before it starts over: a few thousand checks per
/// policy version, a few policy versions live at once.
const CACHE_TEXTS: usize = 65_536;

/// The policy texts of recent results, by policy digest and check id, so that a run of a policy
/// the store has seen splits each result with one comparison of bytes instead of a
/// serialisation and a digest. Only a hint: a result whose text does not open with the cached
/// part (an agent that reported other words for the check) is split afresh.
#[derive(Default)]
pub(crate) struct TextCache {
    texts: Mutex<TextMap>,
}

#[derive(Default)]
struct TextMap {
    by_policy: HashMap<String, HashMap<String, Arc<CheckText>>>,
    len: usize,
}

impl TextCache {
    /// Each check result of a run (`checks` and their texts `fulls`, of the policy whose
    /// digest is `digest`) as it will be stored.
    pub(crate) fn store_form<'a>(
        &self,
        digest: &str,
        checks: &[CheckOutcome],
        fulls: &'a [String],
    ) -> Vec<StoredOutcome<'a>> {
        let mut map = match self.texts.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut out = Vec::with_capacity(checks.len());
        for (c, full) in checks.iter().zip(fulls) {
            let cached = map
                .by_policy
                .get(digest)
                .and_then(|p| p.get(&c.id))
                .and_then(|t| rest_after(&t.text, full).map(|rest| (Arc::clone(t), rest)));
            if let Some((text, rest)) = cached {
                out.push(StoredOutcome::Split { text, rest });
                continue;
            }
            let Some((text, rest)) = split(c, full) else {
                out.push(StoredOutcome::Whole(full));
                continue;
            };
            let text = Arc::new(text);
            if map.len >= CACHE_TEXTS {
                *map = TextMap::default();
            }
            let replaced = map
                .by_policy
                .entry(digest.to_owned())
                .or_default()
                .insert(c.id.clone(), Arc::clone(&text));
            if replaced.is_none() {
                map.len += 1;
            }
            out.push(StoredOutcome::Split { text, rest });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_core::{Evidence, Observation, ObservationKind, RuleVerdict, Status};

    fn outcome() -> CheckOutcome {
        let mut c = CheckOutcome::new("28500", "Ensure \"noexec\" is set on /tmp", Status::Fail);
        c.description = "The noexec mount option, {\"status\":…} in a string".into();
        c.rationale = "Stops binaries running from /tmp.".into();
        c.remediation = "Edit /etc/fstab.".into();
        c.severity = Severity::High;
        c.references = vec!["https://example.org/cis".into()];
        c.compliance
            .insert("status".into(), vec!["a field name in compliance".into()]);
        c.compliance.insert("cis".into(), vec!["1.1.2".into()]);
        c.mitre = vec!["T1204".into()];
        c.rules = vec!["c:mount -> r:\\s/tmp\\s && !r:noexec".into()];
        c.reason = Some("the rule matched".into());
        c.evidence = vec![Evidence {
            rule: "c:mount -> r:\\s/tmp\\s && !r:noexec".into(),
            verdict: RuleVerdict::Found,
            observations: vec![Observation {
                kind: ObservationKind::Command,
                target: "mount".into(),
                line: Some(3),
                text: Some("tmpfs on /tmp type tmpfs (rw)".into()),
                detail: None,
            }],
        }];
        c
    }

    #[test]
    fn a_result_splits_into_the_policys_words_and_the_hosts_and_joins_back_byte_for_byte() {
        let c = outcome();
        let full = serde_json::to_string(&c).unwrap();
        let (text, rest) = split(&c, &full).expect("CheckOutcome's policy fields lead");
        // The policy's part holds the words and nothing the host decided.
        let policy: serde_json::Value = serde_json::from_str(&text.text).unwrap();
        assert_eq!(policy["title"], "Ensure \"noexec\" is set on /tmp");
        assert_eq!(policy["compliance"]["cis"][0], "1.1.2");
        assert!(policy.get("status").is_none());
        assert!(policy.get("evidence").is_none());
        // The host's part holds exactly what the host decided.
        let host: serde_json::Value = serde_json::from_str(&rest).unwrap();
        let mut keys: Vec<&str> = host
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["evidence", "reason", "status"]);
        assert_eq!(host["status"], "fail");
        assert_eq!(
            text.id,
            <[u8; 32]>::from(Sha256::digest(text.text.as_bytes()))
        );
        let back = joined(rest, Some(text.id.to_vec()), Some(text.text)).unwrap();
        assert_eq!(back, full);
    }

    #[test]
    fn every_field_of_a_waived_result_survives_the_split() {
        let mut c = outcome();
        c.original_status = Some(Status::Fail);
        c.status = Status::Waived;
        let full = serde_json::to_string(&c).unwrap();
        let (text, rest) = split(&c, &full).unwrap();
        let back = joined(rest, Some(text.id.to_vec()), Some(text.text)).unwrap();
        assert_eq!(serde_json::from_str::<CheckOutcome>(&back).unwrap(), c);
        assert_eq!(back, full);
    }

    #[test]
    fn a_text_that_does_not_open_with_the_policy_part_is_stored_whole() {
        let c = outcome();
        // Other words for the check than the outcome in hand, or another field order.
        let other =
            serde_json::to_string(&CheckOutcome::new("28500", "other", Status::Fail)).unwrap();
        assert!(split(&c, &other).is_none());
        let cache = TextCache::default();
        let stored = cache.store_form("d1", std::slice::from_ref(&c), std::slice::from_ref(&other));
        assert!(matches!(stored[0], StoredOutcome::Whole(t) if t == other));
        assert_eq!(stored[0].text_id(), None);
        assert_eq!(joined(other.clone(), None, None).unwrap(), other);
    }

    #[test]
    fn the_cache_gives_the_same_split_and_a_changed_text_its_own() {
        let cache = TextCache::default();
        let c = outcome();
        let full = serde_json::to_string(&c).unwrap();
        let first = cache.store_form("d1", std::slice::from_ref(&c), std::slice::from_ref(&full));
        let again = cache.store_form("d1", std::slice::from_ref(&c), std::slice::from_ref(&full));
        let (
            StoredOutcome::Split { text: a, rest: ra },
            StoredOutcome::Split { text: b, rest: rb },
        ) = (&first[0], &again[0])
        else {
            panic!("split: {first:?} {again:?}");
        };
        assert!(
            Arc::ptr_eq(a, b),
            "the second run of the policy reuses the cached text"
        );
        assert_eq!(ra, rb);
        // An agent reporting other words for the same check of the same policy digest.
        let mut reworded = c.clone();
        reworded.title = "Reworded".into();
        let full2 = serde_json::to_string(&reworded).unwrap();
        let third = cache.store_form(
            "d1",
            std::slice::from_ref(&reworded),
            std::slice::from_ref(&full2),
        );
        let StoredOutcome::Split { text: t, rest } = &third[0] else {
            panic!("split");
        };
        assert_ne!(t.id, a.id);
        assert_eq!(
            joined(rest.clone(), Some(t.id.to_vec()), Some(t.text.clone())).unwrap(),
            full2
        );
    }

    #[test]
    fn a_split_result_without_its_text_is_an_error_naming_the_column() {
        let err = joined("{\"status\":\"passed\"}".into(), Some(vec![0xab; 32]), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("check_results.text_id"), "{err}");
        assert!(err.contains("abab"), "{err}");
        let err = joined("\"status\"".into(), Some(vec![1; 32]), Some("{}".into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("check_results.outcome"), "{err}");
    }
}
