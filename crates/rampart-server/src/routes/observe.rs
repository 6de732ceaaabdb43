//! What every request leaves behind for operators: a request id (the client's or proxy's
//! `X-Request-Id` when it is a sane token, else a new UUIDv7) echoed in the response and
//! carried by every log line written while the request is served, one access line, and its
//! duration in the metrics by route template and status.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::app::App;

/// The header a request id travels in, both ways.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id to use for a request: the one it brought when that is 1 to 64 characters of
/// letters, digits, `.`, `_` and `-` (a load balancer's id joins our lines to its own), else
/// a new time-ordered UUID. Anything else could forge log structure or flood the logs.
pub(crate) fn request_id(given: Option<&HeaderValue>) -> String {
    given
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned)
}

pub(crate) async fn layer(app: Arc<App>, port: &'static str, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(req.headers().get(&REQUEST_ID));
    let method = req.method().clone();
    // Templates only, never the raw path: bounded metrics, and no secret in a path is logged.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    // At error level so that the span is enabled whatever the log filter: a warning logged
    // while serving the request must carry its id even when info lines are filtered out.
    let span = tracing::error_span!("request", id = %id, port, method = %method, route = %route);
    let mut response = next.run(req).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    app.metrics
        .http_request(port, &method, &route, status, seconds);
    span.in_scope(|| {
        let ms = seconds * 1000.0;
        // Agents heartbeat every minute: their lines only when debugging.
        if port == "agent" && status < 400 {
            tracing::debug!(status, ms, "answered");
        } else {
            tracing::info!(status, ms, "answered");
        }
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_request_id_is_kept_anything_else_replaced() {
        let v = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(request_id(Some(&v("lb-7f3a.92_x"))), "lb-7f3a.92_x");
        for bad in ["", "a b", "x\"}", &"a".repeat(65), "é"] {
            let Ok(h) = HeaderValue::from_str(bad) else {
                continue;
            };
            let id = request_id(Some(&h));
            assert_ne!(id, bad);
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        }
        let fresh = request_id(None);
        assert_eq!(uuid::Uuid::parse_str(&fresh).unwrap().get_version_num(), 7);
    }
}
