//! The fleet server end to end: a real server on loopback (TLS on both ports), real agents
//! (the `rampart-agent` runtime), real certificates, on SQLite and on PostgreSQL.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic, missing_docs)]

mod server {
    mod access;
    mod alerts;
    mod api;
    mod attest;
    mod audit;
    mod enrolment;
    mod events;
    mod fleet;
    pub mod harness;
    mod intel;
    mod metrics;
    mod mtls;
    mod oidc;
    mod pdf;
    mod report;
    mod siem;
    mod ui;
    mod waivers;
}
