use std::time::Duration;

use rampart_agent::AgentError;
use rampart_pki::Ca;
use time::OffsetDateTime;
use tokio::io::AsyncReadExt;
use x509_parser::prelude::FromDer;

use super::harness::{Db, PASSPHRASE, TestAgent, TestServer, chain_text, mtls_client};
use crate::server_test;

fn agent_url(s: &TestServer) -> String {
    format!(
        "https://127.0.0.1:{}/agent/v1/heartbeat",
        s.config.agent_listen.port()
    )
}

/// Posts a heartbeat; `Err` carries the connection-level failure text.
async fn beat(client: &reqwest::Client, url: &str) -> Result<u16, String> {
    client
        .post(url)
        .json(&serde_json::json!({"state": "idle", "spooled_runs": 0, "agent_version": "t"}))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| chain_text(&e))
}

/// Asserts that every request through a fresh `make()` client is refused at the transport
/// level, and that the refusal gives a reason `reason` accepts within a few attempts.
///
/// A TLS 1.3 client finishes its side of the handshake before the server has checked the
/// client's certificate, so the server's alert races the first request: usually the request
/// fails with the alert, but sometimes hyper sees the connection close first and reports only
/// "operation was canceled: connection was not ready" (seen in CI). Each attempt opens a new
/// connection.
async fn refused(
    make: impl Fn() -> reqwest::Client,
    url: &str,
    reason: impl Fn(&str) -> bool,
) -> String {
    let mut vague = Vec::new();
    for _ in 0..5 {
        match beat(&make(), url).await {
            Ok(status) => panic!("request accepted with status {status}"),
            Err(e) if reason(&e) => return e,
            Err(e) => vague.push(e),
        }
    }
    panic!("the refusal never gave its reason: {vague:?}");
}

/// A key (PEM) and a CSR for it.
fn key_and_csr() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    (key.serialize_pem(), csr)
}

async fn handshake_refuses_missing_foreign_expired_and_revoked(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let a = TestAgent::enrol(&s, &s.token("web", 1).await)
        .await
        .unwrap();
    let chain = std::fs::read_to_string(a.state.root().join("agent-cert.pem")).unwrap();
    let key = std::fs::read_to_string(a.state.root().join("agent-key.pem")).unwrap();
    let url = agent_url(&s);

    let good = mtls_client(&s.root_pem, Some((&chain, &key)));
    assert_eq!(beat(&good, &url).await, Ok(200));

    // No certificate at all.
    refused(
        || mtls_client(&s.root_pem, None),
        &url,
        |err| err.contains("CertificateRequired") || err.to_lowercase().contains("certificate"),
    )
    .await;

    // A certificate from another CA (same agent id, valid dates).
    let (other, _, _) = Ca::create(PASSPHRASE, OffsetDateTime::now_utc()).unwrap();
    let (k, c) = key_and_csr();
    let foreign = other
        .issue_agent(&c, &a.id, OffsetDateTime::now_utc())
        .unwrap();
    refused(
        || mtls_client(&s.root_pem, Some((&foreign.chain_pem, &k))),
        &url,
        |err| err.contains("UnknownCA") || err.contains("BadCertificate") || err.contains("alert"),
    )
    .await;

    // A certificate from the right CA that expired (issued two days ago).
    let (ca, _) = s.ca().await;
    let (k, c) = key_and_csr();
    let old = ca
        .issue_agent(
            &c,
            &a.id,
            OffsetDateTime::now_utc() - time::Duration::days(2),
        )
        .unwrap();
    refused(
        || mtls_client(&s.root_pem, Some((&old.chain_pem, &k))),
        &url,
        |err| err.contains("Expired") || err.contains("alert"),
    )
    .await;

    // Revocation: the kept-alive connection gets 403 on its next request, a new handshake is
    // refused — no restart in between. (Beat first so the pooled connection is fresh, not one
    // the server is about to close for idleness.)
    assert_eq!(beat(&good, &url).await, Ok(200));
    let (st, v) = s
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/agents/{}/revoke", a.id),
            Some(serde_json::json!({})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["serials"].as_array().unwrap().len(), 1);
    assert_eq!(beat(&good, &url).await, Ok(403));
    refused(
        || mtls_client(&s.root_pem, Some((&chain, &key))),
        &url,
        |err| err.contains("Revoked"),
    )
    .await;
    // The agent runtime knows it was revoked at once, whichever way the refused handshake
    // reached its HTTP client (the alert, or a connection closed before the request): it asks
    // the CRL when the agent port fails.
    for _ in 0..3 {
        match a.run_once().await {
            Err(AgentError::Revoked { .. }) => {}
            other => panic!("expected the agent to know it was revoked, got {other:?}"),
        }
    }
    // The CRL lists the serial.
    let der = s
        .http
        .get(s.url("/api/v1/ca/crl.der"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(&der).unwrap();
    let serials: Vec<String> = crl
        .iter_revoked_certificates()
        .map(|r| hex::encode(r.raw_serial()))
        .collect();
    assert_eq!(serials, [v["serials"][0].as_str().unwrap()]);
    s.finish().await;
}
server_test!(handshake_refuses_missing_foreign_expired_and_revoked);

/// A revocation made through one replica reaches another sharing the database within its
/// refresh interval, without a restart.
async fn revocation_reaches_other_replicas(db: Db) {
    let Some(s) =
        TestServer::start_with(db, |c| c.revocation_refresh = Duration::from_millis(200)).await
    else {
        return;
    };
    let mut cfg2 = s.config.clone();
    cfg2.listen = "127.0.0.1:0".parse().unwrap();
    cfg2.agent_listen = "127.0.0.1:0".parse().unwrap();
    if cfg2.database_url.is_none() {
        // Two SQLite servers on one file is not a supported deployment; replicas need PostgreSQL.
        s.finish().await;
        return;
    }
    let replica = rampart_server::RunningServer::start(cfg2).await.unwrap();
    let a = TestAgent::enrol(&s, &s.token("web", 1).await)
        .await
        .unwrap();
    let chain = std::fs::read_to_string(a.state.root().join("agent-cert.pem")).unwrap();
    let key = std::fs::read_to_string(a.state.root().join("agent-key.pem")).unwrap();
    let url2 = format!(
        "https://127.0.0.1:{}/agent/v1/heartbeat",
        replica.agent_addr.port()
    );
    assert_eq!(
        beat(&mtls_client(&s.root_pem, Some((&chain, &key))), &url2).await,
        Ok(200)
    );
    s.call(
        reqwest::Method::POST,
        &format!("/api/v1/agents/{}/revoke", a.id),
        Some(serde_json::json!({})),
    )
    .await;
    let mut refused = false;
    for _ in 0..50 {
        if beat(&mtls_client(&s.root_pem, Some((&chain, &key))), &url2)
            .await
            .is_err()
        {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        refused,
        "the replica refused the revoked certificate within 5 s"
    );
    replica.shutdown().await;
    s.finish().await;
}
server_test!(revocation_reaches_other_replicas);

async fn silent_clients_are_cut_off(db: Db) {
    let Some(s) = TestServer::start_with(db, |c| {
        c.handshake_timeout = Duration::from_millis(500);
        c.header_timeout = Duration::from_millis(500);
    })
    .await
    else {
        return;
    };
    // TCP connected, no TLS ClientHello: closed after the handshake timeout.
    let mut tcp = tokio::net::TcpStream::connect(s.config.agent_listen)
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("closed by the server");
    assert_eq!(n.unwrap_or(0), 0);
    // TLS done, no request headers: closed after the header-read timeout.
    let client = super::harness::http_client(&s.root_pem);
    // Warm a connection with a real request, then stay silent on a raw TLS connection.
    assert!(
        client
            .get(s.url("/api/v1/health"))
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let mut tls = super::harness::raw_tls(&s).await;
    let started = std::time::Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf))
        .await
        .expect("closed by the server");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    s.finish().await;
}
server_test!(silent_clients_are_cut_off);

/// A body trickled a byte at a time is cut off once it falls behind the minimum rate (after the
/// grace period), with 408, instead of holding the connection and a handler indefinitely.
async fn trickled_bodies_are_cut_off(db: Db) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(s) = TestServer::start_with(db, |c| {
        c.body_pace = rampart_server::pace::BodyPace {
            total: Duration::from_secs(20),
            grace: Duration::from_secs(1),
            min_rate: 1000,
        };
    })
    .await
    else {
        return;
    };
    let tls = super::harness::raw_tls(&s).await;
    let (mut rd, mut wr) = tokio::io::split(tls);
    // Read the answer while writing, so it is never lost to a reset.
    let reader = tokio::spawn(async move {
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&answer).contains("body_too_slow") {
            match tokio::time::timeout(Duration::from_secs(15), rd.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        String::from_utf8_lossy(&answer).to_string()
    });
    let started = std::time::Instant::now();
    wr.write_all(
        b"POST /api/v1/enrol HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
    )
    .await
    .unwrap();
    while !reader.is_finished() && started.elapsed() < Duration::from_secs(15) {
        if wr.write_all(b" ").await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let answer = reader.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    // Cut soon after the grace period, not at the 20 s total.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    s.finish().await;
}
server_test!(trickled_bodies_are_cut_off);
