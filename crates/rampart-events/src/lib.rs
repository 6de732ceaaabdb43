//! Rampart's event stream, pure (no store, no network, no clock).
//!
//! Every compliance and security event — a run stored, a check changing status, an agent
//! enrolled, revoked or gone offline, a waiver or attestation, an IOC hit, every audit entry —
//! is one [`Event`] with a versioned schema ([`SCHEMA`]), built by [`make`], stored in the
//! server's outbox in the same transaction as what it reports, and delivered at least once to
//! every destination in one of the [`wire`] formats (JSON, CEF, RFC 5424 syslog, Splunk HEC),
//! webhooks [`sign`]ed with HMAC-SHA256.

pub mod chat;
pub mod event;
pub mod make;
pub mod sign;
pub mod wire;

pub use event::{
    AgentOffline, AgentRef, Alert, AlertState, Body, CheckChanged, Event, FromAudit, IntelHit,
    RunStored, SCHEMA, schema,
};
