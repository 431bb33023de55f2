#!/usr/bin/env bash
# Start-to-exit time of `runbook run` on a one-step runbook (audit fsync on), beside `true`
# and `psql --version` run the same way. Target: well under 50 ms.
# Usage: bench/cli_startup.sh [iterations]   (builds the release binary first if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-50}"
[ -x build/runbook ] || scripts/build release >/dev/null
state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
export RUNBOOK_STATE_DIR="$state" RUNBOOK_PATH="$PWD/bench/runbooks"
psql_bin=$(command -v psql || echo /usr/lib/postgresql/15/bin/psql)

measure() {  # prints mean milliseconds of n runs of "$@"
  local start end
  "$@" >/dev/null 2>&1  # warm the page cache
  start=$(date +%s%N)
  for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1; done
  end=$(date +%s%N)
  awk -v a="$start" -v b="$end" -v n="$n" 'BEGIN { printf "%.2f", (b - a) / n / 1e6 }' 
}

t_true=$(measure true)
t_psql=$(measure "$psql_bin" --version)
t_run=$(measure ./build/runbook run bench.one_step)
printf '%-34s %8s ms\n' "true" "$t_true" "psql --version" "$t_psql" "runbook run bench.one_step" "$t_run"
awk -v r="$t_run" -v p="$t_psql" -v t="$t_true" 'BEGIN { printf "ratio runbook/psql: %.2f   runbook/true: %.1f\n", r / p, r / t }' 
records=$(wc -l < "$state/audit.jsonl")
echo "audit records written: $records ($(( records / (n + 1) )) per run, each fsynced)"
awk -v t="$t_run" 'BEGIN { exit !(t < 50) }' && echo "target < 50 ms: met" || echo "target < 50 ms: MISSED"
