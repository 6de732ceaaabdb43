//! Delivering the event outbox (the store's `events`) to the operators' destinations.
//!
//! Every replica runs one dispatcher. It claims due deliveries of each enabled destination
//! under a lease (on PostgreSQL the claims of two replicas never overlap), sends them, and
//! settles them: delivered rows leave the queue, failed ones come back after an exponential
//! backoff, and after the destination's attempt limit they stay as dead letters. A replica
//! killed between sending and settling leaves its rows leased; the next claim after the lease
//! sends them again, so delivery is at least once and receivers deduplicate on the event id.

use std::sync::Arc;
use std::time::Duration;

use rampart_core::Severity;
use rampart_events::Event;
use rampart_store::{Claimed, Destination, Failed};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::api::{EventFilter, Sink};
use crate::app::App;

mod chat;
mod email;
mod hec;
mod kafka;
mod syslog;
mod webhook;

pub(crate) use email::mailboxes;

pub(crate) use webhook::secret as webhook_secret;

/// How long a claim lasts: long enough for a batch at the sink's timeout, short enough that a
/// dead replica's events go out again within a minute.
const LEASE: time::Duration = time::Duration::seconds(60);
/// Deliveries claimed at once: a webhook's are sent one request each (8 at a time, each
/// within its timeout, all within the lease); the other sinks send a batch in one request or
/// connection, where a larger batch costs little more than a small one.
fn batch_size(kind: &str) -> u32 {
    match kind {
        "webhook" => 100,
        // Where people read, one message at a time (chat webhooks take about one a second).
        "slack" | "discord" | "email" => 20,
        _ => 500,
    }
}
/// The longest wait between two attempts.
const MAX_BACKOFF_SECS: i64 = 3600;

/// Severity in order, for `min_severity`.
pub(crate) fn rank(s: Severity) -> u8 {
    match s {
        Severity::Info => 0,
        Severity::Low => 1,
        Severity::Unknown | Severity::Medium => 2,
        Severity::High => 3,
        Severity::Critical => 4,
    }
}

/// When to try again after `attempts` failures: 2^attempts seconds, at most an hour, less up
/// to a fifth at random so that a destination's retries do not arrive together.
fn retry_at(now: OffsetDateTime, attempts: u32) -> OffsetDateTime {
    use rand::Rng;
    let secs = 1i64
        .checked_shl(attempts.min(20))
        .unwrap_or(MAX_BACKOFF_SECS)
        .min(MAX_BACKOFF_SECS);
    let ms = secs * 1000;
    let jitter = rand::thread_rng().gen_range(0..=ms / 5);
    now + time::Duration::milliseconds(ms - jitter)
}

/// The dispatcher, until shutdown: a pass over every destination each second, or at once when
/// this replica wrote events (`App::events_wake`).
pub(crate) async fn dispatcher(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut breaker = Breaker::default();
    let clients = Clients::default();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {}
            _ = app.events_wake.notified() => {}
        }
        if let Err(e) = pass(&app, &clients, &mut breaker).await {
            tracing::warn!(error = %e, "event delivery pass failed; trying again");
        }
    }
}

/// Destinations whose every attempt failed in their last passes rest before the next: 2, 4,
/// 8 … seconds, at most a minute. Without it each new event would be tried at once against a
/// destination that is down, a write per event per destination for nothing. Kept per replica
/// (a restart tries at once).
#[derive(Default)]
struct Breaker {
    resting: std::collections::HashMap<String, (u32, std::time::Instant)>,
}

impl Breaker {
    fn ready(&self, name: &str, now: std::time::Instant) -> bool {
        self.resting
            .get(name)
            .is_none_or(|(_, until)| now >= *until)
    }

    fn record(&mut self, name: &str, outcome: Drained, now: std::time::Instant) {
        match outcome {
            Drained::AllFailed => {
                let streak = self.resting.get(name).map_or(0, |(s, _)| *s) + 1;
                let rest = Duration::from_secs((1u64 << streak.min(6)).min(60));
                self.resting.insert(name.to_owned(), (streak, now + rest));
            }
            Drained::Progress => {
                self.resting.remove(name);
            }
            Drained::Idle => {}
        }
    }
}

/// What a destination's pass came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drained {
    /// Nothing was due.
    Idle,
    /// Something was delivered (or filtered out).
    Progress,
    /// Every attempt failed.
    AllFailed,
}

/// One pass: every enabled, not resting destination's due deliveries, batch after batch until
/// none is due. Destinations are served side by side, so one that is slow to answer (or never
/// answers until its timeout) delays no other.
async fn pass(
    app: &App,
    clients: &Clients,
    breaker: &mut Breaker,
) -> Result<(), rampart_store::StoreError> {
    let now = std::time::Instant::now();
    let destinations: Vec<Destination> = app
        .store
        .destinations()
        .await?
        .into_iter()
        .filter(|d| d.def.enabled && breaker.ready(&d.def.name, now))
        .collect();
    let results =
        futures_util::future::join_all(destinations.iter().map(|d| drain(app, clients, d))).await;
    let now = std::time::Instant::now();
    let mut first_error = None;
    for (d, r) in destinations.iter().zip(results) {
        match r {
            Ok(outcome) => breaker.record(&d.def.name, outcome, now),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// A destination's due deliveries, batch after batch until none is due or one fails.
async fn drain(
    app: &App,
    clients: &Clients,
    d: &Destination,
) -> Result<Drained, rampart_store::StoreError> {
    let mut outcome = Drained::Idle;
    let batch = batch_size(&d.def.kind);
    loop {
        let now = OffsetDateTime::now_utc();
        let claimed = app
            .store
            .claim_deliveries(&d.def.name, now, LEASE, batch)
            .await?;
        if claimed.is_empty() {
            return Ok(outcome);
        }
        let n = claimed.len();
        let (delivered, failed) = deliver(app, clients, d, claimed).await;
        app.metrics
            .events_sent(&d.def.name, delivered.len() as u64, failed.len() as u64);
        app.store
            .settle_deliveries(&d.def.name, &delivered, &failed, OffsetDateTime::now_utc())
            .await?;
        if !delivered.is_empty() {
            outcome = Drained::Progress;
        } else if outcome == Drained::Idle {
            outcome = Drained::AllFailed;
        }
        // A destination that fails waits for its backoff, not for this loop.
        if n < batch as usize || !failed.is_empty() {
            return Ok(outcome);
        }
    }
}

/// An event claimed for sending: its seq, the attempts before this one, the event.
pub(crate) struct Pending {
    seq: i64,
    attempts: u32,
    event: Event,
}

/// How sending one event went.
type Sent = (i64, u32, Result<(), String>);

/// A destination's stored settings: the sink, and its credential sealed (`seal.rs`) beside
/// the sink's own fields under `sealed_credential`.
pub(crate) struct Stored {
    /// The sink.
    pub sink: Sink,
    /// The sealed credential, when the kind has one.
    pub sealed_credential: Option<String>,
}

const SEALED_KEY: &str = "sealed_credential";

impl Stored {
    /// Reads a destination's config column.
    pub(crate) fn parse(config: &str) -> Result<Stored, String> {
        let mut v: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(config).map_err(|e| e.to_string())?;
        let sealed_credential = match v.remove(SEALED_KEY) {
            Some(serde_json::Value::String(s)) => Some(s),
            None | Some(serde_json::Value::Null) => None,
            Some(_) => return Err(format!("{SEALED_KEY}: not a string")),
        };
        let sink =
            serde_json::from_value(serde_json::Value::Object(v)).map_err(|e| e.to_string())?;
        Ok(Stored {
            sink,
            sealed_credential,
        })
    }

    /// The config column's text.
    pub(crate) fn to_config(&self) -> Result<String, serde_json::Error> {
        let mut v = serde_json::to_value(&self.sink)?;
        if let (Some(sealed), Some(map)) = (&self.sealed_credential, v.as_object_mut()) {
            map.insert(SEALED_KEY.into(), serde_json::Value::String(sealed.clone()));
        }
        serde_json::to_string(&v)
    }
}

/// The trust anchors of a destination's `ca_pem`: at least one, each a certificate. What the
/// API checks when the destination is defined and what the TLS sinks trust when they connect.
pub(crate) fn ca_roots(pem: &str) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for (i, cert) in CertificateDer::pem_slice_iter(pem.as_bytes()).enumerate() {
        let cert = cert.map_err(|e| e.to_string())?;
        roots
            .add(cert)
            .map_err(|e| format!("certificate {}: {e}", i + 1))?;
    }
    if roots.is_empty() {
        return Err("no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
    }
    Ok(roots)
}

/// What the seal of a destination's credential is bound to.
pub(crate) fn credential_context(name: &str) -> String {
    format!("event-destination:{name}")
}

/// Sends claimed deliveries; the delivered seqs and the failures. Events the filter does not
/// take count as delivered: the destination has nothing to do with them.
async fn deliver(
    app: &App,
    clients: &Clients,
    d: &Destination,
    claimed: Vec<Claimed>,
) -> (Vec<i64>, Vec<Failed>) {
    let stored = match Stored::parse(&d.def.config) {
        Ok(s) => s,
        Err(e) => return fail_all(claimed, &format!("destination settings unreadable: {e}")),
    };
    let filter: EventFilter = serde_json::from_str(&d.def.filter).unwrap_or_default();
    let mut delivered = Vec::new();
    let mut failed = Vec::new();
    let mut to_send = Vec::new();
    for c in claimed {
        match Event::from_json(&c.body) {
            Ok(mut e) => {
                e.seq = c.seq;
                if routes_to(&d.def.name, &stored.sink, &filter, &e) {
                    to_send.push(Pending {
                        seq: c.seq,
                        attempts: c.attempts,
                        event: e,
                    });
                } else {
                    delivered.push(c.seq);
                }
            }
            // Not an event this version reads: retrying cannot help; a dead letter shows it.
            Err(err) => failed.push(Failed {
                seq: c.seq,
                error: format!("stored event unreadable: {err}"),
                retry_at: retry_at(OffsetDateTime::now_utc(), c.attempts),
            }),
        }
    }
    if to_send.is_empty() {
        return (delivered, failed);
    }
    let results: Vec<Sent> = match &stored.sink {
        Sink::Webhook {
            url,
            timeout_secs,
            secret_generation,
        } => {
            let secret = webhook::secret(app, &d.def.name, *secret_generation);
            webhook::send(app, url, &secret, timeout(*timeout_secs), to_send).await
        }
        Sink::Syslog {
            address,
            transport,
            payload,
            facility,
            ca_pem,
            hostname,
            timeout_secs,
        } => {
            let target = syslog::Target {
                address,
                transport: *transport,
                payload: *payload,
                facility: *facility,
                ca_pem: ca_pem.as_deref(),
                hostname: hostname
                    .as_deref()
                    .or(app.config.names.first().map(String::as_str))
                    .unwrap_or("-"),
                timeout: timeout(*timeout_secs),
            };
            syslog::send(&target, to_send).await
        }
        Sink::SplunkHec {
            url,
            index,
            ca_pem,
            timeout_secs,
        } => match credential(app, d, &stored, "HEC token") {
            Err(error) => all_failed(to_send, &error),
            Ok(token) => {
                let target = hec::Target {
                    url,
                    token: &token,
                    index: index.as_deref(),
                    host: app.config.names.first().map_or("rampart", String::as_str),
                    timeout: timeout(*timeout_secs),
                };
                match clients.for_ca(app, ca_pem.as_deref()) {
                    Ok(client) => hec::send(&client, &target, to_send).await,
                    Err(error) => all_failed(to_send, &error),
                }
            }
        },
        Sink::Kafka {
            brokers,
            topic,
            timeout_secs,
        } => {
            let target = kafka::Target {
                brokers,
                topic,
                timeout: timeout(*timeout_secs),
            };
            kafka::send(&clients.kafka, &target, to_send).await
        }
        Sink::Slack { timeout_secs } | Sink::Discord { timeout_secs } => {
            let which = if matches!(stored.sink, Sink::Slack { .. }) {
                chat::Chat::Slack
            } else {
                chat::Chat::Discord
            };
            match credential(app, d, &stored, "webhook URL") {
                Err(error) => all_failed(to_send, &error),
                Ok(url) => {
                    let target = chat::Target {
                        chat: which,
                        url: &url,
                        dashboard: &app.api_url,
                        timeout: timeout(*timeout_secs),
                    };
                    chat::send(&app.events_http, &target, to_send).await
                }
            }
        }
        Sink::Email {
            server,
            tls,
            from,
            to,
            username,
            ca_pem,
            timeout_secs,
        } => {
            let login = match username {
                None => Ok(None),
                Some(user) => {
                    credential(app, d, &stored, "SMTP password").map(|pw| Some((user.as_str(), pw)))
                }
            };
            match login {
                Err(error) => all_failed(to_send, &error),
                Ok(login) => {
                    let target = email::Target {
                        server,
                        tls: *tls,
                        from,
                        to,
                        login,
                        ca_pem: ca_pem.as_deref(),
                        hello: app.config.names.first().map_or("localhost", String::as_str),
                        dashboard: &app.api_url,
                        timeout: timeout(*timeout_secs),
                    };
                    email::send(&target, to_send).await
                }
            }
        }
    };
    let now = OffsetDateTime::now_utc();
    for (seq, attempts, r) in results {
        match r {
            Ok(()) => delivered.push(seq),
            Err(error) => failed.push(Failed {
                seq,
                error,
                retry_at: retry_at(now, attempts),
            }),
        }
    }
    (delivered, failed)
}

/// A destination's credential, unsealed; `what` names it in the error.
fn credential(app: &App, d: &Destination, stored: &Stored, what: &str) -> Result<String, String> {
    let sealed = stored
        .sealed_credential
        .as_deref()
        .ok_or_else(|| format!("no {what} stored: set the destination's credential"))?;
    crate::seal::open(
        &app.config.passphrase,
        &app.ca().root_fingerprint(),
        &credential_context(&d.def.name),
        sealed,
    )
    .map_err(|e| format!("{what}: {e}"))
}

/// Whether a destination takes an event. An alert goes to every destination its rule names,
/// whatever their filter; destinations where people read (chat, e-mail) take no other alert,
/// and other events only when their filter lists kinds; the rest take what their filter
/// takes.
pub(crate) fn routes_to(name: &str, sink: &Sink, filter: &EventFilter, e: &Event) -> bool {
    if let rampart_events::Body::Alert(a) = &e.body {
        if a.notify.iter().any(|n| n == name) {
            return true;
        }
        if sink.is_for_people() {
            return false;
        }
    } else if sink.is_for_people() && filter.kinds.is_empty() {
        return false;
    }
    filter.takes(e)
}

/// Every event of a batch failed for one reason.
fn all_failed(batch: Vec<Pending>, error: &str) -> Vec<Sent> {
    batch
        .into_iter()
        .map(|p| (p.seq, p.attempts, Err(error.to_owned())))
        .collect()
}

fn timeout(secs: u32) -> Duration {
    Duration::from_secs(u64::from(secs.clamp(1, 60)))
}

/// Clients kept between batches: HTTP clients trusting a destination's own CA besides the
/// system's roots, built once per CA (a client holds its connection pool), and Kafka
/// producers.
#[derive(Default)]
pub(crate) struct Clients {
    with_ca: std::sync::Mutex<std::collections::HashMap<[u8; 32], reqwest::Client>>,
    kafka: kafka::Producers,
}

impl Clients {
    /// The client for `ca_pem` (the server's shared one without).
    fn for_ca(&self, app: &App, ca_pem: Option<&str>) -> Result<reqwest::Client, String> {
        let Some(pem) = ca_pem else {
            return Ok(app.events_http.clone());
        };
        use sha2::Digest;
        let key: [u8; 32] = sha2::Sha256::digest(pem.as_bytes()).into();
        let mut map = self
            .with_ca
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = map.get(&key) {
            return Ok(c.clone());
        }
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|e| format!("ca_pem: {e}"))?;
        let client = reqwest::Client::builder()
            .user_agent(concat!("rampart/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .tls_certs_merge(certs)
            .build()
            .map_err(|e| format!("ca_pem: {}", error_chain(&e)))?;
        // Destinations are few (at most 32); forget them all rather than grow.
        if map.len() >= 64 {
            map.clear();
        }
        map.insert(key, client.clone());
        Ok(client)
    }
}

fn fail_all(claimed: Vec<Claimed>, error: &str) -> (Vec<i64>, Vec<Failed>) {
    let now = OffsetDateTime::now_utc();
    let failed = claimed
        .into_iter()
        .map(|c| Failed {
            seq: c.seq,
            error: error.to_owned(),
            retry_at: retry_at(now, c.attempts),
        })
        .collect();
    (Vec::new(), failed)
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_events::{AgentRef, Body, FromAudit};

    fn event(kind_audit: bool, severity: Severity, group: Option<&str>) -> Event {
        let facts = FromAudit {
            audit_index: 1,
            actor: "a".into(),
            via: None,
            source: None,
            action: "login".into(),
            target: "user:a".into(),
            outcome: "success".into(),
            detail: Default::default(),
        };
        Event {
            schema: rampart_events::SCHEMA.into(),
            id: "e".into(),
            seq: 1,
            time: OffsetDateTime::UNIX_EPOCH,
            severity,
            summary: String::new(),
            agent: group.map(|g| AgentRef {
                id: "a1".into(),
                hostname: String::new(),
                group: g.into(),
            }),
            body: if kind_audit {
                Body::Audit(facts)
            } else {
                Body::AgentRevoked(facts)
            },
        }
    }

    #[test]
    fn filters_by_kind_severity_and_group() {
        let all = EventFilter::default();
        assert!(all.takes(&event(true, Severity::Info, None)));
        let f = EventFilter {
            kinds: vec!["agent.revoked".into()],
            min_severity: Some(Severity::Medium),
            groups: vec!["web".into()],
        };
        assert!(f.takes(&event(false, Severity::Medium, Some("web"))));
        assert!(f.takes(&event(false, Severity::Critical, None)));
        assert!(
            !f.takes(&event(true, Severity::Medium, Some("web"))),
            "kind"
        );
        assert!(
            !f.takes(&event(false, Severity::Low, Some("web"))),
            "severity"
        );
        assert!(!f.takes(&event(false, Severity::High, Some("db"))), "group");
        assert!(f.check().is_ok());
        let bad = EventFilter {
            kinds: vec!["run.deleted".into()],
            ..EventFilter::default()
        };
        assert!(bad.check().unwrap_err().contains("unknown kind"));
    }

    #[test]
    fn alerts_go_to_the_destinations_their_rule_names_and_to_siems() {
        let mut alert = event(false, Severity::High, Some("web"));
        alert.body = Body::Alert(rampart_events::Alert {
            rule: "r".into(),
            condition: "agent_offline".into(),
            state: rampart_events::AlertState::Firing,
            subject: "a1".into(),
            group: Some("web".into()),
            policy: None,
            check: None,
            value: None,
            threshold: None,
            since: OffsetDateTime::UNIX_EPOCH,
            suppressed: 0,
            link: String::new(),
            notify: vec!["ops-slack".into()],
        });
        let slack = Sink::Slack { timeout_secs: 10 };
        let hook = Sink::Webhook {
            url: "https://siem.example/".into(),
            timeout_secs: 10,
            secret_generation: 0,
        };
        let all = EventFilter::default();
        let runs_only = EventFilter {
            kinds: vec!["run.stored".into()],
            ..EventFilter::default()
        };
        // Named: taken whatever the filter says.
        assert!(routes_to("ops-slack", &slack, &runs_only, &alert));
        // Another chat destination: not this rule's.
        assert!(!routes_to("other-slack", &slack, &all, &alert));
        // SIEMs: by their filter.
        assert!(routes_to("siem", &hook, &all, &alert));
        assert!(!routes_to("siem", &hook, &runs_only, &alert));
        // Chat destinations take other events only when their filter lists kinds.
        let revoked = event(false, Severity::Medium, Some("web"));
        assert!(!routes_to("ops-slack", &slack, &all, &revoked));
        let revocations = EventFilter {
            kinds: vec!["agent.revoked".into()],
            ..EventFilter::default()
        };
        assert!(routes_to("ops-slack", &slack, &revocations, &revoked));
        assert!(routes_to("siem", &hook, &all, &revoked));
    }

    #[test]
    fn the_filter_schema_lists_every_kind() {
        let schema = schemars::schema_for!(EventFilter);
        let listed = schema.as_value()["properties"]["kinds"]["items"]["enum"].clone();
        let listed: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(listed, rampart_events::Body::KINDS);
    }

    #[test]
    fn a_destination_failing_every_attempt_rests_longer_each_pass() {
        let mut b = Breaker::default();
        let t = std::time::Instant::now();
        assert!(b.ready("siem", t));
        b.record("siem", Drained::AllFailed, t);
        assert!(!b.ready("siem", t + Duration::from_millis(1900)));
        assert!(b.ready("siem", t + Duration::from_secs(2)));
        b.record("siem", Drained::AllFailed, t);
        assert!(!b.ready("siem", t + Duration::from_secs(3)));
        assert!(b.ready("siem", t + Duration::from_secs(4)));
        for _ in 0..10 {
            b.record("siem", Drained::AllFailed, t);
        }
        assert!(
            b.ready("siem", t + Duration::from_secs(60)),
            "at most a minute"
        );
        // Idle passes change nothing; one delivery clears it.
        b.record("siem", Drained::Idle, t);
        assert!(!b.ready("siem", t + Duration::from_secs(59)));
        b.record("siem", Drained::Progress, t);
        assert!(b.ready("siem", t));
        assert!(b.ready("other", t));
    }

    #[test]
    fn backoff_doubles_to_an_hour_with_at_most_a_fifth_less() {
        let now = OffsetDateTime::UNIX_EPOCH;
        for (attempts, secs) in [(0, 1), (1, 2), (5, 32), (11, 2048), (12, 3600), (40, 3600)] {
            for _ in 0..50 {
                let wait = (retry_at(now, attempts) - now).whole_milliseconds();
                let full = i128::from(secs) * 1000;
                assert!(
                    wait <= full && wait >= full - full / 5,
                    "{attempts}: {wait}"
                );
            }
        }
    }
}
