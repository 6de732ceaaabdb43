//! Per-scan state: the scan root, options, and the caches that make every distinct file read,
//! directory listing, command and process listing happen once per scan, however many checks need
//! it. Entries are `OnceLock`s so that two checks asking for the same command at the same time
//! wait for one run instead of starting two.

use crate::command::{self, CommandOutcome};
use crate::costs::CommandCosts;
use crate::fsroot::{FsError, FsRoot};
use crate::process::{self, ProcInfo};
use crate::slots::CpuSlots;
use std::collections::{BTreeSet, HashMap};
use std::fs::Metadata;
use std::hash::Hash;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Largest file read for content rules; the rest is ignored (and said so in evidence).
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Scan options.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Root directory to scan (`/` for the live host).
    pub root: PathBuf,
    /// Under a root other than `/`, run command rules chrooted into it (root only).
    pub chroot_commands: bool,
    /// Per-command timeout (Wazuh's `sca.commands_timeout`, default 30 s).
    pub command_timeout: Duration,
    /// Overall scan deadline; checks still waiting for a command when it passes are not run.
    pub deadline: Option<Duration>,
    /// Worker threads evaluating checks.
    pub jobs: usize,
    /// Commands that may keep a CPU busy at the same time ([`crate::slots`]).
    pub command_slots: usize,
    /// Treat NFS/CIFS directories as not applicable in `d:` rules (Wazuh's default).
    pub skip_nfs: bool,
    /// How policy requirements are judged.
    pub requirements: RequirementsMode,
}

/// How a policy's requirements (the "is this the system the policy is for" block) are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequirementsMode {
    /// Every rule, as Wazuh does on a live host.
    #[default]
    Host,
    /// Against an image's own identity: rules that read the running system (live kernel
    /// paths, processes, commands unless chrooted, sysctl, mounts) are left out and the image's
    /// files (`etc/os-release`, …) decide. A policy whose every requirement reads the running
    /// system cannot be judged and does not apply.
    Image,
    /// Not evaluated: the policy applies (the user says so).
    Skip,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            root: PathBuf::from("/"),
            chroot_commands: false,
            command_timeout: Duration::from_secs(30),
            deadline: None,
            jobs: default_jobs(),
            command_slots: default_command_slots(),
            skip_nfs: true,
            requirements: RequirementsMode::Host,
        }
    }
}

/// Default worker count: checks mostly wait on child processes, so more workers than cores pay
/// off; bounded so a scan never floods the host.
pub fn default_jobs() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores * 4).clamp(4, 32)
}

/// Default CPU slots for commands: one per core this process may use (the standard library
/// reads the cgroup CPU quota and the affinity mask), since the commands are CPU-bound.
pub fn default_command_slots() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// One line of a file as Wazuh reads it (`fgets` into a 2048-byte buffer, CR/LF trimmed).
#[derive(Debug, Clone)]
pub struct Line {
    /// Physical line number (1-based) the chunk starts on.
    pub number: u64,
    /// Bytes, cut at the first NUL as C string functions see them.
    pub text: Vec<u8>,
}

/// An entry of a directory listing, with the `lstat` of `dir/name`.
#[derive(Debug, Clone)]
pub struct DirEntry {
    /// File name.
    pub name: String,
    /// `lstat` result.
    pub meta: Result<Metadata, FsError>,
}

type Slot<T> = Arc<OnceLock<T>>;
type LinesSlot = Slot<Result<Arc<Vec<Line>>, FsError>>;
type DirSlot = Slot<Result<Arc<Vec<DirEntry>>, FsError>>;

/// Counters exposed so tests can prove the once-per-scan guarantee.
#[derive(Debug, Default)]
pub struct Counters {
    /// Commands actually started.
    pub commands_run: AtomicUsize,
    /// Files actually read.
    pub files_read: AtomicUsize,
    /// Directories actually listed.
    pub dirs_listed: AtomicUsize,
}

/// Shared state of one scan.
pub struct ScanContext {
    /// The scan root.
    pub root: FsRoot,
    /// Options.
    pub options: ScanOptions,
    started: Instant,
    resolved: Mutex<HashMap<String, Slot<Result<PathBuf, FsError>>>>,
    files: Mutex<HashMap<PathBuf, LinesSlot>>,
    dirs: Mutex<HashMap<String, DirSlot>>,
    commands: Mutex<HashMap<Vec<String>, Slot<Arc<CommandOutcome>>>>,
    processes: OnceLock<Result<Arc<Vec<ProcInfo>>, String>>,
    /// CPU slots shared by the scan's commands.
    pub slots: CpuSlots,
    /// Durations measured in earlier scans, for ordering work.
    expected: CommandCosts,
    /// Durations measured in this scan.
    measured: Mutex<CommandCosts>,
    /// Work counters.
    pub counters: Counters,
    /// Host paths the OS refused to let the scan read, for the report's warning.
    denied: Mutex<BTreeSet<String>>,
}

/// Locks `m`, poisoned or not: every value behind these locks is changed in single steps
/// (an insert, a record), so a panic elsewhere cannot leave one half-written.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn slot<K: Eq + Hash + Clone, T>(map: &Mutex<HashMap<K, Slot<T>>>, key: &K) -> Slot<T> {
    lock(map).entry(key.clone()).or_default().clone()
}

impl ScanContext {
    /// A fresh context (empty caches).
    pub fn new(options: ScanOptions) -> ScanContext {
        let slots = CpuSlots::new(options.command_slots);
        ScanContext {
            root: FsRoot::new(options.root.clone()),
            options,
            started: Instant::now(),
            resolved: Mutex::default(),
            files: Mutex::default(),
            dirs: Mutex::default(),
            commands: Mutex::default(),
            processes: OnceLock::new(),
            slots,
            expected: CommandCosts::new(),
            measured: Mutex::default(),
            counters: Counters::default(),
            denied: Mutex::default(),
        }
    }

    /// Orders this scan's work by what earlier scans measured ([`crate::costs`]).
    pub fn with_command_costs(mut self, costs: CommandCosts) -> ScanContext {
        self.expected = costs;
        self
    }

    /// How long `argv` took when an earlier scan ran it.
    pub fn expected_cost(&self, argv: &[String]) -> Option<Duration> {
        self.expected.expected(&self.options.root, argv)
    }

    /// How long each command this scan ran took (timed-out ones: until they were killed).
    pub fn measured_costs(&self) -> CommandCosts {
        lock(&self.measured).clone()
    }

    /// What the next scan should order its work by: this scan's measurements over the earlier
    /// ones ([`CommandCosts::merge_newer`]). `None` when this scan ran no command, so there is
    /// nothing new to keep.
    pub fn updated_costs(&self) -> Option<CommandCosts> {
        let measured = self.measured_costs();
        if measured.is_empty() {
            return None;
        }
        let mut costs = self.expected.clone();
        costs.merge_newer(measured);
        Some(costs)
    }

    /// `realpath` inside the root, cached.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, FsError> {
        slot(&self.resolved, &path.to_string())
            .get_or_init(|| {
                self.root.resolve(path).inspect_err(|e| {
                    self.note_denied(e, || self.root.path().join(path.trim_start_matches('/')))
                })
            })
            .clone()
    }

    /// The lines of a (resolved, regular) file, read once.
    pub fn lines(&self, host_path: &PathBuf) -> Result<Arc<Vec<Line>>, FsError> {
        slot(&self.files, host_path)
            .get_or_init(|| {
                self.counters.files_read.fetch_add(1, Ordering::Relaxed);
                read_lines(host_path)
                    .map(Arc::new)
                    .inspect_err(|e| self.note_denied(e, || host_path.clone()))
            })
            .clone()
    }

    fn note_denied(&self, e: &FsError, host_path: impl FnOnce() -> PathBuf) {
        if e.is_permission_denied() {
            lock(&self.denied).insert(host_path().display().to_string());
        }
    }

    /// The paths (on the host) the OS refused to let this scan read, sorted. The checks that
    /// needed them are not applicable, which an unprivileged scan must not pass off as complete.
    pub fn denied_paths(&self) -> Vec<String> {
        lock(&self.denied).iter().cloned().collect()
    }

    /// A directory listing (logical path), each entry `lstat`ed, read once.
    pub fn list_dir(&self, dir: &str) -> Result<Arc<Vec<DirEntry>>, FsError> {
        slot(&self.dirs, &dir.to_string())
            .get_or_init(|| {
                self.counters.dirs_listed.fetch_add(1, Ordering::Relaxed);
                let host = self.resolve(dir)?;
                let rd = std::fs::read_dir(&host)
                    .map_err(|e| FsError::from_io(&e))
                    .inspect_err(|e| self.note_denied(e, || host.clone()))?;
                let mut out = Vec::new();
                for entry in rd {
                    let entry = entry.map_err(|e| FsError::from_io(&e))?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let logical = format!("{dir}/{name}");
                    let meta = self.root.lstat(&logical);
                    out.push(DirEntry { name, meta });
                }
                Ok(Arc::new(out))
            })
            .clone()
    }

    /// Time left before the overall deadline (`None`: no deadline).
    pub fn remaining(&self) -> Option<Duration> {
        self.options
            .deadline
            .map(|d| d.saturating_sub(self.started.elapsed()))
    }

    /// Runs a command once per scan (keyed by its argument vector), honouring the per-command
    /// timeout and the overall deadline.
    pub fn command(&self, argv: &[String]) -> Arc<CommandOutcome> {
        slot(&self.commands, &argv.to_vec())
            .get_or_init(|| {
                // Past the deadline, a wait for a slot ends at once and the check below
                // reports it.
                let deadline = self.options.deadline.map(|d| self.started + d);
                let Some(mut slot) = self.slots.acquire(deadline) else {
                    return Arc::new(CommandOutcome::DeadlinePassed);
                };
                let mut timeout = self.options.command_timeout;
                if let Some(left) = self.remaining() {
                    if left.is_zero() {
                        return Arc::new(CommandOutcome::DeadlinePassed);
                    }
                    timeout = timeout.min(left);
                }
                self.counters.commands_run.fetch_add(1, Ordering::Relaxed);
                let chroot = (!self.root.is_host() && self.options.chroot_commands)
                    .then(|| self.root.path());
                let started = self.started.elapsed();
                let outcome = command::run_in_slot(argv, timeout, chroot, Some(&mut slot));
                let took = self.started.elapsed() - started;
                tracing::debug!(
                    command = argv.join(" "),
                    started_ms = started.as_millis() as u64,
                    took_ms = took.as_millis() as u64,
                    "command finished"
                );
                lock(&self.measured).record(&self.options.root, argv, took);
                Arc::new(outcome)
            })
            .clone()
    }

    /// The process list, read once.
    pub fn processes(&self) -> Result<Arc<Vec<ProcInfo>>, String> {
        self.processes
            .get_or_init(|| process::list().map(Arc::new))
            .clone()
    }
}

/// Reads a file into Wazuh-style lines: `fgets` chunks of at most 2047 bytes, CR/LF trimmed, cut
/// at the first NUL.
fn read_lines(path: &PathBuf) -> Result<Vec<Line>, FsError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| FsError::from_io(&e))?;
    let mut content = Vec::new();
    file.take(MAX_FILE_BYTES)
        .read_to_end(&mut content)
        .map_err(|e| FsError::from_io(&e))?;
    Ok(split_fgets(&content))
}

/// Splits content as repeated `fgets(buf, 2048, fp)` calls would.
pub fn split_fgets(content: &[u8]) -> Vec<Line> {
    const CHUNK: usize = 2047;
    let mut out = Vec::new();
    let mut pos = 0;
    let mut line_no: u64 = 1;
    while pos < content.len() {
        let rest = &content[pos..];
        let limit = rest.len().min(CHUNK);
        let (len, ends_line) = match rest[..limit].iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (limit, false),
        };
        let chunk = &rest[..len];
        let mut text = match chunk.iter().position(|b| *b == 0) {
            Some(i) => chunk[..i].to_vec(),
            None => chunk.to_vec(),
        };
        command::trim_crlf(&mut text);
        out.push(Line {
            number: line_no,
            text,
        });
        if ends_line {
            line_no += 1;
        }
        pos += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fgets_chunks_long_lines() {
        let mut content = vec![b'a'; 3000];
        content.extend_from_slice(b"\nshort\r\n");
        let lines = split_fgets(&content);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].text.len(), 2047);
        assert_eq!(lines[1].text.len(), 953);
        assert_eq!(
            (lines[2].number, lines[2].text.as_slice()),
            (2, &b"short"[..])
        );
    }
}
