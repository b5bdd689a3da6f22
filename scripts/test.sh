#!/usr/bin/env bash
# README command 2: install what is missing, check style, build and run every
# test, then build again with AddressSanitizer + UndefinedBehaviorSanitizer and
# run the same tests. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build test
scripts/check-style.sh
# ajv, the reference of the schema equivalence test, pinned by
# tests/schema/package-lock.json; reinstalled when missing or when the lock changed.
if [ ! -f tests/schema/node_modules/ajv/package.json ] ||
   [ tests/schema/package-lock.json -nt tests/schema/node_modules/.package-lock.json ]; then
  # Trust the system's CA store (Debian ca-certificates), as apt and curl do: npm
  # otherwise trusts only the CAs built into node, and a site's TLS proxy fails.
  cafile=()
  [ -r /etc/ssl/certs/ca-certificates.crt ] && cafile=(--cafile /etc/ssl/certs/ca-certificates.crt)
  if ! npm ci --prefix tests/schema --no-audit --no-fund --loglevel=error "${cafile[@]}" >/dev/null; then
    # A TLS proxy whose CA the system does not trust: fetch without checking the
    # certificate. Safe because npm ci checks every package against the sha512
    # "integrity" pinned in package-lock.json and refuses any other bytes.
    echo "test: npm ci failed; retrying without TLS verification (package-lock.json pins sha512 hashes)" >&2
    npm ci --prefix tests/schema --no-audit --no-fund --loglevel=error --strict-ssl=false >/dev/null
  fi
fi

run_suite() { # build-dir, meson options...
  local dir=$1; shift
  if [ -f "$dir/build.ninja" ]; then
    meson setup --reconfigure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@" >/dev/null
  fi
  meson compile -C "$dir"
  meson test -C "$dir" --print-errorlogs
}

status=0
# The closing line below reads these logs: never let a previous run's stand in.
rm -f build/meson-logs/testlog.txt build-asan/meson-logs/testlog.txt build-asan/meson-logs/testlog-first.txt
run_suite build -Dtests=true || status=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1
if ! run_suite build-asan -Dtests=true -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false; then
  # GCC 12's ASan takes no allocator lock around fork(), and Criterion forks its
  # workers from a threaded runner, so a sanitized unit program can deadlock in
  # a worker's first malloc (seen about once in three fresh-machine runs: a
  # TIMEOUT, never a failed assertion). When every failure is such a unit-test
  # TIMEOUT, those programs run once more, loudly; anything else stays failed.
  hung=$(python3 - build-asan/meson-logs/testlog.json <<'PY'
import json, sys
bad = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
bad = [t for t in bad if t["result"] not in ("OK", "EXPECTEDFAIL", "SKIP")]
if bad and all(t["result"] == "TIMEOUT" and t["name"].startswith("adsmith:unit / ") for t in bad):
    print(" ".join(t["name"].split(" / ", 1)[1] for t in bad))
PY
)
  if [ -n "$hung" ]; then
    echo "test: sanitized unit programs timed out (the ASan fork deadlock): $hung; running them once more" >&2
    cp build-asan/meson-logs/testlog.txt build-asan/meson-logs/testlog-first.txt
    # shellcheck disable=SC2086
    meson test -C build-asan --print-errorlogs $hung || status=1
  else
    status=1
  fi
fi

# One closing line over both builds, counting Criterion's test cases.
awk -F'|' '/Synthesis: Tested:/ {
    for (i = 1; i <= NF; i++) {
      if ($i ~ /Passing:/) { split($i, a, ":"); p += a[2] }
      if ($i ~ /Failing:/) { split($i, a, ":"); f += a[2] }
      if ($i ~ /Crashing:/) { split($i, a, ":"); f += a[2] }
    }
  } END { printf "tests: %d passed, %d failed\n", p, f }' build/meson-logs/testlog.txt build-asan/meson-logs/testlog.txt \
  $([ -f build-asan/meson-logs/testlog-first.txt ] && echo build-asan/meson-logs/testlog-first.txt)
exit $status
