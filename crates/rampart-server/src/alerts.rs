//! Judging the operators' alert rules (`rampart-alerts`) against the event stream.
//!
//! Every replica runs an evaluator; one at a time holds the turn (a lease in the store). A
//! turn reads the events after the cursor, asks each rule what they mean (a score or a
//! number of failing hosts to measure, or an observation made), measures, and judges each
//! subject (deduplication, quiet periods). Every 15 seconds (`alert_sweep`) it also measures the agents'
//! silence against each offline rule and judges again what fires or is owed (a score that
//! recovered after an agent was revoked, hosts that left a check's window, a quiet period
//! that ended). States, the `alert` events to deliver and the new cursor are committed in one
//! transaction, and the dispatcher (`events`) delivers the events to the destinations the
//! rules name.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rampart_alerts::{About, Condition, Observation, RuleDef, SubjectState, Told, Trigger};
use rampart_store::{FleetScope, StoreError, StoredAlertState, TurnOutcome};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::app::App;

/// How long a turn is held: a turn's queries take milliseconds; a replica that died holding
/// it is replaced within this.
const LEASE: time::Duration = time::Duration::seconds(30);
/// Events judged per turn.
const PAGE: u32 = 2000;
/// Checks a rule counts per policy and turn at most (those failing on the most hosts first).
const FAILING_CHECKS: u32 = 1000;
/// Agents one offline rule announces per sweep at most (the longest silent first).
const SILENT_PER_RULE: u32 = 1000;

/// The evaluator, until shutdown: a turn each second, at once when this replica wrote events.
pub(crate) async fn evaluator(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let holder = uuid::Uuid::new_v4().to_string();
    let mut written = app.events_written.subscribe();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_sweep: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {}
            _ = written.changed() => {}
        }
        loop {
            match turn(&app, &holder, &mut last_sweep).await {
                Ok(More::Yes) => continue,
                Ok(More::No) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "alert evaluation failed; trying again");
                    break;
                }
            }
        }
    }
}

/// Whether a turn left events unread.
enum More {
    Yes,
    No,
}

/// A rule the evaluator judges.
struct Rule {
    name: String,
    def: RuleDef,
}

/// The enabled rules whose definitions read (one that does not is logged and skipped: it was
/// written by a later version).
async fn rules(app: &App) -> Result<Vec<Rule>, StoreError> {
    let mut out = Vec::new();
    for r in app.store.alert_rules().await? {
        match serde_json::from_str::<RuleDef>(&r.definition) {
            Ok(def) if def.enabled => out.push(Rule { name: r.name, def }),
            Ok(_) => {}
            Err(e) => tracing::warn!(rule = %r.name, error = %e, "alert rule unreadable; skipped"),
        }
    }
    Ok(out)
}

/// What a subject is to go through this turn, in order.
enum Step {
    Observed(About, Observation),
    Measure(About),
    /// Judged again without news.
    Due,
}

type Key = (usize, String);

async fn turn(
    app: &App,
    holder: &str,
    last_sweep: &mut Option<std::time::Instant>,
) -> Result<More, StoreError> {
    let rules = rules(app).await?;
    let sweep = last_sweep.is_none_or(|t| t.elapsed() >= app.config.alert_sweep);
    if rules.is_empty() {
        // Nothing to judge: the cursor follows the outbox (each sweep), so that a rule
        // defined later judges what happens from then on, not a backlog.
        if sweep {
            skip_to_latest(app, holder).await?;
            *last_sweep = Some(std::time::Instant::now());
        }
        return Ok(More::No);
    }
    let cursor = app.store.alert_cursor().await?;
    if !sweep && app.store.latest_event_seq().await? <= cursor {
        return Ok(More::No);
    }
    let now = OffsetDateTime::now_utc();
    let Some(cursor) = app.store.claim_alert_turn(holder, now, LEASE).await? else {
        return Ok(More::No);
    };
    let events = app.store.events_after(cursor, PAGE).await?;
    let more = if events.len() == PAGE as usize {
        More::Yes
    } else {
        More::No
    };
    let next_cursor = events.last().map_or(cursor, |e| e.seq);

    // What the events mean, per rule and subject, in the order they happened; and the
    // policies whose newly failing checks a rule must count once this turn.
    let mut work: BTreeMap<Key, Vec<Step>> = BTreeMap::new();
    let mut scans: BTreeMap<(usize, Option<String>, String), Option<i64>> = BTreeMap::new();
    for stored in &events {
        if !rampart_events::Body::KINDS.contains(&stored.kind.as_str()) || stored.kind == "alert" {
            continue;
        }
        let Ok(e) = rampart_events::Event::from_json(&stored.body) else {
            continue;
        };
        for (i, rule) in rules.iter().enumerate() {
            let step = match rampart_alerts::trigger(&rule.def.condition, &e) {
                Some(Trigger::Score(about)) | Some(Trigger::Failing(about)) => Step::Measure(about),
                Some(Trigger::Observed(about, obs)) => Step::Observed(about, obs),
                Some(Trigger::FailingChecks {
                    about,
                    policy_version,
                }) => {
                    let policy = about.policy.unwrap_or_default();
                    let version = scans.entry((i, about.group, policy)).or_default();
                    *version = policy_version.or(*version);
                    continue;
                }
                None => continue,
            };
            let subject = match &step {
                Step::Measure(a) | Step::Observed(a, _) => a.subject(&rule.def.condition),
                Step::Due => continue,
            };
            let steps = work.entry((i, subject)).or_default();
            // One measurement after the last event says the same as one after each.
            if matches!(step, Step::Measure(_)) && matches!(steps.last(), Some(Step::Measure(_))) {
                continue;
            }
            steps.push(step);
        }
    }

    for ((i, group, policy), version) in scans {
        failing_checks(app, &rules[i], i, group, &policy, version, &mut work, now).await?;
    }

    // On a sweep every active state, and the silent agents; then the states the work touches.
    let index: HashMap<&str, usize> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| (r.name.as_str(), i))
        .collect();
    let mut states: HashMap<Key, SubjectState> = HashMap::new();
    if sweep {
        read_states(app.store.active_alert_states().await?, &index, &mut states);
        sweep_into(app, &rules, &states, &mut work, now).await?;
    }
    let keys: Vec<(String, String)> = work
        .keys()
        .filter(|k| !states.contains_key(*k))
        .map(|(i, s)| (rules[*i].name.clone(), s.clone()))
        .collect();
    read_states(app.store.alert_states_of(&keys).await?, &index, &mut states);

    // Judge. A state that comes out as it went in (a silent agent still silent, told) is not
    // written again: sweeps cost reads, not writes.
    let before: HashMap<Key, SubjectState> = states.clone();
    let mut outcome = TurnOutcome {
        cursor: next_cursor,
        ..TurnOutcome::default()
    };
    for ((i, subject), steps) in work {
        let rule = &rules[i];
        let mut state = states.remove(&(i, subject.clone()));
        for step in steps {
            let (next, told) = match step {
                Step::Observed(about, obs) => {
                    rampart_alerts::judge(&rule.def, state, obs, about, now)
                }
                Step::Measure(about) => {
                    let obs = measure(app, &rule.def.condition, &about, now).await?;
                    rampart_alerts::judge(&rule.def, state, obs, about, now)
                }
                Step::Due => match state {
                    Some(s) => rampart_alerts::due(&rule.def, s, now),
                    None => continue,
                },
            };
            if let Some(told) = told {
                outcome
                    .events
                    .push(notice(app, rule, &subject, &next, told, now));
            }
            state = Some(next);
        }
        let Some(state) = state else { continue };
        if before
            .get(&(i, subject.clone()))
            .is_some_and(|b| same_news(b, &state))
        {
            continue;
        }
        if rampart_alerts::idle(&rule.def, &state, now) {
            outcome.forget.push((rule.name.clone(), subject));
        } else {
            outcome.states.push(StoredAlertState {
                rule: rule.name.clone(),
                firing: state.firing,
                active: rampart_alerts::active(&rule.def, &state),
                // Numbers, strings and times: serialising cannot fail.
                state: serde_json::to_string(&state).unwrap_or_default(),
                subject,
                updated_at: now,
            });
        }
    }
    let told = outcome.events.len();
    if app.store.finish_alert_turn(holder, now, &outcome).await? {
        if sweep {
            *last_sweep = Some(std::time::Instant::now());
        }
        if told > 0 {
            app.metrics.alerts_told(told as u64);
            app.wrote_events();
        }
    }
    Ok(more)
}

/// A sweep's work: each offline rule's silent agents, and every active state judged again
/// (measured afresh where its condition can be measured).
async fn sweep_into(
    app: &App,
    rules: &[Rule],
    states: &HashMap<Key, SubjectState>,
    work: &mut BTreeMap<Key, Vec<Step>>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    for (i, rule) in rules.iter().enumerate() {
        let Condition::AgentOffline { minutes, group } = &rule.def.condition else {
            continue;
        };
        let before = now - time::Duration::minutes(i64::from(*minutes));
        for silent in app
            .store
            .silent_agents(before, group.as_deref(), SILENT_PER_RULE)
            .await?
        {
            let about = agent_about(silent.agent);
            let obs = Observation::Level {
                holds: true,
                value: Some(minutes_between(silent.last_seen, now)),
            };
            let subject = about.subject(&rule.def.condition);
            work.entry((i, subject))
                .or_default()
                .push(Step::Observed(about, obs));
        }
        // Firing agents not in that list: back, revoked, or beyond the list's end.
        let others: Vec<String> = states
            .iter()
            .filter(|((r, s), st)| *r == i && st.firing && !work.contains_key(&(i, s.clone())))
            .map(|((_, s), _)| s.clone())
            .collect();
        let seen = app.store.agents_seen(&others).await?;
        let mut found = std::collections::HashSet::new();
        for a in seen {
            found.insert(a.agent.id.clone());
            let holds = !a.revoked && a.last_seen < before;
            let about = agent_about(a.agent);
            let obs = Observation::Level {
                holds,
                value: Some(minutes_between(a.last_seen, now)),
            };
            let subject = about.subject(&rule.def.condition);
            work.entry((i, subject))
                .or_default()
                .push(Step::Observed(about, obs));
        }
        // Agents deleted since: resolved.
        for gone in others.into_iter().filter(|s| !found.contains(s)) {
            if let Some(st) = states.get(&(i, gone.clone())) {
                let obs = Observation::Level {
                    holds: false,
                    value: st.value,
                };
                work.entry((i, gone))
                    .or_default()
                    .push(Step::Observed(st.about.clone(), obs));
            }
        }
    }
    for ((i, subject), state) in states {
        if !rampart_alerts::active(&rules[*i].def, state)
            || work.contains_key(&(*i, subject.clone()))
        {
            continue;
        }
        let step = match rules[*i].def.condition {
            Condition::ScoreBelow { .. } | Condition::CheckFailing { .. } if state.firing => {
                Step::Measure(state.about.clone())
            }
            _ => Step::Due,
        };
        work.insert((*i, subject.clone()), vec![step]);
    }
    Ok(())
}

/// Checks of `policy` newly failing on at least the rule's number of hosts of its scope,
/// counted once for the turn's runs of that policy: an observation each (what stops failing
/// is judged by its `check.changed` and by the sweeps).
#[allow(clippy::too_many_arguments)]
async fn failing_checks(
    app: &App,
    rule: &Rule,
    i: usize,
    group: Option<String>,
    policy: &str,
    version: Option<i64>,
    work: &mut BTreeMap<Key, Vec<Step>>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let Condition::CheckFailing {
        hosts,
        within_hours,
        check,
        ..
    } = &rule.def.condition
    else {
        return Ok(());
    };
    let scope = FleetScope {
        group: group.as_deref(),
        ..FleetScope::default()
    };
    let since = now - time::Duration::hours(i64::from(*within_hours));
    let tallies = app
        .store
        .fleet_failing_checks(&scope, since, FAILING_CHECKS)
        .await?;
    let titles = match version {
        Some(v) => app.policy_checks(policy, v).await.ok().flatten(),
        None => None,
    };
    for t in tallies {
        if t.policy_id != policy
            || check.as_ref().is_some_and(|c| *c != t.check_id)
            || t.hosts < u64::from(*hosts)
        {
            continue;
        }
        let about = About {
            group: group.clone(),
            policy: Some(t.policy_id.clone()),
            detail: titles
                .as_ref()
                .and_then(|m| m.get(&t.check_id))
                .map(|m| m.title.clone()),
            check: Some(t.check_id),
            ..About::default()
        };
        let obs = Observation::Level {
            holds: true,
            value: Some(t.hosts as f64),
        };
        let subject = about.subject(&rule.def.condition);
        work.entry((i, subject))
            .or_default()
            .push(Step::Observed(about, obs));
    }
    Ok(())
}

/// Moves the cursor to the latest event, when this replica can take the turn.
async fn skip_to_latest(app: &App, holder: &str) -> Result<(), StoreError> {
    let latest = app.store.latest_event_seq().await?;
    if latest <= app.store.alert_cursor().await? {
        return Ok(());
    }
    let now = OffsetDateTime::now_utc();
    if app
        .store
        .claim_alert_turn(holder, now, LEASE)
        .await?
        .is_some()
    {
        let outcome = TurnOutcome {
            cursor: latest,
            ..TurnOutcome::default()
        };
        app.store.finish_alert_turn(holder, now, &outcome).await?;
    }
    Ok(())
}

/// Whether a state judged again says nothing new: what holds and what was told are as they
/// were (the measured value may differ).
fn same_news(a: &SubjectState, b: &SubjectState) -> bool {
    (a.firing, a.since, a.told, a.told_at, a.suppressed)
        == (b.firing, b.since, b.told, b.told_at, b.suppressed)
}

/// Stored states of rules being judged, by key.
fn read_states(
    stored: Vec<StoredAlertState>,
    index: &HashMap<&str, usize>,
    into: &mut HashMap<Key, SubjectState>,
) {
    for s in stored {
        let Some(&i) = index.get(s.rule.as_str()) else {
            continue;
        };
        match serde_json::from_str::<SubjectState>(&s.state) {
            Ok(state) => {
                into.insert((i, s.subject), state);
            }
            Err(e) => tracing::warn!(
                rule = %s.rule, subject = %s.subject, error = %e,
                "alert state unreadable; starting afresh"
            ),
        }
    }
}

fn agent_about(agent: rampart_events::AgentRef) -> About {
    About {
        group: Some(agent.group.clone()),
        agent: Some(agent),
        ..About::default()
    }
}

fn minutes_between(from: OffsetDateTime, to: OffsetDateTime) -> f64 {
    ((to - from).whole_seconds().max(0) as f64 / 60.0 * 10.0).floor() / 10.0
}

/// Measures a subject's condition now.
async fn measure(
    app: &App,
    condition: &Condition,
    about: &About,
    now: OffsetDateTime,
) -> Result<Observation, StoreError> {
    let scope = FleetScope {
        group: about.group.as_deref(),
        ..FleetScope::default()
    };
    let value = match condition {
        Condition::ScoreBelow { .. } => {
            let policy = about.policy.as_deref().unwrap_or("");
            let (passed, failed) = app.store.policy_pass_fail(&scope, policy).await?;
            // No pass and no fail: no score, nothing below anything.
            (passed + failed > 0).then(|| passed as f64 * 100.0 / (passed + failed) as f64)
        }
        Condition::CheckFailing { within_hours, .. } => {
            let since = now - time::Duration::hours(i64::from(*within_hours));
            let n = app
                .store
                .newly_failing_hosts(
                    &scope,
                    about.policy.as_deref().unwrap_or(""),
                    about.check.as_deref().unwrap_or(""),
                    since,
                )
                .await?;
            Some(n as f64)
        }
        _ => None,
    };
    Ok(Observation::Level {
        holds: value.is_some_and(|v| condition.holds(v)),
        value,
    })
}

fn notice(
    app: &App,
    rule: &Rule,
    subject: &str,
    state: &SubjectState,
    told: Told,
    now: OffsetDateTime,
) -> rampart_events::Event {
    rampart_alerts::notice(
        uuid::Uuid::now_v7().to_string(),
        now,
        &rule.name,
        &rule.def,
        subject,
        state,
        told,
        &app.api_url,
    )
}
