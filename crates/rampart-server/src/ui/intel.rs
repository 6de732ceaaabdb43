//! Threat intel: the feeds and their health, the index, the fleet's matches (on the hosts
//! the viewer sees), and a lookup answering what is known about a value, each source row and
//! the score term by term.

use std::collections::HashMap;

use axum::extract::{Query, Request, State};
use rampart_access::{Permission, Target};
use rampart_intel::lookup::{LookupAnswer, LookupMatch};
use rampart_ui::{FeedRow, FleetHit, IndicatorMatch, IntelPage, LookupPage, ScoreTerms, SourceRow};
use serde::Deserialize;

use super::{AppState, PageResult, Viewer, html, when};
use crate::error::ApiError;

/// The page's path (and the navigation entry it lights).
pub(super) const PATH: &str = "/ui/intel";

/// Fleet matches listed.
const HITS: i64 = 100;

/// A Unix time to the minute (UTC), or empty.
fn unix(t: Option<i64>) -> String {
    t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .map(when)
        .unwrap_or_default()
}

/// A feed's health: fetched within three intervals, failing, or behind.
fn health(f: &rampart_store::IntelFeed, now: i64) -> &'static str {
    if !f.enabled {
        "disabled"
    } else if f.url.is_none() {
        "file only"
    } else if f.failures > 0 {
        "failing"
    } else if let Some(ok) = f.last_success {
        if now - ok > 3 * f.interval_secs.max(60) {
            "stale"
        } else {
            "healthy"
        }
    } else {
        "never fetched"
    }
}

/// An interval as a person says it.
fn every(secs: i64) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// `GET /ui/intel`.
pub(super) async fn overview(State(app): AppState, req: Request) -> PageResult {
    let (parts, _) = req.into_parts();
    let viewer = Viewer::of(&app, &parts, PATH).await?;
    viewer.require(Permission::IntelRead, Target::Fleet)?;
    let now = crate::intel::now();
    let load = async {
        Ok::<_, rampart_store::StoreError>((
            app.store.intel_feeds().await?,
            app.store.intel_expired_count(now).await?,
            app.store.intel_hits(None, 0, HITS).await?,
            app.store.agents(None).await?,
        ))
    };
    let (feeds, expired, hits, agents) =
        load.await.map_err(|e| viewer.refuse(ApiError::from(e)))?;
    let (indexed, bytes, kinds) = app
        .intel
        .with_index(|i| (i.len(), i.memory_bytes(), i.count_by_kind()));
    // Matches on hosts the viewer sees only.
    let groups: HashMap<&str, &str> = agents
        .iter()
        .map(|a| (a.id.as_str(), a.group.as_str()))
        .collect();
    let hits = hits
        .into_iter()
        .filter(|h| {
            groups
                .get(h.agent_id.as_str())
                .is_some_and(|g| viewer.caller.sees(g))
        })
        .map(|h| FleetHit {
            kind: h.indicator_kind.as_str().to_owned(),
            feeds: h.feeds.join(", "),
            last_seen: unix(Some(h.last_seen)),
            agent_id: h.agent_id,
            hostname: h.hostname,
            indicator: h.indicator,
            observable: h.observable,
            context: h.context,
            count: h.count,
        })
        .collect();
    let page = IntelPage {
        indexed,
        index_mib: format!("{:.1}", bytes as f64 / (1024.0 * 1024.0)),
        expired,
        kinds: kinds
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| (k.as_str().to_owned(), *n))
            .collect(),
        feeds: feeds
            .into_iter()
            .map(|f| FeedRow {
                health: health(&f, now),
                last_success: unix(f.last_success),
                every: every(f.interval_secs),
                name: f.name,
                format: f.format,
                reliability: f.reliability,
                tlp: f.tlp,
                failures: f.failures,
                last_error: f.last_error,
                indicators: f.last_indicators,
                problems: f.last_problems,
            })
            .collect(),
        hits,
        shell: viewer.shell,
    };
    html(&page)
}

/// `?value=`.
#[derive(Deserialize)]
pub(super) struct LookupQuery {
    #[serde(default)]
    value: String,
}

/// `GET /ui/intel/lookup?value=…`.
pub(super) async fn lookup(
    State(app): AppState,
    Query(q): Query<LookupQuery>,
    req: Request,
) -> PageResult {
    let (parts, _) = req.into_parts();
    let viewer = Viewer::of(&app, &parts, PATH).await?;
    viewer.require(Permission::IntelRead, Target::Fleet)?;
    let value = q.value.trim().to_owned();
    let answer = crate::routes::lookup_value(&app, value.clone(), false)
        .await
        .map_err(|e| viewer.refuse(e))?;
    let page = match answer {
        LookupAnswer::NotAnIndicator { query, error } => LookupPage {
            shell: viewer.shell,
            query,
            not_an_indicator: Some(error),
            kind: String::new(),
            canonical: String::new(),
            matches: Vec::new(),
        },
        LookupAnswer::Found(l) => LookupPage {
            shell: viewer.shell,
            query: l.query,
            not_an_indicator: None,
            kind: l.kind.to_string(),
            canonical: l.canonical,
            matches: l.matches.into_iter().map(indicator).collect(),
        },
    };
    html(&page)
}

fn indicator(m: LookupMatch) -> IndicatorMatch {
    let terms = m.score_explained.map(|x| ScoreTerms {
        base: x.terms.base,
        base_from: x.base_from.map(|b| {
            let confidence = match (b.confidence, b.confidence_assumed) {
                (Some(c), _) => format!("confidence {c}"),
                (None, Some(c)) => format!("confidence {c} assumed (the source gives none)"),
                (None, None) => "no confidence".to_owned(),
            };
            format!("{}: reliability {}, {confidence}", b.feed, b.reliability)
        }),
        age_days: format!("{:.1}", x.terms.age_days),
        age_factor: format!("{:.2}", x.terms.age_factor),
        model: format!("{} ({})", x.terms.model, x.terms.model_scope),
        sightings: x.terms.sightings,
        sightings_bonus: x.terms.sightings_bonus,
        false_positives: x.terms.false_positives,
        false_positive_penalty: x.terms.false_positive_penalty,
        score: x.terms.score,
    });
    IndicatorMatch {
        kind: m.summary.indicator.kind.to_string(),
        value: m.summary.indicator.value,
        how: m.summary.how.as_str().replace('_', " "),
        score: m.summary.score,
        allowlisted: m
            .summary
            .allowlisted
            .map(|a| format!("{}: {}", a.list, a.entry)),
        threat_type: m.threat_type,
        family: m.family,
        status: m.status,
        source_count: m.source_count,
        first_seen: unix(m.first_seen),
        last_seen: unix(m.last_seen),
        expires: unix(m.expires_at),
        terms,
        attack: m
            .attack
            .into_iter()
            .map(|a| match a.name {
                Some(name) => format!("{} {name}", a.id),
                None => a.id,
            })
            .collect(),
        sources: m
            .sources
            .into_iter()
            .map(|s| {
                let mut facts = Vec::new();
                if let Some(t) = &s.threat_type {
                    facts.push(format!("threat: {t}"));
                }
                if !s.malware.is_empty() {
                    facts.push(format!("malware: {}", s.malware.join(", ")));
                }
                if !s.tags.is_empty() {
                    facts.push(format!("tags: {}", s.tags.join(", ")));
                }
                if let Some(st) = &s.status {
                    facts.push(format!("status: {st}"));
                }
                if let Some(c) = s.confidence {
                    facts.push(format!("confidence: {c}"));
                }
                SourceRow {
                    first_seen: unix(s.first_seen),
                    last_seen: unix(s.last_seen),
                    last_fetched: unix(Some(s.last_fetched)),
                    feed: s.feed,
                    reliability: s.reliability,
                    tlp: s.tlp,
                    facts,
                    reporter: s.reporter,
                    reference: s.reference,
                    description: s.description,
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn intervals_read_as_people_say_them() {
        assert_eq!(super::every(86_400), "1 d");
        assert_eq!(super::every(7200), "2 h");
        assert_eq!(super::every(900), "15 min");
        assert_eq!(super::every(45), "45 s");
    }
}
