//! Running SCA commands: no shell, stdout and stderr merged into one pipe, a timeout that kills
//! the whole process group, and Wazuh's reading of exit status 127 as "could not run".

use rustix::event::{PollFd, PollFlags, poll};
use rustix::process::{Pid, Signal, kill_process_group};
use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::slots::Slot;

/// Output beyond this is dropped (Wazuh also caps command output).
const MAX_OUTPUT: usize = 64 * 1024 * 1024;

/// `PATH` for policy commands: the one systemd gives services such as the Wazuh agent. A fixed
/// value keeps results independent of whoever runs the scan and stops a writable directory early
/// in a user's `PATH` from substituting the programs a policy runs.
pub const COMMAND_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What happened when a command ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandOutcome {
    /// It ran to completion.
    Exited {
        /// Exit status (or 128+signal when killed by a signal).
        code: i32,
        /// stdout and stderr, interleaved as written.
        output: Vec<u8>,
    },
    /// It did not finish in time and was killed.
    TimedOut,
    /// It could not be started (not found, not executable): Wazuh's exit status 127.
    NotStarted(String),
    /// It was not started because the scan's overall deadline had passed.
    DeadlinePassed,
}

impl CommandOutcome {
    /// Wazuh treats exit status 127 (its own execvp-failure code, and a shell's "command not
    /// found") as "could not run the command".
    pub fn is_exec_failure(&self) -> bool {
        matches!(
            self,
            CommandOutcome::NotStarted(_) | CommandOutcome::Exited { code: 127, .. }
        )
    }
}

/// Runs `argv` (the first element looked up in `PATH`) with a timeout. `chroot` runs it inside
/// that directory through the system's `chroot` command.
pub fn run(argv: &[String], timeout: Duration, chroot: Option<&std::path::Path>) -> CommandOutcome {
    run_in_slot(argv, timeout, chroot, None)
}

/// [`run`], holding a CPU slot (see [`crate::slots`]) while the command keeps a CPU busy: the
/// slot is given back as soon as the command is seen asleep twice in a row, or its output ends.
pub fn run_in_slot(
    argv: &[String],
    timeout: Duration,
    chroot: Option<&std::path::Path>,
    slot: Option<&mut Slot<'_>>,
) -> CommandOutcome {
    let mut full: Vec<std::ffi::OsString> = Vec::new();
    if let Some(dir) = chroot {
        full.push("chroot".into());
        full.push(dir.as_os_str().to_os_string());
    }
    full.extend(argv.iter().map(Into::into));
    let Some((program, args)) = full.split_first() else {
        return CommandOutcome::NotStarted("empty command".into());
    };
    match spawn_and_collect(program, args, timeout, slot) {
        Ok(outcome) => outcome,
        Err(e) => CommandOutcome::NotStarted(e.to_string()),
    }
}

fn spawn_and_collect(
    program: &std::ffi::OsString,
    args: &[std::ffi::OsString],
    timeout: Duration,
    slot: Option<&mut Slot<'_>>,
) -> io::Result<CommandOutcome> {
    let (mut reader, writer) = io::pipe()?;
    let path = find_program(program)?;
    let spawn = |exe: &Path, arg0: &OsStr, leading: Option<&Path>| -> io::Result<Child> {
        let mut cmd = Command::new(exe);
        cmd.arg0(arg0)
            .args(leading)
            .args(args)
            .env("PATH", COMMAND_PATH)
            .stdin(Stdio::null())
            .stdout(writer.try_clone()?)
            .stderr(writer.try_clone()?)
            .process_group(0);
        cmd.spawn()
    };
    let mut child = match spawn(&path, program, None) {
        // `execvp` runs an executable without a `#!` line through the shell; so does this.
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOEXEC.raw_os_error()) => {
            spawn(Path::new("/bin/sh"), OsStr::new("/bin/sh"), Some(&path))?
        }
        other => other?,
    };
    // Drop our write end (the children hold their own) so EOF arrives when the child exits.
    drop(writer);
    let pgid = Pid::from_child(&child);
    let mut watch = SlotWatch::new(slot, pgid);
    let deadline = Instant::now() + timeout;
    let mut output = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut timed_out = false;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            timed_out = true;
            break;
        }
        let ts = timespec(watch.wait(remaining));
        let mut fds = [PollFd::new(&reader, PollFlags::IN | PollFlags::HUP)];
        let polled = poll(&mut fds, Some(&ts));
        watch.look();
        match polled {
            Ok(0) => continue,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if output.len() < MAX_OUTPUT {
                    let take = n.min(MAX_OUTPUT - output.len());
                    output.extend_from_slice(&buf[..take]);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    watch.release();
    if !timed_out {
        // Output closed; the process normally exits right away, but do not wait past the deadline.
        // A pidfd becomes readable when the process exits, so this waits without polling.
        let pidfd = rustix::process::pidfd_open(pgid, rustix::process::PidfdFlags::empty()).ok();
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(CommandOutcome::Exited {
                    code: exit_code(status),
                    output,
                });
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                timed_out = true;
                break;
            }
            match &pidfd {
                Some(fd) => {
                    let ts = timespec(remaining);
                    let mut fds = [PollFd::new(fd, PollFlags::IN)];
                    match poll(&mut fds, Some(&ts)) {
                        Ok(_) | Err(rustix::io::Errno::INTR) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                // Kernels without pidfd (before 5.3): check again shortly.
                None => std::thread::sleep(Duration::from_millis(2).min(remaining)),
            }
        }
    }
    debug_assert!(timed_out);
    let _ = kill_process_group(pgid, Signal::KILL);
    let _ = child.kill();
    let _ = child.wait();
    Ok(CommandOutcome::TimedOut)
}

fn timespec(d: Duration) -> rustix::time::Timespec {
    rustix::time::Timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

/// How often a command holding a CPU slot is looked at.
const SLOT_LOOK_EVERY: Duration = Duration::from_millis(20);

/// Watches a running command on behalf of its CPU slot. A command counts as busy while the
/// kernel reports it, or one of its descendants, runnable (`R`): a shell running a pipeline
/// sleeps while the pipeline computes. Waiting for a core still shows `R`, so a loaded machine
/// does not make a busy command look idle. Two sleeping looks in a row give the slot back: one
/// could be a short read between bursts of work.
struct SlotWatch<'s, 'a> {
    slot: Option<&'s mut Slot<'a>>,
    pid: u32,
    next_look: Instant,
    asleep: u8,
}

impl<'s, 'a> SlotWatch<'s, 'a> {
    fn new(slot: Option<&'s mut Slot<'a>>, pid: Pid) -> Self {
        SlotWatch {
            slot: slot.filter(|s| s.is_held()),
            pid: pid.as_raw_nonzero().get().unsigned_abs(),
            next_look: Instant::now() + SLOT_LOOK_EVERY,
            asleep: 0,
        }
    }

    /// How long the caller may block before the next look.
    fn wait(&self, remaining: Duration) -> Duration {
        match self.slot {
            Some(_) => remaining.min(self.next_look.saturating_duration_since(Instant::now())),
            None => remaining,
        }
    }

    fn look(&mut self) {
        if self.slot.is_none() || Instant::now() < self.next_look {
            return;
        }
        self.next_look = Instant::now() + SLOT_LOOK_EVERY;
        if tree_runnable(self.pid, TREE_DEPTH) {
            self.asleep = 0;
        } else {
            self.asleep += 1;
            if self.asleep >= 2 {
                self.release();
            }
        }
    }

    fn release(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.release();
        }
    }
}

/// How many generations below a command are looked at (`sh -c "a | b"` is one).
const TREE_DEPTH: u8 = 3;

/// Whether `pid`, or a descendant down to `depth` generations, is running or runnable. Children
/// come from `/proc/PID/task/PID/children` (a single-threaded parent's, which a shell is).
fn tree_runnable(pid: u32, depth: u8) -> bool {
    if process_runnable(pid) {
        return true;
    }
    depth > 0
        && std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).is_ok_and(
            |children| {
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse().ok())
                    .any(|child| tree_runnable(child, depth - 1))
            },
        )
}

/// Whether `/proc/PID/stat` says the process is running or runnable. The state is the first
/// field after the command name, which is in parentheses and may itself contain `)`.
fn process_runnable(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/stat")).is_ok_and(|text| {
        text.iter()
            .rposition(|b| *b == b')')
            .and_then(|i| text.get(i + 2))
            == Some(&b'R')
    })
}

/// Finds `program` in [`COMMAND_PATH`] the way `execvp` does: a name with a `/` is used as it is;
/// otherwise the first regular file with execute permission wins, and when none is found the
/// error is `EACCES` if a candidate existed without permission, else `ENOENT`.
///
/// Why not let the standard library search: when a child's `PATH` differs from ours, it cannot
/// hand a bare name to `posix_spawnp` (that would search *our* `PATH`) and falls back to `fork`.
/// A `fork` copies the page tables of a multi-threaded scanner and makes every page the other
/// workers then write copy-on-write; with an absolute path it spawns with `CLONE_VFORK` instead,
/// which on a 200-command policy saves a measurable share of the scan's CPU time.
pub fn find_program(program: &OsStr) -> io::Result<PathBuf> {
    use rustix::io::Errno;
    use std::os::unix::ffi::OsStrExt;
    if program.is_empty() {
        return Err(io::Error::from_raw_os_error(Errno::NOENT.raw_os_error()));
    }
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    let mut denied = false;
    for dir in COMMAND_PATH.split(':') {
        let candidate = Path::new(if dir.is_empty() { "." } else { dir }).join(program);
        match std::fs::metadata(&candidate) {
            Ok(meta) if meta.is_file() => {
                match rustix::fs::access(&candidate, rustix::fs::Access::EXEC_OK) {
                    Ok(()) => return Ok(candidate),
                    Err(_) => denied = true,
                }
            }
            // A directory: `execve` fails with EACCES and `execvp` goes on.
            Ok(_) => denied = true,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => denied = true,
            Err(_) => {}
        }
    }
    let errno = if denied { Errno::ACCESS } else { Errno::NOENT };
    Err(io::Error::from_raw_os_error(errno.raw_os_error()))
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Splits command output into lines the way Wazuh's `OS_StrBreak('\n', out, 256)` does: at most
/// 256 pieces (the last holds the rest), a backslash before a newline joins the lines (the
/// backslash is removed, the newline kept), output is cut at the first NUL, and each piece has
/// trailing CR/LF removed.
pub fn break_lines(output: &[u8]) -> Vec<Vec<u8>> {
    const MAX_PIECES: usize = 256;
    let output = match output.iter().position(|b| *b == 0) {
        Some(i) => &output[..i],
        None => output,
    };
    let mut pieces: Vec<Vec<u8>> = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    let mut prev: Option<u8> = None;
    for &b in output {
        if b == b'\n' && pieces.len() < MAX_PIECES - 1 {
            if prev == Some(b'\\') {
                cur.pop();
                cur.push(b'\n');
                prev = Some(b'\n');
                continue;
            }
            pieces.push(std::mem::take(&mut cur));
            prev = Some(b);
            continue;
        }
        cur.push(b);
        prev = Some(b);
    }
    pieces.push(cur);
    for p in &mut pieces {
        trim_crlf(p);
    }
    pieces
}

/// Removes trailing `\r` and `\n` (Wazuh's `os_trimcrlf`).
pub fn trim_crlf(line: &mut Vec<u8>) {
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn break_lines_like_os_strbreak() {
        assert_eq!(
            break_lines(b"a\nb\n"),
            vec![b"a".to_vec(), b"b".to_vec(), b"".to_vec()]
        );
        assert_eq!(break_lines(b""), vec![b"".to_vec()]);
        assert_eq!(break_lines(b"a\\\nb"), vec![b"a\nb".to_vec()]);
        assert_eq!(break_lines(b"a\r\nb"), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(break_lines(b"a\0b\nc"), vec![b"a".to_vec()]);
        let many: Vec<u8> = (0..300).flat_map(|_| b"x\n".iter().copied()).collect();
        let lines = break_lines(&many);
        assert_eq!(lines.len(), 256);
        assert_eq!(lines[255].iter().filter(|b| **b == b'\n').count(), 44);
    }

    #[test]
    fn runs_without_shell_and_merges_stderr() {
        let argv = ["sh", "-c", "echo out; echo err 1>&2; exit 3"].map(String::from);
        match run(&argv, Duration::from_secs(10), None) {
            CommandOutcome::Exited { code, output } => {
                assert_eq!(code, 3);
                let text = String::from_utf8_lossy(&output);
                assert!(text.contains("out") && text.contains("err"), "{text}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn missing_program_is_exec_failure() {
        let argv = ["/nonexistent/rampart-test-binary".to_string()];
        assert!(run(&argv, Duration::from_secs(5), None).is_exec_failure());
        let argv = ["sh", "-c", "exit 127"].map(String::from);
        assert!(run(&argv, Duration::from_secs(5), None).is_exec_failure());
    }

    #[test]
    fn finds_programs_as_execvp_does() {
        // The first directory of COMMAND_PATH holding an executable `sh` wins.
        let expected = COMMAND_PATH
            .split(':')
            .map(|d| Path::new(d).join("sh"))
            .find(|p| p.is_file())
            .expect("sh somewhere on COMMAND_PATH");
        assert_eq!(find_program(OsStr::new("sh")).expect("sh"), expected);
        // A name with a slash is not searched for.
        assert_eq!(
            find_program(OsStr::new("./no/such")).expect("kept"),
            PathBuf::from("./no/such")
        );
        for missing in ["rampart-no-such-program", ""] {
            let err = find_program(OsStr::new(missing)).expect_err(missing);
            assert_eq!(err.kind(), io::ErrorKind::NotFound, "{missing}: {err}");
        }
    }

    #[test]
    fn keeps_argv0_and_runs_scripts_without_shebang_through_sh() {
        // Multi-call binaries (busybox) dispatch on argv[0]: it must stay the bare name.
        let argv = ["sh", "-c", "tr '\\0' ' ' < /proc/$$/cmdline"].map(String::from);
        match run(&argv, Duration::from_secs(10), None) {
            CommandOutcome::Exited { code: 0, output } => {
                assert!(
                    output.starts_with(b"sh -c "),
                    "{:?}",
                    String::from_utf8_lossy(&output)
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        // An executable text file with no `#!` line: execvp hands it to /bin/sh.
        let dir = tempfile::tempdir().expect("tmp");
        let script = dir.path().join("plain");
        std::fs::write(&script, "echo \"ran with $1\"\n").expect("write");
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let argv = [script.display().to_string(), "arg".into()];
        assert_eq!(
            run(&argv, Duration::from_secs(10), None),
            CommandOutcome::Exited {
                code: 0,
                output: b"ran with arg\n".to_vec()
            }
        );
    }

    #[test]
    fn closing_output_early_still_waits_for_exit_then_times_out() {
        // Output closed, then the process exits: its exit status is reported.
        let argv = ["sh", "-c", "echo early; exec >&- 2>&-; sleep 0.2; exit 4"].map(String::from);
        match run(&argv, Duration::from_secs(10), None) {
            CommandOutcome::Exited { code, output } => {
                assert_eq!(code, 4);
                assert_eq!(output, b"early\n");
            }
            other => panic!("unexpected {other:?}"),
        }
        // Output closed and the process never exits: the timeout still applies.
        let argv = ["sh", "-c", "exec >&- 2>&-; sleep 30"].map(String::from);
        assert_eq!(
            run(&argv, Duration::from_millis(300), None),
            CommandOutcome::TimedOut
        );
    }

    #[test]
    fn timeout_kills_process_group() {
        let dir = tempfile::tempdir().expect("tmp");
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 30 & echo $! > {}; sleep 30", pidfile.display());
        let argv = ["sh".to_string(), "-c".to_string(), script];
        assert_eq!(
            run(&argv, Duration::from_millis(300), None),
            CommandOutcome::TimedOut
        );
        // The background grandchild belonged to the same process group and must be gone (or a
        // zombie waiting for its new parent), not left running.
        let pid = std::fs::read_to_string(&pidfile).expect("pid written");
        let alive = || {
            std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).is_ok_and(|stat| {
                stat.rsplit(')')
                    .next()
                    .and_then(|s| s.split_whitespace().next())
                    != Some("Z")
            })
        };
        // SIGKILL is asynchronous: give the kernel a moment before concluding.
        let mut tries = 0;
        while alive() && tries < 500 {
            std::thread::sleep(Duration::from_millis(10));
            tries += 1;
        }
        assert!(!alive(), "grandchild {} still running", pid.trim());
    }
}
