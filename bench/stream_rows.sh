#!/usr/bin/env bash
# Streams N rows (default 10 million) through ctx.db:rows and reports the peak RSS of the
# runbook process, beside the RSS of a one-step runbook that touches no rows (the baseline).
# Target: peak RSS under 64 MiB.
# Usage: bench/stream_rows.sh [rows]
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-10000000}"
[ -x build/runbook ] || scripts/build release >/dev/null
work=$(mktemp -d)
bench_cleanup="rm -rf $work"
source bench/lib/pg.sh
export RUNBOOK_STATE_DIR="$work/state" RUNBOOK_PATH="$PWD/bench/runbooks"
peak() { /usr/bin/time -f '%M %e' "$@" 2>&1 >/dev/null | tail -1; }
read -r base_kb base_s < <(peak ./build/runbook run bench.stream --dsn "$BENCH_DSN" --param rows=1)
read -r kb s < <(peak ./build/runbook run bench.stream --dsn "$BENCH_DSN" --param rows="$rows")
awk -v b="$base_kb" -v k="$kb" -v s="$s" -v n="$rows" 'BEGIN {
  printf "baseline (1 row):       peak RSS %6.1f MiB\n", b / 1024
  printf "%d rows:          peak RSS %6.1f MiB in %.1f s (%.0f rows/s)\n", n, k / 1024, s, n / s
  printf "ratio to baseline: %.2f; target < 64 MiB: %s\n", k / b, (k / 1024 < 64 ? "met" : "MISSED") }'
