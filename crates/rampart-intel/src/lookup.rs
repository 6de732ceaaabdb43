//! "What do we know about this value?" — answered the same way by the CLI and the server.
//!
//! The index finds the matches (exact, network, parent domain, URL host…); the store then adds
//! every source row that named the indicator, ATT&CK names and, on request, related indicators
//! computed from its indexes (never from a materialised pair table). Answers are JSON values
//! because they are only ever rendered: the CLI prints them, the API returns them.

use rampart_store::{Store, StoreError};
use serde_json::{Value, json};

use crate::allowlist::Allowlists;
use crate::canon::{Ioc, detect};
use crate::fang::refang;
use crate::index::{Index, Match};
use crate::kind::IocKind;
use crate::score::{self, DecayModels, Facts};

/// Related indicators listed per relation (all are counted).
pub const RELATED_CAP: i64 = 50;

/// `kind:value` texts of stored (kind code, value) pairs.
pub fn kind_values(list: &[(i64, String)]) -> Vec<String> {
    list.iter()
        .map(|(k, v)| {
            let kind = IocKind::from_stored(*k).map_or("unknown", IocKind::as_str);
            format!("{kind}:{v}")
        })
        .collect()
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
    let q = query(raw)?;
    Ok(matches(index, &q)
        .into_iter()
        .filter(|(m, _)| include_allowlisted || !index.is_allowlisted(m.entry))
        .collect())
}

/// One match as JSON, with what the index alone knows: the indicator, how it matched, its score
/// and the allowlist entry that covers it.
pub fn match_summary(index: &Index, allow: &Allowlists, m: &Match, ioc: &Ioc) -> Value {
    let allowlisted = if index.is_allowlisted(m.entry) {
        allow.check(ioc)
    } else {
        None
    };
    json!({
        "indicator": {"kind": ioc.kind, "value": ioc.value},
        "how": m.how,
        "score": index.score(m.entry),
        "allowlisted": allowlisted,
    })
}

/// The full answer for one query value: `{"query", "kind", "canonical", "matches": […]}`, or
/// `{"query", "error"}` when the value is not an indicator. The index is read under the
/// caller's control (`find`), so a server can hold its lock only while matching. Each match
/// carries what an analyst acts on: threat type, family, status, first and last seen, the
/// sources, and the score explained (`score_explained`, scored under `decay` at `at`).
pub async fn describe(
    store: &Store,
    raw: &str,
    found: Result<(Ioc, Vec<(Value, Ioc)>), String>,
    related: bool,
    decay: &DecayModels,
    at: i64,
) -> Result<Value, StoreError> {
    let (query, hits) = match found {
        Ok(f) => f,
        Err(e) => return Ok(json!({"query": raw, "error": e})),
    };
    let mut out = Vec::with_capacity(hits.len());
    for (mut summary, ioc) in hits {
        let stored = store
            .intel_indicator(i64::from(ioc.kind.code()), &ioc.value)
            .await?;
        let sources = match &stored {
            Some(s) => store.intel_observations(s.id).await?,
            None => Vec::new(),
        };
        let mut attack_ids: Vec<String> = sources
            .iter()
            .flat_map(|o| o.attack.iter().cloned())
            .collect();
        attack_ids.sort();
        attack_ids.dedup();
        let named = store.intel_attack_names(&attack_ids).await?;
        let attack: Vec<Value> = attack_ids
            .iter()
            .map(|id| match named.iter().find(|n| &n.0 == id) {
                Some((_, kind, name, tactics)) => {
                    json!({"id": id, "kind": kind, "name": name, "tactics": tactics})
                }
                None => json!({"id": id}),
            })
            .collect();
        let related_json = match (&stored, related) {
            (Some(s), true) => {
                let by_record = store.intel_related_by_record(s.id, RELATED_CAP).await?;
                let mut families = serde_json::Map::new();
                let mut names: Vec<String> = sources
                    .iter()
                    .flat_map(|o| o.malware.iter().cloned())
                    .collect();
                names.sort();
                names.dedup();
                for family in names {
                    let (total, list) = store.intel_by_family(&family, RELATED_CAP).await?;
                    families.insert(
                        family,
                        json!({"total": total, "listed": kind_values(&list), "capped": total > RELATED_CAP}),
                    );
                }
                json!({"same_record": kind_values(&by_record), "same_family": families})
            }
            _ => Value::Null,
        };
        // Sources come newest first: the latest that says something speaks for the indicator.
        let family = sources.iter().find_map(|o| o.malware.first().cloned());
        let status = sources.iter().find_map(|o| o.status.clone());
        let explained = stored.as_ref().map(|s| {
            let mut e = serde_json::to_value(decay.explain(
                &Facts::from_indicator(s),
                ioc.kind,
                s.threat_type.as_deref(),
                at,
            ))
            .unwrap_or(Value::Null);
            // Which source gave the base score: reliability × confidence, the best wins.
            let best = sources.iter().max_by_key(|o| {
                score::base(
                    u8::try_from(o.reliability.clamp(0, 100)).unwrap_or(0),
                    o.confidence
                        .map(|c| u8::try_from(c.clamp(0, 100)).unwrap_or(0)),
                )
            });
            if let (Some(obj), Some(b)) = (e.as_object_mut(), best) {
                obj.insert(
                    "base_from".into(),
                    json!({
                        "feed": b.feed,
                        "reliability": b.reliability,
                        "confidence": b.confidence,
                        "confidence_assumed": b.confidence.is_none().then_some(score::DEFAULT_CONFIDENCE),
                    }),
                );
            }
            e
        });
        if let Some(obj) = summary.as_object_mut() {
            obj.insert(
                "threat_type".into(),
                json!(stored.as_ref().and_then(|s| s.threat_type.clone())),
            );
            obj.insert("family".into(), json!(family));
            obj.insert("status".into(), json!(status));
            let mut feeds: Vec<&str> = sources.iter().map(|o| o.feed.as_str()).collect();
            feeds.sort_unstable();
            feeds.dedup();
            obj.insert("source_count".into(), json!(feeds.len()));
            obj.insert(
                "expires_at".into(),
                json!(stored.as_ref().map(|s| s.expires_at)),
            );
            obj.insert("score_explained".into(), json!(explained));
            obj.insert("related".into(), related_json);
            obj.insert("attack".into(), Value::Array(attack));
            obj.insert(
                "first_seen".into(),
                json!(stored.as_ref().map(|s| s.first_seen)),
            );
            obj.insert(
                "last_seen".into(),
                json!(stored.as_ref().map(|s| s.last_seen)),
            );
            obj.insert("sources".into(), json!(sources));
        }
        out.push(summary);
    }
    Ok(json!({"query": raw, "kind": query.kind, "canonical": query.value, "matches": out}))
}

/// Matches `raw` against `index` and summarises each match (the part of [`describe`] that
/// needs the index).
pub fn find(
    index: &Index,
    allow: &Allowlists,
    raw: &str,
) -> Result<(Ioc, Vec<(Value, Ioc)>), String> {
    let q = query(raw)?;
    let hits = matches(index, &q)
        .into_iter()
        .map(|(m, ioc)| (match_summary(index, allow, &m, &ioc), ioc))
        .collect();
    Ok((q, hits))
}
