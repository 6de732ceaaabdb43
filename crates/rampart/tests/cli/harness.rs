//! Running the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn rampart(args: &[&str]) -> Output {
    // Scans keep a command-costs cache under XDG_CACHE_HOME: keep the tests' out of $HOME.
    let cache = std::env::temp_dir().join(format!("rampart-cli-tests-{}", std::process::id()));
    rampart_env(args, &[("XDG_CACHE_HOME", cache.as_path())])
}

/// [`rampart`] with extra environment variables.
pub fn rampart_env(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rampart"));
    cmd.args(args).env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run rampart")
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
