//! Shared helpers: fixture trees, policy loading, scanning, and result lookup.

use rampart_core::{PolicyReport, Status};
use rampart_engine::{ScanContext, ScanOptions};
use rampart_policy::{LoadOptions, Policy, load_bytes};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A fixture root directory built file by file.
pub struct Tree {
    pub dir: tempfile::TempDir,
}

impl Tree {
    pub fn new() -> Tree {
        Tree {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn host(&self, logical: &str) -> PathBuf {
        self.dir.path().join(logical.trim_start_matches('/'))
    }

    /// Writes a file (parents created).
    pub fn file(&self, logical: &str, content: &str) -> &Tree {
        let p = self.host(logical);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, content).expect("write");
        self
    }

    /// Writes a file with a mode.
    pub fn file_mode(&self, logical: &str, content: &str, mode: u32) -> &Tree {
        use std::os::unix::fs::PermissionsExt;
        self.file(logical, content);
        std::fs::set_permissions(self.host(logical), std::fs::Permissions::from_mode(mode))
            .expect("chmod");
        self
    }

    /// Creates a directory.
    pub fn dir(&self, logical: &str) -> &Tree {
        std::fs::create_dir_all(self.host(logical)).expect("mkdir");
        self
    }

    /// Creates a directory with a mode.
    pub fn dir_mode(&self, logical: &str, mode: u32) -> &Tree {
        use std::os::unix::fs::PermissionsExt;
        self.dir(logical);
        std::fs::set_permissions(self.host(logical), std::fs::Permissions::from_mode(mode))
            .expect("chmod");
        self
    }

    /// Creates a symlink at `logical` pointing to `target` (as written, absolute or relative).
    pub fn symlink(&self, logical: &str, target: &str) -> &Tree {
        let p = self.host(logical);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::os::unix::fs::symlink(target, p).expect("symlink");
        self
    }
}

pub fn load(yaml: &str) -> Policy {
    load_bytes(yaml.as_bytes(), "test.yml", LoadOptions::default())
        .unwrap_or_else(|e| panic!("policy does not load:\n{e}"))
}

pub fn options(root: &Path) -> ScanOptions {
    ScanOptions {
        root: root.to_path_buf(),
        command_timeout: Duration::from_secs(20),
        ..ScanOptions::default()
    }
}

/// Scans one policy and returns its report and the context (for counters).
pub fn scan_with(policy: &Policy, options: ScanOptions) -> (PolicyReport, ScanContext) {
    let ctx = ScanContext::new(options);
    let mut reports = rampart_engine::scan(&ctx, std::slice::from_ref(policy), &|_, _| {});
    (reports.remove(0), ctx)
}

pub fn scan_root(policy: &Policy, root: &Path) -> PolicyReport {
    scan_with(policy, options(root)).0
}

/// Status and reason of a check.
pub fn result(report: &PolicyReport, id: &str) -> (Status, String) {
    let c = report
        .checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| {
            panic!(
                "no check {id} in report; have {:?}",
                report.checks.iter().map(|c| &c.id).collect::<Vec<_>>()
            )
        });
    (c.status, c.reason.clone().unwrap_or_default())
}

pub fn status(report: &PolicyReport, id: &str) -> Status {
    result(report, id).0
}

/// Builds a 4.x SCA policy with one check per (id, condition, rules).
pub fn sca4(checks: &[(u32, &str, &[&str])]) -> String {
    sca(checks, "title", "")
}

/// Same, in the 5.x schema.
pub fn sca5(checks: &[(u32, &str, &[&str])]) -> String {
    sca(checks, "name", "")
}

pub fn sca(checks: &[(u32, &str, &[&str])], title_key: &str, extra_header: &str) -> String {
    let mut y = format!(
        "policy:\n  id: test\n  file: test.yml\n  name: Test policy\n  description: test\n{extra_header}checks:\n"
    );
    for (id, cond, rules) in checks {
        y.push_str(&format!(
            "  - id: {id}\n    {title_key}: check {id}\n    condition: {cond}\n    rules:\n"
        ));
        for r in *rules {
            y.push_str(&format!("      - '{}'\n", r.replace('\'', "''")));
        }
    }
    y
}
