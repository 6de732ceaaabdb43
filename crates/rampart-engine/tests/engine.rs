//! Integration tests of the engine: one test binary, modules per area (every extra binary is
//! another link on two cores).

mod engine {
    pub mod baseline;
    #[allow(dead_code)]
    pub mod harness;
    pub mod real_policies;
    pub mod sca_semantics;
}
