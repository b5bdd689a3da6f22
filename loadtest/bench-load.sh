#!/usr/bin/env bash
# adsmith-load against the real daemon, with h2load as the baseline (issue 8).
#
#   loadtest/bench-load.sh [BUILD_DIR] [OUT_DIR]     (defaults: build, /tmp/adsmith-bench-load)
#
# The daemon runs on core 0 (one worker thread; the writer thread shares the
# core), the clients on core 1. In order:
#   1. seed: USERS users and CAMPAIGNS campaigns through the public API
#   2. closed loop, GET /healthz: adsmith-load, then h2load with the same
#      connections and streams (the baseline: routing and HTTP/2 only),
#      alternating for ROUNDS rounds (default 3), with the medians
#   3. open loop, GET /healthz at PCT % of the rate step 2 reached
#   4. closed loop, POST /v1/events (BATCH events a batch, every event id new,
#      users drawn Zipf from the seeded ones), EVENT_STREAMS streams per
#      connection so that fewer writes wait than write_queue_max (256)
#   5. open loop at PCT % of the rate step 4 reached, events again
#   6. closed loop, POST /openrtb2/bid with the simulated exchange and audience:
#      auctions against a log-normal market, win notices, POST /v1/score of each
#      won impression (adsmith's pCTR), impression/click/conversion events from
#      the hidden click model; bid rate, win rate, spend, CTR, AUCs
#      (the market's median competing bid is MARKET_CPM, default 20: the seeded
#      campaigns bid 0.5-30 CPM)
#   7. open loop, the production-like mix (bid, events, user reads, score,
#      campaign edits) at MIX_RATE requests/s (default 300), with the same
#      feedback; each kind's latency is reported apart (the bid row is the bid stream)
#   8. the empty endpoint (issue 8's target: the harness reaches >= 80 % of
#      h2load's rate against the same empty endpoint on one core while varying
#      every body): adsmith-empty (libh2o, no application) on core 0, closed
#      loop, alternating ROUNDS times: adsmith-load --mix post_empty (every body
#      a different generated bid request) and h2load POSTing one fixed bid body
#      of the median size (-d FILE), same connections and streams, both on
#      core 1 with one thread; the medians and their ratio
# The open loops print latency from the intended send (corrected for
# coordinated omission) next to latency from the actual send.
# Each adsmith-load step writes OUT_DIR/<step>.json and .svg. The load
# average before and after each step is printed: on a shared machine the
# figures move with it.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
out=${2:-/tmp/adsmith-bench-load}
bin=$build/adsmith
load=$build/adsmith-load
duration=${DURATION:-10}
conns=${CONNECTIONS:-4}
streams=${STREAMS:-64}
event_streams=${EVENT_STREAMS:-16}
batch=${BATCH:-100}
pct=${PCT:-70}
users=${USERS:-20000}
campaigns=${CAMPAIGNS:-1000}
command -v h2load >/dev/null || { echo "bench-load: needs h2load: scripts/install-deps.sh bench" >&2; exit 2; }
[ -x "$load" ] || { echo "bench-load: build first: meson setup $build && meson compile -C $build" >&2; exit 2; }

mkdir -p "$out"
work=$(mktemp -d /tmp/adsmith-bench-load.XXXXXX)
port=$((20000 + RANDOM % 20000))
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null
  [ -n "${epid:-}" ] && kill "$epid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

ADSMITH_KEY=$("$bin" keys create --data-dir "$work/data" --role admin --name bench-load 2>/dev/null)
export ADSMITH_KEY
taskset -c 0 "$bin" serve --listen "127.0.0.1:$port" --data-dir "$work/data" --threads 1 \
  > "$work/out.log" 2> "$work/err.log" &
pid=$!
for _ in $(seq 100); do grep -q '"msg":"serving"' "$work/err.log" 2>/dev/null && break; sleep 0.1; done
grep -q '"msg":"serving"' "$work/err.log" || { cat "$work/err.log" >&2; exit 1; }
url="http://127.0.0.1:$port"
common=(--url "$url" --cpus 1 --users "$users" --campaigns "$campaigns" --batch "$batch")
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

echo "== seed ($users users, $campaigns campaigns); load $(loadavg)"
taskset -c 1 "$load" seed "${common[@]}" --connections "$conns" --streams 32 --json "$out/seed.json" | sed -n 1,4p

# GET /healthz, closed loop: adsmith-load and h2load alternate for ROUNDS
# rounds (the machine may be shared, and its load moves within seconds).
rps_h2load() { sed -n 's/.*finished in .*, \([0-9.]*\) req\/s.*/\1/p'; }
rps_json() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['summary']['throughput_rps'])" "$1"; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
as=() hs=()
for r in $(seq "${ROUNDS:-3}"); do
  echo "== closed loop, GET /healthz, round $r; load $(loadavg)"
  taskset -c 1 "$load" run "${common[@]}" --connections "$conns" --streams "$streams" --duration "$duration" \
    --mix healthz --json "$out/healthz-closed-$r.json" --plot "$out/healthz-closed-$r.svg" | sed -n '3p;6p'
  a=$(rps_json "$out/healthz-closed-$r.json")
  h=$(taskset -c 1 h2load -D "$duration" --warm-up-time 1 -c "$conns" -m "$streams" "$url/healthz" | tee "$out/h2load-$r.txt" | rps_h2load)
  grep -E 'time for request' "$out/h2load-$r.txt"
  echo "round $r: adsmith-load $a req/s, h2load $h req/s"
  as+=("$a"); hs+=("$h")
done
echo "median: adsmith-load $(median "${as[@]}") req/s, h2load $(median "${hs[@]}") req/s"
best=1
for r in $(seq "${ROUNDS:-3}"); do [ "$(rps_json "$out/healthz-closed-$r.json")" = "$(median "${as[@]}")" ] && best=$r; done
cp "$out/healthz-closed-$best.json" "$out/healthz-closed.json"

# $pct % of the throughput in report $1
share() { python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['summary']['throughput_rps'] * $pct / 100))" "$1"; }

rate=$(share "$out/healthz-closed.json")
echo "== open loop, GET /healthz at $rate/s ($pct %); load $(loadavg)"
taskset -c 1 "$load" run "${common[@]}" --connections "$conns" --streams "$streams" --duration "$duration" \
  --rate "$rate" --mix healthz --json "$out/healthz-open.json" --plot "$out/healthz-open.svg"

echo "== closed loop, POST /v1/events ($batch a batch); load $(loadavg)"
taskset -c 1 "$load" run "${common[@]}" --connections "$conns" --streams "$event_streams" --duration "$duration" \
  --mix events --json "$out/events-closed.json" --plot "$out/events-closed.svg"

rate=$(share "$out/events-closed.json")
echo "== open loop, POST /v1/events at $rate/s ($pct %); load $(loadavg)"
taskset -c 1 "$load" run "${common[@]}" --connections "$conns" --streams "$event_streams" --duration "$duration" \
  --rate "$rate" --mix events --json "$out/events-open.json" --plot "$out/events-open.svg"
echo "== compare closed and open loop events"
"$load" compare "$out/events-closed.json" "$out/events-open.json" | grep -E '^(summary\.(throughput|requests)|all\.latency)'

# Bid traffic with the click simulator. /v1/score of won impressions is used when the daemon serves it.
echo "== closed loop, POST /openrtb2/bid with the simulator and feedback; load $(loadavg)"
taskset -c 1 "$load" run "${common[@]}" --connections "$conns" --streams 16 --duration "$duration" --drain 30 \
  --market-cpm "${MARKET_CPM:-20}" --mix bid --json "$out/bid-closed.json" --plot "$out/bid-closed.svg" | sed -n '3,$p'

mix=bid=76,events=4,user_get=12,score=5,campaign_edit=1,campaigns=2
if ! "$load" run --url "$url" --users "$users" --campaigns "$campaigns" --mix score --duration 0.1 --warmup 0 \
    --connections 1 --quiet > /dev/null 2>&1; then
  mix=${mix/,score=5/}
  echo "(this daemon does not serve POST /v1/score: score left out of the mix)"
fi
mix_rate=${MIX_RATE:-300}
echo "== open loop, $mix at $mix_rate/s with the simulator and feedback; load $(loadavg)"
taskset -c 1 "$load" run "${common[@]}" --connections "$conns" --streams 16 --duration "$duration" --drain 30 \
  --rate "$mix_rate" --market-cpm "${MARKET_CPM:-20}" --mix "$mix" --json "$out/mix-open.json" --plot "$out/mix-open.svg" | sed -n '3,$p'
kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; pid=

# The empty endpoint: the harness (every body different) against h2load (one fixed body).
edur=${EMPTY_DURATION:-5}
"$load" gen bid --count 200 --users "$users" --campaigns "$campaigns" > "$work/bids.jsonl"
python3 - "$work/bids.jsonl" "$work/body.json" <<'PY'
import sys
lines = [l.rstrip("\n") for l in open(sys.argv[1]) if l.strip()]
lines.sort(key=len)
open(sys.argv[2], "w").write(lines[len(lines) // 2])
PY
taskset -c 0 "$build/adsmith-empty" --threads 1 > "$work/empty.out" &
epid=$!
for _ in $(seq 50); do grep -q '^port' "$work/empty.out" 2>/dev/null && break; sleep 0.1; done
eurl="http://127.0.0.1:$(sed -n 's/^port //p' "$work/empty.out")"
as=() hs=() qs=()
for r in $(seq "${ROUNDS:-3}"); do
  echo "== closed loop, empty endpoint, round $r ($(wc -c < "$work/body.json")-byte h2load body); load $(loadavg)"
  taskset -c 1 "$load" run --url "$eurl" --cpus 1 --users "$users" --campaigns "$campaigns" --connections "$conns" \
    --streams "$streams" --duration "$edur" --mix post_empty --json "$out/empty-closed-$r.json" | sed -n '3p;6p'
  a=$(rps_json "$out/empty-closed-$r.json")
  h=$(taskset -c 1 h2load -D "$edur" --warm-up-time 1 -c "$conns" -m "$streams" -d "$work/body.json" \
    -H 'content-type: application/json' "$eurl/" | tee "$out/h2load-empty-$r.txt" | rps_h2load)
  grep -E 'time for request' "$out/h2load-empty-$r.txt"
  q=$(python3 -c "print(f'{$a / $h:.3f}')")
  echo "round $r: adsmith-load $a req/s, h2load $h req/s, ratio $q"
  as+=("$a"); hs+=("$h"); qs+=("$q")
done
am=$(median "${as[@]}") hm=$(median "${hs[@]}")
echo "median, empty endpoint: adsmith-load $am req/s (every body different), h2load $hm req/s (one body):" \
  "ratio of the medians $(python3 -c "print(f'{$am / $hm:.3f}')"), median of the rounds' ratios $(median "${qs[@]}")"
echo "load after: $(loadavg)"
