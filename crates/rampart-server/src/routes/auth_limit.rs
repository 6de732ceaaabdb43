//! Failed authentications, per client address: logged (never the secret) and limited, so an
//! anonymous client cannot guess tokens at line rate.
//!
//! A fixed window per address: after a number of failures (the server's `max_auth_failures`,
//! [`DEFAULT_MAX_FAILURES`] unless set) within [`WINDOW`], every request
//! from that address that needs a credential is refused with 429 and `Retry-After` until the
//! window ends, before any token is checked. Memory is bounded: at most [`MAX_TRACKED`]
//! addresses are tracked, expired windows are dropped first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed per address and window unless the server is told otherwise.
pub const DEFAULT_MAX_FAILURES: u32 = 10;
/// The window.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most.
const MAX_TRACKED: usize = 10_000;

/// Failed authentications per client address.
pub(crate) struct AuthFailures {
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    /// Failures allowed per address and window.
    max: u32,
}

impl AuthFailures {
    /// Allowing `max` failures per address and window (at least one).
    pub fn new(max: u32) -> AuthFailures {
        AuthFailures {
            windows: Mutex::default(),
            max: max.max(1),
        }
    }

    /// `Some(seconds to wait)` when `addr` has used up its failures for this window.
    pub fn blocked(&self, addr: IpAddr, now: Instant) -> Option<u64> {
        let windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (start, count) = windows.get(&addr)?;
        let elapsed = now.saturating_duration_since(*start);
        (elapsed < WINDOW && *count >= self.max).then(|| (WINDOW - elapsed).as_secs().max(1))
    }

    /// [`AuthFailures::blocked`] as the refusal a request gets: 429 with `Retry-After`.
    pub(crate) fn refuse_blocked(
        &self,
        addr: Option<IpAddr>,
        now: Instant,
    ) -> Result<(), crate::error::ApiError> {
        match addr.and_then(|ip| self.blocked(ip, now)) {
            Some(wait) => Err(crate::error::ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "too_many_failures",
                format!("too many failed authentications from this address; retry in {wait} s"),
            )
            .with_retry_after(wait)),
            None => Ok(()),
        }
    }

    /// Counts a failure of `addr`.
    pub fn record(&self, addr: IpAddr, now: Instant) {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() >= MAX_TRACKED && !windows.contains_key(&addr) {
            windows.retain(|_, (start, _)| now.saturating_duration_since(*start) < WINDOW);
            if windows.len() >= MAX_TRACKED {
                // Still full of live windows: forget the oldest one.
                if let Some(oldest) = windows.iter().min_by_key(|(_, (s, _))| *s).map(|(a, _)| *a) {
                    windows.remove(&oldest);
                }
            }
        }
        let entry = windows.entry(addr).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_its_failures_until_the_window_ends() {
        let f = AuthFailures::new(DEFAULT_MAX_FAILURES);
        let a: IpAddr = "192.0.2.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let b: IpAddr = "192.0.2.2".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let t0 = Instant::now();
        for _ in 0..DEFAULT_MAX_FAILURES - 1 {
            f.record(a, t0);
        }
        assert_eq!(f.blocked(a, t0), None, "one failure short");
        f.record(a, t0);
        assert_eq!(f.blocked(a, t0 + Duration::from_secs(15)), Some(45));
        assert_eq!(f.blocked(b, t0), None, "per address");
        assert_eq!(f.blocked(a, t0 + WINDOW), None, "the window ends");
        f.record(a, t0 + WINDOW);
        assert_eq!(f.blocked(a, t0 + WINDOW), None, "a new window starts at 1");
    }
}
