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

use rampart_store::{IntelFeed, NewIntelFeed, Store};

use crate::ingest::{IngestError, IngestReport, LiveIndex, ingest};
use crate::parse::{Format, Limits};

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

/// TLP 2.0 markings a feed may carry.
pub const TLPS: [&str; 5] = ["clear", "green", "amber", "amber+strict", "red"];

/// Shortest fetch interval accepted: public feeds ask not to be polled more often.
pub const MIN_INTERVAL_SECS: i64 = 60;

/// A feed definition that cannot be stored: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidFeed {
    /// The field at fault (`name`, `format`, `url`, `interval`, `reliability`, `tlp`, `ttl`).
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// Checks and normalises a feed definition (TLP lowercased), so the CLI and the API accept
/// exactly the same feeds.
pub fn validate(feed: &mut NewIntelFeed) -> Result<(), InvalidFeed> {
    let bad = |field, reason: String| Err(InvalidFeed { field, reason });
    if let Err(e) = rampart_core::names::check_name("feed", &feed.name) {
        return bad("name", e);
    }
    if let Err(e) = feed.format.parse::<Format>() {
        return bad("format", e.to_string());
    }
    if !(0..=100).contains(&feed.reliability) {
        return bad(
            "reliability",
            format!("{}: must be 0–100", feed.reliability),
        );
    }
    feed.tlp = feed.tlp.to_ascii_lowercase();
    if !TLPS.contains(&feed.tlp.as_str()) {
        return bad(
            "tlp",
            format!(
                "{:?}: must be one of clear, green, amber, amber+strict, red",
                feed.tlp
            ),
        );
    }
    if let Some(u) = &feed.url {
        // Parsed as the fetch will parse it, so a URL that cannot be fetched is refused here
        // rather than failing at every sync.
        // The pattern the API document states, then the parse the fetch will make (which the
        // pattern's URLs all pass: it is written so).
        let parsed = url::Url::parse(u);
        let fetchable = feed_url_regex().is_match(u) && parsed.is_ok();
        if !fetchable {
            let why = parsed.err().map(|e| format!(" ({e})")).unwrap_or_default();
            return bad(
                "url",
                format!(
                    "{u:?}: must be an http:// or https:// URL naming a host name or an IPv4 \
                     address, with an optional port and ASCII path{why}"
                ),
            );
        }
    }
    if feed.interval_secs < MIN_INTERVAL_SECS {
        return bad(
            "interval",
            format!(
                "{} s: at least {MIN_INTERVAL_SECS} seconds (feeds ask not to be polled more often)",
                feed.interval_secs
            ),
        );
    }
    if feed.ttl_secs <= 0 {
        return bad("ttl", format!("{} s: must be positive", feed.ttl_secs));
    }
    Ok(())
}

/// What a feed URL may be, as a regular expression both JSON Schema (ECMA 262) and the
/// `regex` crate read the same way: `http` or `https`; a host name whose last label starts with
/// a letter (so it is never read as a number) or a dotted-quad IPv4 address; an optional port
/// (0–65535); then RFC 3986 characters, `%` only in escapes. No user information (credentials
/// do not belong in a URL that is logged) and no IPv6 literal (use a name).
pub const FEED_URL_PATTERN: &str = concat!(
    "^https?://",
    "(([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?",
    "|((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]))",
    "(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}|0))?",
    "([/?#](%[0-9A-Fa-f]{2}|[A-Za-z0-9._~:/?#\\[\\]@!$&'()*+,;=-])*)?$",
);

fn feed_url_regex() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        // A constant pattern, checked by the tests; a failure here is a programming error.
        #[allow(clippy::expect_used)]
        regex::Regex::new(FEED_URL_PATTERN).expect("FEED_URL_PATTERN compiles")
    })
}

/// Whether a feed is due at `now`: enabled, has a URL, and its interval has passed since the
/// last attempt — or, after failures, a backoff of 1 min × 2^failures (at most the interval).
pub fn is_due(feed: &IntelFeed, now: i64) -> bool {
    if !feed.enabled || feed.url.is_none() {
        return false;
    }
    let Some(last) = feed.last_attempt else {
        return true;
    };
    let wait = if feed.failures > 0 {
        let backoff = 60i64.saturating_mul(1i64 << feed.failures.clamp(0, 20));
        backoff.min(feed.interval_secs)
    } else {
        feed.interval_secs
    };
    now >= last.saturating_add(wait)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(last_attempt: Option<i64>, failures: i64) -> IntelFeed {
        IntelFeed {
            id: 1,
            name: "f".into(),
            format: "plain".into(),
            url: Some("http://127.0.0.1/".into()),
            interval_secs: 3600,
            reliability: 50,
            tlp: "clear".into(),
            terms: None,
            ttl_secs: 86_400,
            enabled: true,
            etag: None,
            last_modified: None,
            last_attempt,
            last_success: None,
            last_error: None,
            failures,
            last_records: None,
            last_indicators: None,
            last_problems: None,
            created_at: 0,
        }
    }

    #[test]
    fn due_after_the_interval_or_the_failure_backoff() {
        assert!(is_due(&feed(None, 0), 0));
        assert!(!is_due(&feed(Some(1000), 0), 1000 + 3599));
        assert!(is_due(&feed(Some(1000), 0), 1000 + 3600));
        // One failure: 2 minutes; three: 8 minutes; many: capped at the interval.
        assert!(!is_due(&feed(Some(1000), 1), 1000 + 119));
        assert!(is_due(&feed(Some(1000), 1), 1000 + 120));
        assert!(is_due(&feed(Some(1000), 3), 1000 + 480));
        assert!(is_due(&feed(Some(1000), 30), 1000 + 3600));
        assert!(!is_due(&feed(Some(1000), 30), 1000 + 3599));
        let mut no_url = feed(None, 0);
        no_url.url = None;
        assert!(!is_due(&no_url, 0));
    }

    #[test]
    fn a_feed_url_must_be_a_fetchable_uri() {
        let with_url = |u: &str| {
            let mut f = NewIntelFeed {
                name: "f".into(),
                format: "plain".into(),
                url: Some(u.into()),
                interval_secs: 3600,
                reliability: 50,
                tlp: "clear".into(),
                terms: None,
                ttl_secs: 86_400,
            };
            validate(&mut f).map_err(|e| e.field)
        };
        for good in [
            "https://urlhaus.abuse.ch/downloads/csv_recent/",
            "http://127.0.0.1:8080/feed.txt?key=a%20b",
            "https://feeds.example:8443/misp/events?type=ip-dst#top",
        ] {
            assert_eq!(with_url(good), Ok(()), "{good}");
        }
        for bad in [
            "ftp://example.com/list",
            "https://",
            "https://\u{cf}",
            "https://example.com/a b",
            "https://example.com/%zz",
            "https://example.com:99999/",
            "HTTPS://example.com/",
            "https://[2001:db8::1]/list",
            "https://user:secret@example.com/",
            "https://a.123/",
            "http://256.1.1.1/",
        ] {
            assert_eq!(with_url(bad), Err("url"), "{bad}");
        }
    }
}
