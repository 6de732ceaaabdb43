//! SIEM destinations judged by real receivers: Debian's `rsyslog` takes the syslog sinks over
//! UDP, TCP and TLS (its RFC 5424 parser splits what Rampart sent into fields, written by a
//! template); a local Splunk HTTP Event Collector speaking HEC's protocol (token, envelopes,
//! answers and partial refusals) takes the HEC sink over HTTPS with a private CA.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use reqwest::Method;
use serde_json::{Value, json};

use super::harness::{Db, POLICY_V1, TestAgent, TestServer, bounded, free_port, test_pki};

async fn destination(s: &TestServer, name: &str) -> Value {
    let list = s.get("/api/v1/event-destinations").await;
    list.as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap()
        .clone()
}

/// Waits until every destination named has nothing pending and has delivered something.
async fn drained(s: &TestServer, names: &[&str]) {
    let started = Instant::now();
    for name in names {
        loop {
            let d = destination(s, name).await;
            if d["pending"] == 0 && d["delivered"].as_u64().unwrap() > 0 {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "{d}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// rsyslogd in the foreground, killed on drop.
struct Rsyslog {
    child: std::process::Child,
    dir: tempfile::TempDir,
    udp: u16,
    tcp: u16,
    tls: u16,
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Rsyslog {
    fn start(cert_pem: &str, key_pem: &str, ca_pem: &str) -> Rsyslog {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("ca.pem"), ca_pem).unwrap();
        std::fs::write(d.join("cert.pem"), cert_pem).unwrap();
        std::fs::write(d.join("key.pem"), key_pem).unwrap();
        let (udp, tcp, tls) = (free_port(), free_port(), free_port());
        let p = |f: &str| d.join(f).display().to_string();
        // rsyslog's own RFC 5424 parser fills these properties; the template writes them
        // separated by `|`, one message per line.
        let conf = format!(
            r#"global(workDirectory="{dir}" maxMessageSize="64k"
  DefaultNetstreamDriverCAFile="{ca}" DefaultNetstreamDriverCertFile="{cert}" DefaultNetstreamDriverKeyFile="{key}")
module(load="imudp")
module(load="imtcp")
template(name="fields" type="list") {{
  property(name="pri") constant(value="|") property(name="timereported" dateFormat="rfc3339") constant(value="|")
  property(name="hostname") constant(value="|") property(name="app-name") constant(value="|")
  property(name="procid") constant(value="|") property(name="msgid") constant(value="|")
  property(name="structured-data") constant(value="|") property(name="msg" droplastlf="on") constant(value="\n")
}}
ruleset(name="udp") {{ action(type="omfile" file="{udp_log}" template="fields") }}
ruleset(name="tcp") {{ action(type="omfile" file="{tcp_log}" template="fields") }}
ruleset(name="tls") {{ action(type="omfile" file="{tls_log}" template="fields") }}
input(type="imudp" port="{udp}" address="127.0.0.1" ruleset="udp")
input(type="imtcp" port="{tcp}" address="127.0.0.1" ruleset="tcp")
input(type="imtcp" port="{tls}" address="127.0.0.1" ruleset="tls"
  streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
"#,
            dir = d.display(),
            ca = p("ca.pem"),
            cert = p("cert.pem"),
            key = p("key.pem"),
            udp_log = p("udp.log"),
            tcp_log = p("tcp.log"),
            tls_log = p("tls.log"),
        );
        std::fs::write(d.join("rsyslog.conf"), conf).unwrap();
        let out = std::fs::File::create(d.join("rsyslogd.out")).unwrap();
        let child = std::process::Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(d.join("rsyslog.conf"))
            .arg("-i")
            .arg(d.join("rsyslogd.pid"))
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("rsyslogd (Debian rsyslog, installed by scripts/setup-test-deps.sh)");
        let r = Rsyslog {
            child,
            dir,
            udp,
            tcp,
            tls,
        };
        // Listening once the plain TCP port accepts (one module starts both TCP inputs; the
        // UDP input starts before them).
        let started = Instant::now();
        // (Probing the TLS port with a bare connection would make rsyslog log a handshake
        // cut short, which the test looks for.)
        while std::net::TcpStream::connect(("127.0.0.1", tcp)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "rsyslogd did not listen: {}",
                r.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    fn output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("rsyslogd.out")).unwrap_or_default()
    }

    /// What rsyslog parsed out of each message received on an input.
    fn received(&self, input: &str) -> Vec<Parsed> {
        read_parsed(&self.dir.path().join(format!("{input}.log")))
    }
}

/// rsyslog's fields of one message.
#[derive(Debug)]
struct Parsed {
    pri: u32,
    time: String,
    hostname: String,
    app: String,
    procid: String,
    msgid: String,
    sd: String,
    msg: String,
}

fn read_parsed(path: &Path) -> Vec<Parsed> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.splitn(8, '|').collect();
            assert_eq!(f.len(), 8, "{l}");
            // The structured data holds no `|` of ours; the message may (CEF escapes it in its
            // header, and it is the last field).
            Parsed {
                pri: f[0].parse().unwrap(),
                time: f[1].into(),
                hostname: f[2].into(),
                app: f[3].into(),
                procid: f[4].into(),
                msgid: f[5].into(),
                sd: f[6].into(),
                msg: f[7].into(),
            }
        })
        .collect()
}

/// Events the server wrote, by id, from a webhook-free view: the outbox itself.
async fn outbox(s: &TestServer) -> Vec<rampart_events::Event> {
    let store = s.store().await;
    store
        .events_after(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|stored| {
            let mut e = rampart_events::Event::from_json(&stored.body).unwrap();
            e.seq = stored.seq;
            e
        })
        .collect()
}

async fn syslog_reaches_rsyslog_over_udp_tcp_and_tls(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let (ca, cert, key) = test_pki();
    let rs = Rsyslog::start(&cert, &key, &ca);
    for (name, sink) in [
        (
            "udp-cef",
            json!({"kind": "syslog", "address": format!("127.0.0.1:{}", rs.udp), "transport": "udp",
                   "payload": "cef", "facility": "local3", "hostname": "rampart-test"}),
        ),
        (
            "tcp-json",
            json!({"kind": "syslog", "address": format!("127.0.0.1:{}", rs.tcp), "transport": "tcp"}),
        ),
        (
            "tls-json",
            json!({"kind": "syslog", "address": format!("127.0.0.1:{}", rs.tls), "transport": "tls",
                   "ca_pem": ca, "facility": "auth"}),
        ),
    ] {
        let (st, v) = s.put_destination(name, json!({ "sink": sink })).await;
        assert_eq!(st, 201, "{v}");
        assert_eq!(v["secret"], Value::Null, "syslog has no signing secret");
    }
    // An agent enrols, gets a policy and scans: audit events, the enrolment, the run, the
    // attestation.
    let a = TestAgent::enrol(&s, &s.token("web", 1).await)
        .await
        .unwrap();
    s.push_policy(POLICY_V1, "web", "0 */6 * * *").await;
    a.run_once().await.unwrap();
    let started = Instant::now();
    while !outbox(&s)
        .await
        .iter()
        .any(|e| e.body.kind() == "attestation.issued")
    {
        assert!(started.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drained(&s, &["udp-cef", "tcp-json", "tls-json"]).await;
    let events = outbox(&s).await;
    // Events are queued for a destination from its creation on: its own creation's audit
    // event is the first.
    let sent_from = |name: &str| {
        events
            .iter()
            .position(|e| {
                e.body.kind() == "audit" && e.summary.contains(&format!("event-destination:{name}"))
            })
            .unwrap()
    };
    let server_name = s.config.names[0].clone();

    for (input, name, facility, hostname) in [
        ("tcp", "tcp-json", 16, server_name.as_str()),
        ("tls", "tls-json", 4, server_name.as_str()),
    ] {
        let want = &events[sent_from(name)..];
        let got = rs.received(input);
        assert_eq!(got.len(), want.len(), "{input}: {got:?}");
        for (p, e) in got.iter().zip(want) {
            // rsyslog read the header as RFC 5424 and the payload as the event, whole.
            let severity = match e.severity {
                rampart_core::Severity::Critical => 2,
                rampart_core::Severity::High => 3,
                rampart_core::Severity::Medium | rampart_core::Severity::Unknown => 4,
                rampart_core::Severity::Low => 5,
                rampart_core::Severity::Info => 6,
            };
            assert_eq!(p.pri, facility * 8 + severity, "{input}: {p:?}");
            assert_eq!(p.app, "rampart");
            assert_eq!(p.procid, std::process::id().to_string());
            assert_eq!(p.hostname, hostname);
            assert_eq!(p.msgid, e.body.kind());
            assert!(
                p.sd.starts_with(&format!(
                    "[rampart@32473 id=\"{}\" seq=\"{}\" severity=\"{}\"",
                    e.id,
                    e.seq,
                    e.severity.as_str()
                )),
                "{p:?}"
            );
            let t = time::OffsetDateTime::parse(
                &p.time,
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap();
            assert_eq!(t, e.time, "{p:?}");
            let got = rampart_events::Event::from_json(&p.msg).unwrap();
            assert_eq!(&got, e, "{input}");
        }
    }
    // UDP with CEF: the record rsyslog received names the event.
    let want = &events[sent_from("udp-cef")..];
    let got = rs.received("udp");
    assert_eq!(got.len(), want.len(), "udp: {got:?}");
    for p in &got {
        let e = want
            .iter()
            .find(|e| p.sd.contains(&format!("id=\"{}\"", e.id)))
            .unwrap_or_else(|| panic!("not an event sent: {p:?}"));
        assert_eq!(p.hostname, "rampart-test");
        assert_eq!(p.pri / 8, 19, "local3");
        assert!(
            p.msg.starts_with(&format!(
                "CEF:0|Rampart|Rampart|{}|{}|",
                env!("CARGO_PKG_VERSION"),
                e.body.kind()
            )),
            "{p:?}"
        );
        assert!(p.msg.contains(&format!("cs6={}", e.id)), "{p:?}");
        assert!(p.msg.contains(&format!("externalId={}", e.seq)), "{p:?}");
    }
    assert!(got.iter().any(|p| p.msgid == "run.stored"));
    // Every TLS connection was closed properly (a close_notify): rsyslog complains otherwise.
    let out = rs.output();
    assert!(!out.contains("non-properly terminated"), "{out}");

    // A collector that is down: attempts fail with the address in the error, and the events
    // wait for it.
    let dead = free_port();
    let (st, _) = s.put_destination("down",
        json!({"sink": {"kind": "syslog", "address": format!("127.0.0.1:{dead}"), "transport": "tcp"}}),
    )
    .await;
    assert_eq!(st, 201);
    let (st, _) = s
        .call(Method::POST, &format!("/api/v1/agents/{}/scan", a.id), None)
        .await;
    assert_eq!(st, 200);
    let started = Instant::now();
    let down = loop {
        let d = destination(&s, "down").await;
        if d["failed"].as_u64().unwrap() > 0 {
            break d;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        down["last_error"]
            .as_str()
            .unwrap()
            .contains(&format!("127.0.0.1:{dead}")),
        "{down}"
    );
    assert!(down["pending"].as_u64().unwrap() > 0, "{down}");

    // Bad definitions are refused, naming the field.
    for (sink, says) in [
        (
            json!({"kind": "syslog", "address": "collector", "transport": "tcp"}),
            "sink.address",
        ),
        (
            json!({"kind": "syslog", "address": "c:70000", "transport": "tcp"}),
            "sink.address",
        ),
        (
            json!({"kind": "syslog", "address": "c:514", "transport": "carrier"}),
            "unknown variant `carrier`",
        ),
        (
            json!({"kind": "syslog", "address": "c:514", "transport": "tcp", "ca_pem": ca}),
            "only for the tls transport",
        ),
        (
            json!({"kind": "syslog", "address": "c:6514", "transport": "tls", "ca_pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}),
            "sink.ca_pem",
        ),
        (
            json!({"kind": "syslog", "address": "c:6514", "transport": "tls", "ca_pem": "not pem"}),
            "sink.ca_pem",
        ),
        (
            json!({"kind": "syslog", "address": "c:514", "transport": "udp", "facility": "kern"}),
            "unknown variant `kern`",
        ),
    ] {
        let (st, v) = s.put_destination("bad", json!({ "sink": sink })).await;
        assert_eq!(st, 400, "{v}");
        assert!(v.to_string().contains(says), "{says}: {v}");
    }
    let (st, v) = s.put_destination("bad",
        json!({"sink": {"kind": "syslog", "address": "c:514", "transport": "udp"}, "credential": "x"}),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    assert!(v.to_string().contains("takes none"), "{v}");
    drop(rs);
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_reaches_rsyslog_over_udp_tcp_and_tls_sqlite() {
    bounded(syslog_reaches_rsyslog_over_udp_tcp_and_tls(Db::Sqlite)).await;
}

/// What the collector indexed, and how it is to answer.
#[derive(Clone, Default)]
struct Collector {
    token: Arc<Mutex<String>>,
    /// Events indexed, in order.
    indexed: Arc<Mutex<Vec<Value>>>,
    /// Requests seen, with their Authorization header.
    requests: Arc<Mutex<Vec<String>>>,
    /// Refuse the event at this position of the next batch of more than one event, as
    /// unreadable (once).
    refuse_at: Arc<Mutex<Option<usize>>>,
}

/// A Splunk HEC on loopback over HTTPS, checking the protocol as Splunk does: the path, the
/// `Splunk` token, each envelope's fields; answering in HEC's codes.
async fn collector(c: Collector, cert_pem: &str, key_pem: &str) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let app = axum::Router::new().route(
        "/services/collector/event",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let c = c.clone();
            async move { hec_answer(&c, &headers, &body) }
        }),
    );
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            });
        }
    });
    format!("https://127.0.0.1:{}", addr.port())
}

fn hec(status: StatusCode, v: Value) -> (StatusCode, String) {
    (status, v.to_string())
}

fn hec_answer(c: &Collector, headers: &HeaderMap, body: &[u8]) -> (StatusCode, String) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    c.requests.lock().unwrap().push(auth.clone());
    let Some(token) = auth.strip_prefix("Splunk ") else {
        return hec(
            StatusCode::UNAUTHORIZED,
            json!({"text": "Token is required", "code": 2}),
        );
    };
    if token != *c.token.lock().unwrap() {
        return hec(
            StatusCode::FORBIDDEN,
            json!({"text": "Invalid token", "code": 4}),
        );
    }
    // The body is envelopes back to back.
    let envelopes: Vec<Value> = match serde_json::Deserializer::from_slice(body)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
    {
        Ok(v) => v,
        Err(_) => {
            return hec(
                StatusCode::BAD_REQUEST,
                json!({"text": "Invalid data format", "code": 6, "invalid-event-number": 0}),
            );
        }
    };
    if envelopes.is_empty() {
        return hec(
            StatusCode::BAD_REQUEST,
            json!({"text": "No data", "code": 5}),
        );
    }
    let refuse = if envelopes.len() > 1 {
        c.refuse_at.lock().unwrap().take()
    } else {
        None
    };
    for (i, env) in envelopes.iter().enumerate() {
        let well_formed = env["event"].is_object()
            && env["time"].is_number()
            && env["sourcetype"] == "rampart:event"
            && env["source"] == "rampart"
            && env["host"].is_string();
        if !well_formed {
            return hec(
                StatusCode::BAD_REQUEST,
                json!({"text": "Event field is required", "code": 12, "invalid-event-number": i}),
            );
        }
        if refuse == Some(i) {
            return hec(
                StatusCode::BAD_REQUEST,
                json!({"text": "Invalid data format", "code": 6, "invalid-event-number": i}),
            );
        }
        // Splunk indexes the events before a refused one.
        c.indexed.lock().unwrap().push(env.clone());
    }
    hec(StatusCode::OK, json!({"text": "Success", "code": 0}))
}

async fn splunk_hec_takes_events_with_its_token(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let (ca, cert, key) = test_pki();
    let c = Collector::default();
    *c.token.lock().unwrap() = "7f1c2a9e-0000-4b7e-9a51-hec-right".into();
    let url = collector(c.clone(), &cert, &key).await;

    // A HEC destination needs its token.
    let sink = json!({"kind": "splunk_hec", "url": url, "index": "security", "ca_pem": ca});
    let (st, v) = s.put_destination("splunk", json!({ "sink": sink })).await;
    assert_eq!(st, 400, "{v}");
    assert!(v.to_string().contains("credential"), "{v}");
    // A wrong one: refused by the collector, reported in the destination's health.
    let (st, v) = s
        .put_destination("splunk", json!({"sink": sink, "credential": "wrong-token"}))
        .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["destination"]["credential_set"], true);
    assert!(!v.to_string().contains("wrong-token"), "never shown: {v}");
    let a = TestAgent::enrol(&s, &s.token("web", 1).await)
        .await
        .unwrap();
    let started = Instant::now();
    let refused = loop {
        let d = destination(&s, "splunk").await;
        if d["failed"].as_u64().unwrap() > 0 {
            break d;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        refused["last_error"]
            .as_str()
            .unwrap()
            .contains("HTTP 403: Invalid token (code 4)"),
        "{refused}"
    );
    assert!(c.indexed.lock().unwrap().is_empty());
    assert_eq!(
        c.requests.lock().unwrap()[0],
        "Splunk wrong-token",
        "the token in HEC's header"
    );

    // The right token; the sink's settings unchanged. The next batch has its second event
    // refused as unreadable: the first is indexed, the rest sent again.
    *c.refuse_at.lock().unwrap() = Some(1);
    let (st, v) = s
        .put_destination(
            "splunk",
            json!({"sink": sink, "credential": "7f1c2a9e-0000-4b7e-9a51-hec-right"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    // The stored settings hold the token sealed, not in clear.
    let stored = s
        .store()
        .await
        .destination("splunk")
        .await
        .unwrap()
        .unwrap();
    assert!(
        !stored.def.config.contains("hec-right"),
        "{}",
        stored.def.config
    );
    assert!(stored.def.config.contains("sealed_credential"));
    // Changing something else keeps the stored token.
    let (st, v) = s
        .put_destination("splunk", json!({"sink": sink, "max_attempts": 20}))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["destination"]["credential_set"], true);
    s.push_policy(POLICY_V1, "web", "0 */6 * * *").await;
    a.run_once().await.unwrap();
    let started = Instant::now();
    while !c
        .indexed
        .lock()
        .unwrap()
        .iter()
        .any(|e| e["event"]["kind"] == "attestation.issued")
    {
        assert!(started.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drained(&s, &["splunk"]).await;
    assert!(c.refuse_at.lock().unwrap().is_none(), "a refusal happened");

    // Every event written since the destination was made (its creation's audit event first)
    // was indexed exactly once, in its envelope.
    let events = outbox(&s).await;
    let first = events
        .iter()
        .position(|e| e.body.kind() == "audit" && e.summary.contains("event-destination:splunk"))
        .unwrap();
    let indexed = c.indexed.lock().unwrap().clone();
    let mut ids: Vec<&str> = indexed
        .iter()
        .map(|e| e["event"]["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut want: Vec<&str> = events[first..].iter().map(|e| e.id.as_str()).collect();
    want.sort_unstable();
    assert_eq!(ids, want);
    for env in &indexed {
        assert_eq!(env["index"], "security");
        assert_eq!(env["host"], s.config.names[0].as_str());
        let e = rampart_events::Event::from_json(&env["event"].to_string()).unwrap();
        let millis = e.time.unix_timestamp_nanos() / 1_000_000;
        assert_eq!(env["time"].as_f64().unwrap(), millis as f64 / 1000.0);
    }
    let d = destination(&s, "splunk").await;
    assert_eq!(d["last_error"], Value::Null, "{d}");
    // The audit log says a credential was set, never what.
    let audit = s
        .get("/api/v1/audit/entries?action=event_destination.put")
        .await;
    assert!(!audit.to_string().contains("hec-right"));
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splunk_hec_takes_events_with_its_token_sqlite() {
    bounded(splunk_hec_takes_events_with_its_token(Db::Sqlite)).await;
}

/// librdkafka's mock cluster (tests/kafka/broker.py), killed on drop.
struct Broker {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    bootstrap: Vec<String>,
    partitions: usize,
}

impl Broker {
    async fn start(topic: &str) -> Broker {
        use tokio::io::AsyncBufReadExt;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kafka/broker.py");
        let mut child = tokio::process::Command::new("/opt/rampart-test/kafka/bin/python")
            .arg(script)
            .arg(topic)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("confluent-kafka in /opt/rampart-test/kafka (scripts/setup-test-deps.sh)");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the mock cluster starts")
            .unwrap()
            .expect("the mock cluster says where it listens");
        let mut words = first.split_whitespace();
        assert_eq!(words.next(), Some("BOOTSTRAP"), "{first}");
        let bootstrap = words
            .next()
            .unwrap()
            .split(',')
            .map(str::to_owned)
            .collect();
        assert_eq!(words.next(), Some("PARTITIONS"));
        let partitions = words.next().unwrap().parse().unwrap();
        Broker {
            child,
            lines,
            bootstrap,
            partitions,
        }
    }

    /// The next record a consumer of the topic read.
    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(60), self.lines.next_line())
            .await
            .expect("a record within a minute")
            .unwrap()
            .expect("the broker runs");
        serde_json::from_str(&line).unwrap()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn kafka_takes_one_record_per_event(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let mut broker = Broker::start("rampart-events").await;
    assert!(broker.partitions > 1, "a topic of several partitions");
    let (st, v) = s.put_destination("kafka",
        json!({"sink": {"kind": "kafka", "brokers": [broker.bootstrap[0]], "topic": "rampart-events"}}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    // A topic the cluster does not have: the attempts fail saying so.
    let (st, v) = s
        .put_destination(
            "no-topic",
            json!({"sink": {"kind": "kafka", "brokers": broker.bootstrap, "topic": "nowhere"}}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let agents = [
        TestAgent::enrol(&s, &s.token("web", 1).await)
            .await
            .unwrap(),
        TestAgent::enrol(&s, &s.token("web", 1).await)
            .await
            .unwrap(),
    ];
    s.push_policy(POLICY_V1, "web", "0 */6 * * *").await;
    for a in &agents {
        a.run_once().await.unwrap();
    }
    // Both runs' attestations are written (after the runs) before the outbox is read.
    let started = Instant::now();
    while outbox(&s)
        .await
        .iter()
        .filter(|e| e.body.kind() == "attestation.issued")
        .count()
        < 2
    {
        assert!(started.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drained(&s, &["kafka"]).await;
    let events = outbox(&s).await;
    let first = events
        .iter()
        .position(|e| e.body.kind() == "audit" && e.summary.contains("event-destination:kafka"))
        .unwrap();
    let want = &events[first..];
    // Partitions are read side by side, so records come in no overall order: read until every
    // event is there.
    let mut got: Vec<Value> = Vec::new();
    let has = |got: &[Value], id: &str| got.iter().any(|r| r["headers"]["rampart-event-id"] == id);
    while !want.iter().all(|e| has(&got, &e.id)) {
        got.push(broker.next().await);
    }
    let mut partition_of_agent = std::collections::BTreeMap::new();
    for e in want {
        let records: Vec<&Value> = got
            .iter()
            .filter(|r| r["headers"]["rampart-event-id"] == e.id.as_str())
            .collect();
        assert_eq!(
            records.len(),
            1,
            "{} {}: once among {} records for {} events",
            e.body.kind(),
            e.id,
            got.len(),
            want.len()
        );
        let r = records[0];
        // The value is the event; headers and timestamp say what it is and when.
        assert_eq!(
            &rampart_events::Event::from_json(r["value"].as_str().unwrap()).unwrap(),
            e
        );
        assert_eq!(r["headers"]["rampart-event-kind"], e.body.kind());
        assert_eq!(r["headers"]["rampart-schema"], "rampart.event.v1");
        let millis = i64::try_from(e.time.unix_timestamp_nanos() / 1_000_000).unwrap();
        assert_eq!(r["timestamp"].as_i64().unwrap(), millis);
        // Keyed by the agent, so an agent's events share a partition, in order.
        match &e.agent {
            Some(a) => {
                assert_eq!(r["key"], a.id.as_str());
                let p = partition_of_agent
                    .entry(a.id.clone())
                    .or_insert_with(|| r["partition"].clone());
                assert_eq!(*p, r["partition"], "{}", a.id);
            }
            None => assert_eq!(r["key"], e.body.kind()),
        }
    }
    // Within a partition, offsets follow the events' order.
    for p in 0..broker.partitions {
        let mut in_partition: Vec<(i64, i64)> = got
            .iter()
            .filter(|r| r["partition"] == p)
            .map(|r| {
                let e = rampart_events::Event::from_json(r["value"].as_str().unwrap()).unwrap();
                (r["offset"].as_i64().unwrap(), e.seq)
            })
            .collect();
        in_partition.sort_unstable();
        assert!(
            in_partition.windows(2).all(|w| w[0].1 < w[1].1),
            "partition {p}: {in_partition:?}"
        );
    }
    let d = destination(&s, "no-topic").await;
    assert!(
        d["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("topic nowhere: not on the cluster")),
        "{d}"
    );
    // Bad definitions are refused, naming the field.
    for (sink, says) in [
        (
            json!({"kind": "kafka", "brokers": [], "topic": "t"}),
            "sink.brokers",
        ),
        (
            json!({"kind": "kafka", "brokers": ["k:9092"], "topic": "a/b"}),
            "sink.topic",
        ),
        (
            json!({"kind": "kafka", "brokers": ["k"], "topic": "t"}),
            "sink.brokers",
        ),
    ] {
        let (st, v) = s.put_destination("bad", json!({ "sink": sink })).await;
        assert_eq!(st, 400, "{v}");
        assert!(v.to_string().contains(says), "{says}: {v}");
    }
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_takes_one_record_per_event_sqlite() {
    bounded(kafka_takes_one_record_per_event(Db::Sqlite)).await;
}
