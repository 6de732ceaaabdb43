//! How long each command took in earlier scans of the same host, so that the next scan can
//! start the checks behind the longest commands first.
//!
//! Why: a scan lasts at least as long as its longest command, and that command only finishes
//! early if it *starts* early. Nothing in a policy says which command is slow (on a host without
//! a running systemd, `systemctl list-unit-files` costs fifty times what `systemctl is-enabled`
//! does), but the host says so every time it is scanned. Ordering work by measured duration,
//! longest first, is the classic list-scheduling rule (LPT); the CPU slots ([`crate::slots`])
//! then give the long command a core of its own. The costs only change the *order* of work:
//! every check still runs every rule its semantics require, and a missing, stale or unreadable
//! file only makes a scan as fast as a first one.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Entries kept at most; a file stays small (about 100 bytes an entry) whatever is scanned.
pub const MAX_ENTRIES: usize = 10_000;

/// The file format's version.
const FORMAT: u32 = 1;

/// Measured durations of commands, keyed by scan root and argument vector.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CommandCosts {
    entries: HashMap<(PathBuf, Vec<String>), Duration>,
}

/// Errors reading or writing a costs file.
#[derive(Debug, thiserror::Error)]
pub enum CostsError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The file is not a costs file this version understands.
    #[error("{path}:{line}:{column}: not a command-costs file: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// Line of the problem (1-based).
        line: usize,
        /// Column of the problem (1-based).
        column: usize,
        /// What is wrong.
        message: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    format: u32,
    commands: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    root: PathBuf,
    argv: Vec<String>,
    micros: u64,
}

impl CommandCosts {
    /// No measurements.
    pub fn new() -> CommandCosts {
        CommandCosts::default()
    }

    /// Number of commands with a measurement.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no measurement at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The last measured duration of `argv` run under `root`.
    pub fn expected(&self, root: &Path, argv: &[String]) -> Option<Duration> {
        // Borrowed lookups on a tuple key would need a custom key type; a scan asks once per
        // command rule, so building the key is cheap enough.
        self.entries
            .get(&(root.to_path_buf(), argv.to_vec()))
            .copied()
    }

    /// Records (or replaces) a measurement.
    pub fn record(&mut self, root: &Path, argv: &[String], took: Duration) {
        self.entries
            .insert((root.to_path_buf(), argv.to_vec()), took);
    }

    /// Takes in a newer set of measurements: they replace older ones for the same commands, and
    /// older entries are kept, up to [`MAX_ENTRIES`] in all, newer ones first.
    pub fn merge_newer(&mut self, newer: CommandCosts) {
        let mut merged = newer.entries;
        for (key, took) in std::mem::take(&mut self.entries) {
            if merged.len() >= MAX_ENTRIES {
                break;
            }
            merged.entry(key).or_insert(took);
        }
        self.entries = merged;
    }

    /// Reads a costs file; a file that does not exist is an empty set.
    pub fn load(path: &Path) -> Result<CommandCosts, CostsError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(CommandCosts::new()),
            Err(source) => {
                return Err(CostsError::Io {
                    path: path.into(),
                    source,
                });
            }
        };
        let format_error = |line, column, message: String| CostsError::Format {
            path: path.into(),
            line,
            column,
            message,
        };
        let file: File = serde_json::from_str(&text)
            .map_err(|e| format_error(e.line(), e.column(), e.to_string()))?;
        if file.format != FORMAT {
            return Err(format_error(
                1,
                1,
                format!("format {} (this version reads {FORMAT})", file.format),
            ));
        }
        let mut costs = CommandCosts::new();
        for e in file.commands.into_iter().take(MAX_ENTRIES) {
            costs
                .entries
                .insert((e.root, e.argv), Duration::from_micros(e.micros));
        }
        Ok(costs)
    }

    /// Writes a costs file atomically (a temporary file in the same directory, then a rename),
    /// creating its directory, so a reader never sees half a file.
    pub fn save(&self, path: &Path) -> Result<(), CostsError> {
        use std::io::Write;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CostsError::Io { path, source }
        };
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut commands: Vec<Entry> = self
            .entries
            .iter()
            .map(|((root, argv), took)| Entry {
                root: root.clone(),
                argv: argv.clone(),
                micros: u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            })
            .collect();
        // Longest first: the file reads as a profile of the host.
        commands.sort_by(|a, b| b.micros.cmp(&a.micros).then_with(|| a.argv.cmp(&b.argv)));
        let json = serde_json::to_vec_pretty(&File {
            format: FORMAT,
            commands,
        })
        .map_err(|e| io(path)(std::io::Error::other(e)))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io(dir))?;
        tmp.write_all(&json)
            .and_then(|()| tmp.flush())
            .map_err(io(path))?;
        tmp.persist(path).map_err(|e| io(path)(e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn round_trips_through_a_file_and_keeps_roots_apart() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("sub/costs.json");
        let mut costs = CommandCosts::new();
        costs.record(
            Path::new("/"),
            &argv("systemctl list-unit-files"),
            Duration::from_millis(340),
        );
        costs.record(
            Path::new("/mnt/img"),
            &argv("systemctl list-unit-files"),
            Duration::from_millis(7),
        );
        costs.record(
            Path::new("/"),
            &argv("dpkg-query -s cups"),
            Duration::from_micros(6_123),
        );
        costs.save(&path).expect("save");
        let back = CommandCosts::load(&path).expect("load");
        assert_eq!(back, costs);
        assert_eq!(
            back.expected(Path::new("/mnt/img"), &argv("systemctl list-unit-files")),
            Some(Duration::from_millis(7))
        );
        assert_eq!(
            back.expected(Path::new("/"), &argv("dpkg-query -s nis")),
            None
        );
        // No temporary file is left next to it.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("costs.json")]);
    }

    #[test]
    fn a_missing_file_is_empty_and_a_broken_one_is_an_error_with_its_place() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("costs.json");
        assert!(
            CommandCosts::load(&path)
                .expect("missing is fine")
                .is_empty()
        );
        let cases = [
            (
                "{\"format\": 1,\n \"commands\": [{\"root\": \"/\", \"argv\": [\"x\"], \"micros\": -4}]}",
                ":2:",
            ),
            ("{\"format\": 2, \"commands\": []}", "format 2"),
            (
                "{\"format\": 1, \"commands\": [], \"extra\": 1}",
                "unknown field `extra`",
            ),
            ("not json", ":1:2:"),
            ("", "EOF"),
        ];
        for (text, want) in cases {
            std::fs::write(&path, text).expect("write");
            let err = CommandCosts::load(&path).expect_err(text).to_string();
            assert!(err.starts_with(&path.display().to_string()), "{err}");
            assert!(err.contains(want), "{text:?}: {err}");
        }
        // A directory where the file should be: an I/O error naming it.
        let err = CommandCosts::load(dir.path()).expect_err("dir").to_string();
        assert!(err.starts_with(&dir.path().display().to_string()), "{err}");
    }

    #[test]
    fn newer_measurements_win_and_the_size_is_bounded() {
        let root = Path::new("/");
        let mut old = CommandCosts::new();
        old.record(root, &argv("a"), Duration::from_millis(1));
        old.record(root, &argv("b"), Duration::from_millis(2));
        let mut newer = CommandCosts::new();
        newer.record(root, &argv("a"), Duration::from_millis(9));
        old.merge_newer(newer);
        assert_eq!(
            old.expected(root, &argv("a")),
            Some(Duration::from_millis(9))
        );
        assert_eq!(
            old.expected(root, &argv("b")),
            Some(Duration::from_millis(2))
        );

        let mut big = CommandCosts::new();
        for i in 0..MAX_ENTRIES {
            big.record(root, &[format!("old{i}")], Duration::from_millis(1));
        }
        let mut fresh = CommandCosts::new();
        fresh.record(root, &argv("new"), Duration::from_millis(5));
        big.merge_newer(fresh);
        assert_eq!(big.len(), MAX_ENTRIES);
        assert_eq!(
            big.expected(root, &argv("new")),
            Some(Duration::from_millis(5))
        );
    }
}
