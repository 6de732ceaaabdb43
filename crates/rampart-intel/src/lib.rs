//! Rampart's threat intelligence.
//!
//! Feeds arrive in a dozen dialects ([`parse`]); every value is refanged where it came from free
//! text ([`fang`]), validated and brought to one canonical form per kind ([`canon`]), so that the
//! dedup key `(kind, canonical)` means what it says. Each source row is kept as an observation
//! with its raw text, so every indicator stays traceable to the feeds that reported it.
//!
//! Parsing, canonicalisation, scoring and the index are pure; [`ingest`] connects them to the
//! store.

pub mod allowlist;
pub mod attack;
pub mod canon;
pub mod export;
pub mod fang;
pub mod feeds;
pub mod index;
pub mod kind;
pub mod lookup;

pub use canon::{Ioc, Rejection, canonicalize, detect};
pub use index::{How, Index, Match};
pub use kind::IocKind;
pub mod parse;
pub mod record;
pub mod rows;
pub mod score;
pub mod stix_pattern;
pub mod synthetic;

pub use parse::{Format, Limits, ParseError, Summary, parse, parse_bytes};
pub use record::{Problem, Record};
