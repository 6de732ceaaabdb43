//! Splunk HTTP Event Collector destinations: a batch's envelopes back to back in one `POST`
//! to `/services/collector/event`, authenticated with `Authorization: Splunk TOKEN`.
//!
//! The collector answers `{"text":"Success","code":0}`; a refusal names its code, and an event
//! it could not read by its position (`invalid-event-number`): the events before it were
//! indexed and count as delivered, that one and those after it are retried (and the bad one
//! ends as a dead letter with the collector's reason).

use std::time::Duration;

use serde::Deserialize;

use super::{Pending, Sent, all_failed, error_chain};

/// The collector path events are posted to.
pub(crate) const EVENT_PATH: &str = "/services/collector/event";

/// Where and how.
pub(super) struct Target<'a> {
    pub url: &'a str,
    pub token: &'a str,
    pub index: Option<&'a str>,
    pub host: &'a str,
    pub timeout: Duration,
}

/// The collector's answer.
#[derive(Debug, Deserialize)]
struct Answer {
    #[serde(default)]
    text: String,
    #[serde(default)]
    code: Option<i64>,
    #[serde(rename = "invalid-event-number", default)]
    invalid_event_number: Option<usize>,
}

/// The endpoint for a destination's base URL (a URL already ending in the path is kept).
pub(crate) fn endpoint(url: &str) -> String {
    let base = url.trim_end_matches('/');
    if base.ends_with(EVENT_PATH) {
        base.to_owned()
    } else {
        format!("{base}{EVENT_PATH}")
    }
}

/// Sends a batch in one request; every event's outcome.
pub(super) async fn send(
    client: &reqwest::Client,
    t: &Target<'_>,
    batch: Vec<Pending>,
) -> Vec<Sent> {
    let mut body = String::new();
    for p in &batch {
        body.push_str(&rampart_events::wire::hec(&p.event, t.host, t.index));
        body.push('\n');
    }
    let url = endpoint(t.url);
    let response = client
        .post(&url)
        .timeout(t.timeout)
        .header("authorization", format!("Splunk {}", t.token))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    let (status, text) = match response {
        Err(e) => return all_failed(batch, &format!("{url}: {}", error_chain(&e))),
        Ok(r) => {
            let status = r.status();
            // A collector's answer is a line of JSON; read at most 64 KiB of whatever it is.
            let text = match tokio::time::timeout(t.timeout, r.bytes()).await {
                Ok(Ok(b)) => String::from_utf8_lossy(&b[..b.len().min(65536)]).into_owned(),
                _ => String::new(),
            };
            (status, text)
        }
    };
    let answer: Option<Answer> = serde_json::from_str(&text).ok();
    if status.is_success() {
        return batch
            .into_iter()
            .map(|p| (p.seq, p.attempts, Ok(())))
            .collect();
    }
    let reason = match &answer {
        Some(a) => format!(
            "{url}: HTTP {}: {} (code {})",
            status.as_u16(),
            a.text,
            a.code.map_or_else(|| "none".to_owned(), |c| c.to_string())
        ),
        None => format!("{url}: HTTP {}", status.as_u16()),
    };
    match answer.and_then(|a| a.invalid_event_number) {
        // The events before the bad one were indexed.
        Some(bad) if bad < batch.len() => batch
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let r = match i.cmp(&bad) {
                    std::cmp::Ordering::Less => Ok(()),
                    std::cmp::Ordering::Equal => Err(reason.clone()),
                    std::cmp::Ordering::Greater => Err(format!(
                        "{url}: not indexed: after event {bad} of the batch, which was refused"
                    )),
                };
                (p.seq, p.attempts, r)
            })
            .collect(),
        _ => all_failed(batch, &reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_under_the_base_url() {
        assert_eq!(
            endpoint("https://splunk:8088"),
            "https://splunk:8088/services/collector/event"
        );
        assert_eq!(
            endpoint("https://splunk:8088/"),
            "https://splunk:8088/services/collector/event"
        );
        assert_eq!(
            endpoint("https://h/services/collector/event"),
            "https://h/services/collector/event"
        );
    }
}
