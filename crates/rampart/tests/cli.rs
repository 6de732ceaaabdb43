//! End-to-end tests of the `rampart` binary: real processes, real files, real exit codes.

// Test code: panicking on a broken fixture is the right failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod cli {
    mod attest;
    mod audit;
    pub mod fleet;
    pub mod harness;
    pub mod intel;
    mod oidc;
    pub mod oscap;
    pub mod scan;
    mod waivers;
}
