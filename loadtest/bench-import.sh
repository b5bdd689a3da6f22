#!/usr/bin/env bash
# Benchmarks `adsmith import users`: generates N synthetic profiles (default
# 1000000) with adsmith-gen-profiles, as JSON Lines and as a MessagePack
# stream, imports each file into a fresh data directory, and prints
# profiles/s, the file sizes and the size of the resulting data directory.
#
# usage: loadtest/bench-import.sh [N]
#   BUILD_DIR  meson build directory holding adsmith and adsmith-gen-profiles (default: build)
#   BATCH      --batch for the import (default: the import's own, 10000)
#   MAP_SIZE   --map-size for the import (default: 64GiB; sparse, costs no disk until used)
#   WORK_DIR   where the files and data directories go (default: a new directory under $TMPDIR or /tmp,
#              removed at the end)
set -euo pipefail

cd "$(dirname "$0")/.."
n=${1:-1000000}
build=${BUILD_DIR:-build}
map_size=${MAP_SIZE:-64GiB}
bin=$build/adsmith
gen=$build/adsmith-gen-profiles

if [[ ! "$n" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [N]   (N: number of profiles, default 1000000)" >&2
  exit 2
fi
for f in "$bin" "$gen"; do
  if [[ ! -x "$f" ]]; then
    echo "bench-import: $f is missing; build first: meson setup $build && meson compile -C $build" >&2
    exit 2
  fi
done
if [[ -n "${WORK_DIR:-}" ]]; then
  work=$WORK_DIR
  mkdir -p "$work"
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/adsmith-bench-import.XXXXXX")
  trap 'rm -rf "$work"' EXIT
fi

now() { date +%s.%N; }
human() { numfmt --to=iec --suffix=B "$1"; }

echo "bench-import: $n profiles, batch ${BATCH:-default}, map $map_size, in $work"
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run"

for fmt in jsonl msgpack; do
  t0=$(now)
  "$gen" --format "$fmt" "$n" > "$work/profiles.$fmt"
  t1=$(now)
  printf 'generated %s: %s in %.1f s\n' "profiles.$fmt" "$(human "$(stat -c %s "$work/profiles.$fmt")")" \
    "$(echo "$t1 - $t0" | bc -l)"
done

results=()
for fmt in jsonl msgpack; do
  data=$work/data-$fmt
  rm -rf "$data"
  args=(import users "$work/profiles.$fmt" --data-dir "$data" --map-size "$map_size")
  if [[ -n "${BATCH:-}" ]]; then
    args+=(--batch "$BATCH")
  fi
  sync
  t0=$(now)
  if ! "$bin" "${args[@]}" 2> "$work/import-$fmt.log"; then
    echo "bench-import: the $fmt import failed:" >&2
    tail -n 20 "$work/import-$fmt.log" >&2
    exit 1
  fi
  t1=$(now)
  secs=$(echo "$t1 - $t0" | bc -l)
  rate=$(echo "$n / $secs" | bc -l)
  size=$(stat -c %s "$work/profiles.$fmt")
  disk=$(du -sb "$data" | cut -f1)
  results+=("$(printf '%-8s %9d profiles %8.1f s %10.0f profiles/s   input %9s   data dir %9s' \
    "$fmt" "$n" "$secs" "$rate" "$(human "$size")" "$(human "$disk")")")
  echo "  $(grep '^imported' "$work/import-$fmt.log" | tail -n 1)"
  rm -rf "$data"
done

echo
printf '%s\n' "${results[@]}"
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) after the run"
