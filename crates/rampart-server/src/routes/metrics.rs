//! `GET /metrics` (the layer that times every request for it is `observe`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::error::ApiError;
use crate::metrics::{OPENMETRICS, PROMETHEUS_TEXT};

/// Every metric: OpenMetrics when the client accepts it (Prometheus asks for it first), else
/// the Prometheus text format.
pub(crate) async fn metrics(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let openmetrics = accepts_openmetrics(&headers);
    let body = crate::metrics::scrape(&app, openmetrics).await?;
    let media = if openmetrics {
        OPENMETRICS
    } else {
        PROMETHEUS_TEXT
    };
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(media))],
        body,
    )
        .into_response())
}

/// Whether an `Accept` header lists `application/openmetrics-text` with a weight above zero.
fn accepts_openmetrics(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            if !media.eq_ignore_ascii_case("application/openmetrics-text") {
                return false;
            }
            // q=0 means "not acceptable".
            !parts.any(|p| {
                p.split_once('=').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("q") && v.trim().parse::<f32>() == Ok(0.0)
                })
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn openmetrics_only_when_asked_for() {
        // What Prometheus 2.x sends.
        assert!(accepts_openmetrics(&accept(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        )));
        assert!(!accepts_openmetrics(&accept("text/plain;version=0.0.4")));
        assert!(!accepts_openmetrics(&accept("*/*")));
        assert!(!accepts_openmetrics(&HeaderMap::new()));
        assert!(!accepts_openmetrics(&accept(
            "application/openmetrics-text; q=0, text/plain"
        )));
    }
}
