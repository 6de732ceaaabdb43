//! Slack and Discord webhooks: one message per event, in order, one at a time (both rate
//! limit a webhook to about one message a second; a burst beyond that is answered 429).

use std::time::Duration;

use super::{Pending, Sent, error_chain};

/// Which chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chat {
    Slack,
    Discord,
}

/// Where and how.
pub(super) struct Target<'a> {
    pub chat: Chat,
    /// The webhook's URL (the destination's sealed credential).
    pub url: &'a str,
    /// The dashboard's base URL, for links.
    pub dashboard: &'a str,
    pub timeout: Duration,
}

/// Posts each event in turn. A refusal to rate (429) or a failure to reach the webhook stops
/// the batch: the rest fail with the same reason and are retried after their backoff, in
/// order.
pub(super) async fn send(
    client: &reqwest::Client,
    t: &Target<'_>,
    batch: Vec<Pending>,
) -> Vec<Sent> {
    let mut out = Vec::with_capacity(batch.len());
    let mut stop: Option<String> = None;
    for p in batch {
        if let Some(why) = &stop {
            out.push((p.seq, p.attempts, Err(why.clone())));
            continue;
        }
        let body = match t.chat {
            Chat::Slack => rampart_events::chat::slack(&p.event, t.dashboard),
            Chat::Discord => rampart_events::chat::discord(&p.event, t.dashboard),
        };
        let r = post(client, t, body).await;
        if let Err(Refused {
            error,
            stop_batch: true,
        }) = &r
        {
            stop = Some(error.clone());
        }
        out.push((p.seq, p.attempts, r.map_err(|e| e.error)));
    }
    out
}

struct Refused {
    error: String,
    stop_batch: bool,
}

/// A webhook's URL with its secret path left out, for errors and logs.
fn shown(url: &str) -> String {
    url::Url::parse(url).map_or_else(
        |_| "the webhook".to_owned(),
        |u| format!("{}://{}/…", u.scheme(), u.host_str().unwrap_or("")),
    )
}

async fn post(client: &reqwest::Client, t: &Target<'_>, body: String) -> Result<(), Refused> {
    let r = client
        .post(t.url)
        .timeout(t.timeout)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| Refused {
            // reqwest's errors name the URL: keep its secret path out of them.
            error: format!("{}: {}", shown(t.url), error_chain(&e.without_url())),
            stop_batch: true,
        })?;
    let status = r.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Slack says why in a short text (`invalid_payload`, `channel_not_found`), Discord in a
    // JSON object: either is worth keeping in the destination's health, cut short.
    let text = r.text().await.unwrap_or_default();
    let why: String = text.chars().take(200).collect();
    let mut error = format!("{}: HTTP {}", shown(t.url), status.as_u16());
    if !why.trim().is_empty() {
        error.push_str(&format!(": {}", why.trim()));
    }
    if let Some(after) = retry_after {
        error.push_str(&format!(" (retry after {after} s)"));
    }
    Err(Refused {
        error,
        stop_batch: status.as_u16() == 429 || status.is_server_error(),
    })
}
