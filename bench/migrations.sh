#!/usr/bin/env bash
# N migrations (each creates a table with an index; verify SELECTs from it; revert drops it),
# deployed with verification and then reverted, three ways on one throwaway server:
#   runbook: one step per migration (run/verify/rollback = the same SQL files through
#            ctx.db:script), `runbook run` then `runbook rollback` of that run;
#   sqitch:  the same SQL files as a sqitch project, `sqitch deploy --verify`, `sqitch revert -y`;
#   psql -f: every deploy and verify statement in one file, then every revert (the floor).
# Target: runbook at least 10x faster than sqitch both ways; reports how far above psql it is.
# Usage: bench/migrations.sh [migrations] [repeats]
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-100}"
repeats="${2:-3}"
[ -x build/runbook ] || scripts/build release >/dev/null
if ! command -v sqitch >/dev/null; then
  # Benches bring what they need (Debian's sqitch package, with its PostgreSQL driver).
  [ "$(id -u)" -eq 0 ] || { echo "sqitch is not installed: apt-get install sqitch" >&2; exit 2; }
  apt-get install -y -qq sqitch >/dev/null
fi
work=$(mktemp -d)
bench_cleanup="rm -rf $work"
source bench/lib/pg.sh
export RUNBOOK_STATE_DIR="$work/state" RUNBOOK_PATH="$work/runbooks"
rb="$PWD/build/runbook"

# The SQL, once: sqitch's layout (deploy/, verify/, revert/), used by all three.
proj="$work/runbooks/bench"
mkdir -p "$proj/deploy" "$proj/verify" "$proj/revert"
{
  echo "%syntax-version=1.0.0"
  echo "%project=bench_migrations"
  echo
} > "$proj/sqitch.plan"
for ((i = 1; i <= count; i++)); do
  m=$(printf 'm%03d' "$i")
  t="bench_$m"
  printf 'CREATE TABLE %s (id int PRIMARY KEY, note text NOT NULL);\nCREATE INDEX %s_note ON %s (note);\n' "$t" "$t" "$t" > "$proj/deploy/$m.sql"
  printf 'SELECT id, note FROM %s WHERE false;\n' "$t" > "$proj/verify/$m.sql"
  printf 'DROP TABLE %s;\n' "$t" > "$proj/revert/$m.sql"
  echo "$m 2026-01-01T00:00:00Z Bench <bench@example.com> # migration $i" >> "$proj/sqitch.plan"
done
cat > "$proj/sqitch.conf" <<EOF
[core]
	engine = pg
	top_dir = .
[engine "pg"]
	target = db:pg:
	client = $pg_bin/psql
EOF
# The runbook: one step per migration, the same files.
{
  echo "-- $count migrations from the sqitch layout beside this file (bench/migrations.sh)."
  echo "local steps = {}"
  echo "for i = 1, $count do"
  echo "  local m = string.format('m%03d', i)"
  echo "  steps[#steps + 1] = step(m) {"
  echo "    run = function(ctx) ctx.db:script('deploy/' .. m .. '.sql') end,"
  echo "    verify = function(ctx) ctx.db:script('verify/' .. m .. '.sql') end,"
  echo "    rollback = function(ctx) ctx.db:script('revert/' .. m .. '.sql') end,"
  echo "  }"
  echo "end"
  echo "runbook 'bench.migrations' { phase 'deploy' (steps) }"
} > "$proj/migrations.lua"
# The floor: every statement in one file each way.
for ((i = 1; i <= count; i++)); do m=$(printf 'm%03d' "$i"); cat "$proj/deploy/$m.sql" "$proj/verify/$m.sql"; done > "$work/deploy_all.sql"
for ((i = count; i >= 1; i--)); do m=$(printf 'm%03d' "$i"); cat "$proj/revert/$m.sql"; done > "$work/revert_all.sql"

export SQITCH_USER_CONFIG="$work/sqitch-user.conf" SQITCH_FULLNAME=Bench SQITCH_EMAIL=bench@example.com
now() { date +%s%N; }
ms_since() { echo $(( ($(now) - $1) / 1000000 )); }
tables() { psql -qXtAc "SELECT count(*) FROM pg_class WHERE relname LIKE 'bench\_m%' AND relkind = 'r'"; }
expect_tables() { [ "$(tables)" = "$1" ] || { echo "$2: expected $1 tables, found $(tables)" >&2; exit 1; }; }

run_rb() {
  local s out id
  s=$(now)
  out=$("$rb" run bench.migrations --dsn "$BENCH_DSN" --json 2>/dev/null)
  rd=$(ms_since "$s")
  expect_tables "$count" "runbook run"
  id=$(printf '%s' "$out" | sed -n 's/.*"run": *"\([^"]*\)".*/\1/p')
  s=$(now)
  "$rb" rollback "$id" --dsn "$BENCH_DSN" --yes >/dev/null
  rr=$(ms_since "$s")
  expect_tables 0 "runbook rollback"
}
run_sqitch() {
  local s
  s=$(now)
  (cd "$proj" && sqitch deploy --verify >/dev/null)
  sd=$(ms_since "$s")
  expect_tables "$count" "sqitch deploy"
  s=$(now)
  (cd "$proj" && sqitch revert -y >/dev/null)
  sr=$(ms_since "$s")
  expect_tables 0 "sqitch revert"
}
run_psql() {
  local s
  s=$(now)
  psql -qX -v ON_ERROR_STOP=1 -f "$work/deploy_all.sql" >/dev/null
  pd=$(ms_since "$s")
  expect_tables "$count" "psql deploy"
  s=$(now)
  psql -qX -v ON_ERROR_STOP=1 -f "$work/revert_all.sql" >/dev/null
  pr=$(ms_since "$s")
  expect_tables 0 "psql revert"
}

load_before=$(cut -d' ' -f1 /proc/loadavg)
# Interleaved, so that a noisy moment of the machine hits all three alike; medians reported.
rds=(); rrs=(); sds=(); srs=(); pds=(); prs=()
for ((k = 0; k < repeats; k++)); do
  run_rb; rds+=("$rd"); rrs+=("$rr")
  run_sqitch; sds+=("$sd"); srs+=("$sr")
  run_psql; pds+=("$pd"); prs+=("$pr")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
rd=$(median "${rds[@]}"); rr=$(median "${rrs[@]}"); sd=$(median "${sds[@]}"); sr=$(median "${srs[@]}")
pd=$(median "${pds[@]}"); pr=$(median "${prs[@]}")
echo "load average (1 min) before: $load_before, after: $(cut -d' ' -f1 /proc/loadavg) on $(nproc) cores (ratios drift when the machine is busy)"
echo "runs (ms) deploy: runbook ${rds[*]} | sqitch ${sds[*]} | psql ${pds[*]}"
echo "runs (ms) revert: runbook ${rrs[*]} | sqitch ${srs[*]} | psql ${prs[*]}"
printf '%-44s %8s %8s  (ms, median of %s)\n' "$count migrations" deploy revert "$repeats"
printf '%-44s %8s %8s\n' "runbook run + runbook rollback (whole CLI)" "$rd" "$rr" \
  "sqitch deploy --verify + sqitch revert -y" "$sd" "$sr" "psql -f, one file each way (floor)" "$pd" "$pr"
awk -v rd="$rd" -v rr="$rr" -v sd="$sd" -v sr="$sr" -v pd="$pd" -v pr="$pr" 'BEGIN {
  printf "sqitch/runbook: deploy %.1fx, revert %.1fx faster (target >= 10x)\n", sd / rd, sr / rr
  printf "runbook/psql:   deploy %.1fx, revert %.1fx above the floor\n", rd / pd, rr / pr
}'
