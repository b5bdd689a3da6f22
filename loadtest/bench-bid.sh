#!/usr/bin/env bash
# The bid path under load (issue 6): server CPU per bid request next to an
# empty libh2o handler measured in the same run, and latency at paced rates.
#
#   loadtest/bench-bid.sh BUILD_DIR [OUT_DIR]        (default OUT_DIR: /tmp/adsmith-bench-bid)
#
# In order (about 4-6 minutes on 2 cores):
#   1. a fresh data directory with USERS profiles (default 1,000,000) written by
#      the bulk importer (`adsmith-load gen seed_users` piped into
#      `adsmith import users -`: the same ids, buyeruid and id5 aliases the bid
#      generator sends) and CAMPAIGNS campaigns (default 1,000) through the API
#      (`adsmith-load seed --campaigns-only`)
#   2. the daemon (`adsmith serve --threads 1`) and adsmith-empty (the empty
#      libh2o server, one thread, the daemon's HTTP settings), both pinned to
#      core 0; every client pinned to core 1
#   3. warm-up: WARMUP_S seconds of closed-loop bids, then of post_empty
#   4. ROUNDS (default 3) interleaved A/B rounds, closed loop, CONNECTIONS x
#      STREAMS in flight, DURATION seconds each, no warm-up and no probe, so
#      every request the server answers during the client's life is counted:
#        A: adsmith-empty, --mix post_empty (POST / with a generated bid body:
#           the same bodies, the same sizes)
#        B: adsmith, --mix bid --no-feedback (the pure bid path: no win
#           notices, no events, no /v1/score)
#      server CPU per request = growth of the server's utime + stime
#      (/proc/PID/stat) over the client's life / requests answered; then the
#      same two at one paced rate, CPU_RATE (default 5000/s), where neither
#      server is saturated (per-request cost includes the wake-ups and
#      syscalls a saturated server batches away)
#   5. open loop at each rate of RATES for PACED_S seconds, the empty server
#      (post_empty: the latency floor of libh2o, the client and this machine)
#      then bids, latency from the intended send time (corrected for
#      coordinated omission); stops after the first rate the daemon cannot
#      keep up with
# MSGPACK=1 sends every body as MessagePack (both servers, so the sizes match).
# Every step records the load average and the busy time of the machine's
# cores that neither the server nor the client account for ("other", in
# cores): a step with more than DISTURBED_CORES (default 0.15) is marked
# DISTURBED and left out of the medians. Each step writes OUT_DIR/<step>.json
# (adsmith-load's report) and <step>.cpu.json; OUT_DIR/summary.json has the
# table printed at the end.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: loadtest/bench-bid.sh BUILD_DIR [OUT_DIR]}
out=${2:-/tmp/adsmith-bench-bid}
bin=$build/adsmith
load=$build/adsmith-load
empty=$build/adsmith-empty
tool=$here/bench-bid-tool.py
users=${USERS:-1000000}
campaigns=${CAMPAIGNS:-1000}
rounds=${ROUNDS:-3}
duration=${DURATION:-8}
warmup_s=${WARMUP_S:-5}
conns=${CONNECTIONS:-4}
streams=${STREAMS:-16}
paced_s=${PACED_S:-6}
cpu_rate=${CPU_RATE:-5000}
rates=${RATES:-2000 5000 10000 15000 20000 30000 50000}
seed=${SEED:-1}
for f in "$bin" "$load" "$empty"; do
  [ -x "$f" ] || { echo "bench-bid: $f is missing: meson setup $build && meson compile -C $build" >&2; exit 2; }
done
[ "$(nproc)" -ge 2 ] || { echo "bench-bid: needs 2 cores (server on 0, client on 1)" >&2; exit 2; }

mkdir -p "$out"
rm -f "$out"/*.json
work=$(mktemp -d "${TMPDIR:-/tmp}/adsmith-bench-bid.XXXXXX")
cleanup() {
  [ -n "${apid:-}" ] && kill "$apid" 2>/dev/null
  [ -n "${epid:-}" ] && kill "$epid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
now() { date +%s.%N; }
t_start=$(now)
echo "bench-bid: $users users, $campaigns campaigns, $(nproc) CPUs, load $(loadavg); $out"

# 1. the data set
data=$work/data
t0=$(now)
"$load" gen seed_users --count "$users" --users "$users" --seed "$seed" |
  "$bin" import users - --format jsonl --data-dir "$data" 2> "$work/import.log" ||
  { tail -n 20 "$work/import.log" >&2; exit 1; }
printf '== imported %s profiles in %.1f s (%s)\n' "$users" "$(echo "$(now) - $t0" | bc -l)" \
  "$(grep '^imported' "$work/import.log" | tail -n 1)"
ADSMITH_KEY=$("$bin" keys create --data-dir "$data" --role admin --name bench-bid 2>/dev/null)
export ADSMITH_KEY

# 2. the servers
port=$((20000 + RANDOM % 20000))
taskset -c 0 "$bin" serve --listen "127.0.0.1:$port" --data-dir "$data" --threads 1 \
  > "$work/serve.out" 2> "$work/serve.err" &
apid=$!
for _ in $(seq 200); do grep -q '"msg":"serving"' "$work/serve.err" 2>/dev/null && break; sleep 0.1; done
grep -q '"msg":"serving"' "$work/serve.err" || { cat "$work/serve.err" >&2; exit 1; }
taskset -c 0 "$empty" --threads 1 > "$work/empty.out" 2> "$work/empty.err" &
epid=$!
for _ in $(seq 50); do grep -q '^port ' "$work/empty.out" 2>/dev/null && break; sleep 0.1; done
eport=$(sed -n 's/^port //p' "$work/empty.out")
[ -n "$eport" ] || { cat "$work/empty.err" >&2; exit 1; }
aurl=http://127.0.0.1:$port
eurl=http://127.0.0.1:$eport

t0=$(now)
taskset -c 1 "$load" seed --url "$aurl" --campaigns-only --users "$users" --campaigns "$campaigns" --seed "$seed" \
  --connections 2 --streams 16 --cpus 1 --quiet --json "$out/seed.json"
printf '== seeded %s campaigns in %.1f s\n' "$campaigns" "$(echo "$(now) - $t0" | bc -l)"

common=(--users "$users" --campaigns "$campaigns" --seed "$seed" --cpus 1 --connections "$conns")
[ "${MSGPACK:-0}" = 1 ] && common+=(--msgpack) # bodies as application/msgpack (bid answers then come back in it)

# 3. warm-up (not recorded): the profile pages, the campaign index, both servers' connections code
echo "== warm-up ${warmup_s} s each; load $(loadavg)"
taskset -c 1 "$load" run "${common[@]}" --url "$aurl" --streams "$streams" --duration "$warmup_s" --warmup 0 \
  --mix bid --no-feedback --quiet --json "$work/warm-bid.json"
python3 -c "import json,sys; s=json.load(open(sys.argv[1])); a=s['all']['status']; b=s.get('business',{}); \
print('   bid warm-up: %.0f/s, status %s, bid rate %s' % (s['summary']['throughput_rps'], a, b.get('bid_rate')))" \
  "$work/warm-bid.json"
taskset -c 1 "$load" run "${common[@]}" --url "$eurl" --streams "$streams" --duration 2 --warmup 0 \
  --mix post_empty --quiet

# 4. interleaved closed-loop rounds
closed() { # NAME URL MIX...
  local name=$1 url=$2 pid=$3
  shift 3
  echo "== $name; load $(loadavg)"
  python3 "$tool" measure --pid "$pid" --out "$out/$name.cpu.json" -- \
    taskset -c 1 "$load" run "${common[@]}" --url "$url" --streams "$streams" --duration "$duration" --warmup 0 \
    --no-probe --drain 5 --quiet --json "$out/$name.json" "$@"
}
paced_cpu() { # NAME URL PID MIX...: the same paced rate for both servers
  local name=$1 url=$2 pid=$3
  shift 3
  echo "== $name, $cpu_rate/s; load $(loadavg)"
  python3 "$tool" measure --pid "$pid" --out "$out/$name.cpu.json" -- \
    taskset -c 1 "$load" run "${common[@]}" --url "$url" --streams 100 --duration "$duration" --warmup 1 \
    --no-probe --drain 5 --rate "$cpu_rate" --quiet --json "$out/$name.json" "$@"
}
for r in $(seq "$rounds"); do
  closed "empty-closed-$r" "$eurl" "$epid" --mix post_empty
  closed "bid-closed-$r" "$aurl" "$apid" --mix bid --no-feedback
  paced_cpu "empty-cpu-$r" "$eurl" "$epid" --mix post_empty
  paced_cpu "bid-cpu-$r" "$aurl" "$apid" --mix bid --no-feedback
done

# 5. paced bids, rising until the server cannot keep up
for rate in $rates; do
  echo "== open loop, empty server at $rate/s (the latency baseline); load $(loadavg)"
  python3 "$tool" measure --pid "$epid" --out "$out/empty-paced-$rate.cpu.json" -- \
    taskset -c 1 "$load" run "${common[@]}" --url "$eurl" --streams 100 --duration "$paced_s" --warmup 1 \
    --drain 5 --rate "$rate" --mix post_empty --quiet --json "$out/empty-paced-$rate.json"
  echo "== open loop, bids at $rate/s; load $(loadavg)"
  python3 "$tool" measure --pid "$apid" --out "$out/bid-paced-$rate.cpu.json" -- \
    taskset -c 1 "$load" run "${common[@]}" --url "$aurl" --streams 100 --duration "$paced_s" --warmup 1 \
    --drain 5 --rate "$rate" --mix bid --no-feedback --quiet --json "$out/bid-paced-$rate.json"
  if ! python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['summary']; \
sys.exit(0 if s['throughput_rps'] >= 0.97 * $rate and s.get('backlog', 0) == 0 else 1)" "$out/bid-paced-$rate.json"; then
    echo "   saturated at $rate/s: higher rates skipped"
    break
  fi
done

python3 "$tool" summary "$out"
printf 'bench-bid: %.0f s in all; load after %s\n' "$(echo "$(now) - $t_start" | bc -l)" "$(loadavg)"
