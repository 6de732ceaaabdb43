//! Integration tests of the threat-intelligence crate, one binary (see STYLE.md).

#[path = "intel/fang.rs"]
mod fang;
#[path = "intel/harness.rs"]
mod harness;
#[path = "intel/hostile.rs"]
mod hostile;
#[path = "intel/parsers.rs"]
mod parsers;
#[path = "intel/suricata.rs"]
mod suricata;
