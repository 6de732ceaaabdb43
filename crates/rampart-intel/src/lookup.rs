//! "What do we know about this value?" — answered the same way by the CLI and the server.
//!
//! The index finds the matches (exact, network, parent domain, URL host…); the store then adds
//! every source row that named the indicator, ATT&CK names and, on request, related indicators
//! computed from its indexes (never from a materialised pair table). Answers are typed: the
//! API returns them and the CLI prints or reads them back from the API.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::allowlist::{AllowHit, Allowlists};
use crate::canon::{Ioc, detect};
use crate::fang::refang;
use crate::index::{How, Index, Match};
use crate::kind::IocKind;
use crate::rows::IntelObservation;
use crate::score::Explanation;

/// Related indicators listed per relation (all are counted).
pub const RELATED_CAP: i64 = 50;

/// `kind:value` texts of (kind, value) pairs.
pub fn kind_values(list: &[(IocKind, String)]) -> Vec<String> {
    list.iter().map(|(k, v)| format!("{k}:{v}")).collect()
}

/// A free-text value (refanged) as a query, or why it is not an indicator.
pub fn query(raw: &str) -> Result<Ioc, String> {
    detect(&refang(raw)).map_err(|e| e.to_string())
}

/// The matches of `query` in `index`, each resolved to its indicator (entries removed since
/// the match was found are skipped).
pub fn matches(index: &Index, query: &Ioc) -> Vec<(Match, Ioc)> {
    index
        .all(query)
        .into_iter()
        .filter_map(|m| index.ioc(m.entry).map(|ioc| (m, ioc)))
        .collect()
}

/// The matches of a free-text observable (refanged), leaving out allowlisted indicators unless
/// `include_allowlisted`, or why it is not an indicator. What bulk matching — the CLI's
/// `match`, the API's, and the fleet's observables — does for each value.
pub fn observable_matches(
    index: &Index,
    raw: &str,
    include_allowlisted: bool,
) -> Result<Vec<(Match, Ioc)>, String> {
    observables_matches(index, &[raw], include_allowlisted)
        .pop()
        .unwrap_or_else(|| Ok(Vec::new()))
}

/// [`observable_matches`] for many observables at once, in their order: the index looks them
/// up as one batch ([`Index::lookup_each`]), which is what makes bulk matching fast.
pub fn observables_matches<S: AsRef<str>>(
    index: &Index,
    raws: &[S],
    include_allowlisted: bool,
) -> Vec<Result<Vec<(Match, Ioc)>, String>> {
    let mut out: Vec<Result<Vec<(Match, Ioc)>, String>> = Vec::with_capacity(raws.len());
    let (mut queries, mut positions) = (Vec::new(), Vec::new());
    for raw in raws {
        match query(raw.as_ref()) {
            Ok(q) => {
                positions.push(out.len());
                queries.push(q);
                out.push(Ok(Vec::new()));
            }
            Err(e) => out.push(Err(e)),
        }
    }
    index.lookup_each(&queries, |k, m| {
        if (include_allowlisted || !index.is_allowlisted(m.entry))
            && let Some(ioc) = index.ioc(m.entry)
            && let Some(Ok(found)) = positions.get(k).and_then(|&p| out.get_mut(p))
        {
            found.push((m, ioc));
        }
        true
    });
    out
}

/// An indicator, named by its kind and canonical value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IndicatorRef {
    /// Its kind.
    pub kind: IocKind,
    /// Its canonical value.
    pub value: String,
}

/// One match, with what the index alone knows: the indicator, how it matched, its score and
/// the allowlist entry that covers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MatchSummary {
    /// The indicator matched.
    pub indicator: IndicatorRef,
    /// How the value matched it.
    pub how: How,
    /// Its score now, 0–100 (none when it left the index meanwhile).
    pub score: Option<u8>,
    /// The allowlist entry covering it, when one does.
    pub allowlisted: Option<AllowHit>,
}

/// One match as a summary.
pub fn match_summary(index: &Index, allow: &Allowlists, m: &Match, ioc: &Ioc) -> MatchSummary {
    let allowlisted = if index.is_allowlisted(m.entry) {
        allow.check(ioc)
    } else {
        None
    };
    MatchSummary {
        indicator: IndicatorRef {
            kind: ioc.kind,
            value: ioc.value.clone(),
        },
        how: m.how,
        score: index.score(m.entry),
        allowlisted,
    }
}

/// Which source gave the base score: reliability × confidence, the best wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BaseFrom {
    /// The feed.
    pub feed: String,
    /// Its reliability, 0–100.
    pub reliability: i64,
    /// The confidence the source gave, 0–100.
    pub confidence: Option<i64>,
    /// The confidence assumed because it gave none.
    pub confidence_assumed: Option<u8>,
}

/// A score with every term that made it, and the source its base came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScoreExplained {
    /// The terms.
    #[serde(flatten)]
    pub terms: Explanation,
    /// The source of the base score.
    pub base_from: Option<BaseFrom>,
}

/// An ATT&CK technique or object an indicator's sources name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AttackRef {
    /// `T1059.001`, …
    pub id: String,
    /// `technique`, `tactic`, …; none when the ATT&CK catalogue is not imported.
    pub kind: Option<String>,
    /// Its name; none when the catalogue is not imported.
    pub name: Option<String>,
    /// The tactics it serves.
    #[serde(default)]
    pub tactics: Vec<String>,
}

/// Indicators of one malware family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FamilyIndicators {
    /// How many there are.
    pub total: i64,
    /// `kind:value` of the first [`RELATED_CAP`].
    pub listed: Vec<String>,
    /// Whether the list was cut at the cap.
    pub capped: bool,
}

/// Indicators related to one: from the same source rows and of the same families.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Related {
    /// `kind:value` of indicators the same source rows named.
    pub same_record: Vec<String>,
    /// Per family the indicator's sources name.
    pub same_family: BTreeMap<String, FamilyIndicators>,
}

/// One match with everything an analyst acts on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LookupMatch {
    /// What the index knows.
    #[serde(flatten)]
    pub summary: MatchSummary,
    /// The threat type (`botnet_cc`, `phishing`, …).
    pub threat_type: Option<String>,
    /// The malware family the newest source names.
    pub family: Option<String>,
    /// The status the newest source gives (`online`, `offline`, …).
    pub status: Option<String>,
    /// How many feeds list it.
    pub source_count: usize,
    /// When it expires unless a source reports it again (Unix seconds).
    pub expires_at: Option<i64>,
    /// The score explained.
    pub score_explained: Option<ScoreExplained>,
    /// Related indicators, when asked for.
    pub related: Option<Related>,
    /// ATT&CK references of its sources.
    pub attack: Vec<AttackRef>,
    /// First seen by any source (Unix seconds).
    pub first_seen: Option<i64>,
    /// Last seen by any source (Unix seconds).
    pub last_seen: Option<i64>,
    /// Every source row that named it, newest first.
    pub sources: Vec<IntelObservation>,
}

/// The answer for one value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Lookup {
    /// The value as asked.
    pub query: String,
    /// The kind it was read as.
    pub kind: IocKind,
    /// Its canonical form.
    pub canonical: String,
    /// Every match.
    pub matches: Vec<LookupMatch>,
}

/// The answer for one value, as the API and `intel lookup --json` give it: what is known
/// about it, or why it is not an indicator (not an error of the request: the question had an
/// answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum LookupAnswer {
    /// The value is an indicator (matched or not).
    Found(Lookup),
    /// It is not one.
    NotAnIndicator {
        /// The value as asked.
        query: String,
        /// Why it is not an indicator.
        error: String,
    },
}

/// Matches `raw` against `index` and summarises each match (the part of [`describe`] that
/// needs the index).
pub fn find(
    index: &Index,
    allow: &Allowlists,
    raw: &str,
) -> Result<(Ioc, Vec<(MatchSummary, Ioc)>), String> {
    let q = query(raw)?;
    let hits = matches(index, &q)
        .into_iter()
        .map(|(m, ioc)| (match_summary(index, allow, &m, &ioc), ioc))
        .collect();
    Ok((q, hits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_matching_keeps_each_observable_in_its_place() {
        let mut index = Index::new();
        for (id, v) in [
            (1, "evil.example"),
            (2, "198.51.100.0/24"),
            (3, "203.0.113.5"),
        ] {
            let ioc = query(v).unwrap_or_else(|e| panic!("{v}: {e}"));
            index.upsert(&ioc, id, 50).unwrap_or_else(|e| panic!("{e}"));
        }
        index.commit();
        let allowed = index
            .get(&query("203.0.113.5").unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|| panic!("203.0.113.5 is indexed"));
        index.set_allowlisted(allowed, true);
        // 40 values: more than one batch, with non-indicators and misses between the hits.
        let mut raws: Vec<String> = Vec::new();
        for k in 0..10 {
            raws.push(format!("hxxps://cdn{k}[.]evil[.]example/x"));
            raws.push("not an indicator".to_owned());
            raws.push(format!("198.51.100.{k}"));
            raws.push(
                if k % 2 == 0 {
                    "203.0.113.5"
                } else {
                    "192.0.2.1"
                }
                .to_owned(),
            );
        }
        for include_allowlisted in [false, true] {
            let bulk = observables_matches(&index, &raws, include_allowlisted);
            let ids: Vec<Option<Vec<u64>>> = bulk
                .iter()
                .map(|f| {
                    f.as_ref()
                        .ok()
                        .map(|m| m.iter().filter_map(|(m, _)| index.id(m.entry)).collect())
                })
                .collect();
            // A URL on the listed domain's sub-domain, a non-indicator, an address in the
            // listed network, then the allowlisted address (shown only when asked) or a miss.
            let expected: Vec<Option<Vec<u64>>> = (0..10)
                .flat_map(|k| {
                    let last = if k % 2 == 0 && include_allowlisted {
                        vec![3]
                    } else {
                        vec![]
                    };
                    [Some(vec![1]), None, Some(vec![2]), Some(last)]
                })
                .collect();
            assert_eq!(ids, expected, "include_allowlisted {include_allowlisted}");
            assert_eq!(
                observable_matches(&index, &raws[0], include_allowlisted),
                bulk[0]
            );
        }
    }
}
