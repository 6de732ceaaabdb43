//! The audit log's tamper evidence, with no I/O: entries are leaves of an RFC 9162 (Certificate
//! Transparency 2.0) Merkle tree, so anyone holding a signed tree head can check that an entry
//! is in the log (an inclusion proof) and that a later log extends an earlier one without
//! rewriting it (a consistency proof). The store keeps the leaves; this crate computes and
//! checks the hashes.

pub mod merkle;
