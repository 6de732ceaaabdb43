//! Threat-intel feeds against the store: fetching them (`sync`), ingesting what they deliver
//! (`ingest`), and answering lookups (`lookup`) and exports (`export`) from it.
//!
//! `rampart-intel` below is pure (parsing, canonical forms, the index, scores, export formats,
//! the rows' types); `rampart-store` persists the rows; this crate is where the two meet, with
//! the network. The server and the CLI both call it.

pub mod export;
pub mod ingest;
pub mod lookup;
pub mod sync;
