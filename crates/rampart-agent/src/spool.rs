//! The on-disk spool of results not yet acknowledged by the server.
//!
//! A result is written here (as the exact gzip body that will be posted) before the first
//! attempt to send it, and deleted only after the server's receipt. The spool is bounded by
//! entries and bytes; when full, the oldest results are dropped with a warning, because a
//! fresh result is worth more than a stale one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use rampart_core::fleet::RunSubmission;

use crate::AgentError;
use crate::state::write_atomic;

/// A bounded directory of pending uploads.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
    max_entries: usize,
    max_bytes: u64,
}

impl Spool {
    /// A spool in `dir` holding at most `max_entries` results and `max_bytes` bytes.
    pub fn new(dir: PathBuf, max_entries: usize, max_bytes: u64) -> Spool {
        Spool {
            dir,
            max_entries: max_entries.max(1),
            max_bytes,
        }
    }

    /// Stores a submission; returns its file. Enforces the bounds afterwards.
    pub fn push(&self, sub: &RunSubmission) -> Result<PathBuf, AgentError> {
        let json = serde_json::to_vec(sub).map_err(|e| AgentError::corrupt(&self.dir, e))?;
        let mut gz = GzEncoder::new(Vec::with_capacity(json.len() / 4), Compression::fast());
        gz.write_all(&json)
            .map_err(|e| AgentError::io(&self.dir, e))?;
        let body = gz.finish().map_err(|e| AgentError::io(&self.dir, e))?;
        let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        let path = self.dir.join(format!("{nanos:020}-{}.json.gz", sub.run_id));
        write_atomic(&path, &body, 0o600)?;
        self.enforce_bounds()?;
        Ok(path)
    }

    /// Pending entries, oldest first.
    pub fn entries(&self) -> Result<Vec<PathBuf>, AgentError> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(AgentError::io(&self.dir, e)),
        };
        let mut out: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(".json.gz") && !n.starts_with('.'))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Number of pending results.
    pub fn len(&self) -> usize {
        self.entries().map(|e| e.len()).unwrap_or(0)
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The gzip body of an entry.
    pub fn read(&self, entry: &Path) -> Result<Vec<u8>, AgentError> {
        fs::read(entry).map_err(|e| AgentError::io(entry, e))
    }

    /// Deletes an acknowledged entry.
    pub fn remove(&self, entry: &Path) -> Result<(), AgentError> {
        match fs::remove_file(entry) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(AgentError::io(entry, e)),
        }
    }

    fn enforce_bounds(&self) -> Result<(), AgentError> {
        let entries = self.entries()?;
        let sizes: Vec<u64> = entries
            .iter()
            .map(|p| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .collect();
        let mut total: u64 = sizes.iter().sum();
        let mut count = entries.len();
        for (path, size) in entries.iter().zip(sizes) {
            if count <= self.max_entries && total <= self.max_bytes {
                break;
            }
            // Never drop the newest entry (the one just written) to make room for itself.
            if count == 1 {
                break;
            }
            tracing::warn!(
                file = %path.display(),
                spooled = count,
                bytes = total,
                max_entries = self.max_entries,
                max_bytes = self.max_bytes,
                "spool full: dropping the oldest unsent result"
            );
            self.remove(path)?;
            count -= 1;
            total -= size;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_core::{CheckOutcome, PolicyInfo, ScanReport, Status};

    fn sub(id: &str) -> RunSubmission {
        let info = PolicyInfo {
            id: "p".into(),
            ..PolicyInfo::default()
        };
        RunSubmission {
            run_id: id.into(),
            policy_version: Some(1),
            policy_digest: "d".into(),
            trigger: "schedule".into(),
            report: ScanReport::single(
                info,
                vec![CheckOutcome::new("1", "t", Status::Pass)],
                time::OffsetDateTime::now_utc(),
            ),
            observables: Vec::new(),
        }
    }

    #[test]
    fn full_spool_drops_the_oldest_and_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().join("spool"), 2, u64::MAX);
        for id in ["run-0001", "run-0002", "run-0003"] {
            spool.push(&sub(id)).unwrap();
        }
        let names: Vec<String> = spool
            .entries()
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2);
        assert!(
            names[0].ends_with("-run-0002.json.gz") && names[1].ends_with("-run-0003.json.gz"),
            "{names:?}"
        );
        // The entry is the exact upload body: gzip JSON of the submission.
        let body = spool.read(&spool.entries().unwrap()[1]).unwrap();
        let mut json = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut json)
            .unwrap();
        let back: RunSubmission = serde_json::from_str(&json).unwrap();
        assert_eq!(back.run_id, "run-0003");
        assert_eq!(
            back.report.policies[0].checks,
            sub("x").report.policies[0].checks
        );
        // A byte bound smaller than one entry still keeps the newest result.
        let tiny = Spool::new(dir.path().join("tiny"), 100, 1);
        tiny.push(&sub("run-0004")).unwrap();
        tiny.push(&sub("run-0005")).unwrap();
        assert_eq!(tiny.len(), 1);
    }
}
