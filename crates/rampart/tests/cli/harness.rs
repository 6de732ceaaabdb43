//! Running the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn rampart(args: &[&str]) -> Output {
    // Scans keep a command-costs cache under XDG_CACHE_HOME: keep the tests' out of $HOME.
    let cache = std::env::temp_dir().join(format!("rampart-cli-tests-{}", std::process::id()));
    rampart_env(args, &[("XDG_CACHE_HOME", cache.as_path())])
}

/// No CLI test waits longer than this for one command: a command that hangs fails its test
/// with its arguments instead of holding CI until its own limit.
const COMMAND_DEADLINE: std::time::Duration = std::time::Duration::from_secs(300);

/// [`rampart`] with extra environment variables.
pub fn rampart_env(args: &[&str], env: &[(&str, &Path)]) -> Output {
    use std::io::Read as _;
    use std::process::Stdio;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rampart"));
    cmd.args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run rampart");
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for rampart") {
            break status;
        }
        if started.elapsed() > COMMAND_DEADLINE {
            let _ = child.kill();
            panic!("rampart {args:?} did not finish within {COMMAND_DEADLINE:?}: it hangs");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn shared(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared")
        .join(rel)
}

pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&p, content).expect("write");
    p
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// compliance-trestle's virtual environment (scripts/setup-test-deps.sh).
pub const TRESTLE_PYTHON: &str = "/opt/rampart-test/trestle/bin/python";

/// What compliance-trestle read from an OSCAL assessment-results file (the server tests' script,
/// `crates/rampart-server/tests/oscal/check_ar.py`), after `trestle validate` passed it.
pub fn trestle_read(file: &Path) -> serde_json::Value {
    assert!(
        Path::new(TRESTLE_PYTHON).exists(),
        "{TRESTLE_PYTHON} is missing: run scripts/setup-test-deps.sh"
    );
    let out = std::process::Command::new(TRESTLE_PYTHON)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../rampart-server/tests/oscal/check_ar.py"
        ))
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "trestle refused {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        read["validate"]["output"]
            .as_str()
            .is_some_and(|o| o.starts_with("VALID:")),
        "{}",
        read["validate"]
    );
    read
}
