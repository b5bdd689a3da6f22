#!/usr/bin/env bash
# Durable event ingest over HTTP/2, against the empty-handler baseline.
#
#   loadtest/bench-ingest.sh [BUILD_DIR]      (default: build)
#
# Runs the daemon on core 0 (one worker thread; the writer thread shares the
# core) and h2load (Debian package nghttp2-client) on core 1. Each round runs,
# back to back:
#   A  GET /healthz                        (the baseline: routing and HTTP/2 only)
#   B  POST /v1/events, 100 events a batch (validated, applied to 400 profiles,
#                                           group-committed with fsync, then answered)
# and the script prints each round and the medians, with events/s and the
# ratio B/A of requests per second. Batches carry no event ids (h2load sends one
# fixed body, and ids would make every repeat a duplicate), so deduplication
# costs are not in these figures.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bin=$build/adsmith
rounds=${ROUNDS:-3}
requests=${REQUESTS:-4000}
command -v h2load >/dev/null || { echo "bench-ingest: needs h2load: apt-get install nghttp2-client" >&2; exit 2; }
[ -x "$bin" ] || { echo "bench-ingest: build first: meson setup $build && meson compile -C $build" >&2; exit 2; }

work=$(mktemp -d /tmp/adsmith-bench-ingest.XXXXXX)
port=$((20000 + RANDOM % 20000))
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# Four bodies of 100 events for 100 users each: clicks and impressions on 3 campaigns.
now=$(date +%s)
for b in 0 1 2 3; do
  {
    printf '{"events":['
    for i in $(seq 0 99); do
      [ "$i" -gt 0 ] && printf ','
      type=impression; [ $((i % 10)) -eq 0 ] && type=click
      printf '{"type":"%s","user":"bench-%d-%d","ts":%d,"campaign":"camp-%d","variant":"v1","interests":["iab-%d","iab-%d"]}' \
        "$type" "$b" "$i" "$now" $((i % 3)) $((i % 17)) $((i % 5))
    done
    printf ']}'
  } > "$work/events-$b.json"
done

# An admin key: /v1/events needs one.
key=$("$bin" keys create --data-dir "$work/data" --role admin --name bench-ingest 2>/dev/null)

taskset -c 0 "$bin" serve --listen "127.0.0.1:$port" --data-dir "$work/data" --threads 1 \
  > "$work/out.log" 2> "$work/err.log" &
pid=$!
for _ in $(seq 100); do grep -q '"msg":"serving"' "$work/err.log" 2>/dev/null && break; sleep 0.1; done
grep -q '"msg":"serving"' "$work/err.log" || { cat "$work/err.log" >&2; exit 1; }

# requests/s from h2load's "finished in" line
rps() { sed -n 's/.*finished in .*, \([0-9.]*\) req\/s.*/\1/p'; }

baseline() {
  taskset -c 1 h2load -n "$requests" -c 4 -m 16 "http://127.0.0.1:$port/healthz" 2>&1 | rps
}

ingest() {
  local pids=() b
  for b in 0 1 2 3; do
    taskset -c 1 h2load -n $((requests / 4)) -c 1 -m 16 -d "$work/events-$b.json" \
      -H 'content-type: application/json' -H "authorization: Bearer $key" "http://127.0.0.1:$port/v1/events" > "$work/h2load-$b.log" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
  for b in 0 1 2 3; do
    grep -q "status codes: $((requests / 4)) 2xx" "$work/h2load-$b.log" ||
      { echo "bench-ingest: not every batch was accepted:" >&2; cat "$work/h2load-$b.log" >&2; exit 1; }
  done
  cat "$work"/h2load-*.log | rps | awk '{s += $1} END {printf "%.1f\n", s}'
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
ingest > /dev/null # warm-up: creates the 400 profiles
as=() bs=()
for r in $(seq "$rounds"); do
  a=$(baseline); b=$(ingest)
  as+=("$a"); bs+=("$b")
  printf 'round %d: baseline %s req/s, ingest %s req/s = %.0f events/s\n' "$r" "$a" "$b" "$(echo "$b * 100" | bc)"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
ma=$(median "${as[@]}"); mb=$(median "${bs[@]}")
commits=$(curl -s --http2-prior-knowledge "http://127.0.0.1:$port/metrics" | sed -n 's/^adsmith_writer_commits_total \([0-9]*\).*/\1/p')
printf 'median: baseline %s req/s; ingest %s batches/s = %.0f durable events/s (%.3f of the baseline request rate)\n' \
  "$ma" "$mb" "$(echo "$mb * 100" | bc)" "$(echo "$mb / $ma" | bc -l)"
[ -n "$commits" ] && echo "writer commits so far: $commits"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
