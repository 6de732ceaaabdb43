//! Signed webhooks: the receiver proves a delivery came from Rampart and is fresh.
//!
//! `X-Rampart-Signature: t=UNIX_SECONDS,v1=HEX` where `HEX` is HMAC-SHA256, keyed with the
//! destination's secret, over `UNIX_SECONDS.BODY` (the decimal timestamp, a full stop, the body
//! bytes as sent). Signing the timestamp with the body lets a receiver refuse replays older
//! than its tolerance; `v1` names the scheme so that another can be added beside it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header the signature travels in.
pub const HEADER: &str = "X-Rampart-Signature";

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The header value for a body sent at `timestamp`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(tag))
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `t=` or no `v1=`, or not numbers and hex.
    #[error("malformed signature header")]
    Malformed,
    /// The timestamp is further from now than the tolerance.
    #[error("signature timestamp {0} outside the tolerance")]
    Stale(i64),
    /// No `v1` value matches the body.
    #[error("signature does not match the body")]
    Mismatch,
}

/// Checks a header against a body, as a receiver does: the timestamp within `tolerance_secs`
/// of `now`, and one of its `v1` values the HMAC of the body (compared in constant time).
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut tags = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => timestamp = v.parse::<i64>().ok(),
            Some(("v1", v)) => tags.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            _ => {}
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed)?;
    if tags.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - t).abs() > tolerance_secs {
        return Err(SignatureError::Stale(t));
    }
    if tags
        .iter()
        .any(|tag| mac(secret, t, body).verify_slice(tag).is_ok())
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_matches_an_independent_hmac() {
        // HMAC-SHA256 of "1700000000.{}" under "key", worked out independently with Python's
        // hmac module: hmac.new(b"key", b"1700000000.{}", "sha256").hexdigest().
        assert_eq!(
            signature(b"key", 1_700_000_000, b"{}"),
            "t=1700000000,v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
    }

    #[test]
    fn a_receiver_accepts_only_the_body_signed_and_fresh() {
        let body = br#"{"id":"e1"}"#;
        let h = signature(b"s3cret", 1000, body);
        assert_eq!(verify(b"s3cret", &h, body, 1100, 300), Ok(()));
        assert_eq!(
            verify(b"s3cret", &h, br#"{"id":"e2"}"#, 1100, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other", &h, body, 1100, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"s3cret", &h, body, 2000, 300),
            Err(SignatureError::Stale(1000))
        );
        assert_eq!(
            verify(b"s3cret", "v1=00", body, 1000, 300),
            Err(SignatureError::Malformed)
        );
        // A second scheme value beside v1 (a rotated secret's) does not stop the match.
        let both = format!("{h},v1={}", "00".repeat(32));
        assert_eq!(verify(b"s3cret", &both, body, 1000, 300), Ok(()));
    }
}
