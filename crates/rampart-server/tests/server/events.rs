//! The event stream delivered to webhooks through the running server: every event signed and
//! received, failures retried with backoff, filters, dead letters retried and dropped, the
//! queue surviving a restart, two replicas sending each event once, and the metrics of it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use reqwest::Method;
use serde_json::{Value, json};

use rampart_access::Role;

use super::harness::{Db, POLICY_V1, TestAgent, TestServer, new_user, token};
use crate::server_test;

/// What a receiver saw: each request's signature header and body.
#[derive(Clone, Default)]
struct Received {
    requests: Arc<Mutex<Vec<(String, String)>>>,
    /// Requests to refuse with 503 before accepting.
    refuse: Arc<Mutex<u32>>,
}

impl Received {
    fn events(&self) -> Vec<Value> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| serde_json::from_str(b).unwrap())
            .collect()
    }

    fn kinds(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// A webhook receiver on loopback; its URL.
async fn receiver(got: Received) -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let got = got.clone();
            async move {
                {
                    let mut refuse = got.refuse.lock().unwrap();
                    if *refuse > 0 {
                        *refuse -= 1;
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                }
                let sig = headers
                    .get("x-rampart-signature")
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                got.requests
                    .lock()
                    .unwrap()
                    .push((sig, String::from_utf8(body.to_vec()).unwrap()));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hook")
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn webhooks_get_every_event_signed_retried_and_filtered(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let all = Received::default();
    // The first two deliveries are refused: they come again after their backoff.
    *all.refuse.lock().unwrap() = 2;
    let url = receiver(all.clone()).await;
    let (st, saved) = s
        .put_destination("siem", json!({"sink": {"kind": "webhook", "url": url}}))
        .await;
    assert_eq!(st, 201, "{saved}");
    let secret = saved["secret"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() == 70,
        "{secret}"
    );
    let runs_only = Received::default();
    let url2 = receiver(runs_only.clone()).await;
    let (st, v) = s
        .put_destination(
            "runs",
            json!({"sink": {"kind": "webhook", "url": url2}, "filter": {"kinds": ["run.stored"]}}),
        )
        .await;
    assert_eq!(st, 201, "{v}");

    // An agent enrols, gets a policy and scans: audit events and the run's.
    let a = TestAgent::enrol(&s, &s.token("web", 1).await)
        .await
        .unwrap();
    s.push_policy(POLICY_V1, "web", "0 */6 * * *").await;
    a.run_once().await.unwrap();

    // The enrolment's event may be one of the two refused: it comes after its backoff.
    wait_for("the enrolment, the run and its attestation", || {
        let k = all.kinds();
        ["agent.enrolled", "run.stored", "attestation.issued"]
            .iter()
            .all(|want| k.iter().any(|have| have == want))
    })
    .await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut ids = std::collections::BTreeSet::new();
    for (sig, body) in all.requests.lock().unwrap().iter() {
        // Every delivery verifies under the secret shown once, over the exact body.
        rampart_events::sign::verify(secret.as_bytes(), sig, body.as_bytes(), now, 300)
            .unwrap_or_else(|e| panic!("{e}: {sig} {body}"));
        let e = rampart_events::Event::from_json(body).unwrap();
        assert_eq!(e.schema, "rampart.event.v1");
        assert!(e.seq > 0);
        assert!(ids.insert(e.id.clone()), "delivered twice: {body}");
    }
    let events = all.events();
    let enrolled = events
        .iter()
        .find(|e| e["kind"] == "agent.enrolled")
        .expect("agent.enrolled");
    assert_eq!(enrolled["agent"]["group"], "web");
    assert_eq!(enrolled["data"]["action"], "agent.enrol");
    let run = events.iter().find(|e| e["kind"] == "run.stored").unwrap();
    assert_eq!(run["agent"]["id"], a.id.as_str());
    assert_eq!(run["data"]["policy"], "test-ssh");
    assert_eq!(
        (
            run["data"]["passed"].as_u64(),
            run["data"]["failed"].as_u64()
        ),
        (Some(1), Some(1))
    );
    // The filtered destination got the run and nothing else.
    wait_for("the filtered destination", || !runs_only.kinds().is_empty()).await;
    assert_eq!(runs_only.kinds(), ["run.stored"]);

    // Health: the two refusals were counted, everything was delivered in the end (the
    // refused ones after their backoff).
    let siem = s
        .destination_when("siem", Duration::from_secs(30), |d| d["pending"] == 0)
        .await;
    assert_eq!(siem["failed"], 2, "{siem}");
    assert!(siem["delivered"].as_u64().unwrap() >= events.len() as u64);
    assert_eq!(siem["last_error"], Value::Null, "cleared by a success");
    assert_eq!(siem["sink"]["kind"], "webhook");
    let r = s.get_response("/metrics").await;
    let body = r.text().await.unwrap();
    assert!(
        body.contains(r#"rampart_events_sent_total{destination="siem",outcome="failed"} 2"#),
        "{body}"
    );
    assert!(body.contains(r#"rampart_event_destination_up{destination="siem"} 1"#));

    // A rotation gives a new secret; deliveries are signed with it from then on.
    let (st, v) = s
        .put_destination(
            "siem",
            json!({"sink": {"kind": "webhook", "url": url}, "rotate_secret": true}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let rotated = v["secret"].as_str().unwrap().to_owned();
    assert_ne!(rotated, secret);
    let (st, v) = s
        .put_destination("siem", json!({"sink": {"kind": "webhook", "url": url}}))
        .await;
    assert_eq!(
        (st, &v["secret"]),
        (200, &Value::Null),
        "shown only when made"
    );
    let before = all.requests.lock().unwrap().len();
    let (st, _) = s
        .call(Method::POST, &format!("/api/v1/agents/{}/scan", a.id), None)
        .await;
    assert_eq!(st, 200);
    wait_for("the scan request's event", || {
        all.requests.lock().unwrap().len() > before
    })
    .await;
    let (sig, body) = all.requests.lock().unwrap()[before].clone();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(
        rampart_events::sign::verify(rotated.as_bytes(), &sig, body.as_bytes(), now, 300).is_ok()
    );
    assert!(
        rampart_events::sign::verify(secret.as_bytes(), &sig, body.as_bytes(), now, 300).is_err()
    );

    // Bad definitions are refused, naming the field.
    for (body, says) in [
        (
            json!({"sink": {"kind": "webhook", "url": "ftp://x/"}}),
            "sink.url",
        ),
        (
            json!({"sink": {"kind": "webhook", "url": "https://u:p@x/"}}),
            "credentials",
        ),
        (
            json!({"sink": {"kind": "webhook", "url": url}, "filter": {"kinds": ["nope"]}}),
            "unknown kind",
        ),
        (
            json!({"sink": {"kind": "webhook", "url": url}, "max_attempts": 0}),
            "max_attempts",
        ),
        (json!({"sink": {"kind": "carrier-pigeon"}}), "sink"),
    ] {
        let (st, v) = s.put_destination("bad", body).await;
        assert_eq!(st, 400, "{v}");
        assert!(v.to_string().contains(says), "{says}: {v}");
    }
    let (st, _) = s
        .put_destination("-x", json!({"sink": {"kind": "webhook", "url": url}}))
        .await;
    assert_eq!(st, 400);
    s.finish().await;
}
server_test!(webhooks_get_every_event_signed_retried_and_filtered);

async fn dead_letters_are_kept_retried_and_dropped(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    // Nothing listens there: every attempt fails; one attempt each.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (st, v) = s.put_destination("down",
        json!({"sink": {"kind": "webhook", "url": format!("http://127.0.0.1:{closed}/hook"), "timeout_secs": 2}, "max_attempts": 1}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    s.token("web", 1).await;
    let mut dead = Vec::new();
    let started = Instant::now();
    while dead.is_empty() {
        assert!(started.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
        dead = s
            .get("/api/v1/event-destinations/down/dead-letters")
            .await
            .as_array()
            .unwrap()
            .clone();
    }
    assert_eq!(dead[0]["attempts"], 1);
    assert!(
        dead[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1"),
        "{}",
        dead[0]
    );
    assert!(dead[0]["event"]["kind"].is_string());
    let seq = dead[0]["seq"].as_i64().unwrap();
    let list = s.get("/api/v1/event-destinations").await;
    assert!(list[0]["dead_letters"].as_u64().unwrap() >= 1, "{list}");
    assert_eq!(
        list[0]["consecutive_failures"].as_u64().map(|n| n >= 1),
        Some(true)
    );

    // Retried: queued with fresh attempts, fails again at once, dead again.
    let (st, v) = s
        .call(
            Method::POST,
            "/api/v1/event-destinations/down/dead-letters/retry",
            Some(json!({"seqs": [seq]})),
        )
        .await;
    assert_eq!((st, v["count"].as_u64()), (200, Some(1)), "{v}");
    let started = Instant::now();
    loop {
        let letters = s.get("/api/v1/event-destinations/down/dead-letters").await;
        let again = letters
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["seq"] == seq)
            .cloned();
        if let Some(d) = again {
            assert_eq!(d["attempts"], 1, "fresh attempts: {d}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Disabled (nothing new is queued), then every dead letter dropped for good.
    let (st, v) = s.put_destination("down",
        json!({"sink": {"kind": "webhook", "url": format!("http://127.0.0.1:{closed}/hook"), "timeout_secs": 2}, "max_attempts": 1, "enabled": false}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = s
        .call(
            Method::POST,
            "/api/v1/event-destinations/down/dead-letters/drop",
            Some(json!({})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert!(v["count"].as_u64().unwrap() >= 1, "{v}");
    assert!(
        s.get("/api/v1/event-destinations/down/dead-letters")
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    let (st, _) = s
        .call(
            Method::GET,
            "/api/v1/event-destinations/nope/dead-letters",
            None,
        )
        .await;
    assert_eq!(st, 404);
    let (st, _) = s
        .call(Method::DELETE, "/api/v1/event-destinations/down", None)
        .await;
    assert_eq!(st, 200);
    let (st, _) = s
        .call(Method::DELETE, "/api/v1/event-destinations/down", None)
        .await;
    assert_eq!(st, 404);
    s.finish().await;
}
server_test!(dead_letters_are_kept_retried_and_dropped);

/// Events queued while the receiver is down survive a restart of the server and arrive after
/// it; with two replicas on one PostgreSQL database each event arrives once.
async fn the_queue_survives_restarts_and_replicas_share_it(db: Db) {
    let Some(mut s) = TestServer::start(db).await else {
        return;
    };
    let got = Received::default();
    *got.refuse.lock().unwrap() = u32::MAX;
    let url = receiver(got.clone()).await;
    let (st, v) = s
        .put_destination(
            "siem",
            json!({"sink": {"kind": "webhook", "url": url}, "max_attempts": 100}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    for g in ["a", "b", "c", "d", "e"] {
        s.token(g, 1).await;
    }
    s.stop().await;
    s.restart().await;
    // The receiver comes back: the backoff of the refused attempts is a few seconds by now.
    *got.refuse.lock().unwrap() = 0;
    let replica = if db == Db::Postgres {
        let mut cfg2 = s.config.clone();
        cfg2.listen = "127.0.0.1:0".parse().unwrap();
        cfg2.agent_listen = "127.0.0.1:0".parse().unwrap();
        Some(rampart_server::RunningServer::start(cfg2).await.unwrap())
    } else {
        None
    };
    for g in ["f", "g"] {
        s.token(g, 1).await;
    }
    wait_for("all seven tokens' events", || {
        got.events()
            .iter()
            .filter(|e| e["data"]["action"] == "enrolment_token.create")
            .count()
            >= 7
    })
    .await;
    // Let any duplicate arrive before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = got.events();
    let mut seen = std::collections::BTreeSet::new();
    for e in &events {
        assert!(
            seen.insert(e["id"].as_str().unwrap().to_owned()),
            "twice: {e}"
        );
    }
    let groups: std::collections::BTreeSet<&str> = events
        .iter()
        .filter(|e| e["data"]["action"] == "enrolment_token.create")
        .map(|e| e["data"]["detail"]["group"].as_str().unwrap())
        .collect();
    assert_eq!(groups.len(), 7, "{groups:?}");
    if let Some(r) = replica {
        r.shutdown().await;
    }
    s.finish().await;
}
server_test!(the_queue_survives_restarts_and_replicas_share_it);

/// An agent that stops beating is announced offline once, to every destination.
async fn a_silent_agent_is_announced_offline(db: Db) {
    let Some(s) = TestServer::start_with(db, |c| {
        c.heartbeat = Duration::from_secs(1);
        c.offline_after_missed = 1;
    })
    .await
    else {
        return;
    };
    let got = Received::default();
    let url = receiver(got.clone()).await;
    let (st, v) = s.put_destination("siem",
        json!({"sink": {"kind": "webhook", "url": url}, "filter": {"kinds": ["agent.offline"]}}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    // Enrolled, then silent: it never beats.
    let a = TestAgent::enrol(&s, &s.token("web", 1).await)
        .await
        .unwrap();
    wait_for("the agent.offline event", || !got.kinds().is_empty()).await;
    // Still silent a few sweeps later: announced once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let events = got.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["kind"], "agent.offline");
    assert_eq!(events[0]["agent"]["id"], a.id.as_str());
    assert_eq!(events[0]["agent"]["group"], "web");
    assert_eq!(events[0]["severity"], "medium");
    assert!(events[0]["data"]["last_seen"].is_string());
    s.finish().await;
}
server_test!(a_silent_agent_is_announced_offline);

/// A Server-Sent Events reader over a streaming response: (id, event, data) per event.
struct SseReader {
    body: reqwest::Response,
    buf: String,
}

impl SseReader {
    fn new(r: reqwest::Response) -> SseReader {
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        SseReader {
            body: r,
            buf: String::new(),
        }
    }

    /// The next event (comments and keep-alives skipped), within 30 s.
    #[track_caller]
    fn next(&mut self) -> impl std::future::Future<Output = (i64, String, Value)> + '_ {
        let caller = std::panic::Location::caller();
        async move {
            tokio::time::timeout(Duration::from_secs(30), self.next_event())
                .await
                .unwrap_or_else(|_| panic!("no event within 30 s at {caller}"))
        }
    }

    async fn next_event(&mut self) -> (i64, String, Value) {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = Some(v.parse().unwrap());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if let (Some(id), Some(event)) = (id, event) {
                    return (id, event, serde_json::from_str(&data).unwrap());
                }
                continue;
            }
            let chunk = self
                .body
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

async fn open_stream(
    s: &TestServer,
    token: &str,
    path: &str,
    last: Option<i64>,
) -> reqwest::Response {
    // A stream outlives the harness' request timeout; the test's own deadline bounds it.
    let mut req = s
        .http
        .get(s.url(path))
        .bearer_auth(token)
        .timeout(Duration::from_secs(600));
    if let Some(l) = last {
        req = req.header("last-event-id", l.to_string());
    }
    req.send().await.unwrap()
}

/// Asks an agent to scan now, and it does.
async fn scan(s: &TestServer, a: &TestAgent) {
    let (st, _) = s
        .call(Method::POST, &format!("/api/v1/agents/{}/scan", a.id), None)
        .await;
    assert_eq!(st, 200);
    a.run_once().await.unwrap();
}

/// `GET /api/v1/events`: every event live, resumed after `Last-Event-ID`, filtered by kind and
/// by what the caller may read.
async fn the_live_stream_resumes_and_shows_each_caller_its_own(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let web = TestAgent::enrol(&s, &s.token("web", 1).await)
        .await
        .unwrap();
    let dbs = TestAgent::enrol(&s, &s.token("db", 1).await).await.unwrap();
    s.push_policy(POLICY_V1, "web", "0 */6 * * *").await;
    s.push_policy(POLICY_V1, "db", "0 */6 * * *").await;
    web.run_once().await.unwrap();
    dbs.run_once().await.unwrap();
    let store = s.store().await;
    let outbox = store.events_after(0, 10_000).await.unwrap();
    assert!(outbox.len() > 4);

    // From the start: every event, in order, as the outbox has it.
    let mut all =
        SseReader::new(open_stream(&s, &s.admin_token, "/api/v1/events?after=0", None).await);
    for stored in &outbox {
        let (id, kind, data) = all.next().await;
        assert_eq!((id, kind.as_str()), (stored.seq, stored.kind.as_str()));
        assert_eq!(data["seq"], stored.seq);
        let mut want: Value = serde_json::from_str(&stored.body).unwrap();
        want["seq"] = json!(stored.seq);
        assert_eq!(data, want);
    }
    // Resumed after an event: the ones after it.
    let mid = outbox[outbox.len() / 2].seq;
    let mut resumed =
        SseReader::new(open_stream(&s, &s.admin_token, "/api/v1/events?after=0", Some(mid)).await);
    let (id, _, _) = resumed.next().await;
    assert_eq!(
        id,
        outbox[outbox.len() / 2 + 1].seq,
        "Last-Event-ID wins over after"
    );

    // Live: a stream opened without a position gets what happens next.
    let mut runs = SseReader::new(
        open_stream(&s, &s.admin_token, "/api/v1/events?kinds=run.stored", None).await,
    );
    scan(&s, &web).await;
    let (id, kind, data) = runs.next().await;
    assert_eq!(kind, "run.stored");
    assert!(id > outbox.last().unwrap().seq);
    assert_eq!(data["agent"]["id"], web.id.as_str());
    // The full stream saw it too.
    loop {
        let (i, _, _) = all.next().await;
        if i == id {
            break;
        }
    }

    // A viewer of group db: its agent's results, nothing of web, no audit entries.
    let user = store
        .insert_user(&new_user("dbviewer", Role::Viewer, &["db"]))
        .await
        .unwrap();
    let viewer = token(
        &store,
        &user,
        "t",
        Role::Viewer,
        &["db"],
        time::Duration::days(1),
    )
    .await;
    let mut mine = SseReader::new(open_stream(&s, &viewer, "/api/v1/events?after=0", None).await);
    let visible: Vec<&rampart_store::StoredEvent> = outbox
        .iter()
        .filter(|e| {
            e.group.as_deref() == Some("db")
                && matches!(e.kind.as_str(), "run.stored" | "check.changed")
        })
        .collect();
    assert!(!visible.is_empty());
    for want in visible {
        let (id, kind, data) = mine.next().await;
        assert_eq!((id, kind.as_str()), (want.seq, want.kind.as_str()));
        assert_eq!(data["agent"]["group"], "db");
    }
    // The next run of web is not shown to it; the next of db is.
    scan(&s, &web).await;
    scan(&s, &dbs).await;
    let (_, kind, data) = mine.next().await;
    assert_eq!(
        (kind.as_str(), &data["agent"]["id"]),
        ("run.stored", &json!(dbs.id))
    );

    // Refusals.
    let r = open_stream(&s, &s.admin_token, "/api/v1/events", Some(-1)).await;
    assert_eq!(r.status(), 400);
    let r = s
        .http
        .get(s.url("/api/v1/events"))
        .header("last-event-id", "x")
        .bearer_auth(&s.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = open_stream(&s, &s.admin_token, "/api/v1/events?kinds=run.deleted", None).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("unknown kind"));
    let r = s.http.get(s.url("/api/v1/events")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    s.finish().await;
}
server_test!(the_live_stream_resumes_and_shows_each_caller_its_own);
