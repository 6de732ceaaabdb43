//! Request bodies: JSON (optionally gzip-compressed) with errors as problem objects that say
//! where the body was wrong.

use std::io::Read;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use crate::app::App;
use crate::error::ApiError;

/// A JSON body, decompressed first when sent with `Content-Encoding: gzip`.
pub(crate) struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<App>> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &Arc<App>) -> Result<ApiJson<T>, ApiError> {
        // `application/json` or `application/…+json`, parameters allowed: a form or a text
        // body is refused before it is read (a browser form cannot post JSON to the API).
        let json_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .is_some_and(|v| {
                v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
            });
        if !json_type {
            return Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON, sent with Content-Type: application/json",
            ));
        }
        let gzip = req
            .headers()
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
        let ApiBytes(bytes) = ApiBytes::from_request(req, app).await?;
        let bytes = if gzip {
            let limit = app.config.max_body_bytes as u64;
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .take(limit + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    ApiError::bad_request("bad_gzip", format!("body is not valid gzip: {e}"))
                })?;
            if out.len() as u64 > limit {
                return Err(ApiError::new(
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("decompressed body exceeds {limit} bytes"),
                ));
            }
            Bytes::from(out)
        } else {
            bytes
        };
        // Every JSON body Rampart takes is an object; serde would also fill a struct from an
        // array (`[]` as every field's default), which no client means.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::bad_request(
                "invalid_json",
                "the body must be a JSON object",
            ));
        }
        // The plain parse first: tracking the path of every value costs as much again as the
        // parse itself (a run's upload is thousands of values), and only a refusal needs it.
        if let Ok(value) = T::deserialize(&mut serde_json::Deserializer::from_slice(&bytes)) {
            return Ok(ApiJson(value));
        }
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize(&mut de) {
            Ok(value) => Ok(ApiJson(value)),
            Err(e) => {
                // JSON Schema (and so the OpenAPI document) counts `3.0` as the integer 3;
                // serde does not. Only when the body failed is it read again with integral
                // numbers made integers, so the common case pays nothing.
                if let Some(value) = integral_retry(&bytes) {
                    return Ok(ApiJson(value));
                }
                let path = e.path().to_string();
                let inner = e.into_inner();
                Err(ApiError::bad_request(
                    "invalid_json",
                    format!(
                        "body at {path} (line {}, column {}): {inner}",
                        inner.line(),
                        inner.column()
                    ),
                ))
            }
        }
    }
}

/// `bytes` as `T` once every number with no fractional part (`3.0`, `1e3`) is an integer, or
/// `None` when it has none or still does not fit.
fn integral_retry<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    fn fix(v: &mut serde_json::Value) -> bool {
        match v {
            serde_json::Value::Number(n) if !(n.is_i64() || n.is_u64()) => {
                match n.as_f64() {
                    // Exactly representable integers only (|x| < 2^53).
                    Some(f) if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => {
                        *v = serde_json::Value::from(f as i64);
                        true
                    }
                    _ => false,
                }
            }
            // Every element is visited (no short circuit): all of them are mended.
            serde_json::Value::Array(a) => a.iter_mut().map(fix).filter(|c| *c).count() > 0,
            serde_json::Value::Object(o) => o.values_mut().map(fix).filter(|c| *c).count() > 0,
            _ => false,
        }
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if !fix(&mut value) {
        return None;
    }
    serde_json::from_value(value).ok()
}

/// A raw body (a feed file), read within the endpoint's limit and pace; a body that cannot be
/// read is a problem object with the status that says why ([`body_error`]).
pub(crate) struct ApiBytes(pub Bytes);

impl FromRequest<Arc<App>> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &Arc<App>) -> Result<ApiBytes, ApiError> {
        Bytes::from_request(req, app)
            .await
            .map(ApiBytes)
            .map_err(body_error)
    }
}

/// A body that could not be read, with the status the rejection carries: 408 when it came too
/// slowly, 413 when it is larger than the endpoint takes, 400 otherwise.
fn body_error(e: axum::extract::rejection::BytesRejection) -> ApiError {
    if crate::pace::is_too_slow(&e) {
        return ApiError::new(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            "body_too_slow",
            "the request body arrived too slowly",
        );
    }
    let status = e.status();
    let code = if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        "body_too_large"
    } else {
        "body_unreadable"
    };
    ApiError::new(status, code, e.body_text())
}

/// Refuses a request whose `Content-Length` already says it is larger than the endpoint takes,
/// before a byte of the body is read (413); a body without a length is cut at the same limit
/// while it is read ([`axum::extract::DefaultBodyLimit`]).
pub(crate) async fn early_limit(
    limit: usize,
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "{} takes a body of at most {limit} bytes; this one declares {n}",
                req.uri().path()
            ),
        )
        .into_response(),
        _ => next.run(req).await,
    }
}
