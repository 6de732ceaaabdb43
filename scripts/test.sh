#!/usr/bin/env bash
# The whole test suite: installs what the tests need (OpenSCAP, to produce real result files),
# then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-test-deps.sh
cargo test --workspace --locked
