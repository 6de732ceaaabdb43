//! Every error is a problem object (RFC 9457), including the ones Rampart's handlers never see:
//! extractor rejections (a query string that does not parse, a bad path segment) and the
//! router's own answers (405 for a method a path does not take) come out of axum as plain text
//! or with an empty body. They are rewritten here, keeping the status and using their text as
//! the detail. Under `/taxii2/` every error becomes a TAXII error message instead
//! (`taxii::rewrite_error`).

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Longest plain-text error body carried over as the detail.
pub(crate) const DETAIL_MAX: usize = 4096;

/// The middleware: TAXII paths get TAXII errors, every other path problem objects.
pub(crate) async fn layer(req: Request, next: Next) -> Response {
    let taxii = req.uri().path().starts_with("/taxii2/");
    let response = next.run(req).await;
    if taxii {
        super::taxii::rewrite_error(response).await
    } else {
        rewrite(response).await
    }
}

/// The machine code of an error nobody gave one.
pub(crate) fn code_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        404 => "not_found",
        405 => "method_not_allowed",
        409 => "conflict",
        408 => "request_timeout",
        413 => "body_too_large",
        415 => "unsupported_media_type",
        422 => "unprocessable",
        _ if status.is_server_error() => "internal",
        _ => "refused",
    }
}

async fn rewrite(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = content_type_of(&response);
    if content_type.starts_with("application/problem+json")
        || content_type.starts_with("application/taxii+json")
    {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, DETAIL_MAX)
        .await
        .unwrap_or_default();
    let mut rewritten =
        ApiError::new(status, code_of(status), detail_of(status, &bytes)).into_response();
    carry_headers(&parts.headers, &mut rewritten);
    rewritten
}

/// A response's media type, lower-cased ("" when it has none).
pub(crate) fn content_type_of(response: &Response) -> String {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// The detail of an error whose body is plain text: the text, else the status's reason.
pub(crate) fn detail_of(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body).trim().to_owned();
    if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_owned()
    } else {
        text
    }
}

/// Keeps what the original error said about the exchange (`Allow` on a 405, `Retry-After`,
/// `WWW-Authenticate`, …) on its rewrite, unless the rewrite set the header itself; the
/// rewrite brings its own type and length.
pub(crate) fn carry_headers(from: &axum::http::HeaderMap, to: &mut Response) {
    for (name, value) in from.iter() {
        if name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
            && !to.headers().contains_key(name)
        {
            to.headers_mut().insert(name.clone(), value.clone());
        }
    }
}
