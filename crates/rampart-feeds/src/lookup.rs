//! Lookups against the store: a value's matches in the index, with what the store knows about
//! each (sources, ATT&CK names, related indicators, the score explained).

use std::collections::BTreeMap;

use rampart_intel::Ioc;
use rampart_intel::lookup::{
    AttackRef, BaseFrom, FamilyIndicators, Lookup, LookupMatch, MatchSummary, RELATED_CAP, Related,
    ScoreExplained, kind_values,
};
use rampart_intel::score::{self, DecayModels, Facts};
use rampart_store::{Store, StoreError};

/// The full answer for one query value whose matches `find` found. The index is read under
/// the caller's control (`find`), so a server can hold its lock only while matching. Each
/// match carries what an analyst acts on: threat type, family, status, first and last seen,
/// the sources, and the score explained (scored under `decay` at `at`).
pub async fn describe(
    store: &Store,
    raw: &str,
    (query, hits): (Ioc, Vec<(MatchSummary, Ioc)>),
    related: bool,
    decay: &DecayModels,
    at: i64,
) -> Result<Lookup, StoreError> {
    let mut out = Vec::with_capacity(hits.len());
    for (summary, ioc) in hits {
        let (stored, sources) = match store
            .intel_indicator_with_sources(ioc.kind, &ioc.value)
            .await?
        {
            Some((indicator, sources)) => (Some(indicator), sources),
            None => (None, Vec::new()),
        };
        let mut attack_ids: Vec<String> = sources
            .iter()
            .flat_map(|o| o.attack.iter().cloned())
            .collect();
        attack_ids.sort();
        attack_ids.dedup();
        let named = store.intel_attack_names(&attack_ids).await?;
        let attack = attack_ids
            .iter()
            .map(|id| match named.iter().find(|n| &n.0 == id) {
                Some((_, kind, name, tactics)) => AttackRef {
                    id: id.clone(),
                    kind: Some(kind.clone()),
                    name: Some(name.clone()),
                    tactics: tactics.clone(),
                },
                None => AttackRef {
                    id: id.clone(),
                    kind: None,
                    name: None,
                    tactics: Vec::new(),
                },
            })
            .collect();
        let related = match (&stored, related) {
            (Some(s), true) => {
                let by_record = store.intel_related_by_record(s.id, RELATED_CAP).await?;
                let mut same_family = BTreeMap::new();
                let mut names: Vec<String> = sources
                    .iter()
                    .flat_map(|o| o.malware.iter().cloned())
                    .collect();
                names.sort();
                names.dedup();
                for family in names {
                    let (total, list) = store.intel_by_family(&family, RELATED_CAP).await?;
                    same_family.insert(
                        family,
                        FamilyIndicators {
                            total,
                            listed: kind_values(&list),
                            capped: total > RELATED_CAP,
                        },
                    );
                }
                Some(Related {
                    same_record: kind_values(&by_record),
                    same_family,
                })
            }
            _ => None,
        };
        // Sources come newest first: the latest that says something speaks for the indicator.
        let family = sources.iter().find_map(|o| o.malware.first().cloned());
        let status = sources.iter().find_map(|o| o.status.clone());
        let score_explained = stored.as_ref().map(|s| {
            let terms = decay.explain(
                &Facts::from_indicator(s),
                ioc.kind,
                s.threat_type.as_deref(),
                at,
            );
            // Which source gave the base score: reliability × confidence, the best wins.
            let base_from = sources
                .iter()
                .max_by_key(|o| {
                    score::base(
                        u8::try_from(o.reliability.clamp(0, 100)).unwrap_or(0),
                        o.confidence
                            .map(|c| u8::try_from(c.clamp(0, 100)).unwrap_or(0)),
                    )
                })
                .map(|b| BaseFrom {
                    feed: b.feed.clone(),
                    reliability: b.reliability,
                    confidence: b.confidence,
                    confidence_assumed: b.confidence.is_none().then_some(score::DEFAULT_CONFIDENCE),
                });
            ScoreExplained { terms, base_from }
        });
        let mut feeds: Vec<&str> = sources.iter().map(|o| o.feed.as_str()).collect();
        feeds.sort_unstable();
        feeds.dedup();
        out.push(LookupMatch {
            summary,
            threat_type: stored.as_ref().and_then(|s| s.threat_type.clone()),
            family,
            status,
            source_count: feeds.len(),
            expires_at: stored.as_ref().map(|s| s.expires_at),
            score_explained,
            related,
            attack,
            first_seen: stored.as_ref().map(|s| s.first_seen),
            last_seen: stored.as_ref().map(|s| s.last_seen),
            sources,
        });
    }
    Ok(Lookup {
        query: raw.to_owned(),
        kind: query.kind,
        canonical: query.value,
        matches: out,
    })
}
