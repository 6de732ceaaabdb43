//! Signed checkpoints in the C2SP formats (c2sp.org/tlog-checkpoint in a c2sp.org/signed-note):
//!
//! ```text
//! rampart.audit/5f3c…        origin: names the log, and is the key's name
//! 1234                        tree size
//! 3q2+7w…=                    root hash, base64
//! Timestamp: 1764763200       extension line: when it was signed (Unix seconds)
//!
//! — rampart.audit/5f3c… AbCd…  signature line: key id + Ed25519 signature
//! ```
//!
//! The note format and its Ed25519 signatures come from the `signed_note` crate (a port of Go's
//! `golang.org/x/mod/sumdb/note`, the format's reference), so what Rampart signs opens in any
//! C2SP tool. The log key is Rampart's own, separate from the CA: whoever can sign certificates
//! cannot also rewrite history.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use signed_note::{
    Note, Signer as _, StandardSigner, StandardVerifier, Verifier as _, VerifierList,
};
use time::OffsetDateTime;

use crate::merkle::Hash;

/// A tree head: the log's name, its size and root, and when it was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line.
    pub origin: String,
    /// Number of entries it covers.
    pub size: u64,
    /// RFC 9162 root of those entries.
    pub root: Hash,
    /// When it was signed (whole seconds).
    pub time: OffsetDateTime,
}

/// Why a checkpoint or key was refused.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The note is not a well-formed signed note.
    #[error("not a signed note")]
    Malformed,
    /// The body is not a checkpoint: the line and what is wrong with it.
    #[error("checkpoint line {line}: {detail}")]
    Body {
        /// 1-based line of the note's text.
        line: usize,
        /// What is wrong.
        detail: String,
    },
    /// No signature by the expected key, or a bad one.
    #[error("checkpoint is not signed by the log key {key}: {detail}")]
    Signature {
        /// The verifier key's name and id.
        key: String,
        /// What the verification said.
        detail: String,
    },
    /// The checkpoint names another log.
    #[error("checkpoint is for log {found:?}, not {expected:?}")]
    Origin {
        /// The key's log.
        expected: String,
        /// The checkpoint's.
        found: String,
    },
    /// A key that cannot be used.
    #[error("log key: {0}")]
    Key(String),
}

impl Checkpoint {
    /// The note's text: origin, size, root, timestamp, each with its newline.
    pub fn text(&self) -> String {
        format!(
            "{}\n{}\n{}\nTimestamp: {}\n",
            self.origin,
            self.size,
            B64.encode(self.root),
            self.time.unix_timestamp()
        )
    }

    /// Reads a checkpoint's text (not its signature).
    pub fn parse_text(text: &str) -> Result<Checkpoint, CheckpointError> {
        let body = |line: usize, detail: &str| CheckpointError::Body {
            line,
            detail: detail.to_owned(),
        };
        let mut lines = text.strip_suffix('\n').unwrap_or(text).split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| body(1, "no origin"))?;
        let size = lines
            .next()
            .and_then(|s| s.parse::<u64>().ok().filter(|_| !s.starts_with('+')))
            .ok_or_else(|| body(2, "tree size is not a decimal number"))?;
        let root: Hash = lines
            .next()
            .and_then(|r| B64.decode(r).ok())
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| body(3, "root is not a base64 SHA-256 hash"))?;
        let time = lines
            .next()
            .and_then(|l| l.strip_prefix("Timestamp: "))
            .and_then(|t| t.parse::<i64>().ok())
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
            .ok_or_else(|| body(4, "no \"Timestamp: <Unix seconds>\" line"))?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            time,
        })
    }
}

/// The log's signing key.
pub struct LogKey {
    signer: StandardSigner,
    seed: [u8; 32],
    vkey: String,
}

impl std::fmt::Debug for LogKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogKey").field("vkey", &self.vkey).finish()
    }
}

impl LogKey {
    /// A new random key for the log `origin`.
    pub fn generate(origin: &str) -> Result<LogKey, CheckpointError> {
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        LogKey::from_seed(origin, key.to_bytes())
    }

    /// The key of the log `origin` from its 32-byte Ed25519 seed.
    pub fn from_seed(origin: &str, seed: [u8; 32]) -> Result<LogKey, CheckpointError> {
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let vkey = signed_note::new_ed25519_verifier_key(origin, &key.verifying_key());
        // The verifier key is NAME+ID+KEY (base64 may hold '+' too); the signer key is
        // PRIVATE+KEY+NAME+ID+ and the seed.
        let id = vkey
            .strip_prefix(origin)
            .and_then(|rest| rest.strip_prefix('+'))
            .and_then(|rest| rest.split_once('+'))
            .map(|(id, _)| id)
            .ok_or_else(|| CheckpointError::Key(format!("{origin:?} is not a valid key name")))?;
        let skey = format!(
            "PRIVATE+KEY+{origin}+{id}+{}",
            B64.encode([&[1u8][..], &seed].concat())
        );
        let signer = StandardSigner::new(&skey)
            .map_err(|e| CheckpointError::Key(format!("{e} (is {origin:?} a valid key name?)")))?;
        Ok(LogKey { signer, seed, vkey })
    }

    /// The 32-byte seed, for storing (encrypted).
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// The verifier key (`NAME+ID+KEY`), what auditors pin.
    pub fn vkey(&self) -> &str {
        &self.vkey
    }

    /// The log's origin (the key's name).
    pub fn origin(&self) -> &str {
        self.signer.name()
    }

    /// The signed note of a checkpoint.
    pub fn sign(&self, checkpoint: &Checkpoint) -> Result<String, CheckpointError> {
        let mut note =
            Note::new(checkpoint.text().as_bytes(), &[]).map_err(|_| CheckpointError::Malformed)?;
        note.add_sigs(&[&self.signer])
            .map_err(|e| CheckpointError::Key(e.to_string()))?;
        String::from_utf8(note.to_bytes()).map_err(|_| CheckpointError::Malformed)
    }
}

/// Checks checkpoints against a pinned verifier key.
pub struct LogVerifier {
    vkey: String,
    origin: String,
}

impl LogVerifier {
    /// A verifier for the key `vkey` (`NAME+ID+KEY`).
    pub fn new(vkey: &str) -> Result<LogVerifier, CheckpointError> {
        let v = StandardVerifier::new(vkey.trim())
            .map_err(|e| CheckpointError::Key(format!("{e}: {vkey:?}")))?;
        Ok(LogVerifier {
            origin: v.name().to_owned(),
            vkey: vkey.trim().to_owned(),
        })
    }

    /// The log the key signs for.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The verifier key.
    pub fn vkey(&self) -> &str {
        &self.vkey
    }

    /// Opens a signed checkpoint: the log key's signature, then the text.
    pub fn open(&self, note: &str) -> Result<Checkpoint, CheckpointError> {
        let parsed = Note::from_bytes(note.as_bytes()).map_err(|_| CheckpointError::Malformed)?;
        let verifier =
            StandardVerifier::new(&self.vkey).map_err(|e| CheckpointError::Key(e.to_string()))?;
        let key = format!("{}+{:08x}", verifier.name(), verifier.key_id());
        let list = VerifierList::new(vec![Box::new(verifier)]);
        parsed
            .verify(&list)
            .map_err(|e| CheckpointError::Signature {
                key,
                detail: e.to_string(),
            })?;
        let text = std::str::from_utf8(parsed.text()).map_err(|_| CheckpointError::Malformed)?;
        let cp = Checkpoint::parse_text(text)?;
        if cp.origin != self.origin {
            return Err(CheckpointError::Origin {
                expected: self.origin.clone(),
                found: cp.origin,
            });
        }
        Ok(cp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "rampart.audit/test".into(),
            size: 1234,
            root: [7; 32],
            time: OffsetDateTime::from_unix_timestamp(1_764_763_200).unwrap(),
        }
    }

    #[test]
    fn a_signed_checkpoint_has_the_c2sp_layout_and_opens() {
        let key = LogKey::from_seed("rampart.audit/test", [3; 32]).unwrap();
        let note = key.sign(&checkpoint()).unwrap();
        let lines: Vec<&str> = note.split('\n').collect();
        // Checked by hand against c2sp.org/tlog-checkpoint and c2sp.org/signed-note: four text
        // lines, a blank line, one signature line "— NAME BASE64(keyid ‖ sig)", final newline.
        assert_eq!(lines[0], "rampart.audit/test");
        assert_eq!(lines[1], "1234");
        assert_eq!(lines[2], B64.encode([7u8; 32]));
        assert_eq!(lines[3], "Timestamp: 1764763200");
        assert_eq!(lines[4], "");
        let sig = lines[5].strip_prefix("— rampart.audit/test ").unwrap();
        let raw = B64.decode(sig).unwrap();
        assert_eq!(raw.len(), 4 + 64);
        assert_eq!(lines[6], "");
        assert_eq!(lines.len(), 7);
        // The key id in the signature is the vkey's.
        let id = key.vkey().split('+').nth(1).unwrap();
        assert_eq!(hex::encode(&raw[..4]), id);
        let v = LogVerifier::new(key.vkey()).unwrap();
        assert_eq!(v.open(&note).unwrap(), checkpoint());
        // The seed round trips to the same key.
        let again = LogKey::from_seed("rampart.audit/test", *key.seed()).unwrap();
        assert_eq!(again.vkey(), key.vkey());
    }

    #[test]
    fn forged_and_foreign_checkpoints_are_refused() {
        // Many keys: base64 with '+' in it must not confuse the key strings.
        for _ in 0..64 {
            let k = LogKey::generate("rampart.audit/test").unwrap();
            assert!(
                LogVerifier::new(k.vkey())
                    .unwrap()
                    .open(&k.sign(&checkpoint()).unwrap())
                    .is_ok()
            );
        }
        let key = LogKey::generate("rampart.audit/test").unwrap();
        let other = LogKey::generate("rampart.audit/test").unwrap();
        let v = LogVerifier::new(key.vkey()).unwrap();
        // Another key of the same name.
        let foreign = other.sign(&checkpoint()).unwrap();
        assert!(matches!(
            v.open(&foreign),
            Err(CheckpointError::Signature { .. })
        ));
        // A changed size under the original signature.
        let note = key.sign(&checkpoint()).unwrap();
        let edited = note.replacen("1234", "1235", 1);
        assert!(matches!(
            v.open(&edited),
            Err(CheckpointError::Signature { .. })
        ));
        // Garbage.
        assert!(matches!(v.open("hello"), Err(CheckpointError::Malformed)));
        // A key for another log name.
        let elsewhere = LogKey::generate("other.log/x").unwrap();
        let mut cp = checkpoint();
        cp.origin = "other.log/x".into();
        let v2 = LogVerifier::new(elsewhere.vkey()).unwrap();
        assert!(v2.open(&elsewhere.sign(&cp).unwrap()).is_ok());
        assert!(v.open(&elsewhere.sign(&cp).unwrap()).is_err());
        assert!(LogKey::generate("has space").is_err());
        assert!(LogVerifier::new("not+a+key").is_err());
    }

    #[test]
    fn checkpoint_text_errors_name_the_line() {
        for (text, line) in [
            ("\n1\nAAAA\nTimestamp: 1\n", 1),
            ("o\nx\nAAAA\nTimestamp: 1\n", 2),
            ("o\n+1\nAAAA\nTimestamp: 1\n", 2),
            ("o\n1\nAAAA\nTimestamp: 1\n", 3),
            (&format!("o\n1\n{}\n", B64.encode([0u8; 32])), 4),
        ] {
            match Checkpoint::parse_text(text) {
                Err(CheckpointError::Body { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }
}
