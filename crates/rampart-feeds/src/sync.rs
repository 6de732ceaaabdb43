//! Fetching feeds: conditional GET (ETag / If-Modified-Since), timeouts, retries with
//! exponential backoff, per-feed health, and the rule that a bad download never removes what a
//! feed delivered before.
//!
//! The body is streamed to a temporary file (bounded by [`Limits::max_decompressed`]) and
//! ingested from there, so a 300 MB dump costs disk, not memory. A download that parses to no
//! usable row while rows were rejected (an HTML error page, a changed format) is a failure: its
//! validators are not kept, so the next attempt fetches in full.

use std::io::Write;
use std::time::Duration;

use rampart_intel::feeds::is_due;
use rampart_intel::{Format, Limits};
use rampart_store::{IntelFeed, Store};

use crate::ingest::{IngestError, IngestReport, LiveIndex, ingest};

/// How feeds are fetched.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Whole-request timeout (connect, headers and body).
    pub timeout: Duration,
    /// Attempts after the first, for timeouts, connection errors, 429 and 5xx.
    pub retries: u32,
    /// First backoff; doubled after each failed attempt.
    pub backoff: Duration,
    /// Parser limits (the download is capped at `max_decompressed` bytes).
    pub limits: Limits,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            timeout: Duration::from_secs(300),
            retries: 3,
            backoff: Duration::from_secs(2),
            limits: Limits::default(),
        }
    }
}

/// What one sync of one feed did.
#[derive(Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SyncOutcome {
    /// The server said 304: nothing changed.
    NotModified,
    /// Downloaded and ingested.
    Ingested {
        /// The ingest report.
        report: IngestReport,
        /// Bytes downloaded.
        bytes: u64,
    },
    /// Every attempt failed, or the content was unusable; the feed's indicators are untouched.
    Failed {
        /// Why.
        error: String,
    },
}

struct Download {
    file: tempfile::NamedTempFile,
    bytes: u64,
    etag: Option<String>,
    last_modified: Option<String>,
}

enum Fetched {
    NotModified,
    Body(Download),
}

/// A failure and whether trying again may help.
struct Attempt {
    error: String,
    retry: bool,
}

async fn fetch_once(
    client: &reqwest::Client,
    feed: &IntelFeed,
    url: &str,
    opts: &FetchOptions,
) -> Result<Fetched, Attempt> {
    let mut request = client.get(url).timeout(opts.timeout);
    if let Some(etag) = &feed.etag {
        request = request.header(reqwest::header::IF_NONE_MATCH, etag);
    }
    if let Some(lm) = &feed.last_modified {
        request = request.header(reqwest::header::IF_MODIFIED_SINCE, lm);
    }
    let mut response = request.send().await.map_err(|e| Attempt {
        error: format!("GET {url}: {e}"),
        retry: true,
    })?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(Fetched::NotModified);
    }
    if !status.is_success() {
        return Err(Attempt {
            error: format!("GET {url}: HTTP {status}"),
            retry: status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS,
        });
    }
    let header = |name: reqwest::header::HeaderName| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let etag = header(reqwest::header::ETAG);
    let last_modified = header(reqwest::header::LAST_MODIFIED);
    let local = |e: std::io::Error| Attempt {
        error: format!("temporary file: {e}"),
        retry: false,
    };
    let mut file = tempfile::NamedTempFile::new().map_err(local)?;
    let mut bytes: u64 = 0;
    loop {
        let chunk = response.chunk().await.map_err(|e| Attempt {
            error: format!("GET {url}: body: {e}"),
            retry: true,
        })?;
        let Some(chunk) = chunk else { break };
        bytes += chunk.len() as u64;
        if bytes > opts.limits.max_decompressed {
            return Err(Attempt {
                error: format!(
                    "GET {url}: body larger than {} bytes",
                    opts.limits.max_decompressed
                ),
                retry: false,
            });
        }
        file.write_all(&chunk).map_err(local)?;
    }
    file.flush().map_err(local)?;
    Ok(Fetched::Body(Download {
        file,
        bytes,
        etag,
        last_modified,
    }))
}

/// Fetches one feed now (whether due or not) and ingests it, recording the attempt in the
/// feed's health.
pub async fn sync_feed(
    store: &Store,
    client: &reqwest::Client,
    feed: &IntelFeed,
    now: i64,
    opts: &FetchOptions,
    index: Option<LiveIndex<'_>>,
) -> Result<SyncOutcome, IngestError> {
    let Some(url) = feed.url.clone() else {
        return Ok(SyncOutcome::Failed {
            error: format!("feed {} has no URL (ingest its files instead)", feed.name),
        });
    };
    let format: Format = match feed.format.parse() {
        Ok(f) => f,
        Err(e) => {
            let error = format!("feed {}: {e}", feed.name);
            store
                .intel_feed_attempt(feed.id, now, Err(&error), None, None)
                .await?;
            return Ok(SyncOutcome::Failed { error });
        }
    };
    let mut delay = opts.backoff;
    let mut attempt = 0;
    let fetched = loop {
        match fetch_once(client, feed, &url, opts).await {
            Ok(f) => break Ok(f),
            Err(a) if a.retry && attempt < opts.retries => {
                tracing::warn!(feed = %feed.name, attempt, error = %a.error, "feed fetch failed; retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
                attempt += 1;
            }
            Err(a) => break Err(a.error),
        }
    };
    let download = match fetched {
        Ok(Fetched::NotModified) => {
            store
                .intel_feed_attempt(feed.id, now, Ok(None), None, None)
                .await?;
            return Ok(SyncOutcome::NotModified);
        }
        Ok(Fetched::Body(d)) => d,
        Err(error) => {
            store
                .intel_feed_attempt(feed.id, now, Err(&error), None, None)
                .await?;
            return Ok(SyncOutcome::Failed { error });
        }
    };
    let input = match download.file.reopen() {
        Ok(f) => f,
        Err(e) => {
            let error = format!("temporary file: {e}");
            store
                .intel_feed_attempt(feed.id, now, Err(&error), None, None)
                .await?;
            return Ok(SyncOutcome::Failed { error });
        }
    };
    match ingest(
        store,
        feed,
        format,
        Box::new(input),
        opts.limits.clone(),
        now,
        index,
    )
    .await
    {
        Ok(report) if report.parse.records == 0 && report.parse.problems > 0 => {
            let first = report
                .parse
                .problem_samples
                .first()
                .map(|p| format!(" (first: {p})"))
                .unwrap_or_default();
            let error = format!(
                "no usable row in {} bytes: {} rejected{first}; previous indicators kept",
                download.bytes, report.parse.problems
            );
            store
                .intel_feed_attempt(feed.id, now, Err(&error), None, None)
                .await?;
            Ok(SyncOutcome::Failed { error })
        }
        Ok(report) => {
            let counts = (
                i64::try_from(report.parse.records).unwrap_or(i64::MAX),
                i64::try_from(report.parse.indicators).unwrap_or(i64::MAX),
                i64::try_from(report.parse.problems).unwrap_or(i64::MAX),
            );
            store
                .intel_feed_attempt(
                    feed.id,
                    now,
                    Ok(Some(counts)),
                    download.etag.as_deref(),
                    download.last_modified.as_deref(),
                )
                .await?;
            Ok(SyncOutcome::Ingested {
                report,
                bytes: download.bytes,
            })
        }
        Err(IngestError::Parse(e)) => {
            let error = format!("{e}; previous indicators kept");
            store
                .intel_feed_attempt(feed.id, now, Err(&error), None, None)
                .await?;
            Ok(SyncOutcome::Failed { error })
        }
        Err(e) => Err(e),
    }
}

/// Syncs every due feed (or every feed with a URL when `force`), one after another.
pub async fn sync_due(
    store: &Store,
    client: &reqwest::Client,
    now: i64,
    force: bool,
    opts: &FetchOptions,
    index: Option<LiveIndex<'_>>,
) -> Result<Vec<(String, SyncOutcome)>, IngestError> {
    let mut out = Vec::new();
    for feed in store.intel_feeds().await? {
        if feed.url.is_none() || !feed.enabled || !(force || is_due(&feed, now)) {
            continue;
        }
        let outcome = sync_feed(store, client, &feed, now, opts, index).await?;
        out.push((feed.name.clone(), outcome));
    }
    Ok(out)
}
