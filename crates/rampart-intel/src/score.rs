//! Scores: how much to trust that an indicator is bad *now*.
//!
//! ```text
//! base     = reliability × confidence / 100              (per observation; the indicator keeps the max)
//!            confidence = the source's own, else 75
//! age      = now − max(last_seen, last_sighting)
//! decayed  = base × (1 − (age / lifetime)^(1 / speed))    (MISP's polynomial model; 0 past the lifetime)
//! score    = clamp(decayed + 5 × min(sightings, 4) − 25 × false_positives, 0, 100)
//! ```
//!
//! The defaults are MISP's "NIDS simple" model (lifetime 120 days, speed 2). A confirmed
//! sighting both adds points and restarts the clock; a reported false positive costs more than
//! a sighting earns, so one analyst's "this is our CDN" outweighs feed noise. Scores are a pure
//! function of stored facts and `now`: they are recomputed, never edited.

/// The decay model.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DecayModel {
    /// Days after which the score reaches 0.
    pub lifetime_days: f64,
    /// Higher is slower decay at first (MISP `decay_speed`).
    pub speed: f64,
}

impl Default for DecayModel {
    fn default() -> Self {
        DecayModel {
            lifetime_days: 120.0,
            speed: 2.0,
        }
    }
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
    pub fn from_row(row: &rampart_store::IntelIndexRow) -> Facts {
        Facts::stored(
            row.base_score,
            row.last_seen,
            row.sightings,
            row.false_positives,
            row.last_sighting,
        )
    }

    /// The facts of a stored indicator as a lookup reads it.
    pub fn from_indicator(ind: &rampart_store::IntelIndicator) -> Facts {
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

/// The score at `now`, 0–100.
pub fn current(facts: &Facts, now: i64, model: &DecayModel) -> u8 {
    let reference = facts
        .last_sighting
        .map_or(facts.last_seen, |s| s.max(facts.last_seen));
    let age_days = ((now - reference).max(0) as f64) / 86_400.0;
    let lifetime = model.lifetime_days.max(f64::MIN_POSITIVE);
    let decayed = if age_days >= lifetime {
        0.0
    } else {
        f64::from(facts.base) * (1.0 - (age_days / lifetime).powf(1.0 / model.speed.max(0.01)))
    };
    let bonus = 5.0 * f64::from(facts.sightings.min(4));
    let penalty = 25.0 * f64::from(facts.false_positives);
    (decayed + bonus - penalty).round().clamp(0.0, 100.0) as u8
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

    #[test]
    fn base_scores() {
        assert_eq!(base(80, Some(100)), 80);
        assert_eq!(base(80, None), 60);
        assert_eq!(base(100, Some(50)), 50);
        assert_eq!(base(200, Some(200)), 100, "inputs clamp");
    }

    #[test]
    fn polynomial_decay_matches_misp_by_hand() {
        let model = DecayModel::default();
        // 80 × (1 − (30/120)^(1/2)) = 80 × 0.5 = 40
        let (f, now) = facts(80, 30);
        assert_eq!(current(&f, now, &model), 40);
        // 80 × (1 − (0/120)^0.5) = 80
        let (f, now) = facts(80, 0);
        assert_eq!(current(&f, now, &model), 80);
        // 80 × (1 − (120/120)^0.5) = 0, and later stays 0
        let (f, now) = facts(80, 120);
        assert_eq!(current(&f, now, &model), 0);
        let (f, now) = facts(80, 500);
        assert_eq!(current(&f, now, &model), 0);
        // Linear model: 80 × (1 − 60/120) = 40
        let linear = DecayModel {
            lifetime_days: 120.0,
            speed: 1.0,
        };
        let (f, now) = facts(80, 60);
        assert_eq!(current(&f, now, &linear), 40);
    }

    #[test]
    fn sightings_refresh_and_false_positives_penalise() {
        let model = DecayModel::default();
        let (mut f, now) = facts(80, 30);
        f.sightings = 1;
        f.last_sighting = Some(now);
        assert_eq!(current(&f, now, &model), 85, "clock restarted + 5");
        f.sightings = 10;
        assert_eq!(
            current(&f, now, &model),
            100,
            "bonus capped at 4 sightings, score at 100"
        );
        f.false_positives = 1;
        assert_eq!(current(&f, now, &model), 75);
        f.false_positives = 4;
        assert_eq!(current(&f, now, &model), 0);
    }
}
