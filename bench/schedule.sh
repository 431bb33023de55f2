#!/usr/bin/env bash
# The scheduler's speed: `runbook schedule --list` over N generated scheduled runbooks (the next
# due time of each; N = 1000 by default), and an idle daemon's processor time over a minute
# (utime + stime from /proc/PID/stat before and after; target: near zero, no busy polling).
# Usage: bench/schedule.sh [runbooks] [idle-seconds]   (builds the release binary if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000}"
idle="${2:-60}"
[ -x build/runbook ] || scripts/build release runbook >/dev/null
bin="$PWD/build/runbook"
work=$(mktemp -d)
daemon=""
cleanup() {
  if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
export RUNBOOK_STATE_DIR="$work/state" RUNBOOK_PATH=""
mkdir -p "$work/runbooks/bench"
crons=("0 3 * * *" "*/15 * 1 1 *" "30 2 * * 1-5" "@weekly" "0 0 1 * *" "45 23 * * sun" "0 */6 29 2 *" "15 4 1,15 * *")
zones=("UTC" "Europe/Berlin" "America/New_York" "Asia/Tokyo")
for ((i = 0; i < n; i++)); do
  cron="${crons[i % ${#crons[@]}]}"
  tz="${zones[i % ${#zones[@]}]}"
  cat > "$work/runbooks/bench/job_$i.lua" <<LUA
runbook "bench.job_$i" {
  schedule = { cron = "$cron", tz = "$tz", missed = "skip" },
  step "noop" { run = function(ctx) end },
}
LUA
done
cd "$work"

# --list: load and check every runbook, then each schedule's next due time.
"$bin" schedule --list >/dev/null  # warm the page cache
start=$(date +%s%N)
lines=$("$bin" schedule --list | wc -l)
end=$(date +%s%N)
awk -v a="$start" -v b="$end" -v n="$n" -v l="$lines" 'BEGIN {
  printf "schedule --list over %d runbooks: %.0f ms (%.3f ms per runbook), %d lines\n", n, (b - a) / 1e6, (b - a) / n / 1e6, l }'
start=$(date +%s%N)
"$bin" schedule --list --next 10 >/dev/null
end=$(date +%s%N)
awk -v a="$start" -v b="$end" -v n="$n" 'BEGIN {
  printf "schedule --list --next 10:         %.0f ms (%.3f ms per runbook)\n", (b - a) / 1e6, (b - a) / n / 1e6 }'

# The idle daemon: the same catalog, schedules chosen to be rarely due, so nothing runs while measuring (it is reported if something does).
"$bin" schedule 2>"$work/daemon.log" &
daemon=$!
# Its first sleep begins after the first tick: wait for the tick's state file.
until [ -f "$work/state/schedule-state.json" ]; do
  kill -0 "$daemon" 2>/dev/null || { cat "$work/daemon.log"; exit 1; }
  sleep 0.1
done
ticks=$(getconf CLK_TCK)
cpu() { awk '{ print $14 + $15 }' "/proc/$daemon/stat"; }
startup=$(cpu)
sleep "$idle"
after=$(cpu)
kill -TERM "$daemon"
wait "$daemon" || true
daemon=""
awk -v s="$startup" -v t="$ticks" 'BEGIN { printf "daemon start-up (load %s runbooks, up to its first sleep): %.2f s of CPU\n", "'"$n"'", s / t }'
awk -v a="$startup" -v b="$after" -v t="$ticks" -v d="$idle" 'BEGIN {
  printf "daemon idle: %.3f s of CPU in %d s (%.4f s of CPU per minute)\n", (b - a) / t, d, (b - a) / t * 60 / d }'
started=$(grep -c schedule.start "$work/daemon.log" || true)
echo "runs started while measuring: $started (each a child process, not counted in the daemon's CPU)"
