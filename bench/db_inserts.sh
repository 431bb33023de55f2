#!/usr/bin/env bash
# 10,000 single-row INSERTs in one transaction: a runbook step (prepared statement, audited)
# against a minimal C loop over libpq (the baseline) and `psql -f`, on one throwaway server.
# Target: runbook within 1.2x of the libpq loop, and faster than psql -f.
# Usage: bench/db_inserts.sh [rows] [repeats]
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-10000}"
repeats="${2:-3}"
[ -x build/runbook ] || scripts/build release >/dev/null
work=$(mktemp -d)
bench_cleanup="rm -rf $work"
source bench/lib/pg.sh
gcc -O2 -o "$work/libpq_inserts" bench/libpq_inserts.c -I/usr/include/postgresql -lpq
{ echo "BEGIN;"; for ((i = 1; i <= rows; i++)); do echo "INSERT INTO bench_psql (id, note) VALUES ($i, 'row');"; done; echo "COMMIT;"; } > "$work/inserts.sql"
export RUNBOOK_STATE_DIR="$work/state" RUNBOOK_PATH="$PWD/bench/runbooks"

now() { date +%s%N; }
run_c() { psql -qXc "DROP TABLE IF EXISTS bench_c; CREATE TABLE bench_c (id int, note text)"; local s; s=$(now); "$work/libpq_inserts" "$BENCH_DSN" "$rows"; echo $(( ($(now) - s) / 1000000 )); }
run_psql() { psql -qXc "DROP TABLE IF EXISTS bench_psql; CREATE TABLE bench_psql (id int, note text)"; local s; s=$(now); psql -qX -f "$work/inserts.sql" >/dev/null; echo $(( ($(now) - s) / 1000000 )); }
run_rb() { psql -qXc "DROP TABLE IF EXISTS bench_rb; CREATE TABLE bench_rb (id int, note text)"; local s; s=$(now); ./build/runbook run bench.inserts --dsn "$BENCH_DSN" --param rows="$rows" >/dev/null; echo $(( ($(now) - s) / 1000000 )); }

# Interleaved, so that a noisy moment of the machine hits all three alike; medians reported.
cs=(); ps=(); rs=()
for ((k = 0; k < repeats; k++)); do cs+=("$(run_c)"); ps+=("$(run_psql)"); rs+=("$(run_rb)"); done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
c=$(median "${cs[@]}"); p=$(median "${ps[@]}"); r=$(median "${rs[@]}")
echo "runs (ms): libpq ${cs[*]} | psql ${ps[*]} | runbook ${rs[*]}"
[ "$(psql -qXtAc 'SELECT count(*) FROM bench_rb')" = "$rows" ] || { echo "runbook inserted the wrong number of rows"; exit 1; }
printf '%-40s %6s ms (median)\n' "libpq C loop (baseline)" "$c" "psql -f" "$p" "runbook run bench.inserts (whole CLI)" "$r"
awk -v r="$r" -v c="$c" -v p="$p" 'BEGIN { printf "ratio runbook/libpq: %.2f (target <= 1.2)   runbook/psql: %.2f (target < 1)\n", r / c, r / p }'
echo "audit records of the last run: $(grep -c '"event":"sql"' "$work/state/audit.jsonl") sql records in $(wc -l < "$work/state/audit.jsonl") lines"
