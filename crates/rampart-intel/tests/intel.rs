//! Integration tests of the threat-intelligence crate, one binary (see STYLE.md).

#[path = "intel/fang.rs"]
mod fang;
#[path = "intel/feeds.rs"]
mod feeds;
#[path = "intel/harness.rs"]
mod harness;
#[path = "intel/hostile.rs"]
mod hostile;
#[path = "intel/ingest.rs"]
mod ingest;
#[path = "intel/parsers.rs"]
mod parsers;
#[path = "intel/suricata.rs"]
mod suricata;
