//! Behavioural tests of the fleet store. Every test runs twice: on a fresh SQLite file and on a
//! fresh schema of the real PostgreSQL server named by `DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). When PostgreSQL is unreachable the PostgreSQL half
//! prints `SKIP` with the reason, and fails instead when `RAMPART_REQUIRE_POSTGRES=1` (as CI sets).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic, missing_docs)]

mod store {
    mod agents;
    mod alerts;
    mod attest;
    mod audit;
    mod events;
    pub mod harness;
    mod migrations;
    mod policies;
    mod runs;
    mod tallies;
    mod tokens;
    mod users;
    mod waivers;
}
