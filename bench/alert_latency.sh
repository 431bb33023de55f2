#!/usr/bin/env bash
# Alert latency: time from a run's failure to the PagerDuty-format POST reaching a local
# receiver (target < 100 ms), and the run's added exit delay when the receiver is down or hangs
# (bounded by alert_wait). Needs a release build: scripts/build release runbook. Prints figures.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin="$root/build/runbook"
[ -x "$bin" ] || { echo "build first: scripts/build release runbook" >&2; exit 2; }
runs="${RUNS:-20}"
wait_s="${ALERT_WAIT:-2}"
work=$(mktemp -d "${TMPDIR:-/tmp}/runbook-bench-alert.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# start_receiver NAME SCRIPT: a real HTTP receiver on 127.0.0.1; sets PORT
start_receiver() {
  local fifo="$work/$1.port"
  mkfifo "$fifo"
  python3 "$root/tests/support/http_receiver.py" --record "$work/$1.jsonl" --script "$2" >"$fifo" &
  pids+=($!)
  read -r _ PORT <"$fifo"
}

start_receiver pd 202
pd_port=$PORT
start_receiver hang hang
hang_port=$PORT
down_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')

mkdir -p "$work/runbooks/bench"
cat >"$work/runbooks/bench/page.lua" <<'LUA'
runbook "bench.page" {
  step "fails and pages" { run = function(ctx)
    ctx.log("failing now")
    alert.send{ severity = "critical", summary = "bench: step failed", channel = "oncall", dedup = ctx.run }
    error("boom")
  end },
}
LUA
cat >"$work/runbooks/bench/quiet.lua" <<'LUA'
runbook "bench.quiet" {
  step "fails" { run = function(ctx) ctx.log("failing now"); error("boom") end },
}
LUA
config() {  # config URL
  cat >"$work/runbook.lua" <<LUA
return {
  channels = { oncall = { type = "pagerduty", url = "$1", routing_key = secret "PD_KEY", timeout = "30s" } },
  alert_wait = "${wait_s}s",
}
LUA
}
export PD_KEY=benchkey0123456789abcdef01234567 RUNBOOK_STATE_DIR="$work/state" RUNBOOK_PATH="" RUNBOOK_STDLIB="$root/stdlib"
cd "$work"

now_ms() { date +%s%3N; }
stats() {  # prints min/median/p95/max of the numbers on stdin
  sort -n | awk '{a[NR]=$1} END {if (NR==0) {print "n/a"; exit}; p95=a[int((NR*95+99)/100)]; printf "min %.1f  median %.1f  p95 %.1f  max %.1f ms (n=%d)\n", a[1], a[int((NR+1)/2)], p95, a[NR], NR}'
}

echo "== failure -> PagerDuty POST received (receiver on 127.0.0.1, $runs runs)"
config "http://127.0.0.1:$pd_port/v2/enqueue"
for _ in $(seq "$runs"); do "$bin" run bench.page >/dev/null 2>&1 || true; done
python3 - "$work/state/audit.jsonl" "$work/pd.jsonl" >"$work/lat.txt" <<'PY'
import json, sys, datetime
fail = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["event"] == "log" and r.get("message") == "failing now":
        t = datetime.datetime.strptime(r["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
        fail[r["run"]] = t.timestamp()
for line in open(sys.argv[2]):
    q = json.loads(line)
    run = json.loads(q["body"])["dedup_key"]
    if run in fail:
        print("%.1f" % ((q["t"] - fail[run]) * 1000))
PY
echo "latency: $(stats <"$work/lat.txt")   (target < 100 ms; audit stamps have 1 ms resolution)"

run_time() {  # runbook -> wall ms of `runbook run`
  local t0 t1
  t0=$(now_ms); "$bin" run "$1" >/dev/null 2>&1 || true; t1=$(now_ms)
  echo $((t1 - t0))
}
n=5
echo "== added exit delay (alert_wait = ${wait_s}s, $n runs each)"
config "http://127.0.0.1:$pd_port/v2/enqueue"
base=$(for _ in $(seq $n); do run_time bench.quiet; done | sort -n | sed -n "$(( (n+1)/2 ))p")
echo "failing run, no alert:            median ${base} ms"
ok=$(for _ in $(seq $n); do run_time bench.page; done | sort -n | sed -n "$(( (n+1)/2 ))p")
echo "receiver answers 202:             median ${ok} ms  (+$((ok - base)) ms)"
config "http://127.0.0.1:$down_port/v2/enqueue"
down=$(for _ in $(seq $n); do run_time bench.page; done | sort -n | sed -n "$(( (n+1)/2 ))p")
echo "receiver down (refused, retried): median ${down} ms  (+$((down - base)) ms; bound ${wait_s}000 ms)"
config "http://127.0.0.1:$hang_port/v2/enqueue"
hang=$(for _ in $(seq $n); do run_time bench.page; done | sort -n | sed -n "$(( (n+1)/2 ))p")
echo "receiver hangs (30s timeout):     median ${hang} ms  (+$((hang - base)) ms; bound ${wait_s}000 ms)"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
