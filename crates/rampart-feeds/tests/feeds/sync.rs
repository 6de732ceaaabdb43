//! Feed fetching against a real HTTP server on loopback that serves the fixture files (the
//! public feeds cannot be reached from tests): conditional GET, retries, garbage, health.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rampart_feeds::sync::{FetchOptions, SyncOutcome, sync_due, sync_feed};
use rampart_store::{NewIntelFeed, Store};

use crate::harness::read;

const NOW: i64 = 1_780_000_000;

#[derive(Clone, Default)]
struct Hits {
    csv: Arc<AtomicUsize>,
    flaky: Arc<AtomicUsize>,
    garbage: Arc<AtomicUsize>,
}

async fn csv(State(hits): State<Hits>, headers: HeaderMap) -> Response {
    hits.csv.fetch_add(1, Ordering::SeqCst);
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some("\"v1\"")
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    (
        [
            (header::ETAG, "\"v1\""),
            (header::LAST_MODIFIED, "Thu, 26 Feb 2026 12:05:20 GMT"),
        ],
        read("abusech/urlhaus_csv_recent.excerpt.csv"),
    )
        .into_response()
}

async fn flaky(State(hits): State<Hits>) -> Response {
    // Two 503s, then the feed.
    if hits.flaky.fetch_add(1, Ordering::SeqCst) < 2 {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    read("abusech/feodo_ipblocklist_csv.excerpt_2021.csv").into_response()
}

async fn garbage(State(hits): State<Hits>) -> Response {
    hits.garbage.fetch_add(1, Ordering::SeqCst);
    "<html><body>Rate limited, come back later</body></html>\n".into_response()
}

async fn serve() -> (String, Hits) {
    let hits = Hits::default();
    let app = axum::Router::new()
        .route("/csv_recent/", get(csv))
        .route("/ipblocklist.csv", get(flaky))
        .route("/garbage.csv", get(garbage))
        .route("/gone", get(|| async { StatusCode::NOT_FOUND }))
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), hits)
}

async fn feed(store: &Store, name: &str, format: &str, url: String) -> rampart_store::IntelFeed {
    store
        .intel_put_feed(
            &NewIntelFeed {
                name: name.into(),
                format: format.into(),
                url: Some(url),
                interval_secs: 3600,
                reliability: 80,
                tlp: "clear".into(),
                terms: Some("https://urlhaus.abuse.ch/api/".into()),
                ttl_secs: 30 * 86_400,
            },
            NOW,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

fn quick() -> FetchOptions {
    FetchOptions {
        timeout: Duration::from_secs(10),
        retries: 3,
        backoff: Duration::from_millis(10),
        ..FetchOptions::default()
    }
}

async fn reload(store: &Store, name: &str) -> rampart_store::IntelFeed {
    store
        .intel_feed(name)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("feed {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_get_retries_garbage_and_health() {
    let t = rampart_store::testing::sqlite().await;
    let store = &t.store;
    let (base, hits) = serve().await;
    let client = reqwest::Client::new();

    // First fetch: 200 with validators; ingested; health recorded.
    let urlhaus = feed(
        store,
        "urlhaus",
        "urlhaus-csv",
        format!("{base}/csv_recent/"),
    )
    .await;
    match sync_feed(store, &client, &urlhaus, NOW, &quick(), None)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    {
        SyncOutcome::Ingested { report, bytes } => {
            assert_eq!(report.stored.new_indicators, 10);
            assert_eq!(bytes, 2518);
        }
        other => panic!("{other:?}"),
    }
    let urlhaus = reload(store, "urlhaus").await;
    assert_eq!(urlhaus.etag.as_deref(), Some("\"v1\""));
    assert_eq!(urlhaus.last_success, Some(NOW));
    assert_eq!(urlhaus.last_records, Some(10));
    // Second fetch sends If-None-Match and gets 304: nothing downloaded.
    let outcome = sync_feed(store, &client, &urlhaus, NOW + 3600, &quick(), None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(outcome, SyncOutcome::NotModified), "{outcome:?}");
    assert_eq!(hits.csv.load(Ordering::SeqCst), 2);
    assert_eq!(
        reload(store, "urlhaus").await.last_success,
        Some(NOW + 3600)
    );

    // 503, 503, then 200: retried with backoff, one success.
    let feodo = feed(
        store,
        "feodo",
        "feodo-csv",
        format!("{base}/ipblocklist.csv"),
    )
    .await;
    match sync_feed(store, &client, &feodo, NOW, &quick(), None)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    {
        SyncOutcome::Ingested { report, .. } => assert_eq!(report.parse.records, 6),
        other => panic!("{other:?}"),
    }
    assert_eq!(hits.flaky.load(Ordering::SeqCst), 3);
    assert_eq!(reload(store, "feodo").await.failures, 0);

    // An HTML page where the CSV should be: a failure, validators not kept, nothing removed.
    store
        .intel_put_feed(
            &NewIntelFeed {
                name: "urlhaus".into(),
                format: "urlhaus-csv".into(),
                url: Some(format!("{base}/garbage.csv")),
                interval_secs: 3600,
                reliability: 80,
                tlp: "clear".into(),
                terms: None,
                ttl_secs: 30 * 86_400,
            },
            NOW,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut urlhaus = reload(store, "urlhaus").await;
    urlhaus.etag = None;
    match sync_feed(store, &client, &urlhaus, NOW + 7200, &quick(), None)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    {
        SyncOutcome::Failed { error } => assert!(error.contains("no usable row"), "{error}"),
        other => panic!("{other:?}"),
    }
    let health = reload(store, "urlhaus").await;
    assert_eq!(health.failures, 1);
    assert!(
        health
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("previous indicators kept")
    );
    assert_eq!(health.last_success, Some(NOW + 3600));
    let live: i64 = store
        .intel_counts(NOW + 7200)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .map(|c| c.1)
        .sum();
    assert_eq!(
        live,
        10 + 12,
        "URLhaus's 10 URLs and Feodo's 12 values are all still there"
    );

    // A 404 is not retried.
    let gone = feed(store, "gone", "plain", format!("{base}/gone")).await;
    match sync_feed(store, &client, &gone, NOW, &quick(), None)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    {
        SyncOutcome::Failed { error } => assert!(error.contains("404"), "{error}"),
        other => panic!("{other:?}"),
    }

    // sync_due at +2 h 1 min: Feodo's interval has passed, "gone" is past its 2-minute failure
    // backoff, URLhaus failed only a minute ago.
    let due = sync_due(store, &client, NOW + 7260, false, &quick(), None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = due.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["feodo", "gone"]);
    // A minute later only URLhaus is due ("gone" now waits 4 minutes after its second failure).
    let due = sync_due(store, &client, NOW + 7320, false, &quick(), None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = due.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["urlhaus"]);
    assert_eq!(reload(store, "gone").await.failures, 2);
    t.finish().await;
}
