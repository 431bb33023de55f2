#!/usr/bin/env bash
# Watch bench: a watch of 8 SQL metrics sampled SAMPLES times (default 10,000) by the real
# executor against a throwaway PostgreSQL, on a fake clock (every = 1s, lasting = SAMPLES s: the
# waits between samples take no real time). Reports the per-sample engine overhead beside the
# SQL's own time (target < 1 ms of overhead per sample), peak RSS at 1,000 and at SAMPLES samples
# (it must stay flat), and audit bytes per sample. The driver is bench/watch_bench.cpp
# (target rb_bench_watch, built here). Prints figures; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
samples="${SAMPLES:-10000}"
scripts/build release rb_bench_watch >/dev/null
bin="$root/build/rb_bench_watch"
source "$root/bench/lib/pg.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/runbook-bench-watch.XXXXXX")
bench_cleanup="rm -rf $work"

run() {  # run SAMPLES: the driver's "key value" lines
  "$bin" "$BENCH_DSN" "$work/audit-$1.jsonl" "$1" >"$work/out-$1.txt"
}
get() { awk -v k="$2" '$1 == k { print $2 }' "$work/out-$1.txt"; }

echo "== watch of 8 SQL metrics, every 1s on a fake clock, against PostgreSQL $(psql -XAtc 'show server_version')"
run 1000
run "$samples"
sql=$(get "$samples" sql_only_ms_per_sample)
watch=$(get "$samples" watch_ms_per_sample)
overhead=$(awk -v w="$watch" -v s="$sql" 'BEGIN { printf "%.3f", w - s }')
sql_cpu=$(get "$samples" sql_only_cpu_ms_per_sample)
watch_cpu=$(get "$samples" watch_cpu_ms_per_sample)
cpu_overhead=$(awk -v w="$watch_cpu" -v s="$sql_cpu" 'BEGIN { printf "%.3f", w - s }')
echo "samples:               $(get "$samples" watch_samples) (run $(get "$samples" run_status), $(get "$samples" watch_total_s) s real time)"
echo "per sample, watch:     $watch ms (executor: read the 8 metrics in one snapshot, the tree, the audit)"
echo "per sample, SQL alone: $sql ms (the same 8 queries in one read-only snapshot, $(get "$samples" sql_only_samples) times)"
echo "engine overhead:       $cpu_overhead ms CPU per sample (runbook's own CPU: $watch_cpu ms a sample in the watch, $sql_cpu ms reading the SQL alone; target < 1 ms)"
echo "                       $overhead ms real time per sample (watch minus SQL alone: the server's time varies with the machine's load, so this one is noisy)"
echo "peak RSS:              $(get 1000 peak_rss_end_kb) kB after 1,000 samples, $(get "$samples" peak_rss_end_kb) kB after $samples (must be flat)"
echo "  in the $samples-sample run: $(get "$samples" peak_rss_at_101_samples_kb) kB at 100, $(get "$samples" peak_rss_at_1001_samples_kb) kB at 1,000, $(get "$samples" "peak_rss_at_${samples}_samples_kb") kB at $samples"
echo "audit:                 $(get "$samples" audit_bytes_per_sample) bytes per sample ($(get "$samples" audit_bytes) bytes, $(get "$samples" audit_records) records)"
awk '$1 == "audit_event" { printf "  %-20s %s\n", $2, $3 }' "$work/out-$samples.txt"
