//! Feed definitions: what a feed may be (its name, format, TLP, URL, interval) and when it is
//! due. Fetching and ingesting them is `rampart-feeds`' business, above the store.

use crate::parse::Format;
use crate::rows::{IntelFeed, NewIntelFeed};

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

/// Whether `u` has the shape [`FEED_URL_PATTERN`] allows: what the server also asks of a
/// webhook's URL, so that one rule (and one schema pattern) covers every URL an admin gives.
pub fn is_plain_http_url(u: &str) -> bool {
    feed_url_regex().is_match(u)
}

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
