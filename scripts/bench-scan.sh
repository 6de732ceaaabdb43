#!/usr/bin/env bash
# Benchmarks `rampart scan` end to end (a fresh process per run, as a user runs it) and prints
# the median wall time, median CPU time (user + sys, the scan and its commands) and median peak
# RSS of several runs for each scenario.
#   bash scripts/bench-scan.sh [RUNS]        (default 9)
# Needs GNU time (/usr/bin/time); the page-cache-cold scenario also needs root. Results go to
# stdout as a Markdown table. The command-costs cache lives in a temporary directory, so the
# user's own cache is neither used nor changed.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-9}
cargo build --release --quiet
bin=target/release/rampart
fixtures=../shared/fixtures/sca
tmp=$(mktemp)
XDG_CACHE_HOME=$(mktemp -d)
export XDG_CACHE_HOME
trap 'rm -rf "$tmp" "$XDG_CACHE_HOME"' EXIT
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# BEFORE_EACH, when set, is run before every timed run (used to drop the page cache).
bench() {
  local name=$1; shift
  local walls=() cpus=() rss=()
  "$@" >/dev/null 2>&1 || true   # warm the binary, the page cache (and the costs cache) once
  for _ in $(seq "$runs"); do
    if [ -n "${BEFORE_EACH:-}" ]; then eval "$BEFORE_EACH"; fi
    /usr/bin/time -o "$tmp" -f "%e %U %S %M" "$@" >/dev/null 2>&1 || true
    read -r wall user sys maxrss < <(tail -1 "$tmp")
    walls+=("$wall")
    cpus+=("$(echo "$user + $sys" | bc -l)")
    rss+=("$maxrss")
  done
  local w c r
  w=$(printf '%s\n' "${walls[@]}" | median)
  c=$(printf '%s\n' "${cpus[@]}" | median)
  r=$(printf '%s\n' "${rss[@]}" | median)
  printf '| %s | %s | %s | %.1f | %s |\n' "$name" "$w" "$c" "$(echo "$r/1024" | bc -l)" "$(printf '%s ' "${walls[@]}")"
}
cis=$fixtures/cis_debian12.yml
echo "| scenario | median wall s | median CPU s | median max RSS MiB | all runs, wall (s) |"
echo "| --- | --- | --- | --- | --- |"
bench "cis_debian12.yml (207 checks), later scans (costs cache)" $bin scan -q --format json --policy $cis
bench "cis_debian12.yml, first scan on the host (--no-cost-cache)" $bin scan -q --format json --no-cost-cache --policy $cis
bench "cis_debian12.yml, CPU slots off (--command-slots 64), costs cache" $bin scan -q --format json --command-slots 64 --policy $cis
bench "cis_debian12.yml, --jobs 1 (no parallelism)" $bin scan -q --format json --jobs 1 --policy $cis
bench "sca_unix_audit.yml" $bin scan -q --format json --policy $fixtures/sca_unix_audit.yml
bench "built-in baseline (121 checks)" $bin scan -q --format json
bench "built-in baseline, --root fixture-free /" $bin scan -q --format json --root /
# A truly cold run: the kernel's page cache is dropped before each run, so the binary, the
# libraries and every file the checks read come from disk. Needs root (writable drop_caches).
if [ -w /proc/sys/vm/drop_caches ]; then
  BEFORE_EACH='sync; echo 3 > /proc/sys/vm/drop_caches' bench "built-in baseline, page cache dropped before each run" $bin scan -q --format json
else
  echo "(page-cache-cold scenario skipped: /proc/sys/vm/drop_caches is not writable; run as root)"
fi
