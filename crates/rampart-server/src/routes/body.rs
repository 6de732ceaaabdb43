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
        let gzip = req
            .headers()
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
        let bytes = Bytes::from_request(req, app)
            .await
            .map_err(|e| ApiError::bad_request("body_unreadable", e.body_text()))?;
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
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            ApiError::bad_request(
                "invalid_json",
                format!(
                    "body at {path} (line {}, column {}): {inner}",
                    inner.line(),
                    inner.column()
                ),
            )
        })?;
        Ok(ApiJson(value))
    }
}
