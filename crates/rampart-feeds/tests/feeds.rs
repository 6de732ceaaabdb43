//! Integration tests of the feeds crate against a real store (SQLite, and PostgreSQL when it
//! is there): fetching over HTTP on loopback, ingesting, lookups and exports. One binary (see
//! STYLE.md); the fixture helpers are the intel crate's own test harness, shared.

// Shared whole; these tests read fixtures and parse rows, not every helper.
#[allow(dead_code)]
#[path = "../../rampart-intel/tests/intel/harness.rs"]
mod harness;
#[path = "feeds/ingest.rs"]
mod ingest;
#[path = "feeds/sync.rs"]
mod sync;
