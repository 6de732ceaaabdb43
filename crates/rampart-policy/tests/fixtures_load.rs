//! Every real Wazuh SCA policy in `../shared/fixtures/sca` loads with zero errors.

use rampart_policy::{LoadOptions, load_file};
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/sca")
}

#[test]
fn all_shared_sca_fixtures_load() {
    let dir = fixtures();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .chain(std::fs::read_dir(dir.join("v5")).expect("v5 dir"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 7,
        "expected the shared SCA fixtures, found {files:?}"
    );
    for f in files {
        let p = load_file(&f, LoadOptions::default())
            .unwrap_or_else(|e| panic!("{} failed to load:\n{e}", f.display()));
        assert!(!p.checks.is_empty(), "{} has no checks", f.display());
    }
}
