//! Deduplication and quiet periods: what a rule's subject is in, and whether an observation
//! of it is told.
//!
//! A state condition (a score below its threshold, a check failing on enough hosts, an agent
//! offline, a noncompliant attestation) is told when it starts to hold and when it stops —
//! never again while it keeps holding (deduplication). An occurrence (an IOC hit) is told
//! each time it happens. After anything is told about a subject, the rule's quiet period
//! starts: what happens to the subject during it is counted, not told; when it ends, a state
//! that differs from the last one told is told (with the count), and occurrences counted
//! during it are told as one.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::rule::RuleDef;

/// What is known of one subject of one rule, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectState {
    /// Whether the condition holds now (states; always false for occurrences).
    pub firing: bool,
    /// When it started holding or stopped (states), or last happened (occurrences).
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// The last value measured.
    pub value: Option<f64>,
    /// The last state told: `Some(true)` firing, `Some(false)` resolved, `None` never told.
    pub told: Option<bool>,
    /// When something was last told: the quiet period runs from it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub told_at: Option<OffsetDateTime>,
    /// Changes (states) or occurrences since then that were not told.
    pub suppressed: u32,
    /// What the subject is, for the next message and for judging it again.
    pub about: crate::About,
}

/// What was seen of a subject.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// A state condition, measured: whether it holds, and the value.
    Level {
        /// See the type.
        holds: bool,
        /// See the type.
        value: Option<f64>,
    },
    /// An occurrence, with its value.
    Occurrence {
        /// See the type.
        value: Option<f64>,
    },
}

/// Something to tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Told {
    /// Firing, or resolved.
    pub firing: bool,
    /// What happened during the quiet period before it and was not told.
    pub suppressed: u32,
}

fn quiet_over(s: &SubjectState, rule: &RuleDef, now: OffsetDateTime) -> bool {
    s.told_at.is_none_or(|t| now - t >= rule.quiet())
}

/// A new observation of a subject (`state` is what the store had, none when nothing): its
/// next state, and what to tell.
pub fn judge(
    rule: &RuleDef,
    state: Option<SubjectState>,
    observation: Observation,
    about: crate::About,
    now: OffsetDateTime,
) -> (SubjectState, Option<Told>) {
    let mut s = state.unwrap_or(SubjectState {
        firing: false,
        since: now,
        value: None,
        told: None,
        told_at: None,
        suppressed: 0,
        about: about.clone(),
    });
    // What an observation does not say (a check's title) is kept from before.
    let detail = about.detail.clone().or_else(|| s.about.detail.take());
    s.about = about;
    s.about.detail = detail;
    match observation {
        Observation::Level { holds, value } => {
            s.value = value;
            let quiet = !quiet_over(&s, rule, now);
            if holds != s.firing {
                s.firing = holds;
                s.since = now;
                // A change within the quiet period is counted, whether or not it is owed
                // (flapping back to the state last told owes nothing, but it happened).
                if quiet {
                    s.suppressed = s.suppressed.saturating_add(1);
                }
            }
            let owed = s.told.map_or(s.firing, |t| t != s.firing);
            if !owed || quiet {
                return (s, None);
            }
            tell_state(rule, s, now)
        }
        Observation::Occurrence { value } => {
            s.value = value;
            s.since = now;
            if quiet_over(&s, rule, now) {
                let told = Told {
                    firing: true,
                    suppressed: s.suppressed,
                };
                s.told_at = Some(now);
                s.suppressed = 0;
                (s, Some(told))
            } else {
                s.suppressed = s.suppressed.saturating_add(1);
                (s, None)
            }
        }
    }
}

/// Tells a state whose quiet period is over, if there is anything to tell.
fn tell_state(
    rule: &RuleDef,
    mut s: SubjectState,
    now: OffsetDateTime,
) -> (SubjectState, Option<Told>) {
    let told = Told {
        firing: s.firing,
        suppressed: s.suppressed,
    };
    s.told = Some(s.firing);
    s.suppressed = 0;
    if !s.firing && !rule.notify_resolved {
        // Not told, so no quiet period starts.
        return (s, None);
    }
    s.told_at = Some(now);
    (s, Some(told))
}

/// A subject judged again without a new observation (its quiet period may have ended):
/// what to tell, if anything is owed.
pub fn due(
    rule: &RuleDef,
    state: SubjectState,
    now: OffsetDateTime,
) -> (SubjectState, Option<Told>) {
    if !quiet_over(&state, rule, now) {
        return (state, None);
    }
    if rule.condition.is_occurrence() {
        if state.suppressed == 0 {
            return (state, None);
        }
        let mut s = state;
        let told = Told {
            firing: true,
            suppressed: s.suppressed,
        };
        // The count is the news; `since` stays the last occurrence.
        s.suppressed = 0;
        s.told_at = Some(now);
        return (s, Some(told));
    }
    let owed = state.told.map_or(state.firing, |t| t != state.firing);
    if owed {
        tell_state(rule, state, now)
    } else {
        (state, None)
    }
}

/// Whether a state can be forgotten: nothing holds, nothing is owed, and its quiet period is
/// over (a subject seen again later starts afresh, which is the same). Changes counted while a
/// state flapped back to what was told are forgotten with it.
pub fn idle(rule: &RuleDef, s: &SubjectState, now: OffsetDateTime) -> bool {
    !active(rule, s) && quiet_over(s, rule, now)
}

/// Whether the evaluator should judge the state again without an event (a fresh measurement
/// or [`due`]): a state that fires or whose change is owed, occurrences counted but not told.
pub fn active(rule: &RuleDef, s: &SubjectState) -> bool {
    if rule.condition.is_occurrence() {
        s.suppressed > 0
    } else {
        s.firing || s.told.is_some_and(|t| t != s.firing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::About;
    use crate::rule::Condition;
    use rampart_core::Severity;

    fn rule(quiet_minutes: u32, notify_resolved: bool, occurrence: bool) -> RuleDef {
        RuleDef {
            condition: if occurrence {
                Condition::IntelHit {
                    min_score: 50,
                    group: None,
                }
            } else {
                Condition::ScoreBelow {
                    threshold: 80.0,
                    group: None,
                    policy: None,
                }
            },
            severity: Severity::High,
            quiet_minutes,
            notify: vec!["ops".into()],
            notify_resolved,
            enabled: true,
        }
    }

    fn at(min: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap() + time::Duration::minutes(min)
    }

    fn level(holds: bool) -> Observation {
        Observation::Level {
            holds,
            value: Some(if holds { 70.0 } else { 90.0 }),
        }
    }

    /// Runs observations (minute, holds) through `judge`, returning what was told, by minute.
    fn run(r: &RuleDef, seen: &[(i64, bool)]) -> (Option<SubjectState>, Vec<(i64, Told)>) {
        let mut state = None;
        let mut told = Vec::new();
        for &(m, holds) in seen {
            let (s, t) = judge(r, state, level(holds), About::default(), at(m));
            if let Some(t) = t {
                told.push((m, t));
            }
            state = Some(s);
        }
        (state, told)
    }

    fn t(firing: bool, suppressed: u32) -> Told {
        Told { firing, suppressed }
    }

    #[test]
    fn a_state_is_told_when_it_starts_and_stops_and_never_while_it_holds() {
        let r = rule(0, true, false);
        let (s, told) = run(
            &r,
            &[
                (0, false),
                (1, true),
                (2, true),
                (3, true),
                (4, false),
                (5, false),
            ],
        );
        assert_eq!(told, vec![(1, t(true, 0)), (4, t(false, 0))]);
        let s = s.unwrap();
        assert!(!s.firing && s.told == Some(false));
        assert_eq!(s.since, at(4));
        assert!(idle(&r, &s, at(5)));
    }

    #[test]
    fn a_quiet_period_counts_flapping_and_tells_the_state_it_ends_in() {
        let r = rule(30, true, false);
        // Fires at 0 (told), resolves at 5, fires at 10, resolves at 20: all within the quiet
        // period, so counted, not told.
        let (s, told) = run(&r, &[(0, true), (5, false), (10, true), (20, false)]);
        assert_eq!(told, vec![(0, t(true, 0))]);
        let s = s.unwrap();
        assert_eq!(s.suppressed, 3);
        assert!(!s.firing);
        // Before the period ends nothing is due; at its end the resolution is, with the count.
        let (s, none) = due(&r, s, at(29));
        assert_eq!(none, None);
        assert!(active(&r, &s));
        let (s, told) = due(&r, s, at(30));
        assert_eq!(told, Some(t(false, 3)));
        assert_eq!(
            (s.told, s.suppressed, s.told_at),
            (Some(false), 0, Some(at(30)))
        );
        assert!(!active(&r, &s));
        assert!(!idle(&r, &s, at(59)) && idle(&r, &s, at(60)));
    }

    #[test]
    fn flapping_back_to_the_told_state_within_the_quiet_period_owes_nothing() {
        let r = rule(30, true, false);
        let (s, told) = run(&r, &[(0, true), (5, false), (10, true)]);
        assert_eq!(told, vec![(0, t(true, 0))]);
        let s = s.unwrap();
        let (s, none) = due(&r, s, at(40));
        assert_eq!(none, None, "still firing, as told");
        assert_eq!(s.suppressed, 2, "counted for the next message");
        let (_, told) = judge(&r, Some(s), level(false), About::default(), at(41));
        assert_eq!(told, Some(t(false, 2)));
    }

    #[test]
    fn resolutions_can_go_untold_without_starting_a_quiet_period() {
        let r = rule(30, false, false);
        // The resolution at 31 is recorded as told but not sent, so no quiet period starts
        // from it: the fire a minute later is told.
        let (s, told) = run(&r, &[(0, true), (31, false), (32, true)]);
        assert_eq!(told, vec![(0, t(true, 0)), (32, t(true, 0))]);
        let s = s.unwrap();
        assert_eq!((s.told, s.told_at), (Some(true), Some(at(32))));
    }

    #[test]
    fn occurrences_are_told_once_per_quiet_period_with_the_count() {
        let r = rule(10, true, true);
        let mut state = None;
        let mut told = Vec::new();
        for m in [0, 1, 2, 3, 15, 16] {
            let (s, t) = judge(
                &r,
                state,
                Observation::Occurrence { value: Some(90.0) },
                About::default(),
                at(m),
            );
            if let Some(t) = t {
                told.push((m, t));
            }
            state = Some(s);
        }
        assert_eq!(told, vec![(0, t(true, 0)), (15, t(true, 3))]);
        let s = state.unwrap();
        assert_eq!(s.suppressed, 1, "the hit at 16");
        assert!(active(&r, &s));
        let (s, none) = due(&r, s, at(24));
        assert_eq!(none, None);
        let (s, told) = due(&r, s, at(25));
        assert_eq!(
            told,
            Some(t(true, 1)),
            "counted hits told when the period ends"
        );
        assert!(!active(&r, &s));
        assert!(idle(&r, &s, at(35)) && !idle(&r, &s, at(34)));
    }

    #[test]
    fn a_first_observation_that_does_not_hold_tells_nothing() {
        let r = rule(0, true, false);
        let (s, told) = run(&r, &[(0, false)]);
        assert!(told.is_empty());
        assert!(idle(&r, &s.unwrap(), at(0)));
    }
}
