#!/usr/bin/env bash
# The whole test suite: installs what the tests need (OpenSCAP, to produce real result files),
# then runs every test of the workspace and prints one summary line over all test binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-test-deps.sh
# The PostgreSQL backend tests run against a real server. When one answers, require it (a
# connection failure mid-run is then a failure, not a skip); when none does, say so loudly.
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
if pg_isready -q -d "$DATABASE_URL" 2>/dev/null; then
  export RAMPART_REQUIRE_POSTGRES=1
  echo "PostgreSQL backend tests: against $DATABASE_URL"
else
  echo "PostgreSQL backend tests: SKIPPED — no server answers at $DATABASE_URL" >&2
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# --no-fail-fast: one failing test binary must not hide the results of the others.
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log" || status=$?
# cargo prints one "test result:" line per test binary; the last one is often an empty doc-test
# run, so add them up for a total a reader (and CI) can see at a glance.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "summary: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
