//! Integration tests of the engine: one test binary, modules per area (every extra binary is
//! another link on two cores).

// Test code: panicking on a broken fixture is the right failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod engine {
    pub mod baseline;
    pub mod evidence;
    #[allow(dead_code)]
    pub mod harness;
    pub mod real_policies;
    pub mod sca_semantics;
    pub mod scheduling;
}
