#!/usr/bin/env bash
# Benchmarks `rampart scan` end to end (a fresh process per run, as a user runs it) and prints
# the median wall time and median peak RSS of several runs for each scenario.
#   bash scripts/bench-scan.sh [RUNS]        (default 9)
# Needs GNU time (/usr/bin/time). Results go to stdout as a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-9}
cargo build --release --quiet
bin=target/release/rampart
fixtures=../shared/fixtures/sca
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
bench() {
  local name=$1; shift
  local walls=() rss=()
  "$@" >/dev/null 2>&1 || true   # warm the binary and the page cache once
  for _ in $(seq "$runs"); do
    /usr/bin/time -o "$tmp" -f "%e %M" "$@" >/dev/null 2>&1 || true
    out=$(tail -1 "$tmp")
    walls+=("$(echo "$out" | cut -d' ' -f1)")
    rss+=("$(echo "$out" | cut -d' ' -f2)")
  done
  local w r
  w=$(printf '%s\n' "${walls[@]}" | median)
  r=$(printf '%s\n' "${rss[@]}" | median)
  printf '| %s | %s | %.1f | %s |\n' "$name" "$w" "$(echo "$r/1024" | bc -l)" "$(printf '%s ' "${walls[@]}")"
}
echo "| scenario | median wall s | median max RSS MiB | all runs (s) |"
echo "| --- | --- | --- | --- |"
bench "cis_debian12.yml (207 checks), default pool" $bin scan -q --format json --policy $fixtures/cis_debian12.yml
bench "cis_debian12.yml, --jobs 1 (no parallelism)" $bin scan -q --format json --jobs 1 --policy $fixtures/cis_debian12.yml
bench "sca_unix_audit.yml" $bin scan -q --format json --policy $fixtures/sca_unix_audit.yml
bench "built-in baseline (121 checks)" $bin scan -q --format json
bench "built-in baseline, --root fixture-free /" $bin scan -q --format json --root /
