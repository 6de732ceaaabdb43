//! Request rates, per client: logins and enrolments per address, lookups and exports per
//! credential (or per address without one). A token bucket per (class, client): `per_minute`
//! requests a minute on average, up to a minute's worth at once; past it, 429 with
//! `Retry-After`. Memory is bounded: at most [`MAX_TRACKED`] buckets per class, full buckets
//! (clients that went quiet) dropped first.
//!
//! Why per credential for lookups and exports: a SOC's SIEM connector may share one NAT
//! address with every analyst, while one leaked token must not be able to pull the whole
//! index at line rate or starve everyone else.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Buckets tracked, per class on average.
const MAX_TRACKED: usize = 10_000;

/// What a request is counted as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Class {
    /// Password logins and browser sessions, per address.
    Login,
    /// Agent enrolments, per address.
    Enrol,
    /// Intel lookups and matches, per credential.
    Lookup,
    /// Intel exports and TAXII object pages, per credential.
    Export,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::Login => "logins",
            Class::Enrol => "enrolments",
            Class::Lookup => "lookups",
            Class::Export => "exports",
        }
    }
}

/// Requests a minute allowed per client, by class; 0 turns a class's limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Password logins and browser session starts per address.
    pub login_per_minute: u32,
    /// Enrolments per address (a rollout behind one NAT address enrols many hosts).
    pub enrol_per_minute: u32,
    /// Intel lookups and matches per credential.
    pub lookup_per_minute: u32,
    /// Intel exports and TAXII object pages per credential.
    pub export_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits {
            login_per_minute: 30,
            enrol_per_minute: 6_000,
            lookup_per_minute: 120_000,
            export_per_minute: 600,
        }
    }
}

impl RateLimits {
    fn of(&self, class: Class) -> u32 {
        match class {
            Class::Login => self.login_per_minute,
            Class::Enrol => self.enrol_per_minute,
            Class::Lookup => self.lookup_per_minute,
            Class::Export => self.export_per_minute,
        }
    }
}

/// Who a request is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Client {
    Address(IpAddr),
    /// The SHA-256 of the credential the request carries (looked up by nobody: a wrong one
    /// is refused by authentication anyway, and counting it costs no database read).
    Credential(String),
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every class.
pub(crate) struct RateLimiter {
    limits: RateLimits,
    buckets: Mutex<HashMap<(Class, Client), Bucket>>,
}

impl RateLimiter {
    pub(crate) fn new(limits: RateLimits) -> RateLimiter {
        RateLimiter {
            limits,
            buckets: Mutex::default(),
        }
    }

    /// Takes one request from `client`'s bucket of `class`; the seconds to wait when empty.
    fn take(&self, class: Class, client: Client, now: Instant) -> Result<(), u64> {
        let per_minute = self.limits.of(class);
        if per_minute == 0 {
            return Ok(());
        }
        let capacity = f64::from(per_minute);
        let per_second = capacity / 60.0;
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_TRACKED * 4 && !buckets.contains_key(&(class, client.clone())) {
            // Drop the buckets that have refilled: those clients are indistinguishable from new.
            buckets.retain(|(c, _), b| {
                let cap = f64::from(self.limits.of(*c));
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * cap / 60.0 < cap
            });
            if buckets.len() >= MAX_TRACKED * 4
                && let Some(oldest) = buckets
                    .iter()
                    .min_by_key(|(_, b)| b.at)
                    .map(|(k, _)| k.clone())
            {
                buckets.remove(&oldest);
            }
        }
        let bucket = buckets.entry((class, client)).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let refilled = now.saturating_duration_since(bucket.at).as_secs_f64() * per_second;
        bucket.tokens = (bucket.tokens + refilled).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            // Whole seconds until one request's worth has refilled.
            Err(((1.0 - bucket.tokens) / per_second).ceil().max(1.0) as u64)
        }
    }
}

/// The class of an endpoint, by its path in the route table.
pub(crate) fn class_of(path: &str) -> Option<Class> {
    match path {
        "/api/v1/login"
        | "/api/v1/session"
        | "/api/v1/oidc/login"
        | "/api/v1/oidc/callback"
        | "/api/v1/oidc/token" => Some(Class::Login),
        "/api/v1/enrol" => Some(Class::Enrol),
        "/api/v1/intel/lookup" | "/api/v1/intel/match" => Some(Class::Lookup),
        "/api/v1/intel/export"
        | "/api/v1/audit/export"
        | "/taxii2/api/collections/{id}/objects/"
        | "/taxii2/api/collections/{id}/manifest/" => Some(Class::Export),
        _ => None,
    }
}

/// Who a request of `class` is counted against.
fn client_of(req: &Request, class: Class) -> Option<Client> {
    let address = req
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let credential = || {
        let header = req.headers().get(axum::http::header::AUTHORIZATION)?;
        Some(rampart_access::secret::digest(header.to_str().ok()?))
    };
    match class {
        Class::Login | Class::Enrol => address.map(Client::Address),
        Class::Lookup | Class::Export => credential()
            .map(Client::Credential)
            .or_else(|| address.map(Client::Address)),
    }
}

/// The layer: counts the request and refuses it with 429 when its client's bucket is empty.
pub(crate) async fn layer(
    app: std::sync::Arc<crate::app::App>,
    class: Class,
    req: Request,
    next: Next,
) -> Response {
    let client = client_of(&req, class);
    if let Some(client) = client
        && let Err(wait) = app.rates.take(class, client, Instant::now())
    {
        let code = "rate_limited";
        return ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            code,
            format!(
                "too many {} from this client; retry in {wait} s",
                class.name()
            ),
        )
        .with_retry_after(wait)
        .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_allows_a_minute_at_once_then_refills() {
        let limiter = RateLimiter::new(RateLimits {
            lookup_per_minute: 60,
            ..RateLimits::default()
        });
        let t0 = Instant::now();
        let a = || Client::Credential("a".into());
        for _ in 0..60 {
            assert_eq!(limiter.take(Class::Lookup, a(), t0), Ok(()));
        }
        assert_eq!(limiter.take(Class::Lookup, a(), t0), Err(1));
        // Another client has its own bucket.
        assert_eq!(
            limiter.take(Class::Lookup, Client::Credential("b".into()), t0),
            Ok(())
        );
        // One a second comes back.
        assert_eq!(
            limiter.take(Class::Lookup, a(), t0 + Duration::from_millis(1000)),
            Ok(())
        );
        assert_eq!(
            limiter.take(Class::Lookup, a(), t0 + Duration::from_millis(1000)),
            Err(1)
        );
        // The wait names the seconds until one request has refilled.
        let slow = RateLimiter::new(RateLimits {
            export_per_minute: 2,
            ..RateLimits::default()
        });
        let c = || Client::Address(IpAddr::from([192, 0, 2, 1]));
        assert_eq!(slow.take(Class::Export, c(), t0), Ok(()));
        assert_eq!(slow.take(Class::Export, c(), t0), Ok(()));
        assert_eq!(slow.take(Class::Export, c(), t0), Err(30));
        // Zero turns a class off.
        let off = RateLimiter::new(RateLimits {
            login_per_minute: 0,
            ..RateLimits::default()
        });
        for _ in 0..1000 {
            assert_eq!(off.take(Class::Login, c(), t0), Ok(()));
        }
    }
}
