//! Signed webhooks: one `POST` per event, HMAC-SHA256 over a timestamp and the body.

use std::time::Duration;

use rampart_events::Event;
use time::OffsetDateTime;

use super::{Pending, Sent, error_chain};
use crate::app::App;

/// Requests in flight to one webhook.
const IN_FLIGHT: usize = 8;

/// A webhook destination's signing secret. Derived, never stored: HMAC-SHA256 keyed with the
/// server's passphrase (which every replica holds) over the installation (its root CA's
/// fingerprint), the destination's name and the secret's generation. A copy of the database
/// alone cannot sign; a rotation raises the generation.
pub fn secret(app: &App, name: &str, generation: u32) -> String {
    use hmac::Mac;
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&app.config.passphrase)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(b"rampart webhook secret v1\0");
    mac.update(app.ca().root_fingerprint().as_bytes());
    mac.update(b"\0");
    mac.update(name.as_bytes());
    mac.update(b"\0");
    mac.update(generation.to_string().as_bytes());
    format!("whsec_{}", hex::encode(mac.finalize().into_bytes()))
}

/// Sends each event in its own request, a few at a time.
pub(super) async fn send(
    app: &App,
    url: &str,
    secret: &str,
    timeout: Duration,
    batch: Vec<Pending>,
) -> Vec<Sent> {
    use futures_util::StreamExt;
    futures_util::stream::iter(batch)
        .map(|p| async move {
            let r = post(app, url, secret, timeout, &p.event).await;
            (p.seq, p.attempts, r)
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await
}

/// One signed POST; a 2xx answer is an acknowledgement, anything else a failure to retry.
async fn post(
    app: &App,
    url: &str,
    secret: &str,
    timeout: Duration,
    e: &Event,
) -> Result<(), String> {
    let body = e.to_json();
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let signature = rampart_events::sign::signature(secret.as_bytes(), now, body.as_bytes());
    let r = app
        .events_http
        .post(url)
        .timeout(timeout)
        .header("content-type", "application/json")
        .header(rampart_events::sign::HEADER, signature)
        .header("x-rampart-event-id", &e.id)
        .header("x-rampart-event-kind", e.body.kind())
        .body(body)
        .send()
        .await
        .map_err(|err| format!("{url}: {}", error_chain(&err)))?;
    let status = r.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{url}: HTTP {}", status.as_u16()))
    }
}
