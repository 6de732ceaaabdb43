//! Scores: how much to trust that an indicator is bad *now*.
//!
//! ```text
//! base     = reliability × confidence / 100              (per observation; the indicator keeps the max)
//!            confidence = the source's own, else 75
//! age      = now − max(last_seen, last_sighting)
//! factor   = 1 − (age / lifetime)^(1 / speed)            (MISP's polynomial model; 0 past the lifetime,
//!                                                          1 for a model that never decays)
//! score    = clamp(base × factor + 5 × min(sightings, 4) − 25 × false_positives, 0, 100)
//! ```
//!
//! The model depends on what the indicator is, as in MISP's decaying models: an IP address
//! is reassigned and a phishing URL taken down within weeks, but a malware sample's hash or an
//! exploited CVE does not become harmless with age. So the model is chosen by threat type
//! first, then by kind ([`DecayModels::builtin`] lists the defaults, docs/intel.md explains
//! them), and operators override any of them (`rampart intel decay set`); an operator's model
//! wins over a built-in one. A kind that never decays keeps its model whatever the threat
//! type. A confirmed sighting both adds points and
//! restarts the clock; a reported false positive costs more than a sighting earns, so one
//! analyst's "this is our CDN" outweighs feed noise. Scores are a pure function of stored facts
//! and `now`: they are recomputed, never edited.

use std::collections::BTreeMap;
use std::fmt;

use crate::kind::IocKind;

/// One decay model.
#[derive(
    Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct DecayModel {
    /// Days after which the score's decayed part reaches 0; `None`: it never decays.
    pub lifetime_days: Option<f64>,
    /// Higher is slower decay at first (MISP `decay_speed`).
    pub speed: f64,
}

impl DecayModel {
    /// A model that never decays.
    pub const NEVER: DecayModel = DecayModel {
        lifetime_days: None,
        speed: 1.0,
    };

    /// A polynomial model over `lifetime_days`.
    pub const fn days(lifetime_days: f64, speed: f64) -> DecayModel {
        DecayModel {
            lifetime_days: Some(lifetime_days),
            speed,
        }
    }

    /// The factor (0–1) the base score is multiplied by at `age_days`.
    pub fn factor(&self, age_days: f64) -> f64 {
        let Some(lifetime) = self.lifetime_days else {
            return 1.0;
        };
        let lifetime = lifetime.max(f64::MIN_POSITIVE);
        if age_days >= lifetime {
            0.0
        } else {
            1.0 - (age_days / lifetime).powf(1.0 / self.speed.max(0.01))
        }
    }

    /// Checks a model an operator gives: a positive, finite lifetime and speed.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(l) = self.lifetime_days
            && !(l.is_finite() && l > 0.0 && l <= 36_500.0)
        {
            return Err(format!("lifetime {l} days: must be 1 second to 100 years"));
        }
        if !(self.speed.is_finite() && self.speed >= 0.01 && self.speed <= 100.0) {
            return Err(format!("speed {}: must be 0.01–100", self.speed));
        }
        Ok(())
    }
}

impl fmt::Display for DecayModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.lifetime_days {
            None => f.write_str("never decays"),
            Some(l) => write!(f, "lifetime {l} days, speed {}", self.speed),
        }
    }
}

/// What a model applies to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Indicators with this threat type (`botnet_cc`, `phishing`, …).
    ThreatType(String),
    /// Indicators of this kind.
    Kind(IocKind),
    /// Everything else.
    Default,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::ThreatType(t) => write!(f, "threat:{t}"),
            Scope::Kind(k) => write!(f, "kind:{k}"),
            Scope::Default => f.write_str("default"),
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "default" {
            return Ok(Scope::Default);
        }
        if let Some(k) = s.strip_prefix("kind:") {
            return k
                .parse()
                .map(Scope::Kind)
                .map_err(|e: crate::kind::UnknownKind| format!("scope {s:?}: {e}"));
        }
        if let Some(t) = s.strip_prefix("threat:") {
            let ok = !t.is_empty()
                && t.len() <= 64
                && t.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            return if ok {
                Ok(Scope::ThreatType(t.to_owned()))
            } else {
                Err(format!(
                    "scope {s:?}: a threat type is 1–64 lower-case letters, digits, `_` or `-`"
                ))
            };
        }
        Err(format!(
            "scope {s:?}: expected `kind:KIND`, `threat:THREAT_TYPE` or `default`"
        ))
    }
}

/// The decay models in force: the built-in ones with the operator's overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct DecayModels {
    models: BTreeMap<Scope, DecayModel>,
    /// Scopes the operator set (the rest are built in).
    overridden: Vec<Scope>,
}

impl Default for DecayModels {
    fn default() -> Self {
        DecayModels::builtin()
    }
}

impl DecayModels {
    /// The built-in models (docs/intel.md, "Scores"). Addresses are reassigned within weeks and
    /// C2 servers, phishing pages and payload URLs move faster still; names and netblocks last
    /// longer; certificates and TLS fingerprints longer again; hashes, CVEs and ATT&CK
    /// techniques never decay. Everything else keeps MISP's "NIDS simple" model.
    pub fn builtin() -> DecayModels {
        use IocKind as K;
        let mut models = BTreeMap::new();
        models.insert(Scope::Default, DecayModel::days(120.0, 2.0));
        for (kinds, model) in [
            (
                &[K::Ipv4, K::Ipv6, K::IpPort][..],
                DecayModel::days(60.0, 2.0),
            ),
            (&[K::Cidr, K::Asn][..], DecayModel::days(365.0, 2.0)),
            (&[K::Domain, K::Email][..], DecayModel::days(180.0, 2.0)),
            (&[K::Url][..], DecayModel::days(90.0, 2.0)),
            (&[K::Ja3, K::X509Sha1][..], DecayModel::days(365.0, 2.0)),
            (
                &[
                    K::Md5,
                    K::Sha1,
                    K::Sha224,
                    K::Sha256,
                    K::Sha384,
                    K::Sha512,
                    K::Ssdeep,
                    K::Tlsh,
                    K::Imphash,
                    K::Cve,
                    K::AttackTechnique,
                ][..],
                DecayModel::NEVER,
            ),
        ] {
            for k in kinds {
                models.insert(Scope::Kind(*k), model);
            }
        }
        for (threat, model) in [
            ("botnet_cc", DecayModel::days(30.0, 2.0)),
            ("phishing", DecayModel::days(30.0, 1.0)),
            ("malware_download", DecayModel::days(30.0, 2.0)),
            ("payload_delivery", DecayModel::days(30.0, 2.0)),
            ("exploited_vulnerability", DecayModel::NEVER),
        ] {
            models.insert(Scope::ThreatType(threat.to_owned()), model);
        }
        DecayModels {
            models,
            overridden: Vec::new(),
        }
    }

    /// The built-in models with `overrides` replacing or adding scopes.
    pub fn with_overrides(overrides: impl IntoIterator<Item = (Scope, DecayModel)>) -> DecayModels {
        let mut m = DecayModels::builtin();
        for (scope, model) in overrides {
            m.overridden.push(scope.clone());
            m.models.insert(scope, model);
        }
        m
    }

    /// Every model with its scope and whether the operator set it.
    pub fn list(&self) -> impl Iterator<Item = (&Scope, &DecayModel, bool)> {
        self.models
            .iter()
            .map(|(s, m)| (s, m, self.overridden.contains(s)))
    }

    /// The model for an indicator. A kind whose model never decays (hashes, CVEs) keeps it
    /// whatever the threat type. Otherwise an operator's model wins over a built-in one, and
    /// of two from the same hand the threat type's wins over the kind's; the default comes
    /// last.
    pub fn model(&self, kind: IocKind, threat_type: Option<&str>) -> (Scope, DecayModel) {
        let kind_scope = Scope::Kind(kind);
        let by_kind = self.models.get(&kind_scope).copied();
        let threat_scope = threat_type.map(|t| Scope::ThreatType(t.to_ascii_lowercase()));
        let by_threat = threat_scope
            .as_ref()
            .and_then(|s| self.models.get(s).copied());
        let set = |s: &Scope| self.overridden.contains(s);
        match (by_kind, by_threat) {
            (Some(k), _) if k.lifetime_days.is_none() => (kind_scope, k),
            (Some(k), Some(t)) => match threat_scope {
                Some(ts) if set(&ts) || !set(&kind_scope) => (ts, t),
                _ => (kind_scope, k),
            },
            (None, Some(t)) => (threat_scope.unwrap_or(Scope::Default), t),
            (Some(k), None) => (kind_scope, k),
            (None, None) => (
                Scope::Default,
                self.models
                    .get(&Scope::Default)
                    .copied()
                    .unwrap_or(DecayModel::days(120.0, 2.0)),
            ),
        }
    }

    /// The score at `now`, 0–100.
    pub fn score(&self, facts: &Facts, kind: IocKind, threat_type: Option<&str>, now: i64) -> u8 {
        self.explain(facts, kind, threat_type, now).score
    }

    /// The score at `now` with every term that made it.
    pub fn explain(
        &self,
        facts: &Facts,
        kind: IocKind,
        threat_type: Option<&str>,
        now: i64,
    ) -> Explanation {
        let (scope, model) = self.model(kind, threat_type);
        let reference = facts
            .last_sighting
            .map_or(facts.last_seen, |s| s.max(facts.last_seen));
        let age_days = ((now - reference).max(0) as f64) / 86_400.0;
        let factor = model.factor(age_days);
        let decayed = f64::from(facts.base) * factor;
        let bonus = SIGHTING_POINTS * facts.sightings.min(MAX_COUNTED_SIGHTINGS);
        let penalty = FALSE_POSITIVE_POINTS.saturating_mul(facts.false_positives);
        let score = (decayed + f64::from(bonus) - f64::from(penalty))
            .round()
            .clamp(0.0, 100.0) as u8;
        Explanation {
            base: facts.base,
            age_days: (age_days * 10.0).round() / 10.0,
            age_factor: (factor * 1000.0).round() / 1000.0,
            decayed: (decayed * 10.0).round() / 10.0,
            model_scope: scope.to_string(),
            model,
            sightings: facts.sightings,
            sightings_bonus: bonus,
            false_positives: facts.false_positives,
            false_positive_penalty: penalty,
            score,
        }
    }
}

/// Points each confirmed sighting adds, up to [`MAX_COUNTED_SIGHTINGS`].
pub const SIGHTING_POINTS: u32 = 5;
/// Sightings counted towards the bonus.
pub const MAX_COUNTED_SIGHTINGS: u32 = 4;
/// Points each reported false positive costs.
pub const FALSE_POSITIVE_POINTS: u32 = 25;

/// Why an indicator scores what it does: the terms of the formula above.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Explanation {
    /// The base score (the best source's reliability × confidence).
    pub base: u8,
    /// Days since the last time a source or a sighting saw it.
    pub age_days: f64,
    /// What the model makes of that age, 0–1.
    pub age_factor: f64,
    /// `base × age_factor`.
    pub decayed: f64,
    /// The scope the model was chosen by (`threat:botnet_cc`, `kind:sha256`, `default`).
    pub model_scope: String,
    /// The model.
    pub model: DecayModel,
    /// Confirmed sightings.
    pub sightings: u32,
    /// Points they add.
    pub sightings_bonus: u32,
    /// Reported false positives.
    pub false_positives: u32,
    /// Points they cost.
    pub false_positive_penalty: u32,
    /// The score.
    pub score: u8,
}

/// Confidence assumed when a source gives none.
pub const DEFAULT_CONFIDENCE: u8 = 75;

/// The base score of one observation.
pub fn base(reliability: u8, confidence: Option<u8>) -> u8 {
    let c = u32::from(confidence.unwrap_or(DEFAULT_CONFIDENCE).min(100));
    let r = u32::from(reliability.min(100));
    ((r * c + 50) / 100) as u8
}

/// What the current score depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// Highest base score over the observations.
    pub base: u8,
    /// Latest time a source saw it (Unix seconds).
    pub last_seen: i64,
    /// Confirmed sightings.
    pub sightings: u32,
    /// Reported false positives.
    pub false_positives: u32,
    /// Latest confirmed sighting (hit); decay restarts from it. False positives never move it.
    pub last_sighting: Option<i64>,
}

impl Facts {
    /// The facts of an indicator as the store keeps them (counters clamped into range).
    pub fn from_row(row: &crate::rows::IntelIndexRow) -> Facts {
        Facts::stored(
            row.base_score,
            row.last_seen,
            row.sightings,
            row.false_positives,
            row.last_sighting,
        )
    }

    /// The facts of a stored indicator as a lookup reads it.
    pub fn from_indicator(ind: &crate::rows::IntelIndicator) -> Facts {
        Facts::stored(
            ind.base_score,
            ind.last_seen,
            ind.sightings,
            ind.false_positives,
            ind.last_sighting,
        )
    }

    fn stored(
        base: i64,
        last_seen: i64,
        sightings: i64,
        false_positives: i64,
        last_sighting: Option<i64>,
    ) -> Facts {
        Facts {
            base: u8::try_from(base.clamp(0, 100)).unwrap_or(0),
            last_seen,
            sightings: u32::try_from(sightings.max(0)).unwrap_or(u32::MAX),
            false_positives: u32::try_from(false_positives.max(0)).unwrap_or(u32::MAX),
            last_sighting,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn facts(base: u8, age_days: i64) -> (Facts, i64) {
        let now = 1_000 * DAY;
        (
            Facts {
                base,
                last_seen: now - age_days * DAY,
                sightings: 0,
                false_positives: 0,
                last_sighting: None,
            },
            now,
        )
    }

    /// Scores with the default model (MISP's NIDS simple: 120 days, speed 2).
    fn nids(f: &Facts, now: i64) -> u8 {
        DecayModels::builtin().score(f, IocKind::Filename, None, now)
    }

    #[test]
    fn base_scores() {
        assert_eq!(base(80, Some(100)), 80);
        assert_eq!(base(80, None), 60);
        assert_eq!(base(100, Some(50)), 50);
        assert_eq!(base(200, Some(200)), 100, "inputs clamp");
    }

    #[test]
    fn polynomial_decay_matches_misp_by_hand() {
        // 80 × (1 − (30/120)^(1/2)) = 80 × 0.5 = 40
        let (f, now) = facts(80, 30);
        assert_eq!(nids(&f, now), 40);
        // 80 × (1 − (0/120)^0.5) = 80
        let (f, now) = facts(80, 0);
        assert_eq!(nids(&f, now), 80);
        // 80 × (1 − (120/120)^0.5) = 0, and later stays 0
        let (f, now) = facts(80, 120);
        assert_eq!(nids(&f, now), 0);
        let (f, now) = facts(80, 500);
        assert_eq!(nids(&f, now), 0);
        // Linear model: 80 × (1 − 60/120) = 40
        let linear = DecayModels::with_overrides([(Scope::Default, DecayModel::days(120.0, 1.0))]);
        let (f, now) = facts(80, 60);
        assert_eq!(linear.score(&f, IocKind::Filename, None, now), 40);
    }

    #[test]
    fn sightings_refresh_and_false_positives_penalise() {
        let (mut f, now) = facts(80, 30);
        f.sightings = 1;
        f.last_sighting = Some(now);
        assert_eq!(nids(&f, now), 85, "clock restarted + 5");
        f.sightings = 10;
        assert_eq!(
            nids(&f, now),
            100,
            "bonus capped at 4 sightings, score at 100"
        );
        f.false_positives = 1;
        assert_eq!(nids(&f, now), 75);
        f.false_positives = 4;
        assert_eq!(nids(&f, now), 0);
    }

    #[test]
    fn hashes_and_exploited_cves_do_not_age_addresses_do() {
        let m = DecayModels::builtin();
        // Five years old, as KEV's Log4Shell entry and an old MalwareBazaar sample are.
        let (f, now) = facts(90, 5 * 365);
        assert_eq!(
            m.score(&f, IocKind::Cve, Some("exploited_vulnerability"), now),
            90
        );
        assert_eq!(m.score(&f, IocKind::Sha256, Some("payload"), now), 90);
        // A hash keeps its model even when its threat type would decay: botnet_cc is a
        // ThreatFox threat type that also tags samples.
        assert_eq!(m.score(&f, IocKind::Md5, Some("botnet_cc"), now), 90);
        assert_eq!(m.score(&f, IocKind::Ipv4, None, now), 0);
        // A C2 address: 30 days, speed 2. After 7.5 days: 90 × (1 − 0.25^0.5) = 45.
        let (f, now) = (
            Facts {
                last_seen: 1_000 * DAY - DAY * 15 / 2,
                ..facts(90, 0).0
            },
            1_000 * DAY,
        );
        assert_eq!(m.score(&f, IocKind::Ipv4, Some("botnet_cc"), now), 45);
        // The same address with no threat type: 60 days. 90 × (1 − (7.5/60)^0.5) = 58.18.
        assert_eq!(m.score(&f, IocKind::Ipv4, None, now), 58);
        // Phishing is linear over 30 days: 90 × (1 − 7.5/30) = 67.5 → 68.
        assert_eq!(m.score(&f, IocKind::Url, Some("phishing"), now), 68);
    }

    #[test]
    fn overrides_replace_builtin_models_and_explanations_name_them() {
        let m = DecayModels::with_overrides([(
            Scope::Kind(IocKind::Sha256),
            DecayModel::days(10.0, 1.0),
        )]);
        let (f, now) = facts(80, 5);
        let e = m.explain(&f, IocKind::Sha256, None, now);
        // 80 × (1 − 5/10) = 40
        assert_eq!(e.score, 40);
        assert_eq!(e.model_scope, "kind:sha256");
        assert_eq!(e.age_days, 5.0);
        assert_eq!(e.age_factor, 0.5);
        assert_eq!(e.decayed, 40.0);
        assert!(
            m.list()
                .any(|(s, _, set)| *s == Scope::Kind(IocKind::Sha256) && set)
        );
        assert!(
            m.list()
                .any(|(s, _, set)| *s == Scope::Kind(IocKind::Md5) && !set)
        );
    }

    #[test]
    fn scopes_parse_and_refuse_with_reasons() {
        assert_eq!("kind:ipv4".parse::<Scope>(), Ok(Scope::Kind(IocKind::Ipv4)));
        assert_eq!(
            "threat:botnet_cc".parse::<Scope>(),
            Ok(Scope::ThreatType("botnet_cc".into()))
        );
        assert_eq!("default".parse::<Scope>(), Ok(Scope::Default));
        assert!("kind:nope".parse::<Scope>().unwrap_err().contains("nope"));
        assert!(
            "threat:Bad Type"
                .parse::<Scope>()
                .unwrap_err()
                .contains("lower-case")
        );
        assert!("ipv4".parse::<Scope>().unwrap_err().contains("kind:KIND"));
        assert!(DecayModel::days(0.0, 2.0).validate().is_err());
        assert!(DecayModel::days(30.0, 0.0).validate().is_err());
        assert!(DecayModel::days(30.0, 2.0).validate().is_ok());
    }
}
