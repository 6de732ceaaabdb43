//! The audit log's tamper evidence, with no I/O: entries are leaves of an RFC 9162 (Certificate
//! Transparency 2.0) Merkle tree, so anyone holding a signed tree head can check that an entry
//! is in the log (an inclusion proof) and that a later log extends an earlier one without
//! rewriting it (a consistency proof). The store keeps the entries and the tree's nodes; this
//! crate defines the entry bytes, computes and checks the hashes, signs and opens checkpoints
//! (C2SP signed notes), and verifies a whole log from its export.

pub mod checkpoint;
pub mod entry;
pub mod merkle;
pub mod tree;
pub mod verify;

pub use checkpoint::{Checkpoint, CheckpointError, LogKey, LogVerifier};
pub use entry::{Entry, Event, Outcome};
pub use merkle::Hash;
pub use tree::{Frontier, NodeId};
pub use verify::{LogCheck, Problem, Report};
