#!/usr/bin/env bash
# A fleet run over 16 targets (16 databases on one throwaway server, a config with 16 targets):
# `runbook run bench.fleet --target 'shard-*'` at --parallel 8 beside --parallel 1 (the same
# runs one after another). Each target's run loads ROWS rows, indexes and analyzes them (CPU and
# disk on the one server), plus SLEEP seconds of pg_sleep (waiting, as on a remote database).
# Reports both wall times and the speedup; the ceiling is min(8, what the server's cores give
# for the database-bound part).
# Usage: bench/fleet.sh [rows] [sleep-seconds] [targets] [parallel]
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-200000}"
sleep_s="${2:-0}"
targets="${3:-16}"
parallel="${4:-8}"
[ -x build/runbook ] || scripts/build release runbook >/dev/null
work=$(mktemp -d)
bench_cleanup="rm -rf $work"
source bench/lib/pg.sh
export RUNBOOK_STATE_DIR="$work/state" RUNBOOK_PATH="$PWD/bench/runbooks"
rb="$PWD/build/runbook"

{
  echo "return { targets = {"
  for ((i = 1; i <= targets; i++)); do
    db=$(printf 'shard_%02d' "$i")
    as_pg "$pg_bin/psql" -X -q -d postgres -c "create database $db" >/dev/null
    printf "  ['shard-%02d'] = { dsn = 'host=%s port=5432 user=postgres dbname=%s' },\n" "$i" "$bench_pg_dir" "$db"
  done
  echo "} }"
} > "$work/runbook.lua"

now() { date +%s%N; }
fleet() {  # fleet PARALLEL -> wall milliseconds; the run must succeed on every target
  local t0 t1 rc=0
  t0=$(now)
  (cd "$work" && "$rb" run bench.fleet --target 'shard-*' --parallel "$1" --param "rows=$rows" \
      --param "sleep=$sleep_s" --json > "$work/fleet-$1.json" 2> "$work/fleet-$1.err") || rc=$?
  t1=$(now)
  if [ "$rc" -ne 0 ]; then
    echo "fleet run at --parallel $1 exited $rc:" >&2
    cat "$work/fleet-$1.err" "$work/fleet-$1.json" >&2
    exit 1
  fi
  echo $(((t1 - t0) / 1000000))
}

fleet 2 >/dev/null  # warm up: catalogs, page cache, the binary
serial=$(fleet 1)
wide=$(fleet "$parallel")
echo "fleet run of bench.fleet over $targets targets on one server ($(nproc) cores here): $rows rows each, ${sleep_s}s of waiting each"
printf '  --parallel 1:  %6d ms\n' "$serial"
printf '  --parallel %d:  %6d ms\n' "$parallel" "$wide"
awk -v s="$serial" -v w="$wide" 'BEGIN { printf "  speedup: %.2fx\n", s / w }'
