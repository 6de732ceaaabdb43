//! Alert rules through the running server, told where teams work: local receivers that speak
//! Slack's and Discord's webhook protocols (and refuse what those services refuse), and
//! aiosmtpd (PyPI) taking e-mail over STARTTLS and TLS with authentication. Real agents' runs,
//! attestations and checks; silence measured against heartbeats; hits from the outbox.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use reqwest::Method;
use serde_json::{Value, json};

use super::harness::{Db, POLICY_V1, TestAgent, TestServer, bounded, test_pki};
use crate::server_test;

/// Messages a chat receiver accepted, by path.
#[derive(Clone, Default)]
struct Chats {
    slack: Arc<Mutex<Vec<Value>>>,
    discord: Arc<Mutex<Vec<Value>>>,
}

/// Whether a Slack incoming-webhook body is one Slack takes: `text`, and blocks of the kinds
/// used within Slack's documented limits (section text 3,000 characters, at most 10 fields
/// of 2,000, a button's URL 3,000). Slack answers `invalid_blocks` otherwise.
fn slack_refusal(v: &Value) -> Option<&'static str> {
    let text = v["text"].as_str()?;
    if text.is_empty() || text.chars().count() > 40_000 {
        return Some("invalid_payload");
    }
    for b in v["blocks"].as_array()? {
        match b["type"].as_str()? {
            "section" => {
                if let Some(t) = b.get("text") {
                    if t["type"] != "mrkdwn" && t["type"] != "plain_text" {
                        return Some("invalid_blocks");
                    }
                    if t["text"].as_str()?.chars().count() > 3000 {
                        return Some("invalid_blocks");
                    }
                }
                if let Some(f) = b.get("fields") {
                    let f = f.as_array()?;
                    if f.len() > 10
                        || f.iter()
                            .any(|x| x["text"].as_str().is_none_or(|t| t.chars().count() > 2000))
                    {
                        return Some("invalid_blocks");
                    }
                }
            }
            "actions" => {
                for e in b["elements"].as_array()? {
                    if e["type"] != "button"
                        || e["text"]["type"] != "plain_text"
                        || e["url"].as_str()?.len() > 3000
                    {
                        return Some("invalid_blocks");
                    }
                }
            }
            _ => return Some("invalid_blocks"),
        }
    }
    None
}

/// Whether a Discord webhook body is one Discord takes: embeds within Discord's limits (title
/// 256, at most 25 fields, names 256 and values 1,024 characters, a colour of 24 bits).
fn discord_refusal(v: &Value) -> Option<&'static str> {
    let embeds = v["embeds"].as_array()?;
    if embeds.is_empty() || embeds.len() > 10 {
        return Some("embeds");
    }
    for e in embeds {
        if e["title"].as_str()?.chars().count() > 256 {
            return Some("title");
        }
        if e["color"].as_u64()? > 0xFF_FFFF {
            return Some("color");
        }
        let fields = e["fields"].as_array()?;
        if fields.len() > 25 {
            return Some("fields");
        }
        for f in fields {
            if f["name"].as_str()?.chars().count() > 256
                || f["value"].as_str()?.is_empty()
                || f["value"].as_str()?.chars().count() > 1024
            {
                return Some("field");
            }
        }
        e["url"].as_str()?;
    }
    None
}

/// A loopback server answering as Slack (`/services/…`: 200 `ok`) and Discord
/// (`/api/webhooks/…`: 204) do, refusing malformed bodies as they do; its base URL.
async fn chat_receiver(got: Chats) -> String {
    let slack = got.slack.clone();
    let discord = got.discord.clone();
    let app = axum::Router::new()
        .route(
            "/services/T0001/B0001/{secret}",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let slack = slack.clone();
                async move {
                    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
                        return (StatusCode::BAD_REQUEST, "invalid_payload").into_response();
                    };
                    if headers.get("content-type").is_none_or(|c| c != "application/json") {
                        return (StatusCode::BAD_REQUEST, "invalid_payload").into_response();
                    }
                    match slack_refusal(&v) {
                        Some(why) => (StatusCode::BAD_REQUEST, why).into_response(),
                        None if v["blocks"].as_array().is_some() => {
                            slack.lock().unwrap().push(v);
                            (StatusCode::OK, "ok").into_response()
                        }
                        None => (StatusCode::BAD_REQUEST, "invalid_blocks").into_response(),
                    }
                }
            }),
        )
        .route(
            "/api/webhooks/42/{token}",
            axum::routing::post(move |body: Bytes| {
                let discord = discord.clone();
                async move {
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    match discord_refusal(&v) {
                        Some(why) => (
                            StatusCode::BAD_REQUEST,
                            axum::Json(json!({"message": "Invalid Form Body", "code": 50035, "errors": why})),
                        )
                            .into_response(),
                        None => {
                            discord.lock().unwrap().push(v);
                            StatusCode::NO_CONTENT.into_response()
                        }
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

use axum::response::IntoResponse;

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Slack messages' texts, in order.
fn slack_texts(c: &Chats) -> Vec<String> {
    c.slack
        .lock()
        .unwrap()
        .iter()
        .map(|v| v["text"].as_str().unwrap().to_owned())
        .collect()
}

/// The Discord embeds' titles, in order.
fn discord_titles(c: &Chats) -> Vec<String> {
    c.discord
        .lock()
        .unwrap()
        .iter()
        .map(|v| v["embeds"][0]["title"].as_str().unwrap().to_owned())
        .collect()
}

async fn put_rule(s: &TestServer, name: &str, rule: Value) -> (u16, Value) {
    s.call(
        Method::PUT,
        &format!("/api/v1/alert-rules/{name}"),
        Some(rule),
    )
    .await
}

/// Makes an agent's next scan pass both checks of POLICY_V1, and runs it.
async fn fix_and_rescan(s: &TestServer, a: &TestAgent) {
    std::fs::write(
        a.opts.scan_root.join("etc/ssh/sshd_config"),
        "PermitRootLogin no\nPasswordAuthentication no\n",
    )
    .unwrap();
    let (st, v) = s
        .call(Method::POST, &format!("/api/v1/agents/{}/scan", a.id), None)
        .await;
    assert!(st == 200 || st == 202, "{st} {v}");
    a.run_once().await.unwrap();
}

async fn rules_tell_slack_and_discord_when_subjects_start_and_stop_firing(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let chats = Chats::default();
    let base = chat_receiver(chats.clone()).await;
    let slack_url = format!("{base}/services/T0001/B0001/XXXXsecretXXXX");
    let discord_url = format!("{base}/api/webhooks/42/discord-token");

    // Chat destinations take their webhook URL as the sealed credential.
    let (st, v) = s
        .put_destination("ops-slack", json!({"sink": {"kind": "slack"}}))
        .await;
    assert_eq!(st, 400, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("webhook's URL"),
        "{v}"
    );
    let (st, v) = s
        .put_destination(
            "ops-slack",
            json!({"sink": {"kind": "slack"}, "credential": "not a url"}),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = s
        .put_destination(
            "ops-slack",
            json!({"sink": {"kind": "slack"}, "credential": slack_url}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["destination"]["credential_set"], true);
    assert!(
        !v.to_string().contains("XXXXsecretXXXX"),
        "the URL is never shown"
    );
    let (st, v) = s
        .put_destination(
            "sec-discord",
            json!({"sink": {"kind": "discord"}, "credential": discord_url}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let store = s.store().await;
    let stored = store.destination("ops-slack").await.unwrap().unwrap();
    assert!(
        !stored.def.config.contains("XXXXsecretXXXX"),
        "sealed at rest"
    );

    // Rules: refused with the field that is wrong, or a destination that does not exist.
    let (st, v) = put_rule(
        &s,
        "web-score",
        json!({"condition": {"kind": "score_below", "threshold": 150}, "notify": ["ops-slack"]}),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .starts_with("condition.threshold"),
        "{v}"
    );
    let (st, v) = put_rule(
        &s,
        "web-score",
        json!({"condition": {"kind": "score_below", "threshold": 60}, "notify": ["nowhere"]}),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("\"nowhere\""), "{v}");

    let (st, v) = put_rule(
        &s,
        "web-score",
        json!({"condition": {"kind": "score_below", "threshold": 60, "group": "web"},
               "notify": ["ops-slack", "sec-discord"], "quiet_minutes": 0}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["rule"]["severity"], "high", "{v}");
    let (st, v) = put_rule(
        &s,
        "ssh2-spread",
        json!({"condition": {"kind": "check_failing", "hosts": 2, "policy": "test-ssh", "check": "SSH-2"},
               "notify": ["ops-slack"], "quiet_minutes": 0, "severity": "critical"}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = put_rule(
        &s,
        "attested",
        json!({"condition": {"kind": "attestation_noncompliant", "group": "web"},
               "notify": ["sec-discord"], "quiet_minutes": 0}),
    )
    .await;
    assert_eq!(st, 201, "{v}");

    // The first agent scans: one check of two fails, 50 %: the group's score fires (both
    // chats), its attestation is noncompliant (Discord); SSH-2 fails on one host only.
    let a1 = TestAgent::enrol(&s, &s.token("web", 1).await)
        .await
        .unwrap();
    s.push_policy(POLICY_V1, "web", "0 */6 * * *").await;
    a1.run_once().await.unwrap();
    wait_for("the first alerts", || {
        slack_texts(&chats).len() == 1 && discord_titles(&chats).len() == 2
    })
    .await;
    assert_eq!(
        slack_texts(&chats),
        ["[FIRING] web-score: test-ssh score of group web is 50.0 %, below 60 %"]
    );
    let slack = chats.slack.lock().unwrap()[0].clone();
    assert_eq!(
        slack["blocks"][2]["elements"][0]["url"],
        s.url("/ui/?group=web"),
        "a link to the dashboard: {slack}"
    );
    let mut titles = discord_titles(&chats);
    titles.sort();
    assert_eq!(
        titles,
        [
            "[FIRING] attested: web-01: attestation for test-ssh is noncompliant",
            "[FIRING] web-score: test-ssh score of group web is 50.0 %, below 60 %",
        ]
    );
    let discord = chats.discord.lock().unwrap().clone();
    let att = discord
        .iter()
        .find(|m| {
            m["embeds"][0]["title"]
                .as_str()
                .unwrap()
                .contains("attested")
        })
        .unwrap();
    assert_eq!(
        att["embeds"][0]["url"],
        s.url(&format!("/ui/agents/{}", a1.id))
    );
    assert_eq!(att["allowed_mentions"]["parse"], json!([]));

    let v = s.get("/api/v1/alert-rules/web-score").await;
    assert_eq!(v["firing"], 1, "{v}");
    assert_eq!(v["firing_subjects"][0]["subject"], "web/test-ssh", "{v}");
    assert_eq!(v["firing_subjects"][0]["value"], 50.0, "{v}");

    // A second host fails SSH-2: the check fires (Slack). The score is still 50 %: already
    // told, not told again.
    let a2 = TestAgent::enrol_as(
        &s,
        &s.token("web", 1).await,
        "web-02",
        "Debian GNU/Linux 12",
    )
    .await
    .unwrap();
    a2.run_once().await.unwrap();
    wait_for("the check alert", || slack_texts(&chats).len() == 2).await;
    assert_eq!(
        slack_texts(&chats)[1],
        "[FIRING] ssh2-spread: test-ssh SSH-2 \"Password authentication disabled\" newly failing on 2 hosts (within 24 h)"
    );
    let check_msg = chats.slack.lock().unwrap()[1].clone();
    assert_eq!(
        check_msg["blocks"][2]["elements"][0]["url"],
        s.url("/ui/checks/test-ssh/SSH-2")
    );
    wait_for("the second attestation", || {
        discord_titles(&chats).len() == 3
    })
    .await;
    assert_eq!(
        discord_titles(&chats)[2],
        "[FIRING] attested: web-02: attestation for test-ssh is noncompliant"
    );

    // The first host is fixed: 3 of 4 results pass (75 %), SSH-2 fails on one host, the
    // first host's attestation is compliant: each resolves, told once.
    fix_and_rescan(&s, &a1).await;
    wait_for("the resolutions", || {
        slack_texts(&chats).len() == 4 && discord_titles(&chats).len() == 5
    })
    .await;
    let mut resolved = slack_texts(&chats)[2..].to_vec();
    resolved.sort();
    assert_eq!(
        resolved,
        [
            "[RESOLVED] ssh2-spread: test-ssh SSH-2 \"Password authentication disabled\" now newly failing on only 1 host (within 24 h)",
            "[RESOLVED] web-score: test-ssh score of group web is back to 75.0 % (threshold 60 %)",
        ]
    );
    let mut resolved = discord_titles(&chats)[3..].to_vec();
    resolved.sort();
    assert_eq!(
        resolved,
        [
            "[RESOLVED] attested: web-01: attestation for test-ssh is compliant again",
            "[RESOLVED] web-score: test-ssh score of group web is back to 75.0 % (threshold 60 %)",
        ]
    );
    let resolved_msg = chats
        .discord
        .lock()
        .unwrap()
        .iter()
        .find(|m| {
            m["embeds"][0]["title"]
                .as_str()
                .unwrap()
                .starts_with("[RESOLVED] web-score")
        })
        .unwrap()
        .clone();
    assert_eq!(resolved_msg["embeds"][0]["color"], 0x2e7d32);

    // Nothing more is told for the same facts: another scan of the same state stays quiet.
    let (st, _) = s
        .call(
            Method::POST,
            &format!("/api/v1/agents/{}/scan", a2.id),
            None,
        )
        .await;
    assert!(st == 200 || st == 202);
    a2.run_once().await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(slack_texts(&chats).len(), 4, "{:?}", slack_texts(&chats));
    assert_eq!(
        discord_titles(&chats).len(),
        5,
        "{:?}",
        discord_titles(&chats)
    );
    let v = s.get("/api/v1/alert-rules").await;
    assert_eq!(v.as_array().unwrap().len(), 3);
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .all(|r| r["firing"] == 0 || r["name"] == "attested"),
        "{v}"
    );

    // The alert events are in the stream (a SIEM gets them too) and in the audit log the
    // rule changes.
    let events = store.events_after(0, 10_000).await.unwrap();
    let alerts: Vec<_> = events.iter().filter(|e| e.kind == "alert").collect();
    assert_eq!(
        alerts.len(),
        7,
        "4 Slack + 5 Discord messages from 7 alerts (two went to both)"
    );
    let (st, v) = s
        .call(
            Method::GET,
            "/api/v1/audit/entries?action=alert_rule.put",
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert!(v.to_string().contains("alert-rule:ssh2-spread"), "{v}");

    // Deleting a rule forgets its subjects.
    let (st, _) = s
        .call(Method::DELETE, "/api/v1/alert-rules/attested", None)
        .await;
    assert_eq!(st, 200);
    let (st, _) = s
        .call(Method::GET, "/api/v1/alert-rules/attested", None)
        .await;
    assert_eq!(st, 404);
    s.finish().await;
}
server_test!(rules_tell_slack_and_discord_when_subjects_start_and_stop_firing);

fn hit(agent: &rampart_events::AgentRef, indicator: &str, score: u8) -> rampart_events::Event {
    rampart_events::make::intel_hit(
        uuid::Uuid::now_v7().to_string(),
        time::OffsetDateTime::now_utc(),
        agent.clone(),
        rampart_events::IntelHit {
            observable_kind: "connection".into(),
            observable: format!("{indicator}:443"),
            context: String::new(),
            indicator_kind: "ipv4".into(),
            indicator: indicator.into(),
            how: "address".into(),
            score,
            threat_type: Some("botnet_cc".into()),
            family: Some("Emotet".into()),
            run: "r-1".into(),
        },
    )
}

/// An offline rule fires when an agent's heartbeats stop for its time and resolves when it is
/// heard from again; IOC hits are told once per quiet period per agent and indicator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_agents_and_ioc_hits_are_told_once() {
    bounded(async {
        let s = TestServer::start_with(Db::Sqlite, |c| {
            c.alert_sweep = Duration::from_millis(500);
        })
        .await
        .unwrap();
        let chats = Chats::default();
        let base = chat_receiver(chats.clone()).await;
        let (st, v) = s
            .put_destination(
                "ops",
                json!({"sink": {"kind": "slack"}, "credential": format!("{base}/services/T0001/B0001/s")}),
            )
            .await;
        assert_eq!(st, 201, "{v}");
        let (st, v) = put_rule(
            &s,
            "silent",
            json!({"condition": {"kind": "agent_offline", "minutes": 5, "group": "web"},
                   "notify": ["ops"], "quiet_minutes": 0}),
        )
        .await;
        assert_eq!(st, 201, "{v}");
        let (st, v) = put_rule(
            &s,
            "c2",
            json!({"condition": {"kind": "intel_hit", "min_score": 70},
                   "notify": ["ops"], "quiet_minutes": 60, "severity": "critical"}),
        )
        .await;
        assert_eq!(st, 201, "{v}");

        let a = TestAgent::enrol(&s, &s.token("web", 1).await).await.unwrap();
        let db01 = TestAgent::enrol_as(&s, &s.token("db", 1).await, "db-01", "Debian GNU/Linux 12")
            .await
            .unwrap();
        // Both fall silent ten minutes ago; only the web agent is in the rule's group.
        let ten_ago = time::OffsetDateTime::now_utc().unix_timestamp() - 600;
        s.tamper(&format!("UPDATE agent_seen SET last_seen = {ten_ago}")).await;
        wait_for("the offline alert", || slack_texts(&chats).len() == 1).await;
        let text = &slack_texts(&chats)[0];
        assert!(
            text.starts_with("[FIRING] silent: web-01 (group web) offline: no heartbeat for 10 min (threshold 5 min)"),
            "{text}"
        );
        let msg = chats.slack.lock().unwrap()[0].clone();
        assert_eq!(
            msg["blocks"][2]["elements"][0]["url"],
            s.url(&format!("/ui/agents/{}", a.id))
        );
        // Sweeps go on; it is not told again while it stays silent.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(slack_texts(&chats).len(), 1, "{:?}", slack_texts(&chats));
        // It is heard from again: resolved.
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        s.tamper(&format!("UPDATE agent_seen SET last_seen = {now} WHERE agent_id = '{}'", a.id))
            .await;
        wait_for("the offline resolution", || slack_texts(&chats).len() == 2).await;
        assert_eq!(
            slack_texts(&chats)[1],
            "[RESOLVED] silent: web-01 (group web) is back (or revoked)"
        );
        let _ = db01;

        // Hits: three on one indicator within the quiet period, one on another, one scored
        // below the rule's threshold.
        let store = s.store().await;
        let who = rampart_events::AgentRef {
            id: a.id.clone(),
            hostname: "web-01".into(),
            group: "web".into(),
        };
        store
            .append_events(&[
                hit(&who, "203.0.113.9", 90),
                hit(&who, "203.0.113.9", 90),
                hit(&who, "198.51.100.7", 75),
                hit(&who, "192.0.2.1", 40),
            ])
            .await
            .unwrap();
        store.append_events(&[hit(&who, "203.0.113.9", 95)]).await.unwrap();
        wait_for("the hit alerts", || slack_texts(&chats).len() == 4).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut texts = slack_texts(&chats)[2..].to_vec();
        texts.sort();
        assert_eq!(
            texts,
            [
                "[FIRING] c2: web-01: connection 198.51.100.7:443 matches 198.51.100.7 (botnet_cc, Emotet) (score 75)",
                "[FIRING] c2: web-01: connection 203.0.113.9:443 matches 203.0.113.9 (botnet_cc, Emotet) (score 90)",
            ]
        );
        let v = s.get("/api/v1/alert-rules/c2").await;
        assert_eq!(v["firing"], 0, "occurrences do not fire on: {v}");
        let st = store
            .alert_states_of(&[("c2".into(), format!("{}/ipv4:203.0.113.9", a.id))])
            .await
            .unwrap();
        let state: Value = serde_json::from_str(&st[0].state).unwrap();
        assert_eq!(state["suppressed"], 2, "two more hits counted for the next message: {state}");
        s.finish().await;
    })
    .await;
}

/// aiosmtpd, started with `mode` (starttls or tls); its port and its output.
struct Smtp {
    child: Child,
    port: u16,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Smtp {
    fn start(mode: &str, cert: &std::path::Path, key: &std::path::Path, refuse_first: u32) -> Smtp {
        let python = "/opt/rampart-test/smtp/bin/python";
        assert!(
            std::path::Path::new(python).exists(),
            "aiosmtpd is missing: run scripts/setup-test-deps.sh"
        );
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp/server.py");
        let mut child = Command::new(python)
            .args([script, mode])
            .arg(cert)
            .arg(key)
            .args(["alerts", "s3cret-pass", &refuse_first.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        let port = first
            .strip_prefix("LISTENING ")
            .unwrap_or_else(|| panic!("{first}"))
            .parse()
            .unwrap();
        Smtp {
            child,
            port,
            lines: rx,
        }
    }

    /// The next message it accepted within a minute.
    fn next(&self) -> Option<Value> {
        let line = self.lines.recv_timeout(Duration::from_secs(60)).ok()?;
        Some(serde_json::from_str(&line).unwrap())
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// E-mail alerts reach a real SMTP server over STARTTLS and over TLS, authenticated, trusting a
/// private CA; a temporary refusal is retried; a wrong password is an error in the
/// destination's health.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_alerts_reach_smtp_over_starttls_and_tls() {
    bounded(async {
        let s = TestServer::start(Db::Sqlite).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = test_pki();
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_path, &cert).unwrap();
        std::fs::write(&key_path, &key).unwrap();
        let starttls =
            tokio::task::block_in_place(|| Smtp::start("starttls", &cert_path, &key_path, 1));
        let tls = tokio::task::block_in_place(|| Smtp::start("tls", &cert_path, &key_path, 0));

        let email = |port: u16, mode: &str| {
            json!({"sink": {"kind": "email", "server": format!("127.0.0.1:{port}"), "tls": mode,
                            "from": "Rampart <rampart@example.org>",
                            "to": ["soc@example.org", "Ops Team <ops@example.org>"],
                            "username": "alerts", "ca_pem": ca},
                   "credential": "s3cret-pass"})
        };
        // Refusals: a user without a password, a bad address.
        let mut no_pass = email(starttls.port, "starttls");
        no_pass.as_object_mut().unwrap().remove("credential");
        let (st, v) = s.put_destination("mail", no_pass).await;
        assert_eq!(st, 400, "{v}");
        assert!(
            v["detail"].as_str().unwrap().contains("SMTP password"),
            "{v}"
        );
        let mut bad_to = email(starttls.port, "starttls");
        bad_to["sink"]["to"] = json!(["not an address"]);
        let (st, v) = s.put_destination("mail", bad_to).await;
        assert_eq!(st, 400, "{v}");
        assert!(v["detail"].as_str().unwrap().starts_with("sink.to"), "{v}");

        let (st, v) = s
            .put_destination("mail", email(starttls.port, "starttls"))
            .await;
        assert_eq!(st, 201, "{v}");
        let (st, v) = s.put_destination("mail-tls", email(tls.port, "tls")).await;
        assert_eq!(st, 201, "{v}");
        let mut wrong = email(starttls.port, "starttls");
        wrong["credential"] = json!("wrong-pass");
        let (st, v) = s.put_destination("mail-wrong", wrong).await;
        assert_eq!(st, 201, "{v}");
        let (st, v) = put_rule(
            &s,
            "c2",
            json!({"condition": {"kind": "intel_hit", "min_score": 50},
                   "notify": ["mail", "mail-tls", "mail-wrong"], "quiet_minutes": 0}),
        )
        .await;
        assert_eq!(st, 201, "{v}");

        let a = TestAgent::enrol(&s, &s.token("web", 1).await)
            .await
            .unwrap();
        let who = rampart_events::AgentRef {
            id: a.id.clone(),
            hostname: "web-01".into(),
            group: "web".into(),
        };
        s.store()
            .await
            .append_events(&[hit(&who, "203.0.113.9", 88)])
            .await
            .unwrap();

        for (server, name) in [(&starttls, "starttls"), (&tls, "tls")] {
            // The STARTTLS server refused the first attempt (451): this is the retry.
            let Some(m) = tokio::task::block_in_place(|| server.next()) else {
                panic!(
                    "{name}: no message; destinations: {}",
                    s.get("/api/v1/event-destinations").await
                );
            };
            assert_eq!(m["tls"], true, "{name}: {m}");
            assert_eq!(m["user"], "alerts", "{name}: {m}");
            assert_eq!(m["from"], "rampart@example.org", "{name}: {m}");
            assert_eq!(
                m["to"],
                json!(["soc@example.org", "ops@example.org"]),
                "{name}: {m}"
            );
            let subject = m["subject"].as_str().unwrap();
            assert!(
                subject.starts_with(
                    "[Rampart] [FIRING] c2: web-01: connection 203.0.113.9:443 matches 203.0.113.9"
                ),
                "{name}: {m}"
            );
            assert_eq!(m["header_from"], "Rampart <rampart@example.org>", "{m}");
            assert_eq!(
                m["header_to"], "soc@example.org, Ops Team <ops@example.org>",
                "{m}"
            );
            let id = m["message_id"].as_str().unwrap();
            assert!(
                id.starts_with('<') && id.ends_with("@rampart.invalid>"),
                "{m}"
            );
            assert!(m["date"].as_str().is_some_and(|d| !d.is_empty()), "{m}");
            assert_eq!(
                (m["content_type"].as_str(), m["charset"].as_str()),
                (Some("text/plain"), Some("utf-8")),
                "{m}"
            );
            let text = m["text"].as_str().unwrap();
            let link = format!(
                "Open in Rampart: {}",
                s.url(&format!("/ui/agents/{}", a.id))
            );
            assert!(text.contains(&link), "{name}: {text}");
            assert!(text.contains("Rule: c2\n"), "{text}");
            assert!(
                text.contains("Severity: high\n"),
                "the rule's default severity: {text}"
            );
        }
        // The wrong password: the server's 535 in the destination's health.
        let d = s
            .destination_when("mail-wrong", Duration::from_secs(60), |d| {
                d["last_error"].as_str().is_some_and(|e| e.contains("535"))
            })
            .await;
        // The alert waits for its next attempt (what counts as delivered there are the events
        // a mail destination does not take).
        assert_eq!(d["pending"], 1, "{d}");
        // The SMTP server told the test about the retried message before its 250 reached
        // Rampart: the delivery is settled a moment later.
        let mail = s
            .destination_when("mail", Duration::from_secs(60), |d| d["pending"] == 0)
            .await;
        assert_eq!(mail["failed"], 1, "one 451, then delivered: {mail}");
        assert_eq!(mail["consecutive_failures"], 0, "{mail}");
        s.finish().await;
    })
    .await;
}
