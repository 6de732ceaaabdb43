//! A bundle made without a server, as the server makes one: the issue recorded in an
//! in-memory audit log between other entries, a checkpoint signed over it, the claims signed.
//! For tests and benchmarks, which need real bundles without a database.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use jsonwebtoken::jwk::JwkSet;
use rampart_audit::{Checkpoint, Entry, Event, LogKey, Outcome, merkle};
use time::OffsetDateTime;

use crate::{Bundle, Claims, KeyState, LogAnchor, LogClaim, SigningKey, claims};

/// Where the issue sits in the log, and when things happened.
#[derive(Debug, Clone, Copy)]
pub struct LogShape {
    /// Entries before the issue's.
    pub before: u64,
    /// Entries after it, inside the checkpoint.
    pub after: u64,
    /// When the entries were appended.
    pub entry_time: OffsetDateTime,
    /// When the checkpoint was signed.
    pub checkpoint_time: OffsetDateTime,
}

/// Records the issue of `claims` (its `log` claim is filled in here), signs them, and
/// assembles the bundle with `evidence`.
pub fn bundle(
    key: &SigningKey,
    log_key: &LogKey,
    mut claims: Claims,
    keys: Vec<KeyState>,
    evidence: Option<String>,
    shape: LogShape,
) -> Result<Bundle, String> {
    let entry = |index: u64, event: Event| {
        Entry {
            index,
            time: shape.entry_time,
            event,
        }
        .to_leaf()
    };
    let index = shape.before;
    let mut leaves: Vec<String> = (0..index)
        .map(|i| {
            entry(
                i,
                Event::new("alice", "login", "user:alice", Outcome::Success),
            )
        })
        .collect();
    leaves.push(entry(index, claims.issue_event(key.kid(), key.alg())));
    for i in 0..shape.after {
        leaves.push(entry(
            index + 1 + i,
            Event::new("bob", "login", "user:bob", Outcome::Success),
        ));
    }
    let hashes: Vec<_> = leaves
        .iter()
        .map(|l| merkle::leaf_hash(l.as_bytes()))
        .collect();
    let checkpoint = Checkpoint {
        origin: log_key.origin().to_owned(),
        size: hashes.len() as u64,
        root: merkle::root(&hashes),
        time: shape.checkpoint_time,
    };
    claims.log = LogClaim {
        origin: checkpoint.origin.clone(),
        index,
        checkpoint_size: checkpoint.size,
        checkpoint_root: B64.encode(checkpoint.root),
    };
    let at = usize::try_from(index).map_err(|e| e.to_string())?;
    let proof = merkle::inclusion_proof(at, &hashes).ok_or("no inclusion proof")?;
    Ok(Bundle {
        format: crate::bundle::FORMAT.into(),
        attestation: key.sign(claims::TYP, &claims).map_err(|e| e.to_string())?,
        jwks: JwkSet {
            keys: vec![key.public_jwk().clone()],
        },
        keys,
        log: LogAnchor {
            vkey: log_key.vkey().to_owned(),
            checkpoint: log_key.sign(&checkpoint).map_err(|e| e.to_string())?,
            entry: leaves.swap_remove(at),
            inclusion: proof.iter().map(|h| B64.encode(h)).collect(),
        },
        evidence,
    })
}
